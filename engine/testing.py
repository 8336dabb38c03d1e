"""Testing signatures with pytest (installed as the ``pytracee`` pytest plugin).

Build events with :func:`make_event`, run them through a signature exactly as the
engine would (selectors, origins, data filters) and assert on the findings::

    from pytracee.engine.testing import assert_fires, assert_silent, make_event

    def test_fires_on_traceme():
        finding = assert_fires(AntiDebugging, [make_event("ptrace", {"request": "PTRACE_TRACEME"})])
        assert finding.event.process_name == "bash"

    def test_quiet_on_attach():
        assert_silent(AntiDebugging, [make_event("ptrace", {"request": "PTRACE_ATTACH"})])

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
from typing import Any

import pytest

from .catalogue import event_id
from .dispatch import Engine, LoadedSignature
from .events import Event
from .findings import Finding
from .session import SessionConfig
from .signature import Signature

__all__ = [
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
        "threadStartTime": time.time_ns() - 1_000_000,
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
    events: Iterable[EventLike], signatures: SignatureLike | Iterable[SignatureLike] | None = None
) -> list[Finding]:
    """Run ``events`` through an engine with ``signatures`` (all built-ins when ``None``); returns the findings.

    Ends the run as a replay does: signatures get ``SourceComplete`` and are closed.
    """
    findings: list[Finding] = []
    engine = Engine(_as_signatures(signatures) if signatures is not None else builtin_signatures(), findings.append)
    for item in events:
        engine.dispatch(_as_event(item))
    engine.complete()
    errors = dict(engine.stats.errors_by_signature)
    if errors:
        raise AssertionError(f"signatures raised errors (see the log): {errors}")
    return findings


def run_signature(signature: SignatureLike, events: Iterable[EventLike]) -> list[Finding]:
    """Run ``events`` through one signature as the engine would; returns its findings."""
    return run_engine(events, [signature])


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
    """
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
    """Assert the signature does not fire on ``events``."""
    findings = run_signature(signature, events)
    if findings:
        raise AssertionError(f"{_name(signature)} fired unexpectedly: {_show(findings)}")


def builtin_signatures() -> list[Signature]:
    """Fresh instances of the built-in signatures enabled by default (Tracee's and pytracee's own)."""
    from pytracee.signatures import BUILTIN_SIGNATURES, PYTRACEE_SIGNATURES

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
    return getattr(meta, "id", None) or getattr(signature, "__name__", repr(signature))


def _show(findings: Sequence[Finding]) -> str:
    return ", ".join(f"{f.sig_metadata.id} on {f.event.name} data={f.data!r}" for f in findings)


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(name="make_event")
def make_event_fixture() -> Callable[..., Event]:
    """The :func:`make_event` factory."""
    return make_event


@pytest.fixture(name="run_signature")
def run_signature_fixture() -> Callable[..., list[Finding]]:
    """:func:`run_signature`: run events through one signature."""
    return run_signature


@pytest.fixture(name="run_engine")
def run_engine_fixture() -> Callable[..., list[Finding]]:
    """:func:`run_engine`: run events through several signatures (all built-ins by default)."""
    return run_engine
