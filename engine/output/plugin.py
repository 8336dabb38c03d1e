"""The built-in outputs plugin: print findings, write them to a file, post them to a webhook.

It adds its own command-line options (``--output-template``, ``--output``,
``--webhook`` ...) and, at configure time, registers one sink per destination:

* :class:`TemplatePrinter`: renders each finding with a template onto stdout or
  ``--output FILE``; each rendered finding ends with a newline (Tracee printed
  them back to back, so ``rawjson`` findings ran together).
* :class:`WebhookSender`: POSTs each finding, rendered with ``--webhook-template``
  (``rawjson`` by default), to ``--webhook URL``, one request per finding as
  Tracee does. Failed deliveries are logged and counted, and make the run's exit
  status 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import urllib.error
import urllib.request
from typing import IO, TYPE_CHECKING, Any

from ..findings import Finding
from ..hookspecs import hookimpl
from ..session import StopRun
from .templates import BUILTIN_TEMPLATES, FindingTemplate

if TYPE_CHECKING:
    from ..session import Session, SessionConfig

log = logging.getLogger("pytracee.output")

DEFAULT_WEBHOOK_TIMEOUT = 10.0


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
        help=f"how to print findings: a built-in ({', '.join(BUILTIN_TEMPLATES)}) or a Jinja2 template file "
        "(default: %(default)s)",
    )
    group.add_argument(file_option, dest="output", metavar="FILE", help="write findings to FILE (replacing it) instead of stdout")
    group.add_argument("--webhook", metavar="URL", help="POST every finding to URL")
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
        default=DEFAULT_WEBHOOK_TIMEOUT,
        help="give up on a webhook request after this long (default: %(default)s)",
    )


@hookimpl
def tracee_configure(config: SessionConfig) -> None:
    options = config.options
    if not hasattr(options, "output_template"):  # embedded use without the command line: no printing
        return
    if getattr(options, "list", False) or getattr(options, "list_events", False):
        return  # listing only: leave --output alone
    pm = config.pluginmanager
    template = FindingTemplate.load(options.output_template)
    webhook_template = FindingTemplate.load(options.webhook_template) if options.webhook else None
    stream: IO[str] = sys.stdout
    if options.output:
        stream = open(options.output, "w", encoding="utf-8")  # noqa: SIM115 - closed at session finish
    pm.register(TemplatePrinter(template, stream), name="output-printer")
    if webhook_template is not None:
        pm.register(
            WebhookSender(
                options.webhook,
                webhook_template,
                options.webhook_content_type,
                options.webhook_timeout,
            ),
            name="output-webhook",
        )


def silence_closed_output(stream: IO[str]) -> None:
    """Point a stream whose reader went away at /dev/null, so the interpreter's final flush stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stream.fileno())
    os.close(devnull)


class _Sink:
    """An output that reports undelivered findings to the session (exit status 1)."""

    session: Session | None = None

    @hookimpl
    def tracee_sessionstart(self, session: Session) -> None:
        self.session = session

    def failed(self, message: str) -> None:
        if self.session is not None:
            self.session.output_failed(message)
        else:
            log.error("%s", message)


class TemplatePrinter(_Sink):
    """Writes each finding, rendered by a template, to a text stream."""

    def __init__(self, template: FindingTemplate, stream: IO[str]) -> None:
        self.template = template
        self.stream = stream

    @hookimpl
    def tracee_finding_output(self, finding: Finding) -> None:
        try:
            text = self.template.render(finding)
        except Exception as exc:
            self.failed(f"finding of {finding.sig_metadata.id} not printed: {exc}")
            return
        try:
            self.stream.write(text if text.endswith("\n") else text + "\n")
            self.stream.flush()
        except BrokenPipeError:  # the reader went away (e.g. `| head`): nobody gets further findings
            silence_closed_output(self.stream)
            raise StopRun("the output was closed") from None

    @hookimpl
    def tracee_sessionfinish(self) -> None:
        if self.stream not in (sys.stdout, sys.stderr):
            self.stream.close()


class WebhookSender(_Sink):
    """POSTs each finding, rendered by a template, to a URL."""

    def __init__(self, url: str, template: FindingTemplate, content_type: str, timeout: float) -> None:
        self.url = url
        self.template = template
        self.content_type = content_type
        self.timeout = timeout
        self.delivered = 0

    @hookimpl
    def tracee_finding_output(self, finding: Finding) -> None:
        try:
            body = self.template.render(finding).encode("utf-8")
        except Exception as exc:
            self.failed(f"webhook: finding of {finding.sig_metadata.id} not rendered: {exc}")
            return
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": self.content_type}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            self.failed(f"webhook {self.url} answered {exc.code} {exc.reason} for {finding.sig_metadata.id}")
            return
        except (urllib.error.URLError, OSError) as exc:
            reason: Any = getattr(exc, "reason", exc)
            self.failed(f"webhook {self.url} unreachable for {finding.sig_metadata.id}: {reason}")
            return
        self.delivered += 1

