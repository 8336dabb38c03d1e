"""The compiled ``split_args`` (engine/_recscan_split.h) against the full decoding.

``split_args(text)`` reads every argument of a record in place and hands back the rest of the
record's text, its argument array replaced by ``null``, for ``orjson`` to decode (the reader's
path for the events signatures read whole). Property, for any bytes: whenever it answers and
``orjson`` decodes that ``head``, the text is valid JSON whose decoding is exactly ``head``'s
object with ``"args"`` the array at ``text[start:end]`` (same keys, same order, same typed
values), and the arguments are exactly :attr:`Event.args <pytracee.engine.events.Event.args>`
of it. Real Tracee records (v0.8, v0.24.1, Tracee's signature tests) are always answered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pytracee.engine import recscan
from pytracee.engine.errors import MalformedEventError
from pytracee.engine.events import Event
from pytracee.engine.reader import EventReader
from record_strategies import FIXTURES, dump, events, mutated, signature_test_events, tracee_recordings
from test_fuzz_record_extract import records, typed

pytestmark = pytest.mark.skipif(not recscan.COMPILED, reason="the compiled scanner was not built")


def check(text: bytes) -> Any:
    """The property; returns ``split_args``'s answer when ``orjson`` decodes its head, else None."""
    assert recscan.split_args is not None
    parts = recscan.split_args(text)
    if parts is None:
        return None
    args, head, start, end = parts
    assert head == text[:start] + b"null" + text[end:]
    try:
        head_raw = orjson.loads(head)
    except orjson.JSONDecodeError:
        return None  # the reader then decodes the record whole
    raw = orjson.loads(text)  # the text is valid JSON: this must not raise
    assert type(raw) is dict and type(head_raw) is dict
    whole = {**head_raw, "args": orjson.loads(text[start:end])}
    assert list(whole) == list(raw), text
    assert typed(whole) == typed(raw), text
    try:
        expected = Event(raw).args
    except MalformedEventError:
        raise AssertionError(f"split_args read arguments the event cannot: {text!r} -> {args!r}") from None
    assert list(args) == list(expected), text
    assert typed(args) == typed(expected), text
    return parts


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated(), records()))
@example(b'{"eventName":"x","args":[{"name":"a","value":1},{"name":"a","value":2},{"name":"b"}]}')
@example(b'{"eventName":"x","args":[{"name":"a","\\u0076alue":"/etc/shadow"}]}')
@example(b'{"eventName":"x","args":[{"name":"\\u0061","value":"/etc/shadow"}]}')
@example(b'{"eventName":"x","args":[{"name":"a","value":"/x","value":"/etc/shadow"}]}')
@example(b'{"eventName":"x","args":[{"name":"a","name":"b","value":"/etc/shadow"}]}')
@example(b'{"eventName":"x","args":[{"value":1}]}')
@example(b'{"eventName":"x","args":[7]}')
@example(b'{"eventName":"x","args":[],"args":[{"name":"a","value":1}]}')  # the last "args" wins
@example(b'{"eventName":"x","args":[{"name":"a","value":1}],"\\u0061rgs":[]}')  # an escaped key after it
@example(b'{"eventName":"x","s":"\\"args\\":[","args":[]}')  # the key's bytes in a string
@example(b'{"eventName":"x","s":"\\\\","args":[]}')  # an escaped backslash before the real key
@example(b'{"eventName":"x","k":{"args":[{"name":"a","value":1}]},"args":[]}')  # a nested "args" first
@example(b'{"eventName":"x","args":[{"name":"a","value":{"args":[]}}]}')
@example(b'{"eventName":"x","args":[{"name":"a","value":1}]} ')
@example(b'{"eventName":"x","args":[{"name":"a","value":1}]}x')
@example(b'["args":[]}')
def test_split_records_are_exactly_the_full_decoding(text: bytes) -> None:
    check(text)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(events(), st.data())
def test_odd_records_split_as_the_full_decoding(raw: dict[str, Any], data: st.DataObject) -> None:
    check(dump(data.draw, raw))


@given(st.binary(max_size=256))
def test_any_bytes_give_an_exact_answer_or_none(text: bytes) -> None:
    check(text)


def _plain(value: Any) -> bool:
    """A value written as split_args reads it: a string without escapes, an int64, a literal."""
    if type(value) is str:
        return value.isascii() and json.dumps(value)[1:-1] == value
    return value is None or type(value) is bool or (type(value) is int and -(2**63) <= value < 2**63)


def _readable(value: Any) -> bool:
    if type(value) is list:
        return all(type(item) is str and _plain(item) for item in value)
    if type(value) is dict:
        return all(_plain(key) and _plain(item) for key, item in value.items())
    return _plain(value)


def test_tracee_records_are_split() -> None:
    """Real Tracee output and the events of Tracee's signature tests (sockaddr objects, argv lists ...):
    every record whose arguments hold what split_args reads is split, exactly."""
    lines = [line for line in tracee_recordings() if b'"args":[' in line]
    lines += [orjson.dumps(raw) for raw in signature_test_events() if raw.get("args")]
    readable = [line for line in lines if all(_readable(arg.get("value")) for arg in orjson.loads(line)["args"])]
    assert len(readable) > 100
    assert all(check(line) is not None for line in readable)
    assert all(check(line) is None for line in lines if line not in readable)  # DNS answers, escapes ...


def test_what_is_not_split() -> None:
    split = recscan.split_args
    assert split is not None
    assert split(b'{"eventName":"x"}') is None  # no arguments
    assert split(b'{"eventName":"x","args":[{"name":"a","value":1.5}]}') is None  # a float: not read here
    assert split(b'{"eventName":"x","args":[{"name":"a","value":"\\n"}]}') is None  # an escape
    assert split(b'{"eventName":"x","args":[],"syscall":"x"}') is None  # not the last member
    assert split(b'{"eventName":"x","args":' + b"[" * 40 + b"]" * 40 + b"}") is None  # too deep
    with pytest.raises(TypeError):
        split("{}")  # type: ignore[arg-type]


def test_the_reader_decodes_the_arguments_only_when_raw_is_read(tmp_path: Path) -> None:
    """The events the reader delivers hold their arguments read in place; ``raw`` gets its
    ``args`` list on first read, as the record has it, and stays the same object."""
    line = (FIXTURES / "events_v0.24.1_docs.jsonl").read_bytes().splitlines()
    record = next(text for text in line if b'"eventName":"execve"' in text)
    path = tmp_path / "events.jsonl"
    path.write_bytes(record + b"\n")
    (event,) = EventReader([str(path)], wanted_events={"execve"})
    assert event.fields["args"] is None  # not decoded yet
    assert event.args == Event(orjson.loads(record)).args
    assert event.str_arg("pathname") and event.args["argv"]
    raw = event.raw
    assert raw == orjson.loads(record) and list(raw) == list(orjson.loads(record))
    assert event.raw is raw and event.fields is raw
