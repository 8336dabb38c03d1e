"""What context on findings costs: replay and live rates with it on and off, and the tree's memory.

* **replay**: ``tracee-rules`` over a generated stream (benchmarks/workload.py, the
  realistic mix), end to end through the command, with the process tree and ancestry
  on (the default) and off (``--proctree source=none --ancestry-depth 0``); with
  ``--containers enrich=true`` added when a Docker socket is given (``--docker-socket``).
* **live**: ``tracee`` (all signatures) while a fixed workload runs (``--live-execs``
  fork+exec of ``/bin/true`` and a shell pipeline each), with the tree, container
  enrichment and hashing on (the defaults) and off; the rate is the events tracee read
  per second of its own CPU time (from /proc), so the machine's other load matters less.
* **memory**: a process tree filled to its bound (10,000 processes, then twice that
  many forks so the LRU evicts) with typical and with the longest kept argv;
  tracemalloc's view of the tree.

Numbers from a loaded, shared machine vary; the ratios are what to read.

::

    python benchmarks/bench_context.py                      # replay 100k events, live 300 execs, memory
    python benchmarks/bench_context.py --events 200000 --live-execs 0
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
OFF_REPLAY = ["--proctree", "source=none", "--ancestry-depth", "0"]
OFF_LIVE = [*OFF_REPLAY, "--containers", "enrich=false", "--exec-hash", "off"]


def replay(stream: Path, extra: list[str]) -> tuple[float, int]:
    """Seconds and events of one ``tracee-rules`` run over ``stream``."""
    command = [sys.executable, "-m", "pytracee.engine.cli.tracee_rules", "--input", str(stream)]
    command += ["--output-template", "rawjson", "--output", os.devnull, *extra]
    begin = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - begin
    match = re.search(r"(\d+) events read", done.stderr)
    return seconds, int(match.group(1)) if match else 0


def observe_cost(stream: Path) -> float:
    """Microseconds per event of :meth:`EventContext.observe` (tree on) over ``stream``, median of 5."""
    import json
    import statistics

    from pytracee.engine.context.state import ContextSettings, EventContext
    from pytracee.engine.events import Event

    raws = [json.loads(line) for line in stream.read_text().splitlines()]
    costs = []
    for _ in range(5):
        context = EventContext(ContextSettings())
        events = [Event(dict(raw)) for raw in raws]
        begin = time.perf_counter()
        for event in events:
            context.observe(event)
        costs.append((time.perf_counter() - begin) / len(events) * 1e6)
    return statistics.median(costs)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: The live workload's programs: copies under command names no other process uses, so the
#: scope filter keeps the rest of a shared machine out of the measurement.
LIVE_PROGRAMS = {"pytctx-sh": "/bin/sh", "pytctx-true": "/bin/true", "pytctx-cat": "/bin/cat"}


def live(execs: int, extra: list[str], bindir: Path) -> tuple[float, int, str]:
    """CPU seconds of ``tracee``, events it traced, and its summary, for ``execs`` fork+execs."""
    scope = ["-s", "comm=" + ",".join(LIVE_PROGRAMS)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytracee.collector.cli.tracee", "--output-template", "rawjson", *scope, *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    while "tracing" not in (line := proc.stderr.readline()):
        if not line:
            raise RuntimeError("tracee did not start")
    before = cpu_seconds(proc.pid)
    shell = f"{bindir}/pytctx-true | {bindir}/pytctx-cat /etc/hostname > /dev/null"
    for _ in range(execs):
        subprocess.run([str(bindir / "pytctx-sh"), "-c", shell], check=True)
    time.sleep(1)
    used = cpu_seconds(proc.pid) - before
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    match = re.search(r"(\d+) events traced", err)
    return used, int(match.group(1)) if match else 0, err.strip().splitlines()[-1]


def tree_memory(processes: int, argv_chars: int) -> tuple[int, int]:
    """Bytes tracemalloc sees held by a full process tree, and its size."""
    sys.path.insert(0, str(HERE.parent))
    from pytracee.engine.context.proctree import ProcessTree

    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tree = ProcessTree(processes)
    start = 1_765_000_000_000_000_000
    parent = 1
    for i in range(processes * 3):
        pid = 1000 + i
        fork = {
            "eventName": "sched_process_fork",
            "hostProcessId": parent,
            "args": [
                {"name": "child_pid", "value": pid},
                {"name": "child_tid", "value": pid},
                {"name": "start_time", "value": start + i},
                {"name": "parent_process_pid", "value": parent},
            ],
        }
        tree.observe(fork)
        tree.observe(
            {
                "eventName": "sched_process_exec",
                "hostProcessId": pid,
                "hostThreadId": pid,
                "threadStartTime": start + i,
                "processName": f"worker-{i % 50}",
                "executable": {"path": f"/usr/lib/app/bin/worker-{i % 50}"},
                "args": [
                    {"name": "pathname", "value": f"/usr/lib/app/bin/worker-{i % 50}"},
                    {"name": "argv", "value": argv_of(i, argv_chars)},
                ],
            }
        )
        parent = pid if i % 7 else 1  # chains of 7 under pid 1
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return held, len(tree)


def argv_of(i: int, chars: int) -> list[str]:
    """A fresh argv (new strings, as the decoder makes them) of about ``chars`` characters."""
    words = [f"worker-{i}", "--config", f"/etc/app/worker-{i % 50}.yaml", "--verbose"]
    filler = chars - sum(map(len, words))
    return [*words, f"{i:08d}" + "x" * max(0, filler - 8)] if filler > 8 else words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="replay stream size (0: skip)")
    parser.add_argument("--live-execs", type=int, default=300, help="live workload size (0: skip; needs root)")
    parser.add_argument("--docker-socket", help="also replay with container enrichment from this Docker socket")
    args = parser.parse_args()
    if args.events:
        with tempfile.TemporaryDirectory() as tmp:
            stream = Path(tmp) / "events.jsonl"
            subprocess.run(
                [sys.executable, str(HERE / "workload.py"), "--events", str(args.events), "--out", str(stream)],
                check=True,
                capture_output=True,
            )
            runs = [("off", OFF_REPLAY), ("on (tree + ancestry)", [])]
            if args.docker_socket:
                runs.append(("on + containers", ["--containers", f"enrich=true,sockets.docker={args.docker_socket}"]))
            results: dict[str, float] = {}
            best: dict[str, tuple[float, int]] = {}
            for _ in range(5):  # alternated, best of 5: the machine's other load varies
                for name, extra in runs:
                    seconds, events = replay(stream, extra)
                    if name not in best or seconds < best[name][0]:
                        best[name] = (seconds, events)
            for name, (seconds, events) in best.items():
                results[name] = events / seconds
                print(f"replay {name:24s} {events} events in {seconds:6.2f} s: {events / seconds:9.0f} events/s")
            for name, rate in list(results.items())[1:]:
                print(f"replay ratio {name} / off: {rate / results['off']:.3f}")
            per_event = observe_cost(stream)
            print(
                f"context per event, in process (median of 5 passes): {per_event:.2f} us "
                f"(a replay spends {1e6 / results['off']:.1f} us per event without it)"
            )
    if args.live_execs and os.geteuid() == 0:
        rates = {}
        with tempfile.TemporaryDirectory() as tmp:
            bindir = Path(tmp)
            for name, source in LIVE_PROGRAMS.items():
                shutil.copy2(source, bindir / name)
            for name, extra in (("off", OFF_LIVE), ("on (tree + containers + hashes)", [])):
                used, events, summary = live(args.live_execs, extra, bindir)
                rates[name] = events / used if used else 0.0
                print(f"live {name:32s} {events} events, {used:6.2f} CPU s: {rates[name]:8.0f} events/CPU s")
                print(f"    {summary}")
        print(
            f"live ratio on / off (events per CPU second): {rates['on (tree + containers + hashes)'] / rates['off']:.3f}"
        )
        print("    (on also traces the workload's fork/exec/exit, which the signatures alone do not select)")
    for label, chars in (("typical argv, ~60 characters", 60), ("1 KiB argv, the most kept", 1024)):
        held, size = tree_memory(10_000, chars)
        print(
            f"process tree at its bound ({size} processes, {label}): {held / 2**20:.1f} MiB ({held / size:.0f} B each)"
        )


if __name__ == "__main__":
    main()
