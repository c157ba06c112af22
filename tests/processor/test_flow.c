/* The processor end to end: signed webhooks through the real gateway, the
 * real processor, PostgreSQL and Redis, and the fake Graph API receiving the
 * replies. Each test uses its own customer number, so counts are exact. */
#include "flowkit.h"

#include "testsupport.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

TestSuite(flow, .init = flow_setup, .fini = flow_teardown, .timeout = 180);

Test(flow, a_message_gets_exactly_one_reply_from_the_knowledge)
{
    char phone[16], last[4096] = "";
    new_customer(phone);
    customer_says(phone, "When will my orders ship?");
    cr_assert_eq(wait_sends(phone, 1, 20000, last, sizeof last), 1, "no reply (log %s)", PROC_LOG[0]);
    cr_assert(strstr(last, "Orders ship within two days"), "reply: %s", last);
    cr_assert(strstr(last, "knowledge base"), "the retrieval reply is labelled: %s", last);
    cr_assert(wait_reply_field(phone, "m.status", "sent", 5000));
    sleep_ms(2500);
    cr_assert_eq(sends_to(phone, NULL, 0), 1, "answered twice");
}

Test(flow, quick_messages_are_answered_once)
{
    char phone[16];
    new_customer(phone);
    customer_says(phone, "Hello");
    sleep_ms(150);
    customer_says(phone, "I have a question");
    sleep_ms(150);
    customer_says(phone, "when do orders ship?");
    cr_assert_eq(wait_sends(phone, 1, 20000, NULL, 0), 1);
    sleep_ms(3000);
    cr_assert_eq(sends_to(phone, NULL, 0), 1, "three messages in the window got more than one reply");
}

Test(flow, status_webhooks_move_the_reply_forward_only)
{
    char phone[16];
    new_customer(phone);
    customer_says(phone, "Do orders ship fast?");
    cr_assert(wait_reply_field(phone, "m.status", "sent", 20000), "log %s", PROC_LOG[0]);
    char *wamid = reply_field(phone, "m.provider_message_id");
    cr_assert_not_null(wamid);
    post_status(wamid, phone, "delivered");
    cr_assert(wait_reply_field(phone, "m.status", "delivered", 10000));
    post_status(wamid, phone, "read");
    cr_assert(wait_reply_field(phone, "m.status", "read", 10000));
    post_status(wamid, phone, "delivered"); /* late */
    sleep_ms(1500);
    cr_assert(wait_reply_field(phone, "m.status", "read", 1000), "a late report moved it back");
    free(wamid);
}

Test(flow, non_retryable_send_error_fails_at_once_with_the_reason)
{
    char phone[16];
    new_customer(phone);
    script_graph("{\"fail_next\":1,\"status\":400,\"code\":131047}");
    customer_says(phone, "orders?");
    cr_assert(wait_reply_field(phone, "m.status", "failed", 20000), "log %s", PROC_LOG[0]);
    char *code = reply_field(phone, "m.error_code");
    cr_assert_str_eq(code, "131047");
    free(code);
    sleep_ms(3000);
    char *attempts = reply_field(phone, "m.attempts::text");
    cr_assert_str_eq(attempts, "1", "a 131047 was retried");
    free(attempts);
    cr_assert_leq(sends_to(phone, NULL, 0), 1, "a 131047 was retried");
    script_graph("{}");
}

Test(flow, retryable_send_error_is_retried_until_sent)
{
    char phone[16];
    new_customer(phone);
    script_graph("{\"fail_next\":1,\"status\":400,\"code\":130429}");
    customer_says(phone, "orders?");
    cr_assert(wait_reply_field(phone, "m.status", "sent", 30000), "not retried (log %s)", PROC_LOG[0]);
    char *attempts = reply_field(phone, "m.attempts::text");
    cr_assert_str_eq(attempts, "2");
    free(attempts);
    script_graph("{}");
}

Test(flow, the_business_phone_replying_silences_the_bot)
{
    char phone[16], wamid[80];
    new_customer(phone);
    customer_says(phone, "orders?");
    cr_assert_eq(wait_sends(phone, 1, 20000, NULL, 0), 1);
    /* A person answers from the business phone: WhatsApp echoes it to us. */
    char *echo = wa_message(BUSINESS_PHONE, "Hi, this is Ana from the store", wamid);
    char *to = strstr(echo, "\"messages\":[{");
    cr_assert_not_null(to);
    char body[2048];
    snprintf(body, sizeof body, "%.*s\"messages\":[{\"to\":\"%s\",%s", (int)(to - echo), echo, phone,
             to + strlen("\"messages\":[{"));
    long st;
    json_decref(post_signed(&W, "whatsapp", W.wa, body, strlen(body), &st));
    cr_assert_eq(st, 200);
    free(echo);
    sleep_ms(1500);
    customer_says(phone, "and returns? orders?");
    sleep_ms(4000);
    cr_assert_eq(sends_to(phone, NULL, 0), 1, "the bot answered while a human had the conversation");
}

Test(flow, a_restart_in_the_buffer_window_loses_nothing)
{
    char phone[16];
    new_customer(phone);
    customer_says(phone, "orders?");
    sleep_ms(300);
    ts_stop(PROC[0], SIGKILL, 1000);
    start_processor(0);
    cr_assert_eq(wait_sends(phone, 1, 30000, NULL, 0), 1, "the reply was lost (log %s)", PROC_LOG[0]);
    sleep_ms(2000);
    cr_assert_eq(sends_to(phone, NULL, 0), 1);
}

Test(flow, two_processors_never_send_twice)
{
    start_processor(1);
    char phones[6][16];
    for (int i = 0; i < 6; i++) {
        new_customer(phones[i]);
        customer_says(phones[i], "orders?");
    }
    for (int i = 0; i < 6; i++)
        cr_assert_eq(wait_sends(phones[i], 1, 30000, NULL, 0), 1, "customer %d: no reply", i);
    sleep_ms(3000);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(sends_to(phones[i], NULL, 0), 1, "customer %d answered twice", i);
}

/* An Instagram event: a customer message, or (echo) what the business sent. */
static void ig_event(const char *customer, const char *text, bool echo)
{
    char mid[SB_UUID_STRLEN], body[2048];
    cr_assert_eq(sb_uuid_v7_str(mid), 0);
    snprintf(body, sizeof body,
             "{\"object\":\"instagram\",\"entry\":[{\"time\":1739321024123,\"id\":\"17841400000000000\","
             "\"messaging\":[{\"sender\":{\"id\":\"%s\"},\"recipient\":{\"id\":\"%s\"},"
             "\"timestamp\":1739321023999,\"message\":{\"mid\":\"ig.%s\",\"text\":\"%s\"%s}}]}]}",
             echo ? "17841400000000000" : customer, echo ? customer : "17841400000000000", mid, text,
             echo ? ",\"is_echo\":true" : "");
    long st;
    json_decref(post_signed(&W, "instagram", W.ig, body, strlen(body), &st));
    cr_assert_eq(st, 200);
}

Test(flow, instagram_echoes_of_our_own_replies_do_not_hand_over)
{
    char igsid[16], last[4096] = "";
    new_customer(igsid);
    ig_event(igsid, "when do orders ship?", false);
    cr_assert_eq(wait_sends(igsid, 1, 20000, last, sizeof last), 1, "no reply (log %s)", PROC_LOG[0]);
    /* Instagram echoes the bot's own reply back as is_echo. */
    ig_event(igsid, last, true);
    sleep_ms(1500);
    ig_event(igsid, "and orders to Portugal?", false);
    cr_assert_eq(wait_sends(igsid, 2, 20000, NULL, 0), 2,
                 "the echo of our own reply handed the conversation to a human");
}

/* Meta can post "delivered" before the send's own answer (with the provider
 * id) is stored: the report waits and is applied once the id is there. */
Test(flow, a_report_that_overtakes_the_send_result_is_applied_later)
{
    char phone[16], last[4096] = "";
    new_customer(phone);
    customer_says(phone, "Where is my order?");
    cr_assert_eq(wait_sends(phone, 1, 20000, last, sizeof last), 1);
    cr_assert(wait_reply_field(phone, "m.status", "sent", 10000));
    char *wamid = reply_field(phone, "m.provider_message_id");
    cr_assert_not_null(wamid);
    char *id = reply_field(phone, "m.id::text");
    /* Back to "being sent, provider id not stored yet". */
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE messages SET status = 'processing', provider_message_id = NULL WHERE id = '%s'",
             id);
    free(tenant_sql(sql));
    post_status(wamid, phone, "delivered");
    sleep_ms(1500);
    char *st = reply_field(phone, "m.status");
    cr_assert_str_eq(st, "processing", "the report was applied to nothing");
    free(st);
    /* The send's result lands; the relay brings the report back. */
    snprintf(sql, sizeof sql,
             "UPDATE messages SET status = 'sent', provider_message_id = '%s' WHERE id = '%s'", wamid,
             id);
    free(tenant_sql(sql));
    cr_assert(wait_reply_field(phone, "m.status", "delivered", 15000),
              "the early report was lost (log %s)", PROC_LOG[0]);
    free(wamid);
    free(id);
}
