/* SPDX-License-Identifier: GPL-2.0 */
/*
 * maps.h: the record header, the per-thread/per-process state and every map.
 *
 * Maps set from user space before events flow (collector/collector.py):
 *   events        ring buffer (size set before load)
 *   evsel         event id -> SEL_* bits (syscalls also say which derived events need them)
 *   sysargs       syscall id -> argument kinds (T_*) for the generic argument recorder
 *   compat_ids    ia32 syscall number -> x86_64 number (COMPAT_* bits; collector/compat.py)
 *   fcfg          the filter configuration (one entry)
 *   f_pids, f_uids, f_comms, f_mntns   allow sets of the filters
 *   prog_vma      (security.h) enter_mprotect_vma, when the kernel loaded it
 * Maps user space reads:
 *   lost          per-CPU count of ring-buffer reserve failures
 *   trunc_args    (common.h) per-CPU count of argument values cut at a size limit
 *   proc_info     tgid -> executable path (for the decoder's "executable")
 *   cgrp_info     cgroup id -> cgroup path components and container state
 */
#ifndef TRACEE_MAPS_H
#define TRACEE_MAPS_H

#include "common.h"

/* evsel bits. */
#define SEL_EVENT         0x1   /* emit this event */
#define SEL_ENTER         0x2   /* syscall: a derived event needs its enter handler */
#define SEL_EXIT          0x4   /* syscall: a derived event needs its exit handler */
#define SEL_KPROBE        0x8   /* LSM event: its kprobe program emits it (no emulation) */
#define SEL_EXIT_ARGS     0x10  /* syscall: nothing to do at enter; its arguments are read at exit */

/* sysargs kinds (collector/wire.py: T_*). */
#define T_NONE            0
#define T_INT             1    /* int32, sign-extended */
#define T_UINT            2    /* uint32 */
#define T_LONG            3    /* int64 */
#define T_ULONG           4    /* uint64, pointers */
#define T_U16             5
#define T_STR             10   /* user string */
#define T_STRARR          11   /* user char *const[] */
#define T_SOCKADDR        12   /* user struct sockaddr, length in the next argument */
#define T_SOCKADDR_EXIT   13   /* user struct sockaddr filled by the syscall (accept) */

/* fcfg.flags */
#define F_PID             0x01
#define F_UID             0x02
#define F_COMM            0x04
#define F_MNTNS           0x08
#define F_CONTAINER       0x10
#define F_FOLLOW          0x20
#define F_NEW_PIDS        0x40

/* cgroup states (Tracee's container_state_e). */
#define CG_UNKNOWN        0
#define CG_EXISTED        1   /* seen first on an event: existed before tracing began */
#define CG_CREATED        2   /* created (cgroup_mkdir) after tracing began */
#define CG_STARTED        3   /* created after tracing began, and something exec'd in it */

/* event_header.flags */
#define HDR_CG_STATE      0x3  /* the cgroup's state (CG_*) */
#define HDR_COMPAT        0x4  /* the event happened in a 32-bit (ia32) syscall */

/* compat_ids values: the x86_64 number in the low 16 bits. */
#define COMPAT_VALID      0x80000000u  /* the ia32 syscall has an x86_64 twin */
#define COMPAT_NAME_ONLY  0x40000000u  /* its arguments differ: named in contexts, never traced */
#define COMPAT_NR_MASK    0xffff

#define CG_NAMES          4   /* path components kept: the cgroup and 3 ancestors */
#define CG_NAME_LEN       128  /* cri-containerd-<64 hex>.scope is 85 bytes */

#define EXE_LEN           256

/* The fixed header of every record (collector/wire.py: EVENT_HEADER). */
struct event_header {
    u64 ts;                 /* bpf_ktime_get_boot_ns */
    u64 start_time;         /* thread start, boot ns */
    u64 leader_start_time;  /* thread-group leader start, boot ns */
    u64 parent_start_time;  /* real parent start, boot ns */
    u64 cgroup_id;
    s64 retval;
    u32 event_id;
    s32 syscall;            /* the syscall the event came from, -1 if none */
    u32 host_pid;
    u32 host_tid;
    u32 host_ppid;
    u32 pid;                /* in the task's pid namespace */
    u32 tid;
    u32 ppid;
    u32 uid;
    u32 mnt_ns;
    u32 pid_ns;
    u32 cpu;
    u32 flags;              /* HDR_CG_STATE: cgroup state (CG_*); HDR_COMPAT */
    u32 exe_gen;            /* proc_info generation of the executable path */
    char comm[TASK_COMM_LEN];
    char uts[UTS_LEN];
};

#define HDR_SIZE sizeof(struct event_header)

/*
 * The record's layouts, in the object's BTF through this variable (no map holds them):
 * collector/wire.py's copies are checked against them (tests/test_wire_layouts.py, and
 * the loader). Nothing refers to it; libbpf skips its section (not a data section), so
 * it costs no map.
 */
struct wire_layouts {
    struct event_header header;
    struct arg_slot slot;
    struct var_arg var;
    struct strarr_arg strarr;
};
struct wire_layouts wire_layouts SEC(".wire") __attribute__((used)) = {};

/* The per-CPU event buffer. */
struct event_buf {
    u8 data[EVT_SIZE];
    u32 pad[2];
};

/*
 * What a thread's cached context depends on: the header cached in its pending record stays
 * valid while the task, its parent, its namespaces, its cgroups and its mm are the same
 * objects (comm, uid and the cpu are re-read for every event; a hostname change of the
 * thread's uts namespace is not seen until one of those changes).
 */
struct ctx_key {
    u64 task;
    u64 parent;
    u64 nsproxy;
    u64 cgroups;
    u64 mm;
};

/*
 * A syscall in flight (per thread): its raw arguments and its record, built in place and
 * submitted from here at exit: the header (the thread's cached context, see ctx_key)
 * followed by the arguments read at enter.
 */
struct pending {
    s64 id;                 /* syscall id (x86_64 number), -1 once consumed */
    u64 args[6];            /* as the x86_64 syscall takes them (compat ones rebuilt, see args.h) */
    u32 cur;                /* end of the record in rec (the arguments start at HDR_SIZE) */
    u32 retry;              /* a string was unreadable at enter: read the arguments again at exit */
    u32 key_valid;          /* key (and the header in rec) describe this thread */
    u32 compat;             /* a 32-bit (ia32) syscall: pointer arrays hold 32-bit pointers */
    struct ctx_key key;
    u8 rec[PEND_SIZE];
};

struct sys_desc {
    u8 kinds[6];
    u8 pad[2];
};

struct filter_cfg {
    u32 self_tgid;          /* the collector: never traced */
    u32 flags;              /* F_* */
    u32 host_mnt_ns;        /* container-only: tasks outside this mount namespace */
    s32 cgroup_subsys;      /* -1: cgroup v2 (dfl_cgrp); else the v1 controller's id */
    u32 cgroup_hierarchy;   /* hierarchy id of that controller (0 for v2) */
    u32 pad;
    u64 start_ts;           /* boot ns when tracing began (pid=new) */
    u64 wakeup_bytes;       /* wake the reader when this much data is waiting (0: every record) */
};

struct proc_info {
    u64 start_time;         /* leader start time: detects pid reuse */
    u32 gen;                /* bumped at every exec; exe[gen & 1] is the current path */
    u32 pad;
    u32 len[2];
    char exe[2][EXE_LEN];   /* the previous one stays for events decoded after an exec */
};

struct cgrp_info {
    u32 state;              /* CG_* */
    u32 pad;
    char names[CG_NAMES][CG_NAME_LEN];   /* [0] the cgroup's own name, then its ancestors */
};

struct wx_key {
    u32 tgid;
    u32 pad;
    u64 addr;
};

struct wx_region {
    u64 len;
    u32 prot;
    u32 pad;
};

/*
 * Load-time constants, written by the loader into this section's map before load
 * (collector/collector.py: LoadConfig). The verifier sees them as constants and never
 * looks at the code they turn off (a helper the kernel lacks, a map type it cannot make).
 */
struct load_cfg {
    u32 kernel_btf;         /* the running kernel has BTF: BTF-typed helpers may be used */
    u32 perf_output;        /* records go to perf_events (kernels before 5.8), not events */
};
const volatile struct load_cfg load_cfg SEC(".rodata.load") = {};

/* The output: a ring buffer (size set before load) ... */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 32 << 20);
} events SEC(".maps");

/* ... or, with load_cfg.perf_output, per-CPU perf buffers (the reader sets one per CPU). */
struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(u32));
    __uint(value_size, sizeof(u32));
} perf_events SEC(".maps");

/* [0]: ring-buffer reserve failures, [1]: the last failure's error code (per CPU). */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 3);
    __type(key, u32);
    __type(value, u64);
} lost SEC(".maps");

/* Event buffers: 0 syscall enter, 1 syscall exit, 2 scheduler/cgroup events, 3 kprobes. */
#define BUF_ENTER  0
#define BUF_EXIT   1
#define BUF_SCHED  2
#define BUF_KPROBE 3
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 4);
    __type(key, u32);
    __type(value, struct event_buf);
} bufs SEC(".maps");

/* Scratch for path reconstruction (see filesystem.h). */
#define PATH_HALF 4096
struct path_buf {
    u8 data[PATH_HALF * 2];
    u32 pos;    /* kept in memory so the verifier need not track it precisely */
    u32 pad;
};
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, u32);
    __type(value, struct path_buf);
} path_bufs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, MAX_EVENT_ID);
    __type(key, u32);
    __type(value, u32);
} evsel SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, MAX_SYSCALLS);
    __type(key, u32);
    __type(value, struct sys_desc);
} sysargs SEC(".maps");

/* ia32 syscall number -> COMPAT_* bits and x86_64 number (0: not traced). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, MAX_SYSCALLS);
    __type(key, u32);
    __type(value, u32);
} compat_ids SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, u32);
    __type(value, struct filter_cfg);
} fcfg SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, u32);
    __type(value, u8);
} f_pids SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, u32);
    __type(value, u8);
} f_uids SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, char[TASK_COMM_LEN]);
    __type(value, u8);
} f_comms SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, u32);
    __type(value, u8);
} f_mntns SEC(".maps");

/* Processes traced because an ancestor was (follow). */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, u32);
    __type(value, u8);
} followed SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 1024);
    __type(key, u32);
    __type(value, struct pending);
} pending SEC(".maps");

/* What a thread was when it called execve/execveat (for sched_process_exec). */
struct exec_info {
    char comm[TASK_COMM_LEN];   /* prev_comm */
    s32 syscall;                /* execve or execveat (the new image's regs no longer say) */
    u32 pad;
};
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, u32);
    __type(value, struct exec_info);
} exec_comm SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, u32);
    __type(value, struct proc_info);
} proc_info SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, u64);
    __type(value, struct cgrp_info);
} cgrp_info SEC(".maps");

/* Memory regions a process mapped or protected writable and executable (mem_prot_alert
 * alert 4 where the VMAs cannot be read: see security.h). */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 8192);
    __type(key, struct wx_key);
    __type(value, struct wx_region);
} wx_regions SEC(".maps");

/* Zeroed values to create entries from. */
struct scratch_init {
    struct pending pend;
    struct proc_info proc;
    struct cgrp_info cgrp;
};
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, u32);
    __type(value, struct scratch_init);
} zero SEC(".maps");

statfunc struct event_buf *get_buf(u32 idx)
{
    return bpf_map_lookup_elem(&bufs, &idx);
}

statfunc u32 event_sel(u32 id)
{
    u32 *v = bpf_map_lookup_elem(&evsel, &id);
    return v ? *v : 0;
}

statfunc struct filter_cfg *get_cfg(void)
{
    u32 k = 0;
    return bpf_map_lookup_elem(&fcfg, &k);
}

statfunc struct scratch_init *get_zero(void)
{
    u32 k = 0;
    struct scratch_init *z = bpf_map_lookup_elem(&zero, &k);
    return z;
}

/* A record that could not be sent: counted in lost[0], its error code kept in lost[1]. */
statfunc void count_lost(long err)
{
    u32 k = 0;
    u64 *n = bpf_map_lookup_elem(&lost, &k);
    if (n)
        __sync_fetch_and_add(n, 1);
    k = 1;
    n = bpf_map_lookup_elem(&lost, &k);
    if (n)
        *n = err;
}

/* Send one record of size bytes (bounded by the caller); count a failure in `lost`. */
statfunc void send_record(void *ctx, void *data, u64 size)
{
    if (load_cfg.perf_output) {
        /* the reader is woken by the perf event's watermark (set when it opened the buffer) */
        long err = bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, data, size);
        if (err)
            count_lost(-err);
        return;
    }
    /* Wake the reader only once enough has piled up (it also polls with a timeout):
     * a wakeup per record costs the producing task more than the record itself. */
    u64 flags = 0;   /* adaptive: wake the reader if it has caught up */
    struct filter_cfg *cfg = get_cfg();
    if (cfg && cfg->wakeup_bytes) {
        u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
        flags = avail < cfg->wakeup_bytes && avail + size >= cfg->wakeup_bytes ? BPF_RB_FORCE_WAKEUP
                                                                               : BPF_RB_NO_WAKEUP;
    }
    long err = bpf_ringbuf_output(&events, data, size, flags);
    for (int i = 0; i < 3 && err == -EAGAIN_VAL; i++) {
        /* retried: a refusal with room left is transient (the ring's lock); counted in [2] */
        u32 k = 2;
        u64 *n = bpf_map_lookup_elem(&lost, &k);
        if (n)
            __sync_fetch_and_add(n, 1);
        err = bpf_ringbuf_output(&events, data, size, flags);
    }
    if (err)
        count_lost(-err);
}

/* Submit the first size bytes of an event buffer. */
statfunc void submit(void *ctx, struct event_buf *b, u32 size)
{
    size = BOUND(size, 0x7fff);
    if (size > EVT_MAX_RECORD || size < HDR_SIZE) {
        count_lost(E2BIG_VAL);   /* a record longer than the buffer: a bug, never silent */
        return;
    }
    send_record(ctx, b->data, size);
}

/* Submit a pending syscall's record (header and arguments, built in place). */
statfunc void submit_pending(void *ctx, struct pending *p, u32 size)
{
    size = BOUND(size, 0x7fff);
    if (size > PEND_SIZE || size < HDR_SIZE) {
        count_lost(E2BIG_VAL);
        return;
    }
    send_record(ctx, p->rec, size);
}

#endif /* TRACEE_MAPS_H */
