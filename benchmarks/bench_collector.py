"""Benchmark of the live collector under a sustained openat load (needs root and bpf()).

    .venv/bin/python benchmarks/bench_collector.py [--seconds 3] [--rounds 3] [--rate 60000] [--ring-mb 32]

A small C load generator (compiled here with cc/gcc/clang) loops openat+close on a file
and reports how many it did; it names itself ``trcx_opengen`` so the collector can select
it in the kernel with a comm filter (other processes on the host cost almost nothing).

Printed:
  * untraced openat rate: the generator alone (--pin: on the first CPU, the reader on the
    others);
  * traced openat rate: the same with the collector attached and draining (``openat``
    selected), and the traced/untraced ratio (the target: >= 0.5). The two runs
    alternate for --rounds rounds, because a shared machine's speed drifts by tens of
    percent from one run to the next: every round's ratio is listed, and their median is
    the result. The reader decodes fewer events per second than the generator makes at
    full speed, so these runs use a ring buffer large enough (--ratio-ring-mb) to hold a
    whole run: every event is written, none dropped, and the ratio is the full cost;
  * sustained: the generator paced at ``--rate`` ops/s with ``openat`` and
    ``security_file_open`` selected (two events per op): events decoded per second and
    ring-buffer reserve failures (target: >= 100k events/s with 0 lost).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from pytracee.collector.collector import Collector, KernelFilters

REPO = Path(__file__).resolve().parent.parent

COMM = "trcx_opengen"

GENERATOR_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    double seconds = atof(argv[1]);
    double rate = argc > 2 ? atof(argv[2]) : 0;   /* ops/s, 0 = as fast as possible */
    const char *path = argc > 3 ? argv[3] : "/etc/hostname";
    prctl(PR_SET_NAME, "trcx_opengen", 0, 0, 0);
    if (getenv("GEN_WAIT")) {   /* wait for a line on stdin before starting */
        char line[8];
        if (!fgets(line, sizeof(line), stdin)) return 1;
    }
    double start = now(), t = start;
    long n = 0;
    while (t - start < seconds) {
        for (int i = 0; i < 256; i++) {
            int fd = openat(AT_FDCWD, path, O_RDONLY);
            if (fd >= 0) close(fd);
        }
        n += 256;
        t = now();
        if (rate > 0) {
            double ahead = n / rate - (t - start);
            if (ahead > 0) {
                struct timespec ts = {(time_t)ahead, (long)((ahead - (time_t)ahead) * 1e9)};
                nanosleep(&ts, NULL);
                t = now();
            }
        }
    }
    printf("%ld %.6f\n", n, t - start);
    return 0;
}
"""


def build_generator(workdir: Path) -> Path:
    """Compile the load generator; returns its path."""
    cc = next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    if cc is None:
        raise SystemExit("no C compiler (cc, gcc or clang) to build the load generator")
    src, exe = workdir / "opengen.c", workdir / "opengen"
    src.write_text(GENERATOR_C)
    subprocess.run([cc, "-O2", "-o", str(exe), str(src)], check=True)
    return exe


def _cpus() -> tuple[set[int], set[int]]:
    """(generator CPUs, reader CPUs): apart when there are at least two CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return set(cpus), set(cpus)
    return {cpus[0]}, set(cpus[1:])


PIN = False  # --pin: generator on the first CPU, the reader on the others


def _pin_generator() -> None:
    if PIN:
        os.sched_setaffinity(0, _cpus()[0])


def run_generator(exe: Path, seconds: float, rate: float = 0) -> tuple[int, float]:
    """Run the generator alone; (ops, seconds)."""
    out = subprocess.run(
        [str(exe), str(seconds), str(rate)], check=True, capture_output=True, text=True, preexec_fn=_pin_generator
    ).stdout.split()
    return int(out[0]), float(out[1])


def traced_run(exe: Path, obj: Path, events: list[str], seconds: float, rate: float, ring_mb: int) -> dict[str, float]:
    """Run the generator with the collector attached and draining; rates and counts."""
    collector = Collector(obj, None, events, filters=KernelFilters(comms={COMM}), ring_buffer_bytes=ring_mb << 20)
    collector.start()
    try:
        gen = subprocess.Popen(
            [str(exe), str(seconds), str(rate)], stdout=subprocess.PIPE, text=True, preexec_fn=_pin_generator
        )
        received = 0
        t0 = time.perf_counter()
        t_last = t0
        done = threading.Event()
        threading.Thread(target=lambda: (gen.wait(), done.set()), daemon=True).start()
        idle_after_done = 0
        while idle_after_done < 3:
            batch = collector.poll(50, 4096)
            if batch:
                received += len(batch)
                t_last = time.perf_counter()
            elif done.is_set():
                idle_after_done += 1
        out = gen.stdout.read().split() if gen.stdout else ["0", "1"]
        ops, gen_seconds = int(out[0]), float(out[1])
        return {
            "ops": ops,
            "gen_rate": ops / gen_seconds,
            "events": received,
            "events_per_s": received / max(t_last - t0, 1e-9),
            "lost": collector.lost,
        }
    finally:
        collector.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3, help="alternating untraced/traced runs for the ratio")
    parser.add_argument("--rate", type=float, default=60000, help="paced openat/s of the sustained run (2 events each)")
    parser.add_argument("--ring-mb", type=int, default=32, help="ring buffer of the sustained run")
    parser.add_argument("--ratio-ring-mb", type=int, default=512, help="ring buffer of the ratio runs")
    parser.add_argument("--object", type=Path, default=REPO / "bpf" / "tracee.bpf.o")
    parser.add_argument("--pin", action="store_true", help="pin the generator and the reader to different CPUs")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("needs root (bpf)")
    if not args.object.exists():
        subprocess.run(["make", "-C", str(REPO / "bpf")], check=True)
    if args.pin:
        # The generator runs on the first CPU, this process (the reader) on the others.
        global PIN
        PIN = True
        os.sched_setaffinity(0, _cpus()[1])
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_generator(Path(tmp))
        rounds = []
        for _ in range(max(1, args.rounds)):
            ops, secs = run_generator(exe, args.seconds)
            rounds.append((ops / secs, traced_run(exe, args.object, ["openat"], args.seconds, 0, args.ratio_ring_mb)))
        sustained = traced_run(
            exe, args.object, ["openat", "security_file_open"], args.seconds, args.rate, args.ring_mb
        )
    for i, (untraced, traced) in enumerate(rounds, 1):
        print(
            f"round {i}: untraced openat {untraced:10,.0f} /s, traced {traced['gen_rate']:10,.0f} /s, "
            f"ratio {traced['gen_rate'] / untraced:.2f}  (events decoded {traced['events']:,} at "
            f"{traced['events_per_s']:,.0f}/s, lost {traced['lost']:,})"
        )
    ratios = sorted(traced["gen_rate"] / untraced for untraced, traced in rounds)
    print(f"traced/untraced ratio (median of {len(ratios)}): {ratios[len(ratios) // 2]:.2f}")
    print(
        f"sustained ({args.rate:,.0f} openat/s, openat+security_file_open): "
        f"{sustained['events_per_s']:,.0f} events/s decoded, {sustained['events']:,} events, "
        f"generator {sustained['gen_rate']:,.0f} op/s, lost {sustained['lost']:,}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
