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

/* The tables and names above, made once (at module initialisation); -1 on an error. */
static int init_shards(void)
{
    init_crc_table();
    COMM = PyUnicode_InternFromString("comm");
    ENTITY = PyUnicode_InternFromString("_entity");
    return COMM != NULL && ENTITY != NULL ? 0 : -1;
}

#endif
