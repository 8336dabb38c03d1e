"""``tracee`` tracing the live host and publishing to JetStream; a worker detects from the bus.

Needs root and BTF, as tests/test_tracee_live.py; the nats-server is real
(tests/bus_support.py). The traced program names itself ``pytracee-dbg`` so the
in-kernel comm filter keeps other processes' events out.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bus_support import nats_server, read_stream
from collector_support import Tracee

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="live tracing needs root (CAP_BPF and CAP_PERFMON)"),
    pytest.mark.skipif(not Path("/sys/kernel/btf/vmlinux").exists(), reason="the kernel has no BTF"),
]

ANTI_DEBUG = (
    "import ctypes\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.prctl(15, b'pytracee-dbg', 0, 0, 0)\n"  # PR_SET_NAME
    "libc.ptrace(0, 0, 0, 0)\n"  # PTRACE_TRACEME
)


def test_tracee_publishes_live_events_and_a_worker_detects_from_the_bus(tmp_path: Path) -> None:
    with nats_server() as server:
        tracee = Tracee(
            "-e", "ptrace", "-s", "comm=pytracee-dbg",
            "--output", f"{server.url}/tracee.events?host=live-node",
            "--rules", "TRC-102",  # tracee detects too, and publishes its own findings
            "--findings-output", f"{server.url}/tracee.local?stream=LOCAL_FINDINGS",
        )  # fmt: skip
        worker = subprocess.Popen(
            [
                sys.executable, "-m", "pytracee.engine.cli.tracee_rules",
                "--input", f"{server.url}/TRACEE_EVENTS?consumer=live&idle=6",
                "--output", f"{server.url}/tracee.findings",
                "--rules", "TRC-102",
            ],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        script = tmp_path / "anti_debug.py"
        script.write_text(ANTI_DEBUG)
        subprocess.run([sys.executable, str(script)], check=True, timeout=60)
        status, _, tracee_err = tracee.stop()
        _, worker_err = worker.communicate(timeout=120)
        assert status == 0, tracee_err
        published = re.search(
            r"(\d+) events published, 0 dropped \(buffer full\), 0 dropped at the end, 0 failed", tracee_err
        )
        assert published and int(published.group(1)) >= 1, tracee_err
        assert worker.returncode == 0, worker_err
        assert f"{published.group(1)} events processed, 0 skipped" in worker_err
        events = read_stream(server.url, "TRACEE_EVENTS")
        assert {subject.rsplit(".", 1)[1] for subject, _, _ in events} == {"live-node"}
        assert all(json.loads(data)["processName"] == "pytracee-dbg" for _, data, _ in events)
        findings = [json.loads(data) for _, data, _ in read_stream(server.url, "TRACEE_FINDINGS")]
        local = [json.loads(data) for _, data, _ in read_stream(server.url, "LOCAL_FINDINGS")]
        assert "1 findings published, 0 dropped" in tracee_err
    assert [f["SigMetadata"]["ID"] for f in local] == ["TRC-102"]
    assert local[0]["Context"]["timestamp"] == findings[0]["Context"]["timestamp"]
    assert [f["SigMetadata"]["ID"] for f in findings] == ["TRC-102"]
    context = findings[0]["Context"]
    assert context["eventName"] == "ptrace" and context["processName"] == "pytracee-dbg"
