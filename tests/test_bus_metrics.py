"""What a ``nats://`` output did is served with the metrics while the run goes on."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bus_support import nats_server
from conftest import REPO
from prometheus_client.parser import text_string_to_metric_families

EVENTS = REPO / "examples" / "events" / "runc-ld-library-path.jsonl"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bus_samples(base: str) -> dict[tuple[str, str, str], float]:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as answer:  # noqa: S310 - the test server on 127.0.0.1
        text = answer.read().decode()
    return {
        (sample.name, sample.labels.get("what", ""), sample.labels.get("outcome", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("pytracee_bus_")
    }


def test_findings_published_to_the_bus_are_counted_in_the_metrics(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with nats_server() as server:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "pytracee.engine.cli.tracee_rules", "--rules", "TRC-107", "--input", "-"),
                *("--output", f"{server.url}/tracee.findings?buffer=64", "--metrics-addr", f"127.0.0.1:{port}"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdin is not None
            proc.stdin.write(EVENTS.read_text())  # 10 findings of TRC-107
            proc.stdin.flush()
            deadline = time.monotonic() + 60
            samples: dict[tuple[str, str, str], float] = {}
            while time.monotonic() < deadline:
                try:
                    samples = bus_samples(base)
                except OSError:
                    samples = {}
                if samples.get(("pytracee_bus_messages_total", "findings", "published")) == 10:
                    break
                time.sleep(0.2)
            assert samples.get(("pytracee_bus_messages_total", "findings", "published")) == 10, samples
            assert samples[("pytracee_bus_messages_total", "findings", "dropped (buffer full)")] == 0
            assert samples[("pytracee_bus_messages_total", "findings", "failed")] == 0
            assert samples[("pytracee_bus_queue_capacity", "findings", "")] == 64
            assert samples[("pytracee_bus_queue_depth", "findings", "")] == 0
            proc.stdin.close()
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.stderr is not None
        assert "10 findings published, 0 dropped" in proc.stderr.read()
