"""The pytest plugin signature authors get: fixtures and assertion helpers, auto-loaded."""

from __future__ import annotations

import pytest
from pytracee.engine import Event, select, signature
from pytracee.engine.catalogue import TRACEE_EVENTS
from pytracee.engine.testing import (
    assert_fires,
    assert_silent,
    load_signatures,
    make_event,
    run_engine,
)

pytest_plugins = ["pytester"]


@signature(id="T-1", name="shadow read", events=[select("security_file_open", pathname="/etc/shadow")])
def shadow_read(event: Event) -> dict | None:
    return {"by": event.process_name} if event.is_file_read() else None


def test_assert_fires_and_silent() -> None:
    finding = assert_fires(shadow_read, [make_event("security_file_open", {"pathname": "/etc/shadow", "flags": 0}, processName="cat")], data={"by": "cat"}, count=1)
    assert finding.event.process_name == "cat"
    assert_silent(shadow_read, [make_event("security_file_open", {"pathname": "/etc/shadow", "flags": "O_WRONLY"})])
    with pytest.raises(AssertionError, match="T-1 did not fire"):
        assert_fires(shadow_read, [make_event("openat")])
    with pytest.raises(AssertionError, match=r"fired with data \{'by': 'cat'\}; expected \{'by': 'vim'\}"):
        assert_fires(shadow_read, [make_event("security_file_open", {"pathname": "/etc/shadow", "flags": 0}, processName="cat")], data={"by": "vim"})
    with pytest.raises(AssertionError, match="fired unexpectedly: T-1 on security_file_open"):
        assert_silent(shadow_read, [make_event("security_file_open", {"pathname": "/etc/shadow", "flags": 0})])


def test_make_event_builds_complete_container_events() -> None:
    event = make_event("security_sb_mount", {"dev_name": "/dev/sda1"}, container=True, processName="mount")
    assert event.origin == "container" and event.container_id
    assert event.event_id == TRACEE_EVENTS["security_sb_mount"] and make_event("openat").event_id == 257
    assert event.to_dict()["args"][0] == {"name": "dev_name", "type": "", "value": "/dev/sda1"}


def test_run_engine_uses_all_builtins_by_default() -> None:
    findings = run_engine([make_event("ptrace", {"request": "PTRACE_TRACEME"}), make_event("mem_prot_alert", {"alert": 4})])
    assert [f.sig_metadata.id for f in findings] == ["TRC-102", "TRC-104"]


def test_load_signatures_from_a_file(tmp_path) -> None:
    rules = tmp_path / "mine.py"
    rules.write_text("from pytracee.engine import signature\n@signature(id='MINE-1', name='m', events=['ptrace'])\ndef m(event):\n    return True\n")
    (sig,) = load_signatures(rules)
    assert_fires(sig, [make_event("ptrace", {"request": 0})])
    (tmp_path / "broken.py").write_text("def (\n")
    with pytest.raises(AssertionError, match="broken.py:1: SyntaxError"):
        load_signatures(tmp_path)


def test_the_plugin_loads_in_a_users_test_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mine="""
        from pytracee.engine import signature, select

        @signature(id="U-1", name="u", events=[select("sched_process_exec", pathname="/tmp/*")])
        def tmp_exec(event):
            return {"path": event.str_arg("pathname")}

        def test_fires(make_event, run_signature):
            findings = run_signature(tmp_exec, [make_event("sched_process_exec", {"pathname": "/tmp/x"}),
                                                make_event("sched_process_exec", {"pathname": "/usr/bin/ls"})])
            assert [f.data for f in findings] == [{"path": "/tmp/x"}]

        def test_engine(make_event, run_engine):
            assert run_engine([make_event("ptrace", {"request": 0})])[0].sig_metadata.id == "TRC-102"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
