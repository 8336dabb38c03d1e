"""``tracee``: trace the running host with eBPF, print events, run signatures live.

::

    tracee                                        # detection: every signature, on the events they need
    tracee -e execve,openat -o json               # print events as trace.Event JSON lines
    tracee -e openat.data.pathname=/etc/* -s comm=cat -o option:parse-arguments
    tracee -t event=ptrace -t follow -t comm=bash # tracee-ebpf's --trace syntax
    tracee -e "$(tracee-rules --list-events)" -o json | tracee-rules --input -   # Tracee v0.8's pipeline

Signatures run in the same process on the live stream (Python, Rego and CEL, chosen
with ``--rules``/``--rules-dir``/``--disable`` as in ``tracee-rules``); the events
they select are traced automatically. Findings are printed with the tracee-rules
templates (``--output-template``), events with Tracee's formats (``--output``).
Ctrl-C or SIGTERM stops tracing cleanly: every BPF program is detached, and the events
already in the kernel buffer are still read (for up to 5 s; Ctrl-C again stops at once).
Event data is escaped wherever it is printed for people (see ``engine/safetext.py``).
"""

from __future__ import annotations

import argparse
import io
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytracee.engine.bus import BusCredentials, add_bus_options
from pytracee.engine.cli.operations import (
    add_operations_options,
    config_from_argv,
    config_list,
    hangup_reloads,
    list_params,
    reparser,
    report_config_error,
    validate,
)
from pytracee.engine.cli.tracee_rules import setup_logging
from pytracee.engine.cli.usage import usage_error
from pytracee.engine.errors import ConfigError, ExitStatus, StopRun
from pytracee.engine.operations.config import ConfigFile, ConfigFileError, merge_options
from pytracee.engine.operations.metrics import MetricsServer, add_metrics_options, open_metrics_server
from pytracee.engine.operations.reload import Reparse
from pytracee.engine.output import plugin as outputs
from pytracee.engine.output.printer import complete_standard_output
from pytracee.engine.output.templates import TemplateError
from pytracee.engine.plugins import PluginManager
from pytracee.engine.session import Session, SessionConfig

from ..bus_output import BusEventOutput, split_bus_outputs
from ..capture import ARTIFACT_EVENTS, CAPTURE_HELP, CaptureOptionError, parse_capture
from ..capture.evidence import CaptureEvidence
from ..collector import BUFFER_KINDS
from ..filters import FilterError, Selection, parse_selection
from ..printers import EventPrinter, OutputError, OutputSpec, parse_output_options
from ..source import STOP_SIGNALS, LiveSource

if TYPE_CHECKING:
    from pytracee.engine.selectors import ArgPattern

    from ..collector import Collector

PROG = "tracee"
log = logging.getLogger("pytracee.collector")


def build_parser() -> argparse.ArgumentParser:
    """tracee's options (plugins add theirs, e.g. --rego-engine)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Trace the host with eBPF: print Tracee events and run detection signatures on them live.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "exit status: 0 stopped cleanly; 1 tracing failed or findings were not delivered; "
            "2 bad usage, missing privileges, or no loadable BPF object for this kernel"
        ),
    )
    select = parser.add_argument_group("what to trace")
    select.add_argument(
        "--events",
        "-e",
        action="append",
        default=[],
        metavar="EVENTS",
        help="events to print: names or sets (fs, proc, net, proc_mem, modules), -NAME excludes, "
        "EVENT.data.ARG=VALUE and EVENT.retval<OP>N filter (repeatable)",
    )
    select.add_argument(
        "--scope",
        "-s",
        action="append",
        default=[],
        metavar="SCOPE",
        help="uid, pid (=, !=, <, >, <=, >=), pid=new, comm, mntns, pidns, uts, executable, "
        "container[=new|=ID], not-container, follow (repeatable)",
    )
    select.add_argument(
        "--trace",
        "-t",
        action="append",
        default=[],
        metavar="FILTER",
        help="tracee-ebpf syntax: event=NAMES, set=NAME, comm=, pid=, uid=, container, follow, "
        "EVENT.ARG=VALUE (repeatable)",
    )
    out = parser.add_argument_group("output of events")
    # dest event_output: the outputs plugin's findings file (--findings-output) is dest "output"
    out.add_argument(
        "--output",
        "-o",
        dest="event_output",
        action="append",
        default=[],
        metavar="OUTPUT",
        help="table (default), table-verbose, json, gotemplate=PATH, none; FORMAT:FILE or "
        "out-file:FILE; option:parse-arguments, option:exec-env, option:exec-hash; nats://HOST:PORT/SUBJECT publishes "
        "the events to JetStream as SUBJECT.<host> (repeatable)",
    )
    out.add_argument(
        "--capture",
        "-c",
        action="append",
        default=[],
        metavar="CAPTURE",
        help="save artifacts: write[=/prefix*], read, exec, mem, module, dir:PATH, clear-dir, ... "
        "(repeatable; --capture help lists them)",
    )
    sigs = parser.add_argument_group("signatures")
    sigs.add_argument(
        "--rules",
        action="append",
        default=[],
        metavar="ID[,ID...]",
        help="run these signatures (IDs, event names, lang:NAME, all, severity>=LEVEL, tag:, category:, mitre:; "
        "join with +); default: every enabled one when no --events are given, none otherwise",
    )
    sigs.add_argument(
        "--rules-dir",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="load signatures from DIR (repeatable)",
    )
    sigs.add_argument(
        "--disable", action="append", default=[], metavar="NAME", help="leave out a plugin or signature (repeatable)"
    )
    sigs.add_argument("--no-signatures", action="store_true", help="trace and print only; run no signature")
    bpf = parser.add_argument_group("BPF object")
    bpf.add_argument(
        "--install-path",
        type=Path,
        default=Path("/tmp/tracee"),  # noqa: S108 - Tracee's install path; checked by privileges.py
        help="where a non-CO-RE object or an unpacked BTF file lives (default: %(default)s)",
    )
    bpf.add_argument(
        "--build-policy",
        choices=("never", "if-needed", "always"),
        default="if-needed",
        help="build a non-CO-RE object from the packaged sources when needed (default: %(default)s)",
    )
    bpf.add_argument(
        "--kernel-buffer",
        choices=BUFFER_KINDS,
        default="auto",
        help="how events leave the kernel: a BPF ring buffer, per-CPU perf buffers, or auto: "
        "the ring buffer where the kernel has one (5.8+), else perf buffers (default: %(default)s)",
    )
    bpf.add_argument(
        "--ring-buffer-mb",
        type=_ring_buffer_mb,
        default=32,
        help="ring buffer size in MiB, a power of two from 1 to 1024 (default: %(default)s)",
    )
    bpf.add_argument(
        "--perf-buffer-size",
        "-b",
        type=_perf_pages,
        default=1024,
        metavar="PAGES",
        help="perf buffer size per CPU in pages, a power of two (default: %(default)s)",
    )
    parser.add_argument(
        "--log",
        "-l",
        default="info",
        choices=["debug", "info", "warn", "error"],
        help="log level on stderr (default: %(default)s)",
    )
    outputs.add_finding_output_options(parser, file_option="--findings-output")
    add_operations_options(parser)
    add_metrics_options(parser)
    add_bus_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run tracee; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    complete_standard_output()
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--disable", action="append", default=[])
    setup_logging("info", PROG)
    broken_config: ConfigFileError | None = None
    try:
        file_config = config_from_argv(argv)
    except ConfigFileError as exc:
        if "--validate" not in argv:
            return report_config_error(exc, PROG)
        file_config, broken_config = exc.partial, exc  # --validate: report it, and check the rest too
    pm = PluginManager()
    pm.load_plugins(pre.parse_known_args(argv)[0].disable or config_list(file_config, "disable"), installed=True)
    parser = build_parser()
    pm.subset_hook_caller("tracee_addoption", remove_plugins=[outputs]).call_historic(kwargs={"parser": parser})
    try:
        args = merge_options(parser, file_config, argv)
    except ConfigFileError as exc:
        if "--validate" not in argv:
            return report_config_error(exc, PROG)
        args = merge_options(parser, None, argv)  # --validate: the file's other sections are checked too
        broken_config = ConfigFileError([*(broken_config.problems if broken_config else ()), *exc.problems])
    if "help" in args.capture:
        print(CAPTURE_HELP, end="")
        return ExitStatus.OK
    args.capture_evidence = CaptureEvidence()
    if args.capture:  # findings get the path and sha256 of their event's artifact
        pm.register(args.capture_evidence, name="capture-evidence")
    setup_logging(args.log, PROG)
    if args.validate or args.list_params:
        return _validate_or_list(args, pm, file_config, broken_config)
    # event data may hold any bytes: never fail on a terminal that cannot show a character
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    prepared = _prepare(args, parser)
    if isinstance(prepared, int):
        return prepared
    selection, printer, metrics = prepared
    session = _load_session(args, selection, pm, file_config, reparser(parser, argv))
    if isinstance(session, int):
        if metrics is not None:
            metrics.close()
        return session
    status: int = ExitStatus.FAILED
    try:
        status = _trace(args, selection, printer, session, metrics)
        if isinstance(printer, BusEventOutput) and printer.lost and status == ExitStatus.OK:
            status = ExitStatus.FAILED  # events not published: counted and logged by the output
    finally:
        if session is not None:  # when tracing never started; run() already did otherwise
            status = session.finish(ExitStatus(status))
    return status


def _prepare(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> tuple[Selection, EventPrinter, MetricsServer | None] | int:
    """The event selection, the printer and the metrics server the options ask for, or the
    exit status of a usage error."""
    try:
        selection = parse_selection(args.events, args.scope, args.trace)
        bus_outputs, local_outputs = split_bus_outputs(args.event_output)
        output = parse_output_options(local_outputs or (["none"] if bus_outputs else []))
        if output.exec_hash and getattr(args, "exec_hash", None) is None:
            args.exec_hash = "on"  # Tracee's option:exec-hash; on by default anyway
        printer = _event_printer(output, bus_outputs, args)
        args.capture_options = parse_capture(args.capture)
        metrics = open_metrics_server(args)
    except (FilterError, OutputError, ConfigError, CaptureOptionError) as exc:
        return usage_error(parser, exc)
    return selection, printer, metrics


def _event_printer(output: OutputSpec, bus_outputs: list[str], args: argparse.Namespace) -> EventPrinter:
    """The event printer; with a nats:// output, one that also publishes (only one is allowed)."""
    if not bus_outputs:
        return EventPrinter(output)
    if len(bus_outputs) > 1:
        raise OutputError("--output nats://...: give one NATS output")
    return BusEventOutput(output, bus_outputs[0], BusCredentials.from_options(args))


def _load_session(
    args: argparse.Namespace,
    selection: Selection,
    pm: PluginManager,
    file_config: ConfigFile | None = None,
    reparse: Reparse | None = None,
) -> Session | int | None:
    detection = not args.no_signatures and (bool(args.rules) or not selection.events)
    if not detection:
        return None
    session = Session(_session_config(args, pm, file_config))
    session.reparse = reparse
    try:
        session.load()
    except ConfigError as exc:
        return report_config_error(exc, PROG)
    except (TemplateError, OSError) as exc:
        log.error("%s", exc)
        return ExitStatus.USAGE
    return session


def _session_config(
    args: argparse.Namespace, pm: PluginManager, file_config: ConfigFile | None, list_only: bool = False
) -> SessionConfig:
    return SessionConfig(
        rules_dirs=args.rules_dir,
        rules=args.rules,
        disabled=args.disable,
        options=args,
        pluginmanager=pm,
        config_file=file_config,
        dedup_window=args.dedup_window,
        list_only=list_only,
        live=True,
    )


def _validate_or_list(
    args: argparse.Namespace,
    pm: PluginManager,
    file_config: ConfigFile | None,
    broken_config: ConfigFileError | None = None,
) -> int:
    """``--validate`` and ``--list-params``: load the signatures and the configuration, trace nothing."""
    session = Session(_session_config(args, pm, file_config, list_only=True))
    if args.validate:
        return session.finish(ExitStatus(validate(session, PROG, broken_config)))
    try:
        session.load()
    except ConfigError as exc:
        return report_config_error(exc, PROG)
    list_params(session)
    return session.finish(ExitStatus.OK)


def _trace(
    args: argparse.Namespace,
    selection: Selection,
    printer: EventPrinter,
    session: Session | None,
    metrics: MetricsServer | None = None,
) -> int:
    capturing = args.capture_options.enabled
    traced = _traced_events(selection, session, capturing)
    if capturing:
        from ..capture.kernel import events_needed

        traced |= events_needed(args.capture_options)
    data_filters = _data_filters(selection, session)
    collector = _open_collector(args, selection, traced, data_filters) if traced or capturing else ExitStatus.USAGE
    if isinstance(collector, int):
        if metrics is not None:
            metrics.close()
        return collector
    printed = selection.wanted_events() | (set(ARTIFACT_EVENTS) if capturing else set())
    source = LiveSource(collector, selection, printer, printed, on_drained=StopRequest.ignore_more)
    if metrics is not None:
        metrics.serve(session, source)
    stop = StopRequest(source.request_stop)
    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        source.start()
        log.info(
            "tracing %d events (%s)%s",
            len(traced),
            ",".join(sorted(traced)),
            f"; {len(session.signatures)} signatures" if session is not None else "",
        )
        if session is not None:
            session.traced_events = frozenset(traced)
            with hangup_reloads(session):  # SIGHUP: read the configuration and rules again
                status = _consume(source, session)
        else:
            status = _consume(source, session)
    except KeyboardInterrupt:  # stopped while attaching
        status = ExitStatus.OK
    except StopRun as exc:  # the event output was closed (`tracee -o json | head`)
        log.error("stopped: %s", exc)
        status = ExitStatus.FAILED
    except OSError as exc:
        log.error("tracing failed: %s", exc)
        status = ExitStatus.FAILED
    finally:
        # a signal now (or another Ctrl-C) must not break the clean-up; once one asked to
        # stop, the process is ending: later signals stay ignored
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        source.close()
        if metrics is not None:
            metrics.close()
        if not stop.requested:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        printer.close()
    (log.warning if source.incomplete else log.info)(
        "%s", session.summary() if session is not None else source.summary()
    )
    return status


def _traced_events(selection: Selection, session: Session | None, capturing: bool = False) -> set[str]:
    """What to trace: the events to print and those the signatures need, as far as the collector has them."""
    from ..collector import supported_events

    printed = selection.wanted_events()
    needed = session.needed_events() if session is not None else set()
    available = set(supported_events())
    unsupported = sorted((printed | needed) - available)
    if unsupported:
        log.warning("not traced (no such event in this collector): %s", ", ".join(unsupported))
    traced = (printed | needed) & available
    if not traced and not capturing:
        log.error("nothing to trace: select events with -e, or signatures with --rules")
    return traced


def _data_filters(selection: Selection, session: Session | None) -> dict[str, ArgPattern]:
    """The signatures' path filters the kernel tests (collector/datafilters.py)."""
    from ..datafilters import plan

    if session is None or session.engine is None:
        return {}
    consumers = [(loaded.metadata.id, s) for loaded in session.engine.signatures for s in loaded.selectors]
    chosen = plan(consumers, selection.wanted_events())
    log.debug("%s", chosen.describe())
    return chosen.filters


def _open_collector(
    args: argparse.Namespace, selection: Selection, traced: set[str], data_filters: dict[str, ArgPattern]
) -> Collector | int:
    """The collector for these options (not started), or the exit status saying why not."""
    from ..collector import Collector, KernelFilters
    from ..objects import BpfObjectError, choose_bpf_object
    from ..privileges import PrivilegeError, UnsafePathError, check_privileges

    try:
        check_privileges()
        choice = choose_bpf_object(install_path=args.install_path, build_policy=args.build_policy)
    except (PrivilegeError, UnsafePathError) as exc:
        log.error("%s", exc)
        return ExitStatus.USAGE
    except BpfObjectError as exc:
        log.error("%s", exc)
        return exc.exit_code
    log.debug("BPF object: case %d: %s", choice.case, choice.reason)
    capture = None
    if args.capture_options.enabled:
        from ..capture import CaptureManager

        try:
            capture = CaptureManager(args.capture_options)
        except (UnsafePathError, OSError) as exc:
            log.error("%s", exc)
            return ExitStatus.USAGE
        log.info("capturing artifacts into %s", capture.out_dir)
        args.capture_evidence.manager = capture
    filters = KernelFilters(
        pids=selection.pids,
        uids=selection.uids,
        comms=selection.comms,
        container_only=selection.container_only,
        follow=selection.follow,
        new_pids_only=selection.new_pids_only,
    )
    try:
        return Collector(
            choice.object_path,
            choice.btf_path,
            sorted(traced),
            filters=filters,
            ring_buffer_bytes=args.ring_buffer_mb << 20,
            buffer=args.kernel_buffer,
            perf_buffer_pages=args.perf_buffer_size,
            data_filters=data_filters,
            capture=capture,
        )
    except ValueError as exc:  # e.g. more pids or comms than the kernel maps hold
        log.error("%s", exc)
        return ExitStatus.USAGE


def _consume(source: LiveSource, session: Session | None) -> int:
    """Run the signatures on the live events (or only print them) until the stop."""
    if session is not None:
        status = session.run(source)
        # a second Ctrl-C or SIGTERM stopped without draining: still a clean stop
        return ExitStatus.OK if status == ExitStatus.INTERRUPTED else status
    try:
        source.pump()
    except KeyboardInterrupt:
        pass
    return ExitStatus.OK


class StopRequest:
    """The SIGINT/SIGTERM handler: the first signal asks tracing to stop (``on_stop``: what
    the kernel buffer holds is still read, see :class:`~pytracee.collector.source.LiveSource`);
    the next one stops at once (a KeyboardInterrupt), and any later one is ignored."""

    def __init__(self, on_stop: Callable[[], None]) -> None:
        self.requested = False
        self.on_stop = on_stop

    def __call__(self, signum: int, frame: object) -> None:
        if not self.requested:
            self.requested = True
            self.on_stop()
            return
        self.ignore_more()
        raise KeyboardInterrupt

    @staticmethod
    def ignore_more() -> None:
        """Ignore SIGINT and SIGTERM from now on (the run is ending)."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _perf_pages(text: str) -> int:
    pages = int(text)
    if not 1 <= pages <= 1 << 18 or pages & (pages - 1):
        raise argparse.ArgumentTypeError(f"{text}: expected a power of two from 1 to 262144")
    return pages


def _ring_buffer_mb(text: str) -> int:
    size = int(text)
    if not 1 <= size <= 1024 or size & (size - 1):
        raise argparse.ArgumentTypeError(f"{text}: expected a power of two from 1 to 1024")
    return size


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
