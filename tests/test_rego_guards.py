"""Guards (engine/rego/guards.py): events a Rego signature's leading conditions rule out are not
sent to the Rego engine, and no signature ever sees a different answer for it.

Each property loads the same rule files twice on one backend, once with guards and once with
every guard removed, and compares what ``tracee_match`` gives (value or error) on random events
built around the values the guards test (paths, prefixes, numbers against strings, floats,
booleans, duplicate or missing arguments, odd ``args``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pytracee.engine.events import Event
from pytracee.engine.rego.guards import regex_literal
from pytracee.engine.rego.signature import RegoSignature
from pytracee.engine.testing import load_signatures, make_event, run_engine

REPO = Path(__file__).parent.parent
RULES = REPO / "rules" / "rego"
BACKENDS = ("regorus", "opa")
SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

pytestmark = pytest.mark.usefixtures("quiet_logs")


def _rule_file(
    pkg: str, events: list[str], body: str, header: str = "import rego.v1\n\nimport data.tracee.helpers\n"
) -> str:
    selectors = ", ".join(json.dumps({"source": "tracee", "name": e}) for e in events)
    meta = {"id": pkg.replace("_", "-"), "name": pkg}
    return (
        f"package tracee.{pkg}\n\n{header}\n__rego_metadoc__ := {json.dumps(meta)}\n\n"
        f"tracee_selected_events contains s if {{\n\tsome s in [{selectors}]\n}}\n\n{body}"
    )


#: One signature per kind of statement a guard reads (and some it stops at).
FORMS = {
    "eq_ne_path": 'tracee_match if {\n\tinput.eventName == "openat"\n\tinput.processName != "sh"\n'
    '\tinput.container.id == "c1"\n}\n',
    "membership": 'tracee_match := {"v": v} if {\n\tv := helpers.get_tracee_argument("flags")\n'
    '\tv in {0, "O_RDONLY", true, null, 4}\n}\n',
    "not_type": "tracee_match if {\n\tnot is_string(input.processName)\n\tinput.processId == 1\n}\n",
    "string_unchecked": 'tracee_match if {\n\tx := helpers.get_tracee_argument("pathname")\n\tstartswith(x, "/a")\n}\n',
    "string_two_args": "tracee_match if {\n"
    '\tcontains(helpers.get_tracee_argument("pathname"), helpers.get_tracee_argument("name"))\n}\n',
    "regex_anchored": 'tracee_match if regex.match(`^/x`, helpers.get_tracee_argument("pathname"))\n',
    "regex_literal": 'tracee_match if regex.match(`/ab+c`, helpers.get_tracee_argument("pathname"))\n',
    "regex_alternation": 'tracee_match if regex.match(`/a|/b`, helpers.get_tracee_argument("pathname"))\n',
    "some_in": 'tracee_match := {"v": v} if {\n\tsome v in helpers.get_tracee_argument("argv")\n'
    '\tis_string(v)\n\tendswith(v, "sh")\n}\n',
    "some_in_constants": 'tracee_match if {\n\tp := helpers.get_tracee_argument("pathname")\n'
    '\tsome prefix in ["/a", "/etc/"]\n\tstartswith(p, prefix)\n}\n',
    "elf": 'tracee_match if helpers.is_elf_file(helpers.get_tracee_argument("bytes"))\n',
    "truthy": 'tracee_match if helpers.get_tracee_argument("flags")\n',
    "numbers": 'tracee_match if {\n\thelpers.get_tracee_argument("pid") != input.processId\n'
    '\thelpers.get_tracee_argument("flags") == 4\n}\n',
    "conflict": 'tracee_match := 1 if helpers.get_tracee_argument("flags") == 0\n\n'
    'tracee_match := 2 if helpers.get_tracee_argument("name") == "x"\n',
    "brackets": "tracee_match if input.args[0].value == 1\n",
}
#: Rules that must get no guard at all.
UNGUARDED = {
    "with_default": 'default tracee_match := false\n\ntracee_match if input.eventName == "x"\n',
    "with_else": 'tracee_match := 1 if input.eventName == "x"\n\nelse := 2\n',
    "partial_set": 'tracee_match contains 1 if input.eventName == "x"\n',
}

EVENTS = ["openat", "security_file_open", "ptrace", "execve", "sched_process_exec", "magic_write"]
STRINGS = [
    "/etc/ld.so.preload",
    "/etc/passwd",
    "/proc/self/mem",
    "/proc/12/mem",
    "/procfoo/mem",
    "/x/release_agent",
    "memfd:evil",
    "memfd:runc",
    "/dev/shm/x",
    "/etc/kubernetes/pki/ca.key",
    "/var/run/secrets/kubernetes.io/serviceaccount/token",
    "/abbbc",
    "/a",
    "/b",
    "/x",
    "sh",
    "bash",
    "LD_PRELOAD=/x.so",
    "f0VMRgIBAQ",
    "O_RDONLY",
    "PTRACE_TRACEME",
    "PTRACE_POKETEXT",
    "kernel-module",
    "",
    "c1",
    "x",
]
SCALARS = st.one_of(
    st.sampled_from(STRINGS),
    st.text(max_size=8),
    st.integers(-2, 6),
    st.sampled_from([0.0, 4.0, 2**60, -(2**63), 1.5, True, False, None]),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=4),
    st.sampled_from([[127, 69, 76, 70, 2], [127.0, 69, 76, 70], [127, 69, 76], {"a": 1}]),
)
NAMES = ["pathname", "flags", "request", "argv", "envp", "bytes", "name", "pid", "type", "dev_name"]


@st.composite
def events(draw: Any) -> Event:
    args: Any = [
        draw(
            st.one_of(
                st.fixed_dictionaries({"name": st.sampled_from(NAMES), "value": VALUES}),
                st.fixed_dictionaries({"name": st.sampled_from(NAMES)}),  # no value
                st.sampled_from([1, "pathname", None]),
            )
        )
        for _ in range(draw(st.integers(0, 5)))
    ]
    if args and type(args[0]) is dict and draw(st.booleans()):  # the same argument twice
        args.append({"name": args[0]["name"], "value": draw(VALUES)})
    args = draw(
        st.sampled_from([args, args, args, None, {"pathname": {"name": "pathname", "value": "/a"}}, "x", "missing"])
    )
    raw: dict[str, Any] = {"eventName": draw(st.sampled_from(EVENTS)), "processId": draw(st.sampled_from([1, 2, 1.0]))}
    if args != "missing":
        raw["args"] = args
    for key, values in (
        ("processName", st.one_of(st.sampled_from(["sh", "kubectl", "etcd", "runc:[2:INIT]"]), SCALARS)),
        ("container", st.sampled_from([{"id": "c1"}, {"id": ""}, {}, "c1", None])),
        ("containerId", st.sampled_from(["", "c1"])),
    ):
        if draw(st.booleans()):
            raw[key] = draw(values)
    try:
        text = orjson.dumps(raw)
    except TypeError:
        assume(False)
    return Event(orjson.loads(text), text=text)


def _load_twice(tmp_path: Path, backend: str, files: dict[str, str] | None = None) -> list[tuple[Any, Any]]:
    """Pairs of the same signature loaded with guards and without any."""
    if files is None:
        directory = RULES
    else:
        directory = tmp_path / "rules"
        directory.mkdir(exist_ok=True)
        for name, text in files.items():
            (directory / f"{name}.rego").write_text(text)
    guarded = {s.metadata.id: s for s in load_signatures(directory, rego_engine=backend)}
    plain = {s.metadata.id: s for s in load_signatures(directory, rego_engine=backend)}
    for signature in (*guarded.values(), *plain.values()):
        signature.install_params()  # type: ignore[attr-defined]
    for signature in plain.values():
        signature.rule.drop_guard()  # type: ignore[attr-defined]
    return [(guarded[sig_id].rule, plain[sig_id].rule) for sig_id in guarded]


def _outcome(rule: Any, event: Event) -> Any:
    try:
        return ("value", rule.evaluate(event))
    except Exception as exc:  # noqa: BLE001 - the error is the outcome compared
        return ("error", type(exc).__name__, str(exc))


def _same_answers(pairs: list[tuple[Any, Any]], event: Event) -> None:
    for guarded, plain in pairs:
        assert _outcome(guarded, event) == _outcome(plain, event), (guarded.sig_id, event.raw)


@pytest.fixture(scope="module", params=BACKENDS)
def shipped(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Any, Any]]:
    return _load_twice(tmp_path_factory.mktemp("shipped"), request.param)


@pytest.fixture(scope="module", params=BACKENDS)
def forms(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Any, Any]]:
    files = {name: _rule_file(name.upper(), EVENTS, body) for name, body in FORMS.items()}
    return _load_twice(tmp_path_factory.mktemp("forms"), request.param, files)


@given(event=events())
@SETTINGS
def test_shipped_signatures_answer_the_same_with_and_without_guards(shipped: list[Any], event: Event) -> None:
    _same_answers(shipped, event)


@given(event=events())
@SETTINGS
def test_every_statement_kind_answers_the_same_with_and_without_guards(forms: list[Any], event: Event) -> None:
    _same_answers(forms, event)


@pytest.mark.parametrize("backend", BACKENDS)
def test_remembered_answers_tell_apart_values_python_finds_equal(tmp_path: Path, backend: str) -> None:
    """The guards' memory is keyed by the values read: true, 1, 1.0 and "1" must not share an answer."""
    pairs = _load_twice(tmp_path, backend, {"membership": _rule_file("MEMBERSHIP", ["openat"], FORMS["membership"])})
    ((guarded, plain),) = pairs
    values = [True, 1, 1.0, "1", 4, 4.0, False, 0, None, 0.0, 2**60, 2**60 + 1]
    for value in (*values, *reversed(values)):
        event = make_event("openat", {"flags": value})
        assert _outcome(guarded, event) == _outcome(plain, event), value
    assert _outcome(guarded, make_event("openat", {"flags": True})) == ("value", {"v": True})
    assert _outcome(guarded, make_event("openat", {"flags": 1})) == ("value", None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_remembered_answers_tell_apart_null_no_value_and_arrays(tmp_path: Path, backend: str) -> None:
    body = (
        'tracee_match if {\n\tv := helpers.get_tracee_argument("envp")\n\tv == null\n}\n\n'
        'tracee_match if {\n\tv := helpers.get_tracee_argument("envp")\n\tsome e in v\n\tstartswith(e, "LD_")\n}\n'
    )
    ((guarded, plain),) = _load_twice(tmp_path, backend, {"nulls": _rule_file("NULLS", ["execve"], body)})
    no_value = make_event("execve", {})
    no_value.raw["args"] = [{"name": "envp"}]
    events = [no_value, make_event("execve", {"envp": None}), make_event("execve", {"envp": ["LD_X=1"]})]
    events += [make_event("execve", {"envp": "LD_X=1"}), make_event("execve", {"envp": ["A=1"]})]
    for event in (*events, *events):
        assert _outcome(guarded, event) == _outcome(plain, event), event.raw["args"]
    # no "value" is undefined, a null value is not (iterating it is an engine error): never one answer for both
    assert _outcome(guarded, events[0]) == ("value", None)
    assert _outcome(guarded, events[1]) != ("value", None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_regex_guards_only_with_a_pattern_the_engine_accepts(tmp_path: Path, backend: str) -> None:
    files = {
        "valid": _rule_file("VALID", ["openat"], FORMS["regex_literal"]),
        "invalid": _rule_file(  # lookahead: neither Rust's regex nor Go's RE2 has it
            "INVALID", ["openat"], 'tracee_match if regex.match(`/abc(?=x)`, helpers.get_tracee_argument("pathname"))\n'
        ),
    }
    pairs = dict((g.sig_id, (g, p)) for g, p in _load_twice(tmp_path, backend, files))
    assert ("test", ("regex", "/a", ("arg", "pathname"))) in pairs["VALID"][0].guard.program[0]
    assert pairs["INVALID"][0].guard.program == ((("stop",),),)
    event = make_event("openat", {"pathname": "/zzz"})
    for guarded, plain in pairs.values():
        assert _outcome(guarded, event) == _outcome(plain, event)


def test_the_shipped_signatures_have_guards_that_rule_out_ordinary_events() -> None:
    rules = {s.metadata.id: s for s in load_signatures(RULES)}
    assert all(s.rule.guard is not None for s in rules.values())  # type: ignore[attr-defined]
    client = rules["TRC-7"].rule.namespace.client  # type: ignore[attr-defined]
    ordinary = [
        make_event("security_file_open", {"pathname": "/etc/ld.so.cache", "flags": 0}, container=True),
        make_event("sched_process_exec", {"pathname": "/bin/sh", "argv": ["sh"]}, container=True),
        make_event("execve", {"pathname": "/bin/sh", "envp": ["PATH=/bin", "HOME=/"]}),
        make_event("ptrace", {"request": "PTRACE_PEEKDATA", "pid": 5}),
    ]
    before = client.stats()["evaluations"]
    for event in ordinary:
        for signature in rules.values():
            if any(s.name == event.name for s in signature.selected_events):
                assert signature.rule.evaluate(event) is None  # type: ignore[attr-defined]
    assert client.stats()["evaluations"] == before  # nothing was sent to the worker
    attack = make_event("security_file_open", {"pathname": "/etc/ld.so.preload", "flags": 1})
    assert rules["TRC-7"].rule.evaluate(attack) is True  # type: ignore[attr-defined]
    assert client.stats()["evaluations"] == before + 1
    # the time budget's window counts evaluations: only the one that reached the worker
    assert rules["TRC-7"].rule.evaluations == 1  # type: ignore[attr-defined]


def test_rules_whose_value_may_be_defined_without_their_bodies_get_no_guard(tmp_path: Path) -> None:
    files = {name: _rule_file(name.upper(), ["openat"], body) for name, body in UNGUARDED.items()}
    files["aliased"] = _rule_file(
        "ALIASED",
        ["openat"],
        'tracee_match if h.get_tracee_argument("a") == 1\n',
        "import rego.v1\n\nimport data.tracee.helpers as h\n",
    )
    for name, text in files.items():
        (tmp_path / f"{name}.rego").write_text(text)
    signatures = load_signatures(tmp_path)
    assert len(signatures) == len(files)
    assert [s.rule.guard for s in signatures] == [None] * len(files)  # type: ignore[attr-defined]


def test_a_helper_module_adding_to_the_helper_package_turns_guards_off(tmp_path: Path) -> None:
    """Another module of package tracee.helpers could add definitions the guards do not know of."""
    (tmp_path / "extra_helpers.rego").write_text(
        'package tracee.helpers\n\nimport rego.v1\n\nis_suspicious(path) if endswith(path, ".preload")\n'
    )
    (tmp_path / "rule.rego").write_text(
        _rule_file("ALIAS_1", ["openat"], 'tracee_match if helpers.get_tracee_argument("pathname") == "/x"\n')
    )
    (signature,) = load_signatures(tmp_path)
    assert isinstance(signature, RegoSignature)
    assert signature.rule.guard is None  # type: ignore[attr-defined]
    client = signature.rule.namespace.client  # type: ignore[attr-defined]
    before = client.stats()["evaluations"]
    assert signature.rule.evaluate(make_event("openat", {"pathname": "/y"})) is None
    assert client.stats()["evaluations"] == before + 1  # asked, not ruled out


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        ("/proc/(?:\\d.+|self)/mem", "/proc/"),
        ("^/etc", ""),
        ("abc*", "ab"),
        ("ab?c", "a"),
        ("a{2}", ""),
        ("a|b", ""),
        ("(a|b)c", ""),
        ("x[|]y", ""),
        ("/usr/\\w+", "/usr/"),
        ("(?i)abc", ""),
        ("a.b", "a"),
    ],
)
def test_regex_literal_is_text_every_match_contains(pattern: str, literal: str) -> None:
    assert regex_literal(pattern) == literal


# --- a signature killing the worker, next to guarded ones ----------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_runaway_signature_is_disabled_while_guarded_ones_keep_their_answers(tmp_path: Path, backend: str) -> None:
    files = {
        "a_guarded": _rule_file(
            "GUARDED_1", ["ptrace"], 'tracee_match if helpers.get_tracee_argument("request") == "PTRACE_TRACEME"\n'
        ),
        "b_runaway": _rule_file(
            "RUNAWAY_1", ["ptrace"], "tracee_match if count([x | some x in numbers.range(1, input.processId)]) > 5\n"
        ),
        "c_plain": _rule_file("PLAIN_1", ["ptrace"], 'tracee_match if input.eventName == "ptrace"\n'),
    }
    for name, text in files.items():
        (tmp_path / f"{name}.rego").write_text(text)
    signatures = load_signatures(tmp_path, rego_engine=backend, rego_time_budget=2, rego_memory_limit=256)
    by_id = {s.metadata.id: s for s in signatures}
    assert by_id["GUARDED-1"].rule.guard is not None  # type: ignore[attr-defined]
    events = [
        make_event("ptrace", {"request": "PTRACE_PEEKDATA"}, processId=10**12),  # RUNAWAY-1 stops the worker
        make_event("ptrace", {"request": "PTRACE_TRACEME"}, processId=10**12),
        make_event("ptrace", {"request": "PTRACE_PEEKDATA"}, processId=3),
    ]
    run = run_engine(events, signatures, raise_errors=False)
    assert [f.sig_metadata.id for f in run] == ["PLAIN-1", "GUARDED-1", "PLAIN-1", "PLAIN-1"]
    assert dict(run.stats.errors_by_signature) == {"RUNAWAY-1": 1}  # disabled at once, then silent
    (error,) = run.errors["RUNAWAY-1"]
    assert "disabled for this run" in str(error)
    assert by_id["RUNAWAY-1"].disabled  # type: ignore[attr-defined]
