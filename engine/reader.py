"""Reading Tracee events: files or stdin, plain or gzip, JSON Lines or a JSON array.

:class:`EventReader` yields :class:`~pytracee.engine.events.Event` objects. It
accepts ``trace.Event`` JSON from Tracee v0.8 to v0.24.1: one object per line
(what ``tracee -o json`` writes) or one JSON array of objects, compressed or not
(detected from the content, not the file name).

A record that cannot be used (invalid JSON, not an object, no ``eventName``,
a field of the wrong type, an unknown event name, a line longer than
``max_line_size``) is reported on the ``pytracee.input`` logger with its file
and line, counted by reason, and skipped; the run goes on. With ``strict=True``
the first such record raises :class:`~pytracee.engine.errors.InputError` instead.
Nothing is dropped without being counted in its
:class:`~pytracee.engine.sources.SourceStats`: the reader is an
:class:`~pytracee.engine.sources.EventSource`.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import os
import sys
import zlib
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final

import orjson

from .envelope import MAX_NESTING, Envelope, guess_event_name, may_nest_too_deeply, read_envelope
from .errors import InputError
from .events import LAZY_FIELDS, Event, LazyEvent
from .filtermemo import MAX_VALUE_CHARS, MAX_VALUES
from .prefilter import Admission
from .records import RecordSplitter, TruncatedInput
from .recscan import extract as _compiled_extract
from .recscan import plain_event as _compiled_plain_event
from .recscan import scan as _compiled_scan
from .recscan import scan_lines as _compiled_scan_lines
from .recscan import split_args as _compiled_split_args
from .sharding import ObserveOthers, placement_names, record_owner, shard_of
from .sources import REPORTED_PER_PLACE, SkipLog, SourceStats
from .walkahead import ring_for

__all__ = ["DEFAULT_MAX_LINE_SIZE", "MAX_NESTING", "STDIN", "EventReader"]

log = logging.getLogger("pytracee.input")

#: Tracee's tracee-rules read lines with Go's bufio.Scanner, whose limit is 64 KiB.
DEFAULT_MAX_LINE_SIZE: Final = 64 * 1024
#: Source name meaning standard input.
STDIN: Final = "-"
#: How many bad records per source are described before the rest are only counted.
REPORTED_PER_SOURCE: Final = REPORTED_PER_PLACE


_INT_FIELDS: Final = ("timestamp", "processId", "threadId", "parentProcessId", "hostProcessId", "userId", "returnValue")
_STR_FIELDS: Final = ("processName", "hostName", "containerId")
_OBJECT_FIELDS: Final = ("contextFlags", "container", "kubernetes", "executable")


class EventReader:
    """Iterate over the events of one or more sources, in order.

    :param sources: paths, or ``"-"`` for standard input.
    :param strict: raise :class:`InputError` at the first bad record.
    :param max_line_size: longest accepted JSON line in bytes (0: no limit).
    :param is_known_event: predicate for event names; records with other names
        are skipped as ``unknown event``. ``None`` accepts every name.
    :param stdin: the binary stream standing for ``"-"`` (default: ``sys.stdin.buffer``).
    :param wanted_events: names of the events to deliver (``None``: all). A record
        of another event is checked (:mod:`~pytracee.engine.recscan`, else
        :func:`~pytracee.engine.envelope.read_envelope`)
        and counted as read (and in ``stats.undecoded``), but not decoded nor
        delivered; a record that is not certainly a valid event is decoded and
        validated in full, so it is reported with its reason and line as always.
        The collection is consulted as the records are read (not copied): a
        consumer may add names to it until the run starts
        (:attr:`~pytracee.engine.session.Session.wanted_events`).
    :param admissions: for events not in ``wanted_events``: event name -> predicate
        over the record's envelope, true when it must be decoded and delivered
        after all (the signatures' origins and data filters,
        :func:`~pytracee.engine.prefilter.plan_decoding`).
    :param shard: ``(index, count)``: handle only the records of this shard
        (``tracee-rules --workers``): each shard's reader reads all the input, and
        each record has one owner, which alone decodes, counts and reports it. The
        events that will be decoded go by process (:func:`shard_of`: a container's
        events, or a host process's, all go to one shard, in input order); the
        others by line number.
    :param observe_others: with ``shard``: :class:`ObserveOthers`: the records other shards own
        that a process tree learns from are shown here too (not delivered, counted or reported:
        their owner does that): every fork, exec and exit, and the context of the events their
        owner decodes whose process the tree does not know yet; read in place where the compiled
        scanner can, else decoded.
    :param lazy_events: names of events delivered as :class:`~pytracee.engine.events.LazyEvent`
        (decoded when first read beyond their context fields) where the compiled scanner proves
        the record well-formed: the events only engine observers want.
    :param lazy_args: of those, event name -> the arguments read in place too
        (:attr:`~pytracee.engine.session.Session.lazy_args`).
    :param lazy_idle: of those, event name -> a test over the fields read in place, true when
        nothing would use the event now (:attr:`~pytracee.engine.session.Session.lazy_idle`): it is
        then counted as read and not decoded, as an event nobody wants. Consulted as records are
        read (not copied).
    :param on_next_input: called before each input file but the first is read, once the events
        of those before have been delivered (:meth:`~pytracee.engine.session.Session.next_input`).
    :param walk_ahead: with ``shard`` and a single source: the ring of its owner walk done once
        ahead of the workers (:attr:`~pytracee.engine.walkahead.WalkAhead.ring`), from which the
        compiled loop places the records its walker has reached (the same answers).
    """

    def __init__(
        self,
        sources: Sequence[str | Path],
        *,
        strict: bool = False,
        max_line_size: int = DEFAULT_MAX_LINE_SIZE,
        is_known_event: Callable[[str], bool] | None = None,
        stdin: IO[bytes] | None = None,
        wanted_events: Collection[str] | None = None,
        admissions: Mapping[str, Callable[[Envelope], bool]] | None = None,
        shard: tuple[int, int] | None = None,
        observe_others: ObserveOthers | None = None,
        lazy_events: Collection[str] = (),
        lazy_args: Mapping[str, Sequence[str]] | None = None,
        lazy_idle: Mapping[str, Callable[[Mapping[str, Any]], bool]] | None = None,
        on_next_input: Callable[[], None] | None = None,
        walk_ahead: object | None = None,
    ) -> None:
        self.sources = [str(s) for s in sources] or [STDIN]
        if self.sources.count(STDIN) > 1:
            raise ValueError("standard input ('-' or file:stdin) can be read only once")
        self.strict = strict
        self.max_line_size = max_line_size
        self.is_known_event = is_known_event
        self.wanted_events = wanted_events
        self.admissions: Mapping[str, Callable[[Envelope], bool]] = admissions or {}
        if shard is not None and not 0 <= shard[0] < shard[1]:
            raise ValueError(f"shard {shard[0]} of {shard[1]} does not exist")
        self.shard = shard
        self.observe_others = observe_others if shard is not None else None
        self.lazy_events = frozenset(lazy_events)
        self.lazy_args = {name: tuple((lazy_args or {}).get(name, ())) for name in self.lazy_events}
        self.lazy_idle: Mapping[str, Callable[[Mapping[str, Any]], bool]] = lazy_idle if lazy_idle is not None else {}
        self.on_next_input = on_next_input
        self.walk_ahead = walk_ahead if shard is not None and len(self.sources) == 1 else None
        self.stats = SourceStats()
        self._stdin = stdin
        self._log = SkipLog(log, REPORTED_PER_SOURCE)
        self._iterator: Generator[Event, None, None] | None = None
        #: The descriptor being read now (None between sources), and the bytes of the sources
        #: read to their end: what progress and health reports look at, from any thread.
        self.current_fd: int | None = None
        self.completed_bytes = 0
        #: Under ``--workers``, for the main process's reader, which reads nothing itself: the
        #: bytes read by the slowest worker still reading, and whether any still is (None: not
        #: sharded), as :func:`~pytracee.engine.parallel.replay_sharded` learns them.
        self.workers_position: tuple[int, bool] | None = None

    def __iter__(self) -> Iterator[Event]:
        self._iterator = self._events()
        return self._iterator

    def _events(self) -> Generator[Event, None, None]:
        for index, source in enumerate(self.sources):
            if index and self.on_next_input is not None:
                self.on_next_input()
            name = "<stdin>" if source == STDIN else source
            stream = self._open(source, name)
            try:
                yield from self._read(stream, name)
                self.completed_bytes += _position(self.current_fd)
            finally:
                self.current_fd = None
                if source != STDIN:  # standard input belongs to the process
                    stream.close()

    # --- bad records -------------------------------------------------------------------

    def reject(self, where: str, line: int, reason: str, detail: str) -> None:
        """Count a record as skipped and report it (or raise, when strict).

        Used by the reader itself and, through :meth:`skip`, for events the
        engine found malformed.
        """
        message = f"{where}:{line}: {reason}: {detail}" if line else f"{where}: {reason}: {detail}"
        if self.strict:
            raise InputError(message)
        self.stats.skipped_by_reason[reason] += 1
        self._log(where, message)

    # --- the EventSource protocol ------------------------------------------------------

    def where(self, event: Event) -> str:
        """``file:line`` of an event this reader delivered."""
        return event.location

    def skip(self, event: Event, reason: str, detail: str) -> None:
        """Count an event already delivered as skipped after all (its args proved unreadable)."""
        self.stats.events -= 1
        self.reject(event._where, event._line, reason, detail)

    def summary(self) -> str:
        """``"3 events read, 2 skipped (invalid JSON: 1, unknown event: 1)"``."""
        return self.stats.describe()

    def close(self) -> None:
        """Stop reading: the file being read is closed (standard input stays open)."""
        if self._iterator is not None:
            self._iterator.close()

    # --- sources ---------------------------------------------------------------------

    def _open(self, source: str, name: str) -> IO[bytes]:
        if source == STDIN:
            raw: IO[bytes] = self._stdin if self._stdin is not None else sys.stdin.buffer
            # sys.stdin.buffer can peek and hands out lines as they arrive; wrap anything else
            stream = raw if hasattr(raw, "peek") else io.BufferedReader(raw)  # type: ignore[type-var]
        else:
            try:
                stream = open(source, "rb")  # noqa: SIM115 - closed by the caller's with
            except OSError as exc:
                raise InputError(f"cannot open input {name}: {exc.strerror or exc}") from None
        try:
            self.current_fd = stream.fileno()
        except (OSError, ValueError, AttributeError):  # a stream without a descriptor (tests)
            self.current_fd = None
        if stream.peek(2)[:2] == b"\x1f\x8b":
            return _GzipSource(stream, name)  # type: ignore[return-value]
        return stream

    def _read(self, stream: IO[bytes], name: str) -> Iterator[Event]:  # noqa: C901 - the hot loop, in one piece
        loads = orjson.loads
        stats = self.stats
        reject = self.reject
        shard = self.shard
        index, count = shard if shard is not None else (0, 1)

        def report(line: int, reason: str, detail: str) -> None:  # lines too long, truncated input
            if shard is None or line % count == index:
                reject(name, line, reason, detail)

        envelope = read_envelope
        name_of = guess_event_name
        wanted = self.wanted_events
        admissions = self.admissions
        known = self.is_known_event
        owner_of = self._owner_function()
        others = self.observe_others
        observed, observe, observe_fields, fields_read, args_read, processes = others or ((), None, None, (), {}, None)
        extract = _compiled_extract
        lazy = self.lazy_args if extract is not None else {}  # event -> the arguments read in place
        idle = self.lazy_idle  # event -> "nothing would use it now": counted, not decoded
        scan = _compiled_scan
        split = _compiled_split_args
        # the compiled scanner reads the arguments of admissions it can test on what it read
        fast: dict[str, Callable[[str, Mapping[str, Any]], bool]] = {}
        arg_table: dict[str, tuple[str, ...]] = {}
        for event_name, admission in admissions.items():
            if isinstance(admission, Admission):
                fast[event_name], arg_table[event_name] = admission.admits, admission.arg_names
        decoded, shown = placement_names(wanted, admissions, others)
        owners: dict[str, int] = {}  # container id -> its shard
        actions: dict[str, int] = {}  # 0: a known event nobody wants (the compiled loop counts those itself)
        # event -> origin -> (argument, {value: admitted?}): admissions' answers per value (those that read one argument)
        verdicts: dict[str, dict[str, tuple[str, dict[str, bool]]]] = {}
        scanning = None
        # names decoded whole without a scan: as the compiled loop guesses them, or (sharded) as its owner walk reads them
        plain = _compiled_plain_event
        direct = frozenset(wanted).difference(lazy) if wanted is not None and plain is not None else frozenset()
        if scan is not None and _compiled_scan_lines is not None:
            # sharded, the compiled loop reads in place what the tree needs of other shards' records
            tree_reads = shard is not None and observe_fields is not None
            tree_args = dict(args_read) if tree_reads else None
            keys = (
                LAZY_FIELDS if tree_args is None else (*LAZY_FIELDS, *(k for k in fields_read if k not in LAZY_FIELDS))
            )
            plan = (
                arg_table,
                actions,
                decoded,
                shown,
                index,
                count if shard is not None else 0,
                verdicts,
                lazy,
                keys,
                processes if tree_reads else None,
                direct,
                tree_args,
                len(LAZY_FIELDS),
                ring_for(self.walk_ahead, self.current_fd, index, decoded, shown),
            )

            def left_out(records: int) -> None:
                stats.events += records
                stats.undecoded += records

            scanning = (_compiled_scan_lines, plan, left_out)

        def decoded_by_admission(event: str, origin: str, args: Any, text: bytes) -> bool:
            """Whether a known event nobody wants whole is decoded after all: its admission (the
            signatures' origins and data filters) takes this record. Answers are remembered for
            the compiled loop (``args`` is True where it found one that admits the record); an
            event without an admission is marked as one nobody wants."""
            if args is True:
                return True
            admits = fast.get(event)
            if admits is not None and args is not None:
                take = admits(origin, args)
                if scanning is not None:  # the compiled loop leaves the next alike out, or marks it admitted
                    _remember_verdict(verdicts, event, origin, arg_table[event], args, take)
                return take
            admit = admissions.get(event)
            if admit is None:
                if len(actions) < _MAX_ACTIONS:
                    actions[event] = 0  # known, and nobody wants it
                return False
            return _admitted(admit, text)

        def unsure(text: bytes, guess: str, lineno: int, report: Callable[[str, int, str, str], None]) -> Any:
            """A record the scanner was not sure of (``guess``: the name it seems to have), read as
            its owner reads it: its JSON object, False when nobody decodes it (a known event neither
            wanted nor admitted), None when rejected (told to ``report``)."""
            # an event some consumer surely wants is validated in full; others by their envelope first
            head = None if wanted is not None and guess in wanted else envelope(text)
            if head is not None and (known is None or known(head.eventName)):
                # a well-formed event: decoded only when some consumer wants it
                if wanted is not None and head.eventName not in wanted:
                    admit = admissions.get(head.eventName)
                    if admit is None or not admit(head):
                        return False
                if not may_nest_too_deeply(text):
                    try:
                        return loads(text)
                    except orjson.JSONDecodeError as exc:
                        report(name, lineno, *_json_problem(text, exc))
                        return None
            raw = self._validated(text, name, lineno, report)
            if raw is None or wanted is None or raw["eventName"] in wanted:
                return raw
            admit = admissions.get(raw["eventName"])
            # an event nobody wants, odd only in its form, or (a nested "eventName" of a wanted one
            # came first) one only admitted: counted like the others of its name, the admission deciding
            return raw if admit is not None and _admitted(admit, text) else False

        def in_parts(text: bytes, lineno: int) -> Event | None:
            """The event of a record decoded in two parts (:data:`~.recscan.split_args`: its arguments
            read in place, the rest by ``orjson``), when it passes the test of a usable event at
            once; None: not sure (the caller decodes it whole, which finds what is wrong)."""
            parts = split(text) if split is not None and plain is not None else None
            if parts is None:
                return None
            try:
                head = loads(parts[1])
            except orjson.JSONDecodeError:
                return None
            if plain is None or not plain(head):
                return None
            return Event(head, "tracee", name, lineno, text, parts[0], (parts[2], parts[3]))

        def show_unsure(text: bytes, guess: str, lineno: int) -> None:
            """Another shard's record the scanner was not sure of, shown to this shard's tree as one
            process's tree would see it: if its owner decodes it (the owner reports what is wrong)."""
            if observe is not None:
                raw = unsure(text, guess, lineno, _unreported)
                if type(raw) is dict:
                    _show_to(observe, raw, text, name, lineno)

        def show_other(event: str, text: bytes, lineno: int) -> None:
            """Another shard's event for this shard's process tree (read in place if it can)."""
            read = None if extract is None else extract(text, fields_read, args_read.get(event, ()))
            if read is not None and observe_fields is not None:
                observe_fields(*read)
            elif observe is not None:
                _show_decoded(observe, text, name, lineno)

        def learn_other(found: Any, text: bytes, lineno: int) -> None:
            """Another shard's event whose process this shard's tree may not know: learnt from when
            its owner decodes it (a known event, wanted or admitted), as one process's tree would.
            ``found``: scan()'s answer, and from the compiled loop its fields read (None: not sure)."""
            event, origin, args = found[0], found[1], found[4]
            if observe_fields is None or (known is not None and not known(event)):
                return
            if wanted is not None and event not in wanted and not decoded_by_admission(event, origin, args, text):
                return
            fields = found[5] if len(found) > 5 else None
            if fields is not None:
                observe_fields(fields, {})  # its context only: args_read names none of its arguments
            else:
                show_other(event, text, lineno)

        for text, lineno, found in RecordSplitter(stream, self.max_line_size, report, scanning):
            if found is ...:  # another shard's, unsure
                show_unsure(text, name_of(text), lineno)
                continue
            if found is True:  # not scanned: named as an event wanted whole, decoded and validated here
                decoded_event = in_parts(text, lineno)
                if decoded_event is not None:
                    read_name = decoded_event.name
                    if read_name in direct and (known is None or known(read_name)):
                        stats.events += 1
                        yield decoded_event
                        continue
                try:
                    raw = loads(text)
                except orjson.JSONDecodeError as exc:
                    reject(name, lineno, *_json_problem(text, exc))
                    continue
                event = raw.get("eventName") if type(raw) is dict else None
                if type(event) is str and event in direct:  # the name the compiled loop read first is the one decoded
                    if plain is not None and plain(raw) and (known is None or known(event)):
                        problem = None
                    else:
                        problem = self._check(raw)
                    if problem is not None:
                        reject(name, lineno, *problem)
                        continue
                    stats.events += 1
                    yield Event(raw, "tracee", name, lineno, text)
                    continue
                # another name after all (one "eventName" nested before the real one): scanned; with
                # shards the compiled loop found this shard the owner (by the record's own fields)
                found = None if shard is None else ()
            placed = found is not None  # the compiled loop answered: a tuple there is this shard's record
            if not placed and scan is not None:
                found = scan(text, arg_table)
            if found:  # certainly a well-formed event, nested at most MAX_NESTING deep (False: not sure)
                if type(found) is not tuple:  # from the compiled loop: the record's fate is decided
                    if type(found) is str:  # another shard's, shown to this shard's process tree
                        show_other(found, text, lineno)
                        continue
                    if type(found) is list:
                        if len(found) == 2:  # another shard's, shown to this shard's tree: (fields, args)
                            observe_fields(found[0], found[1])  # type: ignore[misc]
                        else:  # another shard's, of a process this shard's tree may not know
                            learn_other(found, text, lineno)
                        continue
                    event = found["eventName"]
                    if known is None or known(event):  # an event only observers want: lazily
                        stats.events += 1
                        unused = idle.get(event) if idle else None
                        if unused is not None and unused(found):
                            stats.undecoded += 1
                            continue
                        yield LazyEvent(found, text, "tracee", name, lineno, lazy[event])
                        continue
                    found = scan(text, arg_table)  # type: ignore[misc]  # an unknown name: reported below
                event, origin, container, pid, args = found
                if shard is not None and not placed:
                    if decoded is not None and event not in decoded:
                        owner = lineno % count
                    elif not container:
                        owner = pid % count  # shard_of's answer, inline
                    else:
                        owner = owners.get(container, -1)
                        if owner < 0:
                            owner = shard_of(container, pid, count)
                            if len(owners) < _MAX_OWNERS:  # made-up ids are hashed each time
                                owners[container] = owner
                    if owner != index:
                        if observe is not None and event in observed:
                            show_other(event, text, lineno)
                        elif processes is not None:
                            learn_other(found, text, lineno)
                        continue  # another shard's record: it decodes, counts and reports it
                if known is None or known(event):
                    if (
                        wanted is not None
                        and event not in wanted
                        and not decoded_by_admission(event, origin, args, text)
                    ):
                        stats.events += 1
                        stats.undecoded += 1
                        continue
                    if event in lazy:
                        read = extract(text, LAZY_FIELDS, lazy[event])  # type: ignore[misc]
                        if read is not None:
                            stats.events += 1
                            if lazy[event]:
                                read[0]["args"] = read[1]
                            unused = idle.get(event) if idle else None
                            if unused is not None and unused(read[0]):
                                stats.undecoded += 1
                                continue
                            yield LazyEvent(read[0], text, "tracee", name, lineno, lazy[event])
                            continue
                    decoded_event = in_parts(text, lineno)
                    if decoded_event is not None:
                        stats.events += 1
                        yield decoded_event
                        continue
                    try:
                        raw = loads(text)
                    except orjson.JSONDecodeError as exc:  # never, when the scanner is right
                        reject(name, lineno, *_json_problem(text, exc))
                        continue
                    stats.events += 1
                    yield Event(raw, "tracee", name, lineno, text)
                    continue
            else:
                guess = name_of(text) if wanted is not None or observe is not None else ""
                # () from the compiled loop: this shard owns it (only the arguments it read were odd)
                if owner_of is not None and found != () and owner_of(text, lineno, guess) != index:
                    if guess in observed or processes is not None:
                        show_unsure(text, guess, lineno)
                    continue  # another shard's record: it decodes, counts and reports it
                raw = unsure(text, guess, lineno, reject)
                if raw is not None:
                    stats.events += 1
                    if raw is False:
                        stats.undecoded += 1
                    else:
                        yield Event(raw, "tracee", name, lineno, text)
                continue
            raw = self._validated(text, name, lineno, reject)
            if raw is None:
                continue
            stats.events += 1
            yield Event(raw, "tracee", name, lineno, text)

    def _owner_function(self) -> Callable[[bytes, int, str], int] | None:
        """``owner(text, line, guessed_name)``: the shard that handles a record (None: no shards).

        A record that will likely be decoded goes by its process key (:func:`shard_of`), so
        every event of a process or container meets the same signatures in order; any other
        record (one nobody wants by the name it shows, or whose key cannot be read) by its
        line number, which costs nothing to find. Every shard computes the same owner from the same bytes, so
        each record is handled (decoded, counted, reported) exactly once.
        """
        if self.shard is None:
            return None
        count = self.shard[1]
        decoded, _ = placement_names(self.wanted_events, self.admissions, None)

        def owner(text: bytes, line: int, guess: str) -> int:
            return record_owner(text, line, count, decoded, guess)

        return owner

    def _validated(self, text: bytes, where: str, line: int, reject: Callable[[str, int, str, str], None]) -> Any:
        """The record decoded and validated in full, or None after rejecting it."""
        try:
            raw = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            reject(where, line, *_json_problem(text, exc))
            return None
        if text.count(b"[") + text.count(b"{") > MAX_NESTING and _nesting(raw) > MAX_NESTING:
            reject(where, line, "too deeply nested", f"JSON nested more than {MAX_NESTING} levels deep")
            return None
        problem = self._check(raw)
        if problem is not None:
            reject(where, line, *problem)
            return None
        return raw

    # --- validation ------------------------------------------------------------------

    def _check(self, raw: Any) -> tuple[str, str] | None:
        """None for a usable event, else ``(reason, detail)``.

        One chained test covers the common case (every field present with the
        right type); only a record that fails it is examined field by field.
        """
        if type(raw) is dict:
            get = raw.get
            name: Any = get("eventName")
            if (
                type(name) is str
                and name
                and type(get("args", _NONE)) in _LIST_OR_NONE
                and type(get("eventId", "0")) in _STR_OR_INT
                and type(get("timestamp", 0)) is int
                and type(get("processId", 0)) is int
                and type(get("threadId", 0)) is int
                and type(get("parentProcessId", 0)) is int
                and type(get("hostProcessId", 0)) is int
                and type(get("userId", 0)) is int
                and type(get("returnValue", 0)) is int
                and type(get("processName", "")) is str
                and type(get("hostName", "")) is str
                and type(get("containerId", "")) is str
                and type(get("contextFlags", _EMPTY)) is dict
                and type(get("container", _EMPTY)) is dict
                and type(get("kubernetes", _EMPTY)) is dict
                and type(get("executable", _EMPTY)) is dict
                and (type(raw["eventId"]) is int or _is_number(raw["eventId"]) if "eventId" in raw else True)
            ) or (problem := _problem(raw)) is None:
                known = self.is_known_event
                if known is None or known(name):
                    return None
                return "unknown event", f"'{name}' is not a Tracee event or a loaded signature's event"
            return problem
        return "not an event", f"expected a JSON object, got {type(raw).__name__}"


_NONE: Final = None
#: Container ids whose shard the reader remembers, and event names whose records nobody wants.
_MAX_OWNERS: Final = 4096
_MAX_ACTIONS: Final = 2048
_EMPTY: Final[dict[str, Any]] = {}
_LIST_OR_NONE: Final = (list, type(None))
_STR_OR_INT: Final = (str, int)


def _problem(raw: dict[str, Any]) -> tuple[str, str] | None:
    """Why ``raw`` is not a usable event, or None (the slow path of :meth:`EventReader._check`).

    JSON nulls count as absent fields.
    """
    name = raw.get("eventName")
    if type(name) is not str or not name:
        if "name" in raw and "id" in raw:
            return "unsupported schema", "looks like a v1beta1 event ('name', 'id'); expected trace.Event ('eventName')"
        return "missing field", "'eventName' must be a non-empty string" if name is not None else "no 'eventName'"
    event_id = raw.get("eventId")
    if event_id is not None and type(event_id) is not int and not (type(event_id) is str and _is_number(event_id)):
        return "wrong type", f"'eventId' must be a number or a numeric string, not {event_id!r}"
    args = raw.get("args")
    if args is not None and type(args) is not list:
        return "wrong type", f"'args' must be a list, not {type(args).__name__}"
    for key in _INT_FIELDS:
        value = raw.get(key)
        if value is not None and type(value) is not int:
            return "wrong type", f"{key!r} must be an integer, not {value!r}"
    for key in _STR_FIELDS:
        value = raw.get(key)
        if value is not None and type(value) is not str:
            return "wrong type", f"{key!r} must be a string, not {value!r}"
    for key in _OBJECT_FIELDS:
        value = raw.get(key)
        if value is not None and type(value) is not dict:
            return "wrong type", f"{key!r} must be an object, not {value!r}"
    for key in (*_INT_FIELDS, *_STR_FIELDS, *_OBJECT_FIELDS, "eventId"):
        if key in raw and raw[key] is None:
            del raw[key]  # a JSON null reads as the field's zero value, as Go decodes it
    return None


def _remember_verdict(
    verdicts: dict[str, dict[str, tuple[str, dict[str, bool]]]],
    event: str,
    origin: str,
    names: tuple[str, ...],
    args: Mapping[str, Any],
    admitted: bool,
) -> None:
    """Remember whether the admission of ``event`` took a record of ``origin`` with this value of its
    one argument, for the compiled loop to count the refused ones itself and mark the admitted ones
    (an answer that depends on that value alone, as :mod:`.filtermemo` remembers it; bounded likewise)."""
    if len(names) != 1:
        return
    value = args.get(names[0])
    if type(value) is not str or len(value) > MAX_VALUE_CHARS:
        return
    answers = verdicts.setdefault(event, {}).setdefault(origin, (names[0], {}))[1]
    if len(answers) >= MAX_VALUES:
        answers.clear()
    answers[value] = admitted


def _admitted(admit: Callable[[Envelope], bool], text: bytes) -> bool:
    """An admission that only tests envelopes, on a record the compiled scanner proved well-formed."""
    head = read_envelope(text)
    return head is None or admit(head)  # no envelope (a number past 64 bits...): decoded


def _show_decoded(observe: Callable[[Event], object], text: bytes, name: str, line: int) -> None:
    """Another shard's event (one the scanner proved well-formed), decoded for ``observe`` only."""
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError:  # never, when the scanner is right
        return
    _show_to(observe, raw, text, name, line)


def _show_to(observe: Callable[[Event], object], raw: Any, text: bytes, name: str, line: int) -> None:
    """Another shard's event, shown to ``observe`` only: its owner reports what is wrong with it."""
    try:
        if isinstance(raw, dict) and isinstance(raw.get("eventName"), str):
            observe(Event(raw, "tracee", name, line, text))
    except Exception:  # noqa: BLE001, S110 - the owning shard decodes, validates and reports this record
        pass


def _unreported(where: str, line: int, reason: str, detail: str) -> None:
    """Another shard's bad record: its owner reports it."""


def _position(fd: int | None) -> int:
    """How far the descriptor was read (0 for a pipe or none)."""
    if fd is None:
        return 0
    try:
        return os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:
        return 0


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _json_problem(text: bytes, exc: orjson.JSONDecodeError) -> tuple[str, str]:
    """``(reason, detail)`` for a record that is not JSON, naming invalid UTF-8 and lone
    surrogates as such (the JSON decoder calls both "surrogates")."""
    message = str(exc)
    if "UTF-8" in message:
        try:
            text.decode("utf-8")
        except UnicodeDecodeError as bad:
            return "invalid UTF-8", f"byte {bad.start + 1} of the record: {bad.reason}"
    if "depth limit" in message or "recursion" in message:
        return "too deeply nested", f"JSON nested more than {MAX_NESTING} levels deep ({message})"
    if "surrogate" in message:
        return "invalid JSON", f"a lone UTF-16 surrogate escape (\\ud800-\\udfff without its pair): {message}"
    return "invalid JSON", message


def _nesting(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (counted up to just past the limit)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > MAX_NESTING:
                break
        children = item.values() if type(item) is dict else item
        stack.extend((child, depth + 1) for child in children if type(child) in _CONTAINERS)
    return deepest


_CONTAINERS: Final = (dict, list)


class _GzipSource(io.RawIOBase):
    """A gzip stream whose corruption surfaces as :class:`TruncatedInput`."""

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self._stream = stream
        # GzipFile decompresses as lines are asked for, so a truncated file
        # still yields every complete line before the damage.
        self._reader = gzip.GzipFile(fileobj=stream, mode="rb")
        self._name = name

    def __iter__(self) -> Iterator[bytes]:
        with _gzip_errors():
            yield from self._reader

    def read(self, size: int = -1) -> bytes:
        with _gzip_errors():
            return self._reader.read(size)

    def read1(self, size: int = -1) -> bytes:
        with _gzip_errors():
            return self._reader.read1(size)

    def peek(self, size: int = 0) -> bytes:
        try:
            return self._reader.peek(size)
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError):
            return b""

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._reader.close()
        self._stream.close()
        super().close()


@contextlib.contextmanager
def _gzip_errors() -> Iterator[None]:
    try:
        yield
    except EOFError:
        raise TruncatedInput("the gzip stream ends early; the rest of the file cannot be read") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise TruncatedInput(f"corrupt gzip data ({exc}); the rest of the file cannot be read") from None
