/* SPDX-License-Identifier: GPL-2.0 */
/*
 * filesystem.h: files from descriptors, inode attributes and full paths.
 *
 * bpf_d_path() is only allowed in fentry/LSM programs, which this kind of host may refuse,
 * so paths are rebuilt by walking dentries up to the mount root and crossing into the
 * parent mount (struct mount.mnt_mountpoint) until the namespace root. Files on internal
 * mounts (memfd, pipes, sockets) have no such path: their dentry name is used, as Tracee
 * does ("memfd:name").
 */
#ifndef TRACEE_FILESYSTEM_H
#define TRACEE_FILESYSTEM_H

#include "maps.h"

#define PATH_COMPONENTS_MAX 48
#define NAME_MAX_LEN        255

#ifdef TRACEE_NO_CORE
#define MOUNT_MNT_OFFSET __builtin_offsetof(struct mount, mnt)
#else
#define MOUNT_MNT_OFFSET bpf_core_field_offset(struct mount, mnt)
#endif

#ifndef TRACEE_NO_CORE
/* Older kernels' layouts, for CO-RE field-existence checks. */
struct inode___pre_v611 {
    struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

struct inode___pre_v66 {
    struct timespec64 i_ctime;
} __attribute__((preserve_access_index));
#endif

/* The struct file behind descriptor fd of the current task (NULL if none). */
statfunc struct file *fd_file(struct task_struct *task, long fd)
{
    if (fd < 0)
        return 0;
    struct files_struct *files = RD(task, files);
    if (!files)
        return 0;
    struct fdtable *fdt = RD(files, fdt);
    unsigned int max = RD(fdt, max_fds);
    if ((unsigned long)fd >= max)
        return 0;
    struct file **fds = RD(fdt, fd);
    struct file *f = 0;
    bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
    return f;
}

/* inode ctime in nanoseconds (three layouts over kernel versions). */
statfunc u64 inode_ctime(struct inode *inode)
{
    s64 sec = 0;
    u64 nsec = 0;
#ifdef TRACEE_NO_CORE
#if defined(HAVE_INODE_CTIME_SEC)
    sec = RD(inode, i_ctime_sec);
    nsec = RD(inode, i_ctime_nsec);
#elif defined(HAVE_INODE___I_CTIME)
    sec = RD(inode, __i_ctime.tv_sec);
    nsec = RD(inode, __i_ctime.tv_nsec);
#else
    sec = RD(inode, i_ctime.tv_sec);
    nsec = RD(inode, i_ctime.tv_nsec);
#endif
#else
    if (bpf_core_field_exists(inode->i_ctime_sec)) {
        sec = BPF_CORE_READ(inode, i_ctime_sec);
        nsec = BPF_CORE_READ(inode, i_ctime_nsec);
    } else {
        struct inode___pre_v611 *i611 = (void *)inode;
        struct inode___pre_v66 *i66 = (void *)inode;
        if (bpf_core_field_exists(i611->__i_ctime)) {
            sec = BPF_CORE_READ(i611, __i_ctime.tv_sec);
            nsec = BPF_CORE_READ(i611, __i_ctime.tv_nsec);
        } else {
            sec = BPF_CORE_READ(i66, i_ctime.tv_sec);
            nsec = BPF_CORE_READ(i66, i_ctime.tv_nsec);
        }
    }
#endif
    /* 6.13+ keeps a flag (I_CTIME_QUERIED) in bit 31 of the nanoseconds */
    return (u64)sec * 1000000000ULL + (nsec & 0x7fffffffULL);
}

struct file_id {
    u64 inode;
    u64 ctime;
    u32 dev;
    u16 mode;
    u16 pad;
};

statfunc void file_id_of(struct file *f, struct file_id *id)
{
    struct inode *inode = RD(f, f_inode);
    id->inode = RD(inode, i_ino);
    id->dev = RD(inode, i_sb, s_dev);
    id->mode = RD(inode, i_mode);
    id->ctime = inode_ctime(inode);
}

/*
 * Rebuild the path of (dentry, vfsmount) at the end of the per-CPU path buffer.
 * Returns the offset of its first byte in pb->data; the path ends at PATH_HALF.
 * Not static: a global function is verified once rather than at each call site.
 */
__noinline int build_path(struct path_buf *pb, u64 dentry_ptr, u64 vfsmnt_ptr)
{
    /* A global function: verified once, not at every call site (pointers as integers). */
    struct dentry *dentry = (struct dentry *)dentry_ptr;
    struct vfsmount *vfsmnt = (struct vfsmount *)vfsmnt_ptr;
    if (!pb)
        return PATH_HALF;
    struct mount *mnt = (void *)((char *)vfsmnt - MOUNT_MNT_OFFSET);
    struct mount *mnt_parent = RD(mnt, mnt_parent);
    struct dentry *first = dentry;
    pb->pos = PATH_HALF;
    int complete = 0;

    for (int i = 0; i < PATH_COMPONENTS_MAX; i++) {
        struct dentry *mnt_root = RD(vfsmnt, mnt_root);
        struct dentry *d_parent = RD(dentry, d_parent);
        if (dentry == mnt_root || dentry == d_parent) {
            complete = 1;
            if (dentry != mnt_root)
                break;   /* not reachable from the mount root: an internal file */
            if (mnt != mnt_parent) {
                /* cross into the parent mount, at the mount point */
                dentry = RD(mnt, mnt_mountpoint);
                mnt = mnt_parent;
                mnt_parent = RD(mnt, mnt_parent);
                vfsmnt = &mnt->mnt;
                complete = 0;
                continue;
            }
            break;       /* the root of the namespace */
        }
        struct qstr name;
        if (RD_INTO(&name, sizeof(name), &dentry->d_name))
            break;
        u32 len = name.len;
        if (len > NAME_MAX_LEN)
            len = NAME_MAX_LEN;
        u32 pos = *(volatile u32 *)&pb->pos;
        if (pos < len + 1 || pos > PATH_HALF)
            break;       /* too long: keep the tail */
        pos -= len + 1;
        pb->pos = pos;
        pb->data[BOUND(pos, PATH_HALF - 1)] = '/';
        bpf_probe_read_kernel(&pb->data[BOUND(pos + 1, PATH_HALF - 1)], BOUND(len, NAME_MAX_LEN), name.name);
        dentry = d_parent;
    }

    if (!complete)
        count_truncated();   /* too deep or too long: only the tail was kept */
    u32 pos = *(volatile u32 *)&pb->pos;
    if (pos == PATH_HALF) {
        /* nothing walked: "/" for the root, the dentry name for internal files */
        struct qstr name;
        if (RD_INTO(&name, sizeof(name), &first->d_name))
            return PATH_HALF;
        u32 len = name.len;
        if (len > NAME_MAX_LEN)
            len = NAME_MAX_LEN;
        if (len == 0)
            return PATH_HALF;
        pos = PATH_HALF - len;
        bpf_probe_read_kernel(&pb->data[BOUND(pos, PATH_HALF - 1)], BOUND(len, NAME_MAX_LEN), name.name);
    }
    return pos;
}

statfunc struct path_buf *get_path_buf(void)
{
    u32 k = 0;
    return bpf_map_lookup_elem(&path_bufs, &k);
}

/* Write the path of struct path p as a string argument. */
statfunc u32 put_path(u8 *buf, u32 off, u32 mask, const struct path *p)
{
    struct path_buf *pb = get_path_buf();
    if (!pb || !p)
        return put_empty(buf, off, mask);
    struct dentry *dentry = RD(p, dentry);
    struct vfsmount *vfsmnt = RD(p, mnt);
    if (!dentry || !vfsmnt)
        return put_empty(buf, off, mask);
    u32 pos = build_path(pb, (u64)dentry, (u64)vfsmnt);
    pos &= PATH_HALF * 2 - 1;
    u32 len = PATH_HALF - pos;
    if (pos > PATH_HALF)
        len = 0;
    return put_kern_bytes(buf, off, mask, &pb->data[pos & (PATH_HALF - 1)], len);
}

/* Write the path of a struct file as a string argument. */
statfunc u32 put_file_path(u8 *buf, u32 off, u32 mask, struct file *f)
{
    if (!f)
        return put_empty(buf, off, mask);
    return put_path(buf, off, mask, &f->f_path);
}

#endif /* TRACEE_FILESYSTEM_H */
