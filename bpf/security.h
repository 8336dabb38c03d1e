/* SPDX-License-Identifier: GPL-2.0 */
/*
 * security.h: Tracee's LSM/kprobe events emulated from syscall tracepoints. Each handler
 * is a tail call from sys_enter/sys_exit for one syscall (see prog_enter/prog_exit) and
 * reads the syscall's raw arguments from the thread's pending entry. Where the kernel's
 * state holds the result (the opened file, the connected socket's peer), the event takes
 * it from there rather than reading the process's memory again (bpf/README.md: "The
 * kernel's view and the tracer's").
 *
 * Fixed-size arguments come first on the wire, in definition order, then the variable
 * ones; collector/wire.py describes the same layout for the decoder.
 */
#ifndef TRACEE_SECURITY_H
#define TRACEE_SECURITY_H

#include "exec.h"
#include "datafilter.h"
#include "capture.h"

#define MAP_ANONYMOUS_VAL 0x20

/* Common start of a derived event: the pending syscall, buffer, configuration, task. */
struct derived {
    void *ctx;              /* the program's context (for the output helpers) */
    struct pending *p;
    struct event_buf *b;
    struct filter_cfg *cfg;
    struct task_struct *t;
};

statfunc bool derived_begin(void *ctx, struct derived *d, u32 event_id, u32 buf_idx)
{
    d->ctx = ctx;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    d->p = bpf_map_lookup_elem(&pending, &tid);
    if (!d->p)
        return false;
    u32 sel = event_sel(event_id);
    if (!(sel & SEL_EVENT) || (sel & SEL_KPROBE))   /* not selected, or emitted by its kprobe */
        return false;
    d->b = get_buf(buf_idx);
    d->cfg = get_cfg();
    d->t = (void *)bpf_get_current_task();
    return d->b && d->cfg;
}

/* Mark the thread's pending syscall consumed (exit handlers). */
statfunc struct pending *consume_pending(void)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct pending *p = bpf_map_lookup_elem(&pending, &tid);
    return p;
}

/* Base directory of a relative path argument: cwd (AT_FDCWD) or the dirfd's path. */
statfunc u32 put_base_dir(u8 *buf, u32 off, struct task_struct *t, long dirfd, const char *upath)
{
    char first = 0;
    if (!upath || bpf_probe_read_user(&first, 1, upath) || first == '/')
        return put_empty(buf, off, EVT_MASK);
    if ((int)dirfd == AT_FDCWD_VAL) {
        struct fs_struct *fs = RD(t, fs);
        if (!fs)
            return put_empty(buf, off, EVT_MASK);
        return put_path(buf, off, EVT_MASK, &fs->pwd);
    }
    return put_file_path(buf, off, EVT_MASK, fd_file(t, dirfd));
}

/*
 * security_file_open's arguments: flags, dev, inode, ctime (fixed), pathname, then
 * syscall_pathname: the user path given to open/creat (arg0) or openat/openat2 (arg1).
 * In two steps, so that the data filter (datafilter.h) can drop the event before the
 * user path is read.
 */
#define FILE_OPEN_PATH_AT (4 * SLOT_SIZE)   /* the pathname, after the fixed arguments */
statfunc u32 put_file_open_path(u8 *buf, u32 off, struct file *f)
{
    struct file_id fid = {};
    file_id_of(f, &fid);
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)RD(f, f_flags));
    off = put_u64(buf, off, EVT_MASK, fid.dev);
    off = put_u64(buf, off, EVT_MASK, fid.inode);
    off = put_u64(buf, off, EVT_MASK, fid.ctime);
    return put_file_path(buf, off, EVT_MASK, f);
}

statfunc u32 put_file_open_syscall_path(u8 *buf, u32 off, long sys, u64 arg0, u64 arg1)
{
    const void *upath = 0;
    if (sys == SYS_OPEN || sys == SYS_CREAT)
        upath = (const void *)arg0;
    else if (sys == SYS_OPENAT || sys == SYS_OPENAT2)
        upath = (const void *)arg1;
    return put_user_str(buf, off, EVT_MASK, upath);
}

/* security_file_open: pathname, flags, dev, inode, ctime, syscall_pathname. */
SEC("raw_tp")
int exit_open(struct bpf_raw_tracepoint_args *ctx)
{
    long ret = ctx->args[1];
    struct derived d;
    if (!derived_begin(ctx, &d, EV_SECURITY_FILE_OPEN, BUF_EXIT) || ret < 0)
        goto out;
    struct file *f = fd_file(d.t, ret);
    if (!f)
        goto out;
    s64 id = d.p->id;
    u8 *buf = d.b->data;
    u32 off = begin_syscall_event(d.b, d.p, d.cfg, d.t, EV_SECURITY_FILE_OPEN, id, 0);
    u32 path_at = off + FILE_OPEN_PATH_AT;
    off = put_file_open_path(buf, off, f);
    if (df_pass(d.b, EV_SECURITY_FILE_OPEN, path_at)) {
        off = put_file_open_syscall_path(buf, off, id, d.p->args[0], d.p->args[1]);
        submit(d.ctx, d.b, off);
    }
out:;
    struct pending *p = consume_pending();
    if (p)
        p->id = -1;
    return 0;
}

/*
 * The peer address the kernel gave a socket, as a struct sockaddr in sa (28 bytes for
 * INET6, 110 for UNIX): its length, or 0 when the socket has no peer. INET/INET6: the
 * sock's destination address and port (a port of 0: no peer, e.g. a TCP connect that was
 * refused, which clears it). UNIX (CO-RE builds only): the name the peer socket is bound
 * to, as its server gave it to bind().
 */
#define PEER_SA_MAX 112
statfunc u32 sock_peer_sockaddr(struct sock *sk, u8 *sa)
{
    u16 family = RD(sk, __sk_common.skc_family);
    __builtin_memcpy(&sa[0], &family, 2);
    if (family == AF_INET_VAL || family == AF_INET6_VAL) {
        u16 port = RD(sk, __sk_common.skc_dport);
        if (!port)
            return 0;
        __builtin_memcpy(&sa[2], &port, 2);
        if (family == AF_INET_VAL) {
            u32 addr = RD(sk, __sk_common.skc_daddr);
            __builtin_memcpy(&sa[4], &addr, 4);
            return 16;
        }
        RD_INTO(&sa[8], 16, &sk->__sk_common.skc_v6_daddr);
        return 28;
    }
#ifndef TRACEE_NO_CORE
    if (family == AF_UNIX_VAL) {
        struct unix_sock *peer = (struct unix_sock *)BPF_CORE_READ((struct unix_sock *)sk, peer);
        struct unix_address *ua = peer ? BPF_CORE_READ(peer, addr) : 0;
        if (!ua)
            return 0;
        int len = BPF_CORE_READ(ua, len);
        if (len <= 2 || len > 110)
            return 0;
        bpf_probe_read_kernel(sa, len & 127, &ua->name[0]);
        return len;
    }
#endif
    return 0;
}

/* socket_dup: oldfd, newfd, remote_addr (for INET/INET6 sockets). */
SEC("raw_tp")
int exit_dup(struct bpf_raw_tracepoint_args *ctx)
{
    long ret = ctx->args[1];
    struct derived d;
    if (!derived_begin(ctx, &d, EV_SOCKET_DUP, BUF_EXIT) || ret < 0)
        goto out;
    long oldfd = d.p->args[0];
    long newfd = d.p->id == SYS_DUP ? ret : (long)d.p->args[1];
    struct file *f = fd_file(d.t, oldfd);
    if (!f || (RD(f, f_inode, i_mode) & S_IFMT_VAL) != S_IFSOCK_VAL)
        goto out;
    struct socket *sock = RD(f, private_data);
    struct sock *sk = RD(sock, sk);
    if (!sk)
        goto out;
    u16 family = RD(sk, __sk_common.skc_family);
    if (family != AF_INET_VAL && family != AF_INET6_VAL)
        goto out;
    u8 sa[PEER_SA_MAX] = {};
    u32 salen = sock_peer_sockaddr(sk, sa);
    if (!salen) {   /* no peer: the family alone, as before */
        salen = family == AF_INET_VAL ? 16 : 28;
        __builtin_memset(&sa[2], 0, 26);
    }
    u8 *buf = d.b->data;
    u32 off = begin_syscall_event(d.b, d.p, d.cfg, d.t, EV_SOCKET_DUP, d.p->id, 0);
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)oldfd);
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)newfd);
    off = put_kern_bytes(buf, off, EVT_MASK, sa, salen);
    submit(d.ctx, d.b, off);
out:;
    struct pending *p = consume_pending();
    if (p)
        p->id = -1;
    return 0;
}

/* mem_prot_alert: alert, addr, len, prot, prev_prot, pathname, dev, inode, ctime. */
statfunc void emit_mem_prot_alert(struct derived *d, u32 alert, u64 addr, u64 len, s32 prot, s32 prev_prot,
                                  struct file *f)
{
    u8 *buf = d->b->data;
    u32 off = begin_syscall_event(d->b, d->p, d->cfg, d->t, EV_MEM_PROT_ALERT, d->p->id, 0);
    struct file_id fid = {};
    if (f)
        file_id_of(f, &fid);
    off = put_u64(buf, off, EVT_MASK, alert);
    off = put_u64(buf, off, EVT_MASK, addr);
    off = put_u64(buf, off, EVT_MASK, len);
    off = put_u64(buf, off, EVT_MASK, (s64)prot);
    off = put_u64(buf, off, EVT_MASK, (s64)prev_prot);
    off = put_u64(buf, off, EVT_MASK, fid.dev);
    off = put_u64(buf, off, EVT_MASK, fid.inode);
    off = put_u64(buf, off, EVT_MASK, fid.ctime);
    off = put_file_path(buf, off, EVT_MASK, f);
    submit(d->ctx, d->b, off);
}

/* mmap returning a writable and executable mapping: alert 1, and remember the region. */
SEC("raw_tp")
int exit_mmap(struct bpf_raw_tracepoint_args *ctx)
{
    long ret = ctx->args[1];
    struct derived d;
    if (!derived_begin(ctx, &d, EV_MEM_PROT_ALERT, BUF_EXIT) || (ret < 0 && ret > -4096))
        goto out;
    u32 prot = (u32)d.p->args[2];
    if ((prot & (PROT_WRITE_VAL | PROT_EXEC_VAL)) != (PROT_WRITE_VAL | PROT_EXEC_VAL))
        goto out;
    struct wx_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .addr = (u64)ret};
    struct wx_region region = {.len = d.p->args[1], .prot = prot};
    bpf_map_update_elem(&wx_regions, &key, &region, BPF_ANY);
    struct file *f = 0;
    if (!(d.p->args[3] & MAP_ANONYMOUS_VAL))
        f = fd_file(d.t, (s32)d.p->args[4]);
    emit_mem_prot_alert(&d, ALERT_MMAP_W_X, (u64)ret, d.p->args[1], prot, 0, f);
out:;
    struct pending *p = consume_pending();
    if (p)
        p->id = -1;
    return 0;
}

/*
 * mprotect/pkey_mprotect (enter): Tracee's security_file_mprotect alerts.
 *
 * With bpf_find_vma (5.17+, a BTF task: HAVE_FIND_VMA) enter_mprotect tail-calls
 * enter_mprotect_vma, which the loader puts in prog_vma when the kernel loaded it (a
 * callback cannot even be loaded before 5.13). That program reads each VMA of the range
 * as the kernel will hand it to the LSM hook: its flags (prev_prot: vma->vm_flags, as
 * Tracee sends it) and its file, and raises alerts 2, 3 and 4 as Tracee does.
 *
 * Otherwise (older kernels, no BTF, non-CO-RE builds, or the mm lock busy) only alert 4
 * is raised, for regions the process mapped or protected W+X before (wx_regions: exact
 * start addresses; prev_prot is the protection it asked for then).
 */
struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 1);
    __type(key, u32);
    __type(value, u32);
} prog_vma SEC(".maps");

/* The wx_regions emulation: remember W+X regions; X-not-W on one of them: alert 4. */
statfunc void mprotect_wx_regions(struct derived *d)
{
    u64 addr = d->p->args[0];
    u32 prot = (u32)d->p->args[2];
    struct wx_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .addr = addr};
    if ((prot & (PROT_WRITE_VAL | PROT_EXEC_VAL)) == (PROT_WRITE_VAL | PROT_EXEC_VAL)) {
        struct wx_region region = {.len = d->p->args[1], .prot = prot};
        bpf_map_update_elem(&wx_regions, &key, &region, BPF_ANY);
        return;
    }
    if (!(prot & PROT_EXEC_VAL) || (prot & PROT_WRITE_VAL))
        return;
    struct wx_region *r = bpf_map_lookup_elem(&wx_regions, &key);
    if (!r)
        return;
    s32 prev = r->prot;
    bpf_map_delete_elem(&wx_regions, &key);
    emit_mem_prot_alert(d, ALERT_MPROT_W_REM, addr, d->p->args[1], prot, prev, 0);
    capture_mem_note(addr, d->p->args[1]);
}

SEC("raw_tp")
int enter_mprotect(struct bpf_raw_tracepoint_args *ctx)
{
    if (HAVE_FIND_VMA)
        bpf_tail_call(ctx, &prog_vma, 0);   /* falls through when the slot is empty */
    struct derived d;
    if (derived_begin(ctx, &d, EV_MEM_PROT_ALERT, BUF_ENTER))
        mprotect_wx_regions(&d);
    return 0;
}

#ifndef TRACEE_NO_CORE

#define MPROT_VMAS_MAX 8   /* VMAs of one mprotect range looked at (alerts past them are lost) */

/* Before 6.18 mm->flags was one unsigned long (now mm_flags_t, a bitmap). */
struct mm_struct___pre_v618 {
    unsigned long flags;
} __attribute__((preserve_access_index));

/* prctl(PR_SET_MDWE): the kernel refuses W+X and newly executable mappings (6.3+). */
statfunc bool mm_has_mdwe(struct task_struct *task)
{
    struct mm_struct *mm = task->mm;
    if (!mm || !bpf_core_field_exists(mm->mm_mt))
        return false;   /* before 6.1 bit 28 was MMF_HAS_PINNED; 6.1 and 6.2 leave it unused */
    u64 word;
    if (bpf_core_type_exists(mm_flags_t))
        word = mm->flags.__mm_flags[0];
    else
        word = ((struct mm_struct___pre_v618 *)mm)->flags;
    return word & (1ULL << MMF_HAS_MDWE_BIT);
}

/*
 * One alert of the loop below. A global function: verified once rather than at each turn
 * of the loop, and clang cannot hoist the CO-RE offsets of the record's header out of the
 * loop ahead of the field-existence checks that guard them (the verifier would meet the
 * relocations libbpf poisoned on this kernel). Pointers travel as integers; prots packs
 * prev_prot (bits 32-63), the alert (8-15) and reqprot (0-7, at most 0xf by then).
 */
__noinline int emit_vma_alert(struct bpf_raw_tracepoint_args *ctx, u64 addr, u64 len, u64 prots, u64 file)
{
    struct derived d;
    if (!derived_begin(ctx, &d, EV_MEM_PROT_ALERT, BUF_ENTER))
        return 0;
    emit_mem_prot_alert(&d, (prots >> 8) & 0xff, addr, len, prots & 0xff, (s32)(prots >> 32), (struct file *)file);
    return 0;
}

/* Tracee's conditions, in its order (a later match replaces an earlier one). */
statfunc u32 mprotect_alert(u64 prev, u32 req)
{
    u32 alert = 0;
    if (!(prev & VM_EXEC_VAL) && (req & VM_EXEC_VAL))
        alert = ALERT_MPROT_X_ADD;
    if ((prev & VM_EXEC_VAL) && !(prev & VM_WRITE_VAL) &&
        (req & (VM_WRITE_VAL | VM_EXEC_VAL)) == (VM_WRITE_VAL | VM_EXEC_VAL))
        alert = ALERT_MPROT_W_ADD;
    if ((prev & VM_WRITE_VAL) && (req & VM_EXEC_VAL) && !(req & VM_WRITE_VAL))
        alert = ALERT_MPROT_W_REM;
    return alert;
}

/*
 * mem_prot_alert from the real VMAs: the kernel (do_mprotect_pkey) calls
 * security_file_mprotect(vma, reqprot, prot) for each VMA of [addr, addr + len), in
 * order, after its own checks; Tracee raises one alert per call that matches, with the
 * syscall's addr and len, reqprot and the VMA's vm_flags and file. The same checks are
 * made here so that an mprotect the kernel refuses before the hook raises nothing.
 */
SEC("raw_tp")
int enter_mprotect_vma(struct bpf_raw_tracepoint_args *ctx)
{
    struct derived d;
    if (!derived_begin(ctx, &d, EV_MEM_PROT_ALERT, BUF_ENTER))
        return 0;
    if (!HAVE_FIND_VMA) {
        mprotect_wx_regions(&d);
        return 0;
    }
    u64 addr = d.p->args[0];
    u64 len = d.p->args[1];
    u32 raw = (u32)d.p->args[2];
    u32 prot = raw & ~PROT_GROWS_VAL;   /* reqprot */
    u64 end = addr + ((len + PAGE_SIZE_VAL - 1) & ~(u64)(PAGE_SIZE_VAL - 1));
    /* EINVAL / nothing to do / ENOMEM before any hook (addr 0: Tracee skips it) */
    if (!addr || !len || (addr & (PAGE_SIZE_VAL - 1)) || (raw & PROT_GROWS_VAL) == PROT_GROWS_VAL ||
        (prot & ~PROT_VALID_VAL) || end <= addr)
        return 0;
    struct task_struct *task = bpf_get_current_task_btf();
    bool mdwe = mm_has_mdwe(task);
    struct vma_seen v = {};
    u64 next = addr;
    long err = 0;
#pragma clang loop unroll(disable)
    for (int i = 0; i < MPROT_VMAS_MAX; i++) {
        /* the VMA containing next; ENOENT: none (a hole: the kernel stops with ENOMEM) */
        err = bpf_find_vma(task, next, read_vma, &v, 0);
        if (err)
            break;
        /* EACCES: a protection the VMA may not have (VM_MAY*), or refused by MDWE */
        if ((prot & VM_ACCESS_VAL & ~(v.flags >> 4)) ||
            (mdwe && (prot & VM_EXEC_VAL) && ((prot & VM_WRITE_VAL) || !(v.flags & VM_EXEC_VAL)))) {
            err = -1;
            break;
        }
        u32 alert = mprotect_alert(v.flags, prot);
        if (alert)
            emit_vma_alert(ctx, addr, len, (u64)(u32)v.flags << 32 | alert << 8 | prot, v.file);
        if (alert == ALERT_MPROT_W_REM && i == 0)
            capture_mem_note(addr, len);
        if (v.end >= end)
            break;
        next = v.end;
    }
    /* EBUSY: the mm's lock was taken (by a writer): nothing is known of the VMAs */
    if (err == -EBUSY_VAL && next == addr) {
        mprotect_wx_regions(&d);
        return 0;
    }
    if (err)
        return 0;   /* the call fails */
    /* keep wx_regions right for a later call that finds the lock busy */
    struct wx_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .addr = addr};
    if ((prot & (PROT_WRITE_VAL | PROT_EXEC_VAL)) == (PROT_WRITE_VAL | PROT_EXEC_VAL)) {
        struct wx_region region = {.len = len, .prot = prot};
        bpf_map_update_elem(&wx_regions, &key, &region, BPF_ANY);
    } else {
        bpf_map_delete_elem(&wx_regions, &key);
    }
    return 0;
}

#endif /* !TRACEE_NO_CORE */

/*
 * security_socket_connect: sockfd, type, remote_addr (INET, INET6 and UNIX only), at the
 * exit of connect. remote_addr is the kernel's view when the connect gave the socket a
 * peer (it returned 0 or EINPROGRESS): the peer address the sock holds (sock_peer_sockaddr).
 * Otherwise (the connect failed, or the peer was already gone) there is no kernel view
 * left: remote_addr is then the address read from user memory, as the syscall event has it.
 */
SEC("raw_tp")
int exit_connect(struct bpf_raw_tracepoint_args *ctx)
{
    long ret = ctx->args[1];
    struct derived d;
    if (!derived_begin(ctx, &d, EV_SECURITY_SOCKET_CONNECT, BUF_EXIT))
        goto out;
    long fd = (s32)d.p->args[0];
    struct file *f = fd_file(d.t, fd);
    struct socket *sock = f ? RD(f, private_data) : 0;
    struct sock *sk = sock ? RD(sock, sk) : 0;
    s32 type = sock ? RD(sock, type) : 0;
    u8 sa[PEER_SA_MAX] = {};
    u32 salen = 0;
    if (sk && (ret == 0 || ret == -EINPROGRESS_VAL))
        salen = sock_peer_sockaddr(sk, sa);
    u16 family = 0;
    const void *uaddr = (const void *)d.p->args[1];
    if (salen)
        __builtin_memcpy(&family, sa, 2);
    else if (!uaddr || bpf_probe_read_user(&family, sizeof(family), uaddr))
        goto out;
    if (family != AF_INET_VAL && family != AF_INET6_VAL && family != AF_UNIX_VAL)
        goto out;
    u8 *buf = d.b->data;
    u32 off = begin_syscall_event(d.b, d.p, d.cfg, d.t, EV_SECURITY_SOCKET_CONNECT, d.p->id, 0);
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)fd);
    off = put_u64(buf, off, EVT_MASK, (s64)type);
    if (salen)
        off = put_kern_bytes(buf, off, EVT_MASK, sa, salen);
    else
        off = put_user_sockaddr(buf, off, EVT_MASK, uaddr, (long)d.p->args[2]);
    submit(d.ctx, d.b, off);
out:;
    struct pending *p = consume_pending();
    if (p)
        p->id = -1;
    return 0;
}

/*
 * security_inode_rename: old_path, new_path as given, then (hidden, for the decoder to
 * make relative paths absolute) the base directory of each: cwd or the dirfd's path.
 * Emitted at the exit of rename/renameat/renameat2 (after the syscall's own event, so that
 * the two pair up); the strings are the tracer's read of user memory.
 */
SEC("raw_tp")
int exit_rename(struct bpf_raw_tracepoint_args *ctx)
{
    struct derived d;
    if (!derived_begin(ctx, &d, EV_SECURITY_INODE_RENAME, BUF_EXIT))
        goto out;
    const char *oldp, *newp;
    long olddir = AT_FDCWD_VAL, newdir = AT_FDCWD_VAL;
    if (d.p->id == SYS_RENAME) {
        oldp = (const char *)d.p->args[0];
        newp = (const char *)d.p->args[1];
    } else {
        olddir = (s32)d.p->args[0];
        oldp = (const char *)d.p->args[1];
        newdir = (s32)d.p->args[2];
        newp = (const char *)d.p->args[3];
    }
    u8 *buf = d.b->data;
    u32 off = begin_syscall_event(d.b, d.p, d.cfg, d.t, EV_SECURITY_INODE_RENAME, d.p->id, 0);
    off = put_user_str(buf, off, EVT_MASK, oldp);
    off = put_user_str(buf, off, EVT_MASK, newp);
    off = put_base_dir(buf, off, d.t, olddir, oldp);
    off = put_base_dir(buf, off, d.t, newdir, newp);
    submit(d.ctx, d.b, off);
out:;
    struct pending *p = consume_pending();
    if (p)
        p->id = -1;
    return 0;
}

/*
 * security_sb_mount: dev_name, path, type, flags (+ hidden base directory of path), at the
 * exit of mount (after the syscall's event); the strings are the tracer's read.
 */
SEC("raw_tp")
int exit_mount(struct bpf_raw_tracepoint_args *ctx)
{
    struct derived d;
    if (!derived_begin(ctx, &d, EV_SECURITY_SB_MOUNT, BUF_EXIT))
        goto out;
    u8 *buf = d.b->data;
    const char *target = (const char *)d.p->args[1];
    u32 off = begin_syscall_event(d.b, d.p, d.cfg, d.t, EV_SECURITY_SB_MOUNT, d.p->id, 0);
    off = put_u64(buf, off, EVT_MASK, d.p->args[3]);
    off = put_user_str(buf, off, EVT_MASK, (const void *)d.p->args[0]);
    off = put_user_str(buf, off, EVT_MASK, target);
    off = put_user_str(buf, off, EVT_MASK, (const void *)d.p->args[2]);
    off = put_base_dir(buf, off, d.t, AT_FDCWD_VAL, target);
    submit(d.ctx, d.b, off);
out:;
    struct pending *p = consume_pending();
    if (p)
        p->id = -1;
    return 0;
}

/* magic_write: pathname, bytes (the first MAGIC_BYTES written at offset 0), dev, inode. */
SEC("raw_tp")
int enter_write(struct bpf_raw_tracepoint_args *ctx)
{
    struct derived d;
    if (!derived_begin(ctx, &d, EV_MAGIC_WRITE, BUF_ENTER))
        return 0;
    struct file *f = fd_file(d.t, (s32)d.p->args[0]);
    if (!f)
        return 0;
    struct file_id fid = {};
    file_id_of(f, &fid);
    if ((fid.mode & S_IFMT_VAL) != S_IFREG_VAL)
        return 0;
    s64 pos = d.p->id == SYS_PWRITE64 ? (s64)d.p->args[3] : (s64)RD(f, f_pos);
    u64 count = d.p->args[2];
    if (pos != 0 || count == 0)
        return 0;
    u32 n = count < MAGIC_BYTES ? count : MAGIC_BYTES;
    u8 *buf = d.b->data;
    u32 off = begin_syscall_event(d.b, d.p, d.cfg, d.t, EV_MAGIC_WRITE, d.p->id, 0);
    off = put_u64(buf, off, EVT_MASK, fid.dev);
    off = put_u64(buf, off, EVT_MASK, fid.inode);
    off = put_file_path(buf, off, EVT_MASK, f);
    off = put_user_bytes(buf, off, EVT_MASK, (const void *)d.p->args[1], n);
    submit(d.ctx, d.b, off);
    return 0;
}

#endif /* TRACEE_SECURITY_H */
