"""tracee-rules as a user runs it: options, inputs, outputs, webhook, exit codes."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import FIXTURES, tracee_rules
from pytracee.engine.testing import make_event

# The events Tracee v0.24.1's built-in signatures select (reference table of its signatures).
V0_24_1_EVENTS = (
    "hooked_proc_fops,hooked_syscall,magic_write,mem_prot_alert,module_load,process_vm_writev,ptrace,"
    "sched_process_exec,security_file_open,security_inode_rename,security_sb_mount,security_socket_connect,socket_dup"
)


def events_file(tmp_path: Path, *events, name: str = "events.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(e.raw) + "\n" for e in events))
    return path


@pytest.fixture
def attack(tmp_path: Path) -> Path:
    return events_file(
        tmp_path,
        make_event("openat", {"dirfd": -100, "pathname": "/etc/passwd", "flags": 0, "mode": 0}),
        make_event("ptrace", {"request": 0, "pid": 0, "addr": 0, "data": 0}, processName="strace"),
        make_event("security_file_open", {"pathname": "/etc/ld.so.preload", "flags": "O_WRONLY|O_CREAT"}),
    )


def test_replay_prints_tracee_detections_and_a_summary(attack: Path) -> None:
    result = tracee_rules("--input", str(attack))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("*** Detection ***") == 2
    assert "Signature ID: TRC-102\nSignature: Anti-Debugging detected\nData: map[]\nCommand: strace" in result.stdout
    assert "Signature ID: TRC-107" in result.stdout
    assert "3 events read, 0 skipped; 2 findings from 32 signatures (TRC-102: 1, TRC-107: 1)" in result.stderr


def test_rawjson_is_one_finding_per_line(attack: Path) -> None:
    result = tracee_rules("--input", str(attack), "--output-template", "rawjson")
    findings = [json.loads(line) for line in result.stdout.splitlines()]
    assert [f["SigMetadata"]["ID"] for f in findings] == ["TRC-102", "TRC-107"]
    assert findings[0]["Context"]["processName"] == "strace" and findings[0]["Data"] is None


def test_input_tracee_syntax_stdin_and_gzip(attack: Path, tmp_path: Path) -> None:
    long_form = tracee_rules("--input-tracee", f"file:{attack}", "--input-tracee", "format:JSON", "--rules", "TRC-102")
    assert long_form.returncode == 0 and long_form.stdout.count("TRC-102") == 1
    piped = tracee_rules("--input-tracee", "file:stdin", stdin=attack.read_bytes())
    assert piped.stdout.count("*** Detection ***") == 2
    packed = tmp_path / "events.gz"
    packed.write_bytes(gzip.compress(attack.read_bytes()))
    assert tracee_rules("--input", str(packed)).stdout.count("*** Detection ***") == 2
    gob = tracee_rules("--input-tracee", "format:gob", "--input", str(attack))
    assert gob.returncode == 2 and "only json is supported" in gob.stderr
    assert "file:stdin" in tracee_rules("--input-tracee", "help").stdout


def test_list_and_list_events() -> None:
    listing = tracee_rules("--list")
    assert listing.returncode == 0
    header, *rows = listing.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "VERSION", "LANGUAGE", "SEVERITY", "ENABLED", "EVENTS"]
    row = next(r for r in rows if r.startswith("TRC-1014 "))
    assert "Container device mount detected" in row and "python" in row and "high" in row
    assert row.split()[-2:] == ["yes", "security_sb_mount(container)"]
    assert next(r for r in rows if r.startswith("TRC-108 ")).split()[-2] == "no"  # off by default, as in Tracee
    assert "32 of " in listing.stdout and "signatures enabled; turn others on with --rules" in listing.stdout
    # Tracee's set, plus execve/execveat for PYT-1 and connect for PYT-3 (secure tracing)
    no_tree = ("--proctree", "source=none")
    assert tracee_rules(*no_tree, "--list-events").stdout.strip() == "connect,execve,execveat," + V0_24_1_EVENTS
    no_secure = ("--disable", "PYT-1", "--disable", "PYT-3")
    assert tracee_rules(*no_tree, *no_secure, "--list-events").stdout.strip() == V0_24_1_EVENTS
    assert tracee_rules(*no_tree, "--rules", "TRC-103", "--list-events").stdout.strip() == "ptrace"
    # the process tree's events too, by default (a pipeline from tracee then records them)
    tree_events = {"sched_process_fork", "sched_process_exec", "sched_process_exit"}
    listed = tracee_rules("--list-events").stdout.strip().split(",")
    secure = {"connect", "execve", "execveat"}
    assert listed == sorted(listed) and set(listed) == {*secure, *V0_24_1_EVENTS.split(",")} | tree_events
    assert tracee_rules("--rules", "TRC-103", "--list-events").stdout.strip().split(",") == [
        "ptrace",
        *sorted(tree_events),
    ]


def test_usage_and_configuration_errors_exit_2(tmp_path: Path, attack: Path) -> None:
    unknown = tracee_rules("--rules", "TRC-999", "--input", str(attack))
    assert unknown.returncode == 2 and "no such signature: TRC-999" in unknown.stderr
    template = tracee_rules("--output-template", str(tmp_path / "missing.j2"), "--input", str(attack))
    assert template.returncode == 2 and "neither a file nor a built-in" in template.stderr
    assert tracee_rules("--bogus").returncode == 2
    assert tracee_rules("--input-tracee", "nonsense").returncode == 2


def test_bad_records_are_skipped_and_counted_or_fatal_with_strict(tmp_path: Path, attack: Path) -> None:
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(attack.read_text() + "{not json\n" + '{"eventName": "bogus_event"}\n')
    lenient = tracee_rules("--input", str(mixed))
    assert lenient.returncode == 0
    assert f"{mixed}:4: invalid JSON" in lenient.stderr and f"{mixed}:5: unknown event" in lenient.stderr
    assert "3 events read, 2 skipped (invalid JSON: 1, unknown event: 1)" in lenient.stderr
    strict = tracee_rules("--input", str(mixed), "--strict")
    assert strict.returncode == 1 and f"{mixed}:4: invalid JSON" in strict.stderr
    allowed = tracee_rules("--input", str(mixed), "--allow-unknown-events")
    assert "4 events read, 1 skipped" in allowed.stderr
    missing = tracee_rules("--input", str(tmp_path / "absent.json"))
    assert missing.returncode == 1 and "cannot open input" in missing.stderr


def test_output_file_and_custom_template(tmp_path: Path, attack: Path) -> None:
    template = tmp_path / "line.j2"
    template.write_text("{{ SigMetadata.ID }} {{ Event.Payload.ProcessName }} {{ toJson(Data) }}")
    out = tmp_path / "findings.txt"
    result = tracee_rules("--input", str(attack), "--output-template", str(template), "--output", str(out))
    assert result.returncode == 0 and result.stdout == ""
    lines = out.read_text().splitlines()
    assert lines[0] == "TRC-102 strace null"
    assert lines[1].startswith("TRC-107 bash ")


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook_server() -> Iterator[tuple[str, type[_Collector]]]:
    handler = type("Handler", (_Collector,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_posts_each_finding(webhook_server, attack: Path) -> None:
    url, handler = webhook_server
    result = tracee_rules("--input", str(attack), "--webhook", url, "--output-template", "simple")
    assert result.returncode == 0, result.stderr
    assert [(path, ctype) for path, ctype, _ in handler.received] == [("/hook", "application/json")] * 2
    bodies = [json.loads(body) for _, _, body in handler.received]
    assert [b["SigMetadata"]["ID"] for b in bodies] == ["TRC-102", "TRC-107"]
    assert bodies[1]["Context"]["args"][0]["value"] == "/etc/ld.so.preload"


def test_webhook_with_template_and_content_type(webhook_server, attack: Path) -> None:
    url, handler = webhook_server
    tracee_rules(
        "--input", str(attack), "--webhook", url, "--webhook-template", "csv", "--webhook-content-type", "text/csv"
    )
    assert [ctype for _, ctype, _ in handler.received] == ["text/csv", "text/csv"]
    assert handler.received[0][2].decode().endswith(",strace,test-host")


def test_undelivered_findings_fail_the_run(webhook_server, attack: Path) -> None:
    url, handler = webhook_server
    handler.status = 503
    refused = tracee_rules("--input", str(attack), "--webhook", url)
    assert refused.returncode == 1
    assert "answered 503" in refused.stderr and "findings not delivered: 2" in refused.stderr
    assert refused.stdout.count("*** Detection ***") == 2  # still printed
    closed_port = tracee_rules("--input", str(attack), "--webhook", "http://127.0.0.1:9/x", "--webhook-timeout", "2")
    assert closed_port.returncode == 1 and "unreachable" in closed_port.stderr


def test_replays_tracee_documentation_events(tmp_path: Path) -> None:
    for name in ("events_v0.8.3_docs.jsonl", "events_v0.24.1_docs.jsonl", "detection_events_v0.20_v0.24_docs.jsonl"):
        result = tracee_rules("--input", str(FIXTURES / name), "--allow-unknown-events")
        assert result.returncode == 0 and "0 skipped" in result.stderr, result.stderr


def test_sigterm_finishes_the_run_cleanly(attack: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytracee.engine.cli.tracee_rules", "--input", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(attack.read_text())
    proc.stdin.flush()  # the pipe stays open, as with a live tracer upstream
    assert "loaded 32 signatures" in proc.stderr.readline()
    time.sleep(1.0)  # let it read what is in the pipe
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert out.count("*** Detection ***") == 2
    assert "interrupted" in err and "3 events read" in err


def test_a_closed_stdout_stops_the_run(tmp_path: Path) -> None:
    many = events_file(tmp_path, *[make_event("ptrace", {"request": 0}) for _ in range(3000)], name="many.jsonl")
    pipeline = subprocess.run(  # noqa: S602 - the pipe into head is the test
        f"{sys.executable} -m pytracee.engine.cli.tracee_rules --input {many} | head -n 3",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert pipeline.stdout.count("\n") == 3
    assert "stopped: the output was closed" in pipeline.stderr
    assert pipeline.stderr.count("error") < 5  # one report, not one per finding
    assert "Traceback" not in pipeline.stderr


def test_stdin_twice_and_output_overwrites(tmp_path: Path, attack: Path) -> None:
    twice = tracee_rules("--input", "-", "--input-tracee", "file:stdin", stdin=b"")
    assert twice.returncode == 2 and "read only once" in twice.stderr
    out = tmp_path / "findings.txt"
    out.write_text("old content\n")
    tracee_rules("--input", str(attack), "--output", str(out))
    assert "old content" not in out.read_text() and out.read_text().count("*** Detection ***") == 2
    listing = tmp_path / "untouched.txt"
    listing.write_text("keep\n")
    tracee_rules("--list", "--output", str(listing))
    assert listing.read_text() == "keep\n"
