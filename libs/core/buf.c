/* buf.c - a growable byte buffer bounded by a named maximum, plus JSON
 * string escaping on top of it. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define SB_BUF_MIN_CAP 64

void sb_buf_init(struct sb_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void sb_buf_cleanup(struct sb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void sb_buf_reset(struct sb_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Makes room for `extra` more bytes plus the terminator. cap counts the
 * terminator; it grows geometrically but never past max + 1. */
static int sb_buf_reserve(struct sb_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return SB_ELIMIT;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : SB_BUF_MIN_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int sb_buf_append(struct sb_buf *b, const void *p, size_t n)
{
    int rc = sb_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int sb_buf_append_str(struct sb_buf *b, const char *s)
{
    return sb_buf_append(b, s ? s : "", s ? strlen(s) : 0);
}

int sb_buf_vappendf(struct sb_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -EINVAL;
    int rc = sb_buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int sb_buf_appendf(struct sb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sb_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *sb_buf_steal(struct sb_buf *b)
{
    char *p = b->data;
    if (!p) {
        p = malloc(1);
        if (!p)
            return NULL;
        p[0] = '\0';
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when it is invalid
 * (bad lead byte, overlong form, surrogate, above U+10FFFF, truncated). For
 * an invalid sequence *skip is the length of its maximal ill-formed prefix,
 * which becomes one U+FFFD (the Unicode "maximal subpart" practice). */
static size_t sb_utf8_seq_len(const unsigned char *s, size_t n, size_t *skip)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    *skip = 1;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *skip = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return len;
}

/* The escape for byte c written into esc (NUL-terminated), or false when c
 * needs none. */
static bool sb_json_escape(unsigned char c, char esc[8])
{
    switch (c) {
    case '"': memcpy(esc, "\\\"", 3); return true;
    case '\\': memcpy(esc, "\\\\", 3); return true;
    case '\n': memcpy(esc, "\\n", 3); return true;
    case '\r': memcpy(esc, "\\r", 3); return true;
    case '\t': memcpy(esc, "\\t", 3); return true;
    case '\b': memcpy(esc, "\\b", 3); return true;
    case '\f': memcpy(esc, "\\f", 3); return true;
    default: break;
    }
    if (c < 0x20 || c == 0x7F) {
        snprintf(esc, 8, "\\u%04x", (unsigned)c);
        return true;
    }
    return false;
}

int sb_buf_append_json_str(struct sb_buf *b, const char *s, size_t n)
{
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    const unsigned char *u = (const unsigned char *)s;
    size_t start_len = b->len;
    int rc = sb_buf_append(b, "\"", 1);
    size_t i = 0;
    while (rc == 0 && i < n) {
        /* Copy the longest run that needs no escaping in one go. */
        size_t run = i, seq, skip = 1;
        char esc[8] = "";
        while (run < n && (seq = sb_utf8_seq_len(u + run, n - run, &skip)) != 0 &&
               !(seq == 1 && sb_json_escape(u[run], esc)))
            run += seq;
        if (run > i) {
            rc = sb_buf_append(b, s + i, run - i);
            i = run;
        } else if (esc[0]) {
            rc = sb_buf_append_str(b, esc);
            i++;
        } else {
            rc = sb_buf_append(b, replacement, 3);
            i += skip;
        }
    }
    if (rc == 0)
        rc = sb_buf_append(b, "\"", 1);
    if (rc < 0) { /* leave the buffer as it was */
        b->len = start_len;
        if (b->data)
            b->data[b->len] = '\0';
    }
    return rc;
}
