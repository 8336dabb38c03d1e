"""The built-in outputs plugin: print findings, write them to a file, post them to a webhook.

It adds its own command-line options (``--output-template``, ``--output``,
``--webhook`` ...) and, at configure time, checks them and registers one sink per
destination:

* :class:`~pytracee.engine.output.printer.TemplatePrinter` renders each finding with
  a template onto stdout or ``--output FILE`` (:mod:`~pytracee.engine.output.printer`);
* :class:`~pytracee.engine.output.webhook.WebhookSender` POSTs each finding to
  ``--webhook URL`` from a background thread with a bounded queue
  (:mod:`~pytracee.engine.output.webhook`).

Templates run sandboxed and bounded (:mod:`~pytracee.engine.output.sandbox`). A
finding that cannot be rendered, written or delivered is counted and logged, and
makes the run's exit status 1; a bad option (an ``ftp://`` URL, a timeout of 0) is a
:class:`~pytracee.engine.errors.ConfigError` (exit status 2).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..bus.address import is_bus_url
from ..bus.credentials import BusCredentials
from ..hookspecs import hookimpl
from .printer import OutputFile, TemplatePrinter, TextOutput, silence_closed_output
from .templates import BUILTIN_TEMPLATES, FindingTemplate
from .webhook import (
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_QUEUE_SIZE,
    DEFAULT_TIMEOUT,
    WebhookSender,
)

if TYPE_CHECKING:
    from ..session import SessionConfig

__all__ = [
    "DEFAULT_WEBHOOK_TIMEOUT",
    "TemplatePrinter",
    "WebhookSender",
    "add_finding_output_options",
    "silence_closed_output",
]

#: Seconds a webhook request may take in total (kept for importers of the old name).
DEFAULT_WEBHOOK_TIMEOUT = DEFAULT_TIMEOUT


@hookimpl
def tracee_addoption(parser: argparse.ArgumentParser) -> None:
    add_finding_output_options(parser)


def add_finding_output_options(parser: argparse.ArgumentParser, file_option: str = "--output") -> None:
    """Add the finding output options; ``file_option`` names the output-file flag (``tracee``
    uses ``--output`` for its event output and passes ``--findings-output``)."""
    group = parser.add_argument_group("output of findings")
    group.add_argument(
        "--output-template",
        metavar="NAME|PATH",
        default="default",
        help=f"how to print findings: a built-in ({', '.join(BUILTIN_TEMPLATES)}) or a Jinja2 template file, "
        "rendered in a sandbox, at most 1 MiB and 1 s per finding (default: %(default)s)",
    )
    aliases = ("--findings-output",) if file_option == "--output" else ()
    group.add_argument(
        file_option,
        *aliases,
        dest="output",
        metavar="FILE|URL",
        help="write findings to FILE (replacing it) instead of stdout, or publish them to "
        "nats://HOST:PORT/SUBJECT (JetStream, SUBJECT.<host>; see the README's fleet section)",
    )
    group.add_argument("--webhook", metavar="URL", help="POST every finding to URL (http:// or https://)")
    group.add_argument(
        "--webhook-template",
        metavar="NAME|PATH",
        default="rawjson",
        help="template of the webhook body (default: %(default)s)",
    )
    group.add_argument(
        "--webhook-content-type",
        metavar="TYPE",
        default="application/json",
        help="Content-Type of webhook requests (default: %(default)s)",
    )
    group.add_argument(
        "--webhook-timeout",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="give up on a webhook request after this long in total: connecting, sending and reading "
        "the answer (default: %(default)s)",
    )
    group.add_argument(
        "--webhook-queue",
        metavar="N",
        type=int,
        default=DEFAULT_QUEUE_SIZE,
        help="findings waiting for the webhook at most; while it is full, new findings are dropped "
        "and counted, so detection never waits for the server (default: %(default)s)",
    )
    group.add_argument(
        "--webhook-drain-timeout",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_DRAIN_TIMEOUT,
        help="at the end, wait this long for the queued findings to be delivered; those left are "
        "counted as dropped (default: %(default)s)",
    )


@hookimpl
def tracee_configure(config: SessionConfig) -> None:
    options = config.options
    if not hasattr(options, "output_template"):  # embedded use without the command line: no printing
        return
    if config.list_only:
        return  # listing only (tracee-rules --list): leave --output alone
    pm = config.pluginmanager
    template = FindingTemplate.load(options.output_template)
    sender = None
    if options.webhook:
        sender = WebhookSender(
            options.webhook,
            FindingTemplate.load(options.webhook_template),
            options.webhook_content_type,
            options.webhook_timeout,
            getattr(options, "webhook_queue", DEFAULT_QUEUE_SIZE),
            getattr(options, "webhook_drain_timeout", DEFAULT_DRAIN_TIMEOUT),
        )
    if is_bus_url(options.output):  # JetStream: rawjson unless another template is chosen
        from ..bus.findings import NatsFindingOutput  # asyncio and nats-py: only for a nats:// output

        chosen = options.output_template if options.output_template != "default" else "rawjson"
        option = "findings output"
        credentials = BusCredentials.from_options(options)
        pm.register(
            NatsFindingOutput(options.output, option, FindingTemplate.load(chosen), credentials), name="output-nats"
        )
    else:
        stream: TextOutput = OutputFile(options.output) if options.output else sys.stdout
        pm.register(TemplatePrinter(template, stream), name="output-printer")
    if sender is not None:
        pm.register(sender, name="output-webhook")
