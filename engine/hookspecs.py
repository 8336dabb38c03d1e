"""Plugin hooks, in the order a run calls them.

Every plugin (the built-in signatures, a package registered under the
``pytracee`` entry-point group, a ``.py`` file in a ``--rules-dir``) implements
any of these with the :data:`hookimpl` marker and may accept any subset of a
hook's parameters::

    from pytracee.engine import hookimpl

    @hookimpl
    def tracee_register_signatures(register):
        register(MySignature)

A run goes through these phases, and the sections of this module follow them:

1. **configuration**: :func:`tracee_addoption`, then :func:`tracee_configure`;
2. **rule-file collection**: :func:`tracee_collect_rule_file`, once per rule file;
3. **signature registration**: :func:`tracee_register_signatures`, once per plugin;
4. **session start**: :func:`tracee_sessionstart`;
5. **findings**, while events are replayed and at the end of input:
   :func:`tracee_finding_filter`, then, for a kept finding,
   :func:`tracee_finding_enrich` and :func:`tracee_finding_output`;
6. **session end**: :func:`tracee_sessionfinish`.

**errors**: :func:`tracee_signature_error` is called whenever a signature raises,
from its ``init`` (after phase 3, before phase 4) to its ``close`` (before phase 6).

Hooks run at set-up, per finding and at the end, never per event: events are
routed to signatures through the engine's selector index. Each hookspec documents
every parameter; ``tests/test_hookspecs.py`` checks that, and that the README's
hook table matches this module.
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
    """Add command-line options to ``tracee-rules`` (and ``tracee``).

    Called first of all, once, in the configuration phase: while the command
    builds its parser and before the command line is parsed, for the plugins
    loaded by then: the built-ins and the installed packages (entry points). The hook is historic, so a ``--rules-dir``
    file implementing it is called too, when it loads, but the command line has
    been parsed by then: options it adds are never set (read them with
    ``getattr(config.options, "name", default)``). Not called when a
    :class:`~pytracee.engine.session.Session` is built in code.

    :param parser: the command's ``argparse`` parser; add an argument group of
        your own (``parser.add_argument_group("my plugin")``).
    :return: nothing (the return value is ignored).
    """


@hookspec(historic=True)
def tracee_configure(config: SessionConfig) -> None:
    """Read the run's configuration, after options are parsed and before signatures load.

    Called once, in the configuration phase, when the session loads: after the
    built-in and installed plugins are registered and before any rules directory
    is read. The hook is historic: a plugin registered later (a ``--rules-dir``
    file) is called as soon as it loads, before its signatures are collected.
    Raise :class:`~pytracee.engine.errors.ConfigError` for unusable settings:
    ``tracee-rules`` then exits with status 2.

    :param config: the run's :class:`~pytracee.engine.session.SessionConfig`;
        ``config.options`` holds the parsed command-line namespace (including
        options added by plugins), ``config.pluginmanager`` the plugin manager.
    :return: nothing (the return value is ignored).
    """


# --- rule-file collection -----------------------------------------------------------


@hookspec(firstresult=True)
def tracee_collect_rule_file(path: Path, config: SessionConfig) -> Sequence[Signature] | None:
    """Turn a non-Python file found in a rules directory into signatures.

    Called in the rule-file collection phase, once for every file of a rules
    directory that is not a Python plugin (and for a rule file given directly):
    first the built-in rules (``pytracee.rules``), then each ``--rules-dir`` in
    order, file by file as the directory is walked. A ``--rules-dir`` plugin sees
    the files read after it loads. First result: implementations are called
    latest-registered first and the first non-``None`` answer wins.

    Raise :class:`~pytracee.engine.errors.RuleFileError` for a broken file: it
    is reported with the file (and line when given), and the other rule files
    still load unless the run is ``--strict``.

    :param path: the file, e.g. ``rules/anti_debugging.rego``.
    :param config: the run's :class:`~pytracee.engine.session.SessionConfig`
        (``config.options`` holds the command line, e.g. your plugin's options).
    :return: the file's signatures (an empty list to claim the file without
        loading anything), or ``None`` when the file is not yours.
    """


# --- signature registration -----------------------------------------------------------


@hookspec
def tracee_register_signatures(register: RegisterSignature) -> None:
    """Register signatures by calling ``register(SignatureClassOrInstance)``.

    Called in the signature-registration phase, after every rules directory is
    read, once per plugin: each implementation gets a ``register`` of its own, so
    the signatures it registers belong to its plugin (``--disable PLUGIN`` drops
    them). Signature classes and :func:`~pytracee.engine.signature.signature`
    functions defined at module level in a plugin module are collected without
    this hook; use it for signatures built at run time, defined elsewhere, or
    kept private (``_Name``). An exception is recorded as the plugin's load error
    (fatal with ``--strict``); what it registered before still loads.

    :param register: call it with a :class:`~pytracee.engine.signature.Signature`
        subclass or instance or a ``@signature`` function; one registered twice
        loads once.
    :return: nothing (the return value is ignored).
    """


# --- session start -------------------------------------------------------------


@hookspec
def tracee_sessionstart(session: Session) -> None:
    """Start of the run: set up what the plugin needs for it.

    Called once, in the session-start phase: the signatures are loaded, selected
    and initialised (those whose ``init`` failed have been reported through
    :func:`tracee_signature_error`), and no event has been read yet.

    :param session: the :class:`~pytracee.engine.session.Session`:
        ``session.signatures`` are the selected signatures, ``session.config``
        the run's settings, ``session.pm`` the plugin manager.
    :return: nothing (the return value is ignored).
    """


# --- findings -------------------------------------------------------------------------------


@hookspec(firstresult=True)
def tracee_finding_filter(finding: Finding) -> str | None:
    """Suppress a finding, or keep it.

    Called in the findings phase for every finding, as soon as a signature
    reports it (while events are replayed, or at the end of input from
    ``on_signal`` and ``close``), before enrichment and output. First result: the
    first reason wins. An exception loses the finding: it is counted as not
    delivered and the exit status becomes 1.

    :param finding: the :class:`~pytracee.engine.findings.Finding`:
        ``finding.sig_metadata``, ``finding.event`` and ``finding.data``.
    :return: a short reason to suppress it (counted per reason in the summary),
        or ``None`` to keep it.
    """


@hookspec
def tracee_finding_enrich(finding: Finding) -> None:
    """Add to a kept finding before output, e.g. ``finding.data = dict(finding.data or {}, team="blue")``.

    Called in the findings phase for every finding no filter suppressed, after
    :func:`tracee_finding_filter` and before :func:`tracee_finding_output`; every
    implementation is called. An exception loses the finding (counted as not
    delivered, exit status 1).

    :param finding: the kept :class:`~pytracee.engine.findings.Finding`; change
        it in place (``finding.data`` may be ``None``).
    :return: nothing (the return value is ignored).
    """


@hookspec
def tracee_finding_output(finding: Finding) -> None:
    """Deliver a finding: print it, post it, store it.

    Called in the findings phase for every kept finding, after
    :func:`tracee_finding_enrich`; every implementation gets every kept finding
    unless one raises: the finding then counts as not delivered (exit status 1)
    and the implementations not yet called miss it. Raise
    :class:`~pytracee.engine.errors.StopRun` to end the run (e.g. the output was
    closed): the signatures are still signalled and closed.

    :param finding: the enriched :class:`~pytracee.engine.findings.Finding`.
    :return: nothing (the return value is ignored).
    """


# --- session end -------------------------------------------------------------


@hookspec
def tracee_sessionfinish(session: Session, exitstatus: int) -> None:
    """End of the run: flush, close, report.

    Called once, in the session-end phase, after the last event, once the
    signatures have been signalled and closed and their findings delivered; also
    after an interruption or a failed input (with that status). Findings a plugin
    fails to deliver here (e.g. a webhook queue draining) still turn status 0
    into 1 (:meth:`~pytracee.engine.session.Session.output_failed`).

    :param session: the :class:`~pytracee.engine.session.Session` that ran;
        ``session.describe()`` has its counts.
    :param exitstatus: the exit status the command is about to return: 0 (ok),
        1 (failure), 130 (interrupted).
    :return: nothing (the return value is ignored).
    """


# --- errors ---------------------------------------------------------------------------------


@hookspec
def tracee_signature_error(signature: Signature, event: Any, error: BaseException) -> None:
    """Observe a signature that raised; it has been logged and counted already.

    Called whenever a signature raises, from the end of signature registration
    to the session end: in ``init`` (before :func:`tracee_sessionstart`; the
    signature is left out of the run), in ``on_event`` (while events are
    replayed), in ``on_signal`` or ``close`` (at the end of input, before
    :func:`tracee_sessionfinish`).

    :param signature: the signature object that raised
        (``signature.get_metadata().id`` names it).
    :param event: the :class:`~pytracee.engine.events.Event` being handled, or
        ``None`` when it failed in ``init``, ``on_signal`` or ``close``.
    :param error: the exception it raised.
    :return: nothing (the return value is ignored).
    """
