"""Choosing the signatures of a run: ``--rules`` and ``--disable``.

``--rules`` takes a comma-separated list of terms; a signature runs when one
term selects it. A term is

* a signature ID (``TRC-107``) or event name (``ld_preload``), or ``all``;
* ``lang:python|rego|cel``;
* ``severity>=high`` (also ``>``, ``<=``, ``<``, ``=``; names ``info``, ``low``,
  ``medium``, ``high``, ``critical`` or 0-4), as Tracee's policies select
  ``threat.severity>=high``;
* ``tag:NAME`` (the signature's tags), ``category:NAME`` (its MITRE tactic,
  ``Category``: ``persistence``, ``defense-evasion`` ...), ``mitre:ID`` (its
  technique, ``external_id``: ``mitre:T1611``; a technique also selects its
  sub-techniques: ``mitre:T1574`` selects T1574.006);
* several of these joined by ``+``, all of which must hold:
  ``lang:rego+severity>=high``.

Metadata terms (severity, tag, category, mitre) choose among the signatures
enabled by default; joined with ``lang:NAME`` or ``all`` they also reach those
that are off by default (the shipped Rego and CEL rules, TRC-108):
``all+mitre:T1212``.

Without ``--rules`` the signatures enabled by default run. ``--disable`` takes IDs,
event names and ``lang:`` terms. A term selecting nothing is an error, as an
unknown ID is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from .dispatch import LoadedSignature
from .errors import ConfigError
from .operations.overrides import SEVERITIES, severity_value

__all__ = ["SelectionError", "parse_term", "select_signatures"]

_SEVERITY_RE: Final = re.compile(r"severity\s*(>=|<=|==|=|>|<)\s*(\S+)\Z", re.IGNORECASE)
_COMPARE: Final[dict[str, Callable[[int, int], bool]]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "=": lambda a, b: a == b,
    "==": lambda a, b: a == b,
}

Predicate = Callable[[LoadedSignature], bool]


class SelectionError(ConfigError):
    """A ``--rules`` term that cannot be read, or that selects nothing."""


def _keys(loaded: LoadedSignature) -> set[str]:
    return {loaded.metadata.id, loaded.metadata.event_name, f"lang:{loaded.signature.language}", "all"}


def _one(part: str) -> Predicate:
    match = _SEVERITY_RE.match(part)
    if match:
        op, wanted = match.groups()
        level = severity_value(wanted)
        if level is None:
            raise SelectionError(f"--rules {part}: severity is one of {', '.join(SEVERITIES)} or 0-4")
        compare = _COMPARE[op]
        return lambda s: s.metadata.severity is not None and compare(s.metadata.severity, level)
    kind, sep, value = part.partition(":")
    if sep and kind in ("tag", "category", "mitre"):
        if not value:
            raise SelectionError(f"--rules {part}: {kind}: needs a value")
        wanted_text = value.lower()
        if kind == "tag":
            return lambda s: wanted_text in {t.lower() for t in (s.metadata.tags or ())}
        if kind == "category":
            return lambda s: str(s.metadata.properties.get("Category", "")).lower() == wanted_text
        return lambda s: _technique_matches(str(s.metadata.properties.get("external_id", "")), wanted_text)
    if part.startswith("severity"):
        raise SelectionError(f"--rules {part}: expected severity>=LEVEL (or >, <=, <, =)")
    return lambda s: part in _keys(s)


def _technique_matches(external_id: str, wanted: str) -> bool:
    external_id = external_id.lower()
    return external_id == wanted or external_id.startswith(wanted + ".")


def parse_term(term: str, turned_on: frozenset[str] = frozenset()) -> Predicate:
    """The predicate of one ``--rules`` term (parts joined by ``+`` must all hold).

    :param turned_on: IDs that count as enabled by default (an override's ``enabled: true``).
    """
    parts = [part.strip() for part in term.split("+") if part.strip()]
    predicates = [_one(part) for part in parts]
    if not predicates:
        raise SelectionError(f"--rules {term!r}: empty")
    if all(_is_metadata(part) for part in parts):  # among the signatures enabled by default
        predicates.append(lambda s: s.enabled_by_default or s.metadata.id in turned_on)
    if len(predicates) == 1:
        return predicates[0]
    return lambda s: all(p(s) for p in predicates)


def _is_metadata(part: str) -> bool:
    return bool(_SEVERITY_RE.match(part)) or part.partition(":")[0] in ("tag", "category", "mitre")


def _terms(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(t.strip() for item in items for t in item.split(",") if t.strip()))


def select_signatures(
    available: Sequence[LoadedSignature],
    rules: Iterable[str],
    disabled: Iterable[str],
    *,
    enabled: Iterable[str] = (),
) -> list[LoadedSignature]:
    """The signatures ``rules`` and ``disabled`` choose, in ``available``'s order.

    :param enabled: IDs turned on although off by default (an override's ``enabled: true``).
    :raises SelectionError: for a malformed term, or a term selecting no available signature.
    """
    terms = _terms(rules)
    turned_on = frozenset(enabled)
    predicates = [(term, parse_term(term, turned_on)) for term in terms]
    disabled_terms = set(_terms(disabled))
    chosen = []
    matched: set[str] = set()
    for loaded in available:
        keys = _keys(loaded) - {"all"}
        if keys & disabled_terms:
            continue
        if predicates:
            hits = {term for term, predicate in predicates if predicate(loaded)}
            if not hits:
                continue
            matched |= hits
        elif not (loaded.enabled_by_default or loaded.metadata.id in turned_on):
            continue
        chosen.append(loaded)
    unknown = [term for term in terms if term not in matched]
    if unknown:
        # terms that match a disabled signature are not unknown
        really = [t for t in unknown if not any(parse_term(t)(s) for s in available)]
        if really:
            raise SelectionError(f"no such signature: {', '.join(really)} (see --list)")
    return chosen
