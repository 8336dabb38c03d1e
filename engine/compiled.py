"""The engine's compiled modules: which they are, and whether the compiled code is current.

The modules on a replay's hot path (:data:`MODULES`) are plain, strictly typed Python that
the package build (``setup.py``) also compiles into C extensions with mypyc; they then run
about an eighth faster, with the same behaviour. Nothing else changes: where the build
could not compile them (no C compiler, no mypyc) the package installs without them and
the sources run.

A compiled module shadows its source (Python imports an extension before a ``.py`` file
of the same name), so an edited checkout that was not rebuilt would silently run the old
code. The build therefore writes the digest of the sources it compiled beside them
(:data:`DIGEST_FILE`), and :func:`install` -- run first by ``pytracee.engine`` -- compares
it with the sources present. When they differ, or when ``PYTRACEE_PURE_PYTHON=1`` is set,
every module of the set is imported from its source, and :func:`status` says why.
``scripts/setup.sh`` (or ``pip install``) rebuilds them.

This module uses the standard library only: ``setup.py`` loads it by path at build time.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Final

__all__ = ["DIGEST_FILE", "GROUP", "MODULES", "PURE_ENV", "install", "let_signals_in", "source_digest", "status"]

#: The compiled modules, as paths relative to the engine's directory (``pytracee.engine``).
#: Each one is mypy-strict; none holds a ``@hookimpl`` or a class meant to be subclassed by
#: signature authors but :class:`~.selectors.EventSelector`'s plain use.
MODULES: Final = (
    "context/proctree.py",
    "context/state.py",
    "dispatch.py",
    "filtermemo.py",
    "parsers.py",
    "prefilter.py",
    "reader.py",
    "records.py",
    "selectors.py",
    "session.py",
)
#: The shared library holding the compiled code of all of them (mypyc's group).
GROUP: Final = "pytracee.engine._compiled"
#: Written by the build beside the compiled modules: the digest of the sources compiled.
DIGEST_FILE: Final = "_compiled.sha256"
#: Set to ``1`` to run the sources even where compiled modules are current.
PURE_ENV: Final = "PYTRACEE_PURE_PYTHON"

_ENGINE_DIR: Final = Path(__file__).resolve().parent
_state = "not checked"


def module_name(relative: str) -> str:
    """``"context/state.py"`` -> ``"pytracee.engine.context.state"``."""
    return "pytracee.engine." + relative.removesuffix(".py").replace("/", ".")


def source_digest(engine_dir: Path, modules: Sequence[str] = MODULES) -> str:
    """The SHA-256 over the named sources (their names and contents), as the build records it."""
    digest = hashlib.sha256()
    for relative in modules:
        digest.update(relative.encode() + b"\0")
        digest.update((engine_dir / relative).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _compiled_present(engine_dir: Path) -> bool:
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return any((engine_dir / relative).with_suffix(suffix).exists() for relative in MODULES)


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Imports the set's modules from their ``.py`` files, ahead of any compiled one."""

    def __init__(self, engine_dir: Path) -> None:
        self.sources = {module_name(relative): engine_dir / relative for relative in MODULES}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.sources.get(fullname)
        if source is None:
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def check(engine_dir: Path = _ENGINE_DIR) -> str:
    """Why the sources must run instead of compiled modules (``""``: the compiled ones are current)."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return f"sources ({PURE_ENV} is set)"
    recorded = engine_dir / DIGEST_FILE
    if not recorded.exists():
        if _compiled_present(engine_dir):
            return "sources (compiled modules without their digest: rebuild them)"
        return "sources (not compiled)"
    try:
        current = source_digest(engine_dir)
    except OSError as exc:  # a source missing: the compiled modules are all there is
        return f"compiled (sources unreadable: {exc.strerror})"
    if recorded.read_text().strip() != current:
        return "sources (the compiled modules are older than their sources: rebuild with scripts/setup.sh)"
    return ""


def install(engine_dir: Path = _ENGINE_DIR) -> None:
    """Decide, once, whether the set is imported compiled or from its sources (before any of it is)."""
    global _state
    if _state != "not checked":
        return
    why = check(engine_dir)
    if why.startswith("sources") and _compiled_present(engine_dir):
        sys.meta_path.insert(0, _SourceFinder(engine_dir))
        if PURE_ENV not in why:
            logging.getLogger(__name__).warning("pytracee: running the engine's %s", why)
    _state = why or "compiled"


def let_signals_in() -> None:
    """Let Python run the signal handlers of signals that arrived (Ctrl-C, SIGTERM).

    The interpreter runs them between two instructions of interpreted code; compiled code never
    enters it. A compiled loop that calls only C functions (reading ``/dev/zero``, say) calls
    this now and then: entering an interpreted function runs the pending handlers, whose
    exception then propagates from here.
    """


def status() -> str:
    """``"compiled"``, or ``"sources (...)"`` with the reason the sources run."""
    return _state
