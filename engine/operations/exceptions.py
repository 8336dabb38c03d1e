"""Exceptions: named allow-lists that keep expected findings out of the output, counted.

In the spirit of Falco's rule exceptions: an exception names the signatures it
applies to (all when it names none) and the conditions under which a finding of
theirs is expected. Two forms, which may be mixed::

    - name: runc-inherits-ld-library-path
      signatures: [TRC-107]
      match:                                   # every condition must hold
        processName: [runc, containerd-shim]   # a list: one of (in)
        data.LD_LIBRARY_PATH: {prefix: "LD_LIBRARY_PATH=/opt/"}
    - name: trusted-images                     # Falco's form: each row of values is one alternative
      fields: [container.image, processName]
      comps: [glob, in]
      values: [["docker.io/library/nginx:*", [nginx, sh]]]

A condition is ``FIELD: VALUE`` (equal; a list: in) or ``FIELD: {OP: VALUE, ...}`` with
``=``/``eq``, ``!=``/``ne``, ``in``, ``not in``/``not_in``, ``prefix``/``startswith``,
``suffix``/``endswith``, ``glob``, ``contains``, ``<``, ``<=``, ``>``, ``>=`` (also
``lt`` … ``ge``) and ``exists``. ``match`` may also be a list of such mappings:
alternatives, one of which must hold.

Fields are paths into the finding: ``data.KEY`` (the signature's data),
``args.NAME`` (the event's arguments), ``signature.id|name|severity|tags``, and
any other dotted path into the event's JSON (``processName``, ``hostName``,
``container.image``, ``executable.sha256``, ``kubernetes.podName``; Tracee's flat
forms ``containerImage`` and the nested ones are interchangeable). A field the
finding lacks fails every condition but ``exists: false``. String operators on a
list field (``argv``) hold when one element matches.

Exceptions run on findings, never on events: their cost does not grow with the
event rate.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ..findings import Finding

if TYPE_CHECKING:
    from .config import Node, Problem

__all__ = ["Condition", "ExceptionRule", "ExceptionSet", "field_value", "parse_exceptions"]

_OPS: Final = {
    "=": "eq",
    "==": "eq",
    "eq": "eq",
    "!=": "ne",
    "ne": "ne",
    "in": "in",
    "not in": "not_in",
    "not_in": "not_in",
    "nin": "not_in",
    "prefix": "prefix",
    "startswith": "prefix",
    "suffix": "suffix",
    "endswith": "suffix",
    "glob": "glob",
    "contains": "contains",
    "<": "lt",
    "lt": "lt",
    "<=": "le",
    "le": "le",
    ">": "gt",
    "gt": "gt",
    ">=": "ge",
    "ge": "ge",
    "exists": "exists",
}
_MISSING: Final = object()
_FIELD_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\Z|data\..+|args\..+")


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _equal_values(values: Iterable[Any]) -> tuple[frozenset[str], frozenset[float]]:
    """What equality compares with: the values' text forms, and the numbers among them."""
    texts = frozenset(_text(v) for v in values)
    numbers = frozenset(n for n in (_number(v) for v in values) if n is not None)
    return texts, numbers


@dataclass(frozen=True, slots=True)
class Condition:
    """``field OP value`` on a finding (its comparison data prepared once, at load)."""

    field: str
    op: str
    value: Any
    _texts: frozenset[str] = dataclasses.field(init=False, repr=False, compare=False)
    _numbers: frozenset[float] = dataclasses.field(init=False, repr=False, compare=False)
    _globs: tuple[re.Pattern[str], ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        values = self.value if isinstance(self.value, tuple) else (self.value,)
        texts, numbers = _equal_values(values) if self.op in ("eq", "ne", "in", "not_in", "contains") else ((), ())
        object.__setattr__(self, "_texts", frozenset(texts))
        object.__setattr__(self, "_numbers", frozenset(numbers))
        globs = tuple(re.compile(fnmatch.translate(p)) for p in values) if self.op == "glob" else ()
        object.__setattr__(self, "_globs", globs)

    def test(self, finding: Finding) -> bool:
        """Whether ``finding`` meets the condition."""
        actual = field_value(finding, self.field)
        op = self.op
        if op == "exists":
            return (actual is not _MISSING) == bool(self.value)
        if actual is _MISSING or actual is None:
            return False  # a misspelled field under != must not suppress every finding
        if isinstance(actual, list):
            if op in ("ne", "not_in"):
                return all(self._scalar(item) for item in actual)
            if op == "contains":
                return any(self._equal(item) for item in actual)
            return any(self._scalar(item) for item in actual)
        return self._scalar(actual)

    def _equal(self, actual: Any) -> bool:
        if isinstance(actual, (int, float)) and not isinstance(actual, bool):
            return float(actual) in self._numbers or _text(actual) in self._texts
        return _text(actual) in self._texts

    def _scalar(self, actual: Any) -> bool:
        op = self.op
        if op in ("eq", "in"):
            return self._equal(actual)
        if op in ("ne", "not_in"):
            return not self._equal(actual)
        text = _text(actual)
        if op == "prefix":
            return text.startswith(self.value)
        if op == "suffix":
            return text.endswith(self.value)
        if op == "glob":
            return any(g.match(text) for g in self._globs)
        if op == "contains":
            return any(v in text for v in self.value)
        a, b = _number(actual), _number(self.value)
        if a is None or b is None:
            return False
        return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]


_SIGNATURE_FIELDS: Final[Mapping[str, Callable[[Finding], Any]]] = {
    "id": lambda f: f.sig_metadata.id,
    "name": lambda f: f.sig_metadata.name,
    "severity": lambda f: f.sig_metadata.severity,
    "tags": lambda f: list(f.sig_metadata.tags or []),
    "event_name": lambda f: f.sig_metadata.event_name,
    "category": lambda f: f.sig_metadata.properties.get("Category"),
}


def field_value(finding: Finding, path: str) -> Any:
    """The value at ``path`` in ``finding`` (see the module's documentation); a sentinel when absent."""
    head, _, rest = path.partition(".")
    if head == "data":
        return _walk(finding.data or {}, rest, whole_key=True)
    if head == "args":
        args = finding.event.args
        return args[rest] if rest in args else _walk(args, rest)
    if head == "signature":
        getter = _SIGNATURE_FIELDS.get(rest)
        return getter(finding) if getter is not None else _MISSING
    if head == "event":
        path = rest
    raw = finding.event.raw
    value = _walk(raw, path)
    if value is _MISSING:  # Tracee's flat and nested container fields
        first, _, last = path.partition(".")
        if last and "." not in last:
            value = raw.get(first + last[:1].upper() + last[1:], _MISSING)
        else:
            for prefix in ("container", "kubernetes", "pod"):
                if path.startswith(prefix) and len(path) > len(prefix) and path[len(prefix)].isupper():
                    rest_key = path[len(prefix)].lower() + path[len(prefix) + 1 :]
                    value = _walk(raw, f"{prefix}.{rest_key}")
                    break
    return value


def _walk(value: Any, path: str, whole_key: bool = False) -> Any:
    if whole_key and isinstance(value, Mapping) and path in value:
        return value[path]
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


@dataclass(frozen=True, slots=True)
class ExceptionRule:
    """A named exception: ``signatures`` (empty: all) and ``alternatives`` (one must hold entirely)."""

    name: str
    signatures: frozenset[str]
    alternatives: tuple[tuple[Condition, ...], ...]
    where: str = ""

    def applies_to(self, sig_id: str) -> bool:
        """Whether the exception concerns signature ``sig_id``."""
        return not self.signatures or sig_id in self.signatures

    def matches(self, finding: Finding) -> bool:
        """Whether ``finding`` is one this exception expects."""
        return any(all(c.test(finding) for c in conditions) for conditions in self.alternatives)


class ExceptionSet:
    """The exceptions of a run, by signature; counts what each one suppressed."""

    def __init__(self, rules: Iterable[ExceptionRule] = ()) -> None:
        self.rules = list(rules)
        self._for_all = [r for r in self.rules if not r.signatures]
        self._by_signature: dict[str, list[ExceptionRule]] = {}
        for rule in self.rules:
            for sig_id in rule.signatures:
                self._by_signature.setdefault(sig_id, []).append(rule)
        #: Findings suppressed, by exception name.
        self.counts: Counter[str] = Counter({rule.name: 0 for rule in self.rules})

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, finding: Finding) -> ExceptionRule | None:
        """The first exception expecting ``finding`` (counted), or ``None``."""
        candidates: list[ExceptionRule] = [*self._by_signature.get(finding.sig_metadata.id, []), *self._for_all]
        for rule in candidates:
            if rule.matches(finding):
                self.counts[rule.name] += 1
                return rule
        return None

    def suppressed_by_exception(self) -> dict[str, int]:
        """Findings suppressed so far, by exception name (zero for those that matched nothing)."""
        return dict(self.counts)


# --- parsing ------------------------------------------------------------------------------------


def parse_exceptions(
    node: Node, where: str, problems: list[Problem], signature: str | None = None
) -> list[ExceptionRule]:
    """The exceptions of a YAML list (``signature``: the one an override attaches them to).

    Problems (with their lines) are appended to ``problems``.
    """
    from .config import Problem

    if not isinstance(node.value, list):
        problems.append(Problem(where, node.line, "exceptions: expected a list"))
        return []
    rules = []
    names: set[str] = set()
    for item in node.value:
        try:
            rule = _parse_exception(item, where, signature)
        except _Bad as exc:
            problems.append(Problem(where, exc.line, exc.message))
            continue
        if rule.name in names:
            problems.append(Problem(where, item.line, f"exception {rule.name!r} is defined twice"))
            continue
        names.add(rule.name)
        rules.append(rule)
    return rules


class _Bad(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


_KEYS: Final = frozenset(
    {"name", "signatures", "rules", "match", "fields", "comps", "values", "comment", "description"}
)


def _parse_exception(node: Node, where: str, signature: str | None) -> ExceptionRule:
    if not isinstance(node.value, dict):
        raise _Bad(node.line, "an exception is a mapping (name, signatures, match)")
    keys = node.value
    unknown = set(keys) - _KEYS
    if unknown:
        raise _Bad(node.line, f"exception: unknown keys {sorted(unknown)} (expected {', '.join(sorted(_KEYS))})")
    name_node = keys.get("name")
    if name_node is None or not isinstance(name_node.value, str) or not name_node.value.strip():
        raise _Bad(node.line, "an exception needs a name (a non-empty string)")
    name = name_node.value.strip()
    listed = keys.get("signatures") or keys.get("rules")
    signatures = set(_strings(listed, f"exception {name}: signatures"))
    if listed is not None and not signatures:  # an empty list must not widen the exception to every signature
        raise _Bad(listed.line, f"exception {name}: signatures is empty (leave it out to apply to all signatures)")
    if signature is not None:
        signatures = {signature}
    alternatives: list[tuple[Condition, ...]] = []
    if "match" in keys:
        match = keys["match"]
        alternatives.extend(
            _conditions(alternative, name)
            for alternative in (match.value if isinstance(match.value, list) else [match])
        )
    if "fields" in keys or "values" in keys or "comps" in keys:
        alternatives.extend(_falco_form(keys, name, node.line))
    if not alternatives:
        raise _Bad(node.line, f"exception {name}: no conditions (give match, or fields/comps/values)")
    return ExceptionRule(name, frozenset(signatures), tuple(alternatives), f"{where}:{node.line}")


def _strings(node: Node | None, what: str) -> list[str]:
    if node is None:
        return []
    items = node.value if isinstance(node.value, list) else [node]
    out = []
    for item in items:
        if not isinstance(item.value, str) or not item.value:
            raise _Bad(item.line, f"{what}: expected strings, got {item.value!r}")
        out.append(item.value)
    return out


def _conditions(node: Node, name: str) -> tuple[Condition, ...]:
    if not isinstance(node.value, dict) or not node.value:
        raise _Bad(node.line, f"exception {name}: match is a mapping of fields to values or {{operator: value}}")
    conditions = []
    for field, spec in node.value.items():
        _check_field(field, spec.line, name)
        if isinstance(spec.value, dict):
            if not spec.value:
                raise _Bad(spec.line, f"exception {name}: {field}: no operator")
            for op_text, value in spec.value.items():
                conditions.append(_condition(field, op_text, value, name))
        elif isinstance(spec.value, list):
            conditions.append(_condition(field, "in", spec, name))
        else:
            conditions.append(_condition(field, "eq", spec, name))
    return tuple(conditions)


def _check_field(field: Any, line: int, name: str) -> None:
    if not isinstance(field, str) or not _FIELD_RE.match(field):
        raise _Bad(line, f"exception {name}: {field!r} is not a field path (data.KEY, args.NAME, processName, ...)")


def _condition(field: str, op_text: Any, node: Node, name: str) -> Condition:
    op = _OPS.get(str(op_text).strip().lower()) if isinstance(op_text, str) else None
    if op is None:
        raise _Bad(
            node.line, f"exception {name}: {field}: unknown operator {op_text!r} (use {', '.join(sorted(set(_OPS)))})"
        )
    value = node.plain()
    if op == "exists":
        if not isinstance(value, bool):
            raise _Bad(node.line, f"exception {name}: {field}: exists takes true or false")
    elif op in ("in", "not_in", "prefix", "suffix", "glob", "contains"):
        values = value if isinstance(value, list) else [value]
        if op in ("prefix", "suffix", "glob", "contains"):
            values = [_text(v) for v in values]
        if any(isinstance(v, (dict, list)) or v is None for v in values) or not values:
            raise _Bad(node.line, f"exception {name}: {field} {op}: expected a value or a list of values")
        value = tuple(values)
    elif isinstance(value, (dict, list)) or value is None:
        raise _Bad(node.line, f"exception {name}: {field} {op}: expected a single value")
    elif op in ("lt", "le", "gt", "ge") and _number(value) is None:
        raise _Bad(node.line, f"exception {name}: {field} {op_text}: expected a number, not {value!r}")
    return Condition(field, op, value)


def _falco_form(keys: Mapping[str, Node], name: str, line: int) -> list[tuple[Condition, ...]]:
    fields = _strings(keys.get("fields"), f"exception {name}: fields")
    if not fields:
        raise _Bad(line, f"exception {name}: fields must list at least one field")
    for field in fields:
        _check_field(field, keys["fields"].line, name)
    comps_node = keys.get("comps")
    comps = [c.value for c in comps_node.value] if comps_node is not None and isinstance(comps_node.value, list) else []
    if comps_node is not None and not isinstance(comps_node.value, list):
        comps = [comps_node.value] * len(fields)
    comps = comps or ["="] * len(fields)
    if len(comps) != len(fields):
        raise _Bad(line, f"exception {name}: {len(fields)} fields but {len(comps)} comps")
    values_node = keys.get("values")
    if values_node is None or not isinstance(values_node.value, list) or not values_node.value:
        raise _Bad(line, f"exception {name}: values must be a list of rows, one value per field")
    alternatives = []
    for row in values_node.value:
        cells: Sequence[Node] = row.value if isinstance(row.value, list) else [row]
        if len(fields) == 1 and not isinstance(row.value, list):
            cells = [row]
        if len(cells) != len(fields):
            raise _Bad(row.line, f"exception {name}: a row of values has {len(cells)} values for {len(fields)} fields")
        alternatives.append(tuple(_condition(f, c, v, name) for f, c, v in zip(fields, comps, cells, strict=True)))
    return alternatives
