/* metrics.c - the registry: family registration and validation, series
 * lookup and creation, and the lock-free value updates.
 *
 * Families and series are only ever appended, never removed before
 * metrics_free(), which is what lets readers walk the lists without a lock:
 * a writer (holding the owner's mutex) fills a node completely and then
 * publishes it with a release store; readers follow links with acquire
 * loads. Values are doubles kept as their bit patterns in _Atomic uint64_t
 * and updated with compare-and-swap. */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Hash chains per labelled family: at the cardinality cap a chain averages
 * about 40 entries, and a typical family is far below the cap. */
#define SERIES_TABLE_SIZE 256

static const double default_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

struct metric_series {
    struct metric *family;
    _Atomic(struct metric_series *) hash_next;  /* same hash chain */
    _Atomic(struct metric_series *) order_next; /* creation order */
    uint64_t hash;
    char **values;             /* family->nlabels copies, inside this allocation */
    _Atomic uint64_t value;    /* counter/gauge value or histogram sum, as double bits */
    _Atomic uint64_t counts[]; /* histogram: per-bucket (not cumulative) counts, +Inf last */
};

struct metric {
    enum metric_type type;
    char *name;
    char *help; /* NULL: no # HELP line */
    char *labels[METRICS_MAX_LABELS];
    size_t nlabels;
    double *buckets; /* histogram upper bounds, +Inf not included */
    size_t nbuckets;
    pthread_mutex_t lock; /* serialises series creation */
    bool lock_ready;
    size_t nseries;                        /* under lock */
    struct metric_series *last;            /* under lock */
    _Atomic(struct metric_series *) first; /* creation-order list */
    size_t table_size;
    _Atomic(struct metric_series *) *table; /* hash chains */
    _Atomic(struct metric *) next;          /* registration order */
};

struct metrics {
    pthread_mutex_t lock; /* serialises registration */
    size_t nfamilies;     /* under lock */
    struct metric *last;  /* under lock */
    _Atomic(struct metric *) first;
};

/* One comma-separated label list cut into borrowed name pieces. */
struct label_spec {
    struct sb_str names[METRICS_MAX_LABELS];
    size_t n;
};

/* ---------------------------------------------------------------- helpers */

static uint64_t bits_from_double(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

static double double_from_bits(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static void atomic_add_double(_Atomic uint64_t *p, double delta)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    uint64_t next;
    do {
        next = bits_from_double(double_from_bits(old) + delta);
    } while (!atomic_compare_exchange_weak_explicit(p, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
}

static bool is_name_start(char c, bool colon_ok)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':');
}

static bool is_name_char(char c, bool colon_ok)
{
    return is_name_start(c, colon_ok) || (c >= '0' && c <= '9');
}

/* Metric names allow ':', label names do not. */
static bool name_valid(const char *p, size_t n, bool colon_ok)
{
    if (n == 0 || n > METRICS_MAX_NAME_LEN || !is_name_start(p[0], colon_ok))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_name_char(p[i], colon_ok))
            return false;
    return true;
}

/* Splits `labels` into names, trimming spaces. Returns false when a name is
 * empty, malformed, reserved ("__" prefix, or "le" for a histogram),
 * repeated, or there are too many. */
static bool labels_parse(const char *labels, enum metric_type type, struct label_spec *spec)
{
    spec->n = 0;
    if (labels == NULL || labels[strspn(labels, " ")] == '\0')
        return true;
    const char *p = labels;
    for (;;) {
        size_t len = strcspn(p, ",");
        const char *start = p + strspn(p, " ");
        const char *end = p + len;
        while (end > start && end[-1] == ' ')
            end--;
        struct sb_str name = {start, (size_t)(end - start)};
        if (spec->n == METRICS_MAX_LABELS || !name_valid(name.ptr, name.len, false))
            return false;
        if (name.len >= 2 && name.ptr[0] == '_' && name.ptr[1] == '_')
            return false;
        if (type == METRIC_HISTOGRAM && sb_str_eq_c(name, "le"))
            return false;
        for (size_t i = 0; i < spec->n; i++)
            if (sb_str_eq(spec->names[i], name))
                return false;
        spec->names[spec->n++] = name;
        if (p[len] == '\0')
            return true;
        p += len + 1;
    }
}

static bool buckets_valid(const double *buckets, size_t n)
{
    if (n > METRICS_MAX_BUCKETS)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1])))
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------- registry */

struct metrics *metrics_new(void)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    atomic_init(&m->first, NULL);
    return m;
}

static void family_free(struct metric *f)
{
    if (f == NULL)
        return;
    struct metric_series *s = atomic_load_explicit(&f->first, memory_order_relaxed);
    while (s != NULL) {
        struct metric_series *next = atomic_load_explicit(&s->order_next, memory_order_relaxed);
        free(s);
        s = next;
    }
    if (f->lock_ready)
        pthread_mutex_destroy(&f->lock);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->table);
    free(f->buckets);
    free(f->help);
    free(f->name);
    free(f);
}

void metrics_free(struct metrics *m)
{
    if (m == NULL)
        return;
    struct metric *f = atomic_load_explicit(&m->first, memory_order_relaxed);
    while (f != NULL) {
        struct metric *next = atomic_load_explicit(&f->next, memory_order_relaxed);
        family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* True when the existing family `f` was registered with the same shape. */
static bool family_matches(const struct metric *f, enum metric_type type,
                           const struct label_spec *spec, const double *buckets, size_t nbuckets)
{
    if (f->type != type || f->nlabels != spec->n)
        return false;
    for (size_t i = 0; i < spec->n; i++)
        if (!sb_str_eq_c(spec->names[i], f->labels[i]))
            return false;
    if (type != METRIC_HISTOGRAM)
        return true;
    if (f->nbuckets != nbuckets)
        return false;
    for (size_t i = 0; i < nbuckets; i++)
        if (f->buckets[i] != buckets[i])
            return false;
    return true;
}

static struct metric *family_new(enum metric_type type, const char *name, const char *help,
                                 const struct label_spec *spec, const double *buckets,
                                 size_t nbuckets)
{
    struct metric *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->type = type;
    atomic_init(&f->first, NULL);
    atomic_init(&f->next, NULL);
    f->name = sb_str_dup(sb_str_c(name));
    f->help = help != NULL ? sb_str_dup(sb_str_c(help)) : NULL;
    f->table_size = spec->n > 0 ? SERIES_TABLE_SIZE : 1;
    f->table = calloc(f->table_size, sizeof *f->table);
    if (f->name == NULL || (help != NULL && f->help == NULL) || f->table == NULL)
        goto fail;
    for (size_t i = 0; i < f->table_size; i++)
        atomic_init(&f->table[i], NULL);
    for (; f->nlabels < spec->n; f->nlabels++) {
        f->labels[f->nlabels] = sb_str_dup(spec->names[f->nlabels]);
        if (f->labels[f->nlabels] == NULL)
            goto fail;
    }
    if (type == METRIC_HISTOGRAM && nbuckets > 0) {
        f->buckets = malloc(nbuckets * sizeof *f->buckets);
        if (f->buckets == NULL)
            goto fail;
        memcpy(f->buckets, buckets, nbuckets * sizeof *f->buckets);
        f->nbuckets = nbuckets;
    }
    if (pthread_mutex_init(&f->lock, NULL) != 0)
        goto fail;
    f->lock_ready = true;
    /* A family without labels has exactly one series: make it now so that
     * it renders as 0 before the first update. */
    if (spec->n == 0 && metric_series_get(f, NULL) == NULL)
        goto fail;
    return f;
fail:
    family_free(f);
    return NULL;
}

static struct metric *family_register(struct metrics *m, enum metric_type type, const char *name,
                                      const char *help, const char *labels, const double *buckets,
                                      size_t nbuckets)
{
    struct label_spec spec;
    if (m == NULL || name == NULL ||
        !name_valid(name, strnlen(name, METRICS_MAX_NAME_LEN + 1), true))
        return NULL;
    if (help != NULL && strnlen(help, METRICS_MAX_HELP_LEN + 1) > METRICS_MAX_HELP_LEN)
        return NULL;
    if (!labels_parse(labels, type, &spec))
        return NULL;
    if (type == METRIC_HISTOGRAM && (buckets == NULL || nbuckets == 0)) {
        buckets = default_buckets;
        nbuckets = sizeof default_buckets / sizeof default_buckets[0];
    }
    if (type == METRIC_HISTOGRAM && !buckets_valid(buckets, nbuckets))
        return NULL;

    struct metric *found = NULL;
    pthread_mutex_lock(&m->lock);
    for (struct metric *f = atomic_load_explicit(&m->first, memory_order_relaxed); f != NULL;
         f = atomic_load_explicit(&f->next, memory_order_relaxed)) {
        if (strcmp(f->name, name) == 0) {
            found = family_matches(f, type, &spec, buckets, nbuckets) ? f : NULL;
            goto out;
        }
    }
    if (m->nfamilies == METRICS_MAX_FAMILIES)
        goto out;
    found = family_new(type, name, help, &spec, buckets, nbuckets);
    if (found == NULL)
        goto out;
    if (m->last != NULL)
        atomic_store_explicit(&m->last->next, found, memory_order_release);
    else
        atomic_store_explicit(&m->first, found, memory_order_release);
    m->last = found;
    m->nfamilies++;
out:
    pthread_mutex_unlock(&m->lock);
    return found;
}

struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
                               const char *labels)
{
    return family_register(m, METRIC_COUNTER, name, help, labels, NULL, 0);
}

struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
                             const char *labels)
{
    return family_register(m, METRIC_GAUGE, name, help, labels, NULL, 0);
}

struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const char *labels, const double *buckets, size_t nbuckets)
{
    return family_register(m, METRIC_HISTOGRAM, name, help, labels, buckets, nbuckets);
}

enum metric_type metric_get_type(const struct metric *f)
{
    return f->type;
}

/* ---------------------------------------------------------------- series */

/* FNV-1a over the values, each followed by a 0xff separator. */
static uint64_t values_hash(const char *const *values, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)values[i]; *p != '\0'; p++)
            h = (h ^ *p) * 1099511628211ull;
        h = (h ^ 0xffu) * 1099511628211ull;
    }
    return h;
}

static struct metric_series *series_find(struct metric *f, const char *const *values, uint64_t hash)
{
    struct metric_series *s =
        atomic_load_explicit(&f->table[hash % f->table_size], memory_order_acquire);
    for (; s != NULL; s = atomic_load_explicit(&s->hash_next, memory_order_acquire)) {
        if (s->hash != hash)
            continue;
        size_t i = 0;
        while (i < f->nlabels && strcmp(s->values[i], values[i]) == 0)
            i++;
        if (i == f->nlabels)
            return s;
    }
    return NULL;
}

/* Builds a series in one allocation: the struct, the histogram counts,
 * the value pointer array and the value strings. */
static struct metric_series *series_alloc(struct metric *f, const char *const *values,
                                          uint64_t hash)
{
    size_t ncounts = f->type == METRIC_HISTOGRAM ? f->nbuckets + 1 : 0;
    size_t lens[METRICS_MAX_LABELS];
    size_t size = sizeof(struct metric_series) + ncounts * sizeof(_Atomic uint64_t) +
                  f->nlabels * sizeof(char *);
    for (size_t i = 0; i < f->nlabels; i++) {
        lens[i] = strnlen(values[i], METRICS_MAX_LABEL_VALUE_LEN + 1);
        if (lens[i] > METRICS_MAX_LABEL_VALUE_LEN)
            return NULL;
        size += lens[i] + 1;
    }
    struct metric_series *s = malloc(size);
    if (s == NULL)
        return NULL;
    s->family = f;
    s->hash = hash;
    atomic_init(&s->hash_next, NULL);
    atomic_init(&s->order_next, NULL);
    atomic_init(&s->value, bits_from_double(0.0));
    for (size_t i = 0; i < ncounts; i++)
        atomic_init(&s->counts[i], 0);
    s->values = (char **)(void *)&s->counts[ncounts];
    char *text = (char *)&s->values[f->nlabels];
    for (size_t i = 0; i < f->nlabels; i++) {
        memcpy(text, values[i], lens[i] + 1);
        s->values[i] = text;
        text += lens[i] + 1;
    }
    return s;
}

struct metric_series *metric_series_get(struct metric *f, const char *const *values)
{
    if (f == NULL || (f->nlabels > 0 && values == NULL))
        return NULL;
    for (size_t i = 0; i < f->nlabels; i++)
        if (values[i] == NULL)
            return NULL;
    uint64_t hash = values_hash(values, f->nlabels);
    struct metric_series *s = series_find(f, values, hash);
    if (s != NULL)
        return s;

    pthread_mutex_lock(&f->lock);
    s = series_find(f, values, hash); /* another thread may have just made it */
    if (s == NULL && f->nseries < METRICS_MAX_SERIES) {
        s = series_alloc(f, values, hash);
        if (s != NULL) {
            _Atomic(struct metric_series *) *chain = &f->table[hash % f->table_size];
            atomic_store_explicit(&s->hash_next, atomic_load_explicit(chain, memory_order_relaxed),
                                  memory_order_relaxed);
            atomic_store_explicit(chain, s, memory_order_release);
            if (f->last != NULL)
                atomic_store_explicit(&f->last->order_next, s, memory_order_release);
            else
                atomic_store_explicit(&f->first, s, memory_order_release);
            f->last = s;
            f->nseries++;
        }
    }
    pthread_mutex_unlock(&f->lock);
    return s;
}

/* ---------------------------------------------------------------- values */

void metric_series_add(struct metric_series *s, double delta)
{
    if (s == NULL || s->family->type == METRIC_HISTOGRAM)
        return;
    if (s->family->type == METRIC_COUNTER && !(delta >= 0))
        return;
    atomic_add_double(&s->value, delta);
}

void metric_series_set(struct metric_series *s, double value)
{
    if (s == NULL || s->family->type != METRIC_GAUGE)
        return;
    atomic_store_explicit(&s->value, bits_from_double(value), memory_order_relaxed);
}

void metric_series_observe(struct metric_series *s, double value)
{
    if (s == NULL || s->family->type != METRIC_HISTOGRAM)
        return;
    const double *b = s->family->buckets;
    size_t lo = 0;
    size_t hi = s->family->nbuckets;
    while (lo < hi) { /* first bound >= value; NaN lands in +Inf */
        size_t mid = lo + (hi - lo) / 2;
        if (value <= b[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&s->counts[lo], 1, memory_order_relaxed);
    atomic_add_double(&s->value, value);
}

double metric_series_value(const struct metric_series *s)
{
    if (s == NULL || s->family->type == METRIC_HISTOGRAM)
        return 0;
    return double_from_bits(atomic_load_explicit(&s->value, memory_order_relaxed));
}

void metric_series_histogram(const struct metric_series *s, unsigned long long *count, double *sum)
{
    unsigned long long total = 0;
    double total_sum = 0;
    if (s != NULL && s->family->type == METRIC_HISTOGRAM) {
        for (size_t i = 0; i <= s->family->nbuckets; i++)
            total += atomic_load_explicit(&s->counts[i], memory_order_relaxed);
        total_sum = double_from_bits(atomic_load_explicit(&s->value, memory_order_relaxed));
    }
    if (count != NULL)
        *count = total;
    if (sum != NULL)
        *sum = total_sum;
}

void metric_add(struct metric *f, const char *const *values, double delta)
{
    metric_series_add(metric_series_get(f, values), delta);
}

void metric_set(struct metric *f, const char *const *values, double value)
{
    metric_series_set(metric_series_get(f, values), value);
}

void metric_observe(struct metric *f, const char *const *values, double value)
{
    metric_series_observe(metric_series_get(f, values), value);
}

/* ---------------------------------------------------------------- render */

/* Output state: once an append fails, later appends are skipped and the
 * first error is kept. */
struct render {
    struct sb_buf *out;
    int rc;
};

static void put(struct render *r, const char *p, size_t n)
{
    if (r->rc == 0 && n > 0)
        r->rc = sb_buf_append(r->out, p, n);
}

static void put_str(struct render *r, const char *s)
{
    put(r, s, strlen(s));
}

static void put_double(struct render *r, double v)
{
    char num[METRICS_DOUBLE_STRLEN];
    put_str(r, metrics_format_double(v, num));
}

/* Escapes backslash and newline, and double quote when `quote` is set
 * (label values); help text keeps its quotes. */
static void put_escaped(struct render *r, const char *s, bool quote)
{
    const char *run = s;
    const char *p = s;
    for (; *p != '\0'; p++) {
        const char *rep = *p == '\\'           ? "\\\\"
                          : *p == '\n'         ? "\\n"
                          : quote && *p == '"' ? "\\\""
                                               : NULL;
        if (rep != NULL) {
            put(r, run, (size_t)(p - run));
            put_str(r, rep);
            run = p + 1;
        }
    }
    put(r, run, (size_t)(p - run));
}

/* Writes the family name, `suffix`, and the label set of `s` plus an
 * optional le label: name_suffix{a="x",le="0.5"}. */
static void put_sample_name(struct render *r, const struct metric_series *s, const char *suffix,
                            const char *le)
{
    const struct metric *f = s->family;
    put_str(r, f->name);
    put_str(r, suffix);
    if (f->nlabels == 0 && le == NULL)
        return;
    put_str(r, "{");
    for (size_t i = 0; i < f->nlabels; i++) {
        if (i > 0)
            put_str(r, ",");
        put_str(r, f->labels[i]);
        put_str(r, "=\"");
        put_escaped(r, s->values[i], true);
        put_str(r, "\"");
    }
    if (le != NULL) {
        put_str(r, f->nlabels > 0 ? ",le=\"" : "le=\"");
        put_str(r, le);
        put_str(r, "\"");
    }
    put_str(r, "}");
}

static void put_histogram(struct render *r, const struct metric_series *s)
{
    const struct metric *f = s->family;
    char le[METRICS_DOUBLE_STRLEN];
    unsigned long long cumulative = 0;
    char count[METRICS_DOUBLE_STRLEN];
    /* _count is the +Inf bucket as read here, so the two always agree. */
    for (size_t i = 0; i <= f->nbuckets; i++) {
        cumulative += atomic_load_explicit(&s->counts[i], memory_order_relaxed);
        if (i < f->nbuckets)
            metrics_format_double(f->buckets[i], le);
        put_sample_name(r, s, "_bucket", i < f->nbuckets ? le : "+Inf");
        snprintf(count, sizeof count, " %llu\n", cumulative);
        put_str(r, count);
    }
    put_sample_name(r, s, "_sum", NULL);
    put_str(r, " ");
    put_double(r, double_from_bits(atomic_load_explicit(&s->value, memory_order_relaxed)));
    put_str(r, "\n");
    put_sample_name(r, s, "_count", NULL);
    snprintf(count, sizeof count, " %llu\n", cumulative);
    put_str(r, count);
}

static void put_family(struct render *r, const struct metric *f)
{
    static const char *const type_names[] = {
        [METRIC_COUNTER] = "counter", [METRIC_GAUGE] = "gauge", [METRIC_HISTOGRAM] = "histogram"};
    if (f->help != NULL) {
        put_str(r, "# HELP ");
        put_str(r, f->name);
        put_str(r, " ");
        put_escaped(r, f->help, false);
        put_str(r, "\n");
    }
    put_str(r, "# TYPE ");
    put_str(r, f->name);
    put_str(r, " ");
    put_str(r, type_names[f->type]);
    put_str(r, "\n");
    for (const struct metric_series *s = atomic_load_explicit(&f->first, memory_order_acquire);
         s != NULL && r->rc == 0; s = atomic_load_explicit(&s->order_next, memory_order_acquire)) {
        if (f->type == METRIC_HISTOGRAM) {
            put_histogram(r, s);
            continue;
        }
        put_sample_name(r, s, "", NULL);
        put_str(r, " ");
        put_double(r, double_from_bits(atomic_load_explicit(&s->value, memory_order_relaxed)));
        put_str(r, "\n");
    }
}

int metrics_render(struct metrics *m, struct sb_buf *out)
{
    if (m == NULL || out == NULL)
        return -EINVAL;
    size_t start = out->len;
    struct render r = {out, 0};
    for (const struct metric *f = atomic_load_explicit(&m->first, memory_order_acquire);
         f != NULL && r.rc == 0; f = atomic_load_explicit(&f->next, memory_order_acquire))
        put_family(&r, f);
    if (r.rc != 0 && out->data != NULL) {
        out->len = start; /* drop the partial text */
        out->data[start] = '\0';
    }
    return r.rc;
}
