/* Ownership end to end: an agent's take-over silences the bot until hand-back;
 * after a human's silence the bot resumes and answers what was left unanswered;
 * malformed work lands in the dead-letter stream with its reason. */
#include "flowkit.h"

#include "testsupport.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

TestSuite(handoff, .init = flow_setup, .fini = flow_teardown, .timeout = 180);

static void conversation_command(const char *conversation, const char *action)
{
    int err = 0;
    struct bus *b = bus_new(W.redis_url, 1, NULL, &err);
    cr_assert_not_null(b);
    const char *f[] = {"tenant_id", W.tenant, "conversation_id", conversation, "action", action};
    cr_assert_eq(bus_stream_add(b, "sabia:cmd:conversation", 0, 3, f, NULL), 0);
    bus_free(b);
}

static void owner_sql(const char *sql)
{
    PGconn *c = PQconnectdb(W.owner_url);
    PQclear(PQexec(c, "BEGIN"));
    const char *t[] = {W.tenant};
    PQclear(PQexecParams(c, "SELECT set_config('app.tenant_id', $1, true)", 1, NULL, t, NULL, NULL, 0));
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    PQclear(PQexec(c, "COMMIT"));
    PQfinish(c);
}

Test(handoff, take_over_silences_the_bot_until_hand_back)
{
    char phone[16];
    new_customer(phone);
    customer_says(phone, "orders?");
    cr_assert_eq(wait_sends(phone, 1, 20000, NULL, 0), 1, "log %s", PROC_LOG[0]);
    char *conv = reply_field(phone, "m.conversation_id");
    cr_assert_not_null(conv);
    conversation_command(conv, "take_over");
    sleep_ms(1000);
    customer_says(phone, "and when do orders ship?");
    sleep_ms(3500);
    cr_assert_eq(sends_to(phone, NULL, 0), 1, "the bot answered a taken-over conversation");
    conversation_command(conv, "hand_back");
    cr_assert_eq(wait_sends(phone, 2, 20000, NULL, 0), 2,
                 "the message left unanswered was not answered after hand-back");
    free(conv);
}

Test(handoff, the_bot_resumes_after_the_human_is_silent)
{
    owner_sql("UPDATE assistants SET handoff_auto_resume_seconds = 2");
    char phone[16], wamid[80];
    new_customer(phone);
    customer_says(phone, "orders?");
    cr_assert_eq(wait_sends(phone, 1, 20000, NULL, 0), 1);
    /* An agent answers from the business phone, then goes quiet. */
    char *echo = wa_message(BUSINESS_PHONE, "One moment please", wamid);
    char *at = strstr(echo, "\"messages\":[{");
    char body[2048];
    snprintf(body, sizeof body, "%.*s\"messages\":[{\"to\":\"%s\",%s", (int)(at - echo), echo, phone,
             at + strlen("\"messages\":[{"));
    long st;
    json_decref(post_signed(&W, "whatsapp", W.wa, body, strlen(body), &st));
    cr_assert_eq(st, 200);
    free(echo);
    sleep_ms(500);
    customer_says(phone, "hello? orders?");
    sleep_ms(1000);
    cr_assert_eq(sends_to(phone, NULL, 0), 1, "answered while the human had it");
    cr_assert_eq(wait_sends(phone, 2, 20000, NULL, 0), 2, "the bot never resumed");
}

Test(handoff, malformed_work_is_dead_lettered_with_its_reason)
{
    int err = 0;
    struct bus *b = bus_new(W.redis_url, 1, NULL, &err);
    const char *f[] = {"event_id", "not-an-id", "tenant_id", "nope"};
    cr_assert_eq(bus_stream_add(b, W.stream, 0, 2, f, NULL), 0);
    char dead[128];
    snprintf(dead, sizeof dead, "%s:dead", W.stream);
    bool found = false;
    for (int i = 0; i < 100 && !found; i++) {
        const char *argv[] = {"XRANGE", dead, "-", "+"};
        redisReply *r = NULL;
        if (bus_command(b, 4, argv, NULL, &r) == 0 && r->type == REDIS_REPLY_ARRAY) {
            for (size_t e = 0; e < r->elements; e++) {
                redisReply *fl = r->element[e]->element[1];
                for (size_t k = 0; k + 1 < fl->elements; k += 2)
                    if (strcmp(fl->element[k]->str, "reason") == 0 &&
                        strstr(fl->element[k + 1]->str, "valid tenant_id"))
                        found = true;
            }
        }
        freeReplyObject(r);
        if (!found)
            sleep_ms(100);
    }
    cr_assert(found, "no dead letter with the reason in %s", dead);
    bus_free(b);
}

Test(handoff, idle_conversations_are_closed)
{
    owner_sql("UPDATE assistants SET idle_close_seconds = 1");
    char phone[16];
    new_customer(phone);
    customer_says(phone, "orders?");
    cr_assert_eq(wait_sends(phone, 1, 20000, NULL, 0), 1);
    bool closed = false;
    for (int i = 0; i < 150 && !closed; i++) {
        char *v = reply_field(phone, "(SELECT c.status || '/' || c.closed_reason FROM conversations c "
                                     "WHERE c.tenant_id = m.tenant_id AND c.id = m.conversation_id)");
        closed = v && strcmp(v, "closed/idle") == 0;
        free(v);
        if (!closed)
            sleep_ms(100);
    }
    cr_assert(closed, "the idle conversation was not closed (log %s)", PROC_LOG[0]);
}

Test(handoff, a_quiet_customer_gets_one_follow_up)
{
    owner_sql("UPDATE assistants SET config = '{\"followup_after_seconds\": 2, "
              "\"followup_text\": \"Anything else I can help with?\"}'");
    char phone[16], last[1024] = "";
    new_customer(phone);
    customer_says(phone, "orders?");
    cr_assert_eq(wait_sends(phone, 1, 20000, NULL, 0), 1);
    cr_assert_eq(wait_sends(phone, 2, 20000, last, sizeof last), 2, "no follow-up (log %s)",
                 PROC_LOG[0]);
    cr_assert_str_eq(last, "Anything else I can help with?");
    sleep_ms(4000);
    cr_assert_eq(sends_to(phone, NULL, 0), 2, "the follow-up was repeated");
}
