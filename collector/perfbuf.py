"""A BPF perf-buffer consumer in pure Python (perf_event_open + mmap + epoll).

The output for kernels without BPF ring buffers (before 5.8). The programs write records
with ``bpf_perf_event_output`` into a ``BPF_MAP_TYPE_PERF_EVENT_ARRAY``; its slot for
each CPU holds a perf event (software, ``PERF_COUNT_SW_BPF_OUTPUT``) opened here, whose
mmapped ring receives that CPU's records:

* the first page is ``struct perf_event_mmap_page``: the kernel advances ``data_head``,
  the reader publishes ``data_tail`` (offsets 1024 and 1032);
* then ``2^n`` data pages, a ring of records ``{u32 type; u16 misc; u16 size}``, 8-byte
  aligned; a ``PERF_RECORD_SAMPLE`` carries ``u32 raw_size`` and the raw data, padded so
  the whole is 8-byte aligned (the decoder ignores the trailing bytes). A record may wrap
  around the end of the ring: it is then copied out in two pieces.

Wakeups are batched with a byte watermark (``wakeup_bytes``): a wakeup per record costs
the traced task far more than the record itself. The reader also polls with a timeout.

Each CPU has its own ring, so records of one task that moved between CPUs arrive out of
order: :meth:`PerfBufferReader.drain` takes what every ring holds and hands it out sorted
by the record's timestamp (its first 8 bytes, see bpf/maps.h: struct event_header).
Drops are counted by the programs (``bpf_perf_event_output`` fails when a ring is full),
so the ``PERF_RECORD_LOST`` records the kernel adds are skipped here.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import select
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Final

__all__ = ["PerfBufferReader", "online_cpus", "open_bpf_output_event"]

_NR_PERF_EVENT_OPEN: Final = 298  # x86_64
_PERF_TYPE_SOFTWARE: Final = 1
_PERF_COUNT_SW_BPF_OUTPUT: Final = 10
_PERF_SAMPLE_RAW: Final = 1 << 10
_ATTR_WATERMARK: Final = 1 << 14  # perf_event_attr flag bit: wakeup_watermark is in bytes
_PERF_FLAG_FD_CLOEXEC: Final = 1 << 3
_PERF_RECORD_SAMPLE: Final = 9
#: perf_event_attr up to config1 (PERF_ATTR_SIZE_VER0): type, size, config, sample_period,
#: sample_type, read_format, flags, wakeup_watermark, bp_type, config1.
_ATTR: Final = struct.Struct("<IIQQQQQIIQ")
_HEAD_OFF: Final = 1024
_TAIL_OFF: Final = 1032
_U64: Final = struct.Struct("<Q")
_REC_HDR: Final = struct.Struct("<IHH")
_U32: Final = struct.Struct("<I")

_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.syscall.restype = ctypes.c_long


def online_cpus() -> list[int]:
    """The CPUs online now (/sys/devices/system/cpu/online, e.g. "0-3,6")."""
    try:
        text = Path("/sys/devices/system/cpu/online").read_text().strip()
    except OSError:
        return sorted(os.sched_getaffinity(0))
    cpus: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def open_bpf_output_event(cpu: int, wakeup_bytes: int) -> int:
    """Open the BPF-output perf event of ``cpu`` (woken once ``wakeup_bytes`` wait); its fd."""
    attr = _ATTR.pack(
        _PERF_TYPE_SOFTWARE,
        _ATTR.size,
        _PERF_COUNT_SW_BPF_OUTPUT,
        1,
        _PERF_SAMPLE_RAW,
        0,
        _ATTR_WATERMARK,
        max(1, wakeup_bytes),
        0,
        0,
    )
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = _LIBC.syscall(
        _NR_PERF_EVENT_OPEN,
        buf,
        ctypes.c_int(-1),
        ctypes.c_int(cpu),
        ctypes.c_int(-1),
        ctypes.c_ulong(_PERF_FLAG_FD_CLOEXEC),
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"perf_event_open of the BPF output on CPU {cpu}: {os.strerror(err)}")
    return int(fd)


class _CpuRing:
    """One CPU's perf event and its mmapped ring."""

    def __init__(self, cpu: int, pages: int, wakeup_bytes: int) -> None:
        self.cpu = cpu
        self.fd = open_bpf_output_event(cpu, wakeup_bytes)
        self.size = pages * mmap.PAGESIZE
        try:
            self.map = mmap.mmap(self.fd, mmap.PAGESIZE + self.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(self.fd)
            raise

    def take(self, out: list[bytes], limit: int) -> None:
        """Append up to ``limit`` raw samples waiting in this ring to ``out``; free their space."""
        m, size, base = self.map, self.size, mmap.PAGESIZE
        head = _U64.unpack_from(m, _HEAD_OFF)[0]
        tail = _U64.unpack_from(m, _TAIL_OFF)[0]
        taken = 0
        while tail < head and taken < limit:
            off = tail % size
            rtype, _misc, rsize = _REC_HDR.unpack_from(m, base + off)
            if rsize < _REC_HDR.size:  # cannot happen; stop rather than spin
                break
            if rtype == _PERF_RECORD_SAMPLE:
                if off + rsize <= size:
                    body = m[base + off + 8 : base + off + rsize]
                else:  # wraps around the end of the ring (the 8-byte header never does)
                    body = m[base + off + 8 : base + size] + m[base : base + off + rsize - size]
                (raw_size,) = _U32.unpack_from(body, 0)
                out.append(body[4 : 4 + raw_size])
                taken += 1
            tail += rsize
        _U64.pack_into(m, _TAIL_OFF, tail)

    def available(self) -> bool:
        return _U64.unpack_from(self.map, _HEAD_OFF)[0] != _U64.unpack_from(self.map, _TAIL_OFF)[0]

    def close(self) -> None:
        self.map.close()
        os.close(self.fd)


class PerfBufferReader:
    """Per-CPU perf buffers of ``pages`` pages each (a power of two) for ``cpus``.

    ``install(cpu, fd)`` is called for each CPU to put its event fd into the programs'
    perf-event array (the collector updates the map).
    """

    def __init__(self, cpus: list[int], pages: int, wakeup_bytes: int, install: Callable[[int, int], None]) -> None:
        if pages <= 0 or pages & (pages - 1):
            raise ValueError(f"perf buffer size of {pages} pages is not a power of two")
        self._rings: list[_CpuRing] = []
        self._epoll = select.epoll()
        self.closed = False
        try:
            wakeup = min(wakeup_bytes, pages * mmap.PAGESIZE // 4)
            for cpu in cpus:
                ring = _CpuRing(cpu, pages, wakeup)
                self._rings.append(ring)
                self._epoll.register(ring.fd, select.EPOLLIN)
                install(cpu, ring.fd)
        except BaseException:
            self.close()
            raise

    def wait(self, timeout_ms: int) -> bool:
        """Wait until records may be available (or the timeout); True if there may be some."""
        if self.available():
            return True
        return bool(self._epoll.poll(max(timeout_ms, 0) / 1000.0))

    def available(self) -> bool:
        """True if any CPU's ring holds records."""
        return any(ring.available() for ring in self._rings)

    def drain(self, handle: Callable[[bytes, int, int], None], limit: int | None = None) -> int:
        """Call ``handle(record, 0, length)`` for the records waiting, oldest first; returns how many.

        At most ``limit`` records (if given) are taken. If ``handle`` raises, the records
        not yet handed out are lost with the exception.
        """
        records: list[bytes] = []
        budget = limit if limit is not None else 1 << 62
        for ring in self._rings:
            ring.take(records, budget - len(records))
        records.sort(key=_timestamp)
        for rec in records:
            handle(rec, 0, len(rec))
        return len(records)

    def close(self) -> None:
        """Unmap, close the perf events and stop polling (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._epoll.close()
        for ring in self._rings:
            ring.close()
        self._rings.clear()


def _timestamp(record: bytes) -> int:
    return _U64.unpack_from(record, 0)[0] if len(record) >= 8 else 0
