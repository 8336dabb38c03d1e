"""Every ``tracee`` and ``tracee-rules`` command line README.md shows runs as written.

The lines are taken from README.md itself (its code blocks, and inline code that is a
whole command with options), so the README cannot drift from the commands. Only what
must be replaced is: placeholder inputs (``events.json``, ``...``) become the bundled
example events, ``./my-rules`` the example rules directory, ``my.j2`` and
``findings.txt`` files in a temporary directory, the webhook a server on 127.0.0.1; live
``tracee`` runs about a second once attached (with some activity), then gets Ctrl-C.
Each must exit 0 with no usage error, no error message and no traceback, and a pipeline
must hand the next command input it reads without skipping anything.
"""

from __future__ import annotations

import http.server
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
EVENTS = REPO / "examples" / "events" / "demo.jsonl"
RULES_DIR = REPO / "examples" / "rules-dir"
BIN = Path(sys.executable).parent
#: Commands by name: the installed scripts, as the README says (.venv/bin).
PROGRAMS = {
    "tracee": [str(BIN / "tracee")]
    if (BIN / "tracee").exists()
    else [sys.executable, "-m", "pytracee.collector.cli.tracee"],
    "tracee-rules": [str(BIN / "tracee-rules")]
    if (BIN / "tracee-rules").exists()
    else [sys.executable, "-m", "pytracee.engine.cli.tracee_rules"],
}
COMMAND = re.compile(r"(?:sudo\s+)?(?:tracee|tracee-rules)\s+\S")
PROBLEMS = re.compile(r"usage:|error:|Traceback|unknown format|invalid choice|unrecognized arguments")


def readme_commands() -> list[str]:
    """The command lines README.md shows: code-block lines and inline code starting with a command."""
    text = README.read_text("utf-8")
    lines = [
        line.strip() for block in re.findall(r"```[\w-]*\n(.*?)```", text, re.DOTALL) for line in block.splitlines()
    ]
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    lines += re.findall(r"`([^`\n]+)`", prose)
    found = []
    for line in lines:
        command = line.split("  #", 1)[0].strip()  # the README's comments follow two spaces
        if COMMAND.match(command) and command not in found:
            found.append(command)
    return found


class _Hook(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:  # the http.server name
        self.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[str, list[bytes]]]:
    """A webhook receiver on 127.0.0.1: its URL and the bodies it got."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.bodies
    finally:
        server.shutdown()
        server.server_close()


def substitute(command: str, tmp: Path, hook_url: str) -> list[list[str]]:
    """The README line as argument vectors (one per pipeline stage), placeholders replaced."""
    stages = []
    command = re.sub(r'"?\$\(([^)]*)\)"?', lambda m: shlex.quote(_output_of(m[1], tmp, hook_url)), command)
    for stage in command.split("|"):
        words = shlex.split(stage)  # no globbing: as a POSIX shell leaves an unmatched pattern
        if words[0] == "sudo":
            words = words[1:]  # the tests run as root
        argv = list(PROGRAMS[words[0]])
        for i, word in enumerate(words[1:], 1):
            before = words[i - 1]
            if word in ("events.json", "...") and before in ("--input", "-i"):
                word = str(EVENTS)
            elif word == "file:events.json":
                word = f"file:{EVENTS}"
            elif word == "./my-rules":
                word = str(RULES_DIR)
            elif word == "my.j2":
                word = str(tmp / "my.j2")
            elif "nats://127.0.0.1:4222" in word:  # the README's JetStream server: the test's own
                word = word.replace("nats://127.0.0.1:4222", _NATS_URL[0])
            elif before == "--findings-output" or (before == "--output" and words[0] == "tracee-rules"):
                word = str(tmp / Path(word).name)  # a findings file
            elif word.startswith("http://siem:8080/hook"):
                word = hook_url
            argv.append(word)
        stages.append(argv)
    return stages


def _output_of(command: str, tmp: Path, hook_url: str) -> str:
    """What a ``$(command)`` substitution gives (a shell would run it the same way)."""
    (argv,) = substitute(command, tmp, hook_url)
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout.strip()


@dataclass
class Outcome:
    """What running one README line gave."""

    statuses: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    tmp: Path = Path()


def _activity() -> None:
    """Something for live tracing to see: a read of /etc (by cat), an exec, a ptrace(TRACEME)."""
    subprocess.run(["cat", "/etc/hostname"], capture_output=True, check=False)
    subprocess.run(["/bin/true"], check=False)
    subprocess.run([sys.executable, "-c", "import ctypes; ctypes.CDLL(None).ptrace(0, 0, 0, 0)"], check=False)


def run_line(command: str, tmp: Path, hook_url: str) -> Outcome:
    """Run one README line; a live ``tracee`` stage is stopped with SIGINT once it traced a while."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "my.j2").write_text("{{ SigMetadata.ID }} {{ Event.Payload.ProcessName }}\n")
    stages = substitute(command, tmp, hook_url)
    outcome = Outcome(tmp=tmp)
    procs: list[subprocess.Popen[bytes]] = []
    files = []
    previous = None
    for argv in stages:
        files.append(err := (tmp / f"stderr{len(procs)}").open("wb"))
        if argv is stages[-1]:
            files.append(out := (tmp / "stdout").open("wb"))
        procs.append(
            subprocess.Popen(
                argv,
                stdin=previous.stdout if previous is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE if argv is not stages[-1] else out,
                stderr=err,
            )
        )
        if previous is not None and previous.stdout is not None:
            previous.stdout.close()  # the next stage holds it now
        previous = procs[-1]
    try:
        for i, (argv, proc) in enumerate(zip(stages, procs, strict=True)):
            if argv[: len(PROGRAMS["tracee"])] != PROGRAMS["tracee"]:
                continue
            deadline = time.monotonic() + 90
            while b"tracing" not in (tmp / f"stderr{i}").read_bytes() and proc.poll() is None:
                assert time.monotonic() < deadline, f"{command}: tracee did not start"
                time.sleep(0.1)
            _activity()
            time.sleep(1)
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            proc.wait(120)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for file in files:
            file.close()
    outcome.statuses = [proc.returncode for proc in procs]
    outcome.errors = [(tmp / f"stderr{i}").read_text("utf-8", "replace") for i in range(len(procs))]
    return outcome


COMMANDS = readme_commands()


#: The URL of the JetStream server standing for the README's nats://127.0.0.1:4222.
_NATS_URL = ["nats://127.0.0.1:4222"]


@pytest.fixture(scope="module")
def jetstream() -> Iterator[str]:
    """A real nats-server for the README's nats:// lines (tests/bus_support.py)."""
    from bus_support import nats_server

    with nats_server() as server:
        _NATS_URL[0] = server.url
        yield server.url


@pytest.fixture(scope="module")
def outcomes(
    tmp_path_factory: pytest.TempPathFactory, webhook: tuple[str, list[bytes]], jetstream: str
) -> dict[str, Outcome]:
    """Every README line, run a few at a time (live tracee lines wait for their programs to attach)."""
    if os.geteuid() != 0:
        pytest.fail("the README's tracee lines need root: run the suite as root, as CI does")
    base = tmp_path_factory.mktemp("readme")
    lines = sorted(enumerate(COMMANDS), key=lambda line: -_expected_seconds(line[1]))  # the longest first
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {c: pool.submit(run_line, c, base / f"line{i}", webhook[0]) for i, c in lines}
        return {c: futures[c].result() for c in COMMANDS}


def _expected_seconds(command: str) -> int:
    """A rough cost of a README line, to start the long ones first: live tracing (the eBPF programs
    load and verify; then it runs a second), more with a command substitution or a pipeline."""
    if not re.match(r"(sudo\s+)?tracee\s", command):
        return 1
    return 10 + 5 * ("$(" in command) + 3 * ("|" in command)


def test_the_readme_shows_both_commands_with_their_main_options() -> None:
    joined = "\n".join(COMMANDS)
    for option in (
        "--input",
        "--input-tracee",
        "--rules",
        "--rules-dir",
        "--disable",
        "--list",
        "--list-events",
        "--output-template",
        "--output",
        "--webhook",
        "--webhook-template",
        "-e",
        "-s",
        "-t",
        "-o",
    ):
        assert re.search(rf"(^|\s){re.escape(option)}(\s|$)", joined), option
    assert (
        sum(c.startswith("tracee ") for c in COMMANDS) >= 5
        and sum(c.startswith("tracee-rules ") for c in COMMANDS) >= 10
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs_as_written(command: str, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[command]
    for status, errors in zip(outcome.statuses, outcome.errors, strict=True):
        assert status == 0, f"{command}: exit status {status}\n{errors}"
        problem = PROBLEMS.search(errors)
        assert problem is None, f"{command}: {problem.group()!r} on stderr\n{errors}"
    if "|" in command:  # the next stage got what it could read: events, none skipped
        read = re.search(r"(\d+) events read, (\d+) skipped", outcome.errors[-1])
        assert read and int(read[1]) > 0 and read[2] == "0", (
            f"{command}: the pipeline delivered no events: tracee without -e prints findings, not events; "
            f"trace the events the signatures need instead, e.g. "
            f'tracee -e "$(tracee-rules --list-events)" -o json | tracee-rules --input -\n{outcome.errors[-1]}'
        )


def test_readme_outputs_land_where_the_readme_says(
    outcomes: dict[str, Outcome], webhook: tuple[str, list[bytes]]
) -> None:
    """--output FILE is written, a template file is used, the webhook is called (with JSON)."""
    written = [o for c, o in outcomes.items() if "--output findings.txt" in c]
    assert written and all((o.tmp / "findings.txt").read_text().strip() for o in written)
    templated = (written[0].tmp / "findings.txt").read_text().splitlines()
    assert templated and all(re.fullmatch(r"\S+-\d+ .*", line) for line in templated), templated[:3]
    assert webhook[1] and all(body.startswith(b"{") for body in webhook[1])
