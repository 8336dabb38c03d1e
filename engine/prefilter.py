"""Which records a replay must decode: the events some consumer wants, and their filters.

Before a record is decoded, the reader asks two questions of its envelope
(:mod:`~pytracee.engine.envelope`):

* is its name in ``wanted_events`` (delivered whatever its arguments)?
* else, is there an *admission* for its name: a predicate over its origin and
  arguments that is false only when no signature could receive it (the
  signature's origin and data filters, merged per event as the engine's own
  routes merge them, :meth:`~pytracee.engine.dispatch.Engine.admission`)?

:func:`plan_decoding` computes both from the engine. A record passing neither is
counted as read and left undecoded; every signature still receives exactly the
events it would receive if everything were decoded, in the same order.
Consumers other than signatures (a process tree, metrics) add the names they
need to ``wanted_events``; a name there is delivered in full even if signatures
filter it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .dispatch import Engine
from .envelope import Envelope
from .filtermemo import remembered
from .selectors import ANY, ORIGINS, Accept

__all__ = ["Admission", "plan_decoding"]


def plan_decoding(engine: Engine, source: str = "tracee") -> tuple[set[str] | None, dict[str, Admission]]:
    """``(wanted_events, admissions)`` for a reader feeding ``engine``.

    ``wanted_events`` is ``None`` when a signature selects every event (``"*"``).
    """
    names = engine.wanted_event_names(source)
    if names is None:
        return None, {}
    wanted: set[str] = set()
    admissions: dict[str, Admission] = {}
    for name in sorted(names):
        per_origin = {origin: engine.admission(name, origin, source) for origin in ORIGINS}
        if all(rule is True for rule in per_origin.values()):
            wanted.add(name)
        elif any(rule is not False for rule in per_origin.values()):
            filtered = frozenset(
                arg
                for loaded in engine.signatures
                for selector in loaded.selectors
                if selector.name == name and selector.source in (source, ANY)
                for arg in selector.filters
            )
            admissions[name] = Admission(per_origin, filtered)
    return wanted, admissions


class Admission:
    """The test of one event's records: true when the record must be decoded and delivered.

    ``admission(envelope)`` tests an :class:`~.envelope.Envelope`;
    :meth:`admits` tests what the compiled scanner (:mod:`.recscan`) read, the origin
    and the values of :attr:`arg_names`. Both give the same answer for the same record.
    """

    __slots__ = ("_per_origin", "arg_names")

    def __init__(self, per_origin: Mapping[str, Accept | bool], filtered: frozenset[str]) -> None:
        if len(filtered) == 1:  # the answer depends on one value: remembered per value
            (only,) = filtered
            tests: dict[int, Accept] = {}
            per_origin = {
                origin: rule if type(rule) is bool else tests.setdefault(id(rule), remembered(rule, only))
                for origin, rule in per_origin.items()
            }
        self._per_origin = dict(per_origin)
        #: The arguments the data filters read.
        self.arg_names: tuple[str, ...] = tuple(sorted(filtered))

    def __call__(self, head: Envelope) -> bool:
        rule = self._per_origin[head.origin]
        if rule is True or rule is False:
            return rule
        args = head.arg_values(self.arg_names)
        return True if args is None else rule(args)  # unreadable args: decoded, reported in full

    def admits(self, origin: str, args: Mapping[str, Any]) -> bool:
        """The answer for a record of ``origin`` whose arguments :attr:`arg_names` are ``args``
        (``{name: value}`` of those present, as :attr:`.events.Event.args` has them)."""
        rule = self._per_origin[origin]
        if rule is True or rule is False:
            return rule
        return rule(args)
