"""The signature contract, in two forms.

**Class form**, mirroring Tracee's ``detect.Signature``: subclass :class:`Signature`,
set ``metadata`` and ``selected_events``, implement :meth:`Signature.on_event` and
call :meth:`Signature.emit` for each detection. Override :meth:`~Signature.init`,
:meth:`~Signature.on_signal` and :meth:`~Signature.close` for stateful detections::

    class AntiDebugging(Signature):
        metadata = SignatureMetadata(id="MY-1", name="ptrace TRACEME", properties={"Severity": 2})
        selected_events = [select("ptrace")]

        def on_event(self, event: Event) -> None:
            if ptrace_request(event.arg("request")) == PTRACE_TRACEME:
                self.emit(event)

**Function form** for stateless detections: decorate a predicate with
:func:`signature`. It returns ``False``/``None`` (no finding), ``True`` (a finding
without data) or a dict (a finding with that data), like Tracee's Rego
``tracee_match``::

    @signature(id="MY-2", name="Shadow read", events=[select("security_file_open", pathname="/etc/shadow")])
    def shadow_read(event: Event) -> bool:
        return event.is_file_read()
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .events import Event
from .findings import Finding, SignatureMetadata
from .params import Param, Params, resolve_params
from .selectors import EventSelector, select

__all__ = [
    "DuplicateSignatureError",
    "Signal",
    "Signature",
    "SignatureContext",
    "SignatureDefinitionError",
    "SourceComplete",
    "signature",
]


class SignatureDefinitionError(TypeError):
    """A signature lacks metadata or selectors, or they are malformed."""


class DuplicateSignatureError(SignatureDefinitionError):
    """Two signatures share one ID."""


@dataclass(frozen=True, slots=True)
class SourceComplete:
    """Signal sent once an event source has no more events (end of the input file)."""

    source: str


#: Signals a signature may receive in :meth:`Signature.on_signal`.
Signal = SourceComplete


@dataclass(frozen=True, slots=True)
class SignatureContext:
    """What the engine hands a signature in :meth:`Signature.init`.

    :param callback: receives each :class:`Finding` the signature produces.
    :param logger: a logger named after the signature ID.
    """

    callback: Callable[[Finding], None]
    logger: logging.Logger


class Signature:
    """Base class of class-form signatures (Tracee's ``detect.Signature``).

    Attributes, set on the class (Python signatures) or per instance in
    ``__init__`` (signatures built from rule files, such as Rego and CEL):

    * ``metadata``: the :class:`SignatureMetadata` (id, name, version, ...).
    * ``selected_events``: the :class:`EventSelector` list, built with :func:`select`.

    Class attributes:

    * ``enabled_by_default``: ``False`` keeps the signature out of a run unless
      it is asked for by ID (``tracee-rules --rules ID``).
    * ``language``: shown by ``tracee-rules --list``.
    * ``parameters``: the signature's :class:`~pytracee.engine.params.Param` by name
      (lists and thresholds a user may change in the configuration file); the code
      reads the resolved values from ``self.params`` (``self.params.shells``).
      Selectors that depend on them belong in :meth:`get_selected_events`.
    """

    metadata: SignatureMetadata
    selected_events: Sequence[EventSelector] = ()
    enabled_by_default: ClassVar[bool] = True
    language: ClassVar[str] = "python"
    parameters: Mapping[str, Param] = {}

    ctx: SignatureContext

    @property
    def params(self) -> Params:
        """The resolved parameters: the defaults of :attr:`parameters` unless configured."""
        params = self.__dict__.get("_params")
        if params is None:
            params = self.__dict__["_params"] = resolve_params(self.parameters)
        return params

    def configure_params(self, params: Params) -> None:
        """Set the resolved parameters (the engine calls this before reading the selectors)."""
        self.__dict__["_params"] = params

    def get_metadata(self) -> SignatureMetadata:
        """The signature's metadata; called once, before :meth:`init`."""
        metadata = getattr(self, "metadata", None)
        if not isinstance(metadata, SignatureMetadata):
            raise SignatureDefinitionError(f"{type(self).__qualname__} has no SignatureMetadata 'metadata'")
        return metadata

    def get_selected_events(self) -> Sequence[EventSelector]:
        """The events this signature wants; called once, before :meth:`init`."""
        return self.selected_events

    def init(self, ctx: SignatureContext) -> None:
        """Keep the context; override to set up state (call ``super().init(ctx)``)."""
        self.ctx = ctx

    def on_event(self, event: Event) -> None:
        """Inspect one selected event; call :meth:`emit` for each detection."""
        raise NotImplementedError(f"{type(self).__qualname__}.on_event")

    def on_signal(self, signal: Signal) -> None:
        """React to a signal, e.g. :class:`SourceComplete` at the end of the input."""

    def close(self) -> None:
        """Release resources; called once when the engine stops."""

    def emit(self, event: Event, data: Mapping[str, Any] | None = None) -> None:
        """Report a finding for ``event`` with optional ``data``."""
        self.ctx.callback(Finding(dict(data) if data is not None else None, event, self.get_metadata()))


def _as_selectors(events: Iterable[str | EventSelector], origin: str) -> tuple[EventSelector, ...]:
    selectors = []
    for item in events:
        if isinstance(item, EventSelector):
            selectors.append(item)
        elif isinstance(item, str):
            selectors.append(select(item, origin=origin))
        else:
            raise SignatureDefinitionError(f"events must be names or select(...) selectors, not {item!r}")
    if not selectors:
        raise SignatureDefinitionError("a signature needs at least one selected event")
    return tuple(selectors)


def signature(
    *,
    id: str,
    name: str,
    events: Iterable[str | EventSelector],
    origin: str = "*",
    version: str = "1",
    event_name: str | None = None,
    description: str | None = None,
    severity: int | None = None,
    tags: Sequence[str] | None = None,
    properties: Mapping[str, Any] | None = None,
    enabled_by_default: bool = True,
) -> Callable[[Callable[[Event], Any]], type[Signature]]:
    """Turn a predicate ``fn(event) -> bool | dict | None`` into a :class:`Signature` class.

    :param events: event names (selected with ``origin``) or :func:`select` selectors.
    :param event_name: name of the finding as an event; defaults to the function's name.
    :param description: defaults to the function's docstring.
    :param severity: stored as ``properties["Severity"]`` (0 info .. 4 critical).
    """

    def decorate(fn: Callable[[Event], Any]) -> type[Signature]:
        props = dict(properties or {})
        if severity is not None:
            props["Severity"] = severity
        meta = SignatureMetadata(
            id=id,
            name=name,
            version=version,
            event_name=event_name or fn.__name__,
            description=description if description is not None else (fn.__doc__ or "").strip(),
            tags=tags,
            properties=props,
        )
        selectors = _as_selectors(events, origin)

        def on_event(self: Signature, event: Event) -> None:
            result = fn(event)
            if result is True:
                self.emit(event)
            elif isinstance(result, Mapping):
                self.emit(event, result)
            elif result not in (None, False):
                raise SignatureDefinitionError(
                    f"{id}: a signature function returns bool, dict or None, not {type(result).__name__}"
                )

        cls = type(
            fn.__name__,
            (Signature,),
            {
                "metadata": meta,
                "selected_events": selectors,
                "enabled_by_default": enabled_by_default,
                "on_event": on_event,
                "__doc__": fn.__doc__,
                "__module__": fn.__module__,
                "__qualname__": fn.__qualname__,
                "__wrapped__": staticmethod(fn),
            },
        )
        return cls

    return decorate
