"""The executable hasher on real files: once per (dev, inode, ctime), never another file's hash, bounded."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pytracee.engine.context.exehash import ExecHasher, PendingHash


def key_of(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    kernel_dev = (os.major(st.st_dev) << 20) | os.minor(st.st_dev)  # as the kernel's s_dev
    return kernel_dev, st.st_ino, st.st_ctime_ns


def resolve(answer: str | PendingHash | None) -> str | None:
    return answer.wait(10) if isinstance(answer, PendingHash) else answer


def test_hash_is_the_files_sha256_and_computed_once(tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(os.urandom(3 << 20))
    hasher = ExecHasher()
    try:
        first = hasher.request(key_of(binary), os.getpid(), str(binary))
        assert resolve(first) == hashlib.sha256(binary.read_bytes()).hexdigest()
        again = hasher.request(key_of(binary), os.getpid(), str(binary))
        assert again == resolve(first)  # a string at once: from the cache
        assert hasher.counts["hashed"] == 1 and hasher.counts["cached"] == 1
    finally:
        hasher.close()


def test_a_file_changed_since_the_exec_gets_no_hash(tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF one")
    key = key_of(binary)
    binary.write_bytes(b"\x7fELF two, written after the exec")  # same inode, new ctime
    os.utime(binary, ns=(1, 1))  # makes sure ctime moves even on coarse clocks
    hasher = ExecHasher()
    try:
        assert resolve(hasher.request(key, os.getpid(), str(binary))) is None
        assert hasher.counts["changed or gone"] == 1
        replaced = tmp_path / "other"
        replaced.write_bytes(b"another file")
        os.replace(replaced, binary)  # another inode at the same path
        assert resolve(hasher.request(key, os.getpid(), str(binary))) is None
    finally:
        hasher.close()


def test_files_over_the_size_bound_are_not_hashed(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"\0" * (2 << 20))
    hasher = ExecHasher(max_size=1 << 20)
    try:
        assert resolve(hasher.request(key_of(big), os.getpid(), str(big))) is None
        assert hasher.counts["too large"] == 1
    finally:
        hasher.close()


def test_tracees_output_option_turns_hashing_on() -> None:
    from pytracee.collector.printers import parse_output_options

    assert parse_output_options(["json", "option:exec-hash"]).exec_hash
    assert parse_output_options(["option:exec-hash=dev-inode"]).exec_hash
    assert not parse_output_options(["json"]).exec_hash


def test_queued_requests_keep_a_bounded_number_of_files_open(tmp_path: Path) -> None:
    import threading

    from pytracee.engine.context.exehash import OPEN_MAX

    binary = tmp_path / "proc" / "4242" / "exe"
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"\x7fELF tool")
    hasher = ExecHasher(proc=str(tmp_path / "proc"))
    go = threading.Event()
    hasher._thread = threading.Thread(target=go.wait, daemon=True)  # a worker that takes nothing yet
    hasher._thread.start()
    before = len(os.listdir("/proc/self/fd"))
    try:
        answers = [hasher.request((0, inode, 0), 4242, str(binary)) for inode in range(1, 301)]
        assert all(isinstance(answer, PendingHash) for answer in answers)  # queued, none refused
        assert len(os.listdir("/proc/self/fd")) - before == OPEN_MAX
    finally:
        go.set()
        hasher.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_hash_still_computed_is_waited_for_once() -> None:
    import threading

    class Counted(threading.Event):
        waits: list[float] = []

        def wait(self, timeout: float | None = None) -> bool:
            self.waits.append(timeout or 0.0)
            return super().wait(0)

    pending = PendingHash()
    pending._done = Counted()
    assert [pending.wait(0.5) for _ in range(3)] == [None, None, None]
    assert Counted.waits == [0.5]  # the later findings do not wait again
    pending._set("ab" * 32)
    assert pending.wait(0.5) == "ab" * 32


def test_an_exec_of_a_hashed_file_shows_signatures_tracees_sha256_argument() -> None:
    """The context adds ``sha256`` to an exec event whose file it hashed before; signatures
    reading ``event.args`` see it even though the context read the arguments first."""
    from pytracee.engine.context.state import ContextSettings, EventContext
    from pytracee.engine.events import Event

    executable = Path(os.readlink(f"/proc/{os.getpid()}/exe"))
    dev, inode, ctime = key_of(executable)

    def exec_event() -> Event:
        args = [
            {"name": "pathname", "type": "const char*", "value": str(executable)},
            {"name": "dev", "type": "dev_t", "value": dev},
            {"name": "inode", "type": "unsigned long", "value": inode},
            {"name": "ctime", "type": "unsigned long", "value": ctime},
        ]
        raw = {"eventName": "sched_process_exec", "hostProcessId": os.getpid(), "processName": "python3", "args": args}
        return Event(raw)

    context = EventContext(ContextSettings(exec_hash=True))
    try:
        first = exec_event()
        context.observe(first)
        assert context.tree is not None
        process = context.tree.find(os.getpid())
        assert process is not None and process.wait_sha256(10) == hashlib.sha256(executable.read_bytes()).hexdigest()
        second = exec_event()
        context.observe(second)
        assert second.args["sha256"] == process.sha256
        assert second.raw["argsNum"] == 5
    finally:
        assert context.hasher is not None
        context.hasher.close()
