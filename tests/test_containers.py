"""Container identity from a real Docker daemon (and its containerd), on events and live findings.

A private dockerd (tests/docker_support.py) runs containers of an image imported from
a busybox root filesystem. Expected names, labels and image ids come from what the test
asked Docker for (``--name``, ``--label``) and from ``docker image inspect``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from collector_support import Tracee
from conftest import tracee_rules
from docker_support import BUSYBOX, Dockerd
from pytracee.engine.context.containers import ContainerResolver
from pytracee.engine.context.runtimes import ContainerdClient, DockerClient

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="dockerd and live tracing need root"),
    pytest.mark.skipif(shutil.which("dockerd") is None, reason="docker.io is not installed (scripts/setup.sh)"),
]

IMAGE = "pytracee-ctx:1"
LABELS = {"io.kubernetes.pod.name": "web-0", "io.kubernetes.pod.namespace": "shop", "io.kubernetes.pod.uid": "0f1e-42"}
RULE = """
from pytracee.engine import Event, select, signature


@signature(id="CTX-2", name="marker run in a container", severity=1,
           events=[select("sched_process_exec", origin="container", pathname="*/ctxmark")])
def marker(event: Event) -> dict:
    return {"image": event.container_image, "hash": event.executable_sha256}
"""


@pytest.fixture(scope="module")
def dockerd() -> Iterator[tuple[Dockerd, str]]:
    daemon = Dockerd()
    try:
        image_id = daemon.import_image(IMAGE, {"/bin/ctxmark": BUSYBOX})
        yield daemon, image_id
    finally:
        daemon.stop()


def labels_args() -> list[str]:
    return [arg for key, value in LABELS.items() for arg in ("--label", f"{key}={value}")]


def wait_for(resolver: ContainerResolver, cid: str) -> None:
    deadline = time.monotonic() + 10
    while resolver.lookup(cid) is None and time.monotonic() < deadline:
        resolver.wait(cid, 0.5)


def test_resolver_asks_docker_in_the_background_and_enriches_both_layouts(dockerd: tuple[Dockerd, str]) -> None:
    daemon, image_id = dockerd
    cid = daemon.run("-d", "--name", "ctx-layouts", *labels_args(), IMAGE, "/bin/sleep", "30")
    resolver = ContainerResolver([DockerClient(daemon.socket)])
    try:
        v024 = {"containerId": cid, "container": {"id": cid}, "kubernetes": {}}
        assert resolver.enrich(v024) is False  # never waits: the first answer is "not yet"
        wait_for(resolver, cid)
        assert resolver.enrich(v024) is True
        assert v024["container"] == {"id": cid, "name": "ctx-layouts", "image": IMAGE, "imageDigest": image_id}
        assert v024["kubernetes"] == {
            "podName": "web-0",
            "podNamespace": "shop",
            "podUID": "0f1e-42",
            "podSandbox": False,
        }
        v08 = {
            "containerId": cid,
            "containerImage": "",
            "containerName": "",
            "podName": "",
            "podNamespace": "",
            "podUID": "",
        }
        assert resolver.enrich(v08) is True
        assert (v08["containerName"], v08["containerImage"], v08["podName"], v08["podNamespace"], v08["podUID"]) == (
            "ctx-layouts",
            IMAGE,
            "web-0",
            "shop",
            "0f1e-42",
        )
        assert "container" not in v08  # the flat layout stays flat
        unknown = "f" * 64
        assert resolver.lookup(unknown) is None
        resolver.wait(unknown, 5)
        assert resolver.lookup(unknown) is None and resolver.counts["unknown"] == 1
    finally:
        resolver.close()


def test_containerd_client_finds_dockers_containers(dockerd: tuple[Dockerd, str]) -> None:
    daemon, _ = dockerd
    cid = daemon.run("-d", "--name", "ctx-containerd", IMAGE, "/bin/sleep", "30")
    client = ContainerdClient(daemon.containerd_socket)
    try:
        assert "moby" in client.namespaces()
        info = client.inspect(cid)
        assert info is not None and info.id == cid and info.runtime == "containerd"
        assert info.labels.get("com.docker/engine.bundle.path", "").endswith(cid)
        assert client.inspect("e" * 64) is None
    finally:
        client.close()


def test_replay_enriches_recorded_events_when_asked(dockerd: tuple[Dockerd, str], tmp_path: Path) -> None:
    daemon, image_id = dockerd
    cid = daemon.run("-d", "--name", "ctx-replay", *labels_args(), IMAGE, "/bin/sleep", "30")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "marker.py").write_text(RULE)
    event = {
        "timestamp": 1,
        "hostProcessId": 4242,
        "processId": 7,
        "processName": "ctxmark",
        "containerId": cid,
        "container": {"id": cid},
        "kubernetes": {},
        "contextFlags": {"containerStarted": True, "isCompat": False},
        "eventId": "715",
        "eventName": "sched_process_exec",
        "args": [{"name": "pathname", "type": "const char*", "value": "/bin/ctxmark"}],
    }
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(event) + "\n")
    common = ["--rules-dir", str(rules), "--rules", "CTX-2", "--input", str(events), "--output-template", "rawjson"]
    plain = tracee_rules(*common)
    assert json.loads(plain.stdout)["Context"]["container"] == {"id": cid}  # replay asks no runtime by default
    asked = tracee_rules(*common, "--containers", f"enrich=true,sockets.docker={daemon.socket}")
    assert asked.returncode == 0, asked.stderr
    context = json.loads(asked.stdout)["Context"]
    assert context["container"] == {"id": cid, "name": "ctx-replay", "image": IMAGE, "imageDigest": image_id}
    assert context["kubernetes"]["podNamespace"] == "shop"


def test_live_findings_carry_container_identity_and_the_binary_hash(
    dockerd: tuple[Dockerd, str], tmp_path: Path
) -> None:
    daemon, image_id = dockerd
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "marker.py").write_text(RULE)
    cidfile = tmp_path / "quick.cid"
    tracee = Tracee(
        "--rules-dir", str(rules), "--rules", "CTX-2", "--output-template", "rawjson",
        "--containers", f"sockets.docker={daemon.socket}",
    )  # fmt: skip
    try:
        # a container that lives on: its first events start the lookup, the marker runs 2 s later
        named = daemon.run(
            "-d", "--name", "ctx-live", *labels_args(), IMAGE, "/bin/sh", "-c", "sleep 2; /bin/ctxmark; sleep 2"
        )
        # one that runs the marker at once, exits and is removed before any lookup can finish
        daemon.run("--rm", "--cidfile", str(cidfile), IMAGE, "/bin/sh", "-c", "/bin/ctxmark; exit 0")
        time.sleep(3.5)
    finally:
        status, findings, err = tracee.stop()
    assert status == 0, err
    by_container = {f["Context"]["container"]["id"]: f for f in findings if f["SigMetadata"]["ID"] == "CTX-2"}
    quick = cidfile.read_text().strip()
    assert set(by_container) >= {named, quick}, err  # the quick one's finding is not dropped
    live = by_container[named]["Context"]
    assert live["container"] == {"id": named, "name": "ctx-live", "image": IMAGE, "imageDigest": image_id}
    assert live["kubernetes"] == {"podName": "web-0", "podNamespace": "shop", "podUID": "0f1e-42", "podSandbox": False}
    assert live["contextFlags"]["containerStarted"] is True
    busybox_sha = hashlib.sha256(BUSYBOX.read_bytes()).hexdigest()
    assert live["executable"]["sha256"] == busybox_sha  # the file inside the container, hashed through /proc
    assert by_container[named]["Data"] == {"image": IMAGE, "hash": busybox_sha}
    assert by_container[quick]["Context"]["container"]["id"] == quick
    assert "containers:" in err
