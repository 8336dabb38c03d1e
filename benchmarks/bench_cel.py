"""What the CEL rules cost on top of dispatching the events, with and without Python decisions.

Run from the repository root::

    .venv/bin/python benchmarks/bench_cel.py                        # heavy stream, 100,000 events
    .venv/bin/python benchmarks/bench_cel.py --mix realistic --events 200000
    .venv/bin/python benchmarks/bench_cel.py --cel-engine cel-python --events 20000
    .venv/bin/python benchmarks/bench_cel.py --input events.jsonl    # a recording of your own

It decodes the stream once (``orjson``, keeping each line as the reader does), then,
pinned to one CPU, dispatches it through an engine holding the CEL rules of
rules/cel three ways, interleaved, ``--repeat`` times (the best pass counts, in CPU
time of the thread):

* **dispatch only**: the rules' ``on_event`` does nothing: routing, data and scope
  filters, the floor;
* **engine only**: every condition evaluated by the CEL engine on the whole event
  (the Python decisions of ``engine/cel/shortcut.py`` and the projection of
  ``engine/cel/projection.py`` turned off);
* **as shipped**: conditions decided in Python where certain, the engine given only
  the fields the expressions read.

It prints each pass's time, what the rules add to the floor per event and per
evaluation, and checks that the last two give the same findings (rule, line, Data)
and the same evaluation errors; it exits with status 1 when they do not.
The reading, validation and context every replay pays are not included: for those,
``bench_commands.py --sets lang:cel`` times the command end to end.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload
from bench_replay import pin_cpu
from pytracee.engine.cel.projection import WHOLE_EVENT
from pytracee.engine.cel.signature import CelSignature
from pytracee.engine.dispatch import Engine
from pytracee.engine.events import Event
from pytracee.engine.findings import Finding
from pytracee.engine.testing import load_signatures

RULES = Path(__file__).resolve().parent.parent / "rules" / "cel"
MODES = ("dispatch only", "engine only", "as shipped")


class Setup:
    """The CEL rules in an engine, one way (see :data:`MODES`)."""

    def __init__(self, mode: str, backend: str) -> None:
        self.mode = mode
        self.signatures = [s for s in load_signatures(RULES, cel_engine=backend) if isinstance(s, CelSignature)]
        for signature in self.signatures:
            if mode == "dispatch only":
                signature.on_event = lambda event: None  # type: ignore[method-assign]
            elif mode == "engine only":
                signature._shortcuts = signature._no_shortcuts
                signature._gate.require(WHOLE_EVENT)
        self.found: list[Finding] = []
        self.engine = Engine(self.signatures, self.found.append)
        self.times: list[float] = []

    def run(self, lines: list[tuple[dict[str, Any], bytes, int]]) -> None:
        self.found.clear()
        for signature in self.signatures:
            signature.evaluations = signature.errors = 0
        events = [Event(raw, "tracee", "stream", number, text) for raw, text, number in lines]
        for event in events:
            event.args  # noqa: B018 - decoded by the reader's side in a replay, not the rules'
        gc.collect()
        start = time.thread_time()
        for event in events:
            self.engine.dispatch(event)
        self.times.append(time.thread_time() - start)

    def outcome(self) -> tuple[list[Any], dict[str, int]]:
        findings = [(f.sig_metadata.id, f.event.location, f.data) for f in self.found]
        return findings, {s.spec.id: s.errors for s in self.signatures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The CEL rules' own cost, with and without Python decisions.")
    parser.add_argument("--events", type=int, default=100_000, help="events in the stream (default: %(default)s)")
    parser.add_argument("--mix", choices=workload.MIXES, default="heavy", help="the stream (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default: %(default)s)")
    parser.add_argument("--input", type=Path, default=None, help="JSON lines to use instead of a generated stream")
    parser.add_argument("--repeat", type=int, default=5, help="passes per way; the best counts (default: %(default)s)")
    parser.add_argument("--cel-engine", default="cel-expr-python", help="CEL backend (default: %(default)s)")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last allowed one)")
    args = parser.parse_args(argv)

    pinned = pin_cpu(args.cpu)
    if args.input is not None:
        lines = _decode(args.input)
        source = str(args.input)
    else:
        with tempfile.TemporaryDirectory(prefix="pytracee-bench-cel-") as tmp:
            path = Path(tmp) / "events.jsonl"
            stats = workload.write_events(path, args.events, seed=args.seed, mix=args.mix)
            lines = _decode(path)
            source = f"{args.mix} stream, {stats.describe()}"
    print("pytracee: the CEL rules (rules/cel) on top of dispatch")
    print(f"  {source}; {len(lines):,} events; {args.cel_engine}; {pinned}; best of {args.repeat} passes, CPU time\n")

    setups = [Setup(mode, args.cel_engine) for mode in MODES]
    for round_ in range(args.repeat):
        for setup in setups if round_ % 2 == 0 else reversed(setups):
            setup.run(lines)

    floor = min(setups[0].times)
    n = max(len(lines), 1)
    for setup in setups:
        best = min(setup.times)
        evaluations = sum(s.evaluations for s in setup.signatures)
        runs = " ".join(f"{t:.3f}" for t in setup.times)
        line = f"  {setup.mode:15} {best:7.3f} s   {n / best:>10,.0f} events/s"
        if setup.mode != "dispatch only":
            added = best - floor
            per_evaluation = added / evaluations * 1e6 if evaluations else 0.0
            line += f"   rules add {added:.3f} s: {added / n * 1e6:.2f} µs/event, {per_evaluation:.2f} µs/evaluation"
            line += f" ({evaluations:,} evaluations)"
        print(f"{line}\n  {'':15} runs: {runs}")
    engine_only, shipped = setups[1], setups[2]
    added_before, added_now = min(engine_only.times) - floor, min(shipped.times) - floor
    if added_now > 0:
        print(f"\n  the rules' own cost: {added_before / added_now:.1f}x less as shipped")
    same = engine_only.outcome() == shipped.outcome()
    findings, errors = shipped.outcome()
    print(f"  findings: {len(findings)}, evaluation errors: {sum(errors.values())}; ", end="")
    print("the same both ways" if same else "DIFFERENT between the two ways")
    return 0 if same else 1


def _decode(path: Path) -> list[tuple[dict[str, Any], bytes, int]]:
    lines = []
    with path.open("rb") as stream:
        for number, line in enumerate(stream, 1):
            text = line.rstrip(b"\n")
            if text:
                lines.append((orjson.loads(text), text, number))
    return lines


if __name__ == "__main__":
    sys.exit(main())
