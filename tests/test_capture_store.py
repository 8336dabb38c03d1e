"""The capture directory refuses planted paths, and artifacts stay within their budgets,
with names no traced process can choose."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytracee.collector.capture import CaptureManager, parse_capture
from pytracee.collector.capture.artifacts import Artifact, ArtifactStore, safe_basename, safe_container_id
from pytracee.collector.capture.manager import ArtifactInfo
from pytracee.collector.privileges import UnsafePathError

NOBODY = 65534


@pytest.fixture
def work() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="capt-store-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def store(
    directory: Path, *, clear: bool = False, artifact_limit: int = 1 << 20, total_limit: int = 1 << 30
) -> ArtifactStore:
    return ArtifactStore(directory, clear=clear, artifact_limit=artifact_limit, total_limit=total_limit)


def test_the_directory_is_created_private(work: Path) -> None:
    s = store(work / "cap")
    try:
        art = Artifact("write", "host", "write.dev-1.inode-2")
        s.write(art, 0, b"data")
        for path, mode in ((work / "cap", 0o700), (work / "cap" / "out", 0o700), (work / "cap/out/host", 0o700)):
            assert stat.S_IMODE(path.stat().st_mode) == mode, path
        f = work / "cap/out/host/write.dev-1.inode-2"
        assert stat.S_IMODE(f.stat().st_mode) == 0o600 and f.stat().st_uid == os.geteuid()
        assert f.read_bytes() == b"data"
    finally:
        s.close()


def test_a_symlinked_capture_directory_is_refused(work: Path) -> None:
    (work / "real").mkdir(mode=0o700)
    (work / "cap").symlink_to(work / "real")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        store(work / "cap")


def test_a_capture_directory_others_can_write_is_refused(work: Path) -> None:
    (work / "cap").mkdir()
    os.chmod(work / "cap", 0o777)  # noqa: S103 - the unsafe directory under test
    with pytest.raises(UnsafePathError, match="writable by group or others"):
        store(work / "cap")


def test_a_capture_directory_owned_by_another_user_is_refused(work: Path) -> None:
    (work / "cap").mkdir(mode=0o700)
    os.chown(work / "cap", NOBODY, NOBODY)
    with pytest.raises(UnsafePathError, match="owned by"):
        store(work / "cap")


def test_a_capture_directory_below_a_directory_others_can_write_is_refused(work: Path) -> None:
    shared = work / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)  # noqa: S103 - not sticky: anyone could swap cap/ for a link
    with pytest.raises(UnsafePathError):
        store(shared / "cap")


def test_a_planted_out_directory_is_refused(work: Path) -> None:
    (work / "cap").mkdir(mode=0o700)
    (work / "elsewhere").mkdir(mode=0o700)
    (work / "cap" / "out").symlink_to(work / "elsewhere")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        store(work / "cap")
    with pytest.raises(UnsafePathError):
        store(work / "cap", clear=True)  # clear-dir does not follow it either
    assert (work / "elsewhere").is_dir()


def test_planted_artifact_names_are_never_written_through(work: Path) -> None:
    s = store(work / "cap")
    victim = work / "victim"
    victim.write_bytes(b"intact")
    try:
        host = work / "cap/out/host"
        host.mkdir(mode=0o700)
        (host / "write.dev-1.inode-2").symlink_to(victim)
        os.link(victim, host / "write.dev-1.inode-3")
        with pytest.raises(OSError, match="symbolic links"):
            s.write(Artifact("write", "host", "write.dev-1.inode-2"), 0, b"attacker data")
        with pytest.raises(UnsafePathError, match="not a plain file"):
            s.write(Artifact("write", "host", "write.dev-1.inode-3"), 0, b"attacker data")
        assert victim.read_bytes() == b"intact"
    finally:
        s.close()


def test_clear_dir_empties_out(work: Path) -> None:
    s = store(work / "cap")
    s.write(Artifact("write", "host", "write.dev-1.inode-2"), 0, b"old")
    s.close()
    s = store(work / "cap", clear=True)
    s.close()
    assert list((work / "cap" / "out").iterdir()) == []


def test_budgets_bound_every_artifact_and_the_total(work: Path) -> None:
    s = store(work / "cap", artifact_limit=1000, total_limit=1500)
    try:
        a = Artifact("write", "host", "write.dev-1.inode-1")
        s.write(a, 0, b"x" * 600)
        s.write(a, 600, b"y" * 600)  # 200 past the artifact's budget
        assert (a.size, a.dropped) == (1000, 200)
        s.write(a, 10 << 30, b"z")  # far past the end: no sparse 10 GiB file
        assert a.dropped == 201 and (work / "cap/out/host/write.dev-1.inode-1").stat().st_size == 1000
        b = Artifact("write", "host", "write.dev-1.inode-2", append=True)
        s.write(b, 0, b"w" * 800)  # only 500 left in the total budget
        assert (b.size, b.dropped) == (500, 300)
        assert s.total_written == 1500
    finally:
        s.close()


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/usr/bin/ls", "ls"),
        ("/tmp/../../etc/passwd", "passwd"),
        ("memfd:fileless (deleted)", "memfd_fileless__deleted_"),
        ("/tmp/\x1b[31mred\nline", "__31mred_line"),
        ("/tmp/..", "unnamed"),
        ("/tmp/" + "a" * 300, "a" * 64),
        ("/tmp/ünï", "_n_"),
    ],
)
def test_executable_names_are_sanitized(path: str, name: str) -> None:
    assert safe_basename(path) == name


def test_container_directories_are_ids_or_host() -> None:
    assert safe_container_id("3f2a9c0d1b7e") == "3f2a9c0d1b7e"
    assert safe_container_id("") == "host"
    assert safe_container_id("../etc") == "host"
    assert safe_container_id("a/b") == "host"


def test_artifact_files_are_bounded_in_number_and_the_rest_is_counted(work: Path) -> None:
    """Many tiny files cost an inode and a block each: past the maximum, no file is made and
    their bytes are counted as dropped."""
    s = store(work / "cap")
    s.max_files = 3
    arts = [Artifact("write", "host", f"write.dev-1.inode-{i}") for i in range(5)]
    for art in arts:
        s.write(art, 0, b"x")
    assert sorted(p.name for p in (s.out_dir / "host").iterdir()) == [f"write.dev-1.inode-{i}" for i in range(3)]
    assert [a.dropped for a in arts] == [0, 0, 0, 1, 1]
    s.write(arts[0], 1, b"y")  # an artifact made before the limit still grows
    assert (s.out_dir / "host" / "write.dev-1.inode-0").read_bytes() == b"xy"
    assert s.sha256(arts[4]) == ""


def test_an_artifact_name_left_from_an_earlier_run_keeps_nothing_of_it(work: Path) -> None:
    s = store(work / "cap")
    s.write(Artifact("write", "host", "write.dev-1.inode-2"), 0, b"hellohello\n")
    s.close()
    s = store(work / "cap")  # no clear-dir
    s.write(Artifact("write", "host", "write.dev-1.inode-2"), 0, b"x\n")
    s.close()
    assert (work / "cap" / "out" / "host" / "write.dev-1.inode-2").read_bytes() == b"x\n"


def test_a_file_rewritten_shorter_after_its_report_keeps_no_old_tail(work: Path) -> None:
    s = store(work / "cap")
    art = Artifact("write", "host", "write.dev-1.inode-2")
    s.write(art, 0, b"hello")
    s.write(art, 5, b"hello\n")
    art.dirty = False  # reported
    s.write(art, 0, b"x\n")
    assert art.size == 2
    s.write(art, 2, b"yz\n")  # the rest of the new version is kept
    s.close()
    assert (work / "cap" / "out" / "host" / "write.dev-1.inode-2").read_bytes() == b"x\nyz\n"


def test_findings_links_keep_only_the_most_recent_artifacts(work: Path) -> None:
    manager = CaptureManager(parse_capture([f"dir:{work / 'cap'}"]))
    try:
        info = ArtifactInfo("p", "s", 1, False)
        for links in (manager.executed, manager.written, manager.regions):
            for i in range(70_000):
                links[(i, i)] = info
            assert len(links) == 65536
            assert (69_999, 69_999) in links and (0, 0) not in links
    finally:
        manager.release()


def test_an_artifact_is_hashed_again_only_after_more_was_written(work: Path) -> None:
    s = store(work / "cap")
    art = Artifact("write", "host", "write.dev-1.inode-2")
    s.write(art, 0, b"first")
    first = s.sha256(art)
    assert first == hashlib.sha256(b"first").hexdigest()
    path = work / "cap" / "out" / "host" / "write.dev-1.inode-2"
    path.write_bytes(b"FIRST")  # behind the store's back: not read again
    assert s.sha256(art) == first
    s.write(art, 5, b"-more")
    assert s.sha256(art) == hashlib.sha256(b"FIRST-more").hexdigest()
    s.close()
