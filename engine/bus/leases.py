"""Which worker reads which partition: leases in a JetStream key-value bucket.

The workers of one consumer (``?consumer=NAME``) share the bucket
``<STREAM>_<NAME>_workers`` whose values expire ``lease`` seconds after they were
last written (the bucket's TTL):

* ``member.<worker>``: each worker's heartbeat, rewritten every ``lease/4`` seconds;
  the live workers are the members present;
* ``partition.<K>``: the lease of partition ``K``, created by one worker with
  compare-and-set (``create`` fails when the key exists) and renewed by it with
  ``update(last=revision)``; a worker reads partition ``K`` only while it holds it.

Each worker aims at ``ceil(partitions / workers)`` partitions: it claims free ones
(starting from a place derived from its name, so that workers do not all race for
partition 0) and, when workers joined, releases its surplus between two batches,
after acknowledging what it processed and handing back (``nak``) what it received
and did not process; a released lease holds an empty value, and the next worker
starts on the partition at once. A stopped worker releases its leases; a killed
one stops renewing them and they expire after ``lease`` seconds, when the other
workers claim them. Its unacknowledged messages are redelivered by
JetStream after the consumer's ``ack_wait`` (the new owner waits that long before
its first fetch when the partition had messages in flight, so the redeliveries come
first and the partition's order is kept).

A worker that could not renew a lease (the bus was unreachable for ``lease``
seconds) stops reading that partition at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from typing import TYPE_CHECKING, Final

from .connection import BusConnection, _describe

if TYPE_CHECKING:
    from nats.js.kv import KeyValue

__all__ = ["DEFAULT_LEASE", "PartitionLeases"]

log = logging.getLogger("pytracee.bus")

#: Seconds a lease or a heartbeat lasts without renewal.
DEFAULT_LEASE: Final = 10.0


class PartitionLeases:
    """The leases of one worker (runs on the connection's loop; read from the main thread).

    :param bus: the connection.
    :param bucket: the key-value bucket's name.
    :param worker: this worker's unique name.
    :param partitions: how many partitions there are.
    :param lease: seconds a lease lasts without renewal.
    """

    def __init__(self, bus: BusConnection, bucket: str, worker: str, partitions: int, lease: float) -> None:
        self.bus = bus
        self.bucket = bucket
        self.worker = worker
        self.partitions = partitions
        self.lease = lease
        #: The partitions held, with the revision of their lease.
        self.held: dict[int, int] = {}
        self.members = 1
        self._kv: KeyValue | None = None
        self._task: asyncio.Task[None] | None = None
        digest = hashlib.sha256(worker.encode()).digest()
        self._start = int.from_bytes(digest[:4], "big") % partitions

    async def open(self) -> None:
        """Create or bind the bucket, announce this worker and start renewing."""
        from nats.js.api import KeyValueConfig
        from nats.js.errors import BucketNotFoundError

        js = self.bus.js
        try:
            self._kv = await js.key_value(self.bucket)
            ttl = (await self._kv.status()).ttl
            if ttl and abs(ttl - self.lease) > 1e-3:  # the bucket's values expire when it says
                log.warning("bucket %s: leases last %g s (its TTL), not %g s", self.bucket, ttl, self.lease)
                self.lease = ttl
        except BucketNotFoundError:
            self._kv = await js.create_key_value(KeyValueConfig(bucket=self.bucket, ttl=self.lease, history=1))
        await self._heartbeat()
        self._task = asyncio.get_running_loop().create_task(self._renew_forever())

    @property
    def kv(self) -> KeyValue:
        if self._kv is None:
            raise RuntimeError("PartitionLeases.open() first")
        return self._kv

    async def _heartbeat(self) -> None:
        await self.kv.put(f"member.{self.worker}", b"")

    async def _renew_forever(self) -> None:
        from nats.js.errors import KeyWrongLastSequenceError

        while True:
            await asyncio.sleep(self.lease / 4)
            try:
                await self._heartbeat()
            except Exception as exc:  # noqa: BLE001 - the bus is away: the leases may lapse
                log.warning("%s: heartbeat failed: %s", self.bus.address.display, self.bus.redact(_describe(exc)))
                continue
            for partition, revision in list(self.held.items()):
                try:
                    self.held[partition] = await self.kv.update(
                        f"partition.{partition}", self.worker.encode(), last=revision
                    )
                except KeyWrongLastSequenceError:
                    self.held.pop(partition, None)
                    log.warning("lost the lease of partition %d (another worker holds it now)", partition)
                except Exception as exc:  # noqa: BLE001 - retried at the next renewal, while the lease lasts
                    log.warning("partition %d: lease not renewed: %s", partition, self.bus.redact(_describe(exc)))

    async def count_members(self) -> int:
        """The live workers (this one included)."""
        from nats.js.errors import NoKeysError

        try:
            keys = await self.kv.keys()
        except NoKeysError:
            keys = []
        self.members = max(1, sum(1 for key in keys if key.startswith("member.")))
        return self.members

    def quota(self) -> int:
        """How many partitions this worker should hold."""
        return math.ceil(self.partitions / self.members)

    async def claim(self, limit: int) -> list[tuple[int, bool]]:
        """Try to take free partitions until this worker holds ``limit``: those newly taken,
        each with whether its previous worker released it (False: its lease expired, or it
        never had one)."""
        from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

        taken = []
        for step in range(self.partitions):
            if len(self.held) >= limit:
                break
            partition = (self._start + step) % self.partitions
            if partition in self.held:
                continue
            key = f"partition.{partition}"
            try:
                entry = await self.kv.get(key)
            except KeyNotFoundError:
                entry = None
            try:
                if entry is None:
                    self.held[partition] = await self.kv.create(key, self.worker.encode())
                elif not entry.value and entry.revision is not None:  # released: free to take
                    self.held[partition] = await self.kv.update(key, self.worker.encode(), last=entry.revision)
                else:
                    continue  # another worker holds it
            except KeyWrongLastSequenceError:
                continue  # another worker was quicker
            taken.append((partition, entry is not None))
        return taken

    async def release(self, partition: int) -> None:
        """Give ``partition`` up, marked as released (its messages are acknowledged or
        handed back): the next worker starts reading it at once."""
        revision = self.held.pop(partition, None)
        if revision is not None:
            with contextlib.suppress(Exception):
                await self.kv.update(f"partition.{partition}", b"", last=revision)

    async def close(self) -> None:
        """Stop renewing, release every lease and leave the members."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for partition in list(self.held):
            await self.release(partition)
        with contextlib.suppress(Exception):
            await self.kv.delete(f"member.{self.worker}")


def worker_name() -> str:
    """A name unique to this process: host, pid and start time."""
    import os
    import socket

    from .address import subject_token

    return subject_token(f"{socket.gethostname()}-{os.getpid()}-{int(time.time() * 1000) % 10**9}")
