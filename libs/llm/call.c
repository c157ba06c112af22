/* call.c - turns a struct llm_request into a self-contained call (URL, JSON
 * body, header list, all copied on the submitter's thread) and prepares one
 * curl easy handle per attempt, with the callbacks that capture the
 * response headers and feed the body to a parser. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OPENAI_BASE       "https://api.openai.com/v1"
#define ANTHROPIC_BASE    "https://api.anthropic.com/v1"
#define ANTHROPIC_VERSION "2023-06-01"

/* ---------------------------------------------------------------- validation */

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* A value that travels in a header or the URL: bounded, no CR/LF. */
static int check_field(const char *s, bool required)
{
    if (!s)
        return required ? -EINVAL : 0;
    if (required && !*s)
        return -EINVAL;
    if (strnlen(s, LLM_MAX_TOKEN_FIELD + 1) > LLM_MAX_TOKEN_FIELD)
        return SB_ELIMIT;
    return has_control(s) ? -EINVAL : 0;
}

static int check_base_url(const char *u)
{
    if (!u)
        return 0;
    /* Room is left for the longest path appended ("/chat/completions"). */
    if (strnlen(u, LLM_MAX_URL) > LLM_MAX_URL - 32)
        return SB_ELIMIT;
    if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0)
        return -EINVAL;
    if (has_control(u) || strchr(u, ' '))
        return -EINVAL;
    return 0;
}

static int check_messages(const struct llm_request *req)
{
    if (req->nmessages == 0 || !req->messages)
        return -EINVAL;
    if (req->nmessages > LLM_MAX_MESSAGES)
        return SB_ELIMIT;
    for (size_t i = 0; i < req->nmessages; i++) {
        const struct llm_message *m = &req->messages[i];
        if (!m->role || !m->content)
            return -EINVAL;
        if (strcmp(m->role, "user") != 0 && strcmp(m->role, "assistant") != 0)
            return -EINVAL;
    }
    return 0;
}

static int validate(const struct llm_request *req)
{
    if (req->provider != LLM_OPENAI && req->provider != LLM_ANTHROPIC &&
        req->provider != LLM_OPENAI_COMPATIBLE)
        return -EINVAL;
    if (req->provider == LLM_OPENAI_COMPATIBLE && !req->base_url)
        return -EINVAL;
    int rc;
    if ((rc = check_base_url(req->base_url)) != 0 || (rc = check_field(req->model, true)) != 0 ||
        (rc = check_field(req->api_key, false)) != 0 ||
        (rc = check_field(req->idempotency_key, false)) != 0 || (rc = check_messages(req)) != 0)
        return rc;
    double tmax = req->provider == LLM_ANTHROPIC ? 1.0 : 2.0;
    if (isnan(req->temperature) || req->temperature > tmax)
        return -EINVAL;
    if (req->provider == LLM_ANTHROPIC && req->max_tokens <= 0)
        return -EINVAL;
    if (req->timeout_ms < 0)
        return -EINVAL;
    return 0;
}

/* ---------------------------------------------------------------- building */

static int add_message(struct sb_buf *b, const char *role, const char *content, bool comma)
{
    int rc = sb_buf_appendf(b, "%s{\"role\":\"%s\",\"content\":", comma ? "," : "", role);
    if (rc == 0)
        rc = sb_buf_append_json_str(b, content, strlen(content));
    if (rc == 0)
        rc = sb_buf_append(b, "}", 1);
    return rc;
}

/* OpenAI: the system prompt is the first message. Anthropic: a top-level field. */
static int build_body(const struct llm_request *req, struct sb_buf *b)
{
    bool anthropic = req->provider == LLM_ANTHROPIC;
    int rc = sb_buf_append_str(b, "{\"model\":");
    if (rc == 0)
        rc = sb_buf_append_json_str(b, req->model, strlen(req->model));
    if (rc == 0 && anthropic && req->system) {
        rc = sb_buf_append_str(b, ",\"system\":");
        if (rc == 0)
            rc = sb_buf_append_json_str(b, req->system, strlen(req->system));
    }
    if (rc == 0)
        rc = sb_buf_append_str(b, ",\"messages\":[");
    bool comma = false;
    if (rc == 0 && !anthropic && req->system) {
        rc = add_message(b, "system", req->system, false);
        comma = true;
    }
    for (size_t i = 0; rc == 0 && i < req->nmessages; i++, comma = true)
        rc = add_message(b, req->messages[i].role, req->messages[i].content, comma);
    if (rc == 0)
        rc = sb_buf_append(b, "]", 1);
    if (rc == 0 && req->temperature >= 0)
        rc = sb_buf_appendf(b, ",\"temperature\":%g", req->temperature);
    if (rc == 0 && req->max_tokens > 0)
        rc = sb_buf_appendf(b, ",\"max_tokens\":%d", req->max_tokens);
    if (rc == 0)
        rc = sb_buf_appendf(b, ",\"stream\":%s", req->stream ? "true" : "false");
    if (rc == 0 && req->stream && !anthropic)
        rc = sb_buf_append_str(b, ",\"stream_options\":{\"include_usage\":true}");
    if (rc == 0)
        rc = sb_buf_append(b, "}", 1);
    return rc;
}

/* Adds "name: value", or "name:" (which removes a header curl would add) when value is NULL. */
static int add_header(struct curl_slist **list, const char *name, const char *value)
{
    char line[LLM_MAX_TOKEN_FIELD + 64];
    snprintf(line, sizeof line, "%s:%s%s", name, value ? " " : "", value ? value : "");
    struct curl_slist *n = curl_slist_append(*list, line);
    if (!n)
        return -ENOMEM;
    *list = n;
    return 0;
}

static int add_bearer(struct curl_slist **list, const char *key)
{
    char v[LLM_MAX_TOKEN_FIELD + 16];
    snprintf(v, sizeof v, "Bearer %s", key);
    return add_header(list, "Authorization", v);
}

static int build_headers(const struct llm_request *req, struct curl_slist **h)
{
    int rc = add_header(h, "Content-Type", "application/json");
    /* An empty Expect: stops curl from waiting for 100-continue on big bodies. */
    if (rc == 0)
        rc = add_header(h, "Expect", NULL);
    if (rc == 0)
        rc = add_header(h, "Accept", req->stream ? "text/event-stream" : "application/json");
    if (rc == 0 && req->provider == LLM_ANTHROPIC) {
        rc = add_header(h, "anthropic-version", ANTHROPIC_VERSION);
        if (rc == 0 && req->api_key)
            rc = add_header(h, "x-api-key", req->api_key);
    } else if (rc == 0 && req->api_key) {
        rc = add_bearer(h, req->api_key);
    }
    if (rc == 0 && req->idempotency_key)
        rc = add_header(h, "Idempotency-Key", req->idempotency_key);
    return rc;
}

/* The base without trailing slashes. */
static size_t base_len(const char *base)
{
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    return n;
}

static int build_strings(const struct llm_request *req, struct call *c)
{
    const char *base = req->base_url                    ? req->base_url
                       : req->provider == LLM_ANTHROPIC ? ANTHROPIC_BASE
                                                        : OPENAI_BASE;
    int n = (int)base_len(base);
    const char *path = req->provider == LLM_ANTHROPIC ? "/messages" : "/chat/completions";
    if (asprintf(&c->url, "%.*s%s", n, base, path) < 0) {
        c->url = NULL;
        return -ENOMEM;
    }
    if (asprintf(&c->endpoint, "%s %.*s", llm_provider_name(req->provider), n, base) < 0) {
        c->endpoint = NULL;
        return -ENOMEM;
    }
    return 0;
}

int call_new(const struct llm_request *req, struct call **out)
{
    int rc = validate(req);
    if (rc != 0)
        return rc;
    struct call *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->provider = req->provider;
    c->stream = req->stream;
    c->timeout_ms = req->timeout_ms;
    struct sb_buf b;
    sb_buf_init(&b, LLM_MAX_REQUEST_BYTES);
    rc = build_body(req, &b);
    if (rc == 0) {
        c->body_len = b.len;
        c->body = sb_buf_steal(&b);
        if (!c->body)
            rc = -ENOMEM;
    }
    sb_buf_cleanup(&b);
    if (rc == 0)
        rc = build_headers(req, &c->headers);
    if (rc == 0)
        rc = build_strings(req, c);
    if (rc != 0) {
        call_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void call_free(struct call *c)
{
    if (!c)
        return;
    call_end_attempt(c);
    curl_slist_free_all(c->headers);
    free(c->url);
    free(c->body);
    free(c->endpoint);
    free(c);
}
