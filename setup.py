"""Build hook: compile the collector's eBPF object into the package while building it.

The project is configured in pyproject.toml; this file only extends ``build_py`` so
that a wheel (``pip install .``) carries ``pytracee/bpf/tracee.bpf.o`` and its reduced
BTF, and running ``tracee`` needs no compiler. Without clang and bpftool the package
still builds, without the object, and says so (tracee can then build one at run time
with ``--build-policy``).

It also builds the optional C encoder of ``tracee -o json`` (collector/_fastjson.c) and the
optional C record scanner of replays (engine/_recscan.c): where they cannot be compiled the
package installs without them, and the Python code (the same answers) is used.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithBpf(build_py):
    """``build_py`` plus ``make -C bpf`` into a scratch directory, then the object into the package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib, "pytracee", "bpf")
        if (target / "tracee.bpf.o").exists():
            return  # built by scripts/setup.sh (or an earlier run) and copied as package data
        if not all(shutil.which(tool) for tool in ("make", "clang", "bpftool")):
            self.warn("clang, bpftool or make missing: the package has no prebuilt eBPF object")
            return
        with tempfile.TemporaryDirectory(prefix="pytracee-bpf-") as scratch:
            built = Path(scratch, "tracee.bpf.o")
            reduced = Path(scratch, "tracee.min.btf")
            subprocess.run(["make", "-s", "-C", str(HERE / "bpf"), f"OUT={built}"], check=True)
            subprocess.run(
                ["make", "-s", "-C", str(HERE / "bpf"), f"OUT={built}", f"MIN_BTF={reduced}", "min-btf"], check=True
            )
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(built, target / built.name)
            shutil.copy2(reduced, target / reduced.name)


setup(
    cmdclass={"build_py": BuildPyWithBpf},
    ext_modules=[
        Extension("pytracee.collector._fastjson", ["collector/_fastjson.c"], optional=True),
        Extension(
            "pytracee.engine._recscan",
            ["engine/_recscan.c"],
            depends=[
                "engine/_recscan_json.h",
                "engine/_recscan_shards.h",
                "engine/_recscan_plan.h",
                "engine/_recscan_decoded.h",
            ],
            optional=True,
        ),
    ],
)
