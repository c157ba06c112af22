/* Replies from a model (the fake LLM, OpenAI-compatible): the model sees the
 * whole conversation, and an outage is ridden out by the circuit breaker and
 * retries, so the customer is still answered once it recovers. */
#include "flowkit.h"

#include "testsupport.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static void use_model(void)
{
    flow_setup();
    free(tenant_sql("UPDATE assistants SET provider = 'openai_compatible', model = 'fake', "
                    "system_prompt = 'You are the Test store assistant.'"));
}

TestSuite(llm, .init = use_model, .fini = flow_teardown, .timeout = 180);

static json_t *llm_requests(void)
{
    char url[128];
    long st;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_requests", LLM_PORT);
    char *text = ts_http("GET", url, NULL, NULL, 0, &st);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    return j;
}

/* Scripts the fake LLM (POST /_script). */
static void script_llm(const char *json)
{
    char url[128];
    long st;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_script", LLM_PORT);
    free(ts_http("POST", url, NULL, json, strlen(json), &st));
    cr_assert_eq(st, 200, "the fake LLM refused the script %s", json);
}

Test(llm, three_quick_messages_one_reply_that_saw_them_all)
{
    char phone[16], last[4096] = "";
    new_customer(phone);
    customer_says(phone, "Hi there");
    sleep_ms(150);
    customer_says(phone, "I ordered a blue kettle");
    sleep_ms(150);
    customer_says(phone, "when does it ship?");
    cr_assert_eq(wait_sends(phone, 1, 20000, last, sizeof last), 1, "log %s", PROC_LOG[0]);
    cr_assert_str_eq(last, "Echo: when does it ship?");
    sleep_ms(2500);
    cr_assert_eq(sends_to(phone, NULL, 0), 1);
    json_t *reqs = llm_requests();
    json_t *all = json_is_array(reqs) ? reqs : json_object_get(reqs, "requests");
    cr_assert_geq(json_array_size(all), 1);
    json_t *body = json_object_get(json_array_get(all, json_array_size(all) - 1), "body");
    char *dump = json_dumps(body, JSON_COMPACT);
    cr_assert(strstr(dump, "Hi there") && strstr(dump, "blue kettle") && strstr(dump, "when does it ship?"),
              "the model did not see all three messages: %s", dump);
    cr_assert(strstr(dump, "You are the Test store assistant."), "no system prompt: %s", dump);
    cr_assert(strstr(dump, "Orders ship within two days"), "no knowledge in the prompt: %s", dump);
    free(dump);
    json_decref(reqs);
}

Test(llm, an_outage_opens_the_breaker_and_the_customer_is_answered_after)
{
    script_llm("{\"fail_next\":12,\"kind\":\"server\"}");
    char phone[16], last[4096] = "";
    new_customer(phone);
    customer_says(phone, "are you there?");
    cr_assert_eq(wait_sends(phone, 1, 90000, last, sizeof last), 1,
                 "not answered after the outage (log %s)", PROC_LOG[0]);
    cr_assert_str_eq(last, "Echo: are you there?");
    json_t *reqs = llm_requests();
    json_t *all = json_is_array(reqs) ? reqs : json_object_get(reqs, "requests");
    /* Twelve scripted failures went by before the answer: the calls were retried. */
    cr_assert_geq(json_array_size(all), 4, "only %zu model calls", json_array_size(all));
    json_decref(reqs);
}

static size_t llm_request_count(void)
{
    json_t *reqs = llm_requests();
    json_t *all = json_is_array(reqs) ? reqs : json_object_get(reqs, "requests");
    size_t n = json_array_size(all);
    json_decref(reqs);
    return n;
}

Test(llm, the_monthly_spend_cap_stops_model_calls)
{
    /* $1,000 per million tokens: each token costs 1,000 micro-USD. The cap
     * is one micro-USD, so the first reply crosses it. */
    free(tenant_sql("UPDATE assistants SET config = config || "
                    "'{\"price_input_micros_per_mtok\": 1000000000, "
                    "\"price_output_micros_per_mtok\": 1000000000}'"));
    free(tenant_sql("UPDATE tenants SET llm_monthly_cap_micros = 1"));
    char phone[16], last[4096] = "";
    new_customer(phone);
    customer_says(phone, "what is your return policy");
    cr_assert_eq(wait_sends(phone, 1, 20000, last, sizeof last), 1, "log %s", PROC_LOG[0]);
    cr_assert_str_eq(last, "Echo: what is your return policy");
    size_t calls = llm_request_count();

    /* The call is on record with its tokens and cost ... */
    char *usage = tenant_sql("SELECT format('%s|%s|%s', tokens_in > 0, tokens_out > 0, cost_micros = "
                             "(tokens_in + tokens_out) * 1000) FROM llm_usage");
    cr_assert_not_null(usage, "no llm_usage row");
    cr_assert_str_eq(usage, "t|t|t", "tokens_in>0|tokens_out>0|cost: %s", usage);
    free(usage);
    /* ... and in the month's running total, written within a second or so. */
    char *month = NULL;
    for (int waited = 0; waited < 5000 && !month; waited += 100) {
        month = tenant_sql("SELECT calls FROM llm_spend_monthly WHERE cost_micros > 1000 AND "
                           "month = date_trunc('month', now() AT TIME ZONE 'UTC')::date");
        if (!month)
            sleep_ms(100);
    }
    cr_assert_not_null(month, "the month's total was not written");
    cr_assert_str_eq(month, "1");
    free(month);

    /* Over the cap: the next answer comes from the knowledge base, no model call. */
    sleep_ms(1200);
    customer_says(phone, "when do orders ship?");
    cr_assert_eq(wait_sends(phone, 2, 20000, last, sizeof last), 2, "log %s", PROC_LOG[0]);
    cr_assert(strncmp(last, "Echo:", 5) != 0, "the model answered over the cap: %s", last);
    cr_assert_eq(llm_request_count(), calls, "a model call was made over the cap");
    char *meta = reply_field(phone, "m.metadata->>'spend_cap_reached'");
    cr_assert_not_null(meta);
    cr_assert_str_eq(meta, "true");
    free(meta);
    char *provider = reply_field(phone, "m.metadata->>'provider'");
    cr_assert_str_eq(provider, "retrieval");
    free(provider);

    /* Raising the cap lets the model answer again. */
    free(tenant_sql("UPDATE tenants SET llm_monthly_cap_micros = NULL"));
    sleep_ms(1200);
    customer_says(phone, "thanks a lot");
    cr_assert_eq(wait_sends(phone, 3, 20000, last, sizeof last), 3, "log %s", PROC_LOG[0]);
    cr_assert_str_eq(last, "Echo: thanks a lot");
}

/* A sample value of the processor's /metrics, e.g. a histogram's count. */
static double proc_metric(const char *series)
{
    return ts_metric(PROC_PORT[0], series);
}

Test(llm, replies_completed_together_are_stored_together_each_in_its_own_conversation)
{
    enum { N = 16 };
    script_llm("{\"delay_ms\":1500}");
    char base[16], phones[N][16], text[64], in_list[N * 20] = "";
    new_customer(base);
    for (int i = 0; i < N; i++) {
        snprintf(phones[i], sizeof phones[i], "%.9s%02d", base, i);
        snprintf(text, sizeof text, "batch question %d", i);
        customer_says(phones[i], text);
        size_t len = strlen(in_list);
        snprintf(in_list + len, sizeof in_list - len, "%s'%s'", i ? "," : "", phones[i]);
    }
    /* Every conversation is held while the model answers: the finishes pile
     * up behind the lock and are stored together once it goes. */
    char sql[2048], *n = NULL;
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM conversations c JOIN contacts ct ON ct.tenant_id = c.tenant_id "
             "AND ct.id = c.contact_id WHERE ct.external_id IN (%s)", in_list);
    for (int waited = 0; waited < 10000; waited += 50) {
        free(n);
        n = tenant_sql(sql);
        if (n && atoi(n) == N)
            break;
        sleep_ms(50);
    }
    cr_assert(n && atoi(n) == N, "conversations not opened: %s", n ? n : "none");
    free(n);
    double before = proc_metric("processor_batch_size_count{stage=\"finish\"}");
    snprintf(sql, sizeof sql,
             "SELECT l.n, pg_sleep(4) FROM (SELECT count(*) AS n FROM (SELECT c.id FROM conversations c "
             "JOIN contacts ct ON ct.tenant_id = c.tenant_id AND ct.id = c.contact_id "
             "WHERE ct.external_id IN (%s) FOR UPDATE OF c) h) l", in_list);
    free(tenant_sql(sql));
    for (int i = 0; i < N; i++) {
        char last[256] = "";
        snprintf(text, sizeof text, "Echo: batch question %d", i);
        cr_assert_eq(wait_sends(phones[i], 1, 30000, last, sizeof last), 1, "customer %d (log %s)",
                     i, PROC_LOG[0]);
        cr_assert_str_eq(last, text, "customer %d got another's answer", i);
    }
    sleep_ms(1000);
    for (int i = 0; i < N; i++)
        cr_assert_eq(sends_to(phones[i], NULL, 0), 1, "customer %d answered twice", i);
    /* Each reply is in its own conversation, with its own usage row. */
    snprintf(sql, sizeof sql,
             "SELECT count(DISTINCT m.conversation_id) FROM messages m JOIN llm_usage u "
             "ON u.message_id = m.id AND u.conversation_id = m.conversation_id "
             "JOIN conversations c ON c.id = m.conversation_id JOIN contacts ct ON ct.id = c.contact_id "
             "WHERE ct.external_id IN (%s) AND m.sender_type = 'bot' "
             "AND m.content = 'Echo: ' || (SELECT i.content FROM messages i WHERE "
             "i.conversation_id = m.conversation_id AND i.direction = 'inbound')", in_list);
    n = tenant_sql(sql);
    cr_assert_str_eq(n, "16");
    free(n);
    /* And fewer transactions than replies stored them. */
    double batches = proc_metric("processor_batch_size_count{stage=\"finish\"}") - before;
    cr_assert(batches >= 1 && batches < N, "%.0f finish transactions for %d replies", batches, N);
}
