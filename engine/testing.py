"""Testing signatures with pytest (installed as the ``pytracee`` pytest plugin).

Build events with :func:`make_event`, run them through a signature exactly as the
engine would (selectors, origins, data filters) and assert on the findings::

    from pytracee.engine.testing import assert_fires, assert_silent, make_event

    def test_fires_on_traceme():
        finding = assert_fires(AntiDebugging, [make_event("ptrace", {"request": "PTRACE_TRACEME"})])
        assert finding.event.process_name == "bash"

    def test_quiet_on_attach():
        assert_silent(AntiDebugging, [make_event("ptrace", {"request": "PTRACE_ATTACH"})])

An exception a signature raises (in ``init``, ``on_event``, ``on_signal`` or
``close``) is raised again by the helper once the run is over: the same exception,
with the signature's frames in its traceback (the helpers' frames are hidden from
pytest, as pytest's own helpers are). With ``raise_errors=False`` the helpers
return it instead, in the run's :class:`EngineRun` (the findings, the exceptions by
signature ID and the engine's counters)::

    run = run_signature(AntiDebugging, [make_event("ptrace")], raise_errors=False)  # no request
    assert run == [] and run.stats.events == 1 and run.stats.errors_by_signature == {"MY-1": 1}
    assert isinstance(run.errors["MY-1"][0], ArgumentError)

The same helpers are fixtures (``make_event``, ``run_signature``, ``run_engine``)
for tests that prefer them, and :func:`load_signatures` loads a rules file or
directory (Python, or any rule language a plugin supports) so rule files are
tested like Python signatures.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import pytest

from .catalogue import event_id
from .context.state import ContextSettings, EventContext
from .dispatch import Engine, EngineStats, LoadedSignature
from .events import Event
from .findings import Finding
from .session import SessionConfig
from .signature import Signature

__all__ = [
    "EngineRun",
    "assert_fires",
    "assert_silent",
    "builtin_signatures",
    "load_signatures",
    "make_event",
    "run_engine",
    "run_signature",
]

_pids = itertools.count(4242)
TEST_CONTAINER_ID = "3f1c0a9d5b7e2c4a6f8e0d1b3c5a7e9f1d3b5c7a9e1f3d5b7c9a1e3f5d7b9c1a"

SignatureLike = Signature | type[Signature] | LoadedSignature
EventLike = Event | Mapping[str, Any]

#: How many exceptions of each signature an :class:`EngineRun` keeps (all of them are counted).
KEPT_ERRORS_PER_SIGNATURE: Final = 100
#: The engine's modules: their frames between the engine's ``except`` and a signature's code are cut.
_ENGINE_MODULES: Final = frozenset({Engine.__module__, Signature.__module__})


class EngineRun(list[Finding]):
    """What :func:`run_engine` and :func:`run_signature` return: the findings, in order
    (it is a list of them), with the run's errors and counters.

    :ivar stats: the engine's counters (:class:`~pytracee.engine.dispatch.EngineStats`):
        ``events`` dispatched, ``findings``, ``findings_by_signature`` and
        ``errors_by_signature`` (signature ID -> how many times it raised).
    :ivar errors: the exceptions each signature raised, by signature ID, in the order
        they were raised (the first :data:`KEPT_ERRORS_PER_SIGNATURE` of each); their
        tracebacks start in the signature's code.
    """

    __slots__ = ("_first", "errors", "stats")

    def __init__(self, findings: Iterable[Finding], stats: EngineStats, errors: dict[str, list[BaseException]]) -> None:
        super().__init__(findings)
        self.stats = stats
        self.errors = errors
        first = next(iter(errors.values()), [None])[0]
        self._first = (first, first.__traceback__) if first is not None else None

    def raise_errors(self) -> None:
        """Raise the first exception a signature raised, if any: the same exception, from the signature's code.

        A note on it counts the other errors of the run.
        """
        __tracebackhide__ = True
        if self._first is None:
            return
        exc, traceback = self._first
        total = sum(self.stats.errors_by_signature.values())
        note = (
            f"pytracee: the first of {total} signature errors in this run "
            f"({', '.join(f'{sig_id}: {n}' for sig_id, n in self.stats.errors_by_signature.items())}); "
            "run_engine(..., raise_errors=False) returns them all"
        )
        if total > 1 and note not in getattr(exc, "__notes__", ()):
            exc.add_note(note)
        raise exc.with_traceback(traceback)


def _from_the_signature(traceback: TracebackType | None) -> TracebackType | None:
    """``traceback`` without the engine's frames above the signature's (its last frame is always kept)."""
    while (
        traceback is not None
        and traceback.tb_next is not None
        and traceback.tb_frame.f_globals.get("__name__") in _ENGINE_MODULES
    ):
        traceback = traceback.tb_next
    return traceback


#: The start time of the processes make_event invents (one per pid).
_STARTED: Final = time.time_ns() - 3_600_000_000_000


def make_event(
    name: str,
    args: Mapping[str, Any] | None = None,
    *,
    container: bool | str = False,
    **fields: Any,
) -> Event:
    """A complete Tracee event with realistic context, for tests.

    :param name: the event name, e.g. ``"security_file_open"``.
    :param args: argument values by name, in order (raw or parse-arguments form).
    :param container: ``True`` (or a container id) for an event from a started
        container, which makes its origin ``"container"``.
    :param fields: ``trace.Event`` JSON fields to set, e.g. ``processName="nginx"``.
    """
    pid = fields.pop("processId") if "processId" in fields else next(_pids)
    raw: dict[str, Any] = {
        "timestamp": time.time_ns(),
        "threadStartTime": _STARTED + pid * 1000,  # one start time per pid: the process tree sees one process
        "processorId": 0,
        "processId": pid,
        "cgroupId": 1,
        "threadId": pid,
        "parentProcessId": 1,
        "hostProcessId": pid,
        "hostThreadId": pid,
        "hostParentProcessId": 1,
        "userId": 0,
        "mountNamespace": 4026531840,
        "pidNamespace": 4026531836,
        "processName": "bash",
        "executable": {"path": "/usr/bin/bash"},
        "hostName": "test-host",
        "containerId": "",
        "container": {},
        "kubernetes": {},
        "eventId": str(event_id(name) or 0),
        "eventName": name,
        "argsNum": len(args or {}),
        "returnValue": 0,
        "syscall": "",
        "stackAddresses": None,
        "contextFlags": {"containerStarted": False, "isCompat": False},
        "args": [{"name": key, "type": "", "value": value} for key, value in (args or {}).items()],
    }
    if container:
        container_id = container if isinstance(container, str) else TEST_CONTAINER_ID
        raw["containerId"] = container_id
        raw["container"] = {"id": container_id, "name": "test", "image": "docker.io/library/alpine:3.20"}
        raw["contextFlags"] = {"containerStarted": True, "isCompat": False}
    raw.update(fields)
    return Event(raw)


def _as_event(item: EventLike) -> Event:
    return item if isinstance(item, Event) else Event(dict(item))


def _as_signatures(signatures: SignatureLike | Iterable[SignatureLike]) -> list[Signature | LoadedSignature]:
    items = [signatures] if isinstance(signatures, (Signature, type, LoadedSignature)) else list(signatures)
    return [item() if isinstance(item, type) else item for item in items]


def run_engine(
    events: Iterable[EventLike],
    signatures: SignatureLike | Iterable[SignatureLike] | None = None,
    *,
    raise_errors: bool = True,
) -> EngineRun:
    """Run ``events`` through an engine with ``signatures`` (all built-ins when ``None``).

    The run is a replay's: a signature that raises is logged and counted and the
    others go on; at the end signatures get ``SourceComplete`` and are closed.

    :param raise_errors: then raise the first exception a signature raised (the same
        exception, from the signature's code; see :meth:`EngineRun.raise_errors`).
        With ``False``, the exceptions are returned in the result.
    :returns: the findings (a list), with the run's errors and counters.
    """
    __tracebackhide__ = True
    findings: list[Finding] = []
    errors: dict[str, list[BaseException]] = {}

    def on_error(loaded: LoadedSignature, event: Event | None, exc: BaseException) -> None:
        kept = errors.setdefault(loaded.metadata.id, [])
        if len(kept) < KEPT_ERRORS_PER_SIGNATURE:
            if exc.__traceback__ is None and exc.__cause__ is not None:  # made by the engine: RuleAbortError
                exc.__cause__.with_traceback(_from_the_signature(exc.__cause__.__traceback__))
            kept.append(exc.with_traceback(_from_the_signature(exc.__traceback__)))

    engine = Engine(
        _as_signatures(signatures) if signatures is not None else builtin_signatures(),
        findings.append,
        on_error=on_error,
    )
    context = EventContext(ContextSettings())  # the process tree only: event.process works as in a run
    for item in events:
        event = _as_event(item)
        context.observe(event)
        engine.dispatch(event)
    engine.complete()
    run = EngineRun(findings, engine.stats, errors)
    if raise_errors:
        run.raise_errors()
    return run


def run_signature(signature: SignatureLike, events: Iterable[EventLike], *, raise_errors: bool = True) -> EngineRun:
    """Run ``events`` through one signature as the engine would; see :func:`run_engine`."""
    __tracebackhide__ = True
    return run_engine(events, [signature], raise_errors=raise_errors)


def assert_fires(
    signature: SignatureLike,
    events: Iterable[EventLike],
    data: Mapping[str, Any] | None = None,
    *,
    count: int | None = None,
) -> Finding:
    """Assert the signature fires on ``events``; returns the last finding.

    :param data: expected items of the finding's data (other keys may exist).
    :param count: the exact number of findings expected.
    :raises AssertionError: when it does not; an exception the signature raised is raised as itself.
    """
    __tracebackhide__ = True
    findings = run_signature(signature, events)
    if not findings:
        raise AssertionError(f"{_name(signature)} did not fire")
    if count is not None and len(findings) != count:
        raise AssertionError(f"{_name(signature)} fired {len(findings)} times, expected {count}: {_show(findings)}")
    if data is not None:
        actual = findings[-1].data or {}
        wrong = {key: actual.get(key, "<missing>") for key, value in data.items() if actual.get(key) != value}
        if wrong:
            raise AssertionError(f"{_name(signature)} fired with data {actual!r}; expected {dict(data)!r}")
    return findings[-1]


def assert_silent(signature: SignatureLike, events: Iterable[EventLike]) -> None:
    """Assert the signature does not fire on ``events`` (an exception it raises is raised as itself)."""
    __tracebackhide__ = True
    findings = run_signature(signature, events)
    if findings:
        raise AssertionError(f"{_name(signature)} fired unexpectedly: {_show(findings)}")


def builtin_signatures() -> list[Signature]:
    """Fresh instances of the built-in signatures enabled by default (Tracee's and pytracee's own)."""
    # pytracee.signatures is found through the package's import hook, which type checkers cannot follow
    from pytracee.signatures import BUILTIN_SIGNATURES, PYTRACEE_SIGNATURES  # type: ignore[import-not-found,unused-ignore]

    return [cls() for cls in (*BUILTIN_SIGNATURES, *PYTRACEE_SIGNATURES) if cls.enabled_by_default]


def load_signatures(path: str | Path, **options: Any) -> list[Signature]:
    """The signatures of a rules file or directory, loaded as ``--rules-dir`` would.

    ``options`` are command-line options by their attribute name, e.g.
    ``load_signatures("rules/", rego_engine="opa")``.

    :raises AssertionError: when anything in it fails to load.
    """
    config = SessionConfig(options=argparse.Namespace(**options))
    pm = config.pluginmanager
    pm.load_plugins(installed=True)  # the rule-language plugins read rule files
    pm.hook.tracee_configure.call_historic(kwargs={"config": config})
    already = set(pm.plugin_names())
    pm.load_path(Path(path), config)
    loaded = [s for s in pm.collect_signatures() if s.plugin not in already]
    if pm.load_errors:
        raise AssertionError("could not load: " + "; ".join(map(str, pm.load_errors)))
    return [s.signature for s in loaded]


def _name(signature: SignatureLike) -> str:
    if isinstance(signature, LoadedSignature):
        return signature.metadata.id
    meta = getattr(signature, "metadata", None)
    return str(getattr(meta, "id", None) or getattr(signature, "__name__", repr(signature)))


def _show(findings: Sequence[Finding]) -> str:
    return ", ".join(f"{f.sig_metadata.id} on {f.event.name} data={f.data!r}" for f in findings)


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(name="make_event")
def make_event_fixture() -> Callable[..., Event]:
    """The :func:`make_event` factory."""
    return make_event


@pytest.fixture(name="run_signature")
def run_signature_fixture() -> Callable[..., EngineRun]:
    """:func:`run_signature`: run events through one signature."""
    return run_signature


@pytest.fixture(name="run_engine")
def run_engine_fixture() -> Callable[..., EngineRun]:
    """:func:`run_engine`: run events through several signatures (all built-ins by default)."""
    return run_engine
