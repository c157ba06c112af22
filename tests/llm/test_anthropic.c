/* Anthropic Messages through the engine against sabia-fake-llm: replies
 * streamed (named events) and not, the headers and top-level system prompt,
 * 529 and mid-stream overloaded errors retried, credit balance and auth
 * failures not. */
#include "fake.h"
#include "llm.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <string.h>

static struct fake_llm FAKE;
static struct llm *LLM;

static void setup(void)
{
    fake_llm_start(&FAKE, NULL);
    struct llm_config cfg = {.breaker_failures = 1000};
    LLM = llm_new(&cfg);
    cr_assert_not_null(LLM);
}

static void teardown(void)
{
    llm_free(LLM);
    LLM = NULL;
    fake_llm_stop(&FAKE);
}

static const struct llm_message CONVO[] = {
    {"user", "Hello"},
    {"assistant", "Hi!"},
    {"user", "Where is my order?"},
};

static void expect_echo(const struct outcome *o, int attempts)
{
    cr_assert_eq(o->error, LLM_OK, "%s: %s", llm_error_name(o->error), o->error_message);
    cr_assert_str_eq(o->text, "Echo: Where is my order?");
    /* Word counts: system (3) + messages (1 + 1 + 4); reply 5. */
    cr_assert_eq(o->tokens_in, 9);
    cr_assert_eq(o->tokens_out, 5);
    cr_assert_str_eq(o->model, "claude-test");
    cr_assert_str_eq(o->stop_reason, "end_turn");
    cr_assert_eq(o->attempts, attempts);
    cr_assert(strncmp(o->response_id, "msg_fake_", 9) == 0, "%s", o->response_id);
    cr_assert(strncmp(o->request_id, "req_fake_", 9) == 0, "%s", o->request_id);
}

static void expect_wire(bool stream)
{
    json_t *reqs = fake_llm_requests(&FAKE);
    cr_assert_eq(json_array_size(reqs), 1);
    json_t *r = json_array_get(reqs, 0);
    cr_assert_str_eq(json_string_value(json_object_get(r, "path")), "/v1/messages");
    json_t *h = json_object_get(r, "headers");
    cr_assert_str_eq(json_string_value(json_object_get(h, "x-api-key")), "sk-test");
    cr_assert_str_eq(json_string_value(json_object_get(h, "anthropic-version")), "2023-06-01");
    cr_assert_null(json_object_get(h, "authorization"));
    json_t *b = json_object_get(r, "body");
    cr_assert_str_eq(json_string_value(json_object_get(b, "system")), "You are terse");
    cr_assert_eq(json_integer_value(json_object_get(b, "max_tokens")), 100);
    cr_assert_eq(json_is_true(json_object_get(b, "stream")), stream);
    cr_assert_null(json_object_get(b, "stream_options"), "OpenAI-only member");
    json_t *msgs = json_object_get(b, "messages");
    cr_assert_eq(json_array_size(msgs), 3, "the system prompt is not a message");
    for (size_t i = 0; i < 3; i++) {
        json_t *m = json_array_get(msgs, i);
        cr_assert_str_eq(json_string_value(json_object_get(m, "role")), CONVO[i].role);
        cr_assert_str_eq(json_string_value(json_object_get(m, "content")), CONVO[i].content);
    }
    json_decref(reqs);
}

Test(anthropic, plain_reply, .init = setup, .fini = teardown, .timeout = 60)
{
    struct llm_request req = fake_request(&FAKE, LLM_ANTHROPIC, false, CONVO, 3);
    struct outcome o;
    call_sync(LLM, &req, &o);
    expect_echo(&o, 1);
    outcome_cleanup(&o);
    expect_wire(false);
}

Test(anthropic, streamed_reply, .init = setup, .fini = teardown, .timeout = 60)
{
    struct llm_request req = fake_request(&FAKE, LLM_ANTHROPIC, true, CONVO, 3);
    struct outcome o;
    call_sync(LLM, &req, &o);
    expect_echo(&o, 1);
    outcome_cleanup(&o);
    expect_wire(true);
}

Test(anthropic, max_tokens_stop_reason, .init = setup, .fini = teardown, .timeout = 60)
{
    struct llm_request req = fake_request(&FAKE, LLM_ANTHROPIC, true, CONVO, 3);
    req.max_tokens = 3;
    struct outcome o;
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_OK);
    cr_assert_str_eq(o.text, "Echo: Where is");
    cr_assert_str_eq(o.stop_reason, "max_tokens");
    cr_assert_eq(o.tokens_out, 3);
    outcome_cleanup(&o);
}

Test(anthropic, overloaded_529_is_retried, .init = setup, .fini = teardown, .timeout = 60)
{
    fake_llm_script(&FAKE, "{\"fail_next\":2,\"kind\":\"overloaded\",\"retry_after_ms\":20}");
    struct llm_request req = fake_request(&FAKE, LLM_ANTHROPIC, false, CONVO, 3);
    struct outcome o;
    call_sync(LLM, &req, &o);
    expect_echo(&o, 3);
    outcome_cleanup(&o);
    /* Past max_retries the overloaded class is what the caller sees. */
    fake_llm_script(&FAKE, "{\"fail_next\":3,\"kind\":\"overloaded\",\"retry_after_ms\":20}");
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_ERR_OVERLOADED);
    cr_assert_eq(o.http_status, 529);
    cr_assert_eq(o.attempts, 3);
    cr_assert_str_eq(o.error_message, "Overloaded");
    outcome_cleanup(&o);
}

Test(anthropic, mid_stream_overloaded_is_retried, .init = setup, .fini = teardown, .timeout = 60)
{
    fake_llm_script(&FAKE, "{\"stream_error\":1}");
    struct llm_request req = fake_request(&FAKE, LLM_ANTHROPIC, true, CONVO, 3);
    struct outcome o;
    call_sync(LLM, &req, &o);
    expect_echo(&o, 2);
    outcome_cleanup(&o);
    /* Every attempt broken: the call fails as overloaded with status 200. */
    fake_llm_script(&FAKE, "{\"stream_error\":3}");
    req.timeout_ms = 20000;
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_ERR_OVERLOADED, "got %s", llm_error_name(o.error));
    cr_assert_eq(o.attempts, 3);
    cr_assert_eq(o.http_status, 200);
    cr_assert_str_eq(o.text, "");
    outcome_cleanup(&o);
}

Test(anthropic, credit_balance_is_quota_and_not_retried, .init = setup, .fini = teardown,
     .timeout = 60)
{
    fake_llm_script(&FAKE, "{\"fail_next\":1,\"kind\":\"quota\"}");
    struct llm_request req = fake_request(&FAKE, LLM_ANTHROPIC, false, CONVO, 3);
    struct outcome o;
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_ERR_QUOTA, "got %s", llm_error_name(o.error));
    cr_assert_eq(o.http_status, 400);
    cr_assert_eq(o.attempts, 1);
    cr_assert(strstr(o.error_message, "credit balance"), "%s", o.error_message);
    outcome_cleanup(&o);
}

Test(anthropic, auth_and_permission_are_not_retried, .init = setup, .fini = teardown, .timeout = 60)
{
    fake_llm_script(&FAKE, "{\"fail_next\":1,\"kind\":\"auth\"}");
    struct llm_request req = fake_request(&FAKE, LLM_ANTHROPIC, true, CONVO, 3);
    struct outcome o;
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_ERR_AUTH);
    cr_assert_eq(o.attempts, 1);
    cr_assert_eq(o.http_status, 401);
    outcome_cleanup(&o);
    fake_llm_script(&FAKE, "{\"fail_next\":1,\"status\":403}");
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_ERR_AUTH);
    cr_assert_eq(o.attempts, 1);
    outcome_cleanup(&o);
}

Test(anthropic, rate_limit_then_success, .init = setup, .fini = teardown, .timeout = 60)
{
    fake_llm_script(&FAKE, "{\"fail_next\":1,\"kind\":\"rate\",\"retry_after\":1}");
    struct llm_request req = fake_request(&FAKE, LLM_ANTHROPIC, true, CONVO, 3);
    struct outcome o;
    call_sync(LLM, &req, &o);
    expect_echo(&o, 2);
    cr_assert_geq(o.latency_ms, 950);
    outcome_cleanup(&o);
}

Test(anthropic, timeout_while_streaming_is_reported, .init = setup, .fini = teardown, .timeout = 60)
{
    fake_llm_script(&FAKE, "{\"delay_ms\":2000}");
    struct llm_request req = fake_request(&FAKE, LLM_ANTHROPIC, true, CONVO, 3);
    req.timeout_ms = 300;
    struct outcome o;
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_ERR_TIMEOUT);
    cr_assert_lt(o.latency_ms, 1500);
    outcome_cleanup(&o);
}
