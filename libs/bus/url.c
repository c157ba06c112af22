/* url.c - parses the redis:// and unix:// connection URLs accepted by
 * bus_new(). Strict on purpose: anything not understood is a configuration
 * error rather than a silently ignored option. */
#include <stdlib.h>
#include <string.h>

#include "bus.h"

#define URL_DEFAULT_PORT   6379
#define URL_NUM_MAX_DIGITS 8 /* port and db numbers */

static bool url_all_digits(const char *s, size_t n)
{
    if (n == 0 || n > URL_NUM_MAX_DIGITS)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Parses n decimal digits into [min, max]. */
static int url_parse_num(const char *s, size_t n, long min, long max, int *out)
{
    char tmp[URL_NUM_MAX_DIGITS + 1];
    long v = 0;
    if (!url_all_digits(s, n))
        return SB_ECONFIG;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (sb_parse_long(tmp, min, max, &v) != 0)
        return SB_ECONFIG;
    *out = (int)v;
    return 0;
}

/* Percent-decodes s[0..n) into a new string; NULL for an empty input.
 * Rejects bad escapes, decoded NUL bytes and results over the secret limit. */
static int url_decode(const char *s, size_t n, char **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    if (n > 3 * BUS_SECRET_MAX_BYTES)
        return SB_ECONFIG;
    char *d = malloc(n + 1);
    if (!d)
        return -ENOMEM;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < n ? sb_hex_value(s[i + 1]) : -1;
            int lo = i + 2 < n ? sb_hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(d);
                return SB_ECONFIG;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        d[j++] = c;
    }
    d[j] = '\0';
    if (j > BUS_SECRET_MAX_BYTES) {
        free(d);
        return SB_ECONFIG;
    }
    *out = d;
    return 0;
}

/* "user:password" (either part may be empty; the colon is required). */
static int url_parse_userinfo(const char *s, size_t n, struct bus_url *u)
{
    const char *colon = memchr(s, ':', n);
    if (!colon)
        return SB_ECONFIG;
    size_t ulen = (size_t)(colon - s);
    int rc = url_decode(s, ulen, &u->user);
    if (rc == 0)
        rc = url_decode(colon + 1, n - ulen - 1, &u->password);
    return rc;
}

static bool url_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

/* "host", "host:port", "[v6]" or "[v6]:port". */
static int url_parse_hostport(const char *s, size_t n, struct bus_url *u)
{
    const char *host = s, *port = NULL;
    size_t hlen = n, plen = 0;
    bool v6 = n > 0 && s[0] == '[';
    if (v6) {
        const char *close = memchr(s, ']', n);
        if (!close)
            return SB_ECONFIG;
        host = s + 1;
        hlen = (size_t)(close - host);
        size_t rest = n - (size_t)(close + 1 - s);
        if (rest > 0) {
            if (close[1] != ':')
                return SB_ECONFIG;
            port = close + 2;
            plen = rest - 1;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon) {
            hlen = (size_t)(colon - s);
            port = colon + 1;
            plen = n - hlen - 1;
        }
    }
    if (hlen == 0 || hlen > BUS_HOST_MAX_BYTES)
        return SB_ECONFIG;
    for (size_t i = 0; i < hlen; i++)
        if (!url_host_char(host[i]) && !(v6 && (host[i] == ':' || host[i] == '%')))
            return SB_ECONFIG;
    u->port = URL_DEFAULT_PORT;
    if (port && url_parse_num(port, plen, 1, 65535, &u->port) != 0)
        return SB_ECONFIG;
    u->host = sb_str_dup((struct sb_str){host, hlen});
    return u->host ? 0 : -ENOMEM;
}

/* Splits "[userinfo@]rest" where the authority ends at `end`. */
static int url_split_auth(const char *s, const char *end, struct bus_url *u, const char **rest)
{
    const char *at = NULL;
    for (const char *p = s; p < end; p++)
        if (*p == '@')
            at = p;
    *rest = s;
    if (!at)
        return 0;
    *rest = at + 1;
    return url_parse_userinfo(s, (size_t)(at - s), u);
}

static int url_parse_tcp(const char *s, struct bus_url *u)
{
    const char *end = s + strcspn(s, "/?#");
    const char *hp = NULL;
    int rc = url_split_auth(s, end, u, &hp);
    if (rc == 0)
        rc = url_parse_hostport(hp, (size_t)(end - hp), u);
    if (rc != 0)
        return rc;
    if (*end == '\0')
        return 0;
    if (*end != '/')
        return SB_ECONFIG; /* no query or fragment */
    const char *db = end + 1;
    size_t dlen = strlen(db);
    if (dlen == 0)
        return 0;
    return url_parse_num(db, dlen, 0, BUS_DB_MAX, &u->db);
}

/* Query of a unix:// URL: only "db=N". */
static int url_parse_query(const char *q, struct bus_url *u)
{
    if (strncmp(q, "db=", 3) != 0)
        return SB_ECONFIG;
    return url_parse_num(q + 3, strlen(q + 3), 0, BUS_DB_MAX, &u->db);
}

static int url_parse_unix(const char *s, struct bus_url *u)
{
    const char *slash = strchr(s, '/');
    if (!slash)
        return SB_ECONFIG;
    const char *rest = NULL;
    int rc = url_split_auth(s, slash, u, &rest);
    if (rc != 0)
        return rc;
    if (rest != slash)
        return SB_ECONFIG; /* unix://host/... is not a socket path */
    size_t plen = strcspn(slash, "?#");
    if (plen < 2 || plen > BUS_SOCKET_PATH_MAX)
        return SB_ECONFIG;
    if (slash[plen] == '#')
        return SB_ECONFIG;
    if (slash[plen] == '?' && (rc = url_parse_query(slash + plen + 1, u)) != 0)
        return rc;
    u->path = sb_str_dup((struct sb_str){slash, plen});
    return u->path ? 0 : -ENOMEM;
}

int bus_url_parse(const char *url, struct bus_url *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    if (!url || strnlen(url, BUS_URL_MAX_BYTES + 1) > BUS_URL_MAX_BYTES)
        return SB_ECONFIG;
    int rc = SB_ECONFIG;
    if (strncmp(url, "redis://", 8) == 0)
        rc = url_parse_tcp(url + 8, out);
    else if (strncmp(url, "unix://", 7) == 0)
        rc = url_parse_unix(url + 7, out);
    if (rc != 0)
        bus_url_cleanup(out);
    return rc;
}

void bus_url_cleanup(struct bus_url *u)
{
    if (!u)
        return;
    free(u->host);
    free(u->path);
    free(u->user);
    if (u->password) {
        explicit_bzero(u->password, strlen(u->password));
        free(u->password);
    }
    memset(u, 0, sizeof *u);
}
