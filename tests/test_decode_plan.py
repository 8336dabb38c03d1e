"""Records nobody wants are not decoded, yet every record is counted, and bad ones reported
with their reason and line exactly as when everything is decoded."""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pytracee.engine.catalogue import is_known_event
from pytracee.engine.findings import Finding
from pytracee.engine.reader import EventReader
from pytracee.engine.session import Session, SessionConfig, builtin_rule_languages

OPENAT = {"eventName": "openat", "processId": 7, "hostProcessId": 7, "args": [{"name": "pathname", "value": "/etc"}]}
FILE_OPEN = {
    "eventName": "security_file_open",
    "hostProcessId": 9,
    "args": [{"name": "pathname", "value": "/etc/ld.so.preload"}, {"name": "flags", "value": 65}],
}

#: Bad records of an event no signature selects (openat), each with the reason it must get.
BAD_UNWANTED = [
    ('{"eventName":"openat","args":[', "invalid JSON"),
    ('{"eventName":"openat","processId":"7"}', "wrong type"),
    ('{"eventName":"openat","args":{"pathname":"/x"}}', "wrong type"),
    ('{"eventName":"openat","eventId":"x1"}', "wrong type"),
    ('{"eventName":"openat","eventId":"\\u00b2"}', "wrong type"),  # a digit to str.isdigit(), not a number
    ('{"eventName":"openat","container":[]}', "wrong type"),
    ('{"eventName":"openat","args":[{"name":"pathname","value":"\\ud800"}]}', "invalid JSON"),
    ('{"eventName":"no_such_event"}', "unknown event"),
    ('{"eventName":""}', "missing field"),
    ('{"eventName":"openat","processId":18446744073709551616}', "wrong type"),
    ('["openat"]', "not an event"),
]


def _read(path: Path, **options: Any) -> tuple[list[dict[str, Any]], EventReader]:
    reader = EventReader([path], is_known_event=is_known_event, **options)
    return [event.raw for event in reader], reader


def test_events_nobody_wants_are_counted_but_not_delivered(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in [OPENAT, FILE_OPEN, OPENAT, OPENAT]))
    events, reader = _read(path, wanted_events={"security_file_open"})
    assert events == [FILE_OPEN]
    assert reader.stats.events == 4 and reader.stats.undecoded == 3 and not reader.stats.skipped


#: Valid records of an event no signature selects, odd only in their form (nulls, an escaped key, a
#: decoy name in a nested object): the envelope reader and the compiled scanner are not sure of them.
ODD_UNWANTED = [
    {**OPENAT, "container": None, "contextFlags": None},
    {**OPENAT, "processName": "caf\u00e9"},
    {**OPENAT, "kubernetes": {"eventName": "security_file_open"}},
]


@pytest.mark.parametrize("raw", ODD_UNWANTED)
def test_odd_records_nobody_wants_are_counted_like_the_others(tmp_path: Path, raw: dict[str, Any]) -> None:
    """Validated, then counted and not delivered, as a plain record of their event would be: what
    an observer (the process tree) sees does not depend on how a record is written, and a replay on
    several workers can leave such records to their owner."""
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps(raw) + "\n" + json.dumps(FILE_OPEN) + "\n")
    events, reader = _read(path, wanted_events={"security_file_open"})
    assert events == [FILE_OPEN]
    assert reader.stats.events == 2 and reader.stats.undecoded == 1 and not reader.stats.skipped
    everything, _ = _read(path)  # (wanting every event: delivered)
    assert len(everything) == 2


@pytest.mark.parametrize(("line", "reason"), BAD_UNWANTED)
def test_bad_records_of_unwanted_events_get_their_reason_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, line: str, reason: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(OPENAT) + "\n" + line + "\n" + json.dumps(FILE_OPEN) + "\n")
    results = []
    for wanted in (None, {"security_file_open"}):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="pytracee.input"):
            _, reader = _read(path, wanted_events=wanted)
        messages = [r.getMessage() for r in caplog.records]
        assert dict(reader.stats.skipped_by_reason) == {reason: 1}, (wanted, messages)
        assert reader.stats.events == 2
        assert any(f"{path}:2: {reason}" in m for m in messages), messages
        results.append(messages)
    assert results[0] == results[1]


def test_a_consumer_adds_the_events_it_needs(tmp_path: Path) -> None:
    """A process tree must see every fork, exec and exit although no signature selects forks."""
    fork = {"eventName": "sched_process_fork", "hostProcessId": 3, "args": [{"name": "child_pid", "value": 4}]}
    path = tmp_path / "fork.jsonl"
    path.write_text(json.dumps(fork) + "\n" + json.dumps(OPENAT) + "\n")
    no_tree = argparse.Namespace(proctree=["source=none"])  # the process tree consumes forks itself
    # (and the syscall context pairs openat with security_file_open)
    config = SessionConfig(load_installed_plugins=False, options=no_tree, disabled=["builtin-syscall-context"])
    session = Session(config)
    session.load()
    assert session.wanted_events is not None and "sched_process_fork" not in session.wanted_events
    reader = EventReader([path], wanted_events=session.wanted_events, admissions=session.admissions)
    session.wanted_events.add("sched_process_fork")  # added after the reader is made, before the run
    assert [event.name for event in reader] == ["sched_process_fork"]
    session.finish(session.run([]))


def test_admission_follows_the_signatures_origins_and_data_filters() -> None:
    session = Session(SessionConfig(load_installed_plugins=False))
    session.load()
    assert session.wanted_events is not None
    assert "security_file_open" not in session.wanted_events  # every signature filters its paths
    assert "sched_process_exec" in session.wanted_events  # PYT-1 takes them all
    assert "openat" in session.wanted_events  # the syscall context pairs each with its security_file_open
    assert "openat" not in session.admissions
    engine = session.engine
    assert engine is not None
    gate = engine.admission("security_file_open", "host")
    assert callable(gate)
    assert gate({"pathname": "/etc/ld.so.preload"}) and not gate({"pathname": "/usr/lib/libc.so.6"})
    assert engine.admission("security_sb_mount", "host") is False  # TRC-1014 watches containers only
    assert engine.admission("security_sb_mount", "container") is not False
    session.finish(session.run([]))
    without_context = Session(SessionConfig(load_installed_plugins=False, disabled=["builtin-syscall-context"]))
    without_context.load()
    assert without_context.wanted_events is not None and "openat" not in without_context.wanted_events
    without_context.finish(without_context.run([]))


def _replay(path: Path, plan: bool) -> tuple[Counter[str], int]:
    findings: list[Finding] = []
    session = Session(SessionConfig(load_installed_plugins=False))
    session.load()
    session.engine.on_finding = findings.append  # type: ignore[union-attr]
    reader = EventReader(
        [path],
        is_known_event=session.is_known_event,
        wanted_events=session.wanted_events if plan else None,
        admissions=session.admissions if plan else None,
    )
    session.run(reader)
    return Counter(f"{f.sig_metadata.id}@{f.event.location}" for f in findings), reader.stats.events


def test_signatures_get_the_same_events_with_the_plan(tmp_path: Path) -> None:
    """Attacks of every signature in a realistic stream: the same findings, at the same lines."""
    import sys

    benchmarks = str(Path(__file__).resolve().parent.parent / "benchmarks")
    sys.path.insert(0, benchmarks)
    try:
        from workload import write_events
    finally:
        sys.path.remove(benchmarks)
    path = tmp_path / "w.jsonl"
    stats = write_events(str(path), 20_000, seed=5)
    planned, read = _replay(path, plan=True)
    assert (planned, read) == _replay(path, plan=False)
    assert sum(planned.values()) == sum(stats.expected_findings.values())


@pytest.mark.parametrize(
    ("rules", "list_only", "languages"),
    [
        ([], False, ()),  # the default set: no rule file compiled, no Rego worker
        ([], True, ("cel", "rego")),  # --list shows them
        (["lang:cel"], False, ("cel",)),
        (["lang:rego,lang:python"], False, ("rego",)),
        (["TRC-2"], False, ("cel", "rego")),
        (["all"], False, ("cel", "rego")),
    ],
)
def test_builtin_rule_files_load_only_when_they_can_be_chosen(
    rules: list[str], list_only: bool, languages: tuple[str, ...]
) -> None:
    assert builtin_rule_languages(SessionConfig(rules=rules, list_only=list_only)) == languages


@pytest.mark.parametrize(
    "patterns",
    [["/etc/shadow"], ["/etc/*", "*/mem"], ["*docker.sock*", "*.so*", "/x"], ["*"], ["*/ld*", "*(a|b)*"]],
)
def test_compiled_patterns_match_as_the_patterns_do(patterns: list[str]) -> None:
    from pytracee.engine.selectors import ArgPattern

    pattern = ArgPattern.parse(patterns)
    matches = pattern.compile()
    values: list[Any] = ["/etc/shadow", "/etc/passwd", "/proc/1/mem", "/var/run/docker.sock", "/lib/x.so.6", "/x"]
    values += ["", "/xy", "/lib/ld-linux.so", "(a|b)", "a", None, 3, ["/etc/shadow"], "/etc/shadow\n"]
    assert [matches(v) for v in values] == [pattern.matches(v) for v in values]
    assert any(matches(v) for v in values)


def test_the_envelope_reads_the_arguments_filters_need_as_the_event_does() -> None:
    from pytracee.engine.envelope import read_envelope
    from pytracee.engine.events import Event

    record = {
        "eventName": "security_file_open",
        "args": [
            {"name": "pathname", "type": "const char*", "value": "/etc/\\u0073hadow \u00e9"},
            {"name": "flags", "value": 65},
            {"name": "dev"},
            {"name": "pathname", "value": "/tmp/last wins"},
            {"name": "argv", "value": ["a", {"b": None}]},
        ],
    }
    text = json.dumps(record).encode()
    head = read_envelope(json.dumps(record, ensure_ascii=True).encode())
    assert head is not None
    full = Event(json.loads(text)).args
    assert head.arg_values() == full
    assert head.arg_values({"pathname", "dev", "argv", "missing"}) == {k: full[k] for k in ("pathname", "dev", "argv")}


def test_an_argument_written_with_its_value_twice_is_read_as_the_event_reads_it() -> None:
    """JSON's last duplicate key wins in the full decoding: the envelope must not take the first."""
    from pytracee.engine.envelope import read_envelope
    from pytracee.engine.events import Event

    text = (
        b'{"eventName":"security_file_open","args":[{"name":"pathname","type":"const char*",'
        b'"value":"/tmp/harmless","value":"/etc/ld.so.preload"},{"name":"flags","type":"int","value":65}]}'
    )
    head = read_envelope(text)
    assert head is not None
    assert Event(json.loads(text)).args["pathname"] == "/etc/ld.so.preload"
    assert head.arg_values({"pathname"}) == {"pathname": "/etc/ld.so.preload"}
