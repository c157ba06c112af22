/* histogram.h - latency histogram for sabia-loadgen: log-linear buckets
 * (32 linear sub-buckets per power of two of microseconds), so any value up
 * to 71 minutes is kept within about 3% with a fixed 7 KiB of counters and
 * no allocation. Not thread-safe: one owner. */
#ifndef SABIA_BENCH_HISTOGRAM_H
#define SABIA_BENCH_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB_BITS 5
#define HIST_SUB      (1 << HIST_SUB_BITS)
#define HIST_EXP_MAX  32 /* values up to 2^32 us; larger ones land in the last bucket */
#define HIST_BUCKETS  ((HIST_EXP_MAX - HIST_SUB_BITS + 1) * HIST_SUB)

/* Caller-owned; zero-initialise it (= {0}) before the first hist_add(). */
struct hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    int64_t max_us; /* exact */
};

/* Records one latency of `ns` nanoseconds (negative counts as 0). */
void hist_add(struct hist *h, int64_t ns);

/* The q-quantile (0 < q <= 1) in milliseconds: the upper bound of the bucket
 * holding it, never above the exact maximum. 0 when nothing was recorded. */
double hist_quantile_ms(const struct hist *h, double q);

#endif
