"""``--capture`` options in Tracee v0.24.1's syntax, and ``--capture help``.

::

    --capture write=/tmp/*                 written files whose path starts with /tmp/
    --capture write:type=pipe              AND between filter kinds, OR within one
    --capture read:fd=stdin
    --capture exec --capture mem --capture module
    --capture dir:/var/tracee --capture clear-dir
    --capture artifact-limit:16mb --capture total-limit:1gb
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = [
    "CAPTURE_HELP",
    "DEFAULT_ARTIFACT_LIMIT",
    "DEFAULT_TOTAL_LIMIT",
    "CaptureOptionError",
    "CaptureOptions",
    "FileFilter",
    "parse_capture",
]

#: Up to this many path prefixes per direction, each up to this many characters (Tracee's limits).
MAX_PATHS: Final = 3
MAX_PATH_LEN: Final = 50
FILE_TYPES: Final = ("regular", "pipe", "socket", "elf")
STD_FDS: Final = {"stdin": 0, "stdout": 1, "stderr": 2}
DEFAULT_ARTIFACT_LIMIT: Final = 64 << 20
DEFAULT_TOTAL_LIMIT: Final = 1 << 30
DEFAULT_RING_BYTES: Final = 32 << 20
DEFAULT_DIR: Final = Path("/tmp/tracee")  # noqa: S108 - Tracee's install path; checked by privileges.py

CAPTURE_HELP: Final = """\
Capture artifacts that were written, read, executed or found to be suspicious.
Captured artifacts appear in the 'out' subdirectory of the capture directory, one
directory per container ('host' for the host), and each one is reported by an event
(capture_file_write, capture_file_read, capture_exec, capture_mem, capture_module, capture_pcap).

Possible options:

[artifact:]write[=/path/prefix*]    capture written files. A filter can be given to only capture writes
                                    whose path starts with a prefix (up to 50 characters). Up to 3 filters.
[artifact:]read[=/path/prefix*]     capture read files (same filters as write).
[artifact:]exec                     capture executed files (once per file, again when it changed; memfd and
                                    deleted executables included).
[artifact:]module                   capture the images of kernel modules processes ask to load.
[artifact:]mem                      capture memory regions whose protection went from write+execute to
                                    execute (as mem_prot_alert reports them).
network                             capture network packets (cgroup_skb on the cgroup v2 root): every TCP, UDP
                                    and ICMP packet of the host into pcap/single.pcap (raw IP, ns timestamps).
pcap:single                         one pcap file (the only layout available here).
pcap-options:none                   all packets (the default; 'filtered' is not available here).
pcap-snaplen:default|headers|max|SIZE   payload kept after the L4 header: 96 bytes (default), none,
                                    all, or SIZE (256b, 1kb, ...); at most 16kb of a packet in any case.

dir:/path/to/dir                    where artifacts are saved, in its 'out' subdirectory (default: /tmp/tracee).
                                    Refused when another user can write it or it is reached through a link.
clear-dir                           empty the 'out' directory before starting (default: false).
artifact-limit:SIZE                 bytes kept per artifact (default: 64mb); the rest is counted, not saved.
total-limit:SIZE                    bytes kept in all (default: 1gb). SIZE: N, Nb, Nkb, Nmb, Ngb.
ring-size:SIZE                      the kernel's capture buffer, a power of two from 64kb (default: 32mb);
                                    chunks that find it full are counted and their artifact marked incomplete.

File capture filters
Writes and reads to capture can be filtered, in the format <read/write>:<filter_type>=<filter_value>.
Different filter types are ANDed, filters of the same type are ORed.
path    a path prefix ending in '*' (up to 50 characters); write=/p* is the same as write:path=/p*.
type    regular, pipe, socket or elf.
fd      stdin, stdout or stderr.

Examples:
  --capture exec                                           | capture executed files into /tmp/tracee/out
  --capture exec --capture dir:/my/dir --capture clear-dir | empty /my/dir/out, then capture executed files into it
  --capture write=/usr/bin/* --capture write=/etc/*        | capture files written anywhere under /usr/bin/ or /etc/
  --capture exec --output none                             | capture executed files, print no events
  --capture write:type=socket --capture write:fd=stdout    | capture writes to sockets that are the writer's stdout
"""


class CaptureOptionError(ValueError):
    """A ``--capture`` value that cannot be used (the message says which and why)."""


@dataclass
class FileFilter:
    """What to capture of one direction (write or read); empty sets: no filter of that kind."""

    enabled: bool = False
    paths: list[str] = field(default_factory=list)
    types: set[str] = field(default_factory=set)
    fds: set[int] = field(default_factory=set)


@dataclass
class CaptureOptions:
    """The parsed ``--capture`` options."""

    write: FileFilter = field(default_factory=FileFilter)
    read: FileFilter = field(default_factory=FileFilter)
    exec: bool = False
    mem: bool = False
    module: bool = False
    directory: Path = DEFAULT_DIR
    clear_dir: bool = False
    artifact_limit: int = DEFAULT_ARTIFACT_LIMIT
    total_limit: int = DEFAULT_TOTAL_LIMIT
    ring_bytes: int = DEFAULT_RING_BYTES
    network: bool = False
    snaplen: int = 96

    @property
    def enabled(self) -> bool:
        """Something is to be captured."""
        return self.write.enabled or self.read.enabled or self.exec or self.mem or self.module or self.network

    @property
    def out_dir(self) -> Path:
        """Where the artifacts go: ``<dir>/out``."""
        return self.directory / "out"


_SIZE: Final = re.compile(r"^(\d+)\s*(b|k|kb|m|mb|g|gb)?$", re.IGNORECASE)
_UNITS: Final = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30}


def _size(option: str, text: str) -> int:
    m = _SIZE.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise CaptureOptionError(f"--capture {option}: {text!r} is not a size (N, Nb, Nkb, Nmb or Ngb, above 0)")
    return int(m.group(1)) * _UNITS[(m.group(2) or "").lower()]


def _file_option(kind: str, text: str, flt: FileFilter) -> None:
    """write, write=/p*, write:path=/p*, write:type=pipe, write:fd=stdout (and read ...)."""
    flt.enabled = True
    if text == kind:
        return
    if text.startswith(kind + "="):
        text = f"{kind}:path={text[len(kind) + 1 :]}"
    head, sep, rest = text.partition(":")
    name, eq, value = rest.partition("=")
    if head != kind or not sep or not eq or not value:
        raise CaptureOptionError(f"--capture {text}: expected {kind}, {kind}=/prefix*, or {kind}:path|type|fd=VALUE")
    if name == "path":
        if not value.endswith("*"):
            raise CaptureOptionError(f"--capture {text}: a file path filter must end with *")
        prefix = value[:-1]
        if not prefix:
            raise CaptureOptionError(f"--capture {text}: the path filter is empty")
        if len(prefix) > MAX_PATH_LEN:
            raise CaptureOptionError(f"--capture {text}: a path prefix is at most {MAX_PATH_LEN} characters")
        if "\0" in prefix:
            raise CaptureOptionError(f"--capture {text}: a path prefix cannot hold a NUL byte")
        if len(flt.paths) >= MAX_PATHS and prefix not in flt.paths:
            raise CaptureOptionError(f"--capture {text}: at most {MAX_PATHS} path filters per {kind}")
        if prefix not in flt.paths:
            flt.paths.append(prefix)
    elif name == "type":
        if value not in FILE_TYPES:
            raise CaptureOptionError(f"--capture {text}: unknown file type (one of {', '.join(FILE_TYPES)})")
        flt.types.add(value)
    elif name == "fd":
        if value not in STD_FDS:
            raise CaptureOptionError(f"--capture {text}: unknown fd (one of {', '.join(STD_FDS)})")
        flt.fds.add(STD_FDS[value])
    else:
        raise CaptureOptionError(f"--capture {text}: unknown filter {name!r} (path, type or fd)")


def _setting(opts: CaptureOptions, text: str) -> bool:
    """dir:, clear-dir and the sizes; False if ``text`` is none of them."""
    if text == "clear-dir":
        opts.clear_dir = True
    elif text.startswith("dir:"):
        directory = text[len("dir:") :]
        if not directory:
            raise CaptureOptionError("--capture dir: the capture directory cannot be empty")
        opts.directory = Path(directory)
    elif text.startswith("artifact-limit:"):
        opts.artifact_limit = _size(text, text.partition(":")[2])
    elif text.startswith("total-limit:"):
        opts.total_limit = _size(text, text.partition(":")[2])
    elif text.startswith("ring-size:"):
        size = _size(text, text.partition(":")[2])
        if size < 64 << 10 or size > 1 << 30 or size & (size - 1):
            raise CaptureOptionError(f"--capture {text}: a power of two from 64kb to 1gb")
        opts.ring_bytes = size
    else:
        return False
    return True


def _network_option(opts: CaptureOptions, text: str) -> None:
    """network, pcap:single, pcap-options:none, pcap-snaplen:... (Tracee's spellings)."""
    opts.network = True
    name, _, value = text.partition(":")
    if name == "pcap" and value:
        unsupported = sorted(set(value.split(",")) - {"single"})
        if unsupported:
            raise CaptureOptionError(
                f"--capture {text}: only pcap:single is available (not {', '.join(unsupported)}): packets are "
                "seen in the network stack, where the process that sent them is not known"
            )
    elif name == "pcap-options":
        if value.lower() != "none":
            raise CaptureOptionError(f"--capture {text}: only pcap-options:none (every packet) is available")
    elif name == "pcap-snaplen":
        v = value.lower()
        if v == "default":
            opts.snaplen = 96
        elif v == "headers":
            opts.snaplen = 0
        elif v == "max":
            opts.snaplen = (1 << 16) - 1
        elif re.match(r"^\d+(b|kb|k)$", v):
            opts.snaplen = min(_size(text, v), (1 << 16) - 1)
        else:
            raise CaptureOptionError(f"--capture {text}: default, headers, max, or a size ending in b or kb")


def parse_capture(values: list[str]) -> CaptureOptions:
    """Parse the ``--capture`` values (each may be a comma-free option as Tracee takes them).

    :raises CaptureOptionError: for an unknown or malformed option ("help" is handled by the caller).
    """
    opts = CaptureOptions()
    for raw in values:
        text = raw.strip()
        text = text.removeprefix("artifact:")
        if text.startswith("write"):
            _file_option("write", text, opts.write)
        elif text.startswith("read"):
            _file_option("read", text, opts.read)
        elif text == "exec":
            opts.exec = True
        elif text == "mem":
            opts.mem = True
        elif text == "module":
            opts.module = True
        elif _setting(opts, text):
            pass
        elif text in ("network", "net", "pcap") or text.startswith(("pcap:", "pcap-options:", "pcap-snaplen:")):
            _network_option(opts, text)
        elif text == "bpf":
            raise CaptureOptionError("--capture bpf: capturing BPF programs is not supported")
        else:
            raise CaptureOptionError(f"--capture {raw}: unknown option (see --capture help)")
    return opts
