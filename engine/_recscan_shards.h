/*
 * Sharding for engine/_recscan.c's scan_lines (included there once; not a public header): which
 * shard (tracee-rules --workers) owns a record, as engine/reader.py's shard_of finds it, and
 * whether a shard's process tree surely knows the process of another shard's record.
 * Needs the envelope of _recscan.c and the value readers of _recscan_json.h.
 */
#ifndef PYTRACEE_RECSCAN_SHARDS_H
#define PYTRACEE_RECSCAN_SHARDS_H

/* CRC-32 (IEEE), as zlib.crc32: the shard of a container (engine/reader.py's shard_of). */
static uint32_t crc_table[256];

static void init_crc_table(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static uint32_t crc32_of(const unsigned char *data, Py_ssize_t len)
{
    uint32_t c = 0xFFFFFFFFu;
    for (Py_ssize_t i = 0; i < len; i++)
        c = crc_table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* The shard of a record read into `e` (named `name`): by line number when `decoded` (a frozenset,
 * or None: every name) does not hold its name, else (*by_key set) by container (crc32 of its id),
 * else by host process id: engine/reader.py's owner of a record. -1 on an error. */
static Py_ssize_t owner_of(const envelope *e, PyObject *name, PyObject *decoded, Py_ssize_t number, Py_ssize_t count,
                           int *by_key)
{
    *by_key = decoded == Py_None;
    if (!*by_key && (*by_key = PySet_Contains(decoded, name)) < 0)
        return -1;
    if (!*by_key)
        return number % count;
    const unsigned char *id = e->container_id_len > 0 ? e->container_id : e->flat_container_id;
    Py_ssize_t id_len = e->container_id_len > 0 ? e->container_id_len : e->flat_container_id_len;
    if (id_len > 0)
        return (Py_ssize_t)(crc32_of(id, id_len) % (uint32_t)count);
    return (Py_ssize_t)(((e->host_pid % count) + count) % count); /* Python's modulo */
}

static PyObject *COMM, *ENTITY; /* the ProcessInfo attributes tree_knows() reads */

/* 1 when `processes` (a process tree's host pid -> ProcessInfo) surely knows the process of the
 * record read into `e`, as ProcessTree.knows() finds it (a process with a comm, and the record's
 * processEntityId absent, zero or the process's); 0 when maybe not (the caller asks the tree);
 * -1 on an error. */
static int tree_knows(PyObject *processes, const envelope *e, const unsigned char *end)
{
    PyObject *pid = PyLong_FromLongLong(e->host_pid);
    if (pid == NULL)
        return -1;
    PyObject *node = PyDict_GetItemWithError(processes, pid); /* borrowed */
    Py_DECREF(pid);
    if (node == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *comm = PyObject_GetAttr(node, COMM);
    if (comm == NULL)
        return -1;
    int known = PyObject_IsTrue(comm);
    Py_DECREF(comm);
    if (known <= 0 || e->entity_at == NULL)
        return known;
    scanner v = {e->entity_at, end, 1};
    int unsure = 0;
    PyObject *entity = read_scalar(&v, &unsure);
    if (entity == NULL)
        return unsure ? 0 : -1;
    known = !PyObject_IsTrue(entity);
    if (!known) {
        PyObject *its = PyObject_GetAttr(node, ENTITY);
        known = its == NULL ? -1 : PyObject_RichCompareBool(entity, its, Py_EQ);
        Py_XDECREF(its);
    }
    Py_DECREF(entity);
    return known;
}

/* 0, or -1 with an exception: the values of `dict` (a dict) are tuples of str (argument names). */
static int check_arg_names(PyObject *dict)
{
    Py_ssize_t at = 0;
    PyObject *name, *arg_names;
    while (PyDict_Next(dict, &at, &name, &arg_names)) {
        if (!PyTuple_Check(arg_names)) {
            PyErr_SetString(PyExc_ValueError, "scan_lines: a bad plan");
            return -1;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(arg_names); i++)
            if (!PyUnicode_Check(PyTuple_GET_ITEM(arg_names, i))) {
                PyErr_SetString(PyExc_TypeError, "scan_lines: argument names must be str");
                return -1;
            }
    }
    return 0;
}

/* What this shard's process tree reads of another shard's record scanned into `e` (named `name`):
 * [fields, args], its fields located (all of e->want) and its arguments named in tree_args[name], as
 * extract() reads them; `name` itself (a new reference) when a value read is not sure; NULL on an
 * error. */
static PyObject *tree_view(const envelope *e, const unsigned char *end, PyObject *name, PyObject *tree_args)
{
    PyObject *arg_names = PyDict_GetItemWithError(tree_args, name); /* borrowed */
    if (arg_names == NULL && PyErr_Occurred())
        return NULL;
    PyObject *fields = NULL, *args = NULL;
    int r = fields_of(e, end, e->want->n, &fields);
    if (r == OK && (args = PyDict_New()) == NULL)
        r = -2;
    if (r == OK && e->args != NULL && arg_names != NULL && PyTuple_GET_SIZE(arg_names) > 0)
        r = read_args(e->args, end, arg_names, args, ARG_LISTS, NULL);
    PyObject *view = r == OK ? PyList_New(2) : NULL;
    if (view != NULL) {
        PyList_SET_ITEM(view, 0, fields);
        PyList_SET_ITEM(view, 1, args);
        return view;
    }
    Py_XDECREF(fields);
    Py_XDECREF(args);
    return r == UNSURE ? Py_NewRef(name) : NULL;
}

/* Append to `item` (a list, to learn from) the fields of the record scanned into `e`, or None when a
 * value is not sure: 0, or -1 on an error. */
static int add_context(const envelope *e, const unsigned char *end, PyObject *item)
{
    PyObject *fields = NULL;
    int r = fields_of(e, end, e->want->n, &fields);
    if (r == -2)
        return -1;
    r = PyList_Append(item, r == OK ? fields : Py_None);
    Py_XDECREF(fields);
    return r;
}

/* What scan_lines' plan says of other shards' records. */
typedef struct {
    PyObject *observed;  /* frozenset: the events shown to this shard's process tree whoever owns them */
    PyObject *processes; /* dict: the tree's processes by host pid; None: learn from no other record */
    PyObject *table;     /* scan()'s arg_table */
    PyObject *verdicts;  /* the admissions' answers remembered per argument value */
    PyObject *tree_args; /* dict: the arguments the tree reads per event; None: the reader reads them */
} shard_plan;

static PyObject *NO_ARGS; /* an empty arg_table: scan()'s tuple without arguments */

/* 1 when this shard's tree surely knows the process of a record scanned or walked into `e` (its
 * owner found by its process when `by_key`), or learns from no other record; 0: maybe not; -1: an
 * error. */
static int knows_process(const envelope *e, const unsigned char *end, int by_key, const shard_plan *plan)
{
    return !by_key || plan->processes == Py_None || e->host_pid == 0 ? 1 : tree_knows(plan->processes, e, end);
}

/* Another shard's record scanned into `e` (named `name`, its owner found by its process when
 * `by_key`): scan_lines' answer for it in *found, a new reference (shown to this shard's tree: its
 * tree_view(), else its name; of a process the tree may not know, whose owner decodes it: scan()'s
 * tuple as a list, its arguments None when one read is odd (the reader tests the admission on the
 * text), then with `tree_args` its fields), or NULL: left out (its owner decodes, counts and reports
 * it). 0, or -1 on an error. */
static int of_another_shard(const envelope *e, const unsigned char *end, PyObject *name, int by_key,
                            const shard_plan *plan, PyObject **found)
{
    *found = NULL;
    int shown = PySet_Contains(plan->observed, name);
    if (shown) {
        if (shown > 0)
            *found = plan->tree_args == Py_None ? Py_NewRef(name) : tree_view(e, end, name, plan->tree_args);
        return *found == NULL ? -1 : 0;
    }
    int knows = knows_process(e, end, by_key, plan);
    if (knows)
        return knows < 0 ? -1 : 0;
    PyObject *item = found_of(e, end, name, plan->table);
    if (item == Py_None)
        Py_SETREF(item, found_of(e, end, name, NO_ARGS));
    if (item == NULL)
        return -1;
    int answer = verdict(plan->verdicts, name, item); /* refused: its owner will not decode it either */
    if (answer == ADMITTED)
        mark_admitted(item);
    if (answer == 0 || answer == ADMITTED)
        *found = PySequence_List(item);
    Py_DECREF(item);
    if (answer < 0 || (answer != REFUSED && *found == NULL) ||
        (*found != NULL && plan->tree_args != Py_None && add_context(e, end, *found) < 0)) {
        Py_CLEAR(*found);
        return -1;
    }
    return 0;
}

/* Whether this shard's tree may change when the reader handles this shard's record scanned into
 * `e` (named `name`, its owner found by its process when `by_key`): a fork, exec or exit, or an event
 * of a process the tree may not know (the context learns it). Then scan_lines pauses after it: the
 * tree_knows() answers for the records after it must be those of the tree as it will be (a process
 * replaced or evicted meanwhile is to be learnt again, as one process's tree would). 1, 0, or -1 on
 * an error. (Another shard's record handed on always changes it: shown to it, or learnt from.) */
static int changes_tree(const envelope *e, const unsigned char *end, PyObject *name, int by_key, const shard_plan *plan)
{
    int tree_event = PySet_Contains(plan->observed, name);
    if (tree_event)
        return tree_event;
    int knows = knows_process(e, end, by_key, plan);
    return knows < 0 ? -1 : !knows;
}

/* The tables and names above, made once (at module initialisation); -1 on an error. */
static int init_shards(void)
{
    init_crc_table();
    NO_ARGS = PyDict_New();
    COMM = PyUnicode_InternFromString("comm");
    ENTITY = PyUnicode_InternFromString("_entity");
    return NO_ARGS != NULL && COMM != NULL && ENTITY != NULL ? 0 : -1;
}

#endif
