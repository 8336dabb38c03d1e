"""The attacks the workload injects, each of which a built-in signature must detect.

:data:`ATTACKS` maps each attack's kind to an :class:`Attack`: a description,
the findings a correct replay through the built-in signatures produces for one
instance of it, and the function that builds its events on an
:class:`activity.Simulation` (a fresh attacker task, then the file opens,
execs, connections, ptrace calls, kernel events ... Tracee would record).
:func:`expected_findings` adds up the findings of several attacks, for the default
signature set or for the rule files shipped in rules/ (:data:`RULE_FILE_FINDINGS`).

Argument values in parse-arguments form come from the engine's renderers
(:mod:`pytracee.engine.parsers`), like those of the benign events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from activity import ELF_HEADER, Simulation
from machine import HOST_ENV, SOCK_STREAM, Proc
from pytracee.engine.parsers import (
    O_RDONLY,
    O_WRONLY,
    PROT_ALERT_MPROTECT_WX_TO_X,
    PTRACE_POKETEXT,
    PTRACE_TRACEME,
    format_mem_prot_alert,
    ptrace_request,
)
from tracer import (
    O_APPEND,
    O_CLOEXEC,
    O_CREAT,
    O_TRUNC,
    PROT_EXEC,
    PROT_READ,
    S_IFIFO,
    inet,
    prot_text,
    unix,
)

__all__ = ["ATTACKS", "RULE_FILE_FINDINGS", "RULE_SETS", "Attack", "attack_findings", "expected_findings"]

PTRACE_ATTACH = ptrace_request("PTRACE_ATTACH")


@dataclass(frozen=True)
class Attack:
    """An attack the workload can inject: what it does and which findings it must produce."""

    kind: str
    description: str
    expected: dict[str, int]  # signature ID -> findings
    build: Callable[[Simulation], list[dict[str, Any]]] = field(repr=False, compare=False)


# --- building blocks ---------------------------------------------------------------------------


def _open_write(w: Simulation, p: Proc, path: str, flags: int = O_WRONLY | O_CREAT | O_TRUNC) -> list[dict[str, Any]]:
    return w.open_file(p, path, flags | O_CLOEXEC, reads=0, mode=0o644)[:2]


def _open_read(w: Simulation, p: Proc, path: str) -> list[dict[str, Any]]:
    return w.open_file(p, path, O_RDONLY, reads=1)


def _ptrace(w: Simulation, p: Proc, request: int, pid: int) -> dict[str, Any]:
    return w.ptrace(
        p, request, pid, 0x55D4_A1B2_3000 if pid else 0, 0x9090_9090_9090_9090 if request == PTRACE_POKETEXT else 0
    )


def _socket_dup(w: Simulation, p: Proc, old: int, new: int, addr: dict[str, str]) -> dict[str, Any]:
    args = [
        {"name": "oldfd", "type": "int32", "value": old},
        {"name": "newfd", "type": "int32", "value": new},
        {"name": "remote_addr", "type": "SockAddr", "value": addr},
    ]
    return w.event(p, "socket_dup", args, new, "dup2")


def _exec_as(
    w: Simulation,
    p: Proc,
    exe: str,
    argv: list[str],
    prev_comm: str,
    comm: str | None = None,
    env: list[str] | None = None,
) -> list[dict[str, Any]]:
    """An exec by attacker task ``p`` turning it into ``exe``."""
    events = [w.execve(p, exe, argv)]
    p.comm, p.exe = (comm or exe.rpartition("/")[2])[:15], exe
    if env is not None:
        p.env = env
    w.rebase(p)
    events.append(w.sched_process_exec(p, exe, argv, prev_comm, S_IFIFO))
    return events


# --- the attacks -------------------------------------------------------------------------------


def _a_reverse_shell(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("bash", "/usr/bin/bash", uid=33)
    addr = inet("198.51.100.23", 4444)
    return [
        w.security_socket_connect(p, 3, SOCK_STREAM, addr),
        w.connect(p, 3, addr),
        *(_socket_dup(w, p, 3, fd, addr) for fd in (0, 1, 2)),
    ]


def _a_ptrace_traceme(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("kworkerds", "/tmp/.ICE-unix/kworkerds", uid=1000)
    return [_ptrace(w, p, PTRACE_TRACEME, 0)]


def _a_ptrace_poketext(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("inject", "/dev/shm/inject")
    target = w.daemons["sshd"].pid
    return [_ptrace(w, p, PTRACE_ATTACH, target), _ptrace(w, p, PTRACE_POKETEXT, target)]


def _a_dynamic_code(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("python3", "/usr/bin/python3.10", uid=1000)
    args = [
        {
            "name": "alert",
            "type": "uint32",
            "value": format_mem_prot_alert(PROT_ALERT_MPROTECT_WX_TO_X) if w.parse else PROT_ALERT_MPROTECT_WX_TO_X,
        },
        {"name": "addr", "type": "trace.Pointer", "value": 0x7F3A_2C00_0000},
        {"name": "len", "type": "uint64", "value": 8192},
        {
            "name": "prot",
            "type": "int32",
            "value": prot_text(PROT_READ | PROT_EXEC) if w.parse else PROT_READ | PROT_EXEC,
        },
        {"name": "prev_prot", "type": "int32", "value": prot_text(7) if w.parse else 7},
        {"name": "pathname", "type": "string", "value": ""},
        {"name": "dev", "type": "uint32", "value": 0},
        {"name": "inode", "type": "uint64", "value": 0},
        {"name": "ctime", "type": "uint64", "value": 0},
    ]
    return [w.event(p, "mem_prot_alert", args, 0, "mprotect")]


def _a_fileless_exec(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("curl", "/usr/bin/curl", container="runner")
    # fexecve() of a memfd: the kernel names the task after "/dev/fd/5"
    p.comm, p.exe = "5", "memfd:x"
    w.rebase(p)
    return [w.sched_process_exec(p, "/dev/fd/5", ["[kworker/0:2]"], "curl", S_IFIFO, interp="/dev/fd/5")]


def _a_notify_on_release(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("sh", "/bin/dash", container="nginx")
    return _open_write(w, p, "/tmp/cgrp/x/notify_on_release")


def _a_ld_so_preload(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("tee", "/usr/bin/tee")
    return _open_write(w, p, "/etc/ld.so.preload", O_WRONLY | O_CREAT | O_APPEND)


def _a_ld_preload_env(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("bash", "/usr/bin/bash", uid=1000)
    env = ["LD_PRELOAD=/tmp/.lib/libprocesshider.so", *HOST_ENV]
    return _exec_as(w, p, "/usr/bin/ps", ["ps", "aux"], "bash", env=env)


def _a_aslr_inspection(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("cat", "/usr/bin/cat", uid=1000)
    return _open_read(w, p, "/proc/sys/kernel/randomize_va_space")


def _a_release_agent(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("sh", "/bin/dash", container="nginx")
    return _open_write(w, p, "/tmp/cgrp/release_agent")


def _a_core_pattern(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("sh", "/bin/dash", container="api")
    return _open_write(w, p, "/proc/sys/kernel/core_pattern")


def _a_loader_modification(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("cp", "/usr/bin/cp")
    return _open_write(w, p, "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")


def _a_k8s_api_connection(w: Simulation) -> list[dict[str, Any]]:
    c = next(c for c in w.containers if c.name == "api")
    p = w.attacker("sh", "/bin/dash", container="api")
    events = _exec_as(
        w,
        p,
        "/usr/bin/curl",
        ["curl", "-sk", "https://10.96.0.1:443/api/v1/namespaces/kube-system/secrets"],
        "sh",
        env=c.env,
    )
    addr = inet("10.96.0.1", 443)
    return [*events, w.security_socket_connect(p, 3, SOCK_STREAM, addr), w.connect(p, 3, addr, -115)]


def _a_disk_mount(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("mount", "/usr/bin/mount", container="runner")
    args = [
        {"name": "dev_name", "type": "string", "value": "/dev/vda1"},
        {"name": "path", "type": "string", "value": "/mnt/host"},
        {"name": "type", "type": "string", "value": "ext4"},
        {"name": "flags", "type": "uint64", "value": 3236757504},
    ]
    return [w.event(p, "security_sb_mount", args, 0, "mount")]


def _a_hidden_elf(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("wget", "/usr/bin/wget", uid=1000)
    return [*_open_write(w, p, "/tmp/.X11-unix/.xmrig"), w.magic_write(p, "/tmp/.X11-unix/.xmrig", ELF_HEADER)]


def _a_web_shell(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("nginx", "/usr/sbin/nginx", container="nginx", uid=101)
    return _exec_as(w, p, "/bin/sh", ["sh", "-c", "id; uname -a; cat /etc/passwd"], "nginx", comm="sh")


def _a_kernel_module(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("insmod", "/usr/sbin/insmod")
    path = "/tmp/.rk/diamorphine.ko"
    dev, inode = w.dev_inode(path)
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


def _a_k8s_cert_theft(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("cat", "/usr/bin/cat")
    return _open_read(w, p, "/etc/kubernetes/pki/apiserver.key")


def _a_docker_socket(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("curl", "/usr/bin/curl", container="runner")
    addr = unix("/var/run/docker.sock")
    return [w.security_socket_connect(p, 3, SOCK_STREAM, addr), w.connect(p, 3, addr)]


def _a_proc_fops_hook(w: Simulation) -> list[dict[str, Any]]:
    args = [
        {"name": "hooked_fops_pointers", "type": "[]trace.HookedSymbolData",
         "value": [{"SymbolName": "hooked_iterate_shared", "ModuleOwner": "diamorphine"}]},
    ]  # fmt: skip
    return [w.event(w.daemons["systemd"], "hooked_proc_fops", args, 0, "")]


def _a_kcore_read(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("dd", "/bin/dd", container="runner")
    return _open_read(w, p, "/proc/kcore")


def _a_dropped_executable(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("wget", "/usr/bin/wget", container="runner")
    events = [*_open_write(w, p, "/tmp/xmrig"), w.magic_write(p, "/tmp/xmrig", ELF_HEADER)]
    # ... and run it (what examples/rules-dir's LOCAL-1 looks for)
    sh = w.attacker("sh", "/bin/busybox", container="runner")
    return [*events, *_exec_as(w, sh, "/tmp/xmrig", ["/tmp/xmrig", "-o", "pool.supportxmr.com:443"], "sh")]


def _a_proc_mem_read(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("python3", "/usr/bin/python3.10")
    return _open_read(w, p, f"/proc/{w.daemons['sshd'].pid}/mem")


def _a_proc_mem_write(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("python3", "/usr/bin/python3.10")
    return _open_write(w, p, f"/proc/{w.daemons['cron'].pid}/mem", O_WRONLY)


def _a_process_vm_writev(w: Simulation) -> list[dict[str, Any]]:
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


def _a_rcd_modification(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("sh", "/usr/bin/dash")
    return _open_write(w, p, "/etc/rc.local", O_WRONLY | O_CREAT | O_APPEND)


def _a_crontab_rename(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("crontab", "/usr/bin/crontab")
    return [w.security_inode_rename(p, "/var/spool/cron/crontabs/tmp.Xk3f9a", "/var/spool/cron/crontabs/root")]


def _a_sudoers(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("tee", "/usr/bin/tee")
    return _open_write(w, p, "/etc/sudoers.d/99-nopasswd")


def _a_sched_debug(w: Simulation) -> list[dict[str, Any]]:
    p = w.attacker("cat", "/bin/busybox", container="runner")
    return _open_read(w, p, "/proc/sched_debug")


def _a_syscall_hook(w: Simulation) -> list[dict[str, Any]]:
    args = [
        {"name": "syscall", "type": "string", "value": "kill"},
        {"name": "address", "type": "string", "value": "ffffffffc0a1b2c0"},
        {"name": "function", "type": "string", "value": "hacked_kill"},
        {"name": "owner", "type": "string", "value": "diamorphine"},
    ]
    return [w.event(w.daemons["systemd"], "hooked_syscall", args, 0, "")]


def _a_sysrq(w: Simulation) -> list[dict[str, Any]]:
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


#: The findings of the rule files shipped in rules/ (off by default: ``--rules lang:rego``,
#: ``lang:cel`` or ``all`` turn them on) for one instance of each attack. Tracee v0.8's Rego set
#: (TRC-2 ... TRC-16) and the CEL detectors (CEL-1xx, each the twin of a TRC-1xx built-in) cover
#: fewer attacks than the built-ins: TRC-6 and TRC-12 select events the workload does not hold
#: (init_module, security_bprm_check), TRC-8 token reads are not among the attacks.
RULE_FILE_FINDINGS: dict[str, dict[str, dict[str, int]]] = {
    "rego": {
        "ptrace-traceme": {"TRC-2": 1},
        "ptrace-poketext": {"TRC-3": 1},
        "proc-mem-write": {"TRC-3": 1},
        "process-vm-writev": {"TRC-3": 1},
        "mprotect-wx-to-x": {"TRC-4": 1},
        "memfd-exec": {"TRC-5": 1},
        "ld-so-preload": {"TRC-7": 1},
        "dropped-elf": {"TRC-9": 1},
        "k8s-cert-theft": {"TRC-10": 1},
        "disk-mount": {"TRC-11": 1},
        "cgroup-release-agent": {"TRC-14": 1},
        "syscall-hook": {"TRC-15": 1},
        "proc-fops-hook": {"TRC-16": 1},
    },
    "cel": {
        "reverse-shell": {"CEL-101": 3},
        "ptrace-traceme": {"CEL-102": 1},
        "ptrace-poketext": {"CEL-103": 1},
        "mprotect-wx-to-x": {"CEL-104": 1},
        "memfd-exec": {"CEL-105": 1},
        "disk-mount": {"CEL-1014": 1},
        "web-shell": {"CEL-1016": 1},
        "docker-sock-connect": {"CEL-1019": 1},
        "proc-fops-hook": {"CEL-1020": 1},
        "dropped-elf": {"CEL-1022": 1},
        "proc-mem-write": {"CEL-1024": 1},
        "process-vm-writev": {"CEL-1025": 1},
        "sudoers": {"CEL-1028": 1},
    },
}
assert all(kind in ATTACKS for table in RULE_FILE_FINDINGS.values() for kind in table)
#: The signature sets ``tracee-rules --rules`` chooses, by the languages in them.
RULE_SETS: dict[str, tuple[str, ...]] = {
    "default": ("python",),
    "lang:python": ("python",),
    "lang:rego": ("rego",),
    "lang:cel": ("cel",),
    "all": ("python", "rego", "cel"),
}


def attack_findings(kind: str, rules: str = "default") -> Counter[str]:
    """The findings one instance of attack ``kind`` produces with the signature set ``rules``
    (a key of :data:`RULE_SETS`: the default set, ``lang:python``, ``lang:rego``, ``lang:cel``, ``all``)."""
    if rules not in RULE_SETS:
        raise ValueError(f"unknown signature set {rules!r}; expected one of {', '.join(RULE_SETS)}")
    found: Counter[str] = Counter()
    for language in RULE_SETS[rules]:
        found.update(ATTACKS[kind].expected if language == "python" else RULE_FILE_FINDINGS[language].get(kind, {}))
    return found


def expected_findings(kinds: Sequence[str] | Mapping[str, int] | None = None, rules: str = "default") -> Counter[str]:
    """Signature ID -> findings that one instance of each attack in ``kinds`` (default: all) produces
    with the signature set ``rules`` (see :func:`attack_findings`); a mapping gives each kind's count."""
    counts = kinds if isinstance(kinds, Mapping) else Counter(kinds if kinds is not None else list(ATTACKS))
    total: Counter[str] = Counter()
    for kind, count in counts.items():
        for sig_id, n in attack_findings(kind, rules).items():
            total[sig_id] += n * count
    return total
