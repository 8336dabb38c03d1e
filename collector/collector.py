"""The live collector: load bpf/tracee.bpf.o, configure it, attach, read and decode events.

    collector = Collector(object_path, btf_path, ["execve", "security_file_open"],
                          filters=KernelFilters(comms={"bash"}))
    collector.start()
    try:
        while running:
            for event in collector.poll(100):   # trace.Event dicts (v0.24 layout)
                ...
    finally:
        collector.stop()

Filtering happens in the kernel, before an event is built: the selected event ids, the
pid/uid/comm/mount-namespace allow sets, container-only (not the host's mount
namespace), follow (descendants of traced processes are traced) and new-pids-only
(processes started after :meth:`Collector.start`). The collector's own process is never
traced.
"""

from __future__ import annotations

import errno
import gc
import logging
import mmap
import os
import struct
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self

from pytracee.engine.catalogue import SYSCALLS
from pytracee.engine.selectors import ArgPattern

from . import compat, datafilters, wire
from .decode import Decoder
from .libbpf import (
    BpfLink,
    BpfMap,
    BpfObject,
    BpfProgram,
    LibbpfError,
    possible_cpus,
    prog_id_of_fd,
)
from .loader import (
    BUFFER_KINDS,
    KPROBE_PROGRAMS,
    OPTIONAL_PROGRAMS,
    OPTIONAL_TAIL_PROGRAMS,
    ObjectLoader,
    kprobes_refused,
    refuse_kprobes,
)
from .perfbuf import PerfBufferReader, online_cpus
from .ringbuf import RingBufferReader

if TYPE_CHECKING:
    from .capture import CaptureManager

__all__ = ["BUFFER_KINDS", "Collector", "KernelFilters", "supported_events"]

LOG: Final = logging.getLogger("pytracee.collector")

#: What the kernel's error code of a lost record means (bpf/maps.h: count_lost).
LOST_REASONS: Final[dict[int, str]] = {
    errno.EAGAIN: "the ring buffer was full (or its lock busy)",
    errno.ENOSPC: "a perf buffer was full",
    errno.E2BIG: "a record was larger than its buffer (a collector bug: please report it)",
}

SEL_EVENT, SEL_ENTER, SEL_EXIT, SEL_KPROBE, SEL_EXIT_ARGS = 0x1, 0x2, 0x4, 0x8, 0x10
#: Syscalls whose arguments are as good at exit as at enter (registers the syscall leaves as
#: they were, memory it only reads), so the kernel records them whole at exit (SEL_EXIT_ARGS)
#: when nothing needs them at enter: where no traced syscall needs its enter, the sys_enter
#: program is not attached at all. Tracee too reads the arguments' memory at exit.
EXIT_ARGS_SYSCALLS: Final = frozenset(
    SYSCALLS[name]
    for name in (
        "open", "creat", "openat", "openat2", "open_by_handle_at", "close", "dup", "dup2", "dup3", "connect",
        "rename", "renameat", "renameat2",
    )
)  # fmt: skip
F_PID, F_UID, F_COMM, F_MNTNS, F_CONTAINER, F_FOLLOW, F_NEW_PIDS = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40

#: Programs attached to tracepoints, and when each is needed.
_SYSCALL_PROGS: Final = ("tracee_sys_enter", "tracee_sys_exit")
_ALWAYS_PROGS: Final = ("tracee_sched_exec", "tracee_sched_exit")  # executable + state tracking

_CG_NAME_LEN: Final = wire.CG_NAME_LEN  # what the kernel keeps of a cgroup's name, its NUL included
_FILTER_ENTRIES: Final = 1024  # max_entries of f_pids, f_uids, f_comms, f_mntns (bpf/maps.h)


def supported_events() -> list[str]:
    """Names of the events the collector can produce."""
    return wire.supported_events()


def _fields(v: Any) -> tuple[Any, ...]:
    return v if isinstance(v, tuple) else (v,)


def _map_update(m: BpfMap, key: Any, value: Any) -> None:
    """Set ``key`` to ``value`` in ``m``, packed as collector/wire.py's MAPS says for that map
    (a tuple: the fields of a struct, in order; anything else: a scalar)."""
    fmt = wire.MAPS[m.name]
    m.update(fmt.key.pack(*_fields(key)), fmt.value.pack(*_fields(value)))


def _map_lookup(m: Any, name: str, key: Any) -> dict[str, Any] | None:
    """The fields of the struct under ``key`` in map ``m`` (called ``name``), or None."""
    fmt = wire.MAPS[name]
    raw = m.lookup(fmt.key.pack(*_fields(key)))
    return fmt.value.unpack_named(raw) if raw is not None else None


def _map_per_cpu(m: BpfMap, key: Any) -> list[int] | None:
    """The per-CPU scalar values under ``key`` in ``m``, one per possible CPU, or None."""
    fmt = wire.MAPS[m.name]
    ncpu = possible_cpus()
    raw = m.lookup(fmt.key.pack(*_fields(key)), value_size=fmt.value_stride * ncpu)
    if raw is None:
        return None
    return [fmt.value.unpack_from(raw, i * fmt.value_stride)[0] for i in range(ncpu)]


@dataclass
class KernelFilters:
    """In-kernel scope filters; empty sets and False flags mean "no filter"."""

    pids: set[int] = field(default_factory=set)  # thread-group ids (host pid namespace)
    uids: set[int] = field(default_factory=set)
    comms: set[str] = field(default_factory=set)  # at most 15 characters each
    mnt_ns: set[int] = field(default_factory=set)
    container_only: bool = False  # only tasks outside the host's mount namespace
    #: The mount namespace counted as the host's for container_only (default: pid 1's,
    #: or the kernel's initial one when /proc/1/ns/mnt is not readable).
    host_mnt_ns: int | None = None
    follow: bool = False  # descendants of traced processes are traced too
    new_pids_only: bool = False  # only processes started after tracing began

    def flags(self) -> int:
        return (
            (F_PID if self.pids else 0)
            | (F_UID if self.uids else 0)
            | (F_COMM if self.comms else 0)
            | (F_MNTNS if self.mnt_ns else 0)
            | (F_CONTAINER if self.container_only else 0)
            | (F_FOLLOW if self.follow else 0)
            | (F_NEW_PIDS if self.new_pids_only else 0)
        )


class _MapContext:
    """The decoder's view of the proc_info and cgrp_info maps."""

    def __init__(self, proc_info: BpfMap, cgrp_info: BpfMap) -> None:
        self._proc_info = proc_info
        self._cgrp_info = cgrp_info

    def executable(self, host_pid: int, leader_start: int, gen: int) -> str:
        info = _map_lookup(self._proc_info, "proc_info", host_pid)
        if info is None:
            return ""
        if info["start_time"] != leader_start:  # the pid now belongs to another process
            return ""
        current = info["gen"]
        slot = gen & 1 if 0 <= current - gen <= 1 else current & 1
        exe: bytes = info["exe"][slot]
        length: int = info["len"][slot]
        return exe[: min(length, len(exe))].decode(errors="replace")

    def cgroup_names(self, cgroup_id: int) -> list[bytes]:
        info = _map_lookup(self._cgrp_info, "cgrp_info", cgroup_id)
        if info is None:
            return []
        return [name.split(b"\0", 1)[0] for name in info["names"]]


def _cgroup_hierarchy() -> tuple[int, int]:
    """(subsys id or -1 for cgroup v2, hierarchy id) of the cgroup tree to take ids from."""
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and parts[1] == "/sys/fs/cgroup" and parts[2] == "cgroup2":
                    return -1, 0
    except OSError:
        pass
    try:
        with open("/proc/cgroups") as f:
            rows = [line.split() for line in f if not line.startswith("#")]
    except OSError:
        return -1, 0
    mounted = {row[0]: (i, int(row[1])) for i, row in enumerate(rows) if len(row) >= 4 and int(row[1]) > 0}
    for name in ("memory", "cpuset", "pids", "cpu", "cpuacct", "devices", "freezer", "blkio"):
        if name in mounted:
            return mounted[name]
    return -1, 0


def _host_mnt_ns() -> int:
    """Inode of the host's (pid 1's) mount namespace; 0 lets the kernel use init_nsproxy."""
    try:
        return os.stat("/proc/1/ns/mnt").st_ino
    except OSError:
        return 0


def _ring_size(n: int) -> int:
    """The ring-buffer size libbpf accepts: a power of two, at least one page."""
    size = max(n, mmap.PAGESIZE)
    return 1 << (size - 1).bit_length()


class Collector:
    """Load the BPF object, trace the selected events and hand out trace.Event dicts."""

    def __init__(
        self,
        object_path: Path,
        btf_path: Path | None,
        events: Collection[str],
        *,
        filters: KernelFilters | None = None,
        ring_buffer_bytes: int = 32 << 20,
        wakeup_bytes: int = 64 << 10,
        buffer: str = "auto",
        perf_buffer_pages: int = 1024,
        kprobes: str = "auto",
        data_filters: Mapping[str, ArgPattern] | None = None,
        capture: CaptureManager | None = None,
    ) -> None:
        unknown = sorted(set(events) - set(wire.EVENTS))
        if unknown:
            raise ValueError(f"events the collector cannot produce: {', '.join(unknown)}")
        if not events and capture is None:
            raise ValueError("no events selected")
        #: Forensic capture (``--capture``): artifacts and their events (collector/capture/).
        self.capture = capture
        if capture is not None and buffer == "perf":
            raise ValueError("--capture needs the BPF ring buffer (kernel 5.8+), not perf buffers")
        self.object_path = Path(object_path)
        self.btf_path = Path(btf_path) if btf_path is not None else None
        self.events = sorted(set(events))
        self.filters = filters or KernelFilters()
        #: Path filters tested in the kernel (see collector/datafilters.py): event name -> patterns.
        self.data_filters = dict(data_filters or {})
        unfit = sorted(set(self.data_filters) - set(datafilters.KERNEL_FILTERABLE))
        if unfit:
            raise ValueError(f"the kernel cannot filter these events on their data: {', '.join(unfit)}")
        for comm in self.filters.comms:
            if len(os.fsencode(comm)) > 15:
                raise ValueError(f"comm filter {comm!r} is longer than 15 bytes (the kernel's comm length)")
        f = self.filters
        for what, values in (("pids", f.pids), ("uids", f.uids), ("comms", f.comms), ("mnt_ns", f.mnt_ns)):
            if len(values) > _FILTER_ENTRIES:
                raise ValueError(f"at most {_FILTER_ENTRIES} {what} can be filtered in the kernel, not {len(values)}")
        if buffer not in BUFFER_KINDS:
            raise ValueError(f"buffer kind {buffer!r} is not one of {', '.join(BUFFER_KINDS)}")
        if kprobes not in ("auto", "off"):
            raise ValueError(f"kprobes must be 'auto' or 'off', not {kprobes!r}")
        self.kprobes = kprobes
        if perf_buffer_pages <= 0 or perf_buffer_pages & (perf_buffer_pages - 1):
            raise ValueError(f"perf buffer size of {perf_buffer_pages} pages is not a power of two")
        #: The requested output kind; :attr:`buffer_kind` is the one in use once started.
        self.buffer = buffer
        self.buffer_kind = ""
        self.perf_buffer_pages = perf_buffer_pages
        self.ring_buffer_bytes = _ring_size(ring_buffer_bytes)
        #: The kernel wakes the reader once this many bytes wait (0: as soon as it is idle);
        #: below that, :meth:`poll` delivers events when its timeout expires.
        self.wakeup_bytes = max(0, min(wakeup_bytes, self.ring_buffer_bytes // 4))
        self._obj: BpfObject | None = None
        self._links: list[BpfLink] = []
        self._reader: RingBufferReader | PerfBufferReader | None = None
        self._decoder: Decoder | None = None
        self._lost_map: BpfMap | None = None
        self._trunc_map: BpfMap | None = None
        self._lost_at_stop = 0
        self._df_map: BpfMap | None = None
        self._filtered_at_stop = 0
        self._truncated_at_stop = 0
        self._lost_reason_at_stop = ""
        self._loaded_kprobes: list[str] = []
        self.disabled_programs: list[str] = []
        #: LSM events emitted by their kprobe program (the others are emulated), once started.
        self.kprobe_events: list[str] = []
        self.attached_programs: list[str] = []
        #: Optional tail-call targets the kernel loaded and that were put in their slot.
        self.tail_programs: list[str] = []
        self.program_ids: list[int] = []
        #: Records that could not be decoded (skipped and counted, never silently).
        self.malformed = 0

    # ---- selection ---------------------------------------------------------------------

    def _selection(self) -> tuple[dict[int, int], dict[int, bytes]]:
        """evsel bits by event id, and the sysargs descriptors of the selected syscalls."""
        sel: dict[int, int] = {}
        sysargs: dict[int, bytes] = {}
        for name in self.events:
            spec = wire.EVENTS[name]
            sel[spec.id] = sel.get(spec.id, 0) | SEL_EVENT
            if spec.syscall:
                sysargs[spec.id] = wire.sys_kinds(spec)
            if name in self.kprobe_events:
                sel[spec.id] |= SEL_KPROBE  # its kprobe emits it: no emulation, no syscall handlers
                continue
            for sc, when in spec.needs:
                sid = SYSCALLS[sc]
                sel[sid] = sel.get(sid, 0) | (SEL_ENTER if when == "enter" else SEL_EXIT)
        if self.capture is not None:
            from .capture import kernel as capture_kernel

            for sid, bits in capture_kernel.syscall_bits(self.capture.opts).items():
                sel[sid] = sel.get(sid, 0) | bits
        for sid in EXIT_ARGS_SYSCALLS & sel.keys():
            if not sel[sid] & (SEL_ENTER | SEL_KPROBE):
                sel[sid] |= SEL_EXIT_ARGS
        return sel, sysargs

    def _needs_sys_enter(self) -> bool:
        """Whether a traced syscall has work at enter (none: sys_enter is left unattached)."""
        syscall_ids = set(SYSCALLS.values())
        return any(
            bits & (SEL_EVENT | SEL_ENTER | SEL_EXIT) and not bits & SEL_EXIT_ARGS
            for sid, bits in self._selection()[0].items()
            if sid in syscall_ids
        )

    def _needs_syscalls(self) -> bool:
        if self.capture is not None:
            from .capture import kernel as capture_kernel

            if capture_kernel.syscall_bits(self.capture.opts):
                return True
        return any(
            wire.EVENTS[n].syscall or (wire.EVENTS[n].needs and n not in self.kprobe_events) for n in self.events
        )

    # ---- lifecycle ---------------------------------------------------------------------

    def _configure(self, obj: BpfObject) -> None:
        f = self.filters
        subsys, hierarchy = _cgroup_hierarchy()
        boot_now = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        host_ns = f.host_mnt_ns if f.host_mnt_ns is not None else _host_mnt_ns()
        _map_update(
            obj.map("fcfg"), 0, (os.getpid(), f.flags(), host_ns, subsys, hierarchy, 0, boot_now, self.wakeup_bytes)
        )
        for name, values in (("f_pids", f.pids), ("f_uids", f.uids), ("f_mntns", f.mnt_ns)):
            m = obj.map(name)
            for v in values:
                _map_update(m, v, 1)
        for comm in f.comms:
            _map_update(obj.map("f_comms"), os.fsencode(comm), 1)
        sel, sysargs = self._selection()
        evsel = obj.map("evsel")
        for event_id, bits in sel.items():
            _map_update(evsel, event_id, bits)
        sysmap = obj.map("sysargs")
        for sid, desc in sysargs.items():
            _map_update(sysmap, sid, wire.SYS_DESC.unpack_from(desc))  # (kinds, pad), from wire.sys_kinds
        compat_ids = obj.map("compat_ids")  # 32-bit syscalls: reported as their x86_64 twins
        for ia32, value in compat.kernel_entries():
            _map_update(compat_ids, ia32, value)
        if self.data_filters:
            datafilters.install(lambda name, key, value: _map_update(obj.map(name), key, value), self.data_filters)
        programs = obj.programs()
        self.tail_programs = []
        for name, (table, slot, _event) in OPTIONAL_TAIL_PROGRAMS.items():
            prog = programs.get(name)
            if prog is not None and prog.autoload and prog.fd >= 0:
                _map_update(obj.map(table), slot, prog.fd)
                self.tail_programs.append(name)
        if self.capture is not None:
            from .capture import kernel as capture_kernel

            capture_kernel.configure(obj, self.capture.opts)
            capture_kernel.install_programs(obj, capture_kernel.programs_needed(self.capture.opts))

    def _load(self) -> BpfObject:
        try_kprobes = self.kprobes == "auto" and not kprobes_refused()
        loader = ObjectLoader(
            self.object_path,
            self.btf_path,
            buffer=self.buffer,
            ring_buffer_bytes=self.ring_buffer_bytes,
            events=self.events,
            kprobe_events=self.events if try_kprobes else (),
            **self._capture_load_options(),
        )
        obj = loader.load()
        self.buffer_kind = loader.buffer_kind
        self.disabled_programs = loader.disabled_programs
        self._loaded_kprobes = loader.loaded_kprobes
        return obj

    def _capture_load_options(self) -> dict[str, Any]:
        if self.capture is None:
            return {}
        from .capture import kernel as capture_kernel

        return {
            "capture_programs": capture_kernel.programs_needed(self.capture.opts),
            "capture_ring_bytes": self.capture.opts.ring_bytes,
        }

    def _attach_kprobes(self, obj: BpfObject) -> None:
        """Attach the loaded kprobe programs; their events are then not emulated."""
        self.kprobe_events = []
        programs = obj.programs()
        failures: list[str] = []
        for event, name in KPROBE_PROGRAMS.items():
            if event not in self.events:
                continue
            if name in self._loaded_kprobes:
                try:
                    self._attach_program(name, programs[name])
                except LibbpfError as exc:  # e.g. the hook is not a probe-able function on this kernel
                    failures.append(f"{event}: {exc.strerror}")
                else:
                    self.kprobe_events.append(event)
                    LOG.debug("%s: from a kprobe on its LSM hook", event)
                    continue
            LOG.debug(
                "%s: emulated from syscall tracepoints (%s)",
                event,
                "kprobes off" if self.kprobes == "off" else kprobes_refused() or "its kprobe did not attach",
            )
        if failures and not self.kprobe_events:
            refuse_kprobes("attaching: " + "; ".join(failures))  # none attached: kprobes are refused here
        elif failures:
            LOG.info("kprobes that did not attach (emulated instead): %s", "; ".join(failures))

    def _attach(self, obj: BpfObject) -> None:
        programs = obj.programs()
        wanted = list(_ALWAYS_PROGS) + list(OPTIONAL_PROGRAMS)
        if self._needs_syscalls():
            wanted += [p for p in _SYSCALL_PROGS if p != "tracee_sys_enter" or self._needs_sys_enter()]
        if "sched_process_fork" in self.events or self.filters.follow:
            wanted.append("tracee_sched_fork")
        if self.capture is not None and self.capture.opts.network:
            from .capture.kernel import attach_network

            self._links += attach_network(obj)
        for name in wanted:
            prog = programs.get(name)
            if prog is None or name in self.disabled_programs:
                continue
            try:
                self._attach_program(name, prog)
            except LibbpfError:
                if name in OPTIONAL_PROGRAMS:
                    LOG.warning("cannot attach optional BPF program %s; continuing without it", name, exc_info=True)
                    continue
                raise

    def _attach_program(self, name: str, prog: BpfProgram) -> None:
        """Attach one program and remember its link, name and id (raises LibbpfError)."""
        self._links.append(prog.attach())
        self.attached_programs.append(name)
        self.program_ids.append(prog_id_of_fd(prog.fd))

    def start(self) -> None:
        """Load, configure, attach: events flow from the next :meth:`poll` on."""
        if self._obj is not None:
            raise RuntimeError("collector already started")
        obj = self._load()
        self._obj = obj
        try:
            self._attach_kprobes(obj)  # before _configure: the events they emit need no emulation
            self._configure(obj)
            self._reader = self._open_reader(obj)
            self._lost_map = obj.map("lost")
            self._df_map = obj.map("df_stats")
            self._trunc_map = next((m for m in obj.maps() if m.name == "trunc_args"), None)  # older objects: none
            boot_to_epoch = time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)
            self._decoder = Decoder(boot_to_epoch, _MapContext(obj.map("proc_info"), obj.map("cgrp_info")))
            if self.capture is not None:
                if self.buffer_kind != "ring":
                    raise LibbpfError(errno.EOPNOTSUPP, "--capture needs the BPF ring buffer (kernel 5.8+)")
                self.capture.attach(obj, self._decoder, self._reader)
            self._attach(obj)
        except BaseException:  # an interrupt too: detach what was attached
            self.stop()
            raise

    def _open_reader(self, obj: BpfObject) -> RingBufferReader | PerfBufferReader:
        if self.buffer_kind == "ring":
            return RingBufferReader(obj.map("events").fd, self.ring_buffer_bytes)
        perf_map = obj.map("perf_events")

        def install(cpu: int, fd: int) -> None:
            _map_update(perf_map, cpu, fd)

        return PerfBufferReader(online_cpus(), self.perf_buffer_pages, self.wakeup_bytes, install)

    def poll(self, timeout_ms: int, max_events: int | None = 16384) -> list[dict[str, Any]]:
        """The events ready now (at most ``max_events``), waiting up to ``timeout_ms`` for the first one;
        with capture, the artifact events ready too (all that are left once detached)."""
        if self.capture is None:
            return self._poll(timeout_ms, max_events)
        out = self.capture.process(self._poll(timeout_ms, max_events))
        if not self._links and not out:
            out = self.capture.close()  # detached and drained: report what is left
        return out

    def _poll(self, timeout_ms: int, max_events: int | None) -> list[dict[str, Any]]:
        decoder = self._decoder
        if decoder is None:
            raise RuntimeError("collector is not started")
        return self._drain(timeout_ms, max_events, decoder.decode_fast, decoder.ring_decoder())

    def poll_json(
        self, timeout_ms: int, max_events: int | None = 16384, as_dicts: Collection[int] = ()
    ) -> list[bytes | dict[str, Any]]:
        """Like :meth:`poll`, but each event as its JSON line (bytes, newline included), as
        ``tracee -o json`` prints it, without building its dict (see :meth:`Decoder.encode`).

        Events whose line would need escaping, and those of the event ids ``as_dicts``
        (say, exec events whose environment the printer hides), come as dicts.
        """
        decoder = self._decoder
        if decoder is None:
            raise RuntimeError("collector is not started")
        decoder.dict_events = frozenset(as_dicts)
        return self._drain(timeout_ms, max_events, decoder.encode_or_decode, decoder.ring_drainer())

    def _drain(
        self,
        timeout_ms: int,
        max_events: int | None,
        convert: Callable[[Any, int, int], Any],
        drainer: Callable[[Any, Any, int, int, int, list[Any]], int] | None = None,
    ) -> list[Any]:
        """``convert(buffer, offset, size)`` of each record ready (at most ``max_events``, the
        first waited for up to ``timeout_ms``); records it refuses are counted as malformed.
        ``drainer``: the C loop over a ring buffer's records, where it is built."""
        reader = self._reader
        if reader is None:
            raise RuntimeError("collector is not started")
        out: list[Any] = []
        if not reader.wait(timeout_ms):
            return out
        # Events hold no reference cycles; the cyclic GC would run every few hundred
        # events while a batch piles up and cost more than the decoding.
        gc_enabled = gc.isenabled()
        gc.disable()
        try:
            if isinstance(reader, RingBufferReader):
                if drainer is not None:
                    errors = reader.drain_with(drainer, out, max_events)
                else:
                    errors = reader.drain_into(out, convert, max_events)
            else:  # perf buffers: records that wrap the buffer's end come as bytes
                errors = 0

                def handle(buf: Any, off: int, size: int) -> None:
                    nonlocal errors
                    try:
                        out.append(convert(buf, off, size))
                    except (ValueError, struct.error):
                        errors += 1

                reader.drain(handle, max_events)
        finally:
            if gc_enabled:
                gc.enable()
        if errors:
            self.malformed += errors
            LOG.warning("%d malformed records skipped (%d in total)", errors, self.malformed)
        return out

    def raw_records(self, timeout_ms: int) -> list[bytes]:
        """Undecoded records (for recording test data and debugging)."""
        reader = self._reader
        if reader is None:
            raise RuntimeError("collector is not started")
        out: list[bytes] = []
        if reader.wait(timeout_ms):
            reader.drain(lambda buf, off, size: out.append(bytes(buf[off : off + size])))
        return out

    @property
    def lost(self) -> int:
        """Ring-buffer reserve failures so far (events dropped in the kernel), all CPUs."""
        m = self._lost_map
        if m is None:
            return self._lost_at_stop
        values = _map_per_cpu(m, 0)
        if values is None:
            return self._lost_at_stop
        return sum(values)

    @property
    def filtered(self) -> int:
        """Events the in-kernel data filters dropped so far (:attr:`data_filters`), all CPUs."""
        m = self._df_map
        if m is None:
            return self._filtered_at_stop
        values = _map_per_cpu(m, 0)
        return sum(values) if values is not None else self._filtered_at_stop

    @property
    def truncated(self) -> int:
        """Argument values the kernel cut at a size limit so far (bpf/common.h), all CPUs.

        Strings are cut at 4095 bytes, argv/envp at 64 elements (or where the record is
        full), their elements at 4095 bytes, the argument areas of sched_process_exec at
        8191 bytes, and paths rebuilt from the kernel at 48 components or 4095 bytes.
        """
        m = self._trunc_map
        if m is None:
            return self._truncated_at_stop
        values = _map_per_cpu(m, 0)
        if values is None:
            return self._truncated_at_stop
        return sum(values) + (self._decoder.truncated if self._decoder else 0)

    @property
    def lost_reason(self) -> str:
        """Why events were lost, from the kernel's error code of the last loss on any CPU."""
        m = self._lost_map
        codes: set[int] = set()
        if m is not None:
            values = _map_per_cpu(m, 1)
            codes = set(values or ()) - {0}
        if not codes:
            return self._lost_reason_at_stop
        return "; ".join(LOST_REASONS.get(c, f"error {c} ({os.strerror(c)})") for c in sorted(codes))

    def detach(self) -> None:
        """Detach every program: no new events; those in the buffer can still be polled (idempotent)."""
        for link in self._links:
            try:
                link.destroy()
            except OSError as exc:  # pragma: no cover - destroy only fails on a bad link
                if exc.errno != errno.ENOENT:
                    LOG.warning("detaching %s failed: %s", link.program, exc)
        self._links.clear()

    def discard(self) -> int:
        """Detach, then drop the records still in the kernel buffer, undecoded; returns how many."""
        self.detach()
        if self._reader is None:
            return 0
        count = 0

        def skip(buf: Any, off: int, size: int) -> None:
            nonlocal count
            count += 1

        while self._reader.available() and self._reader.drain(skip, 65536):
            pass
        return count

    def stop(self) -> None:
        """Detach every program and close the object (idempotent)."""
        self.detach()
        if self.capture is not None and self._obj is not None:
            self.capture.close()
            summary = self.capture.summary()
            (LOG.warning if self.capture.incomplete or "lost" in summary else LOG.info)("%s", summary)
        if self._lost_map is not None:
            self._lost_at_stop = self.lost
            self._lost_reason_at_stop = self.lost_reason
        if self._df_map is not None:
            self._filtered_at_stop = self.filtered
            self._df_map = None
        if self._trunc_map is not None:
            self._truncated_at_stop = self.truncated
        self._trunc_map = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._lost_map = None
        self._decoder = None
        if self._obj is not None:
            self._obj.close()
            self._obj = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
