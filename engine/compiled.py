"""The compiled modules: which they are, and whether the compiled code is current.

The modules on a replay's hot path (:data:`MODULES`: the engine's reader, ``Event``, routing and
context, the built-in syscall context) are plain, strictly typed Python that the package build
(``setup.py``) also compiles into C extensions with mypyc; a replay then runs 14-18% fewer
instructions, with the same behaviour. Nothing else changes: where the build
could not compile them (no C compiler, no mypyc) the package installs without them and
the sources run.

A compiled module shadows its source (Python imports an extension before a ``.py`` file
of the same name), so an edited checkout that was not rebuilt would silently run the old
code. The build therefore writes the digest of the sources it compiled beside the engine's
(:data:`DIGEST_FILE`), and :func:`install` -- run first by ``pytracee.engine`` -- compares
it with the sources present. When they differ, or when ``PYTRACEE_PURE_PYTHON=1`` is set,
every module of the set is imported from its source, and :func:`status` says why.
``scripts/setup.sh`` (or ``pip install``) rebuilds them.

This module uses the standard library only: ``setup.py`` loads it by path at build time.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Final

__all__ = ["DIGEST_FILE", "GROUP", "MODULES", "PURE_ENV", "install", "let_signals_in", "source_digest", "status"]

#: The compiled modules, as paths relative to the package's directory (``pytracee/``: the
#: checkout's root). Each one is mypy-strict; none holds a ``@hookimpl`` (a compiled function
#: takes no marker) nor a class that signature authors subclass (``Event`` is read, not subclassed).
MODULES: Final = (
    "engine/context/proctree.py",
    "engine/context/state.py",
    "engine/dispatch.py",
    "engine/events.py",
    "engine/filtermemo.py",
    "engine/parsers.py",
    "engine/prefilter.py",
    "engine/reader.py",
    "engine/records.py",
    "engine/selectors.py",
    "engine/session.py",
    "engine/sharding.py",
    "signatures/pairing.py",
    "signatures/syscall_context.py",
)
#: The shared library holding the compiled code of all of them (mypyc's group).
GROUP: Final = "pytracee.engine._compiled"
#: Written by the build beside the engine's compiled modules: the digest of the sources compiled.
DIGEST_FILE: Final = "engine/_compiled.digest"
#: Set to ``1`` to run the sources even where compiled modules are current.
PURE_ENV: Final = "PYTRACEE_PURE_PYTHON"

_ROOT: Final = Path(__file__).resolve().parent.parent  # holds engine/ and signatures/
_state = "not checked"


def module_name(relative: str) -> str:
    """``"engine/context/state.py"`` -> ``"pytracee.engine.context.state"``."""
    return "pytracee." + relative.removesuffix(".py").replace("/", ".")


def source_digest(root: Path, modules: Sequence[str] = MODULES) -> str:
    """A digest of the named sources (their names, sizes and contents), as the build records it.

    It tells an edited source from the one compiled, not an attacker's forgery (whoever can write
    the sources needs no collision): CRC-32, checked at every start-up in a fraction of a millisecond.
    """
    parts = []
    for relative in modules:
        text = (root / relative).read_bytes()
        parts.append(f"{relative}:{len(text)}:{zlib.crc32(text):08x}")
    return " ".join(parts)


def _compiled_present(root: Path) -> bool:
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return any((root / relative).with_suffix(suffix).exists() for relative in MODULES)


class _SourceFinder:
    """Imports the set's modules from their ``.py`` files, ahead of any compiled one (a meta path
    finder: ``importlib.abc.MetaPathFinder``'s protocol, without importing that module at start-up)."""

    def __init__(self, root: Path) -> None:
        self.sources = {module_name(relative): root / relative for relative in MODULES}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.sources.get(fullname)
        if source is None:
            return None
        import importlib.util  # only for a stale build: not at every start-up

        return importlib.util.spec_from_file_location(fullname, source)


def check(root: Path = _ROOT) -> str:
    """Why the sources must run instead of compiled modules (``""``: the compiled ones are current)."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return f"sources ({PURE_ENV} is set)"
    if not _compiled_present(root):
        return "sources (not compiled)"
    recorded = root / DIGEST_FILE
    if not recorded.exists():
        return "sources (compiled modules without their digest: rebuild them)"
    try:
        current = source_digest(root)
    except OSError as exc:  # a source missing: the compiled modules are all there is
        return f"compiled (sources unreadable: {exc.strerror})"
    if recorded.read_text().strip() != current:
        return "sources (the compiled modules are older than their sources: rebuild them with scripts/setup.sh)"
    return ""


def install(root: Path = _ROOT) -> None:
    """Decide, once, whether the set is imported compiled or from its sources (before any of it is)."""
    global _state
    if _state != "not checked":
        return
    why = check(root)
    if why.startswith("sources") and _compiled_present(root):
        sys.meta_path.insert(0, _SourceFinder(root))
        if PURE_ENV not in why:
            import logging  # only to warn: not at every start-up

            logging.getLogger(__name__).warning("pytracee: running the %s", why)
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
