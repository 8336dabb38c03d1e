"""Property tests over the rule languages: the bundled Rego and CEL rules fed hostile
events on every backend, and the Rego and CEL loaders fed hostile rule files.

Hostile events go the way a user's input goes: as JSON text through the reader (so only what
the reader accepts reaches regorus, OPA, cel-expr-python or cel-python), then through the
engine. Properties: the process never dies (a crash in native code would end the test run),
every failure is a counted signature error of the rule's own kind, and every rule file is
either loaded or reported as a load error naming it.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hostile_values import HOSTILE_TEXT, VALUES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytracee.engine.catalogue import is_known_event
from pytracee.engine.dispatch import Engine
from pytracee.engine.events import Event
from pytracee.engine.reader import EventReader
from pytracee.engine.session import SessionConfig
from pytracee.engine.signature import Signature
from pytracee.engine.testing import load_signatures

RULES = Path(__file__).parent.parent / "rules"
BACKENDS = [("rego", "regorus"), ("rego", "opa"), ("cel", "cel-expr-python"), ("cel", "cel-python")]
FIXTURE_SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


pytestmark = pytest.mark.usefixtures("quiet_logs")


@pytest.fixture(scope="module", params=BACKENDS, ids=[engine for _, engine in BACKENDS])
def bundled_rules(request: pytest.FixtureRequest) -> tuple[str, list[Signature]]:
    """The bundled rules of one language, loaded once on one backend."""
    language, engine = request.param
    signatures = load_signatures(RULES / language, **{f"{language}_engine": engine})
    assert signatures, f"no bundled {language} rules found"
    return language, signatures


def _selected_names(signatures: list[Signature]) -> list[str]:
    return sorted({s.name for sig in signatures for s in sig.get_selected_events() if s.name != "*"})


@st.composite
def hostile_event_texts(draw: Any, names: list[str]) -> str:
    """One JSON text of an event a bundled rule selects, its values chosen by an attacker."""
    args = [
        {
            "name": draw(st.sampled_from(["pathname", "flags", "request", "argv", "prot", "buf", "name", "dev_name"])),
            "value": draw(VALUES),
        }
        for _ in range(draw(st.integers(0, 4)))
    ]
    raw: dict[str, Any] = {"eventName": draw(st.sampled_from(names)), "args": args}
    for key in ("processName", "containerId", "hostName", "executable"):
        if draw(st.booleans()):
            raw[key] = draw(HOSTILE_TEXT) if key != "executable" else {"path": draw(HOSTILE_TEXT)}
    if draw(st.booleans()):
        raw["processId"] = draw(st.integers(min_value=-(2**70), max_value=2**70))
    try:
        return json.dumps(raw, ensure_ascii=draw(st.booleans()))
    except (ValueError, UnicodeEncodeError):
        return json.dumps(raw, ensure_ascii=True)


@given(data=st.data())
@FIXTURE_SETTINGS
def test_bundled_rules_survive_hostile_events(bundled_rules: tuple[str, list[Signature]], data: st.DataObject) -> None:
    _language, signatures = bundled_rules
    texts = data.draw(st.lists(hostile_event_texts(_selected_names(signatures)), min_size=1, max_size=6))
    stream = ("\n".join(texts) + "\n").encode("utf-8", "surrogatepass")
    reader = EventReader(["-"], stdin=io.BytesIO(stream), is_known_event=is_known_event)
    errors: list[BaseException] = []
    engine = Engine(signatures, lambda finding: None, on_error=lambda sig, event, exc: errors.append(exc))
    for event in reader:
        engine.dispatch(event)
    assert reader.stats.events + reader.stats.skipped == len(texts)
    assert sum(engine.stats.errors_by_signature.values()) == len(errors)
    # Odd values make a rule evaluate to nothing; they must never reach a bug of the engine's own.
    bugs = [exc for exc in errors if isinstance(exc, (AttributeError, NameError, TypeError, KeyError, RecursionError))]
    assert not bugs, bugs


# --- loaders ----------------------------------------------------------------------------------------

REGO_HEADER = (
    'package tracee.FUZZ_{n}\n\nimport rego.v1\n\n__rego_metadoc__ := {{"id": "FUZZ-{n}", "name": "fuzz"}}\n\n'
    'tracee_selected_events contains s if {{ some s in [{{"source": "tracee", "name": "ptrace"}}] }}\n\n'
)
REGO_BODIES = st.sampled_from(
    [
        'tracee_match if { input.eventName == "ptrace" }\n',
        "tracee_match if { count([x | some x in numbers.range(1, 100000000)]) > 5 }\n",
        'tracee_match if { x := http.send({"method": "GET", "url": "http://127.0.0.1:1"}); x }\n',
        "tracee_match if { opa.runtime().env.HOME }\n",
        "tracee_match if { f(1) }\nf(x) := f(x + 1)\n",
        'tracee_match := {"a": tracee_match}\n',
        "tracee_match if {\n",
        'tracee_match if { walk(input, [p, v]); v == "\\u0000" }\n',
        'tracee_match if { regex.match("(a+)+$", concat("", ["a" | some _ in numbers.range(1, 50)])) }\n',
        'tracee_match if { input.args[_].value == "\\ud800" }\n',
        "import data.no.such.thing\ntracee_match if { thing }\n",
        "",
    ]
)

CEL_CONDITIONS = st.sampled_from(
    [
        'getEventData("pathname") != ""',
        'size(getEventData("pathname").replace("", "' + "a" * 128 + '").replace("", "' + "a" * 128 + '")) > 0',
        'getEventData("argv").all(a, getEventData("argv").all(b, a + b != ""))',
        "no_such_function(1)",
        "1 +",
        '"\\ud800" == getEventData("pathname")',
        "[" * 200 + "]" * 200,
        "true",
        "1",
    ]
)


def _cel_document(n: int, condition: str, extra: str) -> str:
    return (
        f"type: detector\nid: FUZZ-{n}\nproduced_event:\n  name: fuzz_{n}\nthreat:\n  name: fuzz\n  severity: info\n"
        f"requirements:\n  events:\n    - name: ptrace\nconditions:\n  - {json.dumps(condition)}\n{extra}"
    )


CEL_EXTRAS = st.sampled_from(
    [
        "",
        "properties:\n  a: &a [x, x, x, x, x, x, x, x]\n  b: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n  c: [*b, *b, *b, *b, *b, *b, *b, *b]\n",
        "properties: !!python/object/apply:os.system [id]\n",
        "---\nsecond: document\n",
        "requirements: 7\n",
        "\t\x00\n",
    ]
)


def _load_with_errors(directory: Path, **options: Any) -> tuple[set[str], list[str]]:
    """Load ``directory`` as --rules-dir does: the IDs loaded and the load errors' locations."""
    config = SessionConfig(options=argparse.Namespace(**options))
    pm = config.pluginmanager
    pm.load_plugins(installed=True)
    pm.hook.tracee_configure.call_historic(kwargs={"config": config})
    already = set(pm.plugin_names())
    pm.load_path(directory, config)
    ids = {s.metadata.id for s in pm.collect_signatures() if s.plugin not in already}
    return ids, [error.where for error in pm.load_errors]


@pytest.mark.parametrize("engine", ["regorus", "opa"])
@given(bodies=st.lists(st.one_of(REGO_BODIES, st.text(max_size=120)), min_size=1, max_size=3))
@FIXTURE_SETTINGS
def test_the_rego_loader_loads_or_reports_every_file(tmp_path_factory: Any, engine: str, bodies: list[str]) -> None:
    directory: Path = tmp_path_factory.mktemp("rego")
    for n, body in enumerate(bodies):
        (directory / f"rule_{n}.rego").write_text(REGO_HEADER.format(n=n) + body, "utf-8", errors="surrogatepass")
    ids, failed = _load_with_errors(directory, rego_engine=engine)
    for n in range(len(bodies)):
        assert (f"FUZZ-{n}" in ids) != any(f"rule_{n}.rego" in where for where in failed), (n, ids, failed)


@pytest.mark.parametrize("engine", ["cel-expr-python", "cel-python"])
@given(documents=st.lists(st.tuples(st.one_of(CEL_CONDITIONS, HOSTILE_TEXT), CEL_EXTRAS), min_size=1, max_size=3))
@FIXTURE_SETTINGS
def test_the_cel_loader_loads_or_reports_every_file(
    tmp_path_factory: Any, engine: str, documents: list[tuple[str, str]]
) -> None:
    directory: Path = tmp_path_factory.mktemp("cel")
    for n, (condition, extra) in enumerate(documents):
        text = _cel_document(n, condition, extra)
        (directory / f"rule_{n}.yaml").write_text(text, "utf-8", errors="surrogatepass")
    ids, failed = _load_with_errors(directory, cel_engine=engine)
    for n in range(len(documents)):
        assert (f"FUZZ-{n}" in ids) != any(f"rule_{n}.yaml" in where for where in failed), (n, ids, failed)


def test_a_loaded_hostile_rule_is_evaluated_without_harm(tmp_path: Path) -> None:
    """The control case of the loader properties: a rule that loads also runs on a hostile event."""
    (tmp_path / "ok.yaml").write_text(_cel_document(0, 'getEventData("pathname") == "\\u001b[2J"', ""))
    (signature,) = load_signatures(tmp_path)
    found: list[Any] = []
    engine = Engine([signature], found.append)
    engine.dispatch(Event({"eventName": "ptrace", "args": [{"name": "pathname", "value": "\x1b[2J"}]}))
    assert len(found) == 1
