"""The C decoder of live records (collector/_fastjson.c's decode): the Python decoder's dicts."""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest
from pytracee.collector import wire
from pytracee.collector.decode import HEADER, Decoder
from test_live_json import BOOT, DRAINED, HOSTILE, PLAIN, FakeRing, fill_and_drain, header, var


def _fast_module() -> Any:
    from pytracee.collector import decode

    assert decode._fastjson is not None, "the C decoder is not built: run scripts/setup.sh"
    return decode._fastjson


def _random_record(spec: Any, rng: random.Random) -> bytes:
    """A record of ``spec``: random fixed values, strings of any bytes (invalid UTF-8 included)."""
    body = b""
    for a in spec.args:
        if a.fixed:
            value = rng.choice([0, 1, 7, -1, -100, 2**31, 2**63 - 1, rng.randrange(-(2**63), 2**63)])
            body += struct.pack("<q" if value < 0 else "<Q", value)
    for a in spec.args:
        if not a.fixed:
            text = bytes(
                rng.choice(b"/etc/ab\x00\x7f\x80\xc3\xa9\xff\xe2\x80\xae\n") for _ in range(rng.randrange(0, 40))
            )
            body += var(text)
    return header(spec.id, tid=rng.randrange(1, 4), syscall=rng.choice([-1, 2, 257, 59, 9999])) + body


def _items(event: dict[str, Any]) -> list[tuple[str, Any]]:
    """The event's fields in order, its arguments' too (the JSON printed from it keeps that order)."""
    return [(k, [list(a.items()) for a in v] if k == "args" else v) for k, v in event.items()]


def test_the_c_decoder_builds_the_python_decoders_dicts() -> None:
    fast = _fast_module()
    rng = random.Random(11)  # noqa: S311 - test data, not secrets
    decoder = Decoder(BOOT)
    specs = [spec for spec in wire.EVENTS.values() if decoder._plans[spec.id].fast is not None]
    assert {"openat", "security_file_open", "close"} <= {s.name for s in specs}
    decoded = 0
    for spec in specs:
        for _ in range(20):
            record = _random_record(spec, rng)
            python = decoder.decode(record)  # caches the thread context, which the C decoder reads
            c_event = fast.decode(record, 0, len(record), decoder._dict_state)
            assert c_event is not None, spec.name
            assert _items(c_event) == _items(python), spec.name
            assert decoder.decode_fast(record) == python
            decoded += 1
    assert decoded == 20 * len(specs)
    for record in PLAIN + HOSTILE:  # escapes, DEL, C1 controls, bidi, invalid UTF-8: still dicts
        python = decoder.decode(record)
        assert _items(fast.decode(record, 0, len(record), decoder._dict_state)) == _items(python)


def test_the_c_decoder_leaves_new_contexts_and_bad_records_to_python() -> None:
    fast = _fast_module()
    decoder = Decoder(BOOT)
    record = PLAIN[0]
    assert fast.decode(record, 0, len(record), decoder._dict_state) is None  # context not cached yet
    assert decoder.decode_fast(record) == decoder.decode(record)  # cached now
    assert fast.decode(record, 0, len(record), decoder._dict_state) is not None
    short = record[: HEADER.size + 8]  # too short for openat's fixed arguments
    assert fast.decode(short, 0, len(short), decoder._dict_state) is None
    with pytest.raises(ValueError, match="too short"):
        decoder.decode_fast(short)
    with pytest.raises(ValueError, match="unknown event id"):
        decoder.decode_fast(header(9999))
    with pytest.raises(ValueError, match="shorter"):
        decoder.decode_fast(b"\0" * 10)
    with pytest.raises(ValueError, match="outside"):
        fast.decode(record, 0, len(record) + 1, decoder._dict_state)
    execve = wire.EVENTS["execve"].id  # string arrays: the Python decoder's
    assert execve not in decoder._dict_state[3]


def test_the_c_decoding_ring_loop_gives_what_the_python_loop_gives() -> None:
    items: dict[str, list[Any]] = {}
    for how in ("python", "c"):
        ring, decoder = FakeRing(), Decoder(BOOT)
        drainer = decoder.ring_decoder()
        assert drainer is not None, "the C decoder is not built: run scripts/setup.sh"
        out: list[Any] = []
        if how == "c":
            skipped = fill_and_drain(
                ring, lambda reader, drainer=drainer, out=out: reader.drain_with(drainer, out, None)
            )
        else:
            skipped = fill_and_drain(
                ring, lambda reader, decoder=decoder, out=out: reader.drain_into(out, decoder.decode, None)
            )
        assert skipped == 40
        items[how] = [_items(e) for e in out]
    assert items["c"] == items["python"]
    assert len(items["c"]) == DRAINED
