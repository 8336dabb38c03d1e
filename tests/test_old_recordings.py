"""Recordings of Tracee v0.8-v0.22 still detect with the v0.24.1 built-ins (TRC-1016, TRC-1017, TRC-1030).

The older releases recorded the evidence on other events: a web server's shell on
``security_bprm_check``, module loading on ``init_module`` and
``security_kernel_read_file``, syscall table hooks as one ``hooked_syscalls`` event
listing several hooks. ``fixtures/detections_old_era_v0.8_v0.19.jsonl`` holds such
events in v0.8.3's format; ``fixtures/detections_both_eras.jsonl`` a later recording
holding both eras' events of the same actions, which must be reported once each.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pytracee.engine.testing import make_event, run_signature
from pytracee.signatures import IllegitimateShell, KernelModuleLoading, SyscallTableHooking
from pytracee.signatures._eras import MAX_HELD, PAIRING_WINDOW_NS

FIXTURES = Path(__file__).parent / "fixtures"
OLD_ERA = FIXTURES / "detections_old_era_v0.8_v0.19.jsonl"
BOTH_ERAS = FIXTURES / "detections_both_eras.jsonl"
REGO_CASES = json.loads((FIXTURES / "rego_signature_unit_tests_v0.20.0.json").read_text())["cases"]
TRACEE_RULES = Path(sys.executable).with_name("tracee-rules")


def _replay(path: Path) -> list[tuple[str, str, str, Any]]:
    run = subprocess.run(
        [str(TRACEE_RULES), "--input", str(path), "--output-template", "rawjson"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    findings = [json.loads(line) for line in run.stdout.splitlines()]
    rows = [
        (f["SigMetadata"]["ID"], f["Context"]["eventName"], f["Context"]["processName"], f["Data"]) for f in findings
    ]
    return sorted(rows, key=lambda row: (*row[:3], json.dumps(row[3], sort_keys=True)))


def test_old_recording_detects_through_tracee_rules() -> None:
    assert _replay(OLD_ERA) == [
        ("TRC-1016", "security_bprm_check", "apache2", None),  # apache2 ran /bin/dash; nginx's /usr/bin/ls is no shell
        ("TRC-1017", "init_module", "insmod", None),
        ("TRC-1017", "security_kernel_read_file", "modprobe", None),  # the firmware read is not a module
        ("TRC-1030", "hooked_syscalls", "tracee-ebpf", {"owner": "diamorphine", "syscall": "getdents"}),
        ("TRC-1030", "hooked_syscalls", "tracee-ebpf", {"owner": "diamorphine", "syscall": "getdents64"}),
        ("TRC-1030", "hooked_syscalls", "tracee-ebpf", {"owner": "diamorphine", "syscall": "kill"}),
    ]  # the empty hooked_syscalls list is no finding, as in Tracee


def test_both_eras_in_one_stream_report_each_action_once() -> None:
    assert _replay(BOTH_ERAS) == [
        ("TRC-1016", "sched_process_exec", "sh", None),  # not again on nginx's security_bprm_check
        ("TRC-1017", "module_load", "insmod", None),  # not again on the init_module returning after it
        ("TRC-1017", "module_load", "modprobe", None),  # not again on the module file's read
        ("TRC-1030", "hooked_syscall", "tracee", None),  # kill, reported by the newer event
        ("TRC-1030", "hooked_syscalls", "tracee", {"owner": "diamorphine", "syscall": "getdents"}),  # only there
    ]


def test_old_events_are_not_asked_of_a_tracer() -> None:
    listed = subprocess.run(
        [str(TRACEE_RULES), "--rules", "TRC-1016,TRC-1017,TRC-1030", "--list-events"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    # (with the process tree's forks and exits)
    assert listed == "hooked_syscall,module_load,sched_process_exec,sched_process_exit,sched_process_fork"


@pytest.mark.parametrize(
    "case",
    [c for c in REGO_CASES if c["package"] in ("tracee.TRC_12", "tracee.TRC_6")],
    ids=lambda c: f"{c['signature_file']}:{c['test']}",
)
def test_tracee_v0_20_rego_cases_hold_for_the_builtins(case: dict[str, Any]) -> None:
    """Tracee's own tests of the old logic (illegitimate_shell.rego, kernel_module_loading.rego)."""
    signature = {"tracee.TRC_12": IllegitimateShell, "tracee.TRC_6": KernelModuleLoading}[case["package"]]
    raw = dict(case["input"])
    raw.setdefault("args", [])
    findings = run_signature(signature, [raw])
    assert bool(findings) == case["expect_match"]


def test_an_unconfirmed_old_shell_finding_is_reported_once_the_window_passes() -> None:
    bprm = make_event("security_bprm_check", {"pathname": "/bin/bash"}, processName="nginx", hostProcessId=7)
    later = make_event(
        "security_bprm_check",
        {"pathname": "/bin/sh"},
        processName="httpd",
        hostProcessId=8,
        timestamp=bprm.timestamp + PAIRING_WINDOW_NS + 1,
    )
    findings = run_signature(IllegitimateShell, [bprm, later])
    assert [f.event for f in findings] == [bprm, later]  # the first before the end: the window passed


def test_a_new_event_of_another_process_does_not_settle_a_held_finding() -> None:
    bprm = make_event("security_bprm_check", {"pathname": "/bin/bash"}, processName="nginx", hostProcessId=7)
    other = make_event(
        "sched_process_exec", {"prev_comm": "nginx"}, processName="sh", hostProcessId=9, timestamp=bprm.timestamp + 10
    )
    findings = run_signature(IllegitimateShell, [bprm, other])
    assert sorted(f.event.host_process_id for f in findings) == [7, 9]


def test_held_findings_are_bounded_and_never_dropped() -> None:
    events = [
        make_event(
            "security_kernel_read_file",
            {"pathname": f"/m{pid}.ko", "type": "kernel-module"},
            hostProcessId=pid,
            timestamp=1_000 + pid,
        )
        for pid in range(1, MAX_HELD + 11)
    ]
    findings = run_signature(KernelModuleLoading, events)
    assert sorted(f.event.host_process_id for f in findings) == list(range(1, MAX_HELD + 11))


def test_old_hook_list_of_another_shape_is_an_error_not_a_crash() -> None:
    event = make_event("hooked_syscalls", {"hooked_syscalls": "kill"})
    run = run_signature(SyscallTableHooking, [event], raise_errors=False)
    assert run == [] and run.stats.errors_by_signature == {"TRC-1030": 1}
