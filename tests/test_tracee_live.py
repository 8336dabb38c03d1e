"""The ``tracee`` command on the live host: real programs, real events, real findings.

Each test starts ``tracee`` (root and eBPF are available on the project's machines
and in CI), runs programs with a unique command name so the in-kernel comm filter
keeps other activity out, stops it with SIGTERM, and checks the JSON it printed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from collector_support import Tracee

REPO = Path(__file__).resolve().parent.parent
OBJECT = REPO / "bpf" / "tracee.bpf.o"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="live tracing needs root (CAP_BPF and CAP_PERFMON)"),
    pytest.mark.skipif(not Path("/sys/kernel/btf/vmlinux").exists(), reason="the kernel has no BTF"),
]


@pytest.fixture(scope="module", autouse=True)
def bpf_object() -> None:
    """The collector's object, built as scripts/setup.sh builds it."""
    subprocess.run(["make", "-s", "-C", str(REPO / "bpf")], check=True, capture_output=True, timeout=600)
    assert OBJECT.exists()


def bpf_programs() -> set[int]:
    """IDs of every loaded BPF program."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True).stdout
    return {prog["id"] for prog in json.loads(out or "[]")}


def still_loaded(programs: set[int], seconds: float = 5.0) -> set[int]:
    """Those of ``programs`` still loaded after ``seconds`` (the kernel frees them asynchronously)."""
    deadline = time.monotonic() + seconds
    while (left := programs & bpf_programs()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture
def tool(tmp_path: Path) -> Path:
    """A copy of /bin/cat under a command name no other process uses."""
    path = tmp_path / "pytracee-probe"
    shutil.copy2("/bin/cat", path)
    return path


def args_of(event: dict) -> dict:
    return {arg["name"]: arg["value"] for arg in event["args"]}


@pytest.mark.parametrize("kernel_buffer", ["auto", "perf"])
def test_exec_and_open_events_carry_tracee_fields(tool: Path, kernel_buffer: str) -> None:
    tracee = Tracee(
        "-e",
        "execve,sched_process_exec,security_file_open,openat",
        "-s",
        f"comm={tool.name}",
        "-o",
        "json",
        "--kernel-buffer",
        kernel_buffer,
    )
    child = subprocess.run([str(tool), "/etc/hostname"], capture_output=True, check=True)
    status, events, err = tracee.stop()
    assert status == 0, err
    by_name: dict[str, list[dict]] = {}
    for event in events:
        assert event["processName"] == tool.name
        by_name.setdefault(event["eventName"], []).append(event)
    exec_event = by_name["sched_process_exec"][0]
    assert args_of(exec_event)["cmdpath"] == str(tool) and args_of(exec_event)["argv"] == [str(tool), "/etc/hostname"]
    assert args_of(exec_event)["inode"] == os.stat(tool).st_ino
    assert exec_event["executable"]["path"] == str(tool) and exec_event["eventId"] == "715"
    opens = [e for e in by_name["security_file_open"] if args_of(e)["pathname"] == "/etc/hostname"]
    assert opens, [args_of(e)["pathname"] for e in by_name["security_file_open"]]
    opened = args_of(opens[0])
    assert opened["inode"] == os.stat("/etc/hostname").st_ino and opened["flags"] & 3 == os.O_RDONLY
    assert opens[0]["syscall"] == "openat" and opens[0]["hostProcessId"] == exec_event["hostProcessId"]
    openat = next(e for e in by_name["openat"] if args_of(e)["pathname"] == "/etc/hostname")
    assert openat["returnValue"] >= 3 and openat["eventId"] == "257"
    assert child.stdout == Path("/etc/hostname").read_bytes()
    assert "0 lost" in err
    assert tracee.programs, "tracee should hold its BPF programs while tracing"
    assert not still_loaded(tracee.programs)  # every one of them detached and unloaded


def test_signatures_fire_on_live_attacks(tmp_path: Path) -> None:
    traceme = tmp_path / "pytracee-dbg"
    traceme.write_text(
        "import ctypes\nctypes.CDLL(None, use_errno=True).ptrace(0, 0, 0, 0)\n"  # PTRACE_TRACEME
    )
    tracee = Tracee("--output-template", "rawjson", "--rules", "TRC-102,TRC-105,TRC-1027,PYT-1")
    subprocess.run([sys.executable, str(traceme)], check=True)
    # fileless execution: run a copy of /bin/true from a memfd
    memfd = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import os; fd = os.memfd_create('pytracee-fileless'); os.write(fd, open('/bin/true','rb').read());"
                "os.execve(fd, ['true'], {})"
            ),
        ],
        check=False,
    )
    assert memfd.returncode == 0
    # a cron job written inside a throw-away mount namespace: /etc/cron.d is a private tmpfs there
    subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -t tmpfs none /etc/cron.d && echo '* * * * * root true' > /etc/cron.d/pytracee-job",
        ],
        check=True,
    )
    status, findings, err = tracee.stop()
    assert status == 0, err
    fired = {f["SigMetadata"]["ID"] for f in findings}
    assert {"TRC-102", "TRC-105", "TRC-1027"} <= fired, (fired, err)
    assert not Path("/etc/cron.d/pytracee-job").exists()
    fileless = next(f for f in findings if f["SigMetadata"]["ID"] == "TRC-105")
    assert args_of(fileless["Context"])["pathname"].startswith("memfd:")


def test_tracee_json_feeds_tracee_rules(tool: Path, tmp_path: Path) -> None:
    tracee = Tracee("-e", "security_file_open", "-s", f"comm={tool.name}", "-o", "json")
    subprocess.run([str(tool), "/etc/hostname"], capture_output=True, check=True)
    _status, events, _ = tracee.stop()
    recorded = tmp_path / "live.jsonl"
    recorded.write_text("".join(json.dumps(e) + "\n" for e in events))
    replay = subprocess.run(
        [sys.executable, "-m", "pytracee.engine.cli.tracee_rules", "--input", str(recorded), "--strict"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0 and f"{len(events)} events read, 0 skipped" in replay.stderr


def test_unprivileged_users_get_a_clear_error() -> None:
    result = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            sys.executable,
            "-m",
            "pytracee.collector.cli.tracee",
            "-e",
            "execve",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": "/tmp"},
    )
    assert result.returncode == 2 and "CAP_BPF" in result.stderr


def test_secure_tracing_catches_a_real_execve_race(tmp_path: Path) -> None:
    racer = tmp_path / "exec_race"
    subprocess.run(
        ["gcc", "-O2", "-pthread", "-o", str(racer), str(REPO / "tests" / "programs" / "exec_race.c")], check=True
    )
    # a race is won by chance (the flipper thread must run between the tracer's read and the
    # kernel's): on a busy machine 3000 attempts may win none, so up to three rounds
    for _ in range(3):
        tracee = Tracee("--rules", "PYT-1", "--output-template", "rawjson")
        subprocess.run([str(racer), "3000"], check=True, capture_output=True, timeout=300)
        status, findings, err = tracee.stop()
        assert status == 0, err
        tampered = [
            f for f in findings if f["SigMetadata"]["ID"] == "PYT-1" and f["Context"]["processName"] in ("true", "echo")
        ]
        if tampered:
            break
    assert tampered, f"no race won in 3 x 3000 attempts:\n{err}"
    for finding in tampered:
        data = finding["Data"]
        # the tracer read the other program's path, or a torn mix of both ("/bin/eche")
        assert (
            data["kernel pathname"] in ("/bin/true", "/bin/echo")
            and data["syscall pathname"] != data["kernel pathname"]
        )
        assert data["syscall"] == "execve" and finding["Context"]["eventName"] == "sched_process_exec"
        assert finding["Context"]["syscall"] == "execve"  # the LSM-side event carries its syscall


def test_a_closed_event_output_stops_tracing(tool: Path) -> None:
    pipeline = subprocess.Popen(  # noqa: S602 - the pipe into head is the test
        f"{sys.executable} -m pytracee.collector.cli.tracee -e sched_process_exec -s comm={tool.name} -o json | head -n 1",
        shell=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # until head has its line and the pipeline ends (attaching can take seconds on a loaded machine)
    deadline = time.monotonic() + 60
    while pipeline.poll() is None and time.monotonic() < deadline:
        subprocess.run([str(tool), "/etc/hostname"], capture_output=True, check=True)
        time.sleep(0.2)
    out, err = pipeline.communicate(timeout=60)
    assert json.loads(out)["eventName"] == "sched_process_exec"
    assert "stopped: the event output was closed" in err and "Traceback" not in err


def test_a_second_ctrl_c_does_not_break_the_clean_up(tool: Path) -> None:
    tracee = Tracee("-e", "openat", "-s", f"comm={tool.name}", "-o", "json")
    subprocess.run([str(tool), "/etc/hostname"], capture_output=True, check=True)
    status, events, err = tracee.stop(signal.SIGINT, signal.SIGINT)
    assert status == 0 and "Traceback" not in err, err
    assert any(args_of(e)["pathname"] == "/etc/hostname" for e in events)
    assert not still_loaded(tracee.programs)


def test_findings_go_to_their_file_and_events_to_stdout(tmp_path: Path) -> None:
    """--findings-output FILE and -o json together: neither option takes the other's place."""
    findings_file = tmp_path / "findings.json"
    traceme = "import ctypes; l = ctypes.CDLL(None); l.prctl(15, b'pytracee-fout', 0, 0, 0); l.ptrace(0, 0, 0, 0)"
    tracee = Tracee(
        "-e",
        "ptrace",
        "-o",
        "json",
        "--rules",
        "TRC-102",
        "--output-template",
        "rawjson",
        "--findings-output",
        str(findings_file),
        "-s",
        "comm=pytracee-fout",
    )
    subprocess.run([sys.executable, "-c", traceme], check=True)
    status, events, err = tracee.stop()
    assert status == 0, err
    assert [e["eventName"] for e in events] == ["ptrace"] and "SigMetadata" not in events[0]
    findings = [json.loads(line) for line in findings_file.read_text().splitlines()]
    assert [(f["SigMetadata"]["ID"], f["Context"]["processName"]) for f in findings] == [("TRC-102", "pytracee-fout")]
