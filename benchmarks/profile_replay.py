"""Where a replay's time goes: the ``tracee-rules`` command profiled on a generated stream.

Run from the repository root::

    .venv/bin/python benchmarks/profile_replay.py                          # heavy stream, default set, all tools
    .venv/bin/python benchmarks/profile_replay.py --rules lang:rego --tool py-spy --tool perf
    .venv/bin/python benchmarks/profile_replay.py --mix realistic --events 200000 --keep benchmarks/out

It writes a stream with :mod:`workload` (``--mix``, default ``heavy``), then runs
``tracee-rules [--rules SET] --input FILE --output OUT`` pinned to one CPU under
each profiler (``--tool``, repeatable; default all that are installed):

* ``py-spy`` (``pip install py-spy``): samples the command and its Rego worker
  (``--subprocesses``) from outside, with little overhead, so its shares are the
  real ones. Samples are put in categories (reading and splitting, JSON
  decoding, validation, Event construction, dispatch, data filters, each
  signature's ``on_event``, finding creation, output, the Rego worker and its
  pipe, CEL) by the innermost engine frame, with the source line telling
  JSON decoding from the rest of the reader's loop; then the top functions by own
  and by inclusive samples, and the signatures by inclusive samples.
  Only threads holding the GIL are sampled (``--gil``; ``--no-gil`` turns that
  off): a process blocked or preempted in a system call (the Rego worker just
  after it answered, on one CPU) is otherwise sampled as busy. Time in the kernel
  (pipes, context switches) is therefore missing here: ``perf`` shows it.
* ``cprofile``: the command under ``python -m cProfile`` (the main process only;
  its per-call overhead inflates small Python functions): the top functions by
  cumulative and by own time.
* ``perf`` (``perf record``, if installed): on-CPU time by process and shared
  object (the interpreter, orjson, regorus, cel-cpp, the kernel), and the top
  native symbols: what the Python profilers cannot see.

See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import ast
import cProfile  # noqa: F401  (checked to exist: the command is run under it)
import functools
import io
import linecache
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload
from bench_commands import SETS, command_env, tracee_rules_command

TOOLS = ("py-spy", "cprofile", "perf")


# --- running -----------------------------------------------------------------------------------


def pinned(cpu: int, argv: list[str]) -> list[str]:
    """``argv`` run on CPU ``cpu`` only (its children inherit it); the profiler itself is not pinned.

    ``taskset`` execs the command (same process, so profilers follow it); without it, a
    Python one-liner does the same.
    """
    if shutil.which("taskset"):
        return ["taskset", "-c", str(cpu), *argv]
    return [
        sys.executable,
        "-c",
        f"import os,sys\nos.sched_setaffinity(0,{{{cpu}}})\nos.execv(sys.argv[1],sys.argv[1:])",
        *argv,
    ]


def command_argv(command: list[str], rules: str, path: Path, output: Path, extra: list[str]) -> list[str]:
    return [*command, *SETS[rules], *extra, "--input", str(path), "--output", str(output)]


_ENV: dict[str, str] | None = None  # the commands' environment (bench_commands.command_env)


def run(argv: list[str], what: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        env=_ENV,
    )
    seconds = time.perf_counter() - start
    summary = [line for line in proc.stderr.splitlines() if "events read" in line]
    print(f"  {what}: {seconds:.1f} s, exit {proc.returncode}; {summary[-1] if summary else proc.stderr[-500:]}")
    return seconds


# --- py-spy ------------------------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*):(?P<line>\d+)\)$")
Frame = tuple[str, str, int]  # function, file, line


_PROCESS = re.compile(r'process \d+:"(?P<cmdline>[^"]*)"(?:;|$)')


def parse_collapsed(text: str) -> list[tuple[str, list[Frame], int]]:
    """py-spy's raw (collapsed) output: (process, frames root first, samples) per stack.

    With ``--subprocesses`` a stack starts with ``process PID:"CMDLINE"`` for each
    process from the root one down (command lines may hold ``;``); the process is
    ``main`` or ``rego worker``.
    """
    stacks = []
    for row in text.splitlines():
        body, _, count = row.rpartition(" ")
        if not body or not count.isdigit():
            continue
        process = "main"
        while True:
            match = _PROCESS.match(body)
            if match is None:
                break
            if "rego.worker" in match["cmdline"]:
                process = "rego worker"
            body = body[match.end() :]
        frames: list[Frame] = []
        for part in body.split(";") if body else []:
            match = _FRAME.match(part)
            frames.append((match["func"], match["file"], int(match["line"])) if match else (part, "", 0))
        stacks.append((process, frames, int(count)))
    return stacks


@functools.cache
def _source_root() -> Path:
    """The directory py-spy's relative file names (``engine/reader.py``) are relative to."""
    import pytracee.engine

    return Path(pytracee.engine.__file__).resolve().parent.parent


@functools.cache
def _source_line(file: str, line: int) -> str:
    path = file if os.path.isabs(file) else str(_source_root() / file)
    return linecache.getline(path, line).strip()


@functools.cache
def _classes(file: str) -> list[tuple[int, int, str]]:
    """(first line, last line, class name) of the classes defined in a source file."""
    path = file if os.path.isabs(file) else str(_source_root() / file)
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError):
        return []
    return [(n.lineno, n.end_lineno or n.lineno, n.name) for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]


def class_at(file: str, line: int) -> str:
    for first, last, name in _classes(file):
        if first <= line <= last:
            return name
    return "?"


def _is_startup(process: str, frames: list[Frame]) -> bool:
    funcs = {f for f, _, _ in frames}
    if "_find_and_load" in funcs or "Session.load" in funcs or "PluginManager.load_plugins" in funcs:
        return True
    if process == "rego worker":
        return "Worker.serve" not in funcs or "Worker.call" in funcs
    return "Session.run" not in funcs and "Engine.complete" not in funcs


def categorize(process: str, frames: list[Frame]) -> str:
    """The category of one sample, from its innermost engine frame."""
    if _is_startup(process, frames):
        return "start-up: imports, plugins, rule loading" + (" (Rego worker)" if process == "rego worker" else "")
    for func, file, line in reversed(frames):
        name = func.rpartition(".")[2]
        if file.startswith("signatures/"):
            return "signatures: on_event bodies (own code)"
        if not file.startswith("engine/"):
            continue
        mod = file[len("engine/") :]
        src = _source_line(file, line)
        if mod == "records.py":
            return "reading + splitting lines (records.py)"
        if mod == "reader.py":
            if "loads(" in src:
                return "JSON decode (orjson.loads)"
            if "scan(" in src:
                return "record scanner (engine/_recscan.c)"
            if (
                name in ("_check", "_problem", "_is_number", "_nesting")
                or "check(" in src
                or "_nesting" in src
                or ".count(" in src
            ):
                return "validation (reader._check)"
            if "Event(" in src:
                return "Event construction"
            return "reader loop (generator, counters)"
        if mod == "events.py":
            if name == "__init__":
                return "Event construction"
            if name == "_arg_values":
                return "args dict (Event._arg_values)"
            return "Event accessors (arg, str_arg, open_flags ...)"
        if mod == "parsers.py":
            return "argument parsers (flags, ptrace, sockaddr, base64)"
        if mod == "selectors.py":
            return "data filters (selectors.py)"
        if mod in ("findings.py", "signature.py"):
            return "finding creation (emit, Finding)"
        if mod.startswith("output/") or mod == "safetext.py":
            return "output rendering (templates, sinks)"
        if mod.startswith("rego/"):
            if process == "rego worker":
                if "eval_rule" in src:
                    return "Rego worker: regorus eval_rule"
                if "set_input_json" in src or ".decode(" in src:
                    return "Rego worker: regorus set_input_json (event JSON parsed again)"
                if mod == "rego/protocol.py" or "write_all" in src or "reader.read" in src:
                    return "Rego worker: pipe I/O (frames, os.read, os.write)"
                return "Rego worker: Python (frames, results JSON)"
            if mod in ("rego/protocol.py", "rego/client.py"):
                return "Rego client: pipe round trip (frames, write, poll, read)"
            return "Rego client: Python (rules, answers)"
        if mod.startswith("cel/"):
            if "Activation(" in src:
                return "CEL: activation (event dict -> CEL)"
            if "evaluate(activation" in src:
                return "CEL: cel-cpp evaluation (with the lazy event conversion)"
            if mod == "cel/boundary.py":
                return "CEL: admission checks (boundary.py)"
            if mod == "cel/functions.py":
                return "CEL: custom functions (Python)"
            return "CEL: signature Python (on_event, budget)"
        if mod == "dispatch.py":
            return "dispatch + selector index (dispatch.py)"
        if mod == "session.py":
            return "session loop (session.py)"
        if mod in {"plugins.py", "hookspecs.py"}:
            return "plugin hooks (pluggy)"
        return f"engine: {mod}"
    if any(f == "PluginManager" or "pluggy" in file for f, file, _ in frames):
        return "plugin hooks (pluggy)"
    return "other (interpreter, stdlib)"


def report_pyspy(text: str, top: int) -> None:
    stacks = parse_collapsed(text)
    total = sum(n for _, _, n in stacks)
    if not total:
        print("  (no samples)")
        return
    by_process: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    signatures: Counter[str] = Counter()
    for process, frames, n in stacks:
        by_process[process] += n
        categories[categorize(process, frames)] += n
        if frames:
            func, file, _ = frames[-1]
            own[f"{func} ({file})"] += n
        for key in {f"{func} ({file})" for func, file, _ in frames}:
            inclusive[key] += n
        for func, file, line in frames:
            if file.startswith("signatures/") and func.endswith("on_event"):
                signatures[f"{class_at(file, line)} ({file})"] += n
                break
            if func in ("CelSignature.on_event", "RegoSignature.on_event"):
                signatures[func.split(".")[0] + " (all rules of the language)"] += n
                break
    print(f"  {total} samples: " + ", ".join(f"{p} {100 * n / total:.1f}%" for p, n in by_process.most_common()))
    print("  where the time goes (innermost engine frame; % of all samples):")
    for category, n in categories.most_common():
        print(f"    {100 * n / total:5.1f}%  {category}")
    print(f"  top {top} functions by own samples:")
    for key, n in own.most_common(top):
        print(f"    {100 * n / total:5.1f}%  {key}")
    print(f"  top {top} functions by inclusive samples:")
    for key, n in inclusive.most_common(top):
        print(f"    {100 * n / total:5.1f}%  {key}")
    if signatures:
        print("  signatures by inclusive samples (on_event and all it calls):")
        for key, n in signatures.most_common(top):
            print(f"    {100 * n / total:5.1f}%  {key}")


# --- cProfile -----------------------------------------------------------------------------------


def report_cprofile(path: Path, top: int) -> None:
    for sort, title in (("cumulative", "cumulative"), ("tottime", "own")):
        stream = io.StringIO()
        stats = pstats.Stats(str(path), stream=stream)
        stats.sort_stats(sort).print_stats(top)
        lines = stream.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
        header = next((line for line in lines if "function calls" in line), "")
        print(f"  top {top} by {title} time ({header.strip()}):")
        for line in lines[start : start + top + 1]:
            print("    " + _short_path(line))


def _short_path(line: str) -> str:
    root = str(_source_root()) + "/"
    line = line.replace(root, "")
    return re.sub(r"/\S*/site-packages/", "", line)


# --- perf ---------------------------------------------------------------------------------------


def report_perf(data: Path, top: int) -> None:
    for sort, title, limit in (
        ("pid,dso", "on-CPU samples by process and shared object", 14),
        ("pid,dso,sym", f"top {top} symbols", top),
    ):
        proc = subprocess.run(
            ["perf", "report", "-i", str(data), "--sort", sort, "--stdio", "--percent-limit", "0.5"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        rows = [line for line in proc.stdout.splitlines() if line.strip() and not line.startswith("#")]
        print(f"  {title}:")
        for line in rows[:limit]:
            print("    " + re.sub(r"\s+", " ", line.strip()))


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Profile tracee-rules replaying a generated stream.")
    parser.add_argument("--mix", choices=workload.MIXES, default="heavy", help="the stream (default: %(default)s)")
    parser.add_argument("--events", type=int, default=200_000, help="events in the stream (default: %(default)s)")
    parser.add_argument("--rules", action="append", choices=SETS, help="signature set(s) to profile (default: default)")
    parser.add_argument("--tool", action="append", choices=TOOLS, help="profiler(s) (default: every one installed)")
    parser.add_argument("--top", type=int, default=15, help="functions per table (default: %(default)s)")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second (default: %(default)s)")
    parser.add_argument(
        "--no-gil", dest="gil", action="store_false",
        help="py-spy: sample threads without the GIL too (by default only threads holding the GIL count, so a "
        "process blocked or preempted in a system call, as the Rego worker after answering, is not counted as busy)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cpu", type=int, default=None, help="CPU the command runs on (default: the last allowed one)")
    parser.add_argument("--input", type=Path, default=None, help="profile this file instead of generating one")
    parser.add_argument(
        "--command", default=None, help="the tracee-rules command (default: the one next to this Python)"
    )
    parser.add_argument(
        "--extra", action="append", default=[], metavar="ARG", help="an extra tracee-rules argument (repeatable)"
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep the stream and the profiles here")
    args = parser.parse_args(argv)
    args.rules = args.rules or ["default"]
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    available = {"py-spy": Path(spy).exists(), "cprofile": True, "perf": shutil.which("perf") is not None}
    tools = args.tool or [t for t in TOOLS if available[t]]
    for tool in tools:
        if not available[tool]:
            parser.error(f"{tool} is not installed")
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        return profile(args, args.keep, tools, spy, cpu)
    with tempfile.TemporaryDirectory(prefix="pytracee-profile-") as tmp:
        return profile(args, Path(tmp), tools, spy, cpu)


def profile(args: argparse.Namespace, workdir: Path, tools: list[str], spy: str, cpu: int) -> int:
    global _ENV
    _ENV = command_env(workdir)
    command = tracee_rules_command(args.command)
    if args.input is not None:
        path = args.input
        print(f"input: {path}")
    else:
        path = workdir / f"{args.mix}-{args.events}.jsonl"
        stats = workload.write_events(path, args.events, seed=args.seed, mix=args.mix)
        print(f"input: {path.name}: {stats.describe()}")
    print(f"command: {' '.join(command)} [--rules SET] --input FILE --output OUT, on CPU {cpu}\n")
    handlers: dict[str, Callable[[str, list[str]], None]] = {}

    def with_pyspy(tag: str, argv: list[str]) -> None:
        out = workdir / f"py-spy-{tag}.txt"
        gil = ["--gil"] if args.gil else []
        run(
            [
                spy,
                "record",
                "--format",
                "raw",
                "--rate",
                str(args.rate),
                "--subprocesses",
                *gil,
                "--output",
                str(out),
                "--",
                *pinned(cpu, argv),
            ],
            "py-spy",
        )
        report_pyspy(out.read_text(), args.top)

    def with_cprofile(tag: str, argv: list[str]) -> None:
        out = workdir / f"cprofile-{tag}.prof"
        script = argv[0]
        if not _is_python_script(script):
            print(f"  cProfile: {script} is not a Python script; skipped")
            return
        run(pinned(cpu, [sys.executable, "-m", "cProfile", "-o", str(out), script, *argv[1:]]), "cProfile")
        report_cprofile(out, args.top)

    def with_perf(tag: str, argv: list[str]) -> None:
        out = workdir / f"perf-{tag}.data"
        run(["perf", "record", "-q", "-F", "999", "-o", str(out), "--", *pinned(cpu, argv)], "perf")
        report_perf(out, args.top)

    handlers = {"py-spy": with_pyspy, "cprofile": with_cprofile, "perf": with_perf}
    for rules in args.rules:
        tag = f"{args.mix}-{rules.replace(':', '-')}"
        argv = command_argv(command, rules, path, workdir / f"findings-{tag}.txt", args.extra)
        print(f"=== {args.mix} stream, tracee-rules {' '.join(SETS[rules]) or '(default set)'} ===")
        run(pinned(cpu, argv), "unprofiled (also compiles and caches the byte code)")
        for tool in tools:
            print(f"--- {tool}")
            handlers[tool](tag, argv)
            sys.stdout.flush()
        print()
    return 0


def _is_python_script(path: str) -> bool:
    try:
        with open(path, "rb") as script:
            first = script.readline()
    except OSError:
        return False
    return path.endswith(".py") or (first.startswith(b"#!") and b"python" in first)


if __name__ == "__main__":
    raise SystemExit(main())
