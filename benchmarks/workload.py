"""Deterministic generator of realistic Tracee event streams.

Writes ``trace.Event`` JSON lines in the layout ``tracee -o json`` produced up
to v0.24.1 (every context field present, Go key order, ``eventId`` as a
string, v0.24 argument type names), so that replays and benchmarks see what a
real deployment feeds ``tracee-rules``: a Kubernetes node with host daemons, a
logged-in user and a handful of pods, mostly opening, reading and closing
files, executing programs and a little networking. Rarely (about 0.1% of the
events) it injects an attack taken from :data:`ATTACKS`, each of which a
built-in signature must detect; the expected findings are counted as the
stream is written, so a replay can be checked against them.

Arguments are raw values by default (open flags and ptrace requests as
integers), or Tracee's ``--output option:parse-arguments`` strings
(``"O_RDONLY|O_CLOEXEC"``, ``"PTRACE_TRACEME"``) with ``parse_arguments=True``.
The same seed gives byte-identical output.

Command line::

    python benchmarks/workload.py --events 200000 --out /tmp/events.jsonl
    python benchmarks/workload.py --events 1000 --seed 7 --parse-arguments --out events.jsonl.gz
    python benchmarks/workload.py --demo --out examples/events/demo.jsonl
    python benchmarks/workload.py --list-attacks

As a module::

    from workload import write_events, write_demo
    stats = write_events("events.jsonl", 200_000, seed=1)
    stats.expected_findings   # Counter of signature ID -> findings a correct replay produces
"""

from __future__ import annotations

import argparse
import base64
import gzip
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "ATTACKS",
    "DEMO_BENIGN_EVENTS",
    "DEMO_EXPECTED_FINDINGS",
    "DEMO_SEED",
    "Attack",
    "Workload",
    "WorkloadStats",
    "demo_events",
    "expected_findings",
    "generate",
    "write_demo",
    "write_events",
]

#: 2024-06-03T16:00:00Z, in nanoseconds: where the stream's clock starts.
BASE_TIMESTAMP = 1_717_430_400_000_000_000
HOST_NAME = "ip-10-0-1-23"
HOST_PID_NS = 4026531836
HOST_MNT_NS = 4026531840
#: Seed and size of the bundled demo (examples/events/demo.jsonl).
DEMO_SEED = 2024
DEMO_BENIGN_EVENTS = 320

# Tracee v0.24.1 event IDs (x86_64 syscall numbers for syscalls).
EVENT_IDS: dict[str, int] = {
    "read": 0,
    "close": 3,
    "mmap": 9,
    "connect": 42,
    "execve": 59,
    "ptrace": 101,
    "process_vm_writev": 311,
    "openat": 257,
    "sched_process_exec": 715,
    "mem_prot_alert": 724,
    "magic_write": 727,
    "security_file_open": 732,
    "security_socket_connect": 736,
    "security_sb_mount": 740,
    "socket_dup": 749,
    "hooked_proc_fops": 765,
    "security_inode_rename": 768,
    "module_load": 785,
    "hooked_syscall": 2021,
}

# --- argument values and their parse-arguments rendering ------------------------------

O_RDONLY, O_WRONLY, O_RDWR = 0, 0o1, 0o2
O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC, O_APPEND, O_NONBLOCK = 0o100, 0o200, 0o400, 0o1000, 0o2000, 0o4000
O_LARGEFILE, O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC = 0o100000, 0o200000, 0o400000, 0o2000000
_FLAG_NAMES = (
    ("O_CREAT", O_CREAT),
    ("O_EXCL", O_EXCL),
    ("O_NOCTTY", O_NOCTTY),
    ("O_TRUNC", O_TRUNC),
    ("O_APPEND", O_APPEND),
    ("O_NONBLOCK", O_NONBLOCK),
    ("O_LARGEFILE", O_LARGEFILE),
    ("O_DIRECTORY", O_DIRECTORY),
    ("O_NOFOLLOW", O_NOFOLLOW),
    ("O_CLOEXEC", O_CLOEXEC),
)
AT_FDCWD = -100
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_PRIVATE, MAP_ANONYMOUS, MAP_DENYWRITE = 0x02, 0x20, 0x800
SOCK_STREAM, SOCK_DGRAM = 1, 2
S_IFCHR, S_IFIFO, S_IFSOCK = 0o020000, 0o010000, 0o140000
PTRACE_TRACEME, PTRACE_POKETEXT, PTRACE_ATTACH = 0, 4, 16
PROT_ALERT_WX_TO_X = 4
_PTRACE_NAMES = {PTRACE_TRACEME: "PTRACE_TRACEME", PTRACE_POKETEXT: "PTRACE_POKETEXT", PTRACE_ATTACH: "PTRACE_ATTACH"}
_PROT_ALERTS = {PROT_ALERT_WX_TO_X: "Protection changed from W+E to E!"}
_STDIN_TYPES = {S_IFCHR: "S_IFCHR", S_IFIFO: "S_IFIFO", S_IFSOCK: "S_IFSOCK"}
#: The first 20 bytes of an x86_64 ELF executable, as magic_write captures them.
ELF_HEADER = bytes.fromhex("7f454c4602010100000000000000000003003e00")


def open_flags_text(flags: int) -> str:
    """Open flags the way parse-arguments prints them: ``O_WRONLY|O_CREAT|O_TRUNC``."""
    names = [("O_RDONLY", "O_WRONLY", "O_RDWR", "O_RDONLY")[flags & 3]]
    names += [name for name, bit in _FLAG_NAMES if flags & bit]
    return "|".join(names)


def prot_text(prot: int) -> str:
    names = [name for name, bit in (("PROT_READ", PROT_READ), ("PROT_WRITE", PROT_WRITE), ("PROT_EXEC", PROT_EXEC)) if prot & bit]
    return "|".join(names) or "PROT_NONE"


def map_flags_text(flags: int) -> str:
    names = [n for n, b in (("MAP_PRIVATE", MAP_PRIVATE), ("MAP_ANONYMOUS", MAP_ANONYMOUS), ("MAP_DENYWRITE", MAP_DENYWRITE)) if flags & b]
    return "|".join(names)


def inode_mode_text(mode: int) -> str:
    names = ["S_IFREG"] if mode & 0o170000 == 0o100000 else []
    for name, bit in (
        ("S_IRUSR", 0o400), ("S_IWUSR", 0o200), ("S_IXUSR", 0o100),
        ("S_IRGRP", 0o40), ("S_IWGRP", 0o20), ("S_IXGRP", 0o10),
        ("S_IROTH", 0o4), ("S_IWOTH", 0o2), ("S_IXOTH", 0o1),
    ):  # fmt: skip
        if mode & bit:
            names.append(name)
    return "|".join(names)


def inet(ip: str, port: int) -> dict[str, str]:
    """A ``SockAddr`` argument as Tracee prints it (strings, with or without parse-arguments)."""
    if ":" in ip:
        return {"sa_family": "AF_INET6", "sin6_port": str(port), "sin6_flowinfo": "0", "sin6_addr": ip, "sin6_scopeid": "0"}
    return {"sa_family": "AF_INET", "sin_port": str(port), "sin_addr": ip}


def unix(path: str) -> dict[str, str]:
    return {"sa_family": "AF_UNIX", "sun_path": path}


# --- the simulated machine ----------------------------------------------------------------

HOST_ENV = [
    "SHELL=/bin/bash",
    "PWD=/home/ubuntu",
    "LOGNAME=ubuntu",
    "HOME=/home/ubuntu",
    "LANG=C.UTF-8",
    "USER=ubuntu",
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
]
CRON_ENV = ["HOME=/root", "LOGNAME=root", "PATH=/usr/bin:/bin", "SHELL=/bin/sh"]
DAEMON_ENV = ["LANG=C.UTF-8", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "INVOCATION_ID=9c1f2e7b4a6d4e0f8a3b5c7d9e1f3a5b"]

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
CRON_COMMANDS = [
    ("sh", "/usr/bin/dash", ["/bin/sh", "-c", "   cd / && run-parts --report /etc/cron.hourly"]),
    ("run-parts", "/usr/bin/run-parts", ["run-parts", "--report", "/etc/cron.hourly"]),
]
KUBELET_COMMANDS = [
    ("iptables-save", "/usr/sbin/xtables-nft-multi", ["iptables-save", "-t", "nat"]),
    ("du", "/usr/bin/du", ["du", "-s", "-B", "1", "/var/lib/kubelet/pods/4b1d7c2e-8f3a-4e5b-9c6d-7e8f9a0b1c2d/volumes"]),
    ("systemctl", "/usr/bin/systemctl", ["systemctl", "is-active", "containerd"]),
]
HOST_CONFIG_FILES = [
    "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/resolv.conf", "/etc/localtime",
    "/etc/ssl/certs/ca-certificates.crt", "/usr/lib/locale/locale-archive", "/usr/share/locale/locale.alias",
    "/usr/share/zoneinfo/UTC", "/etc/host.conf", "/etc/gai.conf", "/usr/lib/os-release",
    "/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt", "/etc/sudoers", "/etc/login.defs",
]  # fmt: skip
HOST_PROC_FILES = [
    "/proc/self/stat", "/proc/self/status", "/proc/meminfo", "/proc/stat", "/proc/loadavg", "/proc/self/mountinfo",
    "/proc/cpuinfo", "/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/memory.max", "/proc/uptime",
    "/sys/class/net/eth0/statistics/rx_bytes", "/sys/devices/system/cpu/online", "/proc/pressure/memory",
]  # fmt: skip


@dataclass
class Container:
    """A running container (a Kubernetes pod's container unless ``pod`` is empty)."""

    id: str
    name: str
    image: str
    digest: str
    hostname: str
    pod: str
    namespace: str
    pod_uid: str
    mnt_ns: int
    pid_ns: int
    cgroup_id: int
    env: list[str]
    libc: str  # "glibc" or "musl"
    files: list[str]
    writes: list[str]
    probe: tuple[str, str, list[str]] | None  # an exec probe run through runc
    peers: list[tuple[str, int, int]]  # (ip, port, socket type) it connects to
    next_pid: int = 40


@dataclass
class Proc:
    """A task: a process's main thread, with the context fields of its events."""

    pid: int
    ppid: int
    host_pid: int
    host_ppid: int
    uid: int
    comm: str
    exe: str
    start: int
    container: Container | None
    entity: int
    parent_entity: int
    env: list[str]
    cwd: str
    next_fd: int = 3
    base: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Attack:
    """An attack the workload can inject: what it does and which findings it must produce."""

    kind: str
    description: str
    expected: dict[str, int]  # signature ID -> findings
    build: Callable[[Workload], list[dict[str, Any]]] = field(repr=False, compare=False)


@dataclass
class WorkloadStats:
    """What a generated stream holds."""

    events: int = 0
    bytes: int = 0
    by_event: Counter[str] = field(default_factory=Counter)
    attacks: Counter[str] = field(default_factory=Counter)
    attack_events: int = 0
    #: signature ID -> findings a correct replay through the built-ins produces
    expected_findings: Counter[str] = field(default_factory=Counter)

    def describe(self) -> str:
        mix = ", ".join(f"{name} {100 * n / max(self.events, 1):.1f}%" for name, n in self.by_event.most_common(9))
        return (
            f"{self.events} events, {self.bytes / 1e6:.1f} MB ({self.bytes / max(self.events, 1):.0f} B/event); "
            f"mix: {mix}; {sum(self.attacks.values())} attacks in {self.attack_events} events "
            f"({100 * self.attack_events / max(self.events, 1):.2f}%)"
        )


class Workload:
    """The simulated node: its processes and containers, its clock and its random source.

    :param seed: everything is drawn from ``random.Random(seed)``.
    :param parse_arguments: render arguments as ``option:parse-arguments`` strings.
    """

    def __init__(self, seed: int = 1, *, parse_arguments: bool = False, start: int = BASE_TIMESTAMP) -> None:
        self.rng = random.Random(seed)
        self.parse = parse_arguments
        self.now = start
        self._next_host_pid = 200_000 + self.rng.randrange(50_000)
        self.containers = self._make_containers()
        self.host_daemons: list[Proc] = []
        self.daemons: dict[str, Proc] = {}
        self._make_host()
        self.container_procs: list[Proc] = []
        self.container_main: dict[str, Proc] = {}
        for container in self.containers:
            self._make_container_procs(container)
        self.children: list[Proc] = []  # short-lived processes recently executed

    # --- identities -----------------------------------------------------------------------

    def _hex(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def _uuid(self) -> str:
        h = self._hex(32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def _make_containers(self) -> list[Container]:
        specs = [
            # name, image, pod, namespace, libc, files, writes, probe, peers
            ("nginx", "docker.io/library/nginx:1.25.4", "web-7d9c5b8f6-x2k9q", "shop", "glibc",
             ["/etc/nginx/nginx.conf", "/etc/nginx/conf.d/default.conf", "/usr/share/nginx/html/index.html",
              "/usr/share/nginx/html/static/app.3f9c2b.js", "/usr/share/nginx/html/static/app.8d1e4a.css", "/etc/passwd",
              "/etc/group", "/etc/nginx/mime.types"],
             ["/var/cache/nginx/client_temp/0000000042", "/var/log/nginx/access.log"],
             ("sh", "/bin/dash", ["sh", "-c", "wget -q -O /dev/null http://127.0.0.1:8080/healthz"]),
             [("10.244.1.17", 8000, SOCK_STREAM), ("10.96.0.10", 53, SOCK_DGRAM)]),
            ("api", "docker.io/library/python:3.12-slim", "api-5c8f7d9b4-mq7zt", "shop", "glibc",
             ["/usr/local/lib/python3.12/site-packages/flask/__pycache__/app.cpython-312.pyc",
              "/usr/local/lib/python3.12/json/__pycache__/decoder.cpython-312.pyc", "/app/config/settings.yaml",
              "/usr/local/lib/python3.12/site-packages/sqlalchemy/engine/__pycache__/base.cpython-312.pyc",
              "/etc/ssl/certs/ca-certificates.crt", "/etc/hosts", "/etc/resolv.conf", "/proc/self/stat"],
             ["/tmp/tmpk2v8x1qz", "/app/.cache/sessions/8f14e45f.json"],
             None,
             [("10.244.2.31", 5432, SOCK_STREAM), ("10.244.2.40", 6379, SOCK_STREAM), ("10.96.0.10", 53, SOCK_DGRAM)]),
            ("postgres", "docker.io/library/postgres:16.3", "db-0", "shop", "glibc",
             ["/var/lib/postgresql/data/base/16384/2619", "/var/lib/postgresql/data/base/16384/1259",
              "/var/lib/postgresql/data/global/pg_control", "/var/lib/postgresql/data/pg_stat_tmp/global.stat",
              "/usr/lib/postgresql/16/lib/plpgsql.so", "/etc/localtime"],
             ["/var/lib/postgresql/data/pg_wal/000000010000000000000003", "/var/lib/postgresql/data/base/16384/16402"],
             ("pg_isready", "/usr/lib/postgresql/16/bin/pg_isready", ["pg_isready", "-U", "postgres", "-h", "127.0.0.1"]),
             []),
            ("redis", "docker.io/library/redis:7.2.5-alpine", "cache-6b7f9c8d5-h4w2n", "shop", "musl",
             ["/data/dump.rdb", "/etc/redis/redis.conf", "/proc/self/stat", "/sys/fs/cgroup/memory.max"],
             ["/data/temp-1843.rdb"],
             ("redis-cli", "/usr/local/bin/redis-cli", ["redis-cli", "ping"]),
             []),
            ("coredns", "registry.k8s.io/coredns/coredns:v1.11.1", "coredns-76f75df574-9wz4k", "kube-system", "static",
             ["/etc/coredns/Corefile", "/etc/hosts", "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"],
             [],
             None,
             [("10.96.0.1", 443, SOCK_STREAM), ("169.254.169.253", 53, SOCK_DGRAM)]),
            ("runner", "docker.io/library/alpine:3.20", "", "", "musl",
             ["/etc/apk/repositories", "/lib/apk/db/installed", "/etc/passwd", "/workspace/Makefile"],
             ["/tmp/build.log", "/workspace/out/report.txt"],
             None,
             [("151.101.2.132", 443, SOCK_STREAM)]),
        ]  # fmt: skip
        containers = []
        for index, (name, image, pod, ns, libc, files, writes, probe, peers) in enumerate(specs):
            cid = self._hex(64)
            env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", f"HOSTNAME={pod or cid[:12]}"]
            if pod:
                env += [
                    "KUBERNETES_SERVICE_HOST=10.96.0.1",
                    "KUBERNETES_SERVICE_PORT=443",
                    "KUBERNETES_PORT=tcp://10.96.0.1:443",
                ]
            env.append("HOME=/root")
            containers.append(
                Container(
                    id=cid,
                    name=name,
                    image=image,
                    digest="sha256:" + self._hex(64),
                    hostname=pod or cid[:12],
                    pod=pod,
                    namespace=ns,
                    pod_uid=self._uuid() if pod else "",
                    mnt_ns=4026532200 + 17 * index,
                    pid_ns=4026532203 + 17 * index,
                    cgroup_id=1_386_180 + 4_113 * index,
                    env=env,
                    libc=libc,
                    files=files,
                    writes=writes,
                    probe=probe,
                    peers=peers,
                )
            )
        return containers

    def _proc(
        self,
        *,
        pid: int,
        ppid: int,
        comm: str,
        exe: str,
        uid: int,
        container: Container | None = None,
        host_pid: int | None = None,
        host_ppid: int | None = None,
        parent_entity: int = 0,
        env: list[str] | None = None,
        cwd: str = "/",
        age_ns: int | None = None,
    ) -> Proc:
        age = age_ns if age_ns is not None else self.rng.randrange(10**9, 86_400 * 10**9)
        proc = Proc(
            pid=pid,
            ppid=ppid,
            host_pid=host_pid if host_pid is not None else pid,
            host_ppid=host_ppid if host_ppid is not None else ppid,
            uid=uid,
            comm=comm[:15],
            exe=exe,
            start=self.now - age,
            container=container,
            entity=self.rng.getrandbits(32),
            parent_entity=parent_entity or self.rng.getrandbits(32),
            env=env if env is not None else (container.env if container else DAEMON_ENV),
            cwd=cwd,
        )
        self._rebase(proc)
        return proc

    def _rebase(self, p: Proc) -> None:
        """Precompute the event fields that only depend on the task (key order is trace.Event's)."""
        c = p.container
        if c is None:
            container: dict[str, Any] = {}
            kubernetes: dict[str, Any] = {}
        else:
            container = {"id": c.id, "name": c.name, "image": c.image, "imageDigest": c.digest}
            kubernetes = {"podName": c.pod, "podNamespace": c.namespace, "podUID": c.pod_uid} if c.pod else {}
        p.base = {
            "timestamp": 0,
            "threadStartTime": p.start,
            "processorId": 0,
            "processId": p.pid,
            "cgroupId": c.cgroup_id if c else 5_247 + p.host_pid % 997,
            "threadId": p.pid,
            "parentProcessId": p.ppid,
            "hostProcessId": p.host_pid,
            "hostThreadId": p.host_pid,
            "hostParentProcessId": p.host_ppid,
            "userId": p.uid,
            "mountNamespace": c.mnt_ns if c else HOST_MNT_NS,
            "pidNamespace": c.pid_ns if c else HOST_PID_NS,
            "processName": p.comm,
            "executable": {"path": p.exe},
            "hostName": c.hostname if c else HOST_NAME,
            "containerId": c.id if c else "",
            "container": container,
            "kubernetes": kubernetes,
            "eventId": "0",
            "eventName": "",
            "matchedPolicies": [""],
            "argsNum": 0,
            "returnValue": 0,
            "syscall": "",
            "stackAddresses": None,
            "contextFlags": {"containerStarted": c is not None, "isCompat": False},
            "threadEntityId": p.entity,
            "processEntityId": p.entity,
            "parentEntityId": p.parent_entity,
            "args": [],
        }

    def _make_host(self) -> None:
        daemons = [
            # key, pid, ppid, comm, exe, uid
            ("systemd", 1, 0, "systemd", "/usr/lib/systemd/systemd", 0),
            ("journald", 412, 1, "systemd-journal", "/usr/lib/systemd/systemd-journald", 0),
            ("oomd", 676, 1, "systemd-oomd", "/usr/lib/systemd/systemd-oomd", 108),
            ("cron", 884, 1, "cron", "/usr/sbin/cron", 0),
            ("sshd", 1021, 1, "sshd", "/usr/sbin/sshd", 0),
            ("containerd", 1089, 1, "containerd", "/usr/bin/containerd", 0),
            ("dockerd", 1204, 1, "dockerd", "/usr/bin/dockerd", 0),
            ("kubelet", 1350, 1, "kubelet", "/usr/bin/kubelet", 0),
            ("node_exporter", 1462, 1, "node_exporter", "/usr/local/bin/node_exporter", 65534),
            ("bash", 204_811, 204_790, "bash", "/usr/bin/bash", 1000),
        ]
        for key, pid, ppid, comm, exe, uid in daemons:
            env = HOST_ENV if key == "bash" else DAEMON_ENV
            proc = self._proc(pid=pid, ppid=ppid, comm=comm, exe=exe, uid=uid, env=env,
                              cwd="/home/ubuntu" if key == "bash" else "/")  # fmt: skip
            self.daemons[key] = proc
            self.host_daemons.append(proc)

    def _make_container_procs(self, c: Container) -> None:
        shim_pid = 30_000 + self.rng.randrange(200_000)
        main_specs = {
            "nginx": [("nginx", "/usr/sbin/nginx", 0), ("nginx", "/usr/sbin/nginx", 101), ("nginx", "/usr/sbin/nginx", 101)],
            "api": [("gunicorn", "/usr/local/bin/python3.12", 1000), ("gunicorn", "/usr/local/bin/python3.12", 1000)],
            "postgres": [("postgres", "/usr/lib/postgresql/16/bin/postgres", 999), ("postgres", "/usr/lib/postgresql/16/bin/postgres", 999)],
            "redis": [("redis-server", "/usr/local/bin/redis-server", 999)],
            "coredns": [("coredns", "/coredns", 65532)],
            "runner": [("sh", "/bin/busybox", 0), ("make", "/usr/bin/make", 0)],
        }[c.name]
        main: Proc | None = None
        for index, (comm, exe, uid) in enumerate(main_specs):
            pid = 1 if index == 0 else 20 + 9 * index
            proc = self._proc(
                pid=pid,
                ppid=0 if index == 0 else 1,
                comm=comm,
                exe=exe,
                uid=uid,
                container=c,
                host_pid=shim_pid + 12 + index * 31,
                host_ppid=shim_pid if index == 0 else shim_pid + 12,
                parent_entity=main.entity if main else 0,
            )
            if main is None:
                main = proc
                self.container_main[c.id] = proc
            self.container_procs.append(proc)

    # --- events ---------------------------------------------------------------------------

    def event(self, p: Proc, name: str, args: list[dict[str, Any]], ret: int = 0, syscall: str | None = None) -> dict[str, Any]:
        """One event of task ``p`` at the next tick of the clock."""
        self.now += self.rng.randrange(1_500, 45_000)
        ev = p.base.copy()
        ev["timestamp"] = self.now
        ev["processorId"] = self.rng.randrange(8)
        ev["eventId"] = str(EVENT_IDS[name])
        ev["eventName"] = name
        ev["argsNum"] = len(args)
        ev["returnValue"] = ret
        ev["syscall"] = syscall if syscall is not None else (name if name in _SYSCALL_EVENTS else "")
        ev["args"] = args
        return ev

    def _flags(self, flags: int) -> dict[str, Any]:
        if self.parse:
            return {"name": "flags", "type": "string", "value": open_flags_text(flags)}
        return {"name": "flags", "type": "int32", "value": flags}

    def _dev_inode(self, path: str) -> tuple[int, int]:
        h = _stable_hash(path)
        dev = 45 if path.startswith(("/proc/", "/sys/")) else (271_581_185 if not path.startswith("/tmp/") else 271_581_186)
        return dev, 1_000 + h % 4_000_000

    def security_file_open(self, p: Proc, path: str, flags: int, syscall: str = "openat", user_path: str | None = None) -> dict[str, Any]:
        dev, inode = self._dev_inode(path)
        args = [
            {"name": "pathname", "type": "string", "value": path},
            self._flags(flags | O_LARGEFILE),
            {"name": "dev", "type": "uint32", "value": dev},
            {"name": "inode", "type": "uint64", "value": inode},
            {"name": "ctime", "type": "uint64", "value": BASE_TIMESTAMP - 86_400_000_000_000 * (1 + inode % 400) + inode},
            {"name": "syscall_pathname", "type": "string", "value": user_path if user_path is not None else path},
        ]
        return self.event(p, "security_file_open", args, 0, syscall)

    def openat(self, p: Proc, path: str, flags: int, fd: int, mode: int = 0) -> dict[str, Any]:
        args = [
            {"name": "dirfd", "type": "int32", "value": "AT_FDCWD" if self.parse else AT_FDCWD},
            {"name": "pathname", "type": "string", "value": path},
            self._flags(flags),
            {"name": "mode", "type": "uint32", "value": mode},
        ]
        return self.event(p, "openat", args, fd)

    def read(self, p: Proc, fd: int, count: int, got: int) -> dict[str, Any]:
        args = [
            {"name": "fd", "type": "int32", "value": fd},
            {"name": "buf", "type": "trace.Pointer", "value": 0x5600_0000_0000 + self.rng.randrange(1 << 32) * 16},
            {"name": "count", "type": "uint64", "value": count},
        ]
        return self.event(p, "read", args, got)

    def close(self, p: Proc, fd: int) -> dict[str, Any]:
        return self.event(p, "close", [{"name": "fd", "type": "int32", "value": fd}], 0)

    def mmap(self, p: Proc, fd: int, length: int, prot: int, flags: int) -> dict[str, Any]:
        args = [
            {"name": "addr", "type": "trace.Pointer", "value": 0},
            {"name": "length", "type": "uint64", "value": length},
            {"name": "prot", "type": "int32", "value": prot_text(prot) if self.parse else prot},
            {"name": "flags", "type": "int32", "value": map_flags_text(flags) if self.parse else flags},
            {"name": "fd", "type": "int32", "value": fd},
            {"name": "off", "type": "uint64", "value": 0},
        ]
        return self.event(p, "mmap", args, 0x7F00_0000_0000 + self.rng.randrange(1 << 28) * 4096)

    def connect(self, p: Proc, fd: int, addr: dict[str, str], ret: int = 0) -> dict[str, Any]:
        args = [
            {"name": "sockfd", "type": "int32", "value": fd},
            {"name": "addr", "type": "SockAddr", "value": addr},
            {"name": "addrlen", "type": "int32", "value": 110 if addr["sa_family"] == "AF_UNIX" else (28 if addr["sa_family"] == "AF_INET6" else 16)},
        ]
        return self.event(p, "connect", args, ret)

    def security_socket_connect(self, p: Proc, fd: int, sock_type: int, addr: dict[str, str]) -> dict[str, Any]:
        args = [
            {"name": "sockfd", "type": "int32", "value": fd},
            {"name": "type", "type": "int32", "value": ("SOCK_STREAM" if sock_type == SOCK_STREAM else "SOCK_DGRAM") if self.parse else sock_type},
            {"name": "remote_addr", "type": "SockAddr", "value": addr},
        ]
        return self.event(p, "security_socket_connect", args, 0, "connect")

    def execve(self, p: Proc, path: str, argv: list[str]) -> dict[str, Any]:
        args = [
            {"name": "pathname", "type": "string", "value": path},
            {"name": "argv", "type": "[]string", "value": argv},
            {"name": "envp", "type": "[]string", "value": None},
        ]
        return self.event(p, "execve", args, 0)

    def sched_process_exec(
        self, p: Proc, cmdpath: str, argv: list[str], prev_comm: str, stdin_type: int = S_IFCHR, interp: str | None = None
    ) -> dict[str, Any]:
        dev, inode = self._dev_inode(p.exe)
        loader = "/lib/ld-musl-x86_64.so.1" if p.container and p.container.libc == "musl" else "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
        static = p.container is not None and p.container.libc == "static"
        ldev, linode = self._dev_inode(loader)
        args = [
            {"name": "cmdpath", "type": "string", "value": cmdpath},
            {"name": "pathname", "type": "string", "value": p.exe},
            {"name": "dev", "type": "uint32", "value": dev},
            {"name": "inode", "type": "uint64", "value": inode},
            {"name": "ctime", "type": "uint64", "value": BASE_TIMESTAMP - 3_600_000_000_000 * (inode % 2000)},
            {"name": "inode_mode", "type": "uint16", "value": inode_mode_text(0o100755) if self.parse else 0o100755},
            {"name": "interpreter_pathname", "type": "string", "value": "" if static else loader},
            {"name": "interpreter_dev", "type": "uint32", "value": 0 if static else ldev},
            {"name": "interpreter_inode", "type": "uint64", "value": 0 if static else linode},
            {"name": "interpreter_ctime", "type": "uint64", "value": 0 if static else BASE_TIMESTAMP - 90 * 86_400_000_000_000},
            {"name": "argv", "type": "[]string", "value": argv},
            {"name": "interp", "type": "string", "value": interp if interp is not None else cmdpath},
            {"name": "stdin_type", "type": "uint16", "value": _STDIN_TYPES[stdin_type] if self.parse else stdin_type},
            {"name": "stdin_path", "type": "string", "value": "/dev/pts/0" if stdin_type == S_IFCHR else ("pipe:[48213]" if stdin_type == S_IFIFO else "socket:[48231]")},
            {"name": "invoked_from_kernel", "type": "bool", "value": False},
            {"name": "prev_comm", "type": "string", "value": prev_comm},
            {"name": "env", "type": "[]string", "value": p.env},
            {"name": "pwd", "type": "string", "value": p.cwd},
        ]  # fmt: skip
        return self.event(p, "sched_process_exec", args, 0, "execve")

    # --- benign activities ------------------------------------------------------------------

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
            events.append(self.mmap(p, fd, 0x1000 * (50 + _stable_hash(path) % 600), PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_DENYWRITE))
        events.append(self.close(p, fd))
        return events

    def exec_child(self, parent: Proc, comm: str, exe: str, argv: list[str], *, cmdpath: str | None = None, env: list[str] | None = None, uid: int | None = None, via_runc: bool = False) -> tuple[Proc, list[dict[str, Any]]]:
        """fork + execve of ``argv`` by ``parent``: the execve (old comm), sched_process_exec (new comm), libraries."""
        c = parent.container
        if c is not None:
            c.next_pid += self.rng.randrange(1, 5)
            pid = c.next_pid
            host_pid = self._next_host_pid = self._next_host_pid + self.rng.randrange(1, 40)
        else:
            pid = host_pid = self._next_host_pid = self._next_host_pid + self.rng.randrange(1, 40)
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
        self._rebase(child)
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

    # --- attacks ---------------------------------------------------------------------------------

    def attacker(self, comm: str, exe: str, *, container: str | None = None, uid: int = 0) -> Proc:
        """A fresh task of the attacker: in the container named ``container`` or on the host."""
        c = next(c for c in self.containers if c.name == container) if container else None
        parent = self.container_main[c.id] if c is not None else self.daemons["sshd"]
        if c is not None:
            c.next_pid += self.rng.randrange(1, 5)
            pid = c.next_pid
            host_pid = self._next_host_pid = self._next_host_pid + self.rng.randrange(1, 40)
        else:
            pid = host_pid = self._next_host_pid = self._next_host_pid + self.rng.randrange(1, 40)
        return self._proc(
            pid=pid, ppid=parent.pid, comm=comm, exe=exe, uid=uid, container=c, host_pid=host_pid,
            host_ppid=parent.host_pid, parent_entity=parent.entity, age_ns=self.rng.randrange(10**7, 10**10),
            cwd="/tmp",
        )  # fmt: skip

    def stream(self, n: int, stats: WorkloadStats | None = None, attack_every: int = 2000) -> Iterator[dict[str, Any]]:
        """Exactly ``n`` events: benign bursts with an attack about every ``attack_every`` events."""
        stats = stats if stats is not None else WorkloadStats()
        kinds: list[str] = []
        next_attack = self.rng.randrange(attack_every // 2, attack_every * 3 // 2)
        emitted = 0
        while emitted < n:
            if emitted >= next_attack:
                next_attack = emitted + self.rng.randrange(attack_every // 2, attack_every * 3 // 2)
                if not kinds:
                    kinds = list(ATTACKS)
                    self.rng.shuffle(kinds)
                attack = ATTACKS[kinds.pop()]
                burst = attack.build(self)
                if emitted + len(burst) > n:
                    continue
                stats.attacks[attack.kind] += 1
                stats.attack_events += len(burst)
                stats.expected_findings.update(attack.expected)
            else:
                burst = self.benign()
            for ev in burst[: n - emitted]:
                stats.by_event[ev["eventName"]] += 1
                yield ev
            emitted += min(len(burst), n - emitted)
        stats.events += emitted

    def demo(self, stats: WorkloadStats | None = None, benign: int = DEMO_BENIGN_EVENTS) -> Iterator[dict[str, Any]]:
        """The demo scenario: ``benign`` events of noise with every attack of :data:`ATTACKS` spread through it."""
        stats = stats if stats is not None else WorkloadStats()
        kinds = list(ATTACKS)
        spacing = benign // (len(kinds) + 1)
        emitted = 0
        next_attack = spacing
        while kinds or emitted < benign:
            if kinds and emitted >= next_attack:
                attack = ATTACKS[kinds.pop(0)]
                burst = attack.build(self)
                stats.attacks[attack.kind] += 1
                stats.attack_events += len(burst)
                stats.expected_findings.update(attack.expected)
                next_attack += spacing
            else:
                burst = self.benign()
                emitted += len(burst)
            for ev in burst:
                stats.by_event[ev["eventName"]] += 1
                stats.events += 1
                yield ev


_SYSCALL_EVENTS = frozenset({"read", "close", "mmap", "connect", "execve", "openat", "ptrace", "process_vm_writev"})


def _stable_hash(text: str) -> int:
    # str hash is salted per process; this one is stable across runs
    h = 2166136261
    for byte in text.encode():
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


# --- the attacks -----------------------------------------------------------------------------


def _open_write(w: Workload, p: Proc, path: str, flags: int = O_WRONLY | O_CREAT | O_TRUNC) -> list[dict[str, Any]]:
    return w.open_file(p, path, flags | O_CLOEXEC, reads=0, mode=0o644)[:2]


def _open_read(w: Workload, p: Proc, path: str) -> list[dict[str, Any]]:
    return w.open_file(p, path, O_RDONLY, reads=1)


def _rename(w: Workload, p: Proc, old: str, new: str) -> dict[str, Any]:
    args = [{"name": "old_path", "type": "string", "value": old}, {"name": "new_path", "type": "string", "value": new}]
    return w.event(p, "security_inode_rename", args, 0, "rename")


def _ptrace(w: Workload, p: Proc, request: int, pid: int) -> dict[str, Any]:
    args = [
        {"name": "request", "type": "int64", "value": _PTRACE_NAMES[request] if w.parse else request},
        {"name": "pid", "type": "int32", "value": pid},
        {"name": "addr", "type": "trace.Pointer", "value": 0x55D4_A1B2_3000 if pid else 0},
        {"name": "data", "type": "trace.Pointer", "value": 0x9090_9090_9090_9090 if request == PTRACE_POKETEXT else 0},
    ]
    return w.event(p, "ptrace", args, 0)


def _magic_write(w: Workload, p: Proc, path: str) -> dict[str, Any]:
    dev, inode = w._dev_inode(path)
    args = [
        {"name": "pathname", "type": "string", "value": path},
        {"name": "bytes", "type": "[]byte", "value": base64.b64encode(ELF_HEADER).decode()},
        {"name": "dev", "type": "uint32", "value": dev},
        {"name": "inode", "type": "uint64", "value": inode},
    ]
    return w.event(p, "magic_write", args, 0, "write")


def _socket_dup(w: Workload, p: Proc, old: int, new: int, addr: dict[str, str]) -> dict[str, Any]:
    args = [
        {"name": "oldfd", "type": "int32", "value": old},
        {"name": "newfd", "type": "int32", "value": new},
        {"name": "remote_addr", "type": "SockAddr", "value": addr},
    ]
    return w.event(p, "socket_dup", args, new, "dup2")


def _exec_as(w: Workload, p: Proc, exe: str, argv: list[str], prev_comm: str, comm: str | None = None, env: list[str] | None = None) -> list[dict[str, Any]]:
    """An exec by attacker task ``p`` turning it into ``exe``."""
    events = [w.execve(p, exe, argv)]
    p.comm, p.exe = (comm or exe.rpartition("/")[2])[:15], exe
    if env is not None:
        p.env = env
    w._rebase(p)
    events.append(w.sched_process_exec(p, exe, argv, prev_comm, S_IFIFO))
    return events


def _a_reverse_shell(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("bash", "/usr/bin/bash", uid=33)
    addr = inet("198.51.100.23", 4444)
    return [
        w.security_socket_connect(p, 3, SOCK_STREAM, addr),
        w.connect(p, 3, addr),
        *(_socket_dup(w, p, 3, fd, addr) for fd in (0, 1, 2)),
    ]


def _a_ptrace_traceme(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("kworkerds", "/tmp/.ICE-unix/kworkerds", uid=1000)
    return [_ptrace(w, p, PTRACE_TRACEME, 0)]


def _a_ptrace_poketext(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("inject", "/dev/shm/inject")
    target = w.daemons["sshd"].pid
    return [_ptrace(w, p, PTRACE_ATTACH, target), _ptrace(w, p, PTRACE_POKETEXT, target)]


def _a_dynamic_code(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("python3", "/usr/bin/python3.10", uid=1000)
    args = [
        {"name": "alert", "type": "uint32", "value": _PROT_ALERTS[PROT_ALERT_WX_TO_X] if w.parse else PROT_ALERT_WX_TO_X},
        {"name": "addr", "type": "trace.Pointer", "value": 0x7F3A_2C00_0000},
        {"name": "len", "type": "uint64", "value": 8192},
        {"name": "prot", "type": "int32", "value": prot_text(PROT_READ | PROT_EXEC) if w.parse else PROT_READ | PROT_EXEC},
        {"name": "prev_prot", "type": "int32", "value": prot_text(7) if w.parse else 7},
        {"name": "pathname", "type": "string", "value": ""},
        {"name": "dev", "type": "uint32", "value": 0},
        {"name": "inode", "type": "uint64", "value": 0},
        {"name": "ctime", "type": "uint64", "value": 0},
    ]
    return [w.event(p, "mem_prot_alert", args, 0, "mprotect")]


def _a_fileless_exec(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("curl", "/usr/bin/curl", container="runner")
    # fexecve() of a memfd: the kernel names the task after "/dev/fd/5"
    p.comm, p.exe = "5", "memfd:x"
    w._rebase(p)
    return [w.sched_process_exec(p, "/dev/fd/5", ["[kworker/0:2]"], "curl", S_IFIFO, interp="/dev/fd/5")]


def _a_notify_on_release(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("sh", "/bin/dash", container="nginx")
    return _open_write(w, p, "/tmp/cgrp/x/notify_on_release")


def _a_ld_so_preload(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("tee", "/usr/bin/tee")
    return _open_write(w, p, "/etc/ld.so.preload", O_WRONLY | O_CREAT | O_APPEND)


def _a_ld_preload_env(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("bash", "/usr/bin/bash", uid=1000)
    env = ["LD_PRELOAD=/tmp/.lib/libprocesshider.so", *HOST_ENV]
    return _exec_as(w, p, "/usr/bin/ps", ["ps", "aux"], "bash", env=env)


def _a_aslr_inspection(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("cat", "/usr/bin/cat", uid=1000)
    return _open_read(w, p, "/proc/sys/kernel/randomize_va_space")


def _a_release_agent(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("sh", "/bin/dash", container="nginx")
    return _open_write(w, p, "/tmp/cgrp/release_agent")


def _a_core_pattern(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("sh", "/bin/dash", container="api")
    return _open_write(w, p, "/proc/sys/kernel/core_pattern")


def _a_loader_modification(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("cp", "/usr/bin/cp")
    return _open_write(w, p, "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")


def _a_k8s_api_connection(w: Workload) -> list[dict[str, Any]]:
    c = next(c for c in w.containers if c.name == "api")
    p = w.attacker("sh", "/bin/dash", container="api")
    events = _exec_as(w, p, "/usr/bin/curl", ["curl", "-sk", "https://10.96.0.1:443/api/v1/namespaces/kube-system/secrets"], "sh", env=c.env)
    addr = inet("10.96.0.1", 443)
    return [*events, w.security_socket_connect(p, 3, SOCK_STREAM, addr), w.connect(p, 3, addr, -115)]


def _a_disk_mount(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("mount", "/usr/bin/mount", container="runner")
    args = [
        {"name": "dev_name", "type": "string", "value": "/dev/vda1"},
        {"name": "path", "type": "string", "value": "/mnt/host"},
        {"name": "type", "type": "string", "value": "ext4"},
        {"name": "flags", "type": "uint64", "value": 3236757504},
    ]
    return [w.event(p, "security_sb_mount", args, 0, "mount")]


def _a_hidden_elf(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("wget", "/usr/bin/wget", uid=1000)
    return [*_open_write(w, p, "/tmp/.X11-unix/.xmrig"), _magic_write(w, p, "/tmp/.X11-unix/.xmrig")]


def _a_web_shell(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("nginx", "/usr/sbin/nginx", container="nginx", uid=101)
    return _exec_as(w, p, "/bin/sh", ["sh", "-c", "id; uname -a; cat /etc/passwd"], "nginx", comm="sh")


def _a_kernel_module(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("insmod", "/usr/sbin/insmod")
    path = "/tmp/.rk/diamorphine.ko"
    dev, inode = w._dev_inode(path)
    args = [
        {"name": "name", "type": "string", "value": "diamorphine"},
        {"name": "version", "type": "string", "value": ""},
        {"name": "src_version", "type": "string", "value": "D5B4E8C9A1F3B7E2C4D6A80"},
        {"name": "pathname", "type": "string", "value": path},
        {"name": "dev", "type": "uint32", "value": dev},
        {"name": "inode", "type": "uint64", "value": inode},
        {"name": "ctime", "type": "uint64", "value": w.now - 5_000_000_000},
    ]
    return [w.event(p, "module_load", args, 0, "finit_module")]


def _a_k8s_cert_theft(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("cat", "/usr/bin/cat")
    return _open_read(w, p, "/etc/kubernetes/pki/apiserver.key")


def _a_docker_socket(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("curl", "/usr/bin/curl", container="runner")
    addr = unix("/var/run/docker.sock")
    return [w.security_socket_connect(p, 3, SOCK_STREAM, addr), w.connect(p, 3, addr)]


def _a_proc_fops_hook(w: Workload) -> list[dict[str, Any]]:
    args = [
        {"name": "hooked_fops_pointers", "type": "[]trace.HookedSymbolData",
         "value": [{"SymbolName": "hooked_iterate_shared", "ModuleOwner": "diamorphine"}]},
    ]  # fmt: skip
    return [w.event(w.daemons["systemd"], "hooked_proc_fops", args, 0, "")]


def _a_kcore_read(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("dd", "/bin/dd", container="runner")
    return _open_read(w, p, "/proc/kcore")


def _a_dropped_executable(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("wget", "/usr/bin/wget", container="runner")
    events = [*_open_write(w, p, "/tmp/xmrig"), _magic_write(w, p, "/tmp/xmrig")]
    # ... and run it (what examples/rules-dir's LOCAL-1 looks for)
    sh = w.attacker("sh", "/bin/busybox", container="runner")
    return [*events, *_exec_as(w, sh, "/tmp/xmrig", ["/tmp/xmrig", "-o", "pool.supportxmr.com:443"], "sh")]


def _a_proc_mem_read(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("python3", "/usr/bin/python3.10")
    return _open_read(w, p, f"/proc/{w.daemons['sshd'].pid}/mem")


def _a_proc_mem_write(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("python3", "/usr/bin/python3.10")
    return _open_write(w, p, f"/proc/{w.daemons['cron'].pid}/mem", O_WRONLY)


def _a_process_vm_writev(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("inject", "/dev/shm/inject")
    args = [
        {"name": "pid", "type": "int32", "value": w.daemons["sshd"].pid},
        {"name": "local_iov", "type": "trace.Pointer", "value": 0x7FFD_3A2B_1C00},
        {"name": "liovcnt", "type": "uint64", "value": 1},
        {"name": "remote_iov", "type": "trace.Pointer", "value": 0x7FFD_3A2B_1C10},
        {"name": "riovcnt", "type": "uint64", "value": 1},
        {"name": "flags", "type": "uint64", "value": 0},
    ]
    return [w.event(p, "process_vm_writev", args, 4096)]


def _a_rcd_modification(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("sh", "/usr/bin/dash")
    return _open_write(w, p, "/etc/rc.local", O_WRONLY | O_CREAT | O_APPEND)


def _a_crontab_rename(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("crontab", "/usr/bin/crontab")
    return [_rename(w, p, "/var/spool/cron/crontabs/tmp.Xk3f9a", "/var/spool/cron/crontabs/root")]


def _a_sudoers(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("tee", "/usr/bin/tee")
    return _open_write(w, p, "/etc/sudoers.d/99-nopasswd")


def _a_sched_debug(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("cat", "/bin/busybox", container="runner")
    return _open_read(w, p, "/proc/sched_debug")


def _a_syscall_hook(w: Workload) -> list[dict[str, Any]]:
    args = [
        {"name": "syscall", "type": "string", "value": "kill"},
        {"name": "address", "type": "string", "value": "ffffffffc0a1b2c0"},
        {"name": "function", "type": "string", "value": "hacked_kill"},
        {"name": "owner", "type": "string", "value": "diamorphine"},
    ]
    return [w.event(w.daemons["systemd"], "hooked_syscall", args, 0, "")]


def _a_sysrq(w: Workload) -> list[dict[str, Any]]:
    p = w.attacker("sh", "/bin/busybox", container="runner")
    return _open_write(w, p, "/proc/sysrq-trigger")


ATTACKS: dict[str, Attack] = {
    a.kind: a
    for a in (
        Attack("reverse-shell", "bash connects to 198.51.100.23:4444 and dup2()s the socket onto stdin/stdout/stderr", {"TRC-101": 3}, _a_reverse_shell),
        Attack("ptrace-traceme", "a masquerading miner calls ptrace(PTRACE_TRACEME) against debuggers", {"TRC-102": 1}, _a_ptrace_traceme),
        Attack("ptrace-poketext", "ptrace(PTRACE_ATTACH) then PTRACE_POKETEXT into sshd", {"TRC-103": 1}, _a_ptrace_poketext),
        Attack("mprotect-wx-to-x", "a W+X region made executable (mem_prot_alert 'W+E to E')", {"TRC-104": 1}, _a_dynamic_code),
        Attack("memfd-exec", "a payload executed from a memfd: file in the CI container", {"TRC-105": 1}, _a_fileless_exec),
        Attack("cgroup-notify-on-release", "notify_on_release opened for writing in the nginx container", {"TRC-106": 1}, _a_notify_on_release),
        Attack("ld-so-preload", "/etc/ld.so.preload opened for writing on the host", {"TRC-107": 1}, _a_ld_so_preload),
        Attack("ld-preload-env", "ps executed with LD_PRELOAD=/tmp/.lib/libprocesshider.so", {"TRC-107": 1}, _a_ld_preload_env),
        Attack("aslr-inspection", "/proc/sys/kernel/randomize_va_space read", {"TRC-109": 1}, _a_aslr_inspection),
        Attack("cgroup-release-agent", "release_agent opened for writing in the nginx container", {"TRC-1010": 1}, _a_release_agent),
        Attack("core-pattern", "/proc/sys/kernel/core_pattern opened for writing in the api container", {"TRC-1011": 1}, _a_core_pattern),
        Attack("loader-modification", "the dynamic loader ld-linux-x86-64.so.2 opened for writing", {"TRC-1012": 1}, _a_loader_modification),
        Attack("k8s-api-connection", "curl in the api pod connects to the API server 10.96.0.1:443", {"TRC-1013": 1}, _a_k8s_api_connection),
        Attack("disk-mount", "the host disk /dev/vda1 mounted in the CI container", {"TRC-1014": 1}, _a_disk_mount),
        Attack("hidden-elf", "an ELF file written to /tmp/.X11-unix/.xmrig on the host", {"TRC-1015": 1}, _a_hidden_elf),
        Attack("web-shell", "nginx spawns /bin/sh (a web shell)", {"TRC-1016": 1}, _a_web_shell),
        Attack("kernel-module", "insmod loads the diamorphine rootkit", {"TRC-1017": 1}, _a_kernel_module),
        Attack("k8s-cert-theft", "cat reads /etc/kubernetes/pki/apiserver.key", {"TRC-1018": 1}, _a_k8s_cert_theft),
        Attack("docker-sock-connect", "curl in the CI container connects to /var/run/docker.sock", {"TRC-1019": 1}, _a_docker_socket),
        Attack("proc-fops-hook", "a rootkit hooked /proc's file operations (hooked_proc_fops)", {"TRC-1020": 1}, _a_proc_fops_hook),
        Attack("kcore-read", "dd reads /proc/kcore in the CI container", {"TRC-1021": 1}, _a_kcore_read),
        Attack("dropped-elf", "wget writes an ELF file to /tmp/xmrig in the CI container, then it is run", {"TRC-1022": 1}, _a_dropped_executable),
        Attack("proc-mem-read", "/proc/<sshd>/mem opened for reading", {"TRC-1023": 1}, _a_proc_mem_read),
        Attack("proc-mem-write", "/proc/<cron>/mem opened for writing", {"TRC-1024": 1}, _a_proc_mem_write),
        Attack("process-vm-writev", "process_vm_writev into sshd", {"TRC-1025": 1}, _a_process_vm_writev),
        Attack("rc-local", "/etc/rc.local opened for writing", {"TRC-1026": 1}, _a_rcd_modification),
        Attack("crontab-rename", "crontab renames a temp file onto /var/spool/cron/crontabs/root", {"TRC-1027": 1}, _a_crontab_rename),
        Attack("sudoers", "/etc/sudoers.d/99-nopasswd opened for writing", {"TRC-1028": 1}, _a_sudoers),
        Attack("sched-debug", "/proc/sched_debug read in the CI container", {"TRC-1029": 1}, _a_sched_debug),
        Attack("syscall-hook", "the kill syscall hooked by a kernel module (hooked_syscall)", {"TRC-1030": 1}, _a_syscall_hook),
        Attack("sysrq-trigger", "/proc/sysrq-trigger opened for writing in the CI container", {"TRC-1031": 1}, _a_sysrq),
    )
}  # fmt: skip


def expected_findings(kinds: Sequence[str] | None = None) -> Counter[str]:
    """Signature ID -> findings that one instance of each attack in ``kinds`` (default: all) produces."""
    total: Counter[str] = Counter()
    for kind in kinds if kinds is not None else list(ATTACKS):
        total.update(ATTACKS[kind].expected)
    return total


#: What the demo (one instance of every attack) must produce with the built-in signatures.
DEMO_EXPECTED_FINDINGS: Counter[str] = expected_findings()


# --- writing ---------------------------------------------------------------------------------


def generate(n: int, *, seed: int = 1, parse_arguments: bool = False, stats: WorkloadStats | None = None) -> Iterator[dict[str, Any]]:
    """Yield ``n`` events (dicts) of the mixed workload."""
    return Workload(seed, parse_arguments=parse_arguments).stream(n, stats)


def demo_events(*, seed: int = DEMO_SEED, parse_arguments: bool = False, stats: WorkloadStats | None = None) -> Iterator[dict[str, Any]]:
    """Yield the events of the demo scenario."""
    return Workload(seed, parse_arguments=parse_arguments).demo(stats)


def _write(path: str | Path, events: Iterator[dict[str, Any]], stats: WorkloadStats) -> WorkloadStats:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dumps = orjson.dumps
    with open(path, "wb") as raw:
        out = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if path.suffix == ".gz" else raw
        try:
            chunk: list[bytes] = []
            for ev in events:
                line = dumps(ev) + b"\n"
                stats.bytes += len(line)
                chunk.append(line)
                if len(chunk) >= 4096:
                    out.write(b"".join(chunk))
                    chunk.clear()
            out.write(b"".join(chunk))
        finally:
            if out is not raw:
                out.close()
    return stats


def write_events(path: str | Path, n: int, *, seed: int = 1, parse_arguments: bool = False) -> WorkloadStats:
    """Write ``n`` events of the mixed workload to ``path`` (gzip when it ends in ``.gz``)."""
    stats = WorkloadStats()
    return _write(path, generate(n, seed=seed, parse_arguments=parse_arguments, stats=stats), stats)


def write_demo(path: str | Path, *, seed: int = DEMO_SEED, parse_arguments: bool = False) -> WorkloadStats:
    """Write the demo scenario to ``path`` (gzip when it ends in ``.gz``)."""
    stats = WorkloadStats()
    return _write(path, demo_events(seed=seed, parse_arguments=parse_arguments, stats=stats), stats)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a deterministic, realistic Tracee event stream (trace.Event JSON lines).")
    parser.add_argument("--events", type=int, default=10_000, help="number of events (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=None, help=f"random seed (default: 1, or {DEMO_SEED} with --demo)")
    parser.add_argument("--parse-arguments", action="store_true", help="argument values as Tracee's option:parse-arguments strings")
    parser.add_argument("--demo", action="store_true", help="write the demo scenario: noise plus one of every attack (--events is ignored)")
    parser.add_argument("--out", type=Path, help="output file; gzip-compressed when it ends in .gz")
    parser.add_argument("--list-attacks", action="store_true", help="print the attacks and the findings each must produce, and exit")
    args = parser.parse_args(argv)
    if args.list_attacks:
        for attack in ATTACKS.values():
            expected = ", ".join(f"{sig} x{n}" if n > 1 else sig for sig, n in attack.expected.items())
            print(f"{attack.kind:26} {expected:12} {attack.description}")
        return 0
    if args.out is None:
        parser.error("--out is required")
    if args.demo:
        stats = write_demo(args.out, seed=DEMO_SEED if args.seed is None else args.seed, parse_arguments=args.parse_arguments)
    else:
        stats = write_events(args.out, args.events, seed=1 if args.seed is None else args.seed, parse_arguments=args.parse_arguments)
    print(f"{args.out}: {stats.describe()}", file=sys.stderr)
    expected = ", ".join(f"{sig}: {n}" for sig, n in sorted(stats.expected_findings.items(), key=lambda kv: _sig_key(kv[0])))
    print(f"expected findings: {sum(stats.expected_findings.values())} ({expected})", file=sys.stderr)
    return 0


def _sig_key(sig_id: str) -> tuple[str, int]:
    prefix, _, number = sig_id.rpartition("-")
    return (prefix, int(number)) if number.isdigit() else (sig_id, 0)


if __name__ == "__main__":
    raise SystemExit(main())
