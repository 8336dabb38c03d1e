/*
 * _fastjson: the hot path of `tracee -o json` in C (optional; collector/decode.py falls back
 * to its Python encoder without it, and gives the same bytes).
 *
 *   encode(buf, off, size, state) -> bytes | None
 *
 * turns one ring-buffer record (bpf/common.h's wire format) into its JSON line, exactly as
 * Decoder.encode writes it, for the events registered in the state (those whose arguments
 * are integers, booleans, times and strings), when every string is printable ASCII. Anything
 * else returns None and the Python encoder decides (unregistered event, a thread context not
 * yet cached, a non-ASCII or DEL byte, a record too short for its fixed arguments).
 *
 * state: a tuple (boot_ns, templates, syscalls, plans, dict_events, key_spans):
 *   templates   dict: header key (bytes) -> (context JSON up to "eventId", context JSON after
 *               "syscall" up to "args":, whether both are printable ASCII), filled by the
 *               Python encoder
 *   syscalls    tuple: syscall number -> its JSON string and a comma (b'"openat",')
 *   plans       dict: event id -> (json_ids, kinds, heads): kinds one character an argument in
 *               definition order (i, u, t, b, s), heads the JSON before each visible value
 *               (b'{"name":"dirfd","type":"int32","value":'), None for a hidden one
 *   dict_events frozenset of event ids left to the dict path
 *   key_spans   (a, b, c, d): the header bytes [a, b) + [c, d) are the template key
 *
 *   decode(buf, off, size, dstate) -> dict | None
 *
 * turns one record into its trace.Event dict, exactly as Decoder.decode builds it, for the
 * events whose arguments are integers, booleans, times and strings (any text: decoded as
 * UTF-8 with replacement, as the Python decoder does); None leaves the record to the Python
 * decoder (unregistered event, a thread context not yet cached, a record too short).
 *
 * dstate: a tuple (boot_ns, templates, syscalls, plans, key_spans):
 *   templates   dict: header key (bytes) -> the thread context's event dict (copied per event)
 *   syscalls    tuple: syscall number -> its name ("" for none)
 *   plans       dict: event id -> (id_str, name, kinds, names, types): names and types one
 *               str an argument, None for a hidden one
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define HDR_SIZE 184
#define MAX_ARGS 8
#define JSON_LINE_MAX (48 * 1024)

struct out {
    char *p;
    size_t n;
    size_t cap;
};

static int put(struct out *o, const char *s, size_t n)
{
    if (o->n + n > o->cap)
        return -1;
    memcpy(o->p + o->n, s, n);
    o->n += n;
    return 0;
}

static int put_bytes(struct out *o, PyObject *b)
{
    return put(o, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
}

static int put_u64(struct out *o, uint64_t v)
{
    char tmp[24];
    int i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return put(o, tmp + i, sizeof(tmp) - (size_t)i);
}

static int put_s64(struct out *o, int64_t v)
{
    if (v >= 0)
        return put_u64(o, (uint64_t)v);
    return put(o, "-", 1) || put_u64(o, (uint64_t)0 - (uint64_t)v);
}

/* A JSON string as orjson writes it; -2: a byte the Python path must handle (non-ASCII, DEL). */
static int put_str(struct out *o, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (o->n + 2 + 6 * n > o->cap)
        return -1;
    char *w = o->p + o->n;
    *w++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 0x7f)
            return -2;
        if (c >= 0x20 && c != '"' && c != '\\') {
            *w++ = (char)c;
            continue;
        }
        *w++ = '\\';
        switch (c) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '\b': *w++ = 'b'; break;
        case '\f': *w++ = 'f'; break;
        case '\n': *w++ = 'n'; break;
        case '\r': *w++ = 'r'; break;
        case '\t': *w++ = 't'; break;
        default:
            *w++ = 'u'; *w++ = '0'; *w++ = '0';
            *w++ = hex[c >> 4]; *w++ = hex[c & 15];
        }
    }
    *w++ = '"';
    o->n = (size_t)(w - o->p);
    return 0;
}

static uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/*
 * The arguments of a record after its header: the fixed ones first on the wire, then the
 * strings (each a u32 length, the bytes, padding to 4), each in definition order. A string
 * cut short by the record's end is taken as far as it goes; one missing is empty.
 * -1: too short for the fixed arguments (the Python path says so).
 */
static int read_args(const unsigned char *rec, Py_ssize_t size, const char *kinds, Py_ssize_t nargs,
                     uint64_t *fixed, const unsigned char **str, size_t *slen)
{
    Py_ssize_t pos = HDR_SIZE, end = size;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        if (kinds[i] == 's')
            continue;
        if (pos + 8 > end)
            return -1;
        fixed[i] = rd64(rec + pos);
        pos += 8;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        if (kinds[i] != 's')
            continue;
        if (pos + 4 <= end) {
            uint32_t n = rd32(rec + pos);
            Py_ssize_t s = pos + 4, e = s + (Py_ssize_t)n;
            if (e > end)
                e = end;
            str[i] = rec + s;
            slen[i] = (size_t)(e - s);
            pos = s + (((Py_ssize_t)n + 3) & ~(Py_ssize_t)3);
        } else {
            str[i] = rec;
            slen[i] = 0;
        }
    }
    return 0;
}

/* The record's template key (the header without its per-event fields); NULL with an error set. */
static PyObject *template_key(const unsigned char *rec, PyObject *spans)
{
    if (!PyTuple_Check(spans) || PyTuple_GET_SIZE(spans) != 4)
        return PyErr_Format(PyExc_TypeError, "state: key spans, a 4-tuple");
    Py_ssize_t a = PyLong_AsSsize_t(PyTuple_GET_ITEM(spans, 0)), b = PyLong_AsSsize_t(PyTuple_GET_ITEM(spans, 1));
    Py_ssize_t c = PyLong_AsSsize_t(PyTuple_GET_ITEM(spans, 2)), d = PyLong_AsSsize_t(PyTuple_GET_ITEM(spans, 3));
    if (a < 0 || b > HDR_SIZE || c < 0 || d > HDR_SIZE || b < a || d < c || (b - a) + (d - c) > HDR_SIZE)
        return PyErr_Format(PyExc_ValueError, "bad key spans");
    char keybuf[HDR_SIZE];
    memcpy(keybuf, rec + a, (size_t)(b - a));
    memcpy(keybuf + (b - a), rec + c, (size_t)(d - c));
    return PyBytes_FromStringAndSize(keybuf, (b - a) + (d - c));
}

/* What the encoder and the decoder read of a record's header, and its event's plan. */
struct head {
    uint64_t boot, ts;
    int64_t retval;
    int32_t sysno;
    PyObject *plan; /* borrowed from plans */
};

/*
 * 1: read; 0: a record for the Python path (shorter than a header, an event without a plan,
 * or one of dict_events, when given); -1: an error is set.
 */
static int read_head(const unsigned char *rec, Py_ssize_t size, PyObject *boot_o, PyObject *plans,
                     PyObject *dict_events, struct head *h)
{
    if (size < HDR_SIZE)
        return 0;
    h->boot = PyLong_AsUnsignedLongLong(boot_o);
    if (h->boot == (uint64_t)-1 && PyErr_Occurred())
        return -1;
    h->ts = rd64(rec);
    h->retval = (int64_t)rd64(rec + 40);
    h->sysno = (int32_t)rd32(rec + 52);
    PyObject *id_o = PyLong_FromUnsignedLong(rd32(rec + 48));
    if (!id_o)
        return -1;
    h->plan = PyDict_GetItemWithError(plans, id_o);
    int skip = h->plan && dict_events ? PySet_Contains(dict_events, id_o) : 0;
    Py_DECREF(id_o);
    if (skip < 0 || PyErr_Occurred())
        return -1;
    return h->plan && !skip;
}

static PyObject *encode_record(const unsigned char *rec, Py_ssize_t size, PyObject *state)
{
    if (!PyTuple_Check(state) || PyTuple_GET_SIZE(state) != 6)
        return PyErr_Format(PyExc_TypeError, "state: a 6-tuple");
    PyObject *boot_o = PyTuple_GET_ITEM(state, 0), *templates = PyTuple_GET_ITEM(state, 1);
    PyObject *syscalls = PyTuple_GET_ITEM(state, 2), *plans = PyTuple_GET_ITEM(state, 3);
    PyObject *dict_events = PyTuple_GET_ITEM(state, 4);
    struct head h;
    int found = read_head(rec, size, boot_o, plans, dict_events, &h);
    if (found <= 0) {
        if (found < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    uint64_t boot = h.boot, ts = h.ts;
    int64_t retval = h.retval;
    int32_t sysno = h.sysno;
    PyObject *plan = h.plan;
    PyObject *key = template_key(rec, PyTuple_GET_ITEM(state, 5));
    if (!key)
        return NULL;
    PyObject *parts = PyDict_GetItemWithError(templates, key);
    Py_DECREF(key);
    if (!parts) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;   /* a new thread context: the Python encoder caches it */
    }
    if (!PyTuple_Check(parts) || PyTuple_GET_SIZE(parts) != 3 || PyTuple_GET_ITEM(parts, 2) != Py_True)
        Py_RETURN_NONE;   /* its text is not all printable ASCII: the Python path escapes it */

    PyObject *json_ids = PyTuple_GET_ITEM(plan, 0), *kinds_o = PyTuple_GET_ITEM(plan, 1);
    PyObject *heads = PyTuple_GET_ITEM(plan, 2);
    Py_ssize_t nargs = PyBytes_GET_SIZE(kinds_o);
    const char *kinds = PyBytes_AS_STRING(kinds_o);
    if (nargs > MAX_ARGS)
        Py_RETURN_NONE;

    /* the fixed arguments first on the wire, then the strings, each in definition order */
    uint64_t fixed[MAX_ARGS];
    const unsigned char *str[MAX_ARGS];
    size_t slen[MAX_ARGS];
    if (read_args(rec, size, kinds, nargs, fixed, str, slen) < 0)
        Py_RETURN_NONE;   /* too short: the Python path says so */

    char stack[JSON_LINE_MAX];
    struct out o = {stack, 0, sizeof(stack)};
    PyObject *sys = (sysno >= 0 && sysno < PyTuple_GET_SIZE(syscalls)) ? PyTuple_GET_ITEM(syscalls, sysno) : NULL;
    if (put(&o, "{\"timestamp\":", 13) || put_u64(&o, ts + boot) || put_bytes(&o, PyTuple_GET_ITEM(parts, 0))
        || put_bytes(&o, json_ids) || put(&o, "\"returnValue\":", 14) || put_s64(&o, retval)
        || put(&o, ",\"syscall\":", 11) || (sys ? put_bytes(&o, sys) : put(&o, "\"\",", 3))
        || put_bytes(&o, PyTuple_GET_ITEM(parts, 1)) || put(&o, "[", 1))
        Py_RETURN_NONE;
    int first = 1;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        PyObject *head = PyTuple_GET_ITEM(heads, i);
        if (head == Py_None)
            continue;
        if ((!first && put(&o, ",", 1)) || put_bytes(&o, head))
            Py_RETURN_NONE;
        first = 0;
        int r = 0;
        switch (kinds[i]) {
        case 'i': r = put_s64(&o, (int64_t)fixed[i]); break;
        case 'u': r = put_u64(&o, fixed[i]); break;
        case 't': r = put_u64(&o, fixed[i] ? fixed[i] + boot : 0); break;
        case 'b': r = fixed[i] ? put(&o, "true", 4) : put(&o, "false", 5); break;
        case 's': r = put_str(&o, str[i], slen[i]); break;
        default: r = -1;
        }
        if (r || put(&o, "}", 1))
            Py_RETURN_NONE;
    }
    if (put(&o, "]}\n", 3))
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize(o.p, (Py_ssize_t)o.n);
}

typedef PyObject *(*convert_fn)(const unsigned char *rec, Py_ssize_t size, PyObject *state);

/* convert(buf[off:off+size], state) for encode() and decode(): the record checked to lie in the buffer. */
static PyObject *one_record(PyObject *const *args, Py_ssize_t nargs, convert_fn convert, const char *usage)
{
    if (nargs != 4)
        return PyErr_Format(PyExc_TypeError, "%s", usage);
    Py_ssize_t off = PyLong_AsSsize_t(args[1]), size = PyLong_AsSsize_t(args[2]);
    if ((off == -1 || size == -1) && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result;
    if (off < 0 || size < 0 || off + size > view.len)
        result = PyErr_Format(PyExc_ValueError, "record [%zd, %zd) outside the buffer", off, off + size);
    else
        result = convert((const unsigned char *)view.buf + off, size, args[3]);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return one_record(args, nargs, encode_record, "encode(buf, off, size, state)");
}

static PyObject *k_timestamp, *k_eventId, *k_eventName, *k_argsNum, *k_returnValue, *k_syscall, *k_args;
static PyObject *k_name, *k_type, *k_value;

static PyObject *decode_record(const unsigned char *rec, Py_ssize_t size, PyObject *dstate)
{
    if (!PyTuple_Check(dstate) || PyTuple_GET_SIZE(dstate) != 5)
        return PyErr_Format(PyExc_TypeError, "dstate: a 5-tuple");
    PyObject *boot_o = PyTuple_GET_ITEM(dstate, 0), *templates = PyTuple_GET_ITEM(dstate, 1);
    PyObject *syscalls = PyTuple_GET_ITEM(dstate, 2), *plans = PyTuple_GET_ITEM(dstate, 3);
    struct head h;
    int found = read_head(rec, size, boot_o, plans, NULL, &h);
    if (found <= 0) {
        if (found < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    uint64_t boot = h.boot, ts = h.ts;
    int64_t retval = h.retval;
    int32_t sysno = h.sysno;
    PyObject *plan = h.plan;
    if (!PyTuple_Check(plan) || PyTuple_GET_SIZE(plan) != 5)
        return PyErr_Format(PyExc_TypeError, "dstate: a plan is a 5-tuple");
    PyObject *key = template_key(rec, PyTuple_GET_ITEM(dstate, 4));
    if (!key)
        return NULL;
    PyObject *template = PyDict_GetItemWithError(templates, key);
    Py_DECREF(key);
    if (!template) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;   /* a new thread context: the Python decoder builds and caches it */
    }
    PyObject *kinds_o = PyTuple_GET_ITEM(plan, 2), *names = PyTuple_GET_ITEM(plan, 3);
    PyObject *types = PyTuple_GET_ITEM(plan, 4);
    Py_ssize_t nargs = PyBytes_GET_SIZE(kinds_o);
    const char *kinds = PyBytes_AS_STRING(kinds_o);
    if (nargs > MAX_ARGS || PyTuple_GET_SIZE(names) != nargs || PyTuple_GET_SIZE(types) != nargs)
        Py_RETURN_NONE;

    /* the fixed arguments first on the wire, then the strings, each in definition order */
    uint64_t fixed[MAX_ARGS];
    const unsigned char *str[MAX_ARGS];
    size_t slen[MAX_ARGS];
    Py_ssize_t shown = 0;
    for (Py_ssize_t i = 0; i < nargs; i++)
        shown += PyTuple_GET_ITEM(names, i) != Py_None;
    if (read_args(rec, size, kinds, nargs, fixed, str, slen) < 0)
        Py_RETURN_NONE;   /* too short: the Python decoder says so */
    PyObject *args = PyList_New(shown);
    if (!args)
        return NULL;
    Py_ssize_t j = 0;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (name == Py_None)
            continue;
        PyObject *value = NULL;
        switch (kinds[i]) {
        case 'i': value = PyLong_FromLongLong((long long)(int64_t)fixed[i]); break;
        case 'u': value = PyLong_FromUnsignedLongLong(fixed[i]); break;
        case 't': value = PyLong_FromUnsignedLongLong(fixed[i] ? fixed[i] + boot : 0); break;
        case 'b': value = PyBool_FromLong(fixed[i] != 0); break;
        case 's': value = PyUnicode_DecodeUTF8((const char *)str[i], (Py_ssize_t)slen[i], "replace"); break;
        default: PyErr_SetString(PyExc_ValueError, "unknown argument kind");
        }
        PyObject *arg = value ? PyDict_New() : NULL;
        if (!arg || PyDict_SetItem(arg, k_name, name) || PyDict_SetItem(arg, k_type, PyTuple_GET_ITEM(types, i))
            || PyDict_SetItem(arg, k_value, value)) {
            Py_XDECREF(value);
            Py_XDECREF(arg);
            Py_DECREF(args);
            return NULL;
        }
        Py_DECREF(value);
        PyList_SET_ITEM(args, j++, arg);
    }
    PyObject *event = PyDict_Copy(template);
    if (!event) {
        Py_DECREF(args);
        return NULL;
    }
    PyObject *sys = (sysno >= 0 && sysno < PyTuple_GET_SIZE(syscalls)) ? PyTuple_GET_ITEM(syscalls, sysno) : NULL;
    PyObject *t_o = PyLong_FromUnsignedLongLong(ts + boot), *n_o = PyLong_FromSsize_t(shown);
    PyObject *r_o = PyLong_FromLongLong((long long)retval), *empty = sys ? NULL : PyUnicode_FromString("");
    int bad = !t_o || !n_o || !r_o || (!sys && !empty)
              || PyDict_SetItem(event, k_timestamp, t_o) || PyDict_SetItem(event, k_eventId, PyTuple_GET_ITEM(plan, 0))
              || PyDict_SetItem(event, k_eventName, PyTuple_GET_ITEM(plan, 1)) || PyDict_SetItem(event, k_argsNum, n_o)
              || PyDict_SetItem(event, k_returnValue, r_o) || PyDict_SetItem(event, k_syscall, sys ? sys : empty)
              || PyDict_SetItem(event, k_args, args);
    Py_XDECREF(t_o);
    Py_XDECREF(n_o);
    Py_XDECREF(r_o);
    Py_XDECREF(empty);
    Py_DECREF(args);
    if (bad) {
        Py_DECREF(event);
        return NULL;
    }
    return event;
}

static PyObject *decode(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return one_record(args, nargs, decode_record, "decode(buf, off, size, dstate)");
}

/*
 * drain_ring(data, consumer, page, mask, limit, state, fallback, out) -> records skipped
 *
 * collector/ringbuf.py's RingBufferReader.drain_into in C: appends to the list out, for each
 * ready record of a BPF ring buffer, its encode() line, or fallback(data, offset, length)
 * where that gives None; a record on which fallback raises ValueError or struct.error is
 * skipped and counted. data: the producer page and the data area mapped twice (read-only);
 * consumer: the consumer page (read-write). Stops after limit records (0: none), at a
 * record still being written, or when it has caught up; publishes the consumer position
 * every 1 MiB and at the end.
 */
#define RB_BUSY (1u << 31)
#define RB_DISCARD (1u << 30)
#define RB_HDR 8
#define RB_PUBLISH_EVERY (1u << 20)

static PyObject *drain(PyObject *const *args, Py_ssize_t nargs, convert_fn convert)
{
    if (nargs != 8)
        return PyErr_Format(PyExc_TypeError, "drain_ring(data, consumer, page, mask, limit, state, fallback, out)");
    Py_ssize_t page = PyLong_AsSsize_t(args[2]), limit = PyLong_AsSsize_t(args[4]);
    unsigned long long mask = PyLong_AsUnsignedLongLong(args[3]);
    if (PyErr_Occurred())
        return NULL;
    PyObject *state = args[5], *fallback = args[6], *out = args[7];
    if (!PyList_Check(out))
        return PyErr_Format(PyExc_TypeError, "out: a list");
    PyObject *struct_error = NULL;
    PyObject *struct_mod = PyImport_ImportModule("struct");
    if (struct_mod) {
        struct_error = PyObject_GetAttrString(struct_mod, "error");
        Py_DECREF(struct_mod);
    }
    if (!struct_error)
        return NULL;
    Py_buffer data, cons_view;
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        Py_DECREF(struct_error);
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &cons_view, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&data);
        Py_DECREF(struct_error);
        return NULL;
    }
    const unsigned char *base = data.buf;
    uint64_t *cons_pos = (uint64_t *)cons_view.buf;
    const uint64_t *prod_pos = (const uint64_t *)base;
    long skipped = 0;
    Py_ssize_t count = 0;
    int failed = 0;
    uint64_t cons = __atomic_load_n(cons_pos, __ATOMIC_ACQUIRE), published = cons;
    if (data.len < page + 2 * (Py_ssize_t)(mask + 1) || cons_view.len < 8) {
        PyErr_SetString(PyExc_ValueError, "ring buffer mappings smaller than the ring");
        failed = 1;
        goto done;
    }
    for (;;) {
        uint64_t prod = __atomic_load_n(prod_pos, __ATOMIC_ACQUIRE);
        if (cons >= prod)
            break;
        while (cons < prod) {
            Py_ssize_t hdr = page + (Py_ssize_t)(cons & mask);
            uint32_t len = __atomic_load_n((const uint32_t *)(base + hdr), __ATOMIC_ACQUIRE);
            if (len & RB_BUSY)
                goto done;
            uint32_t n = len & ~(RB_BUSY | RB_DISCARD);
            Py_ssize_t rec = hdr + RB_HDR;
            cons += (n + RB_HDR + 7) & ~7ull;
            if (!(len & RB_DISCARD)) {
                count++;
                PyObject *item = NULL;
                if (rec + (Py_ssize_t)n <= data.len)
                    item = convert(base + rec, n, state);
                if (item == Py_None) {
                    Py_DECREF(item);
                    item = NULL;
                }
                if (!item && !PyErr_Occurred())
                    item = PyObject_CallFunction(fallback, "Onn", args[0], rec, (Py_ssize_t)n);
                if (!item) {
                    if (PyErr_ExceptionMatches(PyExc_ValueError) || PyErr_ExceptionMatches(struct_error)) {
                        PyErr_Clear();
                        skipped++;
                    } else {
                        failed = 1;
                        goto done;
                    }
                } else {
                    int r = PyList_Append(out, item);
                    Py_DECREF(item);
                    if (r < 0) {
                        failed = 1;
                        goto done;
                    }
                }
                if (limit > 0 && count >= limit)
                    goto done;
            }
            if (cons - published >= RB_PUBLISH_EVERY) {
                __atomic_store_n(cons_pos, cons, __ATOMIC_RELEASE);
                published = cons;
            }
        }
    }
done:
    if (cons != published)
        __atomic_store_n(cons_pos, cons, __ATOMIC_RELEASE);
    PyBuffer_Release(&cons_view);
    PyBuffer_Release(&data);
    Py_DECREF(struct_error);
    if (failed)
        return NULL;
    return PyLong_FromLong(skipped);
}

static PyObject *drain_ring(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return drain(args, nargs, encode_record);
}

static PyObject *drain_ring_decode(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return drain(args, nargs, decode_record);
}

static PyMethodDef methods[] = {
    {"encode", (PyCFunction)(void (*)(void))encode, METH_FASTCALL,
     "encode(buf, off, size, state) -> the record's JSON line, or None for the Python path"},
    {"drain_ring", (PyCFunction)(void (*)(void))drain_ring, METH_FASTCALL,
     "drain_ring(data, consumer, page, mask, limit, state, fallback, out) -> records skipped"},
    {"decode", (PyCFunction)(void (*)(void))decode, METH_FASTCALL,
     "decode(buf, off, size, dstate) -> the record's event dict, or None for the Python path"},
    {"drain_ring_decode", (PyCFunction)(void (*)(void))drain_ring_decode, METH_FASTCALL,
     "drain_ring_decode(data, consumer, page, mask, limit, dstate, fallback, out) -> records skipped"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastjson", NULL, -1, methods};

PyMODINIT_FUNC PyInit__fastjson(void)
{
    PyObject **keys[] = {&k_timestamp, &k_eventId, &k_eventName, &k_argsNum, &k_returnValue,
                         &k_syscall, &k_args, &k_name, &k_type, &k_value};
    const char *texts[] = {"timestamp", "eventId", "eventName", "argsNum", "returnValue",
                           "syscall", "args", "name", "type", "value"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!(*keys[i] = PyUnicode_InternFromString(texts[i])))
            return NULL;
    return PyModule_Create(&module);
}
