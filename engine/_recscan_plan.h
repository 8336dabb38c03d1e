/*
 * How engine/_recscan.c's scan_lines applies the reader's plan (included there once; not a public
 * header): the events nobody wants, the answers of admissions remembered per argument value, and
 * the names decoded whole without a scan.
 */
#ifndef PYTRACEE_RECSCAN_PLAN_H
#define PYTRACEE_RECSCAN_PLAN_H

/* 1: the (borrowed) key maps to the int 0 in dict; 0: not; -1: an error. */
static int maps_to_zero(PyObject *dict, PyObject *key)
{
    PyObject *value = PyDict_GetItemWithError(dict, key);
    if (value == NULL)
        return PyErr_Occurred() ? -1 : 0;
    return PyLong_CheckExact(value) && PyLong_AsLong(value) == 0;
}

/* What the admission of this record's event answered before for its origin and argument value:
 * REFUSED, ADMITTED, 0 (not known: the caller tests it), or -1 (an error). */
#define REFUSED 1
#define ADMITTED 2
static int verdict(PyObject *verdicts, PyObject *name, PyObject *found)
{
    PyObject *per_origin = PyDict_GetItemWithError(verdicts, name), *entry, *args, *value, *answer;
    if (per_origin == NULL || !PyDict_Check(per_origin))
        return PyErr_Occurred() ? -1 : 0;
    entry = PyDict_GetItemWithError(per_origin, PyTuple_GET_ITEM(found, 1));
    args = PyTuple_GET_ITEM(found, 4);
    if (entry == NULL || !PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2 || !PyDict_Check(args) ||
        !PyDict_Check(PyTuple_GET_ITEM(entry, 1)))
        return PyErr_Occurred() ? -1 : 0;
    value = PyDict_GetItemWithError(args, PyTuple_GET_ITEM(entry, 0));
    if (value == NULL || !PyUnicode_CheckExact(value))
        return PyErr_Occurred() ? -1 : 0;
    answer = PyDict_GetItemWithError(PyTuple_GET_ITEM(entry, 1), value);
    if (answer == NULL)
        return PyErr_Occurred() ? -1 : 0;
    return answer == Py_False ? REFUSED : answer == Py_True ? ADMITTED : 0;
}

/* Mark `found` (a new tuple of scan(), only the caller's) as admitted: its args become True. */
static void mark_admitted(PyObject *found)
{
    Py_SETREF(((PyTupleObject *)found)->ob_item[4], Py_NewRef(Py_True));
}

/* The names of events decoded whole without a scan (scan_lines' `direct`), as bytes. */
#define MAX_DIRECT 64
typedef struct {
    int n; /* -1: too many names to compare one by one: ask the set */
    PyObject *set;
    const char *name[MAX_DIRECT];
    Py_ssize_t len[MAX_DIRECT];
} direct_names;

/* 0, or -1 with an exception. The set must outlive `d` (scan_lines holds it). */
static int direct_names_init(direct_names *d, PyObject *direct)
{
    d->set = direct;
    d->n = 0;
    if (PySet_GET_SIZE(direct) > MAX_DIRECT) {
        d->n = -1;
        return 0;
    }
    Py_ssize_t pos = 0;
    PyObject *name;
    Py_hash_t hash;
    while (_PySet_NextEntry(direct, &pos, &name, &hash)) {
        if (!PyUnicode_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "scan_lines: direct must be a frozenset of str");
            return -1;
        }
        if (!PyUnicode_IS_ASCII(name)) /* never a name the guess reads */
            continue;
        if ((d->name[d->n] = PyUnicode_AsUTF8AndSize(name, &d->len[d->n])) == NULL)
            return -1;
        d->n++;
    }
    return 0;
}

/* The first '"eventName":"' in line[0:length]: where its value starts, or NULL. */
static const unsigned char *event_name_value(const unsigned char *line, Py_ssize_t length)
{
    static const char key[] = "\"eventName\":\"";
    const Py_ssize_t key_len = sizeof(key) - 1;
    const unsigned char *at = find_key(line, line + length, key, key_len);
    return at == NULL ? NULL : at + key_len;
}

/* 1: the record at line[0:length] is one to decode whole without scanning it: the first
 * "eventName" in it names an event of `direct`, and it holds at most MAX_NESTING brackets, so it
 * cannot nest deeper; 0: scan it; -1: an error. Only a guess: the caller checks the name the
 * decoding reads. */
static int decoded_directly(const unsigned char *line, Py_ssize_t length, const direct_names *direct)
{
    const unsigned char *start = event_name_value(line, length), *end = line + length;
    if (start == NULL)
        return 0;
    const unsigned char *quote = memchr(start, '"', (size_t)(end - start));
    if (quote == NULL || quote == start)
        return 0;
    Py_ssize_t len = quote - start;
    int found = 0;
    if (direct->n >= 0) {
        for (int i = 0; i < direct->n && !found; i++)
            found = direct->len[i] == len && memcmp(direct->name[i], start, (size_t)len) == 0;
    } else {
        for (const unsigned char *c = start; c < quote; c++)
            if (*c == '\\' || *c >= 0x80)
                return 0;
        PyObject *name = ascii_string(start, len);
        if (name == NULL)
            return -1;
        found = PySet_Contains(direct->set, name);
        Py_DECREF(name);
    }
    if (found != 1)
        return found;
    return few_brackets(line, end);
}

#endif
