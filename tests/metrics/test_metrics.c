/* test_metrics.c - registration rules, series lookup and limits, value
 * updates per type, and the thread-safety promises of the registry. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* ---------------------------------------------------------------- registration */

Test(registration, new_and_free, .timeout = 30)
{
    struct metrics *m = metrics_new();
    cr_assert_not_null(m);
    metrics_free(m);
    metrics_free(NULL);
}

Test(registration, invalid_metric_names_rejected, .timeout = 30)
{
    struct metrics *m = metrics_new();
    const char *bad[] = {"", "1abc", "a-b", "a b", "a.b", "é", "a\nb", "name{x}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_null(metrics_counter(m, bad[i], "h", NULL), "accepted \"%s\"", bad[i]);
        cr_assert_null(metrics_gauge(m, bad[i], "h", NULL));
        cr_assert_null(metrics_histogram(m, bad[i], "h", NULL, NULL, 0));
    }
    cr_assert_null(metrics_counter(m, NULL, "h", NULL));
    cr_assert_null(metrics_counter(NULL, "ok", "h", NULL));
    cr_assert_not_null(metrics_counter(m, "a:b_c9", "h", NULL));
    cr_assert_not_null(metrics_counter(m, "_x", "h", NULL));
    cr_assert_not_null(metrics_counter(m, ":x", "h", NULL));
    cr_assert_not_null(metrics_counter(m, "Upper_Case", NULL, NULL));

    char name[METRICS_MAX_NAME_LEN + 2];
    memset(name, 'n', sizeof name);
    name[METRICS_MAX_NAME_LEN] = '\0';
    cr_assert_not_null(metrics_gauge(m, name, "h", NULL));
    name[METRICS_MAX_NAME_LEN] = 'n';
    name[METRICS_MAX_NAME_LEN + 1] = '\0';
    cr_assert_null(metrics_gauge(m, name, "h", NULL));
    metrics_free(m);
}

Test(registration, invalid_label_names_rejected, .timeout = 30)
{
    struct metrics *m = metrics_new();
    const char *bad[] = {"a:b", "__reserved", "1a",  "a,,b", ",a",   "a,",
                         "a,a", "a b",        "a-b", " , ",  "x,y,x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_null(metrics_counter(m, "c", "h", bad[i]), "accepted labels \"%s\"", bad[i]);
    cr_assert_null(metrics_histogram(m, "h", "h", "route,le", NULL, 0));
    cr_assert_not_null(metrics_gauge(m, "g_le", "h", "le")); /* only histograms reserve le */
    cr_assert_not_null(metrics_counter(m, "c_ok", "h", "_a,b_2,C"));

    /* METRICS_MAX_LABELS names are fine, one more is not. */
    char list[256] = "";
    for (int i = 0; i < METRICS_MAX_LABELS; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%sl%d", i ? "," : "", i);
    cr_assert_not_null(metrics_counter(m, "many", "h", list));
    snprintf(list + strlen(list), sizeof list - strlen(list), ",extra");
    cr_assert_null(metrics_counter(m, "too_many", "h", list));
    metrics_free(m);
}

Test(registration, help_limit, .timeout = 30)
{
    struct metrics *m = metrics_new();
    char *help = malloc(METRICS_MAX_HELP_LEN + 2);
    memset(help, 'h', METRICS_MAX_HELP_LEN + 1);
    help[METRICS_MAX_HELP_LEN] = '\0';
    cr_assert_not_null(metrics_counter(m, "ok", help, NULL));
    help[METRICS_MAX_HELP_LEN] = 'h';
    help[METRICS_MAX_HELP_LEN + 1] = '\0';
    cr_assert_null(metrics_counter(m, "too_long", help, NULL));
    free(help);
    metrics_free(m);
}

Test(registration, invalid_buckets_rejected, .timeout = 30)
{
    struct metrics *m = metrics_new();
    const double equal[] = {1, 1};
    const double down[] = {2, 1};
    const double with_nan[] = {1, NAN};
    const double with_inf[] = {1, INFINITY};
    const double neg_inf[] = {-INFINITY, 1};
    cr_assert_null(metrics_histogram(m, "h", "h", NULL, equal, 2));
    cr_assert_null(metrics_histogram(m, "h", "h", NULL, down, 2));
    cr_assert_null(metrics_histogram(m, "h", "h", NULL, with_nan, 2));
    cr_assert_null(metrics_histogram(m, "h", "h", NULL, with_inf, 2));
    cr_assert_null(metrics_histogram(m, "h", "h", NULL, neg_inf, 2));

    double many[METRICS_MAX_BUCKETS + 1];
    for (size_t i = 0; i < METRICS_MAX_BUCKETS + 1; i++)
        many[i] = (double)i - 3;
    cr_assert_not_null(metrics_histogram(m, "h_max", "h", NULL, many, METRICS_MAX_BUCKETS));
    cr_assert_null(metrics_histogram(m, "h_over", "h", NULL, many, METRICS_MAX_BUCKETS + 1));
    metrics_free(m);
}

Test(registration, same_registration_returns_same_family, .timeout = 30)
{
    struct metrics *m = metrics_new();
    struct metric *c = metrics_counter(m, "c", "first help", "method,status");
    cr_assert_not_null(c);
    cr_assert_eq(metrics_counter(m, "c", "other help", "method,status"), c);
    cr_assert_eq(metrics_counter(m, "c", NULL, " method , status "), c);

    struct metric *g = metrics_gauge(m, "g", "h", NULL);
    cr_assert_eq(metrics_gauge(m, "g", "h", NULL), g);
    cr_assert_eq(metrics_gauge(m, "g", "h", ""), g);

    const double defaults[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    struct metric *h = metrics_histogram(m, "h", "h", "route", NULL, 0);
    cr_assert_eq(metrics_histogram(m, "h", "h", "route", defaults, 11), h);
    cr_assert_eq(metric_get_type(c), METRIC_COUNTER);
    cr_assert_eq(metric_get_type(g), METRIC_GAUGE);
    cr_assert_eq(metric_get_type(h), METRIC_HISTOGRAM);
    metrics_free(m);
}

Test(registration, conflicting_registration_rejected, .timeout = 30)
{
    struct metrics *m = metrics_new();
    const double b1[] = {1, 2};
    const double b2[] = {1, 3};
    struct metric *c = metrics_counter(m, "c", "h", "a,b");
    struct metric *h = metrics_histogram(m, "h", "h", NULL, b1, 2);
    cr_assert_not_null(c);
    cr_assert_not_null(h);
    cr_assert_null(metrics_gauge(m, "c", "h", "a,b")); /* other type */
    cr_assert_null(metrics_histogram(m, "c", "h", "a,b", NULL, 0));
    cr_assert_null(metrics_counter(m, "c", "h", "b,a"));   /* other order */
    cr_assert_null(metrics_counter(m, "c", "h", "a"));     /* fewer */
    cr_assert_null(metrics_counter(m, "c", "h", "a,b,c")); /* more */
    cr_assert_null(metrics_counter(m, "c", "h", NULL));
    cr_assert_null(metrics_histogram(m, "h", "h", NULL, b2, 2)); /* other buckets */
    cr_assert_null(metrics_histogram(m, "h", "h", NULL, b1, 1));
    cr_assert_null(metrics_histogram(m, "h", "h", NULL, NULL, 0));
    cr_assert_eq(metrics_counter(m, "c", "h", "a,b"), c); /* the original is untouched */
    metrics_free(m);
}

Test(registration, family_limit, .timeout = 30)
{
    struct metrics *m = metrics_new();
    char name[32];
    for (int i = 0; i < METRICS_MAX_FAMILIES; i++) {
        snprintf(name, sizeof name, "f%d", i);
        cr_assert_not_null(metrics_gauge(m, name, NULL, NULL), "family %d", i);
    }
    cr_assert_null(metrics_gauge(m, "one_more", NULL, NULL));
    cr_assert_not_null(metrics_gauge(m, "f7", NULL, NULL)); /* existing ones still found */
    metrics_free(m);
}

/* ---------------------------------------------------------------- series */

Test(series, lookup_is_stable_and_copies_values, .timeout = 30)
{
    struct metrics *m = metrics_new();
    struct metric *c = metrics_counter(m, "c", "h", "a,b");
    char a[8] = "x";
    char b[8] = "y";
    struct metric_series *s = metric_series_get(c, (const char *[]){a, b});
    cr_assert_not_null(s);
    a[0] = 'z'; /* the series keeps its own copy */
    struct metric_series *other = metric_series_get(c, (const char *[]){a, b});
    cr_assert_not_null(other);
    cr_assert_neq(s, other);
    cr_assert_eq(metric_series_get(c, (const char *[]){"x", "y"}), s);
    cr_assert_eq(metric_series_get(c, (const char *[]){"z", "y"}), other);
    /* Values are compared as a whole, not concatenated. */
    struct metric_series *s1 = metric_series_get(c, (const char *[]){"ab", "c"});
    struct metric_series *s2 = metric_series_get(c, (const char *[]){"a", "bc"});
    cr_assert_neq(s1, s2);

    struct metric *g = metrics_gauge(m, "g", "h", NULL);
    struct metric_series *only = metric_series_get(g, NULL);
    cr_assert_not_null(only);
    cr_assert_eq(metric_series_get(g, (const char *[]){"ignored"}), only);
    metrics_free(m);
}

Test(series, bad_values_rejected, .timeout = 30)
{
    struct metrics *m = metrics_new();
    struct metric *c = metrics_counter(m, "c", "h", "a,b");
    cr_assert_null(metric_series_get(NULL, NULL));
    cr_assert_null(metric_series_get(c, NULL));
    cr_assert_null(metric_series_get(c, (const char *[]){"x", NULL}));
    cr_assert_null(metric_series_get(c, (const char *[]){NULL, "y"}));

    char *big = malloc(METRICS_MAX_LABEL_VALUE_LEN + 2);
    memset(big, 'v', METRICS_MAX_LABEL_VALUE_LEN + 1);
    big[METRICS_MAX_LABEL_VALUE_LEN] = '\0';
    cr_assert_not_null(metric_series_get(c, (const char *[]){big, "y"}));
    big[METRICS_MAX_LABEL_VALUE_LEN] = 'v';
    big[METRICS_MAX_LABEL_VALUE_LEN + 1] = '\0';
    cr_assert_null(metric_series_get(c, (const char *[]){"x", big}));
    free(big);

    /* Conveniences on missing series do nothing and do not crash. */
    metric_add(c, NULL, 1);
    metric_add(NULL, NULL, 1);
    metric_set(NULL, NULL, 1);
    metric_observe(NULL, NULL, 1);
    metrics_free(m);
}

Test(series, cardinality_cap, .timeout = 60)
{
    struct metrics *m = metrics_new();
    struct metric *c = metrics_counter(m, "c", "h", "id");
    char id[32];
    for (int i = 0; i < METRICS_MAX_SERIES; i++) {
        snprintf(id, sizeof id, "%d", i);
        cr_assert_not_null(metric_series_get(c, (const char *[]){id}), "series %d", i);
    }
    cr_assert_null(metric_series_get(c, (const char *[]){"one_more"}));
    metric_add(c, (const char *[]){"one_more"}, 1); /* dropped, not a crash */
    struct metric_series *s = metric_series_get(c, (const char *[]){"1234"});
    cr_assert_not_null(s); /* existing series still work */
    metric_add(c, (const char *[]){"1234"}, 2);
    cr_assert_eq(metric_series_value(s), 2);

    /* The cap is per family. */
    struct metric *other = metrics_counter(m, "other", "h", "id");
    cr_assert_not_null(metric_series_get(other, (const char *[]){"one_more"}));

    struct sb_buf b;
    sb_buf_init(&b, 4 * 1024 * 1024);
    cr_assert_eq(metrics_render(m, &b), 0);
    cr_assert_null(strstr(b.data, "c{id=\"one_more\"}"));
    cr_assert_not_null(strstr(b.data, "\nc{id=\"9999\"} 0\n"));
    cr_assert_not_null(strstr(b.data, "\nc{id=\"1234\"} 2\n"));
    sb_buf_cleanup(&b);
    metrics_free(m);
}

/* ---------------------------------------------------------------- values */

Test(values, counter_only_goes_up, .timeout = 30)
{
    struct metrics *m = metrics_new();
    struct metric_series *s = metric_series_get(metrics_counter(m, "c", "h", NULL), NULL);
    metric_series_add(s, 2);
    metric_series_add(s, -1);  /* ignored */
    metric_series_add(s, NAN); /* ignored */
    metric_series_add(s, 0.25);
    metric_series_set(s, 100);     /* not a gauge: ignored */
    metric_series_observe(s, 100); /* not a histogram: ignored */
    cr_assert_eq(metric_series_value(s), 2.25);
    metric_series_add(s, INFINITY);
    cr_assert(isinf(metric_series_value(s)));
    metrics_free(m);
}

Test(values, gauge_add_and_set, .timeout = 30)
{
    struct metrics *m = metrics_new();
    struct metric_series *s = metric_series_get(metrics_gauge(m, "g", "h", NULL), NULL);
    metric_series_add(s, 5);
    metric_series_add(s, -7.5);
    cr_assert_eq(metric_series_value(s), -2.5);
    metric_series_set(s, 42);
    cr_assert_eq(metric_series_value(s), 42);
    metric_series_observe(s, 1); /* ignored */
    cr_assert_eq(metric_series_value(s), 42);
    metrics_free(m);
}

Test(values, histogram_observe, .timeout = 30)
{
    struct metrics *m = metrics_new();
    const double bounds[] = {1, 2};
    struct metric_series *s =
        metric_series_get(metrics_histogram(m, "h", "h", NULL, bounds, 2), NULL);
    unsigned long long count = 99;
    double sum = 99;
    metric_series_histogram(s, &count, &sum);
    cr_assert_eq(count, 0);
    cr_assert_eq(sum, 0);
    metric_series_observe(s, 0.5);
    metric_series_observe(s, 3);
    metric_series_add(s, 10); /* ignored */
    metric_series_set(s, 10); /* ignored */
    metric_series_histogram(s, &count, &sum);
    cr_assert_eq(count, 2);
    cr_assert_eq(sum, 3.5);
    cr_assert_eq(metric_series_value(s), 0);
    metric_series_histogram(s, NULL, NULL);
    metric_series_histogram(NULL, &count, &sum);
    cr_assert_eq(count, 0);
    metrics_free(m);
}

Test(values, null_series_is_a_no_op, .timeout = 30)
{
    metric_series_add(NULL, 1);
    metric_series_set(NULL, 1);
    metric_series_observe(NULL, 1);
    cr_assert_eq(metric_series_value(NULL), 0);
}

/* ---------------------------------------------------------------- threads */

#define THREADS    8
#define ITERATIONS 50000

struct worker {
    struct metric *counter; /* labelled, looked up on every call */
    struct metric_series *cached;
    struct metric *histogram;
    struct metric *gauge;
    int id;
};

static void *increment(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < ITERATIONS; i++) {
        metric_add(w->counter, (const char *[]){"shared"}, 1);
        metric_series_add(w->cached, 2);
        metric_observe(w->histogram, NULL, (double)(i % 4));
        metric_add(w->gauge, NULL, (i % 2) ? -1 : 1);
    }
    return NULL;
}

static void workers_start(pthread_t *threads, struct worker *w, void *(*fn)(void *))
{
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, fn, &w[i]), 0);
}

static void workers_join(pthread_t *threads)
{
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_join(threads[i], NULL), 0);
}

static void workers_setup(struct metrics *m, struct worker *w)
{
    const double bounds[] = {0.5, 1.5};
    struct metric *c = metrics_counter(m, "ops_total", "Ops.", "kind");
    struct metric_series *cached =
        metric_series_get(metrics_counter(m, "cached_total", "C.", NULL), NULL);
    struct metric *h = metrics_histogram(m, "obs", "O.", NULL, bounds, 2);
    struct metric *g = metrics_gauge(m, "level", "L.", NULL);
    for (int i = 0; i < THREADS; i++)
        w[i] = (struct worker){c, cached, h, g, i};
}

Test(threads, concurrent_increments_sum_exactly, .timeout = 60)
{
    struct metrics *m = metrics_new();
    struct worker w[THREADS];
    pthread_t threads[THREADS];
    workers_setup(m, w);
    workers_start(threads, w, increment);
    workers_join(threads);

    const double total = (double)THREADS * ITERATIONS;
    cr_assert_eq(metric_series_value(metric_series_get(w[0].counter, (const char *[]){"shared"})),
                 total);
    cr_assert_eq(metric_series_value(w[0].cached), 2 * total);
    cr_assert_eq(metric_series_value(metric_series_get(w[0].gauge, NULL)), 0);
    unsigned long long count;
    double sum;
    metric_series_histogram(metric_series_get(w[0].histogram, NULL), &count, &sum);
    cr_assert_eq(count, (unsigned long long)total);
    cr_assert_eq(sum, total / 4 * (0 + 1 + 2 + 3));

    struct sb_buf b;
    sb_buf_init(&b, 64 * 1024);
    cr_assert_eq(metrics_render(m, &b), 0);
    cr_assert_not_null(strstr(b.data, "\nops_total{kind=\"shared\"} 400000\n"), "%s", b.data);
    cr_assert_not_null(strstr(b.data, "\nobs_bucket{le=\"0.5\"} 100000\n"));
    cr_assert_not_null(strstr(b.data, "\nobs_bucket{le=\"1.5\"} 200000\n"));
    cr_assert_not_null(strstr(b.data, "\nobs_bucket{le=\"+Inf\"} 400000\n"));
    cr_assert_not_null(strstr(b.data, "\nobs_sum 600000\n"));
    cr_assert_not_null(strstr(b.data, "\nobs_count 400000\n"));
    sb_buf_cleanup(&b);
    metrics_free(m);
}

static void *create_series(void *arg)
{
    struct worker *w = arg;
    char v[16];
    for (int i = 0; i < 2000; i++) {
        snprintf(v, sizeof v, "k%d", (i * 7 + w->id) % 500);
        metric_add(w->counter, (const char *[]){v}, 1);
    }
    return NULL;
}

Test(threads, concurrent_series_creation_makes_each_once, .timeout = 60)
{
    struct metrics *m = metrics_new();
    struct worker w[THREADS];
    pthread_t threads[THREADS];
    workers_setup(m, w);
    workers_start(threads, w, create_series);
    workers_join(threads);

    struct sb_buf b;
    sb_buf_init(&b, 1024 * 1024);
    cr_assert_eq(metrics_render(m, &b), 0);
    size_t lines = 0;
    double total = 0;
    for (const char *p = strstr(b.data, "ops_total{"); p != NULL;
         p = strstr(p + 1, "\nops_total{")) {
        lines++;
        total += strtod(strchr(p, '}') + 1, NULL);
    }
    cr_assert_eq(lines, 500);
    cr_assert_eq(total, (double)THREADS * 2000);
    sb_buf_cleanup(&b);
    metrics_free(m);
}

struct render_state {
    struct metrics *m;
    _Atomic int stop;
    _Atomic int failures; /* checked by the test thread: no asserts off it */
};

static void *register_more(void *arg)
{
    struct render_state *rs = arg;
    char name[32];
    for (int i = 0; i < 200 && !atomic_load(&rs->stop); i++) {
        snprintf(name, sizeof name, "late_%d", i);
        struct metric *g = metrics_gauge(rs->m, name, "Registered while rendering.", "x");
        if (g == NULL)
            atomic_fetch_add(&rs->failures, 1);
        metric_set(g, (const char *[]){name}, i);
    }
    return NULL;
}

Test(threads, render_while_updating, .timeout = 60)
{
    struct metrics *m = metrics_new();
    struct worker w[THREADS];
    pthread_t threads[THREADS];
    pthread_t registrar;
    struct render_state rs = {m, 0, 0};
    workers_setup(m, w);
    workers_start(threads, w, increment);
    cr_assert_eq(pthread_create(&registrar, NULL, register_more, &rs), 0);

    struct sb_buf b;
    sb_buf_init(&b, 1024 * 1024);
    double last = -1;
    for (int round = 0; round < 200; round++) {
        sb_buf_reset(&b);
        cr_assert_eq(metrics_render(m, &b), 0);
        cr_assert_eq(b.data[b.len - 1], '\n');
        const char *p = strstr(b.data, "\ncached_total ");
        cr_assert_not_null(p);
        double v = strtod(p + strlen("\ncached_total "), NULL);
        cr_assert_geq(v, last, "counter went backwards: %g after %g", v, last);
        last = v;
        /* Within one render a histogram's +Inf bucket equals its count. */
        const char *inf = strstr(b.data, "obs_bucket{le=\"+Inf\"} ");
        const char *cnt = strstr(b.data, "\nobs_count ");
        cr_assert_not_null(inf);
        cr_assert_not_null(cnt);
        cr_assert_eq(strtoull(inf + strlen("obs_bucket{le=\"+Inf\"} "), NULL, 10),
                     strtoull(cnt + strlen("\nobs_count "), NULL, 10));
    }
    atomic_store(&rs.stop, 1);
    workers_join(threads);
    cr_assert_eq(pthread_join(registrar, NULL), 0);
    cr_assert_eq(atomic_load(&rs.failures), 0);

    sb_buf_reset(&b);
    cr_assert_eq(metrics_render(m, &b), 0);
    cr_assert_not_null(strstr(b.data, "\ncached_total 800000\n"));
    sb_buf_cleanup(&b);
    metrics_free(m);
}
