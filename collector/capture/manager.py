"""The user-space half of ``--capture``: chunks in, artifacts and their events out.

:class:`CaptureManager` reads the ``captures`` ring buffer (bpf/capture.h) on every
collector poll, writes each chunk into its artifact at its offset (appending for pipes,
sockets and character devices), copies executed files on ``sched_process_exec`` (once per
container, path, ctime and inode), and reports every artifact with an event in the event
stream: ``capture_file_write``, ``capture_file_read``, ``capture_exec``, ``capture_mem``,
``capture_module`` (Tracee's capture event names and ids), with the artifact's path, size,
sha256, whether it is incomplete (chunks lost, bytes over a budget) and the context of the
process that caused it. Files written or read are reported once no chunk came for
:data:`IDLE_SECONDS` (again if more data comes later) and at the stop; memory regions and
module images when all their bytes arrived.
"""

from __future__ import annotations

import logging
import os
import stat
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .. import wire
from ..privileges import UnsafePathError
from ..ringbuf import RingBufferReader
from .artifacts import Artifact, ArtifactStore, safe_basename, safe_container_id
from .kernel import (
    CAPTURES_MAP,
    CHUNK_PATH,
    KIND_MEM,
    KIND_MODULE,
    KIND_MODULE_FD,
    KIND_NET,
    KIND_READ,
    KIND_WRITE,
    KernelCounters,
)
from .options import CaptureOptions

if TYPE_CHECKING:
    from ..decode import Decoder
    from ..libbpf import BpfObject

__all__ = ["ARTIFACT_EVENTS", "IDLE_SECONDS", "ArtifactInfo", "CaptureManager"]

LOG: Final = logging.getLogger("pytracee.collector")

#: A written/read file is reported once no chunk came for this long.
IDLE_SECONDS: Final = 1.0
#: Artifact event names and Tracee's ids for them.
ARTIFACT_EVENTS: Final = {
    "capture_file_write": 4000,
    "capture_exec": 4001,
    "capture_module": 4002,
    "capture_mem": 4003,
    "capture_pcap": 4004,
    "capture_file_read": 4007,
}
_KIND_EVENT: Final = {
    "write": "capture_file_write",
    "read": "capture_file_read",
    "exec": "capture_exec",
    "mem": "capture_mem",
    "module": "capture_module",
    "pcap": "capture_pcap",
}
#: pcap: the file header (nanosecond timestamps, LINKTYPE_RAW: packets start at the IP header) and
#: each record's header.
_PCAP_HEADER: Final = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 101)
_PCAP_RECORD: Final = struct.Struct("<IIII")
_CHUNK: Final = wire.CAPTURE_CHUNK
_CHUNK_FIELDS: Final = _CHUNK.subset(
    "off", "inode", "ctime", "total", "seq", "dev", "mode", "kind", "size", "fd", "flags"
)
_HDR_KEY: Final = wire.EVENT_HEADER.subset("ts", "cgroup_id", "host_pid")
_APPEND_TYPES: Final = (stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR)
_EXEC_SEEN_MAX: Final = 65536
#: Findings' links kept (per kind): the most recent artifacts, so a long run stays bounded.
_LINKS_MAX: Final = 65536
_K = TypeVar("_K")
_V = TypeVar("_V")
_ARGS: Final = (
    ("pathname", "const char*"),
    ("artifact", "const char*"),
    ("size", "u64"),
    ("sha256", "const char*"),
    ("incomplete", "bool"),
    ("lost_chunks", "u64"),
    ("not_captured", "u64"),
    ("dev", "dev_t"),
    ("inode", "unsigned long"),
    ("address", "unsigned long"),
)


class _Recent(OrderedDict[_K, _V]):
    """A mapping that keeps its ``maxlen`` most recently set keys (the oldest go first)."""

    def __init__(self, maxlen: int) -> None:
        super().__init__()
        self.maxlen = maxlen

    def __setitem__(self, key: _K, value: _V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.maxlen:
            self.popitem(last=False)


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """What a finding links to: the artifact's path and content hash when it was reported."""

    path: str
    sha256: str
    size: int
    incomplete: bool


@dataclass
class _Pending:
    art: Artifact
    context: dict[str, Any]  # the event of the process that caused it (first chunk)
    last_ts: int  # boot ns of the last chunk
    seen: float  # monotonic time of the last chunk
    key: tuple[int, int, int, int, int]  # the kernel's cap_key: inode, seq, dev, kind, pid
    dev: int = 0
    inode: int = 0
    address: int = 0
    total: int = 0  # mem/module: bytes expected


def _kernel_dev(dev: int) -> int:
    """The kernel's s_dev (major << 20 | minor) as os.stat's st_dev."""
    return os.makedev(dev >> 20, dev & 0xFFFFF)


class CaptureManager:
    """Capture per :class:`~.options.CaptureOptions`; see the module's description."""

    def __init__(self, opts: CaptureOptions) -> None:
        self.opts = opts
        #: Raises UnsafePathError when the capture directory cannot be trusted.
        self.store = ArtifactStore(
            opts.directory, clear=opts.clear_dir, artifact_limit=opts.artifact_limit, total_limit=opts.total_limit
        )
        self._reader: RingBufferReader | None = None
        self._decoder: Decoder | None = None
        self._counters: KernelCounters | None = None
        self._pending: dict[tuple[Any, ...], _Pending] = {}
        self._ready: list[dict[str, Any]] = []
        self._containers: dict[int, str] = {}
        self._totals: dict[str, int] = {}
        self._exec_seen: OrderedDict[tuple[Any, ...], ArtifactInfo] = OrderedDict()
        self._own_mnt_ns = self._mnt_ns("self")
        #: Findings' links: by (dev, inode) of written files, by (host pid, address) of memory
        #: regions, by (host pid, exec timestamp) and by (container, path, ctime, dev, inode) of executables.
        self.written: _Recent[tuple[int, int], ArtifactInfo] = _Recent(_LINKS_MAX)
        self.regions: _Recent[tuple[int, int], ArtifactInfo] = _Recent(_LINKS_MAX)
        self.executed: _Recent[tuple[int, int], ArtifactInfo] = _Recent(_LINKS_MAX)
        self.reported = 0
        self.incomplete = 0
        self.exec_failures = 0
        self.exec_save_errors = 0  # copies that could not be written (disk full, a planted path)
        self.malformed = 0

    # ---- set-up -------------------------------------------------------------------------

    def attach(self, obj: BpfObject, decoder: Decoder, wake: Any = None) -> None:
        """Start reading the object's captures ring (``wake``: the event reader, woken by it too)."""
        fd = obj.map(CAPTURES_MAP).fd
        self._reader = RingBufferReader(fd, self.opts.ring_bytes)
        self._decoder = decoder
        self._counters = KernelCounters(obj.map("cap_totals"), obj.map("cap_stats"))
        epoll = getattr(wake, "_epoll", None)
        if epoll is not None:
            import select

            epoll.register(fd, select.EPOLLIN)

    @staticmethod
    def _mnt_ns(pid: str) -> int:
        try:
            return os.stat(f"/proc/{pid}/ns/mnt").st_ino
        except OSError:
            return 0

    # ---- the poll ------------------------------------------------------------------------

    def process(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Drain the captures ring, copy executed files of ``events``; returns ``events`` plus
        the artifact events ready now."""
        out = events
        self.sync()
        if self.opts.exec:
            for ev in events:
                if ev.get("eventName") == "sched_process_exec":
                    self._capture_exec(ev, self._ready)
        self._flush(self._ready, idle=IDLE_SECONDS)
        if self._ready:
            out.extend(self._ready)
            self._ready = []
        return out

    def sync(self) -> None:
        """Write every chunk waiting in the ring into its artifact (events of artifacts
        completed by it are handed out by the next :meth:`process`)."""
        reader = self._reader
        if reader is None:
            return
        ready = self._ready

        def handle(buf: Any, off: int, size: int) -> None:
            try:
                self._chunk(buf, off, size, ready)
            except (ValueError, OSError, UnsafePathError) as exc:
                self.malformed += 1
                LOG.warning("capture: a chunk could not be saved: %s", exc)

        while reader.available() and reader.drain(handle, 4096):
            pass

    def _chunk(self, buf: Any, off: int, size: int, out: list[dict[str, Any]]) -> None:
        if size < _CHUNK.size:
            raise ValueError(f"capture record of {size} bytes is shorter than its {_CHUNK.size}-byte head")
        c_off, inode, _ctime, total, seq, dev, mode, kind, n, fd, flags = _CHUNK_FIELDS.unpack_from(buf, off)
        if _CHUNK.size + n > size:
            raise ValueError(f"capture record says {n} data bytes, holds {size - _CHUNK.size}")
        ts, cgroup_id, pid = _HDR_KEY.unpack_from(buf, off)
        if kind == KIND_NET:
            self._packet(buf, off, ts, total, n)
            return
        if kind in (KIND_WRITE, KIND_READ):
            container = self._containers.get(cgroup_id)
            if container is None:
                container = self._container_of(buf, off, ts, cgroup_id)
            key: tuple[Any, ...] = (kind, container, dev, inode)
        elif kind in (KIND_MEM, KIND_MODULE, KIND_MODULE_FD):
            key = (kind, pid, seq)
        else:
            raise ValueError(f"capture record of unknown kind {kind}")
        p = self._pending.get(key)
        if p is None:
            p = self._pending[key] = self._new_pending(buf, off, ts, kind, dev, inode, seq, mode, total)
        data = bytes(buf[off + _CHUNK.size : off + _CHUNK.size + n])
        p.last_ts = ts
        p.seen = time.monotonic()
        if flags & CHUNK_PATH:
            p.art.source_path = data.decode(errors="replace")
            return
        if kind == KIND_MODULE_FD:
            self._copy_module_fd(p, fd, dev, inode, mode)
            self._finish(p, out)
            return
        self.store.write(p.art, c_off, data)
        if kind in (KIND_MEM, KIND_MODULE) and p.art.written + p.art.dropped + self._kernel_lost(p) >= p.total:
            self._finish(p, out)

    def _packet(self, buf: Any, off: int, ts: int, length: int, n: int) -> None:
        """Append one packet to pcap/single.pcap (its header first)."""
        key = (KIND_NET,)
        p = self._pending.get(key)
        if p is None:
            if self._decoder is None:
                raise ValueError("capture record before the collector started")
            art = Artifact("pcap", "pcap", "single.pcap", append=True)
            p = self._pending[key] = _Pending(art, self._decoder.context_event(buf, off, ts), ts, 0.0, (0, 0, 0, 0, 0))
            self.store.write(art, 0, _PCAP_HEADER)
        epoch = ts + (self._decoder.boot_to_epoch_ns if self._decoder else 0)
        sec, nsec = divmod(epoch, 1_000_000_000)
        start = off + _CHUNK.size
        record = _PCAP_RECORD.pack(sec, nsec, n, length) + bytes(buf[start : start + n])
        self.store.write(p.art, 0, record)
        p.last_ts = ts
        p.seen = time.monotonic()

    def _container_of(self, buf: Any, off: int, ts: int, cgroup_id: int) -> str:
        """The directory of the container of cgroup ``cgroup_id`` (cached)."""
        if self._decoder is None:
            raise ValueError("capture record before the collector started")
        if len(self._containers) > 4096:
            self._containers.clear()
        container = safe_container_id(self._decoder.context_event(buf, off, ts).get("containerId", ""))
        self._containers[cgroup_id] = container
        return container

    def _new_pending(
        self, buf: Any, off: int, ts: int, kind: int, dev: int, inode: int, seq: int, mode: int, total: int
    ) -> _Pending:
        """The artifact a chunk starts, with the context of the process that caused it."""
        if self._decoder is None:
            raise ValueError("capture record before the collector started")
        ctx = self._decoder.context_event(buf, off, ts)
        container = safe_container_id(ctx.get("containerId", ""))
        pid = ctx["hostProcessId"]
        if kind in (KIND_WRITE, KIND_READ):
            op = "write" if kind == KIND_WRITE else "read"
            art = Artifact(op, container, f"{op}.dev-{dev}.inode-{inode}", append=stat.S_IFMT(mode) in _APPEND_TYPES)
            kkey = (inode, 0, dev, kind, 0)
        elif kind == KIND_MEM:
            epoch = seq + self._decoder.boot_to_epoch_ns
            art = Artifact("mem", container, f"bin.pid-{pid}.ts-{epoch}")
            kkey = (0, seq, 0, kind, pid)
        else:
            name = "module" + (f".dev-{dev}" if dev else "") + (f".inode-{inode}" if inode else "") + f".pid-{pid}"
            art = Artifact("module", container, f"{name}.ts-{seq}.part")
            art.extra["final_name"] = 0
            art.source_path = name  # replaced by the final name on completion
            kkey = (0, seq, 0, kind, pid)
        p = _Pending(art, ctx, ts, time.monotonic(), kkey, dev=dev, inode=inode, total=total)
        if kind == KIND_MEM:
            p.address = inode
        return p

    def _kernel_lost(self, p: _Pending) -> int:
        stats = self._counters.artifact(*p.key) if self._counters is not None else None
        return (stats["lost_bytes"] + stats["over_budget"]) if stats else 0

    def _copy_module_fd(self, p: _Pending, fd: int, dev: int, inode: int, mode: int) -> None:
        """Copy the image finit_module was given from the caller's fd: regular files only,
        opened without blocking (a FIFO or device there must never stall the collector)."""
        pid = p.context["hostProcessId"]
        if not stat.S_ISREG(mode):
            LOG.warning("capture module: fd %d of pid %d is not a regular file (mode %o), not copied", fd, pid, mode)
            p.art.dropped += 1
            return
        try:
            src = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as exc:
            LOG.warning("capture module: cannot open fd %d of pid %d: %s", fd, pid, exc.strerror)
            p.art.dropped += 1
            return
        try:
            st = os.fstat(src)
            if not stat.S_ISREG(st.st_mode) or st.st_ino != inode or st.st_dev != _kernel_dev(dev):
                p.art.dropped += 1
                return
            self.store.copy_from(p.art, src)
        finally:
            os.close(src)

    # ---- executed files ---------------------------------------------------------------------

    def _capture_exec(self, ev: dict[str, Any], out: list[dict[str, Any]]) -> None:
        args = {a["name"]: a["value"] for a in ev.get("args") or ()}
        path = str(args.get("pathname", ""))
        dev, inode, ctime = int(args.get("dev", 0)), int(args.get("inode", 0)), int(args.get("ctime", 0))
        if not path or not inode:
            return
        container = safe_container_id(ev.get("containerId", ""))
        key = (container, path, ctime, dev, inode)
        pid = ev["hostProcessId"]
        done = self._exec_seen.get(key)
        if done is not None:
            self._exec_seen.move_to_end(key)
            self.executed[(pid, ev["timestamp"])] = done
            return
        src = self._open_executable(ev, path, dev, inode, ctime)
        if src is None:
            self.exec_failures += 1
            LOG.warning("capture exec: %s (pid %d) could not be copied: the process and the file are gone", path, pid)
            return
        art = Artifact("exec", container, f"exec.{ev['timestamp']}.{safe_basename(path)}", source_path=path)
        try:
            self.store.copy_from(art, src)
            self.store.close_file(art)
            p = _Pending(art, ev, 0, 0.0, (0, 0, 0, 0, 0), dev=dev, inode=inode)
            info = self._report(p, out, timestamp=ev["timestamp"])
        except (OSError, UnsafePathError) as exc:  # disk full, a planted path: this copy only
            self.exec_save_errors += 1
            LOG.warning("capture exec: %s (pid %d) could not be saved: %s", path, pid, exc)
            return
        finally:
            os.close(src)
        self._exec_seen[key] = info
        if len(self._exec_seen) > _EXEC_SEEN_MAX:
            self._exec_seen.popitem(last=False)
        self.executed[(pid, ev["timestamp"])] = info

    def _open_executable(self, ev: dict[str, Any], path: str, dev: int, inode: int, ctime: int) -> int | None:
        """The executed file, opened read-only: the process's exe link while it lives, else the
        path in its mount namespace; only if it is still that file (dev, inode) with the content
        it had (ctime; for a deleted file, not modified since)."""
        pid = ev["hostProcessId"]
        candidates = [f"/proc/{pid}/exe"]
        if path.startswith("/"):
            candidates.append(f"/proc/{pid}/root{path}")
            if ev.get("mountNamespace") == self._own_mnt_ns:
                candidates.append(path)
        for name in candidates:
            try:
                fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            except OSError:
                continue
            st = os.fstat(fd)
            same = st.st_ino == inode and st.st_dev == _kernel_dev(dev) and stat.S_ISREG(st.st_mode)
            # unchanged since the exec: same ctime; or deleted since (which changes the ctime)
            # and not written after it
            unchanged = not ctime or st.st_ctime_ns == ctime or (st.st_nlink == 0 and st.st_mtime_ns <= ctime)
            if same and unchanged:
                return fd
            os.close(fd)
        return None

    # ---- reporting ------------------------------------------------------------------------

    def _flush(self, out: list[dict[str, Any]], idle: float | None) -> None:
        now = time.monotonic()
        for key, p in list(self._pending.items()):
            if p.art.kind == "pcap" and idle is not None:
                continue  # one file for the whole run: reported at the stop
            if idle is None or now - p.seen >= idle:
                if p.art.dirty:
                    try:
                        self._finish(p, out)
                    except (OSError, UnsafePathError) as exc:  # this artifact only, never the tracing
                        self.malformed += 1
                        LOG.warning("capture: %s could not be reported: %s", p.art.relpath, exc)
                del self._pending[key]

    def _finish(self, p: _Pending, out: list[dict[str, Any]]) -> None:
        art = p.art
        self.store.close_file(art)
        if art.kind == "module" and art.name.endswith(".part"):
            sha = self.store.sha256(art)
            if sha:  # nothing saved: no file to name
                self.store.rename(art, f"{art.source_path}.{sha}")
            art.source_path = ""
        ts = p.last_ts + (self._decoder.boot_to_epoch_ns if self._decoder else 0)
        self._report(p, out, timestamp=ts)
        for key, q in list(self._pending.items()):
            if q is p and art.kind in ("mem", "module"):
                del self._pending[key]

    def _report(self, p: _Pending, out: list[dict[str, Any]], timestamp: int) -> ArtifactInfo:
        art = p.art
        stats = self._counters.artifact(*p.key) if self._counters is not None and p.key[3] else None
        lost_chunks = stats["lost_chunks"] if stats else 0
        not_captured = art.dropped + (stats["over_budget"] if stats else 0)
        incomplete = bool(lost_chunks or not_captured)
        sha = self.store.sha256(art)
        path = str(self.store.path_of(art)) if sha else ""  # "": nothing saved, all of it counted
        info = ArtifactInfo(path, sha, art.size, incomplete)
        values = (
            art.source_path,
            path,
            art.size,
            sha,
            incomplete,
            lost_chunks,
            not_captured,
            p.dev,
            p.inode if art.kind != "mem" else 0,
            p.address,
        )
        name = _KIND_EVENT[art.kind]
        event = dict(p.context)
        event["timestamp"] = timestamp
        event["eventId"] = str(ARTIFACT_EVENTS[name])
        event["eventName"] = name
        event["returnValue"] = 0
        event["args"] = [{"name": n, "type": t, "value": v} for (n, t), v in zip(_ARGS, values, strict=True)]
        event["argsNum"] = len(_ARGS)
        out.append(event)
        art.dirty = False
        self.reported += 1
        if incomplete:
            self.incomplete += 1
            LOG.warning(
                "capture: %s is incomplete (%d chunks lost, %d bytes not captured)", path, lost_chunks, not_captured
            )
        if art.kind in ("write", "read") and p.inode:
            self.written[(p.dev, p.inode)] = info
        elif art.kind == "mem":
            self.regions[(p.context["hostProcessId"], p.address)] = info
        return info

    # ---- findings' evidence ------------------------------------------------------------------

    def evidence_for(self, event: dict[str, Any]) -> ArtifactInfo | None:
        """The artifact of a finding's triggering event: the file a magic_write wrote to (as
        captured now), the file a sched_process_exec executed, the region of a mem_prot_alert."""
        name = event.get("eventName")
        args = {a["name"]: a["value"] for a in event.get("args") or ()}
        pid = int(event.get("hostProcessId") or 0)
        if name == "sched_process_exec":
            return self.executed.get((pid, int(event.get("timestamp") or 0)))
        if name == "magic_write":
            key = (int(args.get("dev") or 0), int(args.get("inode") or 0))
            self.sync()
            for p in self._pending.values():
                if p.art.kind == "write" and (p.dev, p.inode) == key:
                    stats = self._counters.artifact(*p.key) if self._counters is not None else None
                    missing = p.art.dropped + (stats["lost_chunks"] + stats["over_budget"] if stats else 0)
                    sha = self.store.sha256(p.art)
                    if not sha:
                        return None  # nothing saved (over a budget): no evidence to point at
                    return ArtifactInfo(str(self.store.path_of(p.art)), sha, p.art.size, bool(missing))
            info = self.written.get(key)
            return info if info is not None and info.path else None
        if name == "mem_prot_alert":
            self.sync()
            region = self.regions.get((pid, int(args.get("addr") or 0)))
            return region if region is not None and region.path else None
        return None

    # ---- the end -----------------------------------------------------------------------------

    def close(self) -> list[dict[str, Any]]:
        """Drain the ring, report every artifact not yet reported; returns their events."""
        self.sync()
        out, self._ready = self._ready, []
        self._flush(out, idle=None)
        if self._counters is not None:
            self._totals = self._counters.totals()
            self._counters = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        return out

    def release(self) -> None:
        """Close the capture directory (after :meth:`close`)."""
        self.store.close()

    def summary(self) -> str:
        totals = self._counters.totals() if self._counters is not None else self._totals
        text = f"capture: {self.reported} artifacts reported in {self.store.out_dir}"
        if self.incomplete:
            text += f", {self.incomplete} incomplete"
        if totals.get("lost_chunks"):
            text += f", {totals['lost_chunks']} chunks lost ({totals['lost_bytes']} bytes: the capture ring was full)"
        if totals.get("not_copied"):
            text += (
                f", {totals['not_copied']} bytes not copied (over a size budget, or moved file to file by the kernel)"
            )
        if self.exec_failures:
            text += f", {self.exec_failures} executables not copied (gone)"
        if self.malformed:
            text += f", {self.malformed} chunks or artifacts not saved (see the warnings)"
        if self.exec_save_errors:
            text += f", {self.exec_save_errors} executables not saved (the capture directory refused them)"
        return text

    @property
    def out_dir(self) -> Path:
        return self.store.out_dir
