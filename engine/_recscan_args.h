/*
 * The argument array of a record, read in place, for engine/_recscan.c (included there once; not
 * a public header): read_args() validates the array as it reads the arguments named (or all of
 * them) into {name: value}, as Event.args builds it from the decoded list; argument_members() reads
 * one argument object. Used by scan(), extract(), split_args() and scan_lines(), and, under
 * tracee-rules --workers, for what a worker's process tree reads of another worker's records.
 * Needs the scanner and value readers of _recscan_json.h.
 */
#ifndef PYTRACEE_RECSCAN_ARGS_H
#define PYTRACEE_RECSCAN_ARGS_H

/* One argument object at s->p ('{'): its plain "name" string and where its "value" starts (NULL:
 * none); s->p past it. UNSURE when it is not an object, has no name or two, a name that is not a
 * plain string, two values or an escaped key (the full decoding says what is wrong). */
static int argument_members(scanner *s, const unsigned char **name, Py_ssize_t *name_len,
                            const unsigned char **value)
{
    const unsigned char *key;
    Py_ssize_t key_len;
    int member_done = 0;
    *name = *value = NULL;
    if (s->p >= s->end || *s->p != '{')
        return UNSURE;
    s->p++;
    s->depth = 3;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}')
        return UNSURE; /* no name */
    while (!member_done) {
        if (plain_key(s, &key, &key_len))
            return UNSURE;
        if (KEY_IS(key, key_len, "name")) {
            if (*name != NULL || plain_string(s, name, name_len))
                return UNSURE;
        } else {
            if (KEY_IS(key, key_len, "value")) {
                if (*value != NULL)
                    return UNSURE;
                *value = s->p;
            }
            if (skip_value(s))
                return UNSURE;
        }
        if (next_member(s, '}', &member_done))
            return UNSURE;
    }
    return *name == NULL ? UNSURE : OK;
}

/* What read_args() reads for a value besides a scalar (a plain string, an integer within int64,
 * true, false, null): a list of plain strings, an object of scalars. */
#define ARG_LISTS 1
#define ARG_OBJECTS 2

/* The arguments in the array at `args` into `out` ({name: value}, the last of a name winning, as in
 * Event.args): those named in `names` (a tuple of str), or with `names` NULL every one (their
 * names made once: shared_name()); a value of another kind than `kinds` allows: UNSURE. The array
 * is validated as it is read. *after (unless NULL): just past its ']'. OK, UNSURE or -2 (an
 * exception set). */
static int read_args(const unsigned char *args, const unsigned char *end, PyObject *names, PyObject *out, int kinds,
                     const unsigned char **after)
{
    scanner s = {args + 1, end, 2};
    int done = 0;
    skip_ws(&s);
    if (s.p < s.end && *s.p == ']') {
        s.p++;
        done = 1;
    }
    while (!done) {
        const unsigned char *name, *value;
        Py_ssize_t name_len = 0;
        if (argument_members(&s, &name, &name_len, &value))
            return UNSURE;
        PyObject *key = NULL;
        if (names == NULL) {
            if ((key = shared_name(name, name_len)) == NULL)
                return -2;
        } else {
            for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names) && key == NULL; i++) {
                PyObject *wanted = PyTuple_GET_ITEM(names, i);
                Py_ssize_t wanted_len;
                if (!PyUnicode_IS_ASCII(wanted))
                    continue; /* the record is ASCII only: not one of its names (nor UTF-8, for a lone surrogate) */
                const char *wanted_text = PyUnicode_AsUTF8AndSize(wanted, &wanted_len);
                if (wanted_text == NULL)
                    return -2;
                if (wanted_len == name_len && memcmp(wanted_text, name, (size_t)name_len) == 0)
                    key = Py_NewRef(wanted);
            }
        }
        if (key != NULL) {
            scanner v = {value, end, 3};
            int unsure = 0;
            PyObject *item = value == NULL                                ? Py_NewRef(Py_None)
                             : *value == '[' && (kinds & ARG_LISTS)   ? read_string_list(&v, &unsure)
                             : *value == '{' && (kinds & ARG_OBJECTS) ? read_flat_object(&v, &unsure)
                                                                      : read_scalar(&v, &unsure);
            int r = item == NULL ? -1 : PyDict_SetItem(out, key, item);
            Py_DECREF(key);
            Py_XDECREF(item);
            if (r < 0)
                return item == NULL && unsure ? UNSURE : -2;
        }
        if (next_member(&s, ']', &done))
            return UNSURE;
    }
    if (after != NULL)
        *after = s.p;
    return OK;
}

#endif
