"""Hostile and unlucky input to tracee-rules: every record is read or counted, memory stays
bounded, the process never dies and always says what happened."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

import psutil
import pytest
from conftest import tracee_rules
from pytracee.engine.catalogue import is_known_event
from pytracee.engine.reader import EventReader

OPENAT = {"eventName": "openat", "processId": 7, "args": [{"name": "pathname", "value": "/etc/passwd"}]}
OPENAT_LINE = json.dumps(OPENAT)
#: Peak RSS allowed to a tracee-rules run on bounded limits, whatever the input (an idle run
#: with every built-in signature takes about 50 MB).
RSS_BOUND = 200 << 20

COMMAND = [sys.executable, "-m", "pytracee.engine.cli.tracee_rules"]


def run_measured(
    args: list[str], feed: Callable[[IO[bytes]], None] | None = None, interrupt_after: float | None = None
) -> tuple[int, str, int]:
    """Run tracee-rules, optionally feeding stdin from a thread; (rc, stderr, peak RSS)."""
    proc = subprocess.Popen(
        [*COMMAND, *args],
        stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    feeder = None
    if feed is not None:
        assert proc.stdin is not None

        def pump() -> None:
            try:
                feed(proc.stdin)  # type: ignore[arg-type]
                proc.stdin.close()  # type: ignore[union-attr]
            except BrokenPipeError:
                pass

        feeder = threading.Thread(target=pump, daemon=True)
        feeder.start()
    stderr_chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    watched = psutil.Process(proc.pid)
    peak = 0
    started = time.monotonic()
    try:
        while proc.poll() is None:
            try:
                peak = max(peak, watched.memory_info().rss)
            except psutil.Error:
                pass
            if interrupt_after is not None and time.monotonic() - started > interrupt_after:
                proc.send_signal(signal.SIGINT)
                interrupt_after = None
            if time.monotonic() - started > 120:
                raise AssertionError("tracee-rules did not finish in 120 s")
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    reader.join(5)
    if feeder is not None:
        feeder.join(5)
    return proc.returncode, b"".join(stderr_chunks).decode(errors="replace"), peak


# --- validation: the array form is read exactly like the lines form ----------------------

HOSTILE_RECORDS = [
    '{"eventName":"ptrace","args":[{"name":"request","value":"\\ud800"}]}',  # lone surrogate escape
    '{"eventName":"ptrace","args":[{"name":"request","value":"\\udfff\\ud800"}]}',
    '{"eventName":"openat","processId":18446744073709551616}',  # beyond 64 bits
    '{"eventName":"openat","args":[{"name":"flags","value":NaN}]}',
    '{"eventName":"openat","args":[{"name":"flags","value":Infinity}]}',
    '{"eventName":"openat","args":[{"name":"flags","value":-Infinity}]}',
    '{"eventName":"openat","args":[{"name":"flags","value":1e400}]}',
    '{"eventName":"openat","args":' + "[" * 40 + "]" * 40 + "}",  # deeper than MAX_NESTING
]


def test_json_array_records_are_validated_exactly_like_json_lines(tmp_path: Path) -> None:
    lines = tmp_path / "hostile.jsonl"
    lines.write_text("\n".join([OPENAT_LINE, *HOSTILE_RECORDS, OPENAT_LINE]) + "\n")
    array = tmp_path / "hostile.json"
    array.write_text("[\n" + ",\n".join([OPENAT_LINE, *HOSTILE_RECORDS, OPENAT_LINE]) + "\n]\n")
    results = []
    for path in (lines, array):
        reader = EventReader([path], is_known_event=is_known_event)
        events = list(reader)
        results.append(([e.raw for e in events], dict(reader.stats.skipped_by_reason)))
        assert reader.stats.events == 2 and reader.stats.skipped == len(HOSTILE_RECORDS), path
    assert results[0] == results[1]
    assert results[0][1]["too deeply nested"] == 1


def test_a_lone_surrogate_in_an_array_no_longer_kills_the_rego_backend() -> None:
    stdin = b'[{"eventName":"ptrace","args":[{"name":"request","value":"\\ud800"}]}]'
    result = tracee_rules("--rules", "TRC-2", "--input", "-", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert "<stdin>:1: invalid JSON: a lone UTF-16 surrogate escape" in result.stderr
    assert "0 events read, 1 skipped" in result.stderr


def test_invalid_utf8_is_named_as_such_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(OPENAT_LINE.encode() + b'\n{"eventName":"openat","processName":"a\xffb"}\n')
    result = tracee_rules("--input", str(path))
    assert f"{path}:2: invalid UTF-8: byte 39 of the record: invalid start byte" in result.stderr
    assert "surrogates not allowed" not in result.stderr


# --- bounded memory ----------------------------------------------------------------------------


def test_dev_zero_is_read_in_bounded_memory_and_interruptible() -> None:
    rc, stderr, peak = run_measured(["--input", "/dev/zero"], interrupt_after=2.0)
    assert rc == 130, stderr
    assert "/dev/zero:1: line too long" in stderr
    assert "0 events read, 1 skipped (line too long: 1)" in stderr
    assert peak < RSS_BOUND, f"peak RSS {peak >> 20} MB"


def test_a_200_mb_line_costs_no_more_than_the_limit(tmp_path: Path) -> None:
    def feed(stdin: IO[bytes]) -> None:
        stdin.write(OPENAT_LINE.encode() + b"\n")
        block = b"x" * (1 << 20)
        for _ in range(200):
            stdin.write(block)
        stdin.write(b"\n" + OPENAT_LINE.encode() + b"\n")

    rc, stderr, peak = run_measured(["--input", "-"], feed)
    assert rc == 0, stderr
    assert "2 events read, 1 skipped (line too long: 1)" in stderr
    assert "<stdin>:2: line too long" in stderr
    assert peak < RSS_BOUND, f"peak RSS {peak >> 20} MB"


def test_a_gzip_bomb_is_decompressed_in_bounded_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.jsonl.gz"
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    zeros = bytes(1 << 20)
    with bomb.open("wb") as out:
        for _ in range(512):  # 512 MiB of zeros in about half a megabyte
            out.write(compressor.compress(zeros))
        out.write(compressor.compress(b"\n" + OPENAT_LINE.encode() + b"\n"))
        out.write(compressor.flush())
    assert bomb.stat().st_size < 1 << 20
    rc, stderr, peak = run_measured(["--input", str(bomb)])
    assert rc == 0, stderr
    assert "1 events read, 1 skipped (line too long: 1)" in stderr
    assert peak < RSS_BOUND, f"peak RSS {peak >> 20} MB"


def test_an_oversized_array_element_is_skipped_without_being_held(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("w") as out:
        out.write('[{"eventName": "openat", "args": [{"name": "pathname", "value": "')
        for _ in range(150):
            out.write("y" * (1 << 20))
        out.write('"}]},\n' + OPENAT_LINE + "]")
    rc, stderr, peak = run_measured(["--input", str(path)])
    assert rc == 0, stderr
    assert f"{path}:1: record too long" in stderr
    assert "1 events read, 1 skipped (record too long: 1)" in stderr
    assert peak < RSS_BOUND, f"peak RSS {peak >> 20} MB"


# --- nothing after an array is lost ------------------------------------------------------------------


def test_lines_and_arrays_concatenated_are_all_read(tmp_path: Path) -> None:
    path = tmp_path / "concatenated.json"
    path.write_text(
        json.dumps([OPENAT])  # line 1: an array on one line
        + "\n"
        + OPENAT_LINE  # line 2: a JSON line
        + "\n"
        + json.dumps([OPENAT, OPENAT], indent=2)  # lines 3-24: a pretty array, elements at 4 and 14
        + "garbage\n"  # line 24, right after its ']'
        + OPENAT_LINE
        + "\n"  # line 25
        + "["
        + OPENAT_LINE
        + "]["
        + OPENAT_LINE
        + "]\n"  # line 26: two arrays back to back
    )
    reader = EventReader([path])
    events = list(reader)
    assert len(events) == 7
    assert [e.location.rsplit(":", 1)[1] for e in events] == ["1", "2", "4", "14", "25", "26", "26"]
    assert dict(reader.stats.skipped_by_reason) == {"invalid JSON": 1}
    result = tracee_rules("--input", str(path), "--strict")
    assert result.returncode == 1
    assert f"{path}:24: invalid JSON" in result.stderr


def test_an_array_left_open_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "open.json"
    path.write_text("[" + OPENAT_LINE + ",\n" + OPENAT_LINE + ",\n")
    reader = EventReader([path])
    assert len(list(reader)) == 2
    assert dict(reader.stats.skipped_by_reason) == {"invalid JSON": 1}


@pytest.mark.parametrize(
    ("text", "events", "skipped"),
    [
        ("[" * 1001, 0, "2 skipped (too deeply nested: 1, invalid JSON: 1)"),  # never closed: line 2 is inside
        ("[" * 1001 + "]" * 1001, 1, "1 skipped (too deeply nested: 1)"),
        ('{"a":' * 2000 + "1" + "}" * 2000, 1, "1 skipped (too deeply nested: 1)"),
    ],
)
def test_deep_nesting_is_a_counted_record_not_a_traceback(tmp_path: Path, text: str, events: int, skipped: str) -> None:
    path = tmp_path / "deep.json"
    path.write_text(text + "\n" + OPENAT_LINE + "\n")
    result = tracee_rules("--input", str(path))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert "too deeply nested" in result.stderr
    assert f"{events} events read, {skipped}" in result.stderr


def test_lines_swallowed_by_an_element_that_never_ends_are_reported(tmp_path: Path) -> None:
    """A stray line opening 5,000 arrays turns the JSON lines after it into one element that never
    closes: those lines cannot be read, but the warning says which they were."""
    path = tmp_path / "stray.jsonl"
    path.write_text("\n".join([OPENAT_LINE] * 3 + ["[" * 5000] + [OPENAT_LINE] * 20) + "\n")
    result = tracee_rules("--input", str(path))
    assert result.returncode == 0, result.stderr
    assert f"{path}:4: invalid JSON: the input ends inside this array element: lines 4-24 were skipped" in result.stderr
    assert "3 events read, 2 skipped (too deeply nested: 1, invalid JSON: 1)" in result.stderr
    pretty = tmp_path / "cut.json"  # a pretty array cut inside an element: the lines it covered
    pretty.write_text(json.dumps([OPENAT, OPENAT], indent=2)[:-40])
    reader = EventReader([pretty])
    assert len(list(reader)) == 1
    assert dict(reader.stats.skipped_by_reason) == {"invalid JSON": 2}


# --- latency ------------------------------------------------------------------------------------------


def test_array_elements_arriving_on_a_pipe_are_handed_on_at_once() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as stdin_stream, os.fdopen(write_end, "wb", buffering=0) as writer:
        reader = iter(EventReader(["-"], stdin=stdin_stream))
        writer.write(b"[" + OPENAT_LINE.encode() + b",\n")  # the array goes on: no ']' yet
        got: list[str] = []
        thread = threading.Thread(target=lambda: got.append(next(reader).name), daemon=True)
        thread.start()
        thread.join(5)
        assert got == ["openat"], "the first element was not handed on before the array ended"
        writer.write(OPENAT_LINE.encode() + b"]")


def test_json_lines_arriving_on_a_pipe_are_handed_on_at_once() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as stdin_stream, os.fdopen(write_end, "wb", buffering=0) as writer:
        reader = iter(EventReader(["-"], stdin=io.BufferedReader(stdin_stream.raw)))  # type: ignore[attr-defined]
        writer.write(OPENAT_LINE.encode() + b"\n")
        got: list[str] = []
        thread = threading.Thread(target=lambda: got.append(next(reader).name), daemon=True)
        thread.start()
        thread.join(5)
        assert got == ["openat"]


# --- outputs and standard streams -------------------------------------------------------------------------


def test_output_equal_to_an_input_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    events = tmp_path / "v.jsonl"
    events.write_text(OPENAT_LINE + "\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(events)
    for args, stdin in (
        (["--input", str(events), "--output", str(events)], None),
        (["--input", str(events), "--output", str(link)], None),
        (["--input", "-", "--output", str(events)], events),
    ):
        with open(stdin or os.devnull, "rb") as source:
            result = subprocess.run([*COMMAND, *args], stdin=source, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, args
        assert "writing findings there would destroy it" in result.stderr
        assert events.read_text() == OPENAT_LINE + "\n"


def test_closed_standard_streams_are_clear_errors(tmp_path: Path) -> None:
    events = tmp_path / "v.jsonl"
    events.write_text(OPENAT_LINE + "\n")
    cases = [
        (["--input", str(events)], {"stdout": None}, "standard output is closed"),
        (["--list"], {"stdout": None}, "standard output is closed"),
        ([], {"stdin": None}, "standard input is closed"),
        (["--input", "-", "--output", str(tmp_path / "f.txt")], {"stdin": None}, "standard input is closed"),
    ]
    for args, closed, message in cases:
        redirect = " ".join(f"{'<' if stream == 'stdin' else '>'}&-" for stream in closed)
        command = " ".join(map(str, [*COMMAND, *args])) + " " + redirect
        result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, (command, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, command


HOSTILE_PTRACE = {
    "eventName": "ptrace",
    "processName": "\x1b[2Jevil\nSignature ID: FAKE",
    "hostName": "h\x1b]0;title\x07\u202e",
    "args": [{"name": "request", "value": "PTRACE_TRACEME"}],
}


@pytest.mark.parametrize("template", ["default", "simple", "csv", "xml"])
def test_text_findings_never_carry_control_characters_from_events(template: str) -> None:
    result = tracee_rules(
        "--output-template", template, "--input", "-", stdin=(json.dumps(HOSTILE_PTRACE) + "\n").encode()
    )
    assert result.returncode == 0, result.stderr
    assert not any(c in result.stdout for c in "\x1b\x07\u202e"), repr(result.stdout)
    assert "\\x1b[2Jevil\\nSignature ID: FAKE" in result.stdout  # shown, escaped: nothing forged
    assert result.stdout.count("Signature ID: FAKE") == result.stdout.count("\\nSignature ID: FAKE")


def test_json_findings_keep_event_data_exact() -> None:
    result = tracee_rules(
        "--output-template", "rawjson", "--input", "-", stdin=(json.dumps(HOSTILE_PTRACE) + "\n").encode()
    )
    (finding,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert finding["Context"]["processName"] == HOSTILE_PTRACE["processName"]
    assert "\x1b" not in result.stdout


def test_log_messages_quoting_events_are_escaped() -> None:
    result = tracee_rules("--input", "-", stdin=b'{"eventName":"pt\\u001b[2Jrace"}\n')
    assert "\x1b" not in result.stderr
    assert "unknown event: 'pt\\x1b[2Jrace' is not a Tracee event" in result.stderr
