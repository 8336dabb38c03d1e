"""End-to-end replay throughput: the real ``tracee-rules`` command, on one CPU, on both streams.

Run from the repository root (about five minutes with the defaults)::

    .venv/bin/python benchmarks/bench_commands.py                       # 200,000 events per stream, best of 3
    .venv/bin/python benchmarks/bench_commands.py --mix heavy --sets default --repeat 5
    .venv/bin/python benchmarks/bench_commands.py --keep benchmarks/out   # keep the inputs and outputs

It writes two streams with :mod:`workload` (``--mix``): the realistic one, a
node's whole activity as Tracee records it by default (most events are ones no
signature selects), and the signature-heavy one, a recording made with ``tracee
-e $(tracee-rules --list-events)``, in which every event is one a signature
selects. Then it pins itself to one CPU (the commands it starts, and the Rego
worker they start, inherit that) and runs, as a user does (with the byte code
cached, as an installed package has it: see :func:`command_env`)::

    tracee-rules [--rules SET] --input FILE --output OUT        # the default template

for each signature set (``--sets``: the default set, ``lang:rego``, ``lang:cel``
and ``all``), timing the whole process from start to exit. Each line shows:

* events/s end to end: events / wall time of the command, start-up (imports,
  plugins, rule compilation, the Rego worker) included;
* the ratio to JSON parsing alone (each line of the same file ``orjson.loads``-ed,
  in this process), which is what any replay pays;
* events/s without start-up: the wall time minus that of the same command on an
  empty input (shown as ``start-up``), i.e. the replay's steady rate;
* the CPU time of the command (user + system, with the Rego worker), less
  sensitive than wall time to other jobs on a shared machine;
* the throughput target, where there is one, with PASS or FAIL (judged on the
  end-to-end rate and ratio).

With ``--workers N`` (default 2) it also runs the default set as ``tracee-rules
--workers N`` allowed N CPUs, against the target of 1.7 times the
one-process rate for N = 2. ``--ceiling`` adds what no sharding can beat: the
stream split beforehand into one file per worker (each record to the worker
``--workers`` gives it) and N one-process commands run at once, one per CPU, so
that no worker reads another's records or follows another's processes; and the
same commands again beside :mod:`splitter_walk`, a process that reads the whole
stream and finds each record's owner once: the least a splitter running beside
the workers adds.

Throughputs are the best of ``--repeat`` runs; parse-only and the commands are
interleaved so machine noise hits all alike, and every run is listed. Finally it
checks that each command found exactly the findings the workload injected for
that signature set (:meth:`workload.WorkloadStats.expected_for`), counted from
the command's own output (``Signature ID:`` lines of the default template) and
its summary on stderr; the exit status is 1 when they differ or a command fails.
A signature that a time budget disabled (``--cel-time-budget``,
``--rego-time-budget``: a busy machine can make an evaluation overrun) misses
findings; the report says so. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload
from bench_replay import parse_only, pin_cpu
from workload import signature_id_order

#: The signature sets, as ``tracee-rules`` options.
SETS: dict[str, list[str]] = {
    "default": [],
    "lang:rego": ["--rules", "lang:rego"],
    "lang:cel": ["--rules", "lang:cel"],
    "all": ["--rules", "all"],
}


@dataclass(frozen=True)
class Target:
    """The throughput target for one (stream, signature set): events/s end to end, and share of parse-only."""

    events_per_s: float
    share_of_parse: float | None = None

    def describe(self) -> str:
        share = f", >= {self.share_of_parse:.2f} of parse" if self.share_of_parse is not None else ""
        return f">= {self.events_per_s / 1000:.0f}k/s{share}"

    def met(self, rate: float, share: float) -> bool:
        return rate >= self.events_per_s and (self.share_of_parse is None or share >= self.share_of_parse)


#: The target for ``--workers 2`` on two CPUs: this many times the one-process rate.
WORKERS_SPEEDUP_TARGET = 1.7

TARGETS: dict[tuple[str, str], Target] = {
    ("heavy", "default"): Target(150_000, 0.45),
    ("realistic", "default"): Target(250_000),
    ("heavy", "lang:rego"): Target(30_000),
    ("heavy", "lang:cel"): Target(100_000),
    ("heavy", "all"): Target(25_000),
}

_SUMMARY = re.compile(
    r"(\d+) events read, (\d+) skipped.*?; (\d+) findings from (\d+) signatures(?: \(([^)]*)\))?(.*)$"
)
_SIGNATURE_ID = re.compile(rb"^Signature ID: (\S+)$", re.MULTILINE)


@dataclass
class Run:
    """One command run."""

    wall: float
    cpu: float
    status: int
    found: Counter[str]  # from the output file
    summary: str  # the summary line on stderr
    notes: list[str]  # other stderr lines (warnings, errors)


@dataclass
class Case:
    """One (stream, signature set): its runs, and start-up times on an empty input."""

    mix: str
    rules: str
    workers: int = 1  # --workers, on as many CPUs
    runs: list[Run] = field(default_factory=list)
    startups: list[float] = field(default_factory=list)


def tracee_rules_command(explicit: str | None) -> list[str]:
    """The command to run: ``--command``, or ``tracee-rules`` next to this interpreter, or on PATH."""
    if explicit:
        return explicit.split()
    beside = Path(sys.executable).parent / "tracee-rules"
    return [str(beside)] if beside.exists() else ["tracee-rules"]


def command_env(workdir: Path) -> dict[str, str]:
    """The commands' environment: this one, with byte code cached as an installed package has it.

    ``pip install`` compiles the package's modules; a checkout run with
    ``PYTHONDONTWRITEBYTECODE`` set would compile every module at every start
    instead. The commands write their byte code under ``workdir/pycache``
    (``PYTHONPYCACHEPREFIX``, unless set already), never into the source tree.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(workdir / "pycache"))
    return env


def engine_build(command: list[str], workdir: Path) -> str:
    """Whether the command runs the engine's compiled modules or their sources (and why)."""
    probe = "import pytracee.engine as e; print(e.compiled.status())"
    done = subprocess.run(
        [_python(command), "-c", probe],
        capture_output=True,
        text=True,
        env=command_env(workdir),
        timeout=60,
        check=False,
    )
    return done.stdout.strip() or f"unknown ({done.stderr.strip().splitlines()[-1:]})"


def _python(command: list[str]) -> str:
    """The command's own interpreter: beside it in its venv, else this one."""
    sibling = Path(command[0]).with_name("python")
    return str(sibling if sibling.is_absolute() and sibling.exists() else Path(sys.executable))


def run_command(
    command: list[str],
    rules: str,
    path: Path,
    output: Path,
    extra: list[str],
    env: dict[str, str] | None = None,
    workers: int = 1,
) -> Run:
    """Run ``tracee-rules`` on ``path`` once and time it from start to exit.

    With ``workers`` > 1 it runs with ``--workers N`` on N CPUs (this process's CPU first,
    then the next allowed ones).
    """
    argv = [*command, *SETS[rules], *extra, "--input", str(path), "--output", str(output)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    gc.collect()
    start = time.perf_counter()
    proc = _start(argv, env, _cpus(workers) if workers > 1 else None)
    return _finish(proc, output, start)


def run_presplit(
    command: list[str],
    parts: list[Path],
    outputs: list[Path],
    extra: list[str],
    env: dict[str, str] | None,
    splitter: list[str] | None = None,
) -> Run:
    """The ``--ceiling`` run: one one-process ``tracee-rules`` (default set) per part, all started
    at once, each on its own CPU; timed until the last exits (cpu: all of them; findings: the sum).
    With ``splitter`` (the command of :mod:`splitter_walk`), it runs beside them, as a process
    handing out the records would, all of them sharing the CPUs."""
    cpus = sorted(_cpus(len(parts)))
    gc.collect()
    start = time.perf_counter()
    procs = [
        _start([*command, *extra, "--input", str(part), "--output", str(output)], env, set(cpus) if splitter else {cpu})
        for part, output, cpu in zip(parts, outputs, cpus)
    ]
    jobs = list(zip(procs, outputs))
    if splitter is not None:
        jobs.append((_start(splitter, env, set(cpus)), Path(os.devnull)))
    with ThreadPoolExecutor(len(jobs)) as pool:  # each one's stderr read as it comes
        runs = list(pool.map(lambda job: _finish(job[0], job[1], start), jobs))
    found: Counter[str] = Counter()
    for r in runs:
        found += r.found
    status = next((r.status for r in runs if r.status != 0), 0)
    notes = [note for r in runs for note in r.notes]
    return Run(max(r.wall for r in runs), sum(r.cpu for r in runs), status, found, "", notes)


def _start(argv: list[str], env: dict[str, str] | None, cpus: set[int] | None) -> subprocess.Popen[bytes]:
    preexec = None if cpus is None else lambda: os.sched_setaffinity(0, cpus)
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, preexec_fn=preexec
    )


def _finish(proc: subprocess.Popen[bytes], output: Path, start: float) -> Run:
    """Wait for a command started at ``start``: its :class:`Run`."""
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    lines = stderr.decode(errors="replace").splitlines()
    summary = next((line for line in reversed(lines) if _SUMMARY.search(line)), "")
    notes = [line for line in lines if line != summary and "loaded " not in line]
    found = Counter(m.decode() for m in _SIGNATURE_ID.findall(output.read_bytes())) if output.exists() else Counter()
    return Run(wall, usage.ru_utime + usage.ru_stime, proc.returncode, found, summary, notes)


def split_by_owner(path: Path, count: int, decoded: frozenset[str] | None) -> list[Path]:
    """``path``'s records written to ``count`` files beside it, each to the file of the worker that
    ``tracee-rules --workers count`` makes its owner: by container, else by host process, for the
    events it decodes (``decoded``: :func:`default_set_decodes`); by line number for the others."""
    from pytracee.engine.sharding import record_owner

    parts = [path.with_name(f"{path.stem}.part{index}of{count}{path.suffix}") for index in range(count)]
    files = [part.open("wb") for part in parts]
    try:
        with path.open("rb") as stream:
            for line, text in enumerate(stream, 1):
                files[record_owner(text.rstrip(b"\n"), line, count, decoded)].write(text)
    finally:
        for file in files:
            file.close()
    return parts


def default_set_decodes() -> frozenset[str] | None:
    """The events a replay with the default set decodes (whole or by admission; None: all)."""
    from pytracee.engine.session import Session, SessionConfig

    session = Session(SessionConfig())
    session.load()
    try:
        wanted = session.wanted_events
        return None if wanted is None else frozenset(wanted) | frozenset(session.admissions)
    finally:
        session.finish(session.run([]))


_ALL_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]


def _cpus(count: int) -> set[int]:
    """``count`` CPUs for a ``--workers`` run: the pinned one and the next allowed ones."""
    pinned = min(os.sched_getaffinity(0))
    others = [cpu for cpu in _ALL_CPUS if cpu != pinned]
    return {pinned, *others[: count - 1]}


def summary_findings(summary: str) -> tuple[int, int, Counter[str], str]:
    """(events read, skipped, findings by signature, the rest) from the command's summary line."""
    match = _SUMMARY.search(summary)
    if match is None:
        return -1, -1, Counter(), summary
    by_signature: Counter[str] = Counter()
    for item in filter(None, (match.group(5) or "").split(", ")):
        sig_id, _, count = item.rpartition(": ")
        by_signature[sig_id] = int(count)
    return int(match.group(1)), int(match.group(2)), by_signature, match.group(6)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="End-to-end throughput of the tracee-rules command, on one CPU, per stream and signature set."
    )
    parser.add_argument("--events", type=int, default=200_000, help="events per stream (default: %(default)s)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per measurement; the best counts (default: %(default)s)"
    )
    parser.add_argument("--mix", action="append", choices=workload.MIXES, help="stream(s) to run (default: both)")
    parser.add_argument("--sets", default=",".join(SETS), help="signature sets, comma-separated (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default: %(default)s)")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="also run the default set with tracee-rules --workers N on N CPUs (default: %(default)s; 1: not)",
    )
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="also run the stream split beforehand by owner, one one-process command per part at once: "
        "what no --workers design can beat; and again beside a process that reads the whole stream "
        "and finds every record's owner once (benchmarks/splitter_walk.py): the least a splitter beside the workers adds",
    )
    parser.add_argument("--parse-arguments", action="store_true", help="streams with option:parse-arguments values")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last allowed one)")
    parser.add_argument(
        "--command", default=None, help="the tracee-rules command (default: the one next to this Python)"
    )
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="ARG",
        help="an extra tracee-rules argument for every run (repeatable), e.g. --extra=--cel-time-budget=100",
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="write inputs and outputs here and keep them (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        parser.error(f"unknown signature set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}")
    args.sets = sets
    args.mix = args.mix or list(workload.MIXES)
    if args.ceiling and args.workers < 2:
        parser.error("--ceiling needs --workers 2 or more")

    started = time.perf_counter()
    pinned = pin_cpu(args.cpu)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        return run(args, args.keep, pinned, started)
    with tempfile.TemporaryDirectory(prefix="pytracee-bench-") as tmp:
        return run(args, Path(tmp), pinned, started)


def run(args: argparse.Namespace, workdir: Path, pinned: str, started: float) -> int:
    command = tracee_rules_command(args.command)
    print("pytracee end-to-end benchmark: the tracee-rules command")
    print(f"  Python {platform.python_version()}, orjson {orjson.__version__}, {platform.machine()}, {pinned}")
    print(
        f"  command: {' '.join(command)} [--rules SET] {' '.join(args.extra)} --input FILE --output OUT (default template)"
    )
    print(f"  engine: {engine_build(command, workdir)}")

    inputs: dict[str, tuple[Path, workload.WorkloadStats]] = {}
    for mix in args.mix:
        path = workdir / f"{mix}-{args.events}{'-pa' if args.parse_arguments else ''}.jsonl"
        t = time.perf_counter()
        stats = workload.write_events(path, args.events, seed=args.seed, parse_arguments=args.parse_arguments, mix=mix)
        print(f"  {mix}: {path.name}: {stats.describe()}; written in {time.perf_counter() - t:.0f} s")
        inputs[mix] = (path, stats)
    empty = workdir / "empty.jsonl"
    empty.write_bytes(b"")
    env = command_env(workdir)
    for rules in args.sets:  # warm-up: byte code compiled and cached, files in the page cache
        run_command(command, rules, empty, workdir / "findings-empty.txt", args.extra, env)
    print(f"  byte code cached in {env['PYTHONPYCACHEPREFIX']} (PYTHONPYCACHEPREFIX), as an installed package has it")
    print(f"  best of {args.repeat} interleaved runs; the machine's other load shows in the spread\n")
    sys.stdout.flush()

    parse_runs: dict[str, list[float]] = {mix: [] for mix in args.mix}
    cases = {(mix, rules): Case(mix, rules) for mix in args.mix for rules in args.sets}
    parallel = {mix: Case(mix, "default", args.workers) for mix in args.mix} if args.workers > 1 else {}
    ceiling = {mix: Case(mix, "default", args.workers) for mix in parallel} if args.ceiling else {}
    walked = {mix: Case(mix, "default", args.workers) for mix in ceiling}
    decodes = default_set_decodes() if ceiling else None
    parts = {mix: split_by_owner(inputs[mix][0], args.workers, decodes) for mix in ceiling}
    for round_ in range(args.repeat):
        for mix, (path, _) in inputs.items():
            gc.collect()
            count, seconds = parse_only(path)
            assert count == args.events, (count, args.events)
            parse_runs[mix].append(seconds)
            for rules in args.sets if round_ % 2 == 0 else reversed(args.sets):
                case = cases[(mix, rules)]
                output = workdir / f"findings-{mix}-{rules.replace(':', '-')}.txt"
                case.runs.append(run_command(command, rules, path, output, args.extra, env))
                if mix == args.mix[0]:
                    case_startup = run_command(command, rules, empty, workdir / "findings-empty.txt", args.extra, env)
                    for other in args.mix:
                        cases[(other, rules)].startups.append(case_startup.wall)
            if mix in parallel:
                case = parallel[mix]
                output = workdir / f"findings-{mix}-workers-{args.workers}.txt"
                case.runs.append(run_command(command, "default", path, output, args.extra, env, args.workers))
                empty_run = run_command(
                    command, "default", empty, workdir / "findings-empty.txt", args.extra, env, args.workers
                )
                case.startups.append(empty_run.wall)
            if mix in ceiling:
                outputs = [workdir / f"findings-{mix}-part{index}.txt" for index in range(args.workers)]
                ceiling[mix].runs.append(run_presplit(command, parts[mix], outputs, args.extra, env))
                walker = [_python(command), str(Path(__file__).with_name("splitter_walk.py")), str(path)]
                walker += [str(args.workers)] + ([] if decodes is None else [",".join(sorted(decodes))])
                walked[mix].runs.append(run_presplit(command, parts[mix], outputs, args.extra, env, walker))

    ok = True
    problems: list[str] = []
    for mix, (_path, stats) in inputs.items():
        parse_rate = args.events / min(parse_runs[mix])
        print(f"{mix} stream ({stats.bytes / max(stats.events, 1):.0f} B/event), {args.events:,} events:")
        print(
            f"  {'JSON parse only (orjson.loads per line)':40}{parse_rate:>10,.0f} events/s   runs: {_runs(args.events, parse_runs[mix])}"
        )
        for rules in args.sets:
            case = cases[(mix, rules)]
            rate = best_rate(case, args.events)
            share = rate / parse_rate
            target = TARGETS.get((mix, rules))
            verdict = f"target {target.describe()} {'PASS' if target.met(rate, share) else 'FAIL'}" if target else ""
            if target is not None:
                ok &= target.met(rate, share)
            label = f"tracee-rules {' '.join(SETS[rules]) or '(default set)'}"
            print_case(label, case, args.events, parse_rate, min(case.startups), verdict)
            for problem in check(case, stats, args.events):
                problems.append(f"{mix} {rules}: {problem}")
        if mix in parallel:
            ok &= report_parallel(parallel[mix], cases.get((mix, "default")), parse_rate, args.events)
            for problem in check(parallel[mix], stats, args.events):
                problems.append(f"{mix} --workers {args.workers}: {problem}")
        if mix in ceiling:
            single = cases.get((mix, "default"))
            report_ceiling(ceiling[mix], single, parallel[mix], parse_rate, args.events)
            report_ceiling(
                walked[mix], single, parallel[mix], parse_rate, args.events, "pre-split, beside a splitter's walk"
            )
            expected = stats.expected_for("default")
            for index, r in enumerate([*ceiling[mix].runs, *walked[mix].runs], 1):
                if r.status != 0 or r.found != expected:
                    problems.append(f"{mix} pre-split run {index}: status {r.status}, findings {dict(r.found)}")
        print()

    print("findings (each run, from the output file and the summary) against what the workload injected for the set:")
    for mix, (_, stats) in inputs.items():
        for rules in args.sets:
            expected = stats.expected_for(rules)
            print(f"  {mix:9} {rules:10} expected {sum(expected.values()):>4} from {len(expected)} signatures")
    if problems:
        ok = False
        for problem in problems:
            print(f"  MISMATCH {problem}")
    else:
        print("  every run found exactly the expected findings")
    notes = Counter(_shorten(note) for case in cases.values() for r in case.runs for note in r.notes)
    if notes:
        print("\nnotes on stderr (count of runs):")
        for note, count in notes.most_common(12):
            print(f"  {count:>3}x {note}")
    print(f"\ntotal time {time.perf_counter() - started:.0f} s; targets {'all met' if ok else 'NOT all met'}")
    return 0 if ok else 1


def report_parallel(case: Case, single: Case | None, parse_rate: float, events: int) -> bool:
    """Print the ``--workers`` line of one stream; False when it misses the speed-up target."""
    label = f"tracee-rules --workers {case.workers} ({case.workers} CPUs)"
    verdict = ""
    met = True
    if single is not None and single.runs:
        speedup = best_rate(case, events) / best_rate(single, events)
        if case.workers == 2:
            met = speedup >= WORKERS_SPEEDUP_TARGET
            verdict = f"{speedup:.2f}x one process; target >= {WORKERS_SPEEDUP_TARGET}x {'PASS' if met else 'FAIL'}"
        else:
            verdict = f"{speedup:.2f}x one process"
    print_case(label, case, events, parse_rate, min(case.startups), verdict)
    return met


def report_ceiling(
    case: Case, single: Case | None, parallel: Case, parse_rate: float, events: int, label: str = ""
) -> None:
    """Print a ``--ceiling`` line of one stream (``label``; default: the pre-split commands alone)
    against one process and ``--workers``."""
    rate = best_rate(case, events)
    ratios = [
        f"{rate / best_rate(other, events):.2f}x {name}"
        for name, other in (("one process", single), (f"--workers {case.workers}", parallel))
        if other is not None and other.runs
    ]
    startup = min((single or parallel).startups)  # each command starts as one process does
    label = label or f"pre-split, {case.workers} commands at once"
    print_case(label, case, events, parse_rate, startup, ", ".join(ratios))


def best_rate(case: Case, events: int) -> float:
    """Events/s of the fastest of ``case``'s runs."""
    return events / min(r.wall for r in case.runs)


def print_case(label: str, case: Case, events: int, parse_rate: float, startup: float, verdict: str) -> None:
    """Print the line of one case (its fastest run: rate, share of parse-only, rate without the
    ``startup`` seconds, CPU time, then ``verdict``) and the rates of all its runs below it."""
    best = min(case.runs, key=lambda r: r.wall)
    rate = events / best.wall
    steady = events / max(best.wall - startup, 1e-9)
    print(
        f"  {label:40}{rate:>10,.0f} events/s   {rate / parse_rate:5.2f} of parse   "
        f"without start-up ({startup:.2f} s) {steady:>8,.0f}/s   cpu {best.cpu:6.2f} s   {verdict}"
    )
    print(f"  {'':40}runs: {_runs(events, [r.wall for r in case.runs])}")


def check(case: Case, stats: workload.WorkloadStats, events: int) -> list[str]:
    """Why the runs of ``case`` did not find exactly the expected findings (empty: they did)."""
    expected = stats.expected_for(case.rules)
    problems = []
    for index, r in enumerate(case.runs, 1):
        read, skipped, summarized, rest = summary_findings(r.summary)
        if r.status != 0:
            problems.append(f"run {index}: exit status {r.status}")
        if read != events or skipped:
            problems.append(f"run {index}: {read} events read, {skipped} skipped (of {events})")
        for what, found in (("output", r.found), ("summary", summarized)):
            if found != expected:
                diff = ", ".join(
                    f"{sig} {found[sig]} (expected {expected[sig]})"
                    for sig in sorted(set(found) | set(expected), key=signature_id_order)
                    if found[sig] != expected[sig]
                )
                problems.append(f"run {index}: {what}: {diff}")
        if "signature errors" in rest:
            problems.append(f"run {index}: {rest.strip('; ')}")
    return problems


def _runs(events: int, seconds: list[float]) -> str:
    return ", ".join(f"{events / s / 1000:.0f}k" for s in seconds)


def _shorten(note: str) -> str:
    note = re.sub(r"\d+", "N", note)  # counts, line numbers, times: one line per kind of note
    return note if len(note) <= 200 else note[:197] + "..."


if __name__ == "__main__":
    raise SystemExit(main())
