"""32-bit (ia32) syscalls: their numbers, and how the kernel side reports them.

A 64-bit kernel built with IA32_EMULATION runs 32-bit x86 syscalls (a 32-bit program, or a
64-bit one executing ``int $0x80``) from another table, with other numbers. Tracee reports
such a syscall under its x86_64 twin's event id and name, with ``contextFlags.isCompat``
set; the kernel side does the same (bpf/args.h) through the ``compat_ids`` map, which the
collector fills at start from :func:`kernel_entries`: ia32 number -> x86_64 number.

An ia32 syscall missing from the table is not traced, as in Tracee. Left out on purpose,
because their arguments do not mean what the x86_64 twin's do (reporting them under its
name would be wrong data), see :data:`LEFT_OUT`; notably ``socketcall`` (connect, bind and
accept of 32-bit programs go through it unless they use the direct ia32 syscalls) and the
old ``mmap`` taking a pointer to its arguments.

Where the arguments are the same values in another layout, the kernel side rebuilds the
x86_64 arguments (bpf/args.h: ``compat_fixup_args``) and the pair is traced:

* ``pwrite64`` (ia32 ``ia32_pwrite64``): the offset comes in two 32-bit halves;
* ``mmap`` from ia32 ``mmap2``: the offset comes in 4 KiB pages;
* ``ptrace``: the request is a 32-bit ``long``, sign-extended.

Every other argument is the 32-bit register value: ``int`` arguments sign-extended, the
others (pointers, sizes, flags) zero-extended; string arrays (``execve``'s argv and envp)
are arrays of 32-bit pointers.

Numbers are from the kernel's arch/x86/entry/syscalls/syscall_32.tbl (the installed
asm/unistd_32.h has the same; tests/test_compat_syscalls.py checks the table against it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from pytracee.engine.catalogue import SYSCALLS

__all__ = [
    "COMPAT_NAME_ONLY",
    "IA32_NAMES",
    "IA32_SYSCALLS",
    "LEFT_OUT",
    "NAME_ONLY",
    "ia32_to_x86_64",
    "kernel_entries",
]

#: x86_64 syscall name -> its ia32 number, for every syscall the collector traces or
#: derives events from (collector/wire.py), and the process-lifecycle syscalls an
#: event's ``syscall`` context names (fork, clone, exit, ...).
IA32_SYSCALLS: Final[Mapping[str, int]] = {
    "exit": 1,
    "fork": 2,
    "write": 4,
    "open": 5,
    "close": 6,
    "creat": 8,
    "unlink": 10,
    "execve": 11,
    "chmod": 15,
    "mount": 21,
    "ptrace": 26,
    "kill": 37,
    "rename": 38,
    "dup": 41,
    "umount2": 52,
    "dup2": 63,
    "clone": 120,
    "mprotect": 125,
    "init_module": 128,
    "pwrite64": 181,
    "vfork": 190,
    "mmap": 192,  # mmap2
    "setreuid": 203,  # setreuid32
    "setregid": 204,  # setregid32
    "setresuid": 208,  # setresuid32
    "setresgid": 210,  # setresgid32
    "setuid": 213,  # setuid32
    "setgid": 214,  # setgid32
    "exit_group": 252,
    "openat": 295,
    "unlinkat": 301,
    "renameat": 302,
    "fchmodat": 306,
    "unshare": 310,
    "dup3": 330,
    "open_by_handle_at": 342,
    "setns": 346,
    "process_vm_writev": 348,
    "finit_module": 350,
    "renameat2": 353,
    "memfd_create": 356,
    "execveat": 358,
    "bind": 361,
    "connect": 362,
    "accept4": 364,
    "pkey_mprotect": 380,
    "clone3": 435,
    "openat2": 437,
}

#: x86_64 names whose ia32 twin has another name in syscall_32.tbl.
IA32_NAMES: Final[Mapping[str, str]] = {
    "mmap": "mmap2",
    "setuid": "setuid32",
    "setgid": "setgid32",
    "setreuid": "setreuid32",
    "setregid": "setregid32",
    "setresuid": "setresuid32",
    "setresgid": "setresgid32",
}

#: Mapped for the ``syscall`` context field of the events raised inside them
#: (sched_process_fork) but never traced as syscall events: their ia32 arguments differ.
NAME_ONLY: Final[Mapping[str, str]] = {
    "clone": "ia32 clone takes tls before child_tid (CLONE_BACKWARDS)",
}

#: ia32 syscalls of the collector's x86_64 syscalls that are not mapped, and why.
LEFT_OUT: Final[Mapping[str, str]] = {
    "mmap (old_mmap, 90)": "one pointer to a struct of the six arguments",
    "socketcall (102)": "connect/bind/accept... multiplexed: a call number and a pointer to the arguments",
    "setuid, setgid, setreuid, setregid, setresuid, setresgid (23, 46, 70, 71, 164, 170)": "16-bit ids",
    "umount (22)": "oldumount: no flags argument",
    "accept": "no ia32 syscall: only through socketcall",
}

#: Bit of a ``compat_ids`` value (bpf/maps.h: COMPAT_NAME_ONLY).
COMPAT_NAME_ONLY: Final = 0x40000000
_COMPAT_VALID: Final = 0x80000000  # bpf/maps.h: COMPAT_VALID


def ia32_to_x86_64() -> dict[int, int]:
    """ia32 syscall number -> the x86_64 number it is reported as."""
    return {nr: SYSCALLS[name] for name, nr in IA32_SYSCALLS.items()}


def kernel_entries() -> list[tuple[int, int]]:
    """(ia32 number, ``compat_ids`` value) for the kernel's map (bpf/maps.h)."""
    return [
        (nr, _COMPAT_VALID | (COMPAT_NAME_ONLY if name in NAME_ONLY else 0) | SYSCALLS[name])
        for name, nr in sorted(IA32_SYSCALLS.items(), key=lambda item: item[1])
    ]
