"""``tracee-rules``: replay recorded Tracee events through the signatures.

Compatible with Tracee's tracee-rules::

    tracee-rules --input events.json                       # all built-in signatures
    tracee-rules --input-tracee file:events.json --input-tracee format:json --rules TRC-102
    tracee -o json ... | tracee-rules --input -            # live, from a pipe
    tracee-rules --list                                    # what is loaded
    tracee-rules --list-events                             # what a tracer must trace
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import stat
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..bus import BusError, add_bus_options, is_bus_url, open_bus_input
from ..bus.address import BusAddress
from ..context.proctree import ARGS_READ, FIELDS_READ
from ..dispatch import LoadedSignature
from ..errors import ConfigError, ExitStatus, Interrupted
from ..operations.config import ConfigFile, ConfigFileError, merge_options
from ..operations.metrics import MetricsServer, add_metrics_options, open_metrics_server
from ..operations.progress import InputPosition, ProgressLine
from ..output.plugin import silence_closed_output
from ..output.printer import complete_standard_output
from ..output.templates import TemplateError
from ..parallel import replay_sharded
from ..plugins import PluginManager
from ..reader import DEFAULT_MAX_LINE_SIZE, STDIN, EventReader
from ..safetext import EscapingLogFilter
from ..session import Session, SessionConfig, signature_id_order
from ..sharding import ObserveOthers, placement_names
from ..sources import EventSource
from ..walkahead import WalkAhead
from .operations import (
    add_operations_options,
    config_from_argv,
    config_list,
    hangup_reloads,
    list_params,
    reparser,
    report_config_error,
    validate,
)
from .usage import non_negative_int, usage_error

PROG = "tracee-rules"
#: The collector's first threshold during a replay: each event allocates a few containers
#: that die young, so young collections can be rarer than every 700 allocations (Python's
#: default); what loading left is frozen (``gc.freeze``) and never scanned again.
GC_THRESHOLD_0 = 50_000
_SEVERITY_NAMES = {0: "info", 1: "low", 2: "medium", 3: "high", 4: "critical"}

EPILOG = """\
exit status:
  0    the input was replayed (skipped records and signature errors are reported on stderr)
  1    the run failed: unreadable input, a --strict violation, findings not delivered
  2    bad usage or configuration: options, templates, unknown --rules IDs, broken rules (--strict)
  130  interrupted

Plugins: packages in the 'pytracee' entry-point group load automatically
(PYTRACEE_DISABLE_PLUGIN_AUTOLOAD=1 turns that off); --disable NAME blocks a
plugin or a signature (by ID or event name)."""


def build_parser() -> argparse.ArgumentParser:
    """The parser with tracee-rules' own options (plugins add theirs through tracee_addoption)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Replay Tracee events (trace.Event JSON) through detection signatures and print findings.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_argument_group("input")
    source.add_argument(
        "--input",
        "-i",
        metavar="FILE",
        action="append",
        default=[],
        help="events to read: JSON lines or a JSON array, optionally gzip-compressed; '-' is stdin (repeatable); "
        "or nats://HOST:PORT/STREAM?consumer=NAME: one worker of a JetStream consumer (README: fleet)",
    )
    source.add_argument(
        "--input-tracee",
        metavar="KEY:VALUE",
        action="append",
        default=[],
        help="Tracee's input syntax: file:PATH, file:stdin, format:json ('help' explains)",
    )
    source.add_argument("--strict", action="store_true", help="stop at the first bad record or broken rule file")
    source.add_argument(
        "--max-line-size",
        metavar="BYTES",
        type=int,
        default=DEFAULT_MAX_LINE_SIZE,
        help="skip JSON lines longer than this (default: %(default)s, Tracee's limit; 0: no limit)",
    )
    source.add_argument(
        "--allow-unknown-events",
        action="store_true",
        help="deliver events whose name is not a known Tracee event instead of skipping them",
    )
    sigs = parser.add_argument_group("signatures")
    sigs.add_argument(
        "--rules",
        metavar="ID[,ID...]",
        action="append",
        default=[],
        help="run only these signatures: IDs, event names, lang:python|rego|cel, all, severity>=LEVEL, "
        "tag:NAME, category:NAME, mitre:TECHNIQUE; join conditions with + (lang:rego+severity>=high) "
        "(IDs, lang: and all also turn on signatures that are off by default, e.g. the built-in Rego and CEL rules)",
    )
    sigs.add_argument(
        "--rules-dir",
        metavar="DIR",
        action="append",
        default=[],
        type=Path,
        help="load signatures from DIR: Python files and rule files, searched recursively (repeatable)",
    )
    sigs.add_argument(
        "--disable",
        metavar="NAME",
        action="append",
        default=[],
        help="leave out a plugin (by name) or a signature (by ID or event name) (repeatable)",
    )
    sigs.add_argument(
        "--list",
        action="store_true",
        help="list the available signatures (and whether this run would use them) and exit",
    )
    sigs.add_argument(
        "--list-events",
        action="store_true",
        help="print the events the loaded signatures need, comma-separated, and exit",
    )
    add_bus_options(parser)
    parser.add_argument(
        "--workers",
        metavar="N",
        type=_workers,
        default=1,
        help="replay in N processes, the events sharded by container and by process so that each "
        "signature sees every event of a process and of a container in order; needs --input files "
        "(default: %(default)s; 0: one per CPU)",
    )
    parser.add_argument(
        "--log",
        metavar="LEVEL",
        default="info",
        choices=["debug", "info", "warn", "error"],
        help="log level on stderr: debug, info, warn, error (default: %(default)s)",
    )
    add_operations_options(parser)
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress line on stderr (it is shown only when stderr is a terminal)",
    )
    add_metrics_options(parser)
    return parser


def _workers(text: str) -> int:
    return non_negative_int("a number of processes (0: one per CPU)")(text) or len(os.sched_getaffinity(0))


def main(argv: Sequence[str] | None = None, early: WalkAhead | None = None) -> int:
    """Run tracee-rules; returns the exit status.

    :param early: the walker the entry point started from the command line
        (:mod:`~pytracee.engine.cli.entry`): kept if the options parsed here agree, else stopped.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    complete_standard_output()
    pre, _ = _pre_parser().parse_known_args(argv)
    setup_logging(pre.log or "info")
    broken_config: ConfigFileError | None = None
    try:
        file_config = config_from_argv(argv)
    except ConfigFileError as exc:
        if "--validate" not in argv:
            return report_config_error(exc, PROG)
        file_config, broken_config = exc.partial, exc  # --validate: report it, and check the rest too
    if pre.log is None and config_list(file_config, "log"):
        setup_logging(config_list(file_config, "log")[0])
    pm = PluginManager()
    disabled = pre.disable or config_list(file_config, "disable")
    pm.load_plugins(disabled, installed=not os.environ.get("PYTRACEE_DISABLE_PLUGIN_AUTOLOAD"))
    parser = build_parser()
    pm.hook.tracee_addoption.call_historic(kwargs={"parser": parser})
    try:
        args = merge_options(parser, file_config, argv)
    except ConfigFileError as exc:
        if "--validate" not in argv:
            return report_config_error(exc, PROG)
        args = merge_options(parser, None, argv)  # --validate: the file's other sections are checked too
        broken_config = ConfigFileError([*(broken_config.problems if broken_config else ()), *exc.problems])
    if "help" in args.input_tracee:
        print(_INPUT_TRACEE_HELP)
        return ExitStatus.OK
    try:
        inputs = _inputs(args)
    except ValueError as exc:
        return usage_error(parser, exc)
    if args.max_line_size < 0:
        parser.error("--max-line-size must be 0 or more")
    problem = _output_problem(args, inputs)
    if problem:
        return usage_error(parser, problem)
    walker = _walk_ahead(args, inputs, early)  # at once: it walks while the signatures load
    try:
        return _load_and_run(args, parser, argv, pm, file_config, broken_config, inputs, walker)
    finally:
        if walker is not None:
            stats = walker.stats()
            logging.getLogger("pytracee").debug(
                "walked ahead%s: %d lines (%s); placed from the walk, per worker: %s",
                " (from the start)" if walker is early else "",
                stats.walked,
                ("walking", "finished", "stopped")[stats.state],
                ", ".join(map(str, stats.taken)),
            )
            walker.stop()


def _load_and_run(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    argv: list[str],
    pm: PluginManager,
    file_config: ConfigFile | None,
    broken_config: ConfigFileError | None,
    inputs: list[str],
    walker: WalkAhead | None,
) -> int:
    """Load the session, then list or replay; the exit status."""
    config = SessionConfig(
        rules_dirs=args.rules_dir,
        rules=args.rules,
        disabled=args.disable,
        strict=args.strict,
        allow_unknown_events=args.allow_unknown_events,
        list_only=args.list or args.list_events or args.validate or args.list_params,
        options=args,
        config_file=file_config,
        dedup_window=args.dedup_window,
        pluginmanager=pm,
    )
    session = Session(config)
    session.reparse = reparser(parser, argv)
    log = logging.getLogger("pytracee")
    if args.validate:
        return session.finish(ExitStatus(validate(session, PROG, broken_config)))
    try:
        session.load()
    except ConfigError as exc:
        return report_config_error(exc, PROG)
    except TemplateError as exc:
        log.error("%s", exc)
        return ExitStatus.USAGE
    except OSError as exc:
        log.error("%s: %s", getattr(exc, "filename", None) or "output", exc.strerror or exc)
        return ExitStatus.USAGE
    status = ExitStatus.FAILED
    try:
        status = _list_or_replay(args, parser, session, inputs, walker)
    finally:
        status = session.finish(status)  # when it did not run (--list, usage errors): run() already did
    return status


def _list_or_replay(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    session: Session,
    inputs: list[str],
    walker: WalkAhead | None = None,
) -> ExitStatus:
    """After loading: print the list, or replay the inputs; the exit status."""
    log = logging.getLogger("pytracee")
    if args.list or args.list_events or args.list_params:
        return _print_listing(args, session)
    if not inputs:
        if sys.stdin is None:
            print(f"{PROG}: error: no input: standard input is closed; give --input FILE", file=sys.stderr)
            return ExitStatus.USAGE
        if sys.stdin.isatty():
            return usage_error(parser, "no input: give --input FILE, or pipe events into --input -")
        inputs = [STDIN]

    if args.workers > 1 and (STDIN in inputs or any(map(is_bus_url, inputs)) or not all(map(_regular, inputs))):
        what = (
            "standard input"
            if STDIN in inputs
            else "a nats:// input (run more workers instead)"
            if any(map(is_bus_url, inputs))
            else "a pipe or device"
        )
        return usage_error(parser, f"--workers {args.workers}: {what} can be read by one process only")

    context = session.context  # under --workers, every shard's process tree sees every fork, exec, exit
    tree_events = (
        ObserveOthers(
            context.consumed_events,
            context.observe,
            context.observe_fields,
            FIELDS_READ,
            ARGS_READ,
            context.tree.by_pid if context.tree is not None else None,
        )
        if context is not None and context.consumed_events
        else None
    )

    plan = session.reader_plan()
    if walker is not None and not walker.publish(
        *placement_names(plan["wanted_events"], plan["admissions"], tree_events)
    ):
        log.debug("walk ahead: the event names do not fit in its ring: every record is walked")

    def reader_of(shard: tuple[int, int] | None = None) -> EventReader:
        return EventReader(
            inputs,
            strict=args.strict,
            max_line_size=args.max_line_size,
            shard=shard,
            observe_others=tree_events,
            walk_ahead=walker.ring if walker is not None else None,
            **plan,
        )

    for sig in (signal.SIGINT, signal.SIGTERM):  # finish signatures and outputs, once
        signal.signal(sig, interrupt_on_signal)
    workers = f" in {args.workers} processes" if args.workers > 1 else ""
    shown = ", ".join(map(_shown_input, inputs))
    log.info("loaded %d signatures; reading %s%s", len(session.signatures), shown, workers)
    try:
        reader: EventSource = _bus_input(inputs, args, session) if any(map(is_bus_url, inputs)) else reader_of()
    except BusError as exc:
        log.error("%s", exc)
        return ExitStatus.FAILED
    except ValueError as exc:
        return usage_error(parser, exc)
    try:
        metrics = open_metrics_server(args)
    except ConfigError as exc:
        return usage_error(parser, exc)
    try:
        status = _replay(args, session, reader, reader_of, metrics)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # the run is over: let the summary out
            signal.signal(sig, signal.SIG_IGN)
        reader.close()
    log.info("%s", session.summary())
    return status


def _walk_ahead(args: argparse.Namespace, inputs: list[str], early: WalkAhead | None) -> WalkAhead | None:
    """The walker of the owners of a ``--workers`` replay's records (one regular file), else None:
    ``early`` (started from the command line) if it walks that file for as many workers."""
    listing = args.list or args.list_events or args.list_params or args.validate
    wanted = None
    if args.workers >= 2 and not listing and len(inputs) == 1 and inputs[0] != STDIN and not is_bus_url(inputs[0]):
        wanted = (inputs[0], args.workers, args.max_line_size)
    if early is not None:
        if early.walks == wanted:
            return early
        early.stop()
    return None if wanted is None else WalkAhead.start(*wanted)


def _regular(path: str) -> bool:
    """Whether ``path`` is a regular file (each ``--workers`` process reads it whole), or missing
    (the reader reports that)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True


def _print_listing(args: argparse.Namespace, session: Session) -> ExitStatus:
    """``--list``, ``--list-events`` or ``--list-params``."""
    try:
        if args.list_params:
            list_params(session)
        elif args.list:
            _print_list(session.available, session.signatures)
        else:
            print(",".join(sorted(session.needed_events())))
        sys.stdout.flush()
    except BrokenPipeError:  # `tracee-rules --list | head`
        silence_closed_output(sys.stdout)
    return ExitStatus.OK


def _replay(
    args: argparse.Namespace,
    session: Session,
    reader: EventSource,
    reader_of: Callable[[tuple[int, int] | None], EventReader],
    metrics: MetricsServer | None,
) -> ExitStatus:
    """Run the replay (sharded over ``--workers``), with the metrics server and the progress line."""
    if metrics is not None:
        metrics.serve(session, reader)
    gc.collect()  # what loading left is long-lived: out of the collector's way (as gc.freeze advises)
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD_0, *gc.get_threshold()[1:])
    progress = None  # a bus has no end to measure progress against
    if not args.no_progress and isinstance(reader, EventReader):
        progress = _progress_line(session, reader).start()
    if progress is not None and progress.enabled:
        session.pm.register(progress, name="progress")  # erased before each finding printed
    try:
        if args.workers > 1:
            view = reader if isinstance(reader, EventReader) else None
            status = replay_sharded(session, reader_of, args.workers, view, metrics.timings if metrics else None)
        else:
            with hangup_reloads(session):  # SIGHUP: read the configuration and rules again
                status = session.run(reader)
    finally:
        if progress is not None:
            progress.stop()
        if metrics is not None:
            metrics.close()
    return status


def _progress_line(session: Session, reader: EventReader) -> ProgressLine:
    """The progress line of a replay: records read, findings, bytes of the input."""
    engine = session.engine
    return ProgressLine(
        PROG,
        events=lambda: reader.stats.records(),  # noqa: PLW0108 - reader.stats is read each time: --workers replaces it
        findings=lambda: engine.stats.findings if engine is not None else 0,
        position=InputPosition(reader),
    )


def _bus_input(inputs: list[str], args: argparse.Namespace, session: Session) -> EventSource:
    if len(inputs) > 1:
        raise ValueError("a nats:// input is read alone: give no other --input")
    return open_bus_input(inputs[0], args, session)


def _shown_input(text: str) -> str:
    """An input as logged: a nats:// address without credentials."""
    if not is_bus_url(text):
        return text
    try:
        return BusAddress.parse(text, "--input").display
    except ValueError:
        return "nats://..."


_INPUT_TRACEE_HELP = """\
--input-tracee KEY:VALUE configures the event source (repeatable):
  file:PATH     read events from PATH (JSON lines or a JSON array, plain or gzip)
  file:stdin    read events from standard input
  format:json   the events are Tracee's trace.Event JSON (the only format; 'gob' was Go-only)
--input FILE is the short form of file:FILE ('-' meaning stdin)."""


def _output_problem(args: argparse.Namespace, inputs: Sequence[str]) -> str | None:
    """Why the outputs cannot work, checked before anything is opened for writing."""
    if sys.stdout is None and (args.list or args.list_events or not getattr(args, "output", None)):
        return "standard output is closed; give --output FILE"
    if STDIN in inputs and sys.stdin is None:
        return "--input -: standard input is closed"
    output = getattr(args, "output", None)
    if not output:
        return None
    try:
        target = os.stat(output)
    except OSError:
        return None  # it does not exist yet (or cannot be read): it cannot be an input
    if not stat.S_ISREG(target.st_mode):
        return None
    for source in inputs or [STDIN]:
        try:
            info = os.fstat(sys.stdin.fileno()) if source == STDIN else os.stat(source)
        except (OSError, AttributeError, ValueError):
            continue
        if (info.st_dev, info.st_ino) == (target.st_dev, target.st_ino):
            shown = "standard input" if source == STDIN else source
            return f"--output {output} is the input {shown}: writing findings there would destroy it"
    return None


def _inputs(args: argparse.Namespace) -> list[str]:
    inputs = list(args.input)
    for item in args.input_tracee:
        key, sep, value = item.partition(":")
        key = key.strip().lower()
        if not sep or not value:
            raise ValueError(f"--input-tracee {item!r}: expected KEY:VALUE (see --input-tracee help)")
        if key == "file":
            inputs.append(STDIN if value == "stdin" else value)
        elif key == "format":
            if value.lower() != "json":
                raise ValueError(f"--input-tracee format:{value}: only json is supported (gob is a Go-only encoding)")
        else:
            raise ValueError(f"--input-tracee {item!r}: unknown key {key!r} (file or format)")
    return inputs


def _pre_parser() -> argparse.ArgumentParser:
    # Options needed before plugins load (they decide which plugins load at all).
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--disable", action="append", default=[])
    pre.add_argument("--log", default=None)
    return pre


class _Formatter(logging.Formatter):
    def __init__(self, prog: str) -> None:
        super().__init__()
        self.prog = prog

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"{self.prog}: {record.levelname.lower()}: {message}"
        return f"{self.prog}: {message}"


def setup_logging(level: str, prog: str = PROG) -> None:
    """Log to stderr as ``PROG: message`` (``PROG: error: message`` for problems).

    Messages quote event data (a file name in a signature error): their control
    characters are escaped (:class:`~pytracee.engine.safetext.EscapingLogFilter`).
    """
    global _prog
    _prog = prog
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(prog))
    handler.addFilter(EscapingLogFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel({"warn": logging.WARNING}.get(level, getattr(logging, level.upper(), logging.INFO)))


def _print_list(available: Sequence[LoadedSignature], chosen: Sequence[LoadedSignature]) -> None:
    running = {id(loaded) for loaded in chosen}
    rows = [("ID", "NAME", "VERSION", "LANGUAGE", "SEVERITY", "ENABLED", "EVENTS")]
    for loaded in sorted(
        available, key=lambda s: (s.signature.language != "python", signature_id_order(s.metadata.id))
    ):
        meta = loaded.metadata
        events = ",".join(
            dict.fromkeys(s.name + (f"({s.origin})" if s.origin != "*" else "") for s in loaded.selectors)
        )
        severity = meta.severity
        rows.append(
            (
                meta.id,
                meta.name,
                meta.version,
                loaded.signature.language,
                _SEVERITY_NAMES.get(severity, str(severity)) if severity is not None else "-",
                "yes" if id(loaded) in running else "no",
                events,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    off = len(available) - len(chosen)
    print(f"\n{len(chosen)} of {len(available)} signatures enabled", end="")
    print("; turn others on with --rules ID, --rules lang:NAME or --rules all" if off else "")


def interrupt_on_signal(signum: int, frame: object) -> None:
    """Signal handler turning the first SIGINT or SIGTERM into :class:`Interrupted`, so a run
    finishes its signatures, outputs and clean-up; a second one ends the process at once."""
    signal.signal(signal.SIGINT, _exit_now)
    signal.signal(signal.SIGTERM, _exit_now)
    raise Interrupted


def _exit_now(signum: int, frame: object) -> None:
    os.write(2, f"{_prog}: second signal: exiting now, without finishing\n".encode())
    os._exit(ExitStatus.INTERRUPTED)


_prog = PROG


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
