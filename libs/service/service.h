/* service.h - what every Sabiá service has in common: configuration,
 * logging, metrics, the PostgreSQL pool, the Redis bus, the HTTP server with
 * /health, /health/live, /health/ready and /metrics, and graceful shutdown on
 * SIGTERM/SIGINT. Each app's main.c defines a service_def, calls
 * service_init, adds its own routes and calls service_run. */
#ifndef SABIA_SERVICE_H
#define SABIA_SERVICE_H

#include "bus.h"
#include "core.h"
#include "db.h"
#include "http.h"
#include "metrics.h"

#include <pthread.h>

struct service_def {
    const char *name;         /* "gateway", used in logs, metrics and application_name */
    const char *port_var;     /* e.g. "SABIA_GATEWAY_PORT" */
    const char *default_port; /* e.g. "3001" */
    const struct sb_config_spec *extra; /* the service's own settings; may be NULL */
    size_t nextra;
    const char *const *capture_headers; /* see http_server_config; may be NULL */
    const char *default_workers; /* default of SABIA_HTTP_WORKERS when not "4" (a service
                                    whose handlers wait on group commits wants many) */
    int redis_pool_min; /* Redis connections at least, whatever SABIA_REDIS_POOL_SIZE says
                           (services whose workers block on stream reads need one each) */
};

/* Everything here is created by service_init and owned by the service; the
 * pointers stay valid until service_cleanup. Read-only once running. */
struct service {
    const struct service_def *def;
    struct sb_config *cfg;
    struct sb_log *log;
    struct metrics *metrics;
    struct db_pool *db;
    struct bus *bus;
    struct http_server *http;
    int64_t started_ms;
    pthread_t signal_thread;
    bool signal_thread_started;
    struct metric *m_up;   /* sabia_dependency_up{dependency} */
    struct metric *m_rss;  /* process_resident_memory_bytes */
};

/* Common settings, each overridable by the environment or the .env file named
 * by SABIA_ENV_FILE (default ./.env): */
#define SERVICE_COMMON_SETTINGS                                                                    \
    "SABIA_DATABASE_URL, SABIA_REDIS_URL, SABIA_BIND, SABIA_LOG_LEVEL, SABIA_HTTP_WORKERS, "       \
    "SABIA_DB_POOL_SIZE, SABIA_REDIS_POOL_SIZE"

/* Loads configuration (printing every problem to stderr as JSON log lines),
 * creates the logger, metrics, pools and the HTTP server with the health and
 * metrics routes. Connections to PostgreSQL and Redis are lazy: a service
 * starts (and reports "degraded") while they are down. Blocks SIGTERM/SIGINT
 * in the calling thread so every thread created later inherits the mask.
 * Returns 0, SB_ECONFIG or another negative code; on failure the service is
 * cleaned up already. */
int service_init(struct service *svc, const struct service_def *def);

/* Serves until SIGTERM/SIGINT, then drains in-flight requests. Returns 0 or
 * a negative code. */
int service_run(struct service *svc);

/* Frees everything; safe after a failed service_init. */
void service_cleanup(struct service *svc);

#endif
