"""Rules that try to end the process, rule directories that try to hang the loader, and
signals at the worst moments: the run goes on, or ends promptly with its summary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import tracee_rules

SHADOW_EVENT = (
    '{"eventName": "security_file_open", "processId": 9, "args": [{"name": "pathname", "value": "/etc/shadow"},'
    ' {"name": "flags", "value": 0}]}\n'
)

RULE = """
import sys, time
from pathlib import Path
from pytracee.engine import Event, Signature, SignatureMetadata, select

{top}

class Rule(Signature):
    metadata = SignatureMetadata(id="{sig_id}", name="{sig_id}", event_name="{sig_id}".lower())
    selected_events = [select("security_file_open")]

    def on_event(self, event: Event) -> None:
        {on_event}
        self.emit(event, {{"rule": "{sig_id}"}})

    def on_signal(self, signal) -> None:
        {on_signal}

    def close(self) -> None:
        {close}
"""


def rule(
    directory: Path,
    name: str,
    sig_id: str,
    *,
    top: str = "",
    on_event: str = "pass",
    on_signal: str = "pass",
    close: str = "pass",
) -> None:
    (directory / f"{name}.py").write_text(
        textwrap.dedent(RULE).format(top=top, sig_id=sig_id, on_event=on_event, on_signal=on_signal, close=close)
    )


@pytest.mark.parametrize(
    ("where", "code"),
    [
        ("top", "sys.exit(3)"),
        ("top", "raise KeyboardInterrupt"),
        ("on_event", "sys.exit(0)"),
        ("on_event", "raise KeyboardInterrupt"),
        ("on_signal", "sys.exit(4)"),
        ("close", "raise SystemExit('bye')"),
    ],
)
def test_a_rule_ending_the_process_is_that_rules_error(tmp_path: Path, where: str, code: str) -> None:
    rule(tmp_path, "bad", "BAD-1", **{where: code})
    rule(tmp_path, "good", "GOOD-1")
    events = tmp_path / "events.jsonl"
    events.write_text(SHADOW_EVENT * 3)
    result = tracee_rules(
        "--rules-dir",
        str(tmp_path),
        "--rules",
        "GOOD-1,TRC-102" + ("" if where == "top" else ",BAD-1"),
        "--input",
        str(events),
    )
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr
    assert "3 events read, 0 skipped" in result.stderr  # the summary: the run went to its end
    assert result.stdout.count("Signature ID: GOOD-1") == 3  # the other rules still found everything
    if where == "top":
        line = textwrap.dedent(RULE).splitlines().index("{top}") + 1
        assert f"not loaded: {tmp_path / 'bad.py'}:{line}: " in result.stderr
    else:
        assert "BAD-1" in result.stderr and "tried to end the process" in result.stderr
        assert "signature errors: BAD-1: " in result.stderr


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytracee.engine.cli.tracee_rules", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def wait_until_reading(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """Wait for the line tracee-rules logs once its signal handlers are in place and it starts
    reading (a signal before that ends the process as Python does); the stderr read so far."""
    assert proc.stderr is not None
    lines: list[str] = []
    reading = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        while not reading.is_set() and (line := proc.stderr.readline()):
            lines.append(line)
            if "; reading " in line:
                reading.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert reading.is_set(), "tracee-rules did not start reading:\n" + "".join(lines)
    return "".join(lines)


def test_a_signal_during_end_of_input_still_closes_the_others_and_prints_the_summary(tmp_path: Path) -> None:
    rule(tmp_path, "a_slow", "SLOW-1", close="Path('closing').touch(); time.sleep(30)")
    rule(tmp_path, "b_later", "LATER-1", on_signal="Path('signalled').touch()", close="Path('closed').touch()")
    events = tmp_path / "events.jsonl"
    events.write_text(SHADOW_EVENT)
    proc = start(["--rules-dir", str(tmp_path), "--rules", "SLOW-1,LATER-1", "--input", str(events)], tmp_path)
    try:
        wait_for(tmp_path / "closing")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert time.monotonic() - started < 5
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted in close of signature SLOW-1" in stderr
    assert (tmp_path / "signalled").exists() and (tmp_path / "closed").exists()
    assert "1 events read, 0 skipped; 2 findings from 2 signatures" in stderr


def test_a_second_signal_ends_a_stuck_run_at_once(tmp_path: Path) -> None:
    # The first signal stops the reading; close() then ignores interruptions and hangs.
    hang = "Path('closing').touch()\n        while True:\n            try:\n                time.sleep(1)\n            except BaseException:\n                pass"
    rule(tmp_path, "stuck", "STUCK-1", close=hang)
    proc = start(["--rules-dir", str(tmp_path), "--rules", "STUCK-1", "--input", "/dev/zero"], tmp_path)
    try:
        head = wait_until_reading(proc)
        time.sleep(0.5)  # in the reading loop
        proc.send_signal(signal.SIGINT)
        wait_for(tmp_path / "closing")
        time.sleep(0.3)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert time.monotonic() - started < 3
    assert proc.returncode == 130, head + stderr
    assert "second signal: exiting now" in stderr


# --- rules directories ----------------------------------------------------------------------


def test_fifos_devices_and_oversized_files_in_a_rules_dir_are_skipped(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    os.mkfifo(rules / "pipe.rego")
    (rules / "zero.yaml").symlink_to("/dev/zero")
    (rules / "huge.rego").write_text("package x\n" + "# padding\n" * 600_000)
    rule(rules, "good", "GOOD-1")
    events = tmp_path / "events.jsonl"
    events.write_text(SHADOW_EVENT)
    started = time.monotonic()
    result = tracee_rules("--rules-dir", str(rules), "--rules", "GOOD-1", "--input", str(events))
    assert time.monotonic() - started < 30
    assert result.returncode == 0, result.stderr
    assert f"{rules / 'pipe.rego'}: skipped: not a regular file" in result.stderr
    assert f"{rules / 'zero.yaml'}: skipped: not a regular file" in result.stderr
    assert "huge.rego" in result.stderr and "rule files are limited to" in result.stderr
    assert result.stdout.count("Signature ID: GOOD-1") == 1
    strict = tracee_rules("--rules-dir", str(rules), "--rules", "GOOD-1", "--input", str(events), "--strict")
    assert strict.returncode == 2  # the oversized file is a load error


def test_an_import_error_under_a_relative_rules_dir_names_its_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "broken.py").write_text("import os\n\nraise ImportError('no such helper')\n")
    events = tmp_path / "events.jsonl"
    events.write_text(SHADOW_EVENT)
    result = tracee_rules("--rules-dir", "rules", "--input", str(events), cwd=tmp_path)
    assert "rules/broken.py:3: ImportError: no such helper" in result.stderr
