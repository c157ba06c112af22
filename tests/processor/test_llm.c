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
    PGconn *c = PQconnectdb(W.owner_url);
    PQclear(PQexec(c, "BEGIN"));
    const char *t[] = {W.tenant};
    PQclear(PQexecParams(c, "SELECT set_config('app.tenant_id', $1, true)", 1, NULL, t, NULL, NULL, 0));
    PGresult *r = PQexec(c, "UPDATE assistants SET provider = 'openai_compatible', model = 'fake', "
                            "system_prompt = 'You are the Test store assistant.'");
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    PQclear(PQexec(c, "COMMIT"));
    PQfinish(c);
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
    char url[128];
    long st;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_script", LLM_PORT);
    const char script[] = "{\"fail_next\":12,\"kind\":\"server\"}";
    free(ts_http("POST", url, NULL, script, sizeof script - 1, &st));
    cr_assert_eq(st, 200);
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
