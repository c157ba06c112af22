/* test_str.c - string views, sb_parse_long, sb_strerror and time helpers. */
#include <criterion/criterion.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"

Test(str, views_compare_by_bytes, .timeout = 30)
{
    struct sb_str a = sb_str_c("abc");
    cr_assert_eq(a.len, 3);
    cr_assert(sb_str_eq(a, (struct sb_str){"abcdef", 3}));
    cr_assert_not(sb_str_eq(a, sb_str_c("abd")));
    cr_assert_not(sb_str_eq(a, sb_str_c("ab")));
    cr_assert(sb_str_eq_c(a, "abc"));
    cr_assert_not(sb_str_eq_c(a, "abcd"));
    struct sb_str n = sb_str_c(NULL);
    cr_assert_eq(n.len, 0);
    cr_assert(sb_str_eq(n, SB_STR_NULL));
    cr_assert(sb_str_eq_c(SB_STR_NULL, ""));
    cr_assert(sb_str_eq_c(SB_STR_NULL, NULL));
}

Test(str, dup_terminates, .timeout = 30)
{
    char *d = sb_str_dup((struct sb_str){"hello world", 5});
    cr_assert_str_eq(d, "hello");
    free(d);
    d = sb_str_dup(SB_STR_NULL);
    cr_assert_not_null(d);
    cr_assert_str_eq(d, "");
    free(d);
}

static int parse(const char *s, long min, long max, long *out)
{
    *out = 12345; /* must stay untouched on failure */
    return sb_parse_long(s, min, max, out);
}

Test(parse_long, accepts_whole_numbers, .timeout = 30)
{
    long v;
    cr_assert_eq(parse("0", LONG_MIN, LONG_MAX, &v), 0);
    cr_assert_eq(v, 0);
    cr_assert_eq(parse("-17", -100, 100, &v), 0);
    cr_assert_eq(v, -17);
    cr_assert_eq(parse("+42", 0, 100, &v), 0);
    cr_assert_eq(v, 42);
    cr_assert_eq(parse("007", 0, 100, &v), 0);
    cr_assert_eq(v, 7, "decimal, not octal");
    cr_assert_eq(parse("9223372036854775807", LONG_MIN, LONG_MAX, &v), 0);
    cr_assert_eq(v, LONG_MAX);
    cr_assert_eq(parse("-9223372036854775808", LONG_MIN, LONG_MAX, &v), 0);
    cr_assert_eq(v, LONG_MIN);
    cr_assert_eq(parse("1", 1, 1, &v), 0, "inclusive bounds");
    cr_assert_eq(parse("65535", 1, 65535, &v), 0);
}

Test(parse_long, rejects_non_numbers, .timeout = 30)
{
    static const char *const bad[] = {"",   " 1",  "1 ",  "\t1", "1\n", "abc", "12abc",
                                      "-",  "+",   "--1", "+-1", "0x10", "1.5", "1e3",
                                      " ",  "١"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long v;
        cr_expect_eq(parse(bad[i], LONG_MIN, LONG_MAX, &v), -EINVAL, "input \"%s\"", bad[i]);
        cr_expect_eq(v, 12345, "output written for \"%s\"", bad[i]);
    }
    long v;
    cr_assert_eq(sb_parse_long(NULL, 0, 1, &v), -EINVAL);
}

Test(parse_long, range_errors, .timeout = 30)
{
    long v;
    cr_assert_eq(parse("9223372036854775808", LONG_MIN, LONG_MAX, &v), -ERANGE);
    cr_assert_eq(parse("-9223372036854775809", LONG_MIN, LONG_MAX, &v), -ERANGE);
    cr_assert_eq(parse("99999999999999999999999", LONG_MIN, LONG_MAX, &v), -ERANGE);
    cr_assert_eq(parse("0", 1, 65535, &v), -ERANGE);
    cr_assert_eq(parse("65536", 1, 65535, &v), -ERANGE);
    cr_assert_eq(parse("-1", 0, 10, &v), -ERANGE);
    cr_assert_eq(v, 12345);
}

Test(strerror, known_codes, .timeout = 30)
{
    cr_assert_str_eq(sb_strerror(0), "success");
    cr_assert_str_eq(sb_strerror(SB_ELIMIT), "size limit exceeded");
    cr_assert_str_eq(sb_strerror(SB_EPARSE), "malformed input");
    cr_assert_str_eq(sb_strerror(-ENOENT), "No such file or directory");
    cr_assert_str_eq(sb_strerror(-ENOMEM), "Cannot allocate memory");
    cr_assert_str_eq(sb_strerror(-ETIMEDOUT), "Connection timed out");
    const int ours[] = {SB_ELIMIT,   SB_EPARSE,   SB_ECONFIG,   SB_EDB,   SB_EREDIS,
                        SB_ENOTFOUND, SB_ECONFLICT, SB_EUNAVAIL, SB_EAUTH, SB_ESHUTDOWN,
                        SB_EWOULDBLOCK};
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        cr_assert_str_neq(sb_strerror(ours[i]), "unknown error", "code %d", ours[i]);
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(sb_strerror(ours[i]), sb_strerror(ours[j]));
    }
}

Test(strerror, unknown_codes, .timeout = 30)
{
    cr_assert_str_eq(sb_strerror(1), "unknown error");
    cr_assert_str_eq(sb_strerror(-9999), "unknown error");
    cr_assert_str_eq(sb_strerror(-10000), "unknown error");
    cr_assert_str_eq(sb_strerror(-10012), "unknown error");
    cr_assert_str_eq(sb_strerror(INT_MIN), "unknown error");
}

/* The text must be static: two calls return the same stable pointer. */
static void *strerror_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10000; i++) {
        if (strcmp(sb_strerror(-EINVAL), "Invalid argument") != 0 ||
            strcmp(sb_strerror(-EAGAIN), "Resource temporarily unavailable") != 0)
            return (void *)1;
    }
    return NULL;
}

Test(strerror, thread_safe_static_text, .timeout = 30)
{
    cr_assert_eq(sb_strerror(-EINVAL), sb_strerror(-EINVAL));
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, strerror_worker, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        cr_assert_null(r);
    }
}

Test(time, now_matches_system_clock, .timeout = 30)
{
    int64_t a = sb_now_ms();
    int64_t t = (int64_t)time(NULL) * 1000;
    cr_assert_lt(llabs(a - t), 2000);
    int64_t m1 = sb_mono_ms();
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    int64_t m2 = sb_mono_ms();
    cr_assert_geq(m2 - m1, 19);
    cr_assert_lt(m2 - m1, 5000);
}

Test(time, format_rfc3339, .timeout = 30)
{
    char out[SB_TIME_STRLEN];
    sb_time_format(0, out);
    cr_assert_str_eq(out, "1970-01-01T00:00:00.000Z");
    sb_time_format(1795341600123LL, out);
    cr_assert_str_eq(out, "2026-11-22T10:00:00.123Z");
    sb_time_format(951782400999LL, out); /* leap day 2000 */
    cr_assert_str_eq(out, "2000-02-29T00:00:00.999Z");
    sb_time_format(-1, out);
    cr_assert_str_eq(out, "1969-12-31T23:59:59.999Z");
    sb_time_format(253402300799999LL, out);
    cr_assert_str_eq(out, "9999-12-31T23:59:59.999Z");
    sb_time_format(253402300800000LL, out); /* year 10000 does not fit */
    cr_assert_eq(strlen(out), SB_TIME_STRLEN - 1);
}
