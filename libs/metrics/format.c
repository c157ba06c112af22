/* format.c - numbers as the Prometheus text format writes them: integers
 * in plain digits, other values in the shortest form that reads back to
 * the same double, and the special spellings +Inf, -Inf and NaN. */
#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Integers below this print in plain digits (at most 17 of them, so they
 * fit METRICS_DOUBLE_STRLEN); larger ones use exponent notation. */
#define PLAIN_INTEGER_LIMIT 1e17

char *metrics_format_double(double v, char out[METRICS_DOUBLE_STRLEN])
{
    if (isnan(v)) {
        snprintf(out, METRICS_DOUBLE_STRLEN, "NaN");
    } else if (isinf(v)) {
        snprintf(out, METRICS_DOUBLE_STRLEN, "%s", v > 0 ? "+Inf" : "-Inf");
    } else if (v == 0) {
        snprintf(out, METRICS_DOUBLE_STRLEN, "0"); /* also for -0 */
    } else if (fabs(v) < PLAIN_INTEGER_LIMIT && v == trunc(v)) {
        snprintf(out, METRICS_DOUBLE_STRLEN, "%.0f", v);
    } else {
        /* Every decimal of up to 15 digits survives a trip through a double,
         * so when %.15g reads back exactly it is the shortest form (%g drops
         * trailing zeros); otherwise 16 or at most 17 digits are needed. */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, METRICS_DOUBLE_STRLEN, "%.*g", prec, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
    return out;
}
