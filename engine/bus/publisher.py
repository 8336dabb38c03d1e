"""Publishing to JetStream from synchronous code, bounded, in order, and counted.

:class:`JetStreamPublisher` takes messages on the main thread (:meth:`submit`,
which never waits for the network) and publishes them from the connection's event
loop, in batches, each message with a ``Nats-Msg-Id`` header:

* **bounded**: at most ``buffer`` messages wait (plus one batch in flight); a message
  submitted while the buffer is full is **dropped and counted**, so tracing and
  detection never wait for the bus;
* **confirmed**: a message counts as published when JetStream acknowledged storing
  it (a ``PubAck``); a batch is sent pipelined, then its acknowledgements awaited;
* **reconnects**: while the connection is down, nats-py reconnects and the batch is
  retried (every ``retry_wait`` seconds, for up to ``retry_for`` seconds) from the
  first unacknowledged message, in order; copies of messages that had been stored
  are dropped by the stream's duplicate window (same message id). What nats-py had
  buffered during the disconnection is sent when it reconnects, before the retry: the
  few messages in flight then may be stored out of order (each still once);
* **counted**: what was published, dropped (buffer full, or left at the end) and
  failed (not stored within ``retry_for``) is kept in :attr:`stats`, and the end of
  the run logs it; nothing is lost silently.

:meth:`flush` waits until everything submitted so far is settled (published or
failed), which lets a worker acknowledge its input only after its findings are stored.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Final

from ..output.sink import Throttle
from .connection import BusConnection, _describe

__all__ = ["DEFAULT_BUFFER", "JetStreamPublisher", "PublishStats", "publishers"]

log = logging.getLogger("pytracee.bus")

#: Messages waiting to be published at most (``buffer=`` in the address).
DEFAULT_BUFFER: Final = 10_000
#: Messages published before their acknowledgements are awaited.
BATCH: Final = 512
#: Seconds a JetStream acknowledgement may take.
ACK_TIMEOUT: Final = 5.0


@dataclass
class PublishStats:
    """What a publisher did with the messages it was given."""

    submitted: int = 0
    published: int = 0
    #: Already stored (the same message id within the duplicate window): not stored twice.
    duplicates: int = 0
    dropped_full: int = 0
    dropped_at_end: int = 0
    failed: int = 0
    #: Sent when the run ended, their acknowledgement not received: perhaps stored, counted as lost.
    unconfirmed: int = 0

    @property
    def lost(self) -> int:
        """Messages that were not (or not surely) stored: dropped, failed or unconfirmed."""
        return self.dropped_full + self.dropped_at_end + self.failed + self.unconfirmed

    def describe(self, what: str) -> str:
        """``"1200 events published, 0 dropped (buffer full), 0 dropped at the end, 0 failed"``."""
        text = (
            f"{self.published} {what} published, {self.dropped_full} dropped (buffer full), "
            f"{self.dropped_at_end} dropped at the end, {self.failed} failed"
        )
        if self.unconfirmed:
            text += f", {self.unconfirmed} unconfirmed (sent, no acknowledgement before the end)"
        if self.duplicates:
            text += f" ({self.duplicates} already stored)"
        return text


_LIVE: Final[weakref.WeakSet[JetStreamPublisher]] = weakref.WeakSet()


def publishers() -> list[JetStreamPublisher]:
    """The publishers of this process (for metrics), in no particular order."""
    return list(_LIVE)


@dataclass(slots=True)
class _Message:
    subject: str
    payload: bytes
    msg_id: str


class JetStreamPublisher:
    """Publishes messages to JetStream from a bounded buffer (see the module's description).

    :param bus: a connected :class:`BusConnection`.
    :param what: what the messages are, for messages (``"events"``, ``"findings"``).
    :param buffer: messages waiting at most; beyond, new ones are dropped and counted.
    :param retry_for: seconds a batch is retried while the server cannot store it.
    """

    def __init__(
        self,
        bus: BusConnection,
        what: str,
        buffer: int = DEFAULT_BUFFER,
        retry_for: float = 30.0,
        retry_wait: float = 0.5,
    ) -> None:
        self.bus = bus
        self.what = what
        self.buffer = buffer
        self.retry_for = retry_for
        self.retry_wait = retry_wait
        self.stats = PublishStats()
        self._pending: deque[_Message] = deque()
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._unsettled = 0  # submitted, neither published nor failed yet
        self._wake = asyncio.Event()
        self._closing = False
        self._task: concurrent.futures.Future[None] | None = None
        self._drops = Throttle(logging.WARNING, logger=log)
        self._failures = Throttle(logging.ERROR, logger=log)
        _LIVE.add(self)

    @property
    def queued(self) -> int:
        """Messages waiting to be published now."""
        return len(self._pending)

    def start(self) -> None:
        """Start the publishing task on the connection's loop."""
        self._task = asyncio.run_coroutine_threadsafe(self._run(), self.bus.loop)

    # --- the main thread ---

    def submit(self, subject: str, payload: bytes, msg_id: str) -> bool:
        """Queue one message; False when it was dropped (the buffer is full, or closed)."""
        with self._lock:
            self.stats.submitted += 1
            if self._closing:
                self.stats.dropped_at_end += 1
                return False
            if len(self._pending) >= self.buffer:
                self.stats.dropped_full += 1
                full = True
            else:
                was_empty = not self._pending
                self._pending.append(_Message(subject, payload, msg_id))
                self._unsettled += 1
                full = False
        if full:
            self._drops(f"{self.bus.address.display}: {self.buffer} {self.what} waiting; dropping new ones")
            return False
        if was_empty:
            self.bus.loop.call_soon_threadsafe(self._wake.set)
        return True

    def flush(self, timeout: float) -> bool:
        """Wait until every message submitted so far is published or failed; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._unsettled:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._settled.wait(min(left, 0.5))
        return True

    def close(self, drain_timeout: float) -> None:
        """Publish what waits for up to ``drain_timeout`` seconds, then count the rest as
        dropped at the end and stop the task."""
        self.flush(drain_timeout)
        with self._lock:
            self._closing = True
            left = len(self._pending)
            self._pending.clear()
            self.stats.dropped_at_end += left
            self._unsettled -= left
            self._settled.notify_all()
        self.bus.loop.call_soon_threadsafe(self._wake.set)
        if self._task is not None:
            try:
                self._task.result(2.0)
            except Exception:
                log.debug("publisher task ended badly", exc_info=True)
        self._drops.flush()
        self._failures.flush()

    # --- the loop thread ---

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            with self._lock:
                batch = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
                if not self._pending:
                    self._wake.clear()
                closing = self._closing
            if batch:
                try:
                    await self._publish(batch)
                except BaseException:  # cancelled with the loop: the batch's fate is unknown
                    with self._lock:
                        self.stats.unconfirmed += len(batch)
                        self._unsettled -= len(batch)
                        self._settled.notify_all()
                    raise
            elif closing:
                return

    async def _publish(self, batch: list[_Message]) -> None:
        deadline = time.monotonic() + self.retry_for
        start = 0
        problem = ""
        while True:
            done, duplicates, problem = await self._send(batch[start:])
            self._settle(done, duplicates, 0)
            start += done
            if start >= len(batch):
                return
            if time.monotonic() >= deadline or self._closing:
                break
            await asyncio.sleep(self.retry_wait)
        failed = len(batch) - start
        self._settle(0, 0, failed)
        self._failures(
            f"{self.bus.address.display}: {failed} {self.what} not published within {self.retry_for:g} s: {problem}"
        )

    async def _send(self, messages: list[_Message]) -> tuple[int, int, str]:
        """Publish ``messages`` pipelined; how many were stored from the first on (in order),
        how many of those were duplicates, and the first problem."""
        js = self.bus.js
        futures = []
        problem = ""
        for message in messages:
            try:
                futures.append(
                    await js.publish_async(
                        message.subject,
                        message.payload,
                        wait_stall=ACK_TIMEOUT,
                        headers={"Nats-Msg-Id": message.msg_id},
                    )
                )
            except Exception as exc:  # noqa: BLE001 - no connection, a full client buffer: retried
                problem = self.bus.redact(_describe(exc))
                break
        stored = duplicates = 0
        for future in futures:
            try:
                ack = await asyncio.wait_for(future, ACK_TIMEOUT)
            except asyncio.CancelledError:
                if asyncio.current_task() is not None and asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise  # this task is being cancelled, not only the future
                problem = problem or "the connection was closed"
                break
            except Exception as exc:  # noqa: BLE001 - a timeout, a refusal (no stream): retried
                problem = problem or self.bus.redact(_describe(exc))
                break
            stored += 1
            duplicates += bool(ack.duplicate)
        for future in futures[stored:]:
            future.cancel()
        return stored, duplicates, problem

    def _settle(self, published: int, duplicates: int, failed: int) -> None:
        with self._lock:
            self.stats.published += published
            self.stats.duplicates += duplicates
            self.stats.failed += failed
            self._unsettled -= published + failed
            self._settled.notify_all()
