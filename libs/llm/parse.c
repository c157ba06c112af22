/* parse.c - reads one provider response: a JSON body (reply or error) or a
 * server-sent-event stream (OpenAI data-only chunks ending in [DONE], or
 * Anthropic named events ending in message_stop), into a struct llm_result. */
#include "internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct llm_parser {
    enum llm_provider provider;
    int status;
    bool sse_mode;
    bool refused; /* a limit was hit: further input is ignored */
    size_t fed;
    struct sb_buf body; /* JSON mode */
    struct sse sse;
    struct sb_buf text;
    long tokens_in, tokens_out;
    bool done;     /* [DONE] or message_stop seen */
    bool finished; /* a finish/stop reason seen */
    enum llm_error stream_error;
    bool unreadable; /* a 2xx body or event that is not the JSON expected */
    char model[LLM_FIELD_MAX];
    char stop_reason[LLM_FIELD_MAX];
    char id[LLM_FIELD_MAX];
    char request_id[LLM_FIELD_MAX];
    char error_message[LLM_MAX_ERROR_MESSAGE];
};

static void copy_field(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static const char *jstr(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static void take_long(json_t *obj, const char *key, long *out)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        *out = (long)json_integer_value(v);
}

static int append_text(struct llm_parser *p, json_t *s)
{
    if (!json_is_string(s))
        return 0;
    return sb_buf_append(&p->text, json_string_value(s), json_string_length(s));
}

/* {"error":{...}} (OpenAI) or {"type":"error","error":{...}} (Anthropic). */
static json_t *error_object(json_t *root)
{
    json_t *e = json_object_get(root, "error");
    return json_is_object(e) ? e : NULL;
}

static void record_stream_error(struct llm_parser *p, json_t *err)
{
    p->stream_error = llm_classify_stream_error(jstr(err, "type"), jstr(err, "code"));
    copy_field(p->error_message, sizeof p->error_message, jstr(err, "message"));
}

/* ---------------------------------------------------------------- OpenAI */

static void openai_usage(struct llm_parser *p, json_t *root)
{
    json_t *u = json_object_get(root, "usage");
    if (!json_is_object(u))
        return;
    take_long(u, "prompt_tokens", &p->tokens_in);
    take_long(u, "completion_tokens", &p->tokens_out);
}

static void openai_meta(struct llm_parser *p, json_t *root)
{
    if (jstr(root, "model"))
        copy_field(p->model, sizeof p->model, jstr(root, "model"));
    if (jstr(root, "id"))
        copy_field(p->id, sizeof p->id, jstr(root, "id"));
}

static void openai_finish_reason(struct llm_parser *p, json_t *choice)
{
    const char *fr = jstr(choice, "finish_reason");
    if (fr) {
        copy_field(p->stop_reason, sizeof p->stop_reason, fr);
        p->finished = true;
    }
}

static int openai_body(struct llm_parser *p, json_t *root)
{
    openai_meta(p, root);
    openai_usage(p, root);
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    if (!json_is_object(msg)) {
        p->unreadable = true;
        return 0;
    }
    openai_finish_reason(p, choice);
    return append_text(p, json_object_get(msg, "content")); /* null content: empty text */
}

static int openai_chunk(struct llm_parser *p, const char *data, size_t len)
{
    if (len >= 6 && memcmp(data, "[DONE]", 6) == 0) {
        p->done = true;
        return 0;
    }
    json_t *root = json_loadb(data, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        p->unreadable = true;
        return 0;
    }
    int rc = 0;
    json_t *err = error_object(root);
    if (err) {
        record_stream_error(p, err);
    } else {
        openai_meta(p, root);
        openai_usage(p, root);
        /* The usage chunk has "choices": [] (or null on some compatible servers). */
        json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
        if (choice) {
            rc = append_text(p, json_object_get(json_object_get(choice, "delta"), "content"));
            openai_finish_reason(p, choice);
        }
    }
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------- Anthropic */

static void anthropic_usage(struct llm_parser *p, json_t *obj)
{
    json_t *u = json_object_get(obj, "usage");
    if (!json_is_object(u))
        return;
    take_long(u, "input_tokens", &p->tokens_in);
    take_long(u, "output_tokens", &p->tokens_out); /* cumulative in message_delta */
}

static void anthropic_meta(struct llm_parser *p, json_t *msg)
{
    if (jstr(msg, "model"))
        copy_field(p->model, sizeof p->model, jstr(msg, "model"));
    if (jstr(msg, "id"))
        copy_field(p->id, sizeof p->id, jstr(msg, "id"));
    if (jstr(msg, "stop_reason")) {
        copy_field(p->stop_reason, sizeof p->stop_reason, jstr(msg, "stop_reason"));
        p->finished = true;
    }
}

static int anthropic_body(struct llm_parser *p, json_t *root)
{
    json_t *content = json_object_get(root, "content");
    if (!json_is_array(content)) {
        p->unreadable = true;
        return 0;
    }
    anthropic_meta(p, root);
    anthropic_usage(p, root);
    size_t i;
    json_t *block;
    json_array_foreach(content, i, block)
    {
        const char *type = jstr(block, "type");
        if (type && strcmp(type, "text") == 0) {
            int rc = append_text(p, json_object_get(block, "text"));
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static int anthropic_event(struct llm_parser *p, const char *event, json_t *root)
{
    /* The event name and data.type agree; prefer the data (event: may be absent). */
    const char *type = jstr(root, "type") ? jstr(root, "type") : event;
    if (strcmp(type, "message_start") == 0) {
        json_t *msg = json_object_get(root, "message");
        anthropic_meta(p, msg);
        anthropic_usage(p, msg);
    } else if (strcmp(type, "content_block_delta") == 0) {
        json_t *delta = json_object_get(root, "delta");
        const char *dt = jstr(delta, "type");
        if (dt && strcmp(dt, "text_delta") == 0)
            return append_text(p, json_object_get(delta, "text"));
    } else if (strcmp(type, "message_delta") == 0) {
        anthropic_meta(p, json_object_get(root, "delta"));
        anthropic_usage(p, root);
    } else if (strcmp(type, "message_stop") == 0) {
        p->done = true;
    } else if (strcmp(type, "error") == 0) {
        json_t *err = error_object(root);
        if (err)
            record_stream_error(p, err);
        else
            p->stream_error = LLM_ERR_SERVER;
    }
    /* ping, content_block_start/stop and unknown events carry nothing we need. */
    return 0;
}

static int on_event(void *arg, const char *event, const char *data, size_t len)
{
    struct llm_parser *p = arg;
    if (p->stream_error != LLM_OK || p->done)
        return 0; /* nothing after an error or the end counts */
    if (p->provider != LLM_ANTHROPIC)
        return openai_chunk(p, data, len);
    json_t *root = json_loadb(data, len, 0, NULL);
    int rc = 0;
    if (json_is_object(root))
        rc = anthropic_event(p, event, root);
    else
        p->unreadable = true;
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------- API */

struct llm_parser *llm_parser_new(enum llm_provider provider, int http_status, bool event_stream)
{
    struct llm_parser *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->provider = provider;
    p->status = http_status;
    p->sse_mode = event_stream && http_status >= 200 && http_status < 300;
    sb_buf_init(&p->body, LLM_MAX_RESPONSE_BYTES);
    sb_buf_init(&p->text, LLM_MAX_RESPONSE_BYTES);
    sse_init(&p->sse, on_event, p);
    return p;
}

void llm_parser_free(struct llm_parser *p)
{
    if (!p)
        return;
    sb_buf_cleanup(&p->body);
    sb_buf_cleanup(&p->text);
    sse_cleanup(&p->sse);
    free(p);
}

int llm_parser_feed(struct llm_parser *p, const void *data, size_t len)
{
    if (p->refused)
        return SB_ELIMIT;
    if (len > LLM_MAX_RESPONSE_BYTES - p->fed) {
        p->refused = true;
        return SB_ELIMIT;
    }
    p->fed += len;
    int rc = p->sse_mode ? sse_feed(&p->sse, data, len) : sb_buf_append(&p->body, data, len);
    if (rc == SB_ELIMIT)
        p->refused = true;
    return rc;
}

/* An error answer: {"error":{"type","code","message"}} in either shape, or
 * {"error":"text"} from some compatible servers, or anything else. */
static enum llm_error finish_error_body(struct llm_parser *p)
{
    json_t *root = json_loadb(p->body.data ? p->body.data : "", p->body.len, 0, NULL);
    json_t *e = json_object_get(root, "error");
    const char *type = NULL, *code = NULL, *message = NULL;
    if (json_is_object(e)) {
        type = jstr(e, "type");
        code = jstr(e, "code");
        message = jstr(e, "message");
    } else if (json_is_string(e)) {
        message = json_string_value(e);
    }
    enum llm_error err = llm_classify_status(p->status, type, code, message);
    if (message)
        copy_field(p->error_message, sizeof p->error_message, message);
    else
        snprintf(p->error_message, sizeof p->error_message, "HTTP %d", p->status);
    if (jstr(root, "request_id"))
        copy_field(p->request_id, sizeof p->request_id, jstr(root, "request_id"));
    json_decref(root);
    return err;
}

static void finish_json_reply(struct llm_parser *p)
{
    json_t *root = json_loadb(p->body.data ? p->body.data : "", p->body.len, 0, NULL);
    if (!json_is_object(root))
        p->unreadable = true;
    else if ((p->provider == LLM_ANTHROPIC ? anthropic_body(p, root) : openai_body(p, root)) != 0)
        p->refused = true;
    json_decref(root);
}

static void fail(struct llm_parser *p, struct llm_result *res, enum llm_error e, bool retryable,
                 const char *why)
{
    res->error = e;
    res->retryable = retryable;
    if (why)
        copy_field(p->error_message, sizeof p->error_message, why);
}

void llm_parser_finish(struct llm_parser *p, struct llm_result *res)
{
    memset(res, 0, sizeof *res);
    res->http_status = p->status;
    if (p->status < 200 || p->status >= 300) {
        res->error = finish_error_body(p);
        res->retryable = llm_error_transient(res->error);
    } else if (!p->refused && !p->sse_mode) {
        finish_json_reply(p);
    }
    if (res->error == LLM_OK) {
        bool stream_cut = p->sse_mode && !p->done && !(p->finished && p->provider != LLM_ANTHROPIC);
        if (p->refused)
            fail(p, res, LLM_ERR_SERVER, false, "response larger than the limit");
        else if (p->stream_error != LLM_OK)
            fail(p, res, p->stream_error, llm_error_transient(p->stream_error), NULL);
        else if (p->unreadable)
            fail(p, res, LLM_ERR_SERVER, false, "unreadable response body");
        else if (stream_cut)
            fail(p, res, LLM_ERR_NETWORK, true, "stream ended before its terminator");
    }
    res->error_message = res->error == LLM_OK ? "" : p->error_message;
    res->text = res->error == LLM_OK && p->text.data ? p->text.data : "";
    res->tokens_in = p->tokens_in;
    res->tokens_out = p->tokens_out;
    res->model = p->model;
    res->stop_reason = p->stop_reason;
    res->response_id = p->id;
    res->request_id = p->request_id;
}
