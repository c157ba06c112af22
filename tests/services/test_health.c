/* Every service's /health, /health/live, /health/ready and /metrics against
 * the real PostgreSQL and a private Redis that the test stops and restarts;
 * start-up configuration errors; graceful exit on SIGTERM. */
#include "testsupport.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

struct svc {
    const char *name;
    const char *port_var;
};

static const struct svc SERVICES[] = {
    {"gateway", "SABIA_GATEWAY_PORT"},
    {"processor", "SABIA_PROCESSOR_PORT"},
    {"webapp", "SABIA_WEBAPP_PORT"},
    {"public-api", "SABIA_PUBLIC_API_PORT"},
};
#define NSERVICES (sizeof SERVICES / sizeof SERVICES[0])

struct running {
    pid_t pid;
    int port;
    char log[512];
};

/* Starts one service with the given Redis and database URLs. */
static void start_service(const struct svc *s, const char *redis_url, const char *db_url,
                          struct running *r)
{
    static char env[5][600];
    r->port = ts_free_port();
    snprintf(env[0], sizeof env[0], "%s=%d", s->port_var, r->port);
    snprintf(env[1], sizeof env[1], "SABIA_REDIS_URL=%s", redis_url);
    snprintf(env[2], sizeof env[2], "SABIA_DATABASE_URL=%s", db_url);
    snprintf(env[3], sizeof env[3], "SABIA_ENV_FILE=/nonexistent/.env");
    snprintf(env[4], sizeof env[4], "SABIA_LOG_LEVEL=info");
    char *extra[] = {env[0], env[1], env[2], env[3], env[4], NULL};
    char rel[128];
    snprintf(rel, sizeof rel, "apps/%s/sabia-%s", s->name, s->name);
    char *bin = ts_build_path(rel);
    snprintf(r->log, sizeof r->log, "%s/%s-%d.log", ts_env("SABIA_TEST_TMP"), s->name, r->port);
    char *argv[] = {bin, NULL};
    r->pid = ts_spawn(argv, extra, r->log);
    free(bin);
    cr_assert(ts_wait_port(r->port, 10000), "%s did not listen on %d (see %s)", s->name, r->port,
              r->log);
}

static json_t *get_json(int port, const char *path, long *status)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    char *body = ts_http("GET", url, NULL, NULL, 0, status);
    json_t *j = json_loads(body, 0, NULL);
    cr_assert_not_null(j, "GET %s: not JSON: %s", path, body);
    free(body);
    return j;
}

static const char *str(json_t *j, const char *key)
{
    const char *v = json_string_value(json_object_get(j, key));
    return v ? v : "(missing)";
}

static void expect_health(const struct running *r, const char *name, bool redis_up)
{
    long st;
    json_t *j = get_json(r->port, "/health", &st);
    cr_assert_eq(st, redis_up ? 200 : 503, "%s /health: %ld", name, st);
    cr_assert_str_eq(str(j, "status"), redis_up ? "healthy" : "degraded");
    cr_assert_str_eq(str(j, "database"), "connected");
    cr_assert_str_eq(str(j, "redis"), redis_up ? "connected" : "disconnected");
    cr_assert(json_is_string(json_object_get(j, "version")));
    json_decref(j);
    j = get_json(r->port, "/health/ready", &st);
    cr_assert_eq(st, redis_up ? 200 : 503, "%s /health/ready: %ld", name, st);
    json_decref(j);
    /* Liveness does not depend on anything. */
    j = get_json(r->port, "/health/live", &st);
    cr_assert_eq(st, 200);
    json_decref(j);
}

static void stop_gracefully(const struct running *r, const char *name)
{
    int status = ts_stop(r->pid, SIGTERM, 15000);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "%s did not exit cleanly on SIGTERM (status %d, log %s)", name, status, r->log);
}

Test(health, all_services_follow_redis_down_and_back, .timeout = 120)
{
    struct ts_redis redis = {0};
    ts_redis_start(&redis, 0);
    char redis_url[128];
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d/0", redis.port);
    const char *db_url = ts_env("SABIA_DATABASE_URL");
    struct running run[NSERVICES];
    for (size_t i = 0; i < NSERVICES; i++)
        start_service(&SERVICES[i], redis_url, db_url, &run[i]);
    for (size_t i = 0; i < NSERVICES; i++)
        expect_health(&run[i], SERVICES[i].name, true);

    ts_redis_stop(&redis);
    for (size_t i = 0; i < NSERVICES; i++)
        expect_health(&run[i], SERVICES[i].name, false);

    ts_redis_start(&redis, redis.port);
    for (size_t i = 0; i < NSERVICES; i++)
        expect_health(&run[i], SERVICES[i].name, true);

    for (size_t i = 0; i < NSERVICES; i++)
        stop_gracefully(&run[i], SERVICES[i].name);
    ts_redis_stop(&redis);
}

Test(health, database_down_is_degraded, .timeout = 60)
{
    struct ts_redis redis = {0};
    ts_redis_start(&redis, 0);
    char redis_url[128], db_url[256];
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d/0", redis.port);
    /* Nothing listens on this port: PostgreSQL is "down". */
    snprintf(db_url, sizeof db_url, "postgresql://sabia_app:x@127.0.0.1:%d/sabia", ts_free_port());
    struct running r;
    start_service(&SERVICES[0], redis_url, db_url, &r);
    long st;
    json_t *j = get_json(r.port, "/health", &st);
    cr_assert_eq(st, 503);
    cr_assert_str_eq(str(j, "status"), "degraded");
    cr_assert_str_eq(str(j, "database"), "disconnected");
    cr_assert_str_eq(str(j, "redis"), "connected");
    json_decref(j);
    stop_gracefully(&r, "gateway");
    ts_redis_stop(&redis);
}

Test(health, metrics_exposition, .timeout = 60)
{
    struct ts_redis redis = {0};
    ts_redis_start(&redis, 0);
    char redis_url[128], url[256];
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d/0", redis.port);
    struct running r;
    start_service(&SERVICES[1], redis_url, ts_env("SABIA_DATABASE_URL"), &r);
    long st;
    json_decref(get_json(r.port, "/health", &st));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", r.port);
    char *text = ts_http("GET", url, NULL, NULL, 0, &st);
    cr_assert_eq(st, 200);
    cr_assert(strstr(text, "# TYPE http_requests_total counter"), "%s", text);
    cr_assert(strstr(text, "http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1"),
              "%s", text);
    cr_assert(strstr(text, "sabia_dependency_up{dependency=\"redis\"} 1"), "%s", text);
    cr_assert(strstr(text, "sabia_build_info{service=\"processor\""), "%s", text);
    cr_assert(strstr(text, "process_resident_memory_bytes "), "%s", text);
    free(text);
    stop_gracefully(&r, "processor");
    ts_redis_stop(&redis);
}

/* Runs a service with a broken setting; it must refuse to start, exit 1 and
 * say which setting is wrong in a JSON log line. */
static void expect_config_error(const char *assignment, const char *unset, const char *needle)
{
    char log[512];
    snprintf(log, sizeof log, "%s/config-error-%d.log", ts_env("SABIA_TEST_TMP"), ts_free_port());
    char *bin = ts_build_path("apps/gateway/sabia-gateway");
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setenv("SABIA_ENV_FILE", "/nonexistent/.env", 1);
        if (unset)
            unsetenv(unset);
        if (assignment)
            putenv((char *)assignment);
        FILE *f = freopen(log, "w", stderr);
        (void)f;
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    free(bin);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d", status);
    char *out = ts_read_file(log, NULL);
    cr_assert(strstr(out, needle), "log lacks '%s': %s", needle, out);
    json_t *line = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    cr_assert_not_null(line, "not a JSON log line: %s", out);
    cr_assert_str_eq(str(line, "level"), "error");
    json_decref(line);
    free(out);
}

Test(health, bad_port_refused_at_start)
{
    expect_config_error("SABIA_GATEWAY_PORT=http", NULL, "SABIA_GATEWAY_PORT");
    expect_config_error("SABIA_GATEWAY_PORT=70000", NULL, "SABIA_GATEWAY_PORT");
}

Test(health, missing_database_url_refused_at_start)
{
    expect_config_error(NULL, "SABIA_DATABASE_URL", "SABIA_DATABASE_URL");
}

Test(health, bad_redis_url_refused_at_start)
{
    expect_config_error("SABIA_REDIS_URL=http://example", NULL, "SABIA_REDIS_URL");
}
