"""Loading the collector's BPF object: what the kernel accepts is found by trying it.

Feature probes (does this kernel have ring buffers, kprobes, BPF-LSM?) are not trusted:
the real object is loaded with the preferred choices and, when the kernel refuses a
part, loaded again without it. Three choices are made this way:

* **the output buffer**: a BPF ring buffer, or per-CPU perf buffers on kernels that
  cannot create one (before 5.8; ``buffer="auto"``);
* **kprobes on the LSM hooks** (bpf/kprobes.h) for the selected LSM events, or their
  emulation from tracepoints where kprobes are refused (sandboxes, lockdown): once
  refused, they are not tried again in this process;
* **optional programs** (``OPTIONAL_PROGRAMS``) whose loss only costs a feature.

Load-time constants (``struct load_cfg`` in bpf/maps.h, section ``.rodata.load``) tell
the programs which output to use and whether the kernel has BTF for BTF-typed helpers;
the verifier drops the code they turn off.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from . import wire
from .btf import BtfError, read_btf
from .libbpf import BpfObject, LibbpfError

__all__ = [
    "BUFFER_KINDS",
    "KERNEL_BTF",
    "KPROBE_PROGRAMS",
    "IncompatibleObjectError",
    "ObjectLoader",
    "kprobes_refused",
    "layout_problems",
    "refuse_kprobes",
]

LOG: Final = logging.getLogger("pytracee.collector")

#: Kinds of kernel output buffer: ``auto`` is the ring buffer, or perf buffers where the
#: kernel cannot load the object with a ring buffer.
BUFFER_KINDS: Final = ("auto", "ring", "perf")
KERNEL_BTF: Final = Path("/sys/kernel/btf/vmlinux")
#: LSM events with a kprobe program on their hook (bpf/kprobes.h), by event name.
KPROBE_PROGRAMS: Final[dict[str, str]] = {
    "security_file_open": "kprobe_security_file_open",
    "security_bprm_check": "kprobe_security_bprm_check",
    "security_socket_connect": "kprobe_security_socket_connect",
    "security_sb_mount": "kprobe_security_sb_mount",
}
#: Programs whose failure to load or attach only loses a feature (retried without them).
OPTIONAL_PROGRAMS: Final = ("tracee_cgroup_mkdir",)
#: Tail-call targets that only some kernels load (a bpf_find_vma callback needs 5.13+), with
#: their prog-array slot and the event they serve: loaded when that event is selected and
#: the kernel has BTF, put in their slot by the collector when they loaded; otherwise the
#: caller keeps its fallback (retried without them, like the optional programs).
OPTIONAL_TAIL_PROGRAMS: Final[dict[str, tuple[str, int, str]]] = {
    "enter_mprotect_vma": ("prog_vma", 0, "mem_prot_alert"),
    "exec_interp": ("prog_exec", 1, "sched_process_exec"),
}

#: Maps the collector uses: an object without one was built from other sources.
REQUIRED_MAPS: Final = (
    ".rodata.load",
    "events",
    "perf_events",
    "lost",
    "evsel",
    "sysargs",
    "fcfg",
    "f_pids",
    "f_uids",
    "f_comms",
    "f_mntns",
    "compat_ids",
    "proc_info",
    "cgrp_info",
)

_FAILED_PROG: Final = re.compile(r"prog '(\w+)': failed to load")

#: Where libbpf attaches kprobes: the kprobe PMU, or the legacy tracefs interface.
KPROBE_INTERFACES: Final = (
    Path("/sys/bus/event_source/devices/kprobe/type"),
    Path("/sys/kernel/tracing/kprobe_events"),
    Path("/sys/kernel/debug/tracing/kprobe_events"),
)

#: Why this process's kernel refused the kprobe programs ("" until it did).
_kprobes_refused = ""


def kprobes_refused() -> str:
    """Why kprobes cannot be used here, or "" while they may be.

    Set once the kernel refused to load or attach them in this process, or when it has
    no interface to attach them through (then there is nothing to try).
    """
    if not _kprobes_refused and not any(p.exists() for p in KPROBE_INTERFACES):
        refuse_kprobes("the kernel has no kprobe interface (no kprobe PMU, no kprobe_events)")
    return _kprobes_refused


def refuse_kprobes(reason: str) -> None:
    """Remember for this process that kprobes are refused (and say so once)."""
    global _kprobes_refused
    if not _kprobes_refused:
        _kprobes_refused = reason
        LOG.info("kprobes cannot be used here (%s): LSM events are emulated from syscall tracepoints", reason)


class IncompatibleObjectError(OSError):
    """The BPF object was not built from this version's sources."""


_layout_checked: dict[tuple[str, int, int, int], list[str]] = {}


def layout_problems(object_path: Path) -> list[str]:
    """How the structs and map types in the object's BTF differ from collector/wire.py's
    layouts (empty: they agree); checked once per version of the file."""
    st = object_path.stat()
    key = (str(object_path), st.st_ino, st.st_size, st.st_mtime_ns)
    problems = _layout_checked.get(key)
    if problems is None:
        try:
            problems = wire.layout_mismatches(read_btf(object_path))
        except BtfError as exc:
            problems = [str(exc)]
        _layout_checked[key] = problems
    return problems


class ObjectLoader:
    """Open and load ``object_path`` with the best output and programs the kernel accepts."""

    def __init__(
        self,
        object_path: Path,
        btf_path: Path | None,
        *,
        buffer: str = "auto",
        ring_buffer_bytes: int,
        events: Collection[str] = (),
        kprobe_events: Collection[str] = (),
        capture_programs: Collection[str] = (),
        capture_ring_bytes: int = 0,
    ) -> None:
        if buffer not in BUFFER_KINDS:
            raise ValueError(f"buffer kind {buffer!r} is not one of {', '.join(BUFFER_KINDS)}")
        self.object_path = object_path
        self.btf_path = btf_path
        self.buffer = buffer
        self.ring_buffer_bytes = ring_buffer_bytes
        #: The selected events (for the optional tail-call targets).
        self.events = set(events)
        #: Kprobe programs to try, for these selected events.
        self.kprobe_programs = [KPROBE_PROGRAMS[e] for e in kprobe_events if e in KPROBE_PROGRAMS]
        #: Forensic capture (bpf/capture.h): its programs to load, its ring buffer's size.
        self.capture_programs = list(capture_programs)
        self.capture_ring_bytes = capture_ring_bytes
        #: After :meth:`load`: the output in use ("ring" or "perf"), the programs left out.
        self.buffer_kind = ""
        self.disabled_programs: list[str] = []

    @property
    def loaded_kprobes(self) -> list[str]:
        """The kprobe programs in the loaded object."""
        return [p for p in self.kprobe_programs if p not in self.disabled_programs]

    def load(self) -> BpfObject:
        """The loaded object (the output: ring buffer, else perf buffers for ``auto``)."""
        if self.buffer != "auto":
            obj = self._load_with(self.buffer)
            self.buffer_kind = self.buffer
            return obj
        try:
            obj = self._load_with("ring")
            self.buffer_kind = "ring"
        except LibbpfError as ring_error:
            try:
                obj = self._load_with("perf")
            except LibbpfError:
                raise ring_error from None
            LOG.warning(
                "the BPF object does not load with a ring buffer here (%s); using perf buffers",
                os.strerror(ring_error.errno or errno.EINVAL),
            )
            LOG.debug("loading with a ring buffer failed: %s", ring_error.strerror)
            self.buffer_kind = "perf"
        LOG.debug("kernel output: %s buffer", self.buffer_kind)
        return obj

    def _open(self, kind: str) -> BpfObject:
        obj = BpfObject(self.object_path, btf_custom_path=self.btf_path)
        try:
            missing = sorted(set(REQUIRED_MAPS) - {m.name for m in obj.maps()})
            if missing:
                raise IncompatibleObjectError(
                    errno.EINVAL,
                    f"{self.object_path} was not built from this version's bpf/ sources (no map {', '.join(missing)}): "
                    "rebuild it (make -C bpf; for a cached non-CO-RE object, --build-policy always)",
                )
            problems = layout_problems(self.object_path)
            if problems:
                shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
                raise IncompatibleObjectError(
                    errno.EINVAL,
                    f"{self.object_path} was not built from this version's bpf/ sources (its layouts differ from "
                    f"collector/wire.py: {shown}): rebuild it (make -C bpf; for a cached non-CO-RE object, "
                    "--build-policy always)",
                )
            load_cfg = wire.MAPS[".rodata.load"].value
            obj.map(".rodata.load").set_initial_value(load_cfg.pack(int(KERNEL_BTF.exists()), int(kind == "perf")))
            has_captures = any(m.name == "captures" for m in obj.maps())
            if kind == "perf":
                obj.map("events").replace_with_array()  # a kernel without ring buffers cannot create it
                if has_captures:
                    obj.map("captures").replace_with_array()
            else:
                obj.map("events").set_max_entries(self.ring_buffer_bytes)
                if has_captures and self.capture_ring_bytes:
                    obj.map("captures").set_max_entries(self.capture_ring_bytes)
            programs = obj.programs()
            for name in self.kprobe_programs:
                programs[name].set_autoload(name not in self.disabled_programs)
            for name in self.capture_programs:
                programs[name].set_autoload(True)
            for name, (_table, _slot, event) in OPTIONAL_TAIL_PROGRAMS.items():
                # not needed, or never called: bpf_find_vma needs a BTF task
                if name in programs and (event not in self.events or not KERNEL_BTF.exists()):
                    programs[name].set_autoload(False)
            for name in self.disabled_programs:
                if name in programs:
                    programs[name].set_autoload(False)
        except BaseException:  # an interrupt too: the object must not outlive this call
            obj.close()
            raise
        return obj

    def _load_with(self, kind: str) -> BpfObject:
        """Load, retrying without the optional or kprobe programs the kernel refuses."""
        while True:
            obj = self._open(kind)
            with _capture_libbpf_log() as log:
                try:
                    obj.load()
                    return obj
                except LibbpfError as exc:
                    obj.close()
                    failed = {m.group(1) for line in log.lines for m in [_FAILED_PROG.search(line)] if m}
                    if failed & set(self.loaded_kprobes):
                        # a kernel that refuses one kprobe program refuses them all: one retry
                        refuse_kprobes(f"loading a kprobe program: {exc.strerror}")
                        self.disabled_programs.extend(self.loaded_kprobes)
                        continue
                    optional = (*OPTIONAL_PROGRAMS, *OPTIONAL_TAIL_PROGRAMS)
                    retry = [p for p in sorted(failed) if p in optional and p not in self.disabled_programs]
                    if not retry:
                        detail = "\n".join(log.lines[-40:])
                        raise LibbpfError(exc.errno, f"{exc.strerror}; libbpf said:\n{detail}") from exc
                    LOG.warning("BPF program %s does not load here; continuing without it", retry[0])
                    self.disabled_programs.append(retry[0])


class _LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def _capture_libbpf_log() -> Iterator[_LogCapture]:
    logger = logging.getLogger("pytracee.libbpf")
    handler = _LogCapture()
    old_level = logger.level
    logger.addHandler(handler)
    if not logger.isEnabledFor(logging.WARNING):
        logger.setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
