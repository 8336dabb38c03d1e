"""Replay rate with 50 exceptions and parameters in force vs none (ratio).

    .venv/bin/python benchmarks/bench_operations.py                   # 200,000 events, best of 5
    .venv/bin/python benchmarks/bench_operations.py --events 50000 --repeat 3 --mix heavy

Generates the workload stream (``workload.py``), then replays it in process, on one
CPU, with the built-in signatures enabled by default, alternately:

* **none**: no configuration file;
* **configured**: a configuration file with 50 exceptions (all operators, on event
  context, arguments, finding data, container image and executable hash; most scoped to
  one signature, some to all, none matching the workload's findings so each finding is
  tested against every exception that concerns it) and every built-in parameter set
  (lists extended), plus ``--dedup-window`` when ``--dedup`` is given.

It prints the best rate of each, their ratio, and the findings of both runs, which
must be equal (nothing matched): the configured run found what the plain one found.
Numbers from a shared machine are noisy: read the spread as well as the best.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload

FIELDS = [
    ("processName", "in", "[apt-get, dpkg, unattended-upgr]"),
    ("executable.path", "prefix", "/opt/vendor/"),
    ("executable.hash", "=", "'sha256:0f3a'"),
    ("container.image", "glob", "'registry.example.com/ci/*'"),
    ("args.pathname", "suffix", ".never"),
    ("data.path", "prefix", "/srv/allowed/"),
    ("hostProcessId", "<", "2"),
    ("userId", ">=", "65534"),
    ("kubernetes.podNamespace", "in", "[kube-system-allowed]"),
    ("args.argv", "contains", "--allowed-flag"),
]
SIGNATURES = ["TRC-102", "TRC-103", "TRC-104", "TRC-105", "TRC-107", "TRC-1016", "TRC-1022", "TRC-1027", "", ""]


def config_text(dedup: float) -> str:
    lines = ["params:"]
    lines += [
        "  TRC-1016: {web_servers: [nginx, httpd, httpd-foregroun, http-nio, lighttpd, apache, apache2, caddy]}",
        "  TRC-107: {env_vars: [LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT]}",
        "  TRC-1018: {allowed_processes: [kube-apiserver, kubelet, kube-controller, etcd, cert-manager]}",
        "  TRC-1027: {commands: [crontab, at, batch, launchd, systemd-run]}",
    ]
    if dedup:
        lines.append(f"dedup-window: {dedup}")
    lines.append("exceptions:")
    for i in range(50):
        field, op, value = FIELDS[i % len(FIELDS)]
        other, op2, value2 = FIELDS[(i * 3 + 1) % len(FIELDS)]
        sig = SIGNATURES[i % len(SIGNATURES)]
        lines.append(f"  - name: exception-{i}")
        if sig:
            lines.append(f"    signatures: [{sig}]")
        lines.append(f"    match: {{{field}: {{'{op}': {value}}}, {other}: {{'{op2}': {value2}}}}}")
    return "\n".join(lines) + "\n"


def replay(path: Path, config_path: Path | None) -> tuple[float, dict[str, int], int]:
    from pytracee.engine.operations.config import load_config
    from pytracee.engine.reader import EventReader
    from pytracee.engine.session import Session, SessionConfig

    file_config = load_config(config_path) if config_path else None
    dedup = (
        float(file_config.options["dedup_window"].plain())
        if file_config and "dedup_window" in file_config.options
        else 0.0
    )
    session = Session(SessionConfig(config_file=file_config, dedup_window=dedup))
    session.load()
    reader = EventReader([path], is_known_event=session.is_known_event)
    start = time.perf_counter()
    session.run(reader)
    elapsed = time.perf_counter() - start
    described = session.describe()
    suppressed = sum(described["suppressed_by_exception"].values()) + sum(
        described["deduplicated_by_signature"].values()
    )
    return described["events"] / elapsed, described["findings_by_signature"], suppressed


def per_finding_cost(config_path: Path, findings: int = 20_000) -> float:
    """Microseconds to test one finding against the configuration's exceptions (none matching)."""
    from pytracee.engine.findings import Finding, SignatureMetadata
    from pytracee.engine.operations.config import load_config
    from pytracee.engine.operations.suppression import Suppression
    from pytracee.engine.testing import make_event

    suppression = Suppression(load_config(config_path).exceptions)
    event = make_event("sched_process_exec", {"pathname": "/usr/bin/curl", "argv": ["curl", "-s"]}, processName="curl")
    finding = Finding({"LD_PRELOAD": "LD_PRELOAD=/tmp/x.so"}, event, SignatureMetadata(id="TRC-107", name="x"))
    start = time.perf_counter()
    for _ in range(findings):
        suppression.suppress(finding)
    return (time.perf_counter() - start) / findings * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mix", default="realistic", choices=["realistic", "heavy"])
    parser.add_argument("--dedup", type=float, default=0.0, help="also a de-duplication window (seconds)")
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    cpu = args.cpu if args.cpu is not None else cpus[-1]
    os.sched_setaffinity(0, {cpu})
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events.jsonl"
        workload.write_events(events, args.events, mix=args.mix)
        config = Path(tmp) / "pytracee.yaml"
        config.write_text(config_text(args.dedup))
        plain_rates, configured_rates = [], []
        plain_findings: dict[str, int] = {}
        configured_findings: dict[str, int] = {}
        suppressed = 0
        cost = per_finding_cost(config)
        for _ in range(args.repeat):
            rate, plain_findings, _ = replay(events, None)
            plain_rates.append(rate)
            rate, configured_findings, suppressed = replay(events, config)
            configured_rates.append(rate)
    best_plain, best_configured = max(plain_rates), max(configured_rates)
    print(f"{args.events:,} events ({args.mix}), CPU {cpu}, best of {args.repeat} (shared machine: read the spread)")
    print(f"none:       {best_plain:>10,.0f} events/s   runs: {', '.join(f'{r:,.0f}' for r in plain_rates)}")
    print(f"configured: {best_configured:>10,.0f} events/s   runs: {', '.join(f'{r:,.0f}' for r in configured_rates)}")
    print(f"ratio configured/none: {best_configured / best_plain:.3f}")
    total = sum(plain_findings.values())
    print(f"findings: {total:,} (each tested against the exceptions); suppressed in the configured run: {suppressed}")
    print(
        f"exceptions' cost: {cost:.1f} us per finding (TRC-107: 16 of the 50 exceptions concern it), paid per finding, never per event"
    )
    if not args.dedup and plain_findings != configured_findings:
        print(f"MISMATCH: {plain_findings} vs {configured_findings}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
