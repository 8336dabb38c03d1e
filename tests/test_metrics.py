"""``--metrics-addr``: Prometheus metrics and ``/healthz``, scraped from the real server.

Each test starts the real command with ``--metrics-addr 127.0.0.1:PORT`` (a free port
found by binding port 0), scrapes ``/metrics`` over HTTP and parses it with
``prometheus_client``'s parser (so the exposition format is checked too), and reads
``/healthz`` while events flow, while a signature is stuck, and while a webhook fails.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from collector_support import Tracee
from prometheus_client.parser import text_string_to_metric_families
from pytracee.engine import Event, Signature, SignatureMetadata, select
from pytracee.engine.dispatch import Engine
from pytracee.engine.operations.metrics import SignatureTimings

TRACEE_RULES = Path(sys.executable).with_name("tracee-rules")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - a local test server
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape(base: str) -> Samples:
    status, text = get(base + "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def wait_for(base: str, condition: Callable[[Samples], bool], timeout: float = 60) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        try:
            samples = scrape(base)
            if condition(samples):
                return samples
        except (urllib.error.URLError, ConnectionError):
            pass  # not listening yet
        assert time.monotonic() < deadline, "the metrics never showed the expected values"
        time.sleep(0.1)


def wait_health(base: str, expected: int, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status, body = get(base + "/healthz")
        if status == expected:
            return body
        assert time.monotonic() < deadline, f"/healthz stayed {status} {body!r}"
        time.sleep(0.2)


def event(name: str, args: dict[str, Any], comm: str = "app", pid: int = 100) -> str:
    raw = {
        "timestamp": 1_700_000_000_000_000_000 + pid,
        "processId": pid,
        "hostProcessId": pid,
        "processName": comm,
        "eventName": name,
        "args": [{"name": key, "type": "", "value": value} for key, value in args.items()],
    }
    return json.dumps(raw) + "\n"


TRACEME = {"request": "PTRACE_TRACEME", "pid": 0}
OPEN = {"pathname": "/tmp/x", "flags": 0}


@pytest.fixture
def replay(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[str], str]]]:
    """Start ``tracee-rules --input - --metrics-addr 127.0.0.1:PORT ARGS``; its process and base URL."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[subprocess.Popen[str], str]:
        port = free_port()
        proc = subprocess.Popen(
            [str(TRACEE_RULES), "--input", "-", "--metrics-addr", f"127.0.0.1:{port}", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(tmp_path / f"stderr{len(procs)}").open("w"),
            text=True,
        )
        procs.append(proc)
        return proc, f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def send(proc: subprocess.Popen[str], *lines: str) -> None:
    stdin: IO[str] | None = proc.stdin
    assert stdin is not None
    stdin.write("".join(lines))
    stdin.flush()


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out


ALLOW_STRACE = """
from pytracee.engine import hookimpl


@hookimpl
def tracee_finding_filter(finding):
    if finding.event.process_name == "strace":
        return "allow-list: strace"
    return None
"""


EXCEPTIONS = """
exceptions:
  - name: strace-is-expected
    signatures: [TRC-102]
    match:
      processName: strace
"""


def test_exceptions_and_repeats_are_counted_by_name(replay: Callable[..., Any], tmp_path: Path) -> None:
    config = tmp_path / "pytracee.yaml"
    config.write_text(EXCEPTIONS)
    proc, base = replay("--rules", "TRC-102", "--config", str(config), "--dedup-window", "60")
    send(
        proc,
        event("ptrace", TRACEME, comm="strace", pid=1),  # excepted
        event("ptrace", TRACEME, comm="strace", pid=1),  # excepted
        event("ptrace", TRACEME, comm="gdb", pid=2),  # delivered
        event("ptrace", TRACEME, comm="gdb", pid=2),  # the same finding again: counted, not delivered
    )
    excepted = ("pytracee_findings_suppressed_total", (("reason", "exception: strace-is-expected"),))
    repeated = ("pytracee_findings_deduplicated_total", (("detector_id", "TRC-102"),))
    samples = wait_for(base, lambda s: s.get(("tracee_events_total", ())) == 4 and s.get(repeated) == 1)
    assert samples[excepted] == 2
    assert samples[("tracee_signatures_detections_total", ())] == 4  # produced, before exceptions and repeats
    status, out = finish(proc)
    assert status == 0 and out.count("TRC-102") == 1, out


def test_a_long_running_replay_serves_its_counts(replay: Callable[..., Any], tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "allow_strace.py").write_text(ALLOW_STRACE)
    proc, base = replay("--rules", "TRC-102,TRC-103", "--rules-dir", str(rules), "--output-template", "rawjson")
    send(
        proc,
        event("ptrace", TRACEME, comm="gdb", pid=1),
        event("ptrace", TRACEME, comm="strace", pid=2),  # suppressed by the plugin
        event("ptrace", TRACEME, comm="gdb", pid=3),
        "{not json\n",
        *[event("openat", OPEN, pid=10 + i) for i in range(5)],
        event("no_such_event", {}),
    )
    unknown = ("pytracee_events_skipped_total", (("reason", "unknown event"),))
    samples = wait_for(base, lambda s: s.get(("tracee_events_total", ())) == 8 and s.get(unknown) == 1)  # the last
    assert samples[("tracee_signatures_detections_total", ())] == 3  # produced, before the filter
    assert samples[("tracee_detectors_events_produced_total", (("detector_id", "TRC-102"),))] == 3
    assert samples[("tracee_detectors_events_produced_total", (("detector_id", "TRC-103"),))] == 0
    assert samples[("pytracee_findings_suppressed_total", (("reason", "allow-list: strace"),))] == 1
    assert samples[("pytracee_events_skipped_total", (("reason", "invalid JSON"),))] == 1
    assert samples[("tracee_signatures_total", ())] == 2
    assert samples[("tracee_errors_total", ())] == 0
    timed = (("detector_id", "TRC-102"),)
    assert samples[("tracee_detectors_events_processed_total", timed)] == 3  # ptrace events only: the selector
    assert samples[("tracee_detectors_execution_duration_seconds_count", timed)] == 3
    assert samples[("tracee_detectors_execution_duration_seconds_bucket", (*timed, ("le", "+Inf")))] == 3
    assert samples[("tracee_detectors_execution_duration_seconds_sum", timed)] > 0
    assert samples[("pytracee_healthy", ())] == 1
    assert ("process_resident_memory_bytes", ()) in samples
    assert get(base + "/healthz") == (200, "OK\n")
    assert get(base + "/nothing")[0] == 404
    status, out = finish(proc)
    assert status == 0 and out.count('"TRC-102"') == 2


STUCK_RULE = """
import os
import time

from pytracee.engine import select, signature


@signature(id="TEST-STUCK", name="Stuck", events=[select("openat", pathname="/stuck")])
def stuck(event):
    while not os.path.exists({release!r}):
        time.sleep(0.05)
    return True
"""


def test_healthz_says_stalled_while_a_signature_holds_up_waiting_input(
    replay: Callable[..., Any], tmp_path: Path
) -> None:
    release = tmp_path / "release"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "stuck.py").write_text(STUCK_RULE.format(release=str(release)))
    proc, base = replay("--rules", "TEST-STUCK", "--rules-dir", str(rules), "--health-stall-timeout", "1")
    send(proc, event("openat", OPEN, pid=1))
    wait_for(base, lambda s: s.get(("tracee_events_total", ())) == 1)
    assert wait_health(base, 200) == "OK\n"  # nothing waits: an idle pipe is healthy
    send(proc, event("openat", {"pathname": "/stuck", "flags": 0}, pid=2))
    wait_for(base, lambda s: s.get(("tracee_events_total", ())) == 2)
    send(proc, *[event("openat", OPEN, pid=10 + i) for i in range(20)])  # these wait in the pipe
    body = wait_health(base, 503)
    assert body.startswith("NOT OK: stalled: input is waiting but nothing was read for ")
    assert scrape(base)[("pytracee_healthy", ())] == 0
    release.touch()
    wait_for(base, lambda s: s.get(("tracee_events_total", ())) == 22)
    assert wait_health(base, 200) == "OK\n"
    status, out = finish(proc)
    assert status == 0 and "TEST-STUCK" in out


HOLD_RULE = """
import os
import time

from pytracee.engine import select, signature


@signature(id="TEST-HOLD", name="Hold", events=[select("openat", pathname="/hold/*")])
def hold(event):
    if event.str_arg("pathname") != "/hold/stuck":
        return False
    while not os.path.exists({release!r}):
        time.sleep(0.05)
    return True
"""


def test_a_replay_on_workers_serves_their_counts_and_stalls(tmp_path: Path) -> None:
    """Under --workers the main process reads nothing itself: its metrics and /healthz follow what
    the workers report while they run. Of 200 processes' opens, pid 100's holds its worker up in
    a signature (at its 50th event: the even pids are its own); the other worker finishes."""
    release = tmp_path / "release"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hold.py").write_text(HOLD_RULE.format(release=str(release)))
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(
            event("openat", {"pathname": "/hold/stuck" if pid == 100 else "/hold/x"}, pid=pid) for pid in range(1, 201)
        )
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [str(TRACEE_RULES), "--input", str(events), "--workers", "2", "--rules", "TEST-HOLD"]
    command += ["--rules-dir", str(rules), "--metrics-addr", f"127.0.0.1:{port}", "--health-stall-timeout", "1"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        samples = wait_for(base, lambda s: s.get(("tracee_events_total", ())) == 150)  # 100 + 49 + the held one
        timed = (("detector_id", "TEST-HOLD"),)
        assert samples[("tracee_detectors_events_processed_total", timed)] == 149  # the held call has not returned
        assert samples[("tracee_signatures_events_total", ())] == 150
        assert samples[("pytracee_input_read_bytes_total", ())] == events.stat().st_size  # in one chunk
        assert wait_health(base, 503).startswith("NOT OK: stalled: no worker made progress for ")
        assert proc.poll() is None
        release.touch()
        out, err = proc.communicate(timeout=60)
    finally:
        release.touch()
        if proc.poll() is None:
            proc.kill()  # its workers end with it
            proc.communicate()
    assert proc.returncode == 0, err
    assert out.count("TEST-HOLD") == 1 and "200 events read, 0 skipped; 1 findings" in err


def test_healthz_says_stalled_while_a_signature_holds_up_input_already_read(
    replay: Callable[..., Any], tmp_path: Path
) -> None:
    release = tmp_path / "release"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "stuck.py").write_text(STUCK_RULE.format(release=str(release)))
    proc, base = replay("--rules", "TEST-STUCK", "--rules-dir", str(rules), "--health-stall-timeout", "1")
    send(proc, event("openat", {"pathname": "/stuck", "flags": 0}, pid=2))  # nothing else waits
    wait_for(base, lambda s: s.get(("tracee_events_total", ())) == 1)
    assert wait_health(base, 503).startswith("NOT OK: stalled: the signatures have been on one event for ")
    release.touch()
    assert wait_health(base, 200) == "OK\n"
    status, out = finish(proc)
    assert status == 0 and "TEST-STUCK" in out


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # the http.server name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_healthz_says_failing_while_findings_are_not_delivered(replay: Callable[..., Any]) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
        proc, base = replay("--rules", "TRC-102", "--webhook", hook, "--webhook-queue", "7")
        send(proc, event("ptrace", TRACEME, pid=1), event("ptrace", TRACEME, pid=2))
        samples = wait_for(base, lambda s: s.get(("pytracee_webhook_findings_total", (("outcome", "failed"),))) == 2)
        assert samples[("pytracee_webhook_queue_capacity", ())] == 7
        assert samples[("pytracee_webhook_queue_depth", ())] == 0
        assert samples[("pytracee_webhook_findings_total", (("outcome", "delivered"),))] == 0
        assert wait_health(base, 503) == "NOT OK: failing: findings not delivered within the last 60 s\n"
        assert wait_for(base, lambda s: s[("pytracee_findings_undelivered_total", ())] == 2)
        assert finish(proc)[0] == 1  # findings not delivered
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("9464", "expected HOST:PORT"),
        ("127.0.0.1:99999", "expected HOST:PORT"),
        ("::1:9464", "in brackets"),
    ],
)
def test_bad_metrics_address_is_a_usage_error(address: str, message: str, tmp_path: Path) -> None:
    run = subprocess.run(
        [str(TRACEE_RULES), "--metrics-addr", address, "--input", os.devnull],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2 and message in run.stderr


def test_a_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [str(TRACEE_RULES), "--metrics-addr", f"127.0.0.1:{port}", "--input", os.devnull],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert run.returncode == 2 and f"127.0.0.1:{port}: cannot listen there" in run.stderr


class _Slow(Signature):
    metadata = SignatureMetadata(id="TEST-SLOW", name="Slow")
    selected_events = [select("openat")]

    def on_event(self, event: Event) -> None:
        time.sleep(0.002)


def test_signature_time_lands_in_tracee_buckets() -> None:
    engine = Engine([_Slow()], lambda finding: None)
    timings = SignatureTimings()
    engine.instrument(timings.wrap)
    engine.dispatch(Event({"eventName": "openat", "args": []}))
    timing = timings.by_id["TEST-SLOW"]
    assert timing.calls == 1 and timing.buckets == [0, 0, 0] and timing.seconds >= 0.002  # over 1 ms: +Inf only
    engine.instrument(None)
    engine.dispatch(Event({"eventName": "openat", "args": []}))
    assert timing.calls == 1  # not timed any more


@pytest.mark.skipif(os.geteuid() != 0, reason="live tracing needs root")
def test_live_tracee_serves_metrics_and_health() -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    tracee = Tracee("--rules", "TRC-102", "--metrics-addr", f"127.0.0.1:{port}", "--output-template", "rawjson")
    try:
        code = "import ctypes; ctypes.CDLL(None).ptrace(0, 0, 0, 0)"
        samples = wait_for(
            base,
            lambda s: (
                subprocess.run([sys.executable, "-c", code], check=False) is not None
                and s.get(("tracee_signatures_detections_total", ()), 0) >= 1
            ),
        )
        assert samples[("tracee_events_total", ())] >= 1
        assert ("tracee_lostevents_total", ()) in samples
        assert samples[("tracee_detectors_events_produced_total", (("detector_id", "TRC-102"),))] >= 1
        assert get(base + "/healthz") == (200, "OK\n")
    finally:
        status, _, err = tracee.stop(signal.SIGINT)
    assert status == 0, err
    with pytest.raises(urllib.error.URLError):
        get(base + "/healthz")  # the port is released at the stop


LIVE_STUCK_RULE = """
import os
import time

from pytracee.engine import select, signature


@signature(id="TEST-LIVE-STUCK", name="Stuck", events=[select("security_file_open", pathname={trigger!r})])
def stuck(event):
    while not os.path.exists({release!r}):
        time.sleep(0.05)
    return True
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="live tracing needs root")
def test_live_healthz_says_stalled_while_the_kernel_buffer_is_not_polled(tmp_path: Path) -> None:
    trigger, release = tmp_path / "trigger", tmp_path / "release"
    trigger.write_text("")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "stuck.py").write_text(LIVE_STUCK_RULE.format(trigger=str(trigger), release=str(release)))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    tracee = Tracee(
        "--rules", "TEST-LIVE-STUCK", "--rules-dir", str(rules), "--metrics-addr", f"127.0.0.1:{port}",
        "--health-stall-timeout", "1", "--output-template", "rawjson",
    )  # fmt: skip
    try:
        assert wait_health(base, 200) == "OK\n"
        trigger.read_text()  # an open the signature gets stuck on
        body = wait_health(base, 503)
        assert body.startswith("NOT OK: stalled: the kernel buffer was not polled for ")
        release.touch()
        assert wait_health(base, 200) == "OK\n"
    finally:
        release.touch()
        status, _, err = tracee.stop(signal.SIGINT)
    assert status == 0, err


@pytest.mark.skipif(os.geteuid() != 0, reason="live tracing needs root")
def test_live_tracee_printing_events_only_serves_metrics(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    tracee = Tracee("-e", "openat", "-o", "none", "--metrics-addr", f"127.0.0.1:{port}")
    try:
        samples = wait_for(
            base, lambda s: (tmp_path / "x").write_text("x") is not None and s.get(("tracee_events_total", ()), 0) >= 1
        )
        assert ("tracee_signatures_total", ()) not in samples  # no signature runs
        assert samples[("pytracee_healthy", ())] == 1
    finally:
        status, _, err = tracee.stop(signal.SIGINT)
    assert status == 0, err


def test_failing_lasts_the_window_after_the_last_undelivered_finding() -> None:
    from pytracee.engine.operations.metrics import FAILING_WINDOW, Health, RunView
    from pytracee.engine.session import Session, SessionConfig
    from pytracee.engine.sources import IterableSource

    session = Session(SessionConfig(load_installed_plugins=False, rules=["TRC-102"]))
    session.load()
    health = Health(RunView(session, IterableSource([])), stall_seconds=5)
    health.sample(now=0.0)
    assert health.status(now=1.0) == (True, "OK")
    session.output_failed("a finding was not delivered")
    health.sample(now=10.0)
    assert health.status(now=10.0 + FAILING_WINDOW)[0] is False
    assert health.status(now=10.0 + FAILING_WINDOW + 1) == (True, "OK")
    assert health.status(now=1000.0) == (True, "OK")  # no input waits: an idle source is never stalled
    session.finish(0)  # type: ignore[arg-type]


def test_an_idle_connection_is_closed_by_the_server(replay: Callable[..., Any]) -> None:
    import socket
    import time

    from pytracee.engine.operations.metrics import IDLE_TIMEOUT

    proc, base = replay("--rules", "TRC-102")
    wait_for(base, lambda samples: True)  # listening
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=IDLE_TIMEOUT * 3) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive, then silence
        started = time.monotonic()
        received = b""
        while chunk := client.recv(4096):
            received += chunk
        assert received.startswith(b"HTTP/1.1 200")  # answered, then closed: recv gave b""
        assert time.monotonic() - started < IDLE_TIMEOUT * 3
    assert finish(proc)[0] == 0


def test_a_call_ending_while_scraped_never_puts_more_in_a_bucket_than_in_inf() -> None:
    from pytracee.engine.operations import metrics

    class Busy:
        """A signature's timing whose signature ends a fast call each time ``calls`` is read,
        as the timed wrapper does it: ``calls`` first, then the bucket."""

        def __init__(self) -> None:
            self.buckets = [0, 0, 0]
            self.seconds = 0.0
            self._calls = 0

        @property
        def calls(self) -> int:
            seen = self._calls
            self._calls += 1
            self.buckets[0] += 1
            return seen

    for _ in range(3):
        busy = Busy()
        cumulative, calls, _ = metrics.histogram(busy)  # type: ignore[arg-type]
        assert cumulative[-1] == ("+Inf", calls)
        assert all(count <= calls for _, count in cumulative), cumulative
