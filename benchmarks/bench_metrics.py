"""What serving metrics costs: ``tracee-rules`` with and without ``--metrics-addr``, end to end.

Run from the repository root (about two minutes with the defaults)::

    .venv/bin/python benchmarks/bench_metrics.py                       # heavy stream, 200,000 events, best of 5
    .venv/bin/python benchmarks/bench_metrics.py --mix realistic --sets default,all --repeat 3
    .venv/bin/python benchmarks/bench_metrics.py --scrape-interval 0   # served, never scraped

It writes the stream(s) of :mod:`workload` (``--mix``, default the signature-heavy
one, in which every event reaches a signature: the worst case for the per-signature
timer), pins itself to one CPU as ``bench_commands.py`` does, and runs, interleaved::

    tracee-rules [--rules SET] --input FILE --output OUT                                   # metrics off
    tracee-rules [--rules SET] --metrics-addr 127.0.0.1:PORT --input FILE --output OUT     # metrics on

while a scraper in this process GETs ``/metrics`` every ``--scrape-interval`` seconds
(default 1 s, far more often than Prometheus' usual 15 s). Per stream and set it
prints the best end-to-end rate of each, every run, the least CPU time (user +
system), and the ratios on/off of both (CPU time varies less than wall time with the
machine's other load); it checks that both found exactly the findings the workload injected
(:meth:`workload.WorkloadStats.expected_for`) and that the scraper got answers.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workload
from bench_commands import SETS, Run, command_env, run_command, summary_findings, tracee_rules_command
from bench_replay import pin_cpu


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Scraper:
    """GETs ``url`` every ``interval`` seconds on a thread until stopped; counts the answers."""

    def __init__(self, url: str, interval: float) -> None:
        self.url = url
        self.interval = interval
        self.answers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Scraper:
        if self.interval > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as answer:  # noqa: S310 - the local server
                    answer.read()
                    self.answers += 1
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet, or already gone


def dispatch_cost(path: Path, events: int, repeat: int) -> tuple[float, float, int]:
    """CPU seconds to dispatch the first ``events`` events of ``path`` (already parsed, in
    memory) through the default signatures, best of ``repeat``: (untimed, timed, signature calls)."""
    import orjson
    from pytracee.engine import Event
    from pytracee.engine.operations.metrics import SignatureTimings
    from pytracee.engine.session import Session, SessionConfig

    with path.open("rb") as lines:
        raws = [orjson.loads(line) for _, line in zip(range(events), lines, strict=False)]
    best = {False: float("inf"), True: float("inf")}
    calls = 0
    for round_ in range(repeat):
        for timed in (False, True) if round_ % 2 == 0 else (True, False):
            session = Session(SessionConfig(load_installed_plugins=False))
            session.load()
            engine = session.engine
            assert engine is not None
            timings = SignatureTimings()
            if timed:
                engine.instrument(timings.wrap)
            batch = [Event(dict(raw)) for raw in raws]
            dispatch = engine.dispatch
            start = time.process_time()
            for event in batch:
                dispatch(event)
            best[timed] = min(best[timed], time.process_time() - start)
            if timed:
                calls = sum(t.calls for t in timings.by_id.values())
    return best[False], best[True], calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The cost of --metrics-addr on tracee-rules, end to end, one CPU.")
    parser.add_argument("--events", type=int, default=200_000, help="events per stream (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each; the best counts (default: %(default)s)")
    parser.add_argument("--mix", action="append", choices=workload.MIXES, help="stream(s) (default: heavy)")
    parser.add_argument("--sets", default="default", help="signature sets, comma-separated (default: %(default)s)")
    parser.add_argument("--scrape-interval", type=float, default=1.0, help="seconds between scrapes; 0: none")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last allowed one)")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default: %(default)s)")
    args = parser.parse_args(argv)
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    if unknown := [s for s in sets if s not in SETS]:
        parser.error(f"unknown signature set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}")
    mixes = args.mix or ["heavy"]
    pinned = pin_cpu(args.cpu)
    command = tracee_rules_command(None)
    ok = True
    with tempfile.TemporaryDirectory(prefix="pytracee-bench-metrics-") as tmp:
        workdir = Path(tmp)
        env = command_env(workdir)
        print("pytracee benchmark: the cost of --metrics-addr (tracee-rules, end to end)")
        print(f"  {pinned}; best of {args.repeat} interleaved runs; scrape every {args.scrape_interval:g} s")
        for mix in mixes:
            path = workdir / f"{mix}.jsonl"
            stats = workload.write_events(path, args.events, seed=args.seed, mix=mix)
            print(f"\n{mix} stream: {stats.describe()}")
            for rules in sets:
                run_command(command, rules, path, workdir / "warm.txt", [], env)  # byte code cached
                off: list[Run] = []
                on: list[Run] = []
                answers = 0
                for round_ in range(args.repeat):
                    for metrics in (False, True) if round_ % 2 == 0 else (True, False):
                        output = workdir / f"findings-{metrics}.txt"
                        if not metrics:
                            off.append(run_command(command, rules, path, output, [], env))
                            continue
                        port = free_port()
                        extra = ["--metrics-addr", f"127.0.0.1:{port}"]
                        with Scraper(f"http://127.0.0.1:{port}/metrics", args.scrape_interval) as scraper:
                            on.append(run_command(command, rules, path, output, extra, env))
                        answers += scraper.answers
                expected = stats.expected_for(rules)
                for label, runs in (("metrics off", off), ("metrics on", on)):
                    for r in runs:
                        found = summary_findings(r.summary)[2]
                        if r.status != 0 or r.found != expected or found != expected:
                            ok = False
                            print(f"  MISMATCH {label} {rules}: status {r.status}, findings {dict(r.found)}")
                best_off = min(r.wall for r in off)
                best_on = min(r.wall for r in on)
                print(f"  set {rules}:")
                for label, runs, best in (("metrics off", off, best_off), ("metrics on", on, best_on)):
                    walls = ", ".join(f"{args.events / r.wall / 1000:.0f}k" for r in runs)
                    cpu = min(r.cpu for r in runs)
                    print(f"    {label:12} {args.events / best:>9,.0f} events/s   cpu {cpu:5.2f} s   runs: {walls}")
                cpu_ratio = min(r.cpu for r in on) / min(r.cpu for r in off)
                print(
                    f"    on/off: rate {best_off / best_on:.3f}, cpu {cpu_ratio:.3f} (best runs; cpu is the steadier on a"
                    f" loaded machine)   {answers} scrapes answered during the 'on' runs"
                )
                if rules == "default":
                    untimed, timed, calls = dispatch_cost(path, min(args.events, 100_000), args.repeat)
                    per_call = (timed - untimed) / max(calls, 1) * 1e9
                    print(
                        f"    in process, dispatch only (parsed events, CPU time): untimed {untimed:.3f} s, timed"
                        f" {timed:.3f} s ({timed / untimed:.3f}x), {calls:,} signature calls, ~{per_call:.0f} ns per call"
                    )
                if args.scrape_interval > 0 and answers == 0:
                    ok = False
                    print("    the scraper got no answer: were the metrics served?")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
