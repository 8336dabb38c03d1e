"""The Python copies of the C structs (collector/wire.py) against the compiled object's BTF.

Every layout in ``wire.LAYOUTS`` (the record header, the argument heads, every struct a map
holds that user space packs or reads) and every map format in ``wire.MAPS`` is compared with
the BTF of bpf/tracee.bpf.o, as tetragon's alignchecker compares its Go structs with its
object: sizes, member names and order, offsets, integer sizes and signedness, array shapes,
per-CPU-ness of the maps. A C change that moves, resizes or retypes a field fails here
until collector/wire.py follows; the C-side tests build a modified copy of bpf/ to show it.

``PYTRACEE_WIRE_OBJECT=<path>`` checks another object instead of the tree's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from collector_support import BPF_DIR, build_object
from pytracee.collector import btf as btf_mod
from pytracee.collector import wire
from pytracee.collector.btf import Btf, BtfError, read_btf
from pytracee.collector.decode import _KEY_A, _KEY_B, _KEY_C, _KEY_D, _VARYING, HEADER

BUILD_TOOLS = ("make", "clang", "llvm-strip", "bpftool")


@pytest.fixture(scope="module")
def object_path() -> Path:
    given = os.environ.get("PYTRACEE_WIRE_OBJECT")
    return Path(given) if given else build_object()


@pytest.fixture(scope="module")
def object_btf(object_path: Path) -> Btf:
    return read_btf(object_path)


# ---- the tree's object ---------------------------------------------------------------------


def test_every_layout_and_map_format_matches_the_object(object_btf: Btf) -> None:
    assert wire.layout_mismatches(object_btf) == []


def test_the_record_structs_are_in_the_objects_btf(object_btf: Btf) -> None:
    # in BTF only through bpf/maps.h's wire_layouts (no map holds them)
    for name in ("event_header", "arg_slot", "var_arg", "strarr_arg"):
        assert object_btf.struct(name) is not None, name
    assert wire.EVENT_HEADER.size == 184  # bpf/common.h documents it


def test_every_map_holding_a_declared_struct_is_declared(object_btf: Btf) -> None:
    """A map whose key or value is one of the declared structs is read or written by user
    space through wire.MAPS (the kernel-only maps hold other structs)."""
    declared_structs = set(wire.LAYOUTS)
    for var in object_btf.section_vars(".maps"):
        members = {m.name: m.type_id for m in object_btf.resolve(var.ref).members}
        for part in ("key", "value"):
            if part in members:
                target = object_btf.resolve(object_btf.resolve(members[part]).ref)
                if target.name in declared_structs:
                    assert var.name in wire.MAPS, f"map {var.name} holds struct {target.name} but is not in wire.MAPS"


def test_the_loader_accepts_the_object(object_path: Path) -> None:
    from pytracee.collector.loader import layout_problems

    assert layout_problems(object_path) == []


# ---- the BTF reader --------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("bpftool") is None, reason="needs bpftool")
def test_the_btf_reader_agrees_with_bpftool(object_path: Path, object_btf: Btf) -> None:
    dump = subprocess.run(
        ["bpftool", "-j", "btf", "dump", "file", str(object_path)], capture_output=True, text=True, check=True
    )
    types = json.loads(dump.stdout)["types"]
    assert len(types) == len(object_btf.types) - 1  # [0] is void
    for j in types:
        t = object_btf.types[j["id"]]
        assert t.kind_name == j["kind"], j
        assert t.name == ("" if j["name"] == "(anon)" else j["name"]), j
        if j["kind"] in ("STRUCT", "UNION"):
            assert t.size == j["size"]
            assert [(m.name, m.type_id, m.bit_offset) for m in t.members] == [
                ("" if m["name"] == "(anon)" else m["name"], m["type_id"], m["bits_offset"]) for m in j["members"]
            ]
        elif j["kind"] == "ARRAY":
            assert (t.elem, t.nelems) == (j["type_id"], j["nr_elems"])
        elif j["kind"] == "INT":
            assert (t.size, t.bits, bool(t.encoding & btf_mod.INT_SIGNED)) == (
                j["size"],
                j["nr_bits"],
                j["encoding"] == "SIGNED",
            )
        elif j["kind"] == "DATASEC":
            assert [v[0] for v in t.vars] == [v["type_id"] for v in j["vars"]]
        elif j["kind"] in ("PTR", "TYPEDEF", "CONST", "VOLATILE", "VAR", "FUNC"):
            assert t.ref == j["type_id"], j


def test_the_btf_reader_reads_raw_btf(tmp_path: Path) -> None:
    kernel = Path("/sys/kernel/btf/vmlinux")
    if not kernel.exists():
        pytest.skip("no kernel BTF")
    head = read_btf(kernel)
    task = head.struct("task_struct")
    assert task is not None and task.size > 1000
    assert any(m.name == "pid" for m in task.members)
    (tmp_path / "junk").write_bytes(b"\x7fELF" + bytes(60))
    with pytest.raises(BtfError):
        read_btf(tmp_path / "junk")
    (tmp_path / "short").write_bytes(b"\x9f\xeb\x01\x00")
    with pytest.raises(BtfError):
        read_btf(tmp_path / "short")


# ---- the check catches differences (Python side changed) ---------------------------------------


def _swapped(layout: wire.Layout, a: str, b: str) -> wire.Layout:
    fields = list(layout.fields)
    names = [n for n, _ in fields]
    i, j = names.index(a), names.index(b)
    fields[i], fields[j] = fields[j], fields[i]
    return wire.Layout(layout.c_name, tuple(fields))


def _with_field(layout: wire.Layout, name: str, code: str) -> wire.Layout:
    return wire.Layout(layout.c_name, tuple((n, code if n == name else c) for n, c in layout.fields))


def test_a_python_copy_that_differs_is_reported(object_btf: Btf, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = {
        "event_header": (
            _swapped(wire.EVENT_HEADER, "host_pid", "syscall"),
            ["members (", "event_header.host_pid: at offset"],
        ),
        "filter_cfg": (_with_field(wire.FILTER_CFG, "cgroup_subsys", "I"), ["filter_cfg.cgroup_subsys: C type s32"]),
        "proc_info": (_with_field(wire.PROC_INFO, "exe", "512s"), ["proc_info.exe: C type char[2][256]"]),
        "strarr_arg": (
            _with_field(wire.STRARR_ARG, "count", "Q"),
            ["strarr_arg: 8 bytes in C, 12 in Python", "strarr_arg.count: 4 bytes in C, 8"],
        ),
    }
    for c_name, (changed, expected) in cases.items():
        with monkeypatch.context() as m:
            m.setitem(wire.LAYOUTS, c_name, changed)
            problems = "\n".join(wire.layout_mismatches(object_btf))
        for text in expected:
            assert text in problems, (c_name, problems)
    with monkeypatch.context() as m:
        m.setitem(wire.MAPS, "lost", wire.MapFormat("lost", wire.U32, wire.U64))  # per-CPU in C
        m.setitem(wire.MAPS, "f_comms", wire.MapFormat("f_comms", wire.U32, wire.U8))
        m.setitem(wire.MAPS, "gone", wire.MapFormat("gone", wire.U32, wire.U32))
        problems = "\n".join(wire.layout_mismatches(object_btf))
    assert "map lost: map type 6 in C, not per-CPU in Python" in problems
    assert "map f_comms key: char[16] (16 bytes) in C, 4 bytes in Python" in problems
    assert "map gone: not in the object's BTF" in problems


# ---- the check catches differences (C side changed) --------------------------------------------

#: Edits of a copy of bpf/, each with what the check must then say.
C_CHANGES = {
    "two header fields swapped": (
        "maps.h",
        "    u32 pid;                /* in the task's pid namespace */\n    u32 tid;\n",
        "    u32 tid;\n    u32 pid;                /* in the task's pid namespace */\n",
        ["struct event_header: members (", "event_header.pid: at offset 72 in C, 68 in Python"],
    ),
    "a string array count widened": (
        "common.h",
        "    u32 count;              /* strings in them",
        "    u64 count;              /* strings in them",
        ["struct strarr_arg: 16 bytes in C, 8 in Python"],
    ),
    "a config field made unsigned": (
        "maps.h",
        "    s32 cgroup_subsys;",
        "    u32 cgroup_subsys;",
        ["filter_cfg.cgroup_subsys: C type u32, Python reads s32"],
    ),
    "a map key retyped": (
        "maps.h",
        "    __type(key, u64);\n    __type(value, struct cgrp_info);",
        "    __type(key, u32);\n    __type(value, struct cgrp_info);",
        ["map cgrp_info key: u32 (4 bytes) in C, 8 bytes in Python"],
    ),
}


@pytest.fixture(scope="module")
def changed_object(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bpf/ copied, every C_CHANGES edit applied, built as the project builds it."""
    missing = [tool for tool in BUILD_TOOLS if shutil.which(tool) is None]
    if missing or not Path("/sys/kernel/btf/vmlinux").exists():
        pytest.skip(f"cannot build the BPF object here ({', '.join(missing) or 'no kernel BTF'})")
    src = tmp_path_factory.mktemp("bpf-changed") / "bpf"
    shutil.copytree(BPF_DIR, src, ignore=shutil.ignore_patterns("*.o", "*.btf", "__pycache__", "build"))
    for what, (name, old, new, _) in C_CHANGES.items():
        path = src / name
        text = path.read_text()
        assert text.count(old) == 1, f"{what}: the text to change is no longer in bpf/{name}"
        path.write_text(text.replace(old, new))
    out = src / "out" / "tracee.bpf.o"
    proc = subprocess.run(
        ["make", "-C", str(src), f"OUT={out}"], capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.parametrize("what", sorted(C_CHANGES))
def test_a_c_change_fails_the_check(changed_object: Path, what: str) -> None:
    problems = "\n".join(wire.layout_mismatches(read_btf(changed_object)))
    for text in C_CHANGES[what][3]:
        assert text in problems, problems


def test_the_loader_refuses_a_changed_object(changed_object: Path) -> None:
    from pytracee.collector.loader import IncompatibleObjectError, ObjectLoader

    loader = ObjectLoader(changed_object, None, ring_buffer_bytes=1 << 20)
    with pytest.raises(IncompatibleObjectError, match=r"layouts differ from collector/wire.py: struct event_header"):
        loader._open("ring")


# ---- the layouts themselves ------------------------------------------------------------------


def test_layout_offsets_and_views() -> None:
    assert [wire.PROC_INFO.offset(n) for n in ("start_time", "gen", "pad", "len", "exe")] == [0, 8, 12, 16, 24]
    assert wire.PROC_INFO.field_size("exe") == 512
    raw = wire.PROC_INFO.pack(7, 2, 0, 3, 4, b"abc", b"defg")
    assert wire.PROC_INFO.unpack_named(raw) == {
        "start_time": 7, "gen": 2, "pad": 0, "len": (3, 4), "exe": (b"abc".ljust(256, b"\0"), b"defg".ljust(256, b"\0")),
    }  # fmt: skip
    assert wire.CGRP_INFO.unpack_named(bytes(wire.CGRP_INFO.size))["names"] == (bytes(128),) * 4
    assert wire.sys_kinds(wire.EVENTS["openat"]) == wire.SYS_DESC.pack(bytes([1, 10, 1, 5]), b"")
    with pytest.raises(ValueError, match="unsupported member format"):
        wire.Layout("x", (("a", "I?"),))


def test_the_decoder_views_of_the_header_follow_the_layout() -> None:
    assert HEADER.format == wire.EVENT_HEADER.format
    varying = ("ts", "retval", "event_id", "syscall")
    values: dict[str, int | bytes] = {name: i + 1 for i, (name, _) in enumerate(wire.EVENT_HEADER.fields)}
    values["comm"], values["uts"] = b"comm", b"host"
    raw = HEADER.pack(*values.values())
    assert _VARYING.unpack_from(raw) == tuple(values[n] for n in varying)
    # the thread-context cache key: every byte but the varying fields'
    covered = set(range(_KEY_A, _KEY_B)) | set(range(_KEY_C, _KEY_D))
    for name, _ in wire.EVENT_HEADER.fields:
        at = set(
            range(wire.EVENT_HEADER.offset(name), wire.EVENT_HEADER.offset(name) + wire.EVENT_HEADER.field_size(name))
        )
        assert (at <= covered) == (name not in varying), name


def test_c_change_table_matches_the_sources() -> None:
    """Each C_CHANGES edit still finds its text (else the C-side tests would prove nothing)."""
    for what, (name, old, _new, _) in C_CHANGES.items():
        assert (BPF_DIR / name).read_text().count(old) == 1, what
    assert re.search(r"struct wire_layouts wire_layouts SEC\(\"\.wire\"\)", (BPF_DIR / "maps.h").read_text())
