/* http.h - the HTTP/1.1 server every Sabiá service is built on.
 *
 * One libwebsockets event loop owns every socket; handlers run on a pool of
 * worker threads so they may block on PostgreSQL or Redis without stalling
 * the loop. A handler gets a request whose head and body have been fully
 * read and copied (it never touches the socket), fills in a response, and
 * returns; the loop then writes it out. Handlers marked HTTP_ROUTE_INLINE run
 * on the loop itself and must not block (liveness, metrics).
 *
 * WebSockets share the same context and port: the loop is the single owner of
 * lws objects, and cross-thread work only ever reaches it through queues and
 * lws_cancel_service(), so a WebSocket protocol can be added beside the HTTP
 * one without changing the threading model (see docs/http.md).
 *
 * Threading: http_server_new, http_route and http_server_run are called from
 * one thread (main); http_server_stop may be called from any thread or from a
 * signal handler. Request/response accessors are for the handler's thread,
 * during the handler call only. */
#ifndef SABIA_HTTP_H
#define SABIA_HTTP_H

#include "core.h"

#include <jansson.h>

struct metrics;
struct http_server;   /* opaque */
struct http_request;  /* borrowed by a handler for the duration of the call */
struct http_response; /* likewise */

/* Names one limit each; every size a client controls is bounded. */
#define HTTP_DEFAULT_MAX_BODY (1024u * 1024u) /* REST bodies: 1 MiB (DESIGN.md §8) */
#define HTTP_MAX_PARAMS 8                     /* path parameters per route */
#define HTTP_MAX_HEADERS 64                   /* captured request headers */
#define HTTP_MAX_QUERY_ARGS 32                /* query arguments kept */
#define HTTP_MAX_URI 2048                     /* path plus query, bytes */
#define HTTP_PEER_MAX 64                      /* the peer address as text */

typedef void (*http_handler_fn)(struct http_request *req, struct http_response *res, void *arg);

struct http_server_config {
    const char *service;   /* for logs and metrics labels, e.g. "gateway" */
    const char *bind;      /* address to listen on, e.g. "127.0.0.1" or "0.0.0.0" */
    int port;              /* 0 = any free port (see http_server_port) */
    int workers;           /* handler threads, >= 1 */
    size_t max_body;       /* default limit for routes that set none; 0 = HTTP_DEFAULT_MAX_BODY */
    int header_timeout_s;  /* time allowed to send a request head or body; 0 = 10 */
    int keepalive_timeout_s; /* idle keep-alive connections are closed after this; 0 = 5 */
    int drain_timeout_ms;  /* on stop, how long in-flight requests may take; 0 = 10000 */
    int max_requests;      /* requests being read or handled at once (lws header pool); 0 = 1024 */
    /* Request headers lws does not know by name (X-Hub-Signature-256, Idempotency-Key, …)
     * are only readable when listed here, lower-case, NULL-terminated. X-Request-Id and
     * X-Correlation-Id are always captured. May be NULL. */
    const char *const *capture_headers;
    struct sb_log *log;       /* borrowed; may be NULL */
    struct metrics *metrics;  /* borrowed; may be NULL: http_requests_total and
                                 http_request_duration_seconds are registered here */
};

/* Creates a server and binds its listening socket. Borrows everything in
 * `cfg` (strings and arrays must outlive the server). Returns NULL and logs
 * the reason on failure (port taken, bad address, allocation). */
struct http_server *http_server_new(const struct http_server_config *cfg);
/* Frees a server that is not running (never started, or http_server_run returned). */
void http_server_free(struct http_server *s);

/* The port actually bound (useful with port 0). */
int http_server_port(const struct http_server *s);

enum http_route_flags {
    HTTP_ROUTE_INLINE = 1 << 0, /* run on the event loop: must not block */
    /* Call the handler even when the body is over the limit (it is read and
     * dropped; see http_request_oversize), so the handler can record the
     * attempt before answering 413. Otherwise the server answers 413 itself. */
    HTTP_ROUTE_SEE_OVERSIZE = 1 << 1,
    /* Run on the event loop first, where the handler must not block; when it
     * would have to (a cache miss, say) it calls http_request_pass_to_worker()
     * and returns, and the request is handled again from the start on a
     * worker. Saves two thread hand-offs per request on hot routes. */
    HTTP_ROUTE_TRY_INLINE = 1 << 2,
};

struct http_route_opts {
    unsigned flags;   /* enum http_route_flags */
    size_t max_body;  /* 0 = the server default */
};

/* Adds a route before http_server_run. `method` is "GET", "POST", "PUT", "PATCH",
 * "DELETE" or "OPTIONS" (HEAD is answered by GET routes without a body).
 * `pattern` is a path such as "/v1/webhook/{source}/{tenant_id}": literal segments
 * match exactly, "{name}" matches one non-empty segment, bound to `name`.
 * Literal routes win over parameterised ones at the same position. `fn` and
 * `arg` are borrowed. `opts` may be NULL. Returns 0, -EINVAL (bad pattern),
 * -EEXIST (same method and pattern twice) or -ENOMEM. */
int http_route(struct http_server *s, const char *method, const char *pattern, http_handler_fn fn,
               void *arg, const struct http_route_opts *opts) SB_MUST_USE;

/* Serves until http_server_stop(): then stops accepting, answers requests that
 * arrive on open connections with 503, waits up to drain_timeout_ms for
 * in-flight requests to finish and be written, and returns 0. Returns a
 * negative code if the server could not run. */
int http_server_run(struct http_server *s);

/* Asks a running server to shut down gracefully. Async-signal-safe. */
void http_server_stop(struct http_server *s);

/* ---------------------------------------------------------------- requests
 * All strings returned are NUL-terminated and live until the handler returns. */

const char *http_request_method(const struct http_request *r);  /* "GET", "POST", … */
const char *http_request_path(const struct http_request *r);    /* decoded path, no query */
const char *http_request_route(const struct http_request *r);   /* the matched pattern */
/* Path parameter bound by the route pattern, or NULL. */
const char *http_request_param(const struct http_request *r, const char *name);
/* Query argument, URL-decoded (first occurrence), or NULL. */
const char *http_request_query(const struct http_request *r, const char *name);
/* Request header by case-insensitive name, or NULL (see capture_headers). */
const char *http_request_header(const struct http_request *r, const char *name);
/* The raw body bytes exactly as received (never re-encoded); ptr is
 * NUL-terminated for convenience, len excludes the NUL. Empty when none. */
struct sb_str http_request_body(const struct http_request *r);
/* True when the body was over the route's limit and dropped (only seen by
 * HTTP_ROUTE_SEE_OVERSIZE routes); the body is then empty. */
bool http_request_oversize(const struct http_request *r);
/* The correlation id: the client's X-Correlation-Id or X-Request-Id when it is a
 * sane token (≤ 64 of [A-Za-z0-9._-]), else a fresh UUIDv7. Echoed in the response. */
const char *http_request_correlation_id(const struct http_request *r);
/* The peer's IP address as text. */
const char *http_request_peer(const struct http_request *r);

/* True while the handler runs on the event loop (HTTP_ROUTE_INLINE or
 * HTTP_ROUTE_TRY_INLINE), where it must not block. */
bool http_request_on_loop(const struct http_request *r);
/* From a handler on the loop that would have to block: it must not have
 * answered, deferred or done anything it cannot repeat; after it returns the
 * request is handled again, from the start, on a worker. No effect on a
 * worker. */
void http_request_pass_to_worker(struct http_request *r);

/* ---------------------------------------------------------------- deferred responses
 *
 * A handler whose answer depends on work finished elsewhere (a group commit)
 * defers it instead of blocking its thread: it calls http_defer(), hands the
 * handle to whoever will finish the work, and returns. That thread later
 * fills in the response and calls http_deferred_finish(); the loop then
 * writes it. Until then the request and the response stay valid for the
 * holder of the handle (the handler's own thread must not touch them after
 * giving the handle away), and no worker is held. If the client goes away
 * meanwhile, the holder notices nothing and the exchange is freed once it is
 * finished. Every deferred request must be finished exactly once, before
 * http_server_free(); the server's drain on stop waits for them. */
struct http_deferred;
/* At most once per handler call. */
struct http_deferred *http_defer(struct http_request *req);
const struct http_request *http_deferred_request(struct http_deferred *d);
struct http_response *http_deferred_response(struct http_deferred *d);
/* Hands the filled-in response to the loop (any thread). The loop is woken
 * once for all the responses finished before it runs. d is gone afterwards. */
void http_deferred_finish(struct http_deferred *d);

/* ---------------------------------------------------------------- responses */

/* Adds a response header. Name and value are copied; CR/LF in either → -EINVAL. */
int http_response_header(struct http_response *res, const char *name, const char *value) SB_MUST_USE;
/* Sets status and body (copied). Calling it again replaces the earlier body.
 * On failure (bad status, body past the response limit, no memory) the
 * response becomes a bare 500 and a negative code is returned. */
int http_respond(struct http_response *res, int status, const char *content_type, const void *body,
                 size_t len);
/* Sets status and a compact JSON body; takes ownership of `body` (json_decref). */
int http_respond_json(struct http_response *res, int status, json_t *body);
/* {"error":{"code":code,"message":message}} with `status`. */
int http_respond_error(struct http_response *res, int status, const char *code, const char *message);

/* Holds the finished response for `ms` milliseconds (at most HTTP_MAX_DELAY_MS)
 * before it is written, without occupying a worker meanwhile: the event loop
 * keeps the timer. For fakes and tests that imitate slow upstreams. */
#define HTTP_MAX_DELAY_MS 60000
void http_response_delay(struct http_response *res, int ms);

/* The reason phrase for a status code ("Not Found"), "" when unknown. */
const char *http_status_text(int status);

#endif
