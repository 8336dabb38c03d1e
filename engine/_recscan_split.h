/*
 * split_args(): an event decoded in two parts, for engine/_recscan.c (included there once; not a
 * public header).
 *
 *   split_args(text) -> (args, head, start, end) | None
 *
 * `args` is {name: value} of every argument of the record, as Event.args builds it from the
 * decoded list, read in place; `head` is the record's text with its "args" array (text[start:end])
 * replaced by null, for orjson to decode the rest. Decoding an argument list whole builds a dict
 * and two strings per argument that Event.args then turns into one entry; this builds the entry at
 * once, and the list only when someone reads the event's raw JSON (Event.raw decodes
 * text[start:end] then).
 *
 * The answer is exact only when orjson decodes `head` (the caller's part): then the whole text is
 * valid JSON, and its decoding is head's object with "args" the array read here. For the text
 * ends with the array's ']' and the object's '}' (blanks aside), and the array starts after the
 * first `"args":` followed by '[' whose quote is not escaped (whichever it is: the argument below
 * rests on orjson reading `head`), read to that last ']' and validated on the way; a
 * null in its place that orjson reads is then the value of the top-level object's last member,
 * and that member's key, of bytes `"args"` after an unescaped quote, is "args" (a closing quote
 * is never followed by a letter). Anything else answers None (the caller decodes the record
 * whole): more than MAX_NESTING brackets, another layout, an argument object without one "name"
 * (a plain string) or with two "value", a value that is not a plain string, an integer within
 * int64, true, false, null, a list of plain strings or an object of such scalars.
 */
#ifndef PYTRACEE_RECSCAN_SPLIT_H
#define PYTRACEE_RECSCAN_SPLIT_H

/* Where the argument array of `text` starts (its '['), given its last ']' at `last`: after the first
 * `"args":` followed by '[' whose quote is not escaped; NULL: none. */
static const unsigned char *args_array(const unsigned char *text, const unsigned char *last)
{
    static const char key[] = "\"args\":";
    const Py_ssize_t key_len = (Py_ssize_t)sizeof(key) - 1;
    for (const unsigned char *found = find_key(text, last, key, key_len); found != NULL;
         found = find_key(found + 1, last, key, key_len)) {
        const unsigned char *value = found + key_len, *before = found;
        while (before > text && before[-1] == '\\')
            before--;
        while (value < last && blank(*value))
            value++;
        if ((found - before) % 2 == 0 && *value == '[')
            return value;
    }
    return NULL;
}

static PyObject *split_args(PyObject *module, PyObject *text_object)
{
    (void)module;
    if (!PyBytes_Check(text_object)) {
        PyErr_SetString(PyExc_TypeError, "split_args(text: bytes)");
        return NULL;
    }
    const unsigned char *text = (const unsigned char *)PyBytes_AS_STRING(text_object);
    Py_ssize_t size = PyBytes_GET_SIZE(text_object);
    const unsigned char *last = text + size, *first, *after = NULL;
    if (!few_brackets(text, last))
        Py_RETURN_NONE;
    while (last > text && blank(last[-1]))
        last--;
    if (last == text || *--last != '}')
        Py_RETURN_NONE;
    while (last > text && blank(last[-1]))
        last--;
    if (last == text || *--last != ']' || (first = args_array(text, last)) == NULL)
        Py_RETURN_NONE;
    PyObject *args = PyDict_New();
    if (args == NULL)
        return NULL;
    int r = read_args(first, last + 1, NULL, args, ARG_LISTS | ARG_OBJECTS, &after);
    if (r != OK || after != last + 1) {
        Py_DECREF(args);
        if (r == -2)
            return NULL;
        Py_RETURN_NONE;
    }
    Py_ssize_t start = first - text, stop = after - text;
    PyObject *head = PyBytes_FromStringAndSize(NULL, size - (stop - start) + 4);
    if (head == NULL) {
        Py_DECREF(args);
        return NULL;
    }
    char *out = PyBytes_AS_STRING(head);
    memcpy(out, text, (size_t)start);
    memcpy(out + start, "null", 4);
    memcpy(out + start + 4, text + stop, (size_t)(size - stop));
    PyObject *at = PyLong_FromSsize_t(start), *to = PyLong_FromSsize_t(stop), *answer = NULL;
    if (at != NULL && to != NULL)
        answer = PyTuple_Pack(4, args, head, at, to);
    Py_XDECREF(at);
    Py_XDECREF(to);
    Py_DECREF(args);
    Py_DECREF(head);
    return answer;
}

#endif
