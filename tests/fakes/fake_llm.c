/* sabia-fake-llm - a local stand-in for the OpenAI Chat Completions and
 * Anthropic Messages APIs, for tests and the LLM concurrency benchmark.
 *
 *   POST /v1/chat/completions   OpenAI shape, "stream": true gives SSE chunks + [DONE]
 *   POST /v1/messages           Anthropic shape, "stream": true gives named SSE events
 *   GET|DELETE /_requests       the recorded model requests (path, headers, body)
 *   POST|DELETE /_script        script failures and latency (see apply_script)
 *   GET /health
 *
 * The reply is "Echo: " + the last user message; token counts are word
 * counts (input: system prompt and every message; output: the reply), and
 * max_tokens cuts the reply to that many words (finish "length"/"max_tokens").
 * Every handler runs on the event loop and never blocks: latency is a timer
 * (http_response_delay), so thousands of slow calls need no threads.
 *
 * Environment: FAKE_LLM_PORT (0 = any; the port is printed), FAKE_LLM_BIND
 * (127.0.0.1), FAKE_LLM_DELAY_MS (0), FAKE_LLM_API_KEY (when set, requests
 * must carry it), FAKE_LLM_RECORD (1; 0 keeps no requests), FAKE_LLM_MAX_REQUESTS
 * (requests being read or held at once, default 16384). */
#include "http.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAKE_MAX_RECORDED 1000   /* requests kept for GET /_requests (oldest dropped) */
#define FAKE_MAX_WORDS    100000 /* words counted or echoed per request */

enum api { API_OPENAI, API_ANTHROPIC };

struct script {
    int fail_next;       /* model requests still to fail */
    int status;          /* 0: the kind's usual status */
    char kind[16];       /* rate | quota | overloaded | server | auth | invalid */
    json_t *retry_after; /* number or string, or NULL */
    long retry_after_ms; /* -1: none */
    int should_retry;    /* -1: no header, else 0/1 */
    int stream_error;    /* streaming requests still to break mid-stream */
};

struct fake {
    pthread_mutex_t mu;
    int base_delay_ms;
    int delay_ms;
    const char *api_key;
    bool record;
    struct script script;
    json_t *requests;
    long counter;
};

/* One model request after parsing. */
struct ask {
    enum api api;
    json_t *body;
    const char *model;
    bool stream, usage_chunk;
    long max_tokens;
    char *reply; /* heap */
    long tokens_in, tokens_out;
    bool truncated;
    char id[64];
};

/* ---------------------------------------------------------------- words */

static long count_words(const char *s)
{
    long n = 0;
    bool in = false;
    for (; s && *s && n < FAKE_MAX_WORDS; s++) {
        bool sp = *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r';
        if (!sp && !in)
            n++;
        in = !sp;
    }
    return n;
}

/* Text of a message content: a string, or the text blocks of an array. */
static const char *content_text(json_t *content)
{
    if (json_is_string(content))
        return json_string_value(content);
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b)
    {
        if (json_is_string(json_object_get(b, "text")))
            return json_string_value(json_object_get(b, "text"));
    }
    return "";
}

/* Keeps at most `max` words of s (in place); returns whether it cut. */
static bool cut_words(char *s, long max)
{
    long n = 0;
    bool in = false;
    for (char *p = s; *p; p++) {
        bool sp = *p == ' ';
        if (!sp && !in && ++n > max) {
            while (p > s && p[-1] == ' ')
                p--;
            *p = '\0';
            return true;
        }
        in = !sp;
    }
    return false;
}

/* ---------------------------------------------------------------- errors */

struct error_shape {
    const char *kind;
    int openai_status, anthropic_status;
    const char *openai_type, *openai_code, *anthropic_type, *message;
};

static const struct error_shape ERRORS[] = {
    {"rate", 429, 429, "requests", "rate_limit_exceeded", "rate_limit_error",
     "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. Please try "
     "again in 20s."},
    {"quota", 429, 400, "insufficient_quota", "insufficient_quota", "invalid_request_error",
     NULL /* per API, below */},
    {"overloaded", 503, 529, "service_unavailable_error", "server_is_overloaded",
     "overloaded_error", "Overloaded"},
    {"server", 500, 500, "server_error", NULL, "api_error",
     "The server had an error while processing your request."},
    {"auth", 401, 401, "invalid_request_error", "invalid_api_key", "authentication_error",
     "Incorrect API key provided."},
    {"invalid", 400, 400, "invalid_request_error", NULL, "invalid_request_error",
     "Invalid request."},
};

static const struct error_shape *shape_for(const char *kind, int status)
{
    const char *k = kind && *kind                    ? kind
                    : status == 429                  ? "rate"
                    : status == 401 || status == 403 ? "auth"
                    : status == 529 || status == 503 ? "overloaded"
                    : status >= 500                  ? "server"
                                                     : "invalid";
    for (size_t i = 0; i < sizeof ERRORS / sizeof ERRORS[0]; i++)
        if (strcmp(ERRORS[i].kind, k) == 0)
            return &ERRORS[i];
    return &ERRORS[sizeof ERRORS / sizeof ERRORS[0] - 1];
}

/* The documented error body of `api` for `e`, with `message` when given. */
static json_t *error_body(enum api api, const struct error_shape *e, const char *message,
                          const char *request_id)
{
    if (!message && strcmp(e->kind, "quota") == 0)
        message = api == API_OPENAI ? "You exceeded your current quota, please check your plan and "
                                      "billing details."
                                    : "Your credit balance is too low to access the Anthropic "
                                      "API. Please go to Plans & Billing to upgrade or purchase "
                                      "credits.";
    if (!message)
        message = e->message;
    if (api == API_OPENAI)
        return json_pack("{s:{s:s, s:s, s:n, s:s?}}", "error", "message", message, "type",
                         e->openai_type, "param", "code", e->openai_code);
    return json_pack("{s:s, s:{s:s, s:s}, s:s}", "type", "error", "error", "type",
                     e->anthropic_type, "message", message, "request_id", request_id);
}

static void respond_json(struct http_response *res, int status, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!s) {
        http_respond(res, 500, "text/plain", "out of memory", 13);
        return;
    }
    http_respond(res, status, "application/json", s, strlen(s));
    free(s);
}

static void add_header_long(struct http_response *res, const char *name, long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", v);
    (void)!http_response_header(res, name, buf);
}

/* Answers with a scripted failure (script copied out under the lock). */
static void respond_scripted(struct http_response *res, enum api api, const struct script *sc,
                             const char *request_id)
{
    const struct error_shape *e = shape_for(sc->kind, sc->status);
    int status = sc->status          ? sc->status
                 : api == API_OPENAI ? e->openai_status
                                     : e->anthropic_status;
    if (json_is_integer(sc->retry_after))
        add_header_long(res, "retry-after", (long)json_integer_value(sc->retry_after));
    else if (json_is_string(sc->retry_after))
        (void)!http_response_header(res, "retry-after", json_string_value(sc->retry_after));
    if (sc->retry_after_ms >= 0)
        add_header_long(res, "retry-after-ms", sc->retry_after_ms);
    if (sc->should_retry >= 0)
        (void)!http_response_header(res, "x-should-retry", sc->should_retry ? "true" : "false");
    respond_json(res, status, error_body(api, e, NULL, request_id));
}

static void respond_invalid(struct http_response *res, enum api api, int status,
                            const char *message, const char *request_id)
{
    const struct error_shape *e = shape_for(status == 401 ? "auth" : "invalid", status);
    respond_json(res, status, error_body(api, e, message, request_id));
}

/* ---------------------------------------------------------------- requests */

static void ask_cleanup(struct ask *a)
{
    json_decref(a->body);
    free(a->reply);
}

static bool role_ok(enum api api, const char *role)
{
    if (!role)
        return false;
    if (strcmp(role, "user") == 0 || strcmp(role, "assistant") == 0)
        return true;
    return api == API_OPENAI && (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0 ||
                                 strcmp(role, "tool") == 0);
}

/* Checks the messages and counts their words; *last_user gets the text. */
static const char *read_messages(struct ask *a, json_t *msgs, const char **last_user)
{
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return "messages: at least one message is required";
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        if (!role_ok(a->api, role))
            return a->api == API_ANTHROPIC ? "messages: roles must be \"user\" or \"assistant\"; "
                                             "use the top-level system parameter"
                                           : "messages: invalid role";
        if (!json_is_string(content) && !json_is_array(content))
            return "messages: content must be a string or an array of blocks";
        a->tokens_in += count_words(content_text(content));
        if (strcmp(role, "user") == 0)
            *last_user = content_text(content);
    }
    return NULL;
}

static const char *check_auth(struct http_request *req, enum api api, const struct fake *f)
{
    if (!f->api_key)
        return NULL;
    const char *got = http_request_header(req, api == API_OPENAI ? "authorization" : "x-api-key");
    if (api == API_OPENAI && got && strncmp(got, "Bearer ", 7) == 0)
        got += 7;
    return got && strcmp(got, f->api_key) == 0 ? NULL : "invalid API key";
}

/* Fills `a` from the request; returns NULL, or the reason with *status. */
static const char *parse_ask(struct http_request *req, const struct fake *f, struct ask *a,
                             int *status)
{
    *status = 401;
    const char *why = check_auth(req, a->api, f);
    if (why)
        return why;
    *status = 400;
    if (a->api == API_ANTHROPIC && !http_request_header(req, "anthropic-version"))
        return "anthropic-version: header is required";
    struct sb_str raw = http_request_body(req);
    a->body = json_loadb(raw.ptr ? raw.ptr : "", raw.len, 0, NULL);
    if (!json_is_object(a->body))
        return "the body is not a JSON object";
    a->model = json_string_value(json_object_get(a->body, "model"));
    if (!a->model || !*a->model)
        return "model: required";
    json_t *mt = json_object_get(a->body, "max_tokens");
    if (a->api == API_ANTHROPIC && !json_is_integer(mt))
        return "max_tokens: Field required";
    a->max_tokens = json_is_integer(mt) ? (long)json_integer_value(mt) : 0;
    json_t *t = json_object_get(a->body, "temperature");
    if (t && (!json_is_number(t) || json_number_value(t) < 0 ||
              json_number_value(t) > (a->api == API_ANTHROPIC ? 1.0 : 2.0)))
        return "temperature: out of range";
    a->stream = json_is_true(json_object_get(a->body, "stream"));
    a->usage_chunk =
        json_is_true(json_object_get(json_object_get(a->body, "stream_options"), "include_usage"));
    if (a->api == API_ANTHROPIC)
        a->tokens_in += count_words(content_text(json_object_get(a->body, "system")));
    const char *last_user = "";
    if ((why = read_messages(a, json_object_get(a->body, "messages"), &last_user)))
        return why;
    if (asprintf(&a->reply, "Echo: %s", last_user) < 0) {
        a->reply = NULL;
        *status = 500;
        return "out of memory";
    }
    if (a->max_tokens > 0)
        a->truncated = cut_words(a->reply, a->max_tokens);
    a->tokens_out = count_words(a->reply);
    return NULL;
}

/* ---------------------------------------------------------------- replies */

static const char *finish_reason(const struct ask *a)
{
    if (a->api == API_OPENAI)
        return a->truncated ? "length" : "stop";
    return a->truncated ? "max_tokens" : "end_turn";
}

static json_t *reply_json(const struct ask *a)
{
    if (a->api == API_OPENAI)
        return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:n, s:s}], "
                         "s:{s:I, s:I, s:I}}",
                         "id", a->id, "object", "chat.completion", "created",
                         (json_int_t)time(NULL), "model", a->model, "choices", "index", 0,
                         "message", "role", "assistant", "content", a->reply, "logprobs",
                         "finish_reason", finish_reason(a), "usage", "prompt_tokens",
                         (json_int_t)a->tokens_in, "completion_tokens", (json_int_t)a->tokens_out,
                         "total_tokens", (json_int_t)(a->tokens_in + a->tokens_out));
    return json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:s}], s:s, s:n, s:{s:I, s:I}}", "id", a->id,
                     "type", "message", "role", "assistant", "model", a->model, "content", "type",
                     "text", "text", a->reply, "stop_reason", finish_reason(a), "stop_sequence",
                     "usage", "input_tokens", (json_int_t)a->tokens_in, "output_tokens",
                     (json_int_t)a->tokens_out);
}

/* Appends one SSE event ("event:" line only when `event` is set); takes `obj`. */
static int sse_event(struct sb_buf *b, const char *event, json_t *obj)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!s)
        return -ENOMEM;
    int rc = event ? sb_buf_appendf(b, "event: %s\n", event) : 0;
    if (rc == 0)
        rc = sb_buf_appendf(b, "data: %s\n\n", s);
    free(s);
    return rc;
}

static json_t *openai_chunk(const struct ask *a, json_t *delta, const char *finish)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:s?}]}", "id", a->id, "object",
                     "chat.completion.chunk", "created", (json_int_t)time(NULL), "model", a->model,
                     "choices", "index", 0, "delta", delta, "finish_reason", finish);
}

/* The reply in pieces: each word, with the space before it. */
static int each_piece(const struct ask *a, struct sb_buf *b,
                      int (*emit)(const struct ask *, struct sb_buf *, const char *, int))
{
    const char *p = a->reply;
    while (*p) {
        const char *q = p;
        while (*q == ' ')
            q++;
        while (*q && *q != ' ')
            q++;
        int rc = emit(a, b, p, (int)(q - p));
        if (rc != 0)
            return rc;
        p = q;
    }
    return 0;
}

static int openai_piece(const struct ask *a, struct sb_buf *b, const char *p, int n)
{
    return sse_event(b, NULL, openai_chunk(a, json_pack("{s:s%}", "content", p, (size_t)n), NULL));
}

static int anthropic_piece(const struct ask *a, struct sb_buf *b, const char *p, int n)
{
    (void)a;
    return sse_event(b, "content_block_delta",
                     json_pack("{s:s, s:i, s:{s:s, s:s%}}", "type", "content_block_delta", "index",
                               0, "delta", "type", "text_delta", "text", p, (size_t)n));
}

static int openai_stream(const struct ask *a, struct sb_buf *b, bool broken)
{
    int rc = sse_event(
        b, NULL,
        openai_chunk(a, json_pack("{s:s, s:s}", "role", "assistant", "content", ""), NULL));
    if (rc == 0 && broken)
        return sse_event(b, NULL,
                         json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message",
                                   "The server had an error while processing your "
                                   "request.",
                                   "type", "server_error", "param", "code"));
    if (rc == 0)
        rc = each_piece(a, b, openai_piece);
    if (rc == 0)
        rc = sse_event(b, NULL, openai_chunk(a, json_object(), finish_reason(a)));
    if (rc == 0 && a->usage_chunk)
        rc = sse_event(b, NULL,
                       json_pack("{s:s, s:s, s:I, s:s, s:[], s:{s:I, s:I, s:I}}", "id", a->id,
                                 "object", "chat.completion.chunk", "created",
                                 (json_int_t)time(NULL), "model", a->model, "choices", "usage",
                                 "prompt_tokens", (json_int_t)a->tokens_in, "completion_tokens",
                                 (json_int_t)a->tokens_out, "total_tokens",
                                 (json_int_t)(a->tokens_in + a->tokens_out)));
    if (rc == 0)
        rc = sb_buf_append_str(b, "data: [DONE]\n\n");
    return rc;
}

static int anthropic_stream(const struct ask *a, struct sb_buf *b, bool broken)
{
    int rc = sse_event(b, "message_start",
                       json_pack("{s:s, s:{s:s, s:s, s:s, s:[], s:s, s:n, s:n, s:{s:I, s:i}}}",
                                 "type", "message_start", "message", "id", a->id, "type", "message",
                                 "role", "assistant", "content", "model", a->model, "stop_reason",
                                 "stop_sequence", "usage", "input_tokens", (json_int_t)a->tokens_in,
                                 "output_tokens", 1));
    if (rc == 0 && broken)
        return sse_event(b, "error",
                         json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type",
                                   "overloaded_error", "message", "Overloaded"));
    if (rc == 0)
        rc = sse_event(b, "content_block_start",
                       json_pack("{s:s, s:i, s:{s:s, s:s}}", "type", "content_block_start", "index",
                                 0, "content_block", "type", "text", "text", ""));
    if (rc == 0)
        rc = sse_event(b, "ping", json_pack("{s:s}", "type", "ping"));
    if (rc == 0)
        rc = each_piece(a, b, anthropic_piece);
    if (rc == 0)
        rc = sse_event(b, "content_block_stop",
                       json_pack("{s:s, s:i}", "type", "content_block_stop", "index", 0));
    if (rc == 0)
        rc = sse_event(b, "message_delta",
                       json_pack("{s:s, s:{s:s, s:n}, s:{s:I}}", "type", "message_delta", "delta",
                                 "stop_reason", finish_reason(a), "stop_sequence", "usage",
                                 "output_tokens", (json_int_t)a->tokens_out));
    if (rc == 0)
        rc = sse_event(b, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    return rc;
}

static void respond_reply(struct http_response *res, const struct ask *a, bool broken)
{
    if (!a->stream) {
        respond_json(res, 200, reply_json(a));
        return;
    }
    struct sb_buf b;
    sb_buf_init(&b, 16u * 1024 * 1024);
    int rc = a->api == API_OPENAI ? openai_stream(a, &b, broken) : anthropic_stream(a, &b, broken);
    if (rc == 0)
        rc = http_response_header(res, "Cache-Control", "no-cache");
    if (rc == 0)
        http_respond(res, 200, "text/event-stream", b.data, b.len);
    else
        http_respond(res, 500, "text/plain", "out of memory", 13);
    sb_buf_cleanup(&b);
}

/* ---------------------------------------------------------------- handlers */

static void record(struct fake *f, struct http_request *req)
{
    static const char *const HEADERS[] = {"authorization",   "x-api-key", "anthropic-version",
                                          "idempotency-key", "accept",    "content-type"};
    if (!f->record)
        return;
    json_t *h = json_object();
    for (size_t i = 0; h && i < sizeof HEADERS / sizeof HEADERS[0]; i++) {
        const char *v = http_request_header(req, HEADERS[i]);
        if (v)
            json_object_set_new(h, HEADERS[i], json_string(v));
    }
    struct sb_str raw = http_request_body(req);
    json_t *body = json_loadb(raw.ptr ? raw.ptr : "", raw.len, 0, NULL);
    if (!body)
        body = json_stringn(raw.ptr ? raw.ptr : "", raw.len);
    json_t *r =
        json_pack("{s:s, s:o?, s:o?}", "path", http_request_path(req), "headers", h, "body", body);
    if (!r)
        return;
    if (json_array_size(f->requests) >= FAKE_MAX_RECORDED)
        json_array_remove(f->requests, 0);
    json_array_append_new(f->requests, r);
}

static void script_clear(struct script *s)
{
    json_decref(s->retry_after);
    memset(s, 0, sizeof *s);
    s->retry_after_ms = -1;
    s->should_retry = -1;
}

static void handle_model(struct http_request *req, struct http_response *res, struct fake *f,
                         enum api api)
{
    struct script sc = {.retry_after_ms = -1, .should_retry = -1};
    bool fail, broken = false;
    pthread_mutex_lock(&f->mu);
    record(f, req);
    long n = ++f->counter;
    int delay = f->delay_ms;
    fail = f->script.fail_next > 0;
    if (fail) {
        f->script.fail_next--;
        sc = f->script;
        json_incref(sc.retry_after);
    }
    pthread_mutex_unlock(&f->mu);

    char rid[64];
    snprintf(rid, sizeof rid, "req_fake_%ld", n);
    http_response_delay(res, delay);
    (void)!http_response_header(res, api == API_OPENAI ? "x-request-id" : "request-id", rid);
    if (fail) {
        respond_scripted(res, api, &sc, rid);
        script_clear(&sc);
        return;
    }
    struct ask a = {.api = api};
    snprintf(a.id, sizeof a.id, "%s%ld", api == API_OPENAI ? "chatcmpl-fake-" : "msg_fake_", n);
    int status;
    const char *why = parse_ask(req, f, &a, &status);
    if (why) {
        respond_invalid(res, api, status, why, rid);
    } else {
        if (a.stream) {
            pthread_mutex_lock(&f->mu);
            broken = f->script.stream_error > 0;
            if (broken)
                f->script.stream_error--;
            pthread_mutex_unlock(&f->mu);
        }
        respond_reply(res, &a, broken);
    }
    ask_cleanup(&a);
}

static void h_openai(struct http_request *req, struct http_response *res, void *arg)
{
    handle_model(req, res, arg, API_OPENAI);
}

static void h_anthropic(struct http_request *req, struct http_response *res, void *arg)
{
    handle_model(req, res, arg, API_ANTHROPIC);
}

static void h_requests(struct http_request *req, struct http_response *res, void *arg)
{
    struct fake *f = arg;
    pthread_mutex_lock(&f->mu);
    if (strcmp(http_request_method(req), "DELETE") == 0) {
        json_array_clear(f->requests);
        pthread_mutex_unlock(&f->mu);
        respond_json(res, 200, json_pack("{s:b}", "ok", 1));
        return;
    }
    json_t *copy = json_deep_copy(f->requests);
    pthread_mutex_unlock(&f->mu);
    respond_json(res, 200, json_pack("{s:o}", "requests", copy ? copy : json_array()));
}

/* Applies {"fail_next","status","kind","retry_after","retry_after_ms",
 * "should_retry","stream_error","delay_ms"}; every member is optional. A
 * script with fail_next replaces the previous failure settings. */
static const char *apply_script(struct fake *f, json_t *s)
{
    json_t *v;
    if (!json_is_object(s))
        return "the body is not a JSON object";
    const char *kind = json_string_value(json_object_get(s, "kind"));
    if (kind && strlen(kind) >= sizeof f->script.kind)
        return "kind: unknown";
    if ((v = json_object_get(s, "fail_next"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return "fail_next: a non-negative integer";
        int stream_error = f->script.stream_error;
        script_clear(&f->script);
        f->script.stream_error = stream_error;
        f->script.fail_next = (int)json_integer_value(v);
        f->script.status = (int)json_integer_value(json_object_get(s, "status"));
        snprintf(f->script.kind, sizeof f->script.kind, "%s", kind ? kind : "");
        f->script.retry_after = json_incref(json_object_get(s, "retry_after"));
        if (json_is_integer(json_object_get(s, "retry_after_ms")))
            f->script.retry_after_ms =
                (long)json_integer_value(json_object_get(s, "retry_after_ms"));
        if (json_is_boolean(json_object_get(s, "should_retry")))
            f->script.should_retry = json_is_true(json_object_get(s, "should_retry"));
    }
    if ((v = json_object_get(s, "stream_error")))
        f->script.stream_error = json_is_integer(v) ? (int)json_integer_value(v) : json_is_true(v);
    if ((v = json_object_get(s, "delay_ms"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > HTTP_MAX_DELAY_MS)
            return "delay_ms: an integer in [0, 60000]";
        f->delay_ms = (int)json_integer_value(v);
    }
    return NULL;
}

static void h_script(struct http_request *req, struct http_response *res, void *arg)
{
    struct fake *f = arg;
    const char *why = NULL;
    pthread_mutex_lock(&f->mu);
    if (strcmp(http_request_method(req), "DELETE") == 0) {
        script_clear(&f->script);
        f->delay_ms = f->base_delay_ms;
    } else {
        struct sb_str raw = http_request_body(req);
        json_t *s = json_loadb(raw.ptr ? raw.ptr : "", raw.len, 0, NULL);
        why = apply_script(f, s);
        json_decref(s);
    }
    pthread_mutex_unlock(&f->mu);
    if (why)
        http_respond_error(res, 400, "bad_script", why);
    else
        respond_json(res, 200, json_pack("{s:b}", "ok", 1));
}

static void h_health(struct http_request *req, struct http_response *res, void *arg)
{
    (void)req, (void)arg;
    http_respond(res, 200, "text/plain", "ok\n", 3);
}

/* ---------------------------------------------------------------- main */

static struct http_server *SERVER; /* for the signal handler */

static void on_signal(int sig)
{
    (void)sig;
    if (SERVER)
        http_server_stop(SERVER);
}

static long env_long(const char *name, long def, long min, long max)
{
    const char *v = getenv(name);
    long out;
    if (!v || !*v)
        return def;
    if (sb_parse_long(v, min, max, &out) != 0) {
        fprintf(stderr, "sabia-fake-llm: %s must be an integer in [%ld, %ld]\n", name, min, max);
        exit(2);
    }
    return out;
}

static int add_routes(struct http_server *s, struct fake *f)
{
    static const struct http_route_opts INLINE = {.flags = HTTP_ROUTE_INLINE};
    int rc = http_route(s, "POST", "/v1/chat/completions", h_openai, f, &INLINE);
    if (rc == 0)
        rc = http_route(s, "POST", "/v1/messages", h_anthropic, f, &INLINE);
    if (rc == 0)
        rc = http_route(s, "GET", "/_requests", h_requests, f, &INLINE);
    if (rc == 0)
        rc = http_route(s, "DELETE", "/_requests", h_requests, f, &INLINE);
    if (rc == 0)
        rc = http_route(s, "POST", "/_script", h_script, f, &INLINE);
    if (rc == 0)
        rc = http_route(s, "DELETE", "/_script", h_script, f, &INLINE);
    if (rc == 0)
        rc = http_route(s, "GET", "/health", h_health, f, &INLINE);
    return rc;
}

int main(void)
{
    static const char *const CAPTURE[] = {"x-api-key", "anthropic-version", "idempotency-key",
                                          NULL};
    struct fake f = {.mu = PTHREAD_MUTEX_INITIALIZER};
    f.base_delay_ms = f.delay_ms = (int)env_long("FAKE_LLM_DELAY_MS", 0, 0, HTTP_MAX_DELAY_MS);
    f.api_key = getenv("FAKE_LLM_API_KEY");
    f.record = env_long("FAKE_LLM_RECORD", 1, 0, 1) == 1;
    f.requests = json_array();
    script_clear(&f.script);
    struct http_server_config cfg = {
        .service = "fake-llm",
        .bind = getenv("FAKE_LLM_BIND") ? getenv("FAKE_LLM_BIND") : "127.0.0.1",
        .port = (int)env_long("FAKE_LLM_PORT", 0, 0, 65535),
        .workers = 1,
        .keepalive_timeout_s = 60,
        .drain_timeout_ms = 2000,
        .max_requests = (int)env_long("FAKE_LLM_MAX_REQUESTS", 16384, 1, 65535),
        .capture_headers = CAPTURE,
    };
    signal(SIGPIPE, SIG_IGN);
    /* A test that dies before stopping its fake must not leave it running. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    struct http_server *s = http_server_new(&cfg);
    if (!s || !f.requests || add_routes(s, &f) != 0) {
        fprintf(stderr, "sabia-fake-llm: cannot start on %s:%d\n", cfg.bind, cfg.port);
        return 1;
    }
    SERVER = s;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("sabia-fake-llm listening on %s:%d\n", cfg.bind, http_server_port(s));
    fflush(stdout);
    int rc = http_server_run(s);
    SERVER = NULL;
    http_server_free(s);
    script_clear(&f.script);
    json_decref(f.requests);
    return rc == 0 ? 0 : 1;
}
