"""Build hook: compile the collector's eBPF object into the package while building it.

The project is configured in pyproject.toml; this file only extends ``build_py`` so
that a wheel (``pip install .``) carries ``pytracee/bpf/tracee.bpf.o`` and its reduced
BTF, and running ``tracee`` needs no compiler. Without clang and bpftool the package
still builds, without the object, and says so (tracee can then build one at run time
with ``--build-policy``).

It compiles the engine's hot-path modules with mypyc (engine/compiled.py lists them), and
writes the digest of the sources compiled beside them, by which the engine notices compiled
modules older than their sources and runs the sources instead. Where mypyc or a C compiler is
missing, or ``PYTRACEE_COMPILE=0`` is set, the package installs without them.

It also builds the optional C encoder of ``tracee -o json`` (collector/_fastjson.c) and the
optional C record scanner of replays (engine/_recscan.c): where they cannot be compiled the
package installs without them, and the Python code (the same answers) is used.
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
#: engine/compiled.py, read by path: the package itself cannot be imported while it is built.
COMPILED: dict[str, Any] = runpy.run_path(str(HERE / "engine" / "compiled.py"))
#: Commands that write the package's metadata and build nothing.
METADATA_COMMANDS = frozenset({"dist_info", "egg_info"})


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


class BuildExtWithDigest(build_ext):
    """``build_ext``, then the digest of the compiled sources beside the compiled engine modules."""

    def finalize_options(self) -> None:
        # here, not at set-up: only the commands that build pay for mypyc (once per process); not
        # the metadata's (pip's "Preparing metadata" lists the extensions' sources for the manifest)
        extensions = self.distribution.ext_modules or []
        metadata_only = set(self.distribution.commands) <= METADATA_COMMANDS
        if not metadata_only and not any(ext.name.startswith(COMPILED["GROUP"]) for ext in extensions):
            self.distribution.ext_modules = [*compiled_engine(), *extensions]
        super().finalize_options()

    def run(self) -> None:
        super().run()
        group = COMPILED["GROUP"] + "__mypyc"
        if not any(ext.name == group for ext in self.extensions):
            return
        built = Path(self.get_ext_fullpath(group))
        # the package's directory in the build (inplace: the checkout), as engine/compiled.py's _ROOT
        root = Path(self.get_ext_fullpath("pytracee.engine.dispatch")).parent.parent
        digest = root / COMPILED["DIGEST_FILE"]
        if built.exists():  # the compiled modules are optional: a failed build leaves none
            digest.write_text(COMPILED["source_digest"](HERE) + "\n")
        else:
            digest.unlink(missing_ok=True)


def compiled_engine() -> list[Extension]:
    """The engine's hot-path modules compiled by mypyc, or none where that cannot be done."""
    if os.environ.get("PYTRACEE_COMPILE", "1") == "0":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        sys.stderr.write("setup: mypyc is missing: the engine's modules will run from their sources\n")
        return []
    # mypy finds the packages under their import names (pytracee.engine, ...) through links
    tree = HERE / "build" / "mypyc-src"
    for package in ("bpf", "collector", "engine", "rules", "signatures"):
        link = tree / "pytracee" / package
        if link.is_symlink() and link.resolve() != (HERE / package).resolve():
            link.unlink()  # a checkout copied with its build/: the link names the old one's sources
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(HERE / package, target_is_directory=True)
    os.environ["MYPYPATH"] = str(tree)
    sources = [str(tree / "pytracee" / relative) for relative in COMPILED["MODULES"]]
    # Not the project's strict configuration (scripts/lint checks that): the build may run before
    # the dependencies are installed (pip builds a project before installing what it requires),
    # so their modules are Any here, and only errors in the compiled modules themselves count.
    options = [
        "--config-file=",
        "--python-version=3.11",
        "--explicit-package-bases",
        "--ignore-missing-imports",
        "--follow-imports=silent",
    ]
    try:
        extensions = mypycify([*options, *sources], opt_level="3", group_name=COMPILED["GROUP"])
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - mypy found errors, or mypyc cannot compile them
        sys.stderr.write(
            f"setup: the engine's modules cannot be compiled ({exc!r}): they will run from their sources\n"
        )
        return []
    for extension in extensions:
        extension.optional = True  # a C compiler's failure leaves the sources running
    return extensions


setup(
    cmdclass={"build_py": BuildPyWithBpf, "build_ext": BuildExtWithDigest},
    ext_modules=[
        Extension("pytracee.collector._fastjson", ["collector/_fastjson.c"], optional=True),
        Extension(
            "pytracee.engine._recscan",
            ["engine/_recscan.c"],
            depends=[
                "engine/_recscan_json.h",
                "engine/_recscan_args.h",
                "engine/_recscan_shards.h",
                "engine/_recscan_plan.h",
                "engine/_recscan_decoded.h",
                "engine/_recscan_split.h",
                "engine/_recscan_owner.h",
                "engine/_recscan_ahead.h",
            ],
            optional=True,
        ),
    ],
)
