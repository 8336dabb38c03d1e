/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kernel_types.c: the kernel types the programs use, for a KERN_HEADERS build (bpf/Makefile).
 *
 * On a kernel without BTF, vmlinux.h is generated from this file instead: compiled for the
 * host with the kernel's headers and configuration (as kernel modules are), its DWARF turned
 * into BTF (pahole -J), and dumped as C (bpftool btf dump). Every type the programs read must
 * be reachable from a global below. Internal types that the exported headers lack are
 * declared here with the prefix the programs read (its layout is stable over the versions
 * handled below).
 */
#include <linux/bpf.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/fdtable.h>
#include <linux/mount.h>
#include <linux/dcache.h>
#include <linux/binfmts.h>
#include <linux/cgroup-defs.h>
#include <linux/kernfs.h>
#include <linux/nsproxy.h>
#include <linux/pid_namespace.h>
#include <linux/utsname.h>
#include <linux/mm_types.h>
#include <linux/net.h>
#include <net/sock.h>
#include <linux/ptrace.h>
#include <linux/version.h>
#include <linux/ns_common.h>

/* fs/mount.h is internal: the prefix of struct mount the path walk reads (stable since 3.x) */
struct mount {
    struct hlist_node mnt_hash;
    struct mount *mnt_parent;
    struct dentry *mnt_mountpoint;
    struct vfsmount mnt;
};

/* fs/mount.h: struct mnt_namespace began with a refcount before 5.11, with ns since */
struct mnt_namespace {
#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 11, 0)
    atomic_t count;
#endif
    struct ns_common ns;
};

struct task_struct *__t;
struct mount *__m;
struct linux_binprm *__b;
struct socket *__s;
struct sock *__sk;
struct fs_struct *__fs;
struct files_struct *__fi;
struct fdtable *__fdt;
struct kernfs_node *__kn;
struct css_set *__cs;
struct cgroup *__cg;
struct uts_namespace *__uts;
struct pid_namespace *__pidns;
struct mnt_namespace *__mntns;
struct pt_regs *__regs;
struct bpf_raw_tracepoint_args *__rta;
struct __sk_buff *__skb;   /* capture.h: the cgroup_skb programs */
struct vm_area_struct *__vma;
enum bpf_map_type __mt;
enum bpf_func_id __fid;
