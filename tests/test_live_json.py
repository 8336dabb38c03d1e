"""``tracee -o json``'s fast path: records encoded straight to JSON lines (Decoder.encode),
printed in batches (EventPrinter.print_many), pumped without dicts (LiveSource.pump).

Whatever the path, the printed line is the one ``json_line(full_event(decode(record)))``
gives: byte for byte, with hostile data (control characters, DEL, C1, line separators,
invalid UTF-8) going through the careful path.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from pytracee.collector import wire
from pytracee.collector.decode import HEADER, Decoder
from pytracee.collector.filters import parse_selection
from pytracee.collector.printers import EventPrinter, parse_output_options
from pytracee.collector.source import LiveSource
from pytracee.engine.safetext import json_line
from pytracee.engine.schema import full_event

BOOT = 1_700_000_000_000_000_000
OPENAT, FILE_OPEN, EXEC = wire.EVENTS["openat"].id, wire.EVENTS["security_file_open"].id, wire.EVENTS["execve"].id


def header(event_id: int, comm: bytes = b"nginx", tid: int = 11, retval: int = 3, syscall: int = 257) -> bytes:
    return HEADER.pack(
        1000, 500, 400, 300, 0, retval, event_id, syscall, 10, tid, 9, 1, 2, 0, 1000, 4026532000, 4026532001, 1, 0, 1,
        comm, b"web-1",
    )  # fmt: skip


def var(data: bytes) -> bytes:
    return struct.pack("<I", len(data)) + data + bytes(-len(data) % 4)


def openat(path: bytes, **kw: Any) -> bytes:
    return header(OPENAT, **kw) + struct.pack("<qqQ", -100, 0o2000000, 0) + var(path)


def file_open(path: bytes, **kw: Any) -> bytes:
    return header(FILE_OPEN, **kw) + struct.pack("<qQQQ", 0x8000, 8, 42, 7) + var(path) + var(b"x")


def execve(path: bytes) -> bytes:
    arr = b"sh\0-c\0"
    env = b"SECRET=1\0"
    return (
        header(EXEC, syscall=59)
        + var(path)
        + struct.pack("<II", len(arr), 0xFFFFFFFF)
        + arr
        + bytes(-len(arr) % 4)
        + struct.pack("<II", len(env), 0xFFFFFFFF)
        + env
        + bytes(-len(env) % 4)
    )


PLAIN = [
    openat(b"/etc/hostname"),
    file_open(b"/etc/hostname"),
    openat(b"/tmp/x", tid=12, retval=-2),
    file_open(b"/etc/shadow", syscall=2),
    openat(b'/tmp/"quoted"\\back\ttab\nnewline'),  # JSON escapes, all ASCII
]
HOSTILE = [
    openat(b"/tmp/del\x7f"),
    openat(b"/tmp/c1\xc2\x85"),
    openat("/tmp/sep\u2028bidi\u202e".encode()),
    openat(b"/tmp/invalid\xff\xfe"),
    openat(b"/tmp/x", comm="caf\u00e9".encode()),
]


def expected(decoder: Decoder, record: bytes) -> bytes:
    return (json_line(full_event(decoder.decode(record))) + "\n").encode()


@pytest.mark.parametrize("record", PLAIN)
def test_an_encoded_record_is_the_json_line_of_its_dict(record: bytes) -> None:
    decoder = Decoder(BOOT)
    line = decoder.encode(record)
    assert line == expected(decoder, record)
    assert orjson.loads(line) == decoder.decode(record)
    assert decoder.encode(record) == line  # from the cached thread context, the same


@pytest.mark.parametrize("record", HOSTILE)
def test_a_record_needing_escapes_is_left_to_the_careful_path(record: bytes) -> None:
    assert Decoder(BOOT).encode(record) is None


def test_encoding_refuses_what_decoding_refuses() -> None:
    decoder = Decoder(BOOT)
    with pytest.raises(ValueError, match="shorter"):
        decoder.encode(b"\0" * 10)
    with pytest.raises(ValueError, match="unknown event id"):
        decoder.encode(header(9999))


def test_printing_lines_and_dicts_keeps_their_order() -> None:
    decoder = Decoder(BOOT)
    stream = io.StringIO()
    printer = EventPrinter(parse_output_options(["json"]), stream)
    assert printer.takes_json_lines and "execve" in printer.events_to_render()
    items: list[Any] = []
    for record in PLAIN + HOSTILE:
        line = decoder.encode(record)
        items.append(line if line is not None else decoder.decode(record))
    items.append(decoder.decode(execve(b"/bin/sh")))
    printer.print_many(items)
    printer.flush()
    out = stream.getvalue().splitlines()
    assert out[: len(PLAIN + HOSTILE)] == [expected(decoder, r).decode().rstrip("\n") for r in PLAIN + HOSTILE]
    assert "SECRET" not in out[-1] and orjson.loads(out[-1])["argsNum"] == 2  # the environment left out
    assert not any("\x7f" in line or "\u2028" in line for line in out)


def test_parse_arguments_and_ascii_outputs_take_no_lines() -> None:
    assert not EventPrinter(parse_output_options(["json", "option:parse-arguments"]), io.StringIO()).takes_json_lines
    assert not EventPrinter(parse_output_options(["table"]), io.StringIO()).takes_json_lines
    assert (
        "execve"
        not in EventPrinter(parse_output_options(["json", "option:exec-env"]), io.StringIO()).events_to_render()
    )


class JsonCollector:
    """Hands out prepared records as Collector.poll_json does."""

    def __init__(self, batches: list[list[bytes]], events: list[str]) -> None:
        self.batches, self.events = batches, events
        self.decoder = Decoder(BOOT)
        self.as_dicts: set[int] = set()
        self.lost = self.malformed = self.filtered = self.truncated = 0
        self.lost_reason = ""

    def poll_json(self, timeout_ms: int, max_events: int | None = None, as_dicts: Any = ()) -> list[Any]:
        self.as_dicts = set(as_dicts)
        out: list[Any] = []
        for record in self.batches.pop(0) if self.batches else []:
            line = None if struct.unpack_from("<I", record, 48)[0] in self.as_dicts else self.decoder.encode(record)
            out.append(line if line is not None else self.decoder.decode(record))
        return out

    def poll(self, timeout_ms: int, max_events: int | None = None) -> list[Any]:
        return [self.decoder.decode(r) for r in (self.batches.pop(0) if self.batches else [])]

    def start(self) -> None: ...
    def detach(self) -> None: ...
    def discard(self) -> int:
        return 0

    def stop(self) -> None: ...


def test_pump_prints_every_event_without_dicts_where_it_can() -> None:
    records = [PLAIN[:3], [*HOSTILE[:2], execve(b"/bin/sh")], PLAIN[3:]]
    collector = JsonCollector([list(b) for b in records], ["execve", "openat", "security_file_open"])
    stream = io.StringIO()
    printer = EventPrinter(parse_output_options(["json"]), stream)
    source = LiveSource(
        collector,
        parse_selection(["execve,openat,security_file_open"]),
        printer,
        {"execve", "openat", "security_file_open"},
    )  # type: ignore[arg-type]
    source.start()

    def stop_after_three(*_: Any) -> list[Any]:
        if not collector.batches:
            source.request_stop()
        return JsonCollector.poll_json(collector, *_)

    collector.poll_json = stop_after_three  # type: ignore[method-assign]
    source.pump()
    source.close()
    assert EXEC in collector.as_dicts  # its environment is left out: printed from its dict
    decoder = Decoder(BOOT)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 8 == source.printed == source.stats.events
    assert lines[:3] == [expected(decoder, r).decode().rstrip("\n") for r in PLAIN[:3]]
    assert "SECRET" not in lines[5]
    assert source.summary() == "8 events traced, 8 printed, 0 lost"


def test_pump_with_a_user_space_filter_takes_the_dict_path() -> None:
    collector = JsonCollector([PLAIN[:2]], ["openat", "security_file_open"])
    stream = io.StringIO()
    printer = EventPrinter(parse_output_options(["json"]), stream)
    selection = parse_selection(["openat,security_file_open"])
    selection.scope.append(lambda raw: raw["eventName"] == "openat")  # a scope filter the kernel cannot apply
    source = LiveSource(collector, selection, printer, {"openat", "security_file_open"})  # type: ignore[arg-type]
    poll = collector.poll

    def poll_then_stop(*args: Any) -> list[Any]:
        batch = poll(*args)
        if not collector.batches:
            source.request_stop()
        return batch

    def no_lines(*args: Any) -> list[Any]:
        raise AssertionError("the JSON-line poll skips user-space filters")

    collector.poll, collector.poll_json = poll_then_stop, no_lines  # type: ignore[method-assign]
    source.pump()
    assert stream.getvalue() == expected(Decoder(BOOT), PLAIN[0]).decode()
    assert source.stats.events == source.printed == 1


# --- live ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("buffer", ["ring", "perf"])
def test_poll_json_reads_lines_and_dicts_from_both_buffers(bpf_object: Any, buffer: str) -> None:
    from collector_support import run_child, start_collector
    from pytracee.collector.collector import KernelFilters

    collector = start_collector(
        bpf_object, ["openat", "security_file_open"], filters=KernelFilters(comms={"trcx_json"}), buffer=buffer
    )
    got: list[Any] = []
    try:
        run_child("for _ in range(200):\n    os.close(os.open('/etc/hostname', os.O_RDONLY))\n", comm="trcx_json")
        for _ in range(50):
            batch = collector.poll_json(100, 64, as_dicts={OPENAT})
            got += batch
            if not batch and len(got) >= 400:
                break
    finally:
        collector.stop()
    lines = [orjson.loads(item) for item in got if isinstance(item, bytes)]
    dicts = [item for item in got if isinstance(item, dict)]
    assert collector.lost == 0 and collector.malformed == 0
    opens = [e for e in dicts if e["eventName"] == "openat" and e["args"][1]["value"] == "/etc/hostname"]
    files = [e for e in lines if e["eventName"] == "security_file_open" and e["args"][0]["value"] == "/etc/hostname"]
    assert len(opens) == 200 and len(files) == 200
    assert all(e["eventName"] != "openat" for e in lines)  # asked for as dicts
    assert files[0]["processName"] == "trcx_json" and files[0]["syscall"] == "openat"
    assert [e["args"][5] for e in files[:1]] == [
        {"name": "syscall_pathname", "type": "string", "value": "/etc/hostname"}
    ]


# --- the C encoder (collector/_fastjson.c) --------------------------------------------------------


def _random_record(spec: Any, rng: Any) -> bytes:
    """A record of ``spec`` with random fixed values and ASCII strings full of JSON escapes."""
    body = b""
    for a in spec.args:
        if a.fixed:
            value = rng.choice([0, 1, 7, -1, -100, 2**31, 2**63 - 1, rng.randrange(-(2**63), 2**63)])
            body += struct.pack("<q" if value < 0 else "<Q", value)
    for a in spec.args:
        if not a.fixed:
            text = bytes(rng.choice(b'/etc/abc"\\\t\n\x01\x1f \x7e{}') for _ in range(rng.randrange(0, 40)))
            body += var(text)
    return header(spec.id, syscall=rng.choice([-1, 2, 257, 59, 9999])) + body


def test_the_c_encoder_writes_the_python_encoders_bytes() -> None:
    import random

    from pytracee.collector import decode

    assert decode._fastjson is not None, "the C encoder is not built: run scripts/setup.sh"
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    decoder = Decoder(BOOT)
    fast = [spec for spec in wire.EVENTS.values() if decoder._plans[spec.id].fast is not None]
    assert {"openat", "security_file_open", "execve"} - {s.name for s in fast} == {"execve"}  # string arrays: Python
    for spec in fast:
        for _ in range(20):
            record = _random_record(spec, rng)
            python = decoder.encode(record)  # caches the thread context, which the C encoder reads
            c_line = decode._fastjson.encode(record, 0, len(record), decoder._fast_state)
            assert c_line == python, spec.name
            assert decoder.encode_or_decode(record) == (python if python is not None else decoder.decode(record))
    for record in HOSTILE:  # left to the Python path
        decoder.encode(record)
        assert decode._fastjson.encode(record, 0, len(record), decoder._fast_state) is None
    short = PLAIN[0][: HEADER.size + 8]  # too short for openat's fixed arguments: Python raises
    assert decode._fastjson.encode(short, 0, len(short), decoder._fast_state) is None
    with pytest.raises(ValueError, match="outside"):
        decode._fastjson.encode(PLAIN[0], 0, len(PLAIN[0]) + 1, decoder._fast_state)


def test_the_c_encoder_refuses_key_spans_longer_than_a_header_together() -> None:
    from pytracee.collector import decode

    assert decode._fastjson is not None, "the C encoder is not built: run scripts/setup.sh"
    decoder = Decoder(BOOT)
    record = PLAIN[0]
    decoder.encode(record)
    state = (*decoder._fast_state[:5], (0, HEADER.size, 0, HEADER.size))  # each fits, not both
    with pytest.raises(ValueError, match="bad key spans"):
        decode._fastjson.encode(record, 0, len(record), state)


class FakeRing:
    """A BPF ring buffer's mappings in memory (the data area twice, as the kernel maps it)."""

    def __init__(self, size: int = 1 << 14) -> None:
        import mmap

        self.page, self.size = mmap.PAGESIZE, size
        self.data = mmap.mmap(-1, self.page + 2 * size)
        self.consumer = mmap.mmap(-1, self.page)
        self.prod = 0

    def put(self, record: bytes, flags: int = 0) -> None:
        blob = struct.pack("<II", len(record) | flags, 0) + record
        blob += bytes(-len(blob) % 8)
        for copy in (0, self.size):  # both views of the data area
            start = (self.prod & (self.size - 1)) + copy
            first = min(len(blob), 2 * self.size - start)
            self.data[self.page + start : self.page + start + first] = blob[:first]
        self.prod += len(blob)
        struct.pack_into("<Q", self.data, 0, self.prod)

    def reader(self) -> Any:
        from pytracee.collector.ringbuf import RingBufferReader

        reader = RingBufferReader.__new__(RingBufferReader)
        reader._data, reader._consumer, reader._page, reader._mask = self.data, self.consumer, self.page, self.size - 1
        return reader


#: Records :func:`fill_and_drain` puts in the ring (the discarded and unknown ones aside).
DRAINED = sum(len(PLAIN[r % 5 :]) + len(HOSTILE[r % 5 : r % 5 + 1]) for r in range(40))


def fill_and_drain(ring: FakeRing, drain: Callable[[Any], int]) -> int:
    """40 rounds (enough to wrap around the 16 KiB ring several times) of plain and hostile
    records, one the kernel discarded and one of an unknown event, each round drained by
    ``drain(reader)``; the records it skipped."""
    from pytracee.collector.ringbuf import _DISCARD

    skipped = 0
    for rnd in range(40):
        for record in PLAIN[rnd % 5 :] + HOSTILE[rnd % 5 : rnd % 5 + 1]:
            ring.put(record)
        ring.put(PLAIN[0], _DISCARD)  # discarded by the kernel: never seen
        ring.put(header(9999))  # unknown event: skipped and counted
        skipped += drain(ring.reader())
        assert struct.unpack_from("<Q", ring.consumer, 0)[0] == ring.prod  # all consumed, published
    return skipped


def test_the_c_ring_loop_gives_what_the_python_loop_gives() -> None:
    from pytracee.collector.ringbuf import _BUSY

    items: dict[str, list[Any]] = {}
    for how in ("python", "c"):
        ring, decoder = FakeRing(), Decoder(BOOT)
        drainer = decoder.ring_drainer()
        assert drainer is not None, "the C encoder is not built: run scripts/setup.sh"
        out: list[Any] = []
        if how == "c":
            skipped = fill_and_drain(
                ring, lambda reader, drainer=drainer, out=out: reader.drain_with(drainer, out, None)
            )
        else:
            skipped = fill_and_drain(
                ring, lambda reader, decoder=decoder, out=out: reader.drain_into(out, decoder.encode_or_decode, None)
            )
        ring.put(PLAIN[1], _BUSY)  # still being written: the loop stops before it
        reader = ring.reader()
        assert (reader.drain_with(drainer, out) if how == "c" else reader.drain_into(out, decoder.encode, None)) == 0
        assert struct.unpack_from("<Q", ring.consumer, 0)[0] < ring.prod
        assert skipped == 40
        items[how] = out
    assert items["c"] == items["python"]
    assert sum(isinstance(i, bytes) for i in items["c"]) > sum(isinstance(i, dict) for i in items["c"]) > 0


def test_the_c_ring_loop_stops_at_its_limit() -> None:
    ring, decoder = FakeRing(), Decoder(BOOT)
    for record in PLAIN:
        ring.put(record)
    drainer = decoder.ring_drainer()
    assert drainer is not None
    out: list[Any] = []
    assert ring.reader().drain_with(drainer, out, 2) == 0 and len(out) == 2
    assert ring.reader().drain_with(drainer, out, None) == 0 and len(out) == len(PLAIN)
    assert out == [Decoder(BOOT).encode(record) for record in PLAIN]
