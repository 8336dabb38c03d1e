"""Shared test helpers for pytracee's own suite."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from collector_support import build_object, require_bpf
from hypothesis import HealthCheck, settings

# Property/fuzz tests: a bounded run in the normal suite ("ci"); scripts/fuzz selects the long
# "release" profile through HYPOTHESIS_PROFILE.
settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("release", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent


def fixture_lines(name: str) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines fixture file."""
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def tracee_rules(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the tracee-rules command in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "pytracee.engine.cli.tracee_rules", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
    )


@pytest.fixture
def quiet_logs() -> Iterator[None]:
    """Property tests log thousands of expected warnings: keep them out of the report."""
    logger = logging.getLogger("pytracee")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def bpf_object() -> Path:
    """The built BPF object (session-wide), on a host where bpf() works; the live-collector
    tests' helpers are in collector_support.py."""
    require_bpf()
    return build_object()
