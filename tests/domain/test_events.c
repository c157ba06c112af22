/* test_events.c - the event envelope (shape, ids, time, ownership of data,
 * refusals), reading it back, the command message and the data builders. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

#define TENANT "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
#define EVID   "0190a1b2-c3d4-7e5f-8a9b-aaaaaaaaaaaa"
#define T0     1739321024123LL /* 2025-02-12T00:43:44.123Z */

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    cr_assert_not_null(s, "member %s missing or not a string", k);
    return s;
}

Test(envelope, shape, .timeout = 30)
{
    json_t *data = json_pack("{s:s}", "message_id", "m1");
    json_t *env =
        domain_event_envelope(DOMAIN_EVENT_MESSAGE_RECEIVED, TENANT, T0, "corr-1", EVID, data);
    cr_assert_not_null(env);
    cr_assert_eq(json_object_size(env), 6,
                 "exactly id,type,tenant_id,occurred_at,correlation_id,data");
    cr_assert_str_eq(str(env, "id"), EVID);
    cr_assert_str_eq(str(env, "type"), "message.received");
    cr_assert_str_eq(str(env, "tenant_id"), TENANT);
    cr_assert_str_eq(str(env, "occurred_at"), "2025-02-12T00:43:44.123Z");
    cr_assert_str_eq(str(env, "correlation_id"), "corr-1");
    cr_assert_eq(json_object_get(env, "data"), data, "data is stolen, not copied");
    cr_assert_str_eq(str(data, "message_id"), "m1");

    struct domain_event_header h;
    cr_assert_eq(domain_event_envelope_parse(env, &h), 0);
    cr_assert_eq(h.type, DOMAIN_EVENT_MESSAGE_RECEIVED);
    cr_assert_str_eq(h.id, EVID);
    cr_assert_str_eq(h.tenant_id, TENANT);
    cr_assert_str_eq(h.correlation_id, "corr-1");
    cr_assert_eq(h.data, data);
    json_decref(env);
}

Test(envelope, fresh_ids_and_null_correlation, .timeout = 30)
{
    json_t *a = domain_event_envelope(DOMAIN_EVENT_KNOWLEDGE_INDEXED, TENANT, T0, NULL, NULL,
                                      json_object());
    json_t *b = domain_event_envelope(DOMAIN_EVENT_KNOWLEDGE_INDEXED, TENANT, T0, NULL, NULL,
                                      json_object());
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    const char *ida = str(a, "id"), *idb = str(b, "id");
    cr_assert(sb_uuid_valid(ida, strlen(ida)));
    cr_assert_eq(ida[14], '7', "a UUIDv7");
    cr_assert_str_neq(ida, idb);
    cr_assert(json_is_null(json_object_get(a, "correlation_id")));
    struct domain_event_header h;
    cr_assert_eq(domain_event_envelope_parse(a, &h), 0);
    cr_assert_null(h.correlation_id);
    json_decref(a);
    json_decref(b);
}

Test(envelope, refusals_consume_data, .timeout = 30)
{
    /* Each call steals data; ASan's leak check proves it is freed. */
    cr_assert_null(domain_event_envelope((enum domain_event)DOMAIN_EVENT_COUNT, TENANT, T0, NULL,
                                         NULL, json_object()));
    cr_assert_null(domain_event_envelope(DOMAIN_EVENT_MESSAGE_SENT, "not-a-uuid", T0, NULL, NULL,
                                         json_object()));
    cr_assert_null(
        domain_event_envelope(DOMAIN_EVENT_MESSAGE_SENT, NULL, T0, NULL, NULL, json_object()));
    cr_assert_null(
        domain_event_envelope(DOMAIN_EVENT_MESSAGE_SENT, TENANT, T0, NULL, "nope", json_object()));
    cr_assert_null(
        domain_event_envelope(DOMAIN_EVENT_MESSAGE_SENT, TENANT, T0, NULL, NULL, json_array()));
    cr_assert_null(domain_event_envelope(DOMAIN_EVENT_MESSAGE_SENT, TENANT, T0, NULL, NULL, NULL));
    cr_assert_null(
        domain_event_envelope(DOMAIN_EVENT_MESSAGE_SENT, TENANT, 0, NULL, NULL, json_object()));
    cr_assert_null(domain_event_envelope(DOMAIN_EVENT_MESSAGE_SENT, TENANT, T0, "bad\xFFutf8", NULL,
                                         json_object()));
}

Test(envelope, parse_refuses_bad_envelopes, .timeout = 30)
{
    struct domain_event_header h;
    static const char *const bad[] = {
        "[]",
        "{}",
        "{\"id\":\"" EVID "\",\"type\":\"message.nope\",\"tenant_id\":\"" TENANT
        "\",\"occurred_at\":\"2025-01-01T00:00:00.000Z\",\"correlation_id\":null,\"data\":{}}",
        "{\"id\":\"x\",\"type\":\"message.sent\",\"tenant_id\":\"" TENANT
        "\",\"occurred_at\":\"2025-01-01T00:00:00.000Z\",\"correlation_id\":null,\"data\":{}}",
        "{\"id\":\"" EVID "\",\"type\":\"message.sent\",\"tenant_id\":\"" TENANT
        "\",\"occurred_at\":\"2025-01-01T00:00:00.000Z\",\"correlation_id\":null,\"data\":[]}",
        "{\"id\":\"" EVID "\",\"type\":\"message.sent\",\"tenant_id\":\"" TENANT
        "\",\"correlation_id\":null,\"data\":{}}",
        "{\"id\":\"" EVID "\",\"type\":\"message.sent\",\"tenant_id\":\"" TENANT
        "\",\"occurred_at\":\"2025-01-01T00:00:00.000Z\",\"correlation_id\":5,\"data\":{}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = json_loads(bad[i], 0, NULL);
        cr_assert_not_null(j, "%zu", i);
        memset(&h, 0x5a, sizeof h);
        cr_assert_eq(domain_event_envelope_parse(j, &h), SB_EPARSE, "case %zu accepted", i);
        cr_assert_null(h.id);
        json_decref(j);
    }
    cr_assert_eq(domain_event_envelope_parse(NULL, &h), SB_EPARSE);
    cr_assert_eq(domain_event_envelope_parse(NULL, NULL), -EINVAL);
}

Test(envelope, command_message, .timeout = 30)
{
    json_t *cmd = domain_command_envelope(DOMAIN_COMMAND_SEND_TO_CHANNEL, TENANT, T0, "c9", 3,
                                          json_pack("{s:s}", "message_id", "m1"));
    cr_assert_not_null(cmd);
    cr_assert_str_eq(str(cmd, "command"), "SendToChannel");
    cr_assert_str_eq(str(cmd, "issued_at"), "2025-02-12T00:43:44.123Z");
    cr_assert_eq(json_integer_value(json_object_get(cmd, "attempt")), 3);
    cr_assert_str_eq(str(json_object_get(cmd, "data"), "message_id"), "m1");
    cr_assert_null(json_object_get(cmd, "type"));
    json_decref(cmd);
    cr_assert_null(
        domain_command_envelope((enum domain_command)3, TENANT, T0, NULL, 0, json_object()));
}

Test(data, message_summary, .timeout = 30)
{
    struct domain_message_summary m = {
        .id = "m1",
        .conversation_id = "c1",
        .channel_id = "ch1",
        .channel_type = "whatsapp",
        .provider_message_id = "wamid.X",
        .type = DOMAIN_TYPE_TEXT,
        .direction = DOMAIN_OUTBOUND,
        .sender = DOMAIN_SENDER_BOT,
        .status = DOMAIN_STATUS_QUEUED,
        .content = "Ol\xC3\xA1",
        .created_ms = T0,
    };
    json_t *j = domain_message_summary_json(&m);
    cr_assert_not_null(j);
    cr_assert_str_eq(str(j, "direction"), "outbound");
    cr_assert_str_eq(str(j, "sender_type"), "bot");
    cr_assert_str_eq(str(j, "status"), "queued");
    cr_assert_str_eq(str(j, "content"), "Ol\xC3\xA1");
    cr_assert(json_is_false(json_object_get(j, "content_truncated")));
    cr_assert(json_is_null(json_object_get(j, "sender_user_id")));
    cr_assert_str_eq(str(j, "created_at"), "2025-02-12T00:43:44.123Z");
    json_decref(j);

    /* Long content is carried up to the limit, cut on a character. */
    size_t n = DOMAIN_EVENT_CONTENT_MAX + 10;
    char *big = malloc(n + 1);
    cr_assert_not_null(big);
    memset(big, 'a', n);
    memcpy(big + DOMAIN_EVENT_CONTENT_MAX - 1, "\xC3\xA9", 2);
    big[n] = '\0';
    m.content = big;
    j = domain_message_summary_json(&m);
    cr_assert_not_null(j);
    cr_assert_eq(strlen(str(j, "content")), DOMAIN_EVENT_CONTENT_MAX - 1);
    cr_assert(json_is_true(json_object_get(j, "content_truncated")));
    json_decref(j);
    free(big);

    m.status = (enum domain_status)9;
    cr_assert_null(domain_message_summary_json(&m));
    cr_assert_null(domain_message_summary_json(NULL));
}

Test(data, status_change_and_conversation, .timeout = 30)
{
    struct domain_status_change c = {"m1",
                                     "c1",
                                     "wamid.X",
                                     DOMAIN_STATUS_FAILED,
                                     T0,
                                     131047,
                                     "Re-engagement message",
                                     "24 hours passed"};
    json_t *j = domain_status_change_json(&c);
    cr_assert_not_null(j);
    cr_assert_str_eq(str(j, "status"), "failed");
    json_t *err = json_object_get(j, "error");
    cr_assert_eq(json_integer_value(json_object_get(err, "code")), 131047);
    cr_assert_str_eq(str(err, "title"), "Re-engagement message");
    json_decref(j);
    c.status = DOMAIN_STATUS_READ;
    c.error_code = DOMAIN_NO_CODE;
    c.at_ms = 0;
    j = domain_status_change_json(&c);
    cr_assert(json_is_null(json_object_get(j, "error")));
    cr_assert(json_is_null(json_object_get(j, "timestamp")));
    json_decref(j);

    struct domain_conversation_summary conv = {.id = "c1",
                                               .channel_type = "instagram",
                                               .status = DOMAIN_CONVERSATION_CLOSED,
                                               .owner = DOMAIN_OWNER_HUMAN,
                                               .closed_reason = "idle",
                                               .created_ms = T0,
                                               .updated_ms = T0 + 1000};
    j = domain_conversation_summary_json(&conv);
    cr_assert_not_null(j);
    cr_assert_str_eq(str(j, "status"), "closed");
    cr_assert_str_eq(str(j, "owner"), "human");
    cr_assert_str_eq(str(j, "closed_reason"), "idle");
    cr_assert_str_eq(str(j, "updated_at"), "2025-02-12T00:43:45.123Z");
    cr_assert(json_is_null(json_object_get(j, "assistant_id")));
    json_decref(j);
    conv.owner = (enum domain_owner)5;
    cr_assert_null(domain_conversation_summary_json(&conv));
}
