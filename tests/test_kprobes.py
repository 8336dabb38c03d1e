"""Kprobes on the LSM hooks (bpf/kprobes.h) and the fallback to their tracepoint emulation.

The kprobe programs are verified by this kernel (loaded for real); whether they can be
attached depends on the host: where the kernel has no kprobe interface or refuses them,
the collector emulates the LSM events from syscall tracepoints and says so.
"""

from __future__ import annotations

import logging
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
from pytracee.collector.collector import KernelFilters
from pytracee.collector.loader import KPROBE_PROGRAMS, ObjectLoader


def test_every_kprobe_program_passes_the_verifier(bpf_object: Path) -> None:
    objects = ObjectLoader(bpf_object, None, ring_buffer_bytes=1 << 20, kprobe_events=list(KPROBE_PROGRAMS))
    try:
        obj = objects.load()
    except PermissionError as exc:
        pytest.skip(f"bpf() is not permitted here: {exc}")
    try:
        if not objects.loaded_kprobes:
            pytest.skip(f"this kernel refuses kprobe programs at load: {loader.kprobes_refused()}")
        assert objects.loaded_kprobes == list(KPROBE_PROGRAMS.values())
        programs = obj.programs()
        assert all(programs[name].fd >= 0 for name in KPROBE_PROGRAMS.values())
        assert programs["kprobe_security_file_open"].prog_id > 0
    finally:
        obj.close()


def test_lsm_events_are_emulated_where_kprobes_cannot_attach(
    bpf_object: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events = ["security_file_open", "security_bprm_check", "openat"]
    with caplog.at_level(logging.DEBUG, logger="pytracee.collector"):
        collector = start_collector(bpf_object, events, filters=KernelFilters(comms={"trcx_kp"}))
    try:
        run_child("os.close(os.open('/etc/hostname', os.O_RDONLY))", comm="trcx_kp")
        got = collect(collector, lambda evs: bool(named(evs, "security_file_open", syscall_pathname="/etc/hostname")))
    finally:
        collector.stop()
    opened = named(got, "security_file_open", syscall_pathname="/etc/hostname")
    assert len(opened) == 1 and args(opened[0])["pathname"] == "/etc/hostname"
    if collector.kprobe_events:  # a host that allows kprobes: the hook's program emitted it
        assert "security_file_open" in collector.kprobe_events
    else:
        reason = loader.kprobes_refused()
        assert reason
        assert f"security_file_open: emulated from syscall tracepoints ({reason})" in caplog.text


def test_kprobes_off_uses_the_emulation(bpf_object: Path) -> None:
    collector = start_collector(
        bpf_object, ["security_file_open"], filters=KernelFilters(comms={"trcx_none"}), kprobes="off"
    )
    collector.stop()
    assert collector.kprobe_events == [] and "kprobe_security_file_open" not in collector.attached_programs
