"""The capture directory: safe creation, Tracee's artifact names, bounded writes, hashes.

Layout (Tracee's)::

    <dir>/out/<container id or "host">/write.dev-<dev>.inode-<inode>
    <dir>/out/<container id or "host">/read.dev-<dev>.inode-<inode>
    <dir>/out/<container id or "host">/exec.<timestamp>.<basename>
    <dir>/out/<container id or "host">/bin.pid-<pid>.ts-<timestamp>
    <dir>/out/<container id or "host">/module.dev-<dev>.inode-<inode>.pid-<pid>.<sha256>

Safety: ``<dir>`` passes the install-path checks of :mod:`..privileges` (created 0700,
refused if it is a link, not ours or root's, or writable by others, or below such a
directory); every directory made under it is 0700 and every artifact 0600, all opened
relative to the directory's descriptor with ``O_NOFOLLOW``, so nothing planted in
between can redirect a write. Names are made of numbers and sanitized container ids;
the one name part that comes from the traced process, an executable's basename, is
reduced to ``[A-Za-z0-9._+-]`` (at most 64 characters). Budgets: no artifact grows past
``artifact_limit`` bytes (offsets included: a write far into a file cannot make a huge
sparse file), and no more than ``total_limit`` bytes are written in all; what did not fit
is counted on the artifact, which is then reported incomplete.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ..privileges import UnsafePathError, prepare_install_path

__all__ = ["MAX_FILES", "Artifact", "ArtifactStore", "safe_basename", "safe_container_id"]

_OPEN_FILES: Final = 32
#: Artifact files made in one run at most (each costs an inode and a block, whatever its size).
MAX_FILES: Final = 100_000
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
_UNSAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._+-]")
_CONTAINER_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def safe_container_id(container_id: str) -> str:
    """The directory name of a container: its id if made of [A-Za-z0-9_-], else "host"."""
    return container_id if container_id and _CONTAINER_ID.match(container_id) else "host"


def safe_basename(path: str) -> str:
    """An executable's basename reduced to ``[A-Za-z0-9._+-]``, 64 characters, no leading dot."""
    base = path.rsplit("/", 1)[-1]
    cleaned = _UNSAFE_NAME.sub("_", base).lstrip(".")[:64]
    return cleaned or "unnamed"


@dataclass
class Artifact:
    """One captured file, as written so far."""

    kind: str  # write, read, exec, mem, module
    container: str  # directory name under out/
    name: str  # file name in it
    append: bool = False  # pipes, sockets, character devices: chunks appended in arrival order
    size: int = 0  # bytes in the file (highest offset written)
    written: int = 0  # bytes written
    dropped: int = 0  # bytes not written: past a budget
    lost_chunks: int = 0  # chunks the kernel could not send (from its counters)
    source_path: str = ""  # the file the process wrote/read/executed
    dirty: bool = True  # written since last reported
    extra: dict[str, int] = field(default_factory=dict)
    hashed: tuple[int, str] = (-1, "")  # (written, sha256) when last hashed

    @property
    def relpath(self) -> str:
        return f"{self.container}/{self.name}"


class ArtifactStore:
    """Create and fill artifacts under ``<directory>/out``; see the module's notes on safety."""

    def __init__(self, directory: Path, *, clear: bool, artifact_limit: int, total_limit: int) -> None:
        base = prepare_install_path(directory)  # UnsafePathError: refused
        out = base / "out"
        if clear and os.path.lexists(out):
            st = os.lstat(out)
            if not stat.S_ISDIR(st.st_mode):
                raise UnsafePathError(f"refusing capture directory {out}: it is not a directory (clear-dir)")
            shutil.rmtree(out)
        self.out_dir = prepare_install_path(out)
        self.artifact_limit = artifact_limit
        self.total_limit = total_limit
        self.total_written = 0
        self.max_files = MAX_FILES
        self.files_created = 0
        self._base_fd = os.open(self.out_dir, _DIR_FLAGS)
        st = os.fstat(self._base_fd)
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
            os.close(self._base_fd)
            raise UnsafePathError(f"refusing capture directory {self.out_dir}: it changed while being opened")
        self._dir_fds: dict[str, int] = {}
        self._files: OrderedDict[str, int] = OrderedDict()
        self._opened: set[str] = set()  # artifacts opened in this run (at most files_created)

    # ---- directories and files -----------------------------------------------------------

    def _dir_fd(self, container: str) -> int:
        fd = self._dir_fds.get(container)
        if fd is not None:
            return fd
        try:
            os.mkdir(container, 0o700, dir_fd=self._base_fd)
        except FileExistsError:
            pass
        fd = os.open(container, _DIR_FLAGS, dir_fd=self._base_fd)
        st = os.fstat(fd)
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o077:
            os.close(fd)
            raise UnsafePathError(
                f"refusing capture directory {self.out_dir / container}: not ours or open to others "
                f"(mode {stat.S_IMODE(st.st_mode):04o})"
            )
        self._dir_fds[container] = fd
        return fd

    def _file_fd(self, art: Artifact) -> int:
        key = art.relpath
        fd = self._files.get(key)
        if fd is not None:
            self._files.move_to_end(key)
            return fd
        flags = _FILE_FLAGS | (os.O_APPEND if art.append else 0)
        fd = os.open(art.name, flags, 0o600, dir_fd=self._dir_fd(art.container))
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            os.close(fd)
            raise UnsafePathError(f"refusing artifact {self.out_dir / key}: not a plain file (planted?)")
        os.fchmod(fd, 0o600)
        if key not in self._opened:  # a file of that name left from an earlier run starts empty
            os.ftruncate(fd, 0)  # after the checks: never through a planted link
            self._opened.add(key)
        self._files[key] = fd
        if len(self._files) > _OPEN_FILES:
            _, old = self._files.popitem(last=False)
            os.close(old)
        return fd

    def path_of(self, art: Artifact) -> Path:
        return self.out_dir / art.container / art.name

    # ---- writing -------------------------------------------------------------------------

    def write(self, art: Artifact, offset: int, data: bytes | memoryview) -> None:
        """Write ``data`` at ``offset`` (appended for append artifacts), within the budgets.

        A file's first write in a run starts it empty; a write at offset 0 after the artifact
        was reported (``dirty`` cleared) starts it over."""
        n = len(data)
        if "created" not in art.extra:
            if self.files_created >= self.max_files:
                art.dropped += n  # a flood of small files must not fill the disk with blocks and inodes
                return
            art.extra["created"] = 1
            self.files_created += 1
        start = art.size if art.append else offset
        room = min(self.artifact_limit - start, self.total_limit - self.total_written)
        if room <= 0:
            art.dropped += n
            return
        if n > room:
            art.dropped += n - room
            data = data[:room]
        fd = self._file_fd(art)
        if art.append:
            os.write(fd, data)
        else:
            if offset == 0 and art.size and not art.dirty:
                # written again from its start after it was reported: a new version of the file
                # (a rewrite shorter than before must not keep the old tail)
                os.ftruncate(fd, 0)
                art.size = 0
            os.pwrite(fd, data, offset)
        art.written += len(data)
        art.size = max(art.size, start + len(data))
        self.total_written += len(data)
        art.dirty = True

    def copy_from(self, art: Artifact, src_fd: int) -> None:
        """Copy the whole of ``src_fd`` (from its start) into ``art``, within the budgets."""
        offset = 0
        while True:
            chunk = os.pread(src_fd, 1 << 20, offset)
            if not chunk:
                break
            self.write(art, offset, chunk)
            offset += len(chunk)
            if art.dropped:
                # count the rest without reading it
                try:
                    art.dropped += max(0, os.fstat(src_fd).st_size - offset)
                except OSError:
                    pass
                break

    def sha256(self, art: Artifact) -> str:
        """The artifact's sha256 as it is on disk now; "" when nothing of it was saved (its
        bytes all went over a budget, so its file was never created). Hashed again only once
        more bytes were written (each finding on a file must not rehash it)."""
        if art.hashed[0] == art.written and art.hashed[1]:
            return art.hashed[1]
        h = hashlib.sha256()
        try:
            fd = os.open(art.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self._dir_fd(art.container))
        except FileNotFoundError:
            return ""
        try:
            while True:
                block = os.read(fd, 1 << 20)
                if not block:
                    break
                h.update(block)
        finally:
            os.close(fd)
        art.hashed = (art.written, h.hexdigest())
        return art.hashed[1]

    def rename(self, art: Artifact, new_name: str) -> None:
        """Rename the artifact (module images get their sha256 appended, as Tracee does)."""
        fd = self._files.pop(art.relpath, None)
        if fd is not None:
            os.close(fd)
        dfd = self._dir_fd(art.container)
        os.rename(art.name, new_name, src_dir_fd=dfd, dst_dir_fd=dfd)
        art.name = new_name

    def close_file(self, art: Artifact) -> None:
        fd = self._files.pop(art.relpath, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for fd in list(self._files.values()) + list(self._dir_fds.values()):
            os.close(fd)
        self._files.clear()
        self._dir_fds.clear()
        if self._base_fd >= 0:
            os.close(self._base_fd)
            self._base_fd = -1
