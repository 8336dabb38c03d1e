"""Event sources (engine/sources.py): the reader, the live source and plain iterables, read the same way."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest
from pytracee.collector.filters import parse_selection
from pytracee.collector.printers import EventPrinter, parse_output_options
from pytracee.collector.source import LEFT, LOST, LiveSource
from pytracee.engine import Event
from pytracee.engine.errors import ExitStatus
from pytracee.engine.reader import EventReader
from pytracee.engine.session import Session, SessionConfig
from pytracee.engine.sources import EventSource, IterableSource, SourceStats, as_source

MALFORMED_ARGS = {"eventName": "ptrace", "args": [{"value": 0}]}


class FakeCollector:
    """Hands out prepared batches as Collector.poll does; counts what is left at the stop."""

    def __init__(self, batches: list[list[dict[str, Any]]], left: int = 0, lost: int = 0) -> None:
        self.batches = batches
        self.left = left
        self.lost = lost
        self.lost_reason = "the ring buffer was full"
        self.truncated = 0
        self.malformed = 0
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def poll(self, timeout_ms: int, max_events: int | None = None) -> list[dict[str, Any]]:
        return self.batches.pop(0) if self.batches else []

    def detach(self) -> None:
        self.calls.append("detach")

    def discard(self) -> int:
        self.calls.append("discard")
        return self.left

    def stop(self) -> None:
        self.calls.append("stop")


def live(name: str, pid: int = 1) -> dict[str, Any]:
    return {"eventName": name, "hostProcessId": pid, "args": []}


@pytest.fixture
def session() -> Session:
    session = Session(SessionConfig(load_installed_plugins=False))
    session.load()
    return session


def test_every_source_is_an_event_source(tmp_path: Any) -> None:
    collector = FakeCollector([])
    for source in (EventReader([tmp_path / "x"]), IterableSource([]), LiveSource(collector, parse_selection())):  # type: ignore[arg-type]
        assert isinstance(source, EventSource)
    events = [Event(live("ptrace"))]
    assert isinstance(as_source(events), IterableSource)


def test_stats_describe_what_was_read() -> None:
    stats = SourceStats(3)
    assert stats.describe() == "3 events read, 0 skipped"
    stats.skipped_by_reason.update({"unknown event": 1, "invalid JSON": 2})
    assert stats.describe() == "3 events read, 3 skipped (invalid JSON: 2, unknown event: 1)"


def test_a_malformed_event_from_any_source_is_skipped_and_the_run_goes_on(session: Session) -> None:
    source = IterableSource([Event(MALFORMED_ARGS), Event({"eventName": "ptrace", "args": []})])
    assert session.run(source) == ExitStatus.OK
    assert (source.stats.events, dict(source.stats.skipped_by_reason)) == (1, {"malformed args": 1})
    assert session.summary().startswith("1 events read, 1 skipped (malformed args: 1); 0 findings")


def test_live_source_polls_prints_and_counts(session: Session) -> None:
    collector = FakeCollector(
        [[live("execve"), live("openat"), live("openat", os.getpid())], [MALFORMED_ARGS | {"hostProcessId": 1}]], lost=2
    )
    stream = io.StringIO()
    printer = EventPrinter(parse_output_options(["json"]), stream)
    source = LiveSource(collector, parse_selection(), printer, {"openat"})  # type: ignore[arg-type]
    source.start()
    source.request_stop()  # drains what the (fake) kernel buffer holds, then ends
    assert session.run(source) == ExitStatus.OK
    source.close()
    source.close()
    assert collector.calls == ["start", "detach", "discard", "stop"]
    assert stream.getvalue().count("\n") == 1  # tracee's own event is left out
    assert source.stats.skipped_by_reason == {LOST: 2, "malformed args": 1}
    assert source.summary() == (
        "2 events traced, 1 printed, 2 lost (the ring buffer was full), 1 skipped (malformed args: 1)"
    )
    assert source.incomplete


def test_live_source_counts_what_is_left_at_the_stop() -> None:
    drained: list[bool] = []
    collector = FakeCollector([[live("execve")]] * 3, left=5)
    source = LiveSource(collector, parse_selection(), on_drained=lambda: drained.append(True), drain_seconds=-1)  # type: ignore[arg-type]
    source.request_stop()
    assert list(source) == [] and drained == [True]  # past the deadline: the batch is counted as left
    source.close()
    assert source.stats.skipped_by_reason == {LEFT: 6}
    assert source.summary() == "0 events traced, 0 printed, 0 lost, 6 left unread in the kernel buffer at the stop"


def test_exit_statuses() -> None:
    assert [int(s) for s in ExitStatus] == [0, 1, 2, 130]
