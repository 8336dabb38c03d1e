"""The Rego worker process: every regorus or OPA engine of a run lives here.

Started by :class:`~.client.WorkerClient` as ``python -m
pytracee.engine.rego.worker ENGINE STATE_FD BUDGET_MS MEMORY_MB``, it reads
frames (:mod:`.protocol`) on its standard input and answers on its standard
output (both moved to other descriptors first, so a stray ``print`` goes to
stderr). It

* loads rule files for *namespaces* (one per collector in the engine's
  process, each with its own :class:`~.backends.Backend`): parsing and
  checking them (:func:`~.policy.parse_module`), compiling them, reading and
  checking ``__rego_metadoc__`` and ``tracee_selected_events``;
* evaluates the rules an event concerns on its JSON text, timing each one;
* writes the index of the rule it is evaluating into the shared state block,
  for the engine to read when it has to kill it.

It protects the engine's process by being expendable: its address space may
grow by at most MEMORY_MB (``RLIMIT_AS``, 0: no limit), it dies with its
parent (``PR_SET_PDEATHSIG``), and it runs in its own session, so the
terminal's Ctrl-C reaches only the engine, which then decides.
"""

from __future__ import annotations

import mmap
import os
import pickle
import resource
import sys
from collections.abc import Sequence
from pathlib import Path
from time import perf_counter
from typing import Any, Final

from ..errors import RuleFileError
from ..findings import SignatureMetadata
from ..lifetime import end_with
from ..params import Param, ParamError, params_from_dict
from ..selectors import EventSelector
from .backends import Backend, LocalRule, Outcome, make_backend
from .guards import Program, compile_program
from .policy import MATCH, RegoModule, metadata_from, module_ast, parse_module, regorus_engine, selectors_from
from .protocol import CALL, EVAL, RAISE, READY, RESULT, RETURN, STATE_IDLE, FrameReader, frame, parse_eval, write_all

__all__ = ["HELPERS_PACKAGE", "Loader", "SignatureInfo", "Worker", "main"]

#: The engine's helper package; signatures may not use it.
HELPERS_PACKAGE: Final = "data.tracee.helpers"
#: Exit status of a worker that ran out of memory in Python code.
EXIT_NO_MEMORY: Final = 70

#: What loading a signature tells the engine: metadata, selectors, syntax (``"v0"``/``"v1"``), parameters.
SignatureInfo = tuple[SignatureMetadata, tuple[EventSelector, ...], str, dict[str, Param]]
#: A signature's package and its guard program (``None``: always evaluated).
GuardInfo = tuple[str, Program | None]


class Loader:
    """The rule files of one namespace, in one backend."""

    def __init__(self, engine: str) -> None:
        self.backend: Backend = make_backend(engine)
        #: Packages of the helper modules added (a signature sharing one gets no guard).
        self.helper_packages: set[str] = set()

    def helper(self, path: Path, source: str) -> str:
        """Add a ``*helpers.rego`` module to every signature's engine; its package."""
        module = parse_module(path, source)
        self.backend.add_helper(module)
        self.helper_packages.add(module.package)
        return module.package

    def guard(self, module: RegoModule) -> GuardInfo:
        """The package and guard program (:mod:`.guards`) of a loaded signature module."""
        if module.package in self.helper_packages or HELPERS_PACKAGE in self.helper_packages:
            return module.package, None
        return module.package, compile_program(module_ast(module), module.rules, MATCH, self.backend.accepts_regex)

    def signature(self, path: Path, source: str, index: int) -> tuple[LocalRule, SignatureInfo, GuardInfo]:
        """Load one signature file as rule number ``index``; also its guard.

        :raises RuleFileError: for anything wrong with it.
        """
        module = parse_module(path, source)
        if module.package == HELPERS_PACKAGE:
            raise RuleFileError(
                path,
                "package tracee.helpers is the helpers' package; name a helper file *helpers.rego, "
                "or give the signature its own package (package tracee.<ID>)",
                module.package_line,
            )
        if MATCH not in module.rules:
            raise RuleFileError(
                path, f"no {MATCH} rule: a signature reports findings through {MATCH}", module.package_line
            )
        found: dict[str, Any] = {}

        def check(documents: dict[str, Any]) -> None:
            metadoc = documents.get("__rego_metadoc__")
            found["metadata"] = metadata_from(module, metadoc)
            found["selectors"] = selectors_from(module, documents.get("tracee_selected_events"))
            try:
                declared = metadoc.get("params") if isinstance(metadoc, dict) else None
                found["params"] = params_from_dict(declared, "__rego_metadoc__.params")
            except ParamError as exc:
                raise RuleFileError(path, str(exc), module.rule_line("__rego_metadoc__")) from None

        rule = self.backend.add_signature(module, check, index)
        info = (found["metadata"], found["selectors"], module.syntax, found["params"])
        return rule, info, self.guard(module)


class Worker:
    """Serves one engine process: loads rule files and evaluates events.

    :param engine: ``regorus`` or ``opa``.
    :param state: the shared state block (``state[0]``: what is being evaluated).
    :param budget_ms: the time budget of one rule's evaluation.
    """

    def __init__(self, engine: str, state: Any, budget_ms: float) -> None:
        self.engine = engine
        self.state = state
        self.budget = budget_ms / 1000.0
        self.loaders: dict[int, Loader] = {}
        self.rules: dict[int, tuple[LocalRule, Backend]] = {}
        self.evaluations = 0
        #: Seconds spent answering EVAL frames (a measure for benchmarks).
        self.busy = 0.0
        self.last_input = b""

    def serve(self, fd_in: int, fd_out: int) -> None:
        """Answer frames until the engine closes the pipe."""
        reader = FrameReader(fd_in)
        evaluate, call = self.evaluate, self.call
        while True:
            got = reader.read()
            if got is None:
                return
            kind, body = got
            if kind == EVAL:
                start = perf_counter()
                reply = frame(RESULT, evaluate(body))
                self.busy += perf_counter() - start
            elif kind == CALL:
                reply = call(body)
            else:
                reply = frame(RAISE, pickle.dumps(("error", f"unknown frame kind {kind}")))
            write_all(fd_out, reply)

    # --- evaluation -------------------------------------------------------------------------

    def evaluate(self, body: bytes) -> bytes:
        """A :data:`~.protocol.RESULT` body for an :data:`~.protocol.EVAL` body."""
        indices, view = parse_eval(body)
        text = self.last_input = bytes(view)
        self.evaluations += 1
        try:
            entries = [self.rules[index] for index in indices]
            backend = entries[0][1] if entries else None
            if all(b is backend for _, b in entries):
                if backend is None:
                    return Outcome().json()
                return backend.evaluate([rule for rule, _ in entries], text, self.budget, self.state).json()
            return self._evaluate_mixed(entries, text).json()
        except MemoryError:
            os._exit(EXIT_NO_MEMORY)
        except Exception as exc:  # noqa: BLE001 - a bug here must not lose the others' events: all of them fail
            outcome = Outcome()
            outcome.values = [None] * len(indices)
            outcome.errors = [[i, f"the Rego worker failed: {type(exc).__name__}: {exc}"] for i in range(len(indices))]
            self.state[0] = STATE_IDLE
            return outcome.json()

    def _evaluate_mixed(self, entries: Sequence[tuple[LocalRule, Backend]], text: bytes) -> Outcome:
        """Rules of several namespaces (backends) in one request."""
        merged = Outcome()
        merged.values = [None] * len(entries)
        groups: dict[int, list[int]] = {}
        for position, (_, backend) in enumerate(entries):
            groups.setdefault(id(backend), []).append(position)
        for positions in groups.values():
            backend = entries[positions[0]][1]
            part = backend.evaluate([entries[p][0] for p in positions], text, self.budget, self.state)
            for local, value in enumerate(part.values):
                merged.values[positions[local]] = value
            merged.errors.extend([positions[p], m] for p, m in part.errors)
            merged.slow.extend([positions[p], ms] for p, ms in part.slow)
        return merged

    # --- calls ------------------------------------------------------------------------------

    def call(self, body: bytes) -> bytes:
        """A :data:`~.protocol.RETURN` or :data:`~.protocol.RAISE` frame for a :data:`~.protocol.CALL` body."""
        try:
            method, args = pickle.loads(body)
            result = getattr(self, f"call_{method}")(*args)
        except RuleFileError as exc:
            return frame(RAISE, pickle.dumps(("RuleFileError", (str(exc.path), exc.message, exc.line))))
        except MemoryError:
            os._exit(EXIT_NO_MEMORY)
        except Exception as exc:  # noqa: BLE001 - raised again in the engine, as the call's result
            return frame(RAISE, pickle.dumps(("error", f"{type(exc).__name__}: {exc}")))
        finally:
            self.state[0] = STATE_IDLE
        return frame(RETURN, pickle.dumps(result))

    def _loader(self, namespace: int) -> Loader:
        loader = self.loaders.get(namespace)
        if loader is None:
            loader = self.loaders[namespace] = Loader(self.engine)
        return loader

    def call_helper(self, namespace: int, path: str, source: str) -> str:
        return self._loader(namespace).helper(Path(path), source)

    def call_signature(self, namespace: int, path: str, source: str, index: int) -> tuple[SignatureInfo, GuardInfo]:
        loader = self._loader(namespace)
        rule, info, guard = loader.signature(Path(path), source, index)
        self.rules[index] = (rule, loader.backend)
        return info, guard

    def call_drop(self, namespaces: Sequence[int]) -> None:
        """Forget namespaces (their collectors are gone) and their rules."""
        gone = {id(self.loaders.pop(ns).backend) for ns in namespaces if ns in self.loaders}
        for index in [i for i, (_, backend) in self.rules.items() if id(backend) in gone]:
            del self.rules[index]

    def call_stats(self) -> dict[str, Any]:
        """Counters for tests: evaluations, engine inputs, the last event's JSON, rules, namespaces."""
        inputs = sum(loader.backend.inputs for loader in self.loaders.values())
        return {
            "evaluations": self.evaluations,
            "busy_seconds": self.busy,
            "inputs": inputs,
            "last_input": self.last_input,
            "rules": len(self.rules),
            "namespaces": len(self.loaders),
            "pid": os.getpid(),
        }


# --- the process ------------------------------------------------------------------------------


def _start_engine(engine: str) -> None:
    """Load the native engine (and its runtime), so that the memory limit applies to rules only."""
    if engine == "opa":
        from opa_bindings import OpaEngine

        OpaEngine().close()
    else:
        regorus_engine()


def _limit_memory(limit_mb: int) -> None:
    if limit_mb <= 0:
        return
    with open("/proc/self/status") as status:
        size_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    limit = size_kb * 1024 + (limit_mb << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the worker (see the module docstring for the arguments)."""
    engine, state_fd, budget_ms, memory_mb, parent = (argv if argv is not None else sys.argv[1:])[:5]
    end_with(int(parent), status=0)
    fd_in, fd_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # a print() of a policy goes to stderr, not into the protocol
    os.close(devnull)
    sys.stdout = sys.stderr
    state_map = mmap.mmap(int(state_fd), mmap.PAGESIZE)
    state = memoryview(state_map).cast("i")
    state[0] = STATE_IDLE
    _start_engine(engine)
    _limit_memory(int(memory_mb))
    worker = Worker(engine, state, float(budget_ms))
    write_all(fd_out, frame(READY, pickle.dumps(os.getpid())))
    worker.serve(fd_in, fd_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
