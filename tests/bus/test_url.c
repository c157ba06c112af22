/* test_url.c - connection URL parsing (libs/bus/url.c) and bus_new()
 * argument checks. No server needed. */
#include <criterion/criterion.h>
#include <string.h>

#include "bus.h"

static struct bus_url parse_ok(const char *url)
{
    struct bus_url u;
    int rc = bus_url_parse(url, &u);
    cr_assert_eq(rc, 0, "%s: %s", url, sb_strerror(rc));
    return u;
}

static void parse_bad(const char *url)
{
    struct bus_url u;
    memset(&u, 0x5a, sizeof u);
    int rc = bus_url_parse(url, &u);
    cr_assert_eq(rc, SB_ECONFIG, "%s accepted (rc %d)", url ? url : "(null)", rc);
    cr_assert_null(u.host);
    cr_assert_null(u.password);
    bus_url_cleanup(&u);
}

Test(url, defaults, .timeout = 10)
{
    struct bus_url u = parse_ok("redis://localhost");
    cr_assert_str_eq(u.host, "localhost");
    cr_assert_eq(u.port, 6379);
    cr_assert_eq(u.db, 0);
    cr_assert_null(u.user);
    cr_assert_null(u.password);
    cr_assert_null(u.path);
    bus_url_cleanup(&u);
    cr_assert_null(u.host);
    bus_url_cleanup(&u); /* twice is fine */
}

Test(url, password_port_db, .timeout = 10)
{
    struct bus_url u = parse_ok("redis://:s3cret@127.0.0.1:56379/3");
    cr_assert_str_eq(u.host, "127.0.0.1");
    cr_assert_eq(u.port, 56379);
    cr_assert_eq(u.db, 3);
    cr_assert_null(u.user);
    cr_assert_str_eq(u.password, "s3cret");
    bus_url_cleanup(&u);
}

Test(url, user_and_encoded_password, .timeout = 10)
{
    struct bus_url u = parse_ok("redis://app:p%40ss%3Aw%2Frd@redis.internal:7000/");
    cr_assert_str_eq(u.user, "app");
    cr_assert_str_eq(u.password, "p@ss:w/rd");
    cr_assert_str_eq(u.host, "redis.internal");
    cr_assert_eq(u.port, 7000);
    cr_assert_eq(u.db, 0);
    bus_url_cleanup(&u);
}

Test(url, ipv6, .timeout = 10)
{
    struct bus_url u = parse_ok("redis://[::1]:6380/1");
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(u.port, 6380);
    cr_assert_eq(u.db, 1);
    bus_url_cleanup(&u);
    u = parse_ok("redis://[fe80::1]");
    cr_assert_str_eq(u.host, "fe80::1");
    cr_assert_eq(u.port, 6379);
    bus_url_cleanup(&u);
}

Test(url, unix_socket, .timeout = 10)
{
    struct bus_url u = parse_ok("unix:///run/redis/redis.sock?db=2");
    cr_assert_str_eq(u.path, "/run/redis/redis.sock");
    cr_assert_null(u.host);
    cr_assert_eq(u.db, 2);
    bus_url_cleanup(&u);
    u = parse_ok("unix://:pw@/tmp/r.sock");
    cr_assert_str_eq(u.path, "/tmp/r.sock");
    cr_assert_str_eq(u.password, "pw");
    cr_assert_eq(u.db, 0);
    bus_url_cleanup(&u);
}

Test(url, bad_inputs, .timeout = 10)
{
    static const char *const bad[] = {
        "",
        "localhost:6379",
        "http://localhost",
        "rediss://localhost", /* TLS is not supported by this hiredis */
        "redis://",           /* no host */
        "redis://:pw@",       /* no host */
        "redis://host:",      /* empty port */
        "redis://host:0",     /* port out of range */
        "redis://host:65536",
        "redis://host:12ab",
        "redis://host:-1",
        "redis://host/abc", /* db not a number */
        "redis://host/-1",
        "redis://host/65536", /* db over BUS_DB_MAX */
        "redis://host/1/2",
        "redis://host?db=1", /* no query for redis:// */
        "redis://host#frag",
        "redis://secret@host", /* userinfo without ':' is ambiguous */
        "redis://:p%zzw@host", /* bad escape */
        "redis://:p%4@host",   /* truncated escape */
        "redis://:p%00w@host", /* decoded NUL */
        "redis://ho st",
        "redis://[::1",
        "redis://[::1]x",
        "unix://",
        "unix:///",
        "unix://host/tmp/r.sock",
        "unix:///tmp/r.sock?db=x",
        "unix:///tmp/r.sock?foo=1",
        "unix:///tmp/r.sock#x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        parse_bad(bad[i]);
    parse_bad(NULL);
}

Test(url, length_limits, .timeout = 10)
{
    char url[BUS_URL_MAX_BYTES + 64];
    /* Host one byte over its limit. */
    int n = snprintf(url, sizeof url, "redis://");
    memset(url + n, 'h', BUS_HOST_MAX_BYTES + 1);
    url[n + BUS_HOST_MAX_BYTES + 1] = '\0';
    parse_bad(url);
    url[n + BUS_HOST_MAX_BYTES] = '\0'; /* exactly at the limit */
    struct bus_url u = parse_ok(url);
    bus_url_cleanup(&u);
    /* Whole URL over its limit. */
    memset(url, 0, sizeof url);
    n = snprintf(url, sizeof url, "redis://h/");
    memset(url + n, '0', sizeof url - 1 - (size_t)n);
    parse_bad(url);
    /* Password over its limit. */
    n = snprintf(url, sizeof url, "redis://:");
    memset(url + n, 'p', BUS_SECRET_MAX_BYTES + 1);
    snprintf(url + n + BUS_SECRET_MAX_BYTES + 1, sizeof url - (size_t)n - BUS_SECRET_MAX_BYTES - 1,
             "@h");
    parse_bad(url);
    /* Socket path over its limit. */
    n = snprintf(url, sizeof url, "unix:///");
    memset(url + n, 's', BUS_SOCKET_PATH_MAX);
    url[n + BUS_SOCKET_PATH_MAX] = '\0';
    parse_bad(url);
}

Test(url, bus_new_rejects, .timeout = 10)
{
    int err = 0;
    cr_assert_null(bus_new("http://x", 2, NULL, &err));
    cr_assert_eq(err, SB_ECONFIG);
    err = 0;
    cr_assert_null(bus_new(NULL, 2, NULL, &err));
    cr_assert_eq(err, SB_ECONFIG);
    err = 0;
    cr_assert_null(bus_new("redis://localhost", 0, NULL, &err));
    cr_assert_eq(err, -EINVAL);
    err = 0;
    cr_assert_null(bus_new("redis://localhost", BUS_POOL_MAX + 1, NULL, &err));
    cr_assert_eq(err, -EINVAL);
    cr_assert_null(bus_new("redis://localhost", -1, NULL, NULL)); /* err may be NULL */
}

Test(url, bus_new_is_lazy, .timeout = 10)
{
    /* Nothing listens on port 1: creation must still succeed (no connect yet). */
    int err = -1;
    struct bus *b = bus_new("redis://127.0.0.1:1/0", 4, NULL, &err);
    cr_assert_not_null(b);
    cr_assert_eq(err, 0);
    cr_assert_not(bus_connected(b));
    bus_free(b);
    bus_free(NULL);
}
