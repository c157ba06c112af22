/* server.h - internal: the server object shared by server.c (lifecycle),
 * loop.c (libwebsockets callbacks) and workers.c (handler threads). */
#ifndef SABIA_HTTP_SERVER_H
#define SABIA_HTTP_SERVER_H

#include "exchange.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>

/* Bytes of an oversized body read and thrown away so the client can read our
 * 413 instead of a connection reset; past this the connection is dropped. */
#define HTTP_DISCARD_MAX (16u * 1024u * 1024u)
/* Largest slice of a response body handed to lws_write at once. */
#define HTTP_WRITE_CHUNK (32u * 1024u)

/* Per-connection state kept by lws for us (per_session_data_size). */
struct conn {
    struct exchange *ex;
};

struct exchange_queue {
    struct exchange *head, *tail;
};

struct http_server {
    struct http_server_config cfg;
    struct router router;
    struct lws_context *ctx;
    struct lws_protocols protocols[2];
    int port;

    /* work: loop -> workers */
    pthread_mutex_t work_mu;
    pthread_cond_t work_cv;
    struct exchange_queue work;
    bool workers_exit;
    pthread_t *threads;
    int nthreads;

    /* done: workers -> loop */
    pthread_mutex_t done_mu;
    struct exchange_queue done;

    atomic_bool stop_requested; /* set by http_server_stop (any thread, signals) */
    bool stopping;              /* loop-only */
    int inflight;               /* loop-only: exchanges handed to workers, not yet written */
    int64_t drain_deadline_ms;  /* loop-only */
    lws_sorted_usec_list_t drain_timer;
    /* Delayed responses (http_response_delay), in due order: one timer for
     * the head keeps thousands of delays cheap (lws' own timer list is sorted
     * by linear insertion). Loop-only. */
    struct exchange_queue delayed;
    lws_sorted_usec_list_t delay_timer;
    unsigned char *scratch;     /* loop-only: LWS_PRE + HTTP_WRITE_CHUNK for writes */
    /* The lws tokens that are request headers, with their names ("name:"),
     * so that capturing a request's headers asks lws only about these. */
    struct header_token {
        enum lws_token_indexes tok;
        const char *name;
    } header_tokens[WSI_TOKEN_COUNT];
    int nheader_tokens;

    struct metric *m_requests;
    struct metric *m_duration;
};

void queue_push(struct exchange_queue *q, struct exchange *ex);
struct exchange *queue_pop(struct exchange_queue *q);

/* workers.c */
int workers_start(struct http_server *s);
/* Hands an exchange to the workers (loop thread). */
void workers_submit(struct http_server *s, struct exchange *ex);
/* Hands a finished exchange back to the loop (any thread); the loop is woken
 * only when the queue was empty, since it drains the whole queue at once. */
void done_push(struct http_server *s, struct exchange *ex);
/* After a handler deferred its exchange: lets go of the handler thread's
 * hold. True when the exchange was finished already and is the caller's
 * again (the loop writes it; a worker pushes it to the done queue). */
bool exchange_let_go(struct exchange *ex);
void workers_stop(struct http_server *s);

/* request.c */
/* A copy of s[0..n) with a NUL, owned by the request and freed with its
 * exchange; NULL when out of memory. */
char *request_strndup(struct http_request *r, const char *s, size_t n);

/* loop.c */
/* Fills s->header_tokens (once, at creation). */
void loop_init_header_tokens(struct http_server *s);
int loop_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);
/* Runs a handler and catches the case where it set no response. */
void exchange_run_handler(struct exchange *ex);
/* A response nobody filled in (status 0) becomes a 500 saying `why`. */
void response_ensure(struct http_response *res, const char *why);

#endif
