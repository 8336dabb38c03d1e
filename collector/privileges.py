"""Privileges and path safety for the live collector.

Loading eBPF programs needs privileges, and the files pytracee loads into the kernel
(BPF objects, BTF files) or writes before loading them (``--install-path``, by default
``/tmp/tracee``, a name in a world-writable directory) are an easy target for planting
and symlink attacks: whoever can replace ``/tmp/tracee/tracee.bpf.….o`` or swap
``/tmp/tracee`` for a link chooses the code that root loads into the kernel.  This module
holds the checks the object discovery (:mod:`.objects`) applies to every file it is about
to hand to libbpf:

* :func:`check_privileges` — CAP_BPF + CAP_PERFMON (kernel >= 5.8) or CAP_SYS_ADMIN in the
  effective set (read from ``/proc/self/status``), else :class:`PrivilegeError`.
* :func:`check_safe_file` — the file is a regular file, not a symbolic link, owned by root
  or by us, not writable by group or others, and so is every directory above it (sticky
  world-writable directories such as ``/tmp`` are accepted only as ancestors, never as the
  file's own directory).  Returns the resolved path, which is what should be opened.
* :func:`prepare_install_path` — creates the install directory ``0700`` if it is missing,
  refuses one that is a link, not a directory, owned by someone else or writable by others.
* :func:`unprivileged_command` — the argv (and child set-up) that runs a build tool with an
  empty capability bounding set, as Tracee did around its on-host clang build.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pwd
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = [
    "CAP_BPF",
    "CAP_PERFMON",
    "CAP_SETPCAP",
    "CAP_SYS_ADMIN",
    "PrivilegeError",
    "UnsafePathError",
    "check_privileges",
    "check_safe_file",
    "effective_capabilities",
    "prepare_install_path",
    "unprivileged_command",
]

CAP_SETPCAP = 8
CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39

_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4


class PrivilegeError(Exception):
    """The process lacks the capabilities needed to load eBPF programs."""

    exit_code = 1


class UnsafePathError(Exception):
    """A file or directory pytracee was about to trust could be changed by another user."""

    exit_code = 1


# --------------------------------------------------------------------------- capabilities


def effective_capabilities(status_text: str | None = None) -> int:
    """The effective capability mask (``CapEff`` of ``/proc/self/status``, or of ``status_text``)."""
    if status_text is None:
        status_text = Path("/proc/self/status").read_text()
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split(":", 1)[1].strip(), 16)
    raise PrivilegeError("cannot read the effective capabilities: no CapEff line in /proc/self/status")


def _has(mask: int, cap: int) -> bool:
    return bool(mask >> cap & 1)


def check_privileges(*, status_text: str | None = None, euid: int | None = None) -> None:
    """Raise :class:`PrivilegeError` unless this process may load and attach eBPF programs.

    Enough is CAP_SYS_ADMIN, or CAP_BPF together with CAP_PERFMON (kernels >= 5.8 split
    them out of CAP_SYS_ADMIN).  Root normally has all three; a root process in a container
    started without them does not, which is why the effective set is checked, not the uid.
    ``status_text`` and ``euid`` let tests simulate another process.
    """
    uid = os.geteuid() if euid is None else euid
    caps = effective_capabilities(status_text)
    if _has(caps, CAP_SYS_ADMIN) or (_has(caps, CAP_BPF) and _has(caps, CAP_PERFMON)):
        return
    missing = [name for cap, name in ((CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")) if not _has(caps, cap)]
    who = "root" if uid == 0 else f"uid {uid} ({_user_name(uid)}), not root"
    raise PrivilegeError(
        f"insufficient privileges to load eBPF programs: running as {who} with effective "
        f"capabilities {caps:#x}, which lack {' and '.join(missing)} (and CAP_SYS_ADMIN). "
        "Run tracee as root (sudo tracee ...), or give the process CAP_BPF and CAP_PERFMON "
        "(kernel >= 5.8) or CAP_SYS_ADMIN, e.g. docker run --cap-add BPF --cap-add PERFMON, "
        "or sudo capsh --caps='cap_bpf,cap_perfmon+eip' ... ."
    )


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return "no passwd entry"


# --------------------------------------------------------------------------- path safety


def _trusted(uid: int) -> bool:
    return uid == 0 or uid == os.geteuid()


def _owner(st: os.stat_result) -> str:
    return f"uid {st.st_uid} ({_user_name(st.st_uid)})"


def _ancestors(directory: Path) -> Iterator[Path]:
    """``directory`` and each of its parents up to ``/``."""
    yield directory
    yield from directory.parents


def _check_directory(directory: Path, what: str, *, own_directory: bool) -> None:
    """Refuse a directory another user could use to swap or plant entries."""
    try:
        st = os.lstat(directory)
    except OSError as exc:
        raise UnsafePathError(f"refusing {what}: cannot inspect directory {directory}: {exc.strerror}") from exc
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(f"refusing {what}: directory {directory} became a symbolic link while being checked")
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"refusing {what}: {directory} is not a directory")
    if not _trusted(st.st_uid):
        raise UnsafePathError(
            f"refusing {what}: directory {directory} is owned by {_owner(st)}, not by root or by us; "
            "its owner could replace the files in it"
        )
    if st.st_mode & 0o022:
        sticky = bool(st.st_mode & stat.S_ISVTX)
        if own_directory or not sticky:
            kind = "sticky but world-writable" if sticky else "writable by group or others"
            raise UnsafePathError(
                f"refusing {what}: directory {directory} is {kind} (mode {stat.S_IMODE(st.st_mode):04o}); "
                "another user could plant or swap files in it. Use a directory only root (or you) can write"
            )


def _check_chain(directory: Path, what: str, *, own_directory: bool, seen: set[Path]) -> None:
    """Check a resolved directory and all its ancestors (the first may be the file's own)."""
    for index, current in enumerate(_ancestors(directory)):
        own = own_directory and index == 0
        if current in seen and not own:
            continue
        _check_directory(current, what, own_directory=own)
        if not own:
            seen.add(current)


def _check_lexical_links(path: Path, what: str, seen: set[Path]) -> None:
    """Directories reached through symbolic links: the link must be ours or root's, and so
    must the directories holding it (so nobody else can re-point it between check and use)."""
    for prefix in reversed(list(path.parents)):
        if prefix == Path(prefix.anchor):
            continue
        try:
            st = os.lstat(prefix)
        except OSError as exc:
            raise UnsafePathError(f"refusing {what}: cannot inspect {prefix}: {exc.strerror}") from exc
        if stat.S_ISLNK(st.st_mode):
            if not _trusted(st.st_uid):
                raise UnsafePathError(
                    f"refusing {what}: {prefix} is a symbolic link owned by {_owner(st)} (to {os.readlink(prefix)})"
                )
            _check_chain(Path(os.path.realpath(prefix.parent)), what, own_directory=False, seen=seen)


def check_safe_file(path: Path, what: str) -> Path:
    """Refuse (:class:`UnsafePathError`) a file another user could have planted or could change.

    The file must exist, be a regular file and not a symbolic link, be owned by root or by
    the effective user, and not be writable by group or others.  Every directory from its
    own up to ``/`` must be owned by root or us and not writable by group or others, except
    that a sticky world-writable directory (``/tmp``) is accepted as an ancestor, never as
    the file's own directory.  Returns the resolved path: open that one, not ``path``.
    ``what`` names the file in messages ("TRACEE_BPF_FILE", "the non-CO-RE BPF object").
    """
    path = Path(os.path.abspath(path))
    try:
        st = os.lstat(path)
    except FileNotFoundError as exc:
        raise UnsafePathError(f"refusing {what} {path}: no such file") from exc
    except OSError as exc:
        raise UnsafePathError(f"refusing {what} {path}: {exc.strerror}") from exc
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(
            f"refusing {what} {path}: it is a symbolic link (to {os.readlink(path)}); whoever controls "
            "the link decides what gets loaded. Give the path of the real file instead"
        )
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(f"refusing {what} {path}: not a regular file")
    if not _trusted(st.st_uid):
        raise UnsafePathError(
            f"refusing {what} {path}: it is owned by {_owner(st)}, not by root or by us "
            "(planted by another user?). Remove it or chown it after checking its origin"
        )
    if st.st_mode & 0o022:
        raise UnsafePathError(
            f"refusing {what} {path}: it is writable by group or others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); another user could have replaced it. chmod go-w it after "
            "checking its origin"
        )
    seen: set[Path] = set()
    _check_lexical_links(path, what, seen)
    real_dir = Path(os.path.realpath(path.parent))
    _check_chain(real_dir, what, own_directory=True, seen=seen)
    return real_dir / path.name


def _make_dirs(path: Path) -> None:
    """Create the missing components of ``path``: parents 0755, the last one 0700."""
    missing: list[Path] = []
    current = path
    while not os.path.lexists(current):
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700 if directory == path else 0o755)
        except FileExistsError:
            continue  # created concurrently: the checks that follow decide whether to trust it


def prepare_install_path(path: Path) -> Path:
    """Validate (creating it ``0700`` if missing) the directory pytracee installs files into.

    Refuses (:class:`UnsafePathError`) an install path that is a symbolic link, is not a
    directory, is owned by another user, or is writable by group or others, and one below a
    directory another user controls: ``/tmp/tracee`` is a name anyone can take first.
    Returns the resolved path.
    """
    path = Path(os.path.abspath(path))
    what = f"install path {path}"
    seen: set[Path] = set()
    existing = path
    while not os.path.lexists(existing):
        existing = existing.parent
    if existing != path:
        _check_lexical_links(existing / "x", what, seen)
        _check_chain(Path(os.path.realpath(existing)), what, own_directory=False, seen=seen)
        _make_dirs(path)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(
            f"refusing {what}: it is a symbolic link (to {os.readlink(path)}), possibly planted to redirect "
            "pytracee's files; remove it or choose another --install-path"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"refusing {what}: it exists and is not a directory")
    if not _trusted(st.st_uid):
        raise UnsafePathError(
            f"refusing {what}: it is owned by {_owner(st)}, not by root or by us (planted by another "
            "user?); remove it or choose another --install-path"
        )
    if st.st_mode & 0o022:
        raise UnsafePathError(
            f"refusing {what}: it is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            "another user could plant BPF objects or BTF files in it. chmod 700 it or choose another "
            "--install-path"
        )
    _check_lexical_links(path / "x", what, seen)
    real = Path(os.path.realpath(path))
    _check_chain(real.parent, what, own_directory=False, seen=seen)
    return real


# --------------------------------------------------------------------------- dropping capabilities


def _drop_capabilities_in_child() -> None:  # pragma: no cover - runs between fork and exec
    """preexec_fn fallback when setpriv is missing: empty the bounding and ambient sets."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if _has(effective_capabilities(), CAP_SETPCAP):
        last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
        for cap in range(last + 1):
            libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def unprivileged_command(
    argv: list[str], *, path: str | None = None
) -> tuple[list[str], Callable[[], None] | None, str]:
    """How to run ``argv`` (a build tool) without capabilities.

    Returns ``(argv, preexec_fn, how)``.  With util-linux ``setpriv`` on ``path`` the command
    is wrapped in ``setpriv --bounding-set=-all --inh-caps=-all --ambient-caps=-all
    --no-new-privs``: the tool and its children run with empty capability sets even as root
    (the bounding set is only cleared when we hold CAP_SETPCAP, which clearing requires).
    Without setpriv, a ``preexec_fn`` does the same with prctl(2).  ``how`` describes it.
    """
    setpriv = shutil.which("setpriv", path=path)
    if setpriv:
        options = ["--inh-caps=-all", "--ambient-caps=-all", "--no-new-privs"]
        if _has(effective_capabilities(), CAP_SETPCAP):
            options.insert(0, "--bounding-set=-all")
        return [setpriv, *options, "--", *argv], None, f"capabilities dropped with {setpriv} {' '.join(options)}"
    return list(argv), _drop_capabilities_in_child, "capabilities dropped with prctl(PR_CAPBSET_DROP) in the child"
