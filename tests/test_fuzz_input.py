"""Property tests over hostile input: the reader in every form, the built-in signatures
fed arguments of any type, and the Python rule loader. Bounded in the normal run (the "ci"
Hypothesis profile); ``scripts/fuzz`` runs the same properties much longer.

Properties: nothing raises out of the reader or the engine, every input record is either
delivered or counted as skipped, and the lines and array forms of the same records agree.
"""

from __future__ import annotations

import gzip
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
from pytracee.engine.events import Event, MalformedEventError
from pytracee.engine.plugins import PluginManager
from pytracee.engine.reader import EventReader
from pytracee.engine.testing import builtin_signatures

pytestmark = pytest.mark.usefixtures("quiet_logs")


ARG_NAMES = st.sampled_from(
    [
        "pathname",
        "flags",
        "request",
        "argv",
        "env",
        "cmdpath",
        "addr",
        "prot",
        "alert",
        "dev_name",
        "buf",
        "syscall",
        "name",
    ]
)
_SELECTED = sorted({s.name for sig in builtin_signatures() for s in sig.selected_events if s.name != "*"})
EVENT_NAMES = st.sampled_from(_SELECTED)


@st.composite
def hostile_events(draw: Any) -> dict[str, Any]:
    """An event a built-in signature selects, with arguments of any type and any context."""
    args = [{"name": draw(ARG_NAMES), "value": draw(VALUES)} for _ in range(draw(st.integers(0, 5)))]
    raw: dict[str, Any] = {"eventName": draw(EVENT_NAMES), "args": args}
    for key in ("processName", "containerId", "hostName"):
        if draw(st.booleans()):
            raw[key] = draw(HOSTILE_TEXT)
    if draw(st.booleans()):
        raw["processId"] = draw(st.integers(min_value=-(2**63), max_value=2**63 - 1))
    if draw(st.booleans()):
        raw["returnValue"] = draw(st.integers(min_value=-(2**31), max_value=2**31))
    return raw


def _json_text(value: Any, ascii_only: bool) -> str | None:
    """JSON text as a careless producer writes it (NaN, lone surrogates, big ints included)."""
    try:
        return json.dumps(value, ensure_ascii=ascii_only)
    except (ValueError, UnicodeEncodeError):
        return None


# --- the reader ---------------------------------------------------------------------------------

RECORDS = st.lists(hostile_events(), min_size=1, max_size=12)


@given(RECORDS, st.booleans(), st.booleans(), st.booleans())
def test_every_record_is_read_or_counted_and_the_forms_agree(
    events: list[dict[str, Any]], compress: bool, indent: bool, ascii_only: bool
) -> None:
    texts = [text for text in (_json_text(event, ascii_only) for event in events) if text is not None]
    lines = ("\n".join(texts) + "\n").encode("utf-8", "surrogatepass")
    array = ("[" + (",\n  " if indent else ",").join(texts) + "]").encode("utf-8", "surrogatepass")
    outcomes = []
    for data in (lines, array):
        if compress:
            data = gzip.compress(data)
        reader = EventReader(["-"], stdin=io.BytesIO(data), is_known_event=is_known_event)
        delivered = [event.raw for event in reader]
        assert reader.stats.events == len(delivered)
        assert reader.stats.events + reader.stats.skipped == len(texts)
        outcomes.append((delivered, dict(reader.stats.skipped_by_reason)))
    assert outcomes[0] == outcomes[1]


@given(st.binary(max_size=2048), st.integers(min_value=0, max_value=256))
def test_arbitrary_bytes_never_break_the_reader(data: bytes, limit: int) -> None:
    for stream in (data, gzip.compress(data), b"[" + data, data + b"]" + data):
        reader = EventReader(["-"], stdin=io.BytesIO(stream), max_line_size=limit)
        delivered = sum(1 for _ in reader)
        assert delivered == reader.stats.events >= 0


# --- built-in signatures -------------------------------------------------------------------------------


@given(st.lists(hostile_events(), min_size=1, max_size=8))
def test_builtin_signatures_survive_arguments_of_any_type(events: list[dict[str, Any]]) -> None:
    findings: list[Any] = []
    errors: list[BaseException] = []
    engine = Engine(builtin_signatures(), findings.append, on_error=lambda sig, event, exc: errors.append(exc))
    for raw in events:
        try:
            engine.dispatch(Event(raw))
        except MalformedEventError:
            pass  # unreadable args: counted by the session as a skipped record
    engine.complete()
    assert sum(engine.stats.errors_by_signature.values()) == len(errors)
    # A wrong argument type is the event's problem: a signature may reject it, but never with a bug's exception.
    bugs = [exc for exc in errors if isinstance(exc, (AttributeError, NameError, AssertionError, RecursionError))]
    assert not bugs, bugs


# --- the Python rule loader ------------------------------------------------------------------------------

PYTHON_SNIPPETS = st.sampled_from(
    [
        "import sys\nsys.exit(1)\n",
        "raise KeyboardInterrupt\n",
        "raise SystemExit\n",
        "def f(:\n",
        "x = 1 / 0\n",
        "import no_such_module\n",
        "from pytracee.engine import Signature\nclass S(Signature):\n    pass\n",
        "from pytracee.engine import Signature, SignatureMetadata\nclass S(Signature):\n    metadata = SignatureMetadata(id='', name='')\n",
        "\x00\n",
        "\ufeffprint('bom')\n",
    ]
)


@given(st.lists(st.one_of(PYTHON_SNIPPETS, st.text(max_size=200)), min_size=1, max_size=4))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_the_python_rule_loader_records_every_failure(tmp_path_factory: Any, sources: list[str]) -> None:
    directory: Path = tmp_path_factory.mktemp("rules")
    for index, source in enumerate(sources):
        (directory / f"rule_{index}.py").write_text(source, "utf-8", errors="surrogatepass")
    pm = PluginManager()
    pm.load_path(directory, None)
    signatures = pm.collect_signatures()
    loaded_files = {name for name in pm.plugin_names() if name.startswith("rule_")}
    assert len(loaded_files) + len([e for e in pm.load_errors if "rule_" in e.where]) >= len(sources)
    assert all(loaded.metadata.id for loaded in signatures)
