"""The container cache never makes the event path wait, even for a runtime that never answers."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from conftest import tracee_rules
from pytracee.engine.context.containers import ContainerResolver
from pytracee.engine.context.runtimes import QUERY_TIMEOUT, DockerClient
from pytracee.engine.testing import make_event


def test_a_hung_runtime_never_blocks_enrichment(tmp_path: Path) -> None:
    path = str(tmp_path / "hung.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)  # accepts connections (the kernel does), never answers
    resolver = ContainerResolver([DockerClient(path)])
    try:
        cid = "a" * 64
        events = [{"containerId": cid, "container": {"id": cid}} for _ in range(1000)]
        begin = time.perf_counter()
        enriched = [resolver.enrich(raw) for raw in events]
        spent = time.perf_counter() - begin
        assert not any(enriched) and spent < 0.5, spent  # 1000 events, no wait on the socket
        assert all(raw["container"] == {"id": cid} for raw in events)  # kept as they were
        assert resolver.wait(cid, 0.1) is None
        deadline = time.monotonic() + QUERY_TIMEOUT + 5
        while resolver.counts["errors"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert resolver.counts["errors"] == 1  # the lookup timed out in the background, counted
    finally:
        resolver.close()
        server.close()


def test_replay_takes_a_container_id_that_is_not_a_string(tmp_path: Path) -> None:

    events = [
        make_event("sched_process_exec", {"pathname": "/bin/sh", "env": ["LD_PRELOAD=/tmp/x.so"]}, container=True),
        make_event("sched_process_exec", {"pathname": "/bin/sh", "env": ["LD_PRELOAD=/tmp/y.so"]}),
    ]
    events[0].raw["container"]["id"] = [1]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(event.raw) + "\n" for event in events))
    result = tracee_rules(
        "--rules", "TRC-107", "--input", str(path), "--output-template", "rawjson",
        "--containers", f"enrich=true,sockets.docker={tmp_path / 'docker.sock'}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["Data"]["LD_PRELOAD"] for line in result.stdout.splitlines()] == [
        "LD_PRELOAD=/tmp/x.so",
        "LD_PRELOAD=/tmp/y.so",
    ]
