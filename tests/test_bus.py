"""Events and findings over NATS JetStream, with a real nats-server.

Each test starts ``nats-server -js`` on 127.0.0.1 at a free port (tests/bus_support.py)
and stops it by its pid. Workers are the ``tracee-rules`` command, run as a user runs
it; their findings are read back from the findings stream and compared with what a
local ``tracee-rules`` replay of the same events prints.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nats
import pytest
from bus_support import NatsServer, finding_key, nats_server, publish_events, read_stream
from conftest import REPO, tracee_rules
from pytracee.engine.bus.address import BusAddress, check_subject, subject_token
from pytracee.engine.bus.connection import BusConnection, BusCredentials
from pytracee.engine.bus.publisher import JetStreamPublisher

HOSTS = 6


@pytest.fixture
def server() -> Iterator[NatsServer]:
    with nats_server() as running:
        yield running


@pytest.fixture(scope="module")
def host_streams(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Six hosts' recordings (the benchmark workload, signature-heavy, with attacks)."""
    directory = tmp_path_factory.mktemp("hosts")
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from workload import write_events
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    paths = []
    for i in range(HOSTS):
        path = directory / f"host{i}.jsonl"
        stats = write_events(path, 1500, seed=100 + i, mix="heavy", attack_every=200)
        assert sum(stats.expected_findings.values()) > 0
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def local_replay(host_streams: list[Path]) -> list[dict[str, Any]]:
    """The findings of one local tracee-rules over the recordings (replayed once for the module:
    the recordings and the command are the same for every test that compares with them)."""
    inputs = [arg for path in host_streams for arg in ("--input", str(path))]
    result = tracee_rules(*inputs, "--output-template", "rawjson")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def local_findings(replayed: list[dict[str, Any]], ancestry: bool = True) -> list[str]:
    """The local replay's findings as canonical JSON."""
    return sorted(finding_key(finding, ancestry) for finding in replayed)


def bus_findings(url: str, ancestry: bool = True) -> list[str]:
    return sorted(finding_key(json.loads(data), ancestry) for _, data, _ in read_stream(url, "TRACEE_FINDINGS"))


def host_messages(paths: list[Path]) -> list[tuple[str, bytes]]:
    return [
        (f"tracee.events.host{i}", line.rstrip(b"\n"))
        for i, path in enumerate(paths)
        for line in path.read_bytes().splitlines()
        if line.strip()
    ]


def start_worker(url: str, *extra: str, **query: object) -> subprocess.Popen[str]:
    """A worker of the consumer ``detect`` (4 partitions, short lease and ack_wait; ``query`` overrides)."""
    params = {"consumer": "detect", "partitions": 4, "lease": 3, "ack_wait": 4, "idle": 10, **query}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytracee.engine.cli.tracee_rules",
            "--input",
            f"{url}/TRACEE_EVENTS?" + "&".join(f"{k}={v}" for k, v in params.items()),
            "--output",
            f"{url}/tracee.findings",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_stream(url: str, stream: str, timeout: float = 30) -> None:
    async def exists() -> bool:
        nc = await nats.connect(url)
        try:
            await nc.jetstream().stream_info(stream)
            return True
        except nats.js.errors.NotFoundError:
            return False
        finally:
            await nc.close()

    deadline = time.monotonic() + timeout
    while not asyncio.run(exists()):
        assert time.monotonic() < deadline, f"no stream {stream}"
        time.sleep(0.2)


def partition_owners(url: str, partitions: int = 4) -> dict[int, int]:
    """The pid of the worker holding each partition's lease (partitions not held are left out)."""

    async def run() -> dict[int, int]:
        nc = await nats.connect(url)
        try:
            kv = await nc.jetstream().key_value("TRACEE_EVENTS_detect_workers")
            owners = {}
            for partition in range(partitions):
                try:
                    entry = await kv.get(f"partition.{partition}")
                except nats.js.errors.KeyNotFoundError:
                    continue
                if entry.value:  # a released lease holds an empty value
                    owners[partition] = int(entry.value.decode().split("-")[-2])
            return owners
        except nats.js.errors.BucketNotFoundError:
            return {}
        finally:
            await nc.close()

    return asyncio.run(run())


def wait_for_shared_partitions(url: str, workers: list[subprocess.Popen[str]], timeout: float = 60) -> None:
    """Wait until the workers hold every partition between them, as many each."""
    pids = sorted(worker.pid for worker in workers)
    deadline = time.monotonic() + timeout
    while True:
        owners = partition_owners(url)
        held = sorted(Counter(owners.values()).items())
        if len(owners) == 4 and held == [(pid, 4 // len(pids)) for pid in pids]:
            return
        for worker in workers:
            assert worker.poll() is None, worker.communicate()[1]
        assert time.monotonic() < deadline, f"partitions not shared by {pids}: {owners}"
        time.sleep(0.1)


def processed(stderr: str) -> int:
    match = re.search(r"(\d+) events processed", stderr)
    assert match, stderr
    return int(match.group(1))


# --- addresses, subjects, credentials ------------------------------------------------------


def test_addresses_are_checked_and_shown_without_credentials() -> None:
    address = BusAddress.parse("nats://worker:s3cret@10.9.8.7:4333,b:4222/TRACEE_EVENTS?consumer=x", "--input")
    assert address.display == "nats://10.9.8.7:4333,b:4222/TRACEE_EVENTS"
    assert "s3cret" not in address.display and address.query == {"consumer": "x"}
    assert BusAddress.parse("tls://h/s", "--output").servers == ("tls://h:4222",)
    for bad in ("http://h/s", "nats://h:99999/s", "nats:///s"):
        with pytest.raises(ValueError, match="--output"):
            BusAddress.parse(bad, "--output")
    credentials = BusCredentials(user="worker", password="s3cret")  # noqa: S106 - a test's own
    assert credentials.redact("auth failed for s3cret", address) == "auth failed for ***"
    assert "s3cret" not in repr(credentials)


@pytest.mark.parametrize("subject", ["tracee.*", "tracee.>", "a..b", "a b", "a\r\nPUB x 1", "", ".a", "é"])
def test_subjects_with_wildcards_or_odd_characters_are_refused(subject: str) -> None:
    with pytest.raises(ValueError, match="subject"):
        check_subject(subject)


def test_host_names_become_one_harmless_token() -> None:
    assert subject_token("web-1.prod") == "web-1_prod"
    assert subject_token("a.*.>\r\n") == "a______"
    assert subject_token("") == "unknown" and subject_token("..", "node") == "node"
    assert len(subject_token("x" * 500)) == 64


def test_a_bad_subject_is_a_usage_error_before_connecting() -> None:
    result = tracee_rules("--input", "/dev/null", "--output", "nats://127.0.0.1:1/tracee.*")
    assert result.returncode == 2
    assert "invalid token '*'" in result.stderr


# --- the pool of workers -------------------------------------------------------------------


def test_two_workers_find_what_one_local_replay_finds(
    server: NatsServer, host_streams: list[Path], local_replay: list[dict[str, Any]]
) -> None:
    expected = local_findings(local_replay)
    assert expected
    workers = [start_worker(server.url) for _ in range(2)]
    wait_for_shared_partitions(server.url, workers)
    messages = host_messages(host_streams)
    assert publish_events(server.url, messages) == len(messages)
    results = [worker.communicate(timeout=180) for worker in workers]
    for worker, (_, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
    counts = [processed(err) for _, err in results]
    assert sum(counts) == len(messages), counts  # every event once: none lost, none twice
    assert all(counts), counts  # both took part
    assert bus_findings(server.url) == expected


def test_a_worker_killed_halfway_loses_nothing_and_duplicates_nothing(
    server: NatsServer, host_streams: list[Path], local_replay: list[dict[str, Any]]
) -> None:
    expected = local_findings(local_replay, ancestry=False)
    _, survivor, err = stop_one_of_two_workers(server, host_streams, signal.SIGKILL)
    assert survivor.returncode == 0, err
    assert re.search(r"taken over with \d+ unacknowledged messages", err), err  # the victim's, in flight
    assert re.search(r"[1-9]\d* redelivered", err), err
    stored = read_stream(server.url, "TRACEE_FINDINGS")
    ids = Counter(headers.get("Nats-Msg-Id") for _, _, headers in stored)
    assert ids and max(ids.values()) == 1  # each finding stored once
    assert bus_findings(server.url, ancestry=False) == expected


def test_a_worker_stopped_halfway_hands_its_partitions_over_at_once(
    server: NatsServer, host_streams: list[Path], local_replay: list[dict[str, Any]]
) -> None:
    expected = local_findings(local_replay, ancestry=False)
    # ack_wait of 4 s: a stopped worker's unacknowledged messages come back quickly either way
    stopped, survivor, err = stop_one_of_two_workers(server, host_streams, signal.SIGTERM)
    assert stopped.returncode == 130, stopped.stderr_text  # type: ignore[attr-defined]
    assert survivor.returncode == 0, err
    assert "partition" in err and "taken" in err  # the survivor took the stopped worker's partitions over
    # (at once when the stopped worker released them in time; on a loaded machine its lease may expire
    # first, and the survivor then waits ack_wait for the redeliveries: the findings are the same)
    assert bus_findings(server.url, ancestry=False) == expected


def stop_one_of_two_workers(
    server: NatsServer, host_streams: list[Path], how: int
) -> tuple[subprocess.Popen[str], subprocess.Popen[str], str]:
    """Two workers; the recordings published; ``how`` sent to a busy one about a third of the way in.
    The stopped worker, the survivor (run to its idle stop) and the survivor's stderr."""
    workers = [start_worker(server.url, batch=64) for _ in range(2)]
    wait_for_shared_partitions(server.url, workers)
    messages = host_messages(host_streams)
    publish_events(server.url, messages)
    stopped = kill_a_busy_worker(server.url, workers, len(messages), how)
    survivor = next(w for w in workers if w is not stopped)
    _, err = survivor.communicate(timeout=240)
    return stopped, survivor, err


def kill_a_busy_worker(
    url: str, workers: list[subprocess.Popen[str]], total: int, how: int = signal.SIGKILL
) -> subprocess.Popen[str]:
    """Send ``how`` (SIGKILL) to a worker holding a partition with work left and messages it has not
    acknowledged yet, once about a third of the events were acknowledged; returns it, ended. The
    worker is frozen (SIGSTOP) while its unacknowledged messages are counted, so that it cannot
    acknowledge them between the count and the signal."""

    async def progress() -> tuple[int, dict[int, int], dict[int, int]]:
        """Events acknowledged; per worker pid, its partitions' messages left and not acknowledged."""
        nc = await nats.connect(url)
        js = nc.jetstream()
        acked = 0
        owners: dict[int, int] = {}
        unacked: dict[int, int] = {}
        kv = await js.key_value("TRACEE_EVENTS_detect_workers")
        for partition in range(4):
            info = await js.consumer_info("TRACEE_EVENTS", f"detect-p{partition}")
            acked += info.ack_floor.stream_seq and info.delivered.consumer_seq - info.num_ack_pending
            if info.num_pending or info.num_ack_pending:
                try:
                    entry = await kv.get(f"partition.{partition}")
                except nats.js.errors.KeyNotFoundError:
                    continue
                pid = int((entry.value or b"").decode().split("-")[-2])
                owners[pid] = owners.get(pid, 0) + info.num_pending + info.num_ack_pending
                unacked[pid] = unacked.get(pid, 0) + info.num_ack_pending
        await nc.close()
        return acked, owners, unacked

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            acked, owners, _ = asyncio.run(progress())
        except nats.js.errors.NotFoundError:  # consumers not all created yet
            time.sleep(0.1)
            continue
        busy = [w for w in workers if w.pid in owners]
        if acked >= total // 3 and busy:
            victim = max(busy, key=lambda w: owners[w.pid])
            os.kill(victim.pid, signal.SIGSTOP)
            time.sleep(0.05)  # the acknowledgements it sent before reach the server
            if asyncio.run(progress())[2].get(victim.pid, 0) > 0:
                os.kill(victim.pid, how)
                os.kill(victim.pid, signal.SIGCONT)  # (a SIGTERM is handled once it runs again)
                _, victim.stderr_text = victim.communicate(timeout=60)  # type: ignore[attr-defined]
                return victim
            os.kill(victim.pid, signal.SIGCONT)  # between two batches: a moment later
        time.sleep(0.05)
    raise AssertionError("the workers never got a third of the way")


def test_bad_messages_are_counted_and_moved_to_the_dead_letter_subject(server: NatsServer, tmp_path: Path) -> None:
    good = (REPO / "tests/fixtures/events_v0.24.1_docs.jsonl").read_bytes().splitlines()[0]
    worker = start_worker(server.url, idle=4)
    wait_for_stream(server.url, "TRACEE_EVENTS")
    bad = [b"{not json", b"[1, 2]", b'{"eventName": "no_such_event"}', b'{"eventName": "openat", "args": 7}']
    publish_events(server.url, [("tracee.events.web", payload) for payload in [*bad, good]])
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    assert "1 events processed, 4 skipped" in err
    assert "4 moved to deadletter.TRACEE_EVENTS.detect" in err
    moved = read_stream(server.url, "TRACEE_EVENTS_DEADLETTER")
    assert [data for _, data, _ in moved] == bad
    reasons = [headers["Tracee-Reason"] for _, _, headers in moved]
    assert reasons == ["invalid JSON", "not an event", "unknown event", "wrong type"]
    assert all(headers["Tracee-Origin"].startswith("nats:tracee.events.") for _, _, headers in moved)


# --- publishing: bounded, counted ------------------------------------------------------


def test_the_publisher_counts_every_message_it_could_not_store(server: NatsServer) -> None:
    bus = BusConnection(BusAddress.parse(server.url + "/x", "--output"), BusCredentials(reconnect_attempts=0))
    bus.connect()
    try:
        from pytracee.engine.bus.partitions import ensure_event_stream

        bus.call(ensure_event_stream(bus, "TRACEE_EVENTS", "tracee.events", 2), 10)
        publisher = JetStreamPublisher(bus, "events", buffer=50, retry_for=1.0, retry_wait=0.1)
        publisher.start()
        for i in range(20):
            assert publisher.submit("tracee.events.a", b"{}", f"id-{i}")
        assert publisher.flush(10)
        assert publisher.stats.published == 20
        publisher.submit("tracee.events.a", b"{}", "id-0")  # the same id again: stored once
        publisher.submit("no.stream.here", b"{}", "lost-1")  # no stream captures it: fails
        publisher.flush(10)
        server.stop()  # the server goes away: what follows cannot be stored
        accepted = sum(publisher.submit("tracee.events.a", b"{}", f"late-{i}") for i in range(200))
        publisher.close(drain_timeout=3)
        stats = publisher.stats
    finally:
        bus.close()
    assert stats.submitted == 222
    assert stats.published == 21 and stats.duplicates == 1
    assert stats.dropped_full == 200 - accepted and stats.dropped_full > 0
    assert stats.published + stats.lost == stats.submitted  # every message accounted for
    assert stats.failed >= 1


def test_the_publisher_reconnects_and_stores_everything_once(server: NatsServer) -> None:
    bus = BusConnection(
        BusAddress.parse(server.url + "/x", "--output"), BusCredentials(reconnect_wait=0.2, reconnect_attempts=-1)
    )
    bus.connect()
    try:
        from pytracee.engine.bus.partitions import ensure_event_stream

        bus.call(ensure_event_stream(bus, "TRACEE_EVENTS", "tracee.events", 2), 10)
        publisher = JetStreamPublisher(bus, "events", buffer=100_000, retry_for=60)
        publisher.start()
        for i in range(3000):
            publisher.submit("tracee.events.a", f'{{"n":{i}}}'.encode(), f"n-{i}")
            if i == 1000:
                server.restart()  # the server goes away and comes back on the same port and store
        assert publisher.flush(90)
        publisher.close(5)
        stats = publisher.stats
    finally:
        bus.close()
    assert bus.disconnects >= 1
    assert stats.published == 3000 and stats.lost == 0, stats
    stored = read_stream(server.url, "TRACEE_EVENTS")
    # each once; the messages in flight at the disconnection may be stored out of order (see the README)
    assert sorted(json.loads(data)["n"] for _, data, _ in stored) == list(range(3000))


# --- credentials ---------------------------------------------------------------------------


def side_by_side(*commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Run independent tracee-rules command lines at the same time (a refused connection
    waits out its connect timeout): their results, in order."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda argv: tracee_rules(*argv), commands))


def test_user_and_password_are_passed_and_never_printed(tmp_path: Path) -> None:
    secret = "pw-9f8e7d6c"  # noqa: S105 - the test server's
    password = tmp_path / "password"
    password.write_text(secret + "\n")
    events = tmp_path / "events.jsonl"
    events.write_bytes((REPO / "tests/fixtures/events_v0.24.1_docs.jsonl").read_bytes())
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it")
    with nats_server("--user", "tracer", "--pass", secret) as server:
        ok, refused, token = side_by_side(
            ["--input", str(events), "--output", f"{server.url}/tracee.findings",
             "--nats-user", "tracer", "--nats-password-file", str(password), "--log", "debug"],
            ["--input", str(events), "--output", f"nats://tracer:{secret}x@127.0.0.1:{server.port}/tracee.findings",
             "--log", "debug"],
            ["--input", str(events), "--output", f"{server.url}/tracee.findings",
             "--nats-user", "tracer", "--nats-password-file", str(wrong)],
        )  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        assert "findings published" in ok.stderr and secret not in ok.stderr
        assert refused.returncode == 2
        assert "cannot connect" in refused.stderr and secret not in refused.stderr
        assert token.returncode == 2 and "not-it" not in token.stderr


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "1", "-subj", "/CN=pytracee test CA", cwd=directory)  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=directory)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "1", "-extfile", "san.ext", cwd=directory)  # fmt: skip


def test_tls_with_a_client_certificate_and_a_token(tmp_path: Path) -> None:
    make_certificates(tmp_path)
    token = tmp_path / "token"
    token.write_text("tok-5a4b3c2d1e\n")
    events = REPO / "examples/events/demo.jsonl"
    tls = ["--tls", "--tlscert", str(tmp_path / "server.pem"), "--tlskey", str(tmp_path / "server.key"),
           "--tlscacert", str(tmp_path / "ca.pem"), "--tlsverify"]  # fmt: skip
    with nats_server(*tls, "--auth", "tok-5a4b3c2d1e") as server:
        url = f"tls://127.0.0.1:{server.port}/tracee.findings"
        client = ["--nats-tls-ca", str(tmp_path / "ca.pem"), "--nats-tls-cert", str(tmp_path / "client.pem"),
                  "--nats-tls-key", str(tmp_path / "client.key")]  # fmt: skip
        ok, no_cert, no_token = side_by_side(
            ["--input", str(events), "--output", url, *client, "--nats-token-file", str(token)],
            ["--input", str(events), "--output", url, "--nats-tls-ca", str(tmp_path / "ca.pem"),
             "--nats-token-file", str(token)],
            ["--input", str(events), "--output", url, *client],
        )  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        assert re.search(r"[1-9]\d* findings published", ok.stderr), ok.stderr
        assert "tok-5a4b3c2d1e" not in ok.stderr
        assert no_cert.returncode == 2 and "cannot connect" in no_cert.stderr
        assert no_token.returncode == 2 and "cannot connect" in no_token.stderr


def test_an_nkey_seed_file_signs_the_connection(tmp_path: Path) -> None:
    import nkeys

    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(seed).public_key.decode()
    (tmp_path / "user.nk").write_bytes(seed + b"\n")
    config = tmp_path / "server.conf"
    config.write_text(f'authorization {{ users = [ {{ nkey: "{public}" }} ] }}\n')
    events = REPO / "examples/events/demo.jsonl"
    with nats_server("-c", str(config)) as server:
        url = f"{server.url}/tracee.findings"
        signed, unsigned = side_by_side(
            ["--input", str(events), "--output", url, "--nats-nkey", str(tmp_path / "user.nk")],
            ["--input", str(events), "--output", url],
        )
        assert signed.returncode == 0, signed.stderr
        assert re.search(r"[1-9]\d* findings published", signed.stderr), signed.stderr
        assert seed.decode() not in signed.stderr
        assert unsigned.returncode == 2 and "cannot connect" in unsigned.stderr


def test_a_message_delivered_too_often_is_moved_aside_not_retried(server: NatsServer) -> None:
    """A message earlier workers received and never acknowledged (they crashed on it) goes to the
    dead-letter subject once it was delivered more than max_deliver times."""
    good = (REPO / "tests/fixtures/events_v0.24.1_docs.jsonl").read_bytes().splitlines()[0]
    first = start_worker(server.url, idle=1)  # creates the streams, then stops
    assert first.wait(60) == 0
    publish_events(server.url, [("tracee.events.web", good)])
    (subject, _, _) = read_stream(server.url, "TRACEE_EVENTS")[0]
    partition = int(subject.split(".")[2])

    async def crash_twice() -> None:  # two deliveries, no acknowledgement
        from nats.js.api import AckPolicy, ConsumerConfig

        nc = await nats.connect(server.url)
        js = nc.jetstream()
        config = ConsumerConfig(
            durable_name=f"detect-p{partition}",
            filter_subject=f"tracee.events.{partition}.*",
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=1,
            max_deliver=-1,
        )
        await js.add_consumer("TRACEE_EVENTS", config)
        sub = await js.pull_subscribe_bind(f"detect-p{partition}", stream="TRACEE_EVENTS")
        for _ in range(2):  # the second fetch gets the message again once ack_wait passed
            (msg,) = await sub.fetch(1, timeout=5)
            assert msg.data == good
        await nc.close()

    asyncio.run(crash_twice())
    worker = start_worker(server.url, idle=4, max_deliver=2)
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    assert "0 events processed, 1 skipped (delivered too often: 1)" in err
    assert "delivered 3 times without being processed" in err
    (moved,) = read_stream(server.url, "TRACEE_EVENTS_DEADLETTER")
    assert moved[1] == good and moved[2]["Tracee-Reason"] == "delivered too often"


# --- outages ---------------------------------------------------------------------------------


def test_a_worker_whose_bus_goes_away_stops_with_an_error_not_a_traceback(server: NatsServer) -> None:
    worker = start_worker(server.url, idle=0, lease=2)
    wait_for_shared_partitions(server.url, [worker])  # partitions taken, fetching
    server.stop()
    try:
        _, err = worker.communicate(timeout=180)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 1, err
    assert "Traceback" not in err
    assert "the bus stopped answering" in err
    assert "events processed" in err  # the run was finished and summarised


def test_a_finding_raised_again_by_another_worker_is_stored_once_whatever_its_enrichment(
    server: NatsServer,
) -> None:
    """The worker that takes over knows a different process tree and syscall history: the
    same finding of the same event, enriched differently, keeps its message id."""
    from pytracee.engine import Event, hookimpl, signature
    from pytracee.engine.bus.findings import NatsFindingOutput
    from pytracee.engine.output.templates import FindingTemplate
    from pytracee.engine.plugins import PluginManager
    from pytracee.engine.testing import run_signature

    @signature(id="ONCE-1", name="once", severity=1, events=["execve"])
    def once(event: Event) -> dict:
        return {"path": event.args["pathname"]}

    good = (REPO / "tests/fixtures/events_v0.24.1_docs.jsonl").read_bytes().splitlines()[0]
    raw = json.loads(good)

    class Enricher:  # what the first worker and the one taking over know differs
        def __init__(self, ancestry: str) -> None:
            self.ancestry = ancestry

        @hookimpl
        def tracee_finding_enrich(self, finding) -> None:
            finding.data = dict(finding.data or {}, syscall_event={"seen_by": self.ancestry})

    bodies = []
    for worker in ("first", "second"):
        event = Event(raw, "tracee", "nats:tracee.events.0.h", 1, good)
        (finding,) = run_signature(once, [event])
        output = NatsFindingOutput(
            server.url + "/tracee.findings", "--output", FindingTemplate.load("rawjson"), BusCredentials()
        )
        pm = PluginManager()
        pm.register(Enricher(worker))
        pm.register(output)
        pm.hook.tracee_finding_enrich(finding=finding)
        pm.hook.tracee_finding_output(finding=finding)
        assert output.confirm(10)
        output.tracee_sessionfinish()
        bodies.append(json.loads(output.template.render(finding))["Data"]["syscall_event"])
    assert bodies[0] != bodies[1]
    stored = read_stream(server.url, "TRACEE_FINDINGS")
    assert len(stored) == 1
    assert json.loads(stored[0][1])["Data"]["syscall_event"] == {"seen_by": "first"}


def test_a_dead_letter_subject_inside_the_events_stream_is_refused(server: NatsServer) -> None:
    worker = start_worker(server.url, idle=1, deadletter="tracee.events.bad")
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 1, err
    assert "the dead-letter subject tracee.events.bad is captured by the events stream TRACEE_EVENTS" in err
    assert "Traceback" not in err


def test_the_collector_refuses_an_events_stream_made_for_other_subjects(server: NatsServer) -> None:
    from pytracee.collector.bus_output import BusEventOutput
    from pytracee.collector.printers import OutputError, OutputSpec
    from pytracee.engine.bus.partitions import ensure_event_stream

    bus = BusConnection(BusAddress.parse(server.url + "/x", "--output"), BusCredentials())
    bus.connect()
    try:
        bus.call(ensure_event_stream(bus, "TRACEE_EVENTS", "other.events", 2), 10)
    finally:
        bus.close()
    with pytest.raises(OutputError, match=r"stream TRACEE_EVENTS captures other\.events\.\*, not tracee\.events\.\*"):
        BusEventOutput(OutputSpec(), server.url + "/tracee.events", BusCredentials())
    output = BusEventOutput(OutputSpec(), server.url + "/other.events", BusCredentials())  # the stream's own
    output.close()


def test_a_worker_follows_the_ack_wait_and_lease_the_bus_was_set_up_with(server: NatsServer) -> None:
    first = start_worker(server.url, idle=1, lease=3, ack_wait=4)  # creates the consumers and the bucket
    assert first.wait(60) == 0
    second = start_worker(server.url, idle=1, lease=7, ack_wait=9)
    _, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "bucket TRACEE_EVENTS_detect_workers: leases last 3 s (its TTL), not 7 s" in err
    assert err.count("messages are redelivered after 4 s (its ack_wait), not 9 s") == 1, err
