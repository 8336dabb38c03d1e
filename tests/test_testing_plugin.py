"""The pytest plugin signature authors get: fixtures and assertion helpers, auto-loaded."""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from pytracee.engine import Event, Signature, SignatureMetadata, select, signature
from pytracee.engine.catalogue import TRACEE_EVENTS
from pytracee.engine.errors import RuleAbortError
from pytracee.engine.testing import (
    EngineRun,
    assert_fires,
    assert_silent,
    load_signatures,
    make_event,
    run_engine,
    run_signature,
)

pytest_plugins = ["pytester"]


@signature(id="T-1", name="shadow read", events=[select("security_file_open", pathname="/etc/shadow")])
def shadow_read(event: Event) -> dict | None:
    return {"by": event.process_name} if event.is_file_read() else None


def test_assert_fires_and_silent() -> None:
    finding = assert_fires(
        shadow_read,
        [make_event("security_file_open", {"pathname": "/etc/shadow", "flags": 0}, processName="cat")],
        data={"by": "cat"},
        count=1,
    )
    assert finding.event.process_name == "cat"
    assert_silent(shadow_read, [make_event("security_file_open", {"pathname": "/etc/shadow", "flags": "O_WRONLY"})])
    with pytest.raises(AssertionError, match="T-1 did not fire"):
        assert_fires(shadow_read, [make_event("openat")])
    with pytest.raises(AssertionError, match=r"fired with data \{'by': 'cat'\}; expected \{'by': 'vim'\}"):
        assert_fires(
            shadow_read,
            [make_event("security_file_open", {"pathname": "/etc/shadow", "flags": 0}, processName="cat")],
            data={"by": "vim"},
        )
    with pytest.raises(AssertionError, match="fired unexpectedly: T-1 on security_file_open"):
        assert_silent(shadow_read, [make_event("security_file_open", {"pathname": "/etc/shadow", "flags": 0})])


def test_make_event_builds_complete_container_events() -> None:
    event = make_event("security_sb_mount", {"dev_name": "/dev/sda1"}, container=True, processName="mount")
    assert event.origin == "container" and event.container_id
    assert event.event_id == TRACEE_EVENTS["security_sb_mount"] and make_event("openat").event_id == 257
    assert event.to_dict()["args"][0] == {"name": "dev_name", "type": "", "value": "/dev/sda1"}


def test_run_engine_uses_all_builtins_by_default() -> None:
    findings = run_engine(
        [make_event("ptrace", {"request": "PTRACE_TRACEME"}), make_event("mem_prot_alert", {"alert": 4})]
    )
    assert [f.sig_metadata.id for f in findings] == ["TRC-102", "TRC-104"]


def test_load_signatures_from_a_file(tmp_path) -> None:
    rules = tmp_path / "mine.py"
    rules.write_text(
        "from pytracee.engine import signature\n@signature(id='MINE-1', name='m', events=['ptrace'])\ndef m(event):\n    return True\n"
    )
    (sig,) = load_signatures(rules)
    assert_fires(sig, [make_event("ptrace", {"request": 0})])
    (tmp_path / "broken.py").write_text("def (\n")
    with pytest.raises(AssertionError, match=r"broken.py:1: SyntaxError"):
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


# --- a signature's exception is the author's ----------------------------------------------------


class Fragile(Signature):
    """Divides by the request; raises on request 0, in its own code."""

    metadata = SignatureMetadata(id="FRAGILE-1", name="fragile")
    selected_events = (select("ptrace"),)

    def on_event(self, event: Event) -> None:
        self.emit(event, {"inverse": 1 / event.int_arg("request")})  # the author's line


@signature(id="FRAGILE-2", name="fragile function", events=["ptrace"])
def fragile_function(event: Event) -> dict | None:
    return {"inverse": 1 / event.int_arg("request")}


def _frames(tb: TracebackType | None) -> list[str]:
    names = []
    while tb is not None:
        names.append(f"{Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_frame.f_code.co_name}")
        tb = tb.tb_next
    return names


@pytest.mark.parametrize("sig", [Fragile, fragile_function], ids=["class", "function"])
def test_an_exception_in_on_event_is_raised_as_itself_from_the_signatures_code(sig: Any) -> None:
    events = [make_event("ptrace", {"request": 2}), make_event("ptrace", {"request": 0})]
    with pytest.raises(ZeroDivisionError, match="division by zero") as raised:
        run_signature(sig, events)
    frames = _frames(raised.value.__traceback__)
    author = "test_testing_plugin.py:" + ("on_event" if sig is Fragile else "fragile_function")
    assert frames[-1] == author  # where it was raised
    # between the helper's raise and the signature, none of the engine's frames
    assert frames[frames.index("testing.py:raise_errors") + 1 :] == [author]
    assert not any(frame.startswith("dispatch.py:") for frame in frames)
    for helper in (assert_fires, assert_silent):
        with pytest.raises(ZeroDivisionError):
            helper(sig, events)


def test_errors_in_init_and_close_are_raised_too() -> None:
    class BadInit(Fragile):
        metadata = SignatureMetadata(id="BAD-INIT", name="b")

        def init(self, ctx: Any) -> None:
            raise KeyError("no config")

    class BadClose(Fragile):
        metadata = SignatureMetadata(id="BAD-CLOSE", name="b")

        def close(self) -> None:
            raise OSError("cannot flush")

    with pytest.raises(KeyError, match="no config") as raised:
        run_engine([], [BadInit])
    assert _frames(raised.value.__traceback__)[-1] == "test_testing_plugin.py:init"
    with pytest.raises(OSError, match="cannot flush") as raised_in_close:
        run_engine([make_event("ptrace", {"request": 1})], [BadClose])
    assert _frames(raised_in_close.value.__traceback__)[-1] == "test_testing_plugin.py:close"


def test_a_signatures_sys_exit_is_raised_as_the_engines_rule_abort_from_the_authors_line() -> None:
    @signature(id="QUIT-1", name="q", events=["ptrace"])
    def quitter(event: Event) -> None:
        sys.exit(3)

    with pytest.raises(RuleAbortError, match=r"sys.exit\(3\)") as raised:
        run_signature(quitter, [make_event("ptrace", {"request": 0})])
    cause = raised.value.__cause__
    assert isinstance(cause, SystemExit) and _frames(cause.__traceback__) == ["test_testing_plugin.py:quitter"]


def test_the_first_error_is_raised_with_a_note_counting_the_others() -> None:
    events = [make_event("ptrace", {"request": 0})] * 3
    with pytest.raises(ZeroDivisionError) as raised:
        run_engine(events, [Fragile, fragile_function])
    assert raised.value.__notes__ == [
        (
            "pytracee: the first of 6 signature errors in this run (FRAGILE-1: 3, FRAGILE-2: 3); "
            "run_engine(..., raise_errors=False) returns them all"
        )
    ]


def test_without_raising_the_run_returns_its_findings_errors_and_counters() -> None:
    events = [make_event("ptrace", {"request": 2}), make_event("ptrace", {"request": 0}), make_event("openat")]
    run = run_engine(events, [Fragile, shadow_read], raise_errors=False)
    assert isinstance(run, EngineRun) and isinstance(run, list)
    assert [f.data for f in run] == [{"inverse": 0.5}]
    assert run.stats.events == 3 and run.stats.findings == 1
    assert run.stats.findings_by_signature == {"FRAGILE-1": 1}
    assert run.stats.errors_by_signature == {"FRAGILE-1": 1}
    ((error,),) = run.errors.values()
    assert list(run.errors) == ["FRAGILE-1"] and isinstance(error, ZeroDivisionError)
    assert _frames(error.__traceback__) == ["test_testing_plugin.py:on_event"]
    with pytest.raises(ZeroDivisionError):
        run.raise_errors()
    clean = run_signature(shadow_read, [make_event("openat")], raise_errors=False)
    assert clean == [] and clean.errors == {} and clean.stats.events == 1
    clean.raise_errors()  # nothing to raise


def test_pytest_shows_the_authors_line_not_the_helpers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_author="""
        from pytracee.engine import Signature, SignatureMetadata, select
        from pytracee.engine.testing import assert_fires, make_event

        class Fragile(Signature):
            metadata = SignatureMetadata(id="A-1", name="a")
            selected_events = [select("ptrace")]

            def on_event(self, event):
                ratio = 1 / event.int_arg("request")  # the author's line
                self.emit(event, {"ratio": ratio})

        def test_fires(run_signature):
            run_signature(Fragile, [make_event("ptrace", {"request": 0})])

        def test_asserted():
            assert_fires(Fragile, [make_event("ptrace", {"request": 0})])
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(failed=2)
    output = result.stdout.str()
    assert output.count('>       ratio = 1 / event.int_arg("request")  # the author\'s line') == 2
    assert output.count("E       ZeroDivisionError: division by zero") == 2
    assert "signatures raised errors" not in output
    for internal in ("engine/testing.py", "engine/dispatch.py", "raise_errors", "run_engine("):
        assert internal not in output, internal
