"""A record's envelope read in one compiled pass (``engine/_recscan.c``), when it was built.

The reader's first look at a record (:mod:`.envelope`: its name, its process and
container, whether it is a well-formed event, the arguments the data filters read) takes
several Python calls per record. :data:`scan` does it in one call::

    scan(text, arg_table) -> (event_name, origin, container_id, host_process_id, args) | None

* ``origin``: ``"container"``, ``"container-init"`` or ``"host"``, as
  :func:`~pytracee.engine.events.origin_of` finds it on the decoded event;
  ``container_id``: ``container.id``, else ``containerId``;
  ``host_process_id``: ``hostProcessId`` (0 when absent);
* ``args``: ``None`` unless ``event_name`` is a key of ``arg_table``; then the arguments
  named in ``arg_table[event_name]`` (a tuple of names) as ``{name: value}``, as
  :attr:`~pytracee.engine.events.Event.args` has them.

A tuple is given only for a record that is certainly a usable event, as decoding it
(``orjson.loads``) and the reader's validation would find it: the whole text is valid
JSON, only ASCII, nested at most :data:`~pytracee.engine.envelope.MAX_NESTING` deep,
one object with a non-empty ``eventName``, a numeric ``eventId`` and every context
field of its type. Anything unusual (non-ASCII text, escapes in a key or in a value it
returns, a null or a duplicate in a field it reads, an integer beyond 64 bits, a number
a double cannot hold, an argument read that is not a plain string, integer, boolean or
null, trailing bytes) gives ``None``: "not sure", the caller then takes the Python path
(:mod:`.envelope`, or the full decoding), which gives the exact answer. Whether the name
is a known event is left to the caller.

Where the C module could not be built (no compiler when the package was installed),
:data:`scan` is ``None`` and the reader takes the Python path for every record: the
same events, findings and reports, only slower.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = ["COMPILED", "Scan", "Scanned", "args_of", "extract", "plain_event", "scan", "scan_lines", "split_args"]

#: ``(event_name, origin, container_id, host_process_id, args)``.
Scanned = tuple[str, str, str, int, "dict[str, Any] | None"]
#: ``scan(text, arg_table)``.
Scan = Callable[[bytes, Mapping[str, tuple[str, ...]]], "Scanned | None"]

try:  # built by setup.py (scripts/setup.sh) when a C compiler is there
    from . import _recscan  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - exercised by the tests through monkeypatching
    _recscan = None

#: The compiled scanner, or ``None`` when it was not built.
scan: Final[Scan | None] = None if _recscan is None else _recscan.scan
#: ``scan_lines(data, pos, lineno, limit, plan)``: the reader's loop over a chunk's JSON lines
#: (:class:`~pytracee.engine.records.RecordSplitter`), each scanned, those nobody wants left out,
#: each shard's records found without building the others' answers, the events only observers
#: want read as :data:`extract` reads them (see ``engine/_recscan.c``); ``None`` when not built.
scan_lines: Final[Callable[..., Any] | None] = None if _recscan is None else _recscan.scan_lines
#: ``extract(text, keys, arg_names) -> (fields, args) | None``: of a record :data:`scan` reads, the
#: top-level members named in ``keys`` (scalars, and objects of scalars as dicts) and the arguments
#: named in ``arg_names`` (scalars and lists of strings, as :attr:`~pytracee.engine.events.Event.args`
#: has them), read without decoding the rest; ``None`` when not sure; ``None`` itself when not built.
extract: Final[Callable[[bytes, tuple[str, ...], tuple[str, ...]], Any] | None] = (
    None if _recscan is None else _recscan.extract
)
#: ``plain_event(raw) -> bool``: of an event decoded in full, True when the reader's test of a
#: usable event passes at once (every context field present has its type); False: not sure (the
#: reader examines it in Python). ``None`` when not built.
plain_event: Final[Callable[[Any], bool] | None] = None if _recscan is None else _recscan.plain_event
#: ``args_of(args) -> dict | None``: ``{name: value}`` of a decoded event's ``args`` list, as
#: :attr:`~pytracee.engine.events.Event.args` has it, when every element is an object with a string
#: ``name``; ``None`` otherwise (Event.args then builds it, or reports what is wrong). ``None`` when
#: not built.
args_of: Final[Callable[[Any], dict[str, Any] | None] | None] = None if _recscan is None else _recscan.args_of
#: ``split_args(text) -> (args, head, start, end) | None``: ``{name: value}`` of all the record's
#: arguments (as :attr:`~pytracee.engine.events.Event.args` has them) read in place, and ``head``,
#: its text with the arguments' array (``text[start:end]``) replaced by ``null``, for ``orjson`` to
#: decode the rest: exact when ``orjson`` decodes ``head`` (see ``engine/_recscan_split.h``); ``None``
#: when not sure (another layout; a value that is not a plain string, an integer within int64, a
#: boolean, null, a list of plain strings or an object of such scalars); ``None`` itself when not built.
split_args: Final[Callable[[bytes], tuple[dict[str, Any], bytes, int, int] | None] | None] = (
    None if _recscan is None else _recscan.split_args
)
#: The compiled module itself (``None`` when not built): its walk-ahead ring and walker are
#: :mod:`~pytracee.engine.walkahead`'s.
compiled_module: Final[Any] = _recscan
#: Whether the compiled scanner is there.
COMPILED: Final = scan is not None
