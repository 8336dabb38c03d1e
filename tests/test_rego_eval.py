"""Evaluating Rego signatures: tracee_match values, origins, helpers, per-event sharing, errors."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytracee.engine import Event
from pytracee.engine.findings import Finding
from pytracee.engine.reader import EventReader
from pytracee.engine.testing import (
    assert_fires,
    assert_silent,
    load_signatures,
    make_event,
    run_engine,
)

BACKENDS = ("regorus", "opa")


def load(tmp_path: Path, backend: str, **files: str) -> dict[str, Any]:
    for name, text in files.items():
        (tmp_path / f"{name}.rego").write_text(text)
    return {s.metadata.id: s for s in load_signatures(tmp_path, rego_engine=backend)}


def signature(pkg: str, events: list[str], body: str, origin: str | None = None, event_name: str = "") -> str:
    selectors = ", ".join(
        json.dumps({"source": "tracee", "name": e, **({"origin": origin} if origin else {})}) for e in events
    )
    meta = {"id": pkg.replace("_", "-"), "name": pkg, "eventName": event_name}
    return (
        f"package tracee.{pkg}\n\nimport rego.v1\n\nimport data.tracee.helpers\n\n"
        f"__rego_metadoc__ := {json.dumps(meta)}\n\n"
        f"tracee_selected_events contains s if {{\n\tsome s in [{selectors}]\n}}\n\n{body}"
    )


# --- what tracee_match returns ------------------------------------------------------------------

VALUES = """\
tracee_match if {
	input.eventName == "ptrace"
	helpers.get_tracee_argument("request") == "PTRACE_TRACEME"
}

# a second boolean body for the same event: OR-ed with the first
tracee_match if {
	input.eventName == "ptrace"
	helpers.get_tracee_argument("request") == 0
}

tracee_match := {"path": helpers.get_tracee_argument("pathname")} if input.eventName == "openat"

tracee_match := {} if input.eventName == "close"

tracee_match := false if input.eventName == "read"

tracee_match := "yes" if input.eventName == "write"
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_boolean_object_and_other_values(tmp_path: Path, backend: str, caplog: pytest.LogCaptureFixture) -> None:
    sig = load(tmp_path, backend, v=signature("VALUES_1", ["ptrace", "openat", "close", "read", "write"], VALUES))[
        "VALUES-1"
    ]
    assert assert_fires(sig, [make_event("ptrace", {"request": "PTRACE_TRACEME"})]).data is None
    assert assert_fires(sig, [make_event("ptrace", {"request": 0})]).data is None
    assert_silent(sig, [make_event("ptrace", {"request": "PTRACE_ATTACH"})])
    assert assert_fires(sig, [make_event("openat", {"dirfd": -100, "pathname": "/etc/passwd"})]).data == {
        "path": "/etc/passwd"
    }
    assert_silent(sig, [make_event("openat", {"dirfd": -100})])  # the object's value is undefined: no finding
    assert_silent(sig, [make_event("close", {"fd": 3}), make_event("read", {"fd": 3})])
    with caplog.at_level(logging.WARNING, logger="pytracee.rego"):
        assert_silent(sig, [make_event("write", {"fd": 1}), make_event("write", {"fd": 2})])
    warnings = [r.getMessage() for r in caplog.records if "neither a boolean nor an object" in r.getMessage()]
    assert len(warnings) == 1 and "VALUES-1" in warnings[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_origin_selectors(tmp_path: Path, backend: str) -> None:
    body = 'tracee_match if input.eventName == "ptrace"\n'
    sigs = load(
        tmp_path,
        backend,
        host=signature("HOST_1", ["ptrace"], body, "host"),
        cont=signature("CONT_1", ["ptrace"], body, "container"),
        init=signature("INIT_1", ["ptrace"], body, "container-init"),
        any=signature("ANY_1", ["ptrace"], body),
    )
    host = make_event("ptrace", {"request": 0})
    container = make_event("ptrace", {"request": 0}, container=True)
    starting = make_event("ptrace", {"request": 0})
    starting.raw["container"] = {"id": "abc"}  # a container id, not started yet: container-init
    fired = {
        name: sorted(f.sig_metadata.id for f in run_engine([event], list(sigs.values())))
        for name, event in (("host", host), ("container", container), ("starting", starting))
    }
    assert fired == {
        "host": ["ANY-1", "HOST-1"],
        "container": ["ANY-1", "CONT-1"],
        "starting": ["ANY-1", "INIT-1"],
    }


# --- Tracee's helper package --------------------------------------------------------------------------

HELPERS_PROBE = """\
tracee_match := {
	"write": helpers.is_file_write(input.args[0].value),
	"read": helpers.is_file_read(input.args[0].value),
	"elf": helpers.is_elf_file(input.args[1].value),
	"arg": [value | value := helpers.get_tracee_argument("probe")],
} if input.eventName == "openat"
"""
FLAGS = [
    ("O_RDONLY", False, True),
    ("O_RDONLY|O_LARGEFILE", False, True),
    ("o_rdonly", False, True),
    ("O_WRONLY|O_CREAT|O_TRUNC", True, False),
    ("o_rdwr", True, True),
    ("O_RDWR|O_CLOEXEC", True, True),
    ("O_CLOEXEC", False, True),  # no access-mode name: O_RDONLY (0)
    (0, False, True),
    (32768, False, True),  # O_LARGEFILE|O_RDONLY
    (1, True, False),
    (577, True, False),  # O_WRONLY|O_CREAT|O_TRUNC
    (2, True, True),
    (524290, True, True),  # O_RDWR|O_CLOEXEC
    ("577", True, False),  # a number in a string
    (3, False, False),  # not an access mode
]
ELF = [
    ("f0VMRgIBAQAAAAAAAAAAAAMAPgA=", True),  # \x7fELF, 64-bit x86_64 header
    ("f0VMRgEBAQ==", True),
    ("fMMVMRgIBAQAAAAAAAAAAAA==", False),  # Tracee's negative test case
    ("IyEvYmluL3NoCg==", False),  # "#!/bin/sh"
    ("", False),
    ([127, 69, 76, 70, 2, 1], True),
    ([127, 69, 76], False),
    (None, False),
]


@pytest.fixture(scope="module", params=BACKENDS)
def helpers_probe(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp(f"helpers-{request.param}")
    return load(directory, request.param, probe=signature("PROBE_1", ["openat"], HELPERS_PROBE))["PROBE-1"]


@pytest.mark.parametrize(("flags", "write", "read"), FLAGS)
def test_is_file_write_and_read(helpers_probe: Any, flags: Any, write: bool, read: bool) -> None:
    result = helpers_probe.rule.evaluate(make_event("openat", {"flags": flags, "bytes": ""}))
    assert (result["write"], result["read"]) == (write, read)


@pytest.mark.parametrize(("data", "elf"), ELF)
def test_is_elf_file(helpers_probe: Any, data: Any, elf: bool) -> None:
    assert helpers_probe.rule.evaluate(make_event("openat", {"flags": 0, "bytes": data}))["elf"] is elf


def test_get_tracee_argument(helpers_probe: Any) -> None:
    result = helpers_probe.rule.evaluate(make_event("openat", {"flags": 0, "bytes": "", "probe": {"a": [1, 2]}}))
    assert result["arg"] == [{"a": [1, 2]}]
    assert helpers_probe.rule.evaluate(make_event("openat", {"flags": 0, "bytes": ""}))["arg"] == []  # undefined


# --- one conversion per event ------------------------------------------------------------------------

THREE = {
    name: signature(
        name.upper() + "_1",
        ["security_file_open"],
        # lower(): a call the guards do not read, so that every event is asked about (see test_rego_guards.py)
        f'tracee_match if endswith(lower(helpers.get_tracee_argument("pathname")), "{suffix}")\n',
    )
    for name, suffix in (("a", "/a"), ("b", "/b"), ("c", "/a"))
}


def _replay(tmp_path: Path, signatures: list[Any], events: list[Event]) -> tuple[list[Finding], list[bytes]]:
    """Findings of ``events`` written to a file and read back (so they carry their JSON lines), and those lines."""
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e.raw) + "\n" for e in events))
    lines: list[bytes] = []

    def read() -> Iterator[Event]:
        for event in EventReader([str(path)]):
            assert event.text is not None
            lines.append(event.text)
            yield event

    return run_engine(read(), signatures), lines  # a signature's exception is raised as itself


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_request_per_event_for_all_its_signatures_with_the_json_line_as_read(tmp_path: Path, backend: str) -> None:
    sigs = list(load(tmp_path, backend, **THREE).values())
    client = sigs[0].rule.namespace.client
    assert all(s.rule.namespace is sigs[0].rule.namespace for s in sigs)
    before = client.stats()
    events = [make_event("security_file_open", {"pathname": p, "flags": 0}) for p in ("/x/a", "/x/b", "/x/c")]
    findings, lines = _replay(tmp_path, sigs, events)
    after = client.stats()
    assert sorted(f.sig_metadata.id for f in findings) == ["A-1", "B-1", "C-1"]
    assert after["evaluations"] - before["evaluations"] == 3  # one request per event for the three signatures
    assert after["inputs"] - before["inputs"] == 3  # regorus: one set_input_json per event; OPA: one query
    assert after["last_input"] == lines[-1]  # the JSON line as read, not re-serialised
    # an event built in memory (no JSON line) is serialised once
    run_engine([make_event("security_file_open", {"pathname": "/memory/a", "flags": 0})], sigs)
    last = client.stats()
    assert last["evaluations"] - after["evaluations"] == 1
    assert json.loads(last["last_input"])["args"][0]["value"] == "/memory/a"


# --- errors and signatures building on each other ----------------------------------------------------

CONFLICT = """\
tracee_match := {"n": 1} if input.eventName == "ptrace"

tracee_match := {"n": 2} if input.eventName == "ptrace"
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_policy_is_a_signature_error_and_the_others_go_on(tmp_path: Path, backend: str) -> None:
    sigs = load(
        tmp_path,
        backend,
        a_bad=signature("BAD_1", ["ptrace"], CONFLICT),
        b_good=signature("OK_1", ["ptrace"], 'tracee_match if input.eventName == "ptrace"\n'),
    )
    findings = run_engine([make_event("ptrace", {"request": 0})], list(sigs.values()), raise_errors=False)
    assert [f.sig_metadata.id for f in findings] == ["OK-1"]
    assert dict(findings.stats.errors_by_signature) == {"BAD-1": 1}
    ((error,),) = findings.errors.values()
    message = str(error)
    assert "a_bad.rego:" in message and "\n" not in message and "Stack backtrace" not in message


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_rego_signature_can_select_another_ones_finding(tmp_path: Path, backend: str) -> None:
    """Derived events are dispatched while the first event is being handled: the input must follow."""
    sigs = load(
        tmp_path,
        backend,
        a=signature(
            "FIRST_1",
            ["ptrace"],
            'tracee_match := {"who": input.processName} if input.eventName == "ptrace"\n',
            event_name="first_found",
        ),
        b=signature(
            "SECOND_1",
            ["first_found"],
            'tracee_match := {"from": helpers.get_tracee_argument("who")} if input.eventName == "first_found"\n',
        ),
        c=signature(
            "THIRD_1", ["ptrace"], 'tracee_match if helpers.get_tracee_argument("request") == "PTRACE_TRACEME"\n'
        ),
    )
    findings = run_engine(
        [make_event("ptrace", {"request": "PTRACE_TRACEME"}, processName="evil")], list(sigs.values())
    )
    assert [(f.sig_metadata.id, f.data) for f in findings] == [
        ("FIRST-1", {"who": "evil"}),
        ("SECOND-1", {"from": "evil"}),
        ("THIRD-1", None),
    ]
