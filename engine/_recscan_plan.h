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

/* 1: the record at line[0:length] is one to decode whole without scanning it: the first
 * "eventName" in it names an event of `direct` (a frozenset of str), and it holds at most
 * MAX_NESTING brackets, so it cannot nest deeper; 0: scan it; -1: an error. Only a guess: the
 * caller checks the name the decoding reads. */
static int decoded_directly(const unsigned char *line, Py_ssize_t length, PyObject *direct)
{
    static const char key[] = "\"eventName\":\"";
    const Py_ssize_t key_len = sizeof(key) - 1;
    const unsigned char *at = memmem(line, (size_t)length, key, (size_t)key_len);
    if (at == NULL)
        return 0;
    const unsigned char *start = at + key_len, *end = line + length;
    const unsigned char *quote = memchr(start, '"', (size_t)(end - start));
    if (quote == NULL || quote == start)
        return 0;
    for (const unsigned char *c = start; c < quote; c++)
        if (*c == '\\' || *c >= 0x80)
            return 0;
    PyObject *name = ascii_string(start, quote - start);
    if (name == NULL)
        return -1;
    int found = PySet_Contains(direct, name);
    Py_DECREF(name);
    if (found != 1)
        return found;
    Py_ssize_t brackets = 0;
    for (const unsigned char *c = line; c < end; c++)
        brackets += (*c == '{') + (*c == '['); /* no branch: the compiler vectorizes it */
    return brackets <= MAX_NESTING;
}

#endif
