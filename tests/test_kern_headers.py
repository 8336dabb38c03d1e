"""The non-CO-RE build from kernel headers (KERN_HEADERS), for kernels without BTF.

bpf/Makefile generates vmlinux.h from bpf/kernel_types.c compiled with the kernel's headers
(pahole turns its DWARF into BTF). A header-built object is only right if those types have
the layout of the kernel they describe: the test builds against Debian's linux-headers
(installed by scripts/setup.sh) and compares every structure the programs read with the
BTF of that very kernel build, taken from its linux-image package (downloaded, not
installed).
"""

from __future__ import annotations

import json
import lzma
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent

#: Structures the programs read (bpf/*.h), compared member by member.
STRUCTS = (
    "task_struct",
    "mm_struct",
    "file",
    "inode",
    "dentry",
    "vfsmount",
    "path",
    "linux_binprm",
    "socket",
    "sock_common",
    "sock",
    "fs_struct",
    "files_struct",
    "fdtable",
    "css_set",
    "cgroup",
    "cgroup_subsys_state",
    "kernfs_node",
    "nsproxy",
    "uts_namespace",
    "new_utsname",
    "pid",
    "upid",
    "pt_regs",
    "signal_struct",
    "vm_area_struct",
    "cred",
    "ns_common",
    "pid_namespace",
    "thread_info",
    "qstr",
    "super_block",
)
#: Internal structures kernel_types.c declares by their prefix: only those members are compared.
PREFIXES = ("mount", "mnt_namespace")

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("clang", "bpftool", "pahole", "make")),
    reason="needs clang, bpftool, pahole (dwarves) and make, which scripts/setup.sh installs",
)


def headers_dirs() -> list[Path]:
    """Configured kernel headers trees under /usr/src (Debian: linux-headers-<release>)."""
    return sorted(p for p in Path("/usr/src").glob("linux-headers-*") if (p / "include/generated/autoconf.h").is_file())


@pytest.fixture(scope="module")
def headers() -> Path:
    found = headers_dirs()
    if not found:
        pytest.skip("no configured kernel headers in /usr/src (scripts/setup.sh installs linux-headers-cloud-amd64)")
    return found[-1]


@pytest.fixture(scope="module")
def header_build(headers: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The non-CO-RE object built from ``headers``; its directory also holds kernel_types.o."""
    out = tmp_path_factory.mktemp("kern-headers") / "tracee.bpf.o"
    proc = subprocess.run(
        ["make", "-C", str(REPO / "bpf"), f"OUT={out}", "CORE=0", f"KERN_HEADERS={headers}"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_kern_headers_build_makes_the_object(header_build: Path) -> None:
    data = header_build.read_bytes()
    assert data[:4] == b"\x7fELF" and int.from_bytes(data[18:20], "little") == 247  # EM_BPF
    sections = subprocess.run(
        ["llvm-objdump", "-h", str(header_build)], capture_output=True, text=True, check=True
    ).stdout
    for section in ("raw_tp/sys_enter", "raw_tp/sys_exit", "raw_tp/sched_process_exec", "kprobe/security_file_open"):
        assert section in sections
    vmlinux_h = (header_build.parent / "vmlinux.h").read_text()
    assert "struct task_struct {" in vmlinux_h and "BPF_F_CURRENT_CPU" in vmlinux_h


def test_bad_kern_headers_are_refused_with_the_reason(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["make", "-C", str(REPO / "bpf"), f"OUT={tmp_path / 'x.o'}", "CORE=0", f"KERN_HEADERS={tmp_path}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 and f"no kernel headers at KERN_HEADERS='{tmp_path}'" in proc.stderr


def _btf(path: Path) -> tuple[dict[int, Any], dict[str, Any]]:
    out = subprocess.run(
        ["bpftool", "-j", "btf", "dump", "file", str(path)], capture_output=True, text=True, check=True
    ).stdout
    types = {t["id"]: t for t in json.loads(out)["types"]}
    named = {}
    for t in types.values():
        if t["kind"] in ("STRUCT", "UNION") and t.get("name") not in (None, "(anon)"):
            named.setdefault(t["name"], t)
    return types, named


def _members(types: dict[int, Any], t: dict[str, Any], base: int = 0) -> dict[str, int]:
    """Bit offsets of a structure's members, anonymous structs and unions flattened."""
    out: dict[str, int] = {}
    for m in t.get("members", []):
        off = base + m.get("bits_offset", 0)
        if m["name"] in ("(anon)", ""):
            inner = types[m["type_id"]]
            while inner["kind"] in ("TYPEDEF", "CONST", "VOLATILE"):
                inner = types[inner["type_id"]]
            if inner["kind"] in ("STRUCT", "UNION"):
                out.update(_members(types, inner, off))
        else:
            out[m["name"]] = off
    return out


def _vmlinux_of(image_deb: Path, work: Path) -> Path:
    """The uncompressed vmlinux inside a linux-image package's bzImage."""
    subprocess.run(["dpkg-deb", "-x", str(image_deb), str(work / "image")], check=True)
    (bzimage,) = (work / "image" / "boot").glob("vmlinuz-*")
    data = bzimage.read_bytes()
    setup_sects = data[0x1F1] or 4
    offset, length = struct.unpack_from("<II", data, 0x248)  # payload_offset, payload_length
    payload = data[(setup_sects + 1) * 512 + offset :][:length]
    if payload.startswith(b"\x1f\x8b"):
        out = zlib.decompressobj(31).decompress(payload)
    elif payload.startswith(b"\xfd7zXZ"):
        out = lzma.decompress(payload)
    else:  # lz4 (legacy frame) or zstd: their command-line tools
        tool = "lz4" if payload.startswith(b"\x02\x21\x4c\x18") else "zstd"
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is needed to unpack this kernel image (scripts/setup.sh installs it)")
        # the bzImage payload ends with the uncompressed size, which lz4 reports as trailing
        # garbage (exit status 1) after writing the whole kernel: the ELF check below decides
        out = subprocess.run([tool, "-dc"], input=payload, capture_output=True, check=False).stdout
    assert out[:4] == b"\x7fELF", "not a vmlinux"
    vmlinux = work / "vmlinux"
    vmlinux.write_bytes(out)
    return vmlinux


def test_header_layouts_match_the_kernels_own_btf(headers: Path, header_build: Path, tmp_path: Path) -> None:
    release = re.sub(r"^linux-headers-", "", headers.name)
    proc = subprocess.run(
        ["apt-get", "download", "-q", f"linux-image-{release}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    debs = list(tmp_path.glob("linux-image-*.deb"))
    if proc.returncode != 0 or not debs:
        pytest.skip(f"linux-image-{release} could not be downloaded to compare with: {proc.stderr.strip()[-300:]}")
    real_types, real = _btf(_vmlinux_of(debs[0], tmp_path))
    built_types, built = _btf(header_build.parent / "kernel_types.o")
    mismatched = {}
    for name in STRUCTS + PREFIXES:
        assert name in built and name in real, name
        mine, theirs = _members(built_types, built[name]), _members(real_types, real[name])
        diff = {m: (off, theirs.get(m)) for m, off in mine.items() if theirs.get(m) != off}
        if diff or (name in STRUCTS and built[name]["size"] != real[name]["size"]):
            mismatched[name] = (built[name]["size"], real[name]["size"], diff)
    assert not mismatched, mismatched
