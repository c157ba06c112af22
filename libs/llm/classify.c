/* classify.c - which provider failures are worth retrying and how long to
 * wait: error classes from status and error type, Retry-After hints, and
 * the jittered exponential backoff both official SDKs use. */
#include "internal.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const ERROR_NAMES[] = {
    [LLM_OK] = "ok",
    [LLM_ERR_RATE_LIMIT] = "rate_limit",
    [LLM_ERR_OVERLOADED] = "overloaded",
    [LLM_ERR_SERVER] = "server",
    [LLM_ERR_TIMEOUT] = "timeout",
    [LLM_ERR_NETWORK] = "network",
    [LLM_ERR_AUTH] = "auth",
    [LLM_ERR_QUOTA] = "quota",
    [LLM_ERR_INVALID] = "invalid",
    [LLM_ERR_CIRCUIT_OPEN] = "circuit_open",
    [LLM_ERR_SHUTDOWN] = "shutdown",
};

const char *llm_error_name(enum llm_error e)
{
    if ((unsigned)e < sizeof ERROR_NAMES / sizeof ERROR_NAMES[0])
        return ERROR_NAMES[e];
    return "unknown";
}

const char *llm_provider_name(enum llm_provider p)
{
    switch (p) {
    case LLM_OPENAI:
        return "openai";
    case LLM_ANTHROPIC:
        return "anthropic";
    case LLM_OPENAI_COMPATIBLE:
        return "openai_compatible";
    }
    return "unknown";
}

bool llm_error_transient(enum llm_error e)
{
    return e == LLM_ERR_RATE_LIMIT || e == LLM_ERR_OVERLOADED || e == LLM_ERR_SERVER ||
           e == LLM_ERR_TIMEOUT || e == LLM_ERR_NETWORK;
}

static bool eq(const char *a, const char *b)
{
    return a && strcmp(a, b) == 0;
}

static bool is_quota(const char *type, const char *code)
{
    return eq(type, "insufficient_quota") || eq(code, "insufficient_quota") ||
           eq(type, "credit_balance_exhausted") || eq(code, "credit_balance_exhausted");
}

enum llm_error llm_classify_status(int status, const char *type, const char *code,
                                   const char *message)
{
    if (status == 401 || status == 403)
        return LLM_ERR_AUTH;
    if (status == 402 || is_quota(type, code))
        return LLM_ERR_QUOTA;
    /* Anthropic reports an empty balance as 400 invalid_request_error. */
    if (status == 400 && message && strcasestr(message, "credit balance"))
        return LLM_ERR_QUOTA;
    if (status == 429)
        return LLM_ERR_RATE_LIMIT;
    if (status == 408)
        return LLM_ERR_TIMEOUT;
    if (status == 409)
        return LLM_ERR_SERVER;
    if (status >= 500) {
        if (status == 529 || eq(type, "overloaded_error") || eq(code, "server_is_overloaded"))
            return LLM_ERR_OVERLOADED;
        return LLM_ERR_SERVER;
    }
    return LLM_ERR_INVALID;
}

enum llm_error llm_classify_stream_error(const char *type, const char *code)
{
    if (is_quota(type, code))
        return LLM_ERR_QUOTA;
    if (eq(type, "overloaded_error") || eq(code, "server_is_overloaded"))
        return LLM_ERR_OVERLOADED;
    if (eq(type, "rate_limit_error") || eq(code, "rate_limit_exceeded"))
        return LLM_ERR_RATE_LIMIT;
    if (eq(type, "authentication_error") || eq(type, "permission_error"))
        return LLM_ERR_AUTH;
    if (eq(type, "invalid_request_error") || eq(type, "not_found_error"))
        return LLM_ERR_INVALID;
    return LLM_ERR_SERVER; /* api_error, server_error and unknown kinds */
}

/* A plain non-negative decimal ("1", "1.5", ".25"); false for anything else. */
static bool parse_decimal(const char *s, double *out)
{
    double v = 0, scale = 1;
    bool digits = false, dot = false;
    for (; *s; s++) {
        if (*s == '.' && !dot) {
            dot = true;
        } else if (isdigit((unsigned char)*s)) {
            digits = true;
            if (dot) {
                scale /= 10;
                v += (*s - '0') * scale;
            } else if (v < 1e12) {
                v = v * 10 + (*s - '0');
            }
        } else {
            return false;
        }
    }
    *out = v;
    return digits;
}

/* Hints are clamped to one day so that callers never overflow. */
#define RETRY_HINT_CLAMP_MS 86400000L

static long clamp_ms(double ms)
{
    return ms > (double)RETRY_HINT_CLAMP_MS ? RETRY_HINT_CLAMP_MS : (long)ms;
}

long llm_retry_after_ms(const char *retry_after_ms, const char *retry_after, int64_t now_epoch_ms)
{
    double v;
    if (retry_after_ms && *retry_after_ms && parse_decimal(retry_after_ms, &v))
        return clamp_ms(v);
    if (!retry_after || !*retry_after)
        return -1;
    if (parse_decimal(retry_after, &v))
        return clamp_ms(v * 1000.0);
    /* IMF-fixdate, e.g. "Wed, 21 Oct 2015 07:28:00 GMT". */
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(retry_after, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    double delta = (double)t * 1000.0 - (double)now_epoch_ms;
    return delta > 0 ? clamp_ms(delta) : -1;
}

long llm_backoff_ms(int retry, double rnd)
{
    long base = LLM_BACKOFF_INITIAL_MS;
    for (int i = 0; i < retry && base < LLM_BACKOFF_MAX_MS; i++)
        base *= 2;
    if (base > LLM_BACKOFF_MAX_MS)
        base = LLM_BACKOFF_MAX_MS;
    if (rnd < 0 || rnd >= 1)
        rnd = 0;
    return (long)((double)base * (1.0 - 0.25 * rnd));
}
