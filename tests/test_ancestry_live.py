"""Ancestry, live and replayed: a three-level fork/exec chain on the finding, in order;
the recorded events replayed through ``tracee-rules`` give the same ancestry; the
executable's hash equals ``sha256sum``'s.

The chain is three shell scripts with command names no other process uses, each
running the next (and then ``true``, so the shell forks instead of exec'ing), the
last one running a copy of ``/bin/true`` called ``pyt-leaf``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from collector_support import Tracee
from conftest import tracee_rules

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="live tracing needs root (CAP_BPF and CAP_PERFMON)"),
    pytest.mark.skipif(not Path("/sys/kernel/btf/vmlinux").exists(), reason="the kernel has no BTF"),
]

RULE = """
from pytracee.engine import Event, select, signature


@signature(id="CTX-1", name="leaf executed", severity=1, events=[select("sched_process_exec", pathname="*/pyt-leaf")])
def leaf(event: Event) -> dict:
    grandparent = event.process.ancestor(2)
    return {"grandparent": grandparent.comm if grandparent is not None else ""}
"""


def make_chain(directory: Path) -> Path:
    leaf = directory / "pyt-leaf"
    shutil.copy2("/bin/true", leaf)
    for name, runs in (("pyt-c", leaf), ("pyt-b", directory / "pyt-c"), ("pyt-a", directory / "pyt-b")):
        script = directory / name
        script.write_text(f"#!/bin/sh\n{runs}\ntrue\n")
        script.chmod(0o755)
    return directory / "pyt-a"


def test_live_chain_on_the_finding_in_order_and_the_same_in_replay(tmp_path: Path) -> None:
    start = make_chain(tmp_path)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "leaf.py").write_text(RULE)
    findings_file = tmp_path / "findings.json"
    tracee = Tracee(
        "--rules-dir", str(rules), "--rules", "CTX-1", "--output-template", "rawjson",
        "--findings-output", str(findings_file),
        "-e", "sched_process_fork,sched_process_exec,sched_process_exit", "-o", "json",
    )  # fmt: skip
    subprocess.run([str(start)], check=True)
    status, events, err = tracee.stop()
    assert status == 0, err
    (live,) = [json.loads(line) for line in findings_file.read_text().splitlines()]
    ancestry = live["Context"]["processAncestry"]
    assert [a["comm"] for a in ancestry[:3]] == ["pyt-c", "pyt-b", "pyt-a"]
    assert live["Data"] == {"grandparent": "pyt-b"}
    pids = [a["pid"] for a in ancestry[:3]]
    assert len(set(pids)) == 3 and all(a["startTime"] > 0 for a in ancestry[:3])
    assert ancestry[2]["argv"][-1] == str(start)  # the script path the shell was given
    assert ancestry[3]["pid"] == os.getpid()  # pyt-a's parent: this test, read from /proc or its fork
    sha256sum = subprocess.run(["sha256sum", str(tmp_path / "pyt-leaf")], capture_output=True, text=True, check=True)
    assert live["Context"]["executable"]["sha256"] == sha256sum.stdout.split()[0]

    # the same events, replayed: the same chain
    recorded = tmp_path / "events.jsonl"
    recorded.write_text("".join(json.dumps(e) + "\n" for e in events))
    replay = tracee_rules(
        "--rules-dir", str(rules), "--rules", "CTX-1", "--input", str(recorded), "--output-template", "rawjson"
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    (replayed,) = [json.loads(line) for line in replay.stdout.splitlines()]
    key = [(a["pid"], a["startTime"], a["comm"], a["executable"]["path"], a["argv"]) for a in ancestry[:3]]
    assert [
        (a["pid"], a["startTime"], a["comm"], a["executable"]["path"], a["argv"])
        for a in replayed["Context"]["processAncestry"][:3]
    ] == key
    assert replayed["Data"] == live["Data"]
