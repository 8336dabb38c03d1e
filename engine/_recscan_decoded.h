/*
 * Checks and views of an event orjson decoded, for engine/_recscan.c (included there once; not a
 * public header). Each answers exactly as the Python code it stands for, or says "not sure"
 * (0 / None) and the caller runs that code:
 *
 *   plain_event(raw) -> bool: True when engine/reader.py's chained test of a usable event
 *       (EventReader._check, before the field-by-field examination) passes;
 *   args_of(args) -> dict | None: {name: value} of an event's args list, as Event.args builds it,
 *       when every element is a dict with a str name (None otherwise).
 */
#ifndef PYTRACEE_RECSCAN_DECODED_H
#define PYTRACEE_RECSCAN_DECODED_H

#include <Python.h>

static PyObject *KEY_NAME, *KEY_VALUE, *KEY_EVENT_NAME, *KEY_ARGS, *KEY_EVENT_ID;
#define N_CHECKED 14
/* The context fields reader.py's _INT_FIELDS, _STR_FIELDS and _OBJECT_FIELDS name, with their type. */
static const struct {
    const char *name;
    char type; /* 'i': int, 's': str, 'd': dict */
} CHECKED[N_CHECKED] = {
    {"timestamp", 'i'}, {"processId", 'i'},   {"threadId", 'i'},   {"parentProcessId", 'i'}, {"hostProcessId", 'i'},
    {"userId", 'i'},    {"returnValue", 'i'}, {"processName", 's'}, {"hostName", 's'},       {"containerId", 's'},
    {"contextFlags", 'd'}, {"container", 'd'}, {"kubernetes", 'd'}, {"executable", 'd'},
};
static PyObject *checked_keys[N_CHECKED];

static int init_decoded_keys(void)
{
    KEY_NAME = PyUnicode_InternFromString("name");
    KEY_VALUE = PyUnicode_InternFromString("value");
    KEY_EVENT_NAME = PyUnicode_InternFromString("eventName");
    KEY_ARGS = PyUnicode_InternFromString("args");
    KEY_EVENT_ID = PyUnicode_InternFromString("eventId");
    if (!KEY_NAME || !KEY_VALUE || !KEY_EVENT_NAME || !KEY_ARGS || !KEY_EVENT_ID)
        return -1;
    for (int i = 0; i < N_CHECKED; i++)
        if ((checked_keys[i] = PyUnicode_InternFromString(CHECKED[i].name)) == NULL)
            return -1;
    return 0;
}

/* A non-empty str of ASCII digits (reader.py's _is_number). */
static int ascii_digits(PyObject *text)
{
    if (!PyUnicode_IS_ASCII(text) || PyUnicode_GET_LENGTH(text) == 0)
        return 0;
    const Py_UCS1 *c = PyUnicode_1BYTE_DATA(text);
    for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(text); i++)
        if (c[i] < '0' || c[i] > '9')
            return 0;
    return 1;
}

static PyObject *plain_event(PyObject *module, PyObject *raw)
{
    (void)module;
    if (!PyDict_CheckExact(raw))
        Py_RETURN_FALSE;
    PyObject *name = PyDict_GetItemWithError(raw, KEY_EVENT_NAME);
    if (name == NULL || !PyUnicode_CheckExact(name) || PyUnicode_GET_LENGTH(name) == 0)
        goto no;
    PyObject *args = PyDict_GetItemWithError(raw, KEY_ARGS);
    if (args == NULL ? PyErr_Occurred() != NULL : args != Py_None && !PyList_CheckExact(args))
        goto no;
    PyObject *id = PyDict_GetItemWithError(raw, KEY_EVENT_ID);
    if (id == NULL ? PyErr_Occurred() != NULL : !PyLong_CheckExact(id) && !(PyUnicode_CheckExact(id) && ascii_digits(id)))
        goto no;
    for (int i = 0; i < N_CHECKED; i++) {
        PyObject *value = PyDict_GetItemWithError(raw, checked_keys[i]);
        if (value == NULL) {
            if (PyErr_Occurred())
                return NULL;
            continue;
        }
        if (CHECKED[i].type == 'i' ? !PyLong_CheckExact(value)
            : CHECKED[i].type == 's' ? !PyUnicode_CheckExact(value)
                                     : !PyDict_CheckExact(value))
            goto no;
    }
    Py_RETURN_TRUE;
no:
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_FALSE;
}

static PyObject *args_of(PyObject *module, PyObject *args)
{
    (void)module;
    if (!PyList_CheckExact(args))
        Py_RETURN_NONE;
    PyObject *values = PyDict_New();
    if (values == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(args); i++) {
        PyObject *arg = PyList_GET_ITEM(args, i), *name, *value;
        if (!PyDict_CheckExact(arg) || (name = PyDict_GetItemWithError(arg, KEY_NAME)) == NULL ||
            !PyUnicode_CheckExact(name)) {
            Py_DECREF(values);
            if (PyErr_Occurred())
                return NULL;
            Py_RETURN_NONE;
        }
        /* exact dicts and str keys: no Python code runs here, the list cannot change under the loop */
        value = PyDict_GetItemWithError(arg, KEY_VALUE);
        if (value == NULL && PyErr_Occurred()) {
            Py_DECREF(values);
            return NULL;
        }
        if (PyDict_SetItem(values, name, value == NULL ? Py_None : value) < 0) { /* the last of a name wins */
            Py_DECREF(values);
            return NULL;
        }
    }
    return values;
}

#endif
