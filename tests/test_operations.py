"""Running on real hosts: --config, signature parameters, exceptions, overrides, selection by
metadata, --validate and de-duplication, through tracee-rules as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tracee_rules
from pytracee.engine.events import Event
from pytracee.engine.findings import Finding, SignatureMetadata
from pytracee.engine.operations.config import ConfigFileError, Node, load_config
from pytracee.engine.operations.exceptions import ExceptionSet, parse_exceptions
from pytracee.engine.testing import make_event

NS = 1_000_000_000


def events_file(tmp_path: Path, events: list[Event], name: str = "events.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(e.raw) + "\n" for e in events))
    return path


def runc_events() -> list[Event]:
    """Docker started from a shell with LD_LIBRARY_PATH: runc and containerd-shim inherit it (TRC-107)."""
    env = ["PATH=/usr/bin", "LD_LIBRARY_PATH=/opt/vendor/lib"]
    events = [
        make_event("sched_process_exec", {"pathname": "/usr/bin/runc", "env": env}, processName="runc", hostProcessId=p)
        for p in (101, 102, 103)
    ]
    events += [
        make_event(
            "sched_process_exec",
            {"pathname": "/usr/bin/containerd-shim-runc-v2", "env": env},
            processName="containerd-shim",
            hostProcessId=p,
        )
        for p in (201, 202)
    ]
    # an attacker's preload in a shell must still be reported
    events.append(
        make_event("sched_process_exec", {"pathname": "/bin/bash", "env": ["LD_PRELOAD=/tmp/x.so"]}, processName="bash")
    )
    return events


RUNC_EXCEPTION = """\
exceptions:
  - name: runc-inherits-ld-library-path
    signatures: [TRC-107]
    match:
      processName: [runc, containerd-shim]
      data.LD_LIBRARY_PATH: {prefix: "LD_LIBRARY_PATH=/opt/vendor/"}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def findings(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


# --- exceptions ---------------------------------------------------------------------------------


def test_runc_exception_suppresses_inherited_library_path_and_counts_it(tmp_path: Path) -> None:
    events = events_file(tmp_path, runc_events())
    config = write(tmp_path / "pytracee.yaml", "rules: [TRC-107]\noutput-template: rawjson\n" + RUNC_EXCEPTION)
    result = tracee_rules("--config", str(config), "--input", str(events))
    assert result.returncode == 0, result.stderr
    reported = findings(result.stdout)
    assert [(f["Context"]["processName"], f["Data"]) for f in reported] == [
        ("bash", {"LD_PRELOAD": "LD_PRELOAD=/tmp/x.so"})
    ]
    assert "suppressed by exceptions: runc-inherits-ld-library-path: 5" in result.stderr
    without = tracee_rules("--rules", "TRC-107", "--input", str(events), "--output-template", "rawjson")
    assert len(findings(without.stdout)) == 6


def test_exceptions_travel_with_a_rules_directory(tmp_path: Path) -> None:
    bundle = tmp_path / "rules"
    bundle.mkdir()
    write(bundle / "exceptions.yaml", RUNC_EXCEPTION)
    events = events_file(tmp_path, runc_events())
    result = tracee_rules(
        "--rules-dir", str(bundle), "--rules", "TRC-107", "--input", str(events), "--output-template", "rawjson"
    )
    assert result.returncode == 0, result.stderr
    assert len(findings(result.stdout)) == 1
    assert "runc-inherits-ld-library-path: 5" in result.stderr


def test_exceptions_match_the_executable_hash_written_into_the_finding(tmp_path: Path) -> None:
    trusted, other = "ab" * 32, "cd" * 32
    events = events_file(
        tmp_path,
        [
            make_event(
                "sched_process_exec",
                {"pathname": "/opt/tool", "env": ["LD_PRELOAD=/opt/tool.so"], "sha256": digest},
                processName="tool",
                hostProcessId=pid,
            )
            for pid, digest in ((301, trusted), (302, other))
        ],
    )
    exception = "exceptions:\n  - {name: trusted-tool, signatures: [TRC-107], match: {executable.sha256: %s}}\n"
    config = write(tmp_path / "pytracee.yaml", "rules: [TRC-107]\noutput-template: rawjson\n" + exception % trusted)
    result = tracee_rules("--config", str(config), "--input", str(events))
    assert result.returncode == 0, result.stderr
    assert [f["Context"]["executable"]["sha256"] for f in findings(result.stdout)] == [other]
    assert "suppressed by exceptions: trusted-tool: 1" in result.stderr


def _finding(data: dict | None = None, sig: str = "TRC-1", severity: int = 2, **fields: object) -> Finding:
    event = make_event("sched_process_exec", {"pathname": "/usr/bin/runc", "argv": ["runc", "init"]}, **fields)
    return Finding(data, event, SignatureMetadata(id=sig, name="x", properties={"Severity": severity}))


def _rules(text: str, tmp_path: Path) -> ExceptionSet:
    config = load_config(write(tmp_path / "c.yaml", text))
    return ExceptionSet(config.exceptions)


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ("processName: runc", True),
        ("processName: {'!=': runc}", False),
        ("processName: {in: [a, runc]}", True),
        ("processName: {not in: [a, runc]}", False),
        ("args.pathname: {suffix: /runc}", True),
        ("args.pathname: {glob: '/usr/*/r?nc'}", True),
        ("args.pathname: {glob: '/opt/*'}", False),
        ("args.argv: {contains: init}", True),
        ("args.argv: init", True),
        ("hostProcessId: {'>=': 4000}", True),
        ("hostProcessId: {'<': 4000}", False),
        ("container.image: {prefix: 'docker.io/library/'}", True),
        ("containerImage: docker.io/library/nginx:1.25", True),
        ("executable.hash: {prefix: 'sha256:ab'}", True),
        ("executable.hash: {exists: false}", False),
        ("kubernetes.podName: {exists: true}", False),
        ("kubernetes.podName: {'!=': web}", False),  # a missing field fails every condition
        ("procesName: {not in: [a, b]}", False),
        ("data.path: /etc/x", True),
        ("signature.severity: {ge: 3}", False),
        ("signature.id: TRC-1", True),
    ],
)
def test_exception_operators_on_fields(tmp_path: Path, match: str, expected: bool) -> None:
    rules = _rules(f"exceptions:\n  - name: e\n    match: {{{match}}}\n", tmp_path)
    finding = _finding(
        {"path": "/etc/x"},
        container={"id": "abc", "image": "docker.io/library/nginx:1.25"},
        containerImage="docker.io/library/nginx:1.25",
        executable={"path": "/usr/bin/runc", "hash": "sha256:abcdef"},
        processName="runc",
    )
    assert (rules.match(finding) is not None) is expected


def test_falco_form_rows_are_alternatives_and_scoped_to_signatures(tmp_path: Path) -> None:
    rules = _rules(
        "exceptions:\n"
        "  - name: known\n"
        "    signatures: [TRC-2]\n"
        "    fields: [processName, args.pathname]\n"
        "    comps: [=, startswith]\n"
        "    values: [[sh, /bin], [runc, /usr/bin]]\n",
        tmp_path,
    )
    assert rules.match(_finding(sig="TRC-2", processName="runc")) is not None
    assert rules.match(_finding(sig="TRC-2", processName="sh")) is None  # /usr/bin/runc is not under /bin
    assert rules.match(_finding(sig="TRC-3", processName="runc")) is None  # another signature
    assert rules.suppressed_by_exception() == {"known": 1}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("exceptions:\n  - name: a\n    match: {processName: {like: x}}\n", 3, "unknown operator 'like'"),
        ("exceptions:\n  - match: {processName: x}\n", 2, "needs a name"),
        ("exceptions:\n  - name: a\n    match: {hostProcessId: {gt: many}}\n", 3, "expected a number"),
        ("exceptions:\n  - name: a\n    fields: [a, b]\n    values: [[1]]\n", 4, "1 values for 2 fields"),
        ("params:\n  TRC-1016: [nginx]\n", 2, "expected a mapping of parameter values"),
        ("overrides:\n  - rule: TRC-1\n    severity: urgent\n", 3, "severity: one of"),
        ("rules: [a\n", 2, "invalid YAML"),
    ],
)
def test_broken_configuration_names_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    problem = caught.value.problems[0]
    assert (problem.path, problem.line) == (str(path), line)
    assert message in problem.message


def test_parse_exceptions_collects_every_problem() -> None:
    node = Node([Node({"name": Node("a", 2)}, 2), Node("x", 3)], 1)
    problems: list = []
    assert parse_exceptions(node, "f.yaml", problems) == []
    assert [p.line for p in problems] == [2, 3]


def test_an_empty_signatures_list_is_refused_not_read_as_all(tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.yaml", "exceptions:\n  - name: k\n    signatures: []\n    match: {processName: bash}\n"
    )
    with pytest.raises(ConfigFileError) as caught:
        load_config(config)
    assert [str(p) for p in caught.value.problems] == [
        f"{config}:3: exception k: signatures is empty (leave it out to apply to all signatures)"
    ]


# --- configuration file and options ------------------------------------------------------------------


def test_config_holds_options_and_the_command_line_wins(tmp_path: Path) -> None:
    events = events_file(tmp_path, runc_events())
    config = write(tmp_path / "c.yaml", f"input: [{events}]\nrules: [TRC-107]\noutput-template: rawjson\n")
    from_file = tracee_rules("--config", str(config))
    assert from_file.returncode == 0, from_file.stderr
    assert len(findings(from_file.stdout)) == 6
    overridden = tracee_rules("--config", str(config), "--output-template", "simple")
    assert overridden.stdout.count("*** Detection ***") == 6


def test_a_command_line_value_equal_to_the_default_still_wins_over_the_file(tmp_path: Path) -> None:
    shell = {"pathname": "/bin/bash", "env": ["LD_PRELOAD=/tmp/x.so"]}
    first = make_event("sched_process_exec", shell, processId=4100)
    again = make_event("sched_process_exec", shell, processId=4100, timestamp=first.raw["timestamp"] + 1000)
    events = events_file(tmp_path, [first, again])
    config = write(tmp_path / "c.yaml", "rules: [TRC-107]\noutput-template: rawjson\ndedup-window: 60\n")
    assert len(findings(tracee_rules("--config", str(config), "--input", str(events)).stdout)) == 1
    given = tracee_rules("--config", str(config), "--input", str(events), "--dedup-window", "0")  # the default
    assert given.returncode == 0, given.stderr
    assert len(findings(given.stdout)) == 2


def test_one_file_for_both_commands(tmp_path: Path) -> None:
    events = events_file(tmp_path, runc_events())
    config = write(
        tmp_path / "c.yaml",
        f"rules: [TRC-107]\ntracee-rules:\n  input: [{events}]\n  output-template: rawjson\ntracee:\n  events: [openat]\n",
    )
    result = tracee_rules("--config", str(config))
    assert result.returncode == 0, result.stderr
    assert len(findings(result.stdout)) == 6
    live = subprocess.run(
        [sys.executable, "-m", "pytracee.collector.cli.tracee", "--config", str(config), "--validate"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert live.returncode == 0, live.stderr


def test_unknown_option_or_bad_value_in_config_is_a_usage_error_with_line(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", "rules: [TRC-107]\nmax-line-size: lots\nno-such-option: 1\n")
    result = tracee_rules("--config", str(config), "--input", "/dev/null")
    assert result.returncode == 2
    assert f"{config}:2: --max-line-size" in result.stderr
    assert f"{config}:3: 'no-such-option' is not an option" in result.stderr


# --- parameters ---------------------------------------------------------------------------------------


def shell_from(server: str) -> Event:
    return make_event("sched_process_exec", {"pathname": "/bin/sh", "prev_comm": server}, processName="sh")


def test_parameters_change_a_builtin_without_code(tmp_path: Path) -> None:
    events = events_file(tmp_path, [shell_from("caddy"), shell_from("nginx")])
    default = tracee_rules("--rules", "TRC-1016", "--input", str(events), "--output-template", "rawjson")
    assert [f["Context"]["args"][1]["value"] for f in findings(default.stdout)] == ["nginx"]
    replace = write(tmp_path / "r.yaml", "params:\n  TRC-1016: {web_servers: [caddy]}\n")
    replaced = tracee_rules(
        "--config", str(replace), "--rules", "TRC-1016", "--input", str(events), "--output-template", "rawjson"
    )
    assert [f["Context"]["args"][1]["value"] for f in findings(replaced.stdout)] == ["caddy"]
    append = write(
        tmp_path / "a.yaml",
        "overrides:\n  - rule: TRC-1016\n    params: {web_servers: [caddy]}\n    override: {params: append}\n",
    )
    appended = tracee_rules(
        "--config", str(append), "--rules", "TRC-1016", "--input", str(events), "--output-template", "rawjson"
    )
    assert len(findings(appended.stdout)) == 2
    listed = tracee_rules("--config", str(append), "--list-params")
    assert any(
        line.split()[:2] == ["TRC-1016", "web_servers"] and "caddy" in line for line in listed.stdout.splitlines()
    )


def test_cron_commands_parameter(tmp_path: Path) -> None:
    job = make_event("sched_process_exec", {"pathname": "/usr/bin/systemd-run"}, processName="systemd-run")
    events = events_file(tmp_path, [job])
    config = write(
        tmp_path / "c.yaml",
        "overrides:\n  - {rule: TRC-1027, params: {commands: [systemd-run]}, override: {params: append}}\n",
    )
    result = tracee_rules(
        "--config", str(config), "--rules", "TRC-1027", "--input", str(events), "--output-template", "rawjson"
    )
    assert [f["SigMetadata"]["ID"] for f in findings(result.stdout)] == ["TRC-1027"]


def test_a_later_override_replacing_a_parameter_undoes_an_earlier_append(tmp_path: Path) -> None:
    job = make_event("sched_process_exec", {"pathname": "/usr/bin/systemd-run"}, processName="systemd-run")
    events = events_file(tmp_path, [job])
    config = write(
        tmp_path / "c.yaml",
        "overrides:\n  - {rule: TRC-1027, params: {commands: [systemd-run]}, override: {params: append}}\n"
        "  - {rule: TRC-1027, params: {commands: [crontab]}}\n",
    )
    result = tracee_rules(
        "--config", str(config), "--rules", "TRC-1027", "--input", str(events), "--output-template", "rawjson"
    )
    assert result.returncode == 0, result.stderr
    assert findings(result.stdout) == []  # the list is [crontab] only


def test_bad_parameter_values_are_reported_where_they_were_set(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", "params:\n  TRC-1016:\n    web_servers: nginx\n  TRC-1018:\n    readers: [x]\n")
    result = tracee_rules("--config", str(config), "--validate")
    assert result.returncode == 2
    assert f"{config}:3: TRC-1016: parameter 'web_servers': expected a list" in result.stderr
    assert f"{config}:5: TRC-1018: unknown parameter 'readers' (declared: allowed_processes)" in result.stderr


# --- overrides and selection ---------------------------------------------------------------------


def test_overrides_disable_and_change_severity(tmp_path: Path) -> None:
    events = events_file(tmp_path, [*runc_events(), shell_from("nginx")])
    config = write(
        tmp_path / "c.yaml",
        "output-template: rawjson\noverrides:\n  - {rule: TRC-107, enabled: false}\n  - {rule: TRC-1016, severity: critical}\n",
    )
    result = tracee_rules("--config", str(config), "--input", str(events))
    reported = findings(result.stdout)
    assert [(f["SigMetadata"]["ID"], f["SigMetadata"]["Properties"]["Severity"]) for f in reported] == [("TRC-1016", 4)]
    turned_on = write(tmp_path / "on.yaml", "overrides:\n  - {rule: TRC-108, enabled: true}\n")
    listed = tracee_rules("--config", str(turned_on), "--list")
    row = next(line.split() for line in listed.stdout.splitlines() if line.startswith("TRC-108 "))
    assert "yes" in row


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ("severity>=high", {"TRC-101", "TRC-103", "TRC-1018", "TRC-1030"}),
        ("mitre:T1611", {"TRC-106", "TRC-1010", "TRC-1011", "TRC-1014", "TRC-1021", "TRC-1031"}),
        ("category:initial-access", {"TRC-1016"}),
        ("category:persistence+severity<2", set()),
        ("all+mitre:T1212", {"TRC-108"}),
        ("TRC-102,category:initial-access", {"TRC-102", "TRC-1016"}),
    ],
)
def test_selection_by_metadata(rules: str, expected: set[str]) -> None:
    result = tracee_rules("--rules", rules, "--list")
    if not expected:
        assert result.returncode == 2 and "no such signature" in result.stderr
        return
    enabled = {line.split()[0] for line in result.stdout.splitlines() if "  yes  " in line}
    assert expected <= enabled
    assert not enabled & {"TRC-102", "TRC-1016"} or "TRC" in rules or "category" in rules  # medium or low
    if rules.startswith(("mitre", "category", "TRC", "all")):
        assert enabled == expected


def test_tag_and_language_selection_on_rule_files() -> None:
    result = tracee_rules("--rules", "lang:cel+severity>=high", "--list")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if "  yes  " in line]
    assert rows and all("cel" in row for row in rows)


# --- validation and de-duplication ----------------------------------------------------------------


def test_validate_reports_every_problem_and_reads_no_events(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    write(rules / "broken.rego", "package tracee.X\n\ntracee_match {\n")
    config = write(
        tmp_path / "c.yaml",
        "exceptions:\n  - name: a\n    signatures: [NOPE-1]\n    match: {processName: x}\n",
    )
    fifo = tmp_path / "never-read"
    result = tracee_rules("--config", str(config), "--rules-dir", str(rules), "--validate", "--input", str(fifo))
    assert result.returncode == 2
    assert f"{rules / 'broken.rego'}:" in result.stderr
    assert f"{config}:2: exception a: no such signature 'NOPE-1'" in result.stderr
    broken = write(tmp_path / "broken.yaml", "rules: [TRC-107\n")
    both = tracee_rules("--config", str(broken), "--rules-dir", str(rules), "--validate")
    assert both.returncode == 2
    assert f"{broken}:2: invalid YAML" in both.stderr and f"{rules / 'broken.rego'}:" in both.stderr
    assert "2 problem(s) found" in both.stderr
    good = write(tmp_path / "good.yaml", RUNC_EXCEPTION)
    ok = tracee_rules("--config", str(good), "--validate")
    assert ok.returncode == 0, ok.stderr
    assert "1 exceptions" in ok.stdout


def test_validate_reports_bad_options_and_the_other_sections_together(tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.yaml",
        "rules: [TRC-107]\nmax-line-size: lots\nparams:\n  TRC-1016:\n    nosuch: 1\n"
        "exceptions:\n  - name: a\n    match: {processName: {regex: x}}\n",
    )
    result = tracee_rules("--config", str(config), "--validate")
    assert result.returncode == 2
    assert f"{config}:2: --max-line-size: argument --max-line-size: invalid int value: 'lots'" in result.stderr
    assert f"{config}:5: TRC-1016: unknown parameter 'nosuch'" in result.stderr
    assert f"{config}:8: exception a: processName: unknown operator 'regex'" in result.stderr
    assert "3 problem(s) found" in result.stderr
    run = tracee_rules("--config", str(config), "--input", "/dev/null")
    assert run.returncode == 2 and "3 problem(s)" not in run.stderr


def test_config_problems_reach_the_terminal_escaped_and_with_their_line(tmp_path: Path) -> None:
    config = write(tmp_path / "c\x1b[31m.yaml", "rules: [TRC-107]\n\x1b[2Jbad: [\n")
    result = tracee_rules("--config", str(config), "--validate")
    assert result.returncode == 2
    shown = str(tmp_path / "c\\x1b[31m.yaml")
    assert f"{shown}:2: invalid YAML: unacceptable character #x001b" in result.stderr
    named = write(tmp_path / "n.yaml", 'exceptions:\n  - name: "\\e]0;x\\a"\n    match: {processName: {regex: x}}\n')
    bad_name = tracee_rules("--config", str(named), "--validate")
    assert bad_name.returncode == 2 and "exception \\x1b]0;x\\x07: processName: unknown operator" in bad_name.stderr
    assert "\x1b" not in result.stderr + bad_name.stderr


def test_dedup_window_reports_first_then_counts(tmp_path: Path) -> None:
    base = make_event(
        "ptrace", {"request": 0, "pid": 0, "addr": 0, "data": 0}, processName="strace", hostProcessId=4242
    )
    events = []
    for i, seconds in enumerate((0, 1, 2, 3, 100)):
        raw = dict(base.raw, timestamp=base.raw["timestamp"] + seconds * NS)
        events.append(Event(raw) if i else base)
    path = events_file(tmp_path, events)
    result = tracee_rules(
        "--rules", "TRC-102", "--dedup-window", "60", "--input", str(path), "--output-template", "rawjson"
    )
    assert result.returncode == 0, result.stderr
    assert len(findings(result.stdout)) == 2  # the first, and the first after the window
    assert "TRC-102 on pid 4242: 3 repeats in 60 s not shown" in result.stderr
    assert "repeats not shown (--dedup-window): TRC-102: 3" in result.stderr


# --- parameters in Rego and CEL ----------------------------------------------------------------------

REGO_RULE = """\
package tracee.ACME_9

import rego.v1

import data.tracee.helpers

__rego_metadoc__ := {
	"id": "ACME-9",
	"name": "Shell from a web server",
	"params": {"web_servers": {"default": ["nginx"], "description": "web server process names"}},
}

tracee_selected_events contains {"source": "tracee", "name": "sched_process_exec"}

tracee_match := {"server": server} if {
	server := helpers.get_tracee_argument("prev_comm")
	server in data.config.ACME_9.web_servers
}
"""

CEL_RULE = """\
type: detector
id: ACME-10
produced_event: {name: web_shell}
threat: {name: Shell from a web server, severity: medium}
params:
  web_servers: {default: [nginx], description: web server process names}
requirements:
  events:
    - name: sched_process_exec
conditions:
  - getEventData("prev_comm") in params.web_servers
output:
  fields:
    - {name: server, expression: getEventData("prev_comm")}
"""


@pytest.mark.parametrize(
    ("file_name", "text", "sig_id", "engine"),
    [
        ("shell.rego", REGO_RULE, "ACME-9", ("--rego-engine", "regorus")),
        ("shell.rego", REGO_RULE, "ACME-9", ("--rego-engine", "opa")),
        ("shell.yaml", CEL_RULE, "ACME-10", ("--cel-engine", "cel-expr-python")),
        ("shell.yaml", CEL_RULE, "ACME-10", ("--cel-engine", "cel-python")),
    ],
)
def test_rule_file_parameters(tmp_path: Path, file_name: str, text: str, sig_id: str, engine: tuple[str, str]) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    write(rules / file_name, text)
    events = events_file(tmp_path, [shell_from("nginx"), shell_from("caddy")])
    run = (
        "--rules-dir",
        str(rules),
        "--rules",
        sig_id,
        "--input",
        str(events),
        "--output-template",
        "rawjson",
        *engine,
    )
    default = tracee_rules(*run)
    assert default.returncode == 0, default.stderr
    assert [f["Data"] for f in findings(default.stdout)] == [{"server": "nginx"}]
    config = write(tmp_path / "c.yaml", f"params:\n  {sig_id}: {{web_servers: [caddy, lighttpd]}}\n")
    configured = tracee_rules("--config", str(config), *run)
    assert [f["Data"] for f in findings(configured.stdout)] == [{"server": "caddy"}]
    listed = tracee_rules("--config", str(config), "--rules-dir", str(rules), "--list-params", *engine)
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert [sig_id, "web_servers", "list[str]", "caddy,lighttpd", "web", "server", "process", "names"] in rows


def test_bad_parameter_declaration_in_a_rule_file_names_its_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    write(rules / "shell.yaml", CEL_RULE.replace("{default: [nginx], description", "{defualt: [nginx], description"))
    result = tracee_rules("--rules-dir", str(rules), "--validate")
    assert result.returncode == 2
    assert f"{rules / 'shell.yaml'}:6: params.web_servers must be a mapping with a 'default'" in result.stderr


def test_the_readme_worked_example_holds_back_runc_and_reports_the_preload() -> None:
    repo = Path(__file__).resolve().parent.parent
    events = repo / "examples" / "events" / "runc-ld-library-path.jsonl"
    config = repo / "examples" / "config" / "pytracee.yaml"
    plain = tracee_rules("--rules", "TRC-107", "--input", str(events), "--output-template", "rawjson")
    assert len(findings(plain.stdout)) == 10
    result = tracee_rules("--config", str(config), "--input", str(events), "--output-template", "rawjson")
    assert result.returncode == 0, result.stderr
    assert [(f["Context"]["processName"], list(f["Data"])) for f in findings(result.stdout)] == [
        ("curl", ["LD_PRELOAD"])
    ]
    assert "suppressed by exceptions: runc-inherits-ld-library-path: 9" in result.stderr
    assert tracee_rules("--config", str(config), "--validate").returncode == 0


@pytest.mark.parametrize(
    "library_path", ["/opt/vendor/lib:/tmp/evil", "/opt/vendor/../../tmp/evil", "/opt/vendor/lib2"]
)
def test_the_readme_worked_example_reports_runc_loading_from_elsewhere(tmp_path: Path, library_path: str) -> None:
    """The allow-list holds back only the inherited value: runc told to load from another
    directory (appended, by traversal, or a sibling directory) is still reported."""
    repo = Path(__file__).resolve().parent.parent
    config = repo / "examples" / "config" / "pytracee.yaml"
    env = ["PATH=/usr/bin", f"LD_LIBRARY_PATH={library_path}"]
    event = make_event(
        "sched_process_exec",
        {"pathname": "/usr/bin/runc", "env": env},
        processName="runc",
        executable={"path": "/usr/bin/runc"},
    )
    result = tracee_rules(
        "--config", str(config), "--input", str(events_file(tmp_path, [event])), "--output-template", "rawjson"
    )
    assert result.returncode == 0, result.stderr
    assert [f["Data"] for f in findings(result.stdout)] == [{"LD_LIBRARY_PATH": f"LD_LIBRARY_PATH={library_path}"}]


def test_an_excepted_finding_feeds_no_signature_event(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    write(
        rules / "chained.py",
        "from pytracee.engine import Event, select, signature\n\n\n"
        "@signature(id='ACME-30', name='preload seen', events=[select('ld_preload')])\n"
        "def chained(event: Event) -> bool:\n"
        "    return True\n",
    )
    config = write(tmp_path / "c.yaml", "rules: [TRC-107, ACME-30]\noutput-template: rawjson\n" + RUNC_EXCEPTION)
    events = events_file(tmp_path, runc_events())
    result = tracee_rules("--config", str(config), "--rules-dir", str(rules), "--input", str(events))
    assert result.returncode == 0, result.stderr
    assert [(f["SigMetadata"]["ID"], f["Context"]["processName"]) for f in findings(result.stdout)] == [
        ("TRC-107", "bash"),
        ("ACME-30", "bash"),
    ]


@pytest.mark.parametrize("data", [{1: "x", "y": 2}, {"n": 2**70}, {"env": {b"K": "v"}}])
def test_dedup_window_takes_data_json_cannot_hold(data: dict) -> None:
    from pytracee.engine.operations.suppression import Deduplicator

    dedup = Deduplicator(60.0)
    first, repeat = _finding(dict(data)), _finding(dict(data))
    repeat.event.raw.update(hostProcessId=first.event.host_process_id, timestamp=first.event.timestamp + 1)
    other = _finding({**data, "more": 1})
    other.event.raw.update(hostProcessId=first.event.host_process_id, timestamp=first.event.timestamp + 2)
    assert [dedup.is_repeat(f) for f in (first, repeat, other)] == [False, True, False]
    assert dedup.repeats == {"TRC-1": 1}


@pytest.mark.parametrize("text", ["\u00b2", "9", "5", "-1", "\u0663"])
def test_severity_outside_0_to_4_is_refused_with_a_usage_error(text: str, tmp_path: Path) -> None:
    from pytracee.engine.operations.overrides import severity_value

    assert severity_value(text) is None
    result = tracee_rules("--rules", f"severity>={text}", "--list")
    assert result.returncode == 2, result.stderr
    assert f"--rules severity>={text}: severity is one of info, low, medium, high, critical or 0-4" in result.stderr
    config = write(tmp_path / "c.yaml", f"overrides:\n  - {{rule: TRC-1, severity: '{text}'}}\n")
    assert "severity: one of" in tracee_rules("--config", str(config), "--validate").stderr


def test_severity_names_and_digits_0_to_4() -> None:
    from pytracee.engine.operations.overrides import severity_value

    assert [severity_value(v) for v in ("info", " High ", "0", "4", 3, "04")] == [0, 3, 0, 4, 3, 4]
