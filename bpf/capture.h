/* SPDX-License-Identifier: GPL-2.0 */
/*
 * capture.h: forensic capture (tracee --capture): the bytes a process wrote or read, the
 * memory region it turned from writable+executable to executable, the module image it
 * asked the kernel to load. Copied in the kernel, from the user buffer, in chunks with
 * their file offsets, into their own ring buffer (`captures`), so a burst of captured data
 * never takes the room of the event stream (`events`).
 *
 * Programs (all optional, `?`: loaded only when capture is asked for; the raw_tp ones are
 * put in their prog_enter/prog_exit slots by the collector, collector/capture/kernel.py):
 *   cap_exit_io      exit of write, pwrite64, writev, pwritev, pwritev2 and read, pread64,
 *                    readv, preadv, preadv2: the bytes the call transferred (its return
 *                    value), filtered first by fd, file type and path prefix (capture_cfg)
 *   cap_exit_mem     exit of a successful mprotect/pkey_mprotect that mem_prot_alert saw
 *                    turn a W+X region into X (alert 4; security.h notes it in cap_mem_req)
 *   cap_enter_module enter of init_module (the image buffer) and finit_module (its fd: the
 *                    file is copied in user space)
 *   cap_skb_ingress, cap_skb_egress   cgroup_skb on the cgroup v2 root: every packet's
 *                    L3 and L4 headers and up to capture_cfg.snaplen bytes of its payload
 *
 * Each record is a struct capture_chunk followed by `size` bytes. A chunk that does not fit
 * in the ring is counted (per artifact in cap_stats, in total in cap_totals) and the
 * artifact is marked incomplete by user space: never silently short. Size budgets
 * (capture_cfg) stop the copying in the kernel; what was not copied is counted the same way.
 */
#ifndef TRACEE_CAPTURE_H
#define TRACEE_CAPTURE_H

#include "exec.h"

#define CAP_CHUNK        16384     /* data bytes per record */
#define CAP_LOOP_MAX     8192      /* chunks per syscall (bpf_loop): 128 MiB */
#define CAP_IOV_MAX      64        /* iovec entries of one readv/writev looked at */
#define CAP_PATHS        3
#define CAP_PATH_LEN     64        /* a path prefix (at most 50 characters) and its NUL */

/* capture_chunk.kind (collector/capture/records.py) */
#define CAPK_WRITE       1
#define CAPK_READ        2
#define CAPK_MEM         3
#define CAPK_MODULE      4
#define CAPK_MODULE_FD   5         /* finit_module: the fd to copy the image from (no data) */
#define CAPK_NET         6         /* a packet (cgroup_skb): total = its length, flags = CHUNK_EGRESS */

/* capture_chunk.flags */
#define CHUNK_PATH       0x1       /* the data is the file's path (first record of an artifact) */
#define CHUNK_EGRESS     0x2       /* a packet sent (else received) */

/* capture_cfg.flags */
#define CAPF_WRITE       0x1
#define CAPF_READ        0x2
#define CAPF_MEM         0x4
#define CAPF_MODULE      0x8
#define CAPF_NET         0x10

/* io_filter.types */
#define CAPT_REGULAR     0x1
#define CAPT_PIPE        0x2
#define CAPT_SOCKET      0x4
#define CAPT_ELF         0x8

/* cap_stat.flags */
#define CAPS_PATH_SENT   0x1
#define CAPS_ELF         0x2

#define S_IFIFO_VAL      0010000

#define SYS_READ         0
#define SYS_PREAD64      17
#define SYS_READV        19
#define SYS_WRITEV       20
#define SYS_INIT_MODULE  175
#define SYS_PREADV       295
#define SYS_PWRITEV      296
#define SYS_FINIT_MODULE 313
#define SYS_PREADV2      327
#define SYS_PWRITEV2     328
#define SYS_SENDFILE     40
#define SYS_SPLICE       275
#define SYS_COPY_FILE_RANGE 326

/* The filters of one direction (write, read): AND between kinds, OR within one. */
struct io_filter {
    u32 types;                          /* CAPT_* (0: any) */
    u32 fds;                            /* bit n: fd n, for stdin/stdout/stderr (0: any) */
    u32 npaths;                         /* path prefixes in use (0: any path) */
    u32 pad;
    char paths[CAP_PATHS][CAP_PATH_LEN];
};

/* The one value of cap_cfg (collector/capture/kernel.py). */
struct capture_cfg {
    u32 flags;                          /* CAPF_* */
    u32 snaplen;                        /* network: payload bytes kept after the L4 header */
    u64 artifact_budget;                /* bytes copied per artifact, at most */
    u64 total_budget;                   /* bytes copied in all, at most */
    struct io_filter io[2];             /* [0] write, [1] read */
};

/* One record of the captures ring buffer; `size` data bytes follow. */
struct capture_chunk {
    struct event_header hdr;            /* the process that caused it */
    u64 off;                            /* file offset (write/read), offset in the region/image */
    u64 inode;                          /* write/read/module fd: the file's inode; mem: region start */
    u64 ctime;                          /* the file's ctime (write/read/module fd) */
    u64 total;                          /* mem/module: the size offered (copied or not); 0 for files */
    u64 seq;                            /* mem/module: the boot time that names this artifact */
    u32 dev;
    u32 mode;                           /* inode mode: file type */
    u32 kind;                           /* CAPK_* */
    u32 size;                           /* data bytes that follow */
    s32 fd;
    u32 flags;                          /* CHUNK_* */
};

/* An artifact, as the kernel counts it (user space builds the same key, records.py). */
struct cap_key {
    u64 inode;                          /* mem: 0 (seq names it) */
    u64 seq;                            /* mem/module: boot time of the call; files: 0 */
    u32 dev;
    u32 kind;
    u32 pid;                            /* mem/module: host tgid; files: 0 */
    u32 pad;
};

struct cap_stat {
    u64 offered;                        /* bytes the process transferred */
    u64 lost_chunks;                    /* records the ring had no room for */
    u64 lost_bytes;                     /* ... and their bytes */
    u64 over_budget;                    /* bytes not copied: past a budget or a per-call limit */
    u32 flags;                          /* CAPS_* */
    u32 pad;
};

/* A W+X -> X mprotect seen at enter, copied at its successful exit. */
struct cap_mem_req {
    u64 addr;
    u64 len;
    u64 ts;
};

/*
 * The chunk loop's state. It lives in the per-CPU scratch, not on the stack: the verifier
 * then sees its values as unknown, and the loop body is verified once instead of once per
 * distinct value of its counters.
 */
struct cap_loop {
    u64 buf;                            /* current user segment */
    u64 seg_left;                       /* bytes left in it */
    u64 left;                           /* bytes left to send */
    u64 off;                            /* offset of the next byte */
    u64 iov;                            /* user iovec array (0: one segment) */
    u32 iov_idx;
    u32 iov_cnt;
    u32 compat;                         /* 32-bit iovecs */
    u32 pad;
    struct cap_key key;                 /* the artifact, for its loss counters */
};

/* The scratch of one record (per CPU), and the loop that sends them. */
struct cap_scratch {
    struct capture_chunk c;
    u8 data[CAP_CHUNK];
    struct cap_loop loop;
};

/* Types that reach user space only through records (for the layout check, see maps.h). */
struct capture_layouts {
    struct capture_chunk chunk;
    struct cap_key key;
};
struct capture_layouts capture_layouts SEC(".wire") __attribute__((used)) = {};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);          /* set before load when capture is on */
} captures SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, u32);
    __type(value, struct capture_cfg);
} cap_cfg SEC(".maps");

/* [0] bytes copied, [1] chunks lost, [2] bytes lost, [3] bytes not copied (budgets). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, u32);
    __type(value, u64);
} cap_totals SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, struct cap_key);
    __type(value, struct cap_stat);
} cap_stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, u32);
    __type(value, struct cap_mem_req);
} cap_mem_reqs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, u32);
    __type(value, struct cap_scratch);
} cap_scratch SEC(".maps");

/* cap_skb's own scratch: a packet (softirq) can interrupt a chunk loop on the same CPU. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, u32);
    __type(value, struct cap_scratch);
} cap_skb_scratch SEC(".maps");

statfunc struct capture_cfg *get_cap_cfg(void)
{
    u32 k = 0;
    return bpf_map_lookup_elem(&cap_cfg, &k);
}

statfunc void cap_total_add(u32 idx, u64 n)
{
    u64 *v = bpf_map_lookup_elem(&cap_totals, &idx);
    if (v)
        __sync_fetch_and_add(v, n);
}

/* Note a W+X -> X mprotect for cap_exit_mem (called where mem_prot_alert raises alert 4). */
statfunc void capture_mem_note(u64 addr, u64 len)
{
    struct capture_cfg *cc = get_cap_cfg();
    if (!cc || !(cc->flags & CAPF_MEM))
        return;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct cap_mem_req req = {.addr = addr, .len = len, .ts = bpf_ktime_get_boot_ns()};
    bpf_map_update_elem(&cap_mem_reqs, &tid, &req, BPF_ANY);
}

/* Send the scratch's chunk and `size` data bytes; false if the ring had no room. */
statfunc bool cap_send(struct cap_scratch *s, u32 size)
{
    if (size > CAP_CHUNK)
        return false;
    s->c.size = size;
    u64 len = sizeof(struct capture_chunk) + size;
    long err = bpf_ringbuf_output(&captures, s, len, 0);
    for (int i = 0; i < 3 && err == -EAGAIN_VAL; i++)
        err = bpf_ringbuf_output(&captures, s, len, 0);   /* the ring's lock can give up (see maps.h) */
    return err == 0;
}

/* The artifact's counters, created on first use. */
statfunc struct cap_stat *cap_stat_of(struct cap_key *key)
{
    struct cap_stat *st = bpf_map_lookup_elem(&cap_stats, key);
    if (st)
        return st;
    struct cap_stat zero = {};
    bpf_map_update_elem(&cap_stats, key, &zero, BPF_NOEXIST);
    return bpf_map_lookup_elem(&cap_stats, key);
}

/*
 * How many of n offered bytes may be copied for this artifact: the artifact's and the
 * total budget decide; the rest is counted as not copied.
 */
statfunc u64 cap_budget(struct capture_cfg *cc, struct cap_stat *st, u64 n)
{
    u64 prev = __sync_fetch_and_add(&st->offered, n);
    u64 allowed = 0;
    if (prev < cc->artifact_budget)
        allowed = cc->artifact_budget - prev < n ? cc->artifact_budget - prev : n;
    u32 k = 0;
    u64 *copied = bpf_map_lookup_elem(&cap_totals, &k);
    if (copied && allowed) {
        u64 charged = allowed;
        u64 before = __sync_fetch_and_add(copied, charged);
        if (before >= cc->total_budget)
            allowed = 0;
        else if (cc->total_budget - before < allowed)
            allowed = cc->total_budget - before;
        if (charged > allowed)
            cap_total_add(0, -(charged - allowed));   /* give back what will not be copied */
    }
    if (n > allowed) {
        __sync_fetch_and_add(&st->over_budget, n - allowed);
        cap_total_add(3, n - allowed);
    }
    return allowed;
}

/* ---- the chunk loop (bpf_loop) --------------------------------------------------------- */

static long cap_chunk_cb(u64 i, void *arg)
{
    u32 k = 0;
    struct cap_scratch *s = bpf_map_lookup_elem(&cap_scratch, &k);
    if (!s)
        return 1;
    struct cap_loop *l = &s->loop;
    if (!l->left)
        return 1;
    while (!l->seg_left) {
        /* next iovec (bounded by the loop below) */
        if (!l->iov || l->iov_idx >= l->iov_cnt || l->iov_idx >= CAP_IOV_MAX)
            return 1;
        if (l->compat) {
            u32 v[2] = {};
            bpf_probe_read_user(v, sizeof(v), (void *)(l->iov + (u64)l->iov_idx * 8));
            l->buf = v[0];
            l->seg_left = v[1];
        } else {
            u64 v[2] = {};
            bpf_probe_read_user(v, sizeof(v), (void *)(l->iov + (u64)l->iov_idx * 16));
            l->buf = v[0];
            l->seg_left = v[1];
        }
        l->iov_idx++;
        break;
    }
    if (!l->seg_left)
        return 0;
    u64 n = l->seg_left < l->left ? l->seg_left : l->left;
    if (n > CAP_CHUNK)
        n = CAP_CHUNK;
    u32 size = BOUND(n, CAP_CHUNK * 2 - 1);
    if (size > CAP_CHUNK)
        return 1;
    s->c.off = l->off;
    s->c.flags = 0;
    bool ok = bpf_probe_read_user(s->data, size, (void *)l->buf) == 0 && cap_send(s, size);
    if (!ok) {
        struct cap_stat *st = bpf_map_lookup_elem(&cap_stats, &l->key);
        if (st) {
            __sync_fetch_and_add(&st->lost_chunks, 1);
            __sync_fetch_and_add(&st->lost_bytes, n);
        }
        cap_total_add(1, 1);
        cap_total_add(2, n);
        cap_total_add(0, -n);   /* charged by cap_budget, never copied */
    }
    l->buf += n;
    l->seg_left -= n;
    l->left -= n;
    l->off += n;
    return l->left ? 0 : 1;
}

/*
 * Send the bytes the scratch's loop describes (its chunk head is filled); what is left
 * after CAP_LOOP_MAX chunks or CAP_IOV_MAX iovecs is counted as not copied.
 */
statfunc void cap_run(struct cap_scratch *s, struct cap_stat *st)
{
    bpf_loop(CAP_LOOP_MAX, cap_chunk_cb, 0, 0);
    u64 left = s->loop.left;
    if (left) {
        __sync_fetch_and_add(&st->over_budget, left);
        cap_total_add(3, left);
        cap_total_add(0, -left);   /* charged by cap_budget, never copied */
    }
}

/* Set the scratch's loop up for one user buffer (or iovec array: iov, iov_cnt). */
statfunc void cap_loop_init(struct cap_scratch *s, struct cap_key *key, u64 buf, u64 n, u64 off, u64 iov,
                            u32 iov_cnt, u32 compat)
{
    struct cap_loop *l = &s->loop;
    l->buf = iov ? 0 : buf;
    l->seg_left = iov ? 0 : n;
    l->left = n;
    l->off = off;
    l->iov = iov;
    l->iov_idx = 0;
    l->iov_cnt = iov_cnt;
    l->compat = compat;
    l->key = *key;
}

/* ---- write/read ------------------------------------------------------------------------ */

statfunc u32 cap_type_of(u32 mode)
{
    switch (mode & S_IFMT_VAL) {
    case S_IFREG_VAL:
        return CAPT_REGULAR;
    case S_IFIFO_VAL:
        return CAPT_PIPE;
    case S_IFSOCK_VAL:
        return CAPT_SOCKET;
    }
    return 0;
}

/* True if the path at pb->data[pos..PATH_HALF) starts with one of the filter's prefixes. */
statfunc bool cap_path_matches(struct io_filter *f, struct path_buf *pb, u32 pos)
{
    for (int j = 0; j < CAP_PATHS; j++) {
        if (j >= f->npaths)
            break;
        bool ok = true;
        for (int k = 0; k < CAP_PATH_LEN; k++) {
            char c = f->paths[j][k];
            if (!c)
                break;
            u32 at = pos + k;
            if (at >= PATH_HALF || pb->data[at & (PATH_HALF * 2 - 1)] != c) {
                ok = false;
                break;
            }
        }
        if (ok)
            return true;
    }
    return false;
}

/* The path of f into the path buffer; returns its start (PATH_HALF: none). */
statfunc u32 cap_build_path(struct path_buf *pb, struct file *f)
{
    struct dentry *dentry = RD(f, f_path.dentry);
    struct vfsmount *mnt = RD(f, f_path.mnt);
    if (!dentry || !mnt)
        return PATH_HALF;
    return build_path(pb, (u64)dentry, (u64)mnt) & (PATH_HALF * 2 - 1);
}

SEC("?raw_tp")
int cap_exit_io(struct bpf_raw_tracepoint_args *ctx)
{
    long ret = ctx->args[1];
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct pending *p = bpf_map_lookup_elem(&pending, &tid);
    if (!p)
        return 0;
    s64 id = p->id;
    p->id = -1;
    if (ret <= 0)
        return 0;
    bool is_write = id == SYS_WRITE || id == SYS_PWRITE64 || id == SYS_WRITEV || id == SYS_PWRITEV ||
                    id == SYS_PWRITEV2;
    struct capture_cfg *cc = get_cap_cfg();
    struct filter_cfg *cfg = get_cfg();
    if (!cc || !cfg)
        return 0;
    /* copy_file_range, sendfile, splice: the kernel moves the bytes from file to file and no
     * user buffer holds them. The file written (else, the file read) is chosen by the same
     * filters and the bytes are counted as not captured: its artifact is reported incomplete,
     * never silently short (cp and cat copy regular files this way). */
    bool moved = id == SYS_COPY_FILE_RANGE || id == SYS_SENDFILE || id == SYS_SPLICE;
    if (moved)
        is_write = cc->flags & CAPF_WRITE;
    if (!(cc->flags & (is_write ? CAPF_WRITE : CAPF_READ)))
        return 0;
    struct io_filter *flt = &cc->io[is_write ? 0 : 1];
    s32 fd = (s32)p->args[0];
    if (moved && is_write)
        fd = (s32)(id == SYS_SENDFILE ? p->args[0] : p->args[2]);
    else if (moved && id == SYS_SENDFILE)
        fd = (s32)p->args[1];
    if (flt->fds && (fd < 0 || fd > 2 || !(flt->fds & (1u << fd))))
        return 0;
    struct task_struct *t = (void *)bpf_get_current_task();
    struct file *f = fd_file(t, fd);
    if (!f)
        return 0;
    struct file_id fid = {};
    file_id_of(f, &fid);
    u32 type = cap_type_of(fid.mode);
    bool vectored = id == SYS_WRITEV || id == SYS_PWRITEV || id == SYS_PWRITEV2 || id == SYS_READV ||
                    id == SYS_PREADV || id == SYS_PREADV2;

    struct cap_key key = {.inode = fid.inode, .dev = fid.dev, .kind = is_write ? CAPK_WRITE : CAPK_READ};
    /* a file already chosen by the type and path filters (its counters exist) is not checked
     * again: no path walk for each write to a watched file */
    struct cap_stat *st = bpf_map_lookup_elem(&cap_stats, &key);
    bool elf = false;
    if (!st && flt->types) {
        if ((flt->types & CAPT_ELF) && type == CAPT_REGULAR) {
            if (!vectored && !moved) {
                /* a write (read) of the file's first bytes: is it an ELF header? */
                s64 pos = (id == SYS_PWRITE64 || id == SYS_PREAD64) ? (s64)p->args[3] : (s64)RD(f, f_pos) - ret;
                u32 magic = 0;
                if (pos == 0 && ret >= 4 && !bpf_probe_read_user(&magic, 4, (void *)p->args[1]))
                    elf = magic == 0x464c457f;   /* "\x7fELF" */
            }
        }
        if (!((flt->types & type) || elf))
            return 0;
    }
    struct path_buf *pb = get_path_buf();
    u32 pos = PATH_HALF;
    if (!st && flt->npaths) {
        if (!pb)
            return 0;
        pos = cap_build_path(pb, f);
        if (pos >= PATH_HALF || !cap_path_matches(flt, pb, pos))
            return 0;
    }

    /* selected: the artifact's counters, the chunk head, its path (once), the data */
    if (!st)
        st = cap_stat_of(&key);
    if (!st)
        return 0;
    if (elf)
        st->flags |= CAPS_ELF;   /* its later writes (reads) pass the elf type filter too */
    u32 k0 = 0;
    struct cap_scratch *s = bpf_map_lookup_elem(&cap_scratch, &k0);
    if (!s)
        return 0;
    u32 sid = (u32)id;
    __builtin_memcpy(&s->c.hdr, pending_header(p, cfg, t, is_write ? 4000 : 4007, sid, ret), HDR_SIZE);
    s->c.inode = fid.inode;
    s->c.dev = fid.dev;
    s->c.ctime = fid.ctime;
    s->c.mode = fid.mode;
    s->c.kind = key.kind;
    s->c.fd = fd;
    s->c.total = 0;
    s->c.seq = 0;
    s64 off;
    if (id == SYS_PWRITE64 || id == SYS_PREAD64 || id == SYS_PWRITEV || id == SYS_PREADV || id == SYS_PWRITEV2 ||
        id == SYS_PREADV2)
        off = (s64)p->args[3];
    else
        off = (s64)RD(f, f_pos) - ret;
    if ((id == SYS_PWRITEV2 || id == SYS_PREADV2) && off == -1)
        off = (s64)RD(f, f_pos) - ret;   /* offset -1: the file position, like writev/readv */
    if (off < 0)
        off = 0;
    if (!(st->flags & CAPS_PATH_SENT) && pb) {
        pos = cap_build_path(pb, f);   /* again: building the header may have used the buffer */
        u32 plen = pos < PATH_HALF ? PATH_HALF - pos : 0;
        plen = BOUND(plen, PATH_HALF - 1);
        s->c.off = 0;
        s->c.flags = CHUNK_PATH;
        if (plen && !bpf_probe_read_kernel(s->data, plen, &pb->data[pos & (PATH_HALF - 1)]) && cap_send(s, plen))
            st->flags |= CAPS_PATH_SENT;
    }
    if (moved) {
        __sync_fetch_and_add(&st->offered, (u64)ret);
        __sync_fetch_and_add(&st->over_budget, (u64)ret);
        cap_total_add(3, (u64)ret);
        s->c.off = 0;
        s->c.flags = 0;
        cap_send(s, 0);   /* no data: makes the artifact known to user space, which reports it */
        return 0;
    }
    u64 n = cap_budget(cc, st, (u64)ret);
    if (!n)
        return 0;
    if (vectored)
        cap_loop_init(s, &key, 0, n, (u64)off, p->args[1], (u32)p->args[2], p->compat);
    else
        cap_loop_init(s, &key, p->args[1], n, (u64)off, 0, 0, 0);
    cap_run(s, st);
    return 0;
}

/* ---- memory regions ------------------------------------------------------------------- */

SEC("?raw_tp")
int cap_exit_mem(struct bpf_raw_tracepoint_args *ctx)
{
    long ret = ctx->args[1];
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    struct pending *p = bpf_map_lookup_elem(&pending, &tid);
    if (!p)
        return 0;
    s64 id = p->id;
    p->id = -1;
    struct cap_mem_req *rq = bpf_map_lookup_elem(&cap_mem_reqs, &tid);
    if (!rq)
        return 0;
    struct cap_mem_req req = *rq;
    bpf_map_delete_elem(&cap_mem_reqs, &tid);
    struct capture_cfg *cc = get_cap_cfg();
    struct filter_cfg *cfg = get_cfg();
    if (ret != 0 || !cc || !cfg || !(cc->flags & CAPF_MEM) || !req.len)
        return 0;
    struct cap_key key = {.seq = req.ts, .kind = CAPK_MEM, .pid = pid_tgid >> 32};
    struct cap_stat *st = cap_stat_of(&key);
    u32 k0 = 0;
    struct cap_scratch *s = bpf_map_lookup_elem(&cap_scratch, &k0);
    if (!st || !s)
        return 0;
    struct task_struct *t = (void *)bpf_get_current_task();
    __builtin_memcpy(&s->c.hdr, pending_header(p, cfg, t, 4003, (u32)id, ret), HDR_SIZE);
    s->c.inode = req.addr;
    s->c.dev = 0;
    s->c.ctime = 0;
    s->c.mode = 0;
    s->c.kind = CAPK_MEM;
    s->c.fd = -1;
    s->c.seq = req.ts;
    u64 n = cap_budget(cc, st, req.len);
    s->c.total = req.len;   /* the region's size: what was not copied is counted in cap_stats */
    if (!n)
        return 0;
    cap_loop_init(s, &key, req.addr, n, 0, 0, 0, 0);
    cap_run(s, st);
    return 0;
}

/* ---- kernel modules ------------------------------------------------------------------- */

SEC("?raw_tp")
int cap_enter_module(struct bpf_raw_tracepoint_args *ctx)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    struct pending *p = bpf_map_lookup_elem(&pending, &tid);
    struct capture_cfg *cc = get_cap_cfg();
    struct filter_cfg *cfg = get_cfg();
    if (!p || !cc || !cfg || !(cc->flags & CAPF_MODULE))
        return 0;
    u32 k0 = 0;
    struct cap_scratch *s = bpf_map_lookup_elem(&cap_scratch, &k0);
    if (!s)
        return 0;
    struct task_struct *t = (void *)bpf_get_current_task();
    s64 id = p->id;
    u64 ts = bpf_ktime_get_boot_ns();
    /* the header is rebuilt at exit for the syscall's own event */
    __builtin_memcpy(&s->c.hdr, pending_header(p, cfg, t, 4002, (u32)id, 0), HDR_SIZE);
    s->c.seq = ts;
    s->c.off = 0;
    s->c.flags = 0;
    s->c.ctime = 0;
    s->c.mode = 0;
    s->c.dev = 0;
    s->c.inode = 0;
    s->c.fd = -1;
    if (id == SYS_FINIT_MODULE) {
        s32 fd = (s32)p->args[0];
        struct file *f = fd_file(t, fd);
        if (!f)
            return 0;
        struct file_id fid = {};
        file_id_of(f, &fid);
        s->c.kind = CAPK_MODULE_FD;
        s->c.fd = fd;
        s->c.dev = fid.dev;
        s->c.inode = fid.inode;
        s->c.ctime = fid.ctime;
        s->c.mode = fid.mode;
        s->c.total = 0;
        if (!cap_send(s, 0))
            cap_total_add(1, 1);
        return 0;
    }
    /* init_module(image, len, params) */
    struct cap_key key = {.seq = ts, .kind = CAPK_MODULE, .pid = pid_tgid >> 32};
    struct cap_stat *st = cap_stat_of(&key);
    if (!st)
        return 0;
    u64 n = cap_budget(cc, st, p->args[1]);
    s->c.kind = CAPK_MODULE;
    s->c.total = p->args[1];   /* the image's size: what was not copied is counted in cap_stats */
    if (!n)
        return 0;
    cap_loop_init(s, &key, p->args[0], n, 0, 0, 0, 0);
    cap_run(s, st);
    return 0;
}

/* ---- network (pcap) ------------------------------------------------------------------- */

#define IPPROTO_TCP_VAL  6
#define IPPROTO_UDP_VAL  17

/* Bytes of L3 + L4 headers at the start of the packet (0: not IPv4/IPv6). */
statfunc u32 cap_headers_len(struct __sk_buff *skb)
{
    u8 b[2] = {};
    if (bpf_skb_load_bytes(skb, 0, b, 1))
        return 0;
    u32 l4, proto = 0;
    if ((b[0] >> 4) == 4) {
        l4 = (b[0] & 0xf) * 4;
        bpf_skb_load_bytes(skb, 9, b + 1, 1);
        proto = b[1];
    } else if ((b[0] >> 4) == 6) {
        l4 = 40;
        bpf_skb_load_bytes(skb, 6, b + 1, 1);
        proto = b[1];
    } else {
        return 0;
    }
    if (proto == IPPROTO_TCP_VAL) {
        u8 doff = 0;
        bpf_skb_load_bytes(skb, l4 + 12, &doff, 1);
        return l4 + (doff >> 4) * 4;
    }
    return l4 + 8;   /* UDP, ICMP, ICMPv6 */
}

statfunc int cap_skb(struct __sk_buff *skb, u32 egress)
{
    struct capture_cfg *cc = get_cap_cfg();
    if (!cc || !(cc->flags & CAPF_NET))
        return 1;
    u32 k = 0;
    struct cap_scratch *s = bpf_map_lookup_elem(&cap_skb_scratch, &k);
    if (!s)
        return 1;
    u32 len = skb->len;
    u32 want = cap_headers_len(skb) + cc->snaplen;
    if (want > len)
        want = len;
    u32 size = BOUND(want, CAP_CHUNK * 2 - 1);
    if (size > CAP_CHUNK)
        size = CAP_CHUNK;
    if (size == 0)
        return 1;
    /* the total budget counts packets too: past it, a packet is counted as not copied */
    u32 k0 = 0;
    u64 *copied = bpf_map_lookup_elem(&cap_totals, &k0);
    if (!copied)
        return 1;
    if (*copied >= cc->total_budget) {
        cap_total_add(3, size);
        return 1;
    }
    __sync_fetch_and_add(copied, size);
    __builtin_memset(&s->c.hdr, 0, sizeof(s->c.hdr));
    s->c.hdr.ts = bpf_ktime_get_boot_ns();
    s->c.hdr.event_id = 4004;
    s->c.hdr.syscall = -1;
    s->c.kind = CAPK_NET;
    s->c.flags = egress ? CHUNK_EGRESS : 0;
    s->c.total = len;
    s->c.off = 0;
    s->c.inode = 0;
    s->c.seq = 0;
    s->c.dev = 0;
    s->c.mode = 0;
    s->c.ctime = 0;
    s->c.fd = -1;
    if (bpf_skb_load_bytes(skb, 0, s->data, size) || !cap_send(s, size)) {
        cap_total_add(1, 1);
        cap_total_add(2, size);
        cap_total_add(0, -(u64)size);   /* charged above, never copied */
    }
    return 1;   /* never drops the packet */
}

SEC("?cgroup_skb/ingress")
int cap_skb_ingress(struct __sk_buff *skb)
{
    return cap_skb(skb, 0);
}

SEC("?cgroup_skb/egress")
int cap_skb_egress(struct __sk_buff *skb)
{
    return cap_skb(skb, 1);
}

#endif /* TRACEE_CAPTURE_H */
