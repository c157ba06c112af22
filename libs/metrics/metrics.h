/* metrics.h - Prometheus counters, gauges and histograms kept in a registry,
 * rendered in the text exposition format 0.0.4 for GET /metrics.
 *
 * A registry (struct metrics) owns its families (struct metric); a family
 * owns its series (struct metric_series, one per label-value combination).
 * Every pointer handed out stays valid until metrics_free(), so callers
 * register families once at start-up and may cache series pointers.
 *
 * Threads: registration and series creation take a mutex; looking up an
 * existing series and updating values are lock-free (C11 atomics) and safe
 * from any thread. Rendering may run while other threads update; it reports
 * each value as it was at some instant during the render. Only
 * metrics_free() must not race with anything else. */
#ifndef SABIA_METRICS_H
#define SABIA_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "core.h"

/* Limits. Everything a caller (or, through label values, a request) controls
 * is bounded by one of these. */
#define METRICS_MAX_FAMILIES        1024  /* families per registry */
#define METRICS_MAX_SERIES          10000 /* series per family (cardinality cap) */
#define METRICS_MAX_NAME_LEN        200   /* metric and label names, in bytes */
#define METRICS_MAX_HELP_LEN        1024  /* help text, in bytes */
#define METRICS_MAX_LABELS          16    /* label names per family */
#define METRICS_MAX_LABEL_VALUE_LEN 1024  /* each label value, in bytes */
#define METRICS_MAX_BUCKETS         64    /* histogram bounds, +Inf not counted */

/* Room for any number metrics_format_double() writes, NUL included. */
#define METRICS_DOUBLE_STRLEN 32

struct metrics;       /* a registry, opaque */
struct metric;        /* one family; owned by its registry, valid until metrics_free() */
struct metric_series; /* one label combination of a family; owned by the family */

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

/* Creates an empty registry. The caller owns it and frees it with
 * metrics_free(). Returns NULL on allocation failure. */
struct metrics *metrics_new(void);

/* Frees the registry with every family and series in it; all pointers
 * obtained from it become invalid. No other thread may be using the
 * registry or any of its families or series. NULL is a no-op. */
void metrics_free(struct metrics *m);

/* Registers a family in `m` and returns it (owned by `m`, valid until
 * metrics_free()). `name` must match [a-zA-Z_:][a-zA-Z0-9_:]*; `help` may be
 * NULL (no # HELP line). `labels` is NULL or "" (no labels) or a
 * comma-separated list of label names such as "method,status"; spaces around
 * names are ignored; each must match [a-zA-Z_][a-zA-Z0-9_]*, must not start
 * with "__" and must not repeat. `name`, `help` and `labels` are copied.
 *
 * Registering a name again with the same type and the same label names (and,
 * for histograms, the same buckets) returns the existing family; its first
 * help text is kept. A conflicting re-registration, an invalid name, a limit
 * exceeded (METRICS_MAX_*) or an allocation failure returns NULL.
 * A family without labels starts with its single series at zero, so it is
 * rendered even before the first update. Thread-safe. */
struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
                               const char *labels);
struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
                             const char *labels);

/* As above for a histogram. `buckets` holds `nbuckets` finite, strictly
 * increasing upper bounds (copied; the +Inf bucket is implicit). NULL or 0
 * selects the defaults: 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
 * 10 (seconds). The label name "le" is reserved for histograms. */
struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const char *labels, const double *buckets, size_t nbuckets);

/* Returns the family's type. `f` must not be NULL. */
enum metric_type metric_get_type(const struct metric *f);

/* Finds or creates the series of `f` for `values`: exactly as many
 * NUL-terminated strings as the family has label names, in the same order
 * (`values` is ignored for a family without labels and may be NULL). Values
 * are copied; any byte sequence is allowed. The returned series is owned by
 * the family and stays valid (and is the same pointer for the same values)
 * until metrics_free(): callers may cache it. Finding an existing series is
 * lock-free; creating one takes the family's mutex.
 * Returns NULL when `f` is NULL, `values` is NULL or holds a NULL for a
 * labelled family, a value is longer than METRICS_MAX_LABEL_VALUE_LEN, the
 * family already has METRICS_MAX_SERIES series, or on allocation failure. */
struct metric_series *metric_series_get(struct metric *f, const char *const *values);

/* Hot path: lock-free, safe from any thread. A NULL series is a no-op, and
 * so is an operation that does not fit the series' type:
 *   add:     counter (delta must be >= 0; a negative or NaN delta is
 *            ignored) or gauge (any delta);
 *   set:     gauge only;
 *   observe: histogram only (counts `value` in the first bucket whose upper
 *            bound is >= value, or +Inf, and adds it to the sum). */
void metric_series_add(struct metric_series *s, double delta);
void metric_series_set(struct metric_series *s, double value);
void metric_series_observe(struct metric_series *s, double value);

/* Reads the current value of a counter or gauge series (0 for a NULL
 * series or a histogram). Lock-free. */
double metric_series_value(const struct metric_series *s);

/* Reads a histogram series: the number of observations and their sum
 * (both 0 for a NULL series or another type). Either pointer may be NULL.
 * Lock-free; under concurrent updates the two may be from slightly
 * different instants. */
void metric_series_histogram(const struct metric_series *s, unsigned long long *count, double *sum);

/* Conveniences: metric_series_get(f, values) followed by the operation.
 * Silently do nothing when the series cannot be had (see metric_series_get). */
void metric_add(struct metric *f, const char *const *values, double delta);
void metric_set(struct metric *f, const char *const *values, double value);
void metric_observe(struct metric *f, const char *const *values, double value);

/* Appends the whole registry to `out` in the Prometheus text exposition
 * format 0.0.4: per family "# HELP" (when there is help) and "# TYPE" lines,
 * then one line per series; families in registration order, series in
 * creation order. Histograms give cumulative name_bucket{...,le="..."} lines
 * ending with le="+Inf", then name_sum and name_count. Label values escape
 * backslash, double quote and newline; help escapes backslash and newline.
 * Numbers are printed as metrics_format_double() does.
 * Safe while other threads update values or register families (a family
 * registered during the render may or may not appear).
 * Returns 0, or a negative code from sb_buf (SB_ELIMIT, -ENOMEM) in which
 * case `out` is restored to the length it had before the call. */
int metrics_render(struct metrics *m, struct sb_buf *out) SB_MUST_USE;

/* Writes `v` into `out` so that Prometheus reads back exactly the same
 * double: integers below 1e17 in plain digits ("3", "-42"), other numbers
 * in the fewest of 15, 16 or 17 significant digits that round-trip ("0.1",
 * "0.30000000000000004", "1e+21"), and "+Inf", "-Inf", "NaN". -0 is "0".
 * Returns `out`. Thread-safe. */
char *metrics_format_double(double v, char out[METRICS_DOUBLE_STRLEN]);

#endif
