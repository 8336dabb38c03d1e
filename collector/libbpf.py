"""A ctypes binding over the system ``libbpf.so.1`` (libbpf >= 1.0).

Only what the collector needs: open a BPF object (from a file or from memory, with an
optional ``btf_custom_path``), turn programs' autoload off, resize maps before load, load,
attach each program on its own, update/lookup/delete map elements, read a ring buffer
through libbpf, and route libbpf's log to Python :mod:`logging`.

libbpf 1.x returns NULL or a negative errno on failure and sets ``errno``; every failure
here raises :class:`LibbpfError` (an :class:`OSError` carrying that errno). libbpf 0.x
has different error conventions and struct layouts, so :func:`library` refuses it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno as errno_mod
import logging
import os
from collections.abc import Callable, Iterator
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Final, Self

__all__ = [
    "BpfLink",
    "BpfMap",
    "BpfObject",
    "BpfProgram",
    "LibbpfError",
    "LibbpfRingBuffer",
    "library",
    "prog_id_of_fd",
    "route_log_to",
]

LOG: Final = logging.getLogger("pytracee.libbpf")

BPF_ANY: Final = 0
BPF_NOEXIST: Final = 1
BPF_EXIST: Final = 2
BPF_MAP_TYPE_ARRAY: Final = 2


class LibbpfError(OSError):
    """A libbpf call failed; ``errno`` is the error libbpf reported."""


class _OpenOpts(Structure):
    """``struct bpf_object_open_opts`` of libbpf 1.0-1.4 (fields appended since are optional)."""

    _fields_ = [
        ("sz", c_size_t),
        ("object_name", c_char_p),
        ("relaxed_maps", c_bool),
        ("pin_root_path", c_char_p),
        ("_attach_prog_fd", c_uint32),  # the removed "__u32 :32" field
        ("kconfig", c_char_p),
        ("btf_custom_path", c_char_p),
        ("kernel_log_buf", c_char_p),
        ("kernel_log_size", c_size_t),
        ("kernel_log_level", c_uint32),
    ]


_PRINT_FN = CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)
_RB_SAMPLE_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t)

_SIGNATURES: Final[dict[str, tuple[object, list[object]]]] = {
    "libbpf_major_version": (c_uint32, []),
    "libbpf_minor_version": (c_uint32, []),
    "libbpf_set_print": (c_void_p, [_PRINT_FN]),
    "bpf_object__open_file": (c_void_p, [c_char_p, POINTER(_OpenOpts)]),
    "bpf_object__open_mem": (c_void_p, [c_void_p, c_size_t, POINTER(_OpenOpts)]),
    "bpf_object__load": (c_int, [c_void_p]),
    "bpf_object__close": (None, [c_void_p]),
    "bpf_object__next_program": (c_void_p, [c_void_p, c_void_p]),
    "bpf_object__next_map": (c_void_p, [c_void_p, c_void_p]),
    "bpf_object__find_map_by_name": (c_void_p, [c_void_p, c_char_p]),
    "bpf_program__name": (c_char_p, [c_void_p]),
    "bpf_program__section_name": (c_char_p, [c_void_p]),
    "bpf_program__set_autoload": (c_int, [c_void_p, c_bool]),
    "bpf_program__autoload": (c_bool, [c_void_p]),
    "bpf_program__fd": (c_int, [c_void_p]),
    "bpf_program__attach": (c_void_p, [c_void_p]),
    "bpf_program__attach_raw_tracepoint": (c_void_p, [c_void_p, c_char_p]),
    "bpf_link__destroy": (c_int, [c_void_p]),
    "bpf_link__fd": (c_int, [c_void_p]),
    "bpf_map__name": (c_char_p, [c_void_p]),
    "bpf_map__fd": (c_int, [c_void_p]),
    "bpf_map__set_max_entries": (c_int, [c_void_p, c_uint32]),
    "bpf_map__max_entries": (c_uint32, [c_void_p]),
    "bpf_map__key_size": (c_uint32, [c_void_p]),
    "bpf_map__value_size": (c_uint32, [c_void_p]),
    "bpf_map__set_initial_value": (c_int, [c_void_p, c_void_p, c_size_t]),
    "bpf_map__set_type": (c_int, [c_void_p, c_int]),
    "bpf_map__set_key_size": (c_int, [c_void_p, c_uint32]),
    "bpf_map__set_value_size": (c_int, [c_void_p, c_uint32]),
    "bpf_map_update_elem": (c_int, [c_int, c_void_p, c_void_p, c_uint64]),
    "bpf_map_lookup_elem": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_map_delete_elem": (c_int, [c_int, c_void_p]),
    "bpf_obj_get_info_by_fd": (c_int, [c_int, c_void_p, POINTER(c_uint32)]),
    "libbpf_num_possible_cpus": (c_int, []),
    "bpf_program__attach_cgroup": (c_void_p, [c_void_p, c_int]),
    "ring_buffer__new": (c_void_p, [c_int, _RB_SAMPLE_FN, c_void_p, c_void_p]),
    "ring_buffer__poll": (c_int, [c_void_p, c_int]),
    "ring_buffer__consume": (c_int, [c_void_p]),
    "ring_buffer__epoll_fd": (c_int, [c_void_p]),
    "ring_buffer__free": (None, [c_void_p]),
}

_LIB: ctypes.CDLL | None = None
_PRINT_CB: object = None  # keeps the installed print callback alive
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_LIBC.vsnprintf.argtypes = [c_char_p, c_size_t, c_char_p, c_void_p]
_LIBC.vsnprintf.restype = c_int


def library() -> ctypes.CDLL:
    """The loaded ``libbpf.so.1`` with prototypes set; raises if missing or older than 1.0."""
    global _LIB
    if _LIB is not None:
        return _LIB
    name = os.environ.get("PYTRACEE_LIBBPF") or ctypes.util.find_library("bpf") or "libbpf.so.1"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise LibbpfError(
            errno_mod.ENOENT, f"cannot load libbpf ({name}): {exc}; install libbpf1 (libbpf >= 1.0)"
        ) from exc
    if not hasattr(lib, "libbpf_major_version"):
        raise LibbpfError(errno_mod.ENOTSUP, f"{name} is older than libbpf 0.6: libbpf >= 1.0 is required")
    lib.libbpf_major_version.restype = c_uint32
    lib.libbpf_minor_version.restype = c_uint32
    major, minor = lib.libbpf_major_version(), lib.libbpf_minor_version()
    if major < 1:
        raise LibbpfError(errno_mod.ENOTSUP, f"libbpf {major}.{minor} found ({name}): libbpf >= 1.0 is required")
    for func, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, func)
        fn.restype = restype
        fn.argtypes = argtypes
    _LIB = lib
    route_log_to(LOG)
    return lib


def version() -> tuple[int, int]:
    """libbpf's (major, minor) version."""
    lib = library()
    return int(lib.libbpf_major_version()), int(lib.libbpf_minor_version())


def route_log_to(logger: logging.Logger) -> None:
    """Send libbpf's messages to ``logger`` (warnings as WARNING, info as INFO, debug as DEBUG)."""
    global _PRINT_CB
    lib = library() if _LIB is None else _LIB
    levels = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}

    def _print(level: int, fmt: bytes | None, args: int | None) -> int:
        try:
            py_level = levels.get(level, logging.DEBUG)
            if fmt is None or not logger.isEnabledFor(py_level):
                return 0
            buf = ctypes.create_string_buffer(1 << 20)
            n = _LIBC.vsnprintf(buf, len(buf), fmt, args)
            text = buf.value.decode(errors="replace").rstrip("\n")
            if "Retrying without BTF" in text:
                py_level = logging.DEBUG  # prog-array maps refuse BTF values; libbpf copes
            elif "unrecognized data section" in text and text.endswith(" .wire"):
                py_level = logging.DEBUG  # bpf/maps.h: wire_layouts, BTF only, skipped on purpose
            if n >= 0 and text and logger.isEnabledFor(py_level):
                logger.log(py_level, "%s", text)
        except Exception:  # noqa: BLE001, S110 - a callback must never raise into C
            pass
        return 0

    _PRINT_CB = _PRINT_FN(_print)
    lib.libbpf_set_print(_PRINT_CB)


def _check_ptr(ptr: int | None, what: str) -> int:
    if not ptr:
        err = ctypes.get_errno() or errno_mod.EINVAL
        raise LibbpfError(err, f"{what}: {os.strerror(err)}")
    return ptr


def _check_rc(rc: int, what: str) -> int:
    if rc < 0:
        err = -rc if rc != -1 else (ctypes.get_errno() or errno_mod.EINVAL)
        raise LibbpfError(err, f"{what}: {os.strerror(err)}")
    return rc


def prog_id_of_fd(fd: int) -> int:
    """The kernel id of the BPF program (or map, link) behind ``fd``."""
    lib = library()
    info = (ctypes.c_uint8 * 16)()
    size = c_uint32(16)
    _check_rc(lib.bpf_obj_get_info_by_fd(fd, info, ctypes.byref(size)), "bpf_obj_get_info_by_fd")
    return int.from_bytes(bytes(info[4:8]), "little")


class BpfLink:
    """An attachment of a program; :meth:`destroy` detaches it."""

    def __init__(self, ptr: int, program: str) -> None:
        self._ptr: int | None = ptr
        self.program = program

    @property
    def attached(self) -> bool:
        return self._ptr is not None

    def destroy(self) -> None:
        """Detach (idempotent)."""
        if self._ptr is not None:
            library().bpf_link__destroy(self._ptr)
            self._ptr = None


class BpfProgram:
    """One program of an object (valid until the object is closed)."""

    def __init__(self, ptr: int) -> None:
        self._ptr = ptr
        lib = library()
        self.name: str = lib.bpf_program__name(ptr).decode()
        self.section: str = (lib.bpf_program__section_name(ptr) or b"").decode()

    @property
    def autoload(self) -> bool:
        return bool(library().bpf_program__autoload(self._ptr))

    def set_autoload(self, enabled: bool) -> None:
        """Load this program with the object or not (before :meth:`BpfObject.load`)."""
        _check_rc(library().bpf_program__set_autoload(self._ptr, enabled), f"set_autoload({self.name})")

    @property
    def fd(self) -> int:
        return int(library().bpf_program__fd(self._ptr))

    @property
    def prog_id(self) -> int:
        return prog_id_of_fd(self.fd)

    def attach(self) -> BpfLink:
        """Attach where the section name says (``raw_tp/<name>``, ``tp/<cat>/<name>``, ...)."""
        ptr = _check_ptr(library().bpf_program__attach(self._ptr), f"attach {self.name} ({self.section})")
        return BpfLink(ptr, self.name)

    def attach_cgroup(self, cgroup_fd: int) -> BpfLink:
        """Attach a cgroup program (``cgroup_skb/...``) to the cgroup open as ``cgroup_fd``."""
        ptr = _check_ptr(library().bpf_program__attach_cgroup(self._ptr, cgroup_fd), f"attach {self.name} to a cgroup")
        return BpfLink(ptr, self.name)

    def attach_raw_tracepoint(self, tracepoint: str) -> BpfLink:
        lib = library()
        ptr = _check_ptr(
            lib.bpf_program__attach_raw_tracepoint(self._ptr, tracepoint.encode()),
            f"attach {self.name} to {tracepoint}",
        )
        return BpfLink(ptr, self.name)


class BpfMap:
    """One map of an object; element access by raw bytes (valid while the object is open)."""

    def __init__(self, ptr: int) -> None:
        self._ptr = ptr
        lib = library()
        self.name: str = lib.bpf_map__name(ptr).decode()

    @property
    def fd(self) -> int:
        return int(library().bpf_map__fd(self._ptr))

    @property
    def key_size(self) -> int:
        return int(library().bpf_map__key_size(self._ptr))

    @property
    def value_size(self) -> int:
        return int(library().bpf_map__value_size(self._ptr))

    @property
    def max_entries(self) -> int:
        return int(library().bpf_map__max_entries(self._ptr))

    def set_max_entries(self, n: int) -> None:
        """Resize (before load); for a ring buffer, the size in bytes (a power-of-two number of pages)."""
        _check_rc(library().bpf_map__set_max_entries(self._ptr, n), f"resize map {self.name}")

    def set_initial_value(self, data: bytes) -> None:
        """The contents of a global-data map (.data, .rodata.*) before load; exactly its size."""
        buf = ctypes.create_string_buffer(data, len(data))
        _check_rc(
            library().bpf_map__set_initial_value(self._ptr, buf, len(data)), f"set the initial value of map {self.name}"
        )

    def replace_with_array(self) -> None:
        """Before load: make this map a one-entry array, for a map type the kernel cannot create.

        The programs' references to the map stay valid; code using it must be unreachable
        (turned off by a load-time constant) since the verifier would refuse it.
        """
        lib = library()
        _check_rc(lib.bpf_map__set_type(self._ptr, BPF_MAP_TYPE_ARRAY), f"retype map {self.name}")
        _check_rc(lib.bpf_map__set_key_size(self._ptr, 4), f"resize map {self.name}")
        _check_rc(lib.bpf_map__set_value_size(self._ptr, 4), f"resize map {self.name}")
        self.set_max_entries(1)

    def update(self, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
        lib = library()
        k, v = ctypes.create_string_buffer(key, len(key)), ctypes.create_string_buffer(value, len(value))
        _check_rc(lib.bpf_map_update_elem(self.fd, k, v, flags), f"update map {self.name}")

    def lookup(self, key: bytes, value_size: int | None = None) -> bytes | None:
        """The value under ``key`` or None (per-CPU maps: pass value_size = n_cpus * rounded size)."""
        lib = library()
        size = value_size if value_size is not None else self.value_size
        k, v = ctypes.create_string_buffer(key, len(key)), ctypes.create_string_buffer(size)
        if lib.bpf_map_lookup_elem(self.fd, k, v) < 0:
            return None
        return v.raw

    def delete(self, key: bytes) -> bool:
        lib = library()
        k = ctypes.create_string_buffer(key, len(key))
        return lib.bpf_map_delete_elem(self.fd, k) == 0


class BpfObject:
    """A BPF ELF object opened through libbpf: tune, :meth:`load`, attach, :meth:`close`."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        data: bytes | None = None,
        btf_custom_path: Path | str | None = None,
        name: str | None = None,
        kernel_log_level: int = 0,
    ) -> None:
        if (path is None) == (data is None):
            raise ValueError("give exactly one of path or data")
        lib = library()
        self._strings: list[bytes] = []  # keep C strings alive while libbpf may read them
        opts = _OpenOpts()
        opts.sz = ctypes.sizeof(_OpenOpts)
        if btf_custom_path is not None:
            opts.btf_custom_path = self._keep(str(btf_custom_path))
        if name is not None:
            opts.object_name = self._keep(name)
        if kernel_log_level:
            opts.kernel_log_level = kernel_log_level  # verifier logs of every program, at DEBUG
        self._data = ctypes.create_string_buffer(data, len(data)) if data is not None else None
        if path is not None:
            ptr = lib.bpf_object__open_file(str(path).encode(), ctypes.byref(opts))
            self._ptr: int | None = _check_ptr(ptr, f"open BPF object {path}")
        else:
            if self._data is None or data is None:
                raise ValueError("a BPF object needs a path or its data")
            ptr = lib.bpf_object__open_mem(self._data, len(data), ctypes.byref(opts))
            self._ptr = _check_ptr(ptr, "open BPF object from memory")
        self.loaded = False

    def _keep(self, text: str) -> bytes:
        raw = text.encode()
        self._strings.append(raw)
        return raw

    @property
    def _obj(self) -> int:
        if self._ptr is None:
            raise LibbpfError(errno_mod.EBADF, "BPF object is closed")
        return self._ptr

    def programs(self) -> dict[str, BpfProgram]:
        """Programs by function name, in ELF order."""
        lib, prog = library(), None
        out: dict[str, BpfProgram] = {}
        while True:
            prog = lib.bpf_object__next_program(self._obj, prog)
            if not prog:
                return out
            p = BpfProgram(prog)
            out[p.name] = p

    def maps(self) -> Iterator[BpfMap]:
        lib, m = library(), None
        while True:
            m = lib.bpf_object__next_map(self._obj, m)
            if not m:
                return
            yield BpfMap(m)

    def map(self, name: str) -> BpfMap:
        ptr = library().bpf_object__find_map_by_name(self._obj, name.encode())
        if not ptr:
            raise KeyError(f"no map {name!r} in the BPF object")
        return BpfMap(ptr)

    def load(self) -> None:
        """Verify and load every program whose autoload is on, and create the maps."""
        _check_rc(library().bpf_object__load(self._obj), "load BPF object")
        self.loaded = True

    def close(self) -> None:
        """Unload programs and maps (links must be destroyed first); idempotent."""
        if self._ptr is not None:
            library().bpf_object__close(self._ptr)
            self._ptr = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LibbpfRingBuffer:
    """libbpf's ring-buffer reader: ``callback(bytes)`` per record.

    The collector reads the ring buffer itself (collector/ringbuf.py, no per-record ctypes
    callback); this one is kept for tooling and as a reference implementation.
    """

    def __init__(self, ring_map: BpfMap, callback: Callable[[bytes], None]) -> None:
        lib = library()

        def _sample(_ctx: int | None, data: int, size: int) -> int:
            try:
                callback(ctypes.string_at(data, size))
            except Exception:
                LOG.exception("ring buffer callback failed")
            return 0

        self._cb = _RB_SAMPLE_FN(_sample)
        self._ptr: int | None = _check_ptr(lib.ring_buffer__new(ring_map.fd, self._cb, None, None), "ring_buffer__new")

    def poll(self, timeout_ms: int) -> int:
        """Wait up to timeout_ms for records and consume them; returns how many."""
        if self._ptr is None:
            return 0
        rc = library().ring_buffer__poll(self._ptr, timeout_ms)
        if rc < 0 and -rc != errno_mod.EINTR:
            _check_rc(rc, "ring_buffer__poll")
        return max(rc, 0)

    def consume(self) -> int:
        if self._ptr is None:
            return 0
        return max(_check_rc(library().ring_buffer__consume(self._ptr), "ring_buffer__consume"), 0)

    def epoll_fd(self) -> int:
        return int(library().ring_buffer__epoll_fd(self._ptr)) if self._ptr is not None else -1

    def free(self) -> None:
        if self._ptr is not None:
            library().ring_buffer__free(self._ptr)
            self._ptr = None


def possible_cpus() -> int:
    """Number of possible CPUs (the row count of per-CPU maps)."""
    return int(_check_rc(library().libbpf_num_possible_cpus(), "libbpf_num_possible_cpus"))
