"""The progress line of long replays: on a terminal only, redrawn in place, rate-limited.

The command runs with its stderr on a real pseudo-terminal (``os.openpty``), as in an
interactive shell, or on a pipe, as under a service manager or in CI.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

TRACEE_RULES = Path(sys.executable).with_name("tracee-rules")

SLOW_RULE = """
import time

from pytracee.engine import select, signature


@signature(id="TEST-SLOW", name="Slow", events=[select("openat", pathname="/slow*")])
def slow(event):
    time.sleep(0.3)
    return True
"""


@pytest.fixture
def long_replay(tmp_path: Path) -> tuple[Path, Path]:
    """About 3 MiB of events, with 5 that take the rules directory's signature 0.3 s each."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "slow.py").write_text(SLOW_RULE)
    lines = []
    for i in range(15_000):
        path = f"/slow/{i}" if i % 3_000 == 1_500 else f"/tmp/file-{i:08d}"
        args = [{"name": "pathname", "type": "const char*", "value": path}, {"name": "flags", "value": 0}]
        lines.append(json.dumps({"eventName": "openat", "processName": "app", "processId": i, "args": args}))
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    assert events.stat().st_size > 2 << 20
    return events, rules


def run_on_terminal(*args: str, findings_too: bool = False) -> tuple[int, str]:
    """Run tracee-rules with stderr (and with ``findings_too`` stdout) on a pseudo-terminal;
    exit status and what the terminal got."""
    controller, terminal = os.openpty()
    received = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal side is closed
                return
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        run = subprocess.run(
            [str(TRACEE_RULES), *args],
            stdout=terminal if findings_too else subprocess.DEVNULL,
            stderr=terminal,
            timeout=120,
            check=False,
        )
    finally:
        os.close(terminal)
        reader.join(10)
        os.close(controller)
    return run.returncode, received.decode("utf-8", "replace")


def test_progress_line_on_a_terminal(long_replay: tuple[Path, Path]) -> None:
    events, rules = long_replay
    status, screen = run_on_terminal("--input", str(events), "--rules", "TEST-SLOW", "--rules-dir", str(rules))
    assert status == 0, screen
    total = f"{events.stat().st_size / (1 << 20):,.1f} MiB"
    drawn = [line for line in re.findall(r"\r\x1b\[2Ktracee-rules: ([^\r\n]*)", screen) if "events read" not in line]
    assert drawn, screen
    for line in drawn:
        assert re.fullmatch(
            rf"[\d,]+ events, [\d,]+ events/s, [\d.,]+ of {re.escape(total)} \(\d+%\), [\d,]+ findings?", line
        ), line
    assert len(drawn) <= 2 * 10 + 2  # at most one redraw per 0.5 s over the ~1.5 s run (generous)
    summary = screen.rindex("events read")
    assert screen.rfind("\r\x1b[2K", 0, summary) > screen.rfind(drawn[-1], 0, summary)  # erased before it
    assert "15000 events read, 0 skipped; 5 findings" in screen


def test_progress_line_follows_the_workers(long_replay: tuple[Path, Path]) -> None:
    """Under --workers the main process reads nothing itself: its line shows what the workers
    report (every 0.5 s), not a run stuck at zero."""
    events, rules = long_replay
    status, screen = run_on_terminal(
        "--input", str(events), "--rules", "TEST-SLOW", "--rules-dir", str(rules), "--workers", "2"
    )
    assert status == 0, screen
    drawn = [line for line in re.findall(r"\r\x1b\[2Ktracee-rules: ([^\r\n]*)", screen) if "events read" not in line]
    counts = [int(re.match(r"([\d,]+) events", line).group(1).replace(",", "")) for line in drawn]  # type: ignore[union-attr]
    assert counts and max(counts) > 0, screen
    assert counts == sorted(counts)
    assert "15000 events read, 0 skipped; 5 findings" in screen


def test_no_progress_without_a_terminal_or_when_asked(long_replay: tuple[Path, Path]) -> None:
    events, rules = long_replay
    piped = subprocess.run(
        [str(TRACEE_RULES), "--input", str(events), "--rules", "TEST-SLOW", "--rules-dir", str(rules)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert piped.returncode == 0 and "5 findings" in piped.stderr
    assert "\x1b" not in piped.stderr and "events/s" not in piped.stderr
    status, screen = run_on_terminal(
        "--input", str(events), "--rules", "TEST-SLOW", "--rules-dir", str(rules), "--no-progress"
    )
    assert status == 0 and "5 findings" in screen and "events/s" not in screen


def test_a_finding_printed_on_the_same_terminal_erases_the_line_first(long_replay: tuple[Path, Path]) -> None:
    events, rules = long_replay
    status, screen = run_on_terminal(
        "--input", str(events), "--rules", "TEST-SLOW", "--rules-dir", str(rules), findings_too=True
    )
    assert status == 0, screen
    assert "events/s" in screen  # the line was drawn meanwhile
    assert screen.count("*** Detection ***") == 5
    for drawn in re.finditer(r"tracee-rules: [^\r\n]* events/s[^\r\n]*", screen):
        # erased (or redrawn) before anything else: no finding is printed after it on its line
        assert screen.startswith("\r\x1b[2K", drawn.end()), repr(screen[drawn.start() : drawn.end() + 40])


def test_input_position_counts_finished_files_and_sees_waiting_data(tmp_path: Path) -> None:
    from pytracee.engine.operations.progress import InputPosition
    from pytracee.engine.reader import EventReader

    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(json.dumps({"eventName": "openat", "args": []}) + "\n")
    second.write_text(json.dumps({"eventName": "close", "args": []}) + "\n")
    reader = EventReader([first, second])
    position = InputPosition(reader)
    assert position.total == first.stat().st_size + second.stat().st_size
    assert position.bytes_read() == 0 and not position.waiting()
    events = iter(reader)
    next(events)  # the first file, read whole
    assert position.bytes_read() == first.stat().st_size
    next(events)
    assert position.bytes_read() == position.total
    assert list(events) == [] and position.bytes_read() == position.total and not position.waiting()

    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as pipe_in, os.fdopen(write_end, "wb") as pipe_out:
        piped = EventReader(["-"], stdin=pipe_in)
        pipe_out.write(b'{"eventName": "openat"}\n')
        pipe_out.flush()
        stream = iter(piped)
        next(stream)
        pipe_out.write(b'{"eventName": "close"}\n')
        pipe_out.flush()
        assert InputPosition(piped).waiting()  # data sits in the pipe, not read yet
