/* llm.h - calls to large-language-model providers (OpenAI Chat Completions,
 * Anthropic Messages and OpenAI-compatible servers) over one libcurl multi
 * handle: thousands of calls in flight on a single engine thread, with
 * timeouts, retries that honour the provider's hints, and a circuit breaker
 * per endpoint.
 *
 * Threading: an engine (struct llm) owns one thread that runs every transfer
 * and every callback. llm_submit() may be called from any thread, including
 * from inside a callback. llm_new()/llm_free() are called by the owner only,
 * never from a callback.
 *
 * Retries (the official SDKs' policy): transient failures (408, 409, 429,
 * 5xx, 529, timeouts, connection errors, a stream cut short or broken by an
 * error event) are tried again up to max_retries times, after the server's
 * retry-after-ms / retry-after hint (a hint over LLM_MAX_RETRY_AFTER_MS fails
 * the call instead) or else an exponential backoff from LLM_BACKOFF_INITIAL_MS
 * to LLM_BACKOFF_MAX_MS jittered down by up to 25%, always within the call's
 * timeout. x-should-retry: true/false overrides the status, except that 400,
 * 401, 403 and quota errors are never retried. Waits are timers on the engine
 * thread, never sleeps.
 *
 * Signals: transfers run with CURLOPT_NOSIGNAL, so the process should ignore
 * SIGPIPE (every Sabiá service does). */
#ifndef SABIA_LLM_H
#define SABIA_LLM_H

#include "core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct metrics;

/* Limits. Every size a caller or a provider controls is bounded by one of these. */
#define LLM_MAX_MESSAGES        1024                 /* messages per request */
#define LLM_MAX_REQUEST_BYTES   (4u * 1024u * 1024u) /* JSON request body */
#define LLM_MAX_RESPONSE_BYTES  (4u * 1024u * 1024u) /* response body, stream included */
#define LLM_MAX_SSE_LINE        (1024u * 1024u)      /* one SSE line, and one event's data */
#define LLM_MAX_URL             2048                 /* base_url plus path */
#define LLM_MAX_TOKEN_FIELD     1024                 /* api_key, model, idempotency_key */
#define LLM_MAX_ERROR_MESSAGE   512                  /* provider error text kept */
#define LLM_MAX_RETRY_AFTER_MS  60000                /* a longer server hint fails the call */
#define LLM_MAX_IN_FLIGHT_LIMIT 65536                /* largest max_in_flight accepted */
#define LLM_MAX_RETRIES_LIMIT   10                   /* largest max_retries accepted */
#define LLM_MAX_ENDPOINTS       64    /* circuit breakers; endpoints past it get none */
#define LLM_CONNECT_TIMEOUT_MS  10000 /* per attempt, within the call's timeout */
#define LLM_BACKOFF_INITIAL_MS  500   /* first retry waits about this long */
#define LLM_BACKOFF_MAX_MS      8000  /* and no retry waits longer */

struct llm; /* an engine, opaque */

struct llm_config {
    int max_in_flight;       /* transfers running at once; more wait in a queue. 0 = 4096 */
    int default_timeout_ms;  /* whole-call timeout (all attempts and waits). 0 = 60000 */
    int max_retries;         /* attempts after the first. -1 = none, 0 = default 2 */
    int breaker_failures;    /* consecutive transient failures that open a circuit. 0 = 5 */
    int breaker_cooldown_ms; /* open -> half-open after this. 0 = 30000 */
    struct sb_log *log;      /* borrowed, may be NULL; must outlive the engine */
    struct metrics *metrics; /* borrowed, may be NULL; must outlive the engine. Registers
                                llm_requests_total{provider,result}, llm_request_seconds{provider},
                                llm_in_flight, llm_tokens_total{provider,direction},
                                llm_circuit_state{provider,endpoint} (0 closed, 1 open,
                                2 half-open) */
};

/* Starts an engine and its thread. Initialises libcurl globally (reference
 * counted by libcurl). `cfg` is copied; its log and metrics are borrowed.
 * Returns NULL on an invalid configuration (negative or past a LLM_MAX_*
 * limit) or when resources are short. */
struct llm *llm_new(const struct llm_config *cfg);

/* Stops the engine: every call not yet completed (queued, waiting to retry or
 * in transfer) completes with LLM_ERR_SHUTDOWN, on the engine thread, before
 * this returns; then the thread is joined and everything freed. While it
 * runs, llm_submit() (from callbacks or other threads) returns SB_ESHUTDOWN;
 * after it returns the engine must not be used at all. Must not be called
 * from a callback. NULL is a no-op. */
void llm_free(struct llm *l);

enum llm_provider { LLM_OPENAI, LLM_ANTHROPIC, LLM_OPENAI_COMPATIBLE };

struct llm_message {
    const char *role;    /* "user" or "assistant" */
    const char *content; /* UTF-8 text */
};

/* One call. Everything is copied by llm_submit(). */
struct llm_request {
    enum llm_provider provider;
    const char *base_url; /* NULL: https://api.openai.com/v1 or https://api.anthropic.com/v1;
                             required for LLM_OPENAI_COMPATIBLE; http:// or https:// only */
    const char *api_key;  /* may be NULL for compatible servers without auth */
    const char *model;    /* required */
    const char *system;   /* system prompt, may be NULL */
    const struct llm_message *messages;
    size_t nmessages;            /* 1 .. LLM_MAX_MESSAGES */
    double temperature;          /* < 0: provider default; at most 2 (OpenAI) or 1 (Anthropic) */
    int max_tokens;              /* <= 0: omitted (OpenAI); Anthropic requires > 0 */
    bool stream;                 /* use server-sent events (the result is the same) */
    int timeout_ms;              /* whole call, retries included; 0 = the engine default. A call
                                    waiting for a transfer slot times out when its turn comes */
    const char *idempotency_key; /* optional Idempotency-Key header, reused across retries */
};

enum llm_error {
    LLM_OK,
    LLM_ERR_RATE_LIMIT,   /* 429 rate limit (transient) */
    LLM_ERR_OVERLOADED,   /* 529 / overloaded_error, also mid-stream (transient) */
    LLM_ERR_SERVER,       /* 5xx, 409, bad 2xx body (transient unless the body was too large) */
    LLM_ERR_TIMEOUT,      /* the call's timeout passed, or 408 */
    LLM_ERR_NETWORK,      /* connection failed or a stream was cut short (transient) */
    LLM_ERR_AUTH,         /* 401 / 403: never retried */
    LLM_ERR_QUOTA,        /* insufficient_quota or "credit balance": never retried */
    LLM_ERR_INVALID,      /* other 4xx: never retried */
    LLM_ERR_CIRCUIT_OPEN, /* the endpoint's circuit is open; nothing was sent */
    LLM_ERR_SHUTDOWN,     /* llm_free() ran before the call completed */
};

/* The outcome of a call. Borrowed: every pointer is valid only during the
 * callback (copy what you keep). Strings are never NULL ("" when unknown). */
struct llm_result {
    enum llm_error error;
    const char *error_message;  /* provider's or transport's explanation, "" on success */
    bool retryable;             /* the last failure was transient: a later call may succeed */
    int http_status;            /* of the last attempt, 0 when none got an answer */
    int attempts;               /* HTTP attempts made (0 for circuit-open or shutdown) */
    const char *text;           /* the reply (all text blocks / deltas concatenated) */
    long tokens_in, tokens_out; /* usage reported by the provider, 0 when absent */
    const char *model;          /* model that answered */
    const char *stop_reason;    /* finish_reason / stop_reason */
    const char *response_id;    /* chatcmpl-… / msg_… */
    const char *request_id;     /* x-request-id / request-id header, for support tickets */
    long latency_ms;            /* from llm_submit() to completion */
};

typedef void (*llm_done_fn)(const struct llm_result *res, void *arg);

/* Queues a call; `req` and everything it points to are copied, `arg` is
 * borrowed until the callback. Returns 0, then `done` runs exactly once on
 * the engine thread; or -EINVAL (bad request: missing model or messages, bad
 * role, base_url, temperature, CR/LF in a header value), SB_ELIMIT (a
 * LLM_MAX_* limit), -ENOMEM or SB_ESHUTDOWN, and then `done` never runs. */
int llm_submit(struct llm *l, const struct llm_request *req, llm_done_fn done,
               void *arg) SB_MUST_USE;

/* Calls accepted whose callback has not started yet (queued, waiting to retry
 * or in transfer). Any thread. */
size_t llm_pending(const struct llm *l);

/* "ok", "rate_limit", "overloaded", … (static string; "unknown" for others). */
const char *llm_error_name(enum llm_error e);
/* "openai", "anthropic", "openai_compatible" (static string). */
const char *llm_provider_name(enum llm_provider p);
/* True for the transient classes: rate limit, overloaded, server, timeout, network. */
bool llm_error_transient(enum llm_error e);

/* ---------------------------------------------------------------- response parsing
 * What the engine uses to read one response; public so recorded bodies can be
 * checked. Not thread-safe: one parser per response. */

struct llm_parser; /* opaque */

/* A parser for one response of `provider` that came with `http_status`.
 * `event_stream` (Content-Type text/event-stream) selects SSE; otherwise the
 * body is one JSON document. Returns NULL on allocation failure. */
struct llm_parser *llm_parser_new(enum llm_provider provider, int http_status, bool event_stream);
/* NULL is a no-op. Invalidates the strings of any result filled from it. */
void llm_parser_free(struct llm_parser *p);

/* Feeds the next `len` body bytes; chunk boundaries are arbitrary. Returns 0,
 * SB_ELIMIT (body, SSE line or event past LLM_MAX_RESPONSE_BYTES /
 * LLM_MAX_SSE_LINE; further input is refused) or -ENOMEM. */
int llm_parser_feed(struct llm_parser *p, const void *data, size_t len) SB_MUST_USE;

/* Ends the body and fills the reply fields of `res` (error, error_message,
 * retryable, http_status, text, tokens, model, stop_reason, response_id,
 * request_id from an error body); attempts and latency are left 0. Strings
 * point into the parser. Errors: the class of an error status or a
 * mid-stream error event, LLM_ERR_NETWORK for a stream that ended before its
 * terminator, LLM_ERR_SERVER for an unreadable or oversized 2xx body. */
void llm_parser_finish(struct llm_parser *p, struct llm_result *res);

/* The delay a provider asked for: `retry_after_ms` (milliseconds) wins over
 * `retry_after` (seconds, fractions allowed, or an HTTP date compared with
 * `now_epoch_ms`). Either may be NULL. Returns the delay in ms (>= 0), or -1
 * when there is no usable hint (absent, malformed, or in the past). */
long llm_retry_after_ms(const char *retry_after_ms, const char *retry_after, int64_t now_epoch_ms);

#endif
