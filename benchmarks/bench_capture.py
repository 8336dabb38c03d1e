"""Benchmark of ``tracee --capture write``, end to end through the command (needs root).

    .venv/bin/python benchmarks/bench_capture.py [--seconds 4] [--rates 20,50,100,200]

A small C load generator (compiled here with cc/gcc/clang; it names itself
``trcx_capgen`` so tracee selects it with ``-s comm=``) does, in a loop, openat + write
of a block + close on a file under ``/tmp/capture-bench/``.

Printed:

* **overhead**: the generator's op rate (openat + 4 KiB write + close) while
  ``tracee -e openat`` runs, without and then with ``--capture write=/tmp/capture-bench/*``
  (one run each), and their ratio;
* **capture throughput**: the generator paced at each of ``--rates`` MB/s of 64 KiB writes
  while ``tracee --capture write=/tmp/capture-bench/*`` runs; per rate the MB/s written, the
  MB/s copied into the artifact (bytes the kernel copied / run time), the chunks lost (from
  tracee's summary), and whether the artifact ends as the file does. The highest rate with
  0 chunks lost is the result.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMM = "trcx_capgen"
LOST = r"(\d+) chunks lost"
BENCH_DIR = Path("/tmp/capture-bench")  # the path the benchmark is specified with; created 0700

GENERATOR_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* gen PATH SECONDS BLOCK MODE RATE_BYTES_PER_S
 * MODE o: openat+write+close per op (rewriting the first block); MODE s: one file, sequential writes */
int main(int argc, char **argv) {
    prctl(PR_SET_NAME, "trcx_capgen", 0, 0, 0);
    const char *path = argv[1];
    double seconds = atof(argv[2]);
    size_t block = (size_t)atol(argv[3]);
    char mode = argv[4][0];
    double rate = atof(argv[5]);
    char *buf = malloc(block);
    for (size_t i = 0; i < block; i++) buf[i] = (char)(i * 131 + 7);
    long ops = 0;
    double bytes = 0, start = now(), end = start + seconds;
    int fd = mode == 's' ? open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600) : -1;
    while (now() < end) {
        if (rate > 0 && bytes / rate > now() - start) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, 0);
            continue;
        }
        if (mode == 'o') {
            fd = open(path, O_WRONLY | O_CREAT, 0600);   /* no O_TRUNC: ext4 flushes on close after one */
            if (write(fd, buf, block) != (ssize_t)block) return 1;
            close(fd);
        } else {
            buf[0] = (char)ops;   /* every block differs */
            if (write(fd, buf, block) != (ssize_t)block) return 1;
        }
        ops++;
        bytes += block;
    }
    printf("%ld %.0f %.6f\n", ops, bytes, now() - start);
    return 0;
}
"""


def build_generator(workdir: Path) -> Path:
    cc = next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    if cc is None:
        raise SystemExit("no C compiler (cc, gcc or clang) to build the load generator")
    src, exe = workdir / "capgen.c", workdir / "capgen"
    src.write_text(GENERATOR_C)
    subprocess.run([cc, "-O2", "-o", str(exe), str(src)], check=True)
    return exe


def tracee_command() -> list[str]:
    return [sys.executable, "-m", "pytracee.collector.cli.tracee"]


class TraceeRun:
    """``tracee`` running in the background until :meth:`stop`."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*tracee_command(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        assert self.proc.stderr is not None
        self.log = ""
        while True:
            line = self.proc.stderr.readline()
            self.log += line
            if "tracing" in line:
                break
            if not line:
                raise SystemExit("tracee did not start:\n" + self.log)

    def stop(self) -> str:
        time.sleep(0.5)
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=120)
        return self.log + err


def generate(exe: Path, path: Path, seconds: float, block: int, mode: str, rate: float) -> tuple[int, int, float]:
    out = subprocess.run(
        [str(exe), str(path), str(seconds), str(block), mode, str(rate)], check=True, capture_output=True, text=True
    ).stdout.split()
    return int(out[0]), int(float(out[1])), float(out[2])


def _summary_number(log: str, pattern: str) -> int:
    m = re.search(pattern, log)
    return int(m.group(1)) if m else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rates", default="20,50,100,200", help="MB/s of 64 KiB writes for the throughput runs")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("needs root (bpf(), tracepoints)")
    BENCH_DIR.mkdir(mode=0o700, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="capture-bench-") as tmp:
        work = Path(tmp)
        exe = build_generator(work)
        target = BENCH_DIR / "load.bin"
        common = ["--no-signatures", "-e", "openat", "-s", f"comm={COMM}", "-o", "none"]
        capture = ["--capture", f"write={BENCH_DIR}/*", "--capture", f"dir:{work / 'cap'}", "--capture", "clear-dir"]
        capture += ["--capture", "artifact-limit:4gb", "--capture", "total-limit:8gb"]

        print(f"overhead: openat + 4 KiB write + close on {target}, {args.seconds:g} s per run")
        plain = TraceeRun(*common)
        ops_plain, _, secs = generate(exe, target, args.seconds, 4096, "o", 0)
        plain.stop()
        rate_plain = ops_plain / secs
        print(f"  tracee -e openat                          {rate_plain:10,.0f} ops/s")
        captured = TraceeRun(*common, *capture)
        ops_cap, _, secs = generate(exe, target, args.seconds, 4096, "o", 0)
        log = captured.stop()
        rate_cap = ops_cap / secs
        print(f"  tracee -e openat --capture write=...      {rate_cap:10,.0f} ops/s")
        print(f"  ratio with/without capture: {rate_cap / rate_plain:.2f}")
        print(f"  ({_summary_number(log, LOST)} chunks lost)")

        print(f"capture throughput: 64 KiB writes to one file, paced, {args.seconds:g} s per rate")
        best = 0.0
        for rate_mb in (float(r) for r in args.rates.split(",")):
            target = BENCH_DIR / "stream.bin"
            run = TraceeRun(*common, *capture)
            _, written, secs = generate(exe, target, args.seconds, 65536, "s", rate_mb * 1e6)
            log = run.stop()
            lost = _summary_number(log, LOST)
            st = target.stat()
            artifacts = list((work / "cap" / "out" / "host").glob(f"write.dev-*.inode-{st.st_ino}"))
            same = bool(artifacts) and _sha(artifacts[0]) == _sha(target)
            copied = artifacts[0].stat().st_size if artifacts else 0
            print(
                f"  target {rate_mb:6.0f} MB/s: wrote {written / secs / 1e6:7.1f} MB/s, "
                f"{written / 1e6:7.1f} MB written, {copied / 1e6:7.1f} MB captured, "
                f"{lost} chunks lost, artifact {'identical' if same else 'DIFFERS'}"
            )
            if lost == 0 and same:
                best = max(best, written / secs / 1e6)
            target.unlink()
        (BENCH_DIR / "load.bin").unlink(missing_ok=True)
        print(f"highest rate captured whole with 0 chunks lost: {best:.1f} MB/s")
        print("(numbers from a loaded, shared 2-CPU machine; one run each)")
    return 0


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


if __name__ == "__main__":
    raise SystemExit(main())
