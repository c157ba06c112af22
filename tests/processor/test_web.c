/* The web widget end to end: a visitor's message through the gateway, the
 * reply published to the webapp's Redis channel for that visitor (one per
 * visitor, the visitor's own) and recorded as sent, in the same transaction
 * that claimed it. Several visitors at once share claims. */
#include "flowkit.h"

#include "crypto.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

TestSuite(web, .init = flow_setup, .fini = flow_teardown, .timeout = 180);

#define VISITORS 12

/* What the webapp would receive: every message published for one visitor. */
struct inbox {
    pthread_mutex_t mu;
    json_t *messages; /* array */
};

static void on_publish(const char *message, size_t len, void *arg)
{
    struct inbox *in = arg;
    json_t *j = json_loadb(message, len, 0, NULL);
    pthread_mutex_lock(&in->mu);
    json_array_append_new(in->messages, j ? j : json_stringn(message, len));
    pthread_mutex_unlock(&in->mu);
}

static size_t inbox_count(struct inbox *in)
{
    pthread_mutex_lock(&in->mu);
    size_t n = json_array_size(in->messages);
    pthread_mutex_unlock(&in->mu);
    return n;
}

static void visitor_says(const char *visitor, const char *text)
{
    int err = 0;
    struct crypto_key *k = crypto_key_new(ts_env("SABIA_MASTER_KEY"), &err);
    cr_assert_not_null(k);
    char tok[CRYPTO_VISITOR_TOKEN_MAX + 1], header[400], mid[SB_UUID_STRLEN], body[512];
    cr_assert_eq(crypto_visitor_token_issue(k, W.web, visitor, (long)time(NULL) + 600, tok,
                                            sizeof tok), 0);
    crypto_key_free(k);
    snprintf(header, sizeof header, "X-Sabia-Visitor-Token: %s", tok);
    cr_assert_eq(sb_uuid_v7_str(mid), 0);
    int len = snprintf(body, sizeof body,
                       "{\"visitor_id\":\"%s\",\"message_id\":\"%s\",\"type\":\"text\",\"text\":\"%s\"}",
                       visitor, mid, text);
    const char *h[] = {header, "Content-Type: application/json", NULL};
    long st;
    json_decref(post_webhook(&W, "web", W.tenant, W.ws, W.web, body, (size_t)len, h, &st));
    cr_assert_eq(st, 200, "gateway refused the widget message (log %s)", W.log);
}

Test(web, each_visitor_gets_its_reply_published_and_recorded_as_sent)
{
    int err = 0;
    struct bus *bus = bus_new(W.redis_url, 4, NULL, &err);
    cr_assert_not_null(bus);
    struct inbox in[VISITORS];
    struct bus_subscription *subs[VISITORS];
    char visitors[VISITORS][48], channel[128];
    long tag = (long)(sb_now_ms() % 100000000);
    for (int i = 0; i < VISITORS; i++) {
        snprintf(visitors[i], sizeof visitors[i], "visitor_%ld_%d", tag, i);
        pthread_mutex_init(&in[i].mu, NULL);
        in[i].messages = json_array();
        snprintf(channel, sizeof channel, "sabia:widget:%s:%s", W.web, visitors[i]);
        subs[i] = bus_subscribe(bus, channel, on_publish, &in[i]);
        cr_assert_not_null(subs[i]);
    }
    sleep_ms(300); /* the subscriptions are in place */
    for (int i = 0; i < VISITORS; i++)
        visitor_says(visitors[i], i % 2 ? "when do orders ship?" : "hello there");

    for (int i = 0; i < VISITORS; i++) {
        for (int waited = 0; waited < 20000 && inbox_count(&in[i]) == 0; waited += 50)
            sleep_ms(50);
        cr_assert_eq(inbox_count(&in[i]), 1, "visitor %d: nothing published (log %s)", i, PROC_LOG[0]);
    }
    sleep_ms(1000);
    for (int i = 0; i < VISITORS; i++) {
        cr_assert_eq(inbox_count(&in[i]), 1, "visitor %d got %zu messages", i, inbox_count(&in[i]));
        json_t *m = json_array_get(in[i].messages, 0);
        cr_assert_str_eq(json_string_value(json_object_get(m, "type")), "message");
        const char *id = json_string_value(json_object_get(m, "message_id"));
        const char *text = json_string_value(json_object_get(m, "text"));
        cr_assert(id && text && text[0], "visitor %d: incomplete message", i);
        /* The published message is the visitor's own conversation's reply, now sent. */
        char sql[1024];
        snprintf(sql, sizeof sql,
                 "SELECT format('%%s|%%s|%%s|%%s', m.status, m.provider_message_id = 'web:' || m.id, "
                 "m.attempts, m.sent_at IS NOT NULL) FROM messages m "
                 "JOIN conversations c ON c.id = m.conversation_id JOIN contacts ct ON ct.id = c.contact_id "
                 "WHERE m.id = '%s' AND ct.external_id = '%s' AND m.sender_type = 'bot'",
                 id, visitors[i]);
        char *row = tenant_sql(sql);
        cr_assert_not_null(row, "visitor %d: message %s is not the reply in its conversation", i, id);
        cr_assert_str_eq(row, "sent|t|1|t", "visitor %d: status|provider id|attempts|sent_at: %s", i, row);
        free(row);
        snprintf(sql, sizeof sql, "SELECT content FROM messages WHERE id = '%s'", id);
        row = tenant_sql(sql);
        cr_assert_str_eq(row, text, "visitor %d: published text differs from the stored reply", i);
        free(row);
    }
    for (int i = 0; i < VISITORS; i++) {
        bus_subscription_free(subs[i]);
        json_decref(in[i].messages);
        pthread_mutex_destroy(&in[i].mu);
    }
    bus_free(bus);
}
