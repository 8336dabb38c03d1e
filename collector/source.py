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

import logging
import os
import signal
import time
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any, Final

from pytracee.engine.events import Event
from pytracee.engine.sources import SkipLog, SourceStats

if TYPE_CHECKING:
    from .collector import Collector
    from .filters import Selection
    from .printers import EventPrinter

__all__ = ["LEFT", "LOST", "POLL_BATCH", "STOP_DRAIN_SECONDS", "STOP_SIGNALS", "UNDECODABLE", "LiveSource"]

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
        collector, accepts, printed, stats = self.collector, self.selection.accepts, self.printed_events, self.stats
        print_event = self.printer.print if self.printer is not None else _ignore
        own_pid = os.getpid()
        deadline: float | None = None
        while True:
            if self.stop_requested and deadline is None:
                collector.detach()
                deadline = time.monotonic() + self.drain_seconds
                log.info("stopping: reading what the kernel buffer still holds (Ctrl-C again to stop now)")
            batch = collector.poll(0 if deadline is not None else 100, self.batch)
            self.polls += 1
            if deadline is not None and (not batch or time.monotonic() > deadline):
                if batch:  # decoded too late: counted with what is left
                    stats.skipped_by_reason[LEFT] += len(batch)
                if self.on_drained is not None:
                    self.on_drained()
                return
            for raw in batch:
                if raw.get("hostProcessId") == own_pid or not accepts(raw):
                    continue
                stats.events += 1
                if raw["eventName"] in printed:
                    print_event(raw)
                    self.printed += 1
                yield Event(raw)
            lost = collector.lost
            if lost > self._reported_lost:
                log.warning("lost %d events (%d in total): %s", lost - self._reported_lost, lost, collector.lost_reason)
                self._reported_lost = lost
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
        truncated = self.collector.truncated
        if truncated:
            text += f", {truncated} argument values truncated"
        if counts[UNDECODABLE]:
            text += f", {counts[UNDECODABLE]} undecodable records skipped"
        others = [(reason, n) for reason, n in counts.most_common() if n and reason not in _KERNEL_REASONS]
        if others:
            text += f", {sum(n for _, n in others)} skipped (" + ", ".join(f"{r}: {n}" for r, n in others) + ")"
        return text


def _ignore(raw: dict[str, Any]) -> None:
    """The printer of a source that prints nothing."""
