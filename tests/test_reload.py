"""Hot reload: SIGHUP while events flow through `tracee-rules --input -` from a pipe."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytracee.engine.testing import make_event

COUNTER = '''\
from pytracee.engine import Event, Signature, SignatureMetadata, select


class Counter(Signature):
    """Reports every ptrace with how many it has seen: its state."""

    metadata = SignatureMetadata(id="ACME-20", name="ptrace counter")
    selected_events = [select("ptrace")]

    def init(self, ctx):
        super().init(ctx)
        self.seen = 0

    def on_event(self, event: Event) -> None:
        self.seen += 1
        self.emit(event, {"KEY": self.seen})
'''


def line(event_name: str, args: dict, **fields: object) -> bytes:
    return (json.dumps(make_event(event_name, args, **fields).raw) + "\n").encode()


PTRACE = line("ptrace", {"request": 16, "pid": 1, "addr": 0, "data": 0}, processName="gdb")
CADDY_SHELL = line("sched_process_exec", {"pathname": "/bin/sh", "prev_comm": "caddy"}, processName="sh")


class Run:
    """tracee-rules reading a pipe; findings come back one JSON line each."""

    def __init__(self, tmp_path: Path, config: Path, rules: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytracee.engine.cli.tracee_rules", "--config", str(config), "--input", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.sent = 0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw)

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()
        self.sent += 1

    def finding(self) -> dict:
        return json.loads(self.lines.get(timeout=60))

    def hangup(self) -> None:
        self.proc.send_signal(signal.SIGHUP)


@pytest.fixture
def run(tmp_path: Path) -> Iterator[tuple[Run, Path, Path]]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "counter.py").write_text(COUNTER)
    config = tmp_path / "pytracee.yaml"
    config.write_text(f"rules: [ACME-20, TRC-1016]\nrules-dir: [{rules}]\noutput-template: rawjson\n")
    started = Run(tmp_path, config, rules)
    yield started, config, rules
    if started.proc.poll() is None:
        started.proc.kill()
        started.proc.wait()


def test_sighup_reloads_config_and_rules_keeping_state_and_events(run: tuple[Run, Path, Path]) -> None:
    tracee, config, rules = run
    tracee.send(PTRACE)
    tracee.send(PTRACE)
    assert [tracee.finding()["Data"] for _ in range(2)] == [{"KEY": 1}, {"KEY": 2}]
    tracee.send(CADDY_SHELL)  # caddy is no web server yet: no finding
    tracee.send(PTRACE)
    assert tracee.finding()["Data"] == {"KEY": 3}

    # a new parameter: caddy is a web server; the counter is unchanged and keeps counting
    config.write_text(config.read_text() + "params:\n  TRC-1016: {web_servers: [nginx, caddy]}\n")
    tracee.hangup()
    tracee.send(CADDY_SHELL)
    assert tracee.finding()["SigMetadata"]["ID"] == "TRC-1016"
    tracee.send(PTRACE)
    assert tracee.finding()["Data"] == {"KEY": 4}

    # a broken configuration keeps the running one
    good = config.read_text()
    config.write_text(good + "exceptions:\n  - name: x\n    match: {processName: {like: gdb}}\n")
    tracee.hangup()
    tracee.send(PTRACE)
    assert tracee.finding()["Data"] == {"KEY": 5}
    tracee.send(CADDY_SHELL)
    assert tracee.finding()["SigMetadata"]["ID"] == "TRC-1016"

    # a rule file that does not load keeps the running version too
    config.write_text(good)
    (rules / "broken.py").write_text("import nothing_of_that_name\n")
    tracee.hangup()
    tracee.send(PTRACE)
    assert tracee.finding()["Data"] == {"KEY": 6}
    (rules / "broken.py").unlink()

    # a changed rule file starts afresh; an exception now hides gdb's findings of ACME-20
    config.write_text(good)
    (rules / "counter.py").write_text(COUNTER.replace('"KEY"', '"count"'))
    tracee.hangup()
    tracee.send(PTRACE)
    assert tracee.finding()["Data"] == {"count": 1}
    config.write_text(good + "exceptions:\n  - {name: debugger, signatures: [ACME-20], match: {processName: gdb}}\n")
    tracee.hangup()
    tracee.send(PTRACE)
    tracee.send(CADDY_SHELL)
    assert tracee.finding()["SigMetadata"]["ID"] == "TRC-1016"  # the ptrace finding was suppressed

    assert tracee.proc.stdin is not None
    tracee.proc.stdin.close()
    assert tracee.proc.wait(timeout=60) == 0
    assert tracee.proc.stderr is not None
    stderr = tracee.proc.stderr.read().decode()
    assert f"reload: {config}:" in stderr and "unknown operator 'like'" in stderr
    assert "reload failed: keeping the running configuration" in stderr
    assert f"not loaded: {rules / 'broken.py'}:1: ModuleNotFoundError" in stderr
    assert "reload failed: 1 plugin(s) or rule file(s) failed to load (listed above); keeping" in stderr
    assert "reloaded: 2 signatures (1 kept running with their state, 1 new or changed, 1 closed)" in stderr
    assert f"{tracee.sent} events read, 0 skipped" in stderr
    assert "suppressed by exceptions: debugger: 1" in stderr
    assert tracee.lines.empty()


OPENS = '''\
from pytracee.engine import Event, Signature, SignatureMetadata, select


class Opens(Signature):
    """Reports every security_file_open."""

    metadata = SignatureMetadata(id="ACME-21", name="opens")
    selected_events = [select("security_file_open")]

    def on_event(self, event: Event) -> None:
        self.emit(event, {"path": event.str_arg("pathname")})
'''


def test_reload_keeps_the_syscall_pairing_and_the_event_held_for_it(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "opens.py").write_text(OPENS)
    config = tmp_path / "pytracee.yaml"
    config.write_text(f"rules: [ACME-21]\nrules-dir: [{rules}]\noutput-template: rawjson\n")
    tracee = Run(tmp_path, config, rules)
    try:

        def opened(tid: int, path: str) -> bytes:
            return line(
                "openat", {"dirfd": -100, "pathname": path, "flags": 0, "mode": 0}, hostThreadId=tid, returnValue=3
            )

        def lsm(tid: int, path: str) -> bytes:
            return line("security_file_open", {"pathname": path, "flags": 0}, hostThreadId=tid, syscall="openat")

        tracee.send(opened(7001, "/etc/hosts"))  # openat is traced; pytracee's order: paired at once
        tracee.send(lsm(7001, "/etc/hosts"))
        assert tracee.finding()["Data"]["syscall_event"]["args"]["pathname"] == "/etc/hosts"  # running now
        tracee.send(lsm(7002, "/etc/shadow"))  # Tracee's order: held until its openat has gone by
        config.write_text(config.read_text() + "params: {}\n")
        tracee.hangup()
        tracee.send(opened(7002, "/etc/shadow"))
        held = tracee.finding()
        assert held["Data"]["path"] == "/etc/shadow"
        assert held["Data"]["syscall_event"]["args"]["pathname"] == "/etc/shadow"
        tracee.send(lsm(7003, "/etc/passwd"))  # after the reload: still held and paired
        tracee.send(opened(7003, "/etc/passwd"))
        after = tracee.finding()
        assert after["Data"]["syscall_event"]["args"]["pathname"] == "/etc/passwd"
        assert tracee.proc.stdin is not None
        tracee.proc.stdin.close()
        assert tracee.proc.wait(timeout=60) == 0
        assert tracee.proc.stderr is not None
        assert "reloaded: 1 signatures" in tracee.proc.stderr.read().decode()
        assert tracee.lines.empty()
    finally:
        if tracee.proc.poll() is None:
            tracee.proc.kill()
            tracee.proc.wait()


def test_a_reload_selecting_events_the_replay_skips_says_they_stay_skipped(tmp_path: Path) -> None:
    """A replay decides at start which records to decode; a reload that selects other events
    (or filters them otherwise) cannot bring back records it skips: it says so, by event."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "counter.py").write_text(COUNTER)
    (rules / "mmaps.py").write_text(OPENS.replace("ACME-21", "ACME-22").replace("security_file_open", "mmap"))
    config = tmp_path / "pytracee.yaml"
    config.write_text(f"rules: [ACME-20]\nrules-dir: [{rules}]\noutput-template: rawjson\n")
    tracee = Run(tmp_path, config, rules)
    try:
        tracee.send(PTRACE)
        assert tracee.finding()["Data"] == {"KEY": 1}
        config.write_text(f"rules: [ACME-20, ACME-22]\nrules-dir: [{rules}]\noutput-template: rawjson\n")
        tracee.hangup()
        tracee.send(PTRACE)  # the reload happens before this event
        assert tracee.finding()["Data"] == {"KEY": 2}
        tracee.send(line("mmap", {"addr": 0, "len": 4096, "prot": 7, "flags": 34, "fd": -1, "pathname": "/x"}))
        tracee.send(PTRACE)
        assert tracee.finding()["Data"] == {"KEY": 3}  # the mmap record was skipped, as the warning says
        assert tracee.proc.stdin is not None
        tracee.proc.stdin.close()
        assert tracee.proc.wait(timeout=60) == 0
        assert tracee.proc.stderr is not None
        stderr = tracee.proc.stderr.read().decode()
        assert "reloaded: 2 signatures" in stderr
        assert "reload: this replay decides which records to decode as it started: records of mmap" in stderr
        assert "ptrace" not in stderr.split("records of ", 1)[1].split("\n", 1)[0]  # decoded all along
        assert tracee.lines.empty()  # no finding of ACME-22 on the skipped mmap
    finally:
        if tracee.proc.poll() is None:
            tracee.proc.kill()
            tracee.proc.wait()
