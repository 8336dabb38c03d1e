"""LOCAL-1: a file written to a temporary directory and then executed.

Droppers download a payload to ``/tmp``, ``/var/tmp`` or ``/dev/shm`` (where
any user can write) and run it. Neither step is suspicious alone: this
signature remembers files written there, by a write-open (``security_file_open``)
or the first bytes of a write (``magic_write``, which also tells an ELF binary
from a script), follows them through renames (``x.part`` -> ``x``), and fires
when one of them is executed (``sched_process_exec``) in the same container.

A stateful class-form signature, loaded from a rules directory::

    tracee-rules --rules-dir examples/rules-dir --input examples/events/demo.jsonl

Its memory is bounded: at most ``max_tracked`` files are remembered (the oldest
are forgotten first), and all of it is dropped at the end of the input.
``max_tracked`` is a parameter: a configuration file changes it without editing
this file (``params: {LOCAL-1: {max_tracked: 50000}}``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from pytracee.engine import (
    Event,
    Signal,
    Signature,
    SignatureContext,
    SignatureMetadata,
    SourceComplete,
    is_elf,
    select,
)
from pytracee.engine.params import Param

#: World-writable directories droppers use.
TMP_DIRS: Final = ("/tmp/", "/var/tmp/", "/dev/shm/")
_TMP_PATTERNS: Final = [directory + "*" for directory in TMP_DIRS]


@dataclass(frozen=True, slots=True)
class Written:
    """Who wrote a file, and when."""

    process_name: str
    process_id: int
    timestamp: int
    elf: bool


class TmpWriteThenExec(Signature):
    """LOCAL-1: a file written under /tmp, /var/tmp or /dev/shm, then executed."""

    metadata = SignatureMetadata(
        id="LOCAL-1",
        version="1",
        name="File written to a temporary directory then executed",
        event_name="tmp_write_then_exec",
        description=(
            "A program was executed from a world-writable temporary directory after being written there during "
            "this run. Droppers download their payload to /tmp, /var/tmp or /dev/shm and run it from there."
        ),
        tags=("linux", "container"),
        properties={
            "Severity": 2,
            "Category": "execution",
            "Technique": "Ingress Tool Transfer",
            "Kubernetes_Technique": "",
            "id": "attack-pattern--e6919abc-99f9-4c6c-95a5-14761e7b2add",
            "external_id": "T1105",
        },
    )
    # Data filters: the engine hands over only events about the temporary directories.
    selected_events = [
        select("security_file_open", pathname=_TMP_PATTERNS),
        select("magic_write", pathname=_TMP_PATTERNS),
        select("security_inode_rename", old_path=_TMP_PATTERNS),
        select("sched_process_exec", pathname=_TMP_PATTERNS),
    ]
    parameters = {
        "max_tracked": Param(10_000, "how many written files are remembered at most (the oldest are forgotten first)"),
    }

    def init(self, ctx: SignatureContext) -> None:
        super().init(ctx)
        self.max_tracked: int = self.params.max_tracked
        #: (container id, path) -> who wrote it; "" is the host.
        self.written: OrderedDict[tuple[str, str], Written] = OrderedDict()

    def on_event(self, event: Event) -> None:
        name = event.name
        container = event.container_id
        if name == "sched_process_exec":
            path = event.str_arg("pathname")
            written = self.written.pop((container, path), None)
            if written is not None:
                self.emit(
                    event,
                    {
                        "path": path,
                        "written_by": written.process_name,
                        "writer_pid": written.process_id,
                        "elf": written.elf,
                        "seconds_since_write": round((event.timestamp - written.timestamp) / 1e9, 6),
                    },
                )
        elif name == "security_file_open":
            if event.is_file_write():
                self._remember((container, event.str_arg("pathname")), event, elf=False)
        elif name == "magic_write":
            self._remember((container, event.str_arg("pathname")), event, elf=is_elf(event.bytes_arg("bytes")))
        elif name == "security_inode_rename":
            written = self.written.pop((container, event.str_arg("old_path")), None)
            new_path = event.str_arg("new_path")
            if written is not None and new_path.startswith(TMP_DIRS):
                self.written[(container, new_path)] = written
                self._trim()

    def _remember(self, key: tuple[str, str], event: Event, *, elf: bool) -> None:
        earlier = self.written.pop(key, None)  # re-inserted last: the most recent
        self.written[key] = Written(
            event.process_name, event.process_id, event.timestamp, elf or (earlier is not None and earlier.elf)
        )
        self._trim()

    def _trim(self) -> None:
        while len(self.written) > self.max_tracked:
            self.written.popitem(last=False)

    def on_signal(self, signal: Signal) -> None:
        if isinstance(signal, SourceComplete):
            self.written.clear()

    def close(self) -> None:
        self.written.clear()
