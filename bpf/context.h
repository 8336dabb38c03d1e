/* SPDX-License-Identifier: GPL-2.0 */
/*
 * context.h: the task context of every event (pids in both namespaces, start times,
 * namespaces, cgroup, executable, hostname) and the in-kernel filters.
 */
#ifndef TRACEE_CONTEXT_H
#define TRACEE_CONTEXT_H

#include "filesystem.h"

#ifndef TRACEE_NO_CORE
struct kernfs_node___pre_v615 {
    struct kernfs_node *parent;
} __attribute__((preserve_access_index));

struct task_struct___pre_v55 {
    u64 real_start_time;
} __attribute__((preserve_access_index));

/* The host's first mount namespace, when the kernel exports it (container-only filter). */
extern struct nsproxy init_nsproxy __ksym __weak;
#endif

/* ---- task fields ----------------------------------------------------------------- */

statfunc u64 task_start_time(struct task_struct *t)
{
#ifdef TRACEE_NO_CORE
    return RD(t, start_boottime);
#else
    if (bpf_core_field_exists(t->start_boottime))
        return BPF_CORE_READ(t, start_boottime);
    return BPF_CORE_READ((struct task_struct___pre_v55 *)t, real_start_time);
#endif
}

/* A pid as seen in the task's own pid namespace. */
statfunc u32 pid_in_ns(struct pid *p)
{
    if (!p)
        return 0;
    unsigned int level = RD(p, level);
    struct upid *numbers = &p->numbers[0];
    struct upid *up = numbers + (level & 31);
    int nr = 0;
    bpf_probe_read_kernel(&nr, sizeof(nr), &up->nr);
    return nr;
}

statfunc u32 task_ns_tid(struct task_struct *t)
{
    return pid_in_ns(RD(t, thread_pid));
}

statfunc u32 task_ns_tgid(struct task_struct *t)
{
    return pid_in_ns(RD(t, group_leader, thread_pid));
}

statfunc u32 task_mnt_ns(struct task_struct *t)
{
    return RD(t, nsproxy, mnt_ns, ns.inum);
}

/* The syscall the current task is in (-1 outside syscalls or if unknown here). */
statfunc s32 current_syscall(void)
{
#ifndef TRACEE_NO_CORE
    if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs)) {
        struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
        return (s32)BPF_CORE_READ(regs, orig_ax);
    }
#endif
    return -1;
}

/* ---- cgroups and containers ---------------------------------------------------- */

statfunc struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
#ifdef TRACEE_NO_CORE
#ifdef HAVE_KERNFS___PARENT
    return RD(kn, __parent);
#else
    return RD(kn, parent);
#endif
#else
    if (bpf_core_field_exists(kn->__parent))
        return BPF_CORE_READ(kn, __parent);
    return BPF_CORE_READ((struct kernfs_node___pre_v615 *)kn, parent);
#endif
}

/* The cgroup the task is in, on the hierarchy the configuration chose. */
statfunc struct cgroup *task_cgroup(struct filter_cfg *cfg, struct task_struct *t)
{
    struct css_set *cs = RD(t, cgroups);
    if (!cs)
        return 0;
    if (cfg->cgroup_subsys < 0)
        return RD(cs, dfl_cgrp);
    struct cgroup_subsys_state **arr = &cs->subsys[0];
    struct cgroup_subsys_state **slot = arr + (cfg->cgroup_subsys & 15);
    struct cgroup_subsys_state *css = 0;
    bpf_probe_read_kernel(&css, sizeof(css), slot);
    return css ? RD(css, cgroup) : 0;
}

/* Record the cgroup's path components (if new) and return its state. */
statfunc u32 cgroup_state(u64 id, struct kernfs_node *kn, u32 state_if_new)
{
    struct cgrp_info *ci = bpf_map_lookup_elem(&cgrp_info, &id);
    if (ci)
        return ci->state;
    struct scratch_init *z = get_zero();
    if (!z)
        return CG_UNKNOWN;
    bpf_map_update_elem(&cgrp_info, &id, &z->cgrp, BPF_NOEXIST);
    ci = bpf_map_lookup_elem(&cgrp_info, &id);
    if (!ci)
        return CG_UNKNOWN;
    ci->state = state_if_new;
    for (int i = 0; i < CG_NAMES; i++) {
        if (!kn)
            break;
        const char *name = RD(kn, name);
        bpf_probe_read_kernel_str(ci->names[i], CG_NAME_LEN, name);
        kn = kn_parent(kn);
    }
    return state_if_new;
}

/* ---- executables ------------------------------------------------------------------ */

statfunc void set_proc_exe(struct proc_info *pi, struct file *exe)
{
    u32 slot = pi->gen & 1;
    pi->len[slot] = 0;
    if (!exe)
        return;
    struct path_buf *pb = get_path_buf();
    if (!pb)
        return;
    struct dentry *dentry = RD(exe, f_path.dentry);
    struct vfsmount *vfsmnt = RD(exe, f_path.mnt);
    u32 pos = build_path(pb, (u64)dentry, (u64)vfsmnt);
    if (pos >= PATH_HALF)
        return;
    u32 len = PATH_HALF - pos;
    if (len > EXE_LEN - 1)
        len = EXE_LEN - 1;
    len = BOUND(len, EXE_LEN - 1);
    bpf_probe_read_kernel(pi->exe[slot], len, &pb->data[pos & (PATH_HALF - 1)]);
    pi->len[slot] = len;
}

/* The proc_info of the task's process, created (executable path walked) when missing. */
statfunc u32 proc_exe_gen(u32 tgid, u64 leader_start, struct task_struct *t)
{
    struct proc_info *pi = bpf_map_lookup_elem(&proc_info, &tgid);
    if (pi && pi->start_time == leader_start)
        return pi->gen;
    struct scratch_init *z = get_zero();
    if (!z)
        return 0;
    bpf_map_update_elem(&proc_info, &tgid, &z->proc, BPF_ANY);
    pi = bpf_map_lookup_elem(&proc_info, &tgid);
    if (!pi)
        return 0;
    pi->start_time = leader_start;
    pi->gen = 1;
    set_proc_exe(pi, RD(t, mm, exe_file));
    return 1;
}

/* ---- the header ------------------------------------------------------------------- */

statfunc void fill_header(struct event_header *h, struct filter_cfg *cfg, struct task_struct *t,
                          u32 event_id, s32 syscall, s64 retval)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    struct task_struct *leader = RD(t, group_leader);
    struct task_struct *parent = RD(t, real_parent);

    h->ts = bpf_ktime_get_boot_ns();
    h->start_time = task_start_time(t);
    h->leader_start_time = task_start_time(leader);
    h->parent_start_time = task_start_time(parent);
    h->retval = retval;
    h->event_id = event_id;
    h->syscall = syscall;
    h->host_tid = (u32)pid_tgid;
    h->host_pid = pid_tgid >> 32;
    h->host_ppid = RD(parent, tgid);
    h->tid = task_ns_tid(t);
    h->pid = task_ns_tid(leader);
    h->ppid = task_ns_tgid(parent);
    h->uid = (u32)bpf_get_current_uid_gid();
    h->mnt_ns = task_mnt_ns(t);
    h->pid_ns = RD(t, nsproxy, pid_ns_for_children, ns.inum);
    h->cpu = bpf_get_smp_processor_id();
    bpf_get_current_comm(h->comm, sizeof(h->comm));
    struct uts_namespace *uts = RD(t, nsproxy, uts_ns);
    if (uts)
        bpf_probe_read_kernel_str(h->uts, sizeof(h->uts), &uts->name.nodename);
    else
        h->uts[0] = 0;

    struct cgroup *cg = task_cgroup(cfg, t);
    struct kernfs_node *kn = cg ? RD(cg, kn) : 0;
    u64 cgid = kn ? RD(kn, id) : 0;
    h->cgroup_id = cgid;
    h->flags = cgid ? cgroup_state(cgid, kn, CG_EXISTED) & 3 : 0;
    h->exe_gen = proc_exe_gen(h->host_pid, h->leader_start_time, t);
}

/* fill_header through the thread's cache (see struct ctx_cache). */
statfunc void fill_header_cached(struct event_header *h, struct ctx_cache *c, struct filter_cfg *cfg,
                                 struct task_struct *t, u32 event_id, s32 syscall, s64 retval)
{
    u64 parent = (u64)RD(t, real_parent);
    u64 nsproxy = (u64)RD(t, nsproxy);
    u64 cgroups = (u64)RD(t, cgroups);
    u64 mm = (u64)RD(t, mm);
    if (c->valid && c->task == (u64)t && c->parent == parent && c->nsproxy == nsproxy && c->cgroups == cgroups &&
        c->mm == mm) {
        __builtin_memcpy(h, &c->hdr, sizeof(*h));
        h->ts = bpf_ktime_get_boot_ns();
        h->retval = retval;
        h->event_id = event_id;
        h->syscall = syscall;
        h->uid = (u32)bpf_get_current_uid_gid();
        h->cpu = bpf_get_smp_processor_id();
        bpf_get_current_comm(h->comm, sizeof(h->comm));
        return;
    }
    fill_header(h, cfg, t, event_id, syscall, retval);
    __builtin_memcpy(&c->hdr, h, sizeof(*h));
    c->task = (u64)t;
    c->parent = parent;
    c->nsproxy = nsproxy;
    c->cgroups = cgroups;
    c->mm = mm;
    c->valid = 1;
}

/* ---- filters ---------------------------------------------------------------------- */

statfunc u32 host_mnt_ns(struct filter_cfg *cfg)
{
    if (cfg->host_mnt_ns)
        return cfg->host_mnt_ns;
#ifndef TRACEE_NO_CORE
    if (&init_nsproxy)
        return BPF_CORE_READ(&init_nsproxy, mnt_ns, ns.inum);
#endif
    return 0;
}

/* Should events of task t (of process tgid) be emitted? */
statfunc bool should_trace(struct filter_cfg *cfg, struct task_struct *t, u32 tgid)
{
    if (tgid == cfg->self_tgid)
        return false;
    u32 flags = cfg->flags;
    if (!flags)
        return true;
    if ((flags & F_FOLLOW) && bpf_map_lookup_elem(&followed, &tgid))
        return true;
    if ((flags & F_PID) && !bpf_map_lookup_elem(&f_pids, &tgid))
        return false;
    if (flags & F_UID) {
        u32 uid = (u32)bpf_get_current_uid_gid();
        if (!bpf_map_lookup_elem(&f_uids, &uid))
            return false;
    }
    if (flags & F_COMM) {
        char comm[TASK_COMM_LEN] = {};
        bpf_get_current_comm(comm, sizeof(comm));
        if (!bpf_map_lookup_elem(&f_comms, comm))
            return false;
    }
    if (flags & (F_MNTNS | F_CONTAINER)) {
        u32 mnt = task_mnt_ns(t);
        if ((flags & F_MNTNS) && !bpf_map_lookup_elem(&f_mntns, &mnt))
            return false;
        if ((flags & F_CONTAINER) && mnt == host_mnt_ns(cfg))
            return false;
    }
    if ((flags & F_NEW_PIDS) && task_start_time(RD(t, group_leader)) < cfg->start_ts)
        return false;
    return true;
}

#endif /* TRACEE_CONTEXT_H */
