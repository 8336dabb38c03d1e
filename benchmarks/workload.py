"""Deterministic generator of realistic Tracee event streams: the entry points.

Writes ``trace.Event`` JSON lines in the layout ``tracee -o json`` produced up
to v0.24.1 (every context field present, Go key order, ``eventId`` as a
string, v0.24 argument type names), so that replays and benchmarks see what a
real deployment feeds ``tracee-rules``: a Kubernetes node with host daemons, a
logged-in user and a handful of pods, mostly opening, reading and closing
files, executing programs and a little networking. Rarely (about 0.1% of the
events) it injects an attack taken from :data:`ATTACKS`, each of which a
built-in signature must detect; the expected findings are counted as the
stream is written, so a replay can be checked against them.

Two mixes (``mix=``, ``--mix``): ``realistic``, the node's whole activity with
Tracee's default events, most of which no signature selects; and ``heavy``,
the signature-heavy stream of a recording made with ``tracee -e $(tracee-rules
--list-events)``: only events the default signatures select, about 55%
``security_file_open``, 15% ``sched_process_exec``, 12%
``security_socket_connect``, 8% ``security_inode_rename``, 5% ``magic_write``
and 5% ``ptrace`` (:data:`HEAVY_MIX`), plus the ``execve`` that PYT-1 pairs with
each ``sched_process_exec``, with an attack about every 5,000 events.
The same node and activity produce both; the heavy one adds renames, first
writes and debugging sessions, and keeps only the traced events.

Arguments are raw values by default (open flags and ptrace requests as
integers), or Tracee's ``--output option:parse-arguments`` strings
(``"O_RDONLY|O_CLOEXEC"``, ``"PTRACE_TRACEME"``) with ``parse_arguments=True``.
The same seed gives byte-identical output.

This module schedules the stream (:class:`Workload`: benign bursts with the
attacks spread through them), writes it and is the command line. The rest
lives next to it, one concept per module, each building on the one before:

* :mod:`machine`: the simulated node: host daemons, containers, tasks, clock;
* :mod:`tracer`: the events Tracee records for its tasks, and their arguments;
* :mod:`activity`: its benign activity;
* :mod:`attacks`: the attacks (:data:`ATTACKS`) and the findings they must produce.

Command line::

    python benchmarks/workload.py --events 200000 --out /tmp/events.jsonl
    python benchmarks/workload.py --mix heavy --events 200000 --out /tmp/heavy.jsonl
    python benchmarks/workload.py --events 1000 --seed 7 --parse-arguments --out events.jsonl.gz
    python benchmarks/workload.py --demo --out examples/events/demo.jsonl
    python benchmarks/workload.py --list-attacks

As a module (with ``benchmarks/`` on ``sys.path``, or loaded from its file)::

    from workload import write_events, write_demo
    stats = write_events("events.jsonl", 200_000, seed=1)
    stats.expected_findings   # Counter of signature ID -> findings a correct replay produces
    stats.expected_for("lang:rego")   # ... with another signature set (lang:python, lang:cel, all)
"""

from __future__ import annotations

import argparse
import gzip
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pytracee.engine.session import signature_id_order

# The modules next to this one are imported by their plain names, whether this file runs as a
# script, is imported with benchmarks/ on sys.path or is loaded from its path under another name.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from activity import HEAVY_MIX, Simulation  # noqa: E402  (after the sys.path set-up above)
from attacks import ATTACKS, RULE_SETS, Attack, expected_findings  # noqa: E402

__all__ = [
    "ATTACKS",
    "ATTACK_EVERY",
    "DEMO_BENIGN_EVENTS",
    "DEMO_EXPECTED_FINDINGS",
    "DEMO_SEED",
    "HEAVY_MIX",
    "LISTED_EVENTS",
    "MIXES",
    "RULE_SETS",
    "TRACEE_SIGNATURE_EVENTS",
    "Attack",
    "Workload",
    "WorkloadStats",
    "demo_events",
    "expected_findings",
    "generate",
    "write_demo",
    "write_events",
]

#: The event streams :meth:`Workload.stream` writes (see there).
MIXES = ("realistic", "heavy")
#: Events between two attacks, on average, per mix: about 0.1% of the realistic stream's
#: events are attacks, a few dozen attacks in 200,000 events of the heavy one.
ATTACK_EVERY = {"realistic": 2000, "heavy": 5000}


def _tracee_signature_events() -> frozenset[str]:
    """The events Tracee's own signatures (the enabled built-ins, PYT-1 left out) select:
    what ``tracee -e $(tracee-rules --list-events)`` traces with Tracee v0.24.1's set."""
    from pytracee.signatures import BUILTIN_SIGNATURES

    return frozenset(
        selector.name
        for cls in BUILTIN_SIGNATURES
        if cls.enabled_by_default
        for selector in cls().get_selected_events()
    )


#: The events Tracee's own signatures select.
TRACEE_SIGNATURE_EVENTS: frozenset[str] = _tracee_signature_events()
assert set(HEAVY_MIX) <= TRACEE_SIGNATURE_EVENTS, "every event of the heavy mix must be one a signature selects"
#: What the signature-heavy stream holds: the events ``tracee-rules --list-events`` names for
#: the default set, i.e. Tracee's signatures' plus the ``execve``/``execveat`` that PYT-1
#: pairs with each ``sched_process_exec`` (so a recording holds both halves of every exec).
LISTED_EVENTS: frozenset[str] = TRACEE_SIGNATURE_EVENTS | {"execve", "execveat"}

#: Seed and size of the bundled demo (examples/events/demo.jsonl).
DEMO_SEED = 2024
DEMO_BENIGN_EVENTS = 320
#: What the demo (one instance of every attack) must produce with the built-in signatures.
DEMO_EXPECTED_FINDINGS: Counter[str] = expected_findings()


@dataclass
class WorkloadStats:
    """What a generated stream holds."""

    events: int = 0
    bytes: int = 0
    by_event: Counter[str] = field(default_factory=Counter)
    attacks: Counter[str] = field(default_factory=Counter)
    attack_events: int = 0
    #: signature ID -> findings a correct replay through the built-ins produces
    expected_findings: Counter[str] = field(default_factory=Counter)

    def expected_for(self, rules: str = "default") -> Counter[str]:
        """The findings a correct replay produces with the signature set ``rules`` (a key of
        :data:`RULE_SETS`: ``default``, ``lang:python``, ``lang:rego``, ``lang:cel``, ``all``);
        ``expected_for("default") == expected_findings``."""
        return expected_findings(self.attacks, rules)

    def describe(self) -> str:
        mix = ", ".join(f"{name} {100 * n / max(self.events, 1):.1f}%" for name, n in self.by_event.most_common(9))
        return (
            f"{self.events} events, {self.bytes / 1e6:.1f} MB ({self.bytes / max(self.events, 1):.0f} B/event); "
            f"mix: {mix}; {sum(self.attacks.values())} attacks in {self.attack_events} events "
            f"({100 * self.attack_events / max(self.events, 1):.2f}%)"
        )


class Workload(Simulation):
    """The simulated node's event stream: its benign activity with attacks from :data:`ATTACKS` in it.

    :param seed: everything is drawn from ``random.Random(seed)``.
    :param parse_arguments: render arguments as ``option:parse-arguments`` strings.
    :param start: where the clock starts, in nanoseconds since the epoch.
    """

    def stream(
        self, n: int, stats: WorkloadStats | None = None, attack_every: int | None = None, mix: str = "realistic"
    ) -> Iterator[dict[str, Any]]:
        """Exactly ``n`` events: benign bursts with an attack about every ``attack_every`` events.

        :param mix: ``"realistic"``: the node's whole activity as Tracee records it
            with its default events (mostly events no signature selects); ``"heavy"``: a
            recording of only the events the default signatures select
            (:data:`LISTED_EVENTS`: the six of :data:`activity.HEAVY_MIX` in its shares, plus
            the ``execve`` of each ``sched_process_exec``).
        :param attack_every: default :data:`ATTACK_EVERY` of the mix.
        """
        if mix not in MIXES:
            raise ValueError(f"unknown mix {mix!r}; expected one of {', '.join(MIXES)}")
        stats = stats if stats is not None else WorkloadStats()
        attack_every = attack_every or ATTACK_EVERY[mix]
        traced = LISTED_EVENTS if mix == "heavy" else None
        produced: Counter[str] = Counter()  # the events written, by name
        kinds: list[str] = []
        next_attack = self.rng.randrange(attack_every // 2, attack_every * 3 // 2)
        emitted = 0
        while emitted < n:
            if emitted >= next_attack:
                next_attack = emitted + self.rng.randrange(attack_every // 2, attack_every * 3 // 2)
                if not kinds:
                    kinds = list(ATTACKS)
                    self.rng.shuffle(kinds)
                attack = ATTACKS[kinds.pop()]
                burst = attack.build(self)
                if traced is not None:
                    burst = [ev for ev in burst if ev["eventName"] in traced]
                if emitted + len(burst) > n:
                    continue
                stats.attacks[attack.kind] += 1
                stats.attack_events += len(burst)
                stats.expected_findings.update(attack.expected)
            elif traced is None:
                burst = self.benign()
            else:
                burst = [ev for ev in self.heavy(produced) if ev["eventName"] in traced]
            for ev in burst[: n - emitted]:
                produced[ev["eventName"]] += 1
                yield ev
            emitted += min(len(burst), n - emitted)
        stats.by_event.update(produced)
        stats.events += emitted

    def demo(self, stats: WorkloadStats | None = None, benign: int = DEMO_BENIGN_EVENTS) -> Iterator[dict[str, Any]]:
        """The demo scenario: ``benign`` events of noise with every attack of :data:`ATTACKS` spread through it."""
        stats = stats if stats is not None else WorkloadStats()
        kinds = list(ATTACKS)
        spacing = benign // (len(kinds) + 1)
        emitted = 0
        next_attack = spacing
        while kinds or emitted < benign:
            if kinds and emitted >= next_attack:
                attack = ATTACKS[kinds.pop(0)]
                burst = attack.build(self)
                stats.attacks[attack.kind] += 1
                stats.attack_events += len(burst)
                stats.expected_findings.update(attack.expected)
                next_attack += spacing
            else:
                burst = self.benign()
                emitted += len(burst)
            for ev in burst:
                stats.by_event[ev["eventName"]] += 1
                stats.events += 1
                yield ev


# --- writing ---------------------------------------------------------------------------------


def generate(
    n: int,
    *,
    seed: int = 1,
    parse_arguments: bool = False,
    stats: WorkloadStats | None = None,
    mix: str = "realistic",
    attack_every: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield ``n`` events (dicts) of the workload; ``mix``: ``"realistic"`` or ``"heavy"`` (see :meth:`Workload.stream`)."""
    return Workload(seed, parse_arguments=parse_arguments).stream(n, stats, attack_every, mix)


def demo_events(
    *, seed: int = DEMO_SEED, parse_arguments: bool = False, stats: WorkloadStats | None = None
) -> Iterator[dict[str, Any]]:
    """Yield the events of the demo scenario."""
    return Workload(seed, parse_arguments=parse_arguments).demo(stats)


def _write(path: str | Path, events: Iterator[dict[str, Any]], stats: WorkloadStats) -> WorkloadStats:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dumps = orjson.dumps
    with open(path, "wb") as raw:
        out = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if path.suffix == ".gz" else raw
        try:
            chunk: list[bytes] = []
            for ev in events:
                line = dumps(ev) + b"\n"
                stats.bytes += len(line)
                chunk.append(line)
                if len(chunk) >= 4096:
                    out.write(b"".join(chunk))
                    chunk.clear()
            out.write(b"".join(chunk))
        finally:
            if out is not raw:
                out.close()
    return stats


def write_events(
    path: str | Path,
    n: int,
    *,
    seed: int = 1,
    parse_arguments: bool = False,
    mix: str = "realistic",
    attack_every: int | None = None,
) -> WorkloadStats:
    """Write ``n`` events of the workload to ``path`` (gzip when it ends in ``.gz``); ``mix``: see :meth:`Workload.stream`."""
    stats = WorkloadStats()
    events = generate(n, seed=seed, parse_arguments=parse_arguments, stats=stats, mix=mix, attack_every=attack_every)
    return _write(path, events, stats)


def write_demo(path: str | Path, *, seed: int = DEMO_SEED, parse_arguments: bool = False) -> WorkloadStats:
    """Write the demo scenario to ``path`` (gzip when it ends in ``.gz``)."""
    stats = WorkloadStats()
    return _write(path, demo_events(seed=seed, parse_arguments=parse_arguments, stats=stats), stats)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write a deterministic, realistic Tracee event stream (trace.Event JSON lines)."
    )
    parser.add_argument("--events", type=int, default=10_000, help="number of events (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=None, help=f"random seed (default: 1, or {DEMO_SEED} with --demo)")
    parser.add_argument(
        "--mix", choices=MIXES, default="realistic",
        help="realistic: a node's activity with Tracee's default events (mostly events no signature selects); "
        "heavy: only events Tracee's signatures select, as `tracee -e $(tracee-rules --list-events)` records "
        "(default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--attack-every",
        type=int,
        default=None,
        help="events between attacks on average (default: 2000 realistic, 5000 heavy)",
    )
    parser.add_argument(
        "--rules",
        choices=RULE_SETS,
        default="default",
        help="print the findings expected with this signature set (default: %(default)s)",
    )
    parser.add_argument(
        "--parse-arguments", action="store_true", help="argument values as Tracee's option:parse-arguments strings"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="write the demo scenario: noise plus one of every attack (--events is ignored)",
    )
    parser.add_argument("--out", type=Path, help="output file; gzip-compressed when it ends in .gz")
    parser.add_argument(
        "--list-attacks", action="store_true", help="print the attacks and the findings each must produce, and exit"
    )
    args = parser.parse_args(argv)
    if args.list_attacks:
        for attack in ATTACKS.values():
            expected = ", ".join(f"{sig} x{n}" if n > 1 else sig for sig, n in attack.expected.items())
            print(f"{attack.kind:26} {expected:12} {attack.description}")
        return 0
    if args.out is None:
        parser.error("--out is required")
    if args.demo:
        stats = write_demo(
            args.out, seed=DEMO_SEED if args.seed is None else args.seed, parse_arguments=args.parse_arguments
        )
    else:
        stats = write_events(
            args.out, args.events, seed=1 if args.seed is None else args.seed, parse_arguments=args.parse_arguments,
            mix=args.mix, attack_every=args.attack_every,
        )  # fmt: skip
    print(f"{args.out}: {stats.describe()}", file=sys.stderr)
    wanted = stats.expected_for(args.rules)
    expected = ", ".join(f"{sig}: {n}" for sig, n in sorted(wanted.items(), key=lambda kv: signature_id_order(kv[0])))
    shown = "" if args.rules == "default" else f" with --rules {args.rules}"
    print(f"expected findings{shown}: {sum(wanted.values())} ({expected})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
