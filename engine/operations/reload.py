"""Hot reload: on SIGHUP, read the configuration, rules directories and rule files again.

The signal only sets a flag (:meth:`~pytracee.engine.session.Session.request_reload`);
the session reloads between two events, so no event is lost or seen half by one
configuration and half by the other. A reload builds the new set of signatures
completely beside the running one, with its own plugin manager (the outputs stay
the running ones: findings keep going where they went):

* the configuration file is read again and merged with the command line as at
  start (:data:`Reparse`), rules directories and rule files are loaded, parameters,
  overrides, exceptions and the selection are applied;
* anything wrong (a broken configuration or rule file, an unknown ID, a duplicate)
  keeps the running version, and every problem is logged with its file and line;
* otherwise the engine is swapped: a Python signature whose class, source file,
  parameters and metadata are unchanged keeps its running instance and its state
  (an exec it is waiting to pair, an API server it learned), the others start
  fresh and the ones replaced or removed are closed. Counts (events, findings,
  suppressed by exception) carry on.

What the outputs are (``--output``, templates, webhooks) and the input are fixed for
the life of the process; live, events the new signatures need but the tracer does
not trace are reported.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import zlib
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from ..dispatch import Engine, LoadedSignature
from ..errors import ConfigError
from ..plugins import PluginManager
from ..selectors import ANY
from ..signature import DuplicateSignatureError
from .config import ConfigFile, ConfigFileError
from .suppression import Suppression

if TYPE_CHECKING:
    import argparse

    from ..session import Session

__all__ = ["Reparse", "fingerprints", "reload_session"]

log = logging.getLogger("pytracee")

#: Reads the configuration again: ``(config file, options)`` as at start; raises ConfigError.
Reparse = Callable[[], "tuple[ConfigFile | None, argparse.Namespace]"]

_OUTPUTS_PLUGIN = "builtin-outputs"


def _take_over(engine: Engine, old_engine: Engine) -> None:
    """Give ``engine`` what plugins set up on ``old_engine``: its observers, its wrapper (the
    metrics' timing) and the events observers hold; the two share the list of released events,
    so an observer holding the old engine's :meth:`Engine.release` hands them to the new one."""
    for name, observers in old_engine._observers.items():
        engine._observers.setdefault(name, []).extend(observers)
    engine._observers_at_end.extend(old_engine._observers_at_end)
    engine.instrument(old_engine._wrap)
    engine._released.extend(old_engine._released)
    old_engine._released = engine._released


def undecoded_after_reload(decoded: Collection[str] | None, old: Engine, new: Engine) -> list[str]:
    """Events the new signatures select (or filter) otherwise than the running ones, among those a
    replay's reader does not decode whole (``decoded``: its ``wanted_events``, None for all): it
    keeps skipping the records the running signatures did not want."""
    if decoded is None:
        return []
    before, after = _selections(old), _selections(new)
    changed = {name for name in after.keys() | before.keys() if after.get(name) != before.get(name)}
    if ANY in changed:
        return ["every event"]
    return sorted(name for name in changed if name in after and name not in decoded)


def _selections(engine: Engine) -> dict[str, frozenset[tuple[str, str, str]]]:
    """Per event name, the (origin, argument, patterns) of each selector of the engine's signatures."""
    found: dict[str, set[tuple[str, str, str]]] = {}
    for loaded in engine.signatures:
        for selector in loaded.selectors:
            if selector.source not in ("tracee", ANY):  # events derived from findings are not read
                continue
            rules = found.setdefault(selector.name, set())
            rules.update((selector.origin, arg, str(pattern)) for arg, pattern in selector.filters.items())
            if not selector.filters:
                rules.add((selector.origin, "", ""))
    return {name: frozenset(rules) for name, rules in found.items()}


def _source_digest(obj: Any) -> str:
    try:
        path = inspect.getsourcefile(type(obj))
    except TypeError:
        return ""
    if not path or not os.path.isfile(path):
        return ""
    with open(path, "rb") as stream:
        text = stream.read()
    # size and CRC-32 tell an edited file from the one loaded (whoever can write it needs no
    # collision), without loading OpenSSL at every start-up for a hash
    return f"{len(text)}:{zlib.crc32(text):08x}"


def fingerprints(signatures: Sequence[LoadedSignature]) -> dict[str, str]:
    """The digest of each Python signature's source file, by signature ID, taken when it loads."""
    return {
        loaded.metadata.id: _source_digest(loaded.signature)
        for loaded in signatures
        if loaded.signature.language == "python"
    }


def _same(old: LoadedSignature, new: LoadedSignature, old_digest: str | None) -> bool:
    """Whether ``new`` is the running ``old`` signature, unchanged (then ``old`` keeps its state)."""
    a, b = old.signature, new.signature
    if a.language != "python" or b.language != "python":
        return False  # rule files are stateless and live in the new plugin manager's worker
    cls_a, cls_b = type(a), type(b)
    if cls_a is not cls_b:
        if (cls_a.__module__, cls_a.__qualname__) != (cls_b.__module__, cls_b.__qualname__):
            return False
        if not old_digest or _source_digest(b) != old_digest:
            return False
    return dict(a.params) == dict(b.params) and old.metadata == new.metadata and old.selectors == new.selectors


def reload_session(session: Session, reparse: Reparse) -> bool:
    """Reload ``session``'s signatures and settings between two events; False when it kept the old ones."""
    from ..session import collect

    old_engine = session.engine
    if old_engine is None:
        return False
    try:
        file_config, options = reparse()
        config = dataclasses.replace(
            session.config,
            rules_dirs=list(options.rules_dir),
            rules=list(options.rules),
            disabled=list(options.disable),
            config_file=file_config,
            dedup_window=options.dedup_window,
            options=options,
            pluginmanager=PluginManager(),
        )
        pm = config.pluginmanager
        pm.load_plugins([*config.disabled, _OUTPUTS_PLUGIN], installed=config.load_installed_plugins)
        pm.hook.tracee_configure.call_historic(kwargs={"config": config})
        available, chosen, settings = collect(config, pm)
        if pm.load_errors:
            raise ConfigError(f"{len(pm.load_errors)} plugin(s) or rule file(s) failed to load (listed above)")
        running = {loaded.metadata.id: loaded for loaded in old_engine.signatures}
        signatures, kept = [], set()
        for loaded in chosen:
            old = running.get(loaded.metadata.id)
            if old is not None and _same(old, loaded, session.fingerprints.get(loaded.metadata.id)):
                loaded = old
                kept.add(id(old))
            signatures.append(loaded)
        engine = Engine(
            signatures,
            session._handle_finding,
            running=kept,
            derive_events=config.derive_events,
            on_error=session._signature_error,
        )
    except ConfigFileError as exc:
        for problem in exc.problems:
            log.error("reload: %s", problem)
        log.error("reload failed: keeping the running configuration")
        return False
    except (ConfigError, DuplicateSignatureError) as exc:
        log.error("reload failed: %s; keeping the running configuration", exc)
        return False
    except Exception as exc:  # noqa: BLE001 - a plugin's bug must not end a long-running process
        log.error("reload failed: %s: %s; keeping the running configuration", type(exc).__name__, exc)
        return False
    old_engine.stats.errors_by_signature.update(engine.stats.errors_by_signature)  # new ones whose init failed
    engine.stats = old_engine.stats
    _take_over(engine, old_engine)
    retired = [loaded for loaded in old_engine.signatures if id(loaded) not in kept]
    for loaded in retired:
        old_engine._call(loaded, "close")
    suppression = Suppression(settings.exceptions(), config.dedup_window)
    suppression.adopt(session.suppression)
    session.engine, session.signatures, session.available = engine, engine.signatures, available
    session.settings, session.suppression = settings, suppression
    session.reload_managers.append(pm)
    session.fingerprints = {**session.fingerprints, **fingerprints([s for s in engine.signatures if id(s) not in kept])}
    if session.traced_events is not None:
        missing = sorted(set(engine.selected_event_names()) - session.traced_events)
        if missing:
            log.warning("reload: not traced (restart to trace them): %s", ", ".join(missing))
    else:
        skipped = undecoded_after_reload(session.wanted_events, old_engine, engine)
        if skipped:
            log.warning(
                "reload: this replay decides which records to decode as it started: records of %s that no "
                "signature of the running configuration wanted are still skipped (restart to apply)",
                ", ".join(skipped),
            )
    log.info(
        "reloaded: %d signatures (%d kept running with their state, %d new or changed, %d closed)",
        len(engine.signatures),
        len(kept),
        len(engine.signatures) - len(kept),
        len(retired),
    )
    return True
