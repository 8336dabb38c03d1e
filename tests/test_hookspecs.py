"""The plugin hooks: documented in engine/hookspecs.py and the README, and each one called.

Like datasette's test of docs/plugin_hooks.rst: the README's hook table must list every
hookspec with its parameters, and every hookspec must document each parameter, what it
returns and when it is called. Then a plugin implementing every hook runs through
``tracee-rules`` the two ways a plugin is installed (an entry point, a ``--rules-dir``
file), recording each call, and the calls are checked against the hookspecs: the
documented parameters, in the documented order of phases.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, tracee_rules
from pytracee.engine import hookspecs
from pytracee.engine.testing import make_event

SPEC_MARK = f"{hookspecs.PROJECT}_spec"  # the attribute pluggy's HookspecMarker sets


def hookspec_functions() -> dict[str, Callable[..., Any]]:
    """The hookspecs, in the order of the module."""
    specs = [obj for name, obj in vars(hookspecs).items() if name.startswith("tracee_") and hasattr(obj, SPEC_MARK)]
    return {spec.__name__: spec for spec in sorted(specs, key=lambda f: f.__code__.co_firstlineno)}


def parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def hookspec_sections() -> dict[str, str]:
    """Hook name -> the phase named by the ``# --- phase ---`` comment above it."""
    section = None
    found = {}
    for line in inspect.getsource(hookspecs).splitlines():
        if match := re.fullmatch(r"# --- (.+?) -+", line):
            section = match.group(1)
        elif match := re.match(r"def (tracee_\w+)\(", line):
            assert section is not None, f"{match.group(1)} is not in a section"
            found[match.group(1)] = section
    return found


def phase_order() -> list[str]:
    """The sections of hookspecs.py, in order: the phases of a run (``errors`` last, apart)."""
    return list(dict.fromkeys(hookspec_sections().values()))


def readme_hook_table() -> list[tuple[str, str, list[str]]]:
    """(phase, hook, parameters) of each row of the hook table in the README's "## Plugins"."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Plugins\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not (match := re.fullmatch(r"`(\w+)\(([^)]*)\)`", cells[1])):
            continue
        params = [p.strip() for p in match.group(2).split(",") if p.strip()]
        rows.append((cells[0], match.group(1), params))
    return rows


# --- the documentation ---------------------------------------------------------------


def test_there_are_hookspecs_in_sections() -> None:
    specs = hookspec_functions()
    assert len(specs) >= 10
    assert set(hookspec_sections()) == set(specs), "every hookspec sits under a '# --- phase ---' comment"
    assert phase_order() == [
        "configuration",
        "rule-file collection",
        "signature registration",
        "session start",
        "findings",
        "session end",
        "errors",
    ]


def test_readme_table_lists_every_hook_with_its_parameters() -> None:
    specs = hookspec_functions()
    table = readme_hook_table()
    documented = [hook for _, hook, _ in table]
    assert sorted(set(documented)) == sorted(documented), "a hook is listed twice in the README"
    assert set(documented) - set(specs) == set(), "the README lists hooks hookspecs.py does not have"
    assert set(specs) - set(documented) == set(), "hooks missing from the README's hook table"
    assert documented == list(specs), "the README's table follows the order of hookspecs.py"
    sections = hookspec_sections()
    for phase, hook, params in table:
        assert params == parameters(specs[hook]), f"README: {hook}({', '.join(params)}) differs from hookspecs.py"
        assert phase == sections[hook], f"README: {hook} is in phase {phase!r}, hookspecs.py says {sections[hook]!r}"


@pytest.mark.parametrize("name", list(hookspec_functions()))
def test_every_hookspec_documents_its_parameters_return_and_phase(name: str) -> None:
    spec = hookspec_functions()[name]
    doc = inspect.getdoc(spec) or ""
    documented = re.findall(r"^:param (\w+):", doc, re.MULTILINE)
    assert documented == parameters(spec), f"{name}: document each parameter, in order, as ':param NAME:'"
    assert re.search(r"^:return: \S", doc, re.MULTILINE), f"{name}: document what it returns (':return:')"
    assert "Called " in doc, f"{name}: say when it is called"
    options = getattr(spec, SPEC_MARK)
    if options.get("firstresult"):
        assert "First result" in doc, f"{name} is firstresult: say the first answer wins"
    if options.get("historic"):
        assert "historic" in doc, f"{name} is historic: say late plugins are called too"
    phase = hookspec_sections()[name]
    if phase != "errors":  # "the session-start phase", possibly across lines
        flat = " ".join(doc.replace("-", " ").split())
        assert f"{phase.replace('-', ' ')} phase" in flat, f"{name}: name its phase ({phase!r})"


def test_the_module_docstring_lists_the_phases_in_order() -> None:
    doc = hookspecs.__doc__ or ""
    steps = re.findall(r"^\d\. \*\*(.+?)\*\*", doc, re.MULTILINE)
    assert [*steps, "errors"] == phase_order()
    positions = [doc.index(f":func:`{name}`") for name in hookspec_functions()]
    assert positions == sorted(positions), "the module docstring names the hooks in the order of the module"


# --- every hook called, through tracee-rules ------------------------------------------

# A plugin implementing every hook with exactly the hookspec's parameters. Each call is
# appended to $HOOKREC_FILE as {"hook": name, "args": {parameter: what it got}}.
RECORDER = '''
"""Records every plugin hook call in $HOOKREC_FILE (tests/test_hookspecs.py)."""

import json
import os

from pytracee.engine import Signature, SignatureMetadata, hookimpl, select


def record(hook, **args):
    with open(os.environ["HOOKREC_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps({"hook": hook, "args": args}) + "\\n")


def describe(finding):
    return {"id": finding.sig_metadata.id, "data": finding.data}


class _Fires(Signature):  # private: loads only through tracee_register_signatures
    metadata = SignatureMetadata(id="HOOKREC-1", name="ptrace seen")
    selected_events = [select("ptrace")]

    def init(self, ctx):
        super().init(ctx)
        self.last, self.seen = None, 0

    def on_event(self, event):
        self.last, self.seen = event, self.seen + 1
        self.emit(event, {"process": event.process_name})

    def on_signal(self, signal):  # a finding at the end of input
        self.emit(self.last, {"ptrace_events": self.seen})


class _Breaks(Signature):
    metadata = SignatureMetadata(id="HOOKREC-2", name="breaks")
    selected_events = [select("openat")]

    def on_event(self, event):
        raise RuntimeError("on_event broke")

    def close(self):
        raise RuntimeError("close broke")


class _BadInit(Signature):
    metadata = SignatureMetadata(id="HOOKREC-4", name="bad init")
    selected_events = [select("ptrace")]

    def init(self, ctx):
        raise RuntimeError("init broke")


class ToyRule(Signature):
    """A signature read from a .toy rule file: 'ID EVENT'."""

    language = "toy"

    def __init__(self, sig_id, event_name):
        self.metadata = SignatureMetadata(id=sig_id, name="toy rule")
        self.selected_events = [select(event_name)]

    def on_event(self, event):
        self.emit(event, {"path": event.str_arg("pathname")})


@hookimpl
def tracee_addoption(parser):
    record("tracee_addoption", parser=type(parser).__name__)
    parser.add_argument_group("hookrec").add_argument("--hookrec-tag", metavar="TAG")


@hookimpl
def tracee_configure(config):
    record("tracee_configure", config={"type": type(config).__name__, "tag": getattr(config.options, "hookrec_tag", None)})


@hookimpl
def tracee_collect_rule_file(path, config):
    record("tracee_collect_rule_file", path=str(path), config=type(config).__name__)
    if path.suffix != ".toy":
        return None
    sig_id, event_name = path.read_text().split()
    return [ToyRule(sig_id, event_name)]


@hookimpl
def tracee_register_signatures(register):
    record("tracee_register_signatures", register=type(register).__name__)
    for signature in (_Fires, _Breaks, _BadInit):
        register(signature)


@hookimpl
def tracee_sessionstart(session):
    ids = sorted(s.metadata.id for s in session.signatures)
    record("tracee_sessionstart", session={"type": type(session).__name__, "signatures": ids})


@hookimpl
def tracee_finding_filter(finding):
    record("tracee_finding_filter", finding=describe(finding))
    if (finding.data or {}).get("process") == "gdb":
        return "hookrec allow-list"
    return None


@hookimpl
def tracee_finding_enrich(finding):
    record("tracee_finding_enrich", finding=describe(finding))
    finding.data = dict(finding.data or {}, enriched_by="hookrec")


@hookimpl
def tracee_finding_output(finding):
    record("tracee_finding_output", finding=describe(finding))


@hookimpl
def tracee_sessionfinish(session, exitstatus):
    record("tracee_sessionfinish", session=type(session).__name__, exitstatus=exitstatus)


@hookimpl
def tracee_signature_error(signature, event, error):
    record(
        "tracee_signature_error",
        signature=signature.get_metadata().id,
        event=None if event is None else event.name,
        error=f"{type(error).__name__}: {error}",
    )
'''

OURS = "HOOKREC-1,HOOKREC-2,HOOKREC-3,HOOKREC-4"


class Run:
    """A tmp rules directory with a toy rule file, events, and the recorder installed one way."""

    def __init__(self, tmp_path: Path, how: str) -> None:
        self.how = how
        self.records = tmp_path / "calls.jsonl"
        self.rules_dir = tmp_path / "rules"
        self.rules_dir.mkdir()
        (self.rules_dir / "rule.toy").write_text("HOOKREC-3 security_file_open\n")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PYTRACEE_")}
        self.env["HOOKREC_FILE"] = str(self.records)
        if how == "entry point":  # an installed package: hookrec = hookrec in the pytracee group
            site = tmp_path / "site"
            (site / "hookrec-1.0.dist-info").mkdir(parents=True)
            (site / "hookrec.py").write_text(RECORDER)
            (site / "hookrec-1.0.dist-info/METADATA").write_text("Metadata-Version: 2.1\nName: hookrec\nVersion: 1.0\n")
            (site / "hookrec-1.0.dist-info/entry_points.txt").write_text("[pytracee]\nhookrec = hookrec\n")
            self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), self.env.get("PYTHONPATH")]))
        else:  # a Python file in the rules directory: plugin "hookrec" (sorts before rule.toy)
            (self.rules_dir / "hookrec.py").write_text(RECORDER)
        self.events = tmp_path / "events.jsonl"
        events = [
            make_event("ptrace", {"request": 16, "pid": 7, "addr": 0, "data": 0}, processName="strace"),
            make_event("openat", {"dirfd": -100, "pathname": "/etc/hosts", "flags": 0, "mode": 0}),
            make_event("ptrace", {"request": 16, "pid": 7, "addr": 0, "data": 0}, processName="gdb"),
            make_event("security_file_open", {"pathname": "/etc/shadow", "flags": "O_RDONLY"}),
        ]
        self.events.write_text("".join(json.dumps(e.raw) + "\n" for e in events))

    def __call__(self, *args: str) -> Any:
        return tracee_rules("--rules-dir", str(self.rules_dir), "--input", str(self.events), *args, env=self.env)

    def calls(self) -> list[dict[str, Any]]:
        """The recorded calls; collection calls only for our rules directory (not the built-in rules')."""
        if not self.records.exists():
            return []
        calls = [json.loads(line) for line in self.records.read_text().splitlines()]
        return [
            call
            for call in calls
            if call["hook"] != "tracee_collect_rule_file" or Path(call["args"]["path"]).parent == self.rules_dir
        ]


@pytest.fixture(params=["entry point", "rules dir"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Run:
    return Run(tmp_path, request.param)


def finding(sig_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"finding": {"id": sig_id, "data": data}}


def test_every_hook_is_called_with_its_parameters_in_phase_order(run: Run) -> None:
    tag = ["--hookrec-tag", "blue"] if run.how == "entry point" else []  # only installed plugins add options
    result = run("--rules", OURS, "--output-template", "rawjson", *tag)
    assert result.returncode == 0, result.stderr
    printed = [(f["SigMetadata"]["ID"], f["Data"]) for f in map(json.loads, result.stdout.splitlines())]
    assert printed == [
        ("HOOKREC-1", {"process": "strace", "enriched_by": "hookrec"}),
        ("HOOKREC-3", {"path": "/etc/shadow", "enriched_by": "hookrec"}),
        ("HOOKREC-1", {"ptrace_events": 2, "enriched_by": "hookrec"}),
    ]
    assert "suppressed by plugins: hookrec allow-list: 1" in result.stderr
    calls = run.calls()
    specs = hookspec_functions()

    # every hook was called, each time with exactly its documented parameters
    assert {call["hook"] for call in calls} == set(specs)
    for call in calls:
        assert list(call["args"]) == parameters(specs[call["hook"]]), call

    # in the documented order of phases; signature errors from registration to the end
    order = {phase: index for index, phase in enumerate(phase_order())}
    phase_of = hookspec_sections()
    names = [call["hook"] for call in calls]
    in_order = [order[phase_of[name]] for name in names if phase_of[name] != "errors"]
    assert in_order == sorted(in_order), names
    errors = [i for i, name in enumerate(names) if phase_of[name] == "errors"]
    assert names.index("tracee_register_signatures") < min(errors) and max(errors) < names.index("tracee_sessionfinish")

    # and exactly these calls, with these arguments
    assert [(call["hook"], call["args"]) for call in calls] == [
        ("tracee_addoption", {"parser": "ArgumentParser"}),
        ("tracee_configure", {"config": {"type": "SessionConfig", "tag": "blue" if tag else None}}),
        ("tracee_collect_rule_file", {"path": str(run.rules_dir / "rule.toy"), "config": "SessionConfig"}),
        ("tracee_register_signatures", {"register": "function"}),
        ("tracee_signature_error", {"signature": "HOOKREC-4", "event": None, "error": "RuntimeError: init broke"}),
        # HOOKREC-4's init failed: the session runs without it
        ("tracee_sessionstart", {"session": {"type": "Session", "signatures": OURS.split(",")[:3]}}),
        # event 1: ptrace by strace, kept
        ("tracee_finding_filter", finding("HOOKREC-1", {"process": "strace"})),
        ("tracee_finding_enrich", finding("HOOKREC-1", {"process": "strace"})),
        ("tracee_finding_output", finding("HOOKREC-1", {"process": "strace", "enriched_by": "hookrec"})),
        # event 2: openat breaks HOOKREC-2
        (
            "tracee_signature_error",
            {"signature": "HOOKREC-2", "event": "openat", "error": "RuntimeError: on_event broke"},
        ),
        # event 3: ptrace by gdb, suppressed
        ("tracee_finding_filter", finding("HOOKREC-1", {"process": "gdb"})),
        # event 4: the toy rule file's signature
        ("tracee_finding_filter", finding("HOOKREC-3", {"path": "/etc/shadow"})),
        ("tracee_finding_enrich", finding("HOOKREC-3", {"path": "/etc/shadow"})),
        ("tracee_finding_output", finding("HOOKREC-3", {"path": "/etc/shadow", "enriched_by": "hookrec"})),
        # end of input: on_signal's finding, then close
        ("tracee_finding_filter", finding("HOOKREC-1", {"ptrace_events": 2})),
        ("tracee_finding_enrich", finding("HOOKREC-1", {"ptrace_events": 2})),
        ("tracee_finding_output", finding("HOOKREC-1", {"ptrace_events": 2, "enriched_by": "hookrec"})),
        ("tracee_signature_error", {"signature": "HOOKREC-2", "event": None, "error": "RuntimeError: close broke"}),
        ("tracee_sessionfinish", {"session": "Session", "exitstatus": 0}),
    ]


def test_disable_blocks_the_plugin_and_all_its_hooks(run: Run) -> None:
    result = run("--disable", "hookrec", "--output-template", "rawjson")
    assert result.returncode == 0, result.stderr
    assert run.calls() == [] and not run.records.exists()
    assert "HOOKREC" not in result.stdout
    listed = run("--disable", "hookrec", "--list")
    assert listed.returncode == 0 and "HOOKREC" not in listed.stdout and "TRC-102" in listed.stdout
    asked = run("--disable", "hookrec", "--rules", "HOOKREC-1")
    assert asked.returncode == 2 and "no such signature: HOOKREC-1" in asked.stderr


def test_blocking_a_builtin_plugin_leaves_its_hooks_to_the_others(run: Run) -> None:
    result = run("--disable", "builtin-outputs", "--rules", OURS)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # nothing prints findings any more ...
    outputs = [call["args"]["finding"]["id"] for call in run.calls() if call["hook"] == "tracee_finding_output"]
    assert outputs == ["HOOKREC-1", "HOOKREC-3", "HOOKREC-1"]  # ... but the recorder still gets every kept one


def test_the_recorder_implements_every_hook_exactly() -> None:
    module = ast.parse(RECORDER)
    implemented = {
        node.name: [arg.arg for arg in node.args.args]
        for node in module.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("tracee_")
    }
    specs = hookspec_functions()
    assert set(implemented) == set(specs)
    for name, params in implemented.items():
        assert params == parameters(specs[name]), name


def test_listing_still_ends_the_session(run: Run) -> None:
    """A plugin that sets something up at session start gets to release it under --list too."""
    result = run("--rules", OURS, "--list")
    assert result.returncode == 0, result.stderr
    names = [call["hook"] for call in run.calls()]
    assert names.count("tracee_sessionstart") == names.count("tracee_sessionfinish") == 1
    assert names.index("tracee_sessionstart") < names.index("tracee_sessionfinish")


@pytest.mark.parametrize("how", ["entry point", "rules dir"])
def test_a_configure_hook_that_crashes_is_an_error_not_a_traceback(tmp_path: Path, how: str) -> None:
    run = Run(tmp_path, how)
    plugin = (run.rules_dir / "hookrec.py") if how == "rules dir" else next(tmp_path.rglob("site/hookrec.py"))
    plugin.write_text(
        plugin.read_text().replace(
            "def tracee_configure(config):\n", 'def tracee_configure(config):\n    raise KeyError("boom")\n', 1
        )
    )
    result = run("--rules", "HOOKREC-1")
    assert "Traceback" not in result.stderr
    if how == "rules dir":  # that file is not loaded; the run reports it and goes on without it
        assert "hookrec.py" in result.stderr and "registering it failed: KeyError: 'boom'" in result.stderr
        assert "no such signature: HOOKREC-1" in result.stderr and result.returncode == 2
    else:
        assert "a plugin's tracee_configure failed: KeyError: 'boom'" in result.stderr
        assert result.returncode == 2
