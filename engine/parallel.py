"""Replay on several cores: the events sharded over worker processes (``tracee-rules --workers N``).

After the session is loaded, :func:`replay_sharded` forks ``N`` workers. Each one
reads the whole input but decodes and dispatches only the events of its shard
(:func:`~pytracee.engine.sharding.shard_of`), with its own copy of every signature:

* **by container**: every event with a container id goes to the shard of that
  container, whatever process it comes from;
* **by process** otherwise: every event of one host process (``hostProcessId``,
  all its threads) goes to the shard of that process.

Ordering guarantee: each signature instance sees, in input order, every event of
each process and of each container of its shard, so state kept per process
(PYT-1's exec pairing) or per container (TRC-1013's API server connection) is
exactly what one process would keep. Each worker's process tree (ancestry on
findings) is the one process's too: it is shown every fork, exec and exit, and
learns every process from the events their owners decode, in input order (read
in place from other shards' records; the compiled scanner pauses after a record
that changes the tree, so that what it asks the tree of the next ones is answered
as one process's tree would answer). Not guaranteed: an order between events of
different shards, and state that spans host processes (a signature relating a
host parent to its child, a count over the whole host) sees only its shard's
part; such signatures need ``--workers 1``. Signature events derived from
findings are fed back within the worker that made the finding.

Findings travel to the main process (pickled, over one pipe per worker), which
passes them through the finding hooks and outputs as they arrive: one shard's
findings keep their input order; findings of different shards interleave. Each
worker also reports its counts and position every :data:`PROGRESS_INTERVAL`
seconds, so that the main process's metrics, health check and progress line follow
the run (its own reader reads nothing): the records and findings of all workers,
and the bytes read by the slowest.
Finding each record's owner is the one walk every worker would repeat over the whole input:
with a single regular file, ``tracee-rules`` starts a walker process before the signatures load
(:mod:`~pytracee.engine.walkahead`), and the workers place the records it reached from its ring
(the same answers) and walk only the others themselves.
Each record has one owner (:meth:`~pytracee.engine.reader.EventReader` ``shard``):
bad records are counted and reported once; the counts of all workers are added up
for the summary, which shows each worker's context (process tree, containers, hashes) once
when they agree, else per worker. Standard input cannot be
read by several processes: ``--workers`` needs files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import struct
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

from .dispatch import Engine, EngineStats
from .errors import ExitStatus, InputError, Interrupted, MalformedEventError, StopRun
from .findings import Finding
from .lifetime import end_with, libc_prctl
from .operations.progress import InputPosition
from .reader import EventReader
from .session import Session
from .sources import SourceStats

if TYPE_CHECKING:
    from .operations.metrics import SignatureTimings

__all__ = ["replay_sharded"]

log = logging.getLogger("pytracee")

#: Seconds between a worker's reports of its counts and position to the main process.
PROGRESS_INTERVAL: Final = 0.5

_HEADER: Final = struct.Struct("<I")
_STATUS_ORDER: Final = (ExitStatus.OK, ExitStatus.INTERRUPTED, ExitStatus.FAILED)


def replay_sharded(
    session: Session,
    make_reader: Callable[[tuple[int, int]], EventReader],
    workers: int,
    view: EventReader | None = None,
    timings: SignatureTimings | None = None,
) -> ExitStatus:
    """Replay in ``workers`` forked processes; the exit status, as :meth:`Session.run` returns it.

    :param make_reader: builds the reader of one shard, ``(index, count)``.
    :param view: a reader of the same inputs that the metrics and the progress line watch: its
        counts and position follow the workers' as they report them (it reads nothing itself).
    :param timings: the metrics' signature times (the engine instrumented with them): they show
        the sums of the workers' as they report them.
    """
    engine = session.engine
    if engine is None:
        raise RuntimeError("Session.load() must be called before replay_sharded()")
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    channels: dict[int, int] = {}  # read end -> worker index
    pids: list[int] = []
    hangups: list[int] = []  # noted by the handler, reported by the loop (a handler must not log)
    previous = signal.signal(signal.SIGHUP, lambda signum, frame: hangups.append(signum))  # the default ends the run
    parent, prctl = os.getpid(), libc_prctl()
    try:
        for index in range(workers):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker: never returns
                code = 1
                try:
                    os.close(read_end)
                    for other in channels:
                        os.close(other)
                    end_with(parent, prctl)
                    code = _work(session, engine, make_reader((index, workers)), write_end, index, timings)
                except BaseException:
                    log.exception("replay worker %d failed", index)
                finally:
                    os._exit(code)
            os.close(write_end)
            channels[read_end] = index
            pids.append(pid)
        return _collect(session, engine, channels, pids, view, timings, hangups)
    finally:
        signal.signal(signal.SIGHUP, previous)


# --- the workers -------------------------------------------------------------------------------


def _work(
    session: Session, engine: Engine, reader: EventReader, fd: int, index: int, timings: SignatureTimings | None
) -> int:
    """One shard's replay; everything it finds goes to ``fd``. The process's exit code.

    The shard keeps its own context (process tree, syscall pairs, …) from the events it reads,
    and runs the ``tracee_finding_enrich`` hooks on each finding before it leaves (the context
    itself stays in the worker); the main process filters and outputs it.
    """
    context = session.context
    sending = threading.Lock()  # the loop and the progress reports share the pipe

    def send(*message: Any) -> None:
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        data = memoryview(_HEADER.pack(len(payload)) + payload)
        with _signals_held(), sending:  # a message is sent whole or not at all
            while data:
                data = data[os.write(fd, data) :]

    enrich = session.pm.hook.tracee_finding_enrich

    def forward(finding: Finding) -> None:
        # enriched here, where the context (process tree, syscall pairs, ...) lives; delivered there
        session.write_context(finding)
        try:
            enrich(finding=finding)
        except Exception as exc:  # noqa: BLE001 - a broken plugin loses this finding, counted there
            send("lost", f"a finding of {finding.sig_metadata.id} was lost in a plugin: {type(exc).__name__}: {exc}")
            return
        finding.enriched = True
        try:  # (the event leaves without its context: Event.__getstate__)
            send("finding", finding)
        except Exception as exc:  # noqa: BLE001 - whatever a signature put in its finding
            send("lost", f"a finding of {finding.sig_metadata.id} could not leave its worker: {exc}")

    engine.on_finding = forward
    engine.stats = EngineStats()  # this worker's own counts (the parent's were copied by fork)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C is for the main process,
    signal.signal(signal.SIGTERM, _interrupt)  # which passes it on as SIGTERM
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a terminal's hangup too (the main process warns)
    status = ExitStatus.OK
    dispatch = engine.dispatch
    observe = context.observe if context is not None else None
    position = InputPosition(reader)

    def report() -> None:
        send(
            "progress",
            reader.stats.copy(),
            engine.stats.copy(),
            position.bytes_read(),
            timings.snapshot() if timings is not None else None,
        )

    stop = threading.Event()
    reporter = threading.Thread(target=_report_every, args=(report, stop), name="progress", daemon=True)
    with _signals_held():  # born with SIGINT and SIGTERM blocked: they are the main thread's to take
        reporter.start()
    try:
        for event in reader:
            try:
                if observe is not None:
                    observe(event)
                dispatch(event)
            except MalformedEventError as exc:
                reader.skip(event, "malformed args", str(exc))
    except InputError as exc:  # a bad record has one owner: only that worker reports it
        log.error("%s", exc)
        status = ExitStatus.FAILED
    except KeyboardInterrupt:
        status = ExitStatus.INTERRUPTED
    except StopRun as exc:
        log.error("stopped: %s", exc)
        status = ExitStatus.FAILED
    try:
        if engine.complete() and status == ExitStatus.OK:
            status = ExitStatus.INTERRUPTED
    except Interrupted:
        status = ExitStatus.INTERRUPTED
    with _signals_held():  # from here the worker ends as it is: its counts are sent whole
        stop.set()
        reporter.join()
        reader.close()
        report()  # the last counts, signature times included
        send("done", status, reader.stats, engine.stats, context.describe() if context is not None else "")
        os.close(fd)
    return 0


def _report_every(report: Callable[[], None], stop: threading.Event) -> None:
    """A worker's reporting thread: ``report()`` every :data:`PROGRESS_INTERVAL` until ``stop``."""
    while not stop.wait(PROGRESS_INTERVAL):
        try:
            report()
        except OSError:  # the main process is gone: the worker's loop finds out too
            return


# --- the main process --------------------------------------------------------------------------


def _collect(
    session: Session,
    engine: Engine,
    channels: dict[int, int],
    pids: list[int],
    view: EventReader | None,
    timings: SignatureTimings | None,
    hangups: list[int],
) -> ExitStatus:
    """Deliver the workers' findings as they come; then the merged counts and the exit status."""
    collector = _Collector(session, engine, channels, view, timings)
    while collector.buffers or collector.pending:
        try:
            collector.receive()
            if hangups:
                hangups.clear()
                log.warning("SIGHUP: a replay on several workers does not reload its configuration and rules")
        except KeyboardInterrupt:  # the workers finish their signatures; keep collecting
            if collector.status == ExitStatus.OK:
                log.warning("interrupted; finishing the signatures and outputs")
            collector.worst(ExitStatus.INTERRUPTED)
            for pid in pids:
                _signal(pid, signal.SIGTERM)
    for index, pid in enumerate(pids):
        _, wait_status = os.waitpid(pid, 0)
        if index not in collector.done:
            log.error("replay worker %d stopped before the end (%s)", index, _describe_exit(wait_status))
            collector.worst(ExitStatus.FAILED)
    collector.publish(finished=True)
    session.input_stats = collector.stats
    session.context_description = _contexts_described(collector.contexts, len(pids))
    return _finish(session, engine, collector.status)


class _Collector:
    """The main process's side of the pipes: findings delivered, counts added up."""

    def __init__(
        self,
        session: Session,
        engine: Engine,
        channels: dict[int, int],
        view: EventReader | None,
        timings: SignatureTimings | None,
    ) -> None:
        self.session = session
        self.engine = engine
        self.channels = channels
        self.view = view
        self.timings = timings
        self.times: dict[int, Any] = {}  # each worker's latest signature times
        self.buffers = {fd: b"" for fd in channels}  # the open pipes and their partial messages
        self.pending: deque[tuple[int, tuple[Any, ...]]] = deque()  # messages read, not handled yet
        self.done: set[int] = set()  # workers that sent their counts
        self.contexts: dict[int, str] = {}  # what each worker's context did (its summary line)
        self.base = engine.stats  # the main process's own counts (before the workers')
        # each worker's latest counts (progress reports, then its final ones) and bytes read
        self.counts: dict[int, tuple[SourceStats, EngineStats]] = {}
        self.read: dict[int, int] = {}
        self.total = InputPosition(view).total if view is not None else None
        self.stats = SourceStats()
        self.status = ExitStatus.OK
        self.poller = select.poll()
        for fd in channels:
            self.poller.register(fd, select.POLLIN)

    def worst(self, status: ExitStatus) -> None:
        self.status = max(self.status, status, key=_STATUS_ORDER.index)

    def receive(self) -> None:
        """Wait for the workers and handle what they sent. The messages read wait in
        :attr:`pending` until handled: a Ctrl-C (KeyboardInterrupt) while one is handled loses
        none of the others."""
        if not self.pending:
            ready = self.poller.poll()
            with _signals_held():  # what is read reaches the pending messages (a read never blocks)
                for fd, _ in ready:
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        self.poller.unregister(fd)
                        os.close(fd)
                        if self.buffers.pop(fd):
                            log.error("replay worker %d ended in the middle of a message", self.channels[fd])
                            self.worst(ExitStatus.FAILED)
                        continue
                    self.buffers[fd], messages = _messages(self.buffers[fd] + chunk)
                    self.pending.extend((self.channels[fd], message) for message in messages)
        while self.pending:
            self.handle(*self.pending.popleft())

    def handle(self, worker: int, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "finding":
            self.session.deliver(message[1])
        elif kind == "lost":
            self.session.output_failed(message[1])
        elif kind == "progress":
            self.counts[worker] = message[1], message[2]
            self.read[worker] = message[3]
            if message[4] is not None:
                self.times[worker] = message[4]
            self.publish()
        elif kind == "done":
            self.done.add(worker)
            self.worst(message[1])
            self.counts[worker] = message[2], message[3]
            self.contexts[worker] = message[4]
            self.publish()

    def publish(self, *, finished: bool = False) -> None:
        """The workers' latest counts added up, where the summary, the metrics and the progress
        line read them; the view's position: the bytes read by the slowest worker still reading."""
        stats, engine = SourceStats(), self.base.copy()
        for source, counts in self.counts.values():
            _add(stats, engine, source, counts)
        self.stats, self.engine.stats = stats, engine  # each replaced whole: other threads read them
        if self.timings is not None:
            self.timings.set_totals(self.times.values())
        if self.view is not None:
            self.view.stats = stats
            # a worker that did not finish stays where it last was, also once the run is over
            reading = [self.read.get(worker, 0) for worker in self.channels.values() if worker not in self.done]
            self.view.workers_position = (min(reading) if reading else self.total or 0, bool(reading) and not finished)


def _finish(session: Session, engine: Engine, status: ExitStatus) -> ExitStatus:
    if status == ExitStatus.OK and session.output_failures:
        status = ExitStatus.FAILED
    if status == ExitStatus.OK and session.config.strict and engine.stats.errors_by_signature:
        status = ExitStatus.FAILED
    status = session.finish(status)
    if status == ExitStatus.OK and session.output_failures:
        status = ExitStatus.FAILED
    return status


def _contexts_described(contexts: dict[int, str], workers: int) -> str:
    """The summary line of the workers' contexts (of those that finished): each follows the whole
    input's processes, so one line when all ``workers`` agree, else one per worker."""
    lines = set(contexts.values())
    if len(contexts) == workers and len(lines) == 1:
        line = lines.pop()
        return f"in each of {workers} workers: {line}" if line else ""
    return "; ".join(f"worker {index}: {contexts[index]}" for index in sorted(contexts) if contexts[index])


def _messages(buffer: bytes) -> tuple[bytes, list[tuple[Any, ...]]]:
    """The complete messages at the start of ``buffer``, and what is left of it."""
    messages = []
    start = 0
    while len(buffer) - start >= _HEADER.size:
        (size,) = _HEADER.unpack_from(buffer, start)
        end = start + _HEADER.size + size
        if len(buffer) < end:
            break
        messages.append(pickle.loads(buffer[start + _HEADER.size : end]))  # noqa: S301 - from our own fork
        start = end
    return buffer[start:], messages


def _add(total: SourceStats, engine_total: EngineStats, source: SourceStats, engine: EngineStats) -> None:
    total.events += source.events
    total.undecoded += source.undecoded
    total.skipped_by_reason.update(source.skipped_by_reason)
    engine_total.events += engine.events
    engine_total.findings += engine.findings
    engine_total.findings_by_signature.update(engine.findings_by_signature)
    engine_total.errors_by_signature.update(engine.errors_by_signature)
    engine_total.errors_by_observer.update(engine.errors_by_observer)


def _interrupt(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second one ends the worker
    raise Interrupted


_HELD: Final = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait (their handlers run after the block): an interruption
    cannot cut a message to the main process in two."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _describe_exit(wait_status: int) -> str:
    if os.WIFSIGNALED(wait_status):
        return f"killed by signal {signal.Signals(os.WTERMSIG(wait_status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(wait_status)}"
