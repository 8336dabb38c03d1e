"""The wire format and its decoder, without a kernel: records recorded on this machine
(bpf/tracee.bpf.c on Linux 6.18) and records built here field by field."""

from __future__ import annotations

import base64
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from pytracee.collector import wire
from pytracee.collector.decode import (
    HEADER,
    Decoder,
    container_id_from_cgroup,
    sockaddr_value,
    task_entity_id,
)
from pytracee.engine.catalogue import SYSCALLS, event_id
from pytracee.engine.schema import full_event

BPF_DIR = Path(__file__).resolve().parent.parent / "bpf"

# Raw ring-buffer records captured from a live run (`Collector.raw_records`) of a process
# named trcx_rec: open("/etc/hostname"), connect(127.0.0.1:9), an ELF header written to a file.
RECORDED = {
    "openat": (
        "94ca15a0c6050000c815cc9ec6050000c815cc9ec6050000d1b53b86c6050000fb1b0000000000000300000000000000"
        "010100000101000090790000907900008d79000090790000907900008d79000000000000f8ffffeffcffffef00000000"
        "0100000001000000747263785f7265630000000000000000766d00000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000009cffffffffffffff"
        "000008000000000000000000000000000d0000002f6574632f686f73746e616d65000000"
    ),
    "security_file_open": (
        "990216a0c6050000c815cc9ec6050000c815cc9ec6050000d1b53b86c6050000fb1b0000000000000000000000000000"
        "dc0200000101000090790000907900008d79000090790000907900008d79000000000000f8ffffeffcffffef00000000"
        "0100000001000000747263785f7265630000000000000000766d00000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000080000000000000"
        "0000e00f0000000064020000000000000f83f70d7340ea180d0000002f6574632f686f73746e616d650000000d000000"
        "2f6574632f686f73746e616d65000000"
    ),
    "security_socket_connect": (
        "0f9916a0c6050000c815cc9ec6050000c815cc9ec6050000d1b53b86c6050000fb1b0000000000000000000000000000"
        "e00200002a00000090790000907900008d79000090790000907900008d79000000000000f8ffffeffcffffef00000000"
        "0100000001000000747263785f7265630000000000000000766d00000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000300000000000000"
        "010000000000000010000000020000097f0000010000000000000000"
    ),
    "magic_write": (
        "168b22a0c6050000c815cc9ec6050000c815cc9ec6050000d1b53b86c6050000fb1b0000000000000000000000000000"
        "d70200000100000090790000907900008d79000090790000907900008d79000000000000f8ffffeffcffffef01000000"
        "0100000001000000747263785f7265630000000000000000766d00000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000e00f00000000"
        "51c0200000000000110000002f746d702f747263785f7265635f656c66000000140000007f454c460201010000000000"
        "0000000000000000"
    ),
}


def _raw(name: str) -> bytes:
    return bytes.fromhex("".join(RECORDED[name]))


class _Context:
    """A ContextSource answering from dicts."""

    def __init__(self, exe: dict[int, str] | None = None, cgroups: dict[int, list[bytes]] | None = None) -> None:
        self.exe, self.cgroups = exe or {}, cgroups or {}
        self.calls = 0

    def executable(self, host_pid: int, leader_start: int, gen: int) -> str:
        self.calls += 1
        return self.exe.get(host_pid, "")

    def cgroup_names(self, cgroup_id: int) -> list[bytes]:
        return self.cgroups.get(cgroup_id, [])


def _args(event: dict[str, Any]) -> dict[str, Any]:
    return {a["name"]: a["value"] for a in event["args"]}


BOOT = 1_700_000_000_000_000_000


def test_recorded_openat() -> None:
    event = Decoder(BOOT, _Context({31120: "/usr/bin/python3.11"})).decode(_raw("openat"))
    assert event["eventName"] == "openat" and event["eventId"] == "257"
    assert event["args"] == [
        {"name": "dirfd", "type": "int32", "value": -100},
        {"name": "pathname", "type": "string", "value": "/etc/hostname"},
        {"name": "flags", "type": "int32", "value": 524288},
        {"name": "mode", "type": "uint16", "value": 0},
    ]
    assert (event["returnValue"], event["syscall"], event["argsNum"]) == (3, "openat", 4)
    assert (event["hostProcessId"], event["processId"], event["hostParentProcessId"]) == (31120, 31120, 31117)
    assert (event["processName"], event["hostName"], event["cgroupId"], event["userId"]) == ("trcx_rec", "vm", 7163, 0)
    assert (event["mountNamespace"], event["pidNamespace"]) == (4026531832, 4026531836)
    assert event["timestamp"] == BOOT + 6350647446164
    assert event["threadStartTime"] == BOOT + 6350625838536
    assert event["executable"] == {"path": "/usr/bin/python3.11"}
    assert event["stackAddresses"] is None and event["contextFlags"] == {"containerStarted": False, "isCompat": False}


def test_recorded_events_have_the_v024_layout() -> None:
    for name in RECORDED:
        event = Decoder(BOOT).decode(_raw(name))
        assert list(event) == list(full_event(event)), name  # every field, in Go's order
        assert event["argsNum"] == len(event["args"]) == len(wire.EVENTS[name].visible)
        assert [a["name"] for a in event["args"]] == [a.name for a in wire.EVENTS[name].args]


def test_recorded_security_events() -> None:
    dec = Decoder(0)
    sfo = dec.decode(_raw("security_file_open"))
    assert _args(sfo) == {
        "pathname": "/etc/hostname",
        "flags": 32768,
        "dev": 266338304,
        "inode": 612,
        "ctime": 1795318264360305423,
        "syscall_pathname": "/etc/hostname",
    }
    assert (sfo["eventId"], sfo["syscall"], sfo["returnValue"]) == ("732", "openat", 0)
    connect = dec.decode(_raw("security_socket_connect"))
    assert _args(connect) == {
        "sockfd": 3,
        "type": 1,
        "remote_addr": {"sa_family": "AF_INET", "sin_port": "9", "sin_addr": "127.0.0.1"},
    }
    write = dec.decode(_raw("magic_write"))
    assert _args(write)["pathname"] == "/tmp/trcx_rec_elf"
    assert base64.b64decode(_args(write)["bytes"]) == b"\x7fELF\x02\x01\x01" + bytes(13)
    assert [a["type"] for a in write["args"]] == ["string", "[]byte", "uint32", "uint64"]
    # the same thread: the same entity ids
    assert sfo["threadEntityId"] == connect["threadEntityId"] == write["threadEntityId"] == sfo["processEntityId"]


# ---- records built here ------------------------------------------------------------


def _header(event_id_: int, **kw: Any) -> bytes:
    f = {
        "ts": 1000, "start": 500, "leader_start": 400, "parent_start": 300, "cgroup": 77, "retval": 0,
        "syscall": -1, "host_pid": 10, "host_tid": 11, "host_ppid": 9, "pid": 1, "tid": 2, "ppid": 0,
        "uid": 1000, "mnt": 4026532000, "pidns": 4026532001, "cpu": 1, "flags": 0, "exe_gen": 1,
        "comm": b"nginx", "uts": b"web-1",
    } | kw  # fmt: skip
    return HEADER.pack(
        f["ts"], f["start"], f["leader_start"], f["parent_start"], f["cgroup"], f["retval"], event_id_, f["syscall"],
        f["host_pid"], f["host_tid"], f["host_ppid"], f["pid"], f["tid"], f["ppid"], f["uid"], f["mnt"], f["pidns"],
        f["cpu"], f["flags"], f["exe_gen"], f["comm"], f["uts"],
    )  # fmt: skip


def _var(data: bytes) -> bytes:
    return struct.pack("<I", len(data)) + data + bytes(-len(data) % 4)


def _arr(items: list[bytes], count: int | None = None) -> bytes:
    data = b"".join(i + b"\0" for i in items)
    return struct.pack("<II", len(data), len(items) if count is None else count) + data + bytes(-len(data) % 4)


def _slots(*values: int) -> bytes:
    return b"".join(struct.pack("<q" if v < 0 else "<Q", v) for v in values)


CONTAINER = "3f1f5e5b6a52d8e67fd4a5b0bd1b6a2c1e0c0a9c9f1e8f1d2c3b4a5968778695"


def test_sched_process_exec_in_a_started_container() -> None:
    # fixed: dev, inode, ctime, inode_mode, interp dev/inode/ctime, stdin_type, invoked_from_kernel
    body = _slots(0x0FE00000, 42, 7, 0o100755, 0, 0, 0, 0o20000, 0)
    body += _var(b"/bin/sh") + _var(b"/usr/bin/dash") + _var(b"") + _arr([b"sh", b"-c", b"id"], 0xFFFFFFFF)
    body += _var(b"/bin/sh") + _var(b"/dev/pts/0") + _var(b"nginx") + _arr([b"LD_PRELOAD=/x.so", b"A=1", b"B=2"], 2)
    body += _var(b"/")
    ctx = _Context({10: "/usr/bin/dash"}, {77: [b"init.scope", f"docker-{CONTAINER}.scope".encode(), b"system.slice"]})
    event = Decoder(0, ctx).decode(_header(715, flags=1, comm=b"sh", syscall=59) + body)
    a = _args(event)
    assert a["argv"] == ["sh", "-c", "id"]  # an area split on NUL
    assert a["env"] == ["LD_PRELOAD=/x.so", "A=1"]  # count limits the elements
    assert (a["inode_mode"], a["stdin_type"], a["invoked_from_kernel"], a["prev_comm"]) == (
        0o100755,
        0o20000,
        False,
        "nginx",
    )
    assert (a["interpreter_pathname"], a["pwd"], a["stdin_path"]) == ("", "/", "/dev/pts/0")
    assert event["containerId"] == CONTAINER and event["container"] == {"id": CONTAINER}
    assert event["contextFlags"]["containerStarted"] is True  # state 1: existed before tracing
    assert event["syscall"] == "execve" and event["executable"] == {"path": "/usr/bin/dash"}
    created = Decoder(0, ctx).decode(_header(715, flags=2) + body)
    assert created["contextFlags"]["containerStarted"] is False  # created, nothing exec'd yet


def test_compat_flag() -> None:
    ctx = _Context(cgroups={77: [f"docker-{CONTAINER}.scope".encode()]})
    body = _slots(-100, 0, 0) + _var(b"/etc/passwd")
    compat = Decoder(0, ctx).decode(_header(257, flags=4 | 1, syscall=257) + body)  # HDR_COMPAT | CG_EXISTED
    assert compat["contextFlags"] == {"containerStarted": True, "isCompat": True}
    assert (compat["eventName"], compat["eventId"], compat["syscall"]) == ("openat", "257", "openat")
    native = Decoder(0, ctx).decode(_header(257, flags=1, syscall=257) + body)
    assert native["contextFlags"] == {"containerStarted": True, "isCompat": False}
    host = Decoder(0).decode(_header(257, flags=4, cgroup=0, syscall=257) + body)
    assert host["contextFlags"] == {"containerStarted": False, "isCompat": True}


def test_fork_times_are_epoch_and_bools_are_bools() -> None:
    values = [11, 2, 10, 1, 300, 20, 1, 20, 1, 600, 10, 1, 10, 1, 400, 20, 1, 20, 1, 600]
    event = Decoder(BOOT).decode(_header(714) + _slots(*values))
    a = _args(event)
    assert (a["parent_start_time"], a["start_time"], a["leader_start_time"]) == (BOOT + 300, BOOT + 600, BOOT + 600)
    assert [x["type"] for x in event["args"]].count("time.Time") == 4
    exit_ = Decoder(0).decode(_header(716) + _slots(3, 0, 1))
    assert _args(exit_) == {"exit_code": 3, "signal_code": 0, "process_group_exit": True}


def test_sockaddrs() -> None:
    v6 = struct.pack("<H", 10) + struct.pack(">HI", 443, 0) + bytes(15) + b"\x01" + struct.pack("<I", 0)
    assert sockaddr_value(v6) == {
        "sa_family": "AF_INET6",
        "sin6_port": "443",
        "sin6_flowinfo": "0",
        "sin6_addr": "::1",
        "sin6_scopeid": "0",
    }
    mapped = (
        struct.pack("<H", 10) + struct.pack(">HI", 80, 0) + bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 1]) + bytes(4)
    )
    assert sockaddr_value(mapped)["sin6_addr"] == "10.0.0.1"  # Go prints IPv4-mapped addresses dotted
    assert sockaddr_value(struct.pack("<H", 1) + b"/var/run/docker.sock\0") == {
        "sa_family": "AF_UNIX",
        "sun_path": "/var/run/docker.sock",
    }
    assert sockaddr_value(struct.pack("<H", 1) + b"\0abstract\0") == {"sa_family": "AF_UNIX", "sun_path": "@abstract"}
    assert sockaddr_value(struct.pack("<H", 16) + bytes(10)) == {"sa_family": "AF_NETLINK"}
    assert sockaddr_value(b"") == {}
    event = Decoder(0).decode(
        _header(749, syscall=33)
        + _slots(5, 1)
        + _var(struct.pack("<H", 2) + struct.pack(">H", 4444) + bytes([1, 2, 3, 4]) + bytes(8))
    )
    assert _args(event) == {
        "oldfd": 5,
        "newfd": 1,
        "remote_addr": {"sa_family": "AF_INET", "sin_port": "4444", "sin_addr": "1.2.3.4"},
    }
    assert event["syscall"] == "dup2"


def test_hidden_base_directories_make_paths_absolute() -> None:
    body = _var(b"a/../b") + _var(b"/etc/ld.so.preload") + _var(b"/home/u") + _var(b"")
    event = Decoder(0).decode(_header(768) + body)
    assert event["args"] == [
        {"name": "old_path", "type": "string", "value": "/home/u/b"},
        {"name": "new_path", "type": "string", "value": "/etc/ld.so.preload"},
    ]
    mount = Decoder(0).decode(
        _header(740) + _slots(0) + _var(b"/dev/sda1") + _var(b"mnt") + _var(b"ext4") + _var(b"/root")
    )
    assert _args(mount) == {"dev_name": "/dev/sda1", "path": "/root/mnt", "type": "ext4", "flags": 0}


def test_truncated_and_unknown_records() -> None:
    dec = Decoder(0)
    with pytest.raises(ValueError, match="header"):
        dec.decode(b"\0" * 100)
    with pytest.raises(ValueError, match="unknown event id 9999"):
        dec.decode(_header(9999))
    with pytest.raises(ValueError, match="too short"):
        dec.decode(_header(257) + b"\0" * 8)
    # missing trailing variable arguments read as empty
    event = dec.decode(_header(257) + _slots(-100, 0, 0))
    assert _args(event) == {"dirfd": -100, "pathname": "", "flags": 0, "mode": 0}
    # a record inside a larger buffer, at an offset
    raw = _raw("openat")
    assert dec.decode(b"\xff" * 24 + raw + b"\xee" * 8, 24, len(raw)) == dec.decode(raw)


def test_context_lookups_are_cached() -> None:
    ctx = _Context({31120: "/usr/bin/python3.11"})
    dec = Decoder(0, ctx)
    for name in RECORDED:
        dec.decode(_raw(name))
    assert ctx.calls == 1


def test_entity_ids_are_tracee_murmur3() -> None:
    # MurmurHash3_x86_32 reference vectors, through the seed-parameterised helper
    from pytracee.engine.context.proctree import _murmur32

    assert _murmur32(b"", 0) == 0
    assert _murmur32(b"", 1) == 0x514E28B7
    assert _murmur32(b"hello", 0) == 0x248BFA47
    assert _murmur32(b"The quick brown fox jumps over the lazy dog", 0) == 0x2E4FF723
    # start times are rounded to 10 ms, so procfs-derived ids agree
    assert task_entity_id(42, 1_700_000_000_123_456_789) == task_entity_id(42, 1_700_000_000_129_999_999)
    assert task_entity_id(42, 1_700_000_000_123_456_789) != task_entity_id(43, 1_700_000_000_123_456_789)


def test_container_ids_from_cgroup_paths() -> None:
    assert container_id_from_cgroup([f"cri-containerd-{CONTAINER}.scope".encode()]) == CONTAINER
    assert container_id_from_cgroup([b"init.scope", CONTAINER.encode(), b"docker"]) == CONTAINER
    assert container_id_from_cgroup([b"62c0d8d2bf38f493bdc43ee2b43eabb2", b"process_api"]) == ""
    assert container_id_from_cgroup([]) == ""


# ---- definitions shared with the C side ----------------------------------------------


def test_event_ids_in_the_c_sources_match_the_catalogue() -> None:
    common = (BPF_DIR / "common.h").read_text()
    defined = dict(re.findall(r"#define EV_([A-Z_]+)\s+(\d+)", common))
    assert defined, "no EV_* defines found"
    for name, number in defined.items():
        assert event_id(name.lower()) == int(number), name
    for name, number in re.findall(r"#define SYS_([A-Z0-9_]+)\s+(\d+)", common):
        assert SYSCALLS[name.lower()] == int(number), name


def test_event_definitions() -> None:
    for name, spec in wire.EVENTS.items():
        assert spec.id == event_id(name), name
        assert len({a.name for a in spec.args}) == len(spec.args), name
        for sc, when in spec.needs:
            assert sc in SYSCALLS and when in ("enter", "exit")
        if spec.syscall:
            assert len(wire.sys_kinds(spec)) == 8
    assert wire.sys_kinds(wire.EVENTS["openat"]) == bytes([1, 10, 1, 5, 0, 0, 0, 0])
    assert wire.sys_kinds(wire.EVENTS["accept4"]) == bytes([1, 13, 4, 1, 0, 0, 0, 0])  # addr read at exit
    assert wire.sys_kinds(wire.EVENTS["execve"]) == bytes([10, 11, 11, 0, 0, 0, 0, 0])
    order = [a.name for a in wire.EVENTS["security_file_open"].wire_order]
    assert order == ["flags", "dev", "inode", "ctime", "pathname", "syscall_pathname"]
    assert [a.name for a in wire.EVENTS["security_inode_rename"].visible] == ["old_path", "new_path"]
    with pytest.raises(ValueError, match="is not a syscall event"):
        wire.sys_kinds(wire.EVENTS["magic_write"])


def test_cgroup_names_hold_the_longest_container_runtime_names() -> None:
    from pytracee.collector import collector as collector_module
    from pytracee.collector.decode import container_id_from_cgroup

    container = "0123456789abcdef" * 4
    longest = f"cri-containerd-{container}.scope".encode()  # containerd with the systemd cgroup driver
    assert len(longest) < collector_module._CG_NAME_LEN  # what the BPF side keeps of a name (with its NUL)
    kept = longest[: collector_module._CG_NAME_LEN - 1]
    assert container_id_from_cgroup([kept]) == container


class _ProcInfoMap:
    """proc_info entries as the kernel writes them (bpf/maps.h: struct proc_info)."""

    def __init__(self, entries: dict[int, bytes]) -> None:
        self.entries = entries

    def lookup(self, key: bytes) -> bytes | None:
        return self.entries.get(struct.unpack("<I", key)[0])


def _proc_info(start: int, gen: int, exe: list[str]) -> bytes:
    paths = [p.encode() for p in exe] + [b""] * (2 - len(exe))
    return struct.pack("<QII2I256s256s", start, gen, 0, len(paths[0]), len(paths[1]), paths[0], paths[1])


def test_executable_of_a_reused_pid_is_not_the_new_process() -> None:
    from pytracee.collector.collector import _MapContext

    # two execs so far: the second's path in slot 0 (gen & 1), the first's still in slot 1
    maps = _ProcInfoMap({42: _proc_info(start=5_000, gen=2, exe=["/usr/bin/second", "/usr/bin/first"])})
    ctx = _MapContext(maps, maps)  # type: ignore[arg-type]
    assert ctx.executable(42, 5_000, 2) == "/usr/bin/second"
    assert ctx.executable(42, 5_000, 1) == "/usr/bin/first"  # an event decoded after the exec
    # an event of the process that had pid 42 before (another start time): no wrong path
    assert ctx.executable(42, 4_000, 1) == ""
    assert ctx.executable(43, 5_000, 1) == ""
