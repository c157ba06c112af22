/* complete.c - the end of an attempt and of a call: classify what came back
 * (an answer, or a transport failure), decide whether and when to retry
 * (x-should-retry, retry-after-ms, retry-after, else jittered backoff, all
 * within the call's deadline), and complete calls: breaker, metrics, log,
 * callback, free. Engine thread only. */
#include "internal.h"
#include "metrics.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* xorshift64*: jitter only, nothing secret. */
static double rand01(struct llm *l)
{
    uint64_t x = l->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    l->rng = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

static void empty_result(struct llm_result *res)
{
    memset(res, 0, sizeof *res);
    res->error_message = res->text = res->model = res->stop_reason = "";
    res->response_id = res->request_id = "";
}

static void record_metrics(struct llm *l, const struct call *c, const struct llm_result *res)
{
    const char *prov = llm_provider_name(c->provider);
    const char *rv[] = {prov, llm_error_name(res->error)};
    metric_add(l->m_requests, rv, 1);
    if (res->attempts > 0) {
        const char *pv[] = {prov};
        metric_observe(l->m_seconds, pv, (double)res->latency_ms / 1000.0);
    }
    if (res->error == LLM_OK) {
        const char *in[] = {prov, "in"}, *out[] = {prov, "out"};
        metric_add(l->m_tokens, in, (double)res->tokens_in);
        metric_add(l->m_tokens, out, (double)res->tokens_out);
    }
}

static void log_outcome(struct llm *l, const struct call *c, const struct llm_result *res,
                        long retry_in_ms)
{
    enum sb_log_level level = retry_in_ms >= 0 ? SB_LOG_INFO : SB_LOG_WARN;
    if (res->error == LLM_OK || res->error == LLM_ERR_SHUTDOWN || !l->cfg.log)
        return;
    struct sb_buf f;
    sb_buf_init(&f, 1024);
    int rc = sb_buf_appendf(&f,
                            "\"provider\":\"%s\",\"error\":\"%s\",\"status\":%d,\"attempt\":%d,"
                            "\"retry_in_ms\":%ld,\"request_id\":",
                            llm_provider_name(c->provider), llm_error_name(res->error),
                            res->http_status, c->attempts, retry_in_ms);
    if (rc == 0)
        rc = sb_buf_append_json_str(&f, res->request_id, strlen(res->request_id));
    if (rc == 0)
        sb_log_write(l->cfg.log, level, NULL, f.data, "llm: call %s: %.200s",
                     retry_in_ms >= 0 ? "will be retried" : "failed", res->error_message);
    sb_buf_cleanup(&f);
}

/* Runs the callback and frees the call. `res` may point into the call. */
static void finish(struct llm *l, struct call *c, struct llm_result *res)
{
    int64_t now = sb_mono_ms();
    res->attempts = c->attempts;
    res->latency_ms = (long)(now - c->submitted_ms);
    breaker_record(l, c, res->error, now);
    record_metrics(l, c, res);
    log_outcome(l, c, res, -1);
    /* Counted out before the callback, so that a caller woken by it sees the
     * call completed. */
    size_t n = atomic_fetch_sub(&l->pending, 1) - 1;
    metric_series_set(l->m_in_flight, (double)n);
    c->done(res, c->arg);
    call_free(c);
}

void engine_complete(struct llm *l, struct call *c, enum llm_error e, const char *why)
{
    struct llm_result res;
    empty_result(&res);
    res.error = e;
    res.error_message = why;
    res.retryable = e != LLM_ERR_SHUTDOWN;
    if (c->easy) { /* an attempt was made: keep what is known about it */
        res.http_status = c->status;
        res.request_id = c->request_id;
    }
    finish(l, c, &res);
}

static void transport_result(struct call *c, CURLcode code, struct llm_result *res)
{
    empty_result(res);
    res->http_status = c->status;
    res->retryable = true;
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        res->error = LLM_ERR_TIMEOUT;
        break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        res->error = LLM_ERR_INVALID;
        res->retryable = false;
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
        res->error = LLM_ERR_NETWORK;
        res->retryable = false;
        break;
    default:
        res->error = LLM_ERR_NETWORK;
        break;
    }
    if (c->parser_failed)
        res->error_message = "out of memory reading the response";
    else
        res->error_message = c->errbuf[0] ? c->errbuf : curl_easy_strerror(code);
}

/* How long to wait before the next attempt, or -1 to stop here. */
static long retry_delay(struct llm *l, struct call *c, const struct llm_result *res, int64_t now)
{
    if (res->error == LLM_OK)
        return -1;
    /* The server's x-should-retry decides, except for answers that repeating
     * cannot change: bad request, authentication, permission and quota. */
    int st = res->http_status;
    bool never = res->error == LLM_ERR_AUTH || res->error == LLM_ERR_QUOTA || st == 400 ||
                 st == 401 || st == 403;
    bool retry = res->retryable && !never;
    if (st > 0 && !never && strcasecmp(c->should_retry, "true") == 0)
        retry = true;
    else if (st > 0 && strcasecmp(c->should_retry, "false") == 0)
        retry = false;
    if (!retry || c->attempts > l->cfg.max_retries)
        return -1;
    long hint = res->http_status > 0
                    ? llm_retry_after_ms(c->retry_after_ms, c->retry_after, sb_now_ms())
                    : -1;
    if (hint > LLM_MAX_RETRY_AFTER_MS)
        return -1; /* the server asks for longer than we wait: fail now */
    long delay = hint > 0 ? hint : llm_backoff_ms(c->attempts - 1, rand01(l));
    if (now + delay >= c->deadline_ms)
        return -1;
    return delay;
}

void engine_attempt_done(struct llm *l, struct call *c, CURLcode code)
{
    struct llm_result res;
    int64_t now = sb_mono_ms();
    if (c->status == 0) {
        long st = 0;
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &st);
        c->status = (int)st;
    }
    bool answered =
        c->status > 0 && !c->parser_failed && (code == CURLE_OK || code == CURLE_WRITE_ERROR);
    if (answered && !c->parser) {
        bool events = call_is_event_stream(c);
        c->parser = llm_parser_new(c->provider, c->status, events);
        c->parser_failed = !c->parser;
        answered = c->parser != NULL;
    }
    if (answered)
        llm_parser_finish(c->parser, &res);
    else
        transport_result(c, code, &res);
    if (c->request_id[0])
        res.request_id = c->request_id;
    long delay = retry_delay(l, c, &res, now);
    if (delay >= 0) {
        c->due_ms = now + delay;
        if (engine_heap_push(l, c) == 0) {
            log_outcome(l, c, &res, delay);
            call_end_attempt(c); /* res points into the attempt: not used after this */
            return;
        }
    }
    finish(l, c, &res);
}
