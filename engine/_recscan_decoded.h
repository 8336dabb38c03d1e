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

/* (_recscan.c includes this after its field_of() and the fields it names) */

/* What each field (enum field's order) must be in a decoded event: 'n' a non-empty str (eventName),
 * 'e' an int or a str of ASCII digits (eventId), 'i' an int, 's' a str, 'd' a dict, 'a' a list or
 * null (args). */
static const char FIELD_TYPES[] = "neiiiiiiisssdddda";
_Static_assert(sizeof(FIELD_TYPES) == N_FIELDS + 1, "one type per field");

static PyObject *KEY_NAME, *KEY_VALUE, *KEY_ARGS;

static int init_decoded_keys(void)
{
    KEY_NAME = PyUnicode_InternFromString("name");
    KEY_VALUE = PyUnicode_InternFromString("value");
    KEY_ARGS = PyUnicode_InternFromString("args");
    return KEY_NAME && KEY_VALUE && KEY_ARGS ? 0 : -1;
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

/* One pass over the members (no lookup per field: orjson's keys are not the interned names, so each
 * lookup would compare strings), each context field (_recscan.c's field_of, reader.py's
 * _INT_FIELDS, _STR_FIELDS and _OBJECT_FIELDS) checked for its type. */
static PyObject *plain_event(PyObject *module, PyObject *raw)
{
    (void)module;
    if (!PyDict_CheckExact(raw))
        Py_RETURN_FALSE;
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    int named = 0;
    while (PyDict_Next(raw, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key))
            Py_RETURN_FALSE; /* (not sure: a str subclass could equal a field's name; orjson makes none) */
        if (!PyUnicode_IS_ASCII(key))
            continue; /* (no field's name) */
        int field = field_of(PyUnicode_1BYTE_DATA(key), PyUnicode_GET_LENGTH(key)), ok = 1;
        switch (field == F_OTHER ? 0 : FIELD_TYPES[field]) {
        case 'n':
            ok = named = PyUnicode_CheckExact(value) && PyUnicode_GET_LENGTH(value) > 0;
            break;
        case 'e':
            ok = PyLong_CheckExact(value) || (PyUnicode_CheckExact(value) && ascii_digits(value));
            break;
        case 'i':
            ok = PyLong_CheckExact(value);
            break;
        case 's':
            ok = PyUnicode_CheckExact(value);
            break;
        case 'd':
            ok = PyDict_CheckExact(value);
            break;
        case 'a':
            ok = value == Py_None || PyList_CheckExact(value);
            break;
        }
        if (!ok)
            Py_RETURN_FALSE;
    }
    return PyBool_FromLong(named);
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
