/* loop.c - libwebsockets callbacks: read a request head and body into an
 * exchange, route it, hand it to a worker (or run an inline handler), and
 * write the response when it comes back. Runs on the event loop thread only. */
#include "server.h"
#include "metrics.h"

#include <stdlib.h>
#include <string.h>


static void exchange_release(struct http_server *s, struct exchange *ex);

static const struct {
    enum lws_token_indexes tok;
    const char *method;
} METHOD_TOKENS[] = {
    {WSI_TOKEN_GET_URI, "GET"},        {WSI_TOKEN_POST_URI, "POST"},
    {WSI_TOKEN_PUT_URI, "PUT"},        {WSI_TOKEN_PATCH_URI, "PATCH"},
    {WSI_TOKEN_DELETE_URI, "DELETE"},  {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
    {WSI_TOKEN_HEAD_URI, "HEAD"},
};

static const char *request_method(struct lws *wsi)
{
    for (size_t i = 0; i < sizeof METHOD_TOKENS / sizeof METHOD_TOKENS[0]; i++)
        if (lws_hdr_total_length(wsi, METHOD_TOKENS[i].tok) > 0)
            return METHOD_TOKENS[i].method;
    return NULL;
}

static bool is_header_token(enum lws_token_indexes t)
{
    for (size_t i = 0; i < sizeof METHOD_TOKENS / sizeof METHOD_TOKENS[0]; i++)
        if (METHOD_TOKENS[i].tok == t)
            return false;
    return t != WSI_TOKEN_HTTP_URI_ARGS && t != WSI_TOKEN_HTTP_COLON_PATH;
}

void loop_init_header_tokens(struct http_server *s)
{
    s->nheader_tokens = 0;
    for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
        const char *name = (const char *)lws_token_to_string((enum lws_token_indexes)t);
        if (name && is_header_token((enum lws_token_indexes)t))
            s->header_tokens[s->nheader_tokens++] =
                (struct header_token){.tok = (enum lws_token_indexes)t, .name = name};
    }
}

/* Copies every header lws parsed by name, then the configured custom ones. */
static int capture_headers(struct http_server *s, struct lws *wsi, struct http_request *r)
{
    static const char *const always[] = {"x-request-id", "x-correlation-id", NULL};
    char buf[8192];
    for (int i = 0; i < s->nheader_tokens; i++) {
        enum lws_token_indexes t = s->header_tokens[i].tok;
        if (lws_hdr_total_length(wsi, t) <= 0)
            continue;
        if (lws_hdr_copy(wsi, buf, sizeof buf, t) < 0)
            return SB_ELIMIT;
        int rc = request_add_header(r, s->header_tokens[i].name, buf);
        if (rc != 0)
            return rc;
    }
    const char *const *lists[] = {always, s->cfg.capture_headers};
    for (size_t l = 0; l < 2; l++) {
        for (const char *const *h = lists[l]; h && *h; h++) {
            char name[128];
            int nlen = snprintf(name, sizeof name, "%s:", *h);
            if (nlen <= 0 || (size_t)nlen >= sizeof name || http_request_header(r, *h))
                continue;
            if (lws_hdr_custom_length(wsi, name, nlen) < 0)
                continue;
            if (lws_hdr_custom_copy(wsi, buf, sizeof buf, name, nlen) < 0)
                return SB_ELIMIT;
            int rc = request_add_header(r, name, buf);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static int capture_query(struct lws *wsi, struct http_request *r)
{
    char buf[HTTP_MAX_URI];
    for (int i = 0; i < HTTP_MAX_QUERY_ARGS; i++) {
        int n = lws_hdr_copy_fragment(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        if (n == 0)
            continue;
        int rc = request_add_query_arg(r, buf);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Sets a canned error response on an exchange that will not reach a handler. */
static void exchange_fail(struct exchange *ex, int status, const char *code, const char *msg)
{
    if (http_respond_error(&ex->res, status, code, msg) != 0)
        ex->res.status = status;
    ex->state = EX_READY;
}

static int bind_route(struct http_server *s, struct exchange *ex)
{
    struct router_param params[HTTP_MAX_PARAMS];
    struct sb_buf allow;
    sb_buf_init(&allow, 256);
    enum router_result rr = router_match(&s->router, ex->req.method, ex->req.path, &ex->req.route,
                                         params, &ex->req.nparams, &allow);
    if (rr == ROUTER_NOT_FOUND) {
        exchange_fail(ex, 404, "not_found", "no such route");
    } else if (rr == ROUTER_METHOD_NOT_ALLOWED) {
        exchange_fail(ex, 405, "method_not_allowed", "method not allowed on this route");
        if (allow.len && http_response_header(&ex->res, "Allow", allow.data) != 0)
            ex->close_after = true;
    } else {
        for (int i = 0; i < ex->req.nparams; i++) {
            ex->req.params[i].name = request_strndup(&ex->req, params[i].name, strlen(params[i].name));
            ex->req.params[i].value = request_strndup(&ex->req, params[i].value, params[i].len);
            if (!ex->req.params[i].name || !ex->req.params[i].value) {
                ex->req.nparams = i + 1;
                sb_buf_cleanup(&allow);
                return -ENOMEM;
            }
        }
        const struct http_route_opts *o = &ex->req.route->opts;
        ex->inline_handler = (o->flags & (HTTP_ROUTE_INLINE | HTTP_ROUTE_TRY_INLINE)) != 0;
        ex->max_body = o->max_body ? o->max_body : s->cfg.max_body;
        ex->req.body.max = ex->max_body;
    }
    sb_buf_cleanup(&allow);
    return 0;
}

/* Runs the handler on the current thread (worker or, for inline routes, loop). */
void exchange_run_handler(struct exchange *ex)
{
    ex->res.status = 0;
    ex->req.route->fn(&ex->req, &ex->res, ex->req.route->arg);
    if (ex->deferred || ex->to_worker)
        return; /* the response is someone else's now, or comes later */
    response_ensure(&ex->res, "handler gave no response");
}

void response_ensure(struct http_response *res, const char *why)
{
    if (res->status == 0 && http_respond_error(res, 500, "internal", why) != 0)
        res->status = 500;
}

/* A handler on the loop passed its request on: forget what it may have set. */
static void response_reset(struct http_response *res)
{
    res->status = 0;
    res->content_type[0] = '\0';
    res->delay_ms = 0;
    sb_buf_reset(&res->headers);
    sb_buf_reset(&res->body);
}

static void arm_delay_timer(struct http_server *s);

/* The head of the delay queue is due: release every due response. */
static void delay_fired(lws_sorted_usec_list_t *sul)
{
    struct http_server *s = lws_container_of(sul, struct http_server, delay_timer);
    lws_usec_t now = lws_now_usecs();
    while (s->delayed.head && s->delayed.head->due_us <= now) {
        struct exchange *ex = queue_pop(&s->delayed);
        ex->timer_armed = false;
        ex->delay_done = true;
        lws_callback_on_writable(ex->wsi);
    }
    arm_delay_timer(s);
}

static void arm_delay_timer(struct http_server *s)
{
    if (!s->delayed.head)
        return;
    lws_usec_t now = lws_now_usecs(), due = s->delayed.head->due_us;
    lws_sul_schedule(s->ctx, 0, &s->delay_timer, delay_fired, due > now ? due - now : 1);
}

/* Inserts in due order; with equal delays every insertion is an append. */
static void delay_insert(struct http_server *s, struct exchange *ex)
{
    struct exchange **pp = &s->delayed.head;
    if (s->delayed.tail && s->delayed.tail->due_us <= ex->due_us)
        pp = &s->delayed.tail->next;
    else
        while (*pp && (*pp)->due_us <= ex->due_us)
            pp = &(*pp)->next;
    ex->next = *pp;
    *pp = ex;
    if (!ex->next)
        s->delayed.tail = ex;
    ex->timer_armed = true;
    if (s->delayed.head == ex)
        arm_delay_timer(s);
}

/* A delayed exchange whose connection closed leaves the queue. */
static void delay_remove(struct http_server *s, struct exchange *ex)
{
    struct exchange *prev = NULL;
    for (struct exchange *it = s->delayed.head; it; prev = it, it = it->next) {
        if (it != ex)
            continue;
        if (prev)
            prev->next = it->next;
        else
            s->delayed.head = it->next;
        if (s->delayed.tail == it)
            s->delayed.tail = prev;
        break;
    }
    ex->timer_armed = false;
    ex->next = NULL;
    if (!s->delayed.head)
        lws_sul_cancel(&s->delay_timer);
}

/* The response is ready: write it now, or after its delay. */
static void schedule_write(struct http_server *s, struct exchange *ex)
{
    if (ex->res.delay_ms > 0 && !ex->delay_done) {
        ex->due_us = lws_now_usecs() + (lws_usec_t)ex->res.delay_ms * LWS_US_PER_MS;
        delay_insert(s, ex);
        return;
    }
    lws_callback_on_writable(ex->wsi);
}

/* The exchange leaves the loop's hands until it comes back on the done queue. */
static void mark_away(struct http_server *s, struct exchange *ex)
{
    ex->state = EX_QUEUED;
    ex->counted = true;
    s->inflight++;
}

/* Runs an inline (or try-inline) handler on the loop. True when the request
 * must go to a worker after all. */
static bool run_on_loop(struct http_server *s, struct exchange *ex)
{
    ex->on_loop = true;
    exchange_run_handler(ex);
    ex->on_loop = false;
    if (ex->to_worker) {
        ex->to_worker = false;
        response_reset(&ex->res);
        return true;
    }
    if (ex->deferred) {
        mark_away(s, ex);
        if (!exchange_let_go(ex))
            return false; /* the finisher hands it back through the done queue */
    }
    ex->state = EX_READY; /* answered, or deferred and finished already */
    schedule_write(s, ex);
    return false;
}

static void dispatch(struct http_server *s, struct exchange *ex)
{
    if (ex->state == EX_READY) {
        schedule_write(s, ex);
        return;
    }
    if (ex->inline_handler && !run_on_loop(s, ex))
        return;
    mark_away(s, ex);
    workers_submit(s, ex);
}

static bool expects_body(struct lws *wsi)
{
    char cl[32];
    if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
        return false;
    return strcmp(cl, "0") != 0;
}

/* lws 4.1 hands chunked request bodies over still framed and never signals
 * their end, so such requests are refused with 411 (RFC 9110 allows a server
 * to require Content-Length). */
static bool is_chunked(struct lws *wsi)
{
    return lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
}

static long content_length(struct lws *wsi)
{
    char cl[32];
    long v;
    if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
        return -1;
    return sb_parse_long(cl, 0, LONG_MAX, &v) == 0 ? v : -1;
}

/* The body is over the route's limit: it will be read and dropped, then either
 * answered 413 here or, for HTTP_ROUTE_SEE_OVERSIZE routes, handed to the
 * handler with an empty body and http_request_oversize() true. */
static void refuse_oversize(struct exchange *ex)
{
    ex->close_after = true;
    ex->req.oversize = true;
    if (!(ex->req.route->opts.flags & HTTP_ROUTE_SEE_OVERSIZE))
        exchange_fail(ex, 413, "payload_too_large", "request body exceeds the limit");
    ex->state = EX_DISCARDING;
}

/* The peer's address, read once per connection: lws gives each request of a
 * keep-alive connection fresh per-session data, so it is kept with the
 * connection itself (opaque user data, freed on LWS_CALLBACK_WSI_DESTROY). */
static const char *connection_peer(struct lws *wsi)
{
    char *peer = lws_get_opaque_user_data(wsi);
    if (peer)
        return peer;
    static const char unknown[HTTP_PEER_MAX] = ""; /* copied whole by on_http */
    peer = calloc(1, HTTP_PEER_MAX);
    if (!peer)
        return unknown;
    lws_get_peer_simple(wsi, peer, HTTP_PEER_MAX);
    lws_set_opaque_user_data(wsi, peer);
    return peer;
}

/* A request head has arrived: build its exchange. */
static int on_http(struct http_server *s, struct lws *wsi, struct conn *c, const char *uri)
{
    struct exchange *ex = exchange_new(s);
    if (!ex)
        return -1;
    c->ex = ex;
    ex->wsi = wsi;
    ex->started_ms = sb_mono_ms();
    const char *m = request_method(wsi);
    snprintf(ex->req.method, sizeof ex->req.method, "%s", m ? m : "?");
    ex->head_only = m && strcmp(m, "HEAD") == 0;
    const char *path = uri ? uri : "/";
    ex->req.path = request_strndup(&ex->req, path, strlen(path));
    if (!ex->req.path)
        return -1;
    memcpy(ex->req.peer, connection_peer(wsi), sizeof ex->req.peer);
    int rc = capture_headers(s, wsi, &ex->req);
    if (rc == 0)
        rc = capture_query(wsi, &ex->req);
    request_set_correlation_id(&ex->req);
    ex->max_body = s->cfg.max_body;
    if (rc == -ENOMEM)
        return -1;
    bool body = expects_body(wsi);
    if (atomic_load(&s->stop_requested) || s->stopping) {
        ex->close_after = true;
        exchange_fail(ex, 503, "shutting_down", "server is shutting down");
    } else if (!m) {
        exchange_fail(ex, 501, "not_implemented", "unsupported method");
    } else if (is_chunked(wsi)) {
        ex->close_after = true;
        exchange_fail(ex, 411, "length_required",
                      "chunked request bodies are not accepted; send Content-Length");
    } else if (rc == SB_ELIMIT) {
        exchange_fail(ex, 431, "headers_too_large", "too many or too large headers");
    } else if (rc != 0) {
        exchange_fail(ex, 400, "bad_request", "malformed query string");
    } else if (bind_route(s, ex) != 0) {
        return -1;
    }
    if (body && !is_chunked(wsi)) {
        long cl = content_length(wsi);
        if (ex->state == EX_READY) {
            ex->state = EX_DISCARDING; /* answered already: read and drop the body first */
        } else if (cl > 0 && (size_t)cl > ex->max_body) {
            refuse_oversize(ex);
        } else {
            ex->state = EX_READING;
        }
        return 0;
    }
    dispatch(s, ex);
    return 0;
}

static int on_body(struct exchange *ex, const void *in, size_t len)
{
    if (ex->state == EX_DISCARDING) {
        ex->written += len; /* reused as a discard counter before the response */
        return ex->written > HTTP_DISCARD_MAX ? -1 : 0;
    }
    int rc = sb_buf_append(&ex->req.body, in, len);
    if (rc == SB_ELIMIT) {
        sb_buf_reset(&ex->req.body);
        refuse_oversize(ex);
        return 0;
    }
    return rc == 0 ? 0 : -1;
}

static void on_body_complete(struct http_server *s, struct exchange *ex)
{
    if (ex->state == EX_DISCARDING) {
        ex->written = 0;
        bool to_handler = ex->req.oversize && ex->req.route &&
                          (ex->req.route->opts.flags & HTTP_ROUTE_SEE_OVERSIZE);
        ex->state = to_handler ? EX_READING : EX_READY;
    }
    dispatch(s, ex);
}

/* Adds the handler's "Name: value\r\n" lines as response headers. */
static int add_handler_headers(struct lws *wsi, const struct sb_buf *h, unsigned char **p,
                               unsigned char *end)
{
    const char *cur = h->data, *stop = h->data ? h->data + h->len : NULL;
    while (cur && cur < stop) {
        const char *colon = memchr(cur, ':', (size_t)(stop - cur));
        const char *eol = memchr(cur, '\r', (size_t)(stop - cur));
        if (!colon || !eol || colon > eol)
            return -1;
        char name[128];
        int nlen = snprintf(name, sizeof name, "%.*s:", (int)(colon - cur), cur);
        if (nlen <= 0 || (size_t)nlen >= sizeof name)
            return -1;
        for (char *q = name; *q; q++)
            *q = (char)((*q >= 'A' && *q <= 'Z') ? *q + 32 : *q);
        const char *val = colon + 2;
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                        (const unsigned char *)val, (int)(eol - val), p, end))
            return -1;
        cur = eol + 2;
    }
    return 0;
}

/* Writes the response head, and the whole body with it when both fit in the
 * scratch buffer (one send instead of two for the usual small answer; lws
 * itself answers errors this way). *body_sent tells which happened. */
static int write_head(struct http_server *s, struct exchange *ex, bool *body_sent)
{
    size_t body = ex->head_only ? 0 : ex->res.body.len;
    size_t room = 4096 + ex->res.headers.len;
    bool together = room + body <= HTTP_WRITE_CHUNK;
    unsigned char *buf = together ? s->scratch : malloc(LWS_PRE + room);
    if (!buf)
        return -1;
    unsigned char *start = buf + LWS_PRE, *p = start, *end = start + (together ? HTTP_WRITE_CHUNK : room);
    const char *ct = ex->res.content_type[0] ? ex->res.content_type : "text/plain; charset=utf-8";
    const char *cid = ex->req.correlation_id;
    int rc = -1;
    if (lws_add_http_header_status(ex->wsi, (unsigned)ex->res.status, &p, end) ||
        lws_add_http_header_by_token(ex->wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, (const unsigned char *)ct,
                                     (int)strlen(ct), &p, end) ||
        lws_add_http_header_content_length(ex->wsi, ex->res.body.len, &p, end) ||
        lws_add_http_header_by_name(ex->wsi, (const unsigned char *)"x-correlation-id:",
                                    (const unsigned char *)cid, (int)strlen(cid), &p, end) ||
        add_handler_headers(ex->wsi, &ex->res.headers, &p, end))
        goto out;
    if ((ex->close_after || s->stopping) &&
        lws_add_http_header_by_token(ex->wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
                                     5, &p, end))
        goto out;
    if (together) {
        if (lws_finalize_http_header(ex->wsi, &p, end) || (size_t)(end - p) < body)
            goto out;
        if (body)
            memcpy(p, ex->res.body.data, body);
        p += body;
        if (lws_write(ex->wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) < (int)(p - start))
            goto out;
        ex->written = body;
        *body_sent = true;
    } else if (lws_finalize_write_http_header(ex->wsi, start, &p, end)) {
        goto out;
    }
    ex->head_written = true;
    rc = 0;
out:
    if (!together)
        free(buf);
    return rc;
}

static void record(struct http_server *s, struct exchange *ex)
{
    char status[8];
    snprintf(status, sizeof status, "%d", ex->res.status);
    const char *route = ex->req.route ? ex->req.route->pattern : "unmatched";
    const char *labels[] = {ex->req.method, route, status};
    metric_add(s->m_requests, labels, 1);
    const char *dlabels[] = {route};
    metric_observe(s->m_duration, dlabels, (double)(sb_mono_ms() - ex->started_ms) / 1000.0);
    if (sb_log_enabled(s->cfg.log, SB_LOG_DEBUG)) {
        char fields[512];
        snprintf(fields, sizeof fields, "\"method\":\"%s\",\"status\":%d,\"duration_ms\":%lld",
                 ex->req.method, ex->res.status, (long long)(sb_mono_ms() - ex->started_ms));
        struct sb_log_ctx lctx = {.correlation_id = ex->req.correlation_id};
        sb_log_write(s->cfg.log, SB_LOG_DEBUG, &lctx, fields, "%s", ex->req.path);
    }
}

/* Writes as much of the response as one writable event allows. Returns -1 to
 * close the connection, 0 otherwise. */
static int on_writeable(struct http_server *s, struct conn *c)
{
    struct exchange *ex = c ? c->ex : NULL;
    if (!ex || (ex->state != EX_READY && ex->state != EX_WRITING) || ex->timer_armed)
        return 0;
    ex->state = EX_WRITING;
    bool body_sent = false;
    if (!ex->head_written) {
        record(s, ex); /* before the client can see the answer */
        if (write_head(s, ex, &body_sent) != 0)
            return -1;
    }
    size_t total = ex->head_only ? 0 : ex->res.body.len;
    if (!body_sent && ex->written < total) {
        size_t n = total - ex->written;
        if (n > HTTP_WRITE_CHUNK)
            n = HTTP_WRITE_CHUNK;
        memcpy(s->scratch + LWS_PRE, ex->res.body.data + ex->written, n);
        bool last = ex->written + n == total;
        if (lws_write(ex->wsi, s->scratch + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n)
            return -1;
        ex->written += n;
        if (!last) {
            lws_callback_on_writable(ex->wsi);
            return 0;
        }
    }
    struct lws *wsi = ex->wsi;
    bool close = ex->close_after || s->stopping;
    c->ex = NULL;
    exchange_release(s, ex);
    if (close)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* Frees an exchange the loop owns, keeping the in-flight count right. */
static void exchange_release(struct http_server *s, struct exchange *ex)
{
    if (ex->timer_armed)
        delay_remove(s, ex);
    if (ex->counted)
        s->inflight--;
    exchange_free(ex);
}

/* Workers finished some exchanges: schedule their writes. */
static void drain_done(struct http_server *s)
{
    pthread_mutex_lock(&s->done_mu);
    struct exchange_queue q = s->done;
    s->done.head = s->done.tail = NULL;
    pthread_mutex_unlock(&s->done_mu);
    struct exchange *ex;
    while ((ex = queue_pop(&q))) {
        if (ex->orphaned) {
            exchange_release(s, ex);
            continue;
        }
        ex->state = EX_READY;
        schedule_write(s, ex);
    }
}

static void on_closed(struct http_server *s, struct conn *c)
{
    if (!c)
        return; /* closed before any request: lws never allocated our state */
    struct exchange *ex = c->ex;
    c->ex = NULL;
    if (!ex)
        return;
    if (ex->state == EX_QUEUED)
        ex->orphaned = true; /* a worker has it; freed when it comes back */
    else
        exchange_release(s, ex);
}

int loop_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct http_server *s = lws_context_user(lws_get_context(wsi));
    struct conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return c ? on_http(s, wsi, c, in) : -1;
    case LWS_CALLBACK_HTTP_BODY:
        return c && c->ex ? on_body(c->ex, in, len) : -1;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (c && c->ex)
            on_body_complete(s, c->ex);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writeable(s, c);
    case LWS_CALLBACK_CLOSED_HTTP:
        on_closed(s, c);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        /* Only connection_peer sets opaque user data in this context (it
         * makes no client connections); others reach here with NULL. */
        free(lws_get_opaque_user_data(wsi));
        lws_set_opaque_user_data(wsi, NULL);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        drain_done(s);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}
