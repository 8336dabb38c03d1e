/* SPDX-License-Identifier: GPL-2.0 */
/*
 * args.h: the generic syscall-argument recorder.
 *
 * User space describes every selected syscall's arguments in the `sysargs` map (one kind
 * per argument, from collector/wire.py). At sys_enter the recorder writes the fixed-size
 * arguments as 64-bit slots, then the variable-size ones (strings read from user memory
 * at enter time, sockaddrs, argv/envp arrays), into the thread's pending buffer or
 * straight into an event buffer (execve, submitted at enter as Tracee does).
 */
#ifndef TRACEE_ARGS_H
#define TRACEE_ARGS_H

#include "context.h"

statfunc bool kind_is_fixed(u8 k)
{
    return k >= T_INT && k <= T_U16;
}

/* The 64-bit slot of a fixed-size argument of kind k. */
statfunc u64 slot_value(u8 k, u64 v)
{
    switch (k) {
    case T_INT:
        return (u64)(s64)(s32)v;
    case T_UINT:
        return (u32)v;
    case T_U16:
        return (u16)v;
    default:
        return v;
    }
}

/*
 * The loops below run over argument kinds the verifier does not know, so each argument
 * could take any branch: the write cursor lives in memory (*cur, re-read every turn) to
 * let the verifier merge the branches instead of following every combination.
 */
statfunc void record_fixed(u8 *buf, u32 *cur, u32 mask, struct sys_desc *d, u64 *args)
{
    for (int i = 0; i < 6; i++) {
        u8 k = d->kinds[i];
        if (kind_is_fixed(k))
            *cur = put_u64(buf, *(volatile u32 *)cur, mask, slot_value(k, args[i]));
    }
}

/* Strings and sockaddrs into the pending buffer (string arrays: execve only, see exec). */
statfunc u32 record_var(u8 *buf, u32 *cur, u32 mask, struct sys_desc *d, u64 *args)
{
    u32 unreadable = 0;
    for (int i = 0; i < 6; i++) {
        u8 k = d->kinds[i];
        u32 off = *(volatile u32 *)cur;
        if (k == T_STR) {
            u32 start = off;
            off = put_user_str(buf, off, mask, (const void *)args[i]);
            /* an empty result for a non-NULL pointer: maybe a page not faulted in yet */
            if (args[i] && off == start + VAR_HDR)
                unreadable = 1;
        } else if (k == T_SOCKADDR) {
            long len = i < 5 ? (long)args[i + 1] : 0;
            off = put_user_sockaddr(buf, off, mask, (const void *)args[i], len);
        } else if (k == T_STRARR) {
            off = put_empty(buf, off, mask);
        } else {
            continue;
        }
        *cur = off;
    }
    return unreadable;
}

/* Does the syscall have an argument filled in by the kernel (read at exit)? */
statfunc int exit_sockaddr_index(struct sys_desc *d)
{
    for (int i = 0; i < 6; i++)
        if (d->kinds[i] == T_SOCKADDR_EXIT)
            return i;
    return -1;
}

/* The thread's pending entry, created on first use. */
statfunc struct pending *pending_for(u32 tid)
{
    struct pending *p = bpf_map_lookup_elem(&pending, &tid);
    if (p)
        return p;
    struct scratch_init *z = get_zero();
    if (!z)
        return 0;
    bpf_map_update_elem(&pending, &tid, &z->pend, BPF_NOEXIST);
    return bpf_map_lookup_elem(&pending, &tid);
}

/* The number of the syscall the current task is in (regs: its registers). */
statfunc long syscall_nr(struct pt_regs *regs)
{
    if (HAVE_BTF_CURRENT)
        return current_regs_btf()->orig_ax;
    return RD(regs, orig_ax);
}

/*
 * The six syscall arguments of the current task: x86_64 in di si dx r10 r8 r9; a 32-bit
 * (ia32) syscall in bx cx dx si di bp, of which the kernel takes the low 32 bits
 * (zero-extended here: T_INT arguments are sign-extended when recorded).
 */
statfunc void read_syscall_args(struct pt_regs *regs, u64 *args, bool compat)
{
    if (HAVE_BTF_CURRENT) {
        struct pt_regs *br = current_regs_btf();
        if (compat) {
            args[0] = (u32)br->bx;
            args[1] = (u32)br->cx;
            args[2] = (u32)br->dx;
            args[3] = (u32)br->si;
            args[4] = (u32)br->di;
            args[5] = (u32)br->bp;
            return;
        }
        args[0] = br->di;
        args[1] = br->si;
        args[2] = br->dx;
        args[3] = br->r10;
        args[4] = br->r8;
        args[5] = br->r9;
        return;
    }
    struct pt_regs r;
    if (RD_INTO(&r, sizeof(r), regs)) {
        __builtin_memset(args, 0, 6 * sizeof(u64));
        return;
    }
    if (compat) {
        args[0] = (u32)r.bx;
        args[1] = (u32)r.cx;
        args[2] = (u32)r.dx;
        args[3] = (u32)r.si;
        args[4] = (u32)r.di;
        args[5] = (u32)r.bp;
        return;
    }
    args[0] = r.di;
    args[1] = r.si;
    args[2] = r.dx;
    args[3] = r.r10;
    args[4] = r.r8;
    args[5] = r.r9;
}

/*
 * A 32-bit syscall's arguments as its x86_64 twin (id) takes them, where the ia32 entry
 * point passes the same values another way (collector/compat.py lists the pairs).
 */
statfunc void compat_fixup_args(long id, u64 *args)
{
    if (id == SYS_PWRITE64)
        args[3] |= args[4] << 32;            /* ia32_pwrite64: the offset's low, high halves */
    else if (id == SYS_MMAP)
        args[5] <<= 12;                      /* mmap2: the offset in 4 KiB pages */
    else if (id == SYS_PTRACE)
        args[0] = (u64)(s64)(s32)args[0];    /* compat_long_t request */
}

#endif /* TRACEE_ARGS_H */
