"""The tracee command's filter language (Tracee's --events/--scope and --trace) and event printers."""

from __future__ import annotations

import io
import json

import pytest
from pytracee.collector.filters import FilterError, parse_selection
from pytracee.collector.printers import EventPrinter, OutputError, parse_output_options


def event(name: str = "openat", **fields) -> dict:
    args = fields.pop("args", {})
    return {
        "eventName": name,
        "processName": "bash",
        "userId": 1000,
        "hostProcessId": 42,
        "returnValue": 0,
        "args": [{"name": k, "type": "", "value": v} for k, v in args.items()],
        **fields,
    }


def test_event_names_sets_and_exclusions() -> None:
    s = parse_selection(events=["execve,openat", "-openat", "net"])
    assert s.wanted_events() == {
        "execve",
        "connect",
        "accept",
        "accept4",
        "bind",
        "security_socket_connect",
        "socket_dup",
    }
    assert parse_selection().wanted_events(defaults={"ptrace"}) == {"ptrace"}


def test_argument_and_return_value_filters() -> None:
    s = parse_selection(events=["openat.data.pathname=/etc/*,*shadow", "openat.retval>=0", "close.fd!=0"])
    assert s.events == {"openat", "close"}
    assert s.accepts(event(args={"pathname": "/etc/passwd"}))
    assert s.accepts(event(args={"pathname": "/tmp/shadow"}))
    assert not s.accepts(event(args={"pathname": "/tmp/x"}))
    assert not s.accepts(event(args={"pathname": "/etc/passwd"}, returnValue=-2))
    assert not s.accepts(event("close", args={"fd": 0})) and s.accepts(event("close", args={"fd": 3}))
    assert s.accepts(event("execve"))  # filters bind to their own event only


def test_scope_goes_to_the_kernel_when_it_can() -> None:
    s = parse_selection(scopes=["comm=bash,zsh", "pid=10,11", "uid=0", "pid=new", "follow", "container"])
    assert (s.comms, s.pids, s.uids) == ({"bash", "zsh"}, {10, 11}, {0})
    assert s.new_pids_only and s.follow and s.container_only and s.scope == []


def test_scope_ranges_and_negations_are_checked_in_python() -> None:
    s = parse_selection(scopes=["uid>=1000", "comm!=sshd", "executable=/usr/bin/*"])
    ok = event(executable={"path": "/usr/bin/cat"})
    assert s.accepts(ok)
    assert not s.accepts({**ok, "userId": 0})
    assert not s.accepts({**ok, "processName": "sshd"})
    assert not s.accepts({**ok, "executable": {"path": "/tmp/cat"}})
    host = parse_selection(scopes=["not-container"])
    assert host.accepts(event()) and not host.accepts(event(contextFlags={"containerStarted": True}))


def test_tracee_ebpf_trace_syntax() -> None:
    s = parse_selection(
        traces=["event=ptrace,execve", "set=proc_mem", "comm=strace", "openat.pathname=/etc/shadow", "follow", "uid>0"]
    )
    assert {"ptrace", "execve", "mmap", "openat"} <= s.events and s.comms == {"strace"} and s.follow
    assert not s.accepts(event(args={"pathname": "/etc/passwd"}, userId=5))
    assert s.accepts(event(args={"pathname": "/etc/shadow"}, userId=5))
    assert not s.accepts(event(args={"pathname": "/etc/shadow"}, userId=0))


@pytest.mark.parametrize("bad", ["uid~3", "pid=abc", "bogus=1", "openat.=x", "openat.pathname=/a*b"])
def test_malformed_filters_are_rejected_with_the_expression(bad: str) -> None:
    with pytest.raises(FilterError, match="'"):
        parse_selection(scopes=[bad] if "." not in bad else [], events=[bad] if "." in bad else [])


def test_json_output_is_a_complete_trace_event_with_parsed_arguments_on_request() -> None:
    out = io.StringIO()
    printer = EventPrinter(parse_output_options(["json", "option:parse-arguments"]), out)
    printer.print(event("openat", args={"pathname": "/etc/x", "flags": 0o2100000}))
    printer.print(event("execve", args={"pathname": "/bin/ls", "argv": ["ls"], "envp": ["SECRET=1"]}))
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["eventId"] == "0" and "threadStartTime" in first and first["container"] == {}
    assert first["args"][1] == {"name": "flags", "type": "string", "value": "O_RDONLY|O_LARGEFILE|O_CLOEXEC"}
    assert [a["name"] for a in second["args"]] == ["pathname", "argv"]  # envp only with option:exec-env
    out = io.StringIO()
    EventPrinter(parse_output_options(["json", "option:exec-env"]), out).print(event("execve", args={"envp": ["A=1"]}))
    assert json.loads(out.getvalue())["args"][0]["value"] == ["A=1"]


def test_table_output_has_tracee_columns() -> None:
    out = io.StringIO()
    EventPrinter(parse_output_options(["table"]), out).print(event("ptrace", args={"request": 0, "pid": 0}))
    header, row = out.getvalue().splitlines()
    assert header.split() == ["TIME", "UID", "COMM", "PID", "TID", "RET", "EVENT", "ARGS"]
    assert row.split()[1:3] == ["1000", "bash"] and row.endswith("ptrace                   request: 0, pid: 0")


def test_template_output(tmp_path) -> None:
    template = tmp_path / "t.j2"
    template.write_text("{{ EventName }} by {{ ProcessName }} ({{ UserID }})")
    out = io.StringIO()
    EventPrinter(parse_output_options([f"gotemplate={template}"]), out).print(event())
    assert out.getvalue() == "openat by bash (1000)\n"


@pytest.mark.parametrize("bad", ["yaml", "option:nope", "gotemplate=/no/such/file.j2"])
def test_bad_output_options(bad: str) -> None:
    with pytest.raises(OutputError):
        EventPrinter(parse_output_options([bad]))


def test_container_new_leaves_out_containers_already_running(tmp_path) -> None:
    old, new = "a" * 64, "b" * 64
    (tmp_path / "17").mkdir()
    (tmp_path / "17" / "cgroup").write_text(f"0::/system.slice/docker-{old}.scope\n")
    (tmp_path / "self").mkdir()  # not a pid: ignored
    s = parse_selection(scopes=["container=new"])
    assert s.container_only and s.new_containers_only
    s.start(proc=tmp_path)
    started = {"contextFlags": {"containerStarted": True}}
    assert s.accepts({**event(), **started, "container": {"id": new}})
    assert not s.accepts({**event(), **started, "container": {"id": old}})
    assert not s.accepts(event())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--perf-buffer-size", "3"], "3: expected a power of two from 1 to 262144"),
        (["-b", "0"], "0: expected a power of two from 1 to 262144"),
        (["--ring-buffer-mb", "48"], "48: expected a power of two from 1 to 1024"),
        (["--kernel-buffer", "pipe"], "invalid choice: 'pipe'"),
    ],
)
def test_kernel_buffer_options_are_checked(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from pytracee.collector.cli.tracee import build_parser

    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_kernel_buffer_options_reach_the_collector_settings() -> None:
    from pytracee.collector.cli.tracee import build_parser

    args = build_parser().parse_args(["--kernel-buffer", "perf", "-b", "64", "--ring-buffer-mb", "8"])
    assert (args.kernel_buffer, args.perf_buffer_size, args.ring_buffer_mb) == ("perf", 64, 8)
    default = build_parser().parse_args([])
    assert (default.kernel_buffer, default.perf_buffer_size, default.ring_buffer_mb) == ("auto", 1024, 32)
