"""How events leave the kernel: ring buffer or perf buffers, and the load-time constants.

The ring buffer is what ``auto`` picks on this kernel; the perf buffers (the fallback for
kernels before 5.8) and the probe-read path (kernels without BTF-typed helpers) are forced
here so both run for real.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest
from collector_support import (
    args,
    collect,
    named,
    run_child,
    start_collector,
)
from pytracee.collector import loader
from pytracee.collector.collector import Collector, KernelFilters

OPENS = "for _ in range({n}):\n    os.close(os.open('/etc/hostname', os.O_RDONLY))"


def _opens(got: list, comm: str) -> list:
    return [e for e in named(got, "openat") if e["processName"] == comm and args(e)["pathname"] == "/etc/hostname"]


@pytest.mark.parametrize("buffer", ["ring", "perf"])
def test_both_buffers_deliver_the_same_events(bpf_object: Path, buffer: str) -> None:
    collector = start_collector(
        bpf_object, ["openat", "security_file_open"], filters=KernelFilters(comms={"trcx_buf"}), buffer=buffer
    )
    try:
        assert collector.buffer_kind == buffer
        run_child(OPENS.format(n=200), comm="trcx_buf")
        got = collect(collector, lambda evs: len(_opens(evs, "trcx_buf")) >= 200)
    finally:
        collector.stop()
    opens = _opens(got, "trcx_buf")
    assert len(opens) == 200 and collector.lost == 0 and collector.malformed == 0
    assert args(opens[0]) == {"dirfd": -100, "pathname": "/etc/hostname", "flags": os.O_CLOEXEC, "mode": 0}
    files = [e for e in named(got, "security_file_open") if args(e)["syscall_pathname"] == "/etc/hostname"]
    assert len(files) == 200
    stamps = [e["timestamp"] for e in got]
    assert stamps == sorted(stamps)  # per-CPU perf rings are merged in time order


def test_auto_uses_the_ring_buffer_where_the_kernel_has_one(bpf_object: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="pytracee.collector"):
        collector = start_collector(bpf_object, ["openat"], filters=KernelFilters(comms={"trcx_none"}))
        collector.stop()
    assert collector.buffer == "auto" and collector.buffer_kind == "ring"
    assert "kernel output: ring buffer" in caplog.text


def test_small_perf_buffers_wrap_and_count_every_drop(bpf_object: Path) -> None:
    """Two pages per CPU: records wrap around the ring's end, and what does not fit is counted."""
    n = 3000
    collector = start_collector(
        bpf_object,
        ["openat"],
        filters=KernelFilters(comms={"trcx_wrap"}),
        buffer="perf",
        perf_buffer_pages=2,
        wakeup_bytes=1024,
    )
    got: list = []
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            got.extend(collector.poll(10))

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        run_child(OPENS.format(n=n), comm="trcx_wrap")
        got.extend(collect(collector, lambda evs: len(_opens(got + evs, "trcx_wrap")) + collector.lost >= n))
    finally:
        stop.set()
        reader.join()
        collector.stop()
    received = len(_opens(got, "trcx_wrap"))
    assert collector.malformed == 0  # a record split by the wrap decodes whole
    assert received + collector.lost == n, (received, collector.lost)
    assert received > 0
    if collector.lost:
        assert collector.lost_reason == "a perf buffer was full"


def test_perf_buffers_cover_every_online_cpu(bpf_object: Path) -> None:
    """Each CPU writes into its own perf buffer: a task pinned to each CPU in turn is heard on all."""
    cpus = sorted(os.sched_getaffinity(0))
    collector = start_collector(bpf_object, ["openat"], filters=KernelFilters(comms={"trcx_cpus"}), buffer="perf")
    try:
        body = "".join(f"os.sched_setaffinity(0, {{{cpu}}})\n" + OPENS.format(n=10) + "\n" for cpu in cpus)
        run_child(body, comm="trcx_cpus")
        got = collect(collector, lambda evs: len(_opens(evs, "trcx_cpus")) >= 10 * len(cpus))
    finally:
        collector.stop()
    opens = _opens(got, "trcx_cpus")
    assert len(opens) == 10 * len(cpus)
    assert sorted({e["processorId"] for e in opens}) == cpus
    assert [e["processorId"] for e in opens] == [cpu for cpu in cpus for _ in range(10)]


def test_without_btf_typed_helpers_the_probe_read_path_gives_the_same_events(
    bpf_object: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel without BTF cannot use bpf_get_current_task_btf: the loader says so, and
    the programs read the task and its registers with probe reads instead."""
    monkeypatch.setattr(loader, "KERNEL_BTF", Path("/nonexistent/vmlinux"))
    collector = start_collector(bpf_object, ["openat"], filters=KernelFilters(comms={"trcx_nobtf"}))
    try:
        run_child(OPENS.format(n=20), comm="trcx_nobtf")
        got = collect(collector, lambda evs: len(_opens(evs, "trcx_nobtf")) >= 20)
    finally:
        collector.stop()
    opens = _opens(got, "trcx_nobtf")
    assert len(opens) == 20
    assert args(opens[0]) == {"dirfd": -100, "pathname": "/etc/hostname", "flags": os.O_CLOEXEC, "mode": 0}
    assert opens[0]["processName"] == "trcx_nobtf" and opens[0]["syscall"] == "openat"


def test_buffer_options_are_checked() -> None:
    with pytest.raises(ValueError, match="buffer kind 'pipe'"):
        Collector(Path("x.o"), None, ["openat"], buffer="pipe")
    with pytest.raises(ValueError, match="3 pages is not a power of two"):
        Collector(Path("x.o"), None, ["openat"], perf_buffer_pages=3)


def test_auto_falls_back_to_perf_buffers_where_the_ring_buffer_is_refused(
    bpf_object: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """As a kernel before 5.8 would: it cannot create the ring buffer, so the object with it
    does not load; the loader then loads it with perf buffers, and events flow."""
    from pytracee.collector.libbpf import BpfObject, LibbpfError

    real_load = BpfObject.load

    def load(self: BpfObject) -> None:
        if self.map("events").max_entries > 1:  # still a ring buffer (perf output retypes it)
            raise LibbpfError(22, "load BPF object: Invalid argument")
        real_load(self)

    monkeypatch.setattr(BpfObject, "load", load)
    collector = start_collector(bpf_object, ["openat"], filters=KernelFilters(comms={"trcx_old"}))
    try:
        run_child(OPENS.format(n=10), comm="trcx_old")
        got = collect(collector, lambda evs: len(_opens(evs, "trcx_old")) >= 10)
    finally:
        collector.stop()
    assert collector.buffer_kind == "perf" and len(_opens(got, "trcx_old")) == 10
    assert "does not load with a ring buffer here (Invalid argument); using perf buffers" in caplog.text
