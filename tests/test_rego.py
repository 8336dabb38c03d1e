"""The Rego signatures shipped in rules/rego: Tracee's v0.8 signatures, on both backends.

Every case of Tracee's own Rego unit tests (fixtures/rego_signature_unit_tests_v0.20.0.json)
runs against the rules/ signature with that ID, twice per backend: ``tracee_match``
evaluated on the test's input, as ``opa test`` did, and the whole signature run by the
engine (selectors and origins included). The command line is exercised end to end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, REPO, tracee_rules
from pytracee.engine import Event
from pytracee.engine.rego.signature import RegoSignature
from pytracee.engine.testing import (
    assert_fires,
    assert_silent,
    load_signatures,
    make_event,
    run_signature,
)

RULES = REPO / "rules" / "rego"
BACKENDS = ("regorus", "opa")
#: Tracee v0.8's Rego signatures (TRC-1 and TRC-13 were Go signatures).
V08_IDS = [f"TRC-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16)]
CASES = json.loads((FIXTURES / "rego_signature_unit_tests_v0.20.0.json").read_text())["cases"]


def _case_id(case: dict[str, Any]) -> str:
    return f"{_sig_id(case)}-{case['test']}"


def _sig_id(case: dict[str, Any]) -> str:
    return "TRC-" + case["package"].rpartition("_")[2]


@pytest.fixture(scope="module", params=BACKENDS)
def rules(request: pytest.FixtureRequest) -> dict[str, RegoSignature]:
    """The rules/rego signatures loaded with one backend, by ID."""
    signatures = load_signatures(RULES, rego_engine=request.param)
    for signature in signatures:  # data.config.<ID>, as when a run starts them (the cases evaluate rules directly)
        signature.install_params()  # type: ignore[attr-defined]
    return {s.metadata.id: s for s in signatures}  # type: ignore[misc]


def _matched(result: Any) -> bool:
    return result is True or (type(result) is dict and bool(result))


def test_rules_dir_holds_the_v08_signatures(rules: dict[str, RegoSignature]) -> None:
    assert sorted(rules) == sorted(V08_IDS)
    for signature in rules.values():
        assert signature.language == "rego"
        assert signature.syntax == "v1"  # written with `import rego.v1`: loads on both backends
        assert signature.metadata.properties["Severity"] in range(5)
        assert signature.metadata.properties["MITRE ATT&CK"]


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_tracee_unit_case_tracee_match(rules: dict[str, RegoSignature], case: dict[str, Any]) -> None:
    """``tracee_match with input as ...``, as Tracee's *_test.rego files evaluate it."""
    result = rules[_sig_id(case)].rule.evaluate(Event(case["input"]))
    assert _matched(result) is case["expect_match"], result
    if case["expect_data"] is not None:
        assert result == case["expect_data"]


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_tracee_unit_case_through_the_engine(rules: dict[str, RegoSignature], case: dict[str, Any]) -> None:
    """The same input as an event run through the engine: selectors and origins apply."""
    signature = rules[_sig_id(case)]
    raw = dict(case["input"])
    if all(s.origin == "container" for s in signature.selected_events):
        raw.setdefault("containerId", "c0ffee")
        raw["contextFlags"] = {"containerStarted": True}
    findings = run_signature(signature, [Event(raw)])
    selected = any(s.name == raw["eventName"] for s in signature.selected_events)
    assert len(findings) == (1 if case["expect_match"] and selected else 0)
    if findings and case["expect_data"] is not None:
        assert findings[0].data == case["expect_data"]


def test_every_shipped_signature_has_a_fixture_case_or_a_test_here() -> None:
    covered = {_sig_id(case) for case in CASES}
    assert set(V08_IDS) - covered == set()


# --- behaviour beyond Tracee's cases: raw (non parse-arguments) values, origins, data -------------------


@pytest.mark.parametrize("request_value", ["PTRACE_TRACEME", 0])
def test_trc2_accepts_raw_and_parsed_requests(rules: dict[str, RegoSignature], request_value: Any) -> None:
    finding = assert_fires(rules["TRC-2"], [make_event("ptrace", {"request": request_value, "pid": 0})])
    assert finding.data is None  # a boolean tracee_match: a finding without data
    assert_silent(rules["TRC-2"], [make_event("ptrace", {"request": 16, "pid": 1})])


def test_trc3_proc_mem_write_reports_path_and_flags(rules: dict[str, RegoSignature]) -> None:
    event = make_event("security_file_open", {"pathname": "/proc/1234/mem", "flags": 32770})
    finding = assert_fires(rules["TRC-3"], [event])
    assert finding.data == {"file flags": 32770, "file path": "/proc/1234/mem"}
    assert_silent(rules["TRC-3"], [make_event("security_file_open", {"pathname": "/proc/1234/mem", "flags": 32768})])
    assert_fires(rules["TRC-3"], [make_event("ptrace", {"request": 4})])


def test_trc4_accepts_the_raw_alert_code(rules: dict[str, RegoSignature]) -> None:
    assert_fires(rules["TRC-4"], [make_event("mem_prot_alert", {"alert": 4})])
    assert_fires(rules["TRC-4"], [make_event("mem_prot_alert", {"alert": "Protection changed from W+E to E!"})])
    assert_silent(rules["TRC-4"], [make_event("mem_prot_alert", {"alert": 2})])


def test_trc5_runc_memfd_is_expected_on_the_host_only(rules: dict[str, RegoSignature]) -> None:
    runc = {"pathname": "memfd:runc_cloned:/proc/self/exe"}
    assert_silent(rules["TRC-5"], [make_event("sched_process_exec", runc)])
    # v0.13+ events carry the container id in container.id as well as containerId
    assert_fires(rules["TRC-5"], [make_event("sched_process_exec", runc, container=True)])
    nested_only = make_event("sched_process_exec", runc)
    nested_only.raw["container"] = {"id": "abc"}
    assert_fires(rules["TRC-5"], [nested_only])


def test_trc6_module_read_by_raw_type(rules: dict[str, RegoSignature]) -> None:
    event = make_event("security_kernel_read_file", {"pathname": "/tmp/rk.ko", "type": 2})
    assert assert_fires(rules["TRC-6"], [event]).data == {"pathname": "/tmp/rk.ko"}
    assert_fires(rules["TRC-6"], [make_event("init_module", {})])


def test_trc7_ld_preload_variants(rules: dict[str, RegoSignature]) -> None:
    sig = rules["TRC-7"]
    assert_fires(sig, [make_event("execve", {"argv": ["ls"], "envp": ["HOME=/", "LD_LIBRARY_PATH=/tmp"]})])
    assert_silent(sig, [make_event("execve", {"argv": ["ls"], "envp": None})])
    assert_fires(sig, [make_event("security_file_open", {"pathname": "/etc/ld.so.preload", "flags": 577})])
    assert_silent(sig, [make_event("security_file_open", {"pathname": "/etc/ld.so.preload", "flags": 0})])


def test_container_only_signatures_ignore_host_events(rules: dict[str, RegoSignature]) -> None:
    release_agent = {"pathname": "/sys/fs/cgroup/x/release_agent", "flags": "O_WRONLY"}
    finding = assert_fires(rules["TRC-14"], [make_event("security_file_open", release_agent, container=True)])
    assert finding.data == {"File Flags": "O_WRONLY", "File Path": "/sys/fs/cgroup/x/release_agent"}
    assert_silent(rules["TRC-14"], [make_event("security_file_open", release_agent)])
    mount = {"dev_name": "/dev/sda1", "path": "/mnt", "type": "ext4"}
    assert assert_fires(rules["TRC-11"], [make_event("security_sb_mount", mount, container=True)]).data == {
        "mounted device": "/dev/sda1"
    }
    assert_silent(rules["TRC-11"], [make_event("security_sb_mount", mount)])


def test_trc9_dropped_elf_in_container(rules: dict[str, RegoSignature]) -> None:
    args = {"pathname": "/tmp/xmrig", "bytes": "f0VMRgIBAQAAAAAAAAAAAAMAPgA="}
    assert assert_fires(rules["TRC-9"], [make_event("magic_write", args, container=True)]).data == {
        "file path": "/tmp/xmrig"
    }
    assert_silent(rules["TRC-9"], [make_event("magic_write", {**args, "bytes": "IyEvYmluL3NoCg=="}, container=True)])


def test_trc12_web_server_shell(rules: dict[str, RegoSignature]) -> None:
    assert_fires(rules["TRC-12"], [make_event("security_bprm_check", {"pathname": "/bin/sh"}, processName="nginx")])
    assert_silent(rules["TRC-12"], [make_event("security_bprm_check", {"pathname": "/bin/sh"}, processName="cron")])


def test_trc15_both_event_generations(rules: dict[str, RegoSignature]) -> None:
    sig = rules["TRC-15"]
    hooked = [{"syscall_name": "kill", "hooked.owner": "diamorphine"}]
    assert assert_fires(sig, [make_event("hooked_syscalls", {"hooked_syscalls": hooked})]).data == {
        "hooked syscall": hooked
    }
    assert_silent(sig, [make_event("hooked_syscalls", {"hooked_syscalls": []})])
    later = {"syscall": "kill", "address": "ffffffffc0a1b2c0", "function": "hacked_kill", "owner": "diamorphine"}
    assert assert_fires(sig, [make_event("hooked_syscall", later)]).data == {"hooked syscall": later}


def test_trc16_proc_fops(rules: dict[str, RegoSignature]) -> None:
    pointers = [{"SymbolName": "iterate_shared", "ModuleOwner": "phide"}]
    event = make_event("hooked_proc_fops", {"hooked_fops_pointers": pointers})
    assert assert_fires(rules["TRC-16"], [event]).data == {"hooked file_operations": pointers}
    assert_silent(rules["TRC-16"], [make_event("hooked_proc_fops", {"hooked_fops_pointers": None})])


# --- command line --------------------------------------------------------------------------------


def _events_file(tmp_path: Path, *events: Event) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(event.raw) + "\n" for event in events))
    return path


def test_cli_lists_the_rego_signatures() -> None:
    result = tracee_rules("--rules", "lang:rego", "--list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "LANGUAGE" in lines[0]
    rows = {line.split()[0]: line for line in lines if line.startswith("TRC-") and " rego " in line}
    assert sorted(rows, key=lambda i: int(i[4:])) == V08_IDS
    assert "Anti-Debugging" in rows["TRC-2"] and " yes " in rows["TRC-2"]
    assert f"{len(V08_IDS)} of " in result.stdout
    # off by default: the built-in rule files are opt-in
    default = tracee_rules("--list")
    assert all(
        " yes " not in line for line in default.stdout.splitlines() if line.startswith("TRC-") and " rego " in line
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_replays_events_through_a_rego_signature(tmp_path: Path, backend: str) -> None:
    events = _events_file(
        tmp_path,
        make_event("ptrace", {"request": "PTRACE_ATTACH", "pid": 7}),
        make_event("ptrace", {"request": "PTRACE_TRACEME", "pid": 0}, processName="evasive"),
        make_event("security_file_open", {"pathname": "/proc/99/mem", "flags": "O_RDWR"}, processName="injector"),
    )
    result = tracee_rules(
        "--rules", "TRC-2,TRC-3", "--rego-engine", backend, "--input", str(events), "--output-template", "rawjson"
    )
    assert result.returncode == 0, result.stderr
    findings = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(f["SigMetadata"]["ID"], f["Context"]["processName"], f["Data"]) for f in findings] == [
        ("TRC-2", "evasive", None),
        ("TRC-3", "injector", {"file flags": "O_RDWR", "file path": "/proc/99/mem"}),
    ]
    assert findings[0]["SigMetadata"]["Name"] == "Anti-Debugging"
    assert "2 findings from 2 signatures" in result.stderr


def test_cli_default_template_prints_a_detection(tmp_path: Path) -> None:
    events = _events_file(tmp_path, make_event("ptrace", {"request": "PTRACE_TRACEME"}, processName="evasive"))
    result = tracee_rules("--rules", "TRC-2", "--input", str(events))
    assert result.returncode == 0, result.stderr
    assert "*** Detection ***" in result.stdout and "Anti-Debugging" in result.stdout


def test_cli_rejects_an_unknown_engine() -> None:
    result = tracee_rules("--rego-engine", "wasm", "--list")
    assert result.returncode == 2
    assert "--rego-engine" in result.stderr


def test_cli_opa_runs_v1_and_refuses_v0_files(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "old.rego").write_text((FIXTURES / "rego" / "v0" / "write_or_traceme_v0.rego").read_text())
    local = (
        (RULES / "anti_debugging_ptraceme.rego").read_text().replace("TRC_2", "LOCAL_2").replace('"TRC-2"', '"LOCAL-2"')
    )
    (rules_dir / "anti_debugging.rego").write_text(local)
    events = _events_file(tmp_path, make_event("ptrace", {"request": "PTRACE_TRACEME"}))
    result = tracee_rules(
        "--rules-dir",
        str(rules_dir),
        "--rules",
        "LOCAL-2",
        "--rego-engine",
        "opa",
        "--input",
        str(events),
        "--output-template",
        "rawjson",
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["SigMetadata"]["ID"] for line in result.stdout.splitlines()] == ["LOCAL-2"]
    assert "old.rego:" in result.stderr and "Rego v0 syntax is not supported by --rego-engine opa" in result.stderr
    # the same directory with regorus: both load
    result = tracee_rules(
        "--rules-dir",
        str(rules_dir),
        "--rules",
        "LOCAL-2,TEST-V0",
        "--input",
        str(events),
        "--output-template",
        "rawjson",
    )
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(line)["SigMetadata"]["ID"] for line in result.stdout.splitlines()) == [
        "LOCAL-2",
        "TEST-V0",
    ]


def test_cli_replays_the_benchmark_workload_on_both_backends(tmp_path: Path) -> None:
    """The realistic stream (raw argument values) gives the same findings on both backends."""
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from workload import write_events
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    path = tmp_path / "w.jsonl"
    write_events(str(path), 20_000, seed=3)
    outputs = []
    for backend in BACKENDS:
        result = tracee_rules(
            "--rules", "lang:rego", "--rego-engine", backend, "--input", str(path), "--output-template", "rawjson"
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    found = {json.loads(line)["SigMetadata"]["ID"] for line in outputs[0].splitlines()}
    assert len(found) >= 3 and found <= set(V08_IDS)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_readme_example_works(tmp_path: Path, backend: str) -> None:
    import re

    readme = (RULES / "README.md").read_text()
    source = re.search(r"```rego\n(.*?)```", readme, re.DOTALL)
    assert source is not None
    path = tmp_path / "acme_1.rego"
    path.write_text(source.group(1))
    (signature,) = load_signatures(path, rego_engine=backend)
    event = make_event("security_file_open", {"pathname": "/etc/shadow", "flags": "O_RDWR"})
    assert assert_fires(signature, [event]).data == {"path": "/etc/shadow"}
    assert_silent(signature, [make_event("security_file_open", {"pathname": "/etc/shadow", "flags": "O_RDONLY"})])
