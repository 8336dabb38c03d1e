"""``tracee`` against hostile programs: real eBPF, real processes, attacker-chosen names.

File names and argv with newlines, ``ESC [2J``, other C0/C1 controls, Unicode line
separators, bidi overrides and invalid UTF-8; paths of 4,095 and 5,000 bytes; an exec with
10,000 arguments and a 1 MB environment; 1,000 processes forking and exec'ing at once.
tracee must keep the terminal safe (table output and findings escaped), keep ``-o json``
one valid object per line, stay within bounded memory, count what it drops, and still
detect an attack made right after the noise.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from pytracee.collector.decode import HEADER, Decoder
from pytracee.collector.printers import EventPrinter, parse_output_options
from pytracee.collector.wire import EVENTS
from pytracee.engine.safetext import escape_text, json_line

REPO = Path(__file__).resolve().parent.parent

live = pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/sys/kernel/btf/vmlinux").exists(),
    reason="live tracing needs root and kernel BTF",
)

#: A file name an attacker could create: ESC [2J (clear screen), newline, CR, BEL, a lone
#: invalid byte, C1 CSI (U+009B, valid UTF-8), U+2028, right-to-left override, 0xff 0xfe.
HOSTILE_NAME = b"evil\x1b[2J\n\r\x07\x9b\xc2\x9b\xe2\x80\xa8\xe2\x80\xaeexe.\xff\xfe"
HOSTILE_TEXT = HOSTILE_NAME.decode("utf-8", "replace")
#: argv of an exec: an OSC title injection and invalid UTF-8.
HOSTILE_ARGV = [b"line1\nline2\x1b]0;pwned\x07", b"\xff\xfe\x9b", "\u202eevil".encode()]
#: The comm a traced program gives itself before ptrace(PTRACE_TRACEME) (TRC-102).
HOSTILE_COMM = b"\x1b[2J\n\x9b\xc2\x9bdbg"
#: No terminal may receive these from event data (C0 but the line ends, DEL, C1,
#: line/paragraph separators, bidi controls).
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}  # small: no exec area is cut by accident

LAUNCHER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, sys.argv[1].encode(), 0, 0, 0)   # PR_SET_NAME: what tracee filters on
sys.stdin.readline()                            # tracee is attached
work = sys.argv[2].encode()
exec(sys.argv[3])
"""

HOSTILE_ACTIONS = r"""
name = os.path.join(work, HOSTILE_NAME)
os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o600))
pid = os.fork()
if pid == 0:
    os.execv(b"/bin/true", [b"/bin/true", *HOSTILE_ARGV])
os.waitpid(pid, 0)
pid = os.fork()
if pid == 0:
    libc.prctl(15, HOSTILE_COMM, 0, 0, 0)
    libc.ptrace(0, 0, 0, 0)                     # PTRACE_TRACEME: anti-debugging
    os._exit(0)
os.waitpid(pid, 0)
"""

LONG_PATHS = r"""
# the longest path the kernel takes (4,095 bytes, PATH_MAX with its NUL), and one of 5,000
deep = work
while len(deep) < 4095 - 300:
    deep = os.path.join(deep, b"d" * 200)
    os.mkdir(deep)
longest = os.path.join(deep, b"f" * (4095 - len(deep) - 1))
assert len(longest) == 4095
os.close(os.open(longest, os.O_CREAT | os.O_WRONLY, 0o600))
try:
    os.open(b"/" * 5000, os.O_RDONLY)
except OSError as exc:
    assert exc.errno == 36                      # ENAMETOOLONG
"""

STORM_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int n = atoi(argv[1]), failed = 0, status;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) { execl("/bin/true", "true", (char *)NULL); _exit(127); }
        if (pid < 0) failed++;
    }
    while (wait(&status) > 0)
        if (!WIFEXITED(status) || WEXITSTATUS(status)) failed++;
    return failed != 0;
}
"""

ANTI_DEBUG = "import ctypes; l = ctypes.CDLL(None); l.prctl(15, b'pyt-antidbg', 0, 0, 0); l.ptrace(0, 0, 0, 0)"


class Tracee:
    """A running ``tracee``; stdout is kept as bytes (what a terminal would receive)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytracee.collector.cli.tracee", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.out = bytearray()
        self.err = bytearray()
        while b"tracing" not in self.err:
            line = self.proc.stderr.readline()
            if not line:
                self.proc.wait(10)
                raise AssertionError("tracee did not start:\n" + self.err.decode(errors="replace"))
            self.err += line
        # full pipes must not stall tracee: both are read all along
        self._readers = [
            threading.Thread(target=self._read, args=(pipe, buf), daemon=True)
            for pipe, buf in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(pipe: Any, buf: bytearray) -> None:
        while chunk := pipe.read1(1 << 16):
            buf += chunk

    def status(self, field: str) -> int:
        """A /proc/PID/status field in kB (VmHWM, RssAnon ...); 0 once the process is gone."""
        try:
            text = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return 0
        match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
        return int(match[1]) if match else 0

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, bytes, str]:
        """Signal tracee (no grace period: what it holds must still be read); status, stdout, stderr."""
        self.proc.send_signal(sig)
        try:
            self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        for reader in self._readers:
            reader.join(10)
        return self.proc.returncode, bytes(self.out), self.err.decode("utf-8", "replace")


def launch(tmp_path: Path, comm: str, actions: str) -> subprocess.Popen[bytes]:
    """A workload process named ``comm`` that runs ``actions`` once told to (a line on stdin)."""
    source = (
        f"HOSTILE_NAME = {HOSTILE_NAME!r}\nHOSTILE_ARGV = {HOSTILE_ARGV!r}\nHOSTILE_COMM = {HOSTILE_COMM!r}\n" + actions
    )
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, comm, str(tmp_path), source], stdin=subprocess.PIPE, env=ENV
    )


def run(launcher: subprocess.Popen[bytes]) -> None:
    assert launcher.stdin is not None
    launcher.stdin.write(b"go\n")
    launcher.stdin.close()
    assert launcher.wait(60) == 0


def summary_count(err: str, what: str) -> int:
    match = re.search(rf"(\d+) {what}", err)
    return int(match[1]) if match else 0


def assert_terminal_safe(data: bytes) -> str:
    """``data`` is valid UTF-8 and holds no control character but its line ends."""
    text = data.decode("utf-8")  # strict: invalid UTF-8 never reaches the terminal
    bad = UNSAFE.search(text)
    assert bad is None, f"raw {bad.group()!r} in the output near {text[max(0, bad.start() - 60) : bad.end() + 20]!r}"
    return text


# ---- terminal output ----------------------------------------------------------------------

TABLE_LINE = re.compile(r"\d\d:\d\d:\d\d:\d{6} ")
FINDING_LINE = re.compile(
    r"(\*\*\* Detection \*\*\*|Time: |Signature ID: |Signature: |Data: |Command: |Hostname: |Ancestry: )"
)


@live
def test_table_output_and_findings_escape_what_programs_choose(tmp_path: Path) -> None:
    launcher = launch(tmp_path, "pyt-hostile", HOSTILE_ACTIONS)
    tracee = Tracee(
        "-e", "openat,execve,sched_process_exec", "--rules", "TRC-102", "-s", "comm=pyt-hostile", "-s", "follow"
    )
    run(launcher)
    status, out, err = tracee.stop()
    assert status == 0, err
    text = assert_terminal_safe(out)
    lines = text.split("\n")
    assert lines[-1] == "" and lines[0].startswith("TIME ")
    for line in lines[1:-1]:  # no event data started a line of its own
        assert line == "" or TABLE_LINE.match(line) or FINDING_LINE.match(line), line
    # every character is still there, visibly: ESC, NL, CR, BEL, C1, U+2028, U+202E escaped
    assert "evil\\x1b[2J\\n\\r\\x07\ufffd\\x9b\\u2028\\u202eexe.\ufffd\ufffd" in text
    assert "line1\\nline2\\x1b]0;pwned\\x07" in text and "\\u202eevil" in text
    # the finding printed by the default template: its Command is the hostile comm, escaped
    assert "Signature ID: TRC-102" in text, err
    assert "Command: \\x1b[2J\\n\ufffd\\x9bdbg\n" in text
    assert_terminal_safe(err.encode())


# ---- JSON lines -----------------------------------------------------------------------------


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


@live
def test_json_output_is_one_strict_object_per_line_with_the_exact_names(tmp_path: Path) -> None:
    launcher = launch(tmp_path, "pyt-json", HOSTILE_ACTIONS + LONG_PATHS)
    tracee = Tracee("-e", "openat,execve", "-s", "comm=pyt-json", "-s", "follow", "-o", "json")
    run(launcher)
    status, out, err = tracee.stop()
    assert status == 0, err
    assert out.endswith(b"\n")
    events = []
    for line in out.split(b"\n")[:-1]:
        event = orjson.loads(line)  # strict: rejects invalid UTF-8 and lone surrogates
        assert event == json.loads(line)
        for string in _strings(event):
            string.encode("utf-8")  # no lone surrogate
        assert UNSAFE.search(line.decode()) is None  # C1, U+2028 ... are \u escapes
        events.append(event)
    assert len(out.splitlines()) == len(events)  # not even str.splitlines() breaks a line
    paths = [a["value"] for e in events if e["eventName"] == "openat" for a in e["args"] if a["name"] == "pathname"]
    assert str(tmp_path) + "/" + HOSTILE_TEXT in paths  # lossless, but for U+FFFD for invalid bytes
    longest = [p for p in paths if p.endswith("f" * 100)]
    assert len(longest) == 1 and len(longest[0]) == 4095  # the longest path, whole
    assert "/" * 4095 in paths  # the 5,000-byte one, cut at 4,095 bytes ...
    assert summary_count(err, "argument values truncated") == 1, err  # ... and counted
    execs = [e for e in events if e["eventName"] == "execve" and e["args"][0]["value"] == "/bin/true"]
    assert execs[0]["args"][1]["value"][1:] == [a.decode("utf-8", "replace") for a in HOSTILE_ARGV]


def test_json_printer_survives_values_orjson_refuses() -> None:
    """Lone surrogates (Python's surrogateescape) and integers past 64 bits: printed, strictly valid."""
    stream = _Buffer()
    printer = EventPrinter(parse_output_options(["json"]), stream)
    printer.print({"eventName": "openat", "processName": "\udcff\x85x", "args": [{"name": "n", "value": 1 << 70}]})
    line = stream.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1 and line.isascii() is False
    event = orjson.loads(line)
    assert event["processName"] == "\ufffd\x85x" and event["args"][0]["value"] == 1 << 70
    assert "\x85" not in line and "\\u0085" in line
    assert json_line({"a": "\u2028\u2029\x7f"}) == '{"a":"\\u2028\\u2029\\u007f"}'
    # a terminal that is not UTF-8 (LANG=...ISO-8859-1): ASCII JSON, surrogate pairs beyond the BMP
    raw = io.BytesIO()
    latin1 = io.TextIOWrapper(raw, encoding="latin-1")
    EventPrinter(parse_output_options(["json"]), latin1).print({"eventName": "x", "processName": "\U0001f600\xe9"})
    latin1.flush()
    assert raw.getvalue().isascii() and orjson.loads(raw.getvalue())["processName"] == "\U0001f600\xe9"


def test_gotemplate_output_escapes_values_and_keeps_tojson_strict(tmp_path: Path) -> None:
    template = tmp_path / "t.j2"
    template.write_text("{{ ProcessName }} {{ toJson(Args) }}")
    stream = _Buffer()
    hostile = {"eventName": "openat", "processName": "a\x1b[2J\nb", "args": [{"name": "p", "value": "\x9b\u2028\\"}]}
    EventPrinter(parse_output_options([f"gotemplate={template}"]), stream).print(hostile)
    name, _, args = stream.getvalue().rstrip("\n").partition(" ")
    assert name == "a\\x1b[2J\\nb" and UNSAFE.search(stream.getvalue().rstrip("\n")) is None
    assert orjson.loads(args) == [{"name": "p", "value": "\x9b\u2028\\"}]


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{{ ''.__class__.__mro__ }}", "SecurityError"),
        ("{% for i in range(10**9) %}x{% endfor %}", "range of 1000000000 items"),
        ("{{ NoSuchField }}", "UndefinedError"),
    ],
)
def test_gotemplate_event_output_is_sandboxed_and_bounded(
    tmp_path: Path, source: str, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An event template that escapes, loops or fails loses its events' lines, not the trace."""
    template = tmp_path / "t.j2"
    template.write_text(source)
    stream = _Buffer()
    printer = EventPrinter(parse_output_options([f"gotemplate={template}"]), stream)
    start = time.monotonic()
    for _ in range(3):
        printer.print({"eventName": "openat", "processName": "x", "args": []})
    assert time.monotonic() - start < 3
    assert stream.getvalue() == "" and printer.template_errors == 3
    assert any(
        problem in record.getMessage() and "event openat not printed" in record.getMessage()
        for record in caplog.records
    )


def test_the_decoder_turns_invalid_utf8_into_replacement_characters() -> None:
    """Strings from the kernel never carry surrogates: what the JSON printer gets is valid."""
    spec = EVENTS["openat"]
    name = b"/tmp/\xff\xfe\x80\xed\xa0\x80x"  # invalid bytes and an encoded surrogate (CESU)
    fixed = b"".join(v.to_bytes(8, "little", signed=True) for v in (-100, 0, 0))
    pathname = len(name).to_bytes(4, "little") + name + b"\0" * (-len(name) % 4)
    header = HEADER.pack(1, 2, 3, 4, 0, 3, spec.id, 257, 10, 10, 1, 10, 10, 1, 0, 1, 1, 0, 0, 0, b"c\x1b\xff", b"h")
    event = Decoder(0).decode(header + fixed + pathname)
    path = next(a["value"] for a in event["args"] if a["name"] == "pathname")
    assert path == "/tmp/" + "\ufffd" * 6 + "x" and event["processName"] == "c\x1b\ufffd"
    orjson.loads(orjson.dumps(event))
    assert escape_text(event["processName"]) == "c\\x1b\ufffd"


class _Buffer:
    """A text stream for the printer (StringIO refuses nothing, which is the point here)."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        text.encode("utf-8")  # as a real UTF-8 stream would
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def getvalue(self) -> str:
        return "".join(self.parts)


# ---- noise, then an attack ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def storm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A C program forking N children that exec /bin/true at once, then reaping them all."""
    directory = tmp_path_factory.mktemp("storm")
    (directory / "storm.c").write_text(STORM_C)
    subprocess.run(["gcc", "-O2", "-o", str(directory / "pyt-storm"), str(directory / "storm.c")], check=True)
    return directory / "pyt-storm"


def huge_exec() -> None:
    """An exec with 10,000 arguments and a 1 MB environment (128 variables of 8,000 bytes)."""
    argv = ["/bin/true"] + [f"arg{i:05d}" for i in range(10_000)]
    subprocess.run(argv, env={f"V{i:03d}": "x" * 8000 for i in range(128)}, check=True)


def rawjson_findings(out: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.splitlines() if line.startswith(b"{")]


@live
def test_an_attack_right_after_a_fork_storm_and_a_huge_exec_is_detected(storm: Path) -> None:
    """Every signature, the whole host, default buffers: memory stays bounded, cuts are counted,
    and the anti-debugging attack made right before Ctrl-C is reported."""
    tracee = Tracee("--output-template", "rawjson")
    anon_before = tracee.status("RssAnon")
    samples = [anon_before]
    done = threading.Event()

    def sample() -> None:  # RssAnon has no high-water mark of its own
        while not done.wait(0.02):
            samples.append(tracee.status("RssAnon"))

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    try:
        subprocess.run([str(storm), "1000"], check=True, timeout=60)
        huge_exec()
        subprocess.run([sys.executable, "-c", ANTI_DEBUG], check=True)
        noise_seconds = time.monotonic() - started
        hwm = tracee.status("VmHWM")
        status, out, err = tracee.stop()  # at once: the events still in the ring are read first
    finally:
        done.set()
        sampler.join()
    peak_anon = max(samples)
    assert status == 0, err
    assert noise_seconds < 20
    attacks = [f for f in rawjson_findings(out) if f["SigMetadata"]["ID"] == "TRC-102"]
    assert [f["Context"]["processName"] for f in attacks] == ["pyt-antidbg"], err
    assert "left unread" not in err, err
    # the huge exec: argv past 64 elements, envp past the record's room and an element past
    # 4,095 bytes, the exec's argument and environment areas past 8 KiB
    assert summary_count(err, "argument values truncated") >= 4, err
    lost = summary_count(err, "lost")
    assert lost == 0 or "ring buffer was full" in err, err
    # Python's own memory: batches are bounded, caches are bounded (VmHWM adds the ring, mapped twice)
    assert peak_anon - anon_before < 64 * 1024, (anon_before, peak_anon)
    assert hwm < 400 * 1024, hwm


@live
def test_lost_events_are_counted_and_detection_recovers(storm: Path) -> None:
    """A stalled reader and a 1 MiB ring: the kernel drops records, tracee counts each and says
    why, and detection goes on once it reads again."""
    tracee = Tracee(
        "--ring-buffer-mb",
        "1",
        "-e",
        "sched_process_exec",
        "-o",
        "json",
        "--rules",
        "TRC-102",
        "--output-template",
        "rawjson",
        "-s",
        "comm=pyt-storm,true,pyt-antidbg",
    )
    os.kill(tracee.proc.pid, signal.SIGSTOP)
    try:
        # 1,000 records of some 2.6 KB (a 2 KB environment): more than the ring holds
        subprocess.run([str(storm), "1000"], check=True, timeout=60, env={**ENV, "PAD": "p" * 2000})
    finally:
        os.kill(tracee.proc.pid, signal.SIGCONT)
    time.sleep(1)  # it reads again (the ring is drained in well under a second)
    subprocess.run([sys.executable, "-c", ANTI_DEBUG], check=True)
    status, out, err = tracee.stop(signal.SIGTERM)
    assert status == 0, err
    lines = [orjson.loads(line) for line in out.splitlines()]
    execs = [e for e in lines if e.get("eventName") == "sched_process_exec" and e["processName"] == "true"]
    lost = summary_count(err, "lost")
    assert lost > 0 and "lost (the ring buffer was full" in err, err
    assert len(execs) + lost >= 1000, (len(execs), lost)  # each exec was either delivered or counted
    assert len(execs) < 1000
    assert [f["Context"]["processName"] for f in lines if "SigMetadata" in f] == ["pyt-antidbg"], err
