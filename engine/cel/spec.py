"""Reading a detector YAML file into a :class:`DetectorSpec`, with a file:line for every error.

The format is Tracee's YAML detector (``docs/docs/detectors/yaml-detectors.md``),
with CEL conditions and output expressions::

    type: detector                       # optional; a file is a detector when it says so
    id: CEL-102                          #   or has 'requirements' or 'conditions'
    produced_event:
      name: anti_debugging               # the finding's event name (required)
      version: 1                         # default "1"
      description: ...                   # used when threat.description is absent
      tags: [linux]                      # optional
    requirements:
      events:                            # at least one
        - name: ptrace
          origin: host                   # optional: host, container, container-init, * (pytracee)
          data_filters: [pathname=/etc/*]          # Tracee's policy syntax, see below
          scope_filters: [container=started]       # container[=started|=true], not-container, host
    threat:                              # optional (no threat: a derived event)
      name: Anti-Debugging detected      # the signature's name (default: produced_event.name)
      description: ...
      severity: low                      # info, low, medium, high, critical, or 0-4
      mitre:
        technique: {id: T1622, name: Debugger Evasion}   # or just "T1622"
        tactic: {name: Defense Evasion}                  # or just "Defense Evasion"
    properties: {id: attack-pattern--...}  # optional, pytracee: more SigMetadata.Properties
    conditions:                          # CEL, all must be true (none: every selected event matches)
      - ptraceRequest(getEventData("request")) == 0
    output:
      fields:                            # CEL, evaluated when the conditions hold, into Data
        - {name: request, expression: getEventData("request")}

**Data filters**: ``ARG=VALUE[,VALUE...]``, optionally ``data.ARG=...``; values
are exact, ``prefix*``, ``*suffix`` or ``*substring*``; several values (in
one entry or several entries for the same argument) are OR-ed, different
arguments AND-ed. String values become engine filters (see
:mod:`pytracee.engine.selectors`). An integer value (``request=0``) also
matches the raw integer argument; those filters are checked by the signature
itself, since engine filters only see strings. Only ``=`` is supported.

Also accepted and ignored (they concern Tracee's own engine): ``auto_populate``,
``requirements.{min,max}_tracee_version``, ``architectures``, ``enrichments``,
``data_stores``, ``events[].{dependency, min_version, max_version,
version_constraints}``, ``produced_event.fields``. Tracee's older form
``events[].filters: [data.ARG=..., scope.container]`` is read too.
Unknown keys are errors, so a typo does not silently disable a condition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from ..errors import RuleFileError
from ..params import Param, ParamError, params_from_dict
from ..selectors import ANY, ORIGINS, ArgPattern, SelectorError
from .limits import (
    MAX_CONDITIONS,
    MAX_OUTPUT_FIELDS,
    ExpressionTooComplex,
    check_expression,
)
from .yamlload import documents as yaml_documents

__all__ = [
    "SEVERITIES",
    "DetectorSpec",
    "EventRequirement",
    "Expression",
    "OutputField",
    "ValueFilter",
    "looks_like_detector",
    "parse_detector_file",
]

#: Severity words -> Tracee's integer severities.
SEVERITIES: Final = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

_TOP_KEYS: Final = (
    "type",
    "id",
    "produced_event",
    "requirements",
    "threat",
    "properties",
    "conditions",
    "output",
    "auto_populate",
    "params",
)
_PRODUCED_KEYS: Final = ("name", "version", "description", "tags", "fields")
_REQUIREMENT_KEYS: Final = (
    "events",
    "min_tracee_version",
    "max_tracee_version",
    "architectures",
    "enrichments",
    "data_stores",
)
_EVENT_KEYS: Final = (
    "name",
    "origin",
    "data_filters",
    "scope_filters",
    "filters",
    "dependency",
    "min_version",
    "max_version",
    "version_constraints",
)
_THREAT_KEYS: Final = ("name", "description", "severity", "mitre", "properties")
_OUTPUT_KEYS: Final = ("fields",)
_FIELD_KEYS: Final = ("name", "expression", "type", "optional")
#: Property keys in the order Tracee's built-ins write them.
_PROPERTY_ORDER: Final = ("Severity", "Category", "Technique", "Kubernetes_Technique", "id", "external_id")

_FILTER: Final = re.compile(r"^\s*(?:data\.)?([A-Za-z_][A-Za-z0-9_]*)\s*(!=|<=|>=|=|<|>)\s*(.*?)\s*$")
_INTEGER: Final = re.compile(r"^-?\d+$")
#: Scope filters -> the origins they allow.
_SCOPES: Final = {
    "container": ("container", "container-init"),
    "container=true": ("container", "container-init"),
    "container=started": ("container",),
    "not-container": ("host",),
    "!container": ("host",),
    "container=false": ("host",),
    "host": ("host",),
}
_DETECTOR_HINT: Final = re.compile(r"^(type:\s*detector\b|conditions:|requirements:)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Expression:
    """A CEL expression and where it is: ``where`` (``conditions[0]``) and its first line in the file."""

    text: str
    where: str
    line: int


@dataclass(frozen=True, slots=True)
class ValueFilter:
    """A data filter with integer values, checked by the signature: ints by value, strings by pattern."""

    ints: frozenset[int]
    pattern: ArgPattern

    def matches(self, value: Any) -> bool:
        """True for an int among :attr:`ints` or a string the patterns accept."""
        if type(value) is int:
            return value in self.ints
        return self.pattern.matches(value)


@dataclass(frozen=True, slots=True)
class EventRequirement:
    """One ``requirements.events`` entry: an event name, its origins and data filters."""

    name: str
    origins: tuple[str, ...]
    filters: Mapping[str, ArgPattern]
    value_filters: Mapping[str, ValueFilter]
    line: int


@dataclass(frozen=True, slots=True)
class OutputField:
    """One ``output.fields`` entry."""

    name: str
    expression: Expression


@dataclass(frozen=True)
class DetectorSpec:
    """A validated detector: the metadata of a signature, its events, conditions and output."""

    path: Path
    line: int
    id: str
    name: str
    event_name: str
    version: str
    description: str
    tags: tuple[str, ...] | None
    properties: dict[str, Any]
    events: tuple[EventRequirement, ...]
    conditions: tuple[Expression, ...]
    output: tuple[OutputField, ...] = field(default=())
    #: Declared parameters (``params:``), read by the expressions as ``params.<name>``.
    params: Mapping[str, Param] = field(default_factory=dict)


def looks_like_detector(text: str) -> bool:
    """A cheap guess for files YAML cannot parse: do they read like a detector?"""
    return bool(_DETECTOR_HINT.search(text))


def parse_detector_file(path: Path, text: str) -> list[DetectorSpec] | None:
    """The detectors in a YAML file (one per document), or ``None`` when it holds none.

    :raises RuleFileError: for invalid YAML in a file that reads like a detector (a
        document with too many aliases or nodes included, see :mod:`.yamlload`), or for a
        detector with an error; the error names the line.
    """
    try:
        documents = list(yaml_documents(text))
    except yaml.YAMLError as exc:
        if not looks_like_detector(text):
            return None
        if isinstance(exc, yaml.reader.ReaderError):  # a character YAML refuses: a position, no mark
            problem = f"unacceptable character #x{exc.character:04x}: special characters are not allowed"
            raise RuleFileError(path, f"invalid YAML: {problem}", text.count("\n", 0, exc.position) + 1) from None
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None and context_mark is not mark:
            problem += f" ({context} started on line {context_mark.line + 1})"
        raise RuleFileError(path, f"invalid YAML: {problem}", mark.line + 1 if mark else None) from None
    detectors = [doc for doc in documents if _is_detector(doc)]
    if not detectors:
        return None
    return [_Parser(path, loader, node).detector() for loader, node in detectors]


def _is_detector(document: tuple[yaml.SafeLoader, yaml.Node]) -> bool:
    _, node = document
    if not isinstance(node, yaml.MappingNode):
        return False
    keys = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
    kind = keys.get("type")
    if kind is not None:
        return isinstance(kind, yaml.ScalarNode) and kind.value == "detector"
    return "conditions" in keys or "requirements" in keys


class _Parser:
    """Walks one detector document, checking each value and remembering its line."""

    def __init__(self, path: Path, loader: yaml.SafeLoader, root: yaml.Node) -> None:
        self.path = path
        self.loader = loader
        self.root = root

    # --- error reporting and node access ---

    def error(self, node: yaml.Node | None, message: str) -> RuleFileError:
        return RuleFileError(self.path, message, _line(node) if node is not None else None)

    def mapping(self, node: yaml.Node, where: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{where or 'a detector'} must be a mapping")
        result: dict[str, yaml.Node] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                raise self.error(key, f"{where or 'detector'}: keys must be strings")
            name = key.value
            if name in result:
                raise self.error(key, f"{_join(where, name)}: duplicate key")
            if name not in allowed:
                raise self.error(key, f"{_join(where, name)}: unknown key (expected one of: {', '.join(allowed)})")
            result[name] = value
        return result

    def value(self, node: yaml.Node) -> Any:
        return self.loader.construct_object(node, deep=True)

    def string(self, node: yaml.Node, where: str, *, empty: bool = False) -> str:
        value = self.value(node)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.error(node, f"{where} must be a string, not {_type_name(value)}")
        if not isinstance(value, str):
            raise self.error(node, f"{where} must be a string (quote it): {value!r}")
        if not empty and not value.strip():
            raise self.error(node, f"{where} must not be empty")
        return value

    def is_null(self, node: yaml.Node | None) -> bool:
        """No node, or an empty value (``threat:`` with nothing after it)."""
        return node is None or (isinstance(node, yaml.ScalarNode) and self.value(node) is None)

    def sequence(self, node: yaml.Node, where: str) -> list[yaml.Node]:
        if self.is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, f"{where} must be a list")
        return list(node.value)

    def required(self, keys: dict[str, yaml.Node], key: str, where: str, node: yaml.Node) -> yaml.Node:
        if key not in keys or self.value(keys[key]) in (None, ""):
            raise self.error(node, f"missing required field {_join(where, key)!r}")
        return keys[key]

    # --- the document ---

    def detector(self) -> DetectorSpec:
        root = self.root
        top = self.mapping(root, "", _TOP_KEYS)
        sig_id = self.string(self.required(top, "id", "", root), "id").strip()
        produced_node = self.required(top, "produced_event", "", root)
        produced = self.mapping(produced_node, "produced_event", _PRODUCED_KEYS)
        event_name = self.string(
            self.required(produced, "name", "produced_event", produced_node), "produced_event.name"
        )
        version = self._version(produced.get("version"))
        tags = self._tags(produced.get("tags"))
        threat = self._threat(top.get("threat"))
        properties = self._properties(threat.pop("properties", {}), top.get("properties"))
        requirements_node = self.required(top, "requirements", "", root)
        requirements = self.mapping(requirements_node, "requirements", _REQUIREMENT_KEYS)
        events_node = self.required(requirements, "events", "requirements", requirements_node)
        event_nodes = self.sequence(events_node, "requirements.events")
        if not event_nodes:
            raise self.error(events_node, "requirements.events must list at least one event")
        events = tuple(self._event(node, f"requirements.events[{i}]") for i, node in enumerate(event_nodes))
        description = threat.get("description") or (
            self.string(produced["description"], "produced_event.description", empty=True)
            if "description" in produced
            else ""
        )
        return DetectorSpec(
            path=self.path,
            line=_line(root),
            id=sig_id,
            name=threat.get("name") or event_name,
            event_name=event_name,
            version=version,
            description=description,
            tags=tags,
            properties=properties,
            events=events,
            conditions=self._conditions(top.get("conditions")),
            output=self._output(top.get("output")),
            params=self._params(top.get("params")),
        )

    def _params(self, node: yaml.Node | None) -> dict[str, Param]:
        if node is None:
            return {}
        try:
            return params_from_dict(self.value(node), "params")
        except ParamError as exc:
            raise self.error(node, str(exc)) from None

    def _version(self, node: yaml.Node | None) -> str:
        if node is None:
            return "1"
        value = self.value(node)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
            raise self.error(node, f"produced_event.version must be a version such as 1 or 1.0.0, not {value!r}")
        return str(value).strip()

    def _tags(self, node: yaml.Node | None) -> tuple[str, ...] | None:
        if node is None:
            return None
        return tuple(
            self.string(item, f"produced_event.tags[{i}]")
            for i, item in enumerate(self.sequence(node, "produced_event.tags"))
        )

    def _threat(self, node: yaml.Node | None) -> dict[str, Any]:
        """Name, description and properties (Severity, Category, Technique, external_id) from ``threat``."""
        if node is None or self.is_null(node):
            return {"properties": {}}
        threat = self.mapping(node, "threat", _THREAT_KEYS)
        result: dict[str, Any] = {}
        properties: dict[str, Any] = {}
        for key in ("name", "description"):
            if key in threat:
                result[key] = self.string(threat[key], f"threat.{key}", empty=key == "description")
        if "severity" in threat:
            properties["Severity"] = self._severity(threat["severity"])
        if "mitre" in threat:
            properties.update(self._mitre(threat["mitre"]))
        if "properties" in threat:
            extra = self.value(threat["properties"])
            if not isinstance(extra, dict):
                raise self.error(threat["properties"], "threat.properties must be a mapping")
            properties.update(extra)
        result["properties"] = properties
        return result

    def _severity(self, node: yaml.Node) -> int:
        value = self.value(node)
        if isinstance(value, str) and value.strip().lower() in SEVERITIES:
            return SEVERITIES[value.strip().lower()]
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if type(value) is int and 0 <= value <= 4:
            return value
        raise self.error(node, f"threat.severity: bad severity {value!r}: use {', '.join(SEVERITIES)} or 0-4")

    def _mitre(self, node: yaml.Node) -> dict[str, Any]:
        mitre = self.mapping(node, "threat.mitre", ("technique", "tactic"))
        properties: dict[str, Any] = {}
        if "tactic" in mitre:
            tactic = self._named(mitre["tactic"], "threat.mitre.tactic", ("name",))
            if "name" in tactic:
                properties["Category"] = _slug(tactic["name"])
        if "technique" in mitre:
            technique = self._named(mitre["technique"], "threat.mitre.technique", ("id", "name"), bare="id")
            if "name" in technique:
                properties["Technique"] = technique["name"]
            if "id" in technique:
                properties["external_id"] = technique["id"]
        return properties

    def _named(self, node: yaml.Node, where: str, keys: tuple[str, ...], bare: str = "name") -> dict[str, str]:
        """A ``{id, name}`` mapping, or a bare string standing for its ``bare`` key."""
        if isinstance(node, yaml.ScalarNode):
            return {bare: self.string(node, where)}
        fields = self.mapping(node, where, keys)
        return {key: self.string(value, f"{where}.{key}") for key, value in fields.items()}

    def _properties(self, from_threat: dict[str, Any], node: yaml.Node | None) -> dict[str, Any]:
        merged = dict(from_threat)
        if node is not None and not self.is_null(node):
            extra = self.value(node)
            if not isinstance(extra, dict) or not all(isinstance(k, str) for k in extra):
                raise self.error(node, "properties must be a mapping with string keys")
            merged.update(extra)
        ordered: dict[str, Any] = {key: merged.pop(key) for key in _PROPERTY_ORDER if key in merged}
        ordered.update(merged)
        return ordered

    # --- events ---

    def _event(self, node: yaml.Node, where: str) -> EventRequirement:
        fields = self.mapping(node, where, _EVENT_KEYS)
        name = self.string(self.required(fields, "name", where, node), f"{where}.name").strip()
        if "dependency" in fields and self.value(fields["dependency"]) not in ("required", "optional"):
            raise self.error(fields["dependency"], f"{where}.dependency must be 'required' or 'optional'")
        origins: tuple[str, ...] = (ANY,)
        if "origin" in fields:
            origin = self.string(fields["origin"], f"{where}.origin").strip()
            if origin not in ORIGINS and origin != ANY:
                raise self.error(
                    fields["origin"],
                    f"{where}.origin: unknown origin {origin!r} (expected {', '.join(ORIGINS)} or '*')",
                )
            origins = (origin,)
        data: list[tuple[str, yaml.Node]] = []
        scopes: list[tuple[str, yaml.Node]] = []
        for key in ("data_filters", "scope_filters", "filters"):
            for i, item in enumerate(self.sequence(fields.get(key, _EMPTY), f"{where}.{key}")):
                text = self.string(item, f"{where}.{key}[{i}]").strip()
                if key == "filters":  # Tracee's older form: data.ARG=... / scope.X
                    if text.startswith("scope."):
                        scopes.append((text.removeprefix("scope."), item))
                    else:
                        data.append((text, item))
                else:
                    (data if key == "data_filters" else scopes).append((text, item))
        for text, item in scopes:
            allowed = _SCOPES.get(text.replace(" ", ""))
            if allowed is None:
                raise self.error(
                    item,
                    f"{where}: unsupported scope filter {text!r} "
                    "(supported: container, container=started, not-container, host)",
                )
            kept = allowed if origins == (ANY,) else tuple(o for o in origins if o in allowed)
            if not kept:
                raise self.error(item, f"{where}: scope filter {text!r} contradicts origin {', '.join(origins)}")
            origins = kept
        filters, value_filters = self._data_filters(data, where)
        return EventRequirement(name, origins, filters, value_filters, _line(node))

    def _data_filters(
        self, entries: list[tuple[str, yaml.Node]], where: str
    ) -> tuple[dict[str, ArgPattern], dict[str, ValueFilter]]:
        patterns: dict[str, list[str]] = {}
        integers: dict[str, set[int]] = {}
        for text, node in entries:
            match = _FILTER.match(text)
            if match is None:
                raise self.error(node, f"{where}: bad data filter {text!r}: expected ARG=VALUE, e.g. pathname=/etc/*")
            arg, operator, values = match[1], match[2], match[3]
            if operator != "=":
                raise self.error(node, f"{where}: bad data filter {text!r}: only '=' is supported (use a condition)")
            items = [v.strip() for v in values.split(",")]
            if not values or not all(items):
                raise self.error(node, f"{where}: bad data filter {text!r}: empty value")
            for value in items:
                patterns.setdefault(arg, []).append(value)
                if _INTEGER.match(value):
                    integers.setdefault(arg, set()).add(int(value))
                else:
                    try:
                        ArgPattern.parse(value)
                    except SelectorError as exc:
                        raise self.error(node, f"{where}: bad data filter {text!r}: {exc}") from None
        filters = {arg: ArgPattern.parse(p) for arg, p in patterns.items() if arg not in integers}
        value_filters = {
            arg: ValueFilter(frozenset(integers[arg]), ArgPattern.parse(patterns[arg])) for arg in integers
        }
        return filters, value_filters

    # --- CEL ---

    def _expression(self, node: yaml.Node, where: str) -> Expression:
        text = self.string(node, where)
        line = _line(node) + (1 if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">") else 0)
        try:
            check_expression(text)
        except ExpressionTooComplex as exc:
            raise RuleFileError(self.path, f"{where}: expression too complex: {exc}", line) from None
        return Expression(text.strip(), where, line)

    def _conditions(self, node: yaml.Node | None) -> tuple[Expression, ...]:
        if node is None or self.is_null(node):
            return ()
        if isinstance(node, yaml.ScalarNode) and self.value(node) is not None:
            return (self._expression(node, "conditions[0]"),)
        items = self.sequence(node, "conditions")
        if len(items) > MAX_CONDITIONS:
            raise self.error(node, f"conditions: {len(items)} conditions (limit {MAX_CONDITIONS})")
        return tuple(self._expression(item, f"conditions[{i}]") for i, item in enumerate(items))

    def _output(self, node: yaml.Node | None) -> tuple[OutputField, ...]:
        if node is None or self.is_null(node):
            return ()
        output = self.mapping(node, "output", _OUTPUT_KEYS)
        items = self.sequence(output.get("fields", _EMPTY), "output.fields")
        if len(items) > MAX_OUTPUT_FIELDS:
            raise self.error(node, f"output.fields: {len(items)} fields (limit {MAX_OUTPUT_FIELDS})")
        fields: list[OutputField] = []
        for i, item in enumerate(items):
            where = f"output.fields[{i}]"
            entry = self.mapping(item, where, _FIELD_KEYS)
            name = self.string(self.required(entry, "name", where, item), f"{where}.name")
            if any(f.name == name for f in fields):
                raise self.error(entry["name"], f"{where}.name: duplicate output field {name!r}")
            expression = self._expression(self.required(entry, "expression", where, item), f"{where}.expression")
            fields.append(OutputField(name, expression))
        return tuple(fields)


_EMPTY: Final = yaml.ScalarNode("tag:yaml.org,2002:null", "")


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1 if node.start_mark is not None else 1


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _slug(text: str) -> str:
    """MITRE tactic name -> Tracee's Category slug: ``"Defense Evasion"`` -> ``"defense-evasion"``."""
    return re.sub(r"[\s_]+", "-", text.strip().lower())


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", type(None): "empty", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
