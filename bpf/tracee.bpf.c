// SPDX-License-Identifier: GPL-2.0
/*
 * tracee.bpf.c: the collector's programs.
 *
 * Only tracepoint-based attach types are used (raw_tp), so this loads on hosts that refuse
 * kprobes, fentry/fexit and LSM programs. Tracee's LSM/kprobe events are emulated:
 *
 *   syscalls                 raw_tp/sys_enter records the arguments per thread, raw_tp/sys_exit
 *                            submits the event with the return value (execve/execveat are
 *                            submitted at enter, with the caller's context, as Tracee does)
 *   security_file_open       exit of open/openat/openat2/creat/open_by_handle_at: fd -> file
 *   security_socket_connect  exit of connect: the socket's peer address (the kernel's view)
 *   security_inode_rename    exit of rename/renameat/renameat2
 *   security_sb_mount        exit of mount
 *   magic_write              enter of write/pwrite64 at file offset 0 of a regular file
 *   mem_prot_alert           exit of mmap (alert 1, W+X); enter of mprotect/pkey_mprotect: alerts
 *                            2, 3, 4 from each VMA of the range (bpf_find_vma: its vm_flags and
 *                            file, 5.17+ with BTF), else alert 4 for regions mapped W+X before
 *   socket_dup               exit of dup/dup2/dup3 duplicating an INET socket
 *   security_bprm_check,     raw_tp/sched_process_exec (bprm->file)
 *   sched_process_exec
 *   sched_process_fork/exit  raw_tp/sched_process_fork, raw_tp/sched_process_exit
 *
 * Per-syscall handlers are tail calls (prog_enter / prog_exit, indexed by syscall id);
 * enter_mprotect_vma (prog_vma) and exec_interp (prog_exec) are optional ones, put in their
 * slot by the loader when the kernel loads them (their bpf_find_vma callback needs 5.13+).
 *
 * 32-bit (ia32) syscalls, made by 32-bit programs or by 64-bit ones with `int $0x80`, are
 * traced as Tracee traces them: the thread's TS_COMPAT status says the syscall is one, the
 * compat_ids map (filled by the collector from collector/compat.py) turns its ia32 number
 * into the x86_64 twin's, under which it is recorded and reported at enter and exit alike,
 * and the record's header carries HDR_COMPAT (contextFlags.isCompat). Its arguments are read
 * from bx cx dx si di bp (32 bits each) and rebuilt where the ia32 entry point passes them
 * another way (args.h: compat_fixup_args); argv/envp are arrays of 32-bit pointers. An ia32
 * syscall without an x86_64 twin of the same arguments is not traced (collector/compat.py:
 * LEFT_OUT: socketcall, old_mmap, the 16-bit-id set*id calls, umount).
 */
#include "security.h"
#include "kprobes.h"

char LICENSE[] SEC("license") = "GPL";

/* ---- tail-call tables ----------------------------------------------------------- */

int enter_args(struct bpf_raw_tracepoint_args *ctx);
int enter_exec(struct bpf_raw_tracepoint_args *ctx);
int enter_write(struct bpf_raw_tracepoint_args *ctx);
int enter_mprotect(struct bpf_raw_tracepoint_args *ctx);
int exit_open(struct bpf_raw_tracepoint_args *ctx);
int exit_dup(struct bpf_raw_tracepoint_args *ctx);
int exit_mmap(struct bpf_raw_tracepoint_args *ctx);
int exit_connect(struct bpf_raw_tracepoint_args *ctx);
int exit_rename(struct bpf_raw_tracepoint_args *ctx);
int exit_mount(struct bpf_raw_tracepoint_args *ctx);

#define MISC_ARGS 0
#define MISC_EXEC 1

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 2);
    __type(key, u32);
    __array(values, int(struct bpf_raw_tracepoint_args *));
} prog_misc SEC(".maps") = {
    .values = {
        [MISC_ARGS] = (void *)&enter_args,
        [MISC_EXEC] = (void *)&enter_exec,
    },
};

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, MAX_SYSCALLS);
    __type(key, u32);
    __array(values, int(struct bpf_raw_tracepoint_args *));
} prog_enter SEC(".maps") = {
    .values = {
        [SYS_WRITE] = (void *)&enter_write,
        [SYS_PWRITE64] = (void *)&enter_write,
        [SYS_MPROTECT] = (void *)&enter_mprotect,
        [SYS_PKEY_MPROTECT] = (void *)&enter_mprotect,
    },
};

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, MAX_SYSCALLS);
    __type(key, u32);
    __array(values, int(struct bpf_raw_tracepoint_args *));
} prog_exit SEC(".maps") = {
    .values = {
        [SYS_OPEN] = (void *)&exit_open,
        [SYS_CREAT] = (void *)&exit_open,
        [SYS_OPENAT] = (void *)&exit_open,
        [SYS_OPENAT2] = (void *)&exit_open,
        [SYS_OPEN_BY_HANDLE_AT] = (void *)&exit_open,
        [SYS_DUP] = (void *)&exit_dup,
        [SYS_DUP2] = (void *)&exit_dup,
        [SYS_DUP3] = (void *)&exit_dup,
        [SYS_MMAP] = (void *)&exit_mmap,
        [SYS_CONNECT] = (void *)&exit_connect,
        [SYS_RENAME] = (void *)&exit_rename,
        [SYS_RENAMEAT] = (void *)&exit_rename,
        [SYS_RENAMEAT2] = (void *)&exit_rename,
        [SYS_MOUNT] = (void *)&exit_mount,
    },
};

/* ---- syscalls ---------------------------------------------------------------------- */

SEC("raw_tp/sys_enter")
int tracee_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
    long id = ctx->args[1];
    struct task_struct *t = (void *)bpf_get_current_task();
    bool compat = in_compat_syscall(t);
    if (compat)
        id = compat_syscall_id(id, false);   /* the x86_64 twin; -1: not traced */
    if ((unsigned long)id >= MAX_SYSCALLS)
        return 0;
    u32 sel = event_sel(id);
    if (!sel || (sel & (SEL_EXIT_ARGS | SEL_ENTER)) == SEL_EXIT_ARGS)
        return 0;   /* not traced, or all done at exit */
    struct filter_cfg *cfg = get_cfg();
    if (!cfg)
        return 0;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!should_trace(cfg, t, pid_tgid >> 32))
        return 0;
    struct pending *p = pending_for((u32)pid_tgid);
    if (!p)
        return 0;
    p->id = id;
    p->cur = HDR_SIZE;
    p->compat = compat;
    read_syscall_args((struct pt_regs *)ctx->args[0], p->args, compat);
    if (compat)
        compat_fixup_args(id, p->args);

    if (id == SYS_EXECVE || id == SYS_EXECVEAT) {
        bpf_tail_call(ctx, &prog_misc, MISC_EXEC);
        return 0;
    }
    if (sel & SEL_EVENT)
        bpf_tail_call(ctx, &prog_misc, MISC_ARGS);
    if (sel & SEL_ENTER)
        bpf_tail_call(ctx, &prog_enter, (u32)id);
    return 0;
}

/* Record the selected syscall's arguments in the thread's pending buffer. */
SEC("raw_tp")
int enter_args(struct bpf_raw_tracepoint_args *ctx)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct pending *p = bpf_map_lookup_elem(&pending, &tid);
    if (!p)
        return 0;
    u32 id = (u32)p->id;
    struct sys_desc *d = bpf_map_lookup_elem(&sysargs, &id);
    if (!d)
        return 0;
    p->cur = HDR_SIZE;
    record_fixed(p->rec, &p->cur, PEND_MASK, d, p->args);
    p->retry = record_var(p->rec, &p->cur, PEND_MASK, d, p->args);
    if (event_sel(id) & SEL_ENTER)
        bpf_tail_call(ctx, &prog_enter, id);
    return 0;
}

/* execve/execveat: remember the caller's comm; submit the syscall event now. */
SEC("raw_tp")
int enter_exec(struct bpf_raw_tracepoint_args *ctx)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    struct pending *p = bpf_map_lookup_elem(&pending, &tid);
    if (!p)
        return 0;
    u32 id = (u32)p->id;
    p->id = -1;
    u32 sel = event_sel(id);
    if (sel & SEL_ENTER) {
        struct exec_info info = {.syscall = id};
        bpf_get_current_comm(info.comm, sizeof(info.comm));
        bpf_map_update_elem(&exec_comm, &tid, &info, BPF_ANY);
    }
    if (!(sel & SEL_EVENT))
        return 0;
    struct event_buf *b = get_buf(BUF_ENTER);
    struct filter_cfg *cfg = get_cfg();
    if (!b || !cfg)
        return 0;
    struct task_struct *t = (void *)bpf_get_current_task();
    __builtin_memcpy(b->data, pending_header(p, cfg, t, id, id, 0), HDR_SIZE);
    u8 *buf = b->data;
    u32 off = HDR_SIZE;
    u64 *a = p->args;
    if (id == SYS_EXECVE) {
        /* pathname, argv, envp */
        off = put_user_str(buf, off, EVT_MASK, (const void *)a[0]);
        off = put_user_strarr(buf, off, (const void *)a[1], p->compat);
        off = put_user_strarr(buf, off, (const void *)a[2], p->compat);
    } else {
        /* dirfd, pathname, argv, envp, flags */
        off = put_u64(buf, off, EVT_MASK, (s64)(s32)a[0]);
        off = put_u64(buf, off, EVT_MASK, (s64)(s32)a[4]);
        off = put_user_str(buf, off, EVT_MASK, (const void *)a[1]);
        off = put_user_strarr(buf, off, (const void *)a[2], p->compat);
        off = put_user_strarr(buf, off, (const void *)a[3], p->compat);
    }
    submit(ctx, b, off);
    return 0;
}

SEC("raw_tp/sys_exit")
int tracee_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
    long id = syscall_nr((struct pt_regs *)ctx->args[0]);
    bool compat = in_compat_syscall((void *)bpf_get_current_task());
    if (compat)
        id = compat_syscall_id(id, false);   /* as at enter */
    if ((unsigned long)id >= MAX_SYSCALLS)
        return 0;
    u32 sel = event_sel(id);
    if (!(sel & (SEL_EVENT | SEL_EXIT)))
        return 0;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    struct pending *p;
    if ((sel & (SEL_EXIT_ARGS | SEL_ENTER)) == SEL_EXIT_ARGS) {
        /* nothing was done at enter (one program run and one map lookup less per syscall):
         * the filters, then the arguments from the registers, which the syscall left as they
         * were, and from memory, which it has faulted in (recorded below, as on a retry) */
        struct filter_cfg *fcfg = get_cfg();
        if (!fcfg || !should_trace(fcfg, (void *)bpf_get_current_task(), pid_tgid >> 32))
            return 0;
        p = pending_for(tid);
        if (!p)
            return 0;
        p->id = id;
        p->compat = compat;
        read_syscall_args((struct pt_regs *)ctx->args[0], p->args, compat);
        if (compat)
            compat_fixup_args(id, p->args);
        p->retry = 1;
    } else {
        p = bpf_map_lookup_elem(&pending, &tid);
        if (!p || p->id != id)
            return 0;
    }

    if (sel & SEL_EVENT) {
        struct filter_cfg *cfg = get_cfg();
        u32 sid = (u32)id;
        struct sys_desc *d = bpf_map_lookup_elem(&sysargs, &sid);
        if (cfg && d) {
            long ret = ctx->args[1];
            struct task_struct *t = (void *)bpf_get_current_task();
            /* the record is complete in p->rec but for the header's per-event fields */
            pending_header(p, cfg, t, sid, sid, ret);
            if (p->retry) {
                /* read the arguments again now that the syscall touched their pages */
                p->cur = HDR_SIZE;
                record_fixed(p->rec, &p->cur, PEND_MASK, d, p->args);
                record_var(p->rec, &p->cur, PEND_MASK, d, p->args);
            }
            u32 off = p->cur;
            int i = exit_sockaddr_index(d);
            if (i >= 0 && i < 5) {
                /* accept/accept4: the peer address the kernel wrote; its length after it */
                int addrlen = 0;
                if (ret >= 0)
                    bpf_probe_read_user(&addrlen, sizeof(addrlen), (void *)p->args[i + 1]);
                const void *addr = ret >= 0 ? (const void *)p->args[i] : 0;
                off = put_user_sockaddr(p->rec, off, PEND_MASK, addr, addrlen);
            }
            submit_pending(ctx, p, off);
        }
    }
    if (sel & SEL_EXIT)
        bpf_tail_call(ctx, &prog_exit, (u32)id);
    p->id = -1;
    return 0;
}

/* ---- processes ---------------------------------------------------------------------- */

SEC("raw_tp/sched_process_fork")
int tracee_sched_fork(struct bpf_raw_tracepoint_args *ctx)
{
    struct filter_cfg *cfg = get_cfg();
    if (!cfg)
        return 0;
    struct task_struct *parent = (struct task_struct *)ctx->args[0];
    struct task_struct *child = (struct task_struct *)ctx->args[1];
    struct task_struct *t = (void *)bpf_get_current_task();
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (!should_trace(cfg, t, tgid))
        return 0;
    if (cfg->flags & F_FOLLOW) {
        u32 child_tgid = RD(child, tgid);
        u8 one = 1;
        bpf_map_update_elem(&followed, &child_tgid, &one, BPF_ANY);
    }
    if (!(event_sel(EV_SCHED_PROCESS_FORK) & SEL_EVENT))
        return 0;
    struct event_buf *b = get_buf(BUF_SCHED);
    if (!b)
        return 0;
    fill_header((struct event_header *)b->data, cfg, t, EV_SCHED_PROCESS_FORK, current_syscall(), 0);
    u8 *buf = b->data;
    u32 off = HDR_SIZE;
    struct task_struct *pproc = RD(child, real_parent, group_leader);
    struct task_struct *leader = RD(child, group_leader);
    /* the forking thread */
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)RD(parent, pid));
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)task_ns_tid(parent));
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)RD(parent, tgid));
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)task_ns_tgid(parent));
    off = put_u64(buf, off, EVT_MASK, task_start_time(parent));
    /* the new task */
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)RD(child, pid));
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)task_ns_tid(child));
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)RD(child, tgid));
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)task_ns_tgid(child));
    off = put_u64(buf, off, EVT_MASK, task_start_time(child));
    /* the parent process (leader of the new task's parent) */
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)RD(pproc, pid));
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)task_ns_tid(pproc));
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)RD(pproc, tgid));
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)task_ns_tgid(pproc));
    off = put_u64(buf, off, EVT_MASK, task_start_time(pproc));
    /* the new task's thread-group leader */
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)RD(leader, pid));
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)task_ns_tid(leader));
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)RD(leader, tgid));
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)task_ns_tgid(leader));
    off = put_u64(buf, off, EVT_MASK, task_start_time(leader));
    submit(ctx, b, off);
    return 0;
}

int exec_body(struct bpf_raw_tracepoint_args *ctx);

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 2);
    __type(key, u32);
    __array(values, int(struct bpf_raw_tracepoint_args *));
} prog_exec SEC(".maps") = {
    .values = {
        [EXEC_BODY] = (void *)&exec_body,
    },
};

SEC("raw_tp/sched_process_exec")
int tracee_sched_exec(struct bpf_raw_tracepoint_args *ctx)
{
    struct interp_slot *s = get_interp_slot();
    if (s)
        s->task = 0;
    bpf_tail_call(ctx, &prog_exec, EXEC_INTERP);   /* falls through when the slot is empty */
    bpf_tail_call(ctx, &prog_exec, EXEC_BODY);
    return 0;
}

#ifndef TRACEE_NO_CORE
/* The ELF interpreter of the new image, for the body (an optional tail call, see exec.h). */
SEC("raw_tp")
int exec_interp(struct bpf_raw_tracepoint_args *ctx)
{
    struct interp_slot *s = get_interp_slot();
    if (s) {
        s->file = (u64)exec_interpreter();
        s->task = bpf_get_current_task();
    }
    bpf_tail_call(ctx, &prog_exec, EXEC_BODY);
    return 0;
}
#endif

SEC("raw_tp")
int exec_body(struct bpf_raw_tracepoint_args *ctx)
{
    struct filter_cfg *cfg = get_cfg();
    if (!cfg)
        return 0;
    struct task_struct *t = (struct task_struct *)ctx->args[0];
    u32 old_pid = (u32)ctx->args[1];
    struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    struct file *file = RD(bprm, file);

    /* a container's first exec after its cgroup was created: it has started */
    struct cgroup *cg = task_cgroup(cfg, t);
    struct kernfs_node *kn = cg ? RD(cg, kn) : 0;
    u64 cgid = kn ? RD(kn, id) : 0;
    struct cgrp_info *ci = bpf_map_lookup_elem(&cgrp_info, &cgid);
    if (ci && ci->state == CG_CREATED)
        ci->state = CG_STARTED;

    /* the process has a new executable */
    u64 leader_start = task_start_time(RD(t, group_leader));
    struct proc_info *pi = bpf_map_lookup_elem(&proc_info, &tgid);
    if (!pi || pi->start_time != leader_start) {
        struct scratch_init *z = get_zero();
        if (z) {
            bpf_map_update_elem(&proc_info, &tgid, &z->proc, BPF_ANY);
            pi = bpf_map_lookup_elem(&proc_info, &tgid);
            if (pi) {
                pi->start_time = leader_start;
                pi->gen = 0;
            }
        }
    }
    if (pi) {
        pi->gen += 1;
        set_proc_exe(pi, file);   /* into slot gen & 1: the previous path stays readable */
    }

    struct exec_info *info = bpf_map_lookup_elem(&exec_comm, &old_pid);
    if (should_trace(cfg, t, tgid)) {
        if ((event_sel(EV_SECURITY_BPRM_CHECK) & (SEL_EVENT | SEL_KPROBE)) == SEL_EVENT)
            emit_bprm_check(ctx, cfg, t, bprm, file, info);
        if (event_sel(EV_SCHED_PROCESS_EXEC) & SEL_EVENT)
            emit_process_exec(ctx, cfg, t, bprm, file, info);
    }
    if (info)
        bpf_map_delete_elem(&exec_comm, &old_pid);
    return 0;
}

SEC("raw_tp/sched_process_exit")
int tracee_sched_exit(struct bpf_raw_tracepoint_args *ctx)
{
    struct filter_cfg *cfg = get_cfg();
    if (!cfg)
        return 0;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid, tgid = pid_tgid >> 32;
    struct task_struct *t = (void *)bpf_get_current_task();
    bool group_dead = RD(t, signal, live.counter) == 0;
    if (should_trace(cfg, t, tgid) && (event_sel(EV_SCHED_PROCESS_EXIT) & SEL_EVENT)) {
        struct event_buf *b = get_buf(BUF_SCHED);
        if (b) {
            fill_header((struct event_header *)b->data, cfg, t, EV_SCHED_PROCESS_EXIT, current_syscall(), 0);
            int code = RD(t, exit_code);
            u32 off = HDR_SIZE;
            off = put_u64(b->data, off, EVT_MASK, (s64)((code >> 8) & 0xff));
            off = put_u64(b->data, off, EVT_MASK, (s64)(code & 0x7f));
            off = put_u64(b->data, off, EVT_MASK, group_dead);
            submit(ctx, b, off);
        }
    }
    bpf_map_delete_elem(&pending, &tid);
    if (group_dead)
        bpf_map_delete_elem(&followed, &tgid);
    return 0;
}

/* New cgroups on the tracked hierarchy: containers created after tracing began. */
SEC("raw_tp/cgroup_mkdir")
int tracee_cgroup_mkdir(struct bpf_raw_tracepoint_args *ctx)
{
    struct filter_cfg *cfg = get_cfg();
    if (!cfg)
        return 0;
    struct cgroup *cg = (struct cgroup *)ctx->args[0];
    if ((u32)RD(cg, root, hierarchy_id) != cfg->cgroup_hierarchy)
        return 0;
    struct kernfs_node *kn = RD(cg, kn);
    u64 id = RD(kn, id);
    if (id)
        cgroup_state(id, kn, CG_CREATED);
    return 0;
}
