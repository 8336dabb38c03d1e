"""Which BPF object and which BTF file the collector loads: Tracee's discovery order.

Tracee v0.7–v0.8 (``cmd/tracee-ebpf/initialize/bpfobject.go``), with the on-host build
and ``--build-policy`` of v0.5–v0.6 (``tracee-ebpf/main.go``), decided in this order:

1. ``TRACEE_BPF_FILE`` set and BTF available (``TRACEE_BTF_FILE``, preferred, or the
   kernel's ``/sys/kernel/btf/vmlinux``) → load that file as CO-RE with that BTF.
2. ``TRACEE_BPF_FILE`` set, no BTF → load it as a non-CO-RE object.
3. No ``TRACEE_BPF_FILE``, BTF available → the embedded CO-RE object
   (``pytracee/bpf/tracee.bpf.o``; in a checkout ``bpf/tracee.bpf.o``).
4. No BPF file, no BTF, but an embedded reduced BTF (``bpf/tracee.min.btf``) → copy it
   to ``<install-path>/tracee.btf`` and load the embedded CO-RE object with it.
5. Otherwise the non-CO-RE object ``tracee.bpf.<uname -r, . → _>.<version, . → _>.o``,
   looked for next to the executable, then in ``--install-path`` (default ``/tmp/tracee``);
   built from the embedded sources into the install path when missing and
   ``--build-policy`` is ``if-needed`` (default), always rebuilt with ``always``, never
   built with ``never`` (``make -C <copy of bpf/> OUT=... CORE=0 [VMLINUX_BTF=...]
   [KERN_HEADERS=...]``: from a BTF file, or from the kernel's headers, by default
   ``/lib/modules/<release>/build``; see :func:`build_nocore_object`).  If nothing is loadable: :class:`BpfObjectError`, exit status 2,
   as Tracee did (its container entrypoint reacted to rc 2).

Differences from Tracee, on purpose:

* **The embedded reduced BTF (case 4).**  Tracee embedded BTFHub's file for each known
  distribution kernel and picked the one matching ``/etc/os-release`` + ``uname -r``.  We
  embed one file, ``bpftool gen min_core_btf`` run at build time against the *build*
  machine's kernel BTF: it only carries the types our object's CO-RE relocations touch,
  and is correct only on a kernel whose layouts for those types match the build kernel's
  (in practice: the same kernel build).  On any other kernel relocations may silently read
  wrong offsets; give the right BTF with ``TRACEE_BTF_FILE`` instead.  A reduced BTF only
  feeds CO-RE relocations (libbpf's ``btf_custom_path``): ``tp_btf``/fentry/LSM programs
  still need the kernel's own BTF, so they cannot load in this mode.
* **``--build-policy always``** rebuilds the non-CO-RE object even when one exists, but,
  as in v0.5–v0.6 where the policy was consulted only in the no-BTF branch, it does not
  override cases 1–4: when a CO-RE path works, building a kernel-header-bound object would
  only lose portability.  The decision's reason says so when ``always`` was ignored.
* **Safety.**  Every object and BTF file about to be returned (environment-given ones too)
  goes through :func:`.privileges.check_safe_file`, and the install path through
  :func:`.privileges.prepare_install_path`; the chosen paths are the resolved ones.  The
  build runs on a private copy of the sources with an empty capability bounding set and
  its result is moved into the install path atomically.
* A set but missing ``TRACEE_BPF_FILE``/``TRACEE_BTF_FILE`` is an error (as in Tracee), with
  exit status 1, not a silent fall-through.

The decision is logged at debug level on the ``pytracee.collector`` logger.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .privileges import check_safe_file, prepare_install_path, unprivileged_command

__all__ = [
    "BUILD_POLICIES",
    "BpfObjectError",
    "ObjectChoice",
    "build_nocore_object",
    "choose_bpf_object",
    "nocore_object_name",
]

log = logging.getLogger("pytracee.collector")

ENV_BPF_FILE = "TRACEE_BPF_FILE"
ENV_BTF_FILE = "TRACEE_BTF_FILE"
EMBEDDED_OBJECT = "tracee.bpf.o"
EMBEDDED_MIN_BTF = "tracee.min.btf"
UNPACKED_BTF = "tracee.btf"
BUILD_POLICIES = ("never", "if-needed", "always")
BUILD_TIMEOUT = 900.0
# Not copied into the build: objects, BTF, Python files and what an earlier build generated.
_SOURCE_IGNORE = shutil.ignore_patterns(
    "*.o", "*.btf", "*.py", "*.pyc", "__pycache__", "build", ".*", "vmlinux.h", "tracee_features.h", "vmlinux.btf-path"
)


@dataclass(frozen=True)
class ObjectChoice:
    """The BPF object to load and how.

    ``btf_path`` is given to libbpf as ``btf_custom_path``; ``None`` means load without it
    (the kernel's own BTF for CO-RE, or no relocation at all for a non-CO-RE object).
    ``case`` is the decision taken (1–5, see the module docstring), ``reason`` its
    explanation, logged at debug level.
    """

    object_path: Path
    btf_path: Path | None
    core: bool
    case: int
    reason: str


class BpfObjectError(Exception):
    """No loadable BPF object.  ``exit_code`` is 2 for "nothing loadable" (Tracee's status),
    1 for a configuration error (an environment variable naming a missing file).
    ``tried`` lists what was tried, one line each."""

    def __init__(self, message: str, *, exit_code: int = 2, tried: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.tried = tuple(tried)


# --------------------------------------------------------------------------- defaults


def default_embedded_dir() -> Path:
    """The installed package's ``bpf`` directory (``pytracee.bpf``; ``bpf/`` of a checkout)."""
    try:
        return Path(str(importlib.resources.files("pytracee.bpf")))
    except (ModuleNotFoundError, TypeError):
        return Path(__file__).resolve().parent.parent / "bpf"


def package_version() -> str:
    """pytracee's version, as used in the non-CO-RE object's name."""
    try:
        return importlib.metadata.version("pytracee")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def executable_dir() -> Path | None:
    """The directory of the running command (Tracee looked next to its binary first)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.is_file():
        return argv0.resolve().parent
    return None


def nocore_object_name(kernel_release: str, version: str) -> str:
    """``tracee.bpf.<kernel release>.<version>.o`` with dots as underscores, as Tracee named it."""
    version = version.replace('"', "")
    return f"tracee.bpf.{kernel_release.replace('.', '_')}.{version.replace('.', '_')}.o"


def _env_file(environ: Mapping[str, str], name: str) -> Path | None:
    """The file an environment variable names, or None when unset or empty."""
    value = environ.get(name, "")
    if not value:
        return None
    path = Path(value)
    if not os.path.lexists(path):
        raise BpfObjectError(f"could not open {name} {value}: no such file", exit_code=1)
    return path


# --------------------------------------------------------------------------- installing files


def _install_file(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` atomically (exclusive temp name, then rename), mode 0644."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        os.unlink(temporary)
    except FileNotFoundError:
        pass
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fchmod(out.fileno(), 0o644)
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


# --------------------------------------------------------------------------- the build (case 5)


def build_nocore_object(
    target: Path,
    *,
    embedded_dir: Path,
    environ: Mapping[str, str],
    timeout: float = BUILD_TIMEOUT,
    kernel_btf: Path = Path("/sys/kernel/btf/vmlinux"),
) -> Path:
    """Build the non-CO-RE object from the embedded sources into ``target``.

    Runs ``make -C <private copy of embedded_dir> OUT=<temp file> CORE=0
    [VMLINUX_BTF=$VMLINUX_BTF] [KERN_HEADERS=$KERN_HEADERS]`` without capabilities
    (:func:`.privileges.unprivileged_command`), then moves the result to ``target`` (in an
    install path already validated).  ``environ`` is layered over the process environment
    for the build (``PATH``, ``MAKE``, ``CLANG``, ``BPFTOOL``, ...).  Returns the checked
    target; raises :class:`BpfObjectError` (exit 2) when the build fails.

    ``bpf/Makefile`` builds the CORE=0 object from a BTF file (``VMLINUX_BTF``, its default
    ``/sys/kernel/btf/vmlinux``) or, on a kernel without BTF, from its headers
    (``KERN_HEADERS``: a kernel build or headers directory; with neither set and no kernel
    BTF, ``/lib/modules/<release>/build`` as Tracee did). Both are passed on as the user set
    them, so the Makefile's own message explains a refusal.
    """
    child_env = {**os.environ, **environ}
    if not child_env.get("VMLINUX_BTF") and not child_env.get("KERN_HEADERS") and not kernel_btf.exists():
        build_dir = Path("/lib/modules", os.uname().release, "build")
        if build_dir.is_dir():
            child_env["KERN_HEADERS"] = str(build_dir)
    if not (embedded_dir / "Makefile").is_file():
        raise BpfObjectError(f"cannot build: the embedded BPF sources {embedded_dir} have no Makefile")
    make = shutil.which(child_env.get("MAKE") or "make", path=child_env.get("PATH"))
    if make is None:
        raise BpfObjectError("cannot build: make not found on PATH (install make, clang and llvm)")
    with tempfile.TemporaryDirectory(prefix="tracee-make-") as scratch:
        sources = Path(scratch) / "bpf"
        shutil.copytree(embedded_dir, sources, ignore=_SOURCE_IGNORE)
        out = Path(scratch) / target.name
        argv = [make, "-C", str(sources), f"OUT={out}", "CORE=0"]
        argv += [
            f"{variable}={child_env[variable]}"
            for variable in ("VMLINUX_BTF", "KERN_HEADERS")
            if child_env.get(variable)
        ]
        argv, preexec, how = unprivileged_command(argv, path=child_env.get("PATH"))
        log.debug("BPF: building the non-CO-RE object: %s (%s)", shlex.join(argv), how)
        try:
            proc = subprocess.run(
                argv,
                env=child_env,
                cwd=scratch,
                capture_output=True,
                text=True,
                timeout=timeout,
                preexec_fn=preexec,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BpfObjectError(f"building the non-CO-RE object timed out after {timeout:.0f} s") from exc
        if proc.returncode != 0 or not out.is_file():
            output = (proc.stderr.strip() or proc.stdout.strip() or "(no output)").splitlines()
            tail = "\n    ".join(output[-15:])
            status = f"exit status {proc.returncode}" if proc.returncode else "no object produced"
            raise BpfObjectError(f"building the non-CO-RE object failed ({status}): {shlex.join(argv)}\n    {tail}")
        if log.isEnabledFor(logging.DEBUG) and proc.stdout.strip():
            log.debug("BPF: build output:\n%s", proc.stdout.rstrip())
        _install_file(out, target)
    return check_safe_file(target, "the built non-CO-RE BPF object")


# --------------------------------------------------------------------------- the decision


def _nothing_loadable(tried: list[str], install: Path, name: str, detail: str) -> BpfObjectError:
    lines = "\n".join(f"  - {line}" for line in tried)
    return BpfObjectError(
        f"BPF: no loadable eBPF object ({detail}).\n"
        f"Tried, in Tracee's order:\n{lines}\n"
        "What to do:\n"
        "  - run on a kernel with BTF (CONFIG_DEBUG_INFO_BTF=y: /sys/kernel/btf/vmlinux), or give this\n"
        "    kernel's BTF with TRACEE_BTF_FILE=/path/to/vmlinux.btf (e.g. from BTFHub);\n"
        "  - or set TRACEE_BPF_FILE to a BPF object built for this kernel;\n"
        "  - or let tracee build the non-CO-RE object (--build-policy if-needed; needs make, clang,\n"
        "    llvm-strip, bpftool, and this kernel's headers: KERN_HEADERS=<dir>, default\n"
        "    /lib/modules/$(uname -r)/build, with pahole; or its BTF as VMLINUX_BTF=<file>), or copy\n"
        f"    an object built for this kernel to {install / name}.",
        exit_code=2,
        tried=tried,
    )


def _embedded_object(embedded_dir: Path, case: int) -> Path:
    candidate = embedded_dir / EMBEDDED_OBJECT
    if not os.path.lexists(candidate):
        raise BpfObjectError(
            f"could not unpack the embedded CO-RE eBPF object: {candidate} is missing (case {case}); "
            "build it with `make -C bpf` in a checkout or reinstall pytracee, or set TRACEE_BPF_FILE",
            exit_code=2,
        )
    return check_safe_file(candidate, "the embedded CO-RE BPF object")


def choose_bpf_object(
    *,
    install_path: Path = Path("/tmp/tracee"),  # noqa: S108 - Tracee's default; prepare_install_path checks it
    build_policy: str = "if-needed",
    kernel_btf: Path = Path("/sys/kernel/btf/vmlinux"),
    environ: Mapping[str, str] = os.environ,
    embedded_dir: Path | None = None,
    kernel_release: str | None = None,
    version: str | None = None,
    exe_dir: Path | None = None,
) -> ObjectChoice:
    """Decide which BPF object (and BTF) to load, in Tracee's order (see the module docstring).

    ``kernel_btf`` only decides whether the kernel has BTF (tests point it at a missing
    path); libbpf finds the kernel's BTF itself, so that case returns ``btf_path=None``.
    ``environ`` supplies ``TRACEE_BPF_FILE``/``TRACEE_BTF_FILE`` and the build's variables;
    ``embedded_dir`` defaults to the package's ``bpf`` directory, ``kernel_release`` to
    ``uname -r``, ``version`` to pytracee's version and ``exe_dir`` to the running
    command's directory.  Raises :class:`BpfObjectError` (``exit_code`` 2 when nothing is
    loadable) or :class:`.privileges.UnsafePathError` for a file or directory another user
    could control.
    """
    if build_policy not in BUILD_POLICIES:
        raise ValueError(f"invalid --build-policy {build_policy!r}: choose one of {', '.join(BUILD_POLICIES)}")
    embedded = Path(embedded_dir) if embedded_dir is not None else default_embedded_dir()
    bpf_env = _env_file(environ, ENV_BPF_FILE)
    btf_env = _env_file(environ, ENV_BTF_FILE)
    vmlinux = Path(kernel_btf).exists()
    log.debug(
        "BTF: bpfenv = %s, btfenv = %s, vmlinux = %s (%s)",
        bpf_env is not None,
        btf_env is not None,
        vmlinux,
        kernel_btf,
    )

    choice = _decide(
        bpf_env=bpf_env,
        btf_env=btf_env,
        vmlinux=vmlinux,
        kernel_btf=Path(kernel_btf),
        embedded=embedded,
        install_path=Path(install_path),
        build_policy=build_policy,
        environ=environ,
        kernel_release=kernel_release or os.uname().release,
        version=version or package_version(),
        exe_dir=exe_dir if exe_dir is not None else executable_dir(),
    )
    log.debug(
        "BPF: decision %d: %s [object=%s, btf=%s, %s]",
        choice.case,
        choice.reason,
        choice.object_path,
        choice.btf_path or "-",
        "CO-RE" if choice.core else "non-CO-RE",
    )
    return choice


def _decide(
    *,
    bpf_env: Path | None,
    btf_env: Path | None,
    vmlinux: bool,
    kernel_btf: Path,
    embedded: Path,
    install_path: Path,
    build_policy: str,
    environ: Mapping[str, str],
    kernel_release: str,
    version: str,
    exe_dir: Path | None,
) -> ObjectChoice:
    ignored = (
        " (--build-policy always only applies to the non-CO-RE object of case 5)" if build_policy == "always" else ""
    )
    btf_file = check_safe_file(btf_env, ENV_BTF_FILE) if btf_env is not None else None
    btf_source = f"{ENV_BTF_FILE}={btf_file}" if btf_file else f"the kernel's BTF ({kernel_btf})"

    # (1) BPF file given & BTF (env preferred, or vmlinux): load it as CO-RE.
    # (2) BPF file given & no BTF: it is a non-CO-RE object.
    if bpf_env is not None:
        obj = check_safe_file(bpf_env, ENV_BPF_FILE)
        if btf_file is not None or vmlinux:
            return ObjectChoice(
                obj, btf_file, True, 1, f"{ENV_BPF_FILE}={obj} loaded as CO-RE with {btf_source}{ignored}"
            )
        return ObjectChoice(
            obj,
            None,
            False,
            2,
            f"{ENV_BPF_FILE}={obj} loaded as a non-CO-RE object: no BTF ({ENV_BTF_FILE} unset, {kernel_btf} missing){ignored}",
        )

    # (3) no BPF file & BTF (env or vmlinux): the embedded CO-RE object.
    if btf_file is not None or vmlinux:
        obj = _embedded_object(embedded, 3)
        return ObjectChoice(obj, btf_file, True, 3, f"embedded CO-RE object {obj} with {btf_source}{ignored}")

    no_btf = f"no {ENV_BPF_FILE}, no {ENV_BTF_FILE} and no kernel BTF at {kernel_btf}"
    tried = [
        f"cases 1-2: {ENV_BPF_FILE} not set",
        f"case 3: no BTF: {ENV_BTF_FILE} not set and {kernel_btf} missing",
    ]

    # (4) no BPF file, no BTF, but the embedded reduced BTF: unpack it, embedded CO-RE object.
    min_btf = embedded / EMBEDDED_MIN_BTF
    if os.path.lexists(min_btf):
        source = check_safe_file(min_btf, "the embedded reduced BTF")
        obj = _embedded_object(embedded, 4)
        install = prepare_install_path(install_path)
        target = install / UNPACKED_BTF
        _install_file(source, target)
        btf = check_safe_file(target, "the unpacked BTF file")
        log.warning(
            "BTF: the kernel has no BTF; using the embedded reduced BTF, made from the build machine's kernel: "
            "valid only if this kernel's struct layouts match it. If events look wrong, set %s to this kernel's BTF.",
            ENV_BTF_FILE,
        )
        return ObjectChoice(
            obj,
            btf,
            True,
            4,
            f"{no_btf}: embedded CO-RE object {obj} with the embedded reduced BTF {source} (bpftool gen "
            f"min_core_btf of the build kernel; only valid on a kernel with the same layouts) unpacked to {btf}{ignored}",
        )
    tried.append(f"case 4: no embedded reduced BTF ({min_btf} missing)")

    # (5) the non-CO-RE object: next to the executable, then in the install path; build it if allowed.
    name = nocore_object_name(kernel_release, version)
    found: Path | None = None
    for directory in ([exe_dir] if exe_dir is not None else []) + [install_path]:
        candidate = Path(directory) / name
        if directory == install_path and os.path.lexists(install_path):
            candidate = prepare_install_path(install_path) / name
        if os.path.lexists(candidate):
            found = check_safe_file(candidate, "the non-CO-RE BPF object")
            break
        tried.append(f"case 5: {candidate}: missing")

    if found is not None and build_policy != "always":
        return ObjectChoice(found, None, False, 5, f"{no_btf}, no embedded reduced BTF: non-CO-RE object {found}")
    if build_policy == "never":
        raise _nothing_loadable([*tried, "case 5: not building it: --build-policy never"], install_path, name, no_btf)

    install = prepare_install_path(install_path)
    target = install / name
    why = "--build-policy always" if found is not None else f"--build-policy {build_policy}, none found"
    try:
        built = build_nocore_object(target, embedded_dir=embedded, environ=environ, kernel_btf=kernel_btf)
    except BpfObjectError as exc:
        raise _nothing_loadable(
            [*tried, f"case 5: build ({why}): {exc}"], install_path, name, "the build failed"
        ) from exc
    return ObjectChoice(
        built, None, False, 5, f"{no_btf}, no embedded reduced BTF: built the non-CO-RE object {built} ({why})"
    )
