"""The engine: routes each event to the signatures that selected it.

Dispatch is an index lookup, not a plugin-hook call per signature. For every
event name the engine builds (once, on first sight) a route: per origin, the
signatures whose selectors match ``(source, name, origin)`` with Tracee's ``*``
wildcards, each with its data-filter predicate, plus a merged *gate* that
rejects events none of them can want. A signature that raises is logged with
its ID and counted; the engine and the other signatures carry on.

Findings go to the ``on_finding`` callback. A finding is also turned into a
signature event (:func:`~pytracee.engine.findings.finding_to_event`) when some
signature selects that event by name, so signatures can build on each other as
in Tracee's unified binary.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

from .errors import Interrupted, MalformedEventError, RuleAbortError
from .events import ORIGIN_HOST, Event
from .filtermemo import entry_picker
from .findings import (
    SIGNATURE_EVENT_ID_BASE,
    Finding,
    SignatureMetadata,
    finding_to_event,
)
from .selectors import ANY, ORIGINS, Accept, EventSelector, accept_any_of, union_gate
from .signature import (
    DuplicateSignatureError,
    Signature,
    SignatureContext,
    SignatureDefinitionError,
    SourceComplete,
)
from .sources import snapshot_counts

__all__ = ["DuplicateSignatureError", "Engine", "EngineStats", "LoadedSignature"]

log = logging.getLogger("pytracee.engine")

#: How many tracebacks per signature are logged before further errors are only counted.
ERRORS_LOGGED_PER_SIGNATURE: Final = 5
#: Depth limit for signatures consuming signature events.
MAX_DERIVATION_DEPTH: Final = 5


@dataclass(frozen=True, slots=True)
class LoadedSignature:
    """A signature with the metadata and selectors read from it at load time."""

    signature: Signature
    metadata: SignatureMetadata
    selectors: tuple[EventSelector, ...]
    plugin: str = ""
    #: Runs unless ``--rules`` names others; off for TRC-108 and the built-in rule files.
    enabled_by_default: bool = True


@dataclass(slots=True)
class EngineStats:
    """Counters of one engine run."""

    events: int = 0
    findings: int = 0
    findings_by_signature: Counter[str] = field(default_factory=Counter)
    errors_by_signature: Counter[str] = field(default_factory=Counter)
    #: Errors of the engine's observers (:meth:`Engine.observe`), by observer.
    errors_by_observer: Counter[str] = field(default_factory=Counter)

    def copy(self) -> EngineStats:
        """A copy, safe to take while another thread counts."""
        return EngineStats(
            self.events,
            self.findings,
            Counter(snapshot_counts(self.findings_by_signature)),
            Counter(snapshot_counts(self.errors_by_signature)),
            Counter(snapshot_counts(self.errors_by_observer)),
        )


#: ``wrap(loaded, on_event)``: what :meth:`Engine.instrument` calls instead of a signature's ``on_event``.
Wrapper = Callable[[LoadedSignature, Callable[[Event], None]], Callable[[Event], None]]


@dataclass(frozen=True, slots=True)
class _Handlers:
    gate: Accept | None
    entries: tuple[tuple[LoadedSignature, Callable[[Event], None], Accept | None], ...]
    #: ``pick(args)``: the entries accepting ``args``, remembered per value (:mod:`.filtermemo`)
    pick: (
        Callable[[Mapping[str, Any]], tuple[tuple[LoadedSignature, Callable[[Event], None], Accept | None], ...] | None]
        | None
    ) = None


@dataclass(frozen=True, slots=True)
class _Route:
    handlers: _Handlers | None  # same for every origin
    by_origin: dict[str, _Handlers | None] | None  # when origins differ


class Engine:
    """Runs signatures over a stream of events.

    :param signatures: the signatures to run; each is initialised here.
    :param on_finding: receives every finding, in order; returning ``False`` (an exception
        suppressed it) keeps it from being fed back as a signature event.
    :param derive_events: feed findings back as signature events to signatures that select them.
    :param on_error: called as ``on_error(signature, event_or_None, exception)`` after a
        signature raised (in ``init``, ``on_event``, ``on_signal`` or ``close``); it is
        logged and counted in any case.
    :param running: the ``id()`` of those of ``signatures`` already initialised by an engine this
        one replaces (a reload keeps its unchanged signatures): they are pointed at this engine
        and keep their state, not initialised again.
    :raises DuplicateSignatureError: when two signatures share an ID.
    :raises SignatureDefinitionError: when a signature's metadata or selectors are unusable.
    """

    def __init__(
        self,
        signatures: Iterable[Signature | LoadedSignature],
        on_finding: Callable[[Finding], bool | None],
        *,
        derive_events: bool = True,
        on_error: Callable[[LoadedSignature, Event | None, BaseException], None] | None = None,
        running: Collection[int] = (),
    ) -> None:
        #: Receives every finding (replaceable, e.g. to pass findings to another process).
        self.on_finding = on_finding
        self._running = running
        self._derive = derive_events
        self.stats = EngineStats()
        self.on_error = on_error
        self.signatures: list[LoadedSignature] = []
        seen: dict[str, LoadedSignature] = {}
        for item in signatures:
            loaded = item if isinstance(item, LoadedSignature) else load_signature(item)
            sig_id = loaded.metadata.id
            if sig_id in seen:
                first, second = seen[sig_id], loaded
                raise DuplicateSignatureError(
                    f"duplicate signature ID {sig_id!r}: {_describe(first)} and {_describe(second)}"
                )
            seen[sig_id] = loaded
            if self._init(loaded):
                self.signatures.append(loaded)
        self._by_key: dict[tuple[str, str], list[tuple[LoadedSignature, EventSelector]]] = {}
        for loaded in self.signatures:
            for selector in loaded.selectors:
                self._by_key.setdefault((selector.source, selector.name), []).append((loaded, selector))
        self._routes: dict[tuple[str, str], _Route | None] = {}
        self._wrap: Wrapper | None = None
        self._depth = 0
        self._observers: dict[str, list[Callable[[Event], bool | None]]] = {}
        self._observers_at_end: list[Callable[[], None]] = []
        self._observers_at_next_input: list[Callable[[], None]] = []
        self._observed_args: dict[str, set[str]] = {}
        #: event name -> each of its observers' ``idle`` test (None: that observer gave none).
        self._observer_idle: dict[str, list[Callable[[Mapping[str, Any]], bool] | None]] = {}
        self._released: list[Event] = []
        #: Called with each event an observer held once the signatures had it (:meth:`release`).
        self.on_released: Callable[[Event], None] | None = None
        self._signature_event_ids = {
            loaded.metadata.event_name: SIGNATURE_EVENT_ID_BASE + index
            for index, loaded in enumerate(self.signatures)
            if loaded.metadata.event_name
        }

    def _init(self, loaded: LoadedSignature) -> bool:
        logger = logging.getLogger(f"pytracee.signature.{loaded.metadata.id}")
        ctx = SignatureContext(callback=self._finding_callback(loaded), logger=logger)
        if id(loaded) in self._running:  # taken over from the engine this one replaces: only pointed here
            loaded.signature.ctx = ctx
            return True
        try:
            try:
                loaded.signature.init(ctx)
            except (SystemExit, KeyboardInterrupt) as exc:
                if isinstance(exc, Interrupted):
                    raise
                raise RuleAbortError.of(exc) from None
        except Exception as exc:
            self.stats.errors_by_signature[loaded.metadata.id] += 1
            log.error("signature %s not loaded: init failed: %s: %s", loaded.metadata.id, type(exc).__name__, exc)
            if self.on_error is not None:
                self.on_error(loaded, None, exc)
            return False
        return True

    def observe(
        self,
        names: Iterable[str],
        observer: Callable[[Event], bool | None],
        *,
        at_end: Callable[[], None] | None = None,
        at_next_input: Callable[[], None] | None = None,
        args_read: Mapping[str, Iterable[str]] | None = None,
        idle: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> None:
        """Call ``observer(event)`` for every event named in ``names``, before the signatures.

        For plugins that keep context across events (findings are enriched from it):
        an observer does not select events, so it adds nothing to what is traced, and
        one that raises is logged and the event goes on to the signatures. Events no
        signature selects reach it whole; those the signatures select reach it as far
        as their filters admit them (a replay skips the rest undecoded, the kernel's
        data filters drop them live), which is all a finding can be raised on. An observer
        may hold an event back until another one has come (the other half of a pair):
        it returns ``True`` and later hands the event back with :meth:`release`.
        ``at_end()`` runs at the end of input, before the signatures hear of it, to
        release what is still held. ``at_next_input()`` runs when a replay moves on to its next
        input file (:meth:`next_input`), which may be another tracer's recording: what the
        observer learnt of the stream's habits (not what it holds) can be forgotten there.
        ``args_read`` names, per event, the arguments the
        observer reads (``{"openat": ["pathname"]}``): a replay reads those of the events
        only observers want in place and decodes the rest only if something reads more
        (:class:`~pytracee.engine.events.LazyEvent`); undeclared reads still work, decoding.
        ``idle(fields)`` tells, from such an event's fields read in place (those of
        :data:`~pytracee.engine.events.LAZY_FIELDS`, and ``"args"`` as ``args_read`` names them),
        that the observer would do nothing with it now, nor change: a replay may then leave it
        undecoded, when every observer of the event (and the context) says so.
        """
        for name in names:
            self._observers.setdefault(name, []).append(observer)
            self._observer_idle.setdefault(name, []).append(idle)
        for name, args in (args_read or {}).items():
            names = (args,) if isinstance(args, str) else tuple(args)
            # each one checked as an object: a compiled loop over str would raise its own TypeError first
            if not all(isinstance(arg, str) for arg in cast("tuple[object, ...]", names)):
                raise TypeError(f"args_read[{name!r}] must name arguments by str")
            self._observed_args.setdefault(name, set()).update(names)
        if at_end is not None:
            self._observers_at_end.append(at_end)
        if at_next_input is not None:
            self._observers_at_next_input.append(at_next_input)

    def release(self, event: Event) -> None:
        """Hand back an event an observer held: the signatures get it after the event being dispatched."""
        self._released.append(event)

    def observed_event_names(self) -> set[str]:
        """The names of the events observers asked for (:meth:`observe`)."""
        return set(self._observers)

    def observed_args(self, name: str) -> tuple[str, ...]:
        """The arguments of event ``name`` that observers declared they read (:meth:`observe`), sorted."""
        return tuple(sorted(self._observed_args.get(name, ())))

    def observers_idle(self, name: str) -> Callable[[Mapping[str, Any]], bool] | None:
        """A test over the fields of event ``name`` read in place: true when none of its observers
        would do anything with it (:meth:`observe`'s ``idle``); None when one has no such test."""
        tests = self._observer_idle.get(name)
        if not tests or None in tests:
            return None
        if len(tests) == 1:
            return tests[0]
        return lambda fields: all(test(fields) for test in tests)  # type: ignore[misc]

    # --- selection -------------------------------------------------------------------

    def selected_event_names(self) -> list[str]:
        """Sorted names of every event some signature selects by name (no wildcards) for tracing:
        selectors of events found only in older recordings (``recorded_only``) do not count."""
        return sorted(
            {s.name for loaded in self.signatures for s in loaded.selectors if s.name != ANY and not s.recorded_only}
        )

    def instrument(self, wrap: Wrapper | None) -> None:
        """Call every signature's ``on_event`` through ``wrap(loaded, on_event)`` from the next
        event on (``None``: directly again). Used by the metrics to time signatures; without
        it dispatch costs nothing extra."""
        self._wrap = wrap
        self._routes.clear()

    def wanted_event_names(self, source: str = "tracee") -> set[str] | None:
        """Names of the events of ``source`` that some signature may select; ``None``
        when one selects every event (``"*"``). Events of other names have no route."""
        names = set()
        for loaded in self.signatures:
            for selector in loaded.selectors:
                if selector.source in (source, ANY):
                    if selector.name == ANY:
                        return None
                    names.add(selector.name)
        return names

    def admission(self, name: str, origin: str, source: str = "tracee") -> Accept | bool:
        """Whether an event can reach a signature before its args are read: ``False``
        (none selects it), ``True`` (one takes it unfiltered), or a predicate over its
        args that is false when every signature's data filters would reject it."""
        key = (source, name)
        route = self._routes[key] if key in self._routes else self._build_route(source, name)
        if route is None:
            return False
        handlers = route.handlers if route.by_origin is None else route.by_origin[origin]
        if handlers is None:
            return False
        return True if handlers.gate is None else handlers.gate

    def _build_route(self, source: str, name: str) -> _Route | None:
        candidates = self._by_key.get((source, name), []) + self._by_key.get((source, ANY), [])
        if not candidates:
            self._routes[(source, name)] = None
            return None
        per_origin = {origin: self._handlers(candidates, origin, self._wrap) for origin in ORIGINS}
        if all(s.origin == ANY for _, s in candidates):
            route = _Route(handlers=per_origin[ORIGIN_HOST], by_origin=None)
        else:
            route = _Route(handlers=None, by_origin=per_origin)
        self._routes[(source, name)] = route
        return route

    @staticmethod
    def _handlers(
        candidates: Sequence[tuple[LoadedSignature, EventSelector]], origin: str, wrap: Wrapper | None = None
    ) -> _Handlers | None:
        grouped: dict[int, tuple[LoadedSignature, list[EventSelector]]] = {}
        for loaded, selector in candidates:
            if selector.origin in (ANY, origin):
                grouped.setdefault(id(loaded), (loaded, []))[1].append(selector)
        if not grouped:
            return None
        entries = tuple(
            (
                loaded,
                loaded.signature.on_event if wrap is None else wrap(loaded, loaded.signature.on_event),
                accept_any_of(selectors),
            )
            for loaded, selectors in grouped.values()
        )
        filtered_args = [arg for _, selectors in grouped.values() for s in selectors for arg in s.filters]
        return _Handlers(
            gate=union_gate([selectors for _, selectors in grouped.values()]),
            entries=entries,
            pick=entry_picker(entries, filtered_args),
        )

    # --- the hot path ----------------------------------------------------------------

    def dispatch(self, event: Event) -> bool:
        """Deliver ``event`` to every signature that selected it.

        :returns: False when an observer holds the event back: the signatures get it later,
            and :attr:`on_released` is called with it then.
        :raises pytracee.engine.errors.MalformedEventError: when the event's
            ``args`` are unreadable; no signature has seen it then.
        """
        if self._observers and event.name in self._observers:
            return self._dispatch_observed(event)
        self._dispatch(event)
        return True

    def _dispatch(self, event: Event) -> None:
        self.stats.events += 1
        key = (event.source, event.name)
        try:
            route = self._routes[key]
        except KeyError:
            route = self._build_route(*key)
        if route is None:
            return
        handlers = route.handlers if route.by_origin is None else route.by_origin[event.origin]
        if handlers is None:
            return
        args = event._arg_values()  # raises MalformedEventError before any signature runs
        entries = None if handlers.pick is None else handlers.pick(args)
        if entries is None:
            gate = handlers.gate
            if gate is not None and not gate(args):
                return
            entries = handlers.entries
        for loaded, on_event, accept in entries:
            if accept is not None and not accept(args):
                continue
            try:
                on_event(event)
            except Exception as exc:  # a broken signature must not stop the others
                self._signature_failed(loaded, event, exc)
            except (SystemExit, KeyboardInterrupt) as exc:  # from the rule's own code, not the operator
                if isinstance(exc, Interrupted):
                    raise
                self._signature_failed(loaded, event, RuleAbortError.of(exc))

    def _dispatch_observed(self, event: Event) -> bool:
        held = False
        for observer in self._observers[event.name]:
            try:
                held |= bool(observer(event))
            except Exception as exc:  # context lost for this event only; the signatures still run
                self._observer_failed(observer, event, exc)
        if not held:
            self._dispatch(event)
        self._dispatch_released()
        return not held

    def _dispatch_released(self) -> None:
        while self._released:
            event = self._released.pop(0)
            try:
                self._dispatch(event)
            except MalformedEventError as exc:  # held events were read by their observer first: not expected
                log.error("event %s held by an observer is malformed: %s", event.location or event.name, exc)
            if self.on_released is not None:
                self.on_released(event)

    def _observer_failed(self, observer: Callable[[Event], object], event: Event, exc: Exception) -> None:
        """Count an observer's error; log the first few of each observer (input can repeat one)."""
        name = getattr(observer, "__qualname__", None) or repr(observer)
        _count_error(self.stats.errors_by_observer, ("event observer", "observer"), name, event, exc)

    def _signature_failed(self, loaded: LoadedSignature, event: Event, exc: BaseException) -> None:
        _count_error(
            self.stats.errors_by_signature,
            ("signature", "signature"),
            loaded.metadata.id,
            event,
            exc,
            traceback=log.isEnabledFor(logging.DEBUG),
        )
        if self.on_error is not None:
            self.on_error(loaded, event, exc)

    def _finding_callback(self, loaded: LoadedSignature) -> Callable[[Finding], None]:
        def on_finding(finding: Finding) -> None:
            stats = self.stats
            stats.findings += 1
            stats.findings_by_signature[loaded.metadata.id] += 1
            if self.on_finding(finding) is not False and self._derive:
                self._derive_event(finding)

        return on_finding

    def _derive_event(self, finding: Finding) -> None:
        event_name = finding.sig_metadata.event_name
        if not event_name or (finding.event.source, event_name) not in self._by_key:
            return
        if self._depth >= MAX_DERIVATION_DEPTH:
            log.warning("signature event %s not derived: depth limit %d reached", event_name, MAX_DERIVATION_DEPTH)
            return
        derived = finding_to_event(finding, self._signature_event_ids.get(event_name, SIGNATURE_EVENT_ID_BASE))
        self._depth += 1
        try:
            self.dispatch(derived)
        finally:
            self._depth -= 1

    # --- end of input ----------------------------------------------------------------

    def next_input(self) -> None:
        """A replay moves on to its next input file: each observer's ``at_next_input`` runs
        (:meth:`observe`); the events of the files before have all been dispatched."""
        _call_each(self._observers_at_next_input, "next input")

    def complete(self) -> bool:
        """Signal :class:`SourceComplete` to each signature for each of its sources, then close all.

        An interruption (:class:`~pytracee.engine.errors.Interrupted`) cuts short only the
        signature it hits: every other one is still signalled and closed.

        :returns: whether an interruption arrived meanwhile.
        """
        interrupted = False
        _call_each(self._observers_at_end, "end")
        self._dispatch_released()
        for loaded in self.signatures:
            for source in dict.fromkeys(s.source for s in loaded.selectors):
                interrupted |= self._call(loaded, "on_signal", SourceComplete(source))
        for loaded in self.signatures:
            interrupted |= self._call(loaded, "close")
        return interrupted

    def _call(self, loaded: LoadedSignature, method: str, *args: Any) -> bool:
        """Call one end-of-input method; True when an interruption cut it short."""
        try:
            try:
                getattr(loaded.signature, method)(*args)
            except Interrupted:
                log.warning("interrupted in %s of signature %s; finishing the others", method, loaded.metadata.id)
                return True
            except (SystemExit, KeyboardInterrupt) as exc:
                raise RuleAbortError.of(exc) from None
        except Exception as exc:
            sig_id = loaded.metadata.id
            self.stats.errors_by_signature[sig_id] += 1
            log.error("signature %s failed in %s: %s: %s", sig_id, method, type(exc).__name__, exc)
            if self.on_error is not None:
                self.on_error(loaded, None, exc)
        return False


def _count_error(
    counts: Counter[str],
    who: tuple[str, str],
    name: str,
    event: Event,
    exc: BaseException,
    *,
    traceback: bool = False,
) -> None:
    """Count an error of a signature or observer (``who``: how to name it, in full and short);
    log only the first :data:`ERRORS_LOGGED_PER_SIGNATURE` of each (input can repeat one)."""
    count = counts[name] + 1
    counts[name] = count
    if count <= ERRORS_LOGGED_PER_SIGNATURE:
        where = f" at {event.location}" if event.location else ""
        log.error(
            "%s %s failed on %s event%s: %s: %s%s",
            who[0],
            name,
            event.name,
            where,
            type(exc).__name__,
            exc,
            f" (further errors of this {who[1]} are only counted)" if count == ERRORS_LOGGED_PER_SIGNATURE else "",
            exc_info=traceback,
        )


def _call_each(callbacks: list[Callable[[], None]], what: str) -> None:
    """Run each observer's callback of one moment (``what``: its name in the log); one that
    fails is logged and the others still run."""
    for callback in callbacks:
        try:
            callback()
        except Exception as exc:  # a bug in the observer: logged, the run goes on
            log.error("event observer's %s %r failed: %s: %s", what, callback, type(exc).__name__, exc)


def load_signature(signature: Signature, plugin: str = "", enabled_by_default: bool = True) -> LoadedSignature:
    """Read a signature's metadata and selectors, checking both.

    :raises SignatureDefinitionError: for missing or malformed metadata or selectors.
    """
    metadata = signature.get_metadata()
    if not metadata.id or not isinstance(metadata.id, str):
        raise SignatureDefinitionError(f"{type(signature).__qualname__} has no signature ID")
    selectors = tuple(signature.get_selected_events())
    if not selectors:
        raise SignatureDefinitionError(f"signature {metadata.id} selects no events")
    for selector in selectors:
        if not isinstance(selector, EventSelector):
            raise SignatureDefinitionError(f"signature {metadata.id}: selector {selector!r} is not an EventSelector")
    enabled = enabled_by_default and bool(getattr(signature, "enabled_by_default", True))
    return LoadedSignature(signature, metadata, selectors, plugin, enabled)


def _describe(loaded: LoadedSignature) -> str:
    cls = type(loaded.signature)
    where = f"{cls.__module__}.{cls.__qualname__}"
    return f"{where} (plugin {loaded.plugin})" if loaded.plugin else where
