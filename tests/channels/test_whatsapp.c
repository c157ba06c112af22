/* test_whatsapp.c - WhatsApp Cloud webhook inspection: the signed fixtures,
 * counts and dedup keys, order independence, echoes, unknown types and fields,
 * malformed shapes and the item limit. */
#include "helpers.h"

#define WA_HEAD                                                                                    \
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\","            \
    "\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","          \
    "\"metadata\":{\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"1065\"},"
#define WA_TAIL "}}]}]}"
#define MSG(id, from)                                                                              \
    "{\"from\":\"" from "\",\"id\":\"" id "\",\"timestamp\":\"1739321024\",\"type\":\"text\","     \
    "\"text\":{\"body\":\"hi\"}}"
#define CUSTOMER "16505551234"

/* A one-entry, one-change payload whose value holds `inner` after metadata. */
static char *wa_value(const char *inner)
{
    return xasprintf(WA_HEAD "%s" WA_TAIL, inner);
}

static struct channels_inspection wa_ok(const char *inner)
{
    char *body = wa_value(inner);
    struct channels_inspection r = inspect_ok(CHANNEL_WHATSAPP, body);
    free(body);
    return r;
}

static void wa_fails(const char *inner, const char *reason)
{
    char *body = wa_value(inner);
    inspect_fails(CHANNEL_WHATSAPP, body, reason);
    free(body);
}

static void expect_counts(const struct channels_inspection *r, unsigned m, unsigned s, unsigned e,
                          unsigned o)
{
    cr_assert_eq(r->messages, m, "messages %u", r->messages);
    cr_assert_eq(r->statuses, s, "statuses %u", r->statuses);
    cr_assert_eq(r->echoes, e, "echoes %u", r->echoes);
    cr_assert_eq(r->others, o, "others %u", r->others);
}

static struct channels_inspection wa_fixture(const char *name)
{
    size_t len;
    char *body = fixture(name, &len);
    struct channels_inspection r;
    char reason[CHANNELS_REASON_MAX], detail[256];
    int rc = channels_inspect(CHANNEL_WHATSAPP, body, len, &r, reason, sizeof reason, detail,
                              sizeof detail);
    cr_assert_eq(rc, 0, "%s: %s: %s", name, reason, detail);
    free(body);
    return r;
}

Test(whatsapp, fixtures, .timeout = 30)
{
    struct channels_inspection r = wa_fixture("wa_text.json");
    cr_assert_str_eq(r.dedup_key, "wa:m:wamid.TEST_TEXT_0001");
    expect_counts(&r, 1, 0, 0, 0);
    cr_assert_str_empty(r.visitor_id);

    r = wa_fixture("wa_image.json");
    cr_assert_str_eq(r.dedup_key, "wa:m:wamid.TEST_IMAGE_0001");
    expect_counts(&r, 1, 0, 0, 0);

    r = wa_fixture("wa_status_delivered.json");
    cr_assert_str_eq(r.dedup_key, "wa:s:wamid.TEST_OUT_0001:delivered");
    expect_counts(&r, 0, 1, 0, 0);

    /* The errors inside a failed status belong to the status. */
    r = wa_fixture("wa_status_failed.json");
    cr_assert_str_eq(r.dedup_key, "wa:s:wamid.TEST_OUT_0002:failed");
    expect_counts(&r, 0, 1, 0, 0);
}

Test(whatsapp, unicode_escaped_and_raw_give_same_key, .timeout = 30)
{
    struct channels_inspection a = wa_fixture("wa_text_unicode.json");
    struct channels_inspection b = wa_fixture("wa_text_unicode_utf8_reencoded.json");
    cr_assert_str_eq(a.dedup_key, "wa:m:wamid.TEST_TEXT_0002");
    cr_assert_str_eq(a.dedup_key, b.dedup_key);
    expect_counts(&b, 1, 0, 0, 0);
}

Test(whatsapp, other_fixtures_are_refused, .timeout = 30)
{
    /* Send API responses and Instagram bodies are not WhatsApp webhooks. */
    const char *names[] = {"wa_send_ok.json", "wa_send_error_130429.json", "ig_text.json"};
    for (size_t i = 0; i < 3; i++) {
        size_t len;
        char *body = fixture(names[i], &len);
        inspect_fails_n(CHANNEL_WHATSAPP, body, len, "wrong_object", NULL);
        free(body);
    }
    size_t len;
    char *body = fixture("wa_text.json", &len);
    inspect_fails_n(CHANNEL_INSTAGRAM, body, len, "wrong_object", NULL);
    inspect_fails_n(CHANNEL_WEB, body, len, "invalid_web_message", NULL);
    free(body);
}

Test(whatsapp, order_does_not_matter, .timeout = 30)
{
    struct channels_inspection ab =
        wa_ok("\"messages\":[" MSG("wamid.A", CUSTOMER) "," MSG("wamid.B", CUSTOMER) "]");
    struct channels_inspection ba =
        wa_ok("\"messages\":[" MSG("wamid.B", CUSTOMER) "," MSG("wamid.A", CUSTOMER) "]");
    char want[128];
    const char *items = "wa:m:wamid.A\nwa:m:wamid.B";
    hash_key("sha256", items, strlen(items), want);
    cr_assert_str_eq(ab.dedup_key, want);
    cr_assert_str_eq(ba.dedup_key, want);
    expect_counts(&ab, 2, 0, 0, 0);

    /* Same two messages split over two entries, in the other order. */
    const char *split =
        "{\"object\":\"whatsapp_business_account\",\"entry\":["
        "{\"id\":\"1\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messages\":[" MSG(
            "wamid.B", CUSTOMER) "]}}]},"
                                 "{\"id\":\"1\",\"changes\":[{\"field\":\"messages\",\"value\":{"
                                 "\"messages\":[" MSG("wamid.A", CUSTOMER) "]}}]}]}";
    struct channels_inspection s = inspect_ok(CHANNEL_WHATSAPP, split);
    cr_assert_str_eq(s.dedup_key, want);
}

Test(whatsapp, messages_and_statuses_mixed, .timeout = 30)
{
    struct channels_inspection r =
        wa_ok("\"statuses\":[{\"id\":\"wamid.OUT\",\"status\":\"read\"}],"
              "\"messages\":[" MSG("wamid.IN", CUSTOMER) "]");
    expect_counts(&r, 1, 1, 0, 0);
    char want[128];
    const char *items = "wa:m:wamid.IN\nwa:s:wamid.OUT:read";
    hash_key("sha256", items, strlen(items), want);
    cr_assert_str_eq(r.dedup_key, want);

    /* The same id with another status is another event. */
    struct channels_inspection d =
        wa_ok("\"statuses\":[{\"id\":\"wamid.OUT\",\"status\":\"delivered\"}]");
    struct channels_inspection rd =
        wa_ok("\"statuses\":[{\"id\":\"wamid.OUT\",\"status\":\"read\"}]");
    cr_assert_str_eq(d.dedup_key, "wa:s:wamid.OUT:delivered");
    cr_assert_str_eq(rd.dedup_key, "wa:s:wamid.OUT:read");
}

Test(whatsapp, repeated_id_counts_twice_keys_once, .timeout = 30)
{
    struct channels_inspection r =
        wa_ok("\"messages\":[" MSG("wamid.A", CUSTOMER) "," MSG("wamid.A", CUSTOMER) "]");
    expect_counts(&r, 2, 0, 0, 0);
    cr_assert_str_eq(r.dedup_key, "wa:m:wamid.A");
}

Test(whatsapp, unknown_message_types_are_accepted, .timeout = 30)
{
    const char *types[] = {
        "{\"from\":\"" CUSTOMER "\",\"id\":\"wamid.U1\",\"type\":\"hologram\","
        "\"hologram\":{\"depth\":[1,2,{\"x\":null}]},\"brand_new_field\":true}",
        "{\"from\":\"" CUSTOMER "\",\"id\":\"wamid.U1\",\"type\":\"unsupported\",\"errors\":"
        "[{\"code\":131051,\"title\":\"Message type unknown\"}]}",
        "{\"from\":\"" CUSTOMER "\",\"id\":\"wamid.U1\",\"type\":\"reaction\","
        "\"reaction\":{\"message_id\":\"wamid.X\"}}",
        "{\"id\":\"wamid.U1\"}",
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char *inner = xasprintf("\"messages\":[%s],\"future\":{\"a\":1}", types[i]);
        struct channels_inspection r = wa_ok(inner);
        expect_counts(&r, 1, 0, 0, 0);
        cr_assert_str_eq(r.dedup_key, "wa:m:wamid.U1");
        free(inner);
    }
}

Test(whatsapp, errors_only_change_hashes_the_body, .timeout = 30)
{
    char *body = wa_value("\"errors\":[{\"code\":130429,\"title\":\"Rate limit hit\"}]");
    struct channels_inspection r = inspect_ok(CHANNEL_WHATSAPP, body);
    expect_counts(&r, 0, 0, 0, 1);
    char want[128];
    hash_key("body", body, strlen(body), want);
    cr_assert_str_eq(r.dedup_key, want);
    free(body);
}

Test(whatsapp, unknown_field_hashes_the_body, .timeout = 30)
{
    const char *body =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":["
        "{\"field\":\"message_template_status_update\",\"value\":{\"event\":\"APPROVED\"}}]}]}";
    struct channels_inspection r = inspect_ok(CHANNEL_WHATSAPP, body);
    expect_counts(&r, 0, 0, 0, 1);
    char want[128];
    hash_key("body", body, strlen(body), want);
    cr_assert_str_eq(r.dedup_key, want);

    /* An entry without changes is accepted, with nothing in it. */
    const char *empty = "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\"}]}";
    r = inspect_ok(CHANNEL_WHATSAPP, empty);
    expect_counts(&r, 0, 0, 0, 0);
    hash_key("body", empty, strlen(empty), want);
    cr_assert_str_eq(r.dedup_key, want);
}

Test(whatsapp, errors_beside_messages_are_keyed_by_content, .timeout = 30)
{
    struct channels_inspection plain = wa_ok("\"messages\":[" MSG("wamid.A", CUSTOMER) "]");
    struct channels_inspection e1 = wa_ok(
        "\"messages\":[" MSG("wamid.A", CUSTOMER) "],"
                                                  "\"errors\":[{\"code\":1,\"title\":\"t\"}]");
    /* Same error, keys in another order: same canonical content, same key. */
    struct channels_inspection e1b = wa_ok("\"errors\":[{\"title\":\"t\",\"code\":1}],"
                                           "\"messages\":[" MSG("wamid.A", CUSTOMER) "]");
    struct channels_inspection e2 = wa_ok(
        "\"messages\":[" MSG("wamid.A", CUSTOMER) "],"
                                                  "\"errors\":[{\"code\":2,\"title\":\"t\"}]");
    expect_counts(&e1, 1, 0, 0, 1);
    cr_assert_eq(strncmp(e1.dedup_key, "sha256:", 7), 0, "%s", e1.dedup_key);
    cr_assert_str_eq(e1.dedup_key, e1b.dedup_key);
    cr_assert_str_neq(e1.dedup_key, e2.dedup_key);
    cr_assert_str_neq(e1.dedup_key, plain.dedup_key);
}

Test(whatsapp, echoes_from_the_business_number, .timeout = 30)
{
    struct channels_inspection r =
        wa_ok("\"messages\":[" MSG("wamid.E", "15550783881") "," MSG("wamid.C", CUSTOMER) "]");
    expect_counts(&r, 1, 0, 1, 0);

    /* Formatting of the display number does not hide an echo. */
    const char *formatted =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{"
        "\"field\":\"messages\",\"value\":{\"metadata\":{\"display_phone_number\":"
        "\"+1 555-078-3881\"},\"messages\":[" MSG("wamid.E", "15550783881") "]}}]}]}";
    r = inspect_ok(CHANNEL_WHATSAPP, formatted);
    expect_counts(&r, 0, 0, 1, 0);
    cr_assert_str_eq(r.dedup_key, "wa:m:wamid.E");

    /* A prefix of the number is not the number. */
    r = wa_ok("\"messages\":[" MSG("wamid.P", "1555078388") "]");
    expect_counts(&r, 1, 0, 0, 0);
}

Test(whatsapp, coexistence_message_echoes, .timeout = 30)
{
    const char *body =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{"
        "\"field\":\"smb_message_echoes\",\"value\":{\"messaging_product\":\"whatsapp\","
        "\"metadata\":{\"display_phone_number\":\"15550783881\"},\"message_echoes\":[{"
        "\"from\":\"15550783881\",\"to\":\"" CUSTOMER "\",\"id\":\"wamid.ECHO1\","
        "\"timestamp\":\"1739321024\",\"type\":\"text\",\"text\":{\"body\":\"ok\"}}]}}]}]}";
    struct channels_inspection r = inspect_ok(CHANNEL_WHATSAPP, body);
    expect_counts(&r, 0, 0, 1, 0);
    cr_assert_str_eq(r.dedup_key, "wa:m:wamid.ECHO1");
}

Test(whatsapp, system_messages_are_others, .timeout = 30)
{
    struct channels_inspection r =
        wa_ok("\"messages\":[{\"from\":\"" CUSTOMER "\",\"id\":\"wamid.SYS\",\"type\":\"system\","
              "\"system\":{\"body\":\"changed\",\"wa_id\":\"1650\",\"type\":"
              "\"user_changed_number\"}}]");
    expect_counts(&r, 0, 0, 0, 1);
    cr_assert_str_eq(r.dedup_key, "wa:m:wamid.SYS");
}

Test(whatsapp, envelope_errors, .timeout = 30)
{
    inspect_fails(CHANNEL_WHATSAPP, "{\"entry\":[{}]}", "wrong_object");
    inspect_fails(CHANNEL_WHATSAPP, "{\"object\":\"page\",\"entry\":[{}]}", "wrong_object");
    inspect_fails(CHANNEL_WHATSAPP, "{\"object\":1,\"entry\":[{}]}", "wrong_object");
    inspect_fails(CHANNEL_WHATSAPP, "{\"object\":\"whatsapp_business_account\"}", "missing_entry");
    inspect_fails(CHANNEL_WHATSAPP, "{\"object\":\"whatsapp_business_account\",\"entry\":[]}",
                  "missing_entry");
    inspect_fails(CHANNEL_WHATSAPP, "{\"object\":\"whatsapp_business_account\",\"entry\":{}}",
                  "missing_entry");
    inspect_fails(CHANNEL_WHATSAPP, "{\"object\":\"whatsapp_business_account\",\"entry\":[1]}",
                  "invalid_entry");
    inspect_fails(CHANNEL_WHATSAPP,
                  "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":{}}]}",
                  "invalid_entry");
    inspect_fails(CHANNEL_WHATSAPP,
                  "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[\"x\"]}]}",
                  "invalid_change");
    inspect_fails(CHANNEL_WHATSAPP,
                  "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":"
                  "[{\"value\":[]}]}]}",
                  "invalid_change");
}

Test(whatsapp, item_shape_errors, .timeout = 30)
{
    wa_fails("\"messages\":{}", "invalid_change");
    wa_fails("\"statuses\":\"x\"", "invalid_change");
    wa_fails("\"errors\":{}", "invalid_change");
    wa_fails("\"messages\":[{\"from\":\"1\"}]", "invalid_message");
    wa_fails("\"messages\":[{\"id\":42}]", "invalid_message");
    wa_fails("\"messages\":[{\"id\":\"\"}]", "invalid_message");
    wa_fails("\"messages\":[{\"id\":\"wamid.\\nX\"}]", "invalid_message");
    wa_fails("\"messages\":[\"wamid.X\"]", "invalid_message");
    wa_fails("\"message_echoes\":[{\"to\":\"1\"}]", "invalid_message");
    wa_fails("\"statuses\":[{\"id\":\"wamid.X\"}]", "invalid_status");
    wa_fails("\"statuses\":[{\"status\":\"read\"}]", "invalid_status");
    wa_fails("\"statuses\":[{\"id\":\"wamid.X\",\"status\":7}]", "invalid_status");

    /* The detail says where the problem is. */
    char *body = wa_value("\"messages\":[" MSG("wamid.A", CUSTOMER) ",{\"id\":null}]");
    char detail[256];
    inspect_fails_n(CHANNEL_WHATSAPP, body, strlen(body), "invalid_message", detail);
    cr_assert(strstr(detail, "entry[0].changes[0].value.messages[1]"), "%s", detail);
    free(body);
}

Test(whatsapp, id_length_limit, .timeout = 30)
{
    char id[CHANNELS_ID_MAX + 2];
    memset(id, 'w', sizeof id - 1);
    id[CHANNELS_ID_MAX] = '\0';
    char *inner = xasprintf("\"messages\":[{\"id\":\"%s\"}]", id);
    struct channels_inspection r = wa_ok(inner);
    char *item = xasprintf("wa:m:%s", id);
    char want[128];
    hash_key("sha256", item, strlen(item), want); /* too long for the key: hashed */
    cr_assert_str_eq(r.dedup_key, want);
    free(item);
    free(inner);

    id[CHANNELS_ID_MAX] = 'w';
    id[CHANNELS_ID_MAX + 1] = '\0';
    inner = xasprintf("\"messages\":[{\"id\":\"%s\"}]", id);
    wa_fails(inner, "invalid_message");
    free(inner);
}

/* "messages":[ n messages ],"statuses":[ m statuses ] */
static char *many(unsigned n, unsigned m)
{
    char *s = xasprintf("\"messages\":[");
    for (unsigned i = 0; i < n; i++) {
        char *t = xasprintf("%s%s{\"id\":\"wamid.%u\"}", s, i ? "," : "", i);
        free(s);
        s = t;
    }
    char *t = xasprintf("%s],\"statuses\":[", s);
    free(s);
    s = t;
    for (unsigned i = 0; i < m; i++) {
        t = xasprintf("%s%s{\"id\":\"wamid.%u\",\"status\":\"sent\"}", s, i ? "," : "", i);
        free(s);
        s = t;
    }
    t = xasprintf("%s]", s);
    free(s);
    return t;
}

Test(whatsapp, item_limit, .timeout = 60)
{
    char *inner = many(CHANNELS_MAX_ITEMS, 0);
    struct channels_inspection r = wa_ok(inner);
    expect_counts(&r, CHANNELS_MAX_ITEMS, 0, 0, 0);
    free(inner);

    inner = many(CHANNELS_MAX_ITEMS + 1, 0);
    wa_fails(inner, "too_many_items");
    free(inner);

    inner = many(600, 401);
    wa_fails(inner, "too_many_items");
    free(inner);
}

Test(whatsapp, entry_and_change_limits, .timeout = 60)
{
    char *s = xasprintf("{\"object\":\"whatsapp_business_account\",\"entry\":[");
    for (unsigned i = 0; i <= CHANNELS_MAX_ITEMS; i++) {
        char *t = xasprintf("%s%s{\"id\":\"%u\"}", s, i ? "," : "", i);
        free(s);
        s = t;
    }
    char *body = xasprintf("%s]}", s);
    free(s);
    inspect_fails(CHANNEL_WHATSAPP, body, "too_many_items");
    free(body);

    /* Changes are bounded across entries, even when they carry no item. */
    s = xasprintf("{\"object\":\"whatsapp_business_account\",\"entry\":[");
    for (unsigned i = 0; i < 3; i++) {
        char *t = xasprintf("%s%s{\"changes\":[", s, i ? "," : "");
        free(s);
        s = t;
        for (unsigned j = 0; j < 400; j++) {
            t = xasprintf("%s%s{\"value\":{\"messages\":[]}}", s, j ? "," : "");
            free(s);
            s = t;
        }
        t = xasprintf("%s]}", s);
        free(s);
        s = t;
    }
    body = xasprintf("%s]}", s);
    free(s);
    inspect_fails(CHANNEL_WHATSAPP, body, "too_many_items");
    free(body);
}
