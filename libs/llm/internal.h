/* internal.h - what the llm module's files share and nobody else sees: the
 * copied call, the engine, the SSE splitter, error classification and the
 * circuit breaker. */
#ifndef SABIA_LLM_INTERNAL_H
#define SABIA_LLM_INTERNAL_H

#include "llm.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

struct metric;

#define LLM_SSE_EVENT_NAME 64  /* longer event names are truncated (they never match) */
#define LLM_FIELD_MAX      256 /* model, stop reason, ids and header values kept */

/* ---------------------------------------------------------------- SSE */

/* Called per dispatched event; `data` is NUL-terminated (len excludes it).
 * Returns 0 to go on, or a negative code that sse_feed() passes back. */
typedef int (*sse_event_fn)(void *arg, const char *event, const char *data, size_t len);

/* A WHATWG event-stream splitter: lines end at CR, LF or CRLF, a blank line
 * dispatches, ':' starts a comment, data lines join with LF. */
struct sse {
    struct sb_buf line;
    struct sb_buf data;
    char event[LLM_SSE_EVENT_NAME];
    bool has_data;
    bool skip_lf; /* the last line ended with CR: a following LF belongs to it */
    sse_event_fn fn;
    void *arg;
};

void sse_init(struct sse *s, sse_event_fn fn, void *arg);
void sse_cleanup(struct sse *s);
/* Returns 0, SB_ELIMIT (line or event past LLM_MAX_SSE_LINE), -ENOMEM or the callback's code. */
int sse_feed(struct sse *s, const char *p, size_t n);

/* ---------------------------------------------------------------- errors */

/* The class of an HTTP error answer from its status and the body's error
 * type, code and message (each may be NULL). */
enum llm_error llm_classify_status(int status, const char *type, const char *code,
                                   const char *message);
/* The class of an error object seen in a 200 stream, by its type. */
enum llm_error llm_classify_stream_error(const char *type, const char *code);

/* ---------------------------------------------------------------- calls */

enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };

/* One endpoint's circuit; engine thread only. */
struct breaker {
    char *key; /* "provider base_url" */
    enum llm_provider provider;
    enum breaker_state state;
    int failures; /* consecutive transient failures */
    int64_t open_until_ms;
    bool trial_running;
    struct metric_series *gauge;
};

/* A copied request and its progress. Owned by the engine once submitted. */
struct call {
    struct call *next;                      /* submission queue / pending FIFO */
    struct call *prev_active, *next_active; /* transfers running */
    enum llm_provider provider;
    bool stream;
    bool trial; /* the half-open probe of its breaker */
    char *url;
    char *body;
    size_t body_len;
    char *endpoint; /* breaker key */
    struct curl_slist *headers;
    struct breaker *breaker; /* resolved on the engine thread, may stay NULL */
    llm_done_fn done;
    void *arg;
    int timeout_ms;
    int64_t submitted_ms, deadline_ms, due_ms;
    int attempts;
    /* the current (or last) attempt */
    CURL *easy;
    struct llm_parser *parser;
    bool parser_failed; /* no memory for the parser, or body past the cap */
    int status;
    char content_type[64];
    char request_id[LLM_FIELD_MAX];
    char retry_after[64];
    char retry_after_ms[32];
    char should_retry[8];
    char errbuf[CURL_ERROR_SIZE];
};

/* The engine. Fields under "shared" are guarded by `mu`; the rest belong to
 * the engine thread once it runs. */
struct llm {
    struct llm_config cfg; /* defaults applied; read-only */
    pthread_t thread;
    int wake_fd;           /* eventfd: submissions and shutdown wake the loop */
    atomic_size_t pending; /* accepted, not yet completed */
    /* shared */
    pthread_mutex_t mu;
    struct call *inbox_head, *inbox_tail;
    bool stopping;
    /* engine thread */
    CURLM *multi;
    int epfd;
    int64_t curl_due_ms;                /* when curl wants a timeout action, -1 for never */
    struct call *fifo_head, *fifo_tail; /* ready, waiting for a transfer slot */
    struct call **heap;                 /* waiting to retry, min-heap on due_ms */
    size_t heap_len, heap_cap;
    struct call *active; /* transfers running */
    int running;
    struct breaker breakers[LLM_MAX_ENDPOINTS];
    size_t nbreakers;
    uint64_t rng;
    struct metric *m_requests, *m_seconds, *m_tokens, *m_circuit;
    struct metric_series *m_in_flight;
};

/* Finds or creates the breaker of c->endpoint (NULL when LLM_MAX_ENDPOINTS
 * are in use or memory is short). Engine thread. */
struct breaker *breaker_for(struct llm *l, const char *endpoint, enum llm_provider provider);
/* Whether `c` may make an attempt now; it may become its breaker's half-open trial. */
bool breaker_allow(struct llm *l, struct call *c, int64_t now_ms);
/* Records how `c` ended (after its retries). */
void breaker_record(struct llm *l, struct call *c, enum llm_error e, int64_t now_ms);
/* Frees every breaker. */
void breaker_free_all(struct llm *l);

/* Builds a call from a request (on the submitter's thread). Returns 0 and
 * *out, or -EINVAL, SB_ELIMIT, -ENOMEM. */
int call_new(const struct llm_request *req, struct call **out);
void call_free(struct call *c);
/* Prepares a fresh easy handle for the next attempt. Returns 0 or -ENOMEM. */
int call_start_attempt(struct call *c, int64_t now_ms);
/* Whether the attempt's response is an SSE stream (by its Content-Type). */
bool call_is_event_stream(const struct call *c);
/* Releases the attempt's easy handle and parser (not removed from any multi). */
void call_end_attempt(struct call *c);

/* Engine internals shared by engine.c and complete.c (engine thread). */
/* Queues `c` to retry at c->due_ms. Returns 0 or -ENOMEM (then it is not queued). */
int engine_heap_push(struct llm *l, struct call *c);
/* Handles the end of an attempt whose easy handle was removed from the multi:
 * retries it or completes the call. */
void engine_attempt_done(struct llm *l, struct call *c, CURLcode code);
/* Completes `c` without a (further) answer: runs its callback with `e` and
 * frees it. */
void engine_complete(struct llm *l, struct call *c, enum llm_error e, const char *why);

/* Exponential backoff for retry number `retry` (0 = first), jittered down
 * by up to 25% with `rnd` in [0, 1). */
long llm_backoff_ms(int retry, double rnd);

#endif
