"""CPU per event of the ways a ring-buffer record becomes a JSON line (no root needed).

    .venv/bin/python benchmarks/bench_encode.py [--events 50000] [--repeat 7]

Builds records in the collector's wire format (bpf/common.h) like those of
``tracee -e openat,security_file_open -o json`` (half ``openat``, half
``security_file_open``, a few threads, paths of 10 to 60 bytes) and times, in one
process, best of ``--repeat`` rounds interleaved, each way of printing them to
/dev/null in batches of 1,024 as the ``tracee`` command does:

* decode + dump: ``Decoder.decode`` to a dict, then ``EventPrinter.print_many``
  (``orjson.dumps`` of the complete event);
* Python encoder: ``Decoder.encode``, the record straight to its JSON line;
* C encoder: ``Decoder.encode_or_decode`` with collector/_fastjson.c built.

Times are process CPU time per event (the cyclic GC off while records are converted, as
``Collector.poll`` has it); every way's output is checked to be the same bytes.

Then the records decoded to dicts only, as ``tracee`` does for its signatures: the Python
decoder (``Decoder.decode``) and the C decoder (``Decoder.decode_fast``), checked to give
equal dicts.
"""

from __future__ import annotations

import argparse
import gc
import io
import random
import struct
import time
from collections.abc import Callable

from pytracee.collector import decode, wire
from pytracee.collector.decode import HEADER, Decoder
from pytracee.collector.printers import EventPrinter, parse_output_options

BOOT = 1_700_000_000_000_000_000


def records(n: int, seed: int = 1) -> list[bytes]:
    """``n`` records: openat and security_file_open of a few threads."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        tid = 1000 + rng.randrange(8)
        path = b"/" + b"/".join(
            rng.choice([b"etc", b"usr", b"lib", b"x86_64-linux-gnu", b"hostname"]) for _ in range(4)
        )
        event = "openat" if i % 2 == 0 else "security_file_open"
        head = HEADER.pack(
            10**15 + i, 500, 400, 300, 3566, 3, wire.EVENTS[event].id, 257, tid, tid, 9, tid, tid, 9, 0,
            4026531832, 4026531836, i % 2, 0, 1, b"nginx", b"web-1",
        )  # fmt: skip
        var = struct.pack("<I", len(path)) + path + bytes(-len(path) % 4)
        if event == "openat":
            out.append(head + struct.pack("<qqQ", -100, 0o2000000, 0) + var)
        else:
            out.append(head + struct.pack("<qQQQ", 0x8000, 8, 42, 7) + var + var)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    recs = records(args.events)
    decoder = Decoder(BOOT)

    def run(convert: Callable[[bytes], object], stream: io.TextIOBase | None = None) -> None:
        printer = EventPrinter(parse_output_options(["json"]), stream or open("/dev/null", "w"))  # noqa: SIM115
        gc.disable()  # as Collector.poll reads records
        try:
            items = [convert(r) for r in recs]
        finally:
            gc.enable()
        for i in range(0, len(items), 1024):
            printer.print_many(items[i : i + 1024])  # type: ignore[arg-type]
            printer.flush()

    ways: dict[str, Callable[[bytes], object]] = {
        "decode + dump": decoder.decode,
        "Python encoder": decoder.encode,
    }
    if decode._fastjson is not None:
        ways["C encoder"] = decoder.encode_or_decode
    outputs = {}
    for name, convert in ways.items():  # the same bytes every way
        stream = io.StringIO()
        run(convert, stream)
        outputs[name] = stream.getvalue()
    if len(set(outputs.values())) != 1:
        raise SystemExit("the ways print different lines")
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(args.repeat):
        for name, convert in ways.items():
            start = time.process_time()
            run(convert)
            best[name] = min(best[name], time.process_time() - start)
    base = best["decode + dump"]
    for name, seconds in best.items():
        print(f"{name:16s} {seconds / len(recs) * 1e6:6.2f} us/event  ({base / seconds:4.1f}x)")
    if decode._fastjson is None:
        print("C encoder: not built (scripts/setup.sh builds collector/_fastjson.c)")
        return 0
    decoders: dict[str, Callable[[bytes], object]] = {
        "Python decoder": decoder.decode,
        "C decoder": decoder.decode_fast,
    }
    if [decoder.decode(r) for r in recs] != [decoder.decode_fast(r) for r in recs]:
        raise SystemExit("the decoders give different dicts")
    best = dict.fromkeys(decoders, float("inf"))
    for _ in range(args.repeat):
        for name, convert in decoders.items():
            gc.disable()
            start = time.process_time()
            for r in recs:
                convert(r)
            seconds = time.process_time() - start
            gc.enable()
            best[name] = min(best[name], seconds)
    for name, seconds in best.items():
        print(
            f"{name:16s} {seconds / len(recs) * 1e6:6.2f} us/event to a dict ({best['Python decoder'] / seconds:4.1f}x)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
