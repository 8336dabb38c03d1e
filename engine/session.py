"""A run: plugins loaded, signatures selected, events replayed, findings delivered.

:class:`Session` is what ``tracee-rules`` (and, live, ``tracee``) drive::

    session = Session(SessionConfig(rules_dirs=[Path("my-rules")]))
    session.load()                      # plugins, signatures, outputs
    status = session.run(EventReader(["events.json"], is_known_event=session.is_known_event))

The events come from any :class:`~pytracee.engine.sources.EventSource` (a file
reader, the live collector; a plain iterable of events is wrapped); an event
whose args prove malformed is counted as skipped by its source and the run goes on.
Each finding passes the plugin hooks in order: ``tracee_finding_filter``
(suppress, counted by reason), ``tracee_finding_enrich``, ``tracee_finding_output``.
At the end the session logs what happened (events read and skipped, findings,
signature errors) and returns the exit status (:class:`~pytracee.engine.errors.ExitStatus`).
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalogue import KNOWN_EVENTS
from .context.state import EventContext
from .dispatch import Engine, LoadedSignature
from .errors import (
    ConfigError,
    ExitStatus,
    InputError,
    Interrupted,
    MalformedEventError,
    StopRun,
)
from .events import Event
from .findings import Finding
from .operations.config import BundleCollector, ConfigFile, ConfigFileError
from .operations.overrides import Settings, configure_signatures
from .operations.suppression import Suppression
from .plugins import BUILTIN_RULES, LoadError, PluginManager
from .prefilter import Admission, plan_decoding
from .selection import select_signatures
from .signature import DuplicateSignatureError
from .sources import EventSource, SourceStats, as_source

if TYPE_CHECKING:
    from .operations.reload import Reparse

__all__ = ["Session", "SessionConfig", "builtin_rule_languages", "signature_id_order"]

log = logging.getLogger("pytracee")


def signature_id_order(sig_id: str) -> tuple[str, int, str]:
    """Sort key putting ``TRC-2`` before ``TRC-10`` (prefix, then number)."""
    prefix, _, number = sig_id.rpartition("-")
    return (prefix, int(number), "") if number.isdigit() else (sig_id, 0, sig_id)


@dataclass
class SessionConfig:
    """Settings of one run (the parsed command line, for ``tracee-rules``).

    :param rules_dirs: extra directories to load plugins and rule files from.
    :param rules: run only these signatures: IDs, event names, ``lang:python|rego|cel``
        or ``all``; empty: the ones enabled by default.
    :param disabled: plugin names, signature IDs or signature event names to leave out.
    :param strict: fail on the first bad input record or broken rule file.
    :param derive_events: feed findings back as signature events to signatures selecting them.
    :param allow_unknown_events: deliver events whose name is not a known Tracee event.
    :param load_builtin_rules: offer the rule files shipped in ``pytracee.rules`` (off
        unless ``rules`` selects them, e.g. ``lang:rego`` or ``all``; loaded only when
        ``rules`` or a listing can use them: :func:`builtin_rule_languages`).
    :param list_only: the run only lists what is loaded (``tracee-rules --list``,
        ``--list-events``): the outputs plugin opens no output.
    :param live: the events come from the running host (``tracee``): the process tree is
        read from /proc first, container runtimes are asked and executed files hashed.
    :param options: the full parsed command line, including plugins' options.
    :param config_file: the ``--config`` file: parameters, exceptions, overrides.
    :param dedup_window: seconds within which a repeated finding is only counted (0: off).
    """

    rules_dirs: list[Path] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    strict: bool = False
    derive_events: bool = True
    allow_unknown_events: bool = False
    load_builtin_rules: bool = True
    load_installed_plugins: bool = True
    list_only: bool = False
    live: bool = False
    options: argparse.Namespace = field(default_factory=argparse.Namespace)
    config_file: ConfigFile | None = None
    dedup_window: float = 0.0
    pluginmanager: PluginManager = field(default_factory=PluginManager, repr=False)


#: Languages of the rule files shipped in ``pytracee.rules`` (one subdirectory each).
BUILTIN_RULE_LANGUAGES = ("cel", "rego")


def builtin_rule_languages(config: SessionConfig) -> tuple[str, ...]:
    """Which built-in rule directories a run loads: none unless ``--rules`` can choose them.

    The shipped Rego and CEL rules are off by default, so a run with the default
    set neither compiles them nor starts the Rego worker. ``--rules lang:cel``
    loads only the CEL ones, ``lang:rego`` only the Rego ones, ``lang:python``
    none; IDs, event names and ``all`` load both, as do the listings
    (``--list`` shows what is available).
    """
    if not config.load_builtin_rules:
        return ()
    if config.list_only:
        return BUILTIN_RULE_LANGUAGES
    wanted = {name.strip() for item in config.rules for name in item.split(",") if name.strip()}
    if not wanted:
        return ()
    if all(name.startswith("lang:") for name in wanted):
        return tuple(language for language in BUILTIN_RULE_LANGUAGES if f"lang:{language}" in wanted)
    return BUILTIN_RULE_LANGUAGES


class Session:
    """Loads signatures into an :class:`~pytracee.engine.dispatch.Engine` and runs events through it."""

    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self.pm = config.pluginmanager
        self.signatures: list[LoadedSignature] = []
        #: Every signature the plugins offered, chosen or not.
        self.available: list[LoadedSignature] = []
        self.engine: Engine | None = None
        self.suppressed: Counter[str] = Counter()
        #: Exceptions and de-duplication (engine/operations/suppression.py); its counters are public.
        self.suppression = Suppression()
        #: The parameters, overrides and exceptions of the configuration and bundle files.
        self.settings = Settings()
        self.output_failures = 0
        #: The source of the last :meth:`run`, and its counts.
        self.source: EventSource | None = None
        self.input_stats = SourceStats()
        #: What the context did, for the summary, when it lived elsewhere (``--workers``); None:
        #: :attr:`context`'s own description.
        self.context_description: str | None = None
        self._known_events: frozenset[str] = KNOWN_EVENTS
        #: After :meth:`load`: names of the events a source must decode and deliver whatever
        #: their args (those signatures select unfiltered), or ``None`` for every event. A consumer that needs
        #: events no signature selects (a process tree following forks, execs and exits)
        #: adds their names, at ``tracee_sessionstart`` at the latest; readers skip the rest
        #: undecoded (:class:`~pytracee.engine.reader.EventReader`'s ``wanted_events``).
        self.wanted_events: set[str] | None = None
        #: Of those, the events only the engine's observers want: a replay may deliver them as
        #: :class:`~pytracee.engine.events.LazyEvent` (decoded when first read).
        self.lazy_events: frozenset[str] = frozenset()
        #: Of those, the arguments observers declared they read (``Engine.observe``'s
        #: ``args_read``), which a replay reads in place: event name -> argument names.
        self.lazy_args: dict[str, tuple[str, ...]] = {}
        #: Of those, event name -> a test over the fields read in place: true when neither its
        #: observers nor the context would do anything with the event now (``Engine.observe``'s
        #: ``idle``), so a replay leaves it undecoded. Emptied by a reload (the tests are the old
        #: observers').
        self.lazy_idle: dict[str, Callable[[Mapping[str, Any]], bool]] = {}
        #: After :meth:`load`: events the signatures select only from some origins or with data
        #: filters -> a test of a record's envelope (:mod:`~pytracee.engine.prefilter`).
        self.admissions: dict[str, Admission] = {}
        self._started = False  # between tracee_sessionstart and tracee_sessionfinish
        #: Process tree, container identities and hashes, shown every event before dispatch
        #: (set at session start by the context plugin; None: no context kept).
        self.context: EventContext | None = None
        #: Reads the configuration again for a hot reload (engine/operations/reload.py); None: no reload.
        self.reparse: Reparse | None = None
        #: Set by :meth:`request_reload` (a SIGHUP); the run reloads before the next event.
        self.reload_requested = False
        #: True while an event is with the observers and signatures (health: a stuck signature).
        self.dispatching = False
        #: The plugin managers of the signatures loaded by reloads.
        self.reload_managers: list[PluginManager] = []
        #: Live: the events the tracer traces (a reload reports what new signatures miss); None: all.
        self.traced_events: frozenset[str] | None = None
        #: Digests of the Python signatures' source files when they loaded (to tell a reload what changed).
        self.fingerprints: dict[str, str] = {}

    # --- loading ------------------------------------------------------------------------

    def load(self) -> None:
        """Discover plugins, select signatures and build the engine.

        :raises ConfigError: for unknown ``--rules`` IDs, duplicate signature IDs,
            or (``strict``) any plugin or rule file that failed to load.
        """
        config, pm = self.config, self.pm
        pm.load_plugins(config.disabled, installed=config.load_installed_plugins)
        try:
            pm.hook.tracee_configure.call_historic(kwargs={"config": config})
        except (ConfigError, Interrupted):
            raise
        except (Exception, SystemExit, KeyboardInterrupt) as exc:  # a plugin's bug: a usage error, not a traceback
            log.debug("tracee_configure failed", exc_info=True)
            raise ConfigError(f"a plugin's tracee_configure failed: {type(exc).__name__}: {exc}") from None
        self.available, self.signatures, self.settings = collect(config, pm)
        try:
            self.engine = Engine(
                self.signatures,
                self._handle_finding,
                derive_events=config.derive_events,
                on_error=self._signature_error,
            )
        except DuplicateSignatureError as exc:
            raise ConfigError(str(exc)) from None
        self.signatures = self.engine.signatures  # without those whose init() failed
        self.suppression = Suppression(self.settings.exceptions(), config.dedup_window)
        if self.reparse is not None:
            from .operations.reload import fingerprints

            self.fingerprints = fingerprints(self.signatures)
        names = {s.metadata.event_name for s in self.signatures if s.metadata.event_name}
        names.update(self.engine.selected_event_names())
        self._known_events = frozenset(names) | KNOWN_EVENTS
        self.wanted_events, self.admissions = plan_decoding(self.engine)
        self._started = True
        pm.hook.tracee_sessionstart(session=self)
        if self.wanted_events is not None:  # what the context and the engine's observers need decoded too
            # observers get the events no signature selects whole; the others as far as the signatures take them
            observed_only = self.engine.observed_event_names() - set(self.engine.selected_event_names())
            consumed = self.context.consumed_events if self.context is not None else frozenset()
            self.lazy_events = frozenset(observed_only - self.wanted_events - set(self.admissions) - consumed)
            self.lazy_args = {
                name: args for name in sorted(self.lazy_events) if (args := self.engine.observed_args(name))
            }
            self.lazy_idle.clear()
            for name in self.lazy_events:
                idle = self.engine.observers_idle(name)
                if idle is not None:
                    self.lazy_idle[name] = (
                        idle if self.context is None else _and(self.context.learns_nothing_from, idle)
                    )
            self.wanted_events |= observed_only | consumed

    def reader_plan(self) -> dict[str, Any]:
        """What a replay's reader takes of this session's plan, after :meth:`load`: the known
        event names, the events to decode whole or by admission, those read lazily (with
        their arguments read in place and their idle tests), and what to tell the observers between
        two input files: ``EventReader(paths, **plan)``."""
        return {
            "is_known_event": self.is_known_event,
            "wanted_events": self.wanted_events,
            "admissions": self.admissions,
            "lazy_events": self.lazy_events,
            "lazy_args": self.lazy_args,
            "lazy_idle": self.lazy_idle,
            "on_next_input": self.next_input,
        }

    def next_input(self) -> None:
        """A replay moves on to its next input file: the engine in force tells its observers
        (:meth:`~pytracee.engine.dispatch.Engine.next_input`)."""
        if self.engine is not None:
            self.engine.next_input()

    def needed_events(self) -> set[str]:
        """The events a tracer must record for this run: those the signatures select by name
        and those the context consumes (:attr:`~pytracee.engine.context.state.EventContext.consumed_events`)."""
        names = set(self.engine.selected_event_names()) if self.engine is not None else set()
        if self.context is not None:
            names |= self.context.consumed_events
        return names

    @property
    def is_known_event(self) -> Callable[[str], bool] | None:
        """The reader's test for event names: Tracee's, plus the loaded signatures' (None: accept all)."""
        return None if self.config.allow_unknown_events else self._known_events.__contains__

    # --- running ------------------------------------------------------------------------

    def run(self, events: EventSource | Iterable[Event]) -> ExitStatus:
        """Dispatch every event, then signal the end of input; returns the exit status.

        The source stays open: whoever opened it closes it.
        """
        engine = self.engine
        if engine is None:
            raise RuntimeError("Session.load() must be called before run()")
        self.source = source = as_source(events)
        self.input_stats = source.stats
        status = ExitStatus.OK
        dispatch: Callable[[Event], bool] = engine.dispatch
        observe = self.context.observe if self.context is not None else None
        # A source that acknowledges its input (a message bus) is told when an event and
        # its findings went through the signatures and the outputs (EventSource.event_done).
        # An event an observer holds back is done once the engine released it to the signatures.
        done = getattr(source, "event_done", None)
        engine.on_released = done
        try:
            for event in source:
                if self.reload_requested:
                    dispatch = self._reload()
                    if self.engine is not None:
                        self.engine.on_released = done
                went = True
                self.dispatching = True
                try:
                    if observe is not None:
                        observe(event)
                    went = dispatch(event)
                except MalformedEventError as exc:
                    source.skip(event, "malformed args", str(exc))
                self.dispatching = False
                if done is not None and went:
                    done(event)
        except InputError as exc:
            log.error("%s", exc)
            status = ExitStatus.FAILED
        except KeyboardInterrupt:
            log.warning("interrupted; finishing the signatures and outputs")
            status = ExitStatus.INTERRUPTED
        except StopRun as exc:
            log.error("stopped: %s", exc)
            status = ExitStatus.FAILED
        finally:
            self.dispatching = False
            status = self._finish(self.engine or engine, status)
        return status

    def request_reload(self) -> None:
        """Ask for a hot reload before the next event (safe in a signal handler)."""
        self.reload_requested = True

    def _reload(self) -> Callable[[Event], bool]:
        """Reload now (between two events); the dispatch function of the engine in force."""
        self.reload_requested = False
        self.lazy_idle.clear()  # the old observers' tests: every lazy event is observed again
        if self.reparse is None:
            log.warning("reload requested, but this run cannot re-read its configuration")
        else:
            from .operations.reload import reload_session  # the reload machinery loads only when used

            reload_session(self, self.reparse)
        assert self.engine is not None  # noqa: S101 - run() checked it
        return self.engine.dispatch

    def _finish(self, engine: Engine, status: ExitStatus) -> ExitStatus:
        """End of input: signal and close the signatures, then the plugins; the final status.

        A first interruption arriving here cuts short only the step it hits.
        """
        try:
            if engine.complete() and status == ExitStatus.OK:
                status = ExitStatus.INTERRUPTED
        except Interrupted:  # between two signatures
            status = ExitStatus.INTERRUPTED
        if status == ExitStatus.OK and self.output_failures:
            status = ExitStatus.FAILED
        if status == ExitStatus.OK and self.config.strict and engine.stats.errors_by_signature:
            status = ExitStatus.FAILED
        status = self.finish(status)
        if status == ExitStatus.OK and self.output_failures:  # outputs that deliver late (a webhook queue) count too
            status = ExitStatus.FAILED
        return status

    def finish(self, status: ExitStatus) -> ExitStatus:
        """Call ``tracee_sessionfinish`` (once per loaded session); the final status.

        :meth:`run` does it at the end of input; a command that loads a session
        without running it (``--list``, a usage error found after loading) calls it
        itself, so plugins can release what they set up at session start.
        """
        if not self._started:
            return status
        self._started = False
        self.suppression.finish()
        try:
            self.pm.hook.tracee_sessionfinish(session=self, exitstatus=status)
        except Interrupted:
            log.warning("interrupted while the plugins finished the run")
            status = ExitStatus.INTERRUPTED
        return status

    def _handle_finding(self, finding: Finding) -> bool:
        """Deliver one finding; False when an exception expects it (then no signature event either).

        The run's context (ancestry, executable hash, container) is written first, so exceptions
        can match on what the finding will show."""
        self.write_context(finding)
        if self.suppression:
            why = self.suppression.suppress(finding)
            if why is not None:
                return why != "exception"  # a repeat still feeds the signatures selecting it
        hook = self.pm.hook
        try:
            reason = hook.tracee_finding_filter(finding=finding)
            if reason:
                self.suppressed[str(reason)] += 1
                return True
            if not finding.enriched:  # a --workers process enriches its findings itself
                hook.tracee_finding_enrich(finding=finding)
            hook.tracee_finding_output(finding=finding)
        except Exception as exc:  # noqa: BLE001 - a broken plugin loses this finding, but it is counted, not blamed on the signature
            self.output_failed(
                f"a finding of {finding.sig_metadata.id} was lost in a plugin: {type(exc).__name__}: {exc}"
            )
        return True

    @staticmethod
    def write_context(finding: Finding) -> None:
        """Write the context kept across events (ancestry, executable hash, container) into the finding."""
        context = finding.event.context
        if context is not None:
            try:
                context.enrich_finding(finding)
            except Exception as exc:  # noqa: BLE001 - the finding goes on without its context
                log.error("a finding of %s lost its context: %s: %s", finding.sig_metadata.id, type(exc).__name__, exc)

    def deliver(self, finding: Finding) -> None:
        """Pass a finding through the finding hooks (filter, enrich, output), as the engine's
        own findings are; for findings made in another process (``--workers``)."""
        self._handle_finding(finding)

    def output_failed(self, message: str) -> None:
        """Record a finding that could not be delivered (logged; the exit status becomes 1)."""
        self.output_failures += 1
        log.error("%s", message)

    def _signature_error(self, loaded: LoadedSignature, event: Event | None, error: BaseException) -> None:
        self.pm.hook.tracee_signature_error(signature=loaded.signature, event=event, error=error)

    # --- reporting ----------------------------------------------------------------------

    def summary(self, with_input: bool = True) -> str:
        """One paragraph on what the run did, for stderr (``with_input``: the source's summary first)."""
        engine = self.engine
        lines = []
        if with_input:
            lines.append(self.source.summary() if self.source is not None else self.input_stats.describe())
        if engine is not None:
            lines.append(f"{engine.stats.findings} findings from {len(self.signatures)} signatures")
            if engine.stats.findings_by_signature:
                lines[-1] += (
                    " (" + ", ".join(f"{sid}: {n}" for sid, n in _by_id(engine.stats.findings_by_signature)) + ")"
                )
            lines.extend(self.suppression.summary())
            if self.suppressed:
                lines.append("suppressed by plugins: " + ", ".join(f"{r}: {n}" for r, n in self.suppressed.items()))
            if engine.stats.errors_by_observer:
                lines.append(
                    "observer errors (context lost for those events): "
                    + ", ".join(f"{name}: {n}" for name, n in sorted(engine.stats.errors_by_observer.items()))
                )
            if engine.stats.errors_by_signature:
                lines.append(
                    "signature errors: "
                    + ", ".join(f"{sid}: {n}" for sid, n in _by_id(engine.stats.errors_by_signature))
                )
        if self.output_failures:
            lines.append(f"findings not delivered: {self.output_failures}")
        context = self.context_description
        if context is None and self.context is not None:
            context = self.context.describe()
        if context:
            lines.append(context)
        return "; ".join(lines)

    def load_errors(self) -> list[LoadError]:
        """Plugins, rule files and signatures that failed to load."""
        return list(self.pm.load_errors)

    def describe(self) -> dict[str, Any]:
        """Counts for programs embedding the engine (also what ``summary`` prints)."""
        engine = self.engine
        return {
            "events": self.input_stats.events,
            "skipped": dict(self.input_stats.skipped_by_reason),
            "findings": engine.stats.findings if engine else 0,
            "findings_by_signature": dict(engine.stats.findings_by_signature) if engine else {},
            "signature_errors": dict(engine.stats.errors_by_signature) if engine else {},
            "observer_errors": dict(engine.stats.errors_by_observer) if engine else {},
            "suppressed": dict(self.suppressed),
            **self.suppression.counters(),
            "output_failures": self.output_failures,
        }


def _and(
    first: Callable[[Mapping[str, Any]], bool], second: Callable[[Mapping[str, Any]], bool]
) -> Callable[[Mapping[str, Any]], bool]:
    return lambda fields: first(fields) and second(fields)


def collect(config: SessionConfig, pm: PluginManager) -> tuple[list[LoadedSignature], list[LoadedSignature], Settings]:
    """Load the rule files and collect the signatures with their settings: (available, chosen, settings).

    :raises ConfigError: for unknown ``--rules`` terms or signatures, bad parameters,
        exceptions or overrides (every problem with its file and line), or (``strict``)
        any plugin or rule file that failed to load.
    """
    bundles = BundleCollector()
    pm.register(bundles)
    blocked = pm.is_blocked(BUILTIN_RULES)
    languages = builtin_rule_languages(config) if not blocked else ()
    try:
        _load_builtin_rules(config, pm, languages)
        for directory in config.rules_dirs:
            pm.load_path(directory, config)
    finally:
        pm.unregister(bundles)
    settings = Settings([*([config.config_file] if config.config_file else []), *bundles.bundles])
    available = pm.collect_signatures()
    rest = () if blocked or not config.load_builtin_rules else tuple(set(BUILTIN_RULE_LANGUAGES) - set(languages))
    if rest and settings.referenced_ids() - {loaded.metadata.id for loaded in available}:
        _load_builtin_rules(config, pm, rest)  # the configuration names a shipped rule file's signature
        available = pm.collect_signatures()
    pm.check_hooks()
    for error in pm.load_errors:
        log.error("not loaded: %s", error)
    if pm.load_errors and config.strict:
        raise ConfigError(f"{len(pm.load_errors)} plugin(s) or rule file(s) failed to load (--strict)")
    available, problems = configure_signatures(available, settings)
    problems = [*bundles.problems, *problems]
    if problems:
        raise ConfigFileError(problems)
    chosen = select_signatures(
        available, config.rules, [*config.disabled, *settings.disabled()], enabled=settings.enabled()
    )
    return available, chosen, settings


def _load_builtin_rules(config: SessionConfig, pm: PluginManager, languages: Iterable[str]) -> None:
    """Load the shipped rule files of these languages (off by default: ``--rules`` chooses them)."""
    from importlib import resources  # here: only runs with rule files pay for importing it

    with resources.as_file(resources.files("pytracee.rules")) as builtin_rules:
        for language in sorted(languages):
            pm.load_path(builtin_rules / language, config, enabled_by_default=False)


def _by_id(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: signature_id_order(item[0]))
