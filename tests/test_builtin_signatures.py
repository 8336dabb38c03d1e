"""Golden tests of the built-in signatures against Tracee v0.24.1's Go unit tests.

``fixtures/go_signature_unit_tests_v0.24.1.json`` holds the 116 cases of
``signatures/golang/*_test.go``: input events and the expected findings per
signature ID (the last finding per ID, as Go's ``FindingsHolder.GroupBySigID``).
Each case runs three ways:

* **Go parity**: events straight into ``on_event``, as the Go tests do;
* **parse-arguments**: the same with the raw values rewritten as Tracee's
  ``--output option:parse-arguments`` strings;
* **engine**: through :class:`~pytracee.engine.dispatch.Engine`, which proves
  the signatures' data filters never hide an event the signature fires on.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
import pytest
import pytracee.signatures as builtin_signatures
from pytracee.engine import (
    Event,
    Finding,
    Signature,
    SignatureContext,
    format_mem_prot_alert,
    format_open_flags,
    format_ptrace_request,
    hookspecs,
    is_memory_path,
)
from pytracee.engine.dispatch import Engine
from pytracee.engine.parsers import MEMORY_PATH_PREFIXES
from pytracee.engine.selectors import ArgPattern
from pytracee.engine.testing import run_signature
from pytracee.signatures import BUILTIN_SIGNATURES, tracee_register_signatures

FIXTURE = Path(__file__).parent / "fixtures" / "go_signature_unit_tests_v0.24.1.json"
CASES: list[dict[str, Any]] = json.loads(FIXTURE.read_text())["cases"]
SIGNATURES_BY_ID: dict[str, type[Signature]] = {cls.metadata.id: cls for cls in BUILTIN_SIGNATURES}


def _signature_ids_by_test_file() -> dict[str, str]:
    ids: dict[str, set[str]] = {}
    for case in CASES:
        ids.setdefault(case["test_file"], set()).update(case["expected_findings"])
    mapping = {}
    for test_file, found in ids.items():
        assert len(found) == 1, f"{test_file} expects findings of {sorted(found)}, not of exactly one signature"
        (mapping[test_file],) = found
    return mapping


SIGNATURE_ID_BY_TEST_FILE = _signature_ids_by_test_file()


def _id_order(sig_id: str) -> int:
    return int(sig_id.removeprefix("TRC-"))


def _case_id(case: dict[str, Any]) -> str:
    return f"{case['test_file'].removesuffix('_test.go')}: {case['case_name']}"


def _signature_for(case: dict[str, Any]) -> Signature:
    return SIGNATURES_BY_ID[SIGNATURE_ID_BY_TEST_FILE[case["test_file"]]]()


# --- parse-arguments rewriting -------------------------------------------------------------

#: (event name, argument) -> how Tracee's parse-arguments renders the raw value.
PARSED_FORMS: dict[tuple[str, str], Callable[[int], str]] = {
    ("security_file_open", "flags"): format_open_flags,
    ("ptrace", "request"): format_ptrace_request,
    ("mem_prot_alert", "alert"): format_mem_prot_alert,
}


def _parse_arguments(event: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A copy of ``event`` with raw values in their parse-arguments form, and how many changed."""
    parsed = copy.deepcopy(event)
    changed = 0
    for arg in parsed.get("args") or []:
        render = PARSED_FORMS.get((parsed["eventName"], arg["name"]))
        if render is not None and type(arg["value"]) is int:
            arg["value"] = render(arg["value"])
            changed += 1
    return parsed, changed


def _has_parsed_args(case: dict[str, Any]) -> bool:
    return any(
        (event["eventName"], arg["name"]) in PARSED_FORMS for event in case["events"] for arg in event.get("args") or []
    )


# --- running and checking -------------------------------------------------------------------


def _run_direct(signature: Signature, events: list[dict[str, Any]]) -> tuple[list[Finding], list[Event]]:
    findings: list[Finding] = []
    signature.init(SignatureContext(callback=findings.append, logger=logging.getLogger("test")))
    wrapped = [Event(raw) for raw in events]
    for event in wrapped:
        signature.on_event(event)
    signature.close()
    return findings, wrapped


def _selects_only_from_host(signature: Signature, event_name: str) -> bool:
    origins = {s.origin for s in signature.get_selected_events() if s.name in (event_name, "*")}
    return origins == {"host"}


def _run_engine(signature: Signature, events: list[dict[str, Any]]) -> tuple[list[Finding], list[Event]]:
    wrapped = []
    for raw in events:
        raw = copy.deepcopy(raw)
        # The Go tests call OnEvent directly and so bypass origin selection; in
        # Tracee these events reach container-origin signatures only from a
        # started container. Host-only selectors keep the host origin.
        if "contextFlags" not in raw and not _selects_only_from_host(signature, raw["eventName"]):
            raw["contextFlags"] = {"containerStarted": True}
        wrapped.append(Event(raw))
    findings = run_signature(signature, wrapped)  # a signature's exception is raised as itself
    return findings, wrapped


def _check_findings(
    case: dict[str, Any],
    findings: list[Finding],
    wrapped: list[Event],
    expected_events: list[dict[str, Any]],
) -> None:
    last_by_id = {finding.sig_metadata.id: finding for finding in findings}
    expected = case["expected_findings"]
    assert set(last_by_id) == set(expected)
    for sig_id, want in expected.items():
        got = last_by_id[sig_id]
        if want["Data"] is None:
            assert got.data is None
        else:
            assert got.data == want["Data"]
        metadata = got.sig_metadata.to_dict()
        for key, value in want["SigMetadata"].items():
            assert metadata[key] == value, key
        if "Tags" not in want["SigMetadata"]:
            assert metadata["Tags"] is None
        index = want["matches_input_event_index"]
        assert want["event"] == case["events"][index]
        assert got.event is wrapped[index]
        assert got.event.raw.get("args") == expected_events[index].get("args")


# --- the golden tests ------------------------------------------------------------------------


def test_fixture_covers_every_builtin() -> None:
    assert len(CASES) == 116
    assert sorted(SIGNATURE_ID_BY_TEST_FILE.values(), key=_id_order) == [cls.metadata.id for cls in BUILTIN_SIGNATURES]


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_go_parity(case: dict[str, Any]) -> None:
    findings, wrapped = _run_direct(_signature_for(case), case["events"])
    _check_findings(case, findings, wrapped, case["events"])


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_parse_arguments_values(case: dict[str, Any]) -> None:
    parsed_events, changes = zip(*(_parse_arguments(event) for event in case["events"]), strict=True)
    if _has_parsed_args(case):
        assert sum(changes) > 0, "the case has flags/request/alert arguments but none was rewritten"
    findings, wrapped = _run_direct(_signature_for(case), list(parsed_events))
    _check_findings(case, findings, wrapped, list(parsed_events))


@pytest.mark.parametrize("parse_arguments", [False, True], ids=["raw", "parsed"])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_through_engine(case: dict[str, Any], parse_arguments: bool) -> None:
    events = [_parse_arguments(event)[0] for event in case["events"]] if parse_arguments else case["events"]
    findings, wrapped = _run_engine(_signature_for(case), events)
    _check_findings(case, findings, wrapped, events)


# --- definitions -----------------------------------------------------------------------------


def test_builtin_ids_are_unique_and_ordered() -> None:
    ids = [cls.metadata.id for cls in BUILTIN_SIGNATURES]
    assert len(ids) == 31
    assert len(set(ids)) == 31
    assert ids == sorted(ids, key=_id_order)


@pytest.mark.parametrize("signature_class", BUILTIN_SIGNATURES, ids=lambda cls: cls.metadata.id)
def test_builtin_definition(signature_class: type[Signature]) -> None:
    signature = signature_class()
    metadata = signature.get_metadata()
    assert metadata.description.strip()
    assert metadata.event_name
    severity = metadata.properties.get("Severity")
    assert type(severity) is int and 0 <= severity <= 4
    assert list(signature.get_selected_events())
    assert signature_class.__doc__ and "\n" not in signature_class.__doc__.strip()


def test_only_trc_108_is_disabled_by_default() -> None:
    disabled = [cls.metadata.id for cls in BUILTIN_SIGNATURES if not cls.enabled_by_default]
    assert disabled == ["TRC-108"]


def test_hook_registers_every_builtin() -> None:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(builtin_signatures, name="builtin")
    registered: list[Any] = []
    manager.hook.tracee_register_signatures(register=registered.append)
    assert registered == [*BUILTIN_SIGNATURES, *builtin_signatures.PYTRACEE_SIGNATURES]

    direct: list[Any] = []
    tracee_register_signatures(direct.append)
    assert direct == [*BUILTIN_SIGNATURES, *builtin_signatures.PYTRACEE_SIGNATURES]


def test_engine_loads_all_builtins() -> None:
    engine = Engine([cls() for cls in BUILTIN_SIGNATURES], lambda finding: None)
    assert len(engine.signatures) == 31


def test_fileless_filter_agrees_with_is_memory_path() -> None:
    # TRC-105/TRC-1022 turn the memory path prefixes into filter patterns; the
    # patterns must accept exactly what is_memory_path accepts.
    pattern = ArgPattern.parse([prefix + "*" for prefix in MEMORY_PATH_PREFIXES])
    samples = ["memfd:x", "memfd:runc", "/dev/shm/a", "/run/shm/b", "/dev/shmx", "/tmp/memfd:x", "/run/shm", ""]
    for path in samples:
        assert pattern.matches(path) == is_memory_path(path) == path.startswith(MEMORY_PATH_PREFIXES), path


# --- data filters beyond the fixture ----------------------------------------------------------

_BASE_ARGS: dict[str, dict[str, Any]] = {
    "security_file_open": {"pathname": "/tmp/x", "flags": 0},
    "security_inode_rename": {"old_path": "/tmp/x", "new_path": "/tmp/y"},
    "sched_process_exec": {"pathname": "/usr/bin/ls", "prev_comm": "bash", "env": []},
    "security_sb_mount": {"dev_name": "overlay"},
    "magic_write": {"pathname": "/tmp/x", "bytes": "f0VMRgIBAQ=="},
    "security_bprm_check": {"pathname": "/usr/bin/ls"},
    "security_kernel_read_file": {"pathname": "/tmp/x.ko", "type": "firmware"},
}
_EXTRA_SAMPLES = [
    "/proc/12/mem",
    "/proc/self/mem",
    "/proc/1/mem\n",
    "/proc/\u0663/mem",
    "/usr/lib/x86_64-linux-gnu/ld-2.31.so",
    "/lib64/ld-linux-x86-64.so.2",
    "/etc/ld.so.cache",
    "/var/run/secrets/kubernetes.io/serviceaccount/..data/token",
    "/run/secrets/kubernetesXio/serviceaccount/token",
    "/tmp/cgrp/release_agent/",
    "release_agent",
    "/bin/update-rc.d/",
    "at//",
    "/usr/bin/at",
    "/tmp/.hidden/elf",
    "",
    "/",
]


def _samples(pattern: ArgPattern) -> set[str]:
    samples = set(_EXTRA_SAMPLES)
    for exact in pattern.exact:
        samples |= {exact, exact + "/", exact + "x", "/" + exact, exact[:-1]}
    for prefix in pattern.prefixes:
        samples |= {prefix, prefix + "x", prefix + "/y", prefix[:-1]}
    for suffix in pattern.suffixes:
        samples |= {suffix, "/a" + suffix, "/a" + suffix + "/", "/a" + suffix + "//", suffix[1:]}
    for part in pattern.contains:
        samples |= {part, "/a" + part + "b"}
    return samples


def _filtered_event_variants(signature_class: type[Signature]) -> list[dict[str, Any]]:
    events = []
    for selector in signature_class.selected_events:
        for arg, pattern in selector.filters.items():
            for sample in sorted(_samples(pattern)):
                for flags in (0, 1, 2) if selector.name == "security_file_open" else (None,):
                    args = {**_BASE_ARGS[selector.name], arg: sample}
                    if flags is not None:
                        args["flags"] = flags
                    events.append(
                        {
                            "eventName": selector.name,
                            "processName": "sh",
                            "container": {"id": "c0ffee"},
                            "contextFlags": {"containerStarted": True},
                            "args": [{"name": name, "type": "", "value": value} for name, value in args.items()],
                        }
                    )
    return events


@pytest.mark.parametrize(
    "signature_class",
    [cls for cls in BUILTIN_SIGNATURES if any(s.filters for s in cls.selected_events)],
    ids=lambda cls: cls.metadata.id,
)
def test_data_filters_hide_no_detection(signature_class: type[Signature]) -> None:
    events = _filtered_event_variants(signature_class)
    direct, direct_events = _run_direct(signature_class(), events)
    through_engine, engine_events = _run_engine(signature_class(), events)
    assert [direct_events.index(f.event) for f in direct] == [engine_events.index(f.event) for f in through_engine]
    assert direct, "no variant fired: the samples do not exercise the signature"


# --- argument strings exactly as Tracee's parse-arguments prints them -------------------------


@pytest.mark.parametrize(
    ("event_name", "args", "fields", "expected"),
    [
        ("ptrace", {"request": "PTRACE_POKEDATA", "pid": 1}, {}, "TRC-103"),
        ("ptrace", {"request": "PTRACE_TRACEME", "pid": 0}, {}, "TRC-102"),
        (
            "security_file_open",
            {"pathname": "/etc/sudoers", "flags": "O_WRONLY|O_CREAT|O_TRUNC|O_LARGEFILE"},
            {},
            "TRC-1028",
        ),
        (
            "security_file_open",
            {"pathname": "/proc/sys/kernel/randomize_va_space", "flags": "O_RDONLY|O_LARGEFILE"},
            {},
            "TRC-109",
        ),
        (
            "security_file_open",
            {"pathname": "/proc/kcore", "flags": "O_RDONLY"},
            {"contextFlags": {"containerStarted": True}},
            "TRC-1021",
        ),
        ("mem_prot_alert", {"alert": "Protection changed from W+E to E!"}, {}, "TRC-104"),
    ],
)
def test_tracee_parse_arguments_strings(event_name: str, args: dict, fields: dict, expected: str) -> None:
    from pytracee.engine.testing import make_event, run_engine

    findings = run_engine([make_event(event_name, args, **fields)])
    assert [f.sig_metadata.id for f in findings] == [expected]
