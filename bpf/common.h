/* SPDX-License-Identifier: GPL-2.0 */
/*
 * common.h: includes, constants and the wire-format writers shared by every program.
 *
 * Wire format of one ring-buffer record (little endian, see collector/wire.py):
 *
 *   struct event_header            184 bytes, fixed (maps.h)
 *   struct arg_slot[nfixed]        the event's fixed-size arguments, in definition order,
 *                                  each widened to 64 bits (signed ones sign-extended)
 *   var arg ...                    the variable-size arguments, in definition order:
 *       string / bytes / sockaddr: struct var_arg (u32 len), len bytes, padding to 4
 *       string array:              struct strarr_arg (u32 len, u32 count), len bytes of
 *                                  NUL-terminated strings, padding to 4 (count
 *                                  0xffffffff: split all)
 *
 * collector/wire.py declares the same layouts (these, the header, every map key and value
 * user space packs or reads); tests/test_wire_layouts.py checks them against the compiled
 * object's BTF, and the loader refuses an object whose layouts differ.
 *
 * Writers never fail: a value that cannot be read is written empty, and a write that
 * would start past the buffer's limit is dropped (the decoder reads missing trailing
 * variable arguments as empty).
 */
#ifndef TRACEE_COMMON_H
#define TRACEE_COMMON_H

#include "vmlinux.h"
#include "tracee_features.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

/* CO-RE reads, or plain probe reads for a non-CO-RE build (CORE=0). */
#ifdef TRACEE_NO_CORE
#define RD BPF_PROBE_READ
#define RD_INTO(dst, sz, src) bpf_probe_read_kernel((dst), (sz), (src))
#else
#define RD BPF_CORE_READ
#define RD_INTO(dst, sz, src) bpf_core_read((dst), (sz), (src))
#endif

#define statfunc static __always_inline

#define TASK_COMM_LEN      16
#define UTS_LEN            64
#define MAX_SYSCALLS       512     /* syscall ids handled (x86_64 numbers) */
#define MAX_EVENT_ID       1024    /* size of the selected-events array */

#define STR_MAX            4096    /* one string argument, NUL included (PATH_MAX) */
#define ELEM_MAX           4096    /* one element of a string array */
#define ARR_ELEMS_MAX      64      /* elements of argv / envp read at execve */
#define AREA_MAX           8192    /* argv/env area of a new process (mm->arg_start..) */
#define SOCKADDR_MAX       128     /* sizeof(struct sockaddr_storage) */
#define MAGIC_BYTES        20      /* magic_write: bytes of the file header */

/* The per-CPU event buffer: writes start below 16 KB and are at most 8 KB long. */
#define EVT_SIZE           32760
#define EVT_MASK           16383
#define EVT_MAX_RECORD     24576
/* The per-thread pending-syscall record: the header, then writes that start below 8 KB and
 * are at most 4 KB long. */
#define PEND_SIZE          12544
#define PEND_MASK          8191

#define ALL_ELEMS          0xffffffffu

/* Tracee's event ids (engine/catalogue.py). Syscall events use the x86_64 number. */
#define EV_SCHED_PROCESS_FORK      714
#define EV_SCHED_PROCESS_EXEC      715
#define EV_SCHED_PROCESS_EXIT      716
#define EV_MEM_PROT_ALERT          724
#define EV_MAGIC_WRITE             727
#define EV_SECURITY_BPRM_CHECK     731
#define EV_SECURITY_FILE_OPEN      732
#define EV_SECURITY_SOCKET_CONNECT 736
#define EV_SECURITY_SB_MOUNT       740
#define EV_SOCKET_DUP              749
#define EV_SECURITY_INODE_RENAME   768

/* x86_64 syscall numbers with dedicated handling. */
#define SYS_OPEN         2
#define SYS_MMAP         9
#define SYS_MPROTECT     10
#define SYS_PWRITE64     18
#define SYS_WRITE        1
#define SYS_DUP          32
#define SYS_DUP2         33
#define SYS_CONNECT      42
#define SYS_EXECVE       59
#define SYS_RENAME       82
#define SYS_PTRACE       101
#define SYS_CREAT        85
#define SYS_MOUNT        165
#define SYS_OPENAT       257
#define SYS_RENAMEAT     264
#define SYS_DUP3         292
#define SYS_OPEN_BY_HANDLE_AT 304
#define SYS_RENAMEAT2    316
#define SYS_EXECVEAT     322
#define SYS_PKEY_MPROTECT 329
#define SYS_OPENAT2      437

#define AT_FDCWD_VAL     -100
#define PROT_WRITE_VAL   0x2
#define PROT_EXEC_VAL    0x4
#define S_IFMT_VAL       00170000
#define S_IFREG_VAL      0100000
#define S_IFSOCK_VAL     0140000
#define PF_KTHREAD_VAL   0x00200000
#define AF_UNIX_VAL      1
#define EAGAIN_VAL       11
#define EBUSY_VAL        16
#define EINPROGRESS_VAL  115
#define E2BIG_VAL        7
#define AF_INET_VAL      2
#define AF_INET6_VAL     10

#define PROT_GROWS_VAL   0x03000000   /* PROT_GROWSDOWN | PROT_GROWSUP */
#define PROT_VALID_VAL   0xf          /* PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM */
#define PAGE_SIZE_VAL    4096
#define VM_READ_VAL      0x1
#define VM_WRITE_VAL     0x2
#define VM_EXEC_VAL      0x4
#define VM_ACCESS_VAL    0x7          /* VM_READ | VM_WRITE | VM_EXEC; VM_MAY* are these << 4 */
#define MMF_HAS_MDWE_BIT 28           /* mm->flags: prctl(PR_SET_MDWE) (6.3+) */

/* mem_prot_alert alerts (Tracee's mem_prot_alert_e). */
#define ALERT_MMAP_W_X    1
#define ALERT_MPROT_X_ADD 2
#define ALERT_MPROT_W_ADD 3
#define ALERT_MPROT_W_REM 4

#define ALIGN4(x) (((x) + 3) & ~3u)

/* x & mask, done by the program as written: the verifier then knows the bound (clang
 * would otherwise fold the mask into a min() the verifier cannot follow). */
#define BOUND(x, mask) ({ u64 __b = (x); asm volatile("" : "+r"(__b)); __b & (mask); })

/*
 * Per-CPU count of argument values cut at one of the limits above (a string of STR_MAX
 * bytes or more, a string array of more than ARR_ELEMS_MAX elements or past the record's
 * room, an element of ELEM_MAX bytes or more, an argument area over AREA_MAX, a path
 * deeper or longer than the path walker goes): collector/collector.py reports the sum.
 */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, u32);
    __type(value, u64);
} trunc_args SEC(".maps");

statfunc void count_truncated(void)
{
    u32 k = 0;
    u64 *n = bpf_map_lookup_elem(&trunc_args, &k);
    if (n)
        *n += 1;
}

/* A string that filled its whole buffer (size bytes, NUL included) was cut if the
 * source's byte at size - 1 is not its terminating NUL. */
statfunc void check_user_str_cut(const void *src, u32 size)
{
    char c = 0;
    if (!bpf_probe_read_user(&c, 1, src + size - 1) && c)
        count_truncated();
}

/* ---- wire layouts of the arguments (in BTF through maps.h: wire_layouts) --------- */

/* A fixed-size argument. */
struct arg_slot {
    u64 value;              /* widened to 64 bits, signed ones sign-extended */
};

/* The head of a string, bytes or sockaddr argument: len bytes follow, then padding to 4. */
struct var_arg {
    u32 len;
};

/* The head of a string array argument: len bytes of NUL-terminated strings follow, then
 * padding to 4. */
struct strarr_arg {
    u32 len;
    u32 count;              /* strings in them; ALL_ELEMS: as many as there are */
};

/* (as u32, like the offsets they are added to: the arithmetic stays 32-bit) */
#define VAR_HDR      ((u32)sizeof(struct var_arg))
#define STRARR_HDR   ((u32)sizeof(struct strarr_arg))
#define STRARR_COUNT ((u32)__builtin_offsetof(struct strarr_arg, count))
#define SLOT_SIZE    ((u32)sizeof(struct arg_slot))

/* ---- wire writers (buf: a map value; mask: EVT_MASK or PEND_MASK) ---------------- */

/* A fixed-size argument: one 64-bit slot. */
statfunc u32 put_u64(u8 *buf, u32 off, u32 mask, u64 v)
{
    if (off > mask)
        return off;
    ((struct arg_slot *)&buf[BOUND(off, mask)])->value = v;
    return off + SLOT_SIZE;
}

/* A string from user memory (NULL or unreadable: empty). */
statfunc u32 put_user_str(u8 *buf, u32 off, u32 mask, const void *src)
{
    if (off > mask)
        return off;
    u32 o = BOUND(off, mask);
    long n = 0;
    if (src)
        n = bpf_probe_read_user_str(&buf[o + VAR_HDR], STR_MAX, src);
    if (n == STR_MAX)
        check_user_str_cut(src, STR_MAX);
    n = n > 0 ? n - 1 : 0;
    n &= STR_MAX - 1;
    ((struct var_arg *)&buf[o])->len = (u32)n;
    return off + VAR_HDR + ALIGN4((u32)n);
}

/* A NUL-terminated string from kernel memory, at most max bytes (power of two). */
statfunc u32 put_kern_str(u8 *buf, u32 off, u32 mask, const void *src, u32 max)
{
    if (off > mask)
        return off;
    u32 o = BOUND(off, mask);
    long n = 0;
    if (src)
        n = bpf_probe_read_kernel_str(&buf[o + VAR_HDR], max & (STR_MAX * 2 - 1), src);
    if (n > 0 && n == (max & (STR_MAX * 2 - 1))) {
        char c = 0;
        if (!bpf_probe_read_kernel(&c, 1, src + n - 1) && c)
            count_truncated();
    }
    n = n > 0 ? n - 1 : 0;
    n &= STR_MAX - 1;
    ((struct var_arg *)&buf[o])->len = (u32)n;
    return off + VAR_HDR + ALIGN4((u32)n);
}

/* len bytes from kernel memory (len < 8192). */
statfunc u32 put_kern_bytes(u8 *buf, u32 off, u32 mask, const void *src, u32 len)
{
    if (off > mask)
        return off;
    u32 o = BOUND(off, mask);
    len = BOUND(len, AREA_MAX - 1);
    if (!src || bpf_probe_read_kernel(&buf[o + VAR_HDR], len, src))
        len = 0;
    ((struct var_arg *)&buf[o])->len = len;
    return off + VAR_HDR + ALIGN4(len);
}

/* len bytes from user memory (len < 8192). */
statfunc u32 put_user_bytes(u8 *buf, u32 off, u32 mask, const void *src, u32 len)
{
    if (off > mask)
        return off;
    u32 o = BOUND(off, mask);
    len = BOUND(len, AREA_MAX - 1);
    if (!src || bpf_probe_read_user(&buf[o + VAR_HDR], len, src))
        len = 0;
    ((struct var_arg *)&buf[o])->len = len;
    return off + VAR_HDR + ALIGN4(len);
}

/* An empty variable-size argument. */
statfunc u32 put_empty(u8 *buf, u32 off, u32 mask)
{
    if (off > mask)
        return off;
    ((struct var_arg *)&buf[off & mask])->len = 0;
    return off + VAR_HDR;
}

/* A struct sockaddr from user memory: its size follows the family (bounded by addrlen). */
statfunc u32 put_user_sockaddr(u8 *buf, u32 off, u32 mask, const void *src, long addrlen)
{
    u16 family = 0;
    u32 len = 0;
    if (src && !bpf_probe_read_user(&family, sizeof(family), src)) {
        if (family == AF_INET_VAL)
            len = 16;
        else if (family == AF_INET6_VAL)
            len = 28;
        else if (family == AF_UNIX_VAL)
            len = 110;
        else
            len = 2;
        if (addrlen > 0 && addrlen < len)
            len = addrlen;
    }
    return put_user_bytes(buf, off, mask, src, len);
}

/*
 * A user char *const[] (argv/envp) as a string array, at most ARR_ELEMS_MAX elements;
 * compat: an array of 32-bit pointers (a 32-bit syscall's). Only for the event buffer
 * (mask EVT_MASK).
 */
statfunc u32 put_user_strarr(u8 *buf, u32 off, const void *arr, bool compat)
{
    if (off > EVT_MASK)
        return off;
    u32 o = BOUND(off, EVT_MASK);
    u32 pos = o + STRARR_HDR;
    u32 count = 0;
    u64 stride = compat ? 4 : 8;
    u64 mask = compat ? 0xffffffffULL : ~0ULL;
    /* (an element cut at ELEM_MAX is counted by the decoder: counting it here, in the
     * loop, takes the non-CO-RE build past the verifier's limit) */
    for (int i = 0; i < ARR_ELEMS_MAX; i++) {
        /* 8 bytes even for a 32-bit pointer: the array goes on at least to its NULL */
        u64 p = 0;
        if (!arr || bpf_probe_read_user(&p, sizeof(p), arr + i * stride) || !(p & mask))
            break;
        p &= mask;
        if (pos > EVT_MASK) {
            count_truncated();   /* no room left in the record for the rest */
            break;
        }
        long n = bpf_probe_read_user_str(&buf[BOUND(pos, EVT_MASK)], ELEM_MAX, (const void *)p);
        if (n <= 0)
            break;
        pos += n;
        count++;
    }
    if (count == ARR_ELEMS_MAX) {
        /* every slot used: cut if the array goes on */
        u64 p = 0;
        if (arr && !bpf_probe_read_user(&p, sizeof(p), arr + ARR_ELEMS_MAX * stride) && (p & mask))
            count_truncated();
    }
    u32 len = pos - (o + STRARR_HDR);
    ((struct strarr_arg *)&buf[o])->len = len;
    *(u32 *)&buf[(o + STRARR_COUNT) & EVT_MASK] = count;
    return off + STRARR_HDR + ALIGN4(len);
}

/* A NUL-separated user memory area (mm->arg_start..arg_end) as a string array. */
statfunc u32 put_user_area(u8 *buf, u32 off, unsigned long start, unsigned long end)
{
    if (off > EVT_MASK)
        return off;
    u32 o = BOUND(off, EVT_MASK);
    u32 len = 0;
    if (end > start) {
        unsigned long n = end - start;
        if (n > AREA_MAX - 1)
            count_truncated();
        len = n > AREA_MAX - 1 ? AREA_MAX - 1 : n;
        len = BOUND(len, AREA_MAX - 1);
        if (bpf_probe_read_user(&buf[o + STRARR_HDR], len, (void *)start))
            len = 0;
    }
    ((struct strarr_arg *)&buf[o])->len = len;
    ((struct strarr_arg *)&buf[o])->count = ALL_ELEMS;
    return off + STRARR_HDR + ALIGN4(len);
}

#endif /* TRACEE_COMMON_H */
