"""Tests of the LOCAL-1 rule file, loaded the way ``--rules-dir`` loads it.

``tracee-rules --rules-dir`` skips ``test_*.py`` files, so the tests can live
next to the rule.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from pytracee.engine import ArgumentError, Signature
from pytracee.engine.params import resolve_params
from pytracee.engine.testing import (
    assert_fires,
    assert_silent,
    load_signatures,
    make_event,
    run_signature,
)

HERE = Path(__file__).resolve().parent
ELF = base64.b64encode(bytes.fromhex("7f454c4602010100000000000000000003003e00")).decode()
SCRIPT = base64.b64encode(b"#!/bin/sh\ncurl -s http").decode()
CONTAINER = "5d7e9f1a3c5b7d9e1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d"


@pytest.fixture
def rule() -> Signature:
    (signature,) = load_signatures(HERE / "suspicious_download.py")
    return signature


def write_open(path: str, flags: int | str = 0o1101, *, ts: int = 1_000_000_000, **fields: Any):
    """security_file_open of ``path``; 0o1101 is O_WRONLY|O_CREAT|O_TRUNC."""
    args = {"pathname": path, "flags": flags, "dev": 271581186, "inode": 4211, "ctime": ts, "syscall_pathname": path}
    fields.setdefault("processName", "curl")
    return make_event("security_file_open", args, timestamp=ts, **fields)


def magic_write(path: str, data: str = ELF, *, ts: int = 1_100_000_000, **fields: Any):
    fields.setdefault("processName", "curl")
    return make_event(
        "magic_write", {"pathname": path, "bytes": data, "dev": 271581186, "inode": 4211}, timestamp=ts, **fields
    )


def rename(old: str, new: str, *, ts: int = 1_200_000_000, **fields: Any):
    return make_event(
        "security_inode_rename", {"old_path": old, "new_path": new}, timestamp=ts, processName="curl", **fields
    )


def execute(path: str, *, ts: int = 3_500_000_000, **fields: Any):
    args = {
        "cmdpath": path,
        "pathname": path,
        "argv": [path],
        "prev_comm": "sh",
        "env": ["PATH=/usr/bin:/bin"],
        "pwd": "/tmp",
    }
    fields.setdefault("processName", path.rpartition("/")[2][:15])
    return make_event("sched_process_exec", args, timestamp=ts, **fields)


def test_the_directory_holds_exactly_this_rule() -> None:
    signatures = load_signatures(HERE)  # test files are skipped, as --rules-dir does
    assert [s.get_metadata().id for s in signatures] == ["LOCAL-1"]


@pytest.mark.parametrize("flags", [0o1101, "O_WRONLY|O_CREAT|O_TRUNC", 0o2, "O_RDWR|O_LARGEFILE"], ids=str)
def test_fires_when_a_written_file_is_executed(rule: Signature, flags: int | str) -> None:
    finding = assert_fires(
        rule,
        [write_open("/tmp/payload", flags, processId=4711), execute("/tmp/payload")],
        {"path": "/tmp/payload", "written_by": "curl", "writer_pid": 4711, "elf": False, "seconds_since_write": 2.5},
        count=1,
    )
    assert finding.event.name == "sched_process_exec"


def test_magic_write_marks_an_elf(rule: Signature) -> None:
    events = [write_open("/dev/shm/.x"), magic_write("/dev/shm/.x"), execute("/dev/shm/.x")]
    assert_fires(rule, events, {"path": "/dev/shm/.x", "elf": True}, count=1)


def test_a_script_is_not_an_elf(rule: Signature) -> None:
    assert_fires(rule, [magic_write("/var/tmp/run.sh", SCRIPT), execute("/var/tmp/run.sh")], {"elf": False})


def test_follows_a_rename(rule: Signature) -> None:
    events = [write_open("/tmp/agent.part"), rename("/tmp/agent.part", "/tmp/agent"), execute("/tmp/agent")]
    assert_fires(rule, events, {"path": "/tmp/agent"}, count=1)


def test_same_container_only(rule: Signature) -> None:
    events = [
        write_open("/tmp/xmrig", container=CONTAINER),
        execute("/tmp/xmrig"),  # the host's /tmp/xmrig is another file
        execute("/tmp/xmrig", container="0" * 64),  # and so is another container's
    ]
    assert_silent(rule, events)
    finding = assert_fires(
        rule, [write_open("/tmp/xmrig", container=CONTAINER), execute("/tmp/xmrig", container=CONTAINER)]
    )
    assert finding.event.origin == "container"


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([execute("/tmp/payload")], id="never-written"),
        pytest.param([write_open("/tmp/payload", 0), execute("/tmp/payload")], id="read-open"),
        pytest.param([write_open("/tmp/payload", "O_RDONLY"), execute("/tmp/payload")], id="read-open-parsed"),
        pytest.param([write_open("/home/user/payload"), execute("/home/user/payload")], id="not-a-temp-dir"),
        pytest.param([write_open("/tmp/a"), execute("/tmp/b")], id="other-file"),
        pytest.param(
            [write_open("/tmp/a.part"), rename("/tmp/a.part", "/usr/local/bin/a"), execute("/tmp/a.part")],
            id="renamed-away",
        ),
    ],
)
def test_silent(rule: Signature, events: list[Any]) -> None:
    assert_silent(rule, events)


def test_fires_once_per_write(rule: Signature) -> None:
    events = [
        write_open("/tmp/p"),
        execute("/tmp/p"),
        execute("/tmp/p", ts=4_000_000_000),
        write_open("/tmp/p", ts=5_000_000_000),
        execute("/tmp/p", ts=6_000_000_000),
    ]
    assert len(run_signature(rule, events)) == 2


def test_memory_is_bounded(rule: Signature) -> None:
    rule.configure_params(resolve_params(rule.parameters, {"max_tracked": 3}))
    events = [write_open(f"/tmp/f{i}") for i in range(5)] + [execute("/tmp/f0"), execute("/tmp/f4")]
    findings = run_signature(rule, events)
    assert [f.data["path"] for f in findings] == ["/tmp/f4"]


def test_state_is_dropped_at_the_end_of_the_input(rule: Signature) -> None:
    run_signature(rule, [write_open("/tmp/left-over")])
    assert not rule.written


def test_an_error_in_the_rule_is_raised_from_the_rules_own_line(rule: Signature) -> None:
    """A rename without its ``new_path``: the rule's own code raises, and the helpers raise that.

    Without ``pytest.raises``, pytest would report the ArgumentError at the rule's
    ``event.str_arg("new_path")`` line of suspicious_download.py, not inside the helper.
    """
    events = [write_open("/tmp/a.part"), make_event("security_inode_rename", {"old_path": "/tmp/a.part"})]
    with pytest.raises(ArgumentError, match="no argument 'new_path'") as raised:
        run_signature(rule, events)
    shown = [(Path(entry.path).name, entry.name) for entry in raised.traceback.filter(raised)]
    assert shown[1] == ("suspicious_download.py", "on_event")  # right below this test: the helpers are hidden
    # Or count it, as a replay does: the run goes on and its stats say what happened.
    run = run_signature(rule, [*events, write_open("/tmp/b"), execute("/tmp/b")], raise_errors=False)
    assert [f.data["path"] for f in run] == ["/tmp/b"]
    assert run.stats.events == 4 and run.stats.errors_by_signature == {"LOCAL-1": 1}
    assert isinstance(run.errors["LOCAL-1"][0], ArgumentError)
