/* OpenAI Chat Completions (and compatible servers) through the engine
 * against sabia-fake-llm: replies streamed and not, what goes over the
 * wire, and the retry policy (429 rate vs quota, 401, 5xx, x-should-retry,
 * retry-after, timeouts). */
#include "fake.h"
#include "llm.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <string.h>

static struct fake_llm FAKE;
static struct llm *LLM;

static void start(char *const *env, int max_retries)
{
    fake_llm_start(&FAKE, env);
    struct llm_config cfg = {.max_retries = max_retries, .breaker_failures = 1000};
    LLM = llm_new(&cfg);
    cr_assert_not_null(LLM);
}

static void setup(void)
{
    start(NULL, 0);
}

static void teardown(void)
{
    llm_free(LLM);
    LLM = NULL;
    fake_llm_stop(&FAKE);
}

static const struct llm_message CONVO[] = {
    {"user", "Hello there"},
    {"assistant", "Hi, how can I help?"},
    {"user", "Where is my order?"},
};

static void expect_echo(const struct outcome *o)
{
    cr_assert_eq(o->error, LLM_OK, "%s: %s", llm_error_name(o->error), o->error_message);
    cr_assert_str_eq(o->text, "Echo: Where is my order?");
    /* The fake counts words: system (3) + messages (2 + 5 + 4); reply 5. */
    cr_assert_eq(o->tokens_in, 14);
    cr_assert_eq(o->tokens_out, 5);
    cr_assert_str_eq(o->model, "gpt-test");
    cr_assert_str_eq(o->stop_reason, "stop");
    cr_assert_eq(o->http_status, 200);
    cr_assert_eq(o->attempts, 1);
    cr_assert(strncmp(o->response_id, "chatcmpl-fake-", 14) == 0, "%s", o->response_id);
    cr_assert(strncmp(o->request_id, "req_fake_", 9) == 0, "%s", o->request_id);
}

/* Checks the one recorded request: URL, auth, system first, every message. */
static void expect_wire(bool stream)
{
    json_t *reqs = fake_llm_requests(&FAKE);
    cr_assert_eq(json_array_size(reqs), 1);
    json_t *r = json_array_get(reqs, 0);
    cr_assert_str_eq(json_string_value(json_object_get(r, "path")), "/v1/chat/completions");
    json_t *h = json_object_get(r, "headers");
    cr_assert_str_eq(json_string_value(json_object_get(h, "authorization")), "Bearer sk-test");
    cr_assert_str_eq(json_string_value(json_object_get(h, "content-type")), "application/json");
    json_t *b = json_object_get(r, "body");
    cr_assert_str_eq(json_string_value(json_object_get(b, "model")), "gpt-test");
    cr_assert(json_real_value(json_object_get(b, "temperature")) == 0.5);
    cr_assert_eq(json_integer_value(json_object_get(b, "max_tokens")), 100);
    cr_assert_eq(json_is_true(json_object_get(b, "stream")), stream);
    json_t *so = json_object_get(b, "stream_options");
    cr_assert_eq(json_is_true(json_object_get(so, "include_usage")), stream);
    json_t *msgs = json_object_get(b, "messages");
    cr_assert_eq(json_array_size(msgs), 4);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 0), "role")), "system");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 0), "content")),
                     "You are terse");
    for (size_t i = 0; i < 3; i++) {
        json_t *m = json_array_get(msgs, i + 1);
        cr_assert_str_eq(json_string_value(json_object_get(m, "role")), CONVO[i].role);
        cr_assert_str_eq(json_string_value(json_object_get(m, "content")), CONVO[i].content);
    }
    json_decref(reqs);
}

Test(openai, plain_reply, .init = setup, .fini = teardown, .timeout = 60)
{
    struct llm_request req = fake_request(&FAKE, LLM_OPENAI, false, CONVO, 3);
    struct outcome o;
    call_sync(LLM, &req, &o);
    expect_echo(&o);
    outcome_cleanup(&o);
    expect_wire(false);
}

Test(openai, streamed_reply, .init = setup, .fini = teardown, .timeout = 60)
{
    struct llm_request req = fake_request(&FAKE, LLM_OPENAI, true, CONVO, 3);
    struct outcome o;
    call_sync(LLM, &req, &o);
    expect_echo(&o);
    outcome_cleanup(&o);
    expect_wire(true);
}

Test(openai, compatible_server_without_key_and_escaping, .init = setup, .fini = teardown,
     .timeout = 60)
{
    static const struct llm_message m[] = {{"user", "quote \" back\\slash\nnew line é 🙂"}};
    struct llm_request req = fake_request(&FAKE, LLM_OPENAI_COMPATIBLE, true, m, 1);
    req.api_key = NULL;
    req.system = NULL;
    req.temperature = -1;
    req.max_tokens = 0;
    char base[160];
    snprintf(base, sizeof base, "%s///", FAKE.base);
    req.base_url = base; /* trailing slashes are dropped */
    struct outcome o;
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_OK, "%s", o.error_message);
    cr_assert_str_eq(o.text, "Echo: quote \" back\\slash\nnew line é 🙂");
    outcome_cleanup(&o);
    json_t *reqs = fake_llm_requests(&FAKE);
    json_t *r = json_array_get(reqs, 0);
    json_t *b = json_object_get(r, "body");
    cr_assert_null(json_object_get(json_object_get(r, "headers"), "authorization"));
    cr_assert_null(json_object_get(b, "temperature"), "negative temperature: provider default");
    cr_assert_null(json_object_get(b, "max_tokens"));
    cr_assert_eq(json_array_size(json_object_get(b, "messages")), 1, "no system message");
    json_decref(reqs);
}

Test(openai, max_tokens_cuts_the_reply, .init = setup, .fini = teardown, .timeout = 60)
{
    struct llm_request req = fake_request(&FAKE, LLM_OPENAI, true, CONVO, 3);
    req.max_tokens = 2;
    struct outcome o;
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_OK);
    cr_assert_str_eq(o.text, "Echo: Where");
    cr_assert_str_eq(o.stop_reason, "length");
    cr_assert_eq(o.tokens_out, 2);
    outcome_cleanup(&o);
}

Test(openai, rate_limit_with_retry_after_is_retried, .init = setup, .fini = teardown, .timeout = 60)
{
    fake_llm_script(&FAKE, "{\"fail_next\":1,\"kind\":\"rate\",\"retry_after\":1}");
    struct llm_request req = fake_request(&FAKE, LLM_OPENAI, false, CONVO, 3);
    req.idempotency_key = "idem-42";
    struct outcome o;
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_OK, "%s", o.error_message);
    cr_assert_eq(o.attempts, 2);
    cr_assert_geq(o.latency_ms, 950, "waited retry-after: 1 (took %ld ms)", o.latency_ms);
    cr_assert_lt(o.latency_ms, 5000);
    outcome_cleanup(&o);
    json_t *reqs = fake_llm_requests(&FAKE);
    cr_assert_eq(json_array_size(reqs), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *h = json_object_get(json_array_get(reqs, i), "headers");
        cr_assert_str_eq(json_string_value(json_object_get(h, "idempotency-key")), "idem-42",
                         "the same key on every attempt");
    }
    json_decref(reqs);
}

Test(openai, retry_after_ms_wins_and_backoff_applies, .init = setup, .fini = teardown,
     .timeout = 60)
{
    fake_llm_script(&FAKE, "{\"fail_next\":1,\"kind\":\"rate\",\"retry_after\":30,"
                           "\"retry_after_ms\":100}");
    struct llm_request req = fake_request(&FAKE, LLM_OPENAI, false, CONVO, 3);
    struct outcome o;
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_OK);
    cr_assert_eq(o.attempts, 2);
    cr_assert_lt(o.latency_ms, 2000, "retry-after-ms (100) beats retry-after (30 s)");
    outcome_cleanup(&o);
    /* Without hints: 0.5 s then 1 s, each jittered down by at most 25%. */
    fake_llm_script(&FAKE, "{\"fail_next\":2,\"kind\":\"server\"}");
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_OK, "%s", o.error_message);
    cr_assert_eq(o.attempts, 3);
    cr_assert_geq(o.latency_ms, 1100, "backoff 0.5 s + 1 s, jittered (took %ld)", o.latency_ms);
    cr_assert_lt(o.latency_ms, 4000);
    outcome_cleanup(&o);
}

Test(openai, quota_is_never_retried, .init = setup, .fini = teardown, .timeout = 60)
{
    fake_llm_script(&FAKE, "{\"fail_next\":1,\"kind\":\"quota\",\"should_retry\":true}");
    struct llm_request req = fake_request(&FAKE, LLM_OPENAI, false, CONVO, 3);
    struct outcome o;
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_ERR_QUOTA, "got %s", llm_error_name(o.error));
    cr_assert_eq(o.attempts, 1, "even with x-should-retry: true");
    cr_assert_eq(o.http_status, 429);
    cr_assert_not(o.retryable);
    cr_assert(strstr(o.error_message, "exceeded your current quota"), "%s", o.error_message);
    cr_assert_str_eq(o.text, "");
    outcome_cleanup(&o);
}

Test(openai, auth_failure_is_never_retried, .timeout = 60)
{
    char *env[] = {"FAKE_LLM_API_KEY=sk-right", NULL};
    start(env, 0);
    struct llm_request req = fake_request(&FAKE, LLM_OPENAI, false, CONVO, 3);
    struct outcome o;
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_ERR_AUTH, "got %s", llm_error_name(o.error));
    cr_assert_eq(o.attempts, 1);
    cr_assert_eq(o.http_status, 401);
    outcome_cleanup(&o);
    req.api_key = "sk-right";
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_OK);
    outcome_cleanup(&o);
    teardown();
}

Test(openai, server_errors_are_retried_until_the_limit, .init = setup, .fini = teardown,
     .timeout = 60)
{
    fake_llm_script(&FAKE, "{\"fail_next\":5,\"status\":500,\"retry_after_ms\":10}");
    struct llm_request req = fake_request(&FAKE, LLM_OPENAI, true, CONVO, 3);
    struct outcome o;
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_ERR_SERVER);
    cr_assert_eq(o.attempts, 3, "one try and max_retries (2)");
    cr_assert(o.retryable);
    cr_assert_eq(o.http_status, 500);
    outcome_cleanup(&o);
    json_t *reqs = fake_llm_requests(&FAKE);
    cr_assert_eq(json_array_size(reqs), 3);
    json_decref(reqs);
}

Test(openai, should_retry_false_and_long_retry_after_stop_retries, .init = setup, .fini = teardown,
     .timeout = 60)
{
    fake_llm_script(&FAKE, "{\"fail_next\":1,\"status\":503,\"should_retry\":false}");
    struct llm_request req = fake_request(&FAKE, LLM_OPENAI, false, CONVO, 3);
    struct outcome o;
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_ERR_OVERLOADED);
    cr_assert_eq(o.attempts, 1);
    outcome_cleanup(&o);
    fake_llm_script(&FAKE, "{\"fail_next\":1,\"kind\":\"rate\",\"retry_after\":120}");
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_ERR_RATE_LIMIT);
    cr_assert_eq(o.attempts, 1, "retry-after over 60 s fails instead of waiting");
    cr_assert_lt(o.latency_ms, 1000);
    outcome_cleanup(&o);
    /* x-should-retry: true makes a 404 worth another try, but never a 400. */
    fake_llm_script(&FAKE, "{\"fail_next\":1,\"status\":404,\"should_retry\":true,"
                           "\"retry_after_ms\":10}");
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_OK);
    cr_assert_eq(o.attempts, 2);
    outcome_cleanup(&o);
    fake_llm_script(&FAKE, "{\"fail_next\":1,\"status\":400,\"should_retry\":true,"
                           "\"retry_after_ms\":10}");
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_ERR_INVALID);
    cr_assert_eq(o.attempts, 1);
    outcome_cleanup(&o);
}

Test(openai, invalid_request_is_not_retried, .init = setup, .fini = teardown, .timeout = 60)
{
    fake_llm_script(&FAKE, "{\"fail_next\":1,\"status\":400}");
    struct llm_request req = fake_request(&FAKE, LLM_OPENAI, false, CONVO, 3);
    struct outcome o;
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_ERR_INVALID);
    cr_assert_eq(o.attempts, 1);
    cr_assert_not(o.retryable);
    outcome_cleanup(&o);
}

Test(openai, mid_stream_error_is_retried, .init = setup, .fini = teardown, .timeout = 60)
{
    fake_llm_script(&FAKE, "{\"stream_error\":true}");
    struct llm_request req = fake_request(&FAKE, LLM_OPENAI, true, CONVO, 3);
    struct outcome o;
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_OK, "%s: %s", llm_error_name(o.error), o.error_message);
    cr_assert_str_eq(o.text, "Echo: Where is my order?", "no text from the broken attempt");
    cr_assert_eq(o.attempts, 2);
    outcome_cleanup(&o);
}

Test(openai, timeout, .init = setup, .fini = teardown, .timeout = 60)
{
    fake_llm_script(&FAKE, "{\"delay_ms\":3000}");
    struct llm_request req = fake_request(&FAKE, LLM_OPENAI, false, CONVO, 3);
    req.timeout_ms = 400;
    struct outcome o;
    call_sync(LLM, &req, &o);
    cr_assert_eq(o.error, LLM_ERR_TIMEOUT, "got %s", llm_error_name(o.error));
    cr_assert_eq(o.attempts, 1, "the whole call's budget is spent: no retry");
    cr_assert_geq(o.latency_ms, 380);
    cr_assert_lt(o.latency_ms, 2000);
    cr_assert(o.retryable);
    outcome_cleanup(&o);
}
