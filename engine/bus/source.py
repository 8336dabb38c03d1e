"""Reading events from JetStream as one worker of a pool: ``tracee-rules --input nats://...``.

:class:`NatsEventSource` is an :class:`~pytracee.engine.sources.EventSource`: the
session reads it like a file. It is one worker of the durable consumer ``NAME``
(``?consumer=NAME``) on the partitioned events stream
(:mod:`~pytracee.engine.bus.partitions`); the partitions it reads are those whose
lease it holds (:mod:`~pytracee.engine.bus.leases`).

No loss, no duplicates:

* messages are fetched in batches per partition and delivered in the stream's order;
* the session calls :meth:`NatsEventSource.event_done` once an event went through
  the signatures and its findings were handed to the outputs; at the end of a batch
  the source waits until the outputs confirm those findings are stored (``confirm``:
  for a ``nats://`` findings output, JetStream's acknowledgements), then acknowledges
  each processed message of the batch;
* a worker that dies (even ``kill -9``) acknowledged nothing after its last confirmed
  batch: JetStream redelivers the rest to the worker that takes its partitions, and
  findings published twice carry the same message id, so the findings stream stores
  them once;
* findings that cannot be stored stop the worker (exit status 1) without
  acknowledging the events they came from: they are redelivered.

A message that is not a usable event (not JSON, not a ``trace.Event``, an unknown
event, longer than ``--max-line-size``), or one delivered ``max_deliver`` times without
being processed, is counted by reason, published to the dead-letter subject with the
reason and its origin in headers, and acknowledged: it is never retried forever.

Query keys of the address (``nats://HOST:PORT/STREAM?consumer=NAME&...``):
``consumer`` (required), ``subject`` (the events' subject prefix, default
``tracee.events``), ``partitions`` (when the stream is created, default 8),
``batch`` (messages per fetch, 256), ``ack_wait`` (seconds, 30), ``lease``
(seconds, 10), ``max_deliver`` (5), ``deadletter`` (a subject), ``idle`` (stop
after this many seconds without a message; 0, the default, never stops).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any, Final

import orjson

from ..errors import InputError
from ..events import Event
from ..reader import DEFAULT_MAX_LINE_SIZE, MAX_NESTING, EventReader, _json_problem, _nesting
from ..sources import SkipLog, SourceStats
from .address import BusAddress, check_name, check_subject
from .connection import BusConnection, BusCredentials, BusError
from .leases import DEFAULT_LEASE, PartitionLeases, worker_name
from .partitions import DEFAULT_EVENT_SUBJECT, DEFAULT_PARTITIONS, ensure_event_stream, find_stream, partition_subject

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

__all__ = ["QUERY_KEYS", "NatsEventSource"]

log = logging.getLogger("pytracee.input")

QUERY_KEYS: Final = (
    "consumer",
    "subject",
    "partitions",
    "batch",
    "ack_wait",
    "lease",
    "max_deliver",
    "deadletter",
    "idle",
)
#: Seconds one fetch waits for messages.
FETCH_WAIT: Final = 1.0
#: Seconds a fetch waits while messages are flowing (only busy partitions are asked).
BUSY_WAIT: Final = 0.05
#: Seconds between two looks at every partition while some are busy.
PROBE_EVERY: Final = 0.5
#: Seconds between two looks at the other workers (claiming or releasing partitions).
REBALANCE_EVERY: Final = 1.0
#: Seconds the outputs get to confirm a batch's findings.
CONFIRM_TIMEOUT: Final = 60.0


class NatsEventSource:
    """The events of the partitions this worker holds (see the module's description).

    :param url: ``nats://HOST:PORT/STREAM?consumer=NAME&...``.
    :param credentials: credentials and TLS.
    :param is_known_event: the test for event names (None: accept all).
    :param confirm: waits until the findings handed to the outputs so far are stored;
        False when some could not be (the worker then stops without acknowledging).
    :raises ValueError: for a bad address.
    """

    def __init__(
        self,
        url: str,
        credentials: BusCredentials,
        *,
        is_known_event: Callable[[str], bool] | None = None,
        confirm: Callable[[float], bool] | None = None,
        max_size: int = DEFAULT_MAX_LINE_SIZE,
    ) -> None:
        address = BusAddress.parse(url, "--input")
        address.check_keys(QUERY_KEYS, "--input")
        self.address = address
        self.stream = check_name(address.path, "stream")
        consumer = address.query.get("consumer")
        if not consumer:
            raise ValueError(f"--input {address.display}: name the durable consumer: ?consumer=NAME")
        self.consumer = check_name(consumer, "consumer")
        self.prefix = check_subject(address.query.get("subject", DEFAULT_EVENT_SUBJECT), "subject")
        self.partitions = int(address.number("partitions", DEFAULT_PARTITIONS, 1, 1024))
        self.batch = int(address.number("batch", 256, 1, 10_000))
        self.ack_wait = address.number("ack_wait", 30, 1, 3600)
        self.lease = address.number("lease", DEFAULT_LEASE, 1, 3600)
        self.max_deliver = int(address.number("max_deliver", 5, 1, 1000))
        self.idle = address.number("idle", 0, 0, 86400)
        self.deadletter = check_subject(
            address.query.get("deadletter", f"deadletter.{self.stream}.{self.consumer}"), "dead-letter subject"
        )
        self.worker = worker_name()
        self.bus = BusConnection(address, credentials, name=f"tracee-rules {self.worker}")
        self.stats = SourceStats()
        self.confirm = confirm
        self.max_size = max_size
        self.redelivered = 0
        self.dead_lettered = 0
        self._check = EventReader([], is_known_event=is_known_event)._check
        self._log = SkipLog(log)
        self._leases: PartitionLeases | None = None
        self._subs: dict[int, Any] = {}
        self._not_before: dict[int, float] = {}
        #: Messages delivered and not acknowledged yet: [message, processed] per message, in
        #: order; an event an observer holds stays here across rounds until it is done.
        self._batch: list[list[Any]] = []
        self._by_event: dict[int, list[Any]] = {}
        #: The messages of the last fetch, and those of them acknowledged (by id()).
        self._round: list[Msg] = []
        self._acked: set[int] = set()
        #: The next round's fetch, started while this one is processed.
        self._prefetch: concurrent.futures.Future[dict[int, list[Msg]]] | None = None
        #: Acknowledgements sent and not known to be written yet.
        self._acks: list[concurrent.futures.Future[None]] = []
        self._iterator: Generator[Event, None, None] | None = None
        self._opened = False
        self._ack_wait_told = False

    # --- setting up ---

    def open(self) -> None:
        """Connect, check or create the streams, join the workers.

        :raises BusError: no server, or a stream that does not fit.
        """
        self.bus.connect()
        self._opened = True
        self.prefix, self.partitions = self.bus.call(
            ensure_event_stream(self.bus, self.stream, self.prefix, self.partitions), 10
        )
        self.bus.call(self._ensure_deadletter_stream(), 10)
        bucket = f"{self.stream}_{self.consumer}_workers"
        self._leases = PartitionLeases(self.bus, bucket, self.worker, self.partitions, self.lease)
        self.bus.call(self._leases.open(), 10)
        log.info(
            "worker %s of consumer %s on %s: %d partitions of %s.*",
            self.worker,
            self.consumer,
            self.address.display,
            self.partitions,
            self.prefix,
        )

    async def _ensure_deadletter_stream(self) -> None:
        from nats.js.api import StreamConfig

        captured_by = await find_stream(self.bus, self.deadletter)
        if captured_by == self.stream:  # dead letters would come back as events, forever
            raise BusError(
                f"the dead-letter subject {self.deadletter} is captured by the events stream {self.stream}: "
                "choose one outside it (?deadletter=SUBJECT)"
            )
        if captured_by is None:
            try:
                await self.bus.js.add_stream(
                    StreamConfig(
                        name=f"{self.stream}_DEADLETTER",
                        description="events no worker could process",
                        subjects=[f"deadletter.{self.stream}.>"]
                        if self.deadletter.startswith(f"deadletter.{self.stream}.")
                        else [self.deadletter],
                        duplicate_window=600,
                    )
                )
            except Exception as exc:
                if "already in use" not in str(exc):
                    raise

    # --- the EventSource protocol ---

    def __iter__(self) -> Iterator[Event]:
        if not self._opened:
            self.open()
        self._iterator = self._events()
        return self._iterator

    def where(self, event: Event) -> str:
        """``nats:SUBJECT:SEQUENCE`` of an event this source delivered."""
        return event.location

    def skip(self, event: Event, reason: str, detail: str) -> None:
        """Count an event as skipped (its args proved malformed) and move its message aside."""
        self.stats.events -= 1
        entry = self._by_event.get(id(event))
        if entry is not None:
            self._dead_letter(entry[0], reason, detail)
        else:
            self.stats.skipped_by_reason[reason] += 1

    def event_done(self, event: Event) -> None:
        """The session is done with ``event``: its findings went to the outputs."""
        entry = self._by_event.pop(id(event), None)
        if entry is not None:
            entry[1] = True

    def summary(self) -> str:
        text = self.stats.describe("processed")
        return (
            f"{text}; {self.redelivered} redelivered, {self.dead_lettered} moved to {self.deadletter}"
            f" (worker {self.worker}, consumer {self.consumer})"
        )

    def close(self) -> None:
        """Acknowledge what was processed, give the partitions up and disconnect; idempotent."""
        if self._iterator is not None:
            self._iterator.close()
            self._iterator = None
        if not self._opened:
            return
        self._opened = False
        try:
            self._commit()
        except (InputError, BusError) as exc:
            log.error("%s", exc)
        if self._leases is not None:
            try:
                self.bus.call(self._release_all(), 10)
            except BusError as exc:
                log.warning("leases not released (they expire in %g s): %s", self.lease, exc)
        self.bus.close()

    async def _release_all(self) -> None:
        # the acknowledgements first (one that failed is redelivered), then what goes back
        await asyncio.gather(*(asyncio.wrap_future(ack) for ack in self._acks), return_exceptions=True)
        await self.bus.nc.flush(10)
        if self._prefetch is not None:
            prefetch, self._prefetch = self._prefetch, None
            try:
                prefetched = await asyncio.wrap_future(prefetch)
            except Exception:  # noqa: BLE001 - a failed fetch delivered nothing to hand back
                prefetched = {}
            self._round += [msg for messages in prefetched.values() for msg in messages]
        for msg in self._round:  # fetched, not processed: redelivered first, to the next worker
            if id(msg) not in self._acked:
                await msg.nak()
        self._round = []
        try:
            await self._hand_back(list(self._subs))
        except Exception:
            log.debug("partitions not handed back", exc_info=True)
        if self._leases is not None:
            await self._leases.close()

    # --- reading ---

    def _events(self) -> Generator[Event, None, None]:
        try:
            yield from self._rounds()
        except BusError as exc:  # the bus went away: stop, what was not acknowledged is redelivered
            raise InputError(
                f"the bus stopped answering ({exc}); stopping "
                "(unacknowledged events are delivered again to the other workers)"
            ) from None

    def _rounds(self) -> Generator[Event, None, None]:
        leases = self._require_leases()
        next_rebalance = next_probe = 0.0
        last_message = time.monotonic()
        active: list[int] = []  # partitions that had messages in the last round
        while True:
            now = time.monotonic()
            if self._prefetch is not None:  # fetched while the last round was processed
                batches = self._prefetched()
            else:
                if now >= next_rebalance:  # only with no fetch in flight: hand-backs see every message
                    self.bus.call(self._rebalance(), 30)
                    next_rebalance = now + REBALANCE_EVERY
                ready = [p for p in sorted(self._subs) if self._not_before.get(p, 0) <= now and p in leases.held]
                wait = BUSY_WAIT if active else FETCH_WAIT  # busy: never wait long on empty partitions
                if active and now < next_probe:  # busy: fetch where messages are
                    ready = [p for p in active if p in ready]
                else:
                    next_probe = now + PROBE_EVERY
                if not ready:
                    time.sleep(0.2)
                batches = self.bus.call(self._fetch(ready, wait), wait + 30) if ready else {}
            active = [p for p, messages in batches.items() if messages]
            if not active:
                waiting = any(t > time.monotonic() for t in self._not_before.values())  # redeliveries to come
                if waiting:
                    last_message = time.monotonic()
                elif self.idle and time.monotonic() - last_message >= self.idle:
                    log.info("no message for %g s: stopping (idle=%g)", self.idle, self.idle)
                    return
                continue
            last_message = time.monotonic()
            self._round = [msg for partition in active for msg in batches[partition]]
            self._acked = set()
            if time.monotonic() < next_rebalance and time.monotonic() < next_probe:
                # the next batches of the busy partitions arrive while these are processed
                self._prefetch = asyncio.run_coroutine_threadsafe(self._fetch(active, BUSY_WAIT), self.bus.loop)
            for partition in active:
                if partition not in leases.held:  # lost meanwhile: its new owner gets them again
                    continue
                for msg in batches[partition]:
                    event = self._decode(msg)
                    entry = [msg, event is None]
                    self._batch.append(entry)
                    if event is not None:
                        self._by_event[id(event)] = entry
                        self.stats.events += 1
                        yield event
                self._commit()

    def _prefetched(self) -> dict[int, list[Msg]]:
        """The batches of the fetch started during the last round.

        :raises BusError: when it failed or got no answer.
        """
        prefetch, self._prefetch = self._prefetch, None
        assert prefetch is not None  # noqa: S101 - the caller checked it
        try:
            return prefetch.result(BUSY_WAIT + 30)
        except concurrent.futures.TimeoutError:
            raise BusError(f"{self.address.display}: no answer within {BUSY_WAIT + 30:g} s") from None
        except Exception as exc:  # noqa: BLE001 - any failure of the fetch, reported as one
            raise BusError(f"{self.address.display}: {type(exc).__name__}: {exc}") from None

    def _decode(self, msg: Msg) -> Event | None:
        """The event in ``msg``, or None when it was moved to the dead-letter subject."""
        meta = msg.metadata
        if meta.num_delivered > 1:
            self.redelivered += 1
        if meta.num_delivered > self.max_deliver:
            self._dead_letter(
                msg, "delivered too often", f"delivered {meta.num_delivered} times without being processed"
            )
            return None
        data = msg.data
        if self.max_size and len(data) > self.max_size:
            self._dead_letter(msg, "line too long", f"{len(data)} bytes, more than --max-line-size {self.max_size}")
            return None
        try:
            raw = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            self._dead_letter(msg, *_json_problem(data, exc))
            return None
        if data.count(b"[") + data.count(b"{") > MAX_NESTING and _nesting(raw) > MAX_NESTING:
            self._dead_letter(msg, "too deeply nested", f"JSON nested more than {MAX_NESTING} levels deep")
            return None
        problem = self._check(raw)
        if problem is not None:
            self._dead_letter(msg, *problem)
            return None
        return Event(raw, "tracee", f"nats:{msg.subject}", meta.sequence.stream, data)

    def _dead_letter(self, msg: Msg, reason: str, detail: str) -> None:
        """Count ``msg`` as skipped and publish it to the dead-letter subject (acknowledged with its batch)."""
        where = f"nats:{msg.subject}:{msg.metadata.sequence.stream}"
        self.stats.skipped_by_reason[reason] += 1
        self._log(f"nats:{self.stream}", f"{where}: {reason}: {detail}")
        headers = {
            "Nats-Msg-Id": f"{self.stream}-{msg.metadata.sequence.stream}",
            "Tracee-Reason": reason,
            "Tracee-Detail": detail.encode("ascii", "backslashreplace")
            .decode("ascii")[:512]
            .replace("\r", " ")
            .replace("\n", " "),
            "Tracee-Origin": where,
        }
        try:
            self.bus.call(self.bus.js.publish(self.deadletter, msg.data, timeout=10, headers=headers), 15)
        except BusError as exc:
            raise InputError(f"{where}: could not be moved to {self.deadletter}: {exc}; stopping") from None
        self.dead_lettered += 1

    def _commit(self) -> None:
        """Confirm the findings of the processed messages, then acknowledge them; those not
        processed yet (held back by an observer) stay for a later commit."""
        processed = [entry[0] for entry in self._batch if entry[1]]
        if not processed:
            return
        if self.confirm is not None and not self.confirm(CONFIRM_TIMEOUT):
            self._batch = []
            raise InputError(
                "findings could not be published: stopping without acknowledging their events "
                "(they will be delivered again)"
            )
        self._batch = [entry for entry in self._batch if not entry[1]]
        # sent in order on the loop, not waited for (close() waits for the last ones)
        self._acks = [f for f in self._acks if not f.done()]
        self._acks.append(asyncio.run_coroutine_threadsafe(self._ack(processed), self.bus.loop))
        self._acked.update(map(id, processed))

    async def _ack(self, messages: list[Msg]) -> None:
        for msg in messages:
            await msg.ack()

    # --- partitions ---

    def _require_leases(self) -> PartitionLeases:
        if self._leases is None:
            raise RuntimeError("NatsEventSource.open() first")
        return self._leases

    async def _rebalance(self) -> None:
        leases = self._require_leases()
        for partition in [p for p in self._subs if p not in leases.held]:  # lease lost
            await self._drop(partition)
        await leases.count_members()
        quota = leases.quota()
        surplus = sorted(leases.held, reverse=True)[: max(0, len(leases.held) - quota)]
        await self._hand_back(surplus)
        for partition in surplus:
            await leases.release(partition)
            log.info("partition %d released (%d workers)", partition, leases.members)
        for partition, released in await leases.claim(quota):
            await self._take(partition, released)

    async def _take(self, partition: int, released: bool) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig
        from nats.js.errors import NotFoundError

        js: JetStreamContext = self.bus.js
        name = f"{self.consumer}-p{partition}"
        try:
            info = await js.consumer_info(self.stream, name)
        except NotFoundError:
            config = ConsumerConfig(
                durable_name=name,
                filter_subject=partition_subject(self.prefix, partition),
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait,
                max_ack_pending=self.batch * 2,
                max_deliver=-1,
                description=f"pytracee workers {self.consumer}, partition {partition}",
            )
            info = await js.add_consumer(self.stream, config)
        ack_wait = info.config.ack_wait or self.ack_wait  # the consumer's own, set when it was created
        if abs(ack_wait - self.ack_wait) > 1e-3 and not self._ack_wait_told:
            self._ack_wait_told = True
            log.warning(
                "consumer %s: messages are redelivered after %g s (its ack_wait), not %g s",
                name,
                ack_wait,
                self.ack_wait,
            )
        if info.num_ack_pending and not released:
            self._not_before[partition] = time.monotonic() + ack_wait
            log.info(
                "partition %d taken over with %d unacknowledged messages: waiting %g s (ack_wait) for their redelivery",
                partition,
                info.num_ack_pending,
                ack_wait,
            )
        else:
            self._not_before.pop(partition, None)
            log.info("partition %d taken", partition)
        self._subs[partition] = await js.pull_subscribe_bind(consumer=name, stream=self.stream)

    async def _hand_back(self, partitions: list[int]) -> None:
        """Stop reading ``partitions``: what fetches left in their subscriptions is handed back
        (``nak``: redelivered first, to the next worker) once the last pull requests expired."""
        if not partitions:
            return
        await asyncio.sleep(FETCH_WAIT)  # a pull request still open delivers until it expires
        for partition in partitions:
            sub = self._subs.get(partition)
            # nats-py keeps what arrived after a fetch returned in the subscription's queue
            queue = getattr(getattr(sub, "_sub", None), "_pending_queue", None)
            while queue is not None and not queue.empty():
                msg = queue.get_nowait()
                if msg.reply and not (msg.headers or {}).get("Status"):
                    await msg.nak()
            await self._drop(partition)
        await self.bus.nc.flush(5)

    async def _drop(self, partition: int) -> None:
        sub = self._subs.pop(partition, None)
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001, S110 - gone either way
                pass

    async def _fetch(self, partitions: list[int], wait: float) -> dict[int, list[Msg]]:
        import nats.errors

        async def one(partition: int) -> list[Msg]:
            try:
                msgs: list[Msg] = await self._subs[partition].fetch(self.batch, timeout=wait)
                return msgs
            except (TimeoutError, nats.errors.TimeoutError):
                return []

        results = await asyncio.gather(*(one(p) for p in partitions))
        return dict(zip(partitions, results, strict=True))
