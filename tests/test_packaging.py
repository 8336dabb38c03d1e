"""The project installs as a real wheel with its commands, signatures, templates and plugins."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.packaging


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from the checkout, installed into a scratch directory."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # the tracked files only: no build/ leftovers can slip into the wheel
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(work / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (work / "dist").glob("pytracee-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pytracee/engine/output/templates/rawjson.j2" in names
    assert "pytracee/signatures/__init__.py" in names
    assert "pytracee/engine/rego/helpers.rego" in names
    # the compiled record scanner (engine/_recscan.c and its headers), built from the tracked files
    assert [n for n in names if n.startswith("pytracee/engine/_recscan.") and n.endswith(".so")]
    assert len([n for n in names if n.startswith("pytracee/rules/rego/") and n.endswith(".rego")]) == 14
    assert len([n for n in names if n.startswith("pytracee/rules/cel/") and n.endswith(".yaml")]) >= 5
    if shutil.which("clang") and shutil.which("bpftool"):  # the build hook compiles the eBPF object
        assert {"pytracee/bpf/tracee.bpf.o", "pytracee/bpf/tracee.min.btf", "pytracee/bpf/tracee.bpf.c"} <= set(names)
        assert not [n for n in names if n.endswith("vmlinux.h")]  # generated headers stay out
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def run_installed(target: Path, *args: str, command: str = "tracee-rules") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(target)}
    return subprocess.run(
        [sys.executable, str(target / "bin" / command), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=target,
    )


def test_wheel_installs_the_command_with_builtin_signatures(installed: Path) -> None:
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import pytracee.engine, pytracee.signatures; print(pytracee.engine.__file__); "
                "print(pytracee.engine.compiled.status())"
            ),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(installed)},
        cwd=installed,
    )
    assert where.stdout.startswith(str(installed)), "the test must exercise the wheel, not the checkout"
    assert where.stdout.splitlines()[1] == "compiled"  # the wheel carries the compiled engine, current
    listing = run_installed(installed, "--list")
    assert listing.returncode == 0, listing.stderr
    assert "32 of " in listing.stdout and "signatures enabled" in listing.stdout
    everything = run_installed(installed, "--rules", "all", "--list").stdout
    header = everything.splitlines()[0]
    column = header.index("LANGUAGE")
    languages = {line[column:].split()[0] for line in everything.splitlines()[1:] if line.startswith(("TRC-", "CEL-"))}
    assert languages == {"python", "rego", "cel"}


def test_wheel_replays_events_with_packaged_templates(installed: Path, tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text(
        json.dumps({"eventName": "ptrace", "processName": "strace", "args": [{"name": "request", "value": 0}]}) + "\n"
    )
    result = run_installed(installed, "--input", str(events), "--output-template", "rawjson")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["SigMetadata"]["ID"] == "TRC-102"


def test_pytest_plugin_is_registered(installed: Path) -> None:
    dist_info = next(installed.glob("pytracee-*.dist-info"))
    entry_points = (dist_info / "entry_points.txt").read_text()
    assert "[pytest11]\npytracee = pytracee.engine.testing" in entry_points
    assert "tracee-rules = pytracee.engine.cli.entry:tracee_rules" in entry_points


def test_installed_collector_uses_the_packaged_object(installed: Path) -> None:
    script = (
        "from pytracee.collector.objects import choose_bpf_object\n"
        "c = choose_bpf_object()\n"
        "print(c.case, c.object_path)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(installed)},
        cwd=installed,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    case, path = result.stdout.split()
    assert case == "3" and path.startswith(str(installed.resolve()))  # the wheel's CO-RE object with the kernel's BTF
    assert run_installed(installed, "--help", command="tracee").returncode == 0
