/* exchange.h - internal: one request/response pair ("exchange") as it moves
 * between the event loop and a worker thread.
 *
 * Ownership: the loop creates an exchange when a request head arrives and
 * owns it while the body is read. Handing it to the worker queue transfers it
 * to a worker until the handler returns and it is put on the done queue; then
 * the loop owns it again, writes the response and frees it. If the client
 * goes away meanwhile, the loop only marks it orphaned (a loop-only field)
 * and frees it when it comes back from the worker. No field is ever touched
 * by two threads at once.
 *
 * A handler may defer its response (http_defer): the exchange then belongs
 * to whoever finishes it, and reaches the loop through the same done queue
 * once both the handler's thread and the finisher have let go of it. */
#ifndef SABIA_HTTP_EXCHANGE_H
#define SABIA_HTTP_EXCHANGE_H

#include "http.h"
#include "router.h"

#include <libwebsockets.h>
#include <stdatomic.h>

struct kv {
    char *name;  /* lower-case for headers */
    char *value;
};

struct http_request {
    char method[8];
    char *path;
    const struct router_route *route;
    struct kv params[HTTP_MAX_PARAMS];
    int nparams;
    struct kv query[HTTP_MAX_QUERY_ARGS];
    int nquery;
    struct kv headers[HTTP_MAX_HEADERS];
    int nheaders;
    struct sb_buf body;
    bool oversize; /* the body was over the route's limit and was dropped */
    char correlation_id[SB_UUID_STRLEN + 32];
    char peer[HTTP_PEER_MAX];
    /* The path, parameters, query and headers are copied here while there is
     * room (the usual request needs about 1 KiB), on the heap after that:
     * see request_strndup. */
    char strings[2048];
    size_t strings_used;
};

struct http_response {
    int status;
    struct sb_buf headers; /* "Name: value\r\n" lines added by the handler */
    struct sb_buf body;
    char content_type[96];
    int delay_ms; /* hold the response this long before writing it */
};

enum exchange_state { EX_READING, EX_DISCARDING, EX_QUEUED, EX_READY, EX_WRITING };

struct exchange {
    struct http_request req;
    struct http_response res;
    struct http_server *server;
    struct lws *wsi;          /* loop-only */
    enum exchange_state state;
    bool orphaned;            /* loop-only: the connection closed while queued */
    bool close_after;         /* send Connection: close and drop the connection */
    bool head_only;           /* HEAD: no body bytes */
    bool inline_handler;
    bool counted;             /* loop-only: included in the server's inflight count */
    size_t max_body;
    size_t written;           /* body bytes already written */
    bool head_written;
    int64_t started_ms;
    lws_usec_t due_us;        /* loop-only: when a delayed response may be written */
    bool timer_armed;         /* loop-only: waiting in the server's delay queue */
    bool delay_done;
    /* Set and read by the thread running the handler, during and right after
     * the call: */
    bool on_loop;             /* the handler runs on the loop (may not block) */
    bool to_worker;           /* it asked to be run again on a worker */
    bool deferred;            /* it called http_defer() */
    /* A deferred exchange has two holders, the thread that ran the handler
     * and whoever finishes it; the one that lets go last hands it to the
     * loop, so neither touches it after the other may have freed it. */
    atomic_int holders;
    struct exchange *next;    /* queue link */
};

struct exchange *exchange_new(struct http_server *server);
void exchange_free(struct exchange *ex);

/* Adds a captured header (name lower-cased, both copied). */
int request_add_header(struct http_request *r, const char *name, const char *value);
/* Adds one "name=value" query argument as lws hands it over: already split
 * on '&' and percent- and '+'-decoded by lws, so it is not decoded again. */
int request_add_query_arg(struct http_request *r, const char *arg);
/* Sets the correlation id from the captured headers or a new UUIDv7. */
void request_set_correlation_id(struct http_request *r);

#endif
