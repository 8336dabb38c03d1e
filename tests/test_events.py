"""The event model: Tracee's JSON from v0.8 to v0.24.1 and the accessors signatures use."""

from __future__ import annotations

import base64

import pytest
from conftest import fixture_lines
from pytracee.engine import ArgumentError, Event, MalformedEventError, SockAddr
from pytracee.engine.schema import full_event


@pytest.mark.parametrize(
    "name", ["events_v0.8.3_docs.jsonl", "events_v0.24.1_docs.jsonl", "detection_events_v0.20_v0.24_docs.jsonl"]
)
def test_every_documented_event_reads_and_answers_its_accessors(name: str) -> None:
    for raw in fixture_lines(name):
        event = Event(raw)
        assert event.name == raw["eventName"]
        assert event.event_id == int(raw["eventId"])
        assert event.process_id == raw["processId"]
        assert event.origin in ("host", "container", "container-init")
        assert list(event.args) == [arg["name"] for arg in raw["args"]]


def test_v08_event_with_flat_container_fields() -> None:
    raw = fixture_lines("events_v0.8.3_docs.jsonl")[0]
    event = Event(raw)
    assert event.container_id == ""
    assert event.origin == "host"
    assert event.syscall == ""  # v0.8 has no syscall field
    assert event.executable_path == ""  # nor executable (v0.18+)
    assert event.int_arg("flags") == 524288
    assert event.str_arg("pathname") == "/etc/ld.so.cache"


def test_v024_event_with_nested_container_and_executable() -> None:
    net = next(e for e in fixture_lines("events_v0.24.1_docs.jsonl") if e["eventName"] == "net_packet_tcp")
    event = Event(net)
    assert event.executable_path == ""
    assert event.syscall == "recvmsg"
    assert event.arg("proto_tcp")["dstPort"] == 80


@pytest.mark.parametrize(
    ("fields", "origin"),
    [
        ({}, "host"),
        ({"containerId": "abc"}, "container-init"),  # v0.8: flat id, container not started yet
        ({"container": {"id": "abc"}}, "container-init"),
        ({"container": {"id": "abc"}, "contextFlags": {"containerStarted": True}}, "container"),
        ({"contextFlags": {"containerStarted": True}}, "container"),
    ],
)
def test_origin_is_derived_as_tracee_does(fields: dict, origin: str) -> None:
    assert Event({"eventName": "openat", **fields}).origin == origin


def test_flags_accessors_accept_raw_and_parse_arguments_values() -> None:
    raw = Event({"eventName": "security_file_open", "args": [{"name": "flags", "value": 0o101}]})
    parsed = Event({"eventName": "security_file_open", "args": [{"name": "flags", "value": "O_WRONLY|O_CREAT"}]})
    lower = Event({"eventName": "security_file_open", "args": [{"name": "flags", "value": "o_rdwr"}]})
    reading = Event({"eventName": "security_file_open", "args": [{"name": "flags", "value": "O_RDONLY|O_LARGEFILE"}]})
    assert raw.open_flags() == parsed.open_flags() == 0o101
    assert raw.is_file_write() and parsed.is_file_write() and not parsed.is_file_read()
    assert lower.is_file_write() and lower.is_file_read()
    assert reading.is_file_read() and not reading.is_file_write()


def test_typed_getters() -> None:
    elf = base64.b64encode(b"\x7fELF\x02\x01").decode()
    event = Event(
        {
            "eventName": "x",
            "args": [
                {"name": "pathname", "value": "/bin/ls"},
                {"name": "fd", "value": "3"},
                {"name": "argv", "value": ["ls", "-l"]},
                {"name": "envp", "value": None},
                {"name": "bytes", "value": elf},
                {"name": "remote_addr", "value": {"sa_family": "AF_INET6", "sin6_addr": "::1", "sin6_port": "443"}},
                {"name": "unix", "value": {"sa_family": "AF_UNIX", "sun_path": "/run/docker.sock"}},
            ],
        }
    )
    assert event.str_arg("pathname") == "/bin/ls"
    assert event.int_arg("fd") == 3
    assert event.str_list_arg("argv") == ["ls", "-l"]
    assert event.str_list_arg("envp") == []
    assert event.bytes_arg("bytes")[:4] == b"\x7fELF"
    assert event.sockaddr_arg() == SockAddr(family="AF_INET6", ip="::1", port="443")
    assert event.sockaddr_arg("unix").is_unix and event.sockaddr_arg("unix").path == "/run/docker.sock"
    assert event.has_arg("fd") and not event.has_arg("nope")
    assert event.arg("nope", None) is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e: e.arg("missing"), "has no argument 'missing'"),
        (lambda e: e.str_arg("number"), "'number' is not a string"),
        (lambda e: e.int_arg("pathname"), "'pathname' is not an integer"),
        (lambda e: e.open_flags("pathname"), "unknown open flag"),
        (lambda e: e.bytes_arg("pathname"), "not valid base64"),
        (lambda e: e.sockaddr_arg("number"), "sockaddr must be an object"),
        (lambda e: e.str_list_arg("pathname"), "not a list of strings"),
    ],
)
def test_missing_or_mistyped_arguments_raise_argument_error(call, message: str) -> None:
    event = Event({"eventName": "x", "args": [{"name": "pathname", "value": "/a b"}, {"name": "number", "value": 7}]})
    with pytest.raises(ArgumentError, match=message):
        call(event)


def test_malformed_args_are_reported_as_such() -> None:
    with pytest.raises(MalformedEventError, match=r"args\[1\] has no string 'name'"):
        _ = Event({"eventName": "x", "args": [{"name": "a", "value": 1}, {"value": 2}]}).args
    with pytest.raises(MalformedEventError, match="must be a list"):
        _ = Event({"eventName": "x", "args": {"a": 1}}).args


def test_full_event_fills_zero_values_in_the_layout_of_the_input() -> None:
    modern = full_event({"eventName": "execve", "eventId": 59, "containerId": "abc"})
    assert modern["eventId"] == "59"
    assert modern["container"] == {"id": "abc"}
    assert modern["contextFlags"] == {"containerStarted": False, "isCompat": False}
    assert "matchedPolicies" not in modern and "metadata" not in modern
    legacy = full_event({"eventName": "execve", "containerImage": "", "containerId": "abc"})
    assert "container" not in legacy and "syscall" not in legacy
    assert legacy["podUID"] == "" and legacy["contextFlags"] == {"containerStarted": False}


def test_full_event_keeps_real_events_unchanged() -> None:
    for name in ("events_v0.8.3_docs.jsonl", "events_v0.24.1_docs.jsonl"):
        for raw in fixture_lines(name):
            out = full_event(raw)
            assert {k: out[k] for k in raw} == raw
