"""The engine's side of the Rego worker: starting, feeding, timing and restarting it.

A :class:`WorkerClient` owns one worker process (:mod:`.worker`) for an engine
(``regorus``/``opa``), a time budget and a memory limit; the collectors of a
process with the same settings share it (:func:`shared_client`), each in its
own :class:`Namespace`. Per event, the first Rego signature that sees it
sends one request for every active signature of its namespace the event
concerns (its JSON text from :mod:`.boundary`, the rules' indices); the others
read their answer from the same reply.

What can go wrong, and what happens (the wording follows CEL's time budget):

* **A signature's evaluation fails**: :class:`RegoEvaluationError` for that
  signature and event (counted by the engine as a signature error).
* **The event cannot be handed over** (:class:`~.boundary.RegoInputError`):
  the same, for every signature the event concerns.
* **Over the time budget**: counted per signature; :data:`~.limits.MAX_OVERRUNS`
  overruns within :data:`~.limits.OVERRUN_WINDOW` evaluations disable it
  (:class:`RegoTimeBudgetExceeded`, raised once).
* **No answer within the hard timeout** (:func:`~.limits.hard_timeout`, while
  the worker is using the CPU, not while the machine is starving it), or **the
  worker dies** (out of memory, a crash): the worker is killed, the signature
  it was evaluating (read from the shared state) is disabled at once
  (:class:`RegoSignatureDisabled`), a new worker is started with the same rule
  files, and the event's other signatures are evaluated there. When several
  signatures ran in one OPA query, each is tried alone to find the culprit.
  After :data:`~.limits.MAX_WORKER_RESTARTS` restarts every Rego signature is
  disabled.
* **Ctrl-C (or any exception) while waiting**: the worker is killed (it may be
  deep in a slow rule) and the exception goes on; the next use starts a new one.
"""

from __future__ import annotations

import atexit
import fcntl
import mmap
import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from typing import Any, Final

from ..errors import RuleFileError
from .limits import LOAD_TIMEOUT_S, MAX_WORKER_RESTARTS, hard_timeout
from .protocol import (
    CALL,
    EVAL,
    RAISE,
    READY,
    RESULT,
    RETURN,
    STATE_IDLE,
    FrameReader,
    frame,
    write_all,
)

__all__ = ["Died", "Stuck", "WorkerClient", "WorkerError", "shared_client"]

#: Longest wait for a new worker to be ready.
STARTUP_TIMEOUT_S: Final = 60.0
#: A worker that got less than this share of a CPU while overrunning is being starved, not stuck.
_BUSY_SHARE: Final = 0.5
#: How long a stuck-looking worker is watched before it is killed, in seconds.
_PROBE_S: Final = 0.2
#: Longest wait, in hard timeouts, for a starved worker.
_MAX_STARVED: Final = 20
_CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_WORKER: Final = __name__.rsplit(".", 1)[0] + ".worker"


class WorkerError(RuntimeError):
    """The worker could not do what was asked (it died, hung or could not start)."""


class Stuck(WorkerError):
    """No answer within the deadline while the worker used the CPU."""


class Died(WorkerError):
    """The worker is gone."""


class WorkerClient:
    """One Rego worker process and the rules loaded into it.

    :param engine: ``regorus`` or ``opa``.
    :param budget_ms: time budget of one signature's evaluation of one event.
    :param memory_mb: how much the worker's address space may grow (0: unlimited).
    """

    def __init__(self, engine: str, budget_ms: float, memory_mb: int) -> None:
        self.engine = engine
        self.budget_ms = budget_ms
        self.memory_mb = memory_mb
        self.hard_timeout = hard_timeout(budget_ms)
        self.restarts = 0
        self.broken: str | None = None  # why every signature is disabled
        self.lock = threading.RLock()
        self.rules: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self.cache: Any = None  # the latest event's answers (a rules.Answers)
        self._log: list[tuple[int, str, tuple[Any, ...]]] = []  # successful loads, replayed on restart
        self._next_index = 0
        self._next_namespace = 0
        self._released: list[int] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._to_worker = -1
        self._reader: FrameReader | None = None
        self._poller = select.poll()
        self._state_file = tempfile.TemporaryFile(prefix="pytracee-rego-state-")  # noqa: SIM115 - kept for the mapping
        self._state_file.truncate(mmap.PAGESIZE)
        self._state_map = mmap.mmap(self._state_file.fileno(), mmap.PAGESIZE)
        self._state = memoryview(self._state_map).cast("i")

    def __repr__(self) -> str:
        pid = self._proc.pid if self._proc is not None else None
        return f"<WorkerClient {self.engine} pid={pid} restarts={self.restarts}>"

    # --- identifiers -------------------------------------------------------------------------

    def new_namespace(self) -> int:
        """A fresh namespace number (the worker creates it on first use)."""
        self._next_namespace += 1
        return self._next_namespace

    def new_index(self) -> int:
        """A fresh rule index."""
        self._next_index += 1
        return self._next_index

    def release(self, namespace: int) -> None:
        """Forget a namespace; safe to call from a finalizer (the worker is told at the next call)."""
        self._released.append(namespace)

    # --- the process --------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The running worker's process id."""
        return self._proc.pid if self._proc is not None else None

    def _start(self) -> None:
        if self.broken is not None:
            raise WorkerError(self.broken)
        env = dict(os.environ, RUST_BACKTRACE="0", RUST_LIB_BACKTRACE="0", GOTRACEBACK="none")
        # the worker's stdin and stdout are pipes: the shared page must be on a higher
        # descriptor (the file got 0, 1 or 2 when the engine was started with them closed)
        state_fd = fcntl.fcntl(self._state_file.fileno(), fcntl.F_DUPFD_CLOEXEC, 3)
        args = [self.engine, str(state_fd), repr(self.budget_ms), str(self.memory_mb), str(os.getpid())]
        self._state[0] = STATE_IDLE
        # the engine's own import path: the worker runs the same pytracee (a wheel, a checkout ...)
        bootstrap = f"import sys; sys.path[:0] = {sys.path!r}; from {_WORKER} import main; raise SystemExit(main())"
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", bootstrap, *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                pass_fds=(state_fd,),
                start_new_session=True,  # the terminal's Ctrl-C is for the engine, which kills the worker itself
                env=env,
                bufsize=0,
            )
        finally:
            os.close(state_fd)  # the child has its copy
        assert proc.stdin is not None and proc.stdout is not None  # noqa: S101 - both are PIPEs
        self._proc = proc
        self._to_worker = proc.stdin.fileno()
        self._reader = FrameReader(proc.stdout.fileno())
        self._poller = select.poll()
        self._poller.register(proc.stdout.fileno(), select.POLLIN)
        try:
            kind, _ = self._receive(STARTUP_TIMEOUT_S, probe=False)
            if kind != READY:
                raise Died(f"the Rego worker did not start (it answered with frame {kind})")
            for namespace, method, logged in list(self._log):
                if namespace not in self._released:
                    self._call_now(method, (namespace, *logged), LOAD_TIMEOUT_S)
        except RuleFileError as exc:  # a file that loaded before no longer does: nothing is reliable now
            self.kill()
            raise Died(f"the Rego worker could not load the rules again: {exc}") from None
        except BaseException:
            self.kill()
            raise

    def kill(self) -> None:
        """Stop the worker now (it is restarted on the next use)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.kill()
        except OSError:
            pass
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not wait
            pass
        self._reader = None
        self.cache = None

    def detach(self) -> None:
        """In a forked child: let go of the parent's worker without stopping it.

        The child's copies of the pipes are closed and it gets its own shared
        state page; its own worker starts, with the same rules, on first use.
        """
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
            proc.returncode = 0  # not ours to wait for
        self._reader = None
        self.cache = None
        self._poller = select.poll()
        self._state_file = tempfile.TemporaryFile(prefix="pytracee-rego-state-")  # noqa: SIM115 - kept for the mapping
        self._state_file.truncate(mmap.PAGESIZE)
        self._state_map = mmap.mmap(self._state_file.fileno(), mmap.PAGESIZE)
        self._state = memoryview(self._state_map).cast("i")

    def _ensure(self) -> None:
        if self._proc is None:
            self._start()
        if self._released:
            self._flush_released()

    def _flush_released(self) -> None:
        released, self._released = self._released, []
        gone = set(released)
        self._log = [entry for entry in self._log if entry[0] not in gone]
        self._call_now("drop", (released,), LOAD_TIMEOUT_S)

    def _describe_death(self) -> str:
        proc = self._proc
        if proc is None:
            return "the Rego worker is gone"
        try:
            status = proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "the Rego worker closed its pipe"
        if status < 0:
            name = signal.Signals(-status).name if -status in signal.Signals._value2member_map_ else str(-status)
            how = f"was killed by {name}"
        else:
            how = f"exited with status {status}"
        memory = ""
        if self.memory_mb and status in (-signal.SIGABRT, -signal.SIGSEGV, 2, 70, 1):
            memory = f", most likely out of memory (--rego-memory-limit {self.memory_mb} MB)"
        return f"the Rego worker {how}{memory}"

    # --- frames -------------------------------------------------------------------------------

    def _receive(self, timeout: float, probe: bool = True) -> tuple[int, bytes]:
        """The next frame, waiting at most ``timeout`` seconds of the worker's own CPU time.

        :raises Stuck: the worker kept the CPU busy past the deadline (it is then killed).
        :raises Died: the worker is gone.
        """
        reader = self._reader
        if reader is None:
            raise Died("the Rego worker is gone")
        poll = self._poller.poll
        deadline = time.monotonic() + timeout
        waited_out = 0

        def wait() -> None:
            nonlocal deadline, waited_out
            while True:
                remaining = deadline - time.monotonic()
                if remaining > 0 and poll(remaining * 1000.0 + 1.0):
                    return
                if remaining > 0:
                    continue
                if not probe or waited_out >= _MAX_STARVED or self._busy():
                    raise Stuck(f"no answer within {timeout:g} s")
                waited_out += 1  # starved by a busy machine: wait again
                deadline = time.monotonic() + timeout

        got = reader.read(wait)
        if got is None:
            raise Died(self._describe_death())
        return got

    def _busy(self) -> bool:
        """Whether the worker keeps a CPU busy (watched for a moment)."""
        before = self._cpu_seconds()
        time.sleep(_PROBE_S)
        after = self._cpu_seconds()
        return before is None or after is None or after - before >= _BUSY_SHARE * _PROBE_S

    def _cpu_seconds(self) -> float | None:
        if self._proc is None:
            return None
        try:
            with open(f"/proc/{self._proc.pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def culprit_state(self) -> int:
        """What the worker was doing when it was last stopped: a rule index or a ``STATE_*``."""
        return int(self._state[0])

    # --- calls --------------------------------------------------------------------------------

    def call(self, namespace: int, method: str, *args: Any, timeout: float = LOAD_TIMEOUT_S) -> Any:
        """Run ``Worker.call_<method>(namespace, *args)`` in the worker; a successful load is remembered.

        :raises RuleFileError: as the worker raised it.
        :raises WorkerError: the worker died, hung (it is then killed) or failed.
        """
        with self.lock:
            try:
                self._ensure()
                result = self._call_now(method, (namespace, *args), timeout)
            except WorkerError as exc:
                self._lost(exc)
                raise
            if method in ("helper", "signature"):
                self._log.append((namespace, method, args))
            return result

    def stats(self) -> dict[str, Any]:
        """The worker's counters (see ``Worker.call_stats``)."""
        with self.lock:
            self._ensure()
            return self._call_now("stats", (), LOAD_TIMEOUT_S)  # type: ignore[no-any-return]

    def _call_now(self, method: str, args: tuple[Any, ...], timeout: float) -> Any:
        try:
            write_all(self._to_worker, frame(CALL, pickle.dumps((method, args))))
            kind, body = self._receive(timeout)
        except OSError as exc:  # the pipe is broken: the worker is gone
            error = Died(self._describe_death() if self._proc is not None else str(exc))
            self.kill()
            raise error from None
        except BaseException:
            self.kill()
            raise
        if kind == RETURN:
            return pickle.loads(body)
        if kind == RAISE:
            what, details = pickle.loads(body)
            if what == "RuleFileError":
                raise RuleFileError(*details)
            raise WorkerError(f"the Rego worker failed: {details}")
        self.kill()
        raise Died(f"the Rego worker answered with frame {kind}")

    def _lost(self, exc: WorkerError) -> None:
        """The worker hung or died (and was killed): count the restart that will follow."""
        if self._proc is not None and not isinstance(exc, (Stuck, Died)):
            return  # it answered with an error: still alive
        self.kill()
        self.restarts += 1
        if self.restarts > MAX_WORKER_RESTARTS:
            self.broken = (
                f"the Rego worker was stopped or died {self.restarts} times (last: {exc}); "
                f"every Rego signature is disabled for this run"
            )

    # --- evaluation ---------------------------------------------------------------------------

    def evaluate(self, prefix: bytes, payload: bytes) -> bytes:
        """One :data:`~.protocol.EVAL` round trip; the :data:`~.protocol.RESULT` body.

        :raises Stuck: over the hard timeout (the worker was killed).
        :raises Died: the worker died or could not be (re)started.
        """
        with self.lock:
            try:
                self._ensure()
                try:
                    write_all(self._to_worker, frame(EVAL, prefix + payload))
                    kind, body = self._receive(self.hard_timeout)
                except OSError as exc:
                    raise Died(self._describe_death() if self._proc is not None else str(exc)) from None
                if kind != RESULT:
                    raise Died(f"the Rego worker answered with frame {kind}")
            except WorkerError as exc:
                self._lost(exc if isinstance(exc, (Stuck, Died)) else Died(str(exc)))
                raise exc if isinstance(exc, (Stuck, Died)) else Died(str(exc)) from None
            except BaseException:  # Ctrl-C while the worker is busy: it may be deep in a slow rule
                self.kill()
                raise
            return body


# --- sharing ------------------------------------------------------------------------------------

_clients: dict[tuple[str, float, int], WorkerClient] = {}
_clients_pid = os.getpid()


def shared_client(engine: str, budget_ms: float, memory_mb: int) -> WorkerClient:
    """The process's worker client for these settings (created on first use)."""
    global _clients_pid
    if _clients_pid != os.getpid():  # a forked child: the parent's workers are not ours
        _clients.clear()
        _clients_pid = os.getpid()
    key = (engine, float(budget_ms), int(memory_mb))
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = WorkerClient(engine, budget_ms, memory_mb)
    return client


def _detach_in_child() -> None:
    """After ``os.fork()``: the child's clients start workers of their own (``--workers``)."""
    global _clients_pid
    if _clients_pid != os.getpid():
        for client in _clients.values():
            client.detach()
        _clients_pid = os.getpid()


os.register_at_fork(after_in_child=_detach_in_child)


@atexit.register
def _stop_workers() -> None:
    if _clients_pid == os.getpid():
        for client in _clients.values():
            client.kill()
