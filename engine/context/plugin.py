"""The built-in plugin that keeps context across events and puts it on findings.

Options (``tracee`` and ``tracee-rules``):

* ``--proctree source=events|none,process-cache=N``: the process tree (Tracee's flag; its
  ``signals`` and ``both`` build it from events too, with a warning;
  on by default, at most 10,000 processes);
* ``--ancestry-depth N``: ancestors written on findings under ``processAncestry`` (5; 0: none);
* ``--containers enrich=true|false,sockets.RUNTIME=PATH,ttl=SECONDS``: container identity
  from the runtimes (Tracee's flag; on by default in ``tracee``, off in replay);
* ``--exec-hash on|off`` and ``--exec-hash-max-size MB``: sha256 of executed files
  (``tracee`` only: a replay takes the recorded ``sha256`` argument, never a local file).

At session start it builds the run's :class:`~pytracee.engine.context.state.EventContext`
(``session.context``); the session writes it into each finding before exceptions are checked.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import TYPE_CHECKING

from ..cli.usage import non_negative_int
from ..errors import ConfigError
from ..hookspecs import hookimpl
from .exehash import DEFAULT_MAX_SIZE
from .proctree import DEFAULT_MAX_PROCESSES
from .runtimes import DEFAULT_SOCKETS, RuntimeClient, client_for
from .state import DEFAULT_ANCESTRY_DEPTH, ContextSettings, EventContext

if TYPE_CHECKING:
    from ..session import Session, SessionConfig

_RUNTIMES = ("docker", "containerd", "podman")
log = logging.getLogger(__name__)


@hookimpl
def tracee_addoption(parser: argparse.ArgumentParser) -> None:
    """``--proctree``, ``--ancestry-depth``, ``--containers``, ``--exec-hash``."""
    group = parser.add_argument_group("context on findings (process tree, containers, executable hashes)")
    group.add_argument(
        "--proctree",
        action="append",
        default=[],
        metavar="OPTIONS",
        help="process tree: source=events|none, process-cache=N (default: source=events, "
        f"process-cache={DEFAULT_MAX_PROCESSES}; comma-separated, repeatable)",
    )
    group.add_argument(
        "--ancestry-depth",
        type=non_negative_int("a number >= 0"),
        default=DEFAULT_ANCESTRY_DEPTH,
        metavar="N",
        help="ancestors written on findings under processAncestry (default: %(default)s; 0: none)",
    )
    group.add_argument(
        "--containers",
        action="append",
        default=[],
        metavar="OPTIONS",
        help="container enrichment: enrich=true|false, sockets.docker|containerd|podman=PATH, ttl=SECONDS "
        "(default: enrich=true live with the runtime sockets that exist, false in replay)",
    )
    group.add_argument(
        "--exec-hash",
        choices=("on", "off"),
        default=None,
        help="sha256 of every executed file, live (default: on in tracee; a replay uses recorded hashes)",
    )
    group.add_argument(
        "--exec-hash-max-size",
        type=non_negative_int("a number >= 0"),
        default=DEFAULT_MAX_SIZE >> 20,
        metavar="MB",
        help="files larger than this are not hashed (default: %(default)s)",
    )


def settings_from_options(
    options: argparse.Namespace, live: bool, *, check_only: bool = False
) -> tuple[ContextSettings, list[RuntimeClient]]:
    """The context settings and runtime clients of a command line.

    :raises ConfigError: for malformed ``--proctree`` or ``--containers`` values.
    """
    settings = ContextSettings(seed_from_proc=live)
    for key, value in _pairs(getattr(options, "proctree", []), "--proctree"):
        if key == "source":
            if value not in ("events", "none", "signals", "both"):
                raise ConfigError(f"--proctree source={value}: expected events or none")
            if value in ("signals", "both") and not check_only:
                log.warning("--proctree source=%s: the process tree is built from events (as source=events)", value)
            settings.proctree = value != "none"
        elif key == "process-cache":
            settings.max_processes = _positive(value, "--proctree process-cache")
        else:
            raise ConfigError(f"--proctree {key}: unknown option (source, process-cache)")
    settings.ancestry_depth = getattr(options, "ancestry_depth", DEFAULT_ANCESTRY_DEPTH)
    settings.containers = live
    _container_options(settings, getattr(options, "containers", []))
    exec_hash = getattr(options, "exec_hash", None)
    settings.exec_hash = live and exec_hash != "off"
    if exec_hash == "on" and not live:
        raise ConfigError("--exec-hash on: executed files are hashed live only (a replay uses the recorded sha256)")
    settings.exec_hash_max_size = getattr(options, "exec_hash_max_size", DEFAULT_MAX_SIZE >> 20) << 20
    clients: list[RuntimeClient] = []
    if settings.containers and not check_only:
        for runtime, path in settings.sockets.items():
            try:
                clients.append(client_for(runtime, path))
            except ImportError as exc:
                raise ConfigError(f"--containers sockets.{runtime}: {exc}") from None
    return settings, clients


def _container_options(settings: ContextSettings, values: list[str]) -> None:
    """``--containers`` into ``settings``."""
    sockets: dict[str, str] = {}
    for key, value in _pairs(values, "--containers"):
        if key == "enrich":
            if value not in ("true", "false"):
                raise ConfigError(f"--containers enrich={value}: expected true or false")
            settings.containers = value == "true"
        elif key.startswith("sockets."):
            runtime = key.removeprefix("sockets.")
            if runtime not in _RUNTIMES:
                raise ConfigError(f"--containers {key}: unknown runtime (docker, containerd, podman)")
            sockets[runtime] = value
        elif key == "ttl":
            try:
                settings.container_ttl = float(value)
            except ValueError:
                raise ConfigError(f"--containers ttl={value}: expected seconds") from None
        else:
            raise ConfigError(f"--containers {key}: unknown option (enrich, sockets.RUNTIME, ttl)")
    if not sockets:
        sockets = {name: path for name, path in DEFAULT_SOCKETS.items() if os.path.exists(path)}
    settings.sockets = sockets


@hookimpl
def tracee_configure(config: SessionConfig) -> None:
    """Check the options early: a malformed value is a usage error (exit status 2)."""
    settings_from_options(config.options, config.live, check_only=True)


@hookimpl
def tracee_sessionstart(session: Session) -> None:
    """Build the run's context (listing too: ``--list-events`` names the events it consumes)."""
    config = session.config
    settings, clients = settings_from_options(config.options, config.live)
    if settings.proctree or settings.containers or settings.exec_hash:
        session.context = EventContext(settings, clients)


@hookimpl
def tracee_sessionfinish(session: Session) -> None:
    """Stop the context's threads."""
    if session.context is not None:
        session.context.close()


def _pairs(values: list[str], flag: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        for item in value.split(","):
            key, sep, val = item.strip().partition("=")
            if not sep or not key:
                raise ConfigError(f"{flag} {item}: expected KEY=VALUE")
            pairs.append((key, val))
    return pairs


def _positive(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{what}={text}: expected a positive number")
    return value
