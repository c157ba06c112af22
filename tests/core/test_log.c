/* test_log.c - the JSON line logger: format, filtering, escaping, limits and
 * concurrent writers. Lines are read back and parsed with jansson. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* Reads every line written to f so far; returns the count and fills lines[]
 * (heap strings, free each). */
static size_t read_lines(FILE *f, char **lines, size_t max)
{
    rewind(f);
    size_t n = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        cr_assert_lt(n, max, "too many lines");
        cr_assert_eq(line[len - 1], '\n', "line %zu not newline-terminated", n);
        lines[n++] = strdup(line);
    }
    free(line);
    return n;
}

static json_t *parse_line(const char *line)
{
    json_error_t e;
    json_t *j = json_loads(line, 0, &e);
    cr_assert_not_null(j, "not JSON (%s): %s", e.text, line);
    cr_assert(json_is_object(j));
    return j;
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_string(v), "member %s missing or not a string", key);
    return json_string_value(v);
}

Test(log, level_parse, .timeout = 30)
{
    enum sb_log_level l;
    cr_assert_eq(sb_log_level_parse("debug", &l), 0);
    cr_assert_eq(l, SB_LOG_DEBUG);
    cr_assert_eq(sb_log_level_parse("info", &l), 0);
    cr_assert_eq(l, SB_LOG_INFO);
    cr_assert_eq(sb_log_level_parse("WARN", &l), 0);
    cr_assert_eq(l, SB_LOG_WARN);
    cr_assert_eq(sb_log_level_parse("error", &l), 0);
    cr_assert_eq(l, SB_LOG_ERROR);
    cr_assert_eq(sb_log_level_parse("warning", &l), -EINVAL);
    cr_assert_eq(sb_log_level_parse("", &l), -EINVAL);
    cr_assert_eq(sb_log_level_parse(NULL, &l), -EINVAL);
}

Test(log, line_has_all_fields_in_order, .timeout = 30)
{
    FILE *f = tmpfile();
    char service[] = "gateway";
    struct sb_log *log = sb_log_new(service, SB_LOG_DEBUG, f);
    cr_assert_not_null(log);
    service[0] = 'X'; /* the logger keeps its own copy */
    struct sb_log_ctx ctx = {.tenant_id = "t-1", .correlation_id = "c-9"};
    int64_t before = sb_now_ms();
    sb_log_write(log, SB_LOG_WARN, &ctx, "\"port\":3001,\"path\":\"/health\"", "listening on %d",
                 3001);
    char *lines[4];
    cr_assert_eq(read_lines(f, lines, 4), 1);
    json_t *j = parse_line(lines[0]);
    cr_assert_str_eq(jstr(j, "level"), "warn");
    cr_assert_str_eq(jstr(j, "service"), "gateway");
    cr_assert_str_eq(jstr(j, "msg"), "listening on 3001");
    cr_assert_str_eq(jstr(j, "tenant_id"), "t-1");
    cr_assert_str_eq(jstr(j, "correlation_id"), "c-9");
    cr_assert_eq(json_integer_value(json_object_get(j, "port")), 3001);
    cr_assert_str_eq(jstr(j, "path"), "/health");
    cr_assert_null(json_object_get(j, "truncated"));
    /* time: RFC 3339 UTC with milliseconds, close to now */
    const char *t = jstr(j, "time");
    cr_assert_eq(strlen(t), SB_TIME_STRLEN - 1);
    char lo[SB_TIME_STRLEN], hi[SB_TIME_STRLEN];
    sb_time_format(before, lo);
    sb_time_format(sb_now_ms(), hi);
    cr_assert(strcmp(t, lo) >= 0 && strcmp(t, hi) <= 0, "time %s not in [%s, %s]", t, lo, hi);
    /* Order of members as documented. */
    const char *order[] = {"\"time\"", "\"level\"", "\"service\"", "\"msg\"", "\"tenant_id\"",
                           "\"correlation_id\"", "\"port\""};
    const char *prev = lines[0];
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const char *at = strstr(lines[0], order[i]);
        cr_assert_not_null(at, "%s missing", order[i]);
        cr_assert_geq(at, prev, "%s out of order in %s", order[i], lines[0]);
        prev = at;
    }
    cr_assert_eq(lines[0][0], '{');
    json_decref(j);
    free(lines[0]);
    sb_log_free(log);
    fclose(f);
}

Test(log, null_context_omits_ids, .timeout = 30)
{
    FILE *f = tmpfile();
    struct sb_log *log = sb_log_new("processor", SB_LOG_INFO, f);
    sb_log_info(log, NULL, "no ctx");
    struct sb_log_ctx half = {.tenant_id = NULL, .correlation_id = "only-corr"};
    sb_log_error(log, &half, "half ctx");
    char *lines[4];
    cr_assert_eq(read_lines(f, lines, 4), 2);
    json_t *a = parse_line(lines[0]);
    cr_assert_str_eq(jstr(a, "level"), "info");
    cr_assert_null(json_object_get(a, "tenant_id"));
    cr_assert_null(json_object_get(a, "correlation_id"));
    cr_assert_eq(json_object_size(a), 4);
    json_t *b = parse_line(lines[1]);
    cr_assert_str_eq(jstr(b, "level"), "error");
    cr_assert_null(json_object_get(b, "tenant_id"));
    cr_assert_str_eq(jstr(b, "correlation_id"), "only-corr");
    json_decref(a);
    json_decref(b);
    free(lines[0]);
    free(lines[1]);
    sb_log_free(log);
    fclose(f);
}

Test(log, levels_below_minimum_are_dropped, .timeout = 30)
{
    FILE *f = tmpfile();
    struct sb_log *log = sb_log_new("svc", SB_LOG_WARN, f);
    sb_log_debug(log, NULL, "d");
    sb_log_info(log, NULL, "i");
    sb_log_warn(log, NULL, "w");
    sb_log_error(log, NULL, "e");
    cr_assert_not(sb_log_enabled(log, SB_LOG_DEBUG));
    cr_assert_not(sb_log_enabled(log, SB_LOG_INFO));
    cr_assert(sb_log_enabled(log, SB_LOG_WARN));
    cr_assert(sb_log_enabled(log, SB_LOG_ERROR));
    cr_assert_not(sb_log_enabled(log, (enum sb_log_level)(SB_LOG_ERROR + 1)));
    char *lines[8];
    cr_assert_eq(read_lines(f, lines, 8), 2);
    json_t *a = parse_line(lines[0]), *b = parse_line(lines[1]);
    cr_assert_str_eq(jstr(a, "msg"), "w");
    cr_assert_str_eq(jstr(b, "msg"), "e");
    json_decref(a);
    json_decref(b);
    free(lines[0]);
    free(lines[1]);
    sb_log_free(log);
    fclose(f);
}

Test(log, msg_and_ids_are_escaped, .timeout = 30)
{
    FILE *f = tmpfile();
    struct sb_log *log = sb_log_new("we\"ird", SB_LOG_DEBUG, f);
    struct sb_log_ctx ctx = {.tenant_id = "t\"}", .correlation_id = "c\n"};
    sb_log_info(log, &ctx, "he said \"hi\"\nand left\\ \x01 bad:\xC3(");
    char *lines[4];
    cr_assert_eq(read_lines(f, lines, 4), 1, "a newline in msg must not split the line");
    json_t *j = parse_line(lines[0]);
    cr_assert_str_eq(jstr(j, "msg"), "he said \"hi\"\nand left\\ \x01 bad:\xEF\xBF\xBD(");
    cr_assert_str_eq(jstr(j, "service"), "we\"ird");
    cr_assert_str_eq(jstr(j, "tenant_id"), "t\"}");
    cr_assert_str_eq(jstr(j, "correlation_id"), "c\n");
    json_decref(j);
    free(lines[0]);
    sb_log_free(log);
    fclose(f);
}

Test(log, long_msg_is_truncated_and_marked, .timeout = 30)
{
    FILE *f = tmpfile();
    struct sb_log *log = sb_log_new("svc", SB_LOG_DEBUG, f);
    size_t big = 200 * 1024;
    char *msg = malloc(big + 1);
    memset(msg, '\n', big); /* worst case: every byte escapes to two */
    msg[big] = '\0';
    sb_log_info(log, NULL, "%s", msg);
    sb_log_info(log, NULL, "short");
    char *lines[4];
    cr_assert_eq(read_lines(f, lines, 4), 2);
    cr_assert_leq(strlen(lines[0]), 64 * 1024);
    json_t *j = parse_line(lines[0]);
    cr_assert(json_is_true(json_object_get(j, "truncated")));
    size_t mlen = strlen(jstr(j, "msg"));
    cr_assert_gt(mlen, 1000, "kept a useful prefix, got %zu bytes", mlen);
    cr_assert_lt(mlen, big);
    cr_assert_eq(strspn(jstr(j, "msg"), "\n"), mlen);
    json_t *k = parse_line(lines[1]);
    cr_assert_null(json_object_get(k, "truncated"));
    json_decref(j);
    json_decref(k);
    free(lines[0]);
    free(lines[1]);
    free(msg);
    sb_log_free(log);
    fclose(f);
}

Test(log, oversized_extras_are_dropped_not_the_line, .timeout = 30)
{
    FILE *f = tmpfile();
    struct sb_log *log = sb_log_new("svc", SB_LOG_DEBUG, f);
    size_t big = 100 * 1024;
    char *tenant = malloc(big + 1);
    memset(tenant, 'a', big);
    tenant[big] = '\0';
    struct sb_log_ctx ctx = {.tenant_id = tenant, .correlation_id = NULL};
    sb_log_info(log, &ctx, "still logged");
    char *lines[4];
    cr_assert_eq(read_lines(f, lines, 4), 1);
    json_t *j = parse_line(lines[0]);
    cr_assert_str_eq(jstr(j, "msg"), "still logged");
    cr_assert(json_is_true(json_object_get(j, "truncated")));
    json_decref(j);
    free(lines[0]);
    free(tenant);
    sb_log_free(log);
    fclose(f);
}

Test(log, null_logger_is_a_no_op, .timeout = 30)
{
    sb_log_info(NULL, NULL, "nothing %d", 1);
    cr_assert_not(sb_log_enabled(NULL, SB_LOG_ERROR));
    sb_log_free(NULL);
}

#define WRITERS 8
#define PER_WRITER 500

struct writer {
    struct sb_log *log;
    int id;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    char pad[600];
    memset(pad, 'a' + w->id, sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    for (int i = 0; i < PER_WRITER; i++) {
        char fields[64];
        snprintf(fields, sizeof(fields), "\"writer\":%d,\"seq\":%d", w->id, i);
        sb_log_write(w->log, SB_LOG_INFO, NULL, fields, "%s", pad);
    }
    return NULL;
}

Test(log, concurrent_writers_produce_whole_lines, .timeout = 60)
{
    FILE *f = tmpfile();
    struct sb_log *log = sb_log_new("svc", SB_LOG_DEBUG, f);
    pthread_t t[WRITERS];
    struct writer w[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (struct writer){log, i};
        cr_assert_eq(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    static char *lines[WRITERS * PER_WRITER + 1];
    size_t n = read_lines(f, lines, WRITERS * PER_WRITER + 1);
    cr_assert_eq(n, WRITERS * PER_WRITER);
    int next[WRITERS] = {0};
    for (size_t i = 0; i < n; i++) {
        json_t *j = parse_line(lines[i]);
        int id = (int)json_integer_value(json_object_get(j, "writer"));
        int seq = (int)json_integer_value(json_object_get(j, "seq"));
        cr_assert(id >= 0 && id < WRITERS);
        cr_assert_eq(seq, next[id], "writer %d: line %d out of order", id, seq);
        next[id]++;
        const char *msg = jstr(j, "msg");
        cr_assert_eq(strlen(msg), 599);
        cr_assert_eq(strspn(msg, (char[]){(char)('a' + id), 0}), 599, "mixed content");
        json_decref(j);
        free(lines[i]);
    }
    sb_log_free(log);
    fclose(f);
}
