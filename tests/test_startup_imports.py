"""Start-up cost: the commands import what only some options use when those options are used.

``asyncio`` and ``ssl`` (the NATS client, ``nats://`` inputs and outputs, https webhooks),
``http.server`` (``--metrics-addr``), ``http.client`` (asking Docker about containers),
``yaml`` (``--config``, YAML rule files) and ``jinja2`` (finding templates other than the
default one's plain block) would add tens of milliseconds to every start.
Each check runs a fresh interpreter, so a module-level import added anywhere on the way
is caught; the last checks show that the probe sees such an import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

LAZY = ("asyncio", "ssl", "http.server", "http.client", "yaml", "jinja2")


def loaded_after(module: str, then: str = "") -> list[str]:
    """Which of :data:`LAZY` a fresh interpreter has loaded after importing ``module``
    (and running ``then``)."""
    probe = (
        f"import sys, json, {module}\n{then}\n"
        f"print(json.dumps(sorted(m for m in {LAZY!r} if m in sys.modules)), file=sys.__stderr__)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stderr.splitlines()[-1])


@pytest.mark.parametrize(
    "module",
    [
        "pytracee.engine.cli.tracee_rules",  # tracee-rules
        "pytracee.collector.cli.tracee",  # tracee
        "pytracee.engine",  # the signature author's API
    ],
)
def test_commands_start_without_the_optional_modules(module: str) -> None:
    assert loaded_after(module) == []


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("pytracee.engine.bus.connection", ["asyncio", "ssl"]),
        ("pytracee.engine.operations.metrics_http", ["http.client", "http.server", "ssl"]),
        ("pytracee.engine.cel.yamlload", ["yaml"]),
        ("pytracee.engine.output.sandbox", ["jinja2"]),
    ],
)
def test_the_modules_that_need_them_still_load_them(module: str, expected: list[str]) -> None:
    assert set(expected) <= set(loaded_after(module))


def test_a_replay_with_the_default_signatures_loads_none_of_them(tmp_path: Path) -> None:
    """Not only the import: configuring the run, loading the default signature set (CEL's
    YAML files are not selected by default) and replaying leave them unloaded too."""
    events = tmp_path / "events.json"
    events.write_text("")
    run = (
        "from pytracee.engine.cli.tracee_rules import main\n"
        f"assert main(['--input', {str(events)!r}, '--output', {str(tmp_path / 'out')!r}]) == 0"
    )
    assert loaded_after("pytracee.engine.cli.tracee_rules", run) == []
    assert (tmp_path / "out").exists()


def test_findings_printed_by_the_default_template_load_no_jinja2(tmp_path: Path) -> None:
    """The default template's block is built without Jinja2 when its values are plain; another
    template compiles, and loads it."""
    detections = Path(__file__).parent / "fixtures" / "detections_both_eras.jsonl"
    out = tmp_path / "out"

    def replay(*options: str) -> str:
        arguments = ["--input", str(detections), "--output", str(out), *options]
        return f"from pytracee.engine.cli.tracee_rules import main\nassert main({arguments!r}) == 0"

    assert loaded_after("pytracee.engine.cli.tracee_rules", replay()) == []
    assert out.read_text().count("*** Detection ***") == 5
    assert loaded_after("pytracee.engine.cli.tracee_rules", replay("--output-template", "simple")) == ["jinja2"]


def test_tracee_help_loads_none_of_them() -> None:
    run = (
        "from pytracee.collector.cli.tracee import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as exc:\n    assert exc.code == 0"
    )
    assert loaded_after("pytracee.collector.cli.tracee", run) == []
