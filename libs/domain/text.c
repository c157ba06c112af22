/* text.c - UTF-8 text rules: cutting at code point boundaries, counting
 * characters the way Meta does (UTF-16 code units) and splitting a long reply
 * into several messages at natural breaks. */
#include <string.h>

#include "domain.h"

size_t domain_utf8_seq(const char *str, size_t n, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Bytes and UTF-16 units of the character at s (an invalid byte is one of each). */
static size_t char_at(const char *s, size_t n, size_t *units)
{
    uint32_t cp = 0;
    size_t len = domain_utf8_seq(s, n, &cp);
    if (len == 0) {
        *units = 1;
        return 1;
    }
    *units = cp >= 0x10000 ? 2 : 1;
    return len;
}

size_t domain_utf8_prefix(const char *s, size_t n, size_t max)
{
    if (!s)
        return 0;
    size_t pos = 0, units;
    while (pos < n) {
        size_t len = char_at(s + pos, n - pos, &units);
        if (pos + len > max)
            break;
        pos += len;
    }
    return pos;
}

size_t domain_text_units(const char *s, size_t n)
{
    size_t total = 0, units;
    for (size_t pos = 0; s && pos < n;) {
        pos += char_at(s + pos, n - pos, &units);
        total += units;
    }
    return total;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool cut_paragraph(const char *s, size_t n, size_t i)
{
    return s[i] == '\n' && i + 1 < n && s[i + 1] == '\n';
}

static bool cut_line(const char *s, size_t n, size_t i)
{
    (void)n;
    return s[i] == '\n';
}

static bool cut_sentence(const char *s, size_t n, size_t i)
{
    (void)n;
    return i > 0 && is_space(s[i]) && (s[i - 1] == '.' || s[i - 1] == '!' || s[i - 1] == '?');
}

static bool cut_space(const char *s, size_t n, size_t i)
{
    (void)n;
    return is_space(s[i]);
}

/* Where to end a part that may not go past `hard` (a code point boundary):
 * the best natural break at or after `soft`, else `hard` itself. */
static size_t best_cut(const char *s, size_t n, size_t soft, size_t hard)
{
    static bool (*const rules[])(const char *, size_t, size_t) = {cut_paragraph, cut_line,
                                                                  cut_sentence, cut_space};
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++)
        for (size_t i = hard; i >= soft && i > 0; i--)
            if (i < n && rules[r](s, n, i))
                return i;
    return hard;
}

/* Walks from `pos` until max_units would be exceeded: *soft is where half of
 * them is reached, the return value the hard end (n when all the rest fits). */
static size_t measure(const char *s, size_t n, size_t pos, size_t max_units, size_t *soft)
{
    size_t used = 0, units;
    *soft = n;
    while (pos < n) {
        size_t len = char_at(s + pos, n - pos, &units);
        if (used + units > max_units)
            return pos;
        used += units;
        pos += len;
        if (*soft == n && used >= max_units / 2)
            *soft = pos;
    }
    return n;
}

int domain_text_split(const char *text, size_t n, size_t max_units,
                      struct sb_str parts[DOMAIN_SPLIT_MAX_PARTS], size_t *nparts, bool *truncated)
{
    if (nparts)
        *nparts = 0;
    if (truncated)
        *truncated = false;
    if (!text || !parts || !nparts || !truncated || max_units < 16)
        return -EINVAL;
    size_t pos = 0;
    while (pos < n && is_space(text[pos]))
        pos++;
    if (pos == n)
        return -EINVAL;
    while (pos < n && *nparts < DOMAIN_SPLIT_MAX_PARTS) {
        size_t soft, hard = measure(text, n, pos, max_units, &soft);
        size_t end = hard == n ? n : best_cut(text, n, soft, hard);
        size_t next = end;
        while (end > pos && is_space(text[end - 1]))
            end--;
        parts[(*nparts)++] = (struct sb_str){text + pos, end - pos};
        pos = next;
        while (pos < n && is_space(text[pos]))
            pos++;
    }
    *truncated = pos < n;
    return 0;
}
