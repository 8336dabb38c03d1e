/*
 * _recscan: the per-record front end of a replay in C (optional; engine/recscan.py holds the
 * Python equivalent, used where this module cannot be compiled).
 *
 *   scan(text: bytes, arg_table: dict[str, tuple[str, ...]]) -> tuple | None
 *
 * One pass over a record's JSON text. When the record is certainly a well-formed event, as
 * orjson.loads followed by the reader's validation would find it, the answer is
 *
 *   (eventName, origin, container id, hostProcessId, args)
 *
 * origin being "container", "container-init" or "host" (engine/events.py's origin_of), the
 * container id container.id or else containerId, args None unless eventName is a key of
 * arg_table, then {name: value} of the arguments named in arg_table[eventName] (as
 * Event.args has them: the last of a name wins, a missing value is None).
 *
 * "Certainly well-formed" means: the whole text is valid JSON (syntax, escapes, numbers a
 * double can hold) made of ASCII only, nested at most MAX_NESTING deep, one object with a
 * non-empty eventName, a numeric eventId, each context field of its type. Anything unusual
 * answers None ("not sure": the caller decodes the record in full): non-ASCII bytes, a lone
 * surrogate escape, escapes in a key or in a value returned, a null or a duplicate in a field
 * read, an integer beyond 64 bits, an argument read that is not a plain string, integer,
 * boolean or null. So the answer never differs from what the full decoding reads; at worst
 * it is None. Every read is bounds-checked: the text is attacker-chosen.
 *
 *   extract(text, keys, arg_names) -> (fields, args) | None
 *
 * reads more of such a record in the same way: named top-level members and arguments (see its
 * comment); split_args() reads all its arguments and leaves the rest to orjson
 * (_recscan_split.h); scan_lines() is the reader's loop over a chunk of JSON lines, each scanned.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "_recscan_json.h"

static PyObject *ORIGIN_HOST, *ORIGIN_CONTAINER, *ORIGIN_CONTAINER_INIT, *EMPTY;

enum field {
    F_OTHER = -1,
    F_EVENT_NAME,
    F_EVENT_ID,
    F_TIMESTAMP,
    F_PROCESS_ID,
    F_THREAD_ID,
    F_PARENT_PROCESS_ID,
    F_HOST_PROCESS_ID,
    F_USER_ID,
    F_RETURN_VALUE,
    F_PROCESS_NAME,
    F_HOST_NAME,
    F_CONTAINER_ID,
    F_CONTEXT_FLAGS,
    F_CONTAINER,
    F_KUBERNETES,
    F_EXECUTABLE,
    F_ARGS,
};

static const char *const FIELD_NAMES[] = {
    "eventName", "eventId",     "timestamp",   "processId",    "threadId",  "parentProcessId",
    "hostProcessId", "userId", "returnValue", "processName", "hostName", "containerId",
    "contextFlags", "container", "kubernetes", "executable",  "args",
};
#define N_FIELDS ((int)(sizeof(FIELD_NAMES) / sizeof(FIELD_NAMES[0])))

/* For each key length, the fields of that length (-1 ends the list). */
#define MAX_FIELD_LENGTH 15
static signed char fields_by_length[MAX_FIELD_LENGTH + 1][N_FIELDS + 1];

static inline int field_of(const unsigned char *key, Py_ssize_t len)
{
    if (len > MAX_FIELD_LENGTH)
        return F_OTHER;
    for (const signed char *i = fields_by_length[len]; *i >= 0; i++) {
        if (key[0] == (unsigned char)FIELD_NAMES[*i][0] && same_bytes(key, FIELD_NAMES[*i], len))
            return *i; /* (the first byte first: most keys differ there, without a call) */
    }
    return F_OTHER;
}

#include "_recscan_decoded.h"

#define MAX_WANTED 64

/* Top-level keys to locate in a record: `keys` (a tuple of str, borrowed) as bytes. */
#define KEY_BUCKETS 32 /* keys chained by length modulo this: a record's key is compared with few */

typedef struct {
    PyObject *keys;
    Py_ssize_t n;
    const char *key[MAX_WANTED];
    Py_ssize_t len[MAX_WANTED];
    signed char head[KEY_BUCKETS], next[MAX_WANTED]; /* -1 ends a chain */
} keyset;

/* 0, or -1 with an exception: `keys` is not a tuple of at most MAX_WANTED str. */
static int keyset_init(keyset *k, PyObject *keys)
{
    if (!PyTuple_Check(keys) || PyTuple_GET_SIZE(keys) > MAX_WANTED) {
        PyErr_SetString(PyExc_TypeError, "keys must be a tuple of at most 64 str");
        return -1;
    }
    k->keys = keys;
    k->n = PyTuple_GET_SIZE(keys);
    memset(k->head, -1, sizeof(k->head));
    for (Py_ssize_t i = k->n - 1; i >= 0; i--) {
        PyObject *key = PyTuple_GET_ITEM(keys, i);
        if (!PyUnicode_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "keys must be a tuple of at most 64 str");
            return -1;
        }
        if (!PyUnicode_IS_ASCII(key)) { /* the record is ASCII only: never one of its keys */
            k->key[i] = "";
            k->len[i] = -1;
        } else if ((k->key[i] = PyUnicode_AsUTF8AndSize(key, &k->len[i])) == NULL) {
            return -1;
        } else {
            k->next[i] = k->head[k->len[i] % KEY_BUCKETS];
            k->head[k->len[i] % KEY_BUCKETS] = (signed char)i;
        }
    }
    return 0;
}

typedef struct {
    const unsigned char *name;
    Py_ssize_t name_len;
    const unsigned char *container_id; /* container.id */
    Py_ssize_t container_id_len;
    const unsigned char *flat_container_id; /* containerId */
    Py_ssize_t flat_container_id_len;
    int container_started;
    int64_t host_pid;
    const unsigned char *args; /* at its '[' */
    const unsigned char *entity_at; /* processEntityId's value (the last one), or NULL */
    /* optional: top-level keys whose values to locate, and where each value starts (NULL: absent) */
    const keyset *want;
    const unsigned char *found[MAX_WANTED];
} envelope;

/* A clean envelope, locating the values of `want` (NULL: none). */
static inline void envelope_init(envelope *e, const keyset *want)
{
    memset(e, 0, offsetof(envelope, found));
    e->want = want;
    if (want != NULL)
        memset(e->found, 0, sizeof(e->found[0]) * (size_t)want->n);
}

/* The whole record; OK only when it is certainly a well-formed event. */
static int scan_event(scanner *s, envelope *e)
{
    unsigned seen = 0;
    int done = 0;
    skip_ws(s);
    if (s->p >= s->end || *s->p != '{')
        return UNSURE;
    s->p++;
    s->depth = 1;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}')
        return UNSURE; /* no eventName */
    while (!done) {
        const unsigned char *key, *str;
        Py_ssize_t len, str_len;
        int escaped, integer = 0;
        int64_t value = 0;
        if (plain_key(s, &key, &len))
            return UNSURE;
        if (e->want != NULL)
            for (int i = e->want->head[len % KEY_BUCKETS]; i >= 0; i = e->want->next[i])
                if (e->want->len[i] == len && len > 0 && (unsigned char)e->want->key[i][0] == key[0] &&
                    same_bytes(e->want->key[i], key, len))
                    e->found[i] = s->p; /* the last of a key wins, as in the full decoding */
        if (len == 15 && same_bytes(key, "processEntityId", 15))
            e->entity_at = s->p;
        int field = field_of(key, len);
        if (field != F_OTHER) {
            if (seen & (1u << field))
                return UNSURE;
            seen |= 1u << field;
        }
        switch (field) {
        case F_EVENT_NAME:
            if (plain_string(s, &e->name, &e->name_len) || e->name_len == 0)
                return UNSURE;
            break;
        case F_EVENT_ID:
            if (s->p < s->end && *s->p == '"') {
                if (plain_string(s, &str, &str_len) || str_len == 0)
                    return UNSURE;
                for (Py_ssize_t i = 0; i < str_len; i++)
                    if (!is_digit[str[i]])
                        return UNSURE;
            } else if (s->p >= s->end || *s->p == 'n' || *s->p == 't' || *s->p == 'f' || *s->p == '[' ||
                       *s->p == '{' || scan_number(s, &integer, &value) || !integer) {
                return UNSURE;
            }
            break;
        case F_TIMESTAMP:
        case F_PROCESS_ID:
        case F_THREAD_ID:
        case F_PARENT_PROCESS_ID:
        case F_HOST_PROCESS_ID:
        case F_USER_ID:
        case F_RETURN_VALUE:
            if (s->p >= s->end || !(*s->p == '-' || is_digit[*s->p]) || scan_number(s, &integer, &value) || !integer)
                return UNSURE;
            if (field == F_HOST_PROCESS_ID)
                e->host_pid = value;
            break;
        case F_PROCESS_NAME:
        case F_HOST_NAME:
            if (s->p >= s->end || *s->p != '"' || scan_string(s, &str, &str_len, &escaped))
                return UNSURE;
            break;
        case F_CONTAINER_ID:
            if (plain_string(s, &e->flat_container_id, &e->flat_container_id_len))
                return UNSURE;
            break;
        case F_CONTEXT_FLAGS:
            if (read_member(s, "containerStarted", 'b', &e->container_started, NULL, NULL))
                return UNSURE;
            break;
        case F_CONTAINER:
            if (read_member(s, "id", 's', NULL, &e->container_id, &e->container_id_len))
                return UNSURE;
            break;
        case F_KUBERNETES:
        case F_EXECUTABLE:
            if (s->p >= s->end || *s->p != '{' || skip_value(s))
                return UNSURE;
            break;
        case F_ARGS:
            e->args = s->p;
            if (s->p >= s->end || *s->p != '[' || skip_value(s))
                return UNSURE;
            break;
        default:
            if (skip_value(s))
                return UNSURE;
        }
        if (next_member(s, '}', &done))
            return UNSURE;
    }
    skip_ws(s);
    if (s->p != s->end || !(seen & (1u << F_EVENT_NAME)))
        return UNSURE; /* trailing bytes, or no eventName */
    return OK;
}

#include "_recscan_args.h"

/* scan()'s tuple for a record scan_event() read into `e` (`name`: its eventName, borrowed): a new
 * reference, None when an argument read is not sure, NULL on an error. */
static PyObject *found_of(const envelope *e, const unsigned char *end, PyObject *name, PyObject *table)
{
    PyObject *args = Py_None;
    PyObject *names = PyDict_GetItemWithError(table, name); /* borrowed */
    if (names == NULL && PyErr_Occurred())
        return NULL;
    if (names != NULL) {
        if (!PyTuple_Check(names)) {
            PyErr_SetString(PyExc_TypeError, "arg_table values must be tuples of names");
            return NULL;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
            if (!PyUnicode_Check(PyTuple_GET_ITEM(names, i))) {
                PyErr_SetString(PyExc_TypeError, "arg_table values must be tuples of names");
                return NULL;
            }
        }
        args = PyDict_New();
        if (args == NULL)
            return NULL;
        if (e->args != NULL) {
            int r = read_args(e->args, end, names, args, 0, NULL);
            if (r == -2)
                goto fail_args;
            if (r != OK) {
                Py_DECREF(args);
                Py_RETURN_NONE;
            }
        }
    } else {
        Py_INCREF(args);
    }

    PyObject *container;
    if (e->container_id_len > 0)
        container = ascii_string(e->container_id, e->container_id_len);
    else if (e->flat_container_id_len > 0)
        container = ascii_string(e->flat_container_id, e->flat_container_id_len);
    else
        container = Py_NewRef(EMPTY);
    if (container == NULL)
        goto fail_args;
    PyObject *origin = e->container_started                 ? ORIGIN_CONTAINER
                       : PyUnicode_GET_LENGTH(container) > 0 ? ORIGIN_CONTAINER_INIT
                                                             : ORIGIN_HOST;
    PyObject *pid = PyLong_FromLongLong(e->host_pid);
    if (pid == NULL) {
        Py_DECREF(container);
        goto fail_args;
    }
    PyObject *result = PyTuple_New(5);
    if (result == NULL) {
        Py_DECREF(pid);
        Py_DECREF(container);
        goto fail_args;
    }
    PyTuple_SET_ITEM(result, 0, Py_NewRef(name));
    PyTuple_SET_ITEM(result, 1, Py_NewRef(origin));
    PyTuple_SET_ITEM(result, 2, container);
    PyTuple_SET_ITEM(result, 3, pid);
    PyTuple_SET_ITEM(result, 4, args);
    return result;

fail_args:
    Py_DECREF(args);
    return NULL;
}

/* The answer for the record text[0:size]: a new reference to the tuple, to None, or NULL (an error). */
static PyObject *scan_record(const unsigned char *text, Py_ssize_t size, PyObject *table)
{
    scanner s = {text, text + size, 0};
    envelope e;
    envelope_init(&e, NULL);
    if (scan_event(&s, &e))
        Py_RETURN_NONE;
    PyObject *name = ascii_string(e.name, e.name_len);
    if (name == NULL)
        return NULL;
    PyObject *found = found_of(&e, s.end, name, table);
    Py_DECREF(name);
    return found;
}

/* The values of the first `n` keys of `e->want` located, into a new dict at *out: OK, UNSURE (a
 * value that is not a scalar or an object of scalars), or -2 (an exception set). */
static int fields_of(const envelope *e, const unsigned char *end, Py_ssize_t n, PyObject **out)
{
    PyObject *fields = PyDict_New();
    if (fields == NULL)
        return -2;
    for (Py_ssize_t i = 0; i < n && i < e->want->n; i++) {
        if (e->found[i] == NULL)
            continue;
        scanner v = {e->found[i], end, 1};
        int unsure = 0;
        PyObject *value = *v.p == '{' ? read_flat_object(&v, &unsure) : read_scalar(&v, &unsure);
        if (value == NULL) {
            Py_DECREF(fields);
            return unsure ? UNSURE : -2;
        }
        int r = PyDict_SetItem(fields, PyTuple_GET_ITEM(e->want->keys, i), value);
        Py_DECREF(value);
        if (r < 0) {
            Py_DECREF(fields);
            return -2;
        }
    }
    *out = fields;
    return OK;
}

/* fields_of() plus, when `arg_names` (a tuple of str, checked by scan_lines) is not empty, the arguments it names under
 * the key "args" (as read_args() reads them): OK, UNSURE (*out left NULL) or -2. */
static int lazy_fields(const envelope *e, const unsigned char *end, Py_ssize_t n, PyObject *arg_names, PyObject **out)
{
    PyObject *fields = NULL, *args;
    int r = fields_of(e, end, n, &fields);
    if (r != OK || PyTuple_GET_SIZE(arg_names) == 0) {
        *out = fields;
        return r;
    }
    if ((args = PyDict_New()) == NULL) {
        Py_DECREF(fields);
        return -2;
    }
    r = e->args == NULL ? OK : read_args(e->args, end, arg_names, args, ARG_LISTS, NULL);
    if (r == OK && PyDict_SetItem(fields, KEY_ARGS, args) < 0)
        r = -2;
    Py_DECREF(args);
    if (r != OK) {
        Py_DECREF(fields);
        return r == -2 ? -2 : UNSURE;
    }
    *out = fields;
    return OK;
}

static PyObject *scan(PyObject *module, PyObject *const *argv, Py_ssize_t argc)
{
    (void)module;
    if (argc != 2 || !PyBytes_Check(argv[0]) || !PyDict_Check(argv[1])) {
        PyErr_SetString(PyExc_TypeError, "scan(text: bytes, arg_table: dict)");
        return NULL;
    }
    return scan_record((const unsigned char *)PyBytes_AS_STRING(argv[0]), PyBytes_GET_SIZE(argv[0]), argv[1]);
}

/*
 * extract(text, keys, arg_names) -> (fields, args) | None
 *
 * For a record scan() reads (certainly a well-formed event; None otherwise), without decoding
 * the rest: `fields` holds its top-level members named in the tuple `keys` (absent ones left out),
 * `args` the arguments named in `arg_names` as Event.args has them. A value read must be a plain
 * string, an integer within int64, true, false or null; a field may also be an object of such
 * values (a dict), an argument a list of plain strings. Anything else: None (not sure).
 */
static PyObject *extract(PyObject *module, PyObject *const *argv, Py_ssize_t argc)
{
    (void)module;
    if (argc != 3 || !PyBytes_Check(argv[0]) || !PyTuple_Check(argv[1]) || !PyTuple_Check(argv[2])) {
        PyErr_SetString(PyExc_TypeError, "extract(text: bytes, keys: tuple[str, ...], arg_names: tuple[str, ...])");
        return NULL;
    }
    for (int t = 1; t <= 2; t++)
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(argv[t]); i++)
            if (!PyUnicode_Check(PyTuple_GET_ITEM(argv[t], i))) {
                PyErr_SetString(PyExc_TypeError, "extract: keys and arg_names must be tuples of str");
                return NULL;
            }
    keyset keys;
    if (keyset_init(&keys, argv[1]) < 0)
        return NULL;
    const unsigned char *text = (const unsigned char *)PyBytes_AS_STRING(argv[0]);
    scanner s = {text, text + PyBytes_GET_SIZE(argv[0]), 0};
    envelope e;
    envelope_init(&e, &keys);
    if (scan_event(&s, &e))
        Py_RETURN_NONE;
    PyObject *fields = NULL, *args = NULL;
    int r = fields_of(&e, s.end, keys.n, &fields);
    if (r == OK && (args = PyDict_New()) == NULL)
        r = -2;
    if (r == OK && e.args != NULL && PyTuple_GET_SIZE(argv[2]) > 0)
        r = read_args(e.args, s.end, argv[2], args, ARG_LISTS, NULL);
    if (r != OK) {
        Py_XDECREF(fields);
        Py_XDECREF(args);
        if (r == -2)
            return NULL;
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(NN)", fields, args);
}

#include "_recscan_plan.h"
#include "_recscan_shards.h"
#include "_recscan_owner.h"
#include "_recscan_split.h"
#include "_recscan_ahead.h"

/*
 * scan_lines(data, pos, lineno, limit, plan) -> (records, pos, lineno, skipped)
 *
 * The lines of data from pos on, each scanned as scan() does, while they are complete, start
 * with '{' and are at most limit bytes; with shards, each record's owner is found first without a
 * scan (nobody_decodes(), walk_owner(): _recscan_owner.h), and only the records this shard decodes
 * or its tree needs are scanned. It stops at the first other line (left to the caller), and
 * when shards' trees learn from one another (`processes`) pauses after a record that changes this
 * shard's tree (changes_tree): the caller scans on from pos once it has handled the records.
 * A line is left out when the plan says nobody wants it:
 *   - with shards, a record another shard owns (owner_of) and whose name is not in `observed`:
 *     not counted;
 *   - a record whose name maps to 0 in `actions` (a known event nobody wants): counted in skipped;
 *   - a record refused by its admission: verdicts[name][origin] is (argument name, answers) and
 *     answers[the argument's string value] is False: counted in skipped (True: admitted, and its
 *     answer's args are True instead of the values read).
 * Every other line is in records as (text, line number, answer), the answer being
 *   - scan()'s tuple;
 *   - for a record this shard owns whose name is a key of `lazy`, the dict of its fields named
 *     in `lazy_keys` and, under "args", {name: value} of its arguments named in lazy[name] (a
 *     tuple; none: no "args"), as extract() reads them (the tuple when not sure of those);
 *   - with shards, for another shard's record shown to `observed`: [fields, args], its fields named
 *     in `lazy_keys` and {name: value} of its arguments named in tree_args[name] (as extract()
 *     reads them), or its name (a str) when `tree_args` is None or not sure;
 *   - with shards and `processes` (a process tree's host pid -> ProcessInfo, or None), scan()'s
 *     tuple as a list for another shard's record that its owner decodes (`decoded` holds its name)
 *     and whose process the tree may not know (tree_knows): the tree learns from its context
 *     (the arguments None when one read is not sure: the reader tests the admission on the text);
 *     with `tree_args`, the list ends with its fields named in `lazy_keys` (None: not sure);
 *   - with shards, () for a record this shard owns that the scan is not sure of, or whose
 *     arguments read are not sure;
 *   - with shards, Ellipsis for another shard's record the scan is not sure of, shown to `observed`
 *     or of a process the tree may not know (shown to the tree if its owner decodes it);
 *   - False when not sure of the record, its owner not found (then the caller's to find);
 *   - True for a record not scanned, to be decoded whole: without shards, the first "eventName" in
 *     it names an event of `direct` and it has too few brackets to nest too deeply
 *     (decoded_directly; the caller scans it after all when the name it decodes is not in
 *     `direct`); with shards, a record of this shard that the walk read as an event of `direct`
 *     nested at most MAX_NESTING deep. The caller validates what it decodes.
 * plan: (arg_table, actions, decoded, observed, index, count, verdicts, lazy (a dict), lazy_keys,
 * processes, direct, tree_args, lazy_count, ahead); count 0: no shards. A lazy event's fields are the
 * first lazy_count of lazy_keys; with shards, the process tree of this shard reads them all of other
 * shards' records (tree_args: a dict, name -> argument names; None: the caller reads them). With
 * shards, `ahead` is the walk-ahead ring (_recscan_ahead.h) the records are placed from where its
 * walker has been, and where this shard publishes how far it has placed (None: no ring).
 */
static PyObject *scan_lines(PyObject *module, PyObject *const *argv, Py_ssize_t argc)
{
    (void)module;
    PyObject *table, *actions, *decoded, *observed, *verdicts, *lazy, *processes, *direct, *tree_args;
    Py_ssize_t pos, lineno, limit, index, count, lazy_count;
    keyset lazy_keys;
    if (argc != 5 || !PyBytes_Check(argv[0]) || !PyTuple_Check(argv[4]) || PyTuple_GET_SIZE(argv[4]) != 14) {
        PyErr_SetString(PyExc_TypeError, "scan_lines(data: bytes, pos: int, lineno: int, limit: int, plan: tuple)");
        return NULL;
    }
    pos = PyLong_AsSsize_t(argv[1]);
    lineno = PyLong_AsSsize_t(argv[2]);
    limit = PyLong_AsSsize_t(argv[3]);
    table = PyTuple_GET_ITEM(argv[4], 0);
    actions = PyTuple_GET_ITEM(argv[4], 1);
    decoded = PyTuple_GET_ITEM(argv[4], 2);
    observed = PyTuple_GET_ITEM(argv[4], 3);
    index = PyLong_AsSsize_t(PyTuple_GET_ITEM(argv[4], 4));
    count = PyLong_AsSsize_t(PyTuple_GET_ITEM(argv[4], 5));
    verdicts = PyTuple_GET_ITEM(argv[4], 6);
    lazy = PyTuple_GET_ITEM(argv[4], 7);
    processes = PyTuple_GET_ITEM(argv[4], 9);
    direct = PyTuple_GET_ITEM(argv[4], 10);
    tree_args = PyTuple_GET_ITEM(argv[4], 11);
    lazy_count = PyLong_AsSsize_t(PyTuple_GET_ITEM(argv[4], 12));
    if (PyErr_Occurred())
        return NULL;
    if (!PyDict_Check(table) || !PyDict_Check(actions) || !PyDict_Check(verdicts) ||
        !(decoded == Py_None || PyFrozenSet_Check(decoded)) || !PyFrozenSet_Check(observed) ||
        !PyDict_Check(lazy) || !PyFrozenSet_Check(direct) || !(processes == Py_None || PyDict_Check(processes)) ||
        !(tree_args == Py_None || (PyDict_Check(tree_args) && count > 0)) || count < 0 ||
        (count > 0 && (index < 0 || index >= count)) || pos < 0 || lineno < 0 || limit < 0 || lazy_count < 0) {
        PyErr_SetString(PyExc_ValueError, "scan_lines: a bad plan");
        return NULL;
    }
    if (check_arg_names(lazy) < 0 || (tree_args != Py_None && check_arg_names(tree_args) < 0)) /* once, not per record */
        return NULL;
    direct_names names;
    names.n = 0; /* (with shards, the walk reads the name: no guess) */
    if (keyset_init(&lazy_keys, PyTuple_GET_ITEM(argv[4], 8)) < 0 ||
        (count == 0 && direct_names_init(&names, direct) < 0))
        return NULL;
    const keyset *want = PyDict_GET_SIZE(lazy) > 0 || tree_args != Py_None ? &lazy_keys : NULL;
    const shard_plan shards = {observed, processes, table, verdicts, tree_args};
    PyObject *ring = PyTuple_GET_ITEM(argv[4], 13);
    Py_buffer ring_buffer = {0};
    ahead_view ahead = {0};
    if (ring != Py_None) {
        if (count == 0) {
            PyErr_SetString(PyExc_ValueError, "scan_lines: a bad plan");
            return NULL;
        }
        if (ahead_open(ring, &ring_buffer, &ahead) < 0)
            return NULL;
        if (ahead.header->readers != count) {
            PyBuffer_Release(&ring_buffer);
            PyErr_SetString(PyExc_ValueError, "scan_lines: a bad plan (the ring is for another count of shards)");
            return NULL;
        }
        ahead.names_ok = __atomic_load_n(&ahead.header->placed[index][2], __ATOMIC_ACQUIRE) == 1;
    }
    const unsigned char *base = (const unsigned char *)PyBytes_AS_STRING(argv[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(argv[0]);
    Py_ssize_t skipped = 0;
    if (pos > size)
        pos = size;
    PyObject *records = PyList_New(0);
    if (records == NULL)
        goto fail;
    while (pos < size) {
        const unsigned char *line = base + pos;
        const unsigned char *newline = memchr(line, '\n', (size_t)(size - pos));
        if (newline == NULL)
            break;
        Py_ssize_t length = newline - line;
        if (length == 0 || line[0] != '{' || length > limit)
            break; /* a blank line, an array, a line too long ...: the caller's */
        Py_ssize_t number = lineno + 1;
        scanner s = {line, newline, 0};
        envelope e;
        envelope_init(&e, want);
        PyObject *found = NULL, *name = NULL;
        int leave = 0; /* 1: not this shard's, 2: nobody wants it */
        int pause = 0; /* this shard's tree changes with this record: the next ones wait (changes_tree) */
        int placed = 0, by_key = 0, step = SCAN, deepest = 0; /* placed: its owner is known */
        Py_ssize_t owner = 0;
        if (count == 0) {
            int whole = names.n != 0 ? decoded_directly(line, length, &names) : 0;
            if (whole < 0)
                goto fail;
            step = whole ? WHOLE : SCAN;
        } else if ((owner = place_ahead(&ahead, line, newline, number, count, decoded, observed, &e, &deepest,
                                        &by_key, &name)) == -2) {
            goto fail;
        } else if (!(placed = owner >= 0)) {
            owner = 0; /* not sure: the scan decides, the caller places it */
        } else if (name == NULL) { /* placed by its line: nobody decodes it */
            step = owner == index ? SCAN : LEAVE;
        } else if ((step = after_walk(&e, newline, name, owner == index, by_key, deepest, direct, &shards,
                                      &pause)) < 0) {
            goto fail_name;
        }
        if (count > 0 && step == SCAN)
            envelope_init(&e, want); /* scanned afresh: nothing the walk read (or half read) is left */
        if (step == LEAVE) {
            leave = 1;
        } else if (step == WHOLE) {
            found = Py_NewRef(Py_True); /* decoded whole by the caller, who checks the name it reads */
        } else if (scan_event(&s, &e)) {
            /* not sure: the caller's Python path; with shards, for the owner placed: () this
             * shard's, Ellipsis another's (shown to this shard's tree if its owner decodes it) */
            found = !placed ? Py_NewRef(Py_False) : owner == index ? PyTuple_New(0) : Py_NewRef(Py_Ellipsis);
            if (found == NULL)
                goto fail_name;
            pause = count > 0 && processes != Py_None; /* (it may be a fork, exec or exit) */
        } else {
            if (name == NULL) {
                if ((name = ascii_string(e.name, e.name_len)) == NULL)
                    goto fail;
                if (count > 0 && !placed && (owner = owner_of(&e, name, decoded, number, count, &by_key)) < 0)
                    goto fail_name;
            }
            if (owner != index) { /* another shard's: shown to the tree, to learn from, or left out unbuilt */
                if (of_another_shard(&e, s.end, name, by_key, &shards, &found) < 0)
                    goto fail_name;
                leave = found == NULL;
            } else {
                int unwanted = maps_to_zero(actions, name);
                if (unwanted < 0)
                    goto fail_name;
                if (unwanted)
                    leave = 2;
            }
            if (!leave && found == NULL && want != NULL) {
                PyObject *arg_names = PyDict_GetItemWithError(lazy, name); /* borrowed */
                if (arg_names == NULL && PyErr_Occurred())
                    goto fail_name;
                if (arg_names != NULL && lazy_fields(&e, s.end, lazy_count, arg_names, &found) == -2)
                    goto fail_name;
            }
            if (!leave && found == NULL) {
                found = found_of(&e, s.end, name, table);
                if (found == NULL)
                    goto fail_name;
                if (found == Py_None) { /* an argument read is not sure: the full path, here or anywhere */
                    Py_DECREF(found);
                    found = count > 0 ? PyTuple_New(0) : Py_NewRef(Py_False);
                    if (found == NULL)
                        goto fail_name;
                } else {
                    int answer = verdict(verdicts, name, found);
                    if (answer < 0)
                        goto fail_name;
                    if (answer == REFUSED)
                        leave = 2;
                    else if (answer == ADMITTED)
                        mark_admitted(found);
                }
            }
            /* another shard's record handed on changes the tree (shown to it, or learnt from) */
            if (!leave && count > 0 && processes != Py_None &&
                (pause = owner != index ? 1 : changes_tree(&e, s.end, name, by_key, &shards)) < 0)
                goto fail_name;
        }
        Py_XDECREF(name);
        pos += length + 1;
        lineno = number;
        if (leave) {
            skipped += leave == 2;
            Py_XDECREF(found);
            continue;
        }
        PyObject *text = PyBytes_FromStringAndSize((const char *)line, length);
        if (text == NULL) {
            Py_DECREF(found);
            goto fail;
        }
        PyObject *item = Py_BuildValue("(NnN)", text, number, found);
        if (item == NULL)
            goto fail;
        int r = PyList_Append(records, item);
        Py_DECREF(item);
        if (r < 0)
            goto fail;
        if (pause)
            break; /* (the caller scans on from pos once the records are handled) */
        continue;
    fail_name:
        Py_XDECREF(found);
        Py_XDECREF(name);
        goto fail;
    }
    ahead_placed(&ahead, index, lineno);
    if (ring != Py_None)
        PyBuffer_Release(&ring_buffer);
    return Py_BuildValue("(Nnnn)", records, pos, lineno, skipped);

fail:
    Py_XDECREF(records);
    if (ring != Py_None)
        PyBuffer_Release(&ring_buffer);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(text, arg_table) -> (eventName, origin, container_id, hostProcessId, args) or None (not sure)."},
    {"extract", (PyCFunction)(void (*)(void))extract, METH_FASTCALL,
     "extract(text, keys, arg_names) -> (fields, args) or None (not sure): named members read in place."},
    {"scan_lines", (PyCFunction)(void (*)(void))scan_lines, METH_FASTCALL,
     "scan_lines(data, pos, lineno, limit, plan) -> (records, pos, lineno, skipped): the lines from pos, scanned."},
    {"owners", (PyCFunction)(void (*)(void))owners, METH_FASTCALL,
     "owners(data, lineno, count, decoded, limit) -> bytes: the shard of each line, found once (255: the caller's)."},
    {"ahead_size", (PyCFunction)ahead_size, METH_O,
     "ahead_size(slots) -> int: the bytes of a walk-ahead ring of that many slots."},
    {"ahead_init", (PyCFunction)(void (*)(void))ahead_init, METH_FASTCALL,
     "ahead_init(ring, slots, readers, device, inode): a walk-ahead ring of that file for `readers` workers."},
    {"ahead_names", (PyCFunction)(void (*)(void))ahead_names, METH_FASTCALL,
     "ahead_names(ring, decoded, observed) -> bool: the events decoded and observed, published for the walker."},
    {"ahead_accept", (PyCFunction)(void (*)(void))ahead_accept, METH_FASTCALL,
     "ahead_accept(ring, index, decoded, observed) -> bool: worker `index` takes the walker's answers by names."},
    {"ahead_stats", (PyCFunction)ahead_stats, METH_O,
     "ahead_stats(ring) -> (device, inode, walked, state, taken): the walk so far; per worker, lines placed from it."},
    {"walk_ahead", (PyCFunction)(void (*)(void))walk_ahead, METH_FASTCALL,
     "walk_ahead(ring, fd, limit, parent) -> state: every record of the file walked into the ring (the walker)."},
    {"owner_fields", (PyCFunction)owner_fields, METH_O,
     "owner_fields(text) -> (eventName, hostProcessId, containerId, container id, processEntityId offset, nesting) "
     "or None: what a --workers worker reads of a record to find its owner (for the tests)."},
    {"split_args", (PyCFunction)split_args, METH_O,
     "split_args(text) -> (args, head, start, end) or None (not sure): the arguments read in place."},
    {"plain_event", (PyCFunction)plain_event, METH_O,
     "plain_event(raw) -> bool: the reader's chained test of a usable decoded event passes (False: not sure)."},
    {"args_of", (PyCFunction)args_of, METH_O,
     "args_of(args) -> dict or None: {name: value} of an args list as Event.args has it (None: not sure)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_recscan", "A record's envelope read in one pass, in C (see engine/recscan.py).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__recscan(void)
{
    init_json_tables();
    for (int len = 0; len <= MAX_FIELD_LENGTH; len++) {
        int n = 0;
        for (int i = 0; i < N_FIELDS; i++)
            if (strlen(FIELD_NAMES[i]) == (size_t)len)
                fields_by_length[len][n++] = (signed char)i;
        fields_by_length[len][n] = -1;
    }
    ORIGIN_HOST = PyUnicode_InternFromString("host");
    ORIGIN_CONTAINER = PyUnicode_InternFromString("container");
    ORIGIN_CONTAINER_INIT = PyUnicode_InternFromString("container-init");
    EMPTY = PyUnicode_InternFromString("");
    if (init_member_names() < 0 || init_decoded_keys() < 0)
        return NULL;
    init_walk();
    init_ahead();
    if (init_shards() < 0)
        return NULL;
    if (!ORIGIN_HOST || !ORIGIN_CONTAINER || !ORIGIN_CONTAINER_INIT || !EMPTY)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    if (PyModule_AddIntConstant(module, "MAX_NESTING", MAX_NESTING) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
