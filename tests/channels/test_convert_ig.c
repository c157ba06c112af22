/* test_convert_ig.c - Instagram and web widget payloads into internal
 * messages and status updates: the ig_text fixture, attachments, quick
 * replies, echoes, reactions, postbacks, read/delivery, notices, standby;
 * web text/image/file with the visitor's name and email. */
#include "collect.h"

#define IG_ACCOUNT "17841400000000000"
#define IG_USER    "1234567890123456"
#define IG_HEAD                                                                                    \
    "{\"object\":\"instagram\",\"entry\":[{\"time\":1739321024123,\"id\":\"" IG_ACCOUNT            \
    "\",\"messaging\":["
#define IG_TAIL "]}]}"
/* A messaging[] event from the customer to the account carrying `rest`. */
#define IG_FROM_USER(rest)                                                                         \
    "{\"sender\":{\"id\":\"" IG_USER "\"},\"recipient\":{\"id\":\"" IG_ACCOUNT "\"},"              \
    "\"timestamp\":1739321023999," rest "}"

static struct collected C;

static void teardown(void)
{
    collected_free(&C);
}

TestSuite(convert_ig, .fini = teardown, .timeout = 30);
TestSuite(convert_web, .fini = teardown, .timeout = 30);

static const struct domain_message *ig_one(const char *event)
{
    char *body = xasprintf(IG_HEAD "%s" IG_TAIL, event);
    parse_ok(CHANNEL_INSTAGRAM, body, &C);
    free(body);
    return only_message(&C);
}

Test(convert_ig, fixture_text)
{
    size_t len;
    char *body = fixture("ig_text.json", &len);
    struct channels_parse_error err;
    cr_assert_eq(channels_parse(CHANNEL_INSTAGRAM, body, len, collect_one, &C, &err), 0, "%s",
                 err.detail);
    free(body);
    const struct domain_message *m = only_message(&C);
    cr_assert_eq(m->type, DOMAIN_TYPE_TEXT);
    cr_assert_eq(m->direction, DOMAIN_INBOUND);
    cr_assert_eq(m->sender, DOMAIN_SENDER_CUSTOMER);
    cr_assert_str_eq(m->provider_message_id, "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAw");
    cr_assert_str_eq(m->contact_id, IG_USER);
    cr_assert_null(m->contact_name);
    cr_assert_null(m->contact_phone);
    cr_assert_eq(m->timestamp_ms, 1739321023999LL, "Instagram timestamps are already ms");
    cr_assert_str_eq(m->text, "Do you ship to Portugal?");
    cr_assert_str_eq(C.ev[0].account, IG_ACCOUNT);
    cr_assert_eq(json_object_size(m->metadata), 0);
}

Test(convert_ig, attachments)
{
    static const struct {
        const char *type, *extra;
        enum domain_message_type want;
    } cases[] = {
        {"image", "", DOMAIN_TYPE_IMAGE},
        {"image", ",\"sticker_id\":369239263222822", DOMAIN_TYPE_STICKER},
        {"video", "", DOMAIN_TYPE_VIDEO},
        {"audio", "", DOMAIN_TYPE_AUDIO},
        {"file", "", DOMAIN_TYPE_DOCUMENT},
        {"share", "", DOMAIN_TYPE_UNSUPPORTED},
        {"story_mention", "", DOMAIN_TYPE_UNSUPPORTED},
        {"ig_reel", "", DOMAIN_TYPE_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *ev = xasprintf(IG_FROM_USER("\"message\":{\"mid\":\"m%zu\",\"attachments\":[{"
                                          "\"type\":\"%s\",\"payload\":{\"url\":"
                                          "\"https://cdn.example/%zu\"%s}}]}"),
                             i, cases[i].type, i, cases[i].extra);
        const struct domain_message *m = ig_one(ev);
        cr_assert_eq(m->type, cases[i].want, "%s%s -> %s", cases[i].type, cases[i].extra,
                     domain_message_type_name(m->type));
        char url[64];
        snprintf(url, sizeof url, "https://cdn.example/%zu", i);
        cr_assert_str_eq(meta_str(m, "url"), url);
        cr_assert_eq(json_array_size(json_object_get(m->metadata, "attachments")), 1);
        if (cases[i].want == DOMAIN_TYPE_UNSUPPORTED)
            cr_assert_str_eq(meta_str(m, "original_type"), cases[i].type);
        free(ev);
        collected_free(&C);
    }
    /* Several attachments: the first one names the type, all are kept. */
    const struct domain_message *m = ig_one(IG_FROM_USER(
        "\"message\":{\"mid\":\"mm\",\"attachments\":[{\"type\":\"image\",\"payload\":{\"url\":"
        "\"https://a/1\"}},{\"type\":\"image\",\"payload\":{\"url\":\"https://a/2\"}}]}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_IMAGE);
    cr_assert_eq(json_array_size(json_object_get(m->metadata, "attachments")), 2);
    collected_free(&C);
    /* Ephemeral media has no url. */
    m = ig_one(IG_FROM_USER("\"message\":{\"mid\":\"me\",\"attachments\":[{\"type\":"
                            "\"ephemeral\"}]}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_UNSUPPORTED);
    cr_assert_null(json_object_get(m->metadata, "url"));
}

Test(convert_ig, quick_reply_reply_to_and_unsupported)
{
    const struct domain_message *m = ig_one(IG_FROM_USER(
        "\"message\":{\"mid\":\"mq\",\"text\":\"Yes\",\"quick_reply\":{\"payload\":\"YES\"},"
        "\"reply_to\":{\"mid\":\"m-ours\"}}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_BUTTON);
    cr_assert_str_eq(m->text, "Yes");
    cr_assert_str_eq(meta_str(m, "payload"), "YES");
    cr_assert_str_eq(m->reply_to, "m-ours");
    collected_free(&C);

    m = ig_one(IG_FROM_USER("\"message\":{\"mid\":\"ms\",\"text\":\"nice story\",\"reply_to\":"
                            "{\"story\":{\"url\":\"https://cdn/s\",\"id\":\"st1\"}}}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_TEXT);
    cr_assert_null(m->reply_to);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(m->metadata, "reply_to_story"), "id")),
        "st1");
    collected_free(&C);

    m = ig_one(IG_FROM_USER("\"message\":{\"mid\":\"mu\",\"is_unsupported\":true}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_UNSUPPORTED);
    cr_assert_str_eq(meta_str(m, "original_type"), "unsupported");
    collected_free(&C);

    /* Neither text nor attachments: kept, flagged. */
    m = ig_one(IG_FROM_USER("\"message\":{\"mid\":\"me\"}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_UNSUPPORTED);
    cr_assert(meta_true(m, "malformed"));
}

Test(convert_ig, echo_is_a_human_outbound_message)
{
    const struct domain_message *m =
        ig_one("{\"sender\":{\"id\":\"" IG_ACCOUNT "\"},\"recipient\":{\"id\":\"" IG_USER "\"},"
               "\"timestamp\":1739321030000,\"message\":{\"mid\":\"m-echo\",\"is_echo\":true,"
               "\"app_id\":1217981644879628,\"text\":\"Sorry for the wait!\"}}");
    cr_assert(m->echo);
    cr_assert_eq(m->direction, DOMAIN_OUTBOUND);
    cr_assert_eq(m->sender, DOMAIN_SENDER_HUMAN);
    cr_assert_str_eq(m->contact_id, IG_USER, "the customer is the recipient of an echo");
    cr_assert(meta_true(m, "is_echo"));
    cr_assert_eq(json_integer_value(json_object_get(m->metadata, "app_id")), 1217981644879628LL);
    cr_assert_str_eq(m->text, "Sorry for the wait!");
}

Test(convert_ig, reactions)
{
    const struct domain_message *m = ig_one(
        IG_FROM_USER("\"reaction\":{\"mid\":\"m-ours\",\"action\":\"react\",\"reaction\":\"love\","
                     "\"emoji\":\"\\u2764\"}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_REACTION);
    cr_assert_eq(m->direction, DOMAIN_INBOUND);
    cr_assert_str_eq(m->text, "\xE2\x9D\xA4");
    cr_assert_str_eq(meta_str(m, "reaction_message_id"), "m-ours");
    cr_assert_str_eq(meta_str(m, "reaction"), "love");
    cr_assert_str_eq(meta_str(m, "emoji"), "\xE2\x9D\xA4");
    cr_assert_not(meta_true(m, "removed"));
    cr_assert_str_eq(m->provider_message_id, "reaction:react:1739321023999:m-ours");
    collected_free(&C);

    m = ig_one(IG_FROM_USER("\"reaction\":{\"mid\":\"m-ours\",\"action\":\"unreact\"}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_REACTION);
    cr_assert(meta_true(m, "removed"));
    cr_assert_str_eq(m->text, "");
    cr_assert_str_eq(m->provider_message_id, "reaction:unreact:1739321023999:m-ours");
    collected_free(&C);

    /* The business reacting from the app: outbound, human. */
    m = ig_one("{\"sender\":{\"id\":\"" IG_ACCOUNT "\"},\"recipient\":{\"id\":\"" IG_USER "\"},"
               "\"timestamp\":5,\"reaction\":{\"mid\":\"m-theirs\",\"action\":\"react\","
               "\"emoji\":\"x\"}}");
    cr_assert(m->echo);
    cr_assert_eq(m->sender, DOMAIN_SENDER_HUMAN);
    cr_assert_str_eq(m->contact_id, IG_USER);
}

Test(convert_ig, postbacks)
{
    const struct domain_message *m = ig_one(IG_FROM_USER(
        "\"postback\":{\"mid\":\"m-pb\",\"title\":\"Talk to sales\",\"payload\":\"SALES\"}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_BUTTON);
    cr_assert_str_eq(m->text, "Talk to sales");
    cr_assert_str_eq(meta_str(m, "payload"), "SALES");
    cr_assert_str_eq(meta_str(m, "title"), "Talk to sales");
    cr_assert_str_eq(m->provider_message_id, "m-pb");
    collected_free(&C);

    m = ig_one(IG_FROM_USER("\"postback\":{\"title\":\"Get started\",\"payload\":\"START\"}"));
    cr_assert_str_eq(m->provider_message_id, "postback:" IG_USER ":1739321023999");
}

Test(convert_ig, read_delivery_and_notices)
{
    const char *body = IG_HEAD
        IG_FROM_USER("\"read\":{\"mid\":\"m-out-1\"}") "," IG_FROM_USER("\"delivery\":{\"mids\":["
                                                                        "\"m-out-2\",\"m-out-3\"],"
                                                                        "\"watermark\":1}") "," IG_FROM_USER("\"read\":{\"watermark\":1739321023000}") "," IG_FROM_USER(
            "\"message\":{\"mid\":\"m-del\",\"is_deleted\":true}") "," IG_FROM_USER("\"message_"
                                                                                    "edit\":{"
                                                                                    "\"mid\":\"m-"
                                                                                    "ed\",\"text\":"
                                                                                    "\"fixed\","
                                                                                    "\"num_edit\":"
                                                                                    "1}") "," IG_FROM_USER("\"referral\":{\"ref\":\"ad\",\"source\":\"ADS\",\"type\":\"OPEN_THREAD\"}")
            IG_TAIL;
    parse_ok(CHANNEL_INSTAGRAM, body, &C);
    cr_assert_eq(C.n, 7);
    cr_assert_eq(C.ev[0].kind, CHANNELS_EVENT_STATUS);
    cr_assert_eq(C.ev[0].st.status, DOMAIN_STATUS_READ);
    cr_assert_str_eq(C.ev[0].st.provider_message_id, "m-out-1");
    cr_assert_str_eq(C.ev[0].st.recipient_id, IG_USER, "the reader is the customer");
    cr_assert_eq(C.ev[0].st.timestamp_ms, 1739321023999LL);
    cr_assert_eq(C.ev[1].st.status, DOMAIN_STATUS_DELIVERED);
    cr_assert_str_eq(C.ev[1].st.provider_message_id, "m-out-2");
    cr_assert_eq(C.ev[2].st.status, DOMAIN_STATUS_DELIVERED);
    cr_assert_str_eq(C.ev[2].st.provider_message_id, "m-out-3");
    cr_assert_str_eq(C.ev[3].notice, "read_watermark");
    cr_assert_str_eq(C.ev[4].notice, "deleted");
    cr_assert_str_eq(C.ev[5].notice, "edit");
    cr_assert_str_eq(C.ev[6].notice, "other");
    for (size_t i = 0; i < C.n; i++)
        cr_assert_str_eq(C.ev[i].account, IG_ACCOUNT);
}

Test(convert_ig, standby_events_are_flagged)
{
    parse_ok(CHANNEL_INSTAGRAM,
             "{\"object\":\"instagram\",\"entry\":[{\"id\":\"" IG_ACCOUNT
             "\",\"standby\":[" IG_FROM_USER(
                 "\"message\":{\"mid\":\"m-sb\",\"text\":\"hello?\"}") "]}]}",
             &C);
    const struct domain_message *m = only_message(&C);
    cr_assert(C.ev[0].standby);
    cr_assert(meta_true(m, "standby"));
    cr_assert_str_eq(m->text, "hello?");
}

Test(convert_ig, shape_errors_report_nothing)
{
    /* The second event lacks its mid: the first must not be reported either. */
    const char *body =
        IG_HEAD IG_FROM_USER("\"message\":{\"mid\":\"ok\",\"text\":\"a\"}") "," IG_FROM_USER(
            "\"message\":{\"text\":\"b\"}") IG_TAIL;
    struct channels_parse_error err;
    C.n = 0;
    cr_assert_eq(channels_parse(CHANNEL_INSTAGRAM, body, strlen(body), collect_one, &C, &err),
                 SB_EPARSE);
    cr_assert_str_eq(err.reason, "invalid_event");
    cr_assert_eq(C.n, 0);
    body = "{\"object\":\"whatsapp_business_account\",\"entry\":[{}]}";
    cr_assert_eq(channels_parse(CHANNEL_INSTAGRAM, body, strlen(body), collect_one, &C, &err),
                 SB_EPARSE);
    cr_assert_str_eq(err.reason, "wrong_object");
}

/* ---------------------------------------------------------------- web */

Test(convert_web, text_with_visitor)
{
    parse_ok(CHANNEL_WEB,
             "{\"visitor_id\":\"v_8f3a2c\",\"message_id\":\"m-0001\",\"type\":\"text\",\"text\":"
             "\"Ol\\u00e1! Voc\\u00eas abrem s\\u00e1bado?\",\"timestamp\":1739321024123,"
             "\"visitor\":{\"name\":\"Ana\",\"email\":\"ana@example.com\"}}",
             &C);
    const struct domain_message *m = only_message(&C);
    cr_assert_eq(m->type, DOMAIN_TYPE_TEXT);
    cr_assert_eq(m->direction, DOMAIN_INBOUND);
    cr_assert_str_eq(m->provider_message_id, "v_8f3a2c:m-0001", "message ids are per visitor");
    cr_assert_str_eq(m->contact_id, "v_8f3a2c");
    cr_assert_str_eq(m->contact_name, "Ana");
    cr_assert_str_eq(m->contact_email, "ana@example.com");
    cr_assert_null(m->contact_phone);
    cr_assert_eq(m->timestamp_ms, 1739321024123LL);
    cr_assert_str_eq(m->text, "Ol\xC3\xA1! Voc\xC3\xAAs abrem s\xC3\xA1"
                              "bado?");
    cr_assert_str_eq(C.ev[0].account, "");
}

Test(convert_web, image_and_file)
{
    parse_ok(CHANNEL_WEB,
             "{\"visitor_id\":\"v1\",\"message_id\":\"m2\",\"type\":\"image\",\"url\":"
             "\"https://uploads.example.com/v1/receipt.png\",\"caption\":\"my receipt\"}",
             &C);
    const struct domain_message *m = only_message(&C);
    cr_assert_eq(m->type, DOMAIN_TYPE_IMAGE);
    cr_assert_str_eq(m->text, "my receipt");
    cr_assert_str_eq(meta_str(m, "url"), "https://uploads.example.com/v1/receipt.png");
    cr_assert_eq(m->timestamp_ms, 0);
    cr_assert_null(m->contact_name);
    collected_free(&C);

    parse_ok(CHANNEL_WEB,
             "{\"visitor_id\":\"v1\",\"message_id\":\"m3\",\"type\":\"file\",\"url\":"
             "\"https://uploads.example.com/v1/a.pdf\"}",
             &C);
    m = only_message(&C);
    cr_assert_eq(m->type, DOMAIN_TYPE_DOCUMENT);
    cr_assert_str_eq(m->text, "");
    cr_assert_str_eq(meta_str(m, "url"), "https://uploads.example.com/v1/a.pdf");
}

Test(convert_web, strict_like_the_gateway)
{
    static const char *const bad[] = {
        "{\"visitor_id\":\"v1\",\"message_id\":\"m\",\"type\":\"text\"}",
        "{\"visitor_id\":\"v 1\",\"message_id\":\"m\",\"type\":\"text\",\"text\":\"x\"}",
        "{\"visitor_id\":\"v1\",\"message_id\":\"m\",\"type\":\"image\",\"url\":\"http://a/b\"}",
        "{\"visitor_id\":\"v1\",\"message_id\":\"m\",\"type\":\"text\",\"text\":\"x\",\"x\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct channels_parse_error err;
        C.n = 0;
        cr_assert_eq(channels_parse(CHANNEL_WEB, bad[i], strlen(bad[i]), collect_one, &C, &err),
                     SB_EPARSE, "%s", bad[i]);
        cr_assert_str_eq(err.reason, "invalid_web_message");
        cr_assert_eq(C.n, 0);
    }
}
