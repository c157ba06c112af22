/* Response parsing without a network: the documented SSE fixtures fed whole,
 * byte by byte and split everywhere; error bodies and their classes;
 * Retry-After hints; and the limits. */
#include "llm.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Reads ../shared/fixtures/<name> beside the source tree. */
static char *fixture(const char *name, size_t *len)
{
    char rel[256];
    snprintf(rel, sizeof rel, "../shared/fixtures/%s", name);
    char *path = ts_source_path(rel);
    char *data = ts_read_file(path, len);
    free(path);
    return data;
}

/* Parses `body` fed in chunks of `step` bytes (0 = all at once) and checks
 * res through `check`. */
typedef void (*check_fn)(const struct llm_result *res);

static void parse_with(enum llm_provider p, int status, bool sse, const char *body, size_t len,
                       size_t step, check_fn check)
{
    struct llm_parser *ps = llm_parser_new(p, status, sse);
    cr_assert_not_null(ps);
    if (step == 0)
        step = len ? len : 1;
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        cr_assert_eq(llm_parser_feed(ps, body + off, n), 0);
    }
    struct llm_result res;
    llm_parser_finish(ps, &res);
    check(&res);
    llm_parser_free(ps);
}

static void check_openai_fixture(const struct llm_result *r)
{
    cr_assert_eq(r->error, LLM_OK, "%s: %s", llm_error_name(r->error), r->error_message);
    cr_assert_str_eq(r->text, "Hello!");
    cr_assert_eq(r->tokens_in, 9);
    cr_assert_eq(r->tokens_out, 2);
    cr_assert_str_eq(r->model, "gpt-4o-mini");
    cr_assert_str_eq(r->stop_reason, "stop");
    cr_assert_str_eq(r->response_id, "chatcmpl-1");
    cr_assert_str_eq(r->error_message, "");
}

static void check_anthropic_fixture(const struct llm_result *r)
{
    cr_assert_eq(r->error, LLM_OK, "%s: %s", llm_error_name(r->error), r->error_message);
    cr_assert_str_eq(r->text, "Hello!");
    cr_assert_eq(r->tokens_in, 25);
    cr_assert_eq(r->tokens_out, 15, "message_delta's cumulative output_tokens wins");
    cr_assert_str_eq(r->model, "claude-sonnet-4-5-20250929");
    cr_assert_str_eq(r->stop_reason, "end_turn");
    cr_assert_str_eq(r->response_id, "msg_test_0001");
}

Test(sse, openai_fixture_whole_and_bytewise, .timeout = 30)
{
    size_t len;
    char *body = fixture("openai_stream.sse", &len);
    parse_with(LLM_OPENAI, 200, true, body, len, 0, check_openai_fixture);
    parse_with(LLM_OPENAI, 200, true, body, len, 1, check_openai_fixture);
    parse_with(LLM_OPENAI_COMPATIBLE, 200, true, body, len, 7, check_openai_fixture);
    free(body);
}

Test(sse, anthropic_fixture_split_everywhere, .timeout = 60)
{
    size_t len;
    char *body = fixture("anthropic_stream.sse", &len);
    parse_with(LLM_ANTHROPIC, 200, true, body, len, 0, check_anthropic_fixture);
    parse_with(LLM_ANTHROPIC, 200, true, body, len, 1, check_anthropic_fixture);
    for (size_t cut = 1; cut < len; cut++) {
        struct llm_parser *ps = llm_parser_new(LLM_ANTHROPIC, 200, true);
        cr_assert_eq(llm_parser_feed(ps, body, cut), 0);
        cr_assert_eq(llm_parser_feed(ps, body + cut, len - cut), 0);
        struct llm_result r;
        llm_parser_finish(ps, &r);
        check_anthropic_fixture(&r);
        llm_parser_free(ps);
    }
    free(body);
}

/* Rewrites every LF as `eol`. */
static char *with_eol(const char *body, size_t len, const char *eol, size_t *out_len)
{
    size_t el = strlen(eol), n = 0;
    char *out = malloc(len * el + 1);
    cr_assert_not_null(out);
    for (size_t i = 0; i < len; i++) {
        if (body[i] == '\n') {
            memcpy(out + n, eol, el);
            n += el;
        } else {
            out[n++] = body[i];
        }
    }
    *out_len = n;
    return out;
}

Test(sse, crlf_and_cr_line_endings, .timeout = 30)
{
    size_t len, n;
    char *body = fixture("anthropic_stream.sse", &len);
    char *crlf = with_eol(body, len, "\r\n", &n);
    parse_with(LLM_ANTHROPIC, 200, true, crlf, n, 1, check_anthropic_fixture);
    parse_with(LLM_ANTHROPIC, 200, true, crlf, n, 0, check_anthropic_fixture);
    char *cr = with_eol(body, len, "\r", &n);
    parse_with(LLM_ANTHROPIC, 200, true, cr, n, 1, check_anthropic_fixture);
    free(crlf);
    free(cr);
    free(body);
    body = fixture("openai_stream.sse", &len);
    crlf = with_eol(body, len, "\r\n", &n);
    parse_with(LLM_OPENAI, 200, true, crlf, n, 3, check_openai_fixture);
    free(crlf);
    free(body);
}

static void check_overloaded(const struct llm_result *r)
{
    cr_assert_eq(r->error, LLM_ERR_OVERLOADED, "got %s", llm_error_name(r->error));
    cr_assert(r->retryable);
    cr_assert_str_eq(r->error_message, "Overloaded");
    cr_assert_str_eq(r->text, "", "no partial text on failure");
    cr_assert_eq(r->http_status, 200);
}

Test(sse, anthropic_mid_stream_overloaded, .timeout = 30)
{
    size_t len;
    char *body = fixture("anthropic_stream_overloaded.sse", &len);
    parse_with(LLM_ANTHROPIC, 200, true, body, len, 0, check_overloaded);
    parse_with(LLM_ANTHROPIC, 200, true, body, len, 1, check_overloaded);
    free(body);
}

static void check_cut_short(const struct llm_result *r)
{
    cr_assert_eq(r->error, LLM_ERR_NETWORK, "got %s", llm_error_name(r->error));
    cr_assert(r->retryable);
}

Test(sse, streams_cut_short_are_network_errors, .timeout = 30)
{
    size_t len;
    char *body = fixture("anthropic_stream.sse", &len);
    const char *stop = strstr(body, "event: message_delta");
    cr_assert_not_null(stop);
    parse_with(LLM_ANTHROPIC, 200, true, body, (size_t)(stop - body), 0, check_cut_short);
    free(body);
    body = fixture("openai_stream.sse", &len);
    const char *fin = strstr(body, "\"delta\":{},\"finish_reason\"");
    cr_assert_not_null(fin);
    while (fin > body && fin[-1] != '\n')
        fin--;
    parse_with(LLM_OPENAI, 200, true, body, (size_t)(fin - body), 0, check_cut_short);
    /* An event that never got its blank line is not dispatched either. */
    const char *tail =
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n";
    char *cut = malloc((size_t)(fin - body) + strlen(tail) + 1);
    cr_assert_not_null(cut);
    memcpy(cut, body, (size_t)(fin - body));
    memcpy(cut + (fin - body), tail, strlen(tail) + 1);
    parse_with(LLM_OPENAI, 200, true, cut, strlen(cut), 0, check_cut_short);
    free(cut);
    free(body);
}

static void check_hi(const struct llm_result *r)
{
    cr_assert_eq(r->error, LLM_OK, "%s: %s", llm_error_name(r->error), r->error_message);
    cr_assert_str_eq(r->text, "Hi\nthere");
}

Test(sse, comments_unknown_events_and_multiline_data, .timeout = 30)
{
    const char *s =
        ": keep-alive\n\n"
        "event: brand_new_event\ndata: {\"type\":\"brand_new_event\"}\n\n"
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\","
        "\"model\":\"c\",\"usage\":{\"input_tokens\":1}}}\n\n"
        "event: content_block_delta\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\n"
        "data:  \"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\\nthere\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":"
        "{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n"
        "id: 7\nretry: 10\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    parse_with(LLM_ANTHROPIC, 200, true, s, strlen(s), 0, check_hi);
    parse_with(LLM_ANTHROPIC, 200, true, s, strlen(s), 1, check_hi);
    /* With CRLF, the LF after a CR must not count as a blank line (which
     * would split the two data lines into two events). */
    size_t n;
    char *crlf = with_eol(s, strlen(s), "\r\n", &n);
    parse_with(LLM_ANTHROPIC, 200, true, crlf, n, 0, check_hi);
    parse_with(LLM_ANTHROPIC, 200, true, crlf, n, 1, check_hi);
    free(crlf);
}

static void check_openai_error_chunk(const struct llm_result *r)
{
    cr_assert_eq(r->error, LLM_ERR_SERVER, "got %s", llm_error_name(r->error));
    cr_assert(r->retryable);
    cr_assert_str_eq(r->error_message, "boom");
}

Test(sse, openai_error_chunk, .timeout = 30)
{
    const char *s = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n"
                    "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n";
    parse_with(LLM_OPENAI, 200, true, s, strlen(s), 0, check_openai_error_chunk);
}

static void check_unreadable(const struct llm_result *r)
{
    cr_assert_eq(r->error, LLM_ERR_SERVER, "got %s", llm_error_name(r->error));
    cr_assert_not(r->retryable, "a malformed 200 body would come back the same");
}

Test(sse, garbage_in_a_stream_or_body, .timeout = 30)
{
    const char *s = "data: {not json\n\ndata: [DONE]\n\n";
    parse_with(LLM_OPENAI, 200, true, s, strlen(s), 0, check_unreadable);
    const char *b = "<html>hello</html>";
    parse_with(LLM_OPENAI, 200, false, b, strlen(b), 0, check_unreadable);
    parse_with(LLM_ANTHROPIC, 200, false, "{\"id\":1}", 8, 0, check_unreadable);
    parse_with(LLM_OPENAI, 200, false, "", 0, 0, check_unreadable);
}

Test(sse, line_and_body_limits, .timeout = 60)
{
    size_t big = LLM_MAX_SSE_LINE + 16;
    char *line = malloc(big);
    cr_assert_not_null(line);
    memset(line, 'a', big);
    memcpy(line, "data: ", 6);
    struct llm_parser *ps = llm_parser_new(LLM_OPENAI, 200, true);
    cr_assert_eq(llm_parser_feed(ps, line, big), SB_ELIMIT);
    cr_assert_eq(llm_parser_feed(ps, "\n\n", 2), SB_ELIMIT, "refused after the limit");
    struct llm_result r;
    llm_parser_finish(ps, &r);
    cr_assert_eq(r.error, LLM_ERR_SERVER);
    cr_assert_not(r.retryable);
    llm_parser_free(ps);

    /* A JSON body over LLM_MAX_RESPONSE_BYTES, fed in pieces. */
    ps = llm_parser_new(LLM_ANTHROPIC, 200, false);
    int rc = 0;
    for (size_t fed = 0; rc == 0 && fed <= LLM_MAX_RESPONSE_BYTES; fed += big)
        rc = llm_parser_feed(ps, line, big);
    cr_assert_eq(rc, SB_ELIMIT);
    llm_parser_finish(ps, &r);
    cr_assert_eq(r.error, LLM_ERR_SERVER);
    cr_assert_str_eq(r.text, "");
    llm_parser_free(ps);
    free(line);
}

static void check_plain_openai(const struct llm_result *r)
{
    cr_assert_eq(r->error, LLM_OK);
    cr_assert_str_eq(r->text, "\n\nHello there, how may I assist you today?");
    cr_assert_eq(r->tokens_in, 9);
    cr_assert_eq(r->tokens_out, 12);
    cr_assert_str_eq(r->stop_reason, "stop");
    cr_assert_str_eq(r->response_id, "chatcmpl-123");
}

static void check_null_content(const struct llm_result *r)
{
    cr_assert_eq(r->error, LLM_OK);
    cr_assert_str_eq(r->text, "");
    cr_assert_str_eq(r->stop_reason, "tool_calls");
}

static void check_plain_anthropic(const struct llm_result *r)
{
    cr_assert_eq(r->error, LLM_OK);
    cr_assert_str_eq(r->text, "Here's the answer. And more.");
    cr_assert_eq(r->tokens_in, 100);
    cr_assert_eq(r->tokens_out, 50);
    cr_assert_str_eq(r->stop_reason, "end_turn");
    cr_assert_str_eq(r->model, "claude-sonnet-4-5-20250929");
}

Test(json, reply_bodies, .timeout = 30)
{
    const char *o =
        "{\"id\":\"chatcmpl-123\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini\","
        "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
        "\"\\n\\nHello there, how may I assist you today?\"},\"logprobs\":null,"
        "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,"
        "\"completion_tokens\":12,\"total_tokens\":21}}";
    parse_with(LLM_OPENAI, 200, false, o, strlen(o), 5, check_plain_openai);
    const char *n = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null},"
                    "\"finish_reason\":\"tool_calls\"}]}";
    parse_with(LLM_OPENAI_COMPATIBLE, 200, false, n, strlen(n), 0, check_null_content);
    const char *a = "{\"id\":\"msg_01234\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
                    "\"claude-sonnet-4-5-20250929\",\"content\":[{\"type\":\"text\",\"text\":"
                    "\"Here's the answer.\"},{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"x\","
                    "\"input\":{}},{\"type\":\"text\",\"text\":\" And more.\"}],\"stop_reason\":"
                    "\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":100,"
                    "\"output_tokens\":50}}";
    parse_with(LLM_ANTHROPIC, 200, false, a, strlen(a), 0, check_plain_anthropic);
}

/* Parses an error answer and returns its class; *retry and message out. */
static enum llm_error classify(enum llm_provider p, int status, const char *body, bool *retry,
                               char *msg, size_t cap)
{
    struct llm_parser *ps = llm_parser_new(p, status, true /* ignored for errors */);
    cr_assert_eq(llm_parser_feed(ps, body, strlen(body)), 0);
    struct llm_result r;
    llm_parser_finish(ps, &r);
    *retry = r.retryable;
    snprintf(msg, cap, "%s|%s", r.error_message, r.request_id);
    cr_assert_eq(r.http_status, status);
    cr_assert_str_eq(r.text, "");
    enum llm_error e = r.error;
    llm_parser_free(ps);
    return e;
}

Test(json, error_bodies_and_classes, .timeout = 30)
{
    bool retry;
    char msg[1024];
    char *rate = fixture("openai_error_429_rate.json", NULL);
    cr_assert_eq(classify(LLM_OPENAI, 429, rate, &retry, msg, sizeof msg), LLM_ERR_RATE_LIMIT);
    cr_assert(retry);
    cr_assert(strstr(msg, "Rate limit reached"), "%s", msg);
    char *quota = fixture("openai_error_429_quota.json", NULL);
    cr_assert_eq(classify(LLM_OPENAI, 429, quota, &retry, msg, sizeof msg), LLM_ERR_QUOTA);
    cr_assert_not(retry);
    char *ov = fixture("anthropic_error_529.json", NULL);
    cr_assert_eq(classify(LLM_ANTHROPIC, 529, ov, &retry, msg, sizeof msg), LLM_ERR_OVERLOADED);
    cr_assert(retry);
    cr_assert_str_eq(msg, "Overloaded|req_test_0001");
    free(rate);
    free(quota);
    free(ov);

    const char *credit = "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                         "\"message\":\"Your credit balance is too low to access the API.\"}}";
    cr_assert_eq(classify(LLM_ANTHROPIC, 400, credit, &retry, msg, sizeof msg), LLM_ERR_QUOTA);
    cr_assert_not(retry);
    const char *bad = "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                      "\"message\":\"max_tokens: Field required\"}}";
    cr_assert_eq(classify(LLM_ANTHROPIC, 400, bad, &retry, msg, sizeof msg), LLM_ERR_INVALID);
    cr_assert_not(retry);
    const char *auth = "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
                       "\"message\":\"invalid x-api-key\"}}";
    cr_assert_eq(classify(LLM_ANTHROPIC, 401, auth, &retry, msg, sizeof msg), LLM_ERR_AUTH);
    cr_assert_not(retry);
    cr_assert_eq(classify(LLM_OPENAI, 403, "{}", &retry, msg, sizeof msg), LLM_ERR_AUTH);
    cr_assert_eq(classify(LLM_OPENAI, 502, "<html>bad gateway</html>", &retry, msg, sizeof msg),
                 LLM_ERR_SERVER);
    cr_assert(retry);
    cr_assert_str_eq(msg, "HTTP 502|");
    const char *slow = "{\"error\":{\"message\":\"busy\",\"type\":\"service_unavailable_error\","
                       "\"code\":\"server_is_overloaded\"}}";
    cr_assert_eq(classify(LLM_OPENAI, 503, slow, &retry, msg, sizeof msg), LLM_ERR_OVERLOADED);
    cr_assert_eq(classify(LLM_OPENAI, 408, "", &retry, msg, sizeof msg), LLM_ERR_TIMEOUT);
    cr_assert(retry);
    cr_assert_eq(classify(LLM_OPENAI, 409, "", &retry, msg, sizeof msg), LLM_ERR_SERVER);
    cr_assert(retry);
    cr_assert_eq(
        classify(LLM_OPENAI, 404, "{\"error\":\"no such model\"}", &retry, msg, sizeof msg),
        LLM_ERR_INVALID);
    cr_assert_str_eq(msg, "no such model|");
    cr_assert_not(retry);
}

Test(retry_after, hints, .timeout = 30)
{
    int64_t now = 1700000000000LL; /* 2023-11-14T22:13:20Z */
    cr_assert_eq(llm_retry_after_ms("250", "7", now), 250, "retry-after-ms wins");
    cr_assert_eq(llm_retry_after_ms("12.5", NULL, now), 12);
    cr_assert_eq(llm_retry_after_ms(NULL, "2", now), 2000);
    cr_assert_eq(llm_retry_after_ms(NULL, "1.5", now), 1500);
    cr_assert_eq(llm_retry_after_ms("", "0", now), 0);
    cr_assert_eq(llm_retry_after_ms(NULL, "Tue, 14 Nov 2023 22:13:30 GMT", now), 10000);
    cr_assert_eq(llm_retry_after_ms(NULL, "Tue, 14 Nov 2023 22:13:00 GMT", now), -1, "past");
    cr_assert_eq(llm_retry_after_ms(NULL, "soon", now), -1);
    cr_assert_eq(llm_retry_after_ms(NULL, "-3", now), -1);
    cr_assert_eq(llm_retry_after_ms("abc", NULL, now), -1);
    cr_assert_eq(llm_retry_after_ms(NULL, "1e3", now), -1);
    cr_assert_eq(llm_retry_after_ms(NULL, NULL, now), -1);
    cr_assert_geq(llm_retry_after_ms(NULL, "99999999999999999999", now), LLM_MAX_RETRY_AFTER_MS,
                  "huge hints stay huge (and fail the call) without overflowing");
    cr_assert_eq(llm_retry_after_ms(NULL, "Tue, 14 Nov 2023 22:13:30 GMT trailing", now), -1);
}

Test(names, errors_and_providers, .timeout = 10)
{
    static const char *const want[] = {"ok",      "rate_limit",   "overloaded", "server",
                                       "timeout", "network",      "auth",       "quota",
                                       "invalid", "circuit_open", "shutdown"};
    for (int e = LLM_OK; e <= LLM_ERR_SHUTDOWN; e++)
        cr_assert_str_eq(llm_error_name((enum llm_error)e), want[e]);
    cr_assert_str_eq(llm_error_name((enum llm_error)99), "unknown");
    cr_assert_str_eq(llm_provider_name(LLM_ANTHROPIC), "anthropic");
    cr_assert_str_eq(llm_provider_name(LLM_OPENAI_COMPATIBLE), "openai_compatible");
    cr_assert(llm_error_transient(LLM_ERR_OVERLOADED));
    cr_assert(llm_error_transient(LLM_ERR_TIMEOUT));
    cr_assert_not(llm_error_transient(LLM_ERR_QUOTA));
    cr_assert_not(llm_error_transient(LLM_ERR_AUTH));
    cr_assert_not(llm_error_transient(LLM_ERR_CIRCUIT_OPEN));
}
