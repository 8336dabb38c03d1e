"""Replay throughput per signature language, in one run, on one CPU.

Run from the repository root::

    .venv/bin/python benchmarks/bench_rule_languages.py            # 100,000 events
    .venv/bin/python benchmarks/bench_rule_languages.py --events 200000 --repeat 5
    .venv/bin/python benchmarks/bench_rule_languages.py --mix heavy   # only events signatures select

It writes the realistic mixed stream of :mod:`workload` and replays it through
the real session (reader, selector index, signatures) with each signature set
that ``tracee-rules --rules`` can choose, interleaving the runs so machine noise
hits all of them alike:

* JSON parsing alone (``orjson.loads`` per line): the floor;
* ``python``: the default set, the 30 Python built-ins;
* ``lang:rego``: only the Rego signatures shipped in rules/rego (Tracee's v0.8 set);
* ``lang:cel``: only the CEL detectors shipped in rules/cel;
* ``all``: every signature of every language at once.

Each line shows the best events/s of ``--repeat`` runs, all runs, the findings
of the last run and the target (>= 30k events/s for the Rego and CEL sets).
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload
from bench_replay import parse_only, pin_cpu, replay

#: (label, --rules selection, target events/s or None)
SETS = (
    ("python (default set)", [], 150_000),
    ("lang:rego (rules/rego)", ["lang:rego"], 30_000),
    ("lang:cel (rules/cel)", ["lang:cel"], 30_000),
    ("all (every language)", ["all"], None),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Replay throughput of pytracee per signature language.")
    parser.add_argument("--events", type=int, default=100_000, help="events in the stream (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per set; the best counts (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default: %(default)s)")
    parser.add_argument(
        "--mix", choices=workload.MIXES, default="realistic", help="the stream (see workload.py) (default: %(default)s)"
    )
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last allowed one)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    pinned = pin_cpu(args.cpu)
    print("pytracee replay benchmark per signature language")
    print(f"  Python {platform.python_version()}, {platform.machine()}, {pinned}")
    with tempfile.TemporaryDirectory(prefix="pytracee-bench-") as tmp:
        path = Path(tmp) / "events.jsonl"
        stats = workload.write_events(path, args.events, seed=args.seed, mix=args.mix)
        print(f"  input: {stats.describe()}\n")
        parse_runs: list[float] = []
        runs: dict[str, list[float]] = {label: [] for label, _, _ in SETS}
        described: dict[str, dict] = {}
        for _ in range(args.repeat):
            gc.collect()
            parse_runs.append(parse_only(path)[1])
            for label, rules, _ in SETS:
                gc.collect()
                described[label], _, seconds = replay(path, rules)
                runs[label].append(seconds)

    def rate(seconds: list[float]) -> float:
        return args.events / min(seconds)

    def shown(seconds: list[float]) -> str:
        return ", ".join(f"{args.events / s / 1000:.0f}k" for s in seconds)

    ok = True
    print(f"{'JSON parse only':26}{rate(parse_runs):>10,.0f} events/s   runs: {shown(parse_runs)}")
    python_rate = rate(runs[SETS[0][0]])
    for label, rules, target in SETS:
        result = described[label]
        verdict = ""
        if target is not None:
            passed = rate(runs[label]) >= target
            ok &= passed
            verdict = f"target >= {target:,} {'PASS' if passed else 'FAIL'}"
        errors = f", signature errors {result['signature_errors']}" if result["signature_errors"] else ""
        expected = stats.expected_for(rules[0] if rules else "default")
        matched = (
            ""
            if Counter(result["findings_by_signature"]) == expected
            else f" (expected {sum(expected.values())}: MISMATCH)"
        )
        print(
            f"{label:26}{rate(runs[label]):>10,.0f} events/s   {rate(runs[label]) / python_rate:5.2f}x python   "
            f"{result['findings']:>4} findings from {len(result['findings_by_signature'])} signatures{matched}{errors}   "
            f"{verdict}   runs: {shown(runs[label])}"
        )
    print(f"\ntotal time {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
