"""Printing traced events the way Tracee prints them.

``--output`` formats: ``table`` (Tracee's default columns), ``table-verbose``
(adds namespaces and the container), ``json`` (one complete ``trace.Event`` per
line, so ``tracee -o json | tracee-rules --input -`` works), ``gotemplate=PATH``
(a Jinja2 template that sees the event's Go field names, ``{{ EventName }}``),
and ``none``. Options: ``option:parse-arguments`` renders flags and requests
as Tracee's strings (``O_RDONLY|O_CLOEXEC``, ``PTRACE_TRACEME``);
``option:exec-env`` keeps the environment of exec events, which is otherwise
left out of the output.

Event data is attacker-chosen (file names, argv, comm): the table formats and
templates escape control characters (``\x1b``, ``\n``) and ``json`` stays one
valid JSON object per line (see :mod:`pytracee.engine.safetext`).
"""

from __future__ import annotations

import codecs
import datetime as _dt
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, NoReturn

import orjson
from pytracee.engine.errors import StopRun
from pytracee.engine.output.limits import render_budget
from pytracee.engine.output.plugin import silence_closed_output
from pytracee.engine.output.printer import write_all
from pytracee.engine.output.sink import Throttle
from pytracee.engine.output.templates import GoView, go_format
from pytracee.engine.parsers import (
    format_mem_prot_alert,
    format_open_flags,
    format_ptrace_request,
)
from pytracee.engine.safetext import escape_text, json_line
from pytracee.engine.schema import GO_FIELD_NAMES, full_event

if TYPE_CHECKING:
    import jinja2

__all__ = ["EventPrinter", "OutputSpec", "parse_output_options"]

FORMATS: Final = ("table", "table-verbose", "json", "gotemplate", "none")
#: The keys of a complete v0.24 ``trace.Event``, in order (what the collector's decoder makes).
_COMPLETE_KEYS: Final = tuple(full_event({}))
_ENV_ARGS: Final = {"execve": "envp", "execveat": "envp", "sched_process_exec": "env", "security_bprm_check": "envp"}
_PROT_BITS: Final = (("PROT_READ", 1), ("PROT_WRITE", 2), ("PROT_EXEC", 4))
#: (event name or "*", argument) -> renderer used by option:parse-arguments
_PARSERS: Final[Mapping[tuple[str, str], Callable[[int], str]]] = {
    ("open", "flags"): format_open_flags,
    ("openat", "flags"): format_open_flags,
    ("security_file_open", "flags"): format_open_flags,
    ("ptrace", "request"): format_ptrace_request,
    ("mem_prot_alert", "alert"): format_mem_prot_alert,
    ("mmap", "prot"): lambda prot: "|".join(n for n, b in _PROT_BITS if prot & b) or "PROT_NONE",
    ("mprotect", "prot"): lambda prot: "|".join(n for n, b in _PROT_BITS if prot & b) or "PROT_NONE",
}


class OutputError(ValueError):
    """An ``--output`` value is not understood."""


class OutputSpec:
    """Parsed ``--output`` values."""

    def __init__(self) -> None:
        self.format = "table"
        self.template: Path | None = None
        self.file: Path | None = None
        self.parse_arguments = False
        self.exec_env = False
        #: ``option:exec-hash[=MODE]``: hash executed files (findings carry ``executable.sha256``).
        self.exec_hash = False


def parse_output_options(values: list[str]) -> OutputSpec:
    """Parse Tracee's ``--output`` values: ``FORMAT``, ``gotemplate=PATH``, ``out-file:PATH``, ``option:NAME``."""
    spec = OutputSpec()
    for value in values:
        if value.startswith("option:"):
            option = value.split(":", 1)[1]
            if option == "parse-arguments":
                spec.parse_arguments = True
            elif option == "exec-env":
                spec.exec_env = True
            elif option.partition("=")[0] == "exec-hash":  # Tracee's modes (inode, dev-inode, ...) all hash
                spec.exec_hash = True
            else:
                raise OutputError(f"--output {value}: unknown option (parse-arguments, exec-env, exec-hash)")
        elif value.startswith("out-file:"):
            spec.file = Path(value.split(":", 1)[1])
        elif value.startswith(("gotemplate=", "template=")):
            spec.format = "gotemplate"
            spec.template = Path(value.split("=", 1)[1])
        else:  # FORMAT or FORMAT:FILE (v0.17+), or format:FORMAT (tracee-ebpf)
            name, _, path = value.removeprefix("format:").partition(":")
            if name not in FORMATS or name == "gotemplate":
                raise OutputError(
                    f"--output {value}: unknown format (table, table-verbose, json, gotemplate=PATH, none)"
                )
            spec.format = name
            if path:
                spec.file = Path(path)
    return spec


class EventPrinter:
    """Writes events in one of Tracee's formats."""

    def __init__(self, spec: OutputSpec, stream: IO[str] | None = None) -> None:
        self.spec = spec
        self.stream = (
            stream
            if stream is not None
            else (
                open(spec.file, "w", encoding="utf-8") if spec.file else sys.stdout  # noqa: SIM115 - closed by close()
            )
        )
        self._header_done = False
        encoding = getattr(self.stream, "encoding", None) or "utf-8"
        #: JSON for a stream that cannot take every character (LANG=...ISO-8859-1): ASCII only
        self._json_ascii = codecs.lookup(encoding).name != "utf-8"
        #: The byte stream under a text stream (sys.stdout.buffer, a file's), for ASCII lines.
        self._binary: IO[bytes] | None = getattr(self.stream, "buffer", None)
        self._template: jinja2.Template | None = None
        #: Events the gotemplate could not render (logged, throttled).
        self.template_errors = 0
        self._errors = Throttle(logging.ERROR)
        if spec.format == "gotemplate" and spec.template is not None:
            import jinja2  # only for this output (start-up)
            from pytracee.engine.output.sandbox import bounded_environment

            # sandboxed and bounded as finding templates are: template files get shared like rules
            environment = bounded_environment(
                undefined=jinja2.StrictUndefined, keep_trailing_newline=True, finalize=_finalize
            )
            try:
                self._template = environment.from_string(spec.template.read_text("utf-8"))
            except (OSError, jinja2.TemplateSyntaxError) as exc:
                raise OutputError(f"--output gotemplate={spec.template}: {exc}") from None

    def print(self, raw: Mapping[str, Any]) -> None:
        """Print one event (a trace.Event dict).

        :raises StopRun: when the output was closed (the reader of a pipe went away).
        """
        self.print_many((raw,))
        self.flush()

    @property
    def takes_json_lines(self) -> bool:
        """:meth:`print_many` takes events as JSON lines too (bytes, as ``orjson.dumps`` of the
        complete event and a newline, ASCII only), but for :meth:`events_to_render`."""
        return self.spec.format == "json" and not self.spec.parse_arguments and not self._json_ascii

    def events_to_render(self) -> frozenset[str]:
        """The events this printer changes before printing (their environment left out)."""
        return frozenset() if self.spec.exec_env else frozenset(_ENV_ARGS)

    def print_many(self, events: Iterable[Mapping[str, Any] | bytes]) -> None:
        """Print events (dicts, or JSON lines when :attr:`takes_json_lines`); the output may
        stay buffered until :meth:`flush`.

        JSON lines of complete events (the collector's) that need no rendering are
        encoded in one step and written in one piece per call.

        :raises StopRun: when the output was closed (the reader of a pipe went away).
        """
        if self.spec.format == "none":
            return
        fast = self.takes_json_lines
        hidden = self.events_to_render()
        lines: list[bytes] = []
        try:
            for raw in events:
                if isinstance(raw, bytes):  # a JSON line already (Collector.poll_json)
                    lines.append(raw)
                    continue
                if fast and raw.get("eventName") not in hidden and _is_complete(raw):
                    try:
                        data = _dumps(raw, option=_APPEND_NEWLINE)
                    except orjson.JSONEncodeError:  # a lone surrogate or a huge integer: the careful path
                        data = b"\x80"
                    if data.isascii() and b"\x7f" not in data:
                        lines.append(data)
                        continue
                if lines:
                    self._write_lines(lines)
                    lines.clear()
                self._write(self._shown(raw))
            if lines:
                self._write_lines(lines)
        except BrokenPipeError:  # stop tracing rather than fail on every further event
            self._closed_output()

    def _write_lines(self, lines: list[bytes]) -> None:
        """Write ASCII JSON lines: to the stream's binary buffer when it has one (after what
        the text layer holds, to keep the order), else as text."""
        data = b"".join(lines)
        if self._binary is not None:
            self.stream.flush()
            write_all(self._binary, data)
        else:
            self.stream.write(data.decode("ascii"))

    def flush(self) -> None:
        """Hand what was printed to the output (a pipe's reader sees it now).

        :raises StopRun: when the output was closed.
        """
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._closed_output()

    def _closed_output(self) -> NoReturn:
        silence_closed_output(self.stream)
        raise StopRun("the event output was closed") from None

    def _write(self, event: dict[str, Any]) -> None:
        if self.spec.format == "json":
            self.stream.write(json_line(event, self._json_ascii) + "\n")
        elif self.spec.format == "gotemplate" and self._template is not None:
            try:
                with render_budget():
                    text = self._template.render(_template_context(event))
            except Exception as exc:  # noqa: BLE001 - the template's failure loses this event's line, not the run
                self.template_errors += 1
                self._errors(
                    f"event {event.get('eventName', '?')} not printed: --output gotemplate={self.spec.template}: "
                    f"{type(exc).__name__}: {exc}"
                )
                return
            self.stream.write(text if text.endswith("\n") else text + "\n")
        else:
            self._table(event)

    def close(self) -> None:
        self._errors.flush()
        if self.stream not in (sys.stdout, sys.stderr):
            self.stream.close()

    def _shown(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        event = full_event(raw)
        name = event.get("eventName", "")
        args = event.get("args") or []
        hidden = None if self.spec.exec_env else _ENV_ARGS.get(name)
        if self.spec.parse_arguments or hidden:
            shown = []
            for arg in args:
                if arg.get("name") == hidden:
                    continue
                parser = _PARSERS.get((name, arg.get("name")))
                if self.spec.parse_arguments and parser is not None and isinstance(arg.get("value"), int):
                    arg = {**arg, "type": "string", "value": parser(arg["value"])}
                shown.append(arg)
            event["args"] = shown
            event["argsNum"] = len(shown)
        return event

    def _table(self, event: Mapping[str, Any]) -> None:
        verbose = self.spec.format == "table-verbose"
        if not self._header_done:
            header = f"{'TIME':<16} {'UID':<6} {'COMM':<16} {'PID':<7} {'TID':<7} {'RET':<16} {'EVENT':<24} ARGS"
            if verbose:
                header = (
                    f"{'TIME':<16} {'UTS_NAME':<16} {'CONTAINER_ID':<13} {'MNT_NS':<11} {'PID_NS':<11} {'UID':<6} "
                    f"{'COMM':<16} {'PID':<7} {'TID':<7} {'PPID':<7} {'RET':<16} {'EVENT':<24} ARGS"
                )
            self.stream.write(header + "\n")
            self._header_done = True
        moment = _dt.datetime.fromtimestamp(event.get("timestamp", 0) / 1e9).strftime("%H:%M:%S:%f")
        args = ", ".join(f"{a.get('name')}: {go_format(a.get('value'))}" for a in event.get("args") or [])
        pid = event.get("processId", 0)
        tid = event.get("threadId", 0)
        common = (
            f"{event.get('userId', 0):<6} {event.get('processName', ''):<16} {pid:<7} {tid:<7} "
            f"{event.get('returnValue', 0):<16} {event.get('eventName', ''):<24} {args}"
        )
        if verbose:
            container = (event.get("container") or {}).get("id", "") or event.get("containerId", "")
            line = (
                f"{moment:<16} {event.get('hostName', ''):<16} {container[:12]:<13} {event.get('mountNamespace', 0):<11} "
                f"{event.get('pidNamespace', 0):<11} {event.get('userId', 0):<6} {event.get('processName', ''):<16} "
                f"{pid:<7} {tid:<7} {event.get('parentProcessId', 0):<7} {event.get('returnValue', 0):<16} "
                f"{event.get('eventName', ''):<24} {args}"
            )
        else:
            line = f"{moment:<16} {common}"
        self.stream.write(escape_text(line) + "\n")  # one event, one line: its data cannot break it


_dumps: Final = orjson.dumps
_APPEND_NEWLINE: Final = orjson.OPT_APPEND_NEWLINE


def _is_complete(raw: Mapping[str, Any]) -> bool:
    """True when ``full_event(raw)`` would be ``raw`` itself: every v0.24 key in order, a
    string ``eventId``, the container id in step in both places."""
    if tuple(raw) != _COMPLETE_KEYS or type(raw["eventId"]) is not str:
        return False
    container, container_id = raw["container"], raw["containerId"]
    if not isinstance(container, dict):
        return False
    return container.get("id", "") == container_id if container_id or "id" in container else True


class _Verbatim(str):
    """Template output that is already safe (JSON from ``toJson``): printed as it is."""

    __slots__ = ()


def _finalize(value: Any) -> Any:
    """Every ``{{ value }}`` of a gotemplate: event data is printed escaped."""
    if isinstance(value, _Verbatim):
        return value
    return escape_text(value if isinstance(value, str) else str(value))


def _to_json(value: Any) -> str:
    return _Verbatim(json_line(value.raw if isinstance(value, GoView) else value))


def _template_context(event: dict[str, Any]) -> dict[str, Any]:
    view = GoView(event, GO_FIELD_NAMES)
    context: dict[str, Any] = {go: getattr(view, go) for go in GO_FIELD_NAMES if GO_FIELD_NAMES[go] in event}
    context.update({"event": view, "toJson": _to_json})
    return context
