/* test_render.c - metrics_render(): the exact Prometheus text exposition
 * of counters, gauges, labelled series and histograms, escaping, ordering,
 * and what happens when the output buffer is too small. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "metrics.h"

#define RENDER_MAX (1024 * 1024)

/* Renders `m` and compares the whole text with `want`. */
static void expect_render(struct metrics *m, const char *want)
{
    struct sb_buf b;
    sb_buf_init(&b, RENDER_MAX);
    cr_assert_eq(metrics_render(m, &b), 0);
    cr_assert_str_eq(b.data != NULL ? b.data : "", want);
    cr_assert_eq(b.len, strlen(want));
    sb_buf_cleanup(&b);
}

Test(render, empty_registry_renders_nothing, .timeout = 30)
{
    struct metrics *m = metrics_new();
    cr_assert_not_null(m);
    expect_render(m, "");
    metrics_free(m);
}

Test(render, counter_without_labels, .timeout = 30)
{
    struct metrics *m = metrics_new();
    struct metric *c = metrics_counter(m, "sabia_requests_total", "Requests served.", NULL);
    cr_assert_not_null(c);
    expect_render(m, "# HELP sabia_requests_total Requests served.\n"
                     "# TYPE sabia_requests_total counter\n"
                     "sabia_requests_total 0\n");
    metric_add(c, NULL, 1);
    metric_add(c, NULL, 2);
    expect_render(m, "# HELP sabia_requests_total Requests served.\n"
                     "# TYPE sabia_requests_total counter\n"
                     "sabia_requests_total 3\n");
    metric_add(c, NULL, 0.5);
    expect_render(m, "# HELP sabia_requests_total Requests served.\n"
                     "# TYPE sabia_requests_total counter\n"
                     "sabia_requests_total 3.5\n");
    metrics_free(m);
}

Test(render, no_help_means_no_help_line, .timeout = 30)
{
    struct metrics *m = metrics_new();
    struct metric *g = metrics_gauge(m, "up", NULL, NULL);
    metric_set(g, NULL, 1);
    expect_render(m, "# TYPE up gauge\nup 1\n");
    metrics_free(m);
}

Test(render, gauge_values_and_special_values, .timeout = 30)
{
    struct metrics *m = metrics_new();
    struct metric *g = metrics_gauge(m, "queue_depth", "Items waiting.", "queue");
    metric_set(g, (const char *[]){"a"}, -2.5);
    metric_set(g, (const char *[]){"b"}, INFINITY);
    metric_set(g, (const char *[]){"c"}, -INFINITY);
    metric_set(g, (const char *[]){"d"}, NAN);
    metric_set(g, (const char *[]){"e"}, 7);
    metric_add(g, (const char *[]){"e"}, -10);
    expect_render(m, "# HELP queue_depth Items waiting.\n"
                     "# TYPE queue_depth gauge\n"
                     "queue_depth{queue=\"a\"} -2.5\n"
                     "queue_depth{queue=\"b\"} +Inf\n"
                     "queue_depth{queue=\"c\"} -Inf\n"
                     "queue_depth{queue=\"d\"} NaN\n"
                     "queue_depth{queue=\"e\"} -3\n");
    metrics_free(m);
}

Test(render, labelled_series_in_creation_order, .timeout = 30)
{
    struct metrics *m = metrics_new();
    struct metric *c = metrics_counter(m, "http_requests_total", "HTTP requests.", "method,status");
    expect_render(m, "# HELP http_requests_total HTTP requests.\n"
                     "# TYPE http_requests_total counter\n");
    metric_add(c, (const char *[]){"POST", "202"}, 1);
    metric_add(c, (const char *[]){"GET", "200"}, 4);
    metric_add(c, (const char *[]){"POST", "202"}, 1);
    metric_add(c, (const char *[]){"GET", "404"}, 1);
    cr_assert_not_null(metric_series_get(c, (const char *[]){"", ""}));
    expect_render(m, "# HELP http_requests_total HTTP requests.\n"
                     "# TYPE http_requests_total counter\n"
                     "http_requests_total{method=\"POST\",status=\"202\"} 2\n"
                     "http_requests_total{method=\"GET\",status=\"200\"} 4\n"
                     "http_requests_total{method=\"GET\",status=\"404\"} 1\n"
                     "http_requests_total{method=\"\",status=\"\"} 0\n");
    metrics_free(m);
}

Test(render, families_in_registration_order, .timeout = 30)
{
    struct metrics *m = metrics_new();
    struct metric *z = metrics_gauge(m, "zeta", "Z.", NULL);
    struct metric *a = metrics_counter(m, "alpha", "A.", NULL);
    cr_assert_eq(metrics_gauge(m, "zeta", "again", NULL), z);
    metric_set(z, NULL, 1);
    metric_add(a, NULL, 2);
    expect_render(m, "# HELP zeta Z.\n# TYPE zeta gauge\nzeta 1\n"
                     "# HELP alpha A.\n# TYPE alpha counter\nalpha 2\n");
    metrics_free(m);
}

Test(render, histogram_cumulative_buckets_sum_count, .timeout = 30)
{
    struct metrics *m = metrics_new();
    const double bounds[] = {0.125, 0.5, 1};
    struct metric *h = metrics_histogram(m, "latency_seconds", "Latency.", NULL, bounds, 3);
    cr_assert_not_null(h);
    expect_render(m, "# HELP latency_seconds Latency.\n"
                     "# TYPE latency_seconds histogram\n"
                     "latency_seconds_bucket{le=\"0.125\"} 0\n"
                     "latency_seconds_bucket{le=\"0.5\"} 0\n"
                     "latency_seconds_bucket{le=\"1\"} 0\n"
                     "latency_seconds_bucket{le=\"+Inf\"} 0\n"
                     "latency_seconds_sum 0\n"
                     "latency_seconds_count 0\n");
    metric_observe(h, NULL, 0.0625);
    metric_observe(h, NULL, 0.125); /* bounds are inclusive */
    metric_observe(h, NULL, 0.25);
    metric_observe(h, NULL, 2);
    expect_render(m, "# HELP latency_seconds Latency.\n"
                     "# TYPE latency_seconds histogram\n"
                     "latency_seconds_bucket{le=\"0.125\"} 2\n"
                     "latency_seconds_bucket{le=\"0.5\"} 3\n"
                     "latency_seconds_bucket{le=\"1\"} 3\n"
                     "latency_seconds_bucket{le=\"+Inf\"} 4\n"
                     "latency_seconds_sum 2.4375\n"
                     "latency_seconds_count 4\n");
    metrics_free(m);
}

Test(render, histogram_with_labels_puts_le_last, .timeout = 30)
{
    struct metrics *m = metrics_new();
    const double bounds[] = {1, 10};
    struct metric *h = metrics_histogram(m, "size_bytes", "Sizes.", "route,method", bounds, 2);
    metric_observe(h, (const char *[]){"/v1", "GET"}, 5);
    metric_observe(h, (const char *[]){"/v1", "GET"}, -1);
    metric_observe(h, (const char *[]){"/health", "GET"}, 100);
    expect_render(m, "# HELP size_bytes Sizes.\n"
                     "# TYPE size_bytes histogram\n"
                     "size_bytes_bucket{route=\"/v1\",method=\"GET\",le=\"1\"} 1\n"
                     "size_bytes_bucket{route=\"/v1\",method=\"GET\",le=\"10\"} 2\n"
                     "size_bytes_bucket{route=\"/v1\",method=\"GET\",le=\"+Inf\"} 2\n"
                     "size_bytes_sum{route=\"/v1\",method=\"GET\"} 4\n"
                     "size_bytes_count{route=\"/v1\",method=\"GET\"} 2\n"
                     "size_bytes_bucket{route=\"/health\",method=\"GET\",le=\"1\"} 0\n"
                     "size_bytes_bucket{route=\"/health\",method=\"GET\",le=\"10\"} 0\n"
                     "size_bytes_bucket{route=\"/health\",method=\"GET\",le=\"+Inf\"} 1\n"
                     "size_bytes_sum{route=\"/health\",method=\"GET\"} 100\n"
                     "size_bytes_count{route=\"/health\",method=\"GET\"} 1\n");
    metrics_free(m);
}

Test(render, histogram_default_buckets, .timeout = 30)
{
    struct metrics *m = metrics_new();
    struct metric *h = metrics_histogram(m, "d", NULL, NULL, NULL, 0);
    metric_observe(h, NULL, 0.3);
    metric_observe(h, NULL, 11);
    metric_observe(h, NULL, NAN); /* counted in +Inf, poisons the sum */
    expect_render(m, "# TYPE d histogram\n"
                     "d_bucket{le=\"0.005\"} 0\n"
                     "d_bucket{le=\"0.01\"} 0\n"
                     "d_bucket{le=\"0.025\"} 0\n"
                     "d_bucket{le=\"0.05\"} 0\n"
                     "d_bucket{le=\"0.1\"} 0\n"
                     "d_bucket{le=\"0.25\"} 0\n"
                     "d_bucket{le=\"0.5\"} 1\n"
                     "d_bucket{le=\"1\"} 1\n"
                     "d_bucket{le=\"2.5\"} 1\n"
                     "d_bucket{le=\"5\"} 1\n"
                     "d_bucket{le=\"10\"} 1\n"
                     "d_bucket{le=\"+Inf\"} 3\n"
                     "d_sum NaN\n"
                     "d_count 3\n");
    metrics_free(m);
}

Test(render, label_values_and_help_are_escaped, .timeout = 30)
{
    struct metrics *m = metrics_new();
    struct metric *c = metrics_counter(m, "esc", "Back\\slash, \"quotes\" and\nnewline.", "v");
    metric_add(c, (const char *[]){"a\\b\"c\nd"}, 1);
    metric_add(c, (const char *[]){"\\\\\"\n"}, 1);
    metric_add(c, (const char *[]){"plain {},= text"}, 1);
    expect_render(m, "# HELP esc Back\\\\slash, \"quotes\" and\\nnewline.\n"
                     "# TYPE esc counter\n"
                     "esc{v=\"a\\\\b\\\"c\\nd\"} 1\n"
                     "esc{v=\"\\\\\\\\\\\"\\n\"} 1\n"
                     "esc{v=\"plain {},= text\"} 1\n");
    metrics_free(m);
}

Test(render, appends_after_existing_content, .timeout = 30)
{
    struct metrics *m = metrics_new();
    metrics_gauge(m, "g", NULL, NULL);
    struct sb_buf b;
    sb_buf_init(&b, 1024);
    cr_assert_eq(sb_buf_append_str(&b, "before\n"), 0);
    cr_assert_eq(metrics_render(m, &b), 0);
    cr_assert_str_eq(b.data, "before\n# TYPE g gauge\ng 0\n");
    sb_buf_cleanup(&b);
    metrics_free(m);
}

Test(render, too_small_buffer_fails_and_restores, .timeout = 30)
{
    struct metrics *m = metrics_new();
    struct metric *c = metrics_counter(m, "requests_total", "Requests.", "path");
    char path[32];
    for (int i = 0; i < 100; i++) {
        snprintf(path, sizeof path, "/p/%d", i);
        metric_add(c, (const char *[]){path}, i);
    }
    struct sb_buf b;
    sb_buf_init(&b, 256);
    cr_assert_eq(sb_buf_append_str(&b, "keep"), 0);
    cr_assert_eq(metrics_render(m, &b), SB_ELIMIT);
    cr_assert_str_eq(b.data, "keep");
    cr_assert_eq(b.len, 4);
    sb_buf_cleanup(&b);

    /* Even the very first append can fail: nothing is left behind. */
    sb_buf_init(&b, 5);
    cr_assert_eq(metrics_render(m, &b), SB_ELIMIT);
    cr_assert_eq(b.len, 0);
    sb_buf_cleanup(&b);

    /* Exactly the size needed is enough. */
    sb_buf_init(&b, RENDER_MAX);
    cr_assert_eq(metrics_render(m, &b), 0);
    size_t need = b.len;
    sb_buf_cleanup(&b);
    sb_buf_init(&b, need);
    cr_assert_eq(metrics_render(m, &b), 0);
    cr_assert_eq(b.len, need);
    sb_buf_cleanup(&b);
    sb_buf_init(&b, need - 1);
    cr_assert_eq(metrics_render(m, &b), SB_ELIMIT);
    sb_buf_cleanup(&b);
    metrics_free(m);
}

Test(render, null_arguments, .timeout = 30)
{
    struct metrics *m = metrics_new();
    struct sb_buf b;
    sb_buf_init(&b, 64);
    cr_assert_eq(metrics_render(NULL, &b), -EINVAL);
    cr_assert_eq(metrics_render(m, NULL), -EINVAL);
    sb_buf_cleanup(&b);
    metrics_free(m);
}
