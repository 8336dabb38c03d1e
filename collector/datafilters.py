"""Signatures' data filters pushed into the kernel (bpf/datafilter.h), as Tracee's
``data_filter_exact``/``prefix``/``suffix`` maps do.

A signature that selects ``security_file_open`` with ``pathname="/etc/shadow"`` only ever
looks at a few of the thousands of opens a busy host makes a second. When every consumer
of an event filters it on the same path argument, the union of their patterns is a
necessary condition for the event to matter, and the kernel tests it before the record
is sent: an event no pattern can match never reaches user space (counted as *filtered in
the kernel*, not as lost). The engine still applies every signature's own filters in
user space, so the kernel's test may be looser than the patterns (it compares the first
and last 251 bytes of a path, and a substring's first 8 bytes), never stricter.

Where each kind of filter runs:

=====================================  ===========================================
in the kernel                          the pid, uid, comm and mount-namespace scopes,
                                       container-only, follow, pid=new (KernelFilters),
                                       and the signatures' pathname filters of the
                                       events in :data:`KERNEL_FILTERABLE` (exact,
                                       ``prefix*``, ``*suffix``, ``*substring*``)
in user space (collector/filters.py)   scope ranges and ``!=``, comm patterns, uts,
                                       executable, container ids, and the ``-e``
                                       argument and return-value filters
in the engine (the selector index)     every signature's data filters and origins,
                                       on every event that reaches user space
=====================================  ===========================================

An event is not filtered in the kernel when something takes it whole: it is printed
(``-e``), or a signature selects it without a filter on the argument (or selects every
event), or a pattern cannot be tested there (``*``, longer than :data:`MAX_PATTERN`
bytes, more than :data:`wire.DF_CONTAINS_MAX` substrings or :data:`MAX_MAP_PATTERNS`
exact and prefix (or suffix) patterns, a NUL or U+FFFD in it).
:func:`plan` says which and why.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import reduce
from typing import Any, Final

from pytracee.engine.selectors import ANY, ArgPattern, EventSelector

from . import wire

__all__ = ["KERNEL_FILTERABLE", "MAX_PATTERN", "DataFilterPlan", "install", "plan"]

#: The events whose argument the kernel can test, and that argument (df_pass's callers).
KERNEL_FILTERABLE: Final[Mapping[str, str]] = {"security_file_open": "pathname"}
#: The longest pattern the kernel tests, in UTF-8 bytes (an exact one is stored with its NUL).
MAX_PATTERN: Final = wire.DF_STR_LEN - 2
DF_ON, DF_PREFIX, DF_SUFFIX = 0x1, 0x2, 0x4  # bpf/datafilter.h
#: Entries df_prefix (exact and prefix patterns) and df_suffix each hold (bpf/datafilter.h).
MAX_MAP_PATTERNS: Final = 1024


@dataclass
class DataFilterPlan:
    """What goes into the kernel: event name -> the union of its consumers' patterns on
    :data:`KERNEL_FILTERABLE`'s argument; and, for the filterable events that stay whole
    in user space, why."""

    filters: dict[str, ArgPattern] = field(default_factory=dict)
    not_filtered: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the log: which events are filtered where."""
        parts = [f"{event}.{KERNEL_FILTERABLE[event]} in the kernel" for event in sorted(self.filters)]
        parts += [f"{event} not ({why})" for event, why in sorted(self.not_filtered.items())]
        return "data filters: " + "; ".join(parts) if parts else "data filters: none in the kernel"


def plan(consumers: Iterable[tuple[str, EventSelector]], printed: Collection[str]) -> DataFilterPlan:
    """The kernel data filters for these consumers ((signature id, selector) pairs, Tracee
    events only) when the events in ``printed`` are printed whole."""
    by_event: dict[str, list[tuple[str, EventSelector]]] = {}
    wildcard = ""
    for sig_id, selector in consumers:
        if selector.source != "tracee":
            continue
        if selector.name == ANY:
            wildcard = wildcard or sig_id
        by_event.setdefault(selector.name, []).append((sig_id, selector))
    result = DataFilterPlan()
    for event, arg in KERNEL_FILTERABLE.items():
        selectors = by_event.get(event)
        if not selectors:
            continue  # no signature wants it
        reason = _why_not(event, arg, selectors, printed, wildcard)
        if reason:
            result.not_filtered[event] = reason
            continue
        union = reduce(lambda a, b: a | b, (s.filters[arg] for _, s in selectors))
        reason = _untestable(union)
        if reason:
            result.not_filtered[event] = reason
        else:
            result.filters[event] = union
    return result


def _why_not(
    event: str, arg: str, selectors: list[tuple[str, EventSelector]], printed: Collection[str], wildcard: str
) -> str:
    if event in printed:
        return "printed: every event is wanted"
    if wildcard:
        return f"{wildcard} selects every event"
    whole = sorted({sig_id for sig_id, s in selectors if arg not in s.filters})
    if whole:
        return f"{', '.join(whole)} takes it without a {arg} filter"
    return ""


def _untestable(pattern: ArgPattern) -> str:
    if pattern.anything:
        return "a pattern matches everything"
    if len(pattern.contains) > wire.DF_CONTAINS_MAX:
        return f"more than {wire.DF_CONTAINS_MAX} substring patterns"
    if len(pattern.exact) + len(pattern.prefixes) > MAX_MAP_PATTERNS:
        return f"more than {MAX_MAP_PATTERNS} exact and prefix patterns"
    if len(pattern.suffixes) > MAX_MAP_PATTERNS:
        return f"more than {MAX_MAP_PATTERNS} suffix patterns"
    for text in (*pattern.exact, *pattern.prefixes, *pattern.suffixes, *pattern.contains):
        if "\0" in text or "\ufffd" in text:
            return f"pattern {text!r} has a NUL or U+FFFD"
        if len(text.encode()) > MAX_PATTERN:
            return f"a pattern is longer than {MAX_PATTERN} bytes"
    return ""


def _key(event_id: int, data: bytes) -> tuple[int, int, bytes]:
    """An LPM key (prefixlen in bits over event_id and data) as wire.DF_KEY packs it."""
    return (32 + 8 * len(data), event_id, data)


def entries(event_id: int, pattern: ArgPattern) -> tuple[tuple[Any, ...], list[Any], list[Any]]:
    """(df_events value, df_prefix keys, df_suffix keys) of one event's pattern."""
    prefix_keys = [_key(event_id, text.encode() + b"\0") for text in sorted(pattern.exact)]
    prefix_keys += [_key(event_id, text.encode()) for text in pattern.prefixes]
    suffix_keys = [_key(event_id, text.encode()[::-1]) for text in pattern.suffixes]
    contains = [0] * wire.DF_CONTAINS_MAX
    masks = [0] * wire.DF_CONTAINS_MAX
    for i, text in enumerate(pattern.contains):
        head = text.encode()[:8]
        contains[i] = int.from_bytes(head, "little")
        masks[i] = (1 << (8 * len(head))) - 1
    flags = DF_ON | (DF_PREFIX if prefix_keys else 0) | (DF_SUFFIX if suffix_keys else 0)
    return (flags, len(pattern.contains), contains, masks), prefix_keys, suffix_keys


def install(update: Any, filters: Mapping[str, ArgPattern]) -> None:
    """Write ``filters`` into the object's maps through ``update(map name, key, value)``
    (keys and values as collector/wire.py's MAPS packs them)."""
    for event, pattern in filters.items():
        event_id = wire.EVENTS[event].id
        value, prefix_keys, suffix_keys = entries(event_id, pattern)
        for key in prefix_keys:
            update("df_prefix", key, 1)
        for key in suffix_keys:
            update("df_suffix", key, 1)
        flags, count, contains, masks = value
        update("df_events", event_id, (flags, count, *contains, *masks))
