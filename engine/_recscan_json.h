/*
 * The JSON tokenizer of engine/_recscan.c (included there once; not a public header): a
 * bounds-checked scanner over a record's bytes that skips, or reads in place, strings,
 * numbers, literals, arrays and objects, answering UNSURE wherever the full decoder
 * (orjson) might read the text differently; and the readers that make Python objects of the
 * values it proved plain (scalars, lists of strings, objects of scalars).
 */
#ifndef PYTRACEE_RECSCAN_JSON_H
#define PYTRACEE_RECSCAN_JSON_H

#include <Python.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define MAX_NESTING 32
/* An integer part plus a positive exponent beyond this may overflow a double: not sure. */
#define MAX_MAGNITUDE 300

#define UNSURE (-1)
#define OK 0

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
    int depth;
} scanner;

/* Bytes that end the fast part of a string body: '"', '\\', control characters, non-ASCII. */
static unsigned char string_stop[256];
static unsigned char is_digit[256];
static unsigned char hex_value[256]; /* value + 1; 0: not a hex digit */


/* JSON's whitespace. */
static inline int blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline __attribute__((always_inline)) void skip_ws(scanner *s)
{
    const unsigned char *p = s->p, *end = s->end;
    if (p < end && *p > ' ')
        return; /* compact JSON, as tracers write it: no blank here (every blank is <= ' ') */
    while (p < end && blank(*p))
        p++;
    s->p = p;
}

/* s->p at the opening quote. On success s->p is past the closing quote, [*start, *start + *len)
 * is the body as written and *escaped tells whether it holds escapes. */
static inline __attribute__((always_inline)) int scan_string(scanner *s, const unsigned char **start, Py_ssize_t *len, int *escaped)
{
    const unsigned char *p = s->p + 1, *end = s->end;
    int esc = 0;
    *start = p;
    for (;;) {
#ifdef __SSE2__
        /* 16 bytes at a time: '"', '\\', and (as signed bytes) controls and non-ASCII below 0x20 */
        const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
        while (end - p >= 16) {
            __m128i chunk = _mm_loadu_si128((const __m128i *)p);
            __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(chunk, quote), _mm_cmpeq_epi8(chunk, backslash)),
                                        _mm_cmplt_epi8(chunk, space));
            int mask = _mm_movemask_epi8(stop);
            if (mask) {
                p += __builtin_ctz((unsigned)mask);
                goto found;
            }
            p += 16;
        }
#endif
        while (p < end && !string_stop[*p])
            p++;
#ifdef __SSE2__
    found:
#endif
        if (p >= end)
            return UNSURE;
        unsigned char c = *p;
        if (c == '"')
            break;
        if (c != '\\')
            return UNSURE; /* a control character (invalid JSON) or non-ASCII (the full decoder checks it) */
        esc = 1;
        if (end - p < 2)
            return UNSURE;
        c = p[1];
        if (c == 'u') {
            if (end - p < 6)
                return UNSURE;
            unsigned v = 0;
            for (int i = 2; i < 6; i++) {
                unsigned h = hex_value[p[i]];
                if (!h)
                    return UNSURE;
                v = v * 16 + (h - 1);
            }
            if (v >= 0xD800 && v <= 0xDFFF)
                return UNSURE; /* surrogates: a lone one is invalid; pairs are rare, left to the decoder */
            p += 6;
        } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
            p += 2;
        } else {
            return UNSURE;
        }
    }
    *len = p - *start;
    *escaped = esc;
    s->p = p + 1;
    return OK;
}

/* The value of the 8 bytes at p when all are ASCII digits (SWAR, as simdjson reads them), else -1. */
static inline int64_t eight_digits(const unsigned char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, 8);
    if (((v & 0xF0F0F0F0F0F0F0F0u) | (((v + 0x0606060606060606u) & 0xF0F0F0F0F0F0F0F0u) >> 4)) != 0x3333333333333333u)
        return -1;
    v -= 0x3030303030303030u;
    v = v * 10 + (v >> 8); /* pairs of digits */
    v = (((v & 0x000000FF000000FFu) * 0x000F424000000064u) + (((v >> 16) & 0x000000FF000000FFu) * 0x0000271000000001u)) >> 32;
    return (int64_t)(uint32_t)v;
#else
    (void)p;
    return -1;
#endif
}

/* s->p at '-' or a digit. *integer: written as an integer within int64 (its value in *value). */
static int scan_number(scanner *s, int *integer, int64_t *value)
{
    const unsigned char *p = s->p, *end = s->end;
    int negative = 0;
    if (p < end && *p == '-') {
        negative = 1;
        p++;
    }
    if (p >= end || !is_digit[*p])
        return UNSURE;
    const unsigned char *digits = p;
    uint64_t v = 0; /* the value of the first 19 digits, read in the same pass */
    if (*p == '0') {
        p++;
    } else {
        for (int64_t eight; end - p >= 8 && p - digits <= 11 && (eight = eight_digits(p)) >= 0; p += 8)
            v = v * 100000000u + (uint64_t)eight; /* at most 19 digits so far */
        for (const unsigned char *last = end - digits > 19 ? digits + 19 : end;; p++) {
            if (p == last) {
                while (p < end && is_digit[*p])
                    p++;
                break;
            }
            if (!is_digit[*p])
                break;
            v = v * 10 + (uint64_t)(*p - '0');
        }
    }
    Py_ssize_t ndigits = p - digits;
    int plain = 1;
    long exponent = 0;
    if (p < end && *p == '.') {
        plain = 0;
        p++;
        if (p >= end || !is_digit[*p])
            return UNSURE;
        while (p < end && is_digit[*p])
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        plain = 0;
        p++;
        int negative_exponent = 0;
        if (p < end && (*p == '+' || *p == '-')) {
            negative_exponent = *p == '-';
            p++;
        }
        if (p >= end || !is_digit[*p])
            return UNSURE;
        const unsigned char *first = p;
        while (p < end && is_digit[*p]) {
            if (p - first >= 4)
                return UNSURE; /* a huge exponent: perhaps beyond a double */
            exponent = exponent * 10 + (*p - '0');
            p++;
        }
        if (negative_exponent)
            exponent = 0; /* small numbers read as 0.0 or denormals, never an error */
    }
    if (ndigits + exponent > MAX_MAGNITUDE)
        return UNSURE;
    *integer = 0;
    if (plain && ndigits <= 19) { /* 19 digits cannot overflow 64 bits */
        if (negative ? v <= (uint64_t)INT64_MAX + 1 : v <= (uint64_t)INT64_MAX) {
            *integer = 1;
            *value = negative ? (int64_t)(0 - v) : (int64_t)v;
        }
    }
    s->p = p;
    return OK;
}

/* A number skipped, not read: a plain integer of at most 19 digits (nearly every number of an
 * event) in one pass; anything else through scan_number, which says what it makes of it. */
static inline __attribute__((always_inline)) int skip_number(scanner *s)
{
    const unsigned char *p = s->p, *end = s->end;
    if (p < end && *p == '-')
        p++;
    const unsigned char *digits = p;
    if (p < end && *p == '0') {
        p++;
    } else {
        while (p < end && is_digit[*p])
            p++;
    }
    if (p == digits || p - digits > 19 || (p < end && (*p == '.' || *p == 'e' || *p == 'E'))) {
        int integer;
        int64_t value;
        return scan_number(s, &integer, &value);
    }
    s->p = p;
    return OK;
}

static int literal(scanner *s, const char *word, Py_ssize_t n)
{
    if (s->end - s->p < n || memcmp(s->p, word, (size_t)n) != 0)
        return UNSURE;
    s->p += n;
    return OK;
}

/* Whether the n bytes at a and b are equal: memcmp inlined for the short keys of a record, 8 bytes
 * at a time (a libc call costs more than comparing a key of a few bytes). */
static inline __attribute__((always_inline)) int same_bytes(const void *a, const void *b, Py_ssize_t n)
{
    const unsigned char *x = a, *y = b;
    for (; n >= 8; x += 8, y += 8, n -= 8) {
        uint64_t u, v;
        memcpy(&u, x, 8);
        memcpy(&v, y, 8);
        if (u != v)
            return 0;
    }
    for (; n > 0; x++, y++, n--)
        if (*x != *y)
            return 0;
    return 1;
}

static int skip_value(scanner *s);

/* A member separator or the closer `close`; *done set on the closer. */
static inline __attribute__((always_inline)) int next_member(scanner *s, unsigned char close, int *done)
{
    skip_ws(s);
    if (s->p >= s->end)
        return UNSURE;
    if (*s->p == ',') {
        s->p++;
        skip_ws(s);
        *done = 0;
        return OK;
    }
    if (*s->p == close) {
        s->p++;
        *done = 1;
        return OK;
    }
    return UNSURE;
}

/* After '{' or '[' has been consumed by the caller: the members or elements up to the closer. */
static int skip_object_rest(scanner *s)
{
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return OK;
    }
    for (int done = 0; !done;) {
        const unsigned char *key;
        Py_ssize_t len;
        int escaped;
        if (s->p >= s->end || *s->p != '"' || scan_string(s, &key, &len, &escaped))
            return UNSURE;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return UNSURE;
        s->p++;
        skip_ws(s);
        if (skip_value(s) || next_member(s, '}', &done))
            return UNSURE;
    }
    return OK;
}

static int skip_array_rest(scanner *s)
{
    skip_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return OK;
    }
    for (int done = 0; !done;) {
        if (skip_value(s) || next_member(s, ']', &done))
            return UNSURE;
    }
    return OK;
}

/* Any JSON value at s->p (no leading blanks), syntax-checked and skipped. */
static int skip_value(scanner *s)
{
    if (s->p >= s->end)
        return UNSURE;
    const unsigned char *start;
    Py_ssize_t len;
    int escaped, r;
    switch (*s->p) {
    case '"':
        return scan_string(s, &start, &len, &escaped);
    case '{':
    case '[':
        if (++s->depth > MAX_NESTING)
            return UNSURE;
        r = *s->p++ == '{' ? skip_object_rest(s) : skip_array_rest(s);
        s->depth--;
        return r;
    case 't':
        return literal(s, "true", 4);
    case 'f':
        return literal(s, "false", 5);
    case 'n':
        return literal(s, "null", 4);
    default:
        return skip_number(s);
    }
}

/* A key without escapes and its colon; s->p left at the value. */
static inline __attribute__((always_inline)) int plain_key(scanner *s, const unsigned char **key, Py_ssize_t *len)
{
    int escaped;
    if (s->p >= s->end || *s->p != '"' || scan_string(s, key, len, &escaped) || escaped)
        return UNSURE; /* an escaped key may spell a key that is read: not sure */
    skip_ws(s);
    if (s->p >= s->end || *s->p != ':')
        return UNSURE;
    s->p++;
    skip_ws(s);
    return OK;
}

#define KEY_IS(key, len, word) ((len) == (Py_ssize_t)sizeof(word) - 1 && memcmp((key), (word), sizeof(word) - 1) == 0)

/* A plain string value (no escapes) at s->p. */
static int plain_string(scanner *s, const unsigned char **start, Py_ssize_t *len)
{
    int escaped;
    if (s->p >= s->end || *s->p != '"' || scan_string(s, start, len, &escaped) || escaped)
        return UNSURE;
    return OK;
}

/* An object whose one member `wanted` is read: a boolean (kind 'b') or a plain string ('s'). */
static int read_member(scanner *s, const char *wanted, char kind, int *flag, const unsigned char **str,
                       Py_ssize_t *str_len)
{
    if (s->p >= s->end || *s->p != '{')
        return UNSURE;
    if (++s->depth > MAX_NESTING)
        return UNSURE;
    s->p++;
    skip_ws(s);
    int seen = 0, done = 0;
    size_t wanted_len = strlen(wanted);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        done = 1;
    }
    while (!done) {
        const unsigned char *key;
        Py_ssize_t len;
        if (plain_key(s, &key, &len))
            return UNSURE;
        if ((size_t)len == wanted_len && memcmp(key, wanted, wanted_len) == 0) {
            if (seen++)
                return UNSURE; /* a duplicate: the decoder keeps the last; simpler to let it */
            if (kind == 'b') {
                if (s->p < s->end && *s->p == 't') {
                    if (literal(s, "true", 4))
                        return UNSURE;
                    *flag = 1;
                } else if (literal(s, "false", 5)) {
                    return UNSURE;
                }
            } else if (plain_string(s, str, str_len)) {
                return UNSURE;
            }
        } else if (skip_value(s)) {
            return UNSURE;
        }
        if (next_member(s, '}', &done))
            return UNSURE;
    }
    s->depth--;
    return OK;
}

/* Whether [line, end) holds at most MAX_NESTING opening brackets, so that it cannot nest deeper
 * (whatever its syntax: brackets in strings count too). */
static int few_brackets(const unsigned char *line, const unsigned char *end)
{
    Py_ssize_t brackets = 0;
    const unsigned char *c = line;
#ifdef __SSE2__
    /* 16 bytes at a time: '{' is '[' | 0x20 and no other byte ORed with 0x20 is, so one compare finds
     * both (the plain loop below is not vectorized well) */
    const __m128i brace = _mm_set1_epi8('{'), fold = _mm_set1_epi8(0x20);
    for (; end - c >= 16; c += 16) {
        __m128i chunk = _mm_or_si128(_mm_loadu_si128((const __m128i *)c), fold);
        for (unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, brace)); mask; mask &= mask - 1)
            brackets++; /* (few: a record has a few dozen brackets in all) */
        if (brackets > MAX_NESTING)
            return 0;
    }
#endif
    for (; c < end; c++)
        brackets += (*c | 0x20) == '{';
    return brackets <= MAX_NESTING;
}

/* Where `key` (a quoted name and what must follow it, e.g. "\"args\":") first occurs in [from, end),
 * or NULL; wherever it is (the caller tells a key from a string's bytes). 16 places at a time: a
 * quote followed by the key's first letter (few keys start so), then the whole key. */
static const unsigned char *find_key(const unsigned char *from, const unsigned char *end, const char *key,
                                     Py_ssize_t key_len)
{
    if (end - from < key_len)
        return NULL;
    const unsigned char *p = from, *last = end - key_len; /* the last place the key may start */
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), letter = _mm_set1_epi8(key[1]);
    for (; last - p >= 16; p += 16) {
        int mask = _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)p), quote),
                                                   _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + 1)), letter)));
        while (mask) {
            const unsigned char *at = p + __builtin_ctz((unsigned)mask);
            if (memcmp(at, key, (size_t)key_len) == 0)
                return at;
            mask &= mask - 1;
        }
    }
#endif
    for (; p <= last; p++)
        if (*p == '"' && memcmp(p, key, (size_t)key_len) == 0)
            return p;
    return NULL;
}

/* --- values read in place, as the full decoding would make them ----------------------------- */

/* A str of bytes the scanner proved ASCII (no check again). */
static inline PyObject *ascii_string(const unsigned char *text, Py_ssize_t len)
{
    PyObject *str = PyUnicode_New(len, 127);
    if (str != NULL)
        memcpy(PyUnicode_DATA(str), text, (size_t)len);
    return str;
}

/* The member names of the context objects (container, executable, contextFlags, kubernetes),
 * made once: their dicts share them. */
static const char *const MEMBER_NAMES[] = {"id",      "name",       "image",  "imageDigest",  "path",     "sha256",
                                           "containerStarted", "isCompat", "podName", "podNamespace", "podUID"};
#define N_MEMBER_NAMES ((int)(sizeof(MEMBER_NAMES) / sizeof(MEMBER_NAMES[0])))
static PyObject *member_names[N_MEMBER_NAMES];

/* 0, or -1 with an exception. */
static int init_member_names(void)
{
    for (int i = 0; i < N_MEMBER_NAMES; i++)
        if ((member_names[i] = PyUnicode_InternFromString(MEMBER_NAMES[i])) == NULL)
            return -1;
    return 0;
}

static PyObject *member_name(const unsigned char *key, Py_ssize_t len)
{
    for (int i = 0; i < N_MEMBER_NAMES; i++)
        if ((size_t)len == strlen(MEMBER_NAMES[i]) && memcmp(MEMBER_NAMES[i], key, (size_t)len) == 0)
            return Py_NewRef(member_names[i]);
    return ascii_string(key, len);
}

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

/* A scalar as the full decoding reads it: a plain string (no escapes), an integer within int64,
 * true, false or null. A new reference; NULL with *unsure = 1 when it is something else (or with
 * *unsure = 0 and an exception set). */
static PyObject *read_scalar(scanner *s, int *unsure)
{
    const unsigned char *str;
    Py_ssize_t len;
    int integer = 0;
    int64_t number = 0;
    *unsure = 1;
    if (s->p >= s->end)
        return NULL;
    switch (*s->p) {
    case '"':
        if (plain_string(s, &str, &len))
            return NULL;
        *unsure = 0;
        return ascii_string(str, len);
    case 't':
        if (literal(s, "true", 4))
            return NULL;
        *unsure = 0;
        return Py_NewRef(Py_True);
    case 'f':
        if (literal(s, "false", 5))
            return NULL;
        *unsure = 0;
        return Py_NewRef(Py_False);
    case 'n':
        if (literal(s, "null", 4))
            return NULL;
        *unsure = 0;
        return Py_NewRef(Py_None);
    default:
        if (!(*s->p == '-' || is_digit[*s->p]) || scan_number(s, &integer, &number) || !integer)
            return NULL;
        *unsure = 0;
        return PyLong_FromLongLong(number);
    }
}

/* A list of plain strings (argv, envp) at s->p ('['), or NULL as read_scalar says. */
static PyObject *read_string_list(scanner *s, int *unsure)
{
    *unsure = 1;
    if (s->p >= s->end || *s->p != '[' || ++s->depth > MAX_NESTING)
        return NULL;
    s->p++;
    skip_ws(s);
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        *unsure = 0;
        return NULL;
    }
    int done = 0;
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        done = 1;
    }
    while (!done) {
        const unsigned char *str;
        Py_ssize_t len;
        if (plain_string(s, &str, &len) || next_member(s, ']', &done)) {
            Py_DECREF(list);
            return NULL;
        }
        PyObject *item = ascii_string(str, len);
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(list);
            *unsure = 0;
            return NULL;
        }
        Py_DECREF(item);
    }
    s->depth--;
    *unsure = 0;
    return list;
}

/* An object of scalars (container, executable, contextFlags ...) at s->p ('{') as a dict (the last
 * of a key wins, as in the full decoding), or NULL as read_scalar says. */
static PyObject *read_flat_object(scanner *s, int *unsure)
{
    *unsure = 1;
    if (s->p >= s->end || *s->p != '{' || ++s->depth > MAX_NESTING)
        return NULL;
    s->p++;
    skip_ws(s);
    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        *unsure = 0;
        return NULL;
    }
    int done = 0;
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        done = 1;
    }
    while (!done) { /* *unsure stays 1 on every way out but an exception */
        const unsigned char *key;
        Py_ssize_t len;
        int value_unsure = 0;
        if (plain_key(s, &key, &len))
            goto fail;
        PyObject *value = read_scalar(s, &value_unsure);
        if (value == NULL) {
            *unsure = value_unsure;
            goto fail;
        }
        PyObject *name = member_name(key, len);
        int r = name == NULL ? -1 : PyDict_SetItem(dict, name, value);
        Py_XDECREF(name);
        Py_DECREF(value);
        if (r < 0) {
            *unsure = 0;
            goto fail;
        }
        if (next_member(s, '}', &done))
            goto fail;
    }
    s->depth--;
    *unsure = 0;
    return dict;
fail:
    Py_DECREF(dict);
    return NULL;
}

/* The byte tables above, filled once (at module initialisation). */
static void init_json_tables(void)
{
    for (int c = 0; c < 256; c++) {
        string_stop[c] = c == '"' || c == '\\' || c < 0x20 || c >= 0x80;
        is_digit[c] = c >= '0' && c <= '9';
        hex_value[c] = (unsigned char)(c >= '0' && c <= '9'   ? c - '0' + 1
                                       : c >= 'a' && c <= 'f' ? c - 'a' + 11
                                       : c >= 'A' && c <= 'F' ? c - 'A' + 11
                                                              : 0);
    }
}

#endif
