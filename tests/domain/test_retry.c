/* test_retry.c - backoff determinism, jitter bounds and caps; the Graph error
 * classification table of protocols.md §2.4; HTTP-only failures; retry
 * delays and attempt caps. */
#include <criterion/criterion.h>
#include <limits.h>
#include <string.h>

#include "domain.h"

Test(backoff, deterministic_in_random, .timeout = 30)
{
    for (unsigned a = 0; a < 20; a++)
        for (uint32_t r = 0; r < 5000; r += 97)
            cr_assert_eq(domain_backoff_ms(a, 500, 60000, r), domain_backoff_ms(a, 500, 60000, r));
}

Test(backoff, exponential_with_equal_jitter, .timeout = 30)
{
    /* attempt a: d = 500 * 2^(a-1); result in [d/2, d]. */
    int64_t d = 500;
    for (unsigned a = 1; a <= 7; a++, d *= 2) {
        cr_assert_eq(domain_backoff_ms(a, 500, 1000000, 0), d / 2, "attempt %u low", a);
        cr_assert_eq(domain_backoff_ms(a, 500, 1000000, (uint32_t)(d - d / 2)), d,
                     "attempt %u high", a);
        for (uint32_t r = 0; r < 100000; r += 7919) {
            int64_t v = domain_backoff_ms(a, 500, 1000000, r);
            cr_assert(v >= d / 2 && v <= d, "attempt %u r %u: %lld", a, r, (long long)v);
        }
    }
    cr_assert_eq(domain_backoff_ms(0, 500, 60000, 0), domain_backoff_ms(1, 500, 60000, 0),
                 "attempt 0 counts as 1");
    /* Known values: 1000 -> [500, 1000]; r % 501. */
    cr_assert_eq(domain_backoff_ms(2, 500, 60000, 100), 600);
    cr_assert_eq(domain_backoff_ms(2, 500, 60000, 501), 500);
}

Test(backoff, caps_and_overflow, .timeout = 30)
{
    for (unsigned a = 8; a < 200; a++) {
        int64_t v = domain_backoff_ms(a, 500, 60000, UINT32_MAX);
        cr_assert(v >= 30000 && v <= 60000, "attempt %u: %lld", a, (long long)v);
    }
    cr_assert_eq(domain_backoff_ms(UINT_MAX, 500, 60000, 0), 30000);
    cr_assert_leq(domain_backoff_ms(UINT_MAX, INT64_MAX / 3, INT64_MAX, UINT32_MAX), INT64_MAX);
    cr_assert_geq(domain_backoff_ms(UINT_MAX, INT64_MAX / 3, INT64_MAX, UINT32_MAX), 0);
    cr_assert_eq(domain_backoff_ms(3, 1000, 10, 0), 500, "cap below base is raised to base");
    cr_assert_eq(domain_backoff_ms(3, 0, 60000, 12345), 0);
    cr_assert_eq(domain_backoff_ms(3, -5, 60000, 12345), 0);
    cr_assert_eq(domain_backoff_ms(1, 1, 1, UINT32_MAX), 0 + (int64_t)(UINT32_MAX % 2));
}

static void expect_class(long code, enum domain_retry want)
{
    struct domain_error_class c = domain_wa_error_class(code);
    cr_assert_eq(c.retry, want, "code %ld: %s, want %s", code, domain_retry_name(c.retry),
                 domain_retry_name(want));
    cr_assert_not_null(c.reason);
    cr_assert_neq(c.reason[0], '\0');
}

Test(classification, table_of_protocols_2_4, .timeout = 30)
{
    static const long retry[] = {130429, 80007, 4, 1, 2, 131000, 131016, 133004, 131052, 131053};
    static const long fail[] = {0,      190,    3,      10,     200,    250,    299,    100,
                                131008, 131009, 131021, 131026, 131030, 131047, 131051, 132000,
                                132001, 132015, 132016, 132999, 368,    130497, 131031};
    for (size_t i = 0; i < sizeof retry / sizeof retry[0]; i++)
        expect_class(retry[i], DOMAIN_RETRY);
    for (size_t i = 0; i < sizeof fail / sizeof fail[0]; i++)
        expect_class(fail[i], DOMAIN_FAIL);
    expect_class(131056, DOMAIN_RETRY_RECIPIENT);
    expect_class(131048, DOMAIN_RETRY_LATER);
    expect_class(131057, DOMAIN_RETRY_LATER);
    expect_class(999999, DOMAIN_FAIL);
    expect_class(300, DOMAIN_FAIL);
    expect_class(DOMAIN_NO_CODE, DOMAIN_FAIL);
}

Test(classification, details_of_special_codes, .timeout = 30)
{
    struct domain_error_class c = domain_wa_error_class(131056);
    cr_assert_geq(c.min_delay_ms, 6000, "per-recipient pair limit: at least 6 s");
    c = domain_wa_error_class(131048);
    cr_assert_geq(c.min_delay_ms, 60000);
    cr_assert(c.alert);
    c = domain_wa_error_class(190);
    cr_assert(c.alert, "an expired token needs an operator");
    cr_assert_str_eq(c.reason, "access token expired or invalid");
    c = domain_wa_error_class(131047);
    cr_assert_not(c.alert);
    cr_assert_not_null(strstr(c.reason, "template"));
    c = domain_wa_error_class(131052);
    cr_assert_eq(c.max_attempts, 2, "media errors: retry once");
    c = domain_wa_error_class(131000);
    cr_assert_eq(c.max_attempts, 3);
    c = domain_wa_error_class(130429);
    cr_assert_eq(c.max_attempts, 0);
    cr_assert_eq(c.min_delay_ms, 0);
}

Test(classification, http_only_failures, .timeout = 30)
{
    cr_assert_eq(domain_send_error_class(0, DOMAIN_NO_CODE).retry, DOMAIN_RETRY, "network");
    cr_assert_eq(domain_send_error_class(500, DOMAIN_NO_CODE).retry, DOMAIN_RETRY);
    cr_assert_eq(domain_send_error_class(503, DOMAIN_NO_CODE).retry, DOMAIN_RETRY);
    cr_assert_eq(domain_send_error_class(429, DOMAIN_NO_CODE).retry, DOMAIN_RETRY);
    cr_assert_eq(domain_send_error_class(408, DOMAIN_NO_CODE).retry, DOMAIN_RETRY);
    cr_assert_eq(domain_send_error_class(404, DOMAIN_NO_CODE).retry, DOMAIN_FAIL);
    cr_assert_eq(domain_send_error_class(400, DOMAIN_NO_CODE).retry, DOMAIN_FAIL);
    cr_assert_eq(domain_send_error_class(200, DOMAIN_NO_CODE).retry, DOMAIN_FAIL,
                 "2xx without an id: unknown outcome, not resent (no duplicates)");
    /* A Graph code wins over the HTTP status... */
    cr_assert_eq(domain_send_error_class(400, 130429).retry, DOMAIN_RETRY);
    cr_assert_eq(domain_send_error_class(500, 131047).retry, DOMAIN_FAIL);
    /* ...except an unknown code with a server error. */
    cr_assert_eq(domain_send_error_class(503, 424242).retry, DOMAIN_RETRY);
    cr_assert_eq(domain_send_error_class(400, 424242).retry, DOMAIN_FAIL);
}

Test(classification, delays_and_attempts, .timeout = 30)
{
    struct domain_error_class pair = domain_wa_error_class(131056);
    cr_assert_eq(domain_retry_delay_ms(&pair, 1, 500, 60000, 0), 6000, "floor of 6 s");
    cr_assert_eq(domain_retry_delay_ms(&pair, 10, 500, 60000, 0), 30000, "backoff above floor");
    struct domain_error_class rate = domain_wa_error_class(130429);
    cr_assert_eq(domain_retry_delay_ms(&rate, 1, 500, 60000, 0), 250);
    cr_assert_eq(domain_retry_delay_ms(NULL, 1, 500, 60000, 0), 250);

    cr_assert(domain_retry_allowed(&rate, 1, 5));
    cr_assert(domain_retry_allowed(&rate, 4, 5));
    cr_assert_not(domain_retry_allowed(&rate, 5, 5), "policy max reached: dead letter");
    struct domain_error_class once = domain_wa_error_class(131053);
    cr_assert(domain_retry_allowed(&once, 1, 5));
    cr_assert_not(domain_retry_allowed(&once, 2, 5), "class cap below the policy's");
    struct domain_error_class fail = domain_wa_error_class(131047);
    cr_assert_not(domain_retry_allowed(&fail, 1, 5));
    cr_assert_not(domain_retry_allowed(NULL, 1, 5));
}
