"""Privileges and path safety of the live collector (pytracee.collector.privileges)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pytracee.collector.privileges import (
    CAP_BPF,
    CAP_PERFMON,
    CAP_SYS_ADMIN,
    PrivilegeError,
    UnsafePathError,
    check_privileges,
    check_safe_file,
    effective_capabilities,
    prepare_install_path,
    unprivileged_command,
)

NOBODY = 65534
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown to another user, capabilities)")


def status(cap_eff: int) -> str:
    """A /proc/<pid>/status excerpt with the given effective capability mask."""
    return f"Name:\tpython\nUid:\t{NOBODY}\t{NOBODY}\t{NOBODY}\t{NOBODY}\nCapInh:\t0000000000000000\nCapEff:\t{cap_eff:016x}\n"


def make_file(path: Path, mode: int = 0o644, data: bytes = b"\x7fELF") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


# --------------------------------------------------------------------------- check_privileges


def test_effective_capabilities_parses_cap_eff() -> None:
    assert effective_capabilities(status(0x1FFFEFFFFFF)) == 0x1FFFEFFFFFF
    assert effective_capabilities() == int(
        next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("CapEff:")).split()[
            1
        ],
        16,
    )


@root_only
def test_root_passes() -> None:
    check_privileges()


@pytest.mark.parametrize(
    "caps",
    [1 << CAP_SYS_ADMIN, (1 << CAP_BPF) | (1 << CAP_PERFMON), 0x1FFFEFFFFFF],
    ids=["sys_admin", "bpf+perfmon", "root-like"],
)
def test_enough_capabilities_pass(caps: int) -> None:
    check_privileges(status_text=status(caps), euid=NOBODY)


def test_no_capabilities_is_a_clear_error() -> None:
    with pytest.raises(PrivilegeError) as info:
        check_privileges(status_text=status(0), euid=NOBODY)
    message = str(info.value)
    assert "insufficient privileges to load eBPF programs" in message
    assert f"uid {NOBODY}" in message and "not root" in message
    assert "CAP_BPF and CAP_PERFMON" in message and "CAP_SYS_ADMIN" in message
    assert "sudo" in message
    assert info.value.exit_code == 1


def test_cap_bpf_without_cap_perfmon_names_the_missing_one() -> None:
    with pytest.raises(PrivilegeError, match=r"lack CAP_PERFMON \(and CAP_SYS_ADMIN\)"):
        check_privileges(status_text=status(1 << CAP_BPF), euid=NOBODY)


def test_root_without_capabilities_is_refused_too() -> None:
    """A root process in a container started without the capabilities cannot load BPF."""
    with pytest.raises(PrivilegeError, match="running as root"):
        check_privileges(status_text=status(1 << 0), euid=0)


@root_only
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux setpriv")
def test_nobody_child_process_gets_the_error() -> None:
    code = (
        "from pytracee.collector.privileges import check_privileges, PrivilegeError\n"
        "try:\n    check_privileges()\nexcept PrivilegeError as e:\n    print(e); raise SystemExit(e.exit_code)\n"
        "print('passed')\n"
    )
    proc = subprocess.run(
        [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            "--inh-caps=-all",
            sys.executable,
            "-c",
            code,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert proc.returncode == 1, proc.stderr
    assert "insufficient privileges" in proc.stdout
    assert f"uid {NOBODY}" in proc.stdout and "not root" in proc.stdout


# --------------------------------------------------------------------------- check_safe_file


def test_safe_file_returns_resolved_path(tmp_path: Path) -> None:
    obj = make_file(tmp_path / "d" / "tracee.bpf.o")
    assert check_safe_file(tmp_path / "d" / ".." / "d" / "tracee.bpf.o", "the object") == obj.resolve()


def test_symlinked_file_refused(tmp_path: Path) -> None:
    real = make_file(tmp_path / "real.o")
    (tmp_path / "link.o").symlink_to(real)
    with pytest.raises(UnsafePathError, match=r"the object .*link\.o: it is a symbolic link \(to .*real\.o\)"):
        check_safe_file(tmp_path / "link.o", "the object")


@pytest.mark.parametrize("mode", [0o666, 0o664, 0o646])
def test_file_writable_by_others_refused(tmp_path: Path, mode: int) -> None:
    obj = make_file(tmp_path / "x.o", mode=mode)
    with pytest.raises(UnsafePathError, match=f"writable by group or others \\(mode {mode:04o}\\)"):
        check_safe_file(obj, "the object")


@root_only
def test_file_owned_by_another_user_refused(tmp_path: Path) -> None:
    obj = make_file(tmp_path / "x.o")
    os.chown(obj, NOBODY, NOBODY)
    with pytest.raises(UnsafePathError, match=f"owned by uid {NOBODY}.*not by root or by us"):
        check_safe_file(obj, "the object")


def test_missing_and_non_regular_files_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafePathError, match="no such file"):
        check_safe_file(tmp_path / "missing.o", "the object")
    (tmp_path / "dir.o").mkdir()
    with pytest.raises(UnsafePathError, match="not a regular file"):
        check_safe_file(tmp_path / "dir.o", "the object")


def test_file_directly_in_sticky_world_writable_dir_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    obj = make_file(shared / "x.o")
    with pytest.raises(UnsafePathError, match=r"directory .*shared is sticky but world-writable \(mode 1777\)"):
        check_safe_file(obj, "the object")


def test_sticky_world_writable_ancestor_accepted(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "mine").mkdir(mode=0o700)
    obj = make_file(shared / "mine" / "x.o")
    assert check_safe_file(obj, "the object") == obj


def test_world_writable_ancestor_refused(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    (open_dir / "sub").mkdir()
    obj = make_file(open_dir / "sub" / "x.o")
    with pytest.raises(UnsafePathError, match=r"directory .*open is writable by group or others"):
        check_safe_file(obj, "the object")


@root_only
def test_ancestor_owned_by_another_user_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    obj = make_file(theirs / "x.o")
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(UnsafePathError, match=f"directory .*theirs is owned by uid {NOBODY}"):
        check_safe_file(obj, "the object")


@root_only
def test_directory_reached_through_another_users_link_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    obj = make_file(real / "x.o")
    link = tmp_path / "via"
    link.symlink_to(real)
    assert check_safe_file(link / "x.o", "the object") == obj  # our own link: resolved
    link.unlink()
    link.symlink_to(real)
    os.chown(link, NOBODY, NOBODY, follow_symlinks=False)
    with pytest.raises(UnsafePathError, match=f"via is a symbolic link owned by uid {NOBODY}"):
        check_safe_file(link / "x.o", "the object")


# --------------------------------------------------------------------------- prepare_install_path


def test_install_path_created_private(tmp_path: Path) -> None:
    install = tmp_path / "a" / "b" / "tracee"
    assert prepare_install_path(install) == install
    assert install.is_dir() and (install.stat().st_mode & 0o777) == 0o700
    assert install.stat().st_uid == os.geteuid()
    assert prepare_install_path(install) == install  # existing and ours: fine


def test_install_path_symlink_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "tracee").symlink_to(elsewhere)
    with pytest.raises(UnsafePathError, match=r"install path .*tracee: it is a symbolic link \(to .*elsewhere\)"):
        prepare_install_path(tmp_path / "tracee")


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770])
def test_install_path_writable_by_others_refused(tmp_path: Path, mode: int) -> None:
    install = tmp_path / "tracee"
    install.mkdir()
    install.chmod(mode)
    with pytest.raises(UnsafePathError, match="writable by group or others"):
        prepare_install_path(install)


@root_only
def test_install_path_owned_by_another_user_refused(tmp_path: Path) -> None:
    install = tmp_path / "tracee"
    install.mkdir(mode=0o755)
    os.chown(install, NOBODY, NOBODY)
    with pytest.raises(UnsafePathError, match=f"owned by uid {NOBODY}.*planted"):
        prepare_install_path(install)


def test_install_path_that_is_a_file_refused(tmp_path: Path) -> None:
    make_file(tmp_path / "tracee")
    with pytest.raises(UnsafePathError, match="not a directory"):
        prepare_install_path(tmp_path / "tracee")


def test_install_path_under_world_writable_parent_refused(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    with pytest.raises(UnsafePathError, match="writable by group or others"):
        prepare_install_path(open_dir / "tracee")
    assert not (open_dir / "tracee").exists()  # checked before creating anything


def test_install_path_under_sticky_tmp_like_parent_accepted(tmp_path: Path) -> None:
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    assert prepare_install_path(shared / "tracee") == shared / "tracee"


# --------------------------------------------------------------------------- dropping capabilities


def _bounding_set_of(argv: list[str], preexec) -> int:  # type: ignore[no-untyped-def]
    proc = subprocess.run(argv, capture_output=True, text=True, preexec_fn=preexec, check=True, timeout=30)
    line = next(line for line in proc.stdout.splitlines() if line.startswith("CapBnd:"))
    return int(line.split()[1], 16)


@root_only
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux setpriv")
def test_unprivileged_command_with_setpriv() -> None:
    argv, preexec, how = unprivileged_command(["grep", "Cap", "/proc/self/status"])
    assert Path(argv[0]).name == "setpriv" and "--bounding-set=-all" in argv and preexec is None
    assert argv[-3:] == ["grep", "Cap", "/proc/self/status"] and "setpriv" in how
    assert _bounding_set_of(argv, preexec) == 0


@root_only
def test_unprivileged_command_prctl_fallback(tmp_path: Path) -> None:
    argv, preexec, how = unprivileged_command(["/bin/grep", "Cap", "/proc/self/status"], path=str(tmp_path))
    assert argv == ["/bin/grep", "Cap", "/proc/self/status"] and preexec is not None and "prctl" in how
    assert _bounding_set_of(argv, preexec) == 0
