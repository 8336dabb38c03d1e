"""The compiled checks of decoded events (``engine/_recscan_decoded.h``) against the Python code
they stand for: ``plain_event`` against the reader's validation, ``args_of`` against
``Event.args``. Each may say "not sure"; neither may ever answer otherwise than the Python code."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from pytracee.engine import recscan
from pytracee.engine.errors import MalformedEventError
from pytracee.engine.events import Event
from pytracee.engine.reader import EventReader
from record_strategies import args_lists, events

pytestmark = pytest.mark.skipif(not recscan.COMPILED, reason="the compiled scanner was not built")

_ERROR = object()


def _python_check(raw: Any) -> tuple[str, str] | None:
    """The reader's validation of ``raw``, which must leave it as it is (it deletes null fields)."""
    checked = copy.deepcopy(raw)
    problem = EventReader([], is_known_event=None)._check(checked)
    return problem if checked == raw else ("changed", repr(checked))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(events())
@example({"eventName": "x", "eventId": "\u00b2"})  # a digit str.isdigit() takes, but not ASCII
@example({"eventName": "x", "eventId": True})
@example({"eventName": "x", "timestamp": None})  # accepted, but read as absent: not plain
@example({"eventName": "x", "timestamp": "1"})
@example({"eventName": "x", "processName": 1})
@example({"eventName": "x", "container": []})
@example({"eventName": "x", "args": {}})
@example({"eventName": ""})
def test_the_compiled_check_passes_only_events_the_reader_accepts(raw: dict[str, Any]) -> None:
    assert recscan.plain_event is not None
    if recscan.plain_event(copy.deepcopy(raw)):
        assert _python_check(raw) is None, raw


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(events(odd=False))
def test_events_as_tracee_writes_them_pass_the_compiled_check(raw: dict[str, Any]) -> None:
    assert recscan.plain_event is not None
    assert _python_check(raw) is None
    assert recscan.plain_event(raw), raw


def test_the_compiled_check_passes_a_real_event() -> None:
    assert recscan.plain_event is not None
    raw = {"eventName": "execve", "eventId": "59", "timestamp": 1, "processName": "sh", "container": {}, "args": []}
    assert recscan.plain_event(raw)
    assert not recscan.plain_event({**raw, "processName": 5})
    assert not recscan.plain_event([raw])

    class Key(str):
        """A str subclass, equal to a field's name (orjson makes none): not sure."""

    assert not recscan.plain_event({**raw, Key("timestamp"): "not an int"})


def _dictcomp(args: Any) -> Any:
    try:
        return {arg["name"]: arg.get("value") for arg in args}
    except (TypeError, KeyError, AttributeError):
        return _ERROR


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(args_lists(odd=True))
@example([{"name": "a", "value": 1}, {"name": "a", "value": 2}, {"name": "b"}])  # the last of a name wins
@example([{"name": 5, "value": 1}])  # a name that is not a str: Event.args takes it, args_of is not sure
@example([{"value": 1}])
@example([1])
def test_arguments_read_in_c_are_those_event_args_reads(args: Any) -> None:
    assert recscan.args_of is not None
    expected = _dictcomp(args)
    got = recscan.args_of(args)
    if got is None:  # not sure: only when some element is not a dict with a str name
        assert type(args) is not list or not all(type(a) is dict and type(a.get("name")) is str for a in args)
    else:
        assert expected is not _ERROR
        assert list(got.items()) == list(expected.items())


def test_event_args_reports_bad_arguments_as_before() -> None:
    event = Event({"eventName": "execve", "args": [{"name": "pathname", "value": "/bin/sh"}, 7]})
    with pytest.raises(MalformedEventError, match=r"args\[1\] must be an object"):
        event.args  # noqa: B018
    assert Event({"eventName": "x", "args": [{"name": 5, "value": 1}]}).args == {5: 1}
