/* server.c - server lifecycle: create the lws context, run the loop, shut
 * down gracefully. */
#include "server.h"
#include "metrics.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libwebsockets' own diagnostics, as JSON lines like ours. Only errors. */
static void lws_log_emit(int level, const char *line)
{
    (void)level;
    struct sb_buf b;
    char ts[SB_TIME_STRLEN];
    sb_buf_init(&b, 2048);
    sb_time_format(sb_now_ms(), ts);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    if (sb_buf_appendf(&b, "{\"time\":\"%s\",\"level\":\"error\",\"service\":\"libwebsockets\",\"msg\":", ts) == 0 &&
        sb_buf_append_json_str(&b, line, n) == 0 && sb_buf_append_str(&b, "}\n") == 0)
        (void)!write(STDERR_FILENO, b.data, b.len);
    sb_buf_cleanup(&b);
}

static void apply_defaults(struct http_server_config *c)
{
    if (c->workers < 1)
        c->workers = 4;
    if (c->max_body == 0)
        c->max_body = HTTP_DEFAULT_MAX_BODY;
    if (c->header_timeout_s <= 0)
        c->header_timeout_s = 10;
    if (c->keepalive_timeout_s <= 0)
        c->keepalive_timeout_s = 5;
    if (c->drain_timeout_ms <= 0)
        c->drain_timeout_ms = 10000;
    if (c->max_requests <= 0)
        c->max_requests = 1024;
    if (c->max_requests > 65535)
        c->max_requests = 65535;
    if (!c->service)
        c->service = "sabia";
    if (!c->bind)
        c->bind = "127.0.0.1";
}

static int create_context(struct http_server *s)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    s->protocols[0] = (struct lws_protocols){
        .name = "http",
        .callback = loop_callback,
        .per_session_data_size = sizeof(struct conn),
    };
    info.port = s->cfg.port;
    info.iface = s->cfg.bind;
    info.protocols = s->protocols;
    info.user = s;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.timeout_secs = (unsigned)s->cfg.header_timeout_s;
    info.keepalive_timeout = s->cfg.keepalive_timeout_s;
    info.max_http_header_data = 8192;
    info.max_http_header_pool = (unsigned short)s->cfg.max_requests;
    info.pt_serv_buf_size = 64 * 1024;
    info.fd_limit_per_thread = 0;
    s->ctx = lws_create_context(&info);
    if (!s->ctx)
        return SB_EUNAVAIL;
    s->port = lws_get_vhost_listen_port(lws_get_vhost_by_name(s->ctx, "default"));
    return 0;
}

struct http_server *http_server_new(const struct http_server_config *cfg)
{
    lws_set_log_level(LLL_ERR, lws_log_emit);
    struct http_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    apply_defaults(&s->cfg);
    router_init(&s->router);
    loop_init_header_tokens(s);
    pthread_mutex_init(&s->work_mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_mutex_init(&s->done_mu, NULL);
    atomic_init(&s->stop_requested, false);
    s->scratch = malloc(LWS_PRE + HTTP_WRITE_CHUNK);
    if (s->cfg.metrics) {
        s->m_requests = metrics_counter(s->cfg.metrics, "http_requests_total",
                                        "HTTP requests answered.", "method,route,status");
        s->m_duration = metrics_histogram(s->cfg.metrics, "http_request_duration_seconds",
                                          "Time from request head to response ready to write.", "route",
                                          NULL, 0);
    }
    if (!s->scratch || create_context(s) != 0) {
        sb_log_error(s->cfg.log, NULL, "http: cannot listen on %s:%d", s->cfg.bind, s->cfg.port);
        http_server_free(s);
        return NULL;
    }
    return s;
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    if (s->nthreads)
        workers_stop(s);
    if (s->ctx)
        lws_context_destroy(s->ctx);
    struct exchange *ex;
    while ((ex = queue_pop(&s->done)))
        exchange_free(ex);
    while ((ex = queue_pop(&s->work)))
        exchange_free(ex);
    router_cleanup(&s->router);
    pthread_mutex_destroy(&s->work_mu);
    pthread_cond_destroy(&s->work_cv);
    pthread_mutex_destroy(&s->done_mu);
    free(s->scratch);
    free(s);
}

int http_server_port(const struct http_server *s)
{
    return s->port;
}

int http_route(struct http_server *s, const char *method, const char *pattern, http_handler_fn fn,
               void *arg, const struct http_route_opts *opts)
{
    return router_add(&s->router, method, pattern, fn, arg, opts);
}

void http_server_stop(struct http_server *s)
{
    atomic_store(&s->stop_requested, true);
    if (s->ctx)
        lws_cancel_service(s->ctx);
}

/* While draining, wake the loop regularly so the deadline is noticed even
 * when no socket is active. */
static void drain_tick(lws_sorted_usec_list_t *sul)
{
    struct http_server *s = lws_container_of(sul, struct http_server, drain_timer);
    lws_sul_schedule(s->ctx, 0, &s->drain_timer, drain_tick, 50 * LWS_US_PER_MS);
}

static void begin_stopping(struct http_server *s)
{
    s->stopping = true;
    s->drain_deadline_ms = sb_mono_ms() + s->cfg.drain_timeout_ms;
    sb_log_info(s->cfg.log, NULL, "http: stopping, %d request(s) in flight", s->inflight);
    /* New requests are answered 503 with Connection: close from here on (see
     * loop.c); the listening socket closes when the context is destroyed.
     * (lws_context_deprecate() would close it now, but crashes in lws 4.1.) */
    lws_sul_schedule(s->ctx, 0, &s->drain_timer, drain_tick, 50 * LWS_US_PER_MS);
}

int http_server_run(struct http_server *s)
{
    int rc = workers_start(s);
    if (rc != 0)
        return rc;
    sb_log_info(s->cfg.log, NULL, "http: listening on %s:%d with %d workers", s->cfg.bind, s->port,
                s->cfg.workers);
    for (;;) {
        if (atomic_load(&s->stop_requested) && !s->stopping)
            begin_stopping(s);
        if (s->stopping && s->inflight == 0)
            break;
        if (s->stopping && sb_mono_ms() > s->drain_deadline_ms) {
            sb_log_error(s->cfg.log, NULL, "http: %d request(s) still running after %d ms",
                         s->inflight, s->cfg.drain_timeout_ms);
            return -ETIMEDOUT;
        }
        if (lws_service(s->ctx, 0) < 0)
            return SB_EUNAVAIL;
    }
    lws_sul_cancel(&s->drain_timer);
    workers_stop(s);
    sb_log_info(s->cfg.log, NULL, "http: stopped");
    return 0;
}
