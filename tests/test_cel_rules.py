"""The CEL detections shipped in rules/cel/ against the Python built-ins they re-implement.

Every ``CEL-<n>`` file must behave like ``TRC-<n>`` on the Go unit-test cases of
Tracee v0.24.1 (``fixtures/go_signature_unit_tests_v0.24.1.json``): the same
findings on the same events with the same Data, with raw argument values and
with their ``option:parse-arguments`` form, on both CEL backends, through the
engine (so the detectors' data and scope filters are exercised), and without a
single evaluation error. Their metadata must match the built-in's except the ID.
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, REPO
from pytracee.engine import (
    Event,
    EventSelector,
    Finding,
    Signature,
    format_mem_prot_alert,
    format_open_flags,
    format_ptrace_request,
    hookimpl,
)
from pytracee.engine.cel.signature import CelSignature
from pytracee.engine.reader import EventReader
from pytracee.engine.session import Session, SessionConfig
from pytracee.engine.testing import load_signatures, run_signature
from pytracee.signatures import BUILTIN_SIGNATURES

CEL_RULES = REPO / "rules" / "cel"
BACKENDS = ["cel-expr-python", "cel-python"]
CASES: list[dict[str, Any]] = json.loads((FIXTURES / "go_signature_unit_tests_v0.24.1.json").read_text())["cases"]
BUILTINS: dict[str, type[Signature]] = {cls.metadata.id: cls for cls in BUILTIN_SIGNATURES}

#: (event name, argument) -> how Tracee's parse-arguments renders the raw value.
PARSED_FORMS: dict[tuple[str, str], Callable[[int], str]] = {
    ("security_file_open", "flags"): format_open_flags,
    ("ptrace", "request"): format_ptrace_request,
    ("mem_prot_alert", "alert"): format_mem_prot_alert,
}


def _signature_by_test_file() -> dict[str, str]:
    found: dict[str, set[str]] = {}
    for case in CASES:
        found.setdefault(case["test_file"], set()).update(case["expected_findings"])
    return {test_file: next(iter(ids)) for test_file, ids in found.items() if len(ids) == 1}


SIGNATURE_BY_TEST_FILE = _signature_by_test_file()


@pytest.fixture(scope="module", params=BACKENDS)
def cel_rules(request: pytest.FixtureRequest) -> dict[str, CelSignature]:
    """rules/cel loaded as a rules directory, by ID, with one backend."""
    signatures = load_signatures(CEL_RULES, cel_engine=request.param)
    assert all(isinstance(s, CelSignature) and s.backend.name == request.param for s in signatures)
    return {s.metadata.id: s for s in signatures}  # type: ignore[misc]


def _cel_ids() -> list[str]:
    return sorted(s.metadata.id for s in load_signatures(CEL_RULES))


CEL_IDS = _cel_ids()


def _parse_arguments(event: dict[str, Any]) -> dict[str, Any]:
    parsed = copy.deepcopy(event)
    for arg in parsed.get("args") or []:
        render = PARSED_FORMS.get((parsed["eventName"], arg["name"]))
        if render is not None and type(arg["value"]) is int:
            arg["value"] = render(arg["value"])
    return parsed


def _run(signature: Signature, events: list[dict[str, Any]], host_only: Callable[[str], bool]) -> list[tuple[int, Any]]:
    """Run events through an engine holding only ``signature``: ``(event index, Data)`` per finding.

    As in test_builtin_signatures: the Go test events carry no context, so they
    get a started container unless the built-in selects them from the host only.
    """
    wrapped = []
    for raw in events:
        raw = copy.deepcopy(raw)
        if "contextFlags" not in raw and not host_only(raw["eventName"]):
            raw["contextFlags"] = {"containerStarted": True}
        wrapped.append(Event(raw))
    findings = run_signature(signature, wrapped)  # a signature's exception is raised as itself
    return [(wrapped.index(f.event), f.data) for f in findings]


def _host_only(builtin: Signature) -> Callable[[str], bool]:
    def host_only(event_name: str) -> bool:
        origins = {s.origin for s in builtin.get_selected_events() if s.name in (event_name, "*")}
        return origins == {"host"}

    return host_only


def _cases() -> list[Any]:
    params = []
    for case in CASES:
        trc = SIGNATURE_BY_TEST_FILE.get(case["test_file"])
        if trc and trc.replace("TRC-", "CEL-") in CEL_IDS:
            for form in ("raw", "parsed"):
                params.append(pytest.param(case, form, id=f"{trc}: {case['case_name']} [{form}]"))  # noqa: PERF401
    return params


# --- the set ---------------------------------------------------------------------------------------


def test_rules_ship_at_least_five_detections_of_builtins() -> None:
    assert len(CEL_IDS) >= 5
    for cel_id in CEL_IDS:
        assert cel_id.startswith("CEL-") and cel_id.replace("CEL-", "TRC-") in BUILTINS, cel_id
        assert cel_id.replace("CEL-", "TRC-") in SIGNATURE_BY_TEST_FILE.values(), f"{cel_id}: no Go cases to compare on"


def test_rules_are_yaml_files_the_wheel_packages() -> None:
    # pyproject packages rules/cel/*.yaml; a .yml or a .py file there would be lost or run as a plugin
    assert {p.suffix for p in CEL_RULES.iterdir() if p.is_file() and p.name != "README.md"} == {".yaml"}


@pytest.mark.parametrize("cel_id", CEL_IDS)
def test_metadata_matches_the_builtin(cel_rules: dict[str, CelSignature], cel_id: str) -> None:
    cel = cel_rules[cel_id].get_metadata().to_dict()
    builtin = BUILTINS[cel_id.replace("CEL-", "TRC-")].metadata.to_dict()
    assert cel.pop("ID") == cel_id
    builtin.pop("ID")
    assert cel == builtin
    assert list(cel["Properties"]) == list(builtin["Properties"]), "Tracee's property order"


@pytest.mark.parametrize("cel_id", CEL_IDS)
def test_selectors_match_the_builtin(cel_rules: dict[str, CelSignature], cel_id: str) -> None:
    cel = cel_rules[cel_id].get_selected_events()
    builtin = [  # the selectors of events found only in older recordings are the Python built-ins' own
        selector
        for selector in BUILTINS[cel_id.replace("CEL-", "TRC-")]().get_selected_events()
        if not selector.recorded_only
    ]
    assert sorted(map(_selector_key, cel)) == sorted(map(_selector_key, builtin))


def _selector_key(selector: EventSelector) -> tuple[Any, ...]:
    filters = tuple(
        sorted(
            (arg, sorted(p.exact), sorted(p.prefixes), sorted(p.suffixes), sorted(p.contains), p.anything)
            for arg, p in selector.filters.items()
        )
    )
    return (selector.source, selector.name, selector.origin, filters)


def test_rules_are_off_by_default_as_builtin_rule_files() -> None:
    session = Session(SessionConfig(load_installed_plugins=False))
    session.load()
    assert not any(s.signature.language in ("cel", "rego") for s in session.available)  # not even compiled
    session = Session(SessionConfig(load_installed_plugins=False, list_only=True))  # what --list shows
    session.load()
    cel = [s for s in session.available if s.signature.language == "cel"]
    assert sorted(s.metadata.id for s in cel) == CEL_IDS
    assert not any(s.enabled_by_default for s in cel)
    assert not any(s.signature.language == "cel" for s in session.signatures)


# --- parity on Tracee's cases -----------------------------------------------------------------------


@pytest.mark.parametrize(("case", "form"), _cases())
def test_same_findings_as_the_builtin(cel_rules: dict[str, CelSignature], case: dict[str, Any], form: str) -> None:
    trc = SIGNATURE_BY_TEST_FILE[case["test_file"]]
    cel = cel_rules[trc.replace("TRC-", "CEL-")]
    events = [_parse_arguments(e) for e in case["events"]] if form == "parsed" else case["events"]
    builtin = BUILTINS[trc]()
    host_only = _host_only(builtin)
    errors_before = cel.errors

    expected = _run(builtin, events, host_only)
    got = _run(cel, events, host_only)

    assert got == expected
    assert cel.errors == errors_before, f"evaluation errors: {cel.first_error}"
    want = case["expected_findings"].get(trc)
    if want is None:
        assert got == []
    else:  # and the Go test's own expectation (the last finding)
        assert got[-1] == (want["matches_input_event_index"], want["Data"])


def test_parity_covers_findings_and_parse_arguments() -> None:
    params = _cases()
    firing = [p for p in params if p.values[0]["expected_findings"]]
    assert len(firing) >= 10 and len(params) - len(firing) >= 10
    rewritten = [
        p
        for p in params
        if p.values[1] == "parsed" and [_parse_arguments(e) for e in p.values[0]["events"]] != p.values[0]["events"]
    ]
    assert {SIGNATURE_BY_TEST_FILE[p.values[0]["test_file"]] for p in rewritten} >= {"TRC-102", "TRC-104", "TRC-1028"}


def test_rule_files_are_named_after_their_event() -> None:
    """Each rule file holds one detector named after its event."""
    for path in sorted(CEL_RULES.glob("*.yaml")):
        (signature,) = load_signatures(path)
        assert path.stem == signature.get_metadata().event_name


# --- the realistic stream ----------------------------------------------------------------------------------

DEMO_FILES = [
    REPO / "examples" / "events" / "demo.jsonl",
    REPO / "examples" / "events" / "demo-parse-arguments.jsonl.gz",
]


class _Collect:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    @hookimpl
    def tracee_finding_output(self, finding: Finding) -> None:
        self.findings.append(finding)


def _replay(path: Path, rules: list[str], **options: Any) -> tuple[list[tuple[str, int, Any]], dict[str, Any]]:
    """Replay a file through a real session; ``(ID number, event line, Data)`` per finding, and the counts."""
    config = SessionConfig(rules=rules, load_installed_plugins=False, options=argparse.Namespace(**options))
    collect = _Collect()
    config.pluginmanager.register(collect, name="collect")
    session = Session(config)
    session.load()
    session.run(EventReader([str(path)], is_known_event=session.is_known_event))
    found = [(f.sig_metadata.id.split("-")[1], f.event._line, f.data) for f in collect.findings]
    return sorted(found, key=repr), session.describe()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", DEMO_FILES, ids=["raw", "parse-arguments"])
def test_demo_stream_gives_the_builtins_findings(path: Path, backend: str) -> None:
    cel, counts = _replay(path, ["lang:cel"], cel_engine=backend)
    python, _ = _replay(path, [i.replace("CEL-", "TRC-") for i in CEL_IDS])
    assert cel == python
    assert {f[0] for f in cel} == {i.split("-")[1] for i in CEL_IDS}, "every CEL detection fires on the demo"
    assert counts["signature_errors"] == {}
