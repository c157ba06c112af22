/* tape.c - a validating JSON parser that records a document as a flat array
 * of nodes over the caller's bytes ("tape"), copying no string and usually
 * allocating nothing: what the gateway needs to check a webhook body and
 * find its ids, in one pass. It accepts exactly the documents jansson's
 * json_loadb(JSON_DECODE_ANY) accepts (RFC 8259 plus jansson's own refusals:
 * \u0000, unpaired surrogates, invalid or overlong UTF-8, integers outside
 * int64, reals that overflow a double), so the processor, which reads the
 * same bodies with jansson, never meets one the gateway let through. One
 * difference, on the strict side: jansson's reader skips a single NUL byte
 * right after a number, true, false or null (`{"a":1\0}` parses); the tape
 * refuses any NUL byte outside a string, as JSON does. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define TAPE_STACK CHANNELS_MAX_DEPTH /* open containers at most */

void channels__tape_init(struct channels__tape *t)
{
    t->body = NULL;
    t->len = 0;
    t->nodes = t->inline_nodes;
    t->n = 0;
    t->cap = CHANNELS__TAPE_INLINE;
}

void channels__tape_cleanup(struct channels__tape *t)
{
    if (t->nodes != t->inline_nodes)
        free(t->nodes);
    channels__tape_init(t);
}

/* Appends a node; returns its index, or -1 when out of memory. */
static int64_t tape_push(struct channels__tape *t, enum channels__tape_type type, size_t start)
{
    if (t->n == t->cap) {
        size_t cap = (size_t)t->cap * 2;
        struct channels__tape_node *p;
        if (t->nodes == t->inline_nodes) {
            p = malloc(cap * sizeof *p);
            if (p)
                memcpy(p, t->nodes, t->n * sizeof *p);
        } else {
            p = realloc(t->nodes, cap * sizeof *p);
        }
        if (!p)
            return -1;
        t->nodes = p;
        t->cap = (uint32_t)cap;
    }
    t->nodes[t->n] = (struct channels__tape_node){
        .start = (uint32_t)start, .next = t->n + 1, .type = (uint8_t)type};
    return t->n++;
}

/* ---------------------------------------------------------------- scanning */

struct scan {
    const unsigned char *p;
    size_t len, pos;
    const char *what; /* why the document is refused */
};

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(struct scan *s)
{
    while (s->pos < s->len && is_ws(s->p[s->pos]))
        s->pos++;
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int d = sb_hex_value((char)p[i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The string starting at the quote s->pos; leaves s->pos past its end. */
static bool scan_string(struct scan *s, bool *escaped)
{
    size_t i = s->pos + 1;
    *escaped = false;
    while (i < s->len) {
        unsigned char c = s->p[i];
        if (c == '"') {
            s->pos = i + 1;
            return true;
        }
        if (c < 0x20) {
            s->what = "control character in a string";
            return false;
        }
        if (c < 0x80 && c != '\\') {
            i++;
            continue;
        }
        if (c >= 0x80) {
            uint32_t cp;
            size_t n = domain_utf8_seq((const char *)s->p + i, s->len - i, &cp);
            if (n == 0) {
                s->what = "invalid UTF-8 in a string";
                return false;
            }
            i += n;
            continue;
        }
        *escaped = true;
        if (i + 1 >= s->len)
            break;
        c = s->p[i + 1];
        if (c && strchr("\"\\/bfnrt", c)) {
            i += 2;
            continue;
        }
        int v = c == 'u' && i + 6 <= s->len ? hex4(s->p + i + 2) : -1;
        if (v < 0) {
            s->what = "invalid escape in a string";
            return false;
        }
        i += 6;
        if (v >= 0xD800 && v <= 0xDBFF) {
            int lo =
                i + 6 <= s->len && s->p[i] == '\\' && s->p[i + 1] == 'u' ? hex4(s->p + i + 2) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF) {
                s->what = "unpaired surrogate in a string";
                return false;
            }
            i += 6;
        } else if ((v >= 0xDC00 && v <= 0xDFFF) || v == 0) {
            s->what = v ? "unpaired surrogate in a string" : "\\u0000 in a string";
            return false;
        }
    }
    s->what = "unterminated string";
    return false;
}

static size_t digits(const struct scan *s, size_t i)
{
    while (i < s->len && s->p[i] >= '0' && s->p[i] <= '9')
        i++;
    return i;
}

/* An integer token's digits (sign apart) fit in int64, as jansson requires. */
static bool fits_int64(const unsigned char *d, size_t n, bool negative)
{
    static const char max[] = "9223372036854775807", min[] = "9223372036854775808";
    if (n != sizeof max - 1)
        return n < sizeof max - 1;
    return memcmp(d, negative ? min : max, n) <= 0;
}

/* Whether a real token fits a double (jansson refuses those that overflow):
 * 1 yes, 0 no, -1 out of memory. Converted as jansson does, with the
 * locale's decimal point in place of '.'. */
static int real_in_range(const unsigned char *p, size_t n)
{
    char small[64];
    char *copy = n < sizeof small ? small : malloc(n + 1);
    if (!copy)
        return -1;
    memcpy(copy, p, n);
    copy[n] = '\0';
    const char *point = localeconv()->decimal_point;
    char *dot = point[0] != '.' ? strchr(copy, '.') : NULL;
    if (dot)
        *dot = point[0];
    int ok = !isinf(strtod(copy, NULL));
    if (copy != small)
        free(copy);
    return ok;
}

/* The number at s->pos: JSON grammar, then range. *real tells which kind. */
static bool scan_number(struct scan *s, bool *real)
{
    size_t i = s->pos, start = s->pos;
    bool negative = s->p[i] == '-';
    if (negative)
        i++;
    size_t int_start = i;
    if (i < s->len && s->p[i] == '0') {
        i++;
    } else if (i < s->len && s->p[i] >= '1' && s->p[i] <= '9') {
        i = digits(s, i);
    } else {
        s->what = "invalid number";
        return false;
    }
    if (i < s->len && s->p[i] >= '0' && s->p[i] <= '9') {
        s->what = "leading zero in a number";
        return false;
    }
    size_t int_end = i;
    *real = false;
    if (i < s->len && s->p[i] == '.') {
        *real = true;
        size_t d = digits(s, i + 1);
        if (d == i + 1) {
            s->what = "invalid number";
            return false;
        }
        i = d;
    }
    if (i < s->len && (s->p[i] == 'e' || s->p[i] == 'E')) {
        *real = true;
        i++;
        if (i < s->len && (s->p[i] == '+' || s->p[i] == '-'))
            i++;
        size_t d = digits(s, i);
        if (d == i) {
            s->what = "invalid number";
            return false;
        }
        i = d;
    }
    if (!*real && !fits_int64(s->p + int_start, int_end - int_start, negative)) {
        s->what = "integer out of range";
        return false;
    }
    int in_range = *real ? real_in_range(s->p + start, i - start) : 1;
    if (in_range <= 0) {
        s->what = in_range < 0 ? NULL : "real number overflow"; /* NULL: out of memory */
        return false;
    }
    s->pos = i;
    return true;
}

static bool scan_literal(struct scan *s, const char *word, size_t n)
{
    if (s->len - s->pos < n || memcmp(s->p + s->pos, word, n) != 0) {
        s->what = "invalid token";
        return false;
    }
    s->pos += n;
    return true;
}

/* ---------------------------------------------------------------- parsing */

/* Pushes the scalar or opens the container at s->pos. Returns the node's
 * index, or -1 (s->what set, or NULL for out of memory). */
static int64_t parse_value(struct channels__tape *t, struct scan *s)
{
    if (s->pos >= s->len) {
        s->what = "premature end of input";
        return -1;
    }
    size_t start = s->pos;
    unsigned char c = s->p[start];
    enum channels__tape_type type;
    bool escaped = false, real = false, ok = true;
    switch (c) {
    case '{':
        type = CHANNELS__TAPE_OBJECT;
        s->pos++;
        break;
    case '[':
        type = CHANNELS__TAPE_ARRAY;
        s->pos++;
        break;
    case '"':
        type = CHANNELS__TAPE_STRING;
        ok = scan_string(s, &escaped);
        break;
    case 't':
        type = CHANNELS__TAPE_TRUE;
        ok = scan_literal(s, "true", 4);
        break;
    case 'f':
        type = CHANNELS__TAPE_FALSE;
        ok = scan_literal(s, "false", 5);
        break;
    case 'n':
        type = CHANNELS__TAPE_NULL;
        ok = scan_literal(s, "null", 4);
        break;
    default:
        if (c != '-' && (c < '0' || c > '9')) {
            s->what = "invalid token";
            return -1;
        }
        ok = scan_number(s, &real);
        type = real ? CHANNELS__TAPE_REAL : CHANNELS__TAPE_INTEGER;
        break;
    }
    if (!ok)
        return -1;
    int64_t at = tape_push(t, type, start);
    if (at < 0) {
        s->what = NULL;
        return -1;
    }
    t->nodes[at].escaped = escaped;
    t->nodes[at].len = (uint32_t)(s->pos - start);
    return at;
}

/* An object member's key and colon; s->pos at the key's quote. */
static int64_t parse_key(struct channels__tape *t, struct scan *s)
{
    if (s->pos >= s->len || s->p[s->pos] != '"') {
        s->what = "expected a string key";
        return -1;
    }
    int64_t k = parse_value(t, s);
    if (k < 0)
        return -1;
    skip_ws(s);
    if (s->pos >= s->len || s->p[s->pos] != ':') {
        s->what = "expected ':' after a key";
        return -1;
    }
    s->pos++;
    skip_ws(s);
    return k;
}

/* The parser's open containers (node indices), innermost last. */
struct nesting {
    uint32_t at[TAPE_STACK];
    size_t depth;
};

/* Ends container node i at s->pos (just past its closing bracket). */
static void close_container(struct channels__tape *t, const struct scan *s, uint32_t i)
{
    t->nodes[i].len = (uint32_t)(s->pos - t->nodes[i].start);
    t->nodes[i].next = t->n;
}

/* After container node v opened: 1 when another value is due (its key read),
 * 0 when it was empty and is closed, -1 on failure. */
static int open_container(struct channels__tape *t, struct scan *s, struct nesting *st, uint32_t v)
{
    bool object = t->nodes[v].type == CHANNELS__TAPE_OBJECT;
    if (st->depth == TAPE_STACK) {
        s->what = "nested too deeply";
        return -1;
    }
    st->at[st->depth++] = v;
    skip_ws(s);
    if (s->pos < s->len && s->p[s->pos] == (object ? '}' : ']')) {
        s->pos++;
        st->depth--;
        close_container(t, s, v);
        return 0;
    }
    return object && parse_key(t, s) < 0 ? -1 : 1;
}

/* After a value: closes the containers that end here. 1 when another value
 * is due (its key read), 0 at the end of the document, -1 on failure. */
static int after_value(struct channels__tape *t, struct scan *s, struct nesting *st)
{
    for (;;) {
        skip_ws(s);
        if (st->depth == 0) {
            if (s->pos == s->len)
                return 0;
            s->what = "end of input expected";
            return -1;
        }
        uint32_t top = st->at[st->depth - 1];
        bool object = t->nodes[top].type == CHANNELS__TAPE_OBJECT;
        unsigned char c = s->pos < s->len ? s->p[s->pos] : 0;
        if (c == ',') {
            s->pos++;
            skip_ws(s);
            return object && parse_key(t, s) < 0 ? -1 : 1;
        }
        if (c != (object ? '}' : ']')) {
            s->what = s->pos < s->len ? (object ? "expected ',' or '}'" : "expected ',' or ']'")
                                      : "premature end of input";
            return -1;
        }
        s->pos++;
        st->depth--;
        close_container(t, s, top);
    }
}

int channels__tape_parse(struct channels__tape *t, const char *body, size_t len,
                         struct channels__err *err)
{
    t->body = body;
    t->len = len;
    t->n = 0;
    if (len >= CHANNELS__TAPE_MAX_LEN)
        return channels__fail_code(err, SB_ELIMIT, "internal", "body too large for the tape");
    struct scan s = {(const unsigned char *)body, len, 0, NULL};
    struct nesting st = {.depth = 0};
    skip_ws(&s);
    int more = 1;
    while (more > 0) {
        /* A value is due at s.pos (its key, in an object, already read). */
        int64_t v = parse_value(t, &s);
        if (v < 0)
            break;
        if (st.depth > 0)
            t->nodes[st.at[st.depth - 1]].count++;
        uint8_t type = t->nodes[v].type;
        more = type == CHANNELS__TAPE_OBJECT || type == CHANNELS__TAPE_ARRAY
                   ? open_container(t, &s, &st, (uint32_t)v)
                   : 0;
        if (more == 0)
            more = after_value(t, &s, &st);
        if (more == 0)
            return 0;
    }
    if (!s.what)
        return channels__fail_code(err, -ENOMEM, "internal", "out of memory parsing JSON");
    /* An empty or too deep body is refused for that first, whatever else is
     * wrong with it, as channels__json_load() does: the raw depth scan runs
     * here, on the way out, rather than over every body that parses. (A body
     * the tape refuses for nesting always fails the scan too.) */
    int pre = channels__json_precheck(body, len, err);
    if (pre != 0)
        return pre;
    return channels__fail(err, "invalid_json", "invalid JSON at byte %zu: %s", s.pos, s.what);
}

/* ---------------------------------------------------------------- reading */

/* Decodes string node i into out (cap bytes, NUL included). Returns the
 * decoded length, or -1 when it is not a string or does not fit. */
static int64_t decode(const struct channels__tape *t, uint32_t i, char *out, size_t cap)
{
    const struct channels__tape_node *nd = &t->nodes[i];
    if (nd->type != CHANNELS__TAPE_STRING)
        return -1;
    const unsigned char *p = (const unsigned char *)t->body + nd->start + 1;
    size_t n = nd->len - 2, o = 0;
    for (size_t k = 0; k < n;) {
        uint32_t cp = p[k];
        size_t step = 1;
        if (cp == '\\') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *e = strchr(from, p[k + 1]);
            step = 2;
            if (p[k + 1] == 'u') {
                cp = (uint32_t)hex4(p + k + 2);
                step = 6;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)hex4(p + k + 8) - 0xDC00);
                    step = 12;
                }
            } else {
                cp = (unsigned char)to[e - from];
            }
        } else if (cp >= 0x80) { /* valid UTF-8 already: copy the byte as is */
            if (o + 1 >= cap)
                return -1;
            out[o++] = (char)cp;
            k++;
            continue;
        }
        char enc[4];
        size_t m = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        if (m == 1) {
            enc[0] = (char)cp;
        } else {
            for (size_t b = m - 1; b > 0; b--, cp >>= 6)
                enc[b] = (char)(0x80 | (cp & 0x3F));
            enc[0] = (char)((m == 2 ? 0xC0 : m == 3 ? 0xE0 : 0xF0) | cp);
        }
        if (o + m >= cap)
            return -1;
        memcpy(out + o, enc, m);
        o += m;
        k += step;
    }
    out[o] = '\0';
    return (int64_t)o;
}

const char *channels__tape_str(const struct channels__tape *t, uint32_t i,
                               struct channels__tape_str *buf)
{
    buf->heap = NULL;
    buf->oom = false;
    if (i == CHANNELS__TAPE_NONE || t->nodes[i].type != CHANNELS__TAPE_STRING)
        return NULL;
    size_t raw = t->nodes[i].len - 2; /* decoded bytes never exceed the raw ones */
    char *out = buf->inline_buf;
    if (raw >= sizeof buf->inline_buf && !(out = buf->heap = malloc(raw + 1))) {
        buf->oom = true;
        return NULL;
    }
    buf->len = (size_t)decode(t, i, out, raw + 1);
    return out;
}

void channels__tape_str_free(struct channels__tape_str *buf)
{
    free(buf->heap);
    buf->heap = NULL;
}

int channels__tape_oom(struct channels__err *err)
{
    return channels__fail_code(err, -ENOMEM, "internal", "out of memory reading a string");
}

/* Key node k equals name (decoded when it holds escapes). */
static bool key_is(const struct channels__tape *t, uint32_t k, const char *name, size_t n)
{
    const struct channels__tape_node *nd = &t->nodes[k];
    if (!nd->escaped)
        return nd->len - 2 == n && memcmp(t->body + nd->start + 1, name, n) == 0;
    char buf[64];
    int64_t m = decode(t, k, buf, sizeof buf);
    return m == (int64_t)n && memcmp(buf, name, n) == 0;
}

uint32_t channels__tape_get(const struct channels__tape *t, uint32_t obj, const char *name)
{
    if (obj == CHANNELS__TAPE_NONE || t->nodes[obj].type != CHANNELS__TAPE_OBJECT)
        return CHANNELS__TAPE_NONE;
    size_t n = strlen(name);
    uint32_t found = CHANNELS__TAPE_NONE, k = obj + 1;
    for (uint32_t m = 0; m < t->nodes[obj].count; m++) {
        uint32_t v = k + 1;
        if (key_is(t, k, name, n))
            found = v; /* the last of repeated keys wins, as in jansson */
        k = t->nodes[v].next;
    }
    return found;
}

bool channels__tape_is(const struct channels__tape *t, uint32_t i, enum channels__tape_type type)
{
    return i != CHANNELS__TAPE_NONE && t->nodes[i].type == type;
}

uint32_t channels__tape_size(const struct channels__tape *t, uint32_t i)
{
    if (!channels__tape_is(t, i, CHANNELS__TAPE_ARRAY) &&
        !channels__tape_is(t, i, CHANNELS__TAPE_OBJECT))
        return 0;
    return t->nodes[i].count;
}

int64_t channels__tape_integer(const struct channels__tape *t, uint32_t i)
{
    const struct channels__tape_node *nd = &t->nodes[i];
    const char *p = t->body + nd->start;
    bool negative = *p == '-';
    uint64_t v = 0;
    for (size_t k = negative; k < nd->len; k++)
        v = v * 10 + (uint64_t)(p[k] - '0');
    return negative ? (int64_t)(0 - v) : (int64_t)v;
}

const char *channels__tape_id(const struct channels__tape *t, uint32_t i,
                              struct channels__tape_str *buf)
{
    const char *s = channels__tape_str(t, i, buf);
    if (!s)
        return NULL;
    bool ok = buf->len > 0 && buf->len <= CHANNELS_ID_MAX;
    for (size_t k = 0; ok && k < buf->len; k++)
        ok = (unsigned char)s[k] >= 0x20 && s[k] != 0x7f;
    if (!ok) {
        channels__tape_str_free(buf);
        return NULL;
    }
    return s;
}

int channels__tape_add_hash(struct channels__keys *k, const char *prefix,
                            const struct channels__tape *t, uint32_t i)
{
    json_error_t jerr;
    const struct channels__tape_node *nd = &t->nodes[i];
    json_t *v = json_loadb(t->body + nd->start, nd->len, JSON_DECODE_ANY, &jerr);
    if (!v)
        return -ENOMEM; /* the tape holds valid JSON only: nothing else fails */
    int rc = channels__keys_add_hash(k, prefix, v);
    json_decref(v);
    return rc;
}
