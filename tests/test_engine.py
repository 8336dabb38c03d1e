"""Engine semantics: selector index and wildcards, origins, data filters, failures, signals."""

from __future__ import annotations

from typing import Any

import pytest
from pytracee.engine import (
    Event,
    Finding,
    Signature,
    SignatureMetadata,
    select,
    signature,
)
from pytracee.engine.dispatch import Engine
from pytracee.engine.selectors import ArgPattern, SelectorError, union_gate
from pytracee.engine.signature import DuplicateSignatureError, SignatureDefinitionError
from pytracee.engine.testing import make_event, run_engine


class Recorder(Signature):
    """Records every event it receives; selectors given per instance."""

    def __init__(self, sig_id: str, *selectors: Any) -> None:
        self.metadata = SignatureMetadata(id=sig_id, name=sig_id, event_name=sig_id.lower())
        self.selected_events = selectors
        self.seen: list[str] = []
        self.signals: list[Any] = []
        self.closed = False

    def on_event(self, event: Event) -> None:
        self.seen.append(event.name)
        self.emit(event, {"n": len(self.seen)})

    def on_signal(self, signal: Any) -> None:
        self.signals.append(signal)

    def close(self) -> None:
        self.closed = True


def test_selectors_with_wildcards_route_like_tracee() -> None:
    by_name = Recorder("A", select("openat"))
    any_name = Recorder("B", select("*"))
    container_only = Recorder("C", select("openat", origin="container"))
    host_any = Recorder("D", select("*", origin="host"))
    other_source = Recorder("E", select("openat", source="falco"))
    events = [make_event("openat"), make_event("close"), make_event("openat", container=True)]
    run_engine(events, [by_name, any_name, container_only, host_any, other_source])
    assert by_name.seen == ["openat", "openat"]
    assert any_name.seen == ["openat", "close", "openat"]
    assert container_only.seen == ["openat"]
    assert host_any.seen == ["openat", "close"]
    assert other_source.seen == []


def test_overlapping_selectors_deliver_an_event_once() -> None:
    sig = Recorder("A", select("openat"), select("openat", origin="host"), select("*"))
    run_engine([make_event("openat")], [sig])
    assert sig.seen == ["openat"]


def test_container_init_origin() -> None:
    sig = Recorder("A", select("openat", origin="container-init"))
    starting = Event({"eventName": "openat", "container": {"id": "abc"}})
    run_engine([starting, make_event("openat"), make_event("openat", container=True)], [sig])
    assert sig.seen == ["openat"]


def test_data_filters_select_events_by_argument() -> None:
    prefix = Recorder("A", select("security_file_open", pathname="/etc/*"))
    suffix_or_exact = Recorder("B", select("security_file_open", pathname=["*/mem", "/proc/kcore"]))
    both = Recorder("C", select("security_file_open", pathname="*shadow*", syscall_pathname="/etc/*"))
    paths = ["/etc/passwd", "/proc/12/mem", "/proc/kcore", "/usr/lib/libc.so", "/etc/gshadow"]
    events = [make_event("security_file_open", {"pathname": p, "syscall_pathname": p}) for p in paths]
    events.append(make_event("security_file_open", {"pathname": 5}))  # a non-string never matches
    run_engine(events, [prefix, suffix_or_exact, both])
    assert len(prefix.seen) == 2 and len(suffix_or_exact.seen) == 2 and len(both.seen) == 1


def test_union_gate_is_sound_and_rejects_the_rest() -> None:
    selectors = [
        [select("x", pathname="/etc/*")],
        [select("x", pathname="*/mem", flags="*")],
        [select("x", new_path="/a")],
    ]
    gate = union_gate(selectors)
    assert gate is not None
    assert gate({"pathname": "/etc/shadow"}) and gate({"pathname": "/proc/1/mem"}) and gate({"new_path": "/a"})
    assert not gate({"pathname": "/usr/lib/x.so", "new_path": "/b"})
    assert union_gate([[select("x", pathname="/etc/*")], [select("x")]]) is None  # someone takes everything


@pytest.mark.parametrize("pattern", ["/a*b", "*a*b", "a**"])
def test_unsupported_patterns_are_rejected(pattern: str) -> None:
    with pytest.raises(SelectorError, match="unsupported filter pattern"):
        ArgPattern.parse(pattern)


def test_selector_validation() -> None:
    with pytest.raises(SelectorError, match="unknown origin"):
        select("openat", origin="vm")
    with pytest.raises(SelectorError, match="need an event name"):
        select("*", pathname="/x")


def test_a_failing_signature_is_logged_counted_and_does_not_stop_others(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Signature):
        metadata = SignatureMetadata(id="BROKEN-1", name="broken")
        selected_events = [select("openat")]

        def on_event(self, event: Event) -> None:
            event.int_arg("missing")

    healthy = Recorder("OK-1", select("openat"))
    errors: list[tuple[str, str]] = []
    events = [Event({"eventName": "openat"}, where="in.json", line=n) for n in range(1, 9)]
    findings: list[Finding] = []
    engine = Engine(
        [Broken(), healthy],
        findings.append,
        on_error=lambda loaded, event, exc: errors.append((loaded.metadata.id, type(exc).__name__)),
    )
    for event in events:
        engine.dispatch(event)
    engine.complete()
    assert len(findings) == 8 and healthy.seen == ["openat"] * 8
    assert engine.stats.errors_by_signature == {"BROKEN-1": 8}
    assert errors == [("BROKEN-1", "ArgumentError")] * 8
    assert "signature BROKEN-1 failed on openat event at in.json:1: ArgumentError" in caplog.text
    assert caplog.text.count("signature BROKEN-1 failed") == 5  # then only counted
    assert "further errors of this signature are only counted" in caplog.text


def test_a_signature_whose_init_fails_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    class BadInit(Recorder):
        def init(self, ctx: Any) -> None:
            raise RuntimeError("no config")

    bad, good = BadInit("BAD-1", select("openat")), Recorder("OK-1", select("openat"))
    engine = Engine([bad, good], print)
    engine.dispatch(make_event("openat"))
    assert [s.metadata.id for s in engine.signatures] == ["OK-1"] and bad.seen == []
    assert "BAD-1 not loaded: init failed: RuntimeError: no config" in caplog.text


def test_duplicate_ids_are_an_error() -> None:
    with pytest.raises(DuplicateSignatureError, match="duplicate signature ID 'X-1'"):
        Engine([Recorder("X-1", select("openat")), Recorder("X-1", select("close"))], print)


def test_signatures_without_metadata_or_selectors_are_rejected() -> None:
    class NoMeta(Signature):
        selected_events = [select("openat")]

    class NoEvents(Signature):
        metadata = SignatureMetadata(id="N-1", name="n")

    with pytest.raises(SignatureDefinitionError, match="no SignatureMetadata"):
        Engine([NoMeta()], print)
    with pytest.raises(SignatureDefinitionError, match="selects no events"):
        Engine([NoEvents()], print)


def test_source_complete_then_close_at_the_end() -> None:
    log: list[str] = []

    class Logged(Recorder):
        def on_signal(self, signal: Any) -> None:
            log.append(f"{self.metadata.id} signal {signal.source}")

        def close(self) -> None:
            log.append(f"{self.metadata.id} close")

    first = Logged("A", select("openat"), select("alert", source="other"))
    second = Logged("B", select("openat"))
    run_engine([], [first, second])
    # every signature hears the end of its sources before any is closed, as in Tracee
    assert log == ["A signal tracee", "A signal other", "B signal tracee", "A close", "B close"]


def test_signatures_can_consume_other_signatures_events() -> None:
    first = Recorder("FIRST-1", select("openat"))  # event_name "first-1"
    second = Recorder("SECOND-1", select("first-1"))
    findings = run_engine([make_event("openat", {"pathname": "/x"}, processName="curl")], [first, second])
    assert [f.sig_metadata.id for f in findings] == ["FIRST-1", "SECOND-1"]
    derived = findings[1].event
    assert derived.name == "first-1" and derived.process_name == "curl"
    assert derived.event_id >= 6000
    assert derived.arg("n") == 1
    assert derived.arg("detectedFrom")["name"] == "openat"
    assert derived.raw["metadata"]["Properties"]["signatureID"] == "FIRST-1"
    lonely = Recorder("SECOND-1", select("first-1"))
    Engine([Recorder("FIRST-1", select("openat")), lonely], print, derive_events=False).dispatch(make_event("openat"))
    assert lonely.seen == []


def test_function_form_return_values() -> None:
    @signature(id="F-1", name="f", events=["openat"], severity=2)
    def f(event: Event) -> Any:
        """Returns what the pathname asks for."""
        return {"true": True, "false": False, "none": None, "data": {"k": "v"}}[event.str_arg("pathname")]

    events = [make_event("openat", {"pathname": p}) for p in ("true", "false", "none", "data")]
    findings = run_engine(events, [f()])
    assert [x.data for x in findings] == [None, {"k": "v"}]
    meta = findings[0].sig_metadata
    assert (meta.event_name, meta.description, meta.severity) == ("f", "Returns what the pathname asks for.", 2)

    @signature(id="F-2", name="g", events=["openat"])
    def g(event: Event) -> Any:
        return "yes"

    run = run_engine([make_event("openat")], [g()], raise_errors=False)
    assert run.stats.errors_by_signature == {"F-2": 1}


def test_finding_rawjson_shape() -> None:
    findings = run_engine([make_event("openat")], [Recorder("A", select("openat"))])
    body = findings[0].to_dict()
    assert list(body) == ["Data", "Context", "SigMetadata"]
    assert body["Context"]["eventName"] == "openat" and body["SigMetadata"]["ID"] == "A"


def test_malformed_args_surface_before_any_signature_sees_the_event(caplog: pytest.LogCaptureFixture) -> None:
    from pytracee.engine import MalformedEventError

    sig = Recorder("A", select("openat"))
    engine = Engine([sig], print)
    with pytest.raises(MalformedEventError):
        engine.dispatch(Event({"eventName": "openat", "args": [{"value": 1}]}))
    assert sig.seen == []
    assert "failed" not in caplog.text  # an input problem, not a signature's
