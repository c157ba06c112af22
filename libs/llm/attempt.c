/* attempt.c - one HTTP attempt of a call: a fresh curl easy handle with
 * safe options (no signals, no redirects, http(s) only, timeouts taken from
 * what is left of the call's budget), a header callback that keeps the few
 * headers retries and logs need, and a write callback that feeds a parser. */
#include "internal.h"

#include <string.h>
#include <strings.h>

/* Copies a header value, trimmed, truncated to the destination. */
static void keep_value(char *dst, size_t cap, const char *v, size_t n)
{
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static void reset_headers(struct call *c)
{
    c->content_type[0] = c->request_id[0] = c->retry_after[0] = '\0';
    c->retry_after_ms[0] = c->should_retry[0] = '\0';
}

static bool header_is(const char *line, size_t n, const char *name)
{
    size_t k = strlen(name);
    return n > k && line[k] == ':' && strncasecmp(line, name, k) == 0;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *arg)
{
    struct call *c = arg;
    size_t n = size * nitems;
    /* A new status line (after a 1xx, for instance) starts a new header set. */
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        reset_headers(c);
        return n;
    }
    static const struct {
        const char *name;
        size_t offset, cap;
    } KEEP[] = {
        {"content-type", offsetof(struct call, content_type),
         sizeof(((struct call *)0)->content_type)},
        {"x-request-id", offsetof(struct call, request_id), LLM_FIELD_MAX},
        {"request-id", offsetof(struct call, request_id), LLM_FIELD_MAX},
        {"retry-after", offsetof(struct call, retry_after),
         sizeof(((struct call *)0)->retry_after)},
        {"retry-after-ms", offsetof(struct call, retry_after_ms),
         sizeof(((struct call *)0)->retry_after_ms)},
        {"x-should-retry", offsetof(struct call, should_retry),
         sizeof(((struct call *)0)->should_retry)},
    };
    for (size_t i = 0; i < sizeof KEEP / sizeof KEEP[0]; i++) {
        if (header_is(line, n, KEEP[i].name)) {
            size_t k = strlen(KEEP[i].name) + 1;
            keep_value((char *)c + KEEP[i].offset, KEEP[i].cap, line + k, n - k);
            break;
        }
    }
    return n;
}

bool call_is_event_stream(const struct call *c)
{
    if (!c->content_type[0])
        return c->stream; /* no Content-Type: trust what was asked for */
    return strncasecmp(c->content_type, "text/event-stream", 17) == 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct call *c = arg;
    size_t n = size * nmemb;
    if (!c->parser) {
        long status = 0;
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
        c->status = (int)status;
        bool events = call_is_event_stream(c);
        c->parser = llm_parser_new(c->provider, c->status, events);
        if (!c->parser) {
            c->parser_failed = true;
            return 0;
        }
    }
    int rc = llm_parser_feed(c->parser, data, n);
    if (rc == 0)
        return n;
    if (rc != SB_ELIMIT)
        c->parser_failed = true; /* no memory; a limit is reported by the parser itself */
    return 0;                    /* aborts the transfer with CURLE_WRITE_ERROR */
}

#define LLM_RECV_BUFFER_BYTES 4096L

static int setup(struct call *c, long remaining_ms)
{
    CURL *e = c->easy;
    long connect_ms = remaining_ms < LLM_CONNECT_TIMEOUT_MS ? remaining_ms : LLM_CONNECT_TIMEOUT_MS;
    bool tls = strncasecmp(c->url, "https://", 8) == 0;
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, c->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, c->body);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
    SET(CURLOPT_HTTPHEADER, c->headers);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, c);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, c);
    SET(CURLOPT_PRIVATE, c);
    SET(CURLOPT_ERRORBUFFER, c->errbuf);
    SET(CURLOPT_TIMEOUT_MS, remaining_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    /* Over TLS, wait for an HTTP/2 connection to multiplex on rather than open another. */
    SET(CURLOPT_PIPEWAIT, tls ? 1L : 0L);
    SET(CURLOPT_USERAGENT, "sabia-llm/" SABIA_VERSION);
    /* Model answers arrive in small pieces; curl's 16 KiB default receive
     * buffer per call is most of a call's memory when thousands are in flight. */
    SET(CURLOPT_BUFFERSIZE, LLM_RECV_BUFFER_BYTES);
#undef SET
    return rc == CURLE_OK ? 0 : -ENOMEM;
}

int call_start_attempt(struct call *c, int64_t now_ms)
{
    call_end_attempt(c);
    c->easy = curl_easy_init();
    if (!c->easy)
        return -ENOMEM;
    long remaining = (long)(c->deadline_ms - now_ms);
    if (remaining < 1)
        remaining = 1;
    c->attempts++;
    int rc = setup(c, remaining);
    if (rc != 0)
        call_end_attempt(c);
    return rc;
}

void call_end_attempt(struct call *c)
{
    if (c->easy)
        curl_easy_cleanup(c->easy);
    c->easy = NULL;
    llm_parser_free(c->parser);
    c->parser = NULL;
    c->parser_failed = false;
    c->status = 0;
    c->errbuf[0] = '\0';
    reset_headers(c);
}
