"""The engine's compiled modules (engine/compiled.py): built here, current, same answers as
their sources, and never run in place of sources they no longer match."""

from __future__ import annotations

import copy
import importlib
import importlib.machinery
import os
import pickle
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from conftest import REPO, tracee_rules
from pytracee.engine import Event, SockAddr, compiled, select
from pytracee.engine.events import LazyEvent
from pytracee.engine.selectors import ArgPattern

ROOT = REPO  # the package directory: engine/ and signatures/
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
EVENTS = REPO / "examples" / "events"


def test_this_checkout_runs_the_compiled_modules() -> None:
    """scripts/setup.sh built them, so the suite tests what users run (a stale or missing
    build says here how to rebuild)."""
    assert compiled.status() == "compiled"
    for relative in compiled.MODULES:
        module = importlib.import_module(compiled.module_name(relative))
        assert module.__file__ is not None and module.__file__.endswith(SUFFIX), module.__file__


def run_with(env_value: str, *args: str) -> subprocess.CompletedProcess[str]:
    return tracee_rules(*args, env={**os.environ, compiled.PURE_ENV: env_value})


@pytest.mark.parametrize(
    "args",
    [
        ("--input", str(EVENTS / "demo.jsonl"), "--output-template", "rawjson"),
        ("--input", str(EVENTS / "demo-parse-arguments.jsonl.gz"), "--output-template", "rawjson", "--workers", "2"),
        ("--input", str(EVENTS / "runc-ld-library-path.jsonl"), "--rules", "all", "--output-template", "rawjson"),
    ],
)
def test_compiled_and_sources_find_the_same(args: tuple[str, ...]) -> None:
    compiled_run, source_run = run_with("0", *args), run_with("1", *args)
    assert compiled_run.returncode == source_run.returncode == 0, compiled_run.stderr + source_run.stderr
    assert compiled_run.stdout.count("\n") >= 1  # some findings: the comparison means something
    assert sorted(compiled_run.stdout.splitlines()) == sorted(source_run.stdout.splitlines())
    assert compiled_run.stderr == source_run.stderr


def test_pure_python_runs_every_module_from_its_source() -> None:
    probe = (
        "import importlib; from pytracee.engine import compiled; print(compiled.status()); "
        "print(all(importlib.import_module(compiled.module_name(m)).__file__.endswith('.py') for m in compiled.MODULES))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, compiled.PURE_ENV: "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.splitlines() == [f"sources ({compiled.PURE_ENV} is set)", "True"]
    assert out.stderr == ""  # asked for: no warning


@pytest.fixture
def engine_copy(tmp_path: Path) -> Path:
    """The compiled set's sources with a stand-in for one compiled module and a current digest."""
    for relative in compiled.MODULES:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, tmp_path / relative)
    (tmp_path / "engine" / "dispatch.py").with_suffix(SUFFIX).write_bytes(b"")
    (tmp_path / compiled.DIGEST_FILE).write_text(compiled.source_digest(tmp_path) + "\n")
    return tmp_path


def test_a_current_build_is_used(engine_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    assert compiled.check(engine_copy) == ""


def test_an_edited_source_makes_the_sources_run(engine_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    with (engine_copy / "signatures" / "syscall_context.py").open("a") as source:
        source.write("\n# edited after the build\n")
    assert compiled.check(engine_copy).startswith("sources (the compiled modules are older than their sources")


def test_compiled_modules_without_a_digest_are_not_trusted(engine_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    (engine_copy / compiled.DIGEST_FILE).unlink()
    assert compiled.check(engine_copy) == "sources (compiled modules without their digest: rebuild them)"
    (engine_copy / "engine" / "dispatch.py").with_suffix(SUFFIX).unlink()
    assert compiled.check(engine_copy) == "sources (not compiled)"


def test_the_environment_variable_forces_the_sources(engine_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(compiled.PURE_ENV, "1")
    assert compiled.check(engine_copy) == f"sources ({compiled.PURE_ENV} is set)"
    monkeypatch.setenv(compiled.PURE_ENV, "0")
    assert compiled.check(engine_copy) == ""


def test_a_stale_build_runs_the_sources_and_says_so(engine_copy: Path) -> None:
    """The finder the engine installs imports the set from the sources when the build is stale:
    here, a copy of the engine whose ``dispatch.py`` gained a marker after its build."""
    dispatch = engine_copy / "engine" / "dispatch.py"
    dispatch.write_text((ROOT / "engine" / "dispatch.py").read_text() + "\nEDITED = True\n")
    probe = (
        "import sys; from pathlib import Path; from pytracee.engine import compiled; "
        f"sys.meta_path.insert(0, compiled._SourceFinder(Path({str(engine_copy)!r}))); "
        "import pytracee.engine.dispatch as d; print(d.__file__, getattr(d, 'EDITED', False))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(dispatch), "True"]


@pytest.mark.parametrize(
    "value",
    [
        select("security_file_open", "container", pathname=["/etc/*", "*/shadow", "*cron*", "/bin/sh"]),
        select("sched_process_exec").filters.get("x", ArgPattern.parse("*")),
        SockAddr("AF_INET", "127.0.0.1", "443"),
    ],
    ids=["selector", "pattern", "sockaddr"],
)
def test_frozen_values_pickle_and_copy(value: object) -> None:
    """The Rego worker process receives selectors; compiled, a frozen dataclass needs its own
    way to be rebuilt."""
    for copied in (pickle.loads(pickle.dumps(value)), copy.copy(value), copy.deepcopy(value)):  # noqa: S301
        assert copied == value and type(copied) is type(value)


def test_events_pickle_as_their_json_and_place() -> None:
    """A finding's event leaves a ``--workers`` process pickled: its JSON object and where it was
    read, without the syscall's event (it stays in the process that read it); a lazy event
    arrives decoded."""
    raw = {"eventName": "openat", "processId": 7, "args": [{"name": "pathname", "value": "/etc/shadow"}]}
    event = Event(raw, "tracee", "f.jsonl", 3, orjson.dumps(raw))
    event.syscall_event = Event({"eventName": "openat"})
    lazy = LazyEvent({"eventName": "openat"}, orjson.dumps(raw), "tracee", "f.jsonl", 4)
    for original, line in ((event, 3), (lazy, 4)):
        copied = pickle.loads(pickle.dumps(original))  # noqa: S301 - our own bytes
        assert type(copied) is Event
        assert copied.raw == raw and copied.location == f"f.jsonl:{line}" and copied.text == orjson.dumps(raw)
        assert copied.syscall_event is None and copied.context is None
        assert copied.str_arg("pathname") == "/etc/shadow"


def test_the_build_compiles_nothing_when_asked_not_to(monkeypatch: pytest.MonkeyPatch) -> None:
    """``PYTRACEE_COMPILE=0`` at build time: no compiled extension, the sources run."""
    monkeypatch.setenv("PYTRACEE_COMPILE", "0")
    monkeypatch.setattr(sys, "argv", ["setup.py", "--version"])  # setup() answers and does nothing else
    monkeypatch.chdir(REPO)
    build = runpy.run_path(str(REPO / "setup.py"))
    assert build["compiled_engine"]() == []
