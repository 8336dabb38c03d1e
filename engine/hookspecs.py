"""Plugin hooks, grouped by the phase of a run in which they are called.

Every plugin (the built-in signatures, a package registered under the
``pytracee`` entry-point group, a ``.py`` file in a ``--rules-dir``) implements
any of these with the :data:`hookimpl` marker and may accept any subset of a
hook's parameters::

    from pytracee.engine import hookimpl

    @hookimpl
    def tracee_register_signatures(register):
        register(MySignature)

Hooks run at set-up, per finding and at the end, never per event: events are
routed to signatures through the engine's selector index.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .findings import Finding
    from .session import Session, SessionConfig
    from .signature import Signature

PROJECT = "pytracee"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Marker for hook implementations in plugins.
hookimpl = pluggy.HookimplMarker(PROJECT)

#: The callable passed to :func:`tracee_register_signatures`: takes a
#: :class:`~pytracee.engine.signature.Signature` subclass or instance.
RegisterSignature = Callable[[Any], None]


# --- configuration ---------------------------------------------------------------------


@hookspec(historic=True)
def tracee_addoption(parser: argparse.ArgumentParser) -> None:
    """Add command-line options to ``tracee-rules``.

    Called once while the parser is built, for plugins installed as packages
    (entry points) and the built-ins; ``--rules-dir`` files load too late to add options.

    :param parser: the ``argparse`` parser; add an argument group of your own.
    """


@hookspec(historic=True)
def tracee_configure(config: SessionConfig) -> None:
    """Read the run's configuration, after options are parsed and before signatures load.

    Historic: plugins registered later (from ``--rules-dir``) are called too.

    :param config: the run's settings; ``config.options`` holds the parsed
        command-line namespace (including options added by plugins).
    """


# --- signature registration -----------------------------------------------------------


@hookspec
def tracee_register_signatures(register: RegisterSignature) -> None:
    """Register signatures by calling ``register(SignatureClassOrInstance)``.

    Signature classes and :func:`~pytracee.engine.signature.signature` functions
    defined at module level in a plugin module are collected without this hook;
    use it to register signatures built at run time or defined elsewhere.
    """


# --- rule-file collection -----------------------------------------------------------


@hookspec(firstresult=True)
def tracee_collect_rule_file(path: Path, config: SessionConfig) -> Sequence[Signature] | None:
    """Turn a non-Python file found in a rules directory into signatures.

    Return the signatures (an empty list to claim the file without loading
    anything), or ``None`` when the file is not yours. The first non-``None``
    answer wins. Raise :class:`~pytracee.engine.plugins.RuleFileError` for a
    broken file: it is reported with the file (and line when given), and the
    other rule files still load unless the run is ``--strict``.

    :param path: the file, e.g. ``rules/anti_debugging.rego``.
    """


# --- session start and end -------------------------------------------------------------


@hookspec
def tracee_sessionstart(session: Session) -> None:
    """Called once signatures are loaded and initialised, before the first event."""


@hookspec
def tracee_sessionfinish(session: Session, exitstatus: int) -> None:
    """Called after the last event, once signatures are closed and findings delivered.

    :param exitstatus: the exit status the command is about to return.
    """


# --- findings -------------------------------------------------------------------------------


@hookspec(firstresult=True)
def tracee_finding_filter(finding: Finding) -> str | None:
    """Suppress a finding: return a short reason (counted per reason), or ``None`` to keep it.

    Called for every finding before enrichment and output. The first reason wins.
    """


@hookspec
def tracee_finding_enrich(finding: Finding) -> None:
    """Add to a kept finding before output, e.g. ``finding.data["ancestry"] = ...``."""


@hookspec
def tracee_finding_output(finding: Finding) -> None:
    """Deliver a finding: print it, post it, store it. Every implementation gets every kept finding."""


# --- errors ---------------------------------------------------------------------------------


@hookspec
def tracee_signature_error(signature: Signature, event: Any, error: BaseException) -> None:
    """Observe a signature that raised (it has been logged and counted already).

    :param event: the event being handled, or ``None`` when it failed in
        ``on_signal``/``close``.
    """
