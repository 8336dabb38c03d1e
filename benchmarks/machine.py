"""The simulated node of the workload: its host daemons, containers and tasks.

A Kubernetes node (``ip-10-0-1-23``) with systemd, cron, sshd, containerd,
dockerd, the kubelet and node_exporter on the host, a user logged in over SSH,
pods running nginx, a Python API, PostgreSQL, Redis and CoreDNS, and a plain
Docker CI container. :class:`Machine` holds them with the clock and the random
source everything is drawn from; each task (:class:`Proc`) carries the context
fields Tracee v0.24.1 puts on its events (``Proc.base``, in ``trace.Event``'s
key order), so building an event only adds the per-event fields.

What the tasks do is elsewhere: the events Tracee records in :mod:`tracer`, the
benign activity in :mod:`activity`, the attacks in :mod:`attacks`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

#: 2024-06-03T16:00:00Z, in nanoseconds: where the stream's clock starts.
BASE_TIMESTAMP = 1_717_430_400_000_000_000
HOST_NAME = "ip-10-0-1-23"
HOST_PID_NS = 4026531836
HOST_MNT_NS = 4026531840
#: Socket types (of :attr:`Container.peers` and socket events).
SOCK_STREAM, SOCK_DGRAM = 1, 2

#: The environment of the logged-in user's shell.
HOST_ENV = [
    "SHELL=/bin/bash",
    "PWD=/home/ubuntu",
    "LOGNAME=ubuntu",
    "HOME=/home/ubuntu",
    "LANG=C.UTF-8",
    "USER=ubuntu",
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
]
#: The environment systemd gives the host daemons.
DAEMON_ENV = [
    "LANG=C.UTF-8",
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "INVOCATION_ID=9c1f2e7b4a6d4e0f8a3b5c7d9e1f3a5b",
]


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


class Machine:
    """The simulated node: its processes and containers, its clock and its random source.

    :param seed: everything is drawn from ``random.Random(seed)``.
    :param start: where the clock starts, in nanoseconds since the epoch.
    """

    def __init__(self, seed: int = 1, *, start: int = BASE_TIMESTAMP) -> None:
        self.rng = random.Random(seed)
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

    # --- identities and the tasks at start ------------------------------------------------

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
        self.rebase(proc)
        return proc

    def rebase(self, p: Proc) -> None:
        """Precompute ``p.base``, the event fields that only depend on the task (key order is trace.Event's).

        Call it again after changing the task's name, executable or environment (an exec).
        """
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
            "nginx": [
                ("nginx", "/usr/sbin/nginx", 0),
                ("nginx", "/usr/sbin/nginx", 101),
                ("nginx", "/usr/sbin/nginx", 101),
            ],
            "api": [("gunicorn", "/usr/local/bin/python3.12", 1000), ("gunicorn", "/usr/local/bin/python3.12", 1000)],
            "postgres": [
                ("postgres", "/usr/lib/postgresql/16/bin/postgres", 999),
                ("postgres", "/usr/lib/postgresql/16/bin/postgres", 999),
            ],
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

    # --- new tasks and files ---------------------------------------------------------------

    def new_pids(self, c: Container | None) -> tuple[int, int]:
        """The PID and host PID of a new task in container ``c`` (or on the host: both the same)."""
        if c is not None:
            c.next_pid += self.rng.randrange(1, 5)
            pid = c.next_pid
            host_pid = self._next_host_pid = self._next_host_pid + self.rng.randrange(1, 40)
        else:
            pid = host_pid = self._next_host_pid = self._next_host_pid + self.rng.randrange(1, 40)
        return pid, host_pid

    def attacker(self, comm: str, exe: str, *, container: str | None = None, uid: int = 0) -> Proc:
        """A fresh task of the attacker: in the container named ``container`` or on the host."""
        c = next(c for c in self.containers if c.name == container) if container else None
        parent = self.container_main[c.id] if c is not None else self.daemons["sshd"]
        pid, host_pid = self.new_pids(c)
        return self._proc(
            pid=pid, ppid=parent.pid, comm=comm, exe=exe, uid=uid, container=c, host_pid=host_pid,
            host_ppid=parent.host_pid, parent_entity=parent.entity, age_ns=self.rng.randrange(10**7, 10**10),
            cwd="/tmp",
        )  # fmt: skip

    def dev_inode(self, path: str) -> tuple[int, int]:
        """The device and inode of the file at ``path``, the same every time (procfs/sysfs, /tmp or the root disk)."""
        h = stable_hash(path)
        dev = (
            45
            if path.startswith(("/proc/", "/sys/"))
            else (271_581_185 if not path.startswith("/tmp/") else 271_581_186)
        )
        return dev, 1_000 + h % 4_000_000


def stable_hash(text: str) -> int:
    """A 32-bit FNV-1a hash of ``text``: unlike ``hash()``, the same in every process."""
    h = 2166136261
    for byte in text.encode():
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h
