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

/* Argument names made once and shared by every event's dict (a str made once also keeps its hash):
 * a direct-mapped table by a hash of the name's bytes; a name of another record's choosing takes
 * a slot from one it displaces, nothing worse. */
#define NAME_SLOTS 512
#define MAX_CACHED_NAME 40
static PyObject *name_slots[NAME_SLOTS];

static PyObject *shared_name(const unsigned char *name, Py_ssize_t len)
{
    if (len > MAX_CACHED_NAME)
        return ascii_string(name, len);
    uint32_t h = 2166136261u; /* FNV-1a */
    for (Py_ssize_t i = 0; i < len; i++)
        h = (h ^ name[i]) * 16777619u;
    PyObject **slot = &name_slots[(h ^ (h >> 16)) % NAME_SLOTS];
    PyObject *cached = *slot;
    if (cached != NULL && PyUnicode_GET_LENGTH(cached) == len &&
        memcmp(PyUnicode_1BYTE_DATA(cached), name, (size_t)len) == 0)
        return Py_NewRef(cached);
    PyObject *made = ascii_string(name, len);
    if (made != NULL)
        Py_XSETREF(*slot, Py_NewRef(made));
    return made;
}

/* Every argument of the array at `args` (not validated yet: validated here) into `out`; *after: just
 * past its ']'. OK, UNSURE or -2 (an exception set). */
static int read_all_args(const unsigned char *args, const unsigned char *end, PyObject *out,
                         const unsigned char **after)
{
    scanner s = {args + 1, end, 2};
    int done = 0;
    skip_ws(&s);
    if (s.p < s.end && *s.p == ']') {
        *after = s.p + 1;
        return OK;
    }
    while (!done) {
        const unsigned char *name, *value;
        Py_ssize_t name_len = 0;
        if (argument_members(&s, &name, &name_len, &value))
            return UNSURE;
        scanner v = {value, end, 3};
        int unsure = 0;
        PyObject *item = value == NULL  ? Py_NewRef(Py_None)
                         : *value == '[' ? read_string_list(&v, &unsure)
                         : *value == '{' ? read_flat_object(&v, &unsure)
                                         : read_scalar(&v, &unsure);
        if (item == NULL)
            return unsure ? UNSURE : -2;
        PyObject *key_object = shared_name(name, name_len);
        int r = key_object == NULL ? -1 : PyDict_SetItem(out, key_object, item); /* the last of a name wins */
        Py_XDECREF(key_object);
        Py_DECREF(item);
        if (r < 0)
            return -2;
        if (next_member(&s, ']', &done))
            return UNSURE;
    }
    *after = s.p;
    return OK;
}

static inline int blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The first `"a` in [from, last), or NULL (SSE2: 16 bytes at a time; a record has few). */
static inline const unsigned char *quote_a(const unsigned char *from, const unsigned char *last)
{
    const unsigned char *c = from + 1; /* (at the 'a') */
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), a = _mm_set1_epi8('a');
    for (; last - c >= 16; c += 16) {
        __m128i here = _mm_loadu_si128((const __m128i *)c), before = _mm_loadu_si128((const __m128i *)(c - 1));
        unsigned mask = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpeq_epi8(here, a), _mm_cmpeq_epi8(before, quote)));
        if (mask)
            return c + __builtin_ctz(mask) - 1;
    }
#endif
    for (; c < last; c++)
        if (*c == 'a' && c[-1] == '"')
            return c - 1;
    return NULL;
}

/* Where the argument array of `text` starts (its '['), given its last ']' at `last`: after the first
 * `"args":` followed by '[' whose quote is not escaped; NULL: none. */
static const unsigned char *args_array(const unsigned char *text, const unsigned char *last)
{
    for (const unsigned char *found = quote_a(text, last); found != NULL; found = quote_a(found + 1, last)) {
        if (last - found < 7 || memcmp(found, "\"args\":", 7) != 0)
            continue;
        const unsigned char *value = found + 7, *before = found;
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
    int r = read_all_args(first, last + 1, args, &after);
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
