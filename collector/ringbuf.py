"""A BPF ring-buffer consumer in pure Python (mmap + epoll), without a ctypes call per record.

The kernel's BPF_MAP_TYPE_RINGBUF exposes three mappings of its map fd: the consumer
position page (read-write), then the producer position page and the data area mapped
twice back to back (read-only), so a record that wraps around the end is contiguous.
Each record starts with an 8-byte header: u32 length (bit 31 busy: still being written;
bit 30 discarded) and u32 page offset; records are 8-byte aligned. The consumer reads
records up to the producer position, stops at a busy one, and publishes its new position
so the kernel can reuse the space (this is what libbpf's ring_buffer__consume does).

Records are handed to the callback as (buffer, offset, length) views into the mapping:
they are only valid during the callback, before the consumer position moves past them.
"""

from __future__ import annotations

import mmap
import select
import struct
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, Final

__all__ = ["RingBufferReader"]

_BUSY: Final = 1 << 31
_DISCARD: Final = 1 << 30
_HDR: Final = 8
_U64: Final = struct.Struct("<Q")
_U32: Final = struct.Struct("<I")

#: Publish the consumer position at least every this many bytes while draining, so
#: producers get space back during a long drain.
_PUBLISH_EVERY: Final = 1 << 20


class RingBufferReader:
    """Read records of the ring buffer map ``map_fd`` whose data area is ``size`` bytes."""

    def __init__(self, map_fd: int, size: int) -> None:
        if size <= 0 or size & (size - 1):
            raise ValueError(f"ring buffer size {size} is not a power of two")
        page = mmap.PAGESIZE
        self._page = page
        self._mask = size - 1
        with ExitStack() as undo:  # a failure part-way releases what was set up
            self._consumer = mmap.mmap(map_fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
            undo.callback(self._consumer.close)
            self._data = mmap.mmap(map_fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
            undo.callback(self._data.close)
            self._epoll = select.epoll()
            undo.callback(self._epoll.close)
            self._epoll.register(map_fd, select.EPOLLIN)
            undo.pop_all()
        self.closed = False

    def wait(self, timeout_ms: int) -> bool:
        """Wait until records may be available (or the timeout); True if woken by data."""
        if self.available():
            return True
        return bool(self._epoll.poll(max(timeout_ms, 0) / 1000.0))

    def available(self) -> bool:
        """True if the producer is ahead of the consumer."""
        return _U64.unpack_from(self._data, 0)[0] != _U64.unpack_from(self._consumer, 0)[0]

    def drain(self, handle: Callable[[mmap.mmap, int, int], None], limit: int | None = None) -> int:
        """Call ``handle(buffer, offset, length)`` for each ready record; returns how many.

        Stops after ``limit`` records if given. If ``handle`` raises, the record that
        raised is consumed and the exception propagates.
        """
        data, page, mask = self._data, self._page, self._mask
        cons = _U64.unpack_from(self._consumer, 0)[0]
        published = cons
        count = 0
        try:
            while True:
                prod = _U64.unpack_from(data, 0)[0]
                if cons >= prod:
                    break
                while cons < prod:
                    hdr_off = page + (cons & mask)
                    (length,) = _U32.unpack_from(data, hdr_off)
                    if length & _BUSY:
                        return count
                    n = length & ~(_BUSY | _DISCARD)
                    rec = hdr_off + _HDR
                    cons += (n + _HDR + 7) & ~7
                    if not length & _DISCARD:
                        count += 1
                        handle(data, rec, n)
                        if limit is not None and count >= limit:
                            return count
                    if cons - published >= _PUBLISH_EVERY:
                        _U64.pack_into(self._consumer, 0, cons)
                        published = cons
        finally:
            if cons != published:
                _U64.pack_into(self._consumer, 0, cons)
        return count

    def drain_into(
        self, out: list[Any], convert: Callable[[mmap.mmap, int, int], Any], limit: int | None = None
    ) -> int:
        """Append ``convert(buffer, offset, length)`` of each ready record to ``out``, the
        records on which it raises ValueError or struct.error skipped; returns how many were
        skipped. Reads at most ``limit`` records. (:meth:`drain` without a callback per record.)
        """
        data, page, mask = self._data, self._page, self._mask
        cons = _U64.unpack_from(self._consumer, 0)[0]
        published = cons
        count = errors = 0
        append = out.append
        try:
            while True:
                prod = _U64.unpack_from(data, 0)[0]
                if cons >= prod:
                    break
                while cons < prod:
                    hdr_off = page + (cons & mask)
                    (length,) = _U32.unpack_from(data, hdr_off)
                    if length & _BUSY:
                        return errors
                    n = length & ~(_BUSY | _DISCARD)
                    rec = hdr_off + _HDR
                    cons += (n + _HDR + 7) & ~7
                    if not length & _DISCARD:
                        count += 1
                        try:
                            append(convert(data, rec, n))
                        except (ValueError, struct.error):
                            errors += 1
                        if limit is not None and count >= limit:
                            return errors
                    if cons - published >= _PUBLISH_EVERY:
                        _U64.pack_into(self._consumer, 0, cons)
                        published = cons
        finally:
            if cons != published:
                _U64.pack_into(self._consumer, 0, cons)
        return errors

    def drain_with(
        self,
        drainer: Callable[[mmap.mmap, mmap.mmap, int, int, int, list[Any]], int],
        out: list[Any],
        limit: int | None = None,
    ) -> int:
        """:meth:`drain_into` done by ``drainer`` (a compiled loop, see
        :meth:`~pytracee.collector.decode.Decoder.ring_drainer`): it gets the two mappings,
        the page size, the ring's mask, ``limit`` (0: none) and ``out``; returns what it does."""
        return drainer(self._data, self._consumer, self._page, self._mask, limit or 0, out)

    def close(self) -> None:
        """Unmap and stop polling (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._epoll.close()
        self._data.close()
        self._consumer.close()
