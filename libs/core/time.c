/* time.c - wall-clock and monotonic milliseconds, RFC 3339 formatting. */
#include <string.h>
#include <time.h>

#include "core.h"

static int64_t sb_clock_ms(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sb_now_ms(void)
{
    return sb_clock_ms(CLOCK_REALTIME);
}

int64_t sb_mono_ms(void)
{
    return sb_clock_ms(CLOCK_MONOTONIC);
}

/* Writes `v` as exactly `width` decimal digits. */
static void sb_put_digits(char *p, int v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void sb_time_format(int64_t epoch_ms, char out[SB_TIME_STRLEN])
{
    int64_t sec = epoch_ms / 1000;
    int ms = (int)(epoch_ms % 1000);
    if (ms < 0) { /* round towards minus infinity for pre-1970 times */
        ms += 1000;
        sec -= 1;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    char *o = out;
    memcpy(out, "0000-00-00T00:00:00.000Z", SB_TIME_STRLEN);
    if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
        return; /* out of the 4-digit year range: all zeros */
    sb_put_digits(o, tm.tm_year + 1900, 4);
    sb_put_digits(o + 5, tm.tm_mon + 1, 2);
    sb_put_digits(o + 8, tm.tm_mday, 2);
    sb_put_digits(o + 11, tm.tm_hour, 2);
    sb_put_digits(o + 14, tm.tm_min, 2);
    sb_put_digits(o + 17, tm.tm_sec, 2);
    sb_put_digits(o + 20, ms, 3);
}
