/* SPDX-License-Identifier: GPL-2.0 */
/*
 * datafilter.h: in-kernel data filters on a path argument, as Tracee's data_filter_* maps.
 *
 * The signatures' data filters on pathname (exact, prefix*, *suffix, *substring*) are a
 * necessary condition for an event to matter: user space loads their union here
 * (collector/datafilters.py) for the events whose every consumer filters on that argument,
 * and an event no pattern can match is dropped before it is sent, counted in df_stats.
 * The kernel's test may let through more than the patterns match (user space applies the
 * filters again), never less:
 *
 *   df_prefix  LPM trie of (event id, pattern): prefix patterns as they are, exact patterns
 *              with their terminating NUL, so a path matches an exact one only whole
 *   df_suffix  LPM trie of (event id, reversed pattern): suffix patterns, matched against
 *              the path reversed
 *   df_events  per event id: DF_* flags and the substring patterns, each as its first
 *              8 bytes and a mask (a longer substring is tested on those 8 bytes)
 *
 * Paths are compared on their first (prefix, exact) and last (suffix) DF_STR_MAX bytes;
 * patterns are shorter than that (user space refuses to push longer ones). A path longer
 * than DF_STR_MAX with substring patterns to test is always let through.
 */
#ifndef TRACEE_DATAFILTER_H
#define TRACEE_DATAFILTER_H

#include "maps.h"

#ifndef BPF_F_NO_PREALLOC     /* a uapi enum: absent from vmlinux.h built from kernel headers (KERN_HEADERS) */
#define BPF_F_NO_PREALLOC (1U << 0)
#endif

#define DF_STR_LEN      252    /* bytes of a key's string (an LPM key has at most 256 data bytes) */
#define DF_STR_MAX      251    /* bytes of a path compared; patterns are shorter */
#define DF_CONTAINS_MAX 8

/* df_events.flags */
#define DF_ON           0x1    /* the event is filtered: it needs a matching pattern */
#define DF_PREFIX       0x2    /* df_prefix holds prefix or exact patterns of the event */
#define DF_SUFFIX       0x4    /* df_suffix holds suffix patterns of the event */

/* An LPM key: prefixlen counts the bits of event_id and of the first bytes of str. */
struct df_key {
    u32 prefixlen;
    u32 event_id;
    u8 str[DF_STR_LEN];
};

struct df_event {
    u32 flags;
    u32 ncontains;
    u64 contains[DF_CONTAINS_MAX];       /* a substring's first 8 bytes, as a little-endian u64 */
    u64 contains_mask[DF_CONTAINS_MAX];  /* which of those bytes count */
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, MAX_EVENT_ID);
    __type(key, u32);
    __type(value, struct df_event);
} df_events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 1024);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct df_key);
    __type(value, u8);
} df_prefix SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 1024);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct df_key);
    __type(value, u8);
} df_suffix SEC(".maps");

/* Scratch for the lookup key (per CPU), with room for writes the verifier bounds at 255. */
struct df_buf {
    struct df_key key;
    u8 pad[8];
};
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, u32);
    __type(value, struct df_buf);
} df_scratch SEC(".maps");

/* [0]: events dropped by the data filters (per CPU; collector/collector.py sums them). */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, u32);
    __type(value, u64);
} df_stats SEC(".maps");

/*
 * Does the string argument at b->data[at] (a struct var_arg and its bytes) of event
 * event_id pass the event's data filter? True when the event has none. A global function:
 * verified once, not at each caller.
 */
__noinline int df_pass(struct event_buf *b, u32 event_id, u32 at)
{
    if (!b)
        return 1;
    u32 id = event_id;
    struct df_event *cfg = bpf_map_lookup_elem(&df_events, &id);
    if (!cfg || !(cfg->flags & DF_ON))
        return 1;
    u32 k = 0;
    struct df_buf *scratch = bpf_map_lookup_elem(&df_scratch, &k);
    if (!scratch)
        return 1;
    struct df_key *key = &scratch->key;
    at = BOUND(at, EVT_MASK);
    u32 len = ((struct var_arg *)&b->data[at])->len;
    u32 start = at + VAR_HDR;
    u32 n = len > DF_STR_MAX ? DF_STR_MAX : len;
    key->event_id = event_id;

    if (cfg->flags & DF_PREFIX) {
        /* the path's first bytes, and its end (NUL) when it is short enough to be compared whole */
        if (bpf_probe_read_kernel(key->str, BOUND(n, 255), &b->data[BOUND(start, EVT_MASK)]))
            return 1;
        u32 bits = n;
        if (len <= DF_STR_MAX) {
            key->str[BOUND(n, 255)] = 0;
            bits = n + 1;
        }
        key->prefixlen = 32 + bits * 8;
        if (bpf_map_lookup_elem(&df_prefix, key))
            return 1;
    }
    if (cfg->flags & DF_SUFFIX) {
        /* the path's last bytes, reversed */
        u32 last = start + len - 1;
        for (u32 i = 0; i < DF_STR_MAX; i++) {
            if (i >= n)
                break;
            key->str[i] = b->data[BOUND(last - i, EVT_MASK)];
        }
        key->prefixlen = 32 + n * 8;
        if (bpf_map_lookup_elem(&df_suffix, key))
            return 1;
    }
    u32 nc = cfg->ncontains;
    if (nc) {
        if (len > DF_STR_MAX)
            return 1;   /* not scanned that far: let user space decide */
        for (u32 i = 0; i < DF_STR_MAX; i++) {
            if (i >= n)
                break;
            u64 window = *(u64 *)&b->data[BOUND(start + i, EVT_MASK)];
            for (u32 j = 0; j < DF_CONTAINS_MAX; j++) {
                if (j >= nc)
                    break;
                if ((window & cfg->contains_mask[j]) == cfg->contains[j])
                    return 1;
            }
        }
    }
    u64 *dropped = bpf_map_lookup_elem(&df_stats, &k);
    if (dropped)
        __sync_fetch_and_add(dropped, 1);
    return 0;
}

#endif /* TRACEE_DATAFILTER_H */
