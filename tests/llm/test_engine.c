/* The engine itself: requests refused up front, bad configurations, many
 * calls in flight on one thread, the in-flight cap, the circuit breaker,
 * a provider that is down, metrics, and shutdown with calls in flight. */
#include "fake.h"
#include "llm.h"
#include "metrics.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct llm_message HELLO[] = {{"user", "hello"}};

static struct llm_request base_request(void)
{
    return (struct llm_request){.provider = LLM_OPENAI,
                                .base_url = "http://127.0.0.1:9/v1",
                                .model = "m",
                                .messages = HELLO,
                                .nmessages = 1,
                                .max_tokens = 10};
}

static void never_called(const struct llm_result *res, void *arg)
{
    (void)res, (void)arg;
    cr_assert_fail("a refused call must never call back");
}

/* Submits base_request() with one field changed; expects `expected`. */
#define REFUSE(expected, field, value)                                                             \
    do {                                                                                           \
        struct llm_request x = base_request();                                                     \
        x.field = value;                                                                           \
        cr_assert_eq(llm_submit(l, &x, never_called, NULL), expected, #field " = " #value);        \
    } while (0)

Test(engine, bad_requests_are_refused, .timeout = 30)
{
    struct llm_config cfg = {0};
    struct llm *l = llm_new(&cfg);
    cr_assert_not_null(l);
    struct llm_request r = base_request();
    cr_assert_eq(llm_submit(NULL, &r, never_called, NULL), -EINVAL);
    cr_assert_eq(llm_submit(l, NULL, never_called, NULL), -EINVAL);
    cr_assert_eq(llm_submit(l, &r, NULL, NULL), -EINVAL);
    REFUSE(-EINVAL, model, NULL);
    REFUSE(-EINVAL, model, "");
    REFUSE(-EINVAL, nmessages, 0);
    REFUSE(-EINVAL, messages, NULL);
    REFUSE(-EINVAL, provider, (enum llm_provider)7);
    REFUSE(-EINVAL, base_url, "ftp://example.com/v1");
    REFUSE(-EINVAL, base_url, "http://exa mple.com");
    REFUSE(-EINVAL, base_url, "http://example.com/\r\nX-Evil: 1");
    REFUSE(-EINVAL, api_key, "sk\r\nX-Injected: yes");
    REFUSE(-EINVAL, idempotency_key, "a\nb");
    REFUSE(-EINVAL, temperature, 2.5);
    REFUSE(-EINVAL, temperature, NAN);
    REFUSE(-EINVAL, timeout_ms, -1);
    {
        struct llm_request x = base_request();
        x.provider = LLM_OPENAI_COMPATIBLE;
        x.base_url = NULL;
        cr_assert_eq(llm_submit(l, &x, never_called, NULL), -EINVAL, "compatible needs a base");
        x.provider = LLM_ANTHROPIC;
        x.max_tokens = 0;
        cr_assert_eq(llm_submit(l, &x, never_called, NULL), -EINVAL, "Anthropic needs max_tokens");
        x.max_tokens = 10;
        x.temperature = 1.5;
        cr_assert_eq(llm_submit(l, &x, never_called, NULL), -EINVAL, "Anthropic: at most 1");
    }
    static const struct llm_message bad_role[] = {{"system", "x"}};
    REFUSE(-EINVAL, messages, bad_role);
    static const struct llm_message no_content[] = {{"user", NULL}};
    REFUSE(-EINVAL, messages, no_content);
    cr_assert_eq(llm_pending(l), 0);
    llm_free(l);
}

Test(engine, requests_past_a_limit_are_refused, .timeout = 30)
{
    struct llm_config cfg = {0};
    struct llm *l = llm_new(&cfg);
    cr_assert_not_null(l);
    REFUSE(SB_ELIMIT, nmessages, LLM_MAX_MESSAGES + 1);
    char *longkey = malloc(LLM_MAX_TOKEN_FIELD + 2);
    memset(longkey, 'k', LLM_MAX_TOKEN_FIELD + 1);
    longkey[LLM_MAX_TOKEN_FIELD + 1] = '\0';
    REFUSE(SB_ELIMIT, api_key, longkey);
    REFUSE(SB_ELIMIT, model, longkey);
    free(longkey);
    /* A body over LLM_MAX_REQUEST_BYTES. */
    size_t big = LLM_MAX_REQUEST_BYTES + 1;
    char *huge = malloc(big + 1);
    memset(huge, 'x', big);
    huge[big] = '\0';
    struct llm_message hm[] = {{"user", huge}};
    REFUSE(SB_ELIMIT, messages, hm);
    free(huge);
    cr_assert_eq(llm_pending(l), 0);
    llm_free(l);
}

Test(engine, bad_configs_are_refused, .timeout = 30)
{
    struct llm_config bad[] = {
        {.max_in_flight = -1},
        {.max_in_flight = LLM_MAX_IN_FLIGHT_LIMIT + 1},
        {.max_retries = LLM_MAX_RETRIES_LIMIT + 1},
        {.max_retries = -2},
        {.default_timeout_ms = -5},
        {.breaker_failures = -1},
        {.breaker_cooldown_ms = -1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_null(llm_new(&bad[i]), "config %zu", i);
    llm_free(NULL);
}

Test(engine, provider_down_is_a_network_error, .timeout = 60)
{
    struct llm_config cfg = {.max_retries = 1, .breaker_failures = 100};
    struct llm *l = llm_new(&cfg);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/v1", ts_free_port());
    struct llm_request r = base_request();
    r.base_url = base;
    struct outcome o;
    call_sync(l, &r, &o);
    cr_assert_eq(o.error, LLM_ERR_NETWORK, "got %s", llm_error_name(o.error));
    cr_assert_eq(o.attempts, 2, "connection errors are retried");
    cr_assert_eq(o.http_status, 0);
    cr_assert(o.retryable);
    cr_assert_neq(o.error_message[0], '\0');
    cr_assert_geq(o.latency_ms, 350, "one backoff (0.5 s, jittered) in between");
    outcome_cleanup(&o);
    llm_free(l);
}

Test(engine, many_calls_in_flight_on_one_thread, .timeout = 120)
{
    enum { N = 200 };
    char *env[] = {"FAKE_LLM_DELAY_MS=500", "FAKE_LLM_RECORD=0", NULL};
    struct fake_llm f;
    fake_llm_start(&f, env);
    struct llm_config cfg = {0};
    struct llm *l = llm_new(&cfg);
    struct waiter w;
    waiter_init(&w, N);
    struct waiter_arg args[N];
    struct llm_message msgs[N][1];
    char texts[N][32];
    int64_t t0 = sb_mono_ms();
    for (int i = 0; i < N; i++) {
        snprintf(texts[i], sizeof texts[i], "call %d", i);
        msgs[i][0] = (struct llm_message){"user", texts[i]};
        struct llm_request r =
            fake_request(&f, i % 2 ? LLM_ANTHROPIC : LLM_OPENAI, i % 4 < 2, msgs[i], 1);
        args[i] = (struct waiter_arg){&w, i};
        cr_assert_eq(llm_submit(l, &r, waiter_done, &args[i]), 0);
    }
    cr_assert_geq(llm_pending(l), N - 10, "all accepted at once");
    cr_assert(waiter_wait(&w, N, 60000), "only %zu of %d completed", waiter_count(&w), N);
    int64_t took = sb_mono_ms() - t0;
    /* Serially this would take 100 s; in flight together, about one delay. */
    cr_assert_lt(took, 5000, "%d calls of 500 ms took %lld ms", N, (long long)took);
    for (int i = 0; i < N; i++) {
        struct outcome *o = &w.out[i];
        cr_assert_eq(o->error, LLM_OK, "call %ld: %s %s", o->tag, llm_error_name(o->error),
                     o->error_message);
        char want[48];
        snprintf(want, sizeof want, "Echo: call %ld", o->tag);
        cr_assert_str_eq(o->text, want);
        cr_assert(pthread_equal(o->thread, w.out[0].thread), "one engine thread");
        cr_assert_not(pthread_equal(o->thread, pthread_self()));
        cr_assert_eq(w.calls_per_tag[i], 1, "callback %d ran once", i);
    }
    cr_assert_eq(llm_pending(l), 0);
    llm_free(l);
    waiter_cleanup(&w);
    fake_llm_stop(&f);
}

Test(engine, max_in_flight_queues_the_rest, .timeout = 60)
{
    enum { N = 6 };
    char *env[] = {"FAKE_LLM_DELAY_MS=300", NULL};
    struct fake_llm f;
    fake_llm_start(&f, env);
    struct llm_config cfg = {.max_in_flight = 2};
    struct llm *l = llm_new(&cfg);
    struct waiter w;
    waiter_init(&w, N);
    struct waiter_arg args[N];
    int64_t t0 = sb_mono_ms();
    for (int i = 0; i < N; i++) {
        struct llm_request r = fake_request(&f, LLM_OPENAI, false, HELLO, 1);
        args[i] = (struct waiter_arg){&w, i};
        cr_assert_eq(llm_submit(l, &r, waiter_done, &args[i]), 0);
    }
    cr_assert(waiter_wait(&w, N, 20000));
    int64_t took = sb_mono_ms() - t0;
    cr_assert_geq(took, 850, "3 rounds of 2 x 300 ms (took %lld)", (long long)took);
    for (int i = 0; i < N; i++)
        cr_assert_eq(w.out[i].error, LLM_OK);
    /* A call that cannot get a slot before its deadline times out unsent. */
    waiter_cleanup(&w);
    waiter_init(&w, 3);
    struct waiter_arg a3[3];
    for (int i = 0; i < 3; i++) {
        struct llm_request r = fake_request(&f, LLM_OPENAI, false, HELLO, 1);
        r.timeout_ms = i < 2 ? 5000 : 100;
        a3[i] = (struct waiter_arg){&w, i};
        cr_assert_eq(llm_submit(l, &r, waiter_done, &a3[i]), 0);
    }
    cr_assert(waiter_wait(&w, 3, 20000));
    for (int i = 0; i < 3; i++) {
        struct outcome *o = &w.out[i];
        enum llm_error want = o->tag == 2 ? LLM_ERR_TIMEOUT : LLM_OK;
        cr_assert_eq(o->error, want, "call %ld: %s", o->tag, llm_error_name(o->error));
        if (o->tag == 2)
            cr_assert_eq(o->attempts, 0, "never sent");
    }
    llm_free(l);
    waiter_cleanup(&w);
    fake_llm_stop(&f);
}

static size_t recorded(struct fake_llm *f)
{
    json_t *r = fake_llm_requests(f);
    size_t n = json_array_size(r);
    json_decref(r);
    return n;
}

/* The value on the first rendered line that starts with `prefix`; fails when none. */
static double metric_value(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *line = text; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, prefix, n) == 0) {
            const char *sp = strchr(line + n, ' ');
            cr_assert_not_null(sp);
            return strtod(sp + 1, NULL);
        }
    }
    cr_assert_fail("no metric line starts with %s in:\n%s", prefix, text);
    return -1;
}

static enum llm_error one_call(struct llm *l, struct fake_llm *f, int *attempts, long *latency)
{
    struct llm_request r = fake_request(f, LLM_OPENAI, false, HELLO, 1);
    struct outcome o;
    call_sync(l, &r, &o);
    enum llm_error e = o.error;
    *attempts = o.attempts;
    *latency = o.latency_ms;
    outcome_cleanup(&o);
    return e;
}

Test(engine, circuit_breaker_opens_half_opens_and_closes, .timeout = 60)
{
    struct fake_llm f;
    fake_llm_start(&f, NULL);
    struct metrics *m = metrics_new();
    struct llm_config cfg = {
        .max_retries = -1, .breaker_failures = 3, .breaker_cooldown_ms = 400, .metrics = m};
    struct llm *l = llm_new(&cfg);
    int attempts;
    long latency;
    fake_llm_script(&f, "{\"fail_next\":3,\"status\":500}");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(one_call(l, &f, &attempts, &latency), LLM_ERR_SERVER);
    cr_assert_eq(one_call(l, &f, &attempts, &latency), LLM_ERR_CIRCUIT_OPEN);
    cr_assert_eq(attempts, 0);
    cr_assert_lt(latency, 250, "fails at once");
    cr_assert_eq(recorded(&f), 3, "nothing sent while open");
    struct sb_buf out;
    sb_buf_init(&out, 1 << 20);
    cr_assert_eq(metrics_render(m, &out), 0);
    cr_assert_eq(metric_value(out.data, "llm_circuit_state{provider=\"openai\",endpoint=\"http://"),
                 1, "open");
    cr_assert(strstr(out.data, "llm_requests_total{provider=\"openai\",result=\"server\"} 3"));
    cr_assert(
        strstr(out.data, "llm_requests_total{provider=\"openai\",result=\"circuit_open\"} 1"));
    sb_buf_cleanup(&out);

    /* Half-open: one trial goes through; a failing trial opens it again. */
    usleep(450 * 1000);
    fake_llm_script(&f, "{\"fail_next\":1,\"status\":503}");
    cr_assert_eq(one_call(l, &f, &attempts, &latency), LLM_ERR_OVERLOADED);
    cr_assert_eq(attempts, 1);
    cr_assert_eq(one_call(l, &f, &attempts, &latency), LLM_ERR_CIRCUIT_OPEN);
    cr_assert_eq(recorded(&f), 4);
    llm_free(l);
    metrics_free(m);
    fake_llm_stop(&f);
}

Test(engine, circuit_trial_keeps_others_out_and_closes_it, .timeout = 60)
{
    struct fake_llm f;
    fake_llm_start(&f, NULL);
    struct metrics *m = metrics_new();
    struct llm_config cfg = {
        .max_retries = -1, .breaker_failures = 2, .breaker_cooldown_ms = 400, .metrics = m};
    struct llm *l = llm_new(&cfg);
    int attempts;
    long latency;
    fake_llm_script(&f, "{\"fail_next\":2,\"status\":500}");
    for (int i = 0; i < 2; i++)
        cr_assert_eq(one_call(l, &f, &attempts, &latency), LLM_ERR_SERVER);
    cr_assert_eq(one_call(l, &f, &attempts, &latency), LLM_ERR_CIRCUIT_OPEN);

    /* After the cooldown, a trial in flight keeps others out; its success closes it. */
    usleep(450 * 1000);
    fake_llm_script(&f, "{\"delay_ms\":300}");
    struct waiter w;
    waiter_init(&w, 2);
    struct waiter_arg a[2] = {{&w, 0}, {&w, 1}};
    struct llm_request r = fake_request(&f, LLM_OPENAI, false, HELLO, 1);
    cr_assert_eq(llm_submit(l, &r, waiter_done, &a[0]), 0);
    usleep(50 * 1000);
    cr_assert_eq(llm_submit(l, &r, waiter_done, &a[1]), 0);
    cr_assert(waiter_wait(&w, 2, 10000));
    cr_assert_eq(w.out[0].tag, 1, "the second call fails first, at once");
    cr_assert_eq(w.out[0].error, LLM_ERR_CIRCUIT_OPEN);
    cr_assert_eq(w.out[1].error, LLM_OK);
    waiter_cleanup(&w);
    fake_llm_script(&f, "{\"delay_ms\":0}");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(one_call(l, &f, &attempts, &latency), LLM_OK, "closed again");
    struct sb_buf out;
    sb_buf_init(&out, 1 << 20);
    cr_assert_eq(metrics_render(m, &out), 0);
    cr_assert(strstr(out.data, "llm_tokens_total{provider=\"openai\",direction=\"out\"} 8"),
              "4 replies of 2 words: %s", out.data);
    cr_assert(strstr(out.data, "llm_in_flight 0"));
    cr_assert(strstr(out.data, "llm_request_seconds_count{provider=\"openai\"} 6"),
              "every call that was sent: %s", out.data);
    cr_assert_eq(metric_value(out.data, "llm_circuit_state{provider=\"openai\",endpoint=\"http://"),
                 0, "closed");
    sb_buf_cleanup(&out);
    llm_free(l);
    metrics_free(m);
    fake_llm_stop(&f);
}

Test(engine, breakers_are_per_endpoint, .timeout = 60)
{
    struct fake_llm a, b;
    fake_llm_start(&a, NULL);
    fake_llm_start(&b, NULL);
    struct llm_config cfg = {
        .max_retries = -1, .breaker_failures = 1, .breaker_cooldown_ms = 60000};
    struct llm *l = llm_new(&cfg);
    int attempts;
    long latency;
    fake_llm_script(&a, "{\"fail_next\":1,\"status\":500}");
    cr_assert_eq(one_call(l, &a, &attempts, &latency), LLM_ERR_SERVER);
    cr_assert_eq(one_call(l, &a, &attempts, &latency), LLM_ERR_CIRCUIT_OPEN);
    cr_assert_eq(one_call(l, &b, &attempts, &latency), LLM_OK, "another endpoint is unaffected");
    /* Failures that are not transient (401) never open a circuit. */
    fake_llm_script(&b, "{\"fail_next\":3,\"status\":401}");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(one_call(l, &b, &attempts, &latency), LLM_ERR_AUTH);
    cr_assert_eq(one_call(l, &b, &attempts, &latency), LLM_OK);
    llm_free(l);
    fake_llm_stop(&a);
    fake_llm_stop(&b);
}

/* Resubmits once from inside the callback: the engine accepts it. */
struct chain {
    struct llm *l;
    struct llm_request req;
    struct waiter *w;
    struct waiter_arg wa;
    int submitted;
};

static void chain_done(const struct llm_result *res, void *arg)
{
    struct chain *c = arg;
    cr_assert_eq(res->error, LLM_OK);
    c->submitted = llm_submit(c->l, &c->req, waiter_done, &c->wa);
    if (c->submitted != 0)
        waiter_done(res, &c->wa);
}

Test(engine, submit_from_a_callback, .timeout = 60)
{
    struct fake_llm f;
    fake_llm_start(&f, NULL);
    struct llm_config cfg = {0};
    struct llm *l = llm_new(&cfg);
    struct waiter w;
    waiter_init(&w, 1);
    struct chain c = {
        .l = l, .req = fake_request(&f, LLM_ANTHROPIC, true, HELLO, 1), .w = &w, .wa = {&w, 0}};
    cr_assert_eq(llm_submit(l, &c.req, chain_done, &c), 0);
    cr_assert(waiter_wait(&w, 1, 20000));
    cr_assert_eq(c.submitted, 0);
    cr_assert_eq(w.out[0].error, LLM_OK);
    cr_assert_str_eq(w.out[0].text, "Echo: hello");
    llm_free(l);
    waiter_cleanup(&w);
    fake_llm_stop(&f);
}

Test(engine, free_with_calls_in_flight_fails_them_all, .timeout = 60)
{
    enum { N = 30 };
    char *env[] = {"FAKE_LLM_DELAY_MS=10000", NULL};
    struct fake_llm f;
    fake_llm_start(&f, env);
    struct llm_config cfg = {.max_in_flight = 10};
    struct llm *l = llm_new(&cfg);
    struct waiter w;
    waiter_init(&w, N + 1);
    struct waiter_arg args[N + 1];
    for (int i = 0; i < N; i++) {
        struct llm_request r =
            fake_request(&f, i % 2 ? LLM_ANTHROPIC : LLM_OPENAI, i % 3 == 0, HELLO, 1);
        args[i] = (struct waiter_arg){&w, i};
        cr_assert_eq(llm_submit(l, &r, waiter_done, &args[i]), 0);
    }
    /* And one waiting to retry (a dead port: connection refused, then backoff). */
    struct llm_request dead = base_request();
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/v1", ts_free_port());
    dead.base_url = base;
    args[N] = (struct waiter_arg){&w, N};
    cr_assert_eq(llm_submit(l, &dead, waiter_done, &args[N]), 0);
    usleep(300 * 1000); /* 10 in transfer, 20 queued, 1 waiting to retry */
    cr_assert_eq(waiter_count(&w), 0);
    int64_t t0 = sb_mono_ms();
    llm_free(l);
    cr_assert_lt(sb_mono_ms() - t0, 2000, "llm_free does not wait for the provider");
    cr_assert_eq(waiter_count(&w), N + 1, "every callback ran before llm_free returned");
    for (int i = 0; i <= N; i++) {
        cr_assert_eq(w.out[i].error, LLM_ERR_SHUTDOWN, "%s", llm_error_name(w.out[i].error));
        cr_assert_not(w.out[i].retryable);
        cr_assert_eq(w.calls_per_tag[i], 1);
    }
    waiter_cleanup(&w);
    fake_llm_stop(&f);
}
