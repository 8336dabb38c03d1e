"""CEL conditions decided in Python (engine/cel/shortcut.py) and events projected to the fields the
expressions read (engine/cel/projection.py) give exactly what the engines give.

Properties, on both backends: for random expressions over random and hostile events, a condition
the shortcut decides is decided as the engine decides it (and the engine raises no error there);
an expression evaluated on the projected event gives the same value or the same error as on the
whole event. The bundled rules (rules/cel) give the same findings, Data and evaluation errors
with and without both.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hostile_values import HOSTILE_TEXT, VALUES
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pytracee.engine.cel.backends import CelCompileError, CelEvalError, create_backend
from pytracee.engine.cel.boundary import EventGate, EventRejected, admit_event
from pytracee.engine.cel.parsetree import parse
from pytracee.engine.cel.projection import WHOLE_EVENT, project, referenced_fields
from pytracee.engine.cel.shortcut import compile_shortcut
from pytracee.engine.cel.signature import CelSignature, _bind_params
from pytracee.engine.dispatch import Engine
from pytracee.engine.events import Event
from pytracee.engine.findings import Finding
from pytracee.engine.testing import load_signatures

RULES = Path(__file__).parent.parent / "rules" / "cel"
BACKENDS = ["cel-expr-python", "cel-python"]
#: cel-python is a hundred times slower: fewer examples there.
EXAMPLES = {"cel-expr-python": 400, "cel-python": 60}

pytestmark = pytest.mark.usefixtures("quiet_logs")

# --- events ----------------------------------------------------------------------------------------

ARG_NAMES = ["pathname", "flags", "request", "remote_addr", "sockfd", "newfd", "bytes", "alert", "pid", "dev_name"]
SOCKADDRS = st.fixed_dictionaries(
    {"sa_family": st.sampled_from(["AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK", ""])},
    optional={
        "sin_port": st.sampled_from(["0", "80", "", "x", "65536"]),
        "sin_addr": st.sampled_from(["10.0.0.1", "", "::1"]),
        "sin6_port": st.sampled_from(["443", "0"]),
        "sin6_addr": st.sampled_from(["::1", "fe80::1"]),
        "sun_path": st.sampled_from(["/var/run/docker.sock", "", "\x00abstract", "/tmp/x.sock"]),
    },
)
ELF = base64.b64encode(b"\x7fELF\x02\x01\x01" + b"\x00" * 9).decode()
ARG_VALUES = st.one_of(
    st.integers(-3, 20),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, -(2**63), 16902, 0o1101, 0o2, 0o100]),
    st.sampled_from(["/proc/1/mem", "memfd:x", "/dev/shm/a", "/etc/sudoers", "/dev/sda1", "O_WRONLY|O_CREAT"]),
    st.sampled_from(["PTRACE_TRACEME", "PTRACE_POKETEXT", "3", " 3", "+3", "0x10", ELF, "AAAA", ""]),
    SOCKADDRS,
    st.lists(st.sampled_from(["a", "b", 1]), max_size=3),
    VALUES,
)
FIELD_VALUES = st.one_of(st.integers(-1, 70000), st.sampled_from([2**63 + 1, 2**64 + 1]), HOSTILE_TEXT, VALUES)


@st.composite
def events(draw: Any) -> dict[str, Any]:
    """A Tracee-like event: the usual fields with usual or hostile values, some left out."""
    raw: dict[str, Any] = {
        "eventName": draw(st.sampled_from(["ptrace", "security_socket_connect", "socket_dup", "security_file_open"])),
        "args": [
            {"name": draw(st.sampled_from(ARG_NAMES)), "value": draw(ARG_VALUES)}
            for _ in range(draw(st.integers(0, 4)))
        ],
    }
    for name in ("processName", "processId", "userId", "hostName"):
        if draw(st.booleans()):
            raw[name] = draw(FIELD_VALUES)
    if draw(st.booleans()):
        raw["contextFlags"] = {"containerStarted": draw(st.booleans())}
    if draw(st.booleans()):
        raw["container"] = {"id": draw(st.sampled_from(["", "abc"]))}
    return raw


def _admitted(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The event and its arguments as a CEL signature hands them over (see boundary.EventGate).

    Events that may hold a NUL character are left out: the engine evaluates those alone
    (test_an_event_with_a_nul_character_is_the_engines_alone).
    """
    try:
        admitted, nul = admit_event(raw)
    except EventRejected:
        assume(False)
        raise
    assume(not nul)
    return admitted, {arg["name"]: arg.get("value") for arg in admitted["args"]}


# --- expressions ---------------------------------------------------------------------------------

LEAVES = st.one_of(
    st.sampled_from(["eventName", "processName", "processId", "userId", "contextFlags", "args", "nokey"]).map(
        lambda f: f"event.{f}"
    ),
    st.sampled_from([*ARG_NAMES, "missing"]).map(lambda a: f'getEventData("{a}")'),
    st.sampled_from(ARG_NAMES).map(lambda a: f'hasData("{a}")'),
    st.sampled_from(
        [
            "0",
            "1",
            "3",
            "-1",
            "4",
            "16902",
            "9223372036854775807",
            "3u",
            "1.5",
            "true",
            "false",
            "null",
            '"ptrace"',
            '"socket_dup"',
            '"AF_INET"',
            '"AF_UNIX"',
            '""',
            '"/"',
            '"/proc/"',
            'b"ab"',
            "[0, 1, 2]",
            '["AF_INET", "AF_INET6"]',
            '["", "0"]',
            '[1, "a"]',
            "[]",
            '{"a": 1}',
            'event["eventName"]',
            "event",
        ]
    ),
)
UNARY = [
    "!({})",
    "size({})",
    "({}).size()",
    "int({})",
    "string({})",
    "bool({})",
    "has(({}).sa_family)",
    "({}).sa_family",
    "({})[0]",
    '({})["sa_family"]',
    "getEventData({})",
    "ptraceRequest({})",
    "openFlags({})",
    "isFileWrite({})",
    "isFileRead({})",
    "memProtAlert({})",
    "isMemoryPath({})",
    "isElf({})",
    "sockaddrIp({})",
    "sockaddrPort({})",
    "sockaddrPath({})",
    "basename({})",
    "upper({})",
    "join({})",
    "({}).exists(x, x == 1)",
    "[1, 2].all(x, {})",
]
BINARY = [
    "({}) == ({})",
    "({}) != ({})",
    "({}) < ({})",
    "({}) >= ({})",
    "({}) in ({})",
    "({}) && ({})",
    "({}) || ({})",
    "({}).startsWith({})",
    "({}).endsWith({})",
    "({}).contains({})",
    "({}).matches({})",
    "({})[{}]",
    "split({}, {})",
    "({}) + ({})",
]


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(st.sampled_from(UNARY), children).map(lambda t: t[0].format(t[1])),
        st.tuples(st.sampled_from(BINARY), children, children).map(lambda t: t[0].format(t[1], t[2])),
        st.tuples(children, children, children).map(lambda t: f"({t[0]}) ? ({t[1]}) : ({t[2]})"),
    )


EXPRESSIONS = st.recursive(LEAVES, _combine, max_leaves=8)


def _outcome(evaluate: Any, raw: dict[str, Any]) -> Any:
    try:
        return ("value", evaluate(raw))
    except CelEvalError as exc:  # cel-python's messages may name objects by address
        return ("error", re.sub(r" at 0x[0-9a-f]+", "", str(exc)))


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Any:
    return create_backend(request.param)


def _property(backend: Any, text: str, raw: dict[str, Any]) -> tuple[bool, bool]:
    """Check one expression on one event; (decided in Python, projected)."""
    try:
        condition = backend.compile_condition(text)
    except CelCompileError:
        assume(False)
    parsed = parse(text)
    raw, args = _admitted(raw)
    backend.slot.args = args
    backend.slot.deadline = float("inf")
    plain = _outcome(condition, raw)
    decide = compile_shortcut(parsed)
    decided = decide(raw, args) if decide is not None else None
    if decided is not None:
        assert plain == ("value", decided), (text, raw, plain, decided)
    fields = referenced_fields(parsed)
    if fields is not WHOLE_EVENT:
        assert _outcome(condition, project(raw, fields)) == plain, (text, raw, fields)
    return decided is not None, fields is not WHOLE_EVENT


@given(data=st.data())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_decided_and_projected_conditions_agree_with_the_engine(backend: Any, data: st.DataObject) -> None:
    text = data.draw(EXPRESSIONS, label="expression")
    raw = data.draw(events(), label="event")
    if backend.name == "cel-python" and data.draw(st.integers(0, 5), label="sampled") != 0:
        return  # a sixth of the examples on the slow backend
    _property(backend, text, raw)


PARAM_EXPRESSIONS = st.sampled_from(
    [
        "event.processName in params.shells",
        'params.n == getEventData("sockfd")',
        'getEventData("pathname").startsWith(params.prefix)',
        "params.flag && event.userId == 0",
        'params.shells[0] == getEventData("pathname")',
        "size(params.shells) > 1 || has(event.processName)",
        "params.missing == 1",
    ]
)
PARAM_VALUES = st.fixed_dictionaries(
    {
        "shells": st.lists(st.one_of(st.sampled_from(["sh", "bash", "/proc/1/mem"]), HOSTILE_TEXT), max_size=3),
        "n": st.one_of(st.integers(-2, 4), st.booleans(), st.text(max_size=2)),
        "prefix": st.one_of(st.sampled_from(["/", "/proc", ""]), st.integers(0, 1)),
        "flag": st.one_of(st.booleans(), st.none()),
    }
)


class _Params:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def as_json(self) -> dict[str, Any]:
        return self.values


@given(data=st.data())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_conditions_with_params_agree_with_the_engine(backend: Any, data: st.DataObject) -> None:
    """A detector's params are bound in CEL as a one-element comprehension, in Python as constants."""
    text = data.draw(PARAM_EXPRESSIONS, label="expression")
    params = data.draw(PARAM_VALUES, label="params")
    raw, args = _admitted(data.draw(events(), label="event"))
    try:
        condition = backend.compile_condition(_bind_params(text, _Params(params), False))  # type: ignore[arg-type]
    except (CelCompileError, TypeError):  # a lone surrogate has no JSON form: the detector would not load
        assume(False)
    backend.slot.args = args
    backend.slot.deadline = float("inf")
    plain = _outcome(condition, raw)
    decide = compile_shortcut(parse(text), {"params": params})
    decided = decide(raw, args) if decide is not None else None
    if decided is not None:
        assert plain == ("value", decided), (text, params, raw, plain)


#: Expressions of the shapes the bundled rules use, with events where they are decided either way.
DECIDED = [
    ('ptraceRequest(getEventData("request")) == 0', {"request": 0}, True),
    ('ptraceRequest(getEventData("request")) == 0', {"request": "PTRACE_TRACEME"}, True),
    ('ptraceRequest(getEventData("request")) in [4, 5]', {"request": 16902}, False),
    ('int(getEventData(event.eventName == "socket_dup" ? "newfd" : "sockfd")) in [0, 1, 2]', {"sockfd": 3}, False),
    (
        'getEventData("remote_addr").sa_family in ["AF_INET", "AF_INET6"]',
        {"remote_addr": {"sa_family": "AF_INET"}},
        True,
    ),
    ('!(sockaddrPort(getEventData("remote_addr")) in ["", "0"])', {"remote_addr": {"sa_family": "AF_INET"}}, False),
    ('isElf(getEventData("bytes"))', {"bytes": ELF}, True),
    ('event.eventName == "security_inode_rename" || isFileWrite(getEventData("flags"))', {"flags": 0o1}, True),
    ('getEventData("dev_name").startsWith("/dev/")', {"dev_name": "/dev/sda"}, True),
    ('size(getEventData("hooked_fops_pointers")) > 0', {"hooked_fops_pointers": []}, False),
    ('hasData("missing") && getEventData("x").matches("a")', {"x": "a"}, False),
    ('getEventData("missing") == null', {}, True),
]


@pytest.mark.parametrize(("text", "args", "expected"), DECIDED)
def test_the_bundled_rules_shapes_are_decided_in_python(
    backend: Any, text: str, args: dict[str, Any], expected: bool
) -> None:
    raw = {"eventName": "ptrace", "processId": 7, "args": [{"name": k, "value": v} for k, v in args.items()]}
    decide = compile_shortcut(parse(text))
    assert decide is not None and decide(raw, args) is expected
    backend.slot.args = args
    assert backend.compile_condition(text)(raw) is expected


#: Left to the engine: errors, CEL's cross-type equality, RE2, comprehensions, doubles, uints.
UNDECIDED = [
    ('getEventData("x").startsWith("a")', {"x": 5}),  # no such overload: an error, the engine's to report
    ('getEventData("x") == "5"', {"x": 5}),  # false on cel-expr-python, an error on cel-python
    ('getEventData("x").matches("a+")', {"x": "aa"}),
    ("[1, 2].exists(x, x == 2) || true", {}),  # the iteration budget stops a whole evaluation
    ('getEventData("x") == 1.0', {"x": 1}),
    ('getEventData("x") == 3u', {"x": 3}),
    ('int(getEventData("x")) == 3', {"x": "3"}),
    ("event.nokey == 1", {}),
    ('ptraceRequest(getEventData("x")) == 0', {"x": "PTRACE_NO_SUCH_REQUEST"}),  # the parser raises
]


@pytest.mark.parametrize(("text", "args"), UNDECIDED)
def test_what_is_not_certain_is_left_to_the_engine(text: str, args: dict[str, Any]) -> None:
    raw = {"eventName": "ptrace", "args": [{"name": k, "value": v} for k, v in args.items()]}
    decide = compile_shortcut(parse(text))
    assert decide is None or decide(raw, args) is None


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ('event.eventName == "x" && has(event.processName)', {"eventName", "processName"}),
        ('event["userId"] == 0 && getEventData("a") == 1', {"userId"}),
        (".event.processId == 1", {"processId"}),
        ("[1].exists(p, event.container.id == p)", {"container"}),
        ('event.args.exists(a, a.name == "x")', {"args"}),
        ("size(event) > 1", WHOLE_EVENT),
        ('event[getEventData("k")] == 1', WHOLE_EVENT),
        ("[event].size() == 1", WHOLE_EVENT),
        ("[1].exists(event, event == 1)", WHOLE_EVENT),
    ],
)
def test_the_fields_an_expression_reads(text: str, fields: set[str] | None) -> None:
    found = referenced_fields(parse(text))
    assert found == (frozenset(fields) if fields is not None else None)


NUL_RULE = """type: detector
id: NUL-1
produced_event: {name: nul, version: 1}
threat: {name: nul, severity: info}
requirements:
  events:
    - name: security_file_open
conditions:
  - getEventData("pathname") == "/etc/sudoers" && event.processName == "sh"
"""


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize(
    "raw",
    [
        {"processName": "sh", "args": [{"name": "pathname", "value": "/etc/sudoers\x00.d"}]},
        {"processName": "sh", "args": [{"name": "pathname", "value": "/etc/sudoers"}], "m": {"": 1, "\x00": 2}},
        {"processName": "sh\x00", "args": [{"name": "pathname", "value": "/etc/sudoers"}]},
    ],
)
def test_an_event_with_a_nul_character_is_the_engines_alone(
    tmp_path: Path, backend_name: str, raw: dict[str, Any]
) -> None:
    """cel-expr-python cuts strings at a NUL (and may then see duplicate keys): its answer stands."""
    raw = {"eventName": "security_file_open", **raw}
    backend = create_backend(backend_name)
    backend.slot.args = {arg["name"]: arg["value"] for arg in raw["args"]}
    expected = _outcome(backend.compile_condition(NUL_RULE.splitlines()[-1][4:]), raw)
    (tmp_path / "nul.yaml").write_text(NUL_RULE)
    (signature,) = load_signatures(tmp_path, cel_engine=backend_name)
    found: list[Finding] = []
    Engine([signature], found.append).dispatch(Event(json.loads(json.dumps(raw)), text=json.dumps(raw).encode()))
    outcome = (
        ("value", True)
        if found
        else ("error", signature.first_error.split(": ", 1)[1])
        if signature.errors
        else ("value", False)
    )
    assert outcome == expected


# --- the bundled rules, end to end ---------------------------------------------------------------


class _Run:
    """The bundled rules in an engine, kept across examples; findings and errors since the last look."""

    def __init__(self, backend: str, plain: bool) -> None:
        # a budget no evaluation reaches, even on a loaded machine: a deadline passed in one run
        # and not the other would be a difference of timing, not of answers
        signatures = load_signatures(RULES, cel_engine=backend, cel_time_budget=60_000)
        self.signatures = [s for s in signatures if isinstance(s, CelSignature)]
        if plain:  # every condition by the engine, on the whole event
            for signature in self.signatures:
                signature._shortcuts = (None,) * len(signature._shortcuts)
                signature._gate.require(WHOLE_EVENT)
        self.found: list[Finding] = []
        self.engine = Engine(self.signatures, self.found.append)

    def run(self, raws: list[dict[str, Any]]) -> tuple[list[Any], dict[str, Any]]:
        before = {s.spec.id: s.errors for s in self.signatures}
        for raw in raws:
            self.engine.dispatch(Event(json.loads(json.dumps(raw))))
        findings = [(f.sig_metadata.id, f.event.raw.get("eventName"), f.data) for f in self.found]
        self.found.clear()
        return findings, {s.spec.id: (s.errors - before[s.spec.id], s.first_error) for s in self.signatures}


@pytest.fixture(scope="module", params=BACKENDS)
def rule_runs(request: pytest.FixtureRequest) -> tuple[_Run, _Run]:
    fast, plain = _Run(request.param, plain=False), _Run(request.param, plain=True)
    assert fast.signatures[0]._gate is not plain.signatures[0]._gate
    return fast, plain


@st.composite
def rule_events(draw: Any) -> dict[str, Any]:
    """Events the bundled rules select, with values that do and do not match them."""
    raw = draw(events())
    raw["eventName"] = draw(
        st.sampled_from(
            [
                "ptrace",
                "security_socket_connect",
                "socket_dup",
                "security_file_open",
                "magic_write",
                "mem_prot_alert",
                "sched_process_exec",
                "process_vm_writev",
                "security_inode_rename",
                "security_sb_mount",
                "hooked_proc_fops",
            ]
        )
    )
    raw["contextFlags"] = {"containerStarted": draw(st.booleans())}
    raw["container"] = {"id": "c0ffee"} if raw["contextFlags"]["containerStarted"] else {}
    if draw(st.booleans()):
        raw["processName"] = draw(st.sampled_from(["bash", "sh", "nginx", "x"]))
    return raw


@given(raws=st.lists(rule_events(), min_size=1, max_size=6))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_bundled_rules_give_the_same_findings_and_errors(
    rule_runs: tuple[_Run, _Run], raws: list[dict[str, Any]]
) -> None:
    fast, plain = rule_runs
    for raw in raws:  # JSON-shaped, as from the reader: NaN and huge integers are left to other tests
        try:
            json.loads(json.dumps(raw, allow_nan=False))
        except ValueError:
            assume(False)
    fast_findings, fast_errors = fast.run(raws)
    plain_findings, plain_errors = plain.run(raws)
    assert fast_findings == plain_findings
    assert fast_errors == plain_errors


def test_params_are_constants_of_the_decision() -> None:
    decide = compile_shortcut(parse("event.processName in params.shells"), {"params": {"shells": ["sh", "bash"]}})
    assert decide is not None
    assert decide({"processName": "sh"}, {}) is True and decide({"processName": "zsh"}, {}) is False
    assert decide({"processName": 1}, {}) is None and decide({}, {}) is None


def test_the_gate_gives_the_engine_the_fields_required() -> None:
    gate = EventGate()
    gate.require(frozenset({"eventName"}))
    gate.require(frozenset({"processName", "userId"}))
    raw = {"eventName": "ptrace", "processName": "sh", "hostName": "h", "args": []}
    event = Event(raw, text=json.dumps(raw).encode())
    assert gate.admit(event, event.args) == (raw, {})
    assert gate.decidable and gate.view() == {"eventName": "ptrace", "processName": "sh"}
    nul = Event({**raw, "hostName": "h\x00"}, text=json.dumps({**raw, "hostName": "h\x00"}).encode())
    gate.admit(nul, nul.args)
    assert not gate.decidable and gate.view() is nul.raw  # the engine alone, on the whole event
    gate.require(WHOLE_EVENT)
    gate.admit(event, event.args)
    assert gate.decidable and gate.view() is raw
