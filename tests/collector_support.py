"""Helpers of the live-collector tests, imported by them as ``collector_support``.

Plain functions and classes only: the ``bpf_object`` fixture built on them is in conftest.py,
so no test module imports fixtures. The BPF object is built with ``make -C bpf`` when it is
missing or older than its sources. Live tests run only as root with a working bpf(); anywhere
else they are skipped with the reason. Workloads run in child Python processes that rename themselves (``prctl`` comm) or
wait on stdin for the collector to start, so in-kernel filters can select them exactly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
BPF_DIR = REPO / "bpf"
OBJECT = BPF_DIR / "tracee.bpf.o"

Event = dict[str, Any]


def _sources_mtime() -> float:
    files = [*BPF_DIR.glob("*.c"), *BPF_DIR.glob("*.h"), BPF_DIR / "Makefile"]
    return max(f.stat().st_mtime for f in files)


def build_object() -> Path:
    """Build bpf/tracee.bpf.o if missing or stale; skip the test when it cannot be built."""
    if OBJECT.exists() and OBJECT.stat().st_mtime >= _sources_mtime():
        return OBJECT
    missing = [tool for tool in ("make", "clang", "llvm-strip", "bpftool") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"cannot build the BPF object: {', '.join(missing)} not installed")
    if not Path("/sys/kernel/btf/vmlinux").exists():
        pytest.skip("cannot build the BPF object: no /sys/kernel/btf/vmlinux")
    proc = subprocess.run(["make", "-C", str(BPF_DIR)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(f"make -C bpf failed:\n{proc.stdout}\n{proc.stderr}")
    return OBJECT


def require_bpf() -> None:
    """Skip unless this process may load BPF programs."""
    if os.geteuid() != 0:
        pytest.skip("live collector tests need root (bpf(), tracepoints)")
    if not Path("/sys/kernel/btf/vmlinux").exists():
        pytest.skip("live collector tests need kernel BTF (/sys/kernel/btf/vmlinux)")


def start_collector(obj: Path, events: Collection[str], **kwargs: Any) -> Any:
    """A started Collector; skips when the kernel refuses bpf() (EPERM)."""
    from pytracee.collector.collector import Collector

    collector = Collector(obj, None, events, **kwargs)
    try:
        collector.start()
    except PermissionError as exc:
        pytest.skip(f"bpf() is not permitted here: {exc}")
    return collector


def child_code(body: str, comm: str | None = None, wait: bool = False) -> str:
    """Python source of a workload child: optionally rename itself and wait for a line on stdin."""
    head = "import os, sys, ctypes, socket, time\n"
    if comm is not None:
        head += f"open('/proc/self/comm', 'w').write({comm!r})\n"
    if wait:
        head += "sys.stdin.readline()\n"
    return head + textwrap.dedent(body)


def run_child(body: str, comm: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a workload child to completion (its failure fails the test)."""
    proc = subprocess.run(
        [sys.executable, "-c", child_code(body, comm)], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def spawn_waiting(body: str) -> subprocess.Popen[str]:
    """A workload child that waits on stdin before running (its pid is known in advance)."""
    return subprocess.Popen(
        [sys.executable, "-c", child_code(body, wait=True)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def release(child: subprocess.Popen[str], timeout: float = 30) -> None:
    """Let a waiting child run, and wait for it."""
    assert child.stdin is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    child.stdin.close()
    child.wait(timeout=timeout)
    assert child.returncode == 0, child.stderr.read() if child.stderr else ""


def collect(collector: Any, until: Callable[[list[Event]], bool] | None = None, timeout: float = 5.0) -> list[Event]:
    """Poll until ``until(events)`` holds (or, without a condition, until quiet), then drain."""
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        batch = collector.poll(100)
        events.extend(batch)
        if until is not None and until(events):
            break
        quiet = 0 if batch else quiet + 1
        if until is None and quiet >= 3:
            break
    events.extend(collector.poll(0))
    return events


def args(event: Event) -> dict[str, Any]:
    """An event's arguments by name."""
    return {a["name"]: a["value"] for a in event["args"]}


def named(events: list[Event], name: str, **where: Any) -> list[Event]:
    """The events called ``name`` whose arguments match ``where``."""
    return [e for e in events if e["eventName"] == name and all(args(e).get(k) == v for k, v in where.items())]


def kernel_dev(st_dev: int) -> int:
    """A userspace dev_t as the kernel's s_dev encoding (major << 20 | minor)."""
    return (os.major(st_dev) << 20) | os.minor(st_dev)


def attached_program_ids() -> set[int]:
    """Ids of every BPF program loaded in the kernel (from bpftool, or /proc fdinfo as fallback)."""
    if shutil.which("bpftool"):
        out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True).stdout
        return {p["id"] for p in json.loads(out or "[]")}
    ids = set()
    for fdinfo in Path("/proc/self/fdinfo").iterdir():
        try:
            for line in fdinfo.read_text().splitlines():
                if line.startswith("prog_id:"):
                    ids.add(int(line.split()[1]))
        except OSError:
            continue
    return ids


def wait_unloaded(ids: set[int], timeout: float = 5.0) -> set[int]:
    """Wait until none of the program ids is loaded (the kernel frees tail-call targets
    asynchronously, once their prog-array map is released); returns those still loaded."""
    deadline = time.monotonic() + timeout
    left = ids & attached_program_ids()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = ids & attached_program_ids()
    return left


def event_stream(collector: Any, seconds: float) -> Iterator[Event]:
    """Every event for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        yield from collector.poll(50)


def programs_held_by(pid: int) -> set[int]:
    """IDs of the BPF programs a process holds through its file descriptors (program and link fds)."""
    held = set()
    for info in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            text = info.read_text()
        except OSError:  # the descriptor closed meanwhile
            continue
        held.update(int(line.split()[1]) for line in text.splitlines() if line.startswith("prog_id:"))
    return held


class Tracee:
    """A running ``tracee`` process."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytracee.collector.cli.tracee", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        self.log: list[str] = []
        while True:  # until "tracee: tracing N events ...": the programs are attached
            line = self.proc.stderr.readline()
            self.log.append(line)
            if "tracing" in line:
                break
            if not line:
                raise AssertionError("tracee did not start:\n" + "".join(self.log))
        self.programs = programs_held_by(self.proc.pid)

    def stop(self, *signals: int) -> tuple[int, list[dict], str]:
        """Send ``signals`` (default: SIGTERM) 50 ms apart; exit status, events, stderr."""
        time.sleep(0.5)  # let the last events drain
        for i, sig in enumerate(signals or (signal.SIGTERM,)):
            time.sleep(0.05 if i else 0)
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=60)
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return self.proc.returncode, events, "".join(self.log) + err
