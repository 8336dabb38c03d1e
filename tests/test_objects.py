"""BPF object and BTF discovery (pytracee.collector.objects): Tracee's five cases, the build
policy, the exit-status-2 error and the planting/symlink attacks on the install path."""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from pytracee.collector.objects import (
    BpfObjectError,
    ObjectChoice,
    build_nocore_object,
    choose_bpf_object,
    nocore_object_name,
)
from pytracee.collector.privileges import UnsafePathError

REPO = Path(__file__).resolve().parent.parent
NOBODY = 65534
RELEASE = "6.1.0-test"
VERSION = "0.1.0"
NAME = "tracee.bpf.6_1_0-test.0_1_0.o"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown to another user, capabilities)")

# A stand-in for `make`: records its arguments and capability bounding set, then writes OUT
# (or fails with FAKE_MAKE_FAIL, or produces nothing with FAKE_MAKE_NO_OUTPUT).
FAKE_MAKE = """#!/bin/sh
printf '%s\\n' "$@" > "$FAKE_MAKE_LOG"
grep CapBnd /proc/self/status >> "$FAKE_MAKE_LOG"
if [ -n "$FAKE_MAKE_FAIL" ]; then echo "clang: error: $FAKE_MAKE_FAIL" >&2; exit 3; fi
[ -n "$FAKE_MAKE_NO_OUTPUT" ] && exit 0
for arg; do case "$arg" in OUT=*) out="${arg#OUT=}";; esac; done
printf 'built by fake make' > "$out"
"""


def make_file(path: Path, data: bytes = b"\x7fELF fake", mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.fixture
def embedded(tmp_path: Path) -> Path:
    """A package bpf/ directory: the CO-RE object, the sources and their Makefile."""
    directory = tmp_path / "pkg" / "bpf"
    make_file(directory / "tracee.bpf.o", b"embedded CO-RE object")
    make_file(directory / "tracee.bpf.c", b"/* sources */\n")
    make_file(directory / "Makefile", b"all:\n\t@echo real make must not run in these tests; false\n")
    return directory


@pytest.fixture
def kernel_btf(tmp_path: Path) -> Path:
    """A stand-in for /sys/kernel/btf/vmlinux on a kernel with BTF."""
    return make_file(tmp_path / "sys" / "vmlinux", b"kernel BTF")


@pytest.fixture
def no_btf(tmp_path: Path) -> Path:
    """A kernel without BTF: the path option points at a missing file."""
    return tmp_path / "sys" / "missing-vmlinux"


@pytest.fixture
def install(tmp_path: Path) -> Path:
    return tmp_path / "tracee"


@pytest.fixture
def fake_make(tmp_path: Path) -> dict[str, str]:
    """An environ putting the stand-in make first on PATH; its log is FAKE_MAKE_LOG."""
    fakebin = tmp_path / "fakebin"
    make_file(fakebin / "make", FAKE_MAKE.encode(), mode=0o755)
    return {"PATH": f"{fakebin}:{os.environ.get('PATH', '/usr/bin:/bin')}", "FAKE_MAKE_LOG": str(tmp_path / "make.log")}


def choose(embedded: Path, install: Path, kernel_btf: Path, **kwargs: Any) -> ObjectChoice:
    kwargs.setdefault("environ", {})
    return choose_bpf_object(
        install_path=install,
        kernel_btf=kernel_btf,
        embedded_dir=embedded,
        kernel_release=RELEASE,
        version=VERSION,
        exe_dir=embedded.parent / "no-bin",
        **kwargs,
    )


def test_object_name_is_tracees() -> None:
    assert nocore_object_name(RELEASE, VERSION) == NAME
    assert nocore_object_name("5.8.0-55-generic", '"v0.5.4"') == "tracee.bpf.5_8_0-55-generic.v0_5_4.o"


# --------------------------------------------------------------------------- the five cases


def test_case1_env_object_with_env_btf_preferred(
    embedded: Path, install: Path, kernel_btf: Path, tmp_path: Path
) -> None:
    obj = make_file(tmp_path / "env" / "mine.bpf.o")
    btf = make_file(tmp_path / "env" / "vmlinux.btf")
    choice = choose(embedded, install, kernel_btf, environ={"TRACEE_BPF_FILE": str(obj), "TRACEE_BTF_FILE": str(btf)})
    assert choice == ObjectChoice(obj, btf, True, 1, choice.reason)
    assert "TRACEE_BTF_FILE" in choice.reason and "CO-RE" in choice.reason
    assert not install.exists()  # nothing written


def test_case1_env_object_with_kernel_btf(embedded: Path, install: Path, kernel_btf: Path, tmp_path: Path) -> None:
    obj = make_file(tmp_path / "env" / "mine.bpf.o")
    choice = choose(embedded, install, kernel_btf, environ={"TRACEE_BPF_FILE": str(obj)})
    assert (choice.case, choice.object_path, choice.btf_path, choice.core) == (1, obj, None, True)
    assert "kernel's BTF" in choice.reason


def test_case1_env_btf_without_kernel_btf(embedded: Path, install: Path, no_btf: Path, tmp_path: Path) -> None:
    obj = make_file(tmp_path / "env" / "mine.bpf.o")
    btf = make_file(tmp_path / "env" / "vmlinux.btf")
    choice = choose(embedded, install, no_btf, environ={"TRACEE_BPF_FILE": str(obj), "TRACEE_BTF_FILE": str(btf)})
    assert (choice.case, choice.btf_path, choice.core) == (1, btf, True)


def test_case2_env_object_without_btf_is_non_core(embedded: Path, install: Path, no_btf: Path, tmp_path: Path) -> None:
    obj = make_file(tmp_path / "env" / "mine.bpf.o")
    choice = choose(embedded, install, no_btf, environ={"TRACEE_BPF_FILE": str(obj)})
    assert (choice.case, choice.object_path, choice.btf_path, choice.core) == (2, obj, None, False)
    assert "non-CO-RE" in choice.reason


def test_case3_embedded_object_with_kernel_btf(embedded: Path, install: Path, kernel_btf: Path) -> None:
    choice = choose(embedded, install, kernel_btf)
    assert (choice.case, choice.object_path, choice.btf_path, choice.core) == (3, embedded / "tracee.bpf.o", None, True)


def test_case3_embedded_object_with_env_btf(embedded: Path, install: Path, no_btf: Path, tmp_path: Path) -> None:
    btf = make_file(tmp_path / "env" / "vmlinux.btf")
    choice = choose(embedded, install, no_btf, environ={"TRACEE_BTF_FILE": str(btf)})
    assert (choice.case, choice.object_path, choice.btf_path, choice.core) == (3, embedded / "tracee.bpf.o", btf, True)


def test_case3_missing_embedded_object_is_an_error(embedded: Path, install: Path, kernel_btf: Path) -> None:
    (embedded / "tracee.bpf.o").unlink()
    with pytest.raises(BpfObjectError, match=r"embedded CO-RE eBPF object: .* is missing") as info:
        choose(embedded, install, kernel_btf)
    assert info.value.exit_code == 2


def test_case4_embedded_reduced_btf_unpacked(
    embedded: Path, install: Path, no_btf: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_file(embedded / "tracee.min.btf", b"reduced BTF")
    with caplog.at_level(logging.WARNING, logger="pytracee.collector"):
        choice = choose(embedded, install, no_btf)
    assert (choice.case, choice.object_path, choice.btf_path, choice.core) == (
        4,
        embedded / "tracee.bpf.o",
        install / "tracee.btf",
        True,
    )
    assert (install / "tracee.btf").read_bytes() == b"reduced BTF"
    assert stat.S_IMODE(install.stat().st_mode) == 0o700
    assert stat.S_IMODE((install / "tracee.btf").stat().st_mode) == 0o644
    assert "min_core_btf" in choice.reason and "same layouts" in choice.reason
    assert "valid only if this kernel's struct layouts match" in caplog.text


def test_case4_replaces_a_link_instead_of_writing_through_it(
    embedded: Path, install: Path, no_btf: Path, tmp_path: Path
) -> None:
    make_file(embedded / "tracee.min.btf", b"reduced BTF")
    victim = make_file(tmp_path / "victim", b"precious")
    install.mkdir(mode=0o700)
    (install / "tracee.btf").symlink_to(victim)
    choice = choose(embedded, install, no_btf)
    assert choice.btf_path == install / "tracee.btf" and not choice.btf_path.is_symlink()
    assert victim.read_bytes() == b"precious"


def test_case4_needs_no_kernel_btf_only(embedded: Path, install: Path, kernel_btf: Path) -> None:
    """With kernel BTF, case 3 wins even if a reduced BTF is embedded."""
    make_file(embedded / "tracee.min.btf", b"reduced BTF")
    assert choose(embedded, install, kernel_btf).case == 3


def test_case5_non_core_object_in_install_path(embedded: Path, install: Path, no_btf: Path) -> None:
    install.mkdir(mode=0o700)
    obj = make_file(install / NAME)
    choice = choose(embedded, install, no_btf, build_policy="never")
    assert (choice.case, choice.object_path, choice.btf_path, choice.core) == (5, obj, None, False)


def test_case5_looks_next_to_the_executable_first(embedded: Path, install: Path, no_btf: Path, tmp_path: Path) -> None:
    install.mkdir(mode=0o700)
    make_file(install / NAME)
    beside = make_file(tmp_path / "bin" / NAME)
    choice = choose_bpf_object(
        install_path=install,
        kernel_btf=no_btf,
        embedded_dir=embedded,
        environ={},
        kernel_release=RELEASE,
        version=VERSION,
        exe_dir=tmp_path / "bin",
        build_policy="never",
    )
    assert (choice.case, choice.object_path) == (5, beside)


# --------------------------------------------------------------------------- errors


def test_nothing_loadable_exits_2_with_instructions(embedded: Path, install: Path, no_btf: Path) -> None:
    with pytest.raises(BpfObjectError) as info:
        choose(embedded, install, no_btf, build_policy="never")
    error = info.value
    assert error.exit_code == 2
    message = str(error)
    assert message.startswith("BPF: no loadable eBPF object")
    for expected in (
        "TRACEE_BPF_FILE not set",
        f"{no_btf} missing",
        "tracee.min.btf missing",
        f"{install / NAME}: missing",
        "--build-policy never",
        "TRACEE_BTF_FILE=",
        "set TRACEE_BPF_FILE",
        "--build-policy if-needed",
        "VMLINUX_BTF=",
    ):
        assert expected in message, expected
    assert any("--build-policy never" in line for line in error.tried)
    assert not install.exists()  # `never` creates nothing


@pytest.mark.parametrize("variable", ["TRACEE_BPF_FILE", "TRACEE_BTF_FILE"])
def test_env_naming_a_missing_file_is_an_error(
    embedded: Path, install: Path, kernel_btf: Path, tmp_path: Path, variable: str
) -> None:
    with pytest.raises(BpfObjectError, match=f"could not open {variable} .*nope: no such file") as info:
        choose(embedded, install, kernel_btf, environ={variable: str(tmp_path / "nope")})
    assert info.value.exit_code == 1


def test_empty_env_variables_are_unset(embedded: Path, install: Path, kernel_btf: Path) -> None:
    assert choose(embedded, install, kernel_btf, environ={"TRACEE_BPF_FILE": "", "TRACEE_BTF_FILE": ""}).case == 3


def test_invalid_build_policy(embedded: Path, install: Path, kernel_btf: Path) -> None:
    with pytest.raises(ValueError, match="never, if-needed, always"):
        choose(embedded, install, kernel_btf, build_policy="sometimes")


# --------------------------------------------------------------------------- the build policy


def make_log(env: dict[str, str]) -> list[str]:
    return Path(env["FAKE_MAKE_LOG"]).read_text().splitlines()


def test_if_needed_builds_a_missing_object(
    embedded: Path, install: Path, no_btf: Path, fake_make: dict[str, str]
) -> None:
    environ = {**fake_make, "KERN_HEADERS": "/usr/src/linux-headers-test"}
    choice = choose(embedded, install, no_btf, environ=environ)
    assert (choice.case, choice.object_path, choice.btf_path, choice.core) == (5, install / NAME, None, False)
    assert (install / NAME).read_bytes() == b"built by fake make"
    assert "built the non-CO-RE object" in choice.reason and "if-needed" in choice.reason
    args = make_log(environ)
    source_copy = Path(args[1])
    assert args[0] == "-C" and source_copy != embedded and source_copy.name == "bpf"
    assert args[2].startswith("OUT=") and args[2].endswith("/" + NAME)
    assert args[3:5] == ["CORE=0", "KERN_HEADERS=/usr/src/linux-headers-test"]
    if os.geteuid() == 0:  # the build ran with an empty capability bounding set
        assert args[5] == "CapBnd:\t0000000000000000"
    assert not source_copy.exists()  # the private copy is removed after the build
    assert stat.S_IMODE((install / NAME).stat().st_mode) == 0o644


def test_build_passes_vmlinux_btf_when_given(
    embedded: Path, install: Path, no_btf: Path, fake_make: dict[str, str]
) -> None:
    environ = {**fake_make, "VMLINUX_BTF": "/boot/vmlinux.btf"}
    choose(embedded, install, no_btf, environ=environ)
    assert "VMLINUX_BTF=/boot/vmlinux.btf" in make_log(environ)


def test_if_needed_does_not_rebuild(embedded: Path, install: Path, no_btf: Path, fake_make: dict[str, str]) -> None:
    install.mkdir(mode=0o700)
    make_file(install / NAME, b"prebuilt")
    choice = choose(embedded, install, no_btf, environ=fake_make)
    assert choice.object_path.read_bytes() == b"prebuilt"
    assert not Path(fake_make["FAKE_MAKE_LOG"]).exists()


def test_always_rebuilds_an_existing_object(
    embedded: Path, install: Path, no_btf: Path, fake_make: dict[str, str]
) -> None:
    install.mkdir(mode=0o700)
    make_file(install / NAME, b"prebuilt")
    choice = choose(embedded, install, no_btf, environ=fake_make, build_policy="always")
    assert choice.object_path == install / NAME and choice.object_path.read_bytes() == b"built by fake make"
    assert "--build-policy always" in choice.reason


def test_always_does_not_override_core(
    embedded: Path, install: Path, kernel_btf: Path, fake_make: dict[str, str]
) -> None:
    """As in Tracee v0.5-v0.6, the policy is only consulted once no BTF is available."""
    choice = choose(embedded, install, kernel_btf, environ=fake_make, build_policy="always")
    assert choice.case == 3 and "--build-policy always only applies to the non-CO-RE object of case 5" in choice.reason
    assert not Path(fake_make["FAKE_MAKE_LOG"]).exists()


def test_failed_build_is_a_clear_exit_2_error(
    embedded: Path, install: Path, no_btf: Path, fake_make: dict[str, str]
) -> None:
    environ = {**fake_make, "FAKE_MAKE_FAIL": "linux/kconfig.h not found"}
    with pytest.raises(BpfObjectError) as info:
        choose(embedded, install, no_btf, environ=environ)
    message = str(info.value)
    assert info.value.exit_code == 2
    assert "no loadable eBPF object (the build failed)" in message
    assert "building the non-CO-RE object failed (exit status 3)" in message
    assert "clang: error: linux/kconfig.h not found" in message
    assert not (install / NAME).exists()


def test_build_without_output_is_an_error(
    embedded: Path, install: Path, no_btf: Path, fake_make: dict[str, str]
) -> None:
    with pytest.raises(BpfObjectError, match="no object produced"):
        choose(embedded, install, no_btf, environ={**fake_make, "FAKE_MAKE_NO_OUTPUT": "1"})


def test_build_without_makefile_or_make(embedded: Path, install: Path, no_btf: Path, tmp_path: Path) -> None:
    with pytest.raises(BpfObjectError, match="make not found on PATH"):
        choose(embedded, install, no_btf, environ={"PATH": str(tmp_path / "empty")})
    (embedded / "Makefile").unlink()
    with pytest.raises(BpfObjectError, match="have no Makefile"):
        choose(embedded, install, no_btf)


# --------------------------------------------------------------------------- planting and symlink attacks


def test_world_writable_install_path_refused(
    embedded: Path, install: Path, no_btf: Path, fake_make: dict[str, str]
) -> None:
    install.mkdir()
    install.chmod(0o777)
    with pytest.raises(UnsafePathError, match=r"install path .*: it is writable by group or others \(mode 0777\)"):
        choose(embedded, install, no_btf, environ=fake_make)
    assert not Path(fake_make["FAKE_MAKE_LOG"]).exists()


def test_install_path_symlinked_elsewhere_refused(embedded: Path, install: Path, no_btf: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir(mode=0o700)
    make_file(elsewhere / NAME)
    install.symlink_to(elsewhere)
    with pytest.raises(UnsafePathError, match=r"it is a symbolic link .*attacker"):
        choose(embedded, install, no_btf, build_policy="never")
    make_file(embedded / "tracee.min.btf")  # case 4 writes into the install path: refused too
    with pytest.raises(UnsafePathError, match="it is a symbolic link"):
        choose(embedded, install, no_btf)


def test_object_writable_by_others_refused(embedded: Path, install: Path, no_btf: Path) -> None:
    install.mkdir(mode=0o700)
    make_file(install / NAME, mode=0o666)
    with pytest.raises(UnsafePathError, match=f"the non-CO-RE BPF object .*{NAME}: it is writable by group or others"):
        choose(embedded, install, no_btf, build_policy="never")


@root_only
def test_object_owned_by_another_user_refused(embedded: Path, install: Path, no_btf: Path) -> None:
    install.mkdir(mode=0o700)
    obj = make_file(install / NAME)
    os.chown(obj, NOBODY, NOBODY)
    with pytest.raises(UnsafePathError, match=f"owned by uid {NOBODY}"):
        choose(embedded, install, no_btf, build_policy="never")


def test_symlinked_object_refused(embedded: Path, install: Path, no_btf: Path, tmp_path: Path) -> None:
    install.mkdir(mode=0o700)
    (install / NAME).symlink_to(make_file(tmp_path / "other.o"))
    with pytest.raises(UnsafePathError, match="it is a symbolic link"):
        choose(embedded, install, no_btf, build_policy="never")


def test_env_files_are_checked_too(embedded: Path, install: Path, kernel_btf: Path, tmp_path: Path) -> None:
    real = make_file(tmp_path / "env" / "real.o")
    (tmp_path / "env" / "link.o").symlink_to(real)
    with pytest.raises(UnsafePathError, match=r"refusing TRACEE_BPF_FILE .*link.o: it is a symbolic link"):
        choose(embedded, install, kernel_btf, environ={"TRACEE_BPF_FILE": str(tmp_path / "env" / "link.o")})
    btf = make_file(tmp_path / "env" / "vmlinux.btf", mode=0o646)
    with pytest.raises(UnsafePathError, match=r"refusing TRACEE_BTF_FILE .*writable by group or others"):
        choose(embedded, install, kernel_btf, environ={"TRACEE_BTF_FILE": str(btf)})


@root_only
def test_embedded_files_are_checked_too(embedded: Path, install: Path, kernel_btf: Path, no_btf: Path) -> None:
    os.chown(embedded / "tracee.bpf.o", NOBODY, NOBODY)
    with pytest.raises(UnsafePathError, match="the embedded CO-RE BPF object"):
        choose(embedded, install, kernel_btf)
    os.chown(embedded / "tracee.bpf.o", 0, 0)
    make_file(embedded / "tracee.min.btf", mode=0o666)
    with pytest.raises(UnsafePathError, match="the embedded reduced BTF"):
        choose(embedded, install, no_btf)


# --------------------------------------------------------------------------- logging


def test_decision_logged_at_debug_level(
    embedded: Path, install: Path, kernel_btf: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="pytracee.collector"):
        choose(embedded, install, kernel_btf)
    assert "decision" not in caplog.text  # not shown without --log debug
    with caplog.at_level(logging.DEBUG, logger="pytracee.collector"):
        choice = choose(embedded, install, kernel_btf)
    records = [r for r in caplog.records if r.name == "pytracee.collector" and r.levelno == logging.DEBUG]
    text = "\n".join(r.getMessage() for r in records)
    assert "BTF: bpfenv = False, btfenv = False, vmlinux = True" in text
    assert f"BPF: decision 3: {choice.reason}" in text and "CO-RE" in text


def test_build_command_logged(
    embedded: Path, install: Path, no_btf: Path, fake_make: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="pytracee.collector"):
        choose(embedded, install, no_btf, environ=fake_make)
    assert "BPF: building the non-CO-RE object:" in caplog.text and "CORE=0" in caplog.text
    assert "capabilities dropped" in caplog.text
    assert "BPF: decision 5:" in caplog.text


# --------------------------------------------------------------------------- one real build


STAND_IN_SOURCE = b"""#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
SEC("raw_tp/sys_enter") int stand_in(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.skipif(
    not (
        shutil.which("clang")
        and shutil.which("llvm-strip")
        and shutil.which("bpftool")
        and shutil.which("make")
        and (REPO / "bpf" / "Makefile").is_file()
        and (os.environ.get("VMLINUX_BTF") or Path("/sys/kernel/btf/vmlinux").exists())
    ),
    reason="needs clang, llvm-strip, bpftool, make, bpf/Makefile and a BTF file",
)
def test_real_non_core_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real non-CO-RE build through bpf/Makefile's contract (CORE=0 from VMLINUX_BTF), with
    capabilities dropped: of the packaged sources, or of a stand-in program built by the real
    Makefile while bpf/tracee.bpf.c is not there."""
    monkeypatch.delenv("KERN_HEADERS", raising=False)  # this test builds from BTF
    environ = {"VMLINUX_BTF": os.environ.get("VMLINUX_BTF") or "/sys/kernel/btf/vmlinux"}
    sources = REPO / "bpf"
    if not (sources / "tracee.bpf.c").is_file():
        sources = tmp_path / "bpf"
        sources.mkdir()
        shutil.copy(REPO / "bpf" / "Makefile", sources / "Makefile")
        make_file(sources / "tracee.bpf.c", STAND_IN_SOURCE)
    install = tmp_path / "tracee"
    install.mkdir(mode=0o700)
    built = build_nocore_object(install / NAME, embedded_dir=sources, environ=environ)
    assert built == install / NAME
    header = built.read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    assert int.from_bytes(header[18:20], "little") == 247  # EM_BPF
