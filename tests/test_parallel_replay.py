"""tracee-rules --workers N: the same findings as one process, stateful signatures included."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import tracee_rules
from pytracee.engine import recscan

REPO = Path(__file__).resolve().parent.parent
ANCESTRY = REPO / "examples" / "ancestry"
SUMMARY = re.compile(r"(\d+) events read, (\d+) skipped.*?; (\d+) findings from \d+ signatures(?: \(([^)]*)\))?")


def _event(name: str, pid: int, args: list[dict[str, Any]], container: str = "", **context: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "timestamp": 1_700_000_000_000_000_000 + pid,
        "processId": pid,
        "hostProcessId": pid,
        "threadId": pid,
        "hostThreadId": pid,
        "processName": "proc",
        "eventName": name,
        "container": {"id": container} if container else {},
        "contextFlags": {"containerStarted": bool(container)},
        "args": args,
    }
    event.update(context)
    return event


def _exec(pid: int, pathname: str, container: str = "", env: list[str] | None = None) -> dict[str, Any]:
    args = [
        {"name": "cmdpath", "type": "const char*", "value": pathname},
        {"name": "pathname", "type": "const char*", "value": pathname},
        {"name": "argv", "type": "const char**", "value": [pathname]},
        {"name": "env", "type": "const char**", "value": env or ["PATH=/usr/bin"]},
    ]
    return _event("sched_process_exec", pid, args, container)


def _execve(pid: int, pathname: str) -> dict[str, Any]:
    args = [
        {"name": "pathname", "type": "const char*", "value": pathname},
        {"name": "argv", "type": "const char**", "value": [pathname]},
    ]
    return _event("execve", pid, args)


def _connect(pid: int, ip: str, container: str = "") -> dict[str, Any]:
    address = {"sa_family": "AF_INET", "sin_addr": ip, "sin_port": "443"}
    return _event(
        "security_socket_connect",
        pid,
        [{"name": "remote_addr", "type": "struct sockaddr*", "value": address}],
        container,
    )


def _workload(path: Path, events: int, seed: int, mix: str = "realistic") -> Any:
    """The benchmarks' workload stream written to ``path``: its ``WorkloadStats``."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from workload import write_events
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    return write_events(str(path), events, seed=seed, mix=mix)


def _findings(result: Any) -> Counter[str]:
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return Counter(f"{f['SigMetadata']['ID']} pid={f['Context'].get('hostProcessId')}" for f in lines)


def _summary(stderr: str) -> tuple[int, int, int, str]:
    match = SUMMARY.search(stderr)
    assert match is not None, stderr
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), match.group(4) or ""


def test_a_containers_processes_meet_in_one_worker(tmp_path: Path) -> None:
    """TRC-1013 keeps state per container: the API server address from one process's exec
    environment, the connection by another process of the same container. Sharding by process
    alone would separate them (pids 100 and 101 fall in different shards of two)."""
    events = []
    for n in range(8):
        container = f"c{n:02d}" + "0" * 60
        api = f"10.96.0.{n + 1}"
        events.append(_exec(100 + 2 * n, "/usr/bin/env", container, ["KUBERNETES_SERVICE_HOST=" + api]))
        events.append(_exec(300 + n, "/usr/bin/true", container=f"other{n}"))  # noise in other containers
        events.append(_connect(101 + 2 * n, api, container))
    path = tmp_path / "k8s.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    results = {
        workers: _findings(
            tracee_rules(
                "--input", str(path), "--rules", "TRC-1013", "--output-template", "rawjson", "--workers", workers
            )
        )
        for workers in ("1", "2", "3")
    }
    assert results["1"] == Counter({f"TRC-1013 pid={101 + 2 * n}": 1 for n in range(8)})
    assert results["2"] == results["1"] and results["3"] == results["1"]


def test_a_process_exec_pairs_meet_in_one_worker(tmp_path: Path) -> None:
    """PYT-1 pairs each process's execve with its sched_process_exec, interleaved with other
    processes' execs; a tampered pair (the kernel ran another file) is a finding."""
    events = [_execve(pid, f"/usr/bin/tool{pid}") for pid in range(500, 540)]
    for pid in range(500, 540):
        tampered = pid % 7 == 0
        events.append(_exec(pid, "/tmp/.evil" if tampered else f"/usr/bin/tool{pid}"))
    path = tmp_path / "execs.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    expected = Counter({f"PYT-1 pid={pid}": 1 for pid in range(500, 540) if pid % 7 == 0})
    for workers in ("1", "2", "4"):
        result = tracee_rules(
            "--input", str(path), "--rules", "PYT-1", "--output-template", "rawjson", "--workers", workers
        )
        assert _findings(result) == expected, workers
        assert "unpaired" not in result.stderr


def test_exec_halves_without_a_process_id_pair_with_nothing_in_any_mode(tmp_path: Path) -> None:
    """A damaged record without hostProcessId has no process to pair by. Two such halves of two
    different processes' execs must not pair: one process would report them as a tampered exec,
    while workers, which place them apart, would not. Both are counted in a warning instead."""
    damaged_syscall, damaged_kernel = _execve(601, "/bin/dash"), _exec(602, "/usr/bin/ps", container="c" * 64)
    del damaged_syscall["hostProcessId"], damaged_kernel["hostProcessId"]
    events = [damaged_syscall, damaged_kernel, _execve(603, "/bin/true"), _exec(603, "/tmp/.evil")]
    path = tmp_path / "damaged.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    unpaired = re.compile(r"PYT-1: (\d+) execve/execveat/sched_process_exec events had no hostProcessId")
    for workers in ("1", "2"):
        result = tracee_rules(
            "--input", str(path), "--rules", "PYT-1", "--output-template", "rawjson", "--workers", workers
        )
        assert _findings(result) == Counter({"PYT-1 pid=603": 1}), workers
        assert sum(int(n) for n in unpaired.findall(result.stderr)) == 2, result.stderr


def test_workers_find_what_one_process_finds_on_the_workload(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    stats = _workload(path, 20_000, seed=3)
    one = tracee_rules("--input", str(path), "--output-template", "rawjson")
    two = tracee_rules("--input", str(path), "--output-template", "rawjson", "--workers", "2")
    assert _findings(two) == _findings(one)
    assert sum(_findings(one).values()) == sum(stats.expected_findings.values())
    assert _summary(two.stderr) == _summary(one.stderr)


def test_workers_without_a_process_tree_find_what_one_process_finds(tmp_path: Path) -> None:
    """``--proctree source=none``: the workers follow no other worker's records for a tree."""
    path = tmp_path / "w.jsonl"
    stats = _workload(path, 20_000, seed=6, mix="heavy")
    args = ("--input", str(path), "--output-template", "rawjson", "--proctree", "source=none")
    one = tracee_rules(*args)
    two = tracee_rules(*args, "--workers", "2")
    assert _findings(two) == _findings(one)
    assert sum(_findings(one).values()) == sum(stats.expected_findings.values())
    assert _summary(two.stderr) == _summary(one.stderr)
    assert "processAncestry" not in two.stdout


def test_the_benchmarks_presplit_parts_are_the_workers_own_records(tmp_path: Path) -> None:
    """``bench_commands.py --ceiling`` measures what --workers could reach: only if each part holds
    exactly the records a worker of the default set owns (decoded, or counted by line number)."""
    from pytracee.engine.reader import EventReader
    from pytracee.engine.session import Session, SessionConfig

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from bench_commands import default_set_decodes, split_by_owner
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    path = tmp_path / "w.jsonl"
    _workload(path, 4_000, seed=4)  # the realistic mix: most of its events nobody decodes
    lines = path.read_bytes().splitlines()
    parts = [part.read_bytes().splitlines() for part in split_by_owner(path, 2, default_set_decodes())]
    session = Session(SessionConfig())
    session.load()
    try:
        for index, part in enumerate(parts):
            reader = EventReader([path], shard=(index, 2), **session.reader_plan())
            decoded = [lines[int(event.location.rpartition(":")[2]) - 1] for event in reader]
            assert reader.stats.events == len(part)
            assert 0 < len(decoded) < len(part) and set(decoded) <= set(part)
    finally:
        session.finish(session.run([]))
    assert sorted(parts[0] + parts[1]) == sorted(lines)


@pytest.mark.skipif(not recscan.COMPILED, reason="the compiled scanner was not built")
def test_the_benchmarks_splitter_walk_places_each_record_as_the_workers_do(tmp_path: Path) -> None:
    """``bench_commands.py --ceiling`` times a splitter's least work beside the pre-split commands:
    ``splitter_walk.py``, run as the benchmark runs it, must give each worker the records of its
    part (held to the workers above), and its loop each record the reader's owner."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from bench_commands import default_set_decodes, split_by_owner
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    from pytracee.engine import _recscan  # type: ignore[attr-defined]
    from pytracee.engine.reader import DEFAULT_MAX_LINE_SIZE
    from pytracee.engine.sharding import record_owner

    path = tmp_path / "w.jsonl"
    _workload(path, 4_000, seed=4)
    decoded = default_set_decodes()
    assert decoded is not None
    sizes = [str(len(part.read_bytes().splitlines())) for part in split_by_owner(path, 2, decoded)]
    walker = [sys.executable, str(REPO / "benchmarks" / "splitter_walk.py"), str(path), "2", ",".join(decoded)]
    walked = subprocess.run(walker, capture_output=True, text=True, timeout=120, check=False)
    assert walked.returncode == 0, walked.stderr
    assert walked.stdout.split() == sizes
    lines = path.read_bytes().splitlines()  # and each record, by the loop it runs: none left to the reader
    found = _recscan.owners(path.read_bytes(), 0, 2, decoded, DEFAULT_MAX_LINE_SIZE)
    assert list(found) == [record_owner(text, number, 2, decoded) for number, text in enumerate(lines, 1)]


def test_bad_records_are_counted_once_with_their_line(tmp_path: Path) -> None:
    good = json.dumps(_exec(42, "/usr/bin/ls"))
    lines = [good, '{"eventName": "openat", "args": [', good, '{"eventName": "openat", "processId": "x"}', good]
    lines.append('{"eventName": "openat", "hostProcessId": 1, "threadId": "y"}')  # owned by worker 1 of 3
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    for workers in ("1", "3"):
        result = tracee_rules("--input", str(path), "--workers", workers)
        assert result.returncode == 0, result.stderr
        assert result.stderr.count(f"{path}:2: invalid JSON") == 1, result.stderr
        assert result.stderr.count(f"{path}:4: wrong type") == 1, result.stderr
        assert result.stderr.count(f"{path}:6: wrong type") == 1, result.stderr
        assert _summary(result.stderr)[:2] == (3, 3)


def test_workers_need_files(tmp_path: Path) -> None:
    result = tracee_rules("--input", "-", "--workers", "2", stdin=b"")
    assert result.returncode == 2
    assert "standard input can be read by one process only" in result.stderr
    fifo = tmp_path / "events.fifo"  # every worker would read a random part of it
    os.mkfifo(fifo)
    result = tracee_rules("--input", str(fifo), "--workers", "2")
    assert result.returncode == 2
    assert "a pipe or device can be read by one process only" in result.stderr


def _ancestries(path: Path, *extra: str) -> list[tuple[str, list[str]]]:
    """Each ANC-1 finding of a replay of ``path``, with the comms of its ancestry."""
    result = tracee_rules("--rules-dir", str(ANCESTRY), "--input", str(path), "--output-template", "rawjson", *extra)
    assert result.returncode == 0, result.stderr
    assert "Error" not in result.stderr, result.stderr
    found = [json.loads(line) for line in result.stdout.splitlines()]
    return sorted((f["SigMetadata"]["ID"], [a["comm"] for a in f["Context"]["processAncestry"]]) for f in found)


def _assert_workers_give_one_process_ancestry(path: Path) -> None:
    """The web shell of examples/ancestry is found, its ancestry whole, by 1, 2 and 3 workers alike."""
    one = _ancestries(path)
    assert one == [("ANC-1", ["php-fpm", "nginx"])]
    for workers in ("2", "3"):
        assert _ancestries(path, "--workers", workers) == one, workers


def test_workers_keep_the_ancestry_one_process_finds() -> None:
    """Every worker's process tree sees every fork, exec and exit, whichever worker owns them."""
    _assert_workers_give_one_process_ancestry(ANCESTRY / "events.jsonl")


TREE_LINE = re.compile(r"process tree: (\d+) processes \((\d+) forks, (\d+) execs, (\d+) exits")


def test_the_summary_shows_the_workers_process_tree() -> None:
    """Each worker's tree follows every fork, exec and exit of the input: the summary shows the
    counts one process shows (once, as the workers agree), not the idle main process's zeros."""
    path = str(ANCESTRY / "events.jsonl")
    one = tracee_rules("--input", path, "--output-template", "rawjson")
    two = tracee_rules("--input", path, "--output-template", "rawjson", "--workers", "2")
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    expected = TREE_LINE.search(one.stderr)
    assert expected is not None and int(expected.group(3)) > 0, one.stderr
    assert TREE_LINE.findall(two.stderr) == [expected.groups()], two.stderr
    assert "in each of 2 workers: process tree:" in two.stderr


def test_workers_learn_ancestors_from_other_workers_events_context(tmp_path: Path) -> None:
    """A parent seen only through the context of its own events (no exec or fork of it in the
    input) is learnt by every worker's tree, as one process's tree learns it: the shell's owner
    never owns its parent's open, nor (with 3 workers) the server's."""
    exec_line = (ANCESTRY / "events.jsonl").read_text().splitlines()[0]

    def record(name: str, pid: int, ppid: int, comm: str, args: list[dict[str, Any]]) -> str:
        raw = json.loads(exec_line)
        raw.update(
            eventName=name,
            processId=pid,
            threadId=pid,
            hostProcessId=pid,
            hostThreadId=pid,
            hostParentProcessId=ppid,
            processName=comm,
            executable={"path": "/usr/sbin/" + comm},
            args=args,
        )
        raw.pop("processEntityId", None)
        raw.pop("parentEntityId", None)
        raw["timestamp"] += pid
        return json.dumps(raw, separators=(",", ":"))

    opened = [{"name": "dirfd", "value": -100}, {"name": "pathname", "value": "/etc/hosts"}]
    shell = [{"name": "pathname", "value": "/bin/sh"}, {"name": "argv", "value": ["sh", "-c", "id"]}]
    path = tmp_path / "context.jsonl"
    path.write_text(
        "\n".join(
            [
                record("openat", 1000, 1, "nginx", opened),  # the server: only an open of its own
                record("openat", 1001, 1000, "php-fpm", opened),  # its worker: likewise
                record("sched_process_exec", 1002, 1001, "sh", shell),
            ]
        )
        + "\n"
    )
    _assert_workers_give_one_process_ancestry(path)


def test_workers_read_other_workers_odd_tree_events_without_failing(tmp_path: Path) -> None:
    """An exec whose executable object holds an escaped duplicate key (the decoder keeps the last)
    is read in place by no worker: each decodes it, and the ancestry is the one process's."""
    lines = (ANCESTRY / "events.jsonl").read_text().splitlines()
    odd = [line.replace('"executable":{"path":"', '"executable":{"x":"","\\u0070ath":"', 1) for line in lines]
    assert odd != lines and all(json.loads(line)["executable"]["path"] for line in odd)
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(odd) + "\n")
    _assert_workers_give_one_process_ancestry(path)


@pytest.mark.parametrize("value", ["-1", "two"])
def test_workers_is_a_count(value: str) -> None:
    result = tracee_rules("--workers", value, "--list")
    assert result.returncode == 2
    assert "--workers" in result.stderr


def test_an_interrupted_sharded_run_finishes_its_workers(tmp_path: Path) -> None:
    """SIGINT to the main process: the workers finish their signatures, the summary is printed,
    the exit status is 130 and no worker outlives the run."""
    import signal
    import subprocess
    import time

    import psutil

    line = json.dumps(_exec(7, "/usr/bin/ls")) + "\n"
    path = tmp_path / "many.jsonl"
    with path.open("w") as out:
        for _ in range(40):
            out.write(line * 10_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytracee.engine.cli.tracee_rules", "--input", str(path), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        assert "in 2 processes" in proc.stderr.readline()
        deadline = time.monotonic() + 30
        while len(_workers(psutil.Process(proc.pid).children())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        children = psutil.Process(proc.pid).children()  # the workers, and the walker of their records
        assert len(_workers(children)) == 2
        proc.send_signal(signal.SIGINT)
        stderr = proc.stderr.read()
        assert proc.wait(60) == 130, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "interrupted; finishing the signatures and outputs" in stderr
    assert _summary(stderr)[1] == 0
    assert not [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]


def test_an_interrupted_run_on_workers_prints_every_finding_it_counts(tmp_path: Path) -> None:
    """Ctrl-C while the output is backed up (the main process blocked writing findings): every
    finding the workers made and sent is printed, or counted as not delivered; none is lost
    with the batch it was read in."""
    import signal
    import subprocess
    import time

    traceme = [{"name": "request", "value": "PTRACE_TRACEME"}, {"name": "pid", "value": 0}]
    path = tmp_path / "ptrace.jsonl"
    path.write_text("".join(json.dumps(_event("ptrace", pid, traceme)) + "\n" for pid in range(1, 4001)))
    command = [sys.executable, "-m", "pytracee.engine.cli.tracee_rules", "--input", str(path), "--workers", "2"]
    proc = subprocess.Popen(
        [*command, "--rules", "TRC-102", "--output-template", "rawjson"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None and "in 2 processes" in proc.stderr.readline()
        time.sleep(1.5)  # nobody reads the findings: the pipe fills, the main process blocks on it
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    counted = _summary(err)[2]
    undelivered = re.search(r"findings not delivered: (\d+)", err)
    printed = out.count('"TRC-102"')
    assert 0 < printed < 4000
    assert printed + (int(undelivered.group(1)) if undelivered else 0) == counted, err


HOLD_RULE = """
import os
import pathlib
import time

from pytracee.engine import select, signature


@signature(id="TEST-HOLD", name="Hold", events=[select("execve", pathname="/hold")])
def hold(event):
    pathlib.Path({held!r}).touch()
    while not os.path.exists({release!r}):
        time.sleep(0.05)
    return True
"""


def _held_run(tmp_path: Path) -> tuple[Any, Path, Path]:
    """``tracee-rules --workers 2`` on 8 processes' execs, one of which a signature holds up until
    ``release`` exists: the process, once the signature holds, and the release file."""
    import subprocess
    import time

    held, release = tmp_path / "held", tmp_path / "release"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hold.py").write_text(HOLD_RULE.format(held=str(held), release=str(release)))
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(_execve(pid, "/hold" if pid == 3 else "/bin/true")) + "\n" for pid in range(8)))
    command = [sys.executable, "-m", "pytracee.engine.cli.tracee_rules", "--input", str(path), "--workers", "2"]
    command += ["--rules", "TEST-HOLD", "--rules-dir", str(rules), "--output-template", "rawjson"]
    # a process group of its own, as a shell's job: a terminal's hangup reaches all of it
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 30
    while not held.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if not held.exists():
        proc.kill()
        pytest.fail(f"the signature never ran: {proc.communicate()}")
    return proc, held, release


def _workers(children: list[Any]) -> list[Any]:
    """Of a sharded run's child processes, the workers (not the walker of their records' owners)."""
    from pytracee.engine.walkahead import WALKER_NAME

    return [child for child in children if child.name() != WALKER_NAME.decode()]


def test_workers_end_with_a_killed_main_process(tmp_path: Path) -> None:
    """A main process killed outright (SIGKILL: no chance to stop its workers) leaves none
    behind, not even one stuck in a signature."""
    import psutil

    proc, _, release = _held_run(tmp_path)
    workers: list[psutil.Process] = []
    try:
        # the forked workers and walker (not the Rego engine's process: a session of its own)
        workers = [child for child in psutil.Process(proc.pid).children() if os.getpgid(child.pid) == proc.pid]
        assert len(_workers(workers)) == 2
        proc.kill()
        proc.communicate(timeout=10)
        _, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, alive
    finally:
        release.touch()
        if proc.poll() is None:
            proc.kill()
        for worker in workers:  # one left behind by a failure here
            with contextlib.suppress(psutil.NoSuchProcess):
                worker.kill()


def test_a_hangup_does_not_end_a_replay_on_workers(tmp_path: Path) -> None:
    """SIGHUP reloads a one-process replay; workers cannot reload, and the default action would
    end the run: the main process says so and the run goes on to its end. The hangup of a
    terminal, which reaches every process of the job, workers included, alike."""
    import signal
    import subprocess

    proc, _, release = _held_run(tmp_path)
    try:
        os.killpg(proc.pid, signal.SIGHUP)
        release.touch()
        out, err = proc.communicate(timeout=60)
    finally:
        release.touch()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "SIGHUP: a replay on several workers does not reload" in err
    assert _findings(subprocess.CompletedProcess(proc.args, proc.returncode, out, err)) == Counter(
        {"TEST-HOLD pid=3": 1}
    )
    assert _summary(err)[:3] == (8, 0, 1)


def test_workers_put_the_syscall_behind_an_lsm_event_on_its_finding(tmp_path: Path) -> None:
    """The syscall context pairs events in the worker that owns them; its findings leave enriched."""
    path_arg = {"name": "pathname", "type": "const char*", "value": "/etc/ld.so.preload"}
    openat = _event("openat", 77, [path_arg, {"name": "flags", "type": "int", "value": "O_WRONLY"}])
    openat["returnValue"] = 3
    file_open = _event(
        "security_file_open",
        77,
        [path_arg, {"name": "flags", "type": "int", "value": "O_WRONLY"}, {"name": "dev", "type": "dev_t", "value": 1}],
        syscall="openat",
    )
    file_open["timestamp"] += 1
    path = tmp_path / "preload.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in [_exec(5, "/usr/bin/true"), openat, file_open]))
    for workers in ("1", "2"):
        result = tracee_rules(
            "--input", str(path), "--rules", "TRC-107", "--output-template", "rawjson", "--workers", workers
        )
        assert result.returncode == 0, result.stderr
        (finding,) = [json.loads(line) for line in result.stdout.splitlines()]
        assert finding["Data"]["syscall_event"]["name"] == "openat", (workers, finding["Data"])


def test_strict_workers_say_which_record_stopped_them(tmp_path: Path) -> None:
    good = json.dumps(_exec(42, "/usr/bin/ls"))
    # owned by worker 1 of 3 (as in the test above): not the first worker
    lines = [good, '{"eventName": "openat", "hostProcessId": 1, "threadId": "y"}', good]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = tracee_rules("--input", str(path), "--workers", "3", "--strict")
    assert result.returncode == 1, result.stderr
    assert result.stderr.count(f"{path}:2: wrong type") == 1, result.stderr
