"""The live event source: the collector's events, as the session reads them.

:class:`LiveSource` is the :class:`~pytracee.engine.sources.EventSource` of the
``tracee`` command. It polls the :class:`~pytracee.collector.collector.Collector`
in batches of :data:`POLL_BATCH`, applies the user-space part of the selection
(scope and event filters the kernel does not apply, and tracee's own events),
prints the events asked for (``tracee -e ... -o json``), and yields the rest of
the way to the signatures. On :meth:`LiveSource.request_stop` the programs are
detached and what the kernel buffer still holds is read for up to
:data:`STOP_DRAIN_SECONDS` (an attack just before Ctrl-C is still reported).

Its :class:`~pytracee.engine.sources.SourceStats` count the events traced and, by
reason, those lost in the kernel, left unread in the kernel buffer at the stop,
and undecodable; :meth:`LiveSource.summary` is tracee's summary line.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import time
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any, Final

from pytracee.engine.events import Event
from pytracee.engine.sources import SkipLog, SourceStats

from . import wire

if TYPE_CHECKING:
    from .collector import Collector
    from .filters import Selection
    from .printers import EventPrinter

__all__ = [
    "GC_YOUNG_THRESHOLD",
    "LEFT",
    "LOST",
    "LOST_WARNING_INTERVAL",
    "POLL_BATCH",
    "STOP_DRAIN_SECONDS",
    "STOP_SIGNALS",
    "UNDECODABLE",
    "LiveSource",
]

#: Events decoded per poll: they are all held in memory until the signatures have seen them.
POLL_BATCH: Final = 1024
#: After a stop is requested, how long the events still in the kernel buffer are read.
STOP_DRAIN_SECONDS: Final = 5.0
#: Reasons in :attr:`LiveSource.stats`: dropped in the kernel (the buffer was full) ...
LOST: Final = "lost"
#: ... still in the kernel buffer when the stop (or the drain's deadline) came ...
LEFT: Final = "left unread in the kernel buffer"
#: ... and records the decoder could not read.
UNDECODABLE: Final = "undecodable"
_KERNEL_REASONS: Final = (LOST, LEFT, UNDECODABLE)
#: Seconds between two warnings about lost events (each says how many since the last).
LOST_WARNING_INTERVAL: Final = 1.0
#: The cyclic garbage collector's first threshold while events are read. A batch's events are
#: freed by reference counting once the signatures had them; under the default (700 objects)
#: the collector would walk each batch's dicts several times while they are still in use.
GC_YOUNG_THRESHOLD: Final = 200_000
#: The signals that ask tracing to stop.
STOP_SIGNALS: Final = frozenset({signal.SIGINT, signal.SIGTERM})

log = logging.getLogger("pytracee.collector")


class LiveSource:
    """The events of a :class:`~pytracee.collector.collector.Collector`, as an event source.

    :param collector: configured, not yet started (:meth:`start` attaches it).
    :param selection: the scope and event filters applied in user space.
    :param printer: prints the events named in ``printed`` as they are read (or None).
    :param printed: the event names to print.
    :param on_drained: called when the drain after a stop ends, just before the
        iteration does (``tracee`` ignores further signals there, so the signatures
        and outputs finish uninterrupted).
    """

    def __init__(
        self,
        collector: Collector,
        selection: Selection,
        printer: EventPrinter | None = None,
        printed: Collection[str] = (),
        *,
        on_drained: Callable[[], None] | None = None,
        batch: int = POLL_BATCH,
        drain_seconds: float = STOP_DRAIN_SECONDS,
    ) -> None:
        self.collector = collector
        self.selection = selection
        self.printer = printer
        self.printed_events = frozenset(printed) if printer is not None else frozenset()
        self.on_drained = on_drained
        self.batch = batch
        self.drain_seconds = drain_seconds
        self.stats = SourceStats()
        #: Events printed so far.
        self.printed = 0
        #: Polls of the kernel buffer so far (the health check's sign of life).
        self.polls = 0
        self.stop_requested = False
        self._reported_lost = 0
        self._closed = False
        self._log = SkipLog(log)

    # --- tracing -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the selection's clock (``container=new``), load and attach the programs.

        libbpf calls back into Python while loading; a signal raised in such a callback
        would be swallowed by ctypes, so SIGINT and SIGTERM wait until the programs are
        attached.
        """
        self.selection.start()
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            self.collector.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def request_stop(self) -> None:
        """Stop tracing at the next poll, then drain the kernel buffer (safe in a signal handler)."""
        self.stop_requested = True

    def __iter__(self) -> Iterator[Event]:
        thresholds = gc.get_threshold()
        gc.set_threshold(max(thresholds[0], GC_YOUNG_THRESHOLD), *thresholds[1:])
        try:
            for batch in self._batches():
                for raw in batch:
                    yield Event(raw)
        finally:
            gc.set_threshold(*thresholds)

    def pump(self) -> None:
        """Trace, print and count until the stop, handing no event on (``tracee`` without signatures).

        When every traced event is printed as JSON and no filter is left to user space, the
        events are encoded from the records straight to JSON lines (no dict per event; see
        :meth:`~pytracee.collector.collector.Collector.poll_json`).
        """
        printer = self.printer
        fast = (
            printer is not None
            and printer.takes_json_lines
            and not (self.selection.scope or self.selection.per_event)
            and set(getattr(self.collector, "events", ())) <= self.printed_events
            and getattr(self.collector, "capture", None) is None  # capture reads the events' dicts
        )
        if not fast or printer is None:
            for _ in self._batches():
                pass
            return
        as_dicts = {wire.EVENTS[name].id for name in printer.events_to_render() if name in wire.EVENTS}

        def poll(timeout_ms: int, max_events: int) -> list[Any]:
            return self.collector.poll_json(timeout_ms, max_events, as_dicts)

        for _ in self._batches(poll):
            pass

    def _batches(self, poll: Callable[[int, int], list[Any]] | None = None) -> Iterator[list[dict[str, Any]]]:
        """The accepted events of each poll, printed (and flushed) before they are handed on.

        ``poll``: :meth:`Collector.poll` (default) or a poll that hands out JSON lines (bytes)
        for some events; those are only printed (the kernel already left tracee out).
        """
        collector, selection, printed, stats = self.collector, self.selection, self.printed_events, self.stats
        poll = poll or collector.poll
        accepts = selection.accepts
        printer = self.printer
        own_pid = os.getpid()
        deadline: float | None = None
        next_warning = 0.0
        while True:
            if self.stop_requested and deadline is None:
                collector.detach()
                deadline = time.monotonic() + self.drain_seconds
                log.info("stopping: reading what the kernel buffer still holds (Ctrl-C again to stop now)")
            batch = poll(0 if deadline is not None else 100, self.batch)
            self.polls += 1
            if deadline is not None and (not batch or time.monotonic() > deadline):
                if batch:  # decoded too late: counted with what is left
                    stats.skipped_by_reason[LEFT] += len(batch)
                if self.on_drained is not None:
                    self.on_drained()
                return
            # (scope filters can be added by start(): looked at for every batch)
            if selection.scope or selection.per_event:
                batch = [raw for raw in batch if raw.get("hostProcessId") != own_pid and accepts(raw)]
            else:
                batch = [raw for raw in batch if type(raw) is bytes or raw.get("hostProcessId") != own_pid]
            stats.events += len(batch)
            if printer is not None and printed:
                shown = [raw for raw in batch if type(raw) is bytes or raw["eventName"] in printed]
                if shown:
                    printer.print_many(shown)
                    printer.flush()
                    self.printed += len(shown)
            if batch:
                yield batch
            lost = collector.lost
            if lost > self._reported_lost and time.monotonic() >= next_warning:
                # at most one warning a second while the buffer overflows; the summary has the total
                log.warning("lost %d events (%d in total): %s", lost - self._reported_lost, lost, collector.lost_reason)
                self._reported_lost = lost
                next_warning = time.monotonic() + LOST_WARNING_INTERVAL
            self._count_kernel_losses(lost)

    def _count_kernel_losses(self, lost: int) -> None:
        """Copy the collector's running totals (events lost, records undecodable) into :attr:`stats`."""
        counts = self.stats.skipped_by_reason
        for reason, value in ((LOST, lost), (UNDECODABLE, self.collector.malformed)):
            if value:
                counts[reason] = value

    def close(self) -> None:
        """Detach, count what is left in the kernel buffer, and free the programs (idempotent)."""
        if self._closed:
            return
        self._closed = True
        left = self.collector.discard()
        if left:
            self.stats.skipped_by_reason[LEFT] += left
        self.collector.stop()
        self._count_kernel_losses(self.collector.lost)

    # --- the EventSource protocol ----------------------------------------------------------

    def where(self, event: Event) -> str:
        return "live"

    def skip(self, event: Event, reason: str, detail: str) -> None:
        """Count a traced event as skipped after all (its args proved unreadable)."""
        self.stats.events -= 1
        self.stats.skipped_by_reason[reason] += 1
        self._log("live", f"live {event.name} event: {reason}: {detail}")

    @property
    def incomplete(self) -> bool:
        """Events were lost in the kernel or left unread at the stop (the summary is a warning)."""
        counts = self.stats.skipped_by_reason
        return bool(counts[LOST] or counts[LEFT])

    def summary(self) -> str:
        """``"120 events traced, 3 printed, 0 lost"``, then the rest that is not zero."""
        counts = self.stats.skipped_by_reason
        lost = counts[LOST]
        text = f"{self.stats.events} events traced, {self.printed} printed, {lost} lost"
        if lost:
            text += f" ({self.collector.lost_reason})"
        if counts[LEFT]:
            text += f", {counts[LEFT]} left unread in the kernel buffer at the stop"
        filtered = getattr(self.collector, "filtered", 0)
        if filtered:
            text += f", {filtered} filtered in the kernel (data filters)"
        truncated = self.collector.truncated
        if truncated:
            text += f", {truncated} argument values truncated"
        if counts[UNDECODABLE]:
            text += f", {counts[UNDECODABLE]} undecodable records skipped"
        others = [(reason, n) for reason, n in counts.most_common() if n and reason not in _KERNEL_REASONS]
        if others:
            text += f", {sum(n for _, n in others)} skipped (" + ", ".join(f"{r}: {n}" for r, n in others) + ")"
        return text
