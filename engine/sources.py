"""Event sources: where a run's events come from, and what they did not deliver.

An :class:`EventSource` yields :class:`~pytracee.engine.events.Event` objects and
accounts for every record it read but did not deliver (:class:`SourceStats`: a
count per reason). The session drives every source the same way::

    for event in source:
        try:
            engine.dispatch(event)
        except MalformedEventError as exc:           # its args proved unreadable
            source.skip(event, "malformed args", str(exc))
    ...
    log.info(source.summary())                       # "3 events read, 0 skipped"
    source.close()                                   # by whoever opened it

The sources:

* :class:`~pytracee.engine.reader.EventReader`: files and standard input (``tracee-rules``);
* :class:`~pytracee.collector.source.LiveSource`: the eBPF collector (``tracee``);
* :class:`IterableSource`: any iterable of events (programs embedding the engine, tests),
  which is what :func:`as_source` makes of anything else.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, Protocol, runtime_checkable

from .events import Event

__all__ = [
    "REPORTED_PER_PLACE",
    "EventSource",
    "IterableSource",
    "SkipLog",
    "SourceStats",
    "as_source",
    "snapshot_counts",
]

#: How many bad records per place (file, stream) are described before the rest are only counted.
REPORTED_PER_PLACE: Final = 20


@dataclass(slots=True)
class SourceStats:
    """What a source read: events delivered and records skipped, by reason."""

    events: int = 0
    skipped_by_reason: Counter[str] = field(default_factory=Counter)
    #: Of ``events``: valid events no consumer wanted, so not decoded nor delivered.
    undecoded: int = 0

    @property
    def skipped(self) -> int:
        """Records that were not delivered."""
        return sum(self.skipped_by_reason.values())

    def records(self) -> int:
        """Records read so far, delivered or skipped (safe to ask while another thread counts)."""
        return self.events + sum(snapshot_counts(self.skipped_by_reason).values())

    def copy(self) -> SourceStats:
        """A copy, safe to take while another thread counts."""
        return SourceStats(self.events, Counter(snapshot_counts(self.skipped_by_reason)), self.undecoded)

    def describe(self, delivered: str = "read") -> str:
        """``"3 events read, 2 skipped (invalid JSON: 1, unknown event: 1)"``."""
        text = f"{self.events} events {delivered}, {self.skipped} skipped"
        if self.skipped:
            text += " (" + ", ".join(f"{r}: {n}" for r, n in self.skipped_by_reason.most_common() if n) + ")"
        return text


def snapshot_counts(counts: Counter[str]) -> dict[str, int]:
    """A copy of a counter another thread may be adding to."""
    for _ in range(10):
        try:
            return dict(counts)
        except RuntimeError:  # changed size while copied
            continue
    return {}


@runtime_checkable
class EventSource(Protocol):
    """What the session reads events from.

    ``stats`` counts the events delivered and, by reason, the records skipped or lost;
    nothing is dropped without being counted there.
    """

    stats: SourceStats

    def __iter__(self) -> Iterator[Event]:
        """The events, in order; may raise :class:`~pytracee.engine.errors.InputError`
        (the input cannot be read: the run fails)."""
        ...

    def where(self, event: Event) -> str:
        """Where ``event`` came from, for messages: ``"file:line"``, ``"live"``, ..."""
        ...

    def skip(self, event: Event, reason: str, detail: str) -> None:
        """Count ``event``, already delivered, as skipped after all (e.g. its args proved
        unreadable), and report it. A strict source raises
        :class:`~pytracee.engine.errors.InputError` instead."""
        ...

    def summary(self) -> str:
        """One line on what was read, skipped and lost, for stderr."""
        ...

    def close(self) -> None:
        """Release what the source holds (files, the kernel's programs); idempotent."""
        ...

    # Optional: ``def event_done(self, event: Event) -> None``. When a source has it, the
    # session calls it after ``event`` went through the signatures and each of its findings
    # through the outputs (also after ``skip``): a source that acknowledges its input (the
    # JetStream source, engine/bus/source.py) acknowledges only what was fully processed.


class SkipLog:
    """Reports skipped records on a logger: the first :data:`REPORTED_PER_PLACE` of
    each place in full, then one note that the rest are only counted."""

    def __init__(self, logger: logging.Logger, limit: int = REPORTED_PER_PLACE) -> None:
        self.logger = logger
        self.limit = limit
        self._shown: Counter[str] = Counter()

    def __call__(self, place: str, message: str) -> None:
        self._shown[place] += 1
        shown = self._shown[place]
        if shown <= self.limit:
            self.logger.warning("skipped record %s", message)
        if shown == self.limit:
            self.logger.warning("%s: further bad records are counted but not shown", place)


class IterableSource:
    """Any iterable of events as an :class:`EventSource` (counted as they are delivered).

    :param events: the events; an iterator is consumed once.
    :param name: what :meth:`where` says of events that do not know where they were read.
    """

    def __init__(self, events: Iterable[Event], name: str = "events") -> None:
        self.events = events
        self.name = name
        self.stats = SourceStats()
        self._log = SkipLog(logging.getLogger("pytracee.input"))

    def __iter__(self) -> Iterator[Event]:
        stats = self.stats
        for event in self.events:
            stats.events += 1
            yield event

    def where(self, event: Event) -> str:
        return event.location or self.name

    def skip(self, event: Event, reason: str, detail: str) -> None:
        self.stats.events -= 1
        self.stats.skipped_by_reason[reason] += 1
        where = self.where(event)
        self._log(where, f"{where}: {reason}: {detail}")

    def summary(self) -> str:
        return self.stats.describe()

    def close(self) -> None:
        """Nothing to release: the iterable belongs to the caller."""


def as_source(events: EventSource | Iterable[Event]) -> EventSource:
    """``events`` itself when it is an :class:`EventSource`, else an :class:`IterableSource` of it."""
    return events if isinstance(events, EventSource) else IterableSource(events)
