"""Replay throughput and memory of pytracee with all built-in signatures, on one CPU.

Run from the repository root (it takes about a minute)::

    .venv/bin/python benchmarks/bench_replay.py               # 200,000 events
    .venv/bin/python benchmarks/bench_replay.py --events 500000 --repeat 7 --keep benchmarks/out
    .venv/bin/python benchmarks/bench_replay.py --mix heavy       # only events signatures select

It writes a realistic mixed event stream with :mod:`workload` (about 0.1% of the
events are attacks), pins itself to one CPU and prints, from this one run:

(a) events/s of JSON parsing alone: the file read line by line in binary and
    each line handed to ``orjson.loads``, the floor any replay pays;
(b) events/s of the full replay: :class:`~pytracee.engine.session.Session` with
    ``SessionConfig()`` (every built-in signature enabled by default, no output
    printer) fed by :class:`~pytracee.engine.reader.EventReader`, as
    ``tracee-rules --input FILE`` does minus the printing;
(c) (b) as a share of (a): what the engine adds on top of parsing;
(d) the peak RSS (VmHWM) of a full replay, measured in a fresh child process;
(e) the peak RSS of a replay of an input ten times larger, also in a fresh
    child: it must stay flat (the reader streams, the engine keeps no events).

Throughputs are the best of ``--repeat`` interleaved runs, because the machine
may be shared and noisy; all runs are shown. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload
from pytracee.engine.session import signature_id_order

TARGET_REPLAY_EVENTS_PER_S = 150_000
TARGET_SHARE_OF_PARSE = 0.40
#: "Flat": the 10x input may raise peak RSS by at most this much (fraction of the 1x peak) ...
TARGET_RSS_GROWTH = 0.10
#: ... or this many bytes, whichever is larger (allocator noise on a small heap).
TARGET_RSS_SLACK = 4 << 20


# --- measurements -------------------------------------------------------------------------


def parse_only(path: Path) -> tuple[int, float]:
    """Read ``path`` line by line in binary and ``orjson.loads`` each line."""
    loads = orjson.loads
    count = 0
    start = time.perf_counter()
    with open(path, "rb") as stream:
        for line in stream:
            loads(line)
            count += 1
    return count, time.perf_counter() - start


def replay(path: Path, rules: list[str] | None = None) -> tuple[dict[str, Any], float, float]:
    """A full replay; returns (session.describe(), load s, replay s).

    :param rules: ``--rules`` selection (e.g. ``["lang:rego"]``); default: the
        signatures enabled by default (the Python built-ins).
    """
    from pytracee.engine.errors import ExitStatus
    from pytracee.engine.reader import EventReader
    from pytracee.engine.session import Session, SessionConfig

    start = time.perf_counter()
    session = Session(SessionConfig(rules=list(rules or [])))
    session.load()
    loaded = time.perf_counter()
    reader = EventReader([path], is_known_event=session.is_known_event)
    status = session.run(reader)
    done = time.perf_counter()
    if status != ExitStatus.OK:
        raise SystemExit(f"replay of {path} failed with exit status {status}")
    return session.describe(), loaded - start, done - loaded


def child_main(path: str) -> int:
    """``--child-replay FILE``: replay FILE (or nothing, with ``-``) and print peak RSS as JSON."""
    result: dict[str, Any] = {}
    if path != "-":
        described, _, replay_s = replay(Path(path))
        result = {"events": described["events"], "findings": described["findings"], "seconds": replay_s}
    else:
        from pytracee.engine.session import Session, SessionConfig

        Session(SessionConfig()).load()
    result["maxrss_bytes"] = peak_rss()
    print(json.dumps(result))
    return 0


def peak_rss() -> int:
    """This process's peak resident set size, in bytes.

    ``VmHWM`` from /proc/self/status: the high-water mark of this process's own
    address space. Not ``ru_maxrss``: on Linux a child started with
    vfork()+exec() (as ``subprocess`` does) inherits its parent's peak in
    ``ru_maxrss``, so a child of a big benchmark process would report the
    benchmark's memory, not its own.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux (bytes on macOS)


def child_rss(path: Path | str) -> dict[str, Any]:
    """Run ``--child-replay`` in a fresh interpreter (same CPU affinity) and read its report."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child-replay", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"child replay of {path} failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- reporting ----------------------------------------------------------------------------


def mb(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def pin_cpu(requested: int | None) -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity on this platform)"
    allowed = sorted(os.sched_getaffinity(0))
    cpu = requested if requested is not None else allowed[-1]
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu} (of {len(allowed)} allowed: {allowed[0]}-{allowed[-1]})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark pytracee's replay: throughput vs JSON parsing, and memory.")
    parser.add_argument("--events", type=int, default=200_000, help="events in the stream (default: %(default)s)")
    parser.add_argument(
        "--repeat", type=int, default=5, help="runs per throughput measurement; the best counts (default: %(default)s)"
    )
    parser.add_argument(
        "--scale",
        type=int,
        default=10,
        help="size of the memory-growth input, in multiples of --events (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default: %(default)s)")
    parser.add_argument(
        "--mix", choices=workload.MIXES, default="realistic",
        help="realistic: mostly events no signature selects; heavy: only events Tracee's signatures select "
        "(see workload.py; the end-to-end bench_commands.py runs both) (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last allowed one)")
    parser.add_argument(
        "--keep", type=Path, default=None, help="write the event files here and keep them (default: a temp dir)"
    )
    parser.add_argument("--child-replay", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_replay is not None:
        return child_main(args.child_replay)

    started = time.perf_counter()
    pinned = pin_cpu(args.cpu)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        workdir = args.keep
        cleanup = None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix="pytracee-bench-")
        workdir = Path(cleanup.name)
    try:
        return run(args, workdir, pinned, started)
    finally:
        if cleanup is not None:
            cleanup.cleanup()


def run(args: argparse.Namespace, workdir: Path, pinned: str, started: float) -> int:
    import pytracee.signatures

    print("pytracee replay benchmark")
    print(
        f"  Python {platform.python_version()} ({platform.python_implementation()}), orjson {orjson.__version__}, {platform.machine()}, {pinned}"
    )

    tag = "" if args.mix == "realistic" else f"{args.mix}-"
    path = workdir / f"events-{tag}{args.events}.jsonl"
    t = time.perf_counter()
    stats = workload.write_events(path, args.events, seed=args.seed, mix=args.mix)
    print(f"  input: {path.name}: {stats.describe()}; written in {time.perf_counter() - t:.1f} s")
    builtins = (*pytracee.signatures.BUILTIN_SIGNATURES, *pytracee.signatures.PYTRACEE_SIGNATURES)
    enabled = [cls for cls in builtins if cls.enabled_by_default]
    print(f"  signatures: {len(enabled)} built-ins enabled by default; best of {args.repeat} interleaved runs\n")

    parse_runs: list[float] = []
    replay_runs: list[float] = []
    load_runs: list[float] = []
    described: dict[str, Any] = {}
    for _ in range(args.repeat):
        gc.collect()
        count, seconds = parse_only(path)
        assert count == args.events, (count, args.events)
        parse_runs.append(seconds)
        gc.collect()
        described, load_s, seconds = replay(path)
        if described["events"] != args.events:
            raise SystemExit(f"replay read {described['events']} events of {args.events}: {described['skipped']}")
        load_runs.append(load_s)
        replay_runs.append(seconds)

    parse_rate = args.events / min(parse_runs)
    replay_rate = args.events / min(replay_runs)
    share = replay_rate / parse_rate

    def runs(values: list[float]) -> str:
        return ", ".join(f"{args.events / v / 1000:.0f}k" for v in values)

    print(
        f"{'(a) JSON parse only (binary lines, orjson.loads)':52}{parse_rate:>10,.0f} events/s   runs: {runs(parse_runs)}"
    )
    print(
        f"{f'(b) full replay, {len(enabled)} built-in signatures':52}{replay_rate:>10,.0f} events/s   "
        f"target >= {TARGET_REPLAY_EVENTS_PER_S:,}  {verdict(replay_rate >= TARGET_REPLAY_EVENTS_PER_S)}   runs: {runs(replay_runs)}"
    )
    print(f"    (session load, not included: {min(load_runs) * 1000:.0f} ms)")
    print(
        f"{'(c) replay / parse-only':52}{100 * share:>10.1f} %          "
        f"target >= {100 * TARGET_SHARE_OF_PARSE:.0f} %  {verdict(share >= TARGET_SHARE_OF_PARSE)}"
    )
    sys.stdout.flush()

    baseline = child_rss("-")
    small = child_rss(path)
    print(
        f"{f'(d) peak RSS, replay of {args.events:,} events':52}{mb(small['maxrss_bytes']):>14}      "
        f"(fresh child; a child that loads the session and replays nothing: {mb(baseline['maxrss_bytes'])})"
    )
    sys.stdout.flush()

    big_path = workdir / f"events-{tag}{args.events * args.scale}.jsonl"
    t = time.perf_counter()
    big_stats = workload.write_events(big_path, args.events * args.scale, seed=args.seed, mix=args.mix)
    written = time.perf_counter() - t
    big = child_rss(big_path)
    if args.keep is None:
        big_path.unlink()
    growth = big["maxrss_bytes"] - small["maxrss_bytes"]
    allowed = max(TARGET_RSS_GROWTH * small["maxrss_bytes"], TARGET_RSS_SLACK)
    print(
        f"{f'(e) peak RSS, replay of {args.events * args.scale:,} events ({args.scale}x)':52}{mb(big['maxrss_bytes']):>14}      "
        f"growth {growth / 2**20:+.1f} MiB; target flat (<= +{allowed / 2**20:.1f} MiB)  {verdict(growth <= allowed)}"
    )
    print(
        f"    ({big_stats.bytes / 1e9:.2f} GB written in {written:.0f} s, replayed in {big['seconds']:.1f} s = "
        f"{big['events'] / big['seconds']:,.0f} events/s in one run; {big['findings']} findings, "
        f"{sum(big_stats.expected_findings.values())} expected)"
    )
    ok_big = big["findings"] == sum(big_stats.expected_findings.values())

    found = Counter(described["findings_by_signature"])
    expected = stats.expected_findings
    print(
        f"\nfindings by signature (last replay; expected = attacks the workload injected): {sum(found.values())} found, {sum(expected.values())} expected"
    )
    names = {cls.metadata.id: cls.metadata.name for cls in builtins}
    ok = True
    for sig_id in sorted(set(found) | set(expected), key=signature_id_order):
        mark = "" if found[sig_id] == expected[sig_id] else "   <-- MISMATCH"
        ok &= not mark
        print(f"  {sig_id:9} {found[sig_id]:>4}  (expected {expected[sig_id]:>3})  {names.get(sig_id, '')}{mark}")
    if described["signature_errors"]:
        ok = False
        print(f"  signature errors: {described['signature_errors']}")
    if described["skipped"]:
        print(f"  skipped records: {described['skipped']}")
    ok &= ok_big
    print(
        f"\ndetections {'match' if ok else 'DO NOT match'} the injected attacks; total time {time.perf_counter() - started:.0f} s"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
