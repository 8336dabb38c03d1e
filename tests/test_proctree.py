"""The process tree from event streams: chains, pid reuse, the context fallback, the LRU bound.

Events are Tracee ``trace.Event`` objects as the collector writes them (fork events
with the parent process and child start times, exec events with argv); the
expected trees are written out by hand.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

from conftest import tracee_rules
from pytracee.engine.context.proctree import ProcessTree, task_entity_id

T0 = 1_765_000_000_000_000_000


def ctx(name: str, pid: int, ppid: int, comm: str, start: int, pstart: int = 0, **extra: Any) -> dict[str, Any]:
    raw = {
        "timestamp": T0 + start + 1,
        "threadStartTime": start,
        "processId": pid,
        "threadId": pid,
        "hostProcessId": pid,
        "hostThreadId": pid,
        "hostParentProcessId": ppid,
        "processName": comm,
        "executable": {"path": f"/usr/bin/{comm}"},
        "processEntityId": task_entity_id(pid, start),
        "parentEntityId": task_entity_id(ppid, pstart) if pstart else 0,
        "eventName": name,
        "args": [],
    }
    raw.update(extra)
    return raw


def fork(parent: int, pcomm: str, pstart: int, child: int, cstart: int) -> dict[str, Any]:
    args = {
        "parent_tid": parent,
        "parent_pid": parent,
        "parent_start_time": pstart,
        "child_tid": child,
        "child_pid": child,
        "child_ns_pid": child,
        "start_time": cstart,
        "parent_process_pid": parent,
        "parent_process_start_time": pstart,
    }
    return ctx("sched_process_fork", parent, 1, pcomm, pstart, args=[{"name": k, "value": v} for k, v in args.items()])


def exec_(pid: int, comm: str, path: str, argv: list[str], start: int) -> dict[str, Any]:
    args = [{"name": "pathname", "value": path}, {"name": "argv", "value": argv}]
    return ctx("sched_process_exec", pid, 0, comm, start, args=args, executable={"path": path})


def exit_(pid: int, comm: str, start: int) -> dict[str, Any]:
    return ctx("sched_process_exit", pid, 0, comm, start, args=[{"name": "process_group_exit", "value": True}])


def chain(tree: ProcessTree, pid: int) -> list[tuple[int, str]]:
    node = tree.find(pid)
    assert node is not None
    return [(p.pid, p.comm) for p in node.ancestors()]


def test_fork_exec_chain_gives_ancestors_in_order() -> None:
    tree = ProcessTree()
    for raw in [
        exec_(10, "nginx", "/usr/sbin/nginx", ["nginx"], 100),
        fork(10, "nginx", 100, 11, 200),
        exec_(11, "php-fpm", "/usr/sbin/php-fpm", ["php-fpm", "pool"], 200),
        fork(11, "php-fpm", 200, 12, 300),
        exec_(12, "sh", "/bin/sh", ["sh", "-c", "id"], 300),
    ]:
        tree.observe(raw)
    shell = tree.find(12)
    assert shell is not None and shell.executable == "/bin/sh" and shell.argv == ("sh", "-c", "id")
    assert chain(tree, 12)[:2] == [(11, "php-fpm"), (10, "nginx")]
    assert shell.ancestor(2) is tree.find(10)
    assert tree.stats.forks == 2 and tree.stats.execs == 3


def test_a_forked_child_has_its_parents_image_until_it_execs() -> None:
    tree = ProcessTree()
    tree.observe(exec_(10, "bash", "/bin/bash", ["bash"], 100))
    tree.observe(fork(10, "bash", 100, 11, 200))
    child = tree.find(11)
    assert child is not None and (child.comm, child.executable) == ("bash", "/bin/bash")


def test_pid_reuse_starts_a_new_process_and_keeps_the_old_lineage() -> None:
    tree = ProcessTree()
    tree.observe(exec_(10, "cron", "/usr/sbin/cron", ["cron"], 100))
    tree.observe(fork(10, "cron", 100, 50, 200))
    tree.observe(exec_(50, "backup", "/usr/local/bin/backup", ["backup"], 200))
    tree.observe(fork(50, "backup", 200, 51, 300))  # the old 50's child
    tree.observe(exit_(50, "backup", 200))
    tree.observe(exec_(20, "sshd", "/usr/sbin/sshd", ["sshd"], 150))
    tree.observe(fork(20, "sshd", 150, 50, 400))  # pid 50 again, another process
    tree.observe(exec_(50, "bash", "/bin/bash", ["bash"], 400))
    new = tree.find(50)
    assert new is not None and new.comm == "bash" and new.parent is tree.find(20)
    old_child = tree.find(51)
    assert old_child is not None and old_child.parent is not None
    assert (old_child.parent.comm, old_child.parent.start_time, old_child.parent.exit_time > 0) == ("backup", 200, True)
    assert old_child.parent is not new
    assert tree.find(50, start=200) is None  # the pid now names the new process
    # an event of the new process after the reuse resolves to it, not to the old one
    later = ctx("openat", 50, 20, "bash", 400)
    assert tree.process_of(later) is new


def test_context_fallback_builds_the_chain_without_fork_events() -> None:
    tree = ProcessTree()
    tree.observe(ctx("openat", 10, 1, "nginx", 100))
    tree.observe(ctx("connect", 11, 10, "php-fpm", 200, 100))
    tree.observe(ctx("execve", 12, 11, "sh", 300, 200))
    assert chain(tree, 12)[:2] == [(11, "php-fpm"), (10, "nginx")]
    # the parent learned from a child's hostParentProcessId first gets its name later
    tree2 = ProcessTree()
    tree2.observe(ctx("openat", 12, 11, "sh", 300, 200))
    tree2.observe(ctx("openat", 11, 10, "php-fpm", 200, 100))
    assert chain(tree2, 12)[0] == (11, "php-fpm")


def test_tree_is_bounded_and_evicted_processes_release_their_ancestors() -> None:
    tree = ProcessTree(max_processes=100)
    tree.observe(exec_(2, "init", "/sbin/init", ["init"], 10))
    parent_pid, pstart = 2, 10
    for i in range(5000):  # a 5000-deep chain: each process forks the next
        child = 1000 + i
        tree.observe(fork(parent_pid, "x", pstart, child, 100 + i))
        parent_pid, pstart = child, 100 + i
    assert len(tree) == 100 and tree.stats.evicted == 4901
    last = tree.find(parent_pid)
    assert last is not None and len(last.ancestors(10_000)) <= 100
    # nothing but the LRU (and one evicted parent per process in it) is alive
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(5000, 15000):
        tree.observe(fork(parent_pid, "x", pstart, 1000 + i, 100 + i))
        parent_pid, pstart = 1000 + i, 100 + i
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 200_000, grown


def test_odd_and_hostile_records_teach_nothing_and_never_raise() -> None:
    tree = ProcessTree()
    for raw in [
        {"eventName": "sched_process_fork", "args": "nope"},
        {"eventName": "sched_process_fork", "args": [{"name": "child_pid", "value": "12"}]},
        {"eventName": "sched_process_exec", "hostProcessId": "x"},
        {"eventName": "sched_process_exec", "hostProcessId": 5, "args": [{"name": "argv", "value": ["a" * 100_000]}]},
        {"eventName": "openat", "hostProcessId": 7, "hostParentProcessId": 7},
        {"eventName": "sched_process_exit"},
        {},
    ]:
        tree.observe(raw)
    five = tree.find(5)
    assert five is not None and len("".join(five.argv)) <= 1024 + 3  # argv bounded
    seven = tree.find(7)
    assert seven is not None and seven.parent is None  # its own parent: no loop


def test_argv_of_many_empty_items_is_bounded() -> None:
    tree = ProcessTree()
    argv = [""] * 300_000
    tree.observe({"eventName": "sched_process_exec", "hostProcessId": 6, "args": [{"name": "argv", "value": argv}]})
    six = tree.find(6)
    assert six is not None and 0 < len(six.argv) <= 1024
    assert len(" ".join(six.argv)) <= 1024 + 3


def test_seed_from_proc_knows_this_process_and_its_parent() -> None:
    import os

    tree = ProcessTree()
    assert tree.seed_from_proc() > 1
    me = tree.find(os.getpid())
    assert me is not None and me.parent is not None and me.parent.pid == os.getppid()
    assert me.executable == os.readlink("/proc/self/exe")


def test_replayed_findings_carry_the_ancestry_in_every_template(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "ancestry"
    events = str(example / "events.jsonl")
    raw = tracee_rules("--rules-dir", str(example), "--input", events, "--output-template", "rawjson")
    assert raw.returncode == 0, raw.stderr
    (finding,) = [json.loads(line) for line in raw.stdout.splitlines()]
    ancestry = finding["Context"]["processAncestry"]
    assert [(a["pid"], a["comm"], a["executable"]["path"]) for a in ancestry] == [
        (1001, "php-fpm", "/usr/sbin/php-fpm"),
        (1000, "nginx", "/usr/sbin/nginx"),
    ]
    assert ancestry[1]["argv"] == ["nginx", "-g", "daemon off;"]
    for template, expected in [
        ("default", "Ancestry: php-fpm[1001] < nginx[1000]"),
        ("simple", "Ancestry: php-fpm[1001] < nginx[1000]"),
        ("csv", ",php-fpm[1001] < nginx[1000]"),
        ("xml", '<ancestor pid="1000" comm="nginx" executable="/usr/sbin/nginx"/>'),
        ("falcosidekick", '"proc.aname":["php-fpm","nginx"]'),
    ]:
        out = tracee_rules("--rules-dir", str(example), "--input", events, "--output-template", template)
        assert expected in out.stdout, (template, out.stdout)
    one = tracee_rules(
        "--rules-dir", str(example), "--input", events, "--output-template", "rawjson", "--ancestry-depth", "1"
    )
    assert [a["comm"] for a in json.loads(one.stdout)["Context"]["processAncestry"]] == ["php-fpm"]
    off = tracee_rules("--rules-dir", str(example), "--input", events, "--proctree", "source=none")
    assert off.returncode == 0 and "ANC-1" not in off.stdout  # no tree: no grandparent to match
    bad = tracee_rules("--input", events, "--proctree", "process-cache=0")
    assert bad.returncode == 2 and "process-cache=0" in bad.stderr


def test_an_unknown_forking_process_is_learned_with_its_own_parent() -> None:
    tree = ProcessTree()
    tree.observe(ctx("openat", 5, 1, "systemd", 50))
    raw = fork(10, "cron", 100, 11, 200)
    raw["hostParentProcessId"] = 5
    tree.observe(raw)
    assert chain(tree, 11)[:2] == [(10, "cron"), (5, "systemd")]
    forking = tree.find(10)
    assert forking is not None and forking.start_time == 100


def test_hostile_names_in_the_ancestry_are_escaped_in_text_findings(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "ancestry"
    lines = (example / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    for event in events:
        if event["processName"] == "php-fpm" or (
            event["eventName"] == "sched_process_fork" and event["hostProcessId"] == 1001
        ):
            event["processName"] = "php\x1b[2J\nSignature: fake"
    stream = tmp_path / "events.jsonl"
    stream.write_text("".join(json.dumps(e) + "\n" for e in events))
    out = tracee_rules("--rules-dir", str(example), "--input", str(stream))
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\nSignature: fake" not in out.stdout
    assert "Ancestry: php\\x1b[2J\\nSignature: fake[1001] < nginx[1000]" in out.stdout


def test_tracees_proctree_sources_signals_and_both_say_they_are_events(tmp_path: Path) -> None:
    events = tmp_path / "none.jsonl"
    events.write_text("")
    for source in ("signals", "both"):
        result = tracee_rules("--rules", "TRC-107", "--input", str(events), "--proctree", f"source={source}")
        assert result.returncode == 0, result.stderr
        assert f"--proctree source={source}: the process tree is built from events" in result.stderr
    quiet = tracee_rules("--rules", "TRC-107", "--input", str(events), "--proctree", "source=events")
    assert "--proctree" not in quiet.stderr
    refused = tracee_rules("--rules", "TRC-107", "--input", str(events), "--proctree", "source=kernel")
    assert refused.returncode == 2 and "--proctree source=kernel: expected events or none" in refused.stderr
