"""Tests of ANC-1: the process tree is built from the events given, as in a run."""

from __future__ import annotations

from pytracee.engine.testing import assert_fires, assert_silent, make_event
from web_shell import web_shell


def exec_event(pid: int, ppid: int, comm: str, path: str, *argv: str):  # type: ignore[no-untyped-def]
    return make_event(
        "sched_process_exec",
        {"cmdpath": path, "pathname": path, "argv": [path, *argv]},
        processId=pid,
        hostParentProcessId=ppid,
        processName=comm,
        executable={"path": path},
    )


def test_shell_under_a_php_worker_of_nginx() -> None:
    events = [
        exec_event(100, 1, "nginx", "/usr/sbin/nginx"),
        exec_event(200, 100, "php-fpm", "/usr/sbin/php-fpm"),
        exec_event(300, 200, "sh", "/bin/sh", "-c", "id"),
    ]
    finding = assert_fires(web_shell, events)
    assert finding.data == {"shell": "/bin/sh", "argv": ["/bin/sh", "-c", "id"], "web_server": 100}


def test_shell_started_by_a_login_is_fine() -> None:
    events = [
        exec_event(100, 1, "sshd", "/usr/sbin/sshd"),
        exec_event(200, 100, "sshd", "/usr/sbin/sshd"),
        exec_event(300, 200, "bash", "/bin/bash"),
    ]
    assert_silent(web_shell, events)
