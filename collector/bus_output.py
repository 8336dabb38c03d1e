"""``tracee --output nats://HOST:PORT/SUBJECT``: publish the traced events to JetStream.

Each event is published as its ``trace.Event`` JSON (what ``-o json`` prints) to
``SUBJECT.<host>`` (``tracee.events.web-1``; ``?host=NAME`` overrides the host name),
with a ``Nats-Msg-Id`` unique to this run (host, process, start time, sequence) so a
batch published again after a reconnection is stored once. Publishing is bounded
(``?buffer=N``, 10000 events): tracing never waits for the bus, and events dropped or
not stored are counted and reported at the end (``N events published, ...``) and make
the exit status 1.

When the subject is captured by no stream yet, the partitioned events stream is created
(``?stream=NAME``, default ``TRACEE_EVENTS``, with ``?partitions=N``, default 8; see
``pytracee.engine.bus.partitions``). Other ``--output`` values (``json``, ``table``...)
still print locally; with only ``nats://`` outputs, nothing is printed. The NATS client
(asyncio) is imported when such an output is made, not when ``tracee`` starts.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pytracee.engine.bus.address import BusAddress, check_name, check_subject
from pytracee.engine.bus.credentials import BusCredentials, BusError
from pytracee.engine.safetext import json_line
from pytracee.engine.schema import full_event

from .printers import EventPrinter, OutputError, OutputSpec

if TYPE_CHECKING:
    from pytracee.engine.bus.connection import BusConnection
    from pytracee.engine.bus.publisher import JetStreamPublisher

__all__ = ["BusEventOutput", "split_bus_outputs"]

log = logging.getLogger("pytracee.collector")

QUERY_KEYS = ("host", "buffer", "stream", "partitions", "drain")


def split_bus_outputs(values: list[str]) -> tuple[list[str], list[str]]:
    """``--output`` values split into ``nats://`` addresses and the others."""
    from pytracee.engine.bus.address import is_bus_url

    bus = [v for v in values if is_bus_url(v)]
    return bus, [v for v in values if not is_bus_url(v)]


class BusEventOutput(EventPrinter):
    """Prints events as :class:`EventPrinter` does (``spec``) and publishes them to JetStream.

    :raises OutputError: a bad address, or no server answering.
    """

    bus: BusConnection
    publisher: JetStreamPublisher

    def __init__(self, spec: OutputSpec, url: str, credentials: BusCredentials) -> None:
        # The NATS client runs on asyncio: imported here, so that other outputs do not load it.
        from pytracee.engine.bus.connection import BusConnection
        from pytracee.engine.bus.partitions import (
            DEFAULT_EVENT_STREAM,
            DEFAULT_PARTITIONS,
            ensure_event_stream,
            find_stream,
        )
        from pytracee.engine.bus.publisher import DEFAULT_BUFFER, JetStreamPublisher

        try:
            address = BusAddress.parse(url, "--output")
            address.check_keys(QUERY_KEYS, "--output")
            prefix = check_subject(address.path, "subject")
            stream = check_name(address.query.get("stream", DEFAULT_EVENT_STREAM), "stream")
            partitions = int(address.number("partitions", DEFAULT_PARTITIONS, 1, 1024))
            buffer = int(address.number("buffer", DEFAULT_BUFFER, 1, 10_000_000))
            self.drain = address.number("drain", 10, 0, 3600)
        except ValueError as exc:
            raise OutputError(str(exc)) from None
        super().__init__(spec)
        self.address = address
        self.subject = f"{prefix}.{address.host_token()}"
        self.bus = BusConnection(address, credentials, name=f"tracee {self.subject}")
        try:
            self.bus.connect()
            if self.bus.call(find_stream(self.bus, self.subject), 10) is None:
                found, _ = self.bus.call(ensure_event_stream(self.bus, stream, prefix, partitions), 10)
                if found != prefix:  # the stream exists for other subjects: nothing would be stored
                    raise BusError(
                        f"{address.display}: stream {stream} captures {found}.*, not {prefix}.*: "
                        f"publish to {found} or choose another stream (?stream=NAME)"
                    )
        except BusError as exc:
            self.bus.close()
            raise OutputError(f"--output {exc}") from None
        self.publisher = JetStreamPublisher(self.bus, "events", buffer)
        self.publisher.start()
        self._id_prefix = f"{address.host_token()}-{os.getpid()}-{time.time_ns()}-"
        self._sequence = 0
        self._closed = False

    def print_many(self, events: Iterable[Mapping[str, Any] | bytes]) -> None:
        """Print the events locally (if asked) and publish them (dicts, or the JSON lines
        of :attr:`takes_json_lines`)."""
        events = list(events)
        if self.spec.format != "none":
            super().print_many(events)
        submit, subject = self.publisher.submit, self.subject
        for raw in events:
            self._sequence += 1
            if isinstance(raw, bytes):  # the complete event's JSON line already
                payload = raw.rstrip(b"\n")
            else:
                payload = json_line(full_event(raw)).encode("utf-8", "backslashreplace")
            submit(subject, payload, f"{self._id_prefix}{self._sequence}")

    @property
    def lost(self) -> int:
        """Events not stored: dropped or failed."""
        return self.publisher.stats.lost

    def close(self) -> None:
        """Publish what waits (``?drain=`` seconds at most), report the counts, disconnect."""
        if self._closed:
            return
        self._closed = True
        self.publisher.close(self.drain)
        stats = self.publisher.stats
        (log.warning if stats.lost else log.info)("%s: %s", self.address.display, stats.describe("events"))
        self.bus.close()
        super().close()
