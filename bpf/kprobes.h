/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kprobes.h: Tracee's LSM events from kprobes on the kernel's security_* hooks, as Tracee
 * takes them, on hosts that allow kprobes.
 *
 * A hook sees what the kernel checks: the struct file being opened, the binary and the
 * arguments of an exec before it commits, the kernel's copy of a connect address, the
 * mount point the kernel resolved. The emulation in security.h reconstructs the same
 * events from syscall tracepoints, which every host allows but which reads user memory
 * the task could change in between.
 *
 * These programs are not loaded by default. The collector turns on those of the selected
 * events, tries the load, and falls back to the emulation when the kernel refuses them
 * (autoload probing, collector/collector.py); each event whose kprobe is attached is
 * marked SEL_KPROBE in evsel, which turns its emulation off (derived_begin).
 *
 * Each program emits its event with the same wire layout as the emulation (collector/
 * wire.py), the syscall and its user arguments taken from the registers the task
 * entered the kernel with.
 */
#ifndef TRACEE_KPROBES_H
#define TRACEE_KPROBES_H

#include "security.h"

/*
 * Common start: the event is selected for its kprobe and the task is traced; the header is
 * written. Returns the offset of the first argument (0: no event); user: the syscall's
 * registers (see current_user_regs), *compat: it is a 32-bit syscall.
 */
statfunc u32 kprobe_begin(void *ctx, struct derived *d, u32 event_id, struct pt_regs *user, bool *compat)
{
    if ((event_sel(event_id) & (SEL_EVENT | SEL_KPROBE)) != (SEL_EVENT | SEL_KPROBE))
        return 0;
    d->ctx = ctx;
    d->p = 0;
    d->cfg = get_cfg();
    d->b = get_buf(BUF_KPROBE);
    d->t = (void *)bpf_get_current_task();
    if (!d->cfg || !d->b || !should_trace(d->cfg, d->t, bpf_get_current_pid_tgid() >> 32))
        return 0;
    *compat = current_user_regs(user);
    struct event_header *h = (struct event_header *)d->b->data;
    fill_header(h, d->cfg, d->t, event_id, (s32)user->orig_ax, 0);
    if (*compat)
        h->flags |= HDR_COMPAT;
    return HDR_SIZE;
}

/* security_file_open: pathname, flags, dev, inode, ctime, syscall_pathname. */
SEC("?kprobe/security_file_open")
int BPF_KPROBE(kprobe_security_file_open, struct file *file)
{
    struct derived d;
    struct pt_regs user;
    bool compat;
    u32 off = kprobe_begin(ctx, &d, EV_SECURITY_FILE_OPEN, &user, &compat);
    if (!off || !file)
        return 0;
    u32 path_at = off + FILE_OPEN_PATH_AT;
    off = put_file_open_path(d.b->data, off, file);
    if (!df_pass(d.b, EV_SECURITY_FILE_OPEN, path_at))
        return 0;
    off = put_file_open_syscall_path(d.b->data, off, (long)user.orig_ax, user.di, user.si);
    submit(ctx, d.b, off);
    return 0;
}

/* security_bprm_check: pathname, dev, inode, argv, envp (the exec's user arguments). */
SEC("?kprobe/security_bprm_check")
int BPF_KPROBE(kprobe_security_bprm_check, struct linux_binprm *bprm)
{
    struct derived d;
    struct pt_regs user;
    bool compat;
    u32 off = kprobe_begin(ctx, &d, EV_SECURITY_BPRM_CHECK, &user, &compat);
    if (!off || !bprm)
        return 0;
    u8 *buf = d.b->data;
    off = put_bprm_file(buf, off, RD(bprm, file));
    const void *const *argv = 0, *const *envp = 0;
    if ((long)user.orig_ax == SYS_EXECVE) {
        argv = (const void *const *)user.si;
        envp = (const void *const *)user.dx;
    } else if ((long)user.orig_ax == SYS_EXECVEAT) {
        argv = (const void *const *)user.dx;
        envp = (const void *const *)user.r10;
    }
    off = put_user_strarr(buf, off, argv, compat);
    off = put_user_strarr(buf, off, envp, compat);
    submit(ctx, d.b, off);
    return 0;
}

/* security_socket_connect: sockfd, type, remote_addr (INET, INET6 and UNIX only). */
SEC("?kprobe/security_socket_connect")
int BPF_KPROBE(kprobe_security_socket_connect, struct socket *sock, struct sockaddr *address, int addrlen)
{
    u16 family = 0;
    if (!address || bpf_probe_read_kernel(&family, sizeof(family), &address->sa_family))
        return 0;
    u32 len = family == AF_INET_VAL ? 16 : family == AF_INET6_VAL ? 28 : family == AF_UNIX_VAL ? 110 : 0;
    if (!len)
        return 0;
    if (addrlen > 0 && (u32)addrlen < len)
        len = addrlen;
    struct derived d;
    struct pt_regs user;
    bool compat;
    u32 off = kprobe_begin(ctx, &d, EV_SECURITY_SOCKET_CONNECT, &user, &compat);
    if (!off)
        return 0;
    u8 *buf = d.b->data;
    off = put_u64(buf, off, EVT_MASK, (s64)(s32)user.di);
    off = put_u64(buf, off, EVT_MASK, (s64)(sock ? RD(sock, type) : 0));
    off = put_kern_bytes(buf, off, EVT_MASK, address, len);
    submit(ctx, d.b, off);
    return 0;
}

/* security_sb_mount: dev_name, path (as the kernel resolved it), type, flags. */
SEC("?kprobe/security_sb_mount")
int BPF_KPROBE(kprobe_security_sb_mount, const char *dev_name, const struct path *path, const char *type,
               unsigned long flags)
{
    struct derived d;
    struct pt_regs user;
    bool compat;
    u32 off = kprobe_begin(ctx, &d, EV_SECURITY_SB_MOUNT, &user, &compat);
    if (!off)
        return 0;
    u8 *buf = d.b->data;
    off = put_u64(buf, off, EVT_MASK, flags);
    off = put_kern_str(buf, off, EVT_MASK, dev_name, STR_MAX);
    off = path ? put_path(buf, off, EVT_MASK, path) : put_empty(buf, off, EVT_MASK);
    off = put_kern_str(buf, off, EVT_MASK, type, STR_MAX);
    off = put_empty(buf, off, EVT_MASK);   /* path_base: the path is already absolute */
    submit(ctx, d.b, off);
    return 0;
}

#endif /* TRACEE_KPROBES_H */
