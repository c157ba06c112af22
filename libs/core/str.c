/* str.c - borrowed string views and strict number parsing. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

struct sb_str sb_str_c(const char *s)
{
    if (!s)
        return (struct sb_str){"", 0};
    return (struct sb_str){s, strlen(s)};
}

bool sb_str_eq(struct sb_str a, struct sb_str b)
{
    if (a.len != b.len)
        return false;
    if (a.len == 0)
        return true;
    return memcmp(a.ptr, b.ptr, a.len) == 0;
}

bool sb_str_eq_c(struct sb_str a, const char *s)
{
    return sb_str_eq(a, sb_str_c(s));
}

char *sb_str_dup(struct sb_str s)
{
    if (s.len == SIZE_MAX)
        return NULL;
    char *p = malloc(s.len + 1);
    if (!p)
        return NULL;
    if (s.len)
        memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}

int sb_parse_long(const char *s, long min, long max, long *out)
{
    if (!s || !out)
        return -EINVAL;
    /* strtol would skip leading whitespace; the whole string must be a number. */
    const char *d = s;
    if (*d == '+' || *d == '-')
        d++;
    if (*d < '0' || *d > '9')
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0')
        return -EINVAL;
    if (errno == ERANGE)
        return -ERANGE;
    if (v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int sb_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
