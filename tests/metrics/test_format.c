/* test_format.c - metrics_format_double(): integers as integers, the
 * Prometheus spellings of the special values, and exact round-trips. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static void check(double v, const char *want)
{
    char out[METRICS_DOUBLE_STRLEN];
    cr_assert_str_eq(metrics_format_double(v, out), want, "value %.17g", v);
}

Test(format, integers_look_like_integers, .timeout = 30)
{
    check(0, "0");
    check(-0.0, "0");
    check(1, "1");
    check(-3, "-3");
    check(10, "10");
    check(1048576, "1048576");
    check(123456789012345.0, "123456789012345");
    check(99999999999999984.0, "99999999999999984"); /* largest double below 1e17 */
}

Test(format, fractions_are_short_and_exact, .timeout = 30)
{
    check(0.5, "0.5");
    check(0.005, "0.005");
    check(2.5, "2.5");
    check(0.1, "0.1");
    check(-0.25, "-0.25");
    check(0.1 + 0.2, "0.30000000000000004");
    check(1.0 / 3.0, "0.3333333333333333");
    check(1e-9, "1e-09");
}

Test(format, large_numbers_use_exponents, .timeout = 30)
{
    check(1e17, "1e+17");
    check(1e21, "1e+21");
    check(-1.5e300, "-1.5e+300");
    check(DBL_MAX, "1.7976931348623157e+308");
    check(-DBL_MIN, "-2.2250738585072014e-308");
}

Test(format, special_values, .timeout = 30)
{
    check(INFINITY, "+Inf");
    check(-INFINITY, "-Inf");
    check(NAN, "NaN");
    check(-NAN, "NaN");
}

Test(format, every_value_reads_back_exactly, .timeout = 30)
{
    char out[METRICS_DOUBLE_STRLEN];
    unsigned seed = 12345;
    for (int i = 0; i < 100000; i++) {
        uint64_t bits = 0;
        for (int k = 0; k < 4; k++)
            bits = (bits << 16) | (uint64_t)(rand_r(&seed) & 0xffff);
        double v;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v))
            continue;
        metrics_format_double(v, out);
        cr_assert_lt(strlen(out), sizeof out);
        cr_assert(strtod(out, NULL) == v || (v == 0 && strcmp(out, "0") == 0),
                  "%s does not read back as %.17g", out, v);
    }
    check(DBL_TRUE_MIN, "4.94065645841247e-324");
}
