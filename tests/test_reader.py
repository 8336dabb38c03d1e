"""Reading events: formats, sources, and bad input (reported with file and line, counted, skipped)."""

from __future__ import annotations

import gzip
import io
import json
import logging
from pathlib import Path

import pytest
from conftest import FIXTURES, fixture_lines
from pytracee.engine.catalogue import is_known_event
from pytracee.engine.reader import EventReader, InputError

DOC_EVENTS = FIXTURES / "events_v0.24.1_docs.jsonl"


def read(*sources: str | Path, **kwargs) -> tuple[list, EventReader]:
    reader = EventReader(list(sources), **kwargs)
    return list(reader), reader


def test_json_lines_json_array_and_gzip_give_the_same_events(tmp_path: Path) -> None:
    expected = fixture_lines("events_v0.24.1_docs.jsonl")
    array = tmp_path / "events.json"
    array.write_text(json.dumps(expected, indent=2))
    compressed = tmp_path / "events.jsonl.gz"
    compressed.write_bytes(gzip.compress(DOC_EVENTS.read_bytes()))
    compressed_array = tmp_path / "events.bin"  # detected by content, not by name
    compressed_array.write_bytes(gzip.compress(array.read_bytes()))
    for source in (DOC_EVENTS, array, compressed, compressed_array):
        events, reader = read(source)
        assert [e.raw for e in events] == expected, source
        assert reader.stats.events == len(expected) and reader.stats.skipped == 0


def test_locations_are_file_and_line(tmp_path: Path) -> None:
    events, _ = read(DOC_EVENTS)
    assert events[2].location == f"{DOC_EVENTS}:3"
    array = tmp_path / "a.json"
    array.write_text('[\n  {"eventName": "openat"},\n\n  {"eventName": "close"}\n]')
    events, _ = read(array)
    assert [e.location for e in events] == [f"{array}:2", f"{array}:4"]


def test_stdin_and_several_sources_in_order(tmp_path: Path) -> None:
    other = tmp_path / "more.jsonl"
    other.write_text('{"eventName": "close"}\n')
    stdin = io.BytesIO(b'{"eventName": "openat"}\n')
    events, _ = read("-", other, stdin=stdin)
    assert [e.name for e in events] == ["openat", "close"]
    assert events[0].location == "<stdin>:1"


BAD_LINES = [
    ('{"eventName": "openat"', "invalid JSON"),
    ("[1]", "not an event"),  # a line opening an array: its elements are records
    ('{"eventId": "257"}', "missing field"),
    ('{"eventName": 7}', "missing field"),
    ('{"eventName": "openat", "processId": "12"}', "wrong type"),
    ('{"eventName": "openat", "args": {"pathname": "/x"}}', "wrong type"),
    ('{"eventName": "openat", "eventId": "x1"}', "wrong type"),
    ('{"eventName": "openat", "contextFlags": []}', "wrong type"),
    ('{"eventName": "no_such_event"}', "unknown event"),
    ('{"timestamp": "2024-01-01T00:00:00Z", "id": 60, "name": "execve"}', "unsupported schema"),
]


def test_bad_records_are_reported_counted_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "mixed.jsonl"
    good = '{"eventName": "openat"}'
    path.write_text("\n".join([good] + [line for line, _ in BAD_LINES] + ["", good]) + "\n")
    with caplog.at_level(logging.WARNING, logger="pytracee.input"):
        events, reader = read(path, is_known_event=is_known_event)
    assert [e.location for e in events] == [f"{path}:1", f"{path}:{len(BAD_LINES) + 3}"]
    assert reader.stats.skipped == len(BAD_LINES)
    for index, (_, reason) in enumerate(BAD_LINES, start=2):
        assert f"{path}:{index}: {reason}:" in caplog.text
    assert sum(reader.stats.skipped_by_reason.values()) == len(BAD_LINES)


def test_strict_stops_at_the_first_bad_record(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"eventName": "openat"}\n{oops\n{"eventName": "close"}\n')
    with pytest.raises(InputError, match=rf"{path}:2: invalid JSON"):
        read(path, strict=True)


def test_lines_over_the_limit_are_skipped_unless_the_limit_is_raised(tmp_path: Path) -> None:
    big = {"eventName": "execve", "args": [{"name": "argv", "value": ["x" * 70_000]}]}
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps(big) + '\n{"eventName": "close"}\n')
    events, reader = read(path)
    assert [e.name for e in events] == ["close"]
    assert reader.stats.skipped_by_reason == {"line too long": 1}
    events, reader = read(path, max_line_size=0)
    assert [e.name for e in events] == ["execve", "close"]


def test_truncated_gzip_keeps_what_came_before_and_reports_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = DOC_EVENTS.read_bytes() * 40
    whole = gzip.compress(data)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) - 300])
    events, reader = read(path)
    total = data.count(b"\n")
    assert total - 20 < len(events) < total
    assert reader.stats.skipped_by_reason == {"truncated input": 1}
    assert "gzip stream ends early" in caplog.text


def test_array_with_a_syntax_error_reports_where_and_stops(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[{"eventName": "openat"},\n 5,\n {"eventName": "close"} {"eventName": "read"}]')
    events, reader = read(path)
    assert [e.name for e in events] == ["openat", "close"]
    assert reader.stats.skipped_by_reason == {"not an event": 1, "invalid JSON": 1}
    assert f"{path}:3: invalid JSON: expected ',' or ']'" in caplog.text


def test_unopenable_input_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot open input .*nope.json"):
        read(tmp_path / "nope.json")


def test_v1beta1_events_are_recognised_and_rejected_clearly(caplog: pytest.LogCaptureFixture) -> None:
    events, reader = read(FIXTURES / "replay_pr5359" / "mixed_events.json")
    assert events == []
    assert reader.stats.skipped_by_reason["unsupported schema"] == reader.stats.skipped > 0
    assert "looks like a v1beta1 event" in caplog.text


def test_reports_are_capped_per_source_but_everything_is_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "noise.jsonl"
    path.write_text("{bad\n" * 50)
    with caplog.at_level(logging.WARNING, logger="pytracee.input"):
        _, reader = read(path)
    assert reader.stats.skipped == 50
    assert caplog.text.count("skipped record") == 20
    assert "further bad records are counted but not shown" in caplog.text


def test_json_nulls_count_as_absent_fields(tmp_path: Path) -> None:
    path = tmp_path / "nulls.jsonl"
    path.write_text('{"eventName": "openat", "processName": null, "args": null, "container": null}\n')
    events, reader = read(path)
    assert len(events) == 1 and reader.stats.skipped == 0
    assert events[0].container_id == "" and dict(events[0].args) == {}
    assert events[0].process_name == "" and events[0].to_dict()["processName"] == ""  # Go's zero value


def test_stdin_can_be_read_only_once() -> None:
    with pytest.raises(ValueError, match="read only once"):
        EventReader(["-", "-"])


def test_records_whose_args_prove_malformed_are_counted_once(tmp_path: Path) -> None:
    from pytracee.engine.session import Session, SessionConfig

    path = tmp_path / "args.jsonl"
    path.write_text('{"eventName": "ptrace", "args": [{"value": 0}]}\n{"eventName": "ptrace", "args": []}\n')
    session = Session(SessionConfig(load_installed_plugins=False))
    session.load()
    reader = EventReader([path], is_known_event=session.is_known_event)
    session.run(reader)
    assert (reader.stats.events, reader.stats.skipped_by_reason) == (1, {"malformed args": 1})
