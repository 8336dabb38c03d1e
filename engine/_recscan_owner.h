/*
 * The owner walk of engine/_recscan.c's scan_lines (included there once; not a public header):
 * what a worker of tracee-rules --workers reads of every record to find the shard that owns it,
 * without checking the record's syntax.
 *
 * Each worker reads the whole input and must tell, for every record, which worker owns it; the
 * owner (and only it) decodes, validates, counts and reports the record. Reading the owner with
 * the validating scan (scan_event) made each worker spend as much on the other workers' records as
 * on its own. walk_owner() reads the record 64 bytes at a time as bit masks of its quotes,
 * backslashes and structural characters (as simdjson's first stage finds them): the bytes inside
 * strings follow from the quotes no backslash escapes, the nesting from the brackets outside
 * strings, and the top-level keys end just before the colons at depth 1. Only the values an owner
 * is found by are read: eventName, hostProcessId, containerId, container.id, and where
 * processEntityId's value is.
 *
 * It is exact on valid JSON: there, a string ends at the first quote no backslash escapes, a
 * bracket outside strings opens or closes a nested value, and a colon outside strings follows a
 * key. It answers UNSURE wherever the full decoding might read another owner: a key read with an
 * escape in it (it may spell an owner key), an owner field twice or of another type, an escape or a
 * non-ASCII byte in a value read, anything after the object. On invalid JSON it may name any
 * owner: every worker walks the same bytes the same way, so a record still has exactly one owner,
 * whose full decoding rejects and reports it. Every read is bounds-checked (the record's last
 * block is copied before it is read).
 * Needs the envelope of _recscan.c and the scanner of _recscan_json.h.
 */
#ifndef PYTRACEE_RECSCAN_OWNER_H
#define PYTRACEE_RECSCAN_OWNER_H

/* The quotes, backslashes, opening brackets ('{', '['), closing ones and colons of the 64 bytes at b,
 * one bit a byte. */
static inline void block_masks(const unsigned char *b, uint64_t *quotes, uint64_t *backslashes, uint64_t *opens,
                               uint64_t *closes, uint64_t *colons)
{
    uint64_t q = 0, s = 0, o = 0, k = 0, c = 0;
#ifdef __SSE2__
    /* '{' and '}' are '[' | 0x20 and ']' | 0x20, and only they are '{' or '}' ORed with 0x20 */
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), fold = _mm_set1_epi8(0x20),
                  brace = _mm_set1_epi8('{'), closing = _mm_set1_epi8('}'), colon = _mm_set1_epi8(':');
    for (int i = 0; i < 4; i++) {
        __m128i chunk = _mm_loadu_si128((const __m128i *)(b + 16 * i));
        __m128i folded = _mm_or_si128(chunk, fold);
        int shift = 16 * i;
        q |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, quote)) << shift;
        s |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, backslash)) << shift;
        o |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(folded, brace)) << shift;
        k |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(folded, closing)) << shift;
        c |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, colon)) << shift;
    }
#else
    for (int i = 0; i < 64; i++) {
        uint64_t bit = (uint64_t)1 << i;
        q |= b[i] == '"' ? bit : 0;
        s |= b[i] == '\\' ? bit : 0;
        o |= (b[i] | 0x20) == '{' ? bit : 0;
        k |= (b[i] | 0x20) == '}' ? bit : 0;
        c |= b[i] == ':' ? bit : 0;
    }
#endif
    *quotes = q;
    *backslashes = s;
    *opens = o;
    *closes = k;
    *colons = c;
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define WALK_AVX2 1
/* block_masks() 32 bytes at a time, where the processor has AVX2 (the same masks). */
__attribute__((target("avx2"))) static inline void block_masks_avx2(const unsigned char *b, uint64_t *quotes,
                                                                    uint64_t *backslashes, uint64_t *opens,
                                                                    uint64_t *closes, uint64_t *colons)
{
    const __m256i quote = _mm256_set1_epi8('"'), backslash = _mm256_set1_epi8('\\'), fold = _mm256_set1_epi8(0x20),
                  brace = _mm256_set1_epi8('{'), closing = _mm256_set1_epi8('}'), colon = _mm256_set1_epi8(':');
    __m256i lo = _mm256_loadu_si256((const __m256i *)b), hi = _mm256_loadu_si256((const __m256i *)(b + 32));
    __m256i lo_folded = _mm256_or_si256(lo, fold), hi_folded = _mm256_or_si256(hi, fold);
#define BITS(x, y) ((uint64_t)(uint32_t)_mm256_movemask_epi8(x) | (uint64_t)(uint32_t)_mm256_movemask_epi8(y) << 32)
    *quotes = BITS(_mm256_cmpeq_epi8(lo, quote), _mm256_cmpeq_epi8(hi, quote));
    *backslashes = BITS(_mm256_cmpeq_epi8(lo, backslash), _mm256_cmpeq_epi8(hi, backslash));
    *opens = BITS(_mm256_cmpeq_epi8(lo_folded, brace), _mm256_cmpeq_epi8(hi_folded, brace));
    *closes = BITS(_mm256_cmpeq_epi8(lo_folded, closing), _mm256_cmpeq_epi8(hi_folded, closing));
    *colons = BITS(_mm256_cmpeq_epi8(lo, colon), _mm256_cmpeq_epi8(hi, colon));
#undef BITS
}
#endif

/* The bytes of a block that a backslash escapes, given its backslashes; *carry (in and out): the
 * block's first byte is escaped by the last one before it. Blocks without a backslash cost nothing. */
static inline uint64_t escaped_bytes(uint64_t backslashes, uint64_t *carry)
{
    uint64_t escaped = *carry;
    backslashes &= ~escaped; /* an escaped backslash escapes nothing */
    *carry = 0;
    while (backslashes) {
        int i = __builtin_ctzll(backslashes);
        if (i == 63) {
            *carry = 1;
            break;
        }
        escaped |= (uint64_t)1 << (i + 1);
        backslashes &= ~((uint64_t)3 << i); /* this one, and the byte it escapes */
    }
    return escaped;
}

/* Bit i set when an odd number of bits 0..i of x are: the bytes inside strings, given their quotes. */
static inline uint64_t prefix_xor(uint64_t x)
{
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
}

/* Bits a to b - 1 (0 <= a, b <= 64). */
static inline uint64_t bit_run(int a, int b)
{
    uint64_t below_b = b >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << b) - 1;
    uint64_t below_a = a >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << a) - 1;
    return below_b & ~below_a;
}

enum { K_EVENT_NAME, K_HOST_PROCESS_ID, K_CONTAINER_ID, K_CONTAINER, K_ENTITY, K_ID };

/* Whether the key that ends (its closing quote) at `quote` is `word` (n bytes, no quote in it), for a
 * key without a backslash: then it holds no quote (one would be escaped), so the key is `word` when
 * the n bytes before its closing quote are and a quote precedes them. */
static inline int key_is(const unsigned char *line, const unsigned char *quote, const char *word, Py_ssize_t n)
{
    return quote - line >= n + 1 && quote[-n - 1] == '"' && same_bytes(quote - n, word, (Py_ssize_t)n);
}

/* The 4 bytes at s as a number (folded by the compiler for a literal). */
static inline uint32_t four(const char *s)
{
    uint32_t v;
    memcpy(&v, s, 4);
    return v;
}

/* The top-level key that ends at `quote` (its closing quote): an owner field (in "container": its
 * id), -1 for another key, or -2 (not sure) for a key with a backslash in a record that has some. */
static inline int owner_key_before(const unsigned char *line, const unsigned char *quote, int in_container, int careful)
{
    if (careful) { /* the key's bytes back to its opening quote: no backslash in them */
        const unsigned char *c = quote - 1;
        while (c >= line && *c != '"' && *c != '\\')
            c--;
        if (c < line || *c == '\\' || (c > line && c[-1] == '\\'))
            return -2;
    }
    /* a key without a backslash: told apart by its last 4 bytes, then whole */
    if (in_container)
        return key_is(line, quote, "id", 2) ? K_ID : -1;
    if (quote - line < 5)
        return -1; /* (a key of at most 3 bytes) */
    uint32_t last;
    memcpy(&last, quote - 4, 4);
    if (last == four("Name"))
        return key_is(line, quote, "eventName", 9) ? K_EVENT_NAME : -1;
    if (last == four("iner"))
        return key_is(line, quote, "container", 9) ? K_CONTAINER : -1;
    if (last == four("erId"))
        return key_is(line, quote, "containerId", 11) ? K_CONTAINER_ID : -1;
    if (last == four("ssId"))
        return key_is(line, quote, "hostProcessId", 13) ? K_HOST_PROCESS_ID : -1;
    if (last == four("tyId"))
        return key_is(line, quote, "processEntityId", 15) ? K_ENTITY : -1;
    return -1;
}

/* The value of the owner field `k` at p (after its colon) into `e`: OK, or UNSURE. Strings are read
 * as plain_string() reads them: ASCII, no control character, no escape (as they hash). */
static int read_owner_field(int k, const unsigned char *p, const unsigned char *end, envelope *e)
{
    scanner s = {p, end, 0};
    int integer = 0;
    skip_ws(&s);
    switch (k) {
    case K_EVENT_NAME:
        return plain_string(&s, &e->name, &e->name_len) || e->name_len == 0 ? UNSURE : OK;
    case K_CONTAINER_ID:
        return plain_string(&s, &e->flat_container_id, &e->flat_container_id_len);
    case K_ID:
        return plain_string(&s, &e->container_id, &e->container_id_len);
    case K_HOST_PROCESS_ID:
        if (s.p >= end || !(*s.p == '-' || is_digit[*s.p]) || scan_number(&s, &integer, &e->host_pid) || !integer)
            return UNSURE;
        return OK;
    case K_ENTITY:
        e->entity_at = s.p;
        return OK;
    default: /* K_CONTAINER: an object, whose id the walk reads at depth 2 */
        return s.p < end && *s.p == '{' ? OK : UNSURE;
    }
}

/* The key before the colon at `colon` ends at the returned quote (NULL: no quote there). */
static inline const unsigned char *key_end(const unsigned char *line, const unsigned char *colon)
{
    const unsigned char *quote = colon - 1;
    while (quote > line && blank(*quote))
        quote--;
    return *quote == '"' ? quote : NULL;
}

/* Whether the '{' at `brace` (at depth 2) is the value of the top-level key "container". */
static inline int opens_container(const unsigned char *line, const unsigned char *brace, int careful)
{
    const unsigned char *colon = brace - 1;
    while (colon > line && blank(*colon))
        colon--;
    const unsigned char *quote = *colon == ':' ? key_end(line, colon) : NULL;
    return quote != NULL && owner_key_before(line, quote, 0, careful) == K_CONTAINER;
}

/* walk_owner(): the record [line, end) walked for its owner fields into `e` (clean, from
 * envelope_init): OK, or UNSURE (the caller scans it). *deepest: at least how deep it nests (its
 * brackets outside strings; more where a block nested throughout, such as the argument array's, was
 * counted, not followed). A block's brackets give the bytes at depth 1 (`top`) and those of the
 * "container" object at depth 2 (`its`); only the colons among them are keys to read. */
typedef void block_reader(const unsigned char *, uint64_t *, uint64_t *, uint64_t *, uint64_t *, uint64_t *);

static inline __attribute__((always_inline)) int walk_with(const unsigned char *line, const unsigned char *end,
                                                            envelope *e, int *deepest, block_reader *block_masks)
{
    uint64_t inside = 0, carry = 0; /* all ones while a string goes on past a block; an escape */
    int depth = 0, careful = 0, in_container = 0;
    unsigned seen = 0;
    const unsigned char *closed = NULL; /* the record's closing brace */
    int deep = 0; /* (*deepest at the end: a store through a pointer in the loop would reload the bytes) */
    if (line >= end || *line != '{')
        return UNSURE;
    for (Py_ssize_t at = 0; at < end - line; at += 64) { /* (an offset: a pointer never passes `end`) */
        const unsigned char *p = line + at, *block = p;
        unsigned char tail[64];
        if (end - p < 64) { /* the record's last bytes, padded with blanks (no structure) */
            memset(tail, ' ', sizeof(tail));
            memcpy(tail, p, (size_t)(end - p));
            block = tail;
        }
        uint64_t quotes, backslashes, opens, closes, colons;
        block_masks(block, &quotes, &backslashes, &opens, &closes, &colons);
        if (backslashes | carry) {
            careful = 1; /* keys are read back to their opening quote from here on */
            quotes &= ~escaped_bytes(backslashes, &carry);
        }
        uint64_t strings = prefix_xor(quotes) ^ inside;
        inside = (uint64_t)((int64_t)strings >> 63);
        opens &= ~strings;
        closes &= ~strings;
        colons &= ~strings;
        if (closed != NULL) {
            if (opens | closes | colons)
                return UNSURE; /* more after the object */
            continue;
        }
        int rises = __builtin_popcountll(opens), falls = __builtin_popcountll(closes);
        if (depth - falls >= 2 && !in_container) { /* nested throughout (an argument array): no key here */
            if (depth + rises > deep)
                deep = depth + rises;
            depth += rises - falls;
            continue;
        }
        uint64_t brackets = opens | closes, top = 0, its = 0;
        int top_from = depth == 1 ? 0 : 64, its_from = depth == 2 && in_container ? 0 : 64;
        for (; brackets; brackets &= brackets - 1) {
            int i = __builtin_ctzll(brackets);
            if (depth == 1)
                top |= bit_run(top_from, i);
            else if (depth == 2 && in_container)
                its |= bit_run(its_from, i);
            if (opens >> i & 1) {
                if (++depth > deep)
                    deep = depth;
                if (depth == 2 && opens_container(line, p + i, careful))
                    in_container = 1;
            } else {
                if (depth == 2)
                    in_container = 0;
                if (--depth == 0) {
                    closed = p + i;
                    if ((brackets & (brackets - 1)) || (colons >> i))
                        return UNSURE; /* more after the object */
                    break;
                }
            }
            top_from = depth == 1 ? i + 1 : 64;
            its_from = depth == 2 && in_container ? i + 1 : 64;
        }
        if (closed == NULL) {
            top |= depth == 1 ? bit_run(top_from, 64) : 0;
            its |= depth == 2 && in_container ? bit_run(its_from, 64) : 0;
        }
        for (uint64_t keys = colons & (top | its); keys; keys &= keys - 1) {
            int i = __builtin_ctzll(keys);
            const unsigned char *quote = p + i - 1;
            if (*quote == '"') { /* (compact: no blank before the colon) */
                if (!careful && quote[-1] != 'e' && quote[-1] != 'r' && quote[-1] != 'd')
                    continue; /* as no owner key ends: eventName, container, ...Id, id */
            } else if ((quote = key_end(line, p + i)) == NULL) {
                return UNSURE;
            }
            int k = owner_key_before(line, quote, (int)(its >> i & 1), careful);
            if (k == -2)
                return UNSURE;
            if (k >= 0) {
                if (seen & (1u << k))
                    return UNSURE; /* twice: the full decoding keeps the last; simpler to let it */
                seen |= 1u << k;
                if (read_owner_field(k, p + i + 1, end, e))
                    return UNSURE;
            }
        }
    }
    *deepest = deep;
    scanner rest = {closed == NULL ? end : closed + 1, end, 0};
    skip_ws(&rest);
    if (closed == NULL || inside || rest.p != end || e->name == NULL)
        return UNSURE;
    return OK;
}

static int walk_portable(const unsigned char *line, const unsigned char *end, envelope *e, int *deepest)
{
    return walk_with(line, end, e, deepest, block_masks);
}

#ifdef WALK_AVX2
__attribute__((target("avx2"))) static int walk_avx2(const unsigned char *line, const unsigned char *end, envelope *e,
                                                     int *deepest)
{
    return walk_with(line, end, e, deepest, block_masks_avx2);
}
#endif

/* walk_owner(line, end, e, deepest): the walk, 32 bytes at a time where the processor can
 * (init_walk() chooses; both read the same masks). */
static int (*walk_owner)(const unsigned char *, const unsigned char *, envelope *, int *) = walk_portable;

static void init_walk(void)
{
#ifdef WALK_AVX2
    if (__builtin_cpu_supports("avx2"))
        walk_owner = walk_avx2;
#endif
}

/* 1 when nobody decodes the record [line, end), whoever owns it: its name is in neither `decoded` (a
 * frozenset; None: every name) nor `observed`, so its owner is found by its line number (owner_of())
 * and it teaches no shard's tree anything (its owner counts it, after validating it if it is odd,
 * and delivers it to no one); 0: not sure (the caller walks it); -1 on an error. Sure when the
 * record holds no backslash and every "eventName" in it is followed by a colon and a string of
 * printable ASCII that neither set holds: without escapes, a quote inside a string would be
 * escaped, so each such bytes are a key "eventName", the top level's among them (if it has one: if
 * not, the record is bad, and its owner reports it, whichever owner it is). Cheaper than the walk,
 * and most events of a busy host are ones nobody wants (read, close); a record whose first name is
 * decoded pays only for finding it. */
static int nobody_decodes(const unsigned char *line, const unsigned char *end, PyObject *decoded, PyObject *observed)
{
    static const char key[] = "\"eventName\":\"";
    const Py_ssize_t key_len = (Py_ssize_t)sizeof(key) - 1;
    if (decoded == Py_None)
        return 0;
    int named = 0;
    for (const unsigned char *at = find_key(line, end, key, key_len - 2); at != NULL;
         at = find_key(at + key_len, end, key, key_len - 2)) {
        const unsigned char *name = at + key_len, *quote;
        if (end - at < key_len || at[key_len - 2] != ':' || at[key_len - 1] != '"' ||
            (quote = memchr(name, '"', (size_t)(end - name))) == NULL || quote == name)
            return 0; /* (blanks around the colon, another value: the walk reads it) */
        for (const unsigned char *c = name; c < quote; c++)
            if (*c < 0x20 || *c >= 0x7F)
                return 0;
        PyObject *event = shared_name(name, quote - name);
        if (event == NULL)
            return -1;
        int held = PySet_Contains(decoded, event);
        if (held == 0)
            held = PySet_Contains(observed, event);
        Py_DECREF(event);
        if (held != 0)
            return held < 0 ? -1 : 0;
        named = 1;
    }
    return named && memchr(line, '\\', (size_t)(end - line)) == NULL;
}

/* The shard of `count` that owns the record at line `number` walked into `e` (owner_of()), its
 * eventName left in *name (a new reference); -2 on an error. */
static Py_ssize_t placed_by_walk(const envelope *e, Py_ssize_t number, Py_ssize_t count, PyObject *decoded,
                                 int *by_key, PyObject **name)
{
    if ((*name = shared_name(e->name, e->name_len)) == NULL)
        return -2;
    Py_ssize_t owner = owner_of(e, *name, decoded, number, count, by_key);
    if (owner < 0) {
        Py_CLEAR(*name);
        return -2;
    }
    return owner;
}

/* The shard of `count` that owns the record [line, newline) at line `number`, as every worker finds
 * it: by its line when nobody decodes it (nobody_decodes(), `observed` as in scan_lines' plan), else
 * by its walk into `e` (clean, from envelope_init), which sets *deepest (walk_owner()) and *by_key
 * (owner_of()) and leaves its eventName in *name (a new reference; NULL when placed by line).
 * -1: not sure (the caller's to find); -2: an error. */
static Py_ssize_t place_record(const unsigned char *line, const unsigned char *newline, Py_ssize_t number,
                               Py_ssize_t count, PyObject *decoded, PyObject *observed, envelope *e, int *deepest,
                               int *by_key, PyObject **name)
{
    *name = NULL;
    int nobody = nobody_decodes(line, newline, decoded, observed);
    if (nobody != 0)
        return nobody < 0 ? -2 : number % count; /* owner_of()'s answer for a name `decoded` does not hold */
    if (walk_owner(line, newline, e, deepest) != OK)
        return -1;
    return placed_by_walk(e, number, count, decoded, by_key, name);
}

/* owners(data, lineno, count, decoded, limit) -> bytes: for each complete line of `data` (up to its
 * last newline; line lineno + 1 first), the shard of `count` (1 to 254) that scan_lines' workers
 * give it, found once by place_record() (`decoded` as in scan_lines' plan); 255 where the caller
 * must find it, as the
 * reader does (a line that does not start with '{', one longer than `limit`, a record the walk is
 * not sure of). `limit` 0: no limit (the reader's max_line_size 0, which it passes scan_lines as
 * the largest size). What a process handing the records out to the workers would compute;
 * benchmarks/splitter_walk.py times it. */
static PyObject *owners(PyObject *module, PyObject *const *argv, Py_ssize_t argc)
{
    (void)module;
    if (argc != 5 || !PyBytes_Check(argv[0]) || !(argv[3] == Py_None || PyFrozenSet_Check(argv[3]))) {
        PyErr_SetString(PyExc_TypeError,
                        "owners(data: bytes, lineno: int, count: int, decoded: frozenset | None, limit: int)");
        return NULL;
    }
    Py_ssize_t lineno, count, limit;
    if ((lineno = PyLong_AsSsize_t(argv[1])) == -1 && PyErr_Occurred())
        return NULL;
    if ((count = PyLong_AsSsize_t(argv[2])) == -1 && PyErr_Occurred())
        return NULL;
    if ((limit = PyLong_AsSsize_t(argv[4])) == -1 && PyErr_Occurred())
        return NULL;
    PyObject *decoded = argv[3];
    const unsigned char *base = (const unsigned char *)PyBytes_AS_STRING(argv[0]);
    const unsigned char *end = base + PyBytes_GET_SIZE(argv[0]);
    Py_ssize_t lines = 0;
    for (const unsigned char *p = base; p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
        lines++;
    if (lineno < 0 || lineno > PY_SSIZE_T_MAX - lines || count < 1 || count > 254 || limit < 0) {
        PyErr_SetString(PyExc_ValueError, "owners: lineno and limit must be 0 or more, count 1 to 254, and "
                                          "the last line's number a Py_ssize_t");
        return NULL;
    }
    PyObject *observed = PyFrozenSet_New(NULL); /* (no tree: only the decoded events count) */
    PyObject *out = observed == NULL ? NULL : PyBytes_FromStringAndSize(NULL, lines);
    if (out == NULL) {
        Py_XDECREF(observed);
        return NULL;
    }
    unsigned char *owner = (unsigned char *)PyBytes_AS_STRING(out);
    const unsigned char *line = base;
    for (Py_ssize_t i = 0; i < lines; i++) {
        const unsigned char *newline = memchr(line, '\n', (size_t)(end - line)); /* (counted above) */
        Py_ssize_t number = lineno + i + 1;
        owner[i] = 255;
        if (newline > line && line[0] == '{' && (limit == 0 || newline - line <= limit)) {
            envelope e;
            int deepest, by_key;
            PyObject *name;
            envelope_init(&e, NULL);
            Py_ssize_t found =
                place_record(line, newline, number, count, decoded, observed, &e, &deepest, &by_key, &name);
            Py_XDECREF(name);
            if (found == -2)
                goto fail;
            if (found >= 0)
                owner[i] = (unsigned char)found;
        }
        line = newline + 1;
    }
    Py_DECREF(observed);
    return out;

fail:
    Py_DECREF(observed);
    Py_DECREF(out);
    return NULL;
}

/* owner_fields(text) -> (eventName, hostProcessId, containerId, container id, processEntityId's
 * offset, nesting) | None: what walk_owner() reads of a record (None: UNSURE; a field absent: None,
 * hostProcessId 0), for the tests to hold it to the full decoding. */
static PyObject *owner_fields(PyObject *module, PyObject *text)
{
    (void)module;
    if (!PyBytes_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "owner_fields(text: bytes)");
        return NULL;
    }
    const unsigned char *line = (const unsigned char *)PyBytes_AS_STRING(text);
    envelope e;
    int deepest;
    envelope_init(&e, NULL);
    if (walk_owner(line, line + PyBytes_GET_SIZE(text), &e, &deepest))
        Py_RETURN_NONE;
    return Py_BuildValue("(s#Lz#z#Ni)", (const char *)e.name, e.name_len, (long long)e.host_pid,
                         (const char *)e.flat_container_id, e.flat_container_id_len, (const char *)e.container_id,
                         e.container_id_len,
                         e.entity_at == NULL ? Py_NewRef(Py_None) : PyLong_FromSsize_t(e.entity_at - line), deepest);
}

/* What scan_lines does with a record walked into `e` (named `name`, nesting `deepest` deep, its owner
 * found by its process when `by_key`): */
#define LEAVE 0 /* another shard's that this shard's tree needs nothing of: left out unscanned */
#define WHOLE 1 /* this shard's, of an event of `direct`: decoded whole by the caller */
#define SCAN 2  /* scanned, as without the walk (this shard's other records; another's shown to this
                 * shard's tree or of a process it may not know, which it learns from if valid) */
/* ... or -1 on an error; *pause set when a record decoded whole changes this shard's tree. */
static int after_walk(const envelope *e, const unsigned char *end, PyObject *name, int mine, int by_key, int deepest,
                      PyObject *direct, const shard_plan *plan, int *pause)
{
    if (!mine) {
        int shown = PySet_Contains(plan->observed, name);
        int knows = shown ? 0 : knows_process(e, end, by_key, plan);
        return shown < 0 || knows < 0 ? -1 : knows ? LEAVE : SCAN;
    }
    /* (the caller checks no nesting on this path: `deepest`, at least the record's, keeps a record
     * nested deeper than MAX_NESTING to the scan, which reports it) */
    int whole = deepest <= MAX_NESTING ? PySet_Contains(direct, name) : 0;
    if (whole <= 0)
        return whole < 0 ? -1 : SCAN;
    if (plan->processes != Py_None && (*pause = changes_tree(e, end, name, by_key, plan)) < 0)
        return -1;
    return WHOLE;
}

#endif
