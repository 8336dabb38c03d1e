"""The simulated node going about its business: the benign activity of the workload.

:meth:`Simulation.benign` draws one burst of ordinary activity by weight: pods
reading their files, host daemons polling ``/proc`` and ``/sys``, programs
reading configuration, temp files, logs and database pages written, programs
started by the logged-in user, cron, the kubelet and exec probes (``execve``,
``sched_process_exec`` and the dynamic loader's library loads), and
connections to DNS, databases, the API server and unix sockets. It has near
misses on purpose: ``/etc/sudoers`` read by sudo, ``/var/run/docker.sock`` used
from the host, shells started by cron and by exec probes, ``/proc/<pid>/stat``
reads. The building blocks (:meth:`Simulation.open_file`,
:meth:`Simulation.exec_child`) serve the attacks in :mod:`attacks` too.

:meth:`Simulation.heavy` draws the bursts of the signature-heavy stream
(:data:`HEAVY_MIX`): the same file accesses, program starts and connections,
plus files renamed into place, files written from their start (``magic_write``)
and debugging sessions (``ptrace``), each drawn for the event furthest below its
share; near misses again: ldconfig's ``/etc/ld.so.cache~`` rename, ELF files
written on the host outside hidden paths, non-ELF first writes in hidden paths
and containers, tracers that seize, attach and peek but never ``TRACEME`` or
``POKE``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from machine import BASE_TIMESTAMP, SOCK_DGRAM, SOCK_STREAM, Container, Proc, stable_hash
from pytracee.engine.parsers import O_RDONLY, O_RDWR, O_WRONLY, ptrace_request
from tracer import (
    MAP_DENYWRITE,
    MAP_PRIVATE,
    O_APPEND,
    O_CLOEXEC,
    O_CREAT,
    O_DIRECTORY,
    O_EXCL,
    O_NOFOLLOW,
    O_NONBLOCK,
    O_TRUNC,
    PROT_EXEC,
    PROT_READ,
    S_IFCHR,
    S_IFIFO,
    TracedMachine,
    inet,
    unix,
)

#: The node's machine ID (/etc/machine-id), which names its journal directory.
MACHINE_ID = "3f2a9c1e7b5d4f60a8e2c4b6d8f0a1c3"
#: The environment cron gives its jobs.
CRON_ENV = ["HOME=/root", "LOGNAME=root", "PATH=/usr/bin:/bin", "SHELL=/bin/sh"]
#: The shared libraries the dynamic loader maps for each glibc program (libc.so.6 for others).
GLIBC_LIBS = {
    "ls": ["libselinux.so.1", "libc.so.6", "libpcre2-8.so.0"],
    "cat": ["libc.so.6"],
    "grep": ["libpcre2-8.so.0", "libc.so.6"],
    "ps": ["libprocps.so.8", "libc.so.6", "libsystemd.so.0", "liblzma.so.5", "libzstd.so.1", "libgcrypt.so.20"],
    "date": ["libc.so.6"],
    "sed": ["libacl.so.1", "libselinux.so.1", "libc.so.6", "libpcre2-8.so.0"],
    "git": ["libpcre2-8.so.0", "libz.so.1", "libc.so.6"],
    "curl": ["libcurl.so.4", "libz.so.1", "libc.so.6", "libnghttp2.so.14", "libssl.so.3", "libcrypto.so.3"],
    "python3": ["libm.so.6", "libz.so.1", "libexpat.so.1", "libc.so.6"],
    "sh": ["libc.so.6"],
    "run-parts": ["libc.so.6"],
    "iptables-save": ["libip4tc.so.2", "libxtables.so.12", "libc.so.6"],
    "du": ["libc.so.6"],
    "systemctl": ["libsystemd-shared-249.so", "libc.so.6", "libcap.so.2", "libacl.so.1"],
    "sudo": ["libaudit.so.1", "libselinux.so.1", "libc.so.6", "libcap-ng.so.0"],
}
#: (comm, executable, argv) of programs the logged-in user runs.
USER_COMMANDS = [
    ("ls", "/usr/bin/ls", ["ls", "--color=auto", "-la"]),
    ("cat", "/usr/bin/cat", ["cat", "/etc/passwd"]),
    ("grep", "/usr/bin/grep", ["grep", "--color=auto", "-r", "TODO", "src/"]),
    ("ps", "/usr/bin/ps", ["ps", "aux"]),
    ("git", "/usr/bin/git", ["git", "status"]),
    ("curl", "/usr/bin/curl", ["curl", "-s", "https://api.github.com/repos/aquasecurity/tracee"]),
    ("python3", "/usr/bin/python3.10", ["python3", "manage.py", "check"]),
    ("date", "/usr/bin/date", ["date", "+%s"]),
    ("sed", "/usr/bin/sed", ["sed", "-n", "1,20p", "notes.txt"]),
    ("sudo", "/usr/bin/sudo", ["sudo", "systemctl", "status", "kubelet"]),
]
#: ... the jobs cron starts ...
CRON_COMMANDS = [
    ("sh", "/usr/bin/dash", ["/bin/sh", "-c", "   cd / && run-parts --report /etc/cron.hourly"]),
    ("run-parts", "/usr/bin/run-parts", ["run-parts", "--report", "/etc/cron.hourly"]),
]
#: ... and the programs the kubelet runs.
KUBELET_COMMANDS = [
    ("iptables-save", "/usr/sbin/xtables-nft-multi", ["iptables-save", "-t", "nat"]),
    (
        "du",
        "/usr/bin/du",
        ["du", "-s", "-B", "1", "/var/lib/kubelet/pods/4b1d7c2e-8f3a-4e5b-9c6d-7e8f9a0b1c2d/volumes"],
    ),
    ("systemctl", "/usr/bin/systemctl", ["systemctl", "is-active", "containerd"]),
]
#: Files the host's programs read after they start.
HOST_CONFIG_FILES = [
    "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/resolv.conf", "/etc/localtime",
    "/etc/ssl/certs/ca-certificates.crt", "/usr/lib/locale/locale-archive", "/usr/share/locale/locale.alias",
    "/usr/share/zoneinfo/UTC", "/etc/host.conf", "/etc/gai.conf", "/usr/lib/os-release",
    "/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt", "/etc/sudoers", "/etc/login.defs",
]  # fmt: skip
#: What host daemons poll.
HOST_PROC_FILES = [
    "/proc/self/stat", "/proc/self/status", "/proc/meminfo", "/proc/stat", "/proc/loadavg", "/proc/self/mountinfo",
    "/proc/cpuinfo", "/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/memory.max", "/proc/uptime",
    "/sys/class/net/eth0/statistics/rx_bytes", "/sys/devices/system/cpu/online", "/proc/pressure/memory",
]  # fmt: skip


class Simulation(TracedMachine):
    """The simulated node with its benign activity, as Tracee sees it.

    :param seed: everything is drawn from ``random.Random(seed)``.
    :param parse_arguments: render arguments as ``option:parse-arguments`` strings.
    :param start: where the clock starts, in nanoseconds since the epoch.
    """

    def __init__(self, seed: int = 1, *, parse_arguments: bool = False, start: int = BASE_TIMESTAMP) -> None:
        super().__init__(seed, parse_arguments=parse_arguments, start=start)
        #: Debugging sessions going on (signature-heavy stream): (tracer task, traced pid, tool).
        self.debuggers: list[tuple[Proc, int, str]] = []

    def open_file(
        self,
        p: Proc,
        path: str,
        flags: int = O_RDONLY | O_CLOEXEC,
        *,
        reads: int = 1,
        user_path: str | None = None,
        mode: int = 0,
    ) -> list[dict[str, Any]]:
        """openat + security_file_open, some reads, close: one file access as Tracee sees it."""
        fd = p.next_fd
        p.next_fd = 3 + (p.next_fd - 2) % 61
        events = [
            self.security_file_open(p, path, flags, user_path=user_path if user_path is not None else path),
            self.openat(p, user_path if user_path is not None else path, flags, fd, mode),
        ]
        for _ in range(reads):
            count = self.rng.choice((832, 4096, 8192, 65536, 131072))
            events.append(self.read(p, fd, count, self.rng.randrange(0, count + 1)))
        events.append(self.close(p, fd))
        return events

    def load_libraries(self, p: Proc) -> list[dict[str, Any]]:
        """What the dynamic loader does after an exec: ld.so.cache, then each library (read + mmap)."""
        c = p.container
        if c is not None and c.libc == "static":
            return []
        events: list[dict[str, Any]] = []
        if c is not None and c.libc == "musl":
            libs = ["/lib/libz.so.1", "/usr/lib/libssl.so.3", "/usr/lib/libcrypto.so.3"][: 1 + self.rng.randrange(3)]
            for lib in libs:
                events += self._lib(p, lib, lib)
            return events
        events += self.open_file(p, "/etc/ld.so.cache", reads=0)
        for lib in GLIBC_LIBS.get(p.comm, ["libc.so.6"]):
            events += self._lib(p, f"/usr/lib/x86_64-linux-gnu/{lib}", f"/lib/x86_64-linux-gnu/{lib}")
        return events

    def _lib(self, p: Proc, path: str, user_path: str) -> list[dict[str, Any]]:
        fd = p.next_fd
        events = [
            self.security_file_open(p, path, O_RDONLY | O_CLOEXEC, user_path=user_path),
            self.openat(p, user_path, O_RDONLY | O_CLOEXEC, fd),
            self.read(p, fd, 832, 832),
        ]
        if self.rng.random() < 0.3:  # most deployments do not trace mmap; a little of it is noise
            events.append(
                self.mmap(
                    p, fd, 0x1000 * (50 + stable_hash(path) % 600), PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_DENYWRITE
                )
            )
        events.append(self.close(p, fd))
        return events

    def exec_child(
        self,
        parent: Proc,
        comm: str,
        exe: str,
        argv: list[str],
        *,
        cmdpath: str | None = None,
        env: list[str] | None = None,
        uid: int | None = None,
        via_runc: bool = False,
    ) -> tuple[Proc, list[dict[str, Any]]]:
        """fork + execve of ``argv`` by ``parent``: the execve (old comm), sched_process_exec (new comm), libraries."""
        c = parent.container
        pid, host_pid = self.new_pids(c)
        ppid = parent.pid if not via_runc else 0
        child = self._proc(
            pid=pid,
            ppid=ppid,
            comm=parent.comm,
            exe=parent.exe,
            uid=parent.uid if uid is None else uid,
            container=c,
            host_pid=host_pid,
            host_ppid=parent.host_pid,
            parent_entity=parent.entity,
            env=env if env is not None else parent.env,
            cwd=parent.cwd,
            age_ns=self.rng.randrange(80_000, 900_000),
        )
        events = [self.execve(child, cmdpath or exe, argv)]
        prev_comm = child.comm
        child.comm, child.exe = comm[:15], exe
        self.rebase(child)
        stdin = S_IFCHR if parent.comm in ("bash", "sshd") else S_IFIFO
        events.append(self.sched_process_exec(child, cmdpath or exe, argv, prev_comm, stdin))
        events += self.load_libraries(child)
        self.children.append(child)
        if len(self.children) > 24:
            self.children.pop(0)
        return child, events

    def benign(self) -> list[dict[str, Any]]:
        """One burst of ordinary activity, drawn by weight (:data:`BENIGN_ACTIVITIES`)."""
        r = self.rng.random()
        for threshold, _, activity in BENIGN_ACTIVITIES:
            if r < threshold:
                return activity(self)
        raise AssertionError("BENIGN_ACTIVITIES must end at 1.0")

    # --- the benign activities, each one burst ----------------------------------------------

    def _container_reads(self) -> list[dict[str, Any]]:
        """A container serving requests: reads its files."""
        rng = self.rng
        p = rng.choice(self.container_procs)
        c = p.container
        assert c is not None
        return self.open_file(p, rng.choice(c.files), reads=rng.randrange(1, 4))

    def _daemon_polls(self) -> list[dict[str, Any]]:
        """Host daemons polling /proc and /sys."""
        rng = self.rng
        p = rng.choice(
            (self.daemons["node_exporter"], self.daemons["oomd"], self.daemons["kubelet"], self.daemons["containerd"])
        )
        path = rng.choice(HOST_PROC_FILES)
        if p.comm == "node_exporter" and rng.random() < 0.5:
            path = f"/proc/{rng.choice(self.host_daemons).pid}/stat"
        return self.open_file(p, path, reads=1)

    def _config_reads(self) -> list[dict[str, Any]]:
        """Recently started programs reading configuration."""
        rng = self.rng
        p = rng.choice(self.children) if self.children else self.daemons["bash"]
        if p.container is not None:
            return self.open_file(p, rng.choice(p.container.files))
        return self.open_file(p, rng.choice(HOST_CONFIG_FILES), reads=rng.randrange(1, 3))

    def _writes(self) -> list[dict[str, Any]]:
        """Writes: temp files, logs, database pages."""
        rng = self.rng
        if rng.random() < 0.5:
            p = rng.choice([q for q in self.container_procs if q.container and q.container.writes])
            assert p.container is not None
            path = rng.choice(p.container.writes)
            flags = O_WRONLY | O_CREAT | O_APPEND if path.endswith(".log") else O_RDWR | O_CREAT
            return self.open_file(p, path, flags | O_CLOEXEC, reads=0, mode=0o644)
        p = rng.choice((self.daemons["bash"], self.daemons["journald"], self.daemons["kubelet"]))
        if p is self.daemons["journald"]:
            path = f"/var/log/journal/{MACHINE_ID}/system@{self._hex(32)}-0000000000{rng.randrange(10**6):06d}.journal"
            return self.open_file(p, path, O_RDWR | O_CREAT | O_NONBLOCK | O_CLOEXEC, reads=0, mode=0o640)
        path = (
            f"/tmp/tmp{self._hex(8)}"
            if p is self.daemons["bash"]
            else f"/var/lib/kubelet/pods/{self._uuid()}/etc-hosts"
        )
        return self.open_file(p, path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, reads=0, mode=0o600)

    def _user_file_reads(self) -> list[dict[str, Any]]:
        """Directory listings and /usr/share reads by the user's tools."""
        rng = self.rng
        p = rng.choice(self.children) if self.children else self.daemons["bash"]
        if p.container is not None:
            return self.open_file(p, rng.choice(p.container.files))
        path = rng.choice(("/usr/share/zoneinfo/Europe/Berlin", "/usr/share/locale/en_US/LC_MESSAGES/coreutils.mo",
                           "/usr/share/i18n/locales/en_US", "/usr/share/misc/magic.mgc", "/home/ubuntu/.gitconfig"))  # fmt: skip
        if rng.random() < 0.3:
            return self.open_file(p, "/home/ubuntu/project", O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_DIRECTORY, reads=2)
        return self.open_file(p, path)

    def _benign_exec(self) -> list[dict[str, Any]]:
        rng = self.rng
        r = rng.random()
        if r < 0.45:
            comm, exe, argv = rng.choice(USER_COMMANDS)
            _, events = self.exec_child(self.daemons["bash"], comm, exe, list(argv))
        elif r < 0.6:
            comm, exe, argv = rng.choice(CRON_COMMANDS)
            _, events = self.exec_child(
                self.daemons["cron"], comm, exe, list(argv), env=CRON_ENV, cmdpath="/bin/sh" if comm == "sh" else None
            )
        elif r < 0.8:
            comm, exe, argv = rng.choice(KUBELET_COMMANDS)
            _, events = self.exec_child(self.daemons["kubelet"], comm, exe, list(argv))
        else:
            c = rng.choice([c for c in self.containers if c.probe])
            assert c.probe is not None
            comm, exe, argv = c.probe
            _, events = self.exec_child(self._runc(c), comm, exe, list(argv), via_runc=True)
        return events

    def _runc(self, c: Container) -> Proc:
        """The runc task that execs a program into container ``c`` (an exec probe, ``kubectl exec``)."""
        return self._proc(pid=0, ppid=0, comm="runc:[2:INIT]", exe="/usr/bin/runc", uid=0, container=c,
                          host_pid=self._next_host_pid, host_ppid=1089)  # fmt: skip

    def _benign_connect(self) -> list[dict[str, Any]]:
        rng = self.rng
        r = rng.random()
        if r < 0.55:
            candidates = [q for q in self.container_procs if q.container and q.container.peers]
            p = rng.choice(candidates)
            assert p.container is not None
            ip, port, sock_type = rng.choice(p.container.peers)
            addr = inet(ip, port)
        elif r < 0.7:
            p = rng.choice((self.daemons["kubelet"], self.daemons["containerd"]))
            ip, port, sock_type = rng.choice(
                (("10.0.1.10", 6443, SOCK_STREAM), ("169.254.169.254", 80, SOCK_STREAM), ("127.0.0.53", 53, SOCK_DGRAM))
            )
            addr = inet(ip, port)
        elif r < 0.85:
            # the docker CLI and dockerd's clients on the host: docker.sock from the host is normal
            p = rng.choice((self.daemons["kubelet"], self.daemons["bash"]))
            addr, sock_type = (
                unix("/run/containerd/containerd.sock" if p is self.daemons["kubelet"] else "/var/run/docker.sock"),
                SOCK_STREAM,
            )
        else:
            p = rng.choice(self.children) if self.children else self.daemons["bash"]
            if p.container is not None:
                addr, sock_type = inet("10.96.0.10", 53), SOCK_DGRAM
            else:
                addr, sock_type = (
                    (unix("/run/systemd/resolve/io.systemd.Resolve"), SOCK_STREAM)
                    if rng.random() < 0.5
                    else (inet("2606:4700:4700::1111", 443), SOCK_STREAM)
                )
        fd = p.next_fd
        p.next_fd = 3 + (p.next_fd - 2) % 61
        ret = -115 if sock_type == SOCK_STREAM and addr["sa_family"] != "AF_UNIX" and rng.random() < 0.6 else 0
        return [
            self.security_socket_connect(p, fd, sock_type, addr),
            self.connect(p, fd, addr, ret),
            self.close(p, fd),
        ][: 2 + (rng.random() < 0.5)]

    # --- the signature-heavy stream ------------------------------------------------------------

    def heavy(self, produced: Mapping[str, int]) -> list[dict[str, Any]]:
        """One burst of the signature-heavy stream's activity.

        It is drawn for an event of :data:`HEAVY_MIX`, with the weight of how far that
        event is below its share of ``produced`` (the events of the mix kept so far, by
        name), so the stream converges to the mix whatever else each burst brings along
        (an exec brings the loader's ``security_file_open`` events). The burst holds
        everything Tracee would record; the caller keeps the events it traces.
        """
        total = sum(produced.get(name, 0) for name in HEAVY_MIX)
        deficits = [max(share * total - produced.get(name, 0), 0.0) for name, share in HEAVY_MIX.items()]
        weights = deficits if sum(deficits) > 0 else list(HEAVY_MIX.values())
        kind = self.rng.choices(list(HEAVY_MIX), weights)[0]
        return HEAVY_ACTIVITIES[kind](self)

    def _file_access(self) -> list[dict[str, Any]]:
        """One of the file accesses of :meth:`benign`, with the same relative weights."""
        activities, weights = zip(*FILE_ACTIVITIES)
        return self.rng.choices(activities, weights)[0](self)

    def _in_container(self, name: str) -> Proc:
        """One of the main tasks of the container called ``name``."""
        return self.rng.choice(
            [q for q in self.container_procs if q.container is not None and q.container.name == name]
        )

    def _renames(self) -> list[dict[str, Any]]:
        """Files renamed into place: atomic writes, log and database file rotation, commits."""
        rng = self.rng
        r = rng.random()
        rename = self.security_inode_rename
        if r < 0.30:  # the kubelet's atomic writer swapping a pod's projected volume (token, configmap)
            c = rng.choice([c for c in self.containers if c.pod])
            volume = (
                f"/var/lib/kubelet/pods/{c.pod_uid}/volumes/kubernetes.io~projected/kube-api-access-{c.pod_uid[:5]}"
            )
            return [rename(self.daemons["kubelet"], f"{volume}/..data_tmp", f"{volume}/..data", "renameat")]
        if r < 0.45:  # PostgreSQL recycling a WAL segment
            segment = rng.randrange(0x03, 0x40)
            wal = "/var/lib/postgresql/data/pg_wal/0000000100000000"
            return [rename(self._in_container("postgres"), f"{wal}{segment:08X}", f"{wal}{segment + 8:08X}")]
        if r < 0.55:  # Redis finishing a background save
            p = self._in_container("redis")
            return [rename(p, f"/data/temp-{p.pid + rng.randrange(1, 4000)}.rdb", "/data/dump.rdb")]
        if r < 0.70:  # the API's session files and byte-code cache, written to a temp name first
            p = self._in_container("api")
            if rng.random() < 0.6:
                session = f"/app/.cache/sessions/{self._hex(8)}.json"
                return [rename(p, f"{session}.tmp", session)]
            pyc = rng.choice(
                ("flask/__pycache__/app", "sqlalchemy/engine/__pycache__/base", "jinja2/__pycache__/runtime")
            )
            pyc = f"/usr/local/lib/python3.12/site-packages/{pyc}.cpython-312.pyc"
            return [rename(p, f"{pyc}.{rng.randrange(10**14, 10**15)}", pyc)]
        if r < 0.80:  # containerd committing a pulled blob
            digest = self._hex(64)
            content = "/var/lib/containerd/io.containerd.content.v1.content"
            return [
                rename(
                    self.daemons["containerd"],
                    f"{content}/ingest/{self._hex(64)}/data",
                    f"{content}/blobs/sha256/{digest}",
                    "renameat",
                )
            ]
        if r < 0.88:  # journald archiving the active journal
            journal = f"/var/log/journal/{MACHINE_ID}"
            archived = f"{journal}/system@{self._hex(32)}-{rng.randrange(1 << 40):016x}-{self.now // 1000:016x}.journal"
            return [rename(self.daemons["journald"], f"{journal}/system.journal", archived, "renameat")]
        if r < 0.95:  # the user's git committing its index
            git, events = self.exec_child(self.daemons["bash"], "git", "/usr/bin/git", ["git", "commit", "-qam", "wip"])
            return [*events, rename(git, "/home/ubuntu/project/.git/index.lock", "/home/ubuntu/project/.git/index")]
        # ldconfig after a package upgrade: /etc/ld.so.cache~ written, then renamed onto ld.so.cache
        # (a near miss of TRC-1012, whose data filter lets every path with "/ld" through)
        ldconfig, events = self.exec_child(self.daemons["bash"], "ldconfig", "/usr/sbin/ldconfig", ["ldconfig"], uid=0)
        events += self._write_new(
            ldconfig, "/etc/ld.so.cache~", b"glibc-ld.so.cache1.1", O_WRONLY | O_CREAT | O_TRUNC, 0o644
        )
        return [*events, rename(ldconfig, "/etc/ld.so.cache~", "/etc/ld.so.cache")]

    def _write_new(self, p: Proc, path: str, data: bytes, flags: int, mode: int) -> list[dict[str, Any]]:
        """A file opened for writing and its first bytes written (``magic_write``)."""
        events = self.open_file(p, path, flags | O_CLOEXEC, reads=0, mode=mode)
        events.insert(-1, self.magic_write(p, path, data[:20]))  # before the close
        return events

    def _first_writes(self) -> list[dict[str, Any]]:
        """Files written from their start: logs, database files, caches, unpacked images, builds."""
        rng = self.rng
        r = rng.random()
        create = O_WRONLY | O_CREAT | O_TRUNC
        if r < 0.30:  # the pods' logs, database and cache files, new or rotated
            p = rng.choice([q for q in self.container_procs if q.container and q.container.writes])
            assert p.container is not None
            path = rng.choice(p.container.writes)
            flags = O_WRONLY | O_CREAT | O_APPEND if path.endswith(".log") else O_RDWR | O_CREAT
            return self._write_new(p, path, first_bytes(path), flags, 0o644)
        if r < 0.45:  # the API's byte-code cache (not an ELF: TRC-1022 looks and lets it go)
            p = self._in_container("api")
            pyc = rng.choice(
                ("flask/__pycache__/app", "sqlalchemy/engine/__pycache__/base", "jinja2/__pycache__/runtime")
            )
            return self._write_new(p, f"/usr/local/lib/python3.12/site-packages/{pyc}.cpython-312.pyc.{rng.randrange(10**14, 10**15)}",
                                   PYC_HEADER, create, 0o644)  # fmt: skip
        if r < 0.60:  # host daemons: a pod's hosts file, a new journal
            if rng.random() < 0.5:
                return self._write_new(self.daemons["kubelet"], f"/var/lib/kubelet/pods/{self._uuid()}/etc-hosts",
                                       b"# Kubernetes-managed hosts file.\n", create, 0o644)  # fmt: skip
            path = f"/var/log/journal/{MACHINE_ID}/system.journal"
            return self._write_new(
                self.daemons["journald"],
                path,
                b"LPKSHHRH\x00\x00\x00\x00\x04\x00\x00\x00" + bytes(8),
                O_RDWR | O_CREAT,
                0o640,
            )
        if r < 0.75:  # containerd unpacking an image layer: executables, on the host and not hidden
            snapshot = (
                f"/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/{rng.randrange(40, 900)}/fs"
            )
            path = snapshot + rng.choice(
                ("/usr/local/bin/redis-server", "/usr/bin/curl", "/bin/busybox", "/usr/lib/libssl.so.3", "/coredns")
            )
            return self._write_new(self.daemons["containerd"], path, ELF_HEADER, create | O_EXCL, 0o755)
        if r < 0.90:  # pip's HTTP cache under ~/.cache: a hidden path that is no executable (a near miss of TRC-1015)
            h = self._hex(56)
            path = f"/home/ubuntu/.cache/pip/http-v2/{h[0]}/{h[1]}/{h[2]}/{h[3]}/{h[4]}/{h}"
            return self._write_new(self.daemons["bash"], path, b"\x00\x00\x00\x02" + b"cc=max-age=600", create, 0o600)
        # the user linking a program in the project's build directory (an ELF, on the host, not hidden)
        ld, events = self.exec_child(
            self.daemons["bash"],
            "ld",
            "/usr/bin/x86_64-linux-gnu-ld.bfd",
            ["ld", "-o", "build/app", "build/main.o", "-lc"],
        )
        return [*events, *self._write_new(ld, "/home/ubuntu/project/build/app", ELF_HEADER, create, 0o755)]

    def _debugging(self) -> list[dict[str, Any]]:
        """ptrace(2) calls of the debugging sessions going on: strace, gdb, py-spy.

        Tracers attach with ``PTRACE_SEIZE`` or ``PTRACE_ATTACH`` and never use
        ``PTRACE_TRACEME`` or the ``POKE`` requests, which TRC-102 and TRC-103 report.
        """
        rng = self.rng
        events: list[dict[str, Any]] = []
        if not self.debuggers or (len(self.debuggers) < 3 and rng.random() < 0.02):
            events += self._start_debugger()
        session = rng.choice(self.debuggers)
        tracer, target, tool = session
        stack = 0x7FFD_0000_0000 + rng.randrange(1 << 28) * 16
        if tool == "strace":  # each traced syscall: stopped at entry and exit, its info read each time
            for _ in range(rng.randrange(1, 4) * 2):
                events += [
                    self.ptrace(tracer, PTRACE_SYSCALL, target),
                    self.ptrace(tracer, PTRACE_GET_SYSCALL_INFO, target, 88, stack),
                ]
        elif tool == "gdb":  # registers and memory read at a stop, then continued
            events.append(self.ptrace(tracer, PTRACE_GETREGS, target, 0, stack))
            code = 0x55D4_A1B2_3000 + rng.randrange(1 << 16) * 8
            events += [
                self.ptrace(tracer, rng.choice((PTRACE_PEEKTEXT, PTRACE_PEEKDATA)), target, code + 8 * i, stack + 8)
                for i in range(rng.randrange(1, 6))
            ]
            events.append(self.ptrace(tracer, PTRACE_CONT, target))
        else:  # py-spy sampling a Python process: each thread seized, interrupted, read, released
            for tid in (target, target + 3):
                events += [
                    self.ptrace(tracer, PTRACE_SEIZE, tid),
                    self.ptrace(tracer, PTRACE_INTERRUPT, tid),
                    self.ptrace(tracer, PTRACE_DETACH, tid),
                ]
        if rng.random() < 0.01:  # the session ends
            if tool != "py-spy":
                events.append(self.ptrace(tracer, PTRACE_DETACH, target))
            self.debuggers.remove(session)
        return events

    def _start_debugger(self) -> list[dict[str, Any]]:
        rng = self.rng
        r = rng.random()
        if r < 0.5:  # sudo strace -f -p <daemon>
            target = rng.choice((self.daemons["kubelet"], self.daemons["containerd"], self.daemons["node_exporter"]))
            argv = ["strace", "-f", "-tt", "-p", str(target.host_pid)]
            tracer, events = self.exec_child(self.daemons["bash"], "strace", "/usr/bin/strace", argv, uid=0)
            options = 0x3F | 0x100000  # PTRACE_O_TRACESYSGOOD ... TRACEEXEC, EXITKILL
            events += [
                self.ptrace(tracer, PTRACE_SEIZE, target.host_pid, 0, options),
                self.ptrace(tracer, PTRACE_INTERRUPT, target.host_pid),
            ]
            self.debuggers.append((tracer, target.host_pid, "strace"))
        elif r < 0.75:  # sudo gdb -p <containerd>
            target = self.daemons["containerd"]
            tracer, events = self.exec_child(
                self.daemons["bash"], "gdb", "/usr/bin/gdb", ["gdb", "-q", "-p", str(target.host_pid)], uid=0
            )
            events.append(self.ptrace(tracer, PTRACE_ATTACH, target.host_pid))
            self.debuggers.append((tracer, target.host_pid, "gdb"))
        else:  # kubectl exec api -- py-spy dump --pid 1
            c = next(c for c in self.containers if c.name == "api")
            tracer, events = self.exec_child(
                self._runc(c), "py-spy", "/usr/local/bin/py-spy", ["py-spy", "dump", "--pid", "1"], via_runc=True
            )
            self.debuggers.append((tracer, 1, "py-spy"))
        return events


#: The benign activities of :meth:`Simulation.benign`: (cumulative weight, what it records, activity).
BENIGN_ACTIVITIES: tuple[tuple[float, str, Callable[[Simulation], list[dict[str, Any]]]], ...] = (
    (0.30, "file", Simulation._container_reads),
    (0.42, "file", Simulation._daemon_polls),
    (0.54, "file", Simulation._config_reads),
    (0.62, "file", Simulation._writes),
    (0.82, "exec", Simulation._benign_exec),
    (0.92, "connect", Simulation._benign_connect),
    (1.00, "file", Simulation._user_file_reads),
)
#: The file accesses among them, with their weights.
FILE_ACTIVITIES: list[tuple[Callable[[Simulation], list[dict[str, Any]]], float]] = [
    (activity, threshold - previous)
    for (previous, _, _), (threshold, kind, activity) in zip(((0.0, "", None), *BENIGN_ACTIVITIES), BENIGN_ACTIVITIES)
    if kind == "file"
]

#: The signature-heavy stream: the share of each event in it. It is what
#: ``tracee -e $(tracee-rules --list-events)`` records for Tracee's own signatures, all of
#: which select these events (``execve`` is selected only by pytracee's PYT-1).
HEAVY_MIX: dict[str, float] = {
    "security_file_open": 0.55,
    "sched_process_exec": 0.15,
    "security_socket_connect": 0.12,
    "security_inode_rename": 0.08,
    "magic_write": 0.05,
    "ptrace": 0.05,
}
#: What :meth:`Simulation.heavy` does to record each event of :data:`HEAVY_MIX`.
HEAVY_ACTIVITIES: dict[str, Callable[[Simulation], list[dict[str, Any]]]] = {
    "security_file_open": Simulation._file_access,
    "sched_process_exec": Simulation._benign_exec,
    "security_socket_connect": Simulation._benign_connect,
    "security_inode_rename": Simulation._renames,
    "magic_write": Simulation._first_writes,
    "ptrace": Simulation._debugging,
}

PTRACE_PEEKTEXT, PTRACE_PEEKDATA, PTRACE_CONT, PTRACE_GETREGS, PTRACE_ATTACH, PTRACE_DETACH, PTRACE_SYSCALL = (
    ptrace_request(name)
    for name in (
        "PTRACE_PEEKTEXT",
        "PTRACE_PEEKDATA",
        "PTRACE_CONT",
        "PTRACE_GETREGS",
        "PTRACE_ATTACH",
        "PTRACE_DETACH",
        "PTRACE_SYSCALL",
    )
)
PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_GET_SYSCALL_INFO = (
    ptrace_request(name) for name in ("PTRACE_SEIZE", "PTRACE_INTERRUPT", "PTRACE_GET_SYSCALL_INFO")
)
#: The first 20 bytes of an x86_64 ELF executable, as magic_write captures them.
ELF_HEADER = bytes.fromhex("7f454c4602010100000000000000000003003e00")
#: The first bytes of a CPython 3.12 .pyc file (magic number, flags, mtime, size).
PYC_HEADER = bytes.fromhex("cb0d0d0a00000000") + b"\x9a\x1c^f" + b"\x8f\x12\x00\x00"


def first_bytes(path: str) -> bytes:
    """The first 20 bytes written to one of the pods' files (:attr:`machine.Container.writes`)."""
    if path.endswith(".log"):
        return (
            b"+ make -j4 all\nmkdir -p out" if "build" in path else b'10.244.1.1 - - [03/Jun/2024:16:00:01 +0000] "GET'
        )[:20]
    if "/pg_wal/" in path:
        return bytes.fromhex("13d10200010000000000000003000000") + bytes(4)  # XLOG page magic 0xD113 (PostgreSQL 16)
    if "/base/" in path:
        return bytes.fromhex("00000000a8c1ce01000004002001c01f00200420")  # a heap page header
    if path.endswith(".rdb"):
        return b"REDIS0011\xfa\tredis-ver"
    if path.endswith(".json"):
        return b'{"user_id": 4182, "cart": ['
    if "client_temp" in path:
        return b"POST /api/v1/orders HTTP/1.1"[:20]
    return b"report generated at "
