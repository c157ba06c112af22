/* histogram.c - see histogram.h. */
#include "histogram.h"

static int hist_index(int64_t us)
{
    if (us < HIST_SUB)
        return us < 0 ? 0 : (int)us;
    int e = 63 - __builtin_clzll((unsigned long long)us);
    if (e >= HIST_EXP_MAX)
        return HIST_BUCKETS - 1;
    int sub = (int)((us >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
    return (e - HIST_SUB_BITS + 1) * HIST_SUB + sub;
}

/* The largest value that lands in bucket i. */
static int64_t hist_upper(int i)
{
    if (i < HIST_SUB)
        return i;
    int e = i / HIST_SUB + HIST_SUB_BITS - 1, sub = i % HIST_SUB;
    int64_t width = (int64_t)1 << (e - HIST_SUB_BITS);
    return ((int64_t)(HIST_SUB + sub) << (e - HIST_SUB_BITS)) + width - 1;
}

void hist_add(struct hist *h, int64_t ns)
{
    int64_t us = ns > 0 ? ns / 1000 : 0;
    h->counts[hist_index(us)]++;
    h->total++;
    if (us > h->max_us)
        h->max_us = us;
}

double hist_quantile_ms(const struct hist *h, double q)
{
    if (h->total == 0)
        return 0;
    uint64_t want = (uint64_t)(q * (double)h->total + 0.999999), seen = 0;
    if (want < 1)
        want = 1;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            int64_t v = hist_upper(i);
            return (double)(v < h->max_us ? v : h->max_us) / 1000.0;
        }
    }
    return (double)h->max_us / 1000.0;
}
