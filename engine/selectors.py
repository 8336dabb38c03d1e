"""Event selectors: which events a signature receives.

A selector names an event source, an event name and an origin, with ``"*"`` as
a wildcard, exactly like Tracee's ``detect.SignatureEventSelector``. It may add
*data filters* on string arguments, in Tracee's policy syntax::

    select("security_file_open", origin="container", pathname="*/release_agent")
    select("security_inode_rename", new_path=["/etc/sudoers", "/etc/sudoers.d/*"])

A pattern is exact (``/etc/shadow``), a prefix (``/etc/*``), a suffix
(``*/mem``) or a substring (``*docker.sock*``). Several patterns for one
argument are OR-ed; several arguments are AND-ed. The engine only calls a
signature for events that pass its filters, and it merges the filters of all
signatures interested in an event into one cheap test (:func:`union_gate`), so
uninteresting events cost a few string comparisons however many signatures
there are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["ANY", "ORIGINS", "ArgPattern", "EventSelector", "SelectorError", "select"]

ANY: Final = "*"
#: Origins an event can have (see :attr:`pytracee.engine.events.Event.origin`).
ORIGINS: Final = ("host", "container", "container-init")


class SelectorError(ValueError):
    """A selector or data filter is malformed."""


@dataclass(frozen=True, slots=True)
class ArgPattern:
    """A compiled set of OR-ed patterns for one string argument."""

    exact: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()
    anything: bool = False

    def __reduce__(
        self,
    ) -> tuple[type[ArgPattern], tuple[frozenset[str], tuple[str, ...], tuple[str, ...], tuple[str, ...], bool]]:
        """Pickled and copied by its fields, through ``__init__`` (compiled, a frozen class takes no state)."""
        return (ArgPattern, (self.exact, self.prefixes, self.suffixes, self.contains, self.anything))

    @classmethod
    def parse(cls, patterns: str | Iterable[str]) -> ArgPattern:
        """Compile Tracee-style patterns (``x``, ``x*``, ``*x``, ``*x*``, ``*``)."""
        if isinstance(patterns, str):
            patterns = [patterns]
        exact: set[str] = set()
        prefixes: list[str] = []
        suffixes: list[str] = []
        contains: list[str] = []
        anything = False
        for pattern in patterns:
            if not isinstance(pattern, str):
                raise SelectorError(f"filter pattern must be a string, not {pattern!r}")
            stars = pattern.count("*")
            if pattern in ("*", "**"):
                anything = True
            elif stars == 0:
                exact.add(pattern)
            elif stars == 2 and pattern.startswith("*") and pattern.endswith("*"):
                contains.append(pattern[1:-1])
            elif stars == 1 and pattern.endswith("*"):
                prefixes.append(pattern[:-1])
            elif stars == 1 and pattern.startswith("*"):
                suffixes.append(pattern[1:])
            else:
                raise SelectorError(
                    f"unsupported filter pattern {pattern!r}: use exact, 'prefix*', '*suffix' or '*substring*'"
                )
        if not (exact or prefixes or suffixes or contains or anything):
            raise SelectorError("a data filter needs at least one pattern")
        return cls(frozenset(exact), tuple(prefixes), tuple(suffixes), tuple(contains), anything)

    def matches(self, value: Any) -> bool:
        """True when ``value`` is a string matching one of the patterns."""
        if type(value) is not str:
            return False
        return (
            self.anything
            or value in self.exact
            or (bool(self.prefixes) and value.startswith(self.prefixes))
            or (bool(self.suffixes) and value.endswith(self.suffixes))
            or any(part in value for part in self.contains)
        )

    def compile(self) -> Callable[[Any], bool]:
        """:meth:`matches` as one closure over the patterns (what the engine's routes call)."""
        if self.anything:
            return lambda value: type(value) is str
        exact, prefixes, suffixes = self.exact, self.prefixes, self.suffixes
        search = re.compile("|".join(map(re.escape, self.contains))).search if self.contains else None
        if search is None:
            return lambda value: (
                type(value) is str and (value in exact or value.startswith(prefixes) or value.endswith(suffixes))
            )
        return lambda value: (
            type(value) is str
            and (value in exact or value.startswith(prefixes) or value.endswith(suffixes) or search(value) is not None)
        )

    def __str__(self) -> str:
        """The patterns in Tracee's syntax, comma-separated."""
        parts = ["*"] if self.anything else []
        parts += sorted(self.exact)
        parts += (
            [p + "*" for p in self.prefixes] + ["*" + s for s in self.suffixes] + ["*" + c + "*" for c in self.contains]
        )
        return ",".join(parts)

    def __or__(self, other: ArgPattern) -> ArgPattern:
        return ArgPattern(
            self.exact | other.exact,
            self.prefixes + other.prefixes,
            self.suffixes + other.suffixes,
            self.contains + other.contains,
            self.anything or other.anything,
        )


@dataclass(frozen=True, slots=True)
class EventSelector:
    """Which events a signature wants: ``source``/``name``/``origin`` plus data filters.

    :param name: the event name, or ``"*"`` for every event of the source.
    :param origin: ``"host"``, ``"container"``, ``"container-init"`` or ``"*"``.
    :param source: the event source; ``"tracee"`` for Tracee events.
    :param filters: argument name -> compiled patterns, all of which must match.
    :param recorded_only: the event exists only in recordings of older Tracee releases
        (read for compatibility): it is routed like any other, but not among the events
        a tracer is asked to trace (``tracee-rules --list-events``, ``tracee``).
    """

    name: str = ANY
    origin: str = ANY
    source: str = "tracee"
    filters: Mapping[str, ArgPattern] = field(default_factory=dict)
    recorded_only: bool = False

    def __post_init__(self) -> None:
        if not self.source:
            raise SelectorError("selector has an empty source")
        if self.origin not in ORIGINS and self.origin != ANY:
            raise SelectorError(f"unknown origin {self.origin!r}; expected one of {', '.join(ORIGINS)} or '*'")
        if self.filters and self.name == ANY:
            raise SelectorError("data filters need an event name, not '*'")

    def accepts(self, args: Mapping[str, Any]) -> bool:
        """True when ``args`` (name -> value) pass every data filter."""
        return all(pattern.matches(args.get(arg)) for arg, pattern in self.filters.items())

    def __reduce__(self) -> tuple[type[EventSelector], tuple[str, str, str, Mapping[str, ArgPattern], bool]]:
        """Pickled and copied by its fields, through ``__init__`` (compiled, a frozen class takes no state)."""
        return (EventSelector, (self.name, self.origin, self.source, self.filters, self.recorded_only))

    def to_dict(self) -> dict[str, str]:
        """Tracee's JSON form: ``{"source", "name", "origin"}``."""
        return {"source": self.source, "name": self.name, "origin": self.origin}

    def __str__(self) -> str:
        text = f"{self.source}:{self.name}:{self.origin}"
        return text + "".join(f" {arg}={pattern}" for arg, pattern in self.filters.items())


def select(name: str = ANY, origin: str = ANY, source: str = "tracee", **filters: str | Sequence[str]) -> EventSelector:
    """Build an :class:`EventSelector`; keyword arguments are data filters.

    An empty name or origin means ``"*"``, as in Tracee.

    ``select("security_file_open", pathname=["/etc/*", "*/shadow"])`` selects
    opens of paths under /etc or ending in /shadow.
    """
    return EventSelector(name or ANY, origin or ANY, source, {arg: ArgPattern.parse(p) for arg, p in filters.items()})


Accept = Callable[[Mapping[str, Any]], bool]


def accept_any_of(selectors: Sequence[EventSelector]) -> Accept | None:
    """One predicate over event args that is true when any selector's filters pass.

    ``None`` means "always true" (some selector has no filter), which lets the
    engine skip the call entirely.
    """
    if any(not s.filters for s in selectors):
        return None
    compiled = [tuple((arg, pattern.compile()) for arg, pattern in s.filters.items()) for s in selectors]
    if len(compiled) == 1:
        checks = compiled[0]
        if len(checks) == 1:
            ((arg, matches),) = checks
            return lambda args: matches(args.get(arg))
        return lambda args: all(matches(args.get(arg)) for arg, matches in checks)
    return lambda args: any(all(matches(args.get(arg)) for arg, matches in checks) for checks in compiled)


def union_gate(filter_sets: Sequence[Sequence[EventSelector]]) -> Accept | None:
    """A cheap necessary condition for "some signature wants this event".

    ``filter_sets`` holds, per signature, the selectors through which it gets
    the event. If every signature filters, each one's acceptance implies that its
    first filter matches, so OR-ing the first filters (merged per argument into a
    single :class:`ArgPattern`) rejects most uninteresting events at once. Returns
    ``None`` when some signature takes the event unfiltered.
    """
    merged: dict[str, ArgPattern] = {}
    for selectors in filter_sets:
        for selector in selectors:
            if not selector.filters:
                return None
            arg, pattern = next(iter(selector.filters.items()))
            merged[arg] = merged[arg] | pattern if arg in merged else pattern
    if not merged:
        return None
    checks = tuple((arg, pattern.compile()) for arg, pattern in merged.items())
    if len(checks) == 1:
        ((arg, matches),) = checks
        return lambda args: matches(args.get(arg))
    return lambda args: any(matches(args.get(arg)) for arg, matches in checks)
