/* service.c - start-up, shutdown and the health/metrics endpoints shared by
 * every service. */
#include "service.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long /health waits for each dependency. */
#define SERVICE_PING_TIMEOUT_MS 1000

static const struct sb_config_spec COMMON[] = {
    {"SABIA_DATABASE_URL", SB_CONFIG_STRING, NULL, 0, 0, true,
     "PostgreSQL connection for the application role (libpq URI)"},
    {"SABIA_REDIS_URL", SB_CONFIG_STRING, NULL, 0, 0, true, "redis://[:password@]host:port/db"},
    {"SABIA_BIND", SB_CONFIG_STRING, "127.0.0.1", 0, 0, false, "address the HTTP server listens on"},
    {"SABIA_LOG_LEVEL", SB_CONFIG_STRING, "info", 0, 0, false, "debug, info, warn or error"},
    {"SABIA_HTTP_WORKERS", SB_CONFIG_INT, "4", 1, 256, false, "threads running request handlers"},
    {"SABIA_DB_POOL_SIZE", SB_CONFIG_INT, "8", 1, 200, false, "PostgreSQL connections"},
    {"SABIA_REDIS_POOL_SIZE", SB_CONFIG_INT, "4", 1, 200, false, "Redis connections"},
};
#define NCOMMON (sizeof COMMON / sizeof COMMON[0])
#define SERVICE_MAX_SETTINGS 64

/* Prints configuration errors as JSON log lines, one per problem. */
static void report_config_errors(struct sb_log *log, const struct sb_buf *err)
{
    const char *p = err->data ? err->data : "";
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n)
            sb_log_error(log, NULL, "config: %.*s", (int)n, p);
        p += n + (nl ? 1 : 0);
    }
}

static int load_config(struct service *svc, const struct service_def *def)
{
    struct sb_config_spec specs[SERVICE_MAX_SETTINGS];
    size_t n = 0;
    if (NCOMMON + 1 + def->nextra > SERVICE_MAX_SETTINGS)
        return -EINVAL;
    for (size_t i = 0; i < NCOMMON; i++) {
        specs[n] = COMMON[i];
        if (def->default_workers && strcmp(specs[n].name, "SABIA_HTTP_WORKERS") == 0)
            specs[n].default_value = def->default_workers;
        n++;
    }
    specs[n++] = (struct sb_config_spec){def->port_var, SB_CONFIG_INT, def->default_port, 1, 65535,
                                         false, "HTTP port of this service"};
    for (size_t i = 0; i < def->nextra; i++)
        specs[n++] = def->extra[i];
    const char *env_file = getenv("SABIA_ENV_FILE");
    struct sb_buf err;
    sb_buf_init(&err, 16 * 1024);
    svc->cfg = sb_config_load(specs, n, env_file ? env_file : ".env", &err);
    if (!svc->cfg) {
        struct sb_log *tmp = sb_log_new(def->name, SB_LOG_INFO, stderr);
        report_config_errors(tmp, &err);
        sb_log_free(tmp);
    }
    sb_buf_cleanup(&err);
    return svc->cfg ? 0 : SB_ECONFIG;
}

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

static void health_live(struct http_request *req, struct http_response *res, void *arg)
{
    (void)req;
    (void)arg;
    (void)http_respond_json(res, 200, json_pack("{s:s}", "status", "alive"));
}

/* Checks both dependencies; fills *db_ok and *redis_ok. */
static void check_dependencies(struct service *svc, bool *db_ok, bool *redis_ok)
{
    *db_ok = db_ping(svc->db, SERVICE_PING_TIMEOUT_MS) == 0;
    *redis_ok = bus_ping(svc->bus, SERVICE_PING_TIMEOUT_MS) == 0;
    const char *d[] = {"database"}, *r[] = {"redis"};
    metric_set(svc->m_up, d, *db_ok ? 1 : 0);
    metric_set(svc->m_up, r, *redis_ok ? 1 : 0);
}

static void health(struct http_request *req, struct http_response *res, void *arg)
{
    struct service *svc = arg;
    bool db_ok, redis_ok;
    (void)req;
    check_dependencies(svc, &db_ok, &redis_ok);
    bool ok = db_ok && redis_ok;
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "status", ok ? "healthy" : "degraded",
                             "database", db_ok ? "connected" : "disconnected", "redis",
                             redis_ok ? "connected" : "disconnected", "version", SABIA_VERSION,
                             "service", svc->def->name, "uptime_ms",
                             (json_int_t)(sb_mono_ms() - svc->started_ms));
    if (!ok)
        sb_log_warn(svc->log, NULL, "health: degraded (database %s, redis %s)",
                    db_ok ? "up" : "down", redis_ok ? "up" : "down");
    (void)http_respond_json(res, ok ? 200 : 503, body);
}

static void health_ready(struct http_request *req, struct http_response *res, void *arg)
{
    struct service *svc = arg;
    bool db_ok, redis_ok;
    (void)req;
    check_dependencies(svc, &db_ok, &redis_ok);
    bool ok = db_ok && redis_ok;
    (void)http_respond_json(res, ok ? 200 : 503,
                            json_pack("{s:s, s:b, s:b}", "status", ok ? "ready" : "not_ready",
                                      "database", db_ok, "redis", redis_ok));
}

static void metrics_page(struct http_request *req, struct http_response *res, void *arg)
{
    struct service *svc = arg;
    struct sb_buf out;
    (void)req;
    metric_set(svc->m_rss, NULL, (double)rss_bytes());
    sb_buf_init(&out, 32u * 1024 * 1024);
    if (metrics_render(svc->metrics, &out) != 0)
        (void)http_respond_error(res, 500, "internal", "cannot render metrics");
    else
        (void)http_respond(res, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
    sb_buf_cleanup(&out);
}

static int add_routes(struct service *svc)
{
    const struct http_route_opts inl = {.flags = HTTP_ROUTE_INLINE};
    int rc = http_route(svc->http, "GET", "/health/live", health_live, svc, &inl);
    if (rc == 0)
        rc = http_route(svc->http, "GET", "/health", health, svc, NULL);
    if (rc == 0)
        rc = http_route(svc->http, "GET", "/health/ready", health_ready, svc, NULL);
    if (rc == 0)
        rc = http_route(svc->http, "GET", "/metrics", metrics_page, svc, &inl);
    return rc;
}

static void register_process_metrics(struct service *svc)
{
    svc->m_up = metrics_gauge(svc->metrics, "sabia_dependency_up",
                              "1 when the dependency answered the last health check.", "dependency");
    svc->m_rss = metrics_gauge(svc->metrics, "process_resident_memory_bytes",
                               "Resident memory size in bytes.", NULL);
    struct metric *start = metrics_gauge(svc->metrics, "process_start_time_seconds",
                                         "Start time of the process since the Unix epoch.", NULL);
    metric_set(start, NULL, (double)sb_now_ms() / 1000.0);
    struct metric *info = metrics_gauge(svc->metrics, "sabia_build_info",
                                        "Version of the running service.", "service,version");
    const char *labels[] = {svc->def->name, SABIA_VERSION};
    metric_set(info, labels, 1);
}

static int create_parts(struct service *svc, const struct service_def *def)
{
    enum sb_log_level level;
    if (sb_log_level_parse(sb_config_str(svc->cfg, "SABIA_LOG_LEVEL"), &level) != 0)
        level = SB_LOG_INFO;
    svc->log = sb_log_new(def->name, level, stderr);
    svc->metrics = metrics_new();
    if (!svc->log || !svc->metrics)
        return -ENOMEM;
    register_process_metrics(svc);
    svc->db = db_pool_new(sb_config_str(svc->cfg, "SABIA_DATABASE_URL"),
                          (int)sb_config_int(svc->cfg, "SABIA_DB_POOL_SIZE"), def->name, svc->log);
    if (!svc->db) {
        sb_log_error(svc->log, NULL, "config: SABIA_DATABASE_URL is not a valid connection string");
        return SB_ECONFIG;
    }
    int err = 0;
    int pool = (int)sb_config_int(svc->cfg, "SABIA_REDIS_POOL_SIZE");
    if (pool < def->redis_pool_min)
        pool = def->redis_pool_min;
    svc->bus = bus_new(sb_config_str(svc->cfg, "SABIA_REDIS_URL"), pool, svc->log, &err);
    if (!svc->bus) {
        sb_log_error(svc->log, NULL, "config: SABIA_REDIS_URL is not valid (%s)", sb_strerror(err));
        return SB_ECONFIG;
    }
    struct http_server_config hc = {
        .service = def->name,
        .bind = sb_config_str(svc->cfg, "SABIA_BIND"),
        .port = (int)sb_config_int(svc->cfg, def->port_var),
        .workers = (int)sb_config_int(svc->cfg, "SABIA_HTTP_WORKERS"),
        .capture_headers = def->capture_headers,
        .log = svc->log,
        .metrics = svc->metrics,
    };
    svc->http = http_server_new(&hc);
    if (!svc->http)
        return SB_EUNAVAIL;
    return add_routes(svc);
}

int service_init(struct service *svc, const struct service_def *def)
{
    memset(svc, 0, sizeof *svc);
    svc->def = def;
    svc->started_ms = sb_mono_ms();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = load_config(svc, def);
    if (rc == 0)
        rc = create_parts(svc, def);
    if (rc != 0)
        service_cleanup(svc);
    return rc;
}

/* Waits for SIGTERM/SIGINT (blocked everywhere else) and stops the server. */
static void *signal_main(void *arg)
{
    struct service *svc = arg;
    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigwait(&set, &sig);
    sb_log_info(svc->log, NULL, "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    http_server_stop(svc->http);
    return NULL;
}

int service_run(struct service *svc)
{
    if (pthread_create(&svc->signal_thread, NULL, signal_main, svc) != 0)
        return -EAGAIN;
    svc->signal_thread_started = true;
    sb_log_info(svc->log, NULL, "%s %s ready in %lld ms on port %d", svc->def->name, SABIA_VERSION,
                (long long)(sb_mono_ms() - svc->started_ms), http_server_port(svc->http));
    int rc = http_server_run(svc->http);
    return rc;
}

void service_cleanup(struct service *svc)
{
    if (svc->signal_thread_started) {
        /* The signal thread may still be waiting if the server stopped on its own. */
        pthread_kill(svc->signal_thread, SIGTERM);
        pthread_join(svc->signal_thread, NULL);
        svc->signal_thread_started = false;
    }
    http_server_free(svc->http);
    bus_free(svc->bus);
    db_pool_free(svc->db);
    metrics_free(svc->metrics);
    sb_log_free(svc->log);
    sb_config_free(svc->cfg);
    memset(svc, 0, sizeof *svc);
}
