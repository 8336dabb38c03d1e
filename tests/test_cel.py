"""CEL detectors: the YAML format, errors with file:line, evaluation, limits, the CLI.

The shipped rules/cel detections are compared with the Python built-ins in
test_cel_rules.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import tracee_rules
from pytracee.engine.cel.backends import CelEvalError, create_backend
from pytracee.engine.cel.limits import (
    MAX_COMPREHENSION_NESTING,
    MAX_EXPRESSION_LENGTH,
    MAX_NESTING,
    ExpressionTooComplex,
    check_expression,
)
from pytracee.engine.cel.plugin import CelCollector
from pytracee.engine.cel.signature import CelSignature
from pytracee.engine.session import ConfigError, Session, SessionConfig
from pytracee.engine.testing import (
    assert_fires,
    assert_silent,
    load_signatures,
    make_event,
    run_engine,
    run_signature,
)

BACKENDS = ["cel-expr-python", "cel-python"]

DETECTOR = """\
type: detector
id: TEST-1
produced_event:
  name: shadow_write
  version: 1.2.0
  description: The event's description.
  tags: [linux, files]
threat:
  name: Shadow file written
  description: Someone wrote the password hashes.
  severity: high
  mitre:
    technique: {id: T1098, name: Account Manipulation}
    tactic: {name: Credential Access}
properties:
  id: attack-pattern--1234
  Team: blue
requirements:
  events:
    - name: security_file_open
      data_filters: [pathname=/etc/shadow]
conditions:
  - isFileWrite(getEventData("flags"))
output:
  fields:
    - name: path
      expression: getEventData("pathname")
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def detector(
    conditions: str = "", *, events: str = "    - name: ptrace\n", output: str = "", sig_id: str = "T-1"
) -> str:
    """A minimal detector with the given conditions/events/output blocks."""
    return (
        f"type: detector\nid: {sig_id}\nproduced_event:\n  name: t_event\nrequirements:\n  events:\n{events}"
        + (f"conditions:\n{conditions}" if conditions else "")
        + (f"output:\n  fields:\n{output}" if output else "")
    )


def collect(path: Path, **options: Any) -> tuple[list[CelSignature], list[str]]:
    """Load ``path`` as a rules directory or file would be; the CEL signatures and the load errors."""
    config = SessionConfig(options=argparse.Namespace(**options))
    pm = config.pluginmanager
    pm.load_plugins(installed=False)
    pm.hook.tracee_configure.call_historic(kwargs={"config": config})
    pm.load_path(path, config)
    signatures = [s.signature for s in pm.collect_signatures() if s.signature.language == "cel"]
    return signatures, [str(error) for error in pm.load_errors]  # type: ignore[return-value]


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return request.param


# --- the format ---------------------------------------------------------------------------------------


def test_detector_becomes_signature_metadata(tmp_path: Path, backend_name: str) -> None:
    (signature,) = load_signatures(write(tmp_path, "shadow.yaml", DETECTOR), cel_engine=backend_name)
    assert isinstance(signature, CelSignature) and signature.language == "cel"
    metadata = signature.get_metadata()
    assert (metadata.id, metadata.name, metadata.event_name, metadata.version) == (
        "TEST-1",
        "Shadow file written",
        "shadow_write",
        "1.2.0",
    )
    assert metadata.description == "Someone wrote the password hashes."
    assert list(metadata.tags or ()) == ["linux", "files"]
    assert metadata.properties == {
        "Severity": 3,
        "Category": "credential-access",
        "Technique": "Account Manipulation",
        "id": "attack-pattern--1234",
        "external_id": "T1098",
        "Team": "blue",
    }
    assert list(metadata.properties)[:5] == ["Severity", "Category", "Technique", "id", "external_id"]
    assert [str(s) for s in signature.get_selected_events()] == ["tracee:security_file_open:* pathname=/etc/shadow"]


def test_pytest_helpers_test_a_detector_like_a_python_signature(tmp_path: Path, backend_name: str) -> None:
    (signature,) = load_signatures(write(tmp_path, "shadow.yaml", DETECTOR), cel_engine=backend_name)
    finding = assert_fires(signature, [make_event("security_file_open", {"pathname": "/etc/shadow", "flags": 1})])
    assert finding.data == {"path": "/etc/shadow"}
    assert_fires(signature, [make_event("security_file_open", {"pathname": "/etc/shadow", "flags": "O_RDWR|O_CREAT"})])
    assert_silent(signature, [make_event("security_file_open", {"pathname": "/etc/shadow", "flags": "O_RDONLY"})])
    assert_silent(signature, [make_event("security_file_open", {"pathname": "/etc/passwd", "flags": 1})])


def test_defaults_and_short_forms(tmp_path: Path) -> None:
    text = """\
        requirements:
          events: [{name: ptrace}]
        id: SHORT-1
        produced_event: {name: short_event, description: Only the event's description.}
        threat:
          severity: 2
          mitre: {technique: T1622, tactic: Defense Evasion}
        """
    (signature,) = load_signatures(write(tmp_path, "short.yml", text))
    metadata = signature.get_metadata()
    assert (metadata.name, metadata.version, metadata.tags) == ("short_event", "1", None)
    assert metadata.description == "Only the event's description."
    assert metadata.properties == {"Severity": 2, "Category": "defense-evasion", "external_id": "T1622"}
    finding = assert_fires(signature, [make_event("ptrace", {"request": 16})])
    assert finding.data is None  # no conditions: every selected event; no output: no Data


@pytest.mark.parametrize(
    ("word", "level"), [("info", 0), ("low", 1), ("Medium", 2), ("high", 3), ("critical", 4), (0, 0), (4, 4)]
)
def test_severities(tmp_path: Path, word: Any, level: int) -> None:
    text = detector() + f"threat:\n  severity: {word}\n"
    (signature,) = load_signatures(write(tmp_path, "s.yaml", text))
    assert signature.get_metadata().properties["Severity"] == level


def test_several_detectors_in_one_file(tmp_path: Path) -> None:
    text = detector(sig_id="MULTI-1") + "---\n" + detector(sig_id="MULTI-2")
    assert [s.get_metadata().id for s in load_signatures(write(tmp_path, "two.yaml", text))] == ["MULTI-1", "MULTI-2"]


def test_data_filters_become_engine_filters(tmp_path: Path) -> None:
    events = """\
    - name: security_file_open
      data_filters:
        - pathname=/etc/sudoers,/etc/sudoers.d/*
        - data.pathname=*shadow
        - syscall_pathname=*
    - name: security_inode_rename
      filters: [data.new_path=*docker.sock*, scope.container=started]
"""
    (signature,) = load_signatures(write(tmp_path, "f.yaml", detector(events=events)))
    (open_selector, rename_selector) = signature.get_selected_events()
    pathname = open_selector.filters["pathname"]
    assert (
        pathname.matches("/etc/sudoers") and pathname.matches("/etc/sudoers.d/x") and pathname.matches("/etc/gshadow")
    )
    assert not pathname.matches("/etc/passwd")
    assert open_selector.filters["syscall_pathname"].anything
    assert rename_selector.origin == "container"
    assert rename_selector.filters["new_path"].matches("/run/docker.sock.1")


@pytest.mark.parametrize(
    ("scope", "origins"),
    [
        ("scope_filters: [container=started]", ["container"]),
        ("scope_filters: [container]", ["container", "container-init"]),
        ("scope_filters: [not-container]", ["host"]),
        ("scope_filters: [host]", ["host"]),
        ("origin: container-init", ["container-init"]),
        ("origin: host\n      scope_filters: [not-container]", ["host"]),
        ("dependency: optional", ["*"]),
    ],
)
def test_scope_filters_become_origins(tmp_path: Path, scope: str, origins: list[str]) -> None:
    (signature,) = load_signatures(write(tmp_path, "o.yaml", detector(events=f"    - name: ptrace\n      {scope}\n")))
    assert [s.origin for s in signature.get_selected_events()] == origins


def test_integer_data_filters_match_raw_and_string_values(tmp_path: Path, backend_name: str) -> None:
    events = "    - name: ptrace\n      data_filters: [request=0, request=PTRACE_TRACEME]\n"
    (signature,) = load_signatures(write(tmp_path, "n.yaml", detector(events=events)), cel_engine=backend_name)
    assert not signature.get_selected_events()[0].filters  # checked by the signature, not the engine
    fired = [make_event("ptrace", {"request": value}) for value in (0, "0", "PTRACE_TRACEME")]
    silent = [make_event("ptrace", {"request": value}) for value in (16, "16", "PTRACE_ATTACH", None, [0])]
    findings = run_signature(signature, fired + silent)
    assert [f.event for f in findings] == fired


# --- broken files --------------------------------------------------------------------------------------

BASE = detector('  - getEventData("request") == 0\n', sig_id="BROKEN-1") + "threat:\n  severity: medium\n"


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("id: BROKEN-1\n", "", 1, "missing required field 'id'"),
        ("  name: t_event\n", "  version: 1\n", 4, "missing required field 'produced_event.name'"),
        ("severity: medium", "severity: extreme", 11, "threat.severity: bad severity 'extreme'"),
        (
            "    - name: ptrace\n",
            "    - name: ptrace\n      scope_filters: [comm=bash]\n",
            8,
            "unsupported scope filter 'comm=bash'",
        ),
        (
            "    - name: ptrace\n",
            "    - name: ptrace\n      data_filters: [pathname=/a*b*c]\n",
            8,
            "bad data filter 'pathname=/a*b*c'",
        ),
        (
            "    - name: ptrace\n",
            "    - name: ptrace\n      data_filters: [pathname!=/etc]\n",
            8,
            "only '=' is supported",
        ),
        ("    - name: ptrace\n", "    - name: ptrace\n      data_filters: [nonsense]\n", 8, "expected ARG=VALUE"),
        ("    - name: ptrace\n", "    - name: ptrace\n      origin: mars\n", 8, "unknown origin 'mars'"),
        ("    - name: ptrace\n", "    - origin: host\n", 7, "missing required field 'requirements.events[0].name'"),
        ("  events:\n    - name: ptrace\n", "  events: []\n", 6, "requirements.events must list at least one event"),
        ("conditions:", "condition:", 8, "unknown key"),
        ("== 0\n", '== 0\n  - getEventData("request" ==\n', 10, "conditions[1]: CEL error"),
        (
            "== 0\n",
            '== 0\n  - |\n    getEventData("request") == 0 &&\n      nosuch(1)\n',
            12,
            "undeclared reference to 'nosuch'",
        ),
        (
            "id: BROKEN-1",
            "id: [oops",
            3,
            "invalid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence started on line 2)",
        ),
        ("conditions:", "\x1b[2J: x\nconditions:", 8, "invalid YAML: unacceptable character #x001b"),
    ],
    ids=[
        "missing id",
        "missing event name",
        "bad severity",
        "unknown scope filter",
        "bad pattern",
        "bad operator",
        "bad filter",
        "unknown origin",
        "event without name",
        "no events",
        "unknown key",
        "CEL syntax error",
        "undeclared function in block",
        "invalid YAML",
        "control character",
    ],
)
def test_broken_file_names_file_and_line(
    tmp_path: Path, backend_name: str, old: str, new: str, line: int, message: str
) -> None:
    assert old in BASE
    broken = write(tmp_path, "rules/broken.yaml", BASE.replace(old, new, 1))
    write(tmp_path, "rules/good.yaml", detector(sig_id="GOOD-1"))
    signatures, errors = collect(tmp_path / "rules", cel_engine=backend_name)
    assert [s.get_metadata().id for s in signatures] == ["GOOD-1"]  # the others still load
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{broken}:{line}: "), errors[0]
    assert message in errors[0]


def test_a_condition_that_cannot_be_bool_is_rejected_at_load(tmp_path: Path) -> None:
    write(tmp_path, "s.yaml", detector('  - getEventData("request") + "x"\n'))
    _, errors = collect(tmp_path, cel_engine="cel-expr-python")
    assert len(errors) == 1 and "conditions[0]" in errors[0] and "must be a bool" in errors[0]


def test_a_condition_that_is_not_bool_at_run_time_is_no_match(tmp_path: Path, backend_name: str) -> None:
    (signature,) = load_signatures(
        write(tmp_path, "s.yaml", detector('  - getEventData("request")\n')), cel_engine=backend_name
    )
    findings = run_signature(signature, [make_event("ptrace", {"request": 1}), make_event("ptrace", {"request": True})])
    assert len(findings) == 1 and signature.errors == 1


def test_strict_makes_a_broken_file_fatal(tmp_path: Path) -> None:
    write(tmp_path, "rules/broken.yaml", BASE.replace("severity: medium", "severity: extreme"))
    write(tmp_path, "rules/good.yaml", detector(sig_id="GOOD-1"))
    lenient = Session(
        SessionConfig(rules_dirs=[tmp_path / "rules"], load_builtin_rules=False, load_installed_plugins=False)
    )
    lenient.load()
    assert "GOOD-1" in [s.metadata.id for s in lenient.signatures]
    assert [str(e) for e in lenient.load_errors()] == [
        f"{tmp_path / 'rules' / 'broken.yaml'}:11: threat.severity: bad severity 'extreme': use info, low, medium, high, critical or 0-4"
    ]
    strict = Session(
        SessionConfig(
            rules_dirs=[tmp_path / "rules"], strict=True, load_builtin_rules=False, load_installed_plugins=False
        )
    )
    with pytest.raises(ConfigError, match="failed to load"):
        strict.load()


def test_other_yaml_files_are_left_alone(tmp_path: Path) -> None:
    write(
        tmp_path,
        "policy.yaml",
        "apiVersion: tracee.aquasec.com/v1beta1\nkind: Policy\nspec: {rules: [{event: ptrace}]}\n",
    )
    write(tmp_path, "shells.yaml", "type: string_list\nname: SHELLS\nvalues: [bash, sh]\n")
    write(tmp_path, "values.yml", "- just\n- a list\n")
    write(tmp_path, "broken.yaml", "key: [unclosed\n")  # not readable, and nothing says it is a detector
    write(tmp_path, "notes.txt", "conditions: not YAML we care about\n")
    collector = CelCollector()
    config = SessionConfig()
    for path in sorted(tmp_path.iterdir()):
        assert collector.tracee_collect_rule_file(path, config) is None, path
    signatures, errors = collect(tmp_path)
    assert signatures == [] and errors == []


def test_bad_options_are_configuration_errors(tmp_path: Path) -> None:
    rule = write(tmp_path, "slow.yaml", SLOW_RULE)
    with pytest.raises(ConfigError, match="unknown CEL engine 'nope'"):
        load_signatures(rule, cel_engine="nope")
    with pytest.raises(ConfigError, match="time budget"):
        load_signatures(rule, cel_time_budget=0)
    result = tracee_rules("--cel-time-budget", "-1", "--list")
    assert result.returncode == 2 and "expected a positive number of milliseconds" in result.stderr


# --- evaluation --------------------------------------------------------------------------------------------


def test_mixed_type_arguments_count_as_no_match_and_log_once(
    tmp_path: Path, backend_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    text = detector(
        '  - getEventData("flags").startsWith("O_WRONLY")\n', events="    - name: security_file_open\n", sig_id="MIX-1"
    )
    (signature,) = load_signatures(write(tmp_path, "mixed.yaml", text), cel_engine=backend_name)
    flags = ["O_WRONLY|O_CREAT", 1, 0, "O_RDONLY", 2, None]
    events = [make_event("security_file_open", {"pathname": "/tmp/x", "flags": value}) for value in flags]
    with caplog.at_level(logging.WARNING, logger="pytracee"):
        findings = run_signature(signature, events, raise_errors=False)
    assert [f.event for f in findings] == [events[0]]
    assert signature.errors == 4 and signature.evaluations == 6
    assert not findings.stats.errors_by_signature  # an evaluation error is no match, not a crash
    messages = [r.getMessage() for r in caplog.records if r.name == "pytracee.signature.MIX-1"]
    assert len(messages) == 2, messages
    assert "conditions[0] (line 9) failed on security_file_open event" in messages[0]
    assert "counted as no match" in messages[0]
    assert messages[1].startswith("MIX-1: 4 of 6 evaluations failed and counted as no match (first: conditions[0]: ")


def test_output_fields_land_in_data(tmp_path: Path, backend_name: str) -> None:
    output = """\
    - {name: path, expression: getEventData("pathname")}
    - {name: file, expression: basename(getEventData("pathname"))}
    - {name: flags, expression: openFlags(getEventData("flags"))}
    - {name: write, expression: isFileWrite(getEventData("flags"))}
    - {name: words, expression: 'split("a b", " ")'}
    - {name: process, expression: '{"name": event.processName, "pid": event.processId}'}
    - {name: missing, expression: getEventData("nothing")}
    - {name: broken, expression: size(getEventData("nothing")) > 0}
"""
    text = detector(events="    - name: security_file_open\n", output=output, sig_id="OUT-1")
    (signature,) = load_signatures(write(tmp_path, "out.yaml", text), cel_engine=backend_name)
    event = make_event("security_file_open", {"pathname": "/etc/shadow", "flags": "O_WRONLY|O_TRUNC"}, processId=77)
    findings = run_signature(signature, [event])
    assert findings[0].data == {
        "path": "/etc/shadow",
        "file": "shadow",
        "flags": 0o1001,
        "write": True,
        "words": ["a", "b"],
        "process": {"name": "bash", "pid": 77},
        "missing": None,
    }  # the failing field is left out, and counted
    assert signature.errors == 1


#: Slow but within the load-time cost limit: splitting a 60,000-character argument into characters
#: and converting the 60,000 strings into CEL takes about 15 ms on cel-cpp, 100 ms on cel-python.
SLOW_RULE = detector(
    '  - split(getEventData("text"), "").size() > 0\n', events="    - name: sched_process_exec\n", sig_id="SLOW-1"
)


def test_time_budget_disables_a_pathological_rule(
    tmp_path: Path, backend_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    rule = write(tmp_path, "slow.yaml", SLOW_RULE)
    # the rule takes about 6 ms on cel-expr-python and far more on cel-python: budgets well below
    # that (2 ms, 10 ms), so that a fast or a loaded machine gives the same verdict
    options = {"cel_engine": backend_name, "cel_time_budget": 2 if backend_name == "cel-expr-python" else 10}
    (signature,) = load_signatures(rule, **options)
    slow = make_event("sched_process_exec", {"text": "x" * 60_000})
    with caplog.at_level(logging.WARNING, logger="pytracee"):
        findings = run_signature(signature, [slow] * 6, raise_errors=False)
    assert signature.disabled and signature.evaluations == 3
    assert len(findings) == 3  # it matched, slowly, until it was stopped
    assert dict(findings.stats.errors_by_signature) == {"SLOW-1": 1}
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "CelTimeBudgetExceeded" in errors[0] and "disabled for this run" in errors[0]


def test_a_few_slow_evaluations_do_not_disable(tmp_path: Path) -> None:
    (signature,) = load_signatures(write(tmp_path, "slow.yaml", SLOW_RULE))
    slow = make_event("sched_process_exec", {"text": "x" * 60_000})
    fast = make_event("sched_process_exec", {"text": "ls"})
    findings = run_signature(signature, [slow, *[fast] * 1000, slow, *[fast] * 1000, slow, fast], raise_errors=False)
    assert not signature.disabled and len(findings) == 2004 and not findings.stats.errors_by_signature


def test_iteration_budget_is_an_evaluation_error(tmp_path: Path, backend_name: str) -> None:
    # two loops over a 6,000-element list: 12,000 steps, over the 10,000 of one evaluation (both backends)
    rule = write(
        tmp_path,
        "loops.yaml",
        detector(
            '  - getEventData("argv").exists(a, a == "z") || getEventData("argv").exists(b, b == "z")\n',
            events="    - name: sched_process_exec\n",
        ),
    )
    (signature,) = load_signatures(rule, cel_engine=backend_name, cel_time_budget=10_000)  # cel-python is slow
    findings = run_signature(signature, [make_event("sched_process_exec", {"argv": ["a"] * 6000})])
    assert findings == [] and signature.errors == 1 and "iteration budget exceeded" in signature.first_error.lower()
    findings = run_signature(signature, [make_event("sched_process_exec", {"argv": ["a"] * 4000 + ["z"]})])
    assert len(findings) == 1


# --- functions, the same on both backends -------------------------------------------------------------------

ARGS = {
    "pathname": "/usr/lib/x86_64/libc.so.6",
    "flags": "O_RDWR|O_CREAT",
    "raw_flags": 0o101,
    "request": "PTRACE_TRACEME",
    "alert": 4,
    "bytes": "f0VMRgIBAQ==",
    "argv": ["ls", "-la"],
    "addr": {"sa_family": "AF_INET6", "sin6_addr": "::1", "sin6_port": "443"},
    "unix": {"sa_family": "AF_UNIX", "sun_path": "/var/run/docker.sock"},
    "big": 2**64 - 1,
}
RAW = {
    "eventName": "security_file_open",
    "processName": "bash",
    "processId": 7,
    "contextFlags": {"containerStarted": True},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('getEventData("pathname")', "/usr/lib/x86_64/libc.so.6"),
        ('getData("argv")', ["ls", "-la"]),
        ('getEventData("nothing")', None),
        ('hasData("flags") && !hasData("nothing")', True),
        ('getEventData("big") > 1u', True),
        ('split("a,b,,c", ",")', ["a", "b", "", "c"]),
        ('"a,b".split(",")', ["a", "b"]),
        ('join(["a", "b"], "/") + ["c"].join() + ["x", "y"].join("-")', "a/bcx-y"),
        ('trim("  x \\t") + " y ".trim()', "xy"),
        ('replace("aXbX", "X", "-") + "q".replace("q", "Q")', "a-b-Q"),
        ('upper("abc") + "DeF".lower()', "ABCdef"),
        ('[basename("/a/b/"), basename(""), basename("/"), "/x/y".basename()]', ["b", ".", "/", "y"]),
        (
            '[dirname("/etc/passwd"), dirname("passwd"), dirname("/"), dirname("//a"), dirname("a/b/c/")]',
            ["/etc", ".", "/", "/", "a/b/c"],
        ),
        ('openFlags(getEventData("flags")) == 66 && openFlags(getEventData("raw_flags")) == 65', True),
        (
            '[isFileWrite(getEventData("flags")), isFileRead(getEventData("flags")), isFileRead(1), isFileWrite("O_RDONLY")]',
            [True, True, False, False],
        ),
        (
            'ptraceRequest(getEventData("request")) == 0 && ptraceRequest(16) == 16 && ptraceRequest("PTRACE_ATTACH") == 16',
            True,
        ),
        ('memProtAlert(getEventData("alert")) == 4 && memProtAlert("Protection changed from W+E to E!") == 4', True),
        ('[isMemoryPath("memfd:x"), isMemoryPath("/dev/shm/y"), isMemoryPath("/tmp/z")]', [True, True, False]),
        ('[isElf(getEventData("bytes")), isElf("AAAA"), isElf(null), isElf(b"\\x7fELF")]', [True, False, False, True]),
        (
            '[sockaddrIp(getEventData("addr")), sockaddrPort(getEventData("addr")), sockaddrPath(getEventData("unix"))]',
            ["::1", "443", "/var/run/docker.sock"],
        ),
        ('event.processName == "bash" && event.contextFlags.containerStarted', True),
        (
            'getEventData("argv").exists(a, a.startsWith("-")) && getEventData("pathname").matches(r"lib[a-z]+\\.so")',
            True,
        ),
        ('getEventData("pathname").endsWith(".6") ? "six" : "other"', "six"),
    ],
)
def test_functions(backend_name: str, expression: str, expected: Any) -> None:
    backend = create_backend(backend_name)
    backend.slot.args = ARGS
    assert backend.compile_value(expression)(RAW) == expected


@pytest.mark.parametrize(
    "expression",
    [
        'getEventData("raw_flags").startsWith("O_")',  # an int is not a string
        'isFileWrite(getEventData("pathname"))',  # not open flags
        'ptraceRequest(getEventData("argv"))',  # no overload for a list
        'upper(getEventData("alert"))',
        'join([1, 2], ",")',
        "event.nothing == 1",
        'sockaddrIp(getEventData("pathname"))',
        'int("x") == 1',
        'true && size(getEventData("nothing")) > 0',
    ],
)
def test_evaluation_errors(backend_name: str, expression: str) -> None:
    backend = create_backend(backend_name)
    backend.slot.args = ARGS
    with pytest.raises(CelEvalError):
        backend.compile_value(expression)(RAW)


def test_errors_are_absorbed_by_logical_operators(backend_name: str) -> None:
    backend = create_backend(backend_name)
    backend.slot.args = ARGS
    condition = backend.compile_condition(
        'getEventData("raw_flags").startsWith("O_") || isFileWrite(getEventData("flags"))'
    )
    assert condition(RAW) is True
    condition = backend.compile_condition('false && getEventData("raw_flags").startsWith("O_")')
    assert condition(RAW) is False


def test_unknown_functions_and_methods_fail_at_load(backend_name: str) -> None:
    from pytracee.engine.cel.backends import CelCompileError

    backend = create_backend(backend_name)
    for expression in ("nosuch(1)", '"a".nosuch()', '"a".isFileWrite()'):
        with pytest.raises(CelCompileError):
            backend.compile_condition(expression)


# --- limits ----------------------------------------------------------------------------------------------


def test_expression_limits() -> None:
    check_expression('getEventData("p").matches("((((((((((((((((((((((((((((x")')  # brackets in strings do not count
    check_expression("l.all(a, l.exists(b, l.map(c, c)))")
    with pytest.raises(ExpressionTooComplex, match="characters long"):
        check_expression("1 + " * (MAX_EXPRESSION_LENGTH // 4) + "1")
    with pytest.raises(ExpressionTooComplex, match="brackets nested"):
        check_expression("(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1))
    nested = (
        "l"
        + "".join(f".exists(x{i}, l" for i in range(MAX_COMPREHENSION_NESTING + 1))
        + ".size() > 0"
        + ")" * (MAX_COMPREHENSION_NESTING + 1)
    )
    with pytest.raises(ExpressionTooComplex, match="comprehensions nested"):
        check_expression(nested)


def test_too_complex_expressions_are_rejected_with_their_line(tmp_path: Path) -> None:
    deep = "(" * 30 + "true" + ")" * 30
    path = write(tmp_path, "deep.yaml", detector(f"  - 'true'\n  - '{deep}'\n"))
    _, errors = collect(path)
    assert errors == [f"{path}:10: conditions[1]: expression too complex: brackets nested more than {MAX_NESTING} deep"]


# --- the command line ----------------------------------------------------------------------------------------


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    events = [
        make_event("ptrace", {"request": "PTRACE_TRACEME", "pid": 0}, processName="strace"),
        make_event("ptrace", {"request": 16, "pid": 42}),
        make_event("security_file_open", {"pathname": "/etc/sudoers", "flags": 1, "dev": 1}),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e.raw) + "\n" for e in events))
    return path


def test_cli_lists_cel_signatures() -> None:
    result = tracee_rules("--rules", "lang:cel", "--list")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert "LANGUAGE" in header
    cel_rows = [row.split() for row in rows if row.startswith("CEL-")]
    assert len(cel_rows) >= 5
    assert all("cel" in row and "yes" in row for row in cel_rows)
    assert any(row[0] == "CEL-102" for row in cel_rows)


def test_cli_help_shows_cel_options() -> None:
    result = tracee_rules("--help")
    assert "--cel-engine {cel-expr-python,cel-python}" in result.stdout and "--cel-time-budget" in result.stdout


@pytest.mark.parametrize("engine", BACKENDS)
def test_cli_replays_events_through_a_cel_signature(events_file: Path, engine: str) -> None:
    result = tracee_rules(
        "--rules",
        "CEL-102,CEL-1028",
        "--cel-engine",
        engine,
        "--input",
        str(events_file),
        "--output-template",
        "rawjson",
    )
    assert result.returncode == 0, result.stderr
    findings = [json.loads(line) for line in result.stdout.splitlines()]
    assert [f["SigMetadata"]["ID"] for f in findings] == ["CEL-102", "CEL-1028"]
    assert findings[0]["Context"]["processName"] == "strace" and findings[0]["Data"] is None
    assert "2 findings from 2 signatures (CEL-102: 1, CEL-1028: 1)" in result.stderr


def test_cli_default_template_prints_a_cel_finding(events_file: Path) -> None:
    result = tracee_rules("--rules", "CEL-102", "--input", str(events_file))
    assert result.returncode == 0, result.stderr
    assert "*** Detection ***" in result.stdout and "Signature ID: CEL-102" in result.stdout


def test_cli_rules_dir_with_a_broken_detector(tmp_path: Path, events_file: Path) -> None:
    rules = tmp_path / "rules"
    broken = write(rules, "broken.yaml", BASE.replace("== 0\n", '== 0\n  - getEventData("request" ==\n'))
    write(rules, "good.yaml", detector('  - ptraceRequest(getEventData("request")) == 16\n', sig_id="GOOD-1"))
    args = ("--rules-dir", str(rules), "--disable", "builtin-rules", "--rules", "GOOD-1", "--input", str(events_file))
    lenient = tracee_rules(*args, "--output-template", "rawjson")
    assert lenient.returncode == 0, lenient.stderr
    assert [json.loads(line)["SigMetadata"]["ID"] for line in lenient.stdout.splitlines()] == ["GOOD-1"]
    assert f"{broken}:10: conditions[1]: CEL error" in lenient.stderr
    strict = tracee_rules(*args, "--strict")
    assert strict.returncode == 2
    assert f"{broken}:10: conditions[1]: CEL error" in strict.stderr


def test_integer_filters_of_alternative_requirements_are_or_ed(tmp_path: Path) -> None:
    events = """\
    - name: ptrace
      scope_filters: [container=started]
      data_filters: [request=16]
    - name: ptrace
      origin: host
      data_filters: [request=0]
"""
    (signature,) = load_signatures(write(tmp_path, "alt.yaml", detector(events=events)))
    fired = [make_event("ptrace", {"request": 16}, container=True), make_event("ptrace", {"request": 0})]
    silent = [make_event("ptrace", {"request": 0}, container=True), make_event("ptrace", {"request": 16})]
    findings = run_signature(signature, fired + silent)
    assert [f.event for f in findings] == fired


def test_a_detector_can_build_on_another_signatures_event(tmp_path: Path, backend_name: str) -> None:
    """Like Tracee's detector chains: select a signature's event, read its Data and detectedFrom."""
    rules = tmp_path / "rules"
    write(
        rules,
        "exec.yaml",
        detector(
            events="    - name: sched_process_exec\n      data_filters: [pathname=/tmp/*]\n",
            output='    - {name: binary, expression: getEventData("pathname")}\n',
            sig_id="CHAIN-1",
        ).replace("t_event", "tmp_exec"),
    )
    write(
        rules,
        "container.yaml",
        detector(
            '  - getEventData("binary").endsWith("/miner")\n',
            events="    - name: tmp_exec\n      scope_filters: [container=started]\n",
            output='    - {name: from, expression: getEventData("detectedFrom").name}\n'
            '    - {name: binary, expression: basename(getEventData("binary"))}\n',
            sig_id="CHAIN-2",
        ).replace("t_event", "container_miner"),
    )
    signatures = load_signatures(rules, cel_engine=backend_name)
    findings = run_engine(
        [
            make_event("sched_process_exec", {"pathname": "/tmp/miner"}, container=True),
            make_event("sched_process_exec", {"pathname": "/tmp/miner"}),  # host: only the first detector
            make_event("sched_process_exec", {"pathname": "/usr/bin/ls"}, container=True),
        ],
        signatures,
    )
    assert [(f.sig_metadata.id, f.data) for f in findings] == [
        ("CHAIN-1", {"binary": "/tmp/miner"}),
        ("CHAIN-2", {"from": "sched_process_exec", "binary": "miner"}),
        ("CHAIN-1", {"binary": "/tmp/miner"}),
    ]


def test_time_other_processes_take_is_not_an_overrun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A loaded machine stretches wall-clock time; the budget is judged on the thread's CPU time."""
    import itertools

    from pytracee.engine.cel import signature as cel_signature

    rule = write(
        tmp_path,
        "fast.yaml",
        detector('  - getEventData("pathname") == "/etc/shadow"\n', events="    - name: security_file_open\n"),
    )
    (signature,) = load_signatures(rule)
    ticks = itertools.count(step=1.0)  # every reading of the wall clock is a second after the last
    monkeypatch.setattr(cel_signature.time, "perf_counter", lambda: float(next(ticks)))
    events = [make_event("security_file_open", {"pathname": "/etc/shadow", "flags": 0})] * 10
    findings = run_signature(signature, events)
    assert len(findings) == 10 and not signature.disabled


def test_maps_in_finding_data_have_their_keys_in_sorted_order(tmp_path: Path, backend_name: str) -> None:
    """cel-cpp hands out a map's entries in an order that changes between processes: data
    is printed with sorted keys, at every depth, as Go prints maps."""
    keys = [f"k{i:02d}" for i in range(24, 0, -1)]
    literal = "{" + ", ".join(f'"{key}": {{"z": 1, "a": 2, "{key}": [{{"y": 1, "b": 2}}]}}' for key in keys) + "}"
    output = f"    - {{name: m, expression: '{literal}'}}\n    - {{name: n, expression: '{{2: \"x\", 1: \"y\"}}'}}\n"
    text = detector(output=output, sig_id="MAP-1")
    (signature,) = load_signatures(write(tmp_path, "maps.yaml", text), cel_engine=backend_name)
    (finding,) = run_signature(signature, [make_event("ptrace", {"request": 0})])
    value = finding.data["m"]
    assert list(value) == sorted(keys)
    for key in keys:
        assert list(value[key]) == sorted(["z", "a", key])
        assert list(value[key][key][0]) == ["b", "y"]
    assert list(finding.data["n"]) == [1, 2]
