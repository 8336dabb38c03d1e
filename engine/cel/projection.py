"""The part of an event a CEL engine is given: only the top-level fields the expressions read.

cel-cpp converts the whole event into its own values when an expression first
reads ``event`` (some 13 µs for a 1.2 KB event), and cel-python converts it
before evaluating, although a rule reads one or two fields (``event.eventName``,
``event.processName``). :func:`referenced_fields` finds, from a parse tree
(:mod:`.parsetree`), the fields an expression can read: every use of
``event`` must be ``event.field``, ``has(event.field)`` or ``event["field"]``
with a literal name. Any other use (``event`` as a value, a computed key,
``event`` bound by a comprehension) needs the whole event, and then nothing
is left out.

Handing the engine ``{field: event[field]}`` for those fields (the ones the
event has) instead of the event is exactly equivalent for such expressions:
each reads what it would have read, and a field the event lacks is missing
from both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .parsetree import Call, Comprehension, Const, CreateList, CreateMap, Ident, Node, ParsedExpression, Select

__all__ = ["WHOLE_EVENT", "project", "referenced_fields", "union"]

#: "Every field" (an expression uses the event as a whole).
WHOLE_EVENT = None


def referenced_fields(parsed: ParsedExpression) -> frozenset[str] | None:
    """The top-level event fields the expression reads, or :data:`WHOLE_EVENT`."""
    fields: set[str] = set()
    return frozenset(fields) if _collect(parsed.root, fields) else WHOLE_EVENT


def union(field_sets: Iterable[frozenset[str] | None]) -> frozenset[str] | None:
    """The fields several expressions read together (:data:`WHOLE_EVENT` if any needs all)."""
    result: set[str] = set()
    for fields in field_sets:
        if fields is WHOLE_EVENT:
            return WHOLE_EVENT
        result |= fields
    return frozenset(result)


def project(raw: Mapping[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    """``raw`` with only ``fields`` (those it has)."""
    return {name: raw[name] for name in fields if name in raw}


_EVENT_NAMES = frozenset({"event", ".event"})  # ``.event``: the same variable, named from the root scope


def _is_event(node: Node) -> bool:
    return isinstance(node, Ident) and node.name in _EVENT_NAMES


def _collect(node: Node, fields: set[str]) -> bool:
    """Add the fields ``node`` reads to ``fields``; False when it needs the whole event."""
    if isinstance(node, Ident):
        return not _is_event(node)  # a bare ``event``
    if isinstance(node, Select):
        if _is_event(node.operand):
            fields.add(node.field)
            return True
        return _collect(node.operand, fields)
    if isinstance(node, Call):
        if (
            node.function == "_[_]"
            and len(node.args) == 2
            and _is_event(node.args[0])
            and isinstance(node.args[1], Const)
            and type(node.args[1].value) is str
        ):
            fields.add(node.args[1].value)
            return True
        return all(_collect(operand, fields) for operand in node.operands)
    if isinstance(node, CreateList):
        return all(_collect(element, fields) for element in node.elements)
    if isinstance(node, CreateMap):
        return all(_collect(part, fields) for entry in node.entries for part in entry)
    if isinstance(node, Comprehension):
        if {node.iter_var, node.iter_var2, node.accu_var} & _EVENT_NAMES:
            return False  # ``event`` means something else inside: keep it simple, give everything
        parts = (node.iter_range, node.accu_init, node.loop_condition, node.loop_step, node.result)
        return all(_collect(part, fields) for part in parts)
    return True  # a literal
