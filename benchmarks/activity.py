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
"""

from __future__ import annotations

from typing import Any

from machine import SOCK_DGRAM, SOCK_STREAM, Proc, stable_hash
from pytracee.engine.parsers import O_RDONLY, O_RDWR, O_WRONLY
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
    PROT_EXEC,
    PROT_READ,
    S_IFCHR,
    S_IFIFO,
    TracedMachine,
    inet,
    unix,
)

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
    ("du", "/usr/bin/du", ["du", "-s", "-B", "1", "/var/lib/kubelet/pods/4b1d7c2e-8f3a-4e5b-9c6d-7e8f9a0b1c2d/volumes"]),
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

    def open_file(self, p: Proc, path: str, flags: int = O_RDONLY | O_CLOEXEC, *, reads: int = 1, user_path: str | None = None, mode: int = 0) -> list[dict[str, Any]]:
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
            events.append(self.mmap(p, fd, 0x1000 * (50 + stable_hash(path) % 600), PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_DENYWRITE))
        events.append(self.close(p, fd))
        return events

    def exec_child(self, parent: Proc, comm: str, exe: str, argv: list[str], *, cmdpath: str | None = None, env: list[str] | None = None, uid: int | None = None, via_runc: bool = False) -> tuple[Proc, list[dict[str, Any]]]:
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
        """One burst of ordinary activity, drawn by weight."""
        r = self.rng.random()
        rng = self.rng
        if r < 0.30:  # a container serving requests: reads its files
            p = rng.choice(self.container_procs)
            c = p.container
            assert c is not None
            return self.open_file(p, rng.choice(c.files), reads=rng.randrange(1, 4))
        if r < 0.42:  # host daemons polling /proc and /sys
            p = rng.choice((self.daemons["node_exporter"], self.daemons["oomd"], self.daemons["kubelet"], self.daemons["containerd"]))
            path = rng.choice(HOST_PROC_FILES)
            if p.comm == "node_exporter" and rng.random() < 0.5:
                path = f"/proc/{rng.choice(self.host_daemons).pid}/stat"
            return self.open_file(p, path, reads=1)
        if r < 0.54:  # recently started programs reading configuration
            p = rng.choice(self.children) if self.children else self.daemons["bash"]
            if p.container is not None:
                return self.open_file(p, rng.choice(p.container.files))
            return self.open_file(p, rng.choice(HOST_CONFIG_FILES), reads=rng.randrange(1, 3))
        if r < 0.62:  # writes: temp files, logs, database pages
            if rng.random() < 0.5:
                p = rng.choice([q for q in self.container_procs if q.container and q.container.writes])
                assert p.container is not None
                path = rng.choice(p.container.writes)
                flags = O_WRONLY | O_CREAT | O_APPEND if path.endswith(".log") else O_RDWR | O_CREAT
                return self.open_file(p, path, flags | O_CLOEXEC, reads=0, mode=0o644)
            p = rng.choice((self.daemons["bash"], self.daemons["journald"], self.daemons["kubelet"]))
            if p is self.daemons["journald"]:
                path = f"/var/log/journal/3f2a9c1e7b5d4f60a8e2c4b6d8f0a1c3/system@{self._hex(32)}-0000000000{rng.randrange(10**6):06d}.journal"
                return self.open_file(p, path, O_RDWR | O_CREAT | O_NONBLOCK | O_CLOEXEC, reads=0, mode=0o640)
            path = f"/tmp/tmp{self._hex(8)}" if p is self.daemons["bash"] else f"/var/lib/kubelet/pods/{self._uuid()}/etc-hosts"
            return self.open_file(p, path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, reads=0, mode=0o600)
        if r < 0.82:  # programs started: by the user, cron, kubelet, or exec probes in containers
            return self._benign_exec()
        if r < 0.92:  # network
            return self._benign_connect()
        # directory listings and /usr/share reads by the user's tools
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
            _, events = self.exec_child(self.daemons["cron"], comm, exe, list(argv), env=CRON_ENV, cmdpath="/bin/sh" if comm == "sh" else None)
        elif r < 0.8:
            comm, exe, argv = rng.choice(KUBELET_COMMANDS)
            _, events = self.exec_child(self.daemons["kubelet"], comm, exe, list(argv))
        else:
            c = rng.choice([c for c in self.containers if c.probe])
            assert c.probe is not None
            comm, exe, argv = c.probe
            runc = self._proc(pid=0, ppid=0, comm="runc:[2:INIT]", exe="/usr/bin/runc", uid=0, container=c,
                              host_pid=self._next_host_pid, host_ppid=1089)  # fmt: skip
            _, events = self.exec_child(runc, comm, exe, list(argv), via_runc=True)
        return events

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
            ip, port, sock_type = rng.choice((("10.0.1.10", 6443, SOCK_STREAM), ("169.254.169.254", 80, SOCK_STREAM), ("127.0.0.53", 53, SOCK_DGRAM)))
            addr = inet(ip, port)
        elif r < 0.85:
            # the docker CLI and dockerd's clients on the host: docker.sock from the host is normal
            p = rng.choice((self.daemons["kubelet"], self.daemons["bash"]))
            addr, sock_type = unix("/run/containerd/containerd.sock" if p is self.daemons["kubelet"] else "/var/run/docker.sock"), SOCK_STREAM
        else:
            p = rng.choice(self.children) if self.children else self.daemons["bash"]
            if p.container is not None:
                addr, sock_type = inet("10.96.0.10", 53), SOCK_DGRAM
            else:
                addr, sock_type = (unix("/run/systemd/resolve/io.systemd.Resolve"), SOCK_STREAM) if rng.random() < 0.5 else (inet("2606:4700:4700::1111", 443), SOCK_STREAM)
        fd = p.next_fd
        p.next_fd = 3 + (p.next_fd - 2) % 61
        ret = -115 if sock_type == SOCK_STREAM and addr["sa_family"] != "AF_UNIX" and rng.random() < 0.6 else 0
        return [self.security_socket_connect(p, fd, sock_type, addr), self.connect(p, fd, addr, ret), self.close(p, fd)][: 2 + (rng.random() < 0.5)]
