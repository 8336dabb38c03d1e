"""Webhook delivery against real HTTP servers on 127.0.0.1: deadlines, bounded answers, the queue.

Each server runs in a thread of this process and is stopped by its fixture; tracee-rules
runs in a subprocess, as a user runs it, with a timeout of its own so that a regression
(a run that never ends) fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import math
import re
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytracee.engine import Event, Finding, SignatureMetadata
from pytracee.engine.output.templates import FindingTemplate
from pytracee.engine.output.webhook import (
    MAX_RESPONSE,
    DeliveryError,
    WebhookSender,
    WebhookURL,
    post,
)
from pytracee.engine.session import ConfigError
from pytracee.engine.testing import make_event

COMMAND = [sys.executable, "-m", "pytracee.engine.cli.tracee_rules"]


def run_rules(*args: str, timeout: float = 30) -> tuple[subprocess.CompletedProcess[str], float]:
    """tracee-rules in a subprocess; the result and how long it took."""
    start = time.monotonic()
    result = subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=timeout, check=False)
    return result, time.monotonic() - start


def ptrace_events(tmp_path: Path, count: int) -> Path:
    """``count`` events, each raising one TRC-102 finding (the n-th with processName ``pN``)."""
    path = tmp_path / "events.jsonl"
    events = (
        make_event("ptrace", {"request": 0, "pid": 0, "addr": 0, "data": 0}, processName=f"p{n}") for n in range(count)
    )
    path.write_text("".join(json.dumps(e.raw) + "\n" for e in events))
    return path


def webhook_line(stderr: str) -> tuple[int, int, int]:
    """(delivered, failed, dropped) from the line the sender logs at the end."""
    match = re.search(r"webhook \S+: (\d+) delivered, (\d+) failed, (\d+) dropped", stderr)
    assert match, stderr
    delivered, failed, dropped = map(int, match.groups())
    return delivered, failed, dropped


# --- servers -------------------------------------------------------------------------------------


class RawServer(socketserver.ThreadingTCPServer):
    """A TCP server on 127.0.0.1 whose handler gets the connected socket and a stop event."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, serve: Callable[[socket.socket, threading.Event], None]) -> None:
        self.stopping = threading.Event()
        self.connections = 0
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer.connections += 1
                try:
                    serve(self.request, outer.stopping)
                except OSError:  # the client hung up
                    pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket, threading.Event], None]], RawServer]]:
    servers: list[tuple[RawServer, threading.Thread]] = []

    def start(serve: Callable[[socket.socket, threading.Event], None]) -> RawServer:
        server = RawServer(serve)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        servers.append((server, thread))
        return server

    yield start
    for server, thread in servers:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def read_request(sock: socket.socket) -> bytes:
    """Read a request's head and body (by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def drip(sock: socket.socket, stopping: threading.Event) -> None:
    """Answer one byte every 0.5 s, forever (a status line, then a header that never ends)."""
    read_request(sock)
    answer = b"HTTP/1.1 200 OK\r\nX-Slow: "
    sent = 0
    while not stopping.wait(0.5):
        sock.sendall(answer[sent : sent + 1] or b"a")
        sent += 1


def endless_body(sock: socket.socket, stopping: threading.Event) -> None:
    """A 200 answer whose body never ends (64 KiB chunks as fast as the client takes them)."""
    read_request(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
    chunk = b"x" * 65536
    while not stopping.is_set():
        sock.sendall(chunk)


def endless_headers(sock: socket.socket, stopping: threading.Event) -> None:
    """A status line followed by headers that never end."""
    read_request(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\n")
    while not stopping.is_set():
        sock.sendall(b"X-Filler: " + b"y" * 1000 + b"\r\n")


def answer(*responses: bytes) -> Callable[[socket.socket, threading.Event], None]:
    def serve(sock: socket.socket, stopping: threading.Event) -> None:
        read_request(sock)
        for response in responses:
            sock.sendall(response)

    return serve


class Collector(BaseHTTPRequestHandler):
    """Counts the requests; takes ``delay`` seconds to answer each one."""

    received: list[tuple[dict[str, str], bytes]]
    delay = 0.0
    stopping: threading.Event

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        if type(self).stopping.wait(type(self).delay):
            return
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Callable[[float], tuple[str, type[Collector]]]]:
    servers: list[tuple[ThreadingHTTPServer, type[Collector]]] = []

    def start(delay: float = 0.0) -> tuple[str, type[Collector]]:
        handler = type("Handler", (Collector,), {"received": [], "delay": delay, "stopping": threading.Event()})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append((server, handler))
        return f"127.0.0.1:{server.server_address[1]}", handler

    yield start
    for server, handler in servers:
        handler.stopping.set()
        server.shutdown()
        server.server_close()


def finding(n: int = 0) -> Finding:
    return Finding(
        {"n": n}, Event({"eventName": "ptrace", "processName": f"p{n}"}), SignatureMetadata(id="X-1", name="x")
    )


# --- the deadline and the bounded answer -----------------------------------------------------------


def test_a_dripping_server_is_cut_off_at_the_total_deadline(raw_server, tmp_path: Path) -> None:
    server = raw_server(drip)
    result, took = run_rules(
        "--input", str(ptrace_events(tmp_path, 1)), "--webhook", server.url, "--webhook-timeout", "1"
    )
    assert took < 8, f"the run took {took:.1f} s"
    assert "not delivered: no complete answer within 1 s" in result.stderr
    assert webhook_line(result.stderr) == (0, 1, 0)
    assert "findings not delivered: 1" in result.stderr and "Traceback" not in result.stderr
    assert result.returncode == 1


def test_an_endless_answer_costs_no_memory(raw_server, tmp_path: Path) -> None:
    server = raw_server(endless_body)
    events = ptrace_events(tmp_path, 1)
    proc = psutil.Popen(
        [*COMMAND, "--input", str(events), "--webhook", server.url, "--webhook-timeout", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak, start = 0, time.monotonic()
    try:
        while proc.poll() is None and time.monotonic() - start < 30 and peak < 500 << 20:
            try:
                peak = max(peak, proc.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, stderr = proc.communicate(timeout=10)
    assert peak < 200 << 20, f"peak RSS {peak >> 20} MiB"
    assert time.monotonic() - start < 10
    assert webhook_line(stderr) == (1, 0, 0), stderr  # the status line said 200: delivered
    assert proc.returncode == 0


def test_answers_are_read_only_up_to_their_headers_and_64_kib(raw_server) -> None:
    url = WebhookURL.parse(raw_server(endless_headers).url)
    start = time.monotonic()
    with pytest.raises(DeliveryError, match=f"headers are over {MAX_RESPONSE} bytes"):
        post(url, b"{}", "application/json", 5)
    assert time.monotonic() - start < 3


@pytest.mark.parametrize(
    ("responses", "problem"),
    [
        ((b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 204 No Content\r\n\r\n"), None),
        ((b"HTTP/1.0 200 OK\n\nbody",), None),
        (
            (b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere/\r\n\r\n",),
            "answered 302 Found (redirects are not followed)",
        ),
        ((b"HTTP/1.1 503 Busy\x1b[2J\r\n\r\n",), "answered 503 Busy?[2J"),
        ((b"SSH-2.0-OpenSSH\r\n\r\n",), "not an HTTP answer"),
        ((), "no answer"),
        ((b"HTTP/1.1 200 OK\r\n",), "closed before a complete answer"),
    ],
)
def test_the_status_decides(raw_server, responses: tuple[bytes, ...], problem: str | None) -> None:
    url = WebhookURL.parse(raw_server(answer(*responses)).url)
    if problem is None:
        post(url, b"{}", "application/json", 5)
    else:
        with pytest.raises(DeliveryError, match=re.escape(problem)):
            post(url, b"{}", "application/json", 5)


def test_a_closed_port_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens on it
    with pytest.raises(DeliveryError, match="unreachable: Connection refused"):
        post(WebhookURL.parse(f"http://127.0.0.1:{port}/"), b"{}", "application/json", 5)


# --- the queue ---------------------------------------------------------------------------------------


def test_a_slow_server_does_not_hold_up_detection(collector, tmp_path: Path) -> None:
    address, handler = collector(1.0)  # each request takes 1 s
    events = ptrace_events(tmp_path, 50)
    result, took = run_rules(
        "--input",
        str(events),
        "--webhook",
        f"http://{address}/hook",
        "--webhook-queue",
        "5",
        "--webhook-drain-timeout",
        "1",
    )
    assert took < 8, f"the run took {took:.1f} s (50 requests of 1 s each would take 50 s)"
    assert result.stdout.count("*** Detection ***") == 50  # detection and printing went on
    delivered, failed, dropped = webhook_line(result.stderr)
    assert failed == 0 and delivered + dropped == 50 and dropped >= 40
    assert delivered <= len(handler.received) <= delivered + 1  # plus at most the one cut off at the end
    assert result.stderr.count("the queue is full (5 findings waiting)") <= 2  # a warning and a count, not 44
    assert f"findings not delivered: {dropped}" in result.stderr
    assert result.returncode == 1


def test_every_finding_reaches_a_normal_server(collector, tmp_path: Path) -> None:
    address, handler = collector()
    result, _ = run_rules(
        "--input", str(ptrace_events(tmp_path, 200)), "--webhook", f"http://alice:s3cret@{address}/hook?x=1"
    )
    assert webhook_line(result.stderr) == (200, 0, 0)
    assert result.returncode == 0, result.stderr
    names = [json.loads(body)["Context"]["processName"] for _, body in handler.received]
    assert names == [f"p{n}" for n in range(200)]  # all of them, in order
    headers = handler.received[0][0]
    assert headers["Authorization"] == "Basic YWxpY2U6czNjcmV0" and headers["Content-Type"] == "application/json"
    assert "s3cret" not in result.stderr  # the password is not logged


def test_the_queue_drops_new_findings_when_full(collector) -> None:
    address, _ = collector(1.0)
    sender = WebhookSender(f"http://{address}/", FindingTemplate.load("rawjson"), queue_size=2, drain_timeout=0.2)
    start = time.monotonic()
    for n in range(20):
        sender.tracee_finding_output(finding(n))
    assert time.monotonic() - start < 0.5  # never waits for the server
    assert sender.accepted + sender.dropped_full == 20 and sender.accepted <= 3  # 2 queued, 1 in flight
    sender.tracee_sessionfinish()
    assert time.monotonic() - start < 1.5  # the drain is bounded
    assert sender.delivered == 0 and sender.dropped == 20 and sender.dropped_at_end == sender.accepted


def test_an_interrupt_while_draining_ends_the_wait(collector, tmp_path: Path) -> None:
    address, handler = collector(30.0)
    proc = subprocess.Popen(
        [
            *COMMAND,
            "--input",
            str(ptrace_events(tmp_path, 3)),
            "--webhook",
            f"http://{address}/",
            "--webhook-timeout",
            "60",
            "--webhook-drain-timeout",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while not handler.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert handler.received, "the first finding never arrived"
        time.sleep(0.5)  # three events: the replay is over, the run waits for the queue
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert webhook_line(stderr) == (0, 0, 3) and "still queued after an interrupt" in stderr
    assert "3 events read" in stderr and "Traceback" not in stderr
    assert proc.returncode == 130


# --- configuration -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/findings"])
def test_only_http_urls_are_accepted(url: str, tmp_path: Path) -> None:
    result, _ = run_rules("--input", str(ptrace_events(tmp_path, 1)), "--webhook", url)
    assert result.returncode == 2
    assert f"--webhook '{url}': only http:// and https:// URLs can be posted to" in result.stderr
    assert "Traceback" not in result.stderr and "*** Detection ***" not in result.stdout


def test_a_timeout_of_nan_is_a_usage_error(tmp_path: Path) -> None:
    result, _ = run_rules(
        "--input", str(ptrace_events(tmp_path, 1)), "--webhook", "http://127.0.0.1:9/", "--webhook-timeout", "nan"
    )
    assert result.returncode == 2
    assert "--webhook-timeout must be a finite number of seconds, more than 0, not nan" in result.stderr


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://", "it has no host"),
        ("http://127.0.0.1:99999/", "its port is not a number"),
        ("http://127.0.0.1/a b", "printable ASCII without spaces"),
        ("http://127.0.0.1/\r\nX-Injected: 1", "printable ASCII without spaces"),
        ("javascript:alert(1)", "not javascript:"),
        ("/relative/path", "not a relative URL"),
    ],
)
def test_bad_urls_are_configuration_errors(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        WebhookSender(url, FindingTemplate.load("rawjson"))


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"timeout": -1.0}, "--webhook-timeout must be a finite number of seconds, more than 0, not -1.0"),
        ({"timeout": 0.0}, "--webhook-timeout must be"),
        ({"timeout": math.nan}, "--webhook-timeout must be"),
        ({"timeout": math.inf}, "--webhook-timeout must be"),
        ({"drain_timeout": -0.5}, "--webhook-drain-timeout must be a finite number of seconds, 0 or more"),
        ({"queue_size": 0}, "--webhook-queue must be 1 or more"),
        ({"content_type": "text/plain\r\nX-Injected: 1"}, "--webhook-content-type"),
    ],
)
def test_bad_webhook_options_are_configuration_errors(options: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        WebhookSender("http://127.0.0.1/", FindingTemplate.load("rawjson"), **options)  # type: ignore[arg-type]


@given(st.one_of(st.text(), st.builds("http://{}/{}".format, st.text(), st.text())))
def test_any_url_is_refused_or_yields_a_clean_request_line(url: str) -> None:
    try:
        parsed = WebhookURL.parse(url)
    except ValueError:
        return
    assert parsed.scheme in ("http", "https") and parsed.host and 1 <= parsed.port <= 65535
    for part in (parsed.target, parsed.host_header):
        assert re.fullmatch(r"[!-~]+", part), part  # nothing that could end the request line or a header


def test_confirm_waits_for_the_posts_and_reports_any_loss(collector) -> None:
    """A message bus acknowledges its events only once their findings were posted."""
    address, handler = collector(0.5)
    sender = WebhookSender(f"http://{address}/", FindingTemplate.load("rawjson"), drain_timeout=5)
    for n in range(2):
        sender.tracee_finding_output(finding(n))
    assert sender.confirm(0.05) is False  # still being posted
    assert sender.confirm(10) is True and len(handler.received) == 2
    sender.tracee_sessionfinish()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens on it
    failing = WebhookSender(f"http://127.0.0.1:{port}/", FindingTemplate.load("rawjson"), drain_timeout=1)
    failing.tracee_finding_output(finding(3))
    assert failing.confirm(10) is False and failing.failed_requests == 1
    failing.tracee_sessionfinish()
