"""Which signatures' data filters pass, remembered per argument value.

On a busy stream the same few values come back again and again (``/etc/ld.so.cache``
opened by every program start, the same shared libraries, the same sockets), and an
event name that many signatures select with data filters on one argument (a dozen
``pathname`` filters on ``security_file_open``) would run every filter on every event.
Which signatures of an event's route accept an event depends only on the values of the
arguments their filters read (``pathname``; ``pathname`` and ``prev_comm`` on
``sched_process_exec``): :func:`entry_picker` answers it once per distinct string value
(or combination of values) and then by a dictionary lookup.

:func:`remembered` does the same for one predicate (a replay's test of whether a record
must be decoded at all, :mod:`.prefilter`).

The memory is bounded (:data:`MAX_VALUES` values of at most :data:`MAX_VALUE_CHARS`
characters; it starts afresh when full), so values an attacker chooses cost at most
the filters' own time. Any other value (not a string, too long) is tested as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

__all__ = ["MAX_VALUES", "MAX_VALUE_CHARS", "entry_picker", "remembered"]

#: Distinct values remembered per route (then it starts afresh), and the longest one remembered.
MAX_VALUES: Final = 4096
MAX_VALUE_CHARS: Final = 512

S = TypeVar("S")
H = TypeVar("H")
Accept = Callable[[Mapping[str, Any]], bool]


def entry_picker(
    entries: tuple[tuple[S, H, Accept | None], ...], filtered_args: Sequence[str]
) -> Callable[[Mapping[str, Any]], tuple[tuple[S, H, Accept | None], ...] | None] | None:
    """``pick(args)``: of ``entries`` (``(signature, on_event, accept)``, ``accept`` the
    signature's merged data filter or ``None``), the entries whose filters accept ``args``, in their order, with their
    filter replaced by ``None`` (already passed); ``None`` when the value cannot be
    remembered (test the entries one by one): an argument the filters read is absent, not a
    string, or too long. ``entry_picker`` itself answers ``None`` when no filter reads an
    argument (nothing to remember)."""
    names = tuple(dict.fromkeys(filtered_args))
    if not names or all(entry[2] is None for entry in entries):
        return None
    if len(names) > 1:
        return _combination_picker(entries, names)
    arg = names[0]
    memo: dict[str, tuple[tuple[S, H, Accept | None], ...]] = {}

    def pick(args: Mapping[str, Any]) -> tuple[tuple[S, H, Accept | None], ...] | None:
        value = args.get(arg)
        if type(value) is not str:
            return None
        chosen = memo.get(value)
        if chosen is None:
            if len(value) > MAX_VALUE_CHARS:
                return None
            chosen = _remember(memo, value, _accepting(entries, args))
        return chosen

    return pick


def _combination_picker(
    entries: tuple[tuple[S, H, Accept | None], ...], names: tuple[str, ...]
) -> Callable[[Mapping[str, Any]], tuple[tuple[S, H, Accept | None], ...] | None]:
    """:func:`entry_picker` for filters reading several arguments: remembered per
    combination of their values."""
    memo: dict[tuple[Any, ...], tuple[tuple[S, H, Accept | None], ...]] = {}

    def pick(args: Mapping[str, Any]) -> tuple[tuple[S, H, Accept | None], ...] | None:
        key = tuple(map(args.get, names))
        try:
            chosen = memo.get(key)  # only combinations of short strings are ever stored
        except TypeError:  # an unhashable value (a list)
            return None
        if chosen is None:
            if not all(type(value) is str and len(value) <= MAX_VALUE_CHARS for value in key):
                return None
            chosen = _remember(memo, key, _accepting(entries, args))
        return chosen

    return pick


K = TypeVar("K")
V = TypeVar("V")


def _accepting(
    entries: tuple[tuple[S, H, Accept | None], ...], args: Mapping[str, Any]
) -> tuple[tuple[S, H, Accept | None], ...]:
    """The entries whose filters accept ``args``, their filters replaced by ``None`` (passed)."""
    return tuple(
        (signature, on_event, None) for signature, on_event, accept in entries if accept is None or accept(args)
    )


def _remember(memo: dict[K, V], key: K, value: V) -> V:
    """``memo[key] = value`` in a memory of at most :data:`MAX_VALUES` entries (then cleared)."""
    if len(memo) >= MAX_VALUES:
        memo.clear()
    memo[key] = value
    return value


def remembered(test: Accept, arg: str) -> Accept:
    """``test`` (a predicate over arguments that reads only ``arg``), its answer remembered
    per string value of ``arg``."""
    memo: dict[str, bool] = {}

    def remembering(args: Mapping[str, Any]) -> bool:
        value = args.get(arg)
        if type(value) is not str or len(value) > MAX_VALUE_CHARS:
            return test(args)
        answer = memo.get(value)
        if answer is None:
            answer = _remember(memo, value, test(args))
        return answer

    return remembering
