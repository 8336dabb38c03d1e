"""Start-up cost: the commands import what only some options use when those options are used.

``asyncio`` and ``ssl`` (the NATS client, ``nats://`` inputs and outputs, https webhooks),
``http.server`` (``--metrics-addr``), ``http.client`` (asking Docker about containers) and
``yaml`` (``--config``, YAML rule files) would add tens of milliseconds to every start.
Each check runs a fresh interpreter, so a module-level import added anywhere on the way
is caught; the last checks show that the probe sees such an import.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

LAZY = ("asyncio", "ssl", "http.server", "http.client", "yaml")


def loaded_after(module: str) -> list[str]:
    """Which of :data:`LAZY` a fresh interpreter has loaded after importing ``module``."""
    probe = f"import sys, json, {module}; print(json.dumps(sorted(m for m in {LAZY!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


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
    ],
)
def test_the_modules_that_need_them_still_load_them(module: str, expected: list[str]) -> None:
    assert set(expected) <= set(loaded_after(module))
