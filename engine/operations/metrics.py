"""Prometheus metrics and a health check over HTTP: ``--metrics-addr HOST:PORT``.

:class:`MetricsServer` serves, from a thread of its own (the standard library's
``ThreadingHTTPServer``), for ``tracee`` and ``tracee-rules``:

* ``/metrics``: the Prometheus text exposition format, built by ``prometheus_client``
  from the run's own counters **when scraped** (:class:`RunCollector`): the replay and
  the tracer keep those counters anyway, so serving metrics adds no work per event;
* ``/healthz``: ``200 OK``, or ``503 NOT OK: <why>`` while the run is unhealthy
  (:class:`Health`): **stalled** (records are waiting to be read, or for ``tracee`` the
  kernel buffer is due a poll, and nothing was read for ``--health-stall-timeout``
  seconds: a signature stuck in a loop, a blocked output) or **failing** (findings
  could not be delivered within the last :data:`FAILING_WINDOW` seconds).

The one cost that is per event is the time spent in each signature
(``tracee_detectors_execution_duration_seconds``): with ``--metrics-addr`` the engine
calls each signature through a timer (:class:`SignatureTimings`, two clock reads per
call); without it, the engine is not instrumented at all.

Names follow Tracee's where it has the metric (``tracee_events_total``,
``tracee_lostevents_total``, ``tracee_errors_total``, ``tracee_signatures_*``,
``tracee_detectors_*``); the rest are ``pytracee_*``. README.md lists them all.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ..errors import ConfigError
from ..events import Event
from ..reader import EventReader
from ..sources import snapshot_counts
from .progress import InputPosition

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

    from ..dispatch import LoadedSignature
    from ..session import Session
    from ..sources import EventSource

__all__ = [
    "DEFAULT_STALL_SECONDS",
    "DURATION_BUCKETS",
    "FAILING_WINDOW",
    "Health",
    "MetricsServer",
    "RunCollector",
    "SignatureTimings",
    "add_metrics_options",
    "open_metrics_server",
    "parse_address",
]

log = logging.getLogger("pytracee.metrics")

#: Seconds without progress while input waits before ``/healthz`` says "stalled".
DEFAULT_STALL_SECONDS: Final = 30.0
#: Findings not delivered within this many seconds make ``/healthz`` say "failing".
FAILING_WINDOW: Final = 60.0
#: Upper bounds of the signature time histogram, in seconds: Tracee's (fast, normal, slow).
DURATION_BUCKETS: Final = (0.00005, 0.0001, 0.001)
#: How often the health check samples the run.
SAMPLE_SECONDS: Final = 1.0


def add_metrics_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--metrics-addr`` and ``--health-stall-timeout`` to a command's parser."""
    group = parser.add_argument_group("metrics and health")
    group.add_argument(
        "--metrics-addr",
        metavar="HOST:PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics and a health check on /healthz "
        "(e.g. 127.0.0.1:9464; [::1]:9464; port 0 picks a free port, logged)",
    )
    group.add_argument(
        "--health-stall-timeout",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_STALL_SECONDS,
        help="/healthz says 'stalled' when input waits and nothing was read for this long (default: %(default)s)",
    )


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[V6]:PORT``; an empty host is every interface) as ``(host, port)``.

    :raises ConfigError: saying what is wrong.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"--metrics-addr {text!r}: expected HOST:PORT with a port from 0 to 65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"--metrics-addr {text!r}: write an IPv6 address in brackets, [::1]:PORT")
    return host or "0.0.0.0", int(port_text)  # noqa: S104 - an empty host means every interface, as in Tracee


# --- signature time ----------------------------------------------------------------------


class _Timing:
    __slots__ = ("buckets", "calls", "seconds")

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0
        self.buckets = [0] * len(DURATION_BUCKETS)  # not cumulative: the first bound each call fits under


class SignatureTimings:
    """Times each signature's ``on_event`` (the wrapper :meth:`Engine.instrument` takes)."""

    def __init__(self) -> None:
        self.by_id: dict[str, _Timing] = {}

    def wrap(self, loaded: LoadedSignature, on_event: Callable[[Event], None]) -> Callable[[Event], None]:
        """``on_event``, timed into the signature's histogram."""
        timing = self.by_id.setdefault(loaded.metadata.id, _Timing())
        clock = time.perf_counter
        fast, normal, slow = DURATION_BUCKETS
        buckets = timing.buckets

        def timed(event: Event) -> None:
            start = clock()
            try:
                on_event(event)
            finally:
                elapsed = clock() - start
                timing.calls += 1
                timing.seconds += elapsed
                if elapsed <= fast:
                    buckets[0] += 1
                elif elapsed <= normal:
                    buckets[1] += 1
                elif elapsed <= slow:
                    buckets[2] += 1

        return timed

    def snapshot(self) -> dict[str, tuple[int, float, list[int]]]:
        """Each signature's ``(calls, seconds, buckets)`` so far (``--workers``: sent to the main
        process, read from another thread as :func:`histogram` reads them)."""
        snapshot = {}
        for sig_id, timing in list(self.by_id.items()):
            buckets = list(timing.buckets)  # first, as histogram() reads them: no bucket above calls
            snapshot[sig_id] = (timing.calls, timing.seconds, buckets)
        return snapshot

    def set_totals(self, snapshots: Iterable[Mapping[str, tuple[int, float, list[int]]]]) -> None:
        """Show the sums of :meth:`snapshot` s taken elsewhere (the workers'), replacing these."""
        totals: dict[str, _Timing] = {}
        for snapshot in snapshots:
            for sig_id, (calls, seconds, buckets) in snapshot.items():
                total = totals.setdefault(sig_id, _Timing())
                total.calls += calls
                total.seconds += seconds
                total.buckets = [a + b for a, b in zip(total.buckets, buckets, strict=True)]
        for sig_id, total in totals.items():
            timing = self.by_id.setdefault(sig_id, _Timing())
            timing.calls, timing.seconds = total.calls, total.seconds  # calls first: see histogram()
            timing.buckets[:] = total.buckets


def histogram(timing: _Timing) -> tuple[list[tuple[str, int]], int, float]:
    """A signature's cumulative buckets (``+Inf`` last), calls and seconds, read while it runs:
    the buckets first, since a call is counted in ``calls`` before its bucket, so no bucket
    ever shows more calls than ``+Inf``."""
    counts = list(timing.buckets)
    calls, seconds = timing.calls, timing.seconds
    cumulative, running = [], 0
    for bound, count in zip(DURATION_BUCKETS, counts, strict=True):
        running += count
        cumulative.append((repr(bound), running))
    cumulative.append(("+Inf", calls))
    return cumulative, calls, seconds


# --- what the metrics read -------------------------------------------------------------------


@dataclass
class RunView:
    """The parts of a run the metrics read: its session (None: ``tracee`` printing events only)
    and its event source."""

    session: Session | None
    source: EventSource
    timings: SignatureTimings | None = None

    @property
    def live(self) -> bool:
        """The source is the kernel (``tracee``), not a replay."""
        return hasattr(self.source, "collector")

    def progress(self) -> int:
        """A number that grows while the run makes progress (records read, or polls of the kernel;
        under ``--workers``, bytes read too)."""
        polls = getattr(self.source, "polls", None)
        if isinstance(polls, int):
            return polls
        records = self.source.stats.records()
        workers = getattr(self.source, "workers_position", None)  # --workers: the bytes read count too
        return records + workers[0] if workers is not None else records


class RunCollector:
    """A ``prometheus_client`` collector reading the run's counters when scraped."""

    def __init__(self, view: RunView, health: Health) -> None:
        self.view = view
        self.health = health

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        view = self.view
        source, session = view.source, view.session
        skipped = snapshot_counts(source.stats.skipped_by_reason)
        what = "traced" if view.live else "read"
        yield CounterMetricFamily("tracee_events", f"events {what} (delivered to the signatures)", source.stats.events)
        family = CounterMetricFamily(
            "pytracee_events_skipped", "records read or traced but not delivered, by reason", labels=["reason"]
        )
        for reason, count in sorted(skipped.items()):
            family.add_metric([reason], count)
        yield family
        if view.live:
            from pytracee.collector.source import LOST

            yield CounterMetricFamily(
                "tracee_lostevents", "events lost in the kernel buffer (it was full)", skipped.get(LOST, 0)
            )
            yield CounterMetricFamily("pytracee_events_printed", "events printed", getattr(source, "printed", 0))
        elif isinstance(source, EventReader):
            position = InputPosition(source)
            if position.total is not None:  # regular files (not a pipe)
                yield CounterMetricFamily(
                    "pytracee_input_read_bytes", "bytes of the input files read", position.bytes_read()
                )
                yield GaugeMetricFamily("pytracee_input_size_bytes", "bytes of the input files", position.total)
        yield GaugeMetricFamily("pytracee_healthy", "1 when /healthz says OK, else 0", int(self.health.status()[0]))
        yield from _bus_families()
        if session is None or session.engine is None:
            return
        stats = session.engine.stats
        produced = snapshot_counts(stats.findings_by_signature)
        errors = snapshot_counts(stats.errors_by_signature)
        ids = [loaded.metadata.id for loaded in session.signatures]
        yield CounterMetricFamily(
            "tracee_errors",
            "errors: signature errors and findings not delivered",
            sum(errors.values()) + undelivered(session),
        )
        yield GaugeMetricFamily("tracee_signatures_total", "signatures loaded", len(ids))
        yield CounterMetricFamily("tracee_signatures_events", "events ingested by the signature engine", stats.events)
        yield CounterMetricFamily("tracee_signatures_detections", "detections made by signatures", stats.findings)
        produced_family = CounterMetricFamily(
            "tracee_detectors_events_produced", "findings per signature", labels=["detector_id"]
        )
        errors_family = CounterMetricFamily(
            "tracee_detectors_errors", "errors per signature (init, on_event, on_signal, close)", labels=["detector_id"]
        )
        for sig_id in ids:
            produced_family.add_metric([sig_id], produced.get(sig_id, 0))
            errors_family.add_metric([sig_id], errors.get(sig_id, 0))
        yield produced_family
        yield errors_family
        if view.timings is not None:
            processed = CounterMetricFamily(
                "tracee_detectors_events_processed", "events handed to each signature", labels=["detector_id"]
            )
            duration = HistogramMetricFamily(
                "tracee_detectors_execution_duration_seconds",
                "time spent in each signature's on_event",
                labels=["detector_id"],
            )
            for sig_id in ids:
                cumulative, calls, seconds = histogram(view.timings.by_id.get(sig_id) or _Timing())
                processed.add_metric([sig_id], calls)
                duration.add_metric([sig_id], cumulative, seconds)
            yield processed
            yield duration
        suppressed = CounterMetricFamily(
            "pytracee_findings_suppressed",
            "findings suppressed, by reason (the exception or plugin that suppressed them)",
            labels=["reason"],
        )
        by_reason = dict(snapshot_counts(session.suppressed))
        suppression = getattr(session, "suppression", None)  # exceptions and de-duplication (after load)
        counters = suppression.counters() if suppression is not None else {}
        for name, count in counters.get("suppressed_by_exception", {}).items():
            by_reason[f"exception: {name}"] = count
        for reason, count in sorted(by_reason.items()):
            suppressed.add_metric([reason], count)
        yield suppressed
        repeats = CounterMetricFamily(
            "pytracee_findings_deduplicated",
            "repeated findings counted, not delivered, within the de-duplication window (--dedup-window)",
            labels=["detector_id"],
        )
        for sig_id, count in sorted(counters.get("deduplicated_by_signature", {}).items()):
            repeats.add_metric([sig_id], count)
        yield repeats
        yield CounterMetricFamily(
            "pytracee_findings_undelivered", "findings not delivered to an output", undelivered(session)
        )
        yield from _webhook_families(session)


def undelivered(session: Session) -> int:
    """Findings not delivered so far, the webhook's latest failures included."""
    sender = session.pm.get_plugin("output-webhook")
    return session.output_failures + (sender.unreported if sender is not None else 0)


def _webhook_families(session: Session) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    sender = session.pm.get_plugin("output-webhook")
    if sender is None:
        return
    yield GaugeMetricFamily("pytracee_webhook_queue_depth", "findings waiting for the webhook", sender.queued)
    yield GaugeMetricFamily(
        "pytracee_webhook_queue_capacity", "findings the webhook queue holds at most", sender.queue_size
    )
    outcomes = CounterMetricFamily("pytracee_webhook_findings", "findings by webhook outcome", labels=["outcome"])
    outcomes.add_metric(["delivered"], sender.delivered)
    outcomes.add_metric(["failed"], sender.failed_count)
    outcomes.add_metric(["dropped"], sender.dropped)
    yield outcomes


def _bus_families() -> Iterator[Any]:
    """Messages published to NATS JetStream (``nats://`` outputs), by outcome, and the queue."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    from ..bus.publisher import publishers

    live = publishers()
    if not live:
        return
    outcomes = CounterMetricFamily(
        "pytracee_bus_messages", "messages given to a nats:// output, by outcome", labels=["what", "outcome"]
    )
    depth = GaugeMetricFamily("pytracee_bus_queue_depth", "messages waiting to be published", labels=["what"])
    capacity = GaugeMetricFamily("pytracee_bus_queue_capacity", "messages that may wait at most", labels=["what"])
    totals: dict[tuple[str, str], int] = Counter()
    for publisher in live:
        stats = publisher.stats
        for outcome, count in (
            ("published", stats.published),
            ("already stored", stats.duplicates),
            ("dropped (buffer full)", stats.dropped_full),
            ("dropped at the end", stats.dropped_at_end),
            ("failed", stats.failed),
            ("unconfirmed", stats.unconfirmed),
        ):
            totals[(publisher.what, outcome)] += count
        totals[(publisher.what, "queued")] += publisher.queued
        totals[(publisher.what, "capacity")] += publisher.buffer
    for (what, outcome), count in sorted(totals.items()):
        if outcome == "queued":
            depth.add_metric([what], count)
        elif outcome == "capacity":
            capacity.add_metric([what], count)
        else:
            outcomes.add_metric([what, outcome], count)
    yield from (outcomes, depth, capacity)


# --- health ---------------------------------------------------------------------------------------


class Health:
    """Whether the run is healthy, from samples taken every :data:`SAMPLE_SECONDS`.

    *Stalled*: records wait to be read (a file not read to its end, a pipe with data in
    it; for ``tracee``, always: the kernel buffer is polled at least every 100 ms) and
    the run made no progress (records read, polls) for ``stall_seconds``; or the
    signatures have been on one event that long (the input read to its end already).
    *Failing*: findings were not delivered (an output or webhook failing) within the
    last :data:`FAILING_WINDOW` seconds.
    """

    def __init__(self, view: RunView, stall_seconds: float = DEFAULT_STALL_SECONDS) -> None:
        self.view = view
        self.stall_seconds = stall_seconds
        now = time.monotonic()
        self._progress = view.progress()
        self._progress_at = now
        self._failures = 0
        self._failed_at: float | None = None
        self._position = InputPosition(view.source) if isinstance(view.source, EventReader) else None
        self._lock = threading.Lock()

    def sample(self, now: float | None = None) -> None:
        """Note the run's progress and failures now (the server's sampler calls it every second)."""
        now = time.monotonic() if now is None else now
        progress = self.view.progress()
        session = self.view.session
        failures = undelivered(session) if session is not None else 0
        with self._lock:
            if progress != self._progress:
                self._progress, self._progress_at = progress, now
            if failures > self._failures:
                self._failures, self._failed_at = failures, now

    def _waiting(self) -> bool:
        if self.view.live:
            return not getattr(self.view.source, "stop_requested", False)
        return self._position.waiting() if self._position is not None else False

    def status(self, now: float | None = None) -> tuple[bool, str]:
        """``(True, "OK")``, or ``(False, why)``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = now - self._progress_at
            failed_at = self._failed_at
        if idle > self.stall_seconds and self._waiting():
            what = (
                "the kernel buffer was not polled"
                if self.view.live
                else "no worker made progress"
                if getattr(self.view.source, "workers_position", None) is not None
                else "input is waiting but nothing was read"
            )
            return False, f"stalled: {what} for {idle:.0f} s"
        session = self.view.session
        if idle > self.stall_seconds and session is not None and session.dispatching:
            return False, f"stalled: the signatures have been on one event for {idle:.0f} s"
        if failed_at is not None and now - failed_at <= FAILING_WINDOW:
            return False, f"failing: findings not delivered within the last {FAILING_WINDOW:.0f} s"
        return True, "OK"


# --- the server -------------------------------------------------------------------------------------

#: Seconds a client connection may stay idle (keep-alive) or send a request slowly.
IDLE_TIMEOUT: Final = 10.0

# The HTTP handler and server classes are in :mod:`.metrics_http`, imported when a server is
# made, so that a run without ``--metrics-addr`` does not load ``http.server``.


class MetricsServer:
    """The HTTP server of ``--metrics-addr``: bound at construction, serving after :meth:`serve`.

    :raises ConfigError: when the address is malformed or cannot be bound (in use, not local).
    """

    def __init__(self, address: str, stall_seconds: float = DEFAULT_STALL_SECONDS) -> None:
        if not stall_seconds > 0:
            raise ConfigError(f"--health-stall-timeout must be more than 0, not {stall_seconds!r}")
        host, port = parse_address(address)
        from .metrics_http import MetricsHTTPServer  # http.server: only with --metrics-addr

        try:
            self._server = MetricsHTTPServer((host, port), self)
        except OSError as exc:
            raise ConfigError(f"--metrics-addr {address}: cannot listen there: {exc.strerror or exc}") from None
        self.stall_seconds = stall_seconds
        self.registry: CollectorRegistry | None = None
        self.health: Health | None = None
        self.timings: SignatureTimings | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the bound socket (the port chosen when 0 was asked for)."""
        host, port = self._server.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{text}]" if ":" in text else text
        return f"http://{shown}:{port}"

    def serve(self, session: Session | None, source: EventSource) -> None:
        """Time the session's signatures and start answering (``/metrics``, ``/healthz``)."""
        from prometheus_client import CollectorRegistry, ProcessCollector

        if session is not None and session.engine is not None:
            self.timings = SignatureTimings()
            session.engine.instrument(self.timings.wrap)
        view = RunView(session, source, self.timings)
        self.health = Health(view, self.stall_seconds)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(RunCollector(view, self.health))
        ProcessCollector(registry=registry)
        self.registry = registry
        self._threads = [
            threading.Thread(
                target=self._server.serve_forever, args=(0.1,), name="pytracee-metrics", daemon=True
            ),  # polls for the stop every 0.1 s: the command exits without waiting
            threading.Thread(target=self._sample, name="pytracee-health", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("metrics on %s/metrics, health on %s/healthz", self.url, self.url)

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            if self.health is not None:
                self.health.sample()

    def close(self) -> None:
        """Stop answering and release the port (idempotent)."""
        self._stop.set()
        if self._threads:
            self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(5)
        self._threads = []


def open_metrics_server(options: argparse.Namespace) -> MetricsServer | None:
    """The server the command line asks for (bound, not serving yet), or None.

    :raises ConfigError: for a bad or unusable ``--metrics-addr``.
    """
    address = getattr(options, "metrics_addr", None)
    if not address:
        return None
    return MetricsServer(address, getattr(options, "health_stall_timeout", DEFAULT_STALL_SECONDS))
