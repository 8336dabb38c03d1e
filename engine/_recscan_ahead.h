/*
 * The owner walk done once, ahead of the workers (tracee-rules --workers; engine/walkahead.py): one
 * process walks every record of the input file (walk_owner(): its eventName, process, container,
 * entity id and nesting) and leaves each walk in a ring of shared memory; each worker's scan_lines
 * then places a record from its slot (place_ahead()) where the walker has been, and walks it itself
 * where it has not. The answer is place_record()'s either way: the slot holds what walk_owner()
 * read, as offsets into the same line.
 *
 * Included by engine/_recscan.c after _recscan_owner.h (not a public header).
 *
 * The ring: a header, then `slots` slots (a power of two); line n is in slot n % slots.
 *   - The walker writes a slot, then publishes `walked` (release); a worker reads `walked`
 *     (acquire) before a slot, and takes the slot only if it holds that line, of that length.
 *   - Each worker publishes in `placed[index]` the last line it has placed; the walker writes line
 *     n only when every worker has placed line n - slots, so a slot is never rewritten while a
 *     worker may still read it. The walker waits, the workers never do: a worker ahead of the
 *     walker walks its lines itself.
 * Memory stays bounded: `slots` slots, whatever the input's size.
 */
#ifndef PYTRACEE_RECSCAN_AHEAD_H
#define PYTRACEE_RECSCAN_AHEAD_H

#include <errno.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

#define AHEAD_MAGIC 0x64616568416b6c57ULL /* "WlkAhead" */
#define AHEAD_MAX_READERS 254
#define AHEAD_MAX_SLOTS (1 << 24)
#define AHEAD_NONE 0   /* a line the walker did not walk (blank, not a record, too long): the worker's */
#define AHEAD_WALKED 1 /* walk_owner() answered OK: the fields below */
#define AHEAD_UNSURE 2 /* walk_owner() was not sure: the worker places it as place_record() does then */
#define AHEAD_NOBODY 3 /* nobody_decodes() with the names the main process published: placed by its line */
#define AHEAD_NAMES (32 * 1024) /* room for the names of the events decoded and observed */
#define AHEAD_EVERY UINT32_MAX  /* (decoded_count) every event is decoded */
#define AHEAD_WALKING 0
#define AHEAD_FINISHED 1 /* the input's end */
#define AHEAD_STOPPED 2  /* a line the reader handles otherwise (an array), or an error: the rest is the workers' */
#define AHEAD_BUFFER (1 << 20)
#define AHEAD_MAX_BUFFER (64 << 20) /* the walker holds no longer line: the workers walk those */
#define AHEAD_WAIT_NS (5 * 1000 * 1000) /* the walker's sleep when the ring is full */

typedef struct {
    int64_t line;     /* the line number the slot holds */
    uint64_t digest;  /* line_digest() of the line: a file written over in place is not taken for the one walked */
    int64_t host_pid; /* hostProcessId, 0 when absent */
    int32_t length;   /* the line's length, without its newline */
    int32_t status;   /* AHEAD_NONE, AHEAD_WALKED or AHEAD_UNSURE */
    int32_t name_at, name_len;
    int32_t id_at, id_len;     /* container.id, at -1 when absent */
    int32_t flat_at, flat_len; /* containerId, at -1 when absent */
    int32_t entity_at;         /* processEntityId's value, -1 when absent */
    int32_t deepest;
} ahead_slot;

typedef struct {
    uint64_t magic;
    int64_t slots;   /* a power of two */
    int64_t readers; /* the workers */
    uint64_t device, inode; /* the file walked: a reader of another file leaves the ring alone */
    int64_t pad0[3];
    int64_t walked; /* the last line whose slot is written */
    int64_t state;  /* AHEAD_WALKING, AHEAD_FINISHED or AHEAD_STOPPED */
    int64_t pad1[6];
    /* each worker's last line placed, how many it placed from the ring, and whether its names are
     * those published (ahead_accept()), on a cache line of its own */
    int64_t placed[AHEAD_MAX_READERS][8];
    /* the events decoded and observed (scan_lines' plan), published once by the main process when
     * the signatures are loaded (names_ready, release), for the walker's nobody_decodes() */
    int64_t names_ready;
    uint32_t decoded_count, observed_count, names_len;
    char names[AHEAD_NAMES]; /* decoded_count, then observed_count names, each ending with a NUL */
} ahead_header;

/* A worker's view of the ring, for one scan_lines call. */
typedef struct {
    ahead_header *header; /* NULL: no ring */
    ahead_slot *slots;
    int64_t mask;
    int64_t walked; /* `walked` as last read */
    int64_t taken;  /* lines placed from the ring in this call */
    int names_ok;   /* this worker's names are those published: its AHEAD_NOBODY slots are its answers */
} ahead_view;

/* The bytes of a ring of `slots` slots (0 to AHEAD_MAX_SLOTS). */
static inline size_t ring_size(int64_t slots)
{
    return sizeof(ahead_header) + (size_t)slots * sizeof(ahead_slot);
}

/* Whether a ring may have `slots` slots (a power of two up to AHEAD_MAX_SLOTS) for `readers` workers. */
static inline int ring_shape_ok(int64_t slots, int64_t readers)
{
    return slots > 0 && slots <= AHEAD_MAX_SLOTS && (slots & (slots - 1)) == 0 && readers >= 1 &&
           readers <= AHEAD_MAX_READERS;
}

/* The ring `ring` (a writable buffer holding one, from ahead_init()), its buffer held in `buffer`
 * (PyBuffer_Release() it): 0, or -1 with an exception (nothing held). */
static int ahead_open(PyObject *ring, Py_buffer *buffer, ahead_view *view)
{
    if (PyObject_GetBuffer(ring, buffer, PyBUF_WRITABLE) < 0)
        return -1;
    ahead_header *header = buffer->buf;
    if ((size_t)buffer->len < sizeof(ahead_header) || header->magic != AHEAD_MAGIC ||
        !ring_shape_ok(header->slots, header->readers) || (size_t)buffer->len < ring_size(header->slots)) {
        PyBuffer_Release(buffer);
        PyErr_SetString(PyExc_ValueError, "not a walk-ahead ring (ahead_init())");
        return -1;
    }
    view->header = header;
    view->slots = (ahead_slot *)(header + 1);
    view->mask = header->slots - 1;
    view->walked = __atomic_load_n(&header->walked, __ATOMIC_ACQUIRE);
    view->taken = 0;
    view->names_ok = 0;
    return 0;
}

/* A digest of the line's bytes (CRC-32C in two lanes where the processor has it, else a multiply
 * and xor per 8 bytes): both sides compute it the same way in one process tree (init_walk() chose). */
static uint64_t digest_portable(const unsigned char *p, Py_ssize_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n, word;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&word, p, 8);
        h = (h ^ word) * 0xFF51AFD7ED558CCDULL;
        h ^= h >> 32;
    }
    for (; n > 0; p++, n--)
        h = (h ^ *p) * 0x100000001B3ULL;
    return h;
}

#if defined(__x86_64__) && defined(__GNUC__)
#define DIGEST_SSE42
__attribute__((target("sse4.2"))) static uint64_t digest_sse42(const unsigned char *p, Py_ssize_t n)
{
    uint64_t a = 0xFFFFFFFFULL ^ (uint64_t)n, b = 0x12345678ULL, word;
    for (; n >= 16; p += 16, n -= 16) {
        memcpy(&word, p, 8);
        a = __builtin_ia32_crc32di(a, word);
        memcpy(&word, p + 8, 8);
        b = __builtin_ia32_crc32di(b, word);
    }
    for (; n > 0; p++, n--)
        a = __builtin_ia32_crc32qi((unsigned)a, *p);
    return a << 32 | (b & 0xFFFFFFFFULL);
}
#endif

static uint64_t (*line_digest)(const unsigned char *, Py_ssize_t) = digest_portable;

static void init_ahead(void)
{
#ifdef DIGEST_SSE42
    if (__builtin_cpu_supports("sse4.2"))
        line_digest = digest_sse42;
#endif
}

/* A copy of the slot of line `number` [line, line + length) if the walker has written it (the same
 * line number, length and digest), else 0. */
static inline int ahead_slot_of(ahead_view *view, Py_ssize_t number, const unsigned char *line, Py_ssize_t length,
                                ahead_slot *copy)
{
    if (number > view->walked) {
        view->walked = __atomic_load_n(&view->header->walked, __ATOMIC_ACQUIRE);
        if (number > view->walked)
            return 0;
    }
    memcpy(copy, &view->slots[number & view->mask], sizeof(*copy));
    return copy->line == number && copy->length == length && copy->digest == line_digest(line, length);
}

/* Whether [at, at + len) lies within a line of `length` bytes (at -1: absent, when `absent_ok`). */
static inline int within(int32_t at, int32_t len, Py_ssize_t length, int absent_ok)
{
    if (at < 0)
        return absent_ok && at == -1;
    return len >= 0 && (Py_ssize_t)at + len <= length;
}

/* Whether the walk in `slot` fits its line (offsets within it, the name plain printable ASCII, as the
 * walk reads names): a ring's content is not trusted further than that. */
static int slot_fits(const ahead_slot *slot, const unsigned char *line)
{
    Py_ssize_t length = slot->length;
    if (!within(slot->name_at, slot->name_len, length, 0) || slot->name_len == 0 ||
        !within(slot->id_at, slot->id_len, length, 1) || !within(slot->flat_at, slot->flat_len, length, 1) ||
        !(slot->entity_at == -1 || (slot->entity_at >= 0 && slot->entity_at < length)) || slot->deepest < 0)
        return 0;
    for (int32_t i = 0; i < slot->name_len; i++) {
        unsigned char c = line[slot->name_at + i];
        if (c < 0x20 || c >= 0x7F || c == '"' || c == '\\')
            return 0;
    }
    return 1;
}

/* Everything up to line `lineno` placed by worker `index`: the walker may reuse those slots. */
static inline void ahead_placed(const ahead_view *view, Py_ssize_t index, Py_ssize_t lineno)
{
    if (view->header == NULL || index < 0 || index >= view->header->readers)
        return;
    int64_t *mine = view->header->placed[index];
    __atomic_store_n(&mine[1], mine[1] + view->taken, __ATOMIC_RELAXED);
    __atomic_store_n(&mine[0], (int64_t)lineno, __ATOMIC_RELEASE);
}

/* place_record() for scan_lines' workers: the walk taken from the ring when the walker has written
 * line `number`, else walked here. Same answers, same outputs. */
static Py_ssize_t place_ahead(ahead_view *view, const unsigned char *line, const unsigned char *newline,
                              Py_ssize_t number, Py_ssize_t count, PyObject *decoded, PyObject *observed, envelope *e,
                              int *deepest, int *by_key, PyObject **name)
{
    ahead_slot copy;
    const ahead_slot *slot = &copy;
    if (view->header == NULL || !ahead_slot_of(view, number, line, newline - line, &copy) ||
        !(slot->status == AHEAD_UNSURE || (slot->status == AHEAD_NOBODY && view->names_ok) ||
          (slot->status == AHEAD_WALKED && slot_fits(slot, line))))
        return place_record(line, newline, number, count, decoded, observed, e, deepest, by_key, name);
    *name = NULL;
    view->taken++;
    if (slot->status == AHEAD_NOBODY) /* nobody_decodes() said so, with this worker's names */
        return number % count;
    if (slot->status == AHEAD_UNSURE) { /* place_record()'s answer when the walk is not sure */
        int nobody = nobody_decodes(line, newline, decoded, observed);
        return nobody < 0 ? -2 : nobody ? number % count : -1;
    }
    e->name = line + slot->name_at;
    e->name_len = slot->name_len;
    e->host_pid = slot->host_pid;
    if (slot->id_at >= 0) {
        e->container_id = line + slot->id_at;
        e->container_id_len = slot->id_len;
    }
    if (slot->flat_at >= 0) {
        e->flat_container_id = line + slot->flat_at;
        e->flat_container_id_len = slot->flat_len;
    }
    e->entity_at = slot->entity_at >= 0 ? line + slot->entity_at : NULL;
    *deepest = slot->deepest;
    return placed_by_walk(e, number, count, decoded, by_key, name);
}

/* --- the walker ---------------------------------------------------------------------------------- */

static inline int32_t offset_in(const unsigned char *line, const unsigned char *at)
{
    return at == NULL ? -1 : (int32_t)(at - line);
}

/* Whether the walker asks nobody_decodes() before it walks a record. The question costs about a
 * fifth of a walk and saves the whole walk when nobody decodes the record: worth asking where at
 * least one record in eight is such (a busy host's stream), not where nearly every record is decoded
 * (a recording of the signatures' own events). Asked of every record while that share is high
 * enough, else of one in PRECHECK_SAMPLE, to notice when it rises again; every PRECHECK_WINDOW
 * records asked, the share decides anew. The answers are the same either way: a record walked
 * whose event nobody decodes is placed by its line by the workers as well. */
#define PRECHECK_SAMPLE 16
#define PRECHECK_WINDOW 64
typedef struct {
    unsigned on;     /* ask every record */
    unsigned tick;   /* records passed while not asking every one */
    unsigned asked;  /* in this window: records asked */
    unsigned nobody; /* and those nobody decodes */
} precheck_state;

/* Whether to ask nobody_decodes() of the next record. */
static inline int precheck_now(precheck_state *p)
{
    return p->on || ++p->tick % PRECHECK_SAMPLE == 0;
}

/* Count nobody_decodes()'s answer (> 0: nobody decodes the record); decide at a window's end. */
static inline void precheck_count(precheck_state *p, int nobody)
{
    p->nobody += nobody > 0;
    if (++p->asked == PRECHECK_WINDOW) {
        p->on = p->nobody * 8 >= p->asked;
        p->asked = p->nobody = 0;
    }
}

/* Write the walk of line `number` [line, newline) into its slot (`limit`: the longest record;
 * `decoded` and `observed`, when not NULL, the names published: a record nobody decodes is not
 * walked, when `precheck` says to ask). */
static void ahead_walk_line(ahead_slot *slot, Py_ssize_t number, const unsigned char *line,
                            const unsigned char *newline, Py_ssize_t limit, PyObject *decoded, PyObject *observed,
                            precheck_state *precheck)
{
    Py_ssize_t length = newline - line;
    envelope e;
    int deepest = 0;
    slot->line = number;
    slot->length = (int32_t)length;
    slot->status = AHEAD_NONE;
    if (length == 0 || line[0] != '{' || length > limit)
        return;
    slot->digest = line_digest(line, length);
    if (decoded != NULL && precheck_now(precheck)) {
        int nobody = nobody_decodes(line, newline, decoded, observed);
        if (nobody < 0)
            PyErr_Clear(); /* (no memory for a name: walked as without the names) */
        precheck_count(precheck, nobody);
        if (nobody > 0) {
            slot->status = AHEAD_NOBODY;
            return;
        }
    }
    envelope_init(&e, NULL);
    if (walk_owner(line, newline, &e, &deepest) != OK) {
        slot->status = AHEAD_UNSURE;
        return;
    }
    slot->status = AHEAD_WALKED;
    slot->host_pid = e.host_pid;
    slot->name_at = offset_in(line, e.name);
    slot->name_len = (int32_t)e.name_len;
    slot->id_at = offset_in(line, e.container_id);
    slot->id_len = (int32_t)e.container_id_len;
    slot->flat_at = offset_in(line, e.flat_container_id);
    slot->flat_len = (int32_t)e.flat_container_id_len;
    slot->entity_at = offset_in(line, e.entity_at);
    slot->deepest = deepest;
}

/* Whether [line, newline) opens a JSON array (its first byte that Python's bytes.strip() keeps is
 * '['): the reader reads on element by element, with line numbers of its own from there. */
static int opens_array(const unsigned char *line, const unsigned char *newline)
{
    for (; line < newline; line++)
        if (!(*line == ' ' || (*line >= '\t' && *line <= '\r')))
            return *line == '[';
    return 0;
}

/* Wait until every worker has placed line `number` - slots (its slot is free): 0, or -1 when the
 * parent is gone (its workers with it). */
static int ahead_wait(ahead_header *header, Py_ssize_t number, pid_t parent, int64_t *slowest)
{
    int64_t free_from = (int64_t)number - header->slots;
    if (*slowest >= free_from) /* (as last read: the workers only move on) */
        return 0;
    for (;;) {
        *slowest = INT64_MAX;
        for (int64_t r = 0; r < header->readers; r++) {
            int64_t placed = __atomic_load_n(&header->placed[r][0], __ATOMIC_ACQUIRE);
            if (placed < *slowest)
                *slowest = placed;
        }
        if (*slowest >= free_from)
            return 0;
        if (getppid() != parent)
            return -1;
        struct timespec pause = {0, AHEAD_WAIT_NS}; /* (a ring ahead of the workers: no hurry) */
        nanosleep(&pause, NULL);
    }
}

/* ahead_init(ring, slots, readers, device, inode): a ring of `slots` slots (a power of two) for
 * `readers` workers, of the file (device, inode), written at the start of `ring` (a writable buffer
 * of at least ahead_size(slots) bytes). */
static PyObject *ahead_init(PyObject *module, PyObject *const *argv, Py_ssize_t argc)
{
    (void)module;
    Py_buffer buffer;
    Py_ssize_t slots, readers;
    unsigned long long device, inode;
    if (argc != 5 || (slots = PyLong_AsSsize_t(argv[1])) == -1 || (readers = PyLong_AsSsize_t(argv[2])) == -1 ||
        ((device = PyLong_AsUnsignedLongLong(argv[3])) == (unsigned long long)-1 && PyErr_Occurred()) ||
        ((inode = PyLong_AsUnsignedLongLong(argv[4])) == (unsigned long long)-1 && PyErr_Occurred())) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError,
                            "ahead_init(ring: buffer, slots: int, readers: int, device: int, inode: int)");
        return NULL;
    }
    if (!ring_shape_ok(slots, readers)) {
        PyErr_SetString(PyExc_ValueError, "ahead_init: slots a power of two up to 2**24, readers 1 to 254");
        return NULL;
    }
    if (PyObject_GetBuffer(argv[0], &buffer, PyBUF_WRITABLE) < 0)
        return NULL;
    if ((size_t)buffer.len < ring_size(slots)) {
        PyBuffer_Release(&buffer);
        PyErr_SetString(PyExc_ValueError, "ahead_init: the buffer is smaller than ahead_size(slots)");
        return NULL;
    }
    ahead_header *header = buffer.buf;
    memset(header, 0, sizeof(ahead_header));
    header->slots = slots;
    header->readers = readers;
    header->device = device;
    header->inode = inode;
    ahead_slot *slot = (ahead_slot *)(header + 1);
    for (Py_ssize_t i = 0; i < slots; i++)
        slot[i].line = -1;
    __atomic_store_n(&header->magic, AHEAD_MAGIC, __ATOMIC_RELEASE);
    PyBuffer_Release(&buffer);
    Py_RETURN_NONE;
}

/* ahead_stats(ring) -> (device, inode, walked, state, taken): the file walked, its last line walked,
 * the walker's state (walking, finished, stopped), and per worker the lines placed from the ring. */
static PyObject *ahead_stats(PyObject *module, PyObject *ring)
{
    (void)module;
    Py_buffer buffer;
    ahead_view view;
    if (ahead_open(ring, &buffer, &view) < 0)
        return NULL;
    ahead_header *header = view.header;
    PyObject *taken = PyTuple_New(header->readers);
    for (Py_ssize_t r = 0; taken != NULL && r < header->readers; r++) {
        PyObject *n = PyLong_FromLongLong(__atomic_load_n(&header->placed[r][1], __ATOMIC_RELAXED));
        if (n == NULL)
            Py_CLEAR(taken);
        else
            PyTuple_SET_ITEM(taken, r, n);
    }
    PyObject *stats = taken == NULL ? NULL
                                    : Py_BuildValue("(KKLLN)", (unsigned long long)header->device,
                                                    (unsigned long long)header->inode, (long long)view.walked,
                                                    (long long)__atomic_load_n(&header->state, __ATOMIC_ACQUIRE), taken);
    PyBuffer_Release(&buffer);
    return stats;
}

/* The names the main process published, as the frozensets of scan_lines' plan (*decoded None when
 * every event is decoded); 0, or -1 (an error cleared) when they cannot be built. */
static int ahead_sets(const ahead_header *header, PyObject **decoded, PyObject **observed)
{
    PyObject *sets[2] = {NULL, NULL};
    uint32_t counts[2] = {header->decoded_count, header->observed_count};
    const char *at = header->names, *end = header->names + header->names_len;
    for (int k = 0; k < 2; k++) {
        if (k == 0 && counts[0] == AHEAD_EVERY) {
            sets[0] = Py_NewRef(Py_None);
            continue;
        }
        PyObject *names = PyList_New(0);
        for (uint32_t i = 0; names != NULL && i < counts[k]; i++) {
            const char *stop = at < end ? memchr(at, '\0', (size_t)(end - at)) : NULL;
            PyObject *name = stop == NULL ? NULL : PyUnicode_DecodeUTF8(at, stop - at, "strict");
            if (name == NULL || PyList_Append(names, name) < 0)
                Py_CLEAR(names);
            Py_XDECREF(name);
            at = stop == NULL ? end : stop + 1;
        }
        sets[k] = names == NULL ? NULL : PyFrozenSet_New(names);
        Py_XDECREF(names);
        if (sets[k] == NULL) {
            Py_XDECREF(sets[0]);
            PyErr_Clear();
            return -1;
        }
    }
    *decoded = sets[0];
    *observed = sets[1];
    return 0;
}

/* ahead_names(ring, decoded, observed) -> bool: publish the events decoded (a frozenset of str, or
 * None: every event) and observed (a frozenset of str) for the walker's nobody_decodes(), once;
 * False when they do not fit (the walker walks every record then). */
static PyObject *ahead_names(PyObject *module, PyObject *const *argv, Py_ssize_t argc)
{
    (void)module;
    Py_buffer buffer;
    ahead_view view;
    if (argc != 3 || !(argv[1] == Py_None || PyFrozenSet_Check(argv[1])) || !PyFrozenSet_Check(argv[2])) {
        PyErr_SetString(PyExc_TypeError, "ahead_names(ring, decoded: frozenset | None, observed: frozenset)");
        return NULL;
    }
    if (ahead_open(argv[0], &buffer, &view) < 0)
        return NULL;
    ahead_header *header = view.header;
    int fits = __atomic_load_n(&header->names_ready, __ATOMIC_ACQUIRE) == 0;
    size_t used = 0;
    for (int k = argv[1] == Py_None ? 1 : 0; fits && k < 2; k++) {
        PyObject *names = PyObject_GetIter(argv[1 + k]), *name;
        while (fits && names != NULL && (name = PyIter_Next(names)) != NULL) {
            Py_ssize_t len;
            const char *utf8 = PyUnicode_Check(name) ? PyUnicode_AsUTF8AndSize(name, &len) : NULL;
            if (utf8 == NULL || memchr(utf8, '\0', (size_t)len) != NULL || used + (size_t)len + 1 > AHEAD_NAMES) {
                fits = 0;
            } else {
                memcpy(header->names + used, utf8, (size_t)len + 1);
                used += (size_t)len + 1;
            }
            Py_DECREF(name);
        }
        if (names == NULL || PyErr_Occurred()) {
            PyErr_Clear();
            fits = 0;
        }
        Py_XDECREF(names);
    }
    if (fits) {
        header->decoded_count = argv[1] == Py_None ? AHEAD_EVERY : (uint32_t)PySet_GET_SIZE(argv[1]);
        header->observed_count = (uint32_t)PySet_GET_SIZE(argv[2]);
        header->names_len = (uint32_t)used;
        __atomic_store_n(&header->names_ready, 1, __ATOMIC_RELEASE);
    }
    PyBuffer_Release(&buffer);
    return PyBool_FromLong(fits);
}

/* ahead_accept(ring, index, decoded, observed) -> bool: whether worker `index`'s names (scan_lines'
 * plan) are those published, so that it takes the walker's AHEAD_NOBODY slots as its own answers;
 * noted in the ring for its scan_lines. */
static PyObject *ahead_accept(PyObject *module, PyObject *const *argv, Py_ssize_t argc)
{
    (void)module;
    Py_buffer buffer;
    ahead_view view;
    Py_ssize_t index;
    if (argc != 4 || ((index = PyLong_AsSsize_t(argv[1])) == -1 && PyErr_Occurred())) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "ahead_accept(ring, index: int, decoded, observed)");
        return NULL;
    }
    if (ahead_open(argv[0], &buffer, &view) < 0)
        return NULL;
    if (index < 0 || index >= view.header->readers) {
        PyBuffer_Release(&buffer);
        PyErr_SetString(PyExc_ValueError, "ahead_accept: no such worker");
        return NULL;
    }
    ahead_header *header = view.header;
    int same = 0;
    PyObject *decoded, *observed;
    if (__atomic_load_n(&header->names_ready, __ATOMIC_ACQUIRE) && header->decoded_count != AHEAD_EVERY &&
        argv[2] != Py_None && ahead_sets(header, &decoded, &observed) == 0) {
        same = PyObject_RichCompareBool(argv[2], decoded, Py_EQ);
        if (same == 1)
            same = PyObject_RichCompareBool(argv[3], observed, Py_EQ);
        Py_DECREF(decoded);
        Py_DECREF(observed);
    }
    if (same >= 0)
        __atomic_store_n(&header->placed[index][2], (int64_t)same, __ATOMIC_RELEASE);
    PyBuffer_Release(&buffer);
    return same < 0 ? NULL : PyBool_FromLong(same);
}

static PyObject *ahead_size(PyObject *module, PyObject *slots)
{
    (void)module;
    Py_ssize_t n = PyLong_AsSsize_t(slots);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0 || n > AHEAD_MAX_SLOTS) {
        PyErr_SetString(PyExc_ValueError, "ahead_size: 0 to 2**24 slots");
        return NULL;
    }
    return PyLong_FromSize_t(ring_size(n));
}

/* The walker's loop over the file `fd` from its start: every line's walk into the ring, until the
 * input's end (AHEAD_FINISHED) or a line that opens an array, a read error or the parent's end
 * (AHEAD_STOPPED). Lines longer than `limit` (0: none) or than the buffer (up to 64 MiB) are counted,
 * not walked: the workers walk them, or report them, themselves. */
static int64_t ahead_loop(ahead_header *header, int fd, Py_ssize_t limit, pid_t parent)
{
    PyObject *decoded = NULL, *observed = NULL; /* the names, once published */
    int named = 0;                                /* looked for them, found or not */
    ahead_slot *slots = (ahead_slot *)(header + 1);
    int64_t mask = header->slots - 1;
    Py_ssize_t capacity = AHEAD_BUFFER, have = 0, number = 0;
    int skipping = 0; /* inside a line longer than the buffer can hold: counted at its newline */
    int64_t slowest = 0; /* the slowest worker's last line placed, as last read */
    precheck_state precheck = {1, 0, 0, 0};
    unsigned char *buffer = malloc((size_t)capacity);
    if (buffer == NULL)
        return AHEAD_STOPPED;
    if (limit == 0)
        limit = PY_SSIZE_T_MAX;
    for (;;) {
        if (have == capacity) { /* a line longer than the buffer */
            if (capacity <= limit && capacity < AHEAD_MAX_BUFFER) {
                unsigned char *grown = realloc(buffer, (size_t)capacity * 2);
                if (grown == NULL)
                    break;
                buffer = grown;
                capacity *= 2;
            } else { /* longer than the limit: skipped by the reader, counted at its newline */
                if (!skipping && opens_array(buffer, buffer + have))
                    break; /* (an array: the reader numbers its lines itself) */
                skipping = 1;
                have = 0;
            }
        }
        if (!named && __atomic_load_n(&header->names_ready, __ATOMIC_ACQUIRE)) {
            named = 1;
            if (ahead_sets(header, &decoded, &observed) == 0 && decoded == Py_None)
                Py_CLEAR(decoded); /* (every event decoded: no shortcut) */
        }
        ssize_t got = read(fd, buffer + have, (size_t)(capacity - have));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            free(buffer);
            Py_XDECREF(decoded);
            Py_XDECREF(observed);
            return got == 0 ? AHEAD_FINISHED : AHEAD_STOPPED;
        }
        const unsigned char *p = buffer, *end = buffer + have + got, *newline;
        while ((newline = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            number++;
            if (ahead_wait(header, number, parent, &slowest) < 0)
                goto stop;
            ahead_slot *slot = &slots[number & mask];
            if (skipping) {
                skipping = 0;
                slot->line = number;
                slot->length = -1; /* (never a line's length: the worker handles it) */
                slot->status = AHEAD_NONE;
            } else {
                if (newline - p > INT32_MAX || opens_array(p, newline))
                    goto stop;
                ahead_walk_line(slot, number, p, newline, limit, decoded, observed, &precheck);
            }
            __atomic_store_n(&header->walked, (int64_t)number, __ATOMIC_RELEASE);
            p = newline + 1;
        }
        have = skipping ? 0 : end - p;
        memmove(buffer, p, (size_t)have);
    }
stop:
    free(buffer);
    Py_XDECREF(decoded);
    Py_XDECREF(observed);
    return AHEAD_STOPPED;
}

/* walk_ahead(ring, fd, limit, parent) -> int: the walker process's work (see ahead_loop()); its end
 * state, also left in the ring. Returns at the input's end; never raises but on a bad ring. */
static PyObject *walk_ahead(PyObject *module, PyObject *const *argv, Py_ssize_t argc)
{
    (void)module;
    Py_buffer buffer;
    if (argc != 4) {
        PyErr_SetString(PyExc_TypeError, "walk_ahead(ring: buffer, fd: int, limit: int, parent: int)");
        return NULL;
    }
    long fd = PyLong_AsLong(argv[1]), parent = fd == -1 && PyErr_Occurred() ? 0 : PyLong_AsLong(argv[3]);
    Py_ssize_t limit = PyErr_Occurred() ? 0 : PyLong_AsSsize_t(argv[2]);
    if (PyErr_Occurred())
        return NULL;
    if (fd < 0 || fd > INT_MAX || limit < 0 || parent <= 0 || parent > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "walk_ahead: fd and limit must be 0 or more, parent a pid");
        return NULL;
    }
    ahead_view view;
    if (ahead_open(argv[0], &buffer, &view) < 0)
        return NULL;
    int64_t state = ahead_loop(view.header, (int)fd, limit, (pid_t)parent); /* (its process's only thread) */
    __atomic_store_n(&view.header->state, state, __ATOMIC_RELEASE);
    PyBuffer_Release(&buffer);
    return PyLong_FromLongLong(state);
}

#endif
