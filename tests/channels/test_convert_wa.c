/* test_convert_wa.c - WhatsApp payloads into internal messages and status
 * updates: the shared fixtures, one hand-written payload per message type of
 * protocols.md §1.4, context and referral, echoes, statuses and notices, and
 * the error paths of channels_parse(). */
#include "collect.h"

#define WA_HEAD                                                                                    \
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\","            \
    "\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","          \
    "\"metadata\":{\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"1065\"},"
#define WA_TAIL  "}}]}]}"
#define CONTACTS "\"contacts\":[{\"profile\":{\"name\":\"Ana\"},\"wa_id\":\"16505551234\"}],"
/* One customer message of `type` whose remaining members are `rest`. */
#define WA_MSG(type, rest)                                                                         \
    WA_HEAD CONTACTS "\"messages\":[{\"from\":\"16505551234\",\"id\":\"wamid.X1\","                \
                     "\"timestamp\":\"1739321024\",\"type\":\"" type "\"," rest "}]" WA_TAIL

static struct collected C;

static void teardown(void)
{
    collected_free(&C);
}

TestSuite(convert_wa, .fini = teardown, .timeout = 30);

static void parse_fixture(const char *name)
{
    size_t len;
    char *body = fixture(name, &len);
    struct channels_parse_error err;
    C.n = 0;
    int rc = channels_parse(CHANNEL_WHATSAPP, body, len, collect_one, &C, &err);
    cr_assert_eq(rc, 0, "%s: %s %s", name, err.reason, err.detail);
    free(body);
}

static const struct domain_message *wa_one(const char *body)
{
    parse_ok(CHANNEL_WHATSAPP, body, &C);
    return only_message(&C);
}

Test(convert_wa, fixture_text)
{
    parse_fixture("wa_text.json");
    const struct domain_message *m = only_message(&C);
    cr_assert_eq(m->type, DOMAIN_TYPE_TEXT);
    cr_assert_eq(m->direction, DOMAIN_INBOUND);
    cr_assert_eq(m->sender, DOMAIN_SENDER_CUSTOMER);
    cr_assert_not(m->echo);
    cr_assert_str_eq(m->provider_message_id, "wamid.TEST_TEXT_0001");
    cr_assert_str_eq(m->contact_id, "16505551234");
    cr_assert_str_eq(m->contact_name, "Test User");
    cr_assert_str_eq(m->contact_phone, "16505551234");
    cr_assert_null(m->contact_email);
    cr_assert_eq(m->timestamp_ms, 1739321024000LL);
    cr_assert_str_eq(m->text, "Hello, I need help with my order");
    cr_assert_null(m->reply_to);
    cr_assert_eq(json_object_size(m->metadata), 0);
    cr_assert_str_eq(C.ev[0].account, "106540352242922");
    cr_assert_not(C.ev[0].standby);
}

Test(convert_wa, fixture_unicode_escapes_become_utf8)
{
    parse_fixture("wa_text_unicode.json");
    const struct domain_message *m = only_message(&C);
    cr_assert_str_eq(m->contact_name, "Jos\xC3\xA9");
    cr_assert_str_eq(m->text, "caf\xC3\xA9 \xE2\x98\x95");
    collected_free(&C);
    parse_fixture("wa_text_unicode_utf8_reencoded.json");
    cr_assert_str_eq(only_message(&C)->text, "caf\xC3\xA9 \xE2\x98\x95");
}

Test(convert_wa, fixture_image)
{
    parse_fixture("wa_image.json");
    const struct domain_message *m = only_message(&C);
    cr_assert_eq(m->type, DOMAIN_TYPE_IMAGE);
    cr_assert_str_eq(m->provider_message_id, "wamid.TEST_IMAGE_0001");
    cr_assert_str_eq(m->text, "Photo of the receipt");
    cr_assert_str_eq(meta_str(m, "media_id"), "2754859441498128");
    cr_assert_str_eq(meta_str(m, "mime_type"), "image/jpeg");
    cr_assert_str_eq(meta_str(m, "sha256"),
                     "81d3bd8a8db4868c9520ed47186e8b7c5789e61ff79f7f834be6950b808a90d3");
    cr_assert_null(json_object_get(m->metadata, "url"));
    cr_assert_eq(m->timestamp_ms, 1739321030000LL);
}

Test(convert_wa, fixture_status_delivered)
{
    parse_fixture("wa_status_delivered.json");
    cr_assert_eq(C.n, 1);
    cr_assert_eq(C.ev[0].kind, CHANNELS_EVENT_STATUS);
    const struct domain_status_update *s = &C.ev[0].st;
    cr_assert_str_eq(s->provider_message_id, "wamid.TEST_OUT_0001");
    cr_assert_eq(s->status, DOMAIN_STATUS_DELIVERED);
    cr_assert_eq(s->timestamp_ms, 1739321100000LL);
    cr_assert_str_eq(s->recipient_id, "16505551234");
    cr_assert_not(s->has_error);
    cr_assert_str_eq(C.ev[0].account, "106540352242922");
}

Test(convert_wa, fixture_status_failed)
{
    parse_fixture("wa_status_failed.json");
    cr_assert_eq(C.n, 1);
    const struct domain_status_update *s = &C.ev[0].st;
    cr_assert_eq(C.ev[0].kind, CHANNELS_EVENT_STATUS);
    cr_assert_str_eq(s->provider_message_id, "wamid.TEST_OUT_0002");
    cr_assert_eq(s->status, DOMAIN_STATUS_FAILED);
    cr_assert(s->has_error);
    cr_assert_eq(s->error_code, 131047);
    cr_assert_str_eq(s->error_title, "Re-engagement message");
    cr_assert_str_eq(s->error_details, "Message failed to send because more than 24 hours have "
                                       "passed since the customer last replied to this number.");
    cr_assert_eq(domain_wa_error_class(s->error_code).retry, DOMAIN_FAIL);
}

Test(convert_wa, audio_voice_note)
{
    const struct domain_message *m = wa_one(WA_MSG(
        "audio", "\"audio\":{\"mime_type\":\"audio/ogg; codecs=opus\",\"sha256\":\"abc\","
                 "\"id\":\"m-aud\",\"url\":\"https://lookaside.example/a\",\"voice\":true}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_AUDIO);
    cr_assert_str_eq(m->text, "");
    cr_assert_str_eq(meta_str(m, "media_id"), "m-aud");
    cr_assert_str_eq(meta_str(m, "mime_type"), "audio/ogg; codecs=opus");
    cr_assert_str_eq(meta_str(m, "url"), "https://lookaside.example/a");
    cr_assert(meta_true(m, "voice"));
}

Test(convert_wa, video_document_sticker)
{
    const struct domain_message *m = wa_one(WA_MSG(
        "video", "\"video\":{\"caption\":\"look\",\"mime_type\":\"video/mp4\",\"id\":\"v1\"}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_VIDEO);
    cr_assert_str_eq(m->text, "look");
    cr_assert_str_eq(meta_str(m, "media_id"), "v1");
    collected_free(&C);

    m = wa_one(WA_MSG("document",
                      "\"document\":{\"caption\":\"invoice\",\"filename\":\"inv.pdf\","
                      "\"mime_type\":\"application/pdf\",\"sha256\":\"s\",\"id\":\"d1\"}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_DOCUMENT);
    cr_assert_str_eq(m->text, "invoice");
    cr_assert_str_eq(meta_str(m, "filename"), "inv.pdf");
    cr_assert_str_eq(meta_str(m, "mime_type"), "application/pdf");
    collected_free(&C);

    m = wa_one(WA_MSG("sticker", "\"sticker\":{\"mime_type\":\"image/webp\",\"sha256\":\"s\","
                                 "\"id\":\"st1\",\"animated\":false}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_STICKER);
    cr_assert_str_eq(meta_str(m, "media_id"), "st1");
    cr_assert(json_is_false(json_object_get(m->metadata, "animated")));
}

Test(convert_wa, location)
{
    const struct domain_message *m = wa_one(WA_MSG(
        "location", "\"location\":{\"latitude\":37.44221496582,\"longitude\":-122.16397857666,"
                    "\"name\":\"Philz Coffee\",\"address\":\"101 Forest Ave, Palo Alto, CA 94301\","
                    "\"url\":\"https://philz.example\"}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_LOCATION);
    cr_assert_str_eq(m->text, "Philz Coffee\n101 Forest Ave, Palo Alto, CA 94301");
    cr_assert_float_eq(json_real_value(json_object_get(m->metadata, "latitude")), 37.44221496582,
                       1e-9);
    cr_assert_float_eq(json_real_value(json_object_get(m->metadata, "longitude")), -122.16397857666,
                       1e-9);
    cr_assert_str_eq(meta_str(m, "address"), "101 Forest Ave, Palo Alto, CA 94301");
    collected_free(&C);
    /* A bare pin: coordinates only, no text. */
    m = wa_one(WA_MSG("location", "\"location\":{\"latitude\":-23.5505,\"longitude\":-46.6333}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_LOCATION);
    cr_assert_str_eq(m->text, "");
}

Test(convert_wa, contacts_card)
{
    const struct domain_message *m = wa_one(
        WA_MSG("contacts",
               "\"contacts\":[{\"name\":{\"formatted_name\":\"Jo Doe\"},\"phones\":[{\"phone\":"
               "\"+1 555\"}]},{\"name\":{\"formatted_name\":\"Al\"}}]"));
    cr_assert_eq(m->type, DOMAIN_TYPE_CONTACTS);
    cr_assert_str_eq(m->text, "Jo Doe, Al");
    cr_assert_eq(json_array_size(json_object_get(m->metadata, "contacts")), 2);
    /* The message's own "contacts" member does not confuse the sender's name. */
    cr_assert_str_eq(m->contact_name, "Ana");
}

Test(convert_wa, interactive_button_and_list_replies)
{
    const struct domain_message *m = wa_one(
        WA_MSG("interactive", "\"context\":{\"from\":\"15550783881\",\"id\":\"wamid.BUTTONS\"},"
                              "\"interactive\":{\"type\":\"button_reply\",\"button_reply\":{\"id\":"
                              "\"cancel-button\",\"title\":\"Cancel\"}}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_INTERACTIVE);
    cr_assert_str_eq(m->text, "Cancel");
    cr_assert_str_eq(meta_str(m, "interactive_type"), "button_reply");
    cr_assert_str_eq(meta_str(m, "interactive_id"), "cancel-button");
    cr_assert_str_eq(m->reply_to, "wamid.BUTTONS");
    cr_assert_str_eq(meta_str(m, "context_from"), "15550783881");
    collected_free(&C);

    m = wa_one(WA_MSG("interactive",
                      "\"interactive\":{\"type\":\"list_reply\",\"list_reply\":{\"id\":"
                      "\"priority_express\",\"title\":\"Express\",\"description\":\"Next day\"}}"));
    cr_assert_str_eq(m->text, "Express");
    cr_assert_str_eq(meta_str(m, "interactive_type"), "list_reply");
    cr_assert_str_eq(meta_str(m, "interactive_id"), "priority_express");
    cr_assert_str_eq(meta_str(m, "description"), "Next day");
    collected_free(&C);

    /* A flow reply: body as text, response kept. */
    m = wa_one(WA_MSG("interactive",
                      "\"interactive\":{\"type\":\"nfm_reply\",\"nfm_reply\":{"
                      "\"name\":\"flow\",\"body\":\"Sent\",\"response_json\":\"{}\"}}"));
    cr_assert_str_eq(m->text, "Sent");
    cr_assert_str_eq(meta_str(m, "response_json"), "{}");
    collected_free(&C);

    /* An interactive kind we do not know is kept whole. */
    m = wa_one(WA_MSG("interactive", "\"interactive\":{\"type\":\"call_permission_reply\"}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_INTERACTIVE);
    cr_assert_not_null(json_object_get(m->metadata, "interactive"));
}

Test(convert_wa, template_button)
{
    const struct domain_message *m = wa_one(
        WA_MSG("button", "\"context\":{\"from\":\"15550783881\",\"id\":\"wamid.TPL\"},"
                         "\"button\":{\"payload\":\"STOP_PROMOS\",\"text\":\"Stop promotions\"}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_BUTTON);
    cr_assert_str_eq(m->text, "Stop promotions");
    cr_assert_str_eq(meta_str(m, "payload"), "STOP_PROMOS");
    cr_assert_str_eq(m->reply_to, "wamid.TPL");
}

Test(convert_wa, reaction_with_and_without_emoji)
{
    const struct domain_message *m = wa_one(WA_MSG(
        "reaction", "\"reaction\":{\"message_id\":\"wamid.OURS\",\"emoji\":\"\\uD83D\\uDC4D\"}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_REACTION);
    cr_assert_str_eq(m->text, "\xF0\x9F\x91\x8D");
    cr_assert_str_eq(meta_str(m, "reaction_message_id"), "wamid.OURS");
    cr_assert_str_eq(meta_str(m, "emoji"), "\xF0\x9F\x91\x8D");
    cr_assert_not(meta_true(m, "removed"));
    cr_assert_str_eq(m->provider_message_id, "wamid.X1", "the reaction's own id");
    collected_free(&C);

    m = wa_one(WA_MSG("reaction", "\"reaction\":{\"message_id\":\"wamid.OURS\"}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_REACTION);
    cr_assert_str_eq(m->text, "");
    cr_assert(meta_true(m, "removed"));
    cr_assert_null(json_object_get(m->metadata, "emoji"));
    cr_assert_str_eq(meta_str(m, "reaction_message_id"), "wamid.OURS");
}

Test(convert_wa, system_number_change)
{
    const struct domain_message *m = wa_one(
        WA_HEAD "\"messages\":[{\"from\":\"16505551234\",\"id\":\"wamid.SYS\",\"timestamp\":"
                "\"1739321024\",\"type\":\"system\",\"system\":{\"body\":\"User A changed from "
                "16505551234 to 16505550000\",\"wa_id\":\"16505550000\",\"type\":"
                "\"user_changed_number\"}}]" WA_TAIL);
    cr_assert_eq(m->type, DOMAIN_TYPE_SYSTEM);
    cr_assert_eq(m->direction, DOMAIN_INBOUND);
    cr_assert_str_eq(m->contact_id, "16505551234");
    cr_assert_null(m->contact_name, "no contacts[] in a system message");
    cr_assert_str_eq(meta_str(m, "system_type"), "user_changed_number");
    cr_assert_str_eq(meta_str(m, "new_wa_id"), "16505550000");
    cr_assert_not_null(strstr(m->text, "changed from"));
}

Test(convert_wa, unsupported_and_unknown_types_are_kept)
{
    const struct domain_message *m = wa_one(
        WA_MSG("unsupported",
               "\"unsupported\":{\"type\":\"poll_update\"},\"errors\":[{\"code\":131051,"
               "\"title\":\"Message type unknown\",\"message\":\"Message type unknown\","
               "\"error_data\":{\"details\":\"Message type is currently not supported.\"}}]"));
    cr_assert_eq(m->type, DOMAIN_TYPE_UNSUPPORTED);
    cr_assert_str_eq(meta_str(m, "original_type"), "poll_update");
    json_t *errs = json_object_get(m->metadata, "errors");
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(errs, 0), "code")), 131051);
    collected_free(&C);

    m = wa_one(WA_MSG("order", "\"order\":{\"catalog_id\":\"c1\",\"product_items\":[]}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_UNSUPPORTED);
    cr_assert_str_eq(meta_str(m, "original_type"), "order");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(m->metadata, "raw"), "catalog_id")),
        "c1");
    cr_assert_not(meta_true(m, "malformed"));
    collected_free(&C);

    /* A known type without its object: kept as unsupported, flagged. */
    m = wa_one(WA_MSG("text", "\"txt\":{\"body\":\"typo\"}"));
    cr_assert_eq(m->type, DOMAIN_TYPE_UNSUPPORTED);
    cr_assert_str_eq(meta_str(m, "original_type"), "text");
    cr_assert(meta_true(m, "malformed"));
    collected_free(&C);
    m = wa_one(WA_MSG("image", "\"image\":\"nope\""));
    cr_assert_eq(m->type, DOMAIN_TYPE_UNSUPPORTED);
    cr_assert(meta_true(m, "malformed"));
    cr_assert_str_eq(meta_str(m, "raw"), "nope");
    collected_free(&C);

    /* No type at all. */
    m = wa_one(WA_HEAD "\"messages\":[{\"from\":\"1650\",\"id\":\"wamid.NT\"}]" WA_TAIL);
    cr_assert_eq(m->type, DOMAIN_TYPE_UNSUPPORTED);
    cr_assert_eq(m->timestamp_ms, 0);
}

Test(convert_wa, context_forwarded_and_referral)
{
    const struct domain_message *m = wa_one(
        WA_MSG("text",
               "\"text\":{\"body\":\"fw\"},\"context\":{\"forwarded\":true,"
               "\"frequently_forwarded\":true},\"referral\":{\"source_url\":\"https://ad.example\","
               "\"source_type\":\"ad\",\"ctwa_clid\":\"clid\"}"));
    cr_assert(meta_true(m, "forwarded"));
    cr_assert(meta_true(m, "frequently_forwarded"));
    cr_assert_null(m->reply_to);
    json_t *ref = json_object_get(m->metadata, "referral");
    cr_assert_str_eq(json_string_value(json_object_get(ref, "ctwa_clid")), "clid");
    collected_free(&C);

    m = wa_one(WA_MSG("text", "\"text\":{\"body\":\"this one\"},\"context\":{\"from\":\"1555\","
                              "\"id\":\"wamid.PRODUCT\",\"referred_product\":{\"catalog_id\":"
                              "\"cat\",\"product_retailer_id\":\"sku\"}}"));
    cr_assert_str_eq(m->reply_to, "wamid.PRODUCT");
    cr_assert_not_null(json_object_get(m->metadata, "referred_product"));
}

Test(convert_wa, echoes_from_the_business)
{
    /* A message whose "from" is the business number itself. */
    const struct domain_message *m = wa_one(
        WA_HEAD "\"messages\":[{\"from\":\"+1 555-078-3881\",\"to\":\"16505551234\",\"id\":"
                "\"wamid.ECHO1\",\"timestamp\":\"1739321024\",\"type\":\"text\",\"text\":{\"body\":"
                "\"Hi, Ana here from the shop\"}}]" WA_TAIL);
    cr_assert(m->echo);
    cr_assert_eq(m->direction, DOMAIN_OUTBOUND);
    cr_assert_eq(m->sender, DOMAIN_SENDER_HUMAN);
    cr_assert_str_eq(m->contact_id, "16505551234", "the customer is the recipient");
    cr_assert(meta_true(m, "is_echo"));
    cr_assert_str_eq(m->text, "Hi, Ana here from the shop");
    collected_free(&C);

    /* Coexistence message_echoes[]. */
    m = wa_one(WA_HEAD "\"message_echoes\":[{\"from\":\"15550783881\",\"to\":\"16505551234\","
                       "\"id\":\"wamid.ECHO2\",\"timestamp\":\"1739321024\",\"type\":\"image\","
                       "\"image\":{\"id\":\"img\",\"mime_type\":\"image/png\"}}]" WA_TAIL);
    cr_assert(m->echo);
    cr_assert_eq(m->type, DOMAIN_TYPE_IMAGE);
    cr_assert_str_eq(m->contact_id, "16505551234");
    collected_free(&C);

    /* An echo without "to": no contact can be named. */
    m = wa_one(WA_HEAD "\"message_echoes\":[{\"from\":\"15550783881\",\"id\":\"wamid.ECHO3\","
                       "\"type\":\"text\",\"text\":{\"body\":\"x\"}}]" WA_TAIL);
    cr_assert(m->echo);
    cr_assert_null(m->contact_id);
}

Test(convert_wa, batch_in_payload_order_with_notices)
{
    parse_ok(CHANNEL_WHATSAPP,
             WA_HEAD CONTACTS
             "\"messages\":[{\"from\":\"16505551234\",\"id\":\"wamid.A\",\"type\":\"text\","
             "\"text\":{\"body\":\"one\"}},{\"from\":\"16505551234\",\"id\":\"wamid.B\","
             "\"type\":\"text\",\"text\":{\"body\":\"two\"}}],"
             "\"statuses\":[{\"id\":\"wamid.O1\",\"status\":\"read\",\"timestamp\":\"5\"},"
             "{\"id\":\"wamid.O2\",\"status\":\"played\"},{\"id\":\"wamid.O3\",\"status\":"
             "\"deleted\"},{\"id\":\"wamid.O4\",\"status\":\"sent\"}],"
             "\"errors\":[{\"code\":130429,\"title\":\"Rate limit hit\"}]" WA_TAIL,
             &C);
    cr_assert_eq(C.n, 7);
    cr_assert_str_eq(C.ev[0].msg.text, "one");
    cr_assert_str_eq(C.ev[1].msg.text, "two");
    cr_assert_eq(C.ev[2].st.status, DOMAIN_STATUS_READ);
    cr_assert_eq(C.ev[2].st.timestamp_ms, 5000);
    cr_assert_eq(C.ev[3].st.status, DOMAIN_STATUS_READ, "played counts as read");
    cr_assert_eq(C.ev[4].kind, CHANNELS_EVENT_NOTICE);
    cr_assert_str_eq(C.ev[4].notice, "status_other");
    cr_assert_eq(C.ev[5].st.status, DOMAIN_STATUS_SENT);
    cr_assert_str_eq(C.ev[5].st.recipient_id, "");
    cr_assert_str_eq(C.ev[6].notice, "error");
    collected_free(&C);

    parse_ok(CHANNEL_WHATSAPP,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
             "\"message_template_status_update\",\"value\":{\"event\":\"APPROVED\"}}]}]}",
             &C);
    cr_assert_eq(C.n, 1);
    cr_assert_str_eq(C.ev[0].notice, "change");
    cr_assert_str_eq(C.ev[0].account, "");
}

Test(convert_wa, contact_name_matches_wa_id)
{
    const struct domain_message *m = wa_one(
        WA_HEAD
        "\"contacts\":[{\"profile\":{\"name\":\"Other\"},\"wa_id\":\"1999\"},{\"profile\":"
        "{\"name\":\"Right\"},\"wa_id\":\"16505551234\"}],\"messages\":[{\"from\":"
        "\"16505551234\",\"id\":\"wamid.N\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}]" WA_TAIL);
    cr_assert_str_eq(m->contact_name, "Right");
    collected_free(&C);
    /* Two contacts, none matching: no guess. */
    m = wa_one(WA_HEAD "\"contacts\":[{\"profile\":{\"name\":\"A\"},\"wa_id\":\"1\"},{\"profile\":"
                       "{\"name\":\"B\"},\"wa_id\":\"2\"}],\"messages\":[{\"from\":\"3\",\"id\":"
                       "\"wamid.N\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}]" WA_TAIL);
    cr_assert_null(m->contact_name);
    collected_free(&C);
    /* A non-numeric sender id is not a phone. */
    m = wa_one(WA_HEAD "\"messages\":[{\"from\":\"BSUID.abc\",\"id\":\"wamid.N\",\"type\":\"text\","
                       "\"text\":{\"body\":\"x\"}}]" WA_TAIL);
    cr_assert_str_eq(m->contact_id, "BSUID.abc");
    cr_assert_null(m->contact_phone);
}

Test(convert_wa, long_values_are_bounded)
{
    /* A 300-byte wamid becomes sha256:<hex>; a 300-byte name is cut. */
    char id[301], name[301];
    memset(id, 'w', 300);
    id[300] = '\0';
    memset(name, 'n', 300);
    name[300] = '\0';
    char *body =
        xasprintf(WA_HEAD "\"contacts\":[{\"profile\":{\"name\":\"%s\"},\"wa_id\":\"1\"}],"
                          "\"messages\":[{\"from\":\"1\",\"id\":\"%s\",\"type\":\"text\","
                          "\"text\":{\"body\":\"x\"},\"context\":{\"id\":\"%s\"}}]" WA_TAIL,
                  name, id, id);
    const struct domain_message *m = wa_one(body);
    char want[128];
    hash_key("sha256", id, 300, want);
    cr_assert_str_eq(m->provider_message_id, want);
    cr_assert_str_eq(m->reply_to, want, "replies to long ids hash the same way");
    cr_assert_eq(strlen(m->contact_name), DOMAIN_NAME_MAX);
    free(body);
    collected_free(&C);

    body = xasprintf(WA_HEAD "\"statuses\":[{\"id\":\"%s\",\"status\":\"sent\"}]" WA_TAIL, id);
    parse_ok(CHANNEL_WHATSAPP, body, &C);
    cr_assert_str_eq(C.ev[0].st.provider_message_id, want);
    free(body);
}

static int stop_at_second(void *arg, const struct channels_event *ev)
{
    (void)ev;
    int *n = arg;
    return ++*n == 2 ? 42 : 0;
}

Test(convert_wa, errors_and_callback_stop)
{
    struct channels_parse_error err;
    int n = 0;
    const char *two = WA_HEAD "\"statuses\":[{\"id\":\"a\",\"status\":\"sent\"},{\"id\":\"b\","
                              "\"status\":\"sent\"},{\"id\":\"c\",\"status\":\"sent\"}]" WA_TAIL;
    cr_assert_eq(channels_parse(CHANNEL_WHATSAPP, two, strlen(two), stop_at_second, &n, &err), 42);
    cr_assert_eq(n, 2, "the walk stops at the callback's word");

    const char *bad[][2] = {
        {"", "empty_body"},
        {"{", "invalid_json"},
        {"[]", "not_object"},
        {"{\"object\":\"instagram\",\"entry\":[{}]}", "wrong_object"},
        {"{\"object\":\"whatsapp_business_account\",\"entry\":[]}", "missing_entry"},
        {WA_HEAD "\"messages\":[{\"from\":\"1\"}]" WA_TAIL, "invalid_message"},
        {WA_HEAD "\"statuses\":[{\"id\":\"x\"}]" WA_TAIL, "invalid_status"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        C.n = 0;
        int rc =
            channels_parse(CHANNEL_WHATSAPP, bad[i][0], strlen(bad[i][0]), collect_one, &C, &err);
        cr_assert_eq(rc, SB_EPARSE, "case %zu: %d", i, rc);
        cr_assert_str_eq(err.reason, bad[i][1]);
        cr_assert_neq(err.detail[0], '\0');
        cr_assert_eq(C.n, 0, "nothing reported before a shape error");
    }
    cr_assert_eq(channels_parse(CHANNEL_WHATSAPP, "{}", 2, NULL, NULL, &err), -EINVAL);
    cr_assert_eq(channels_parse(CHANNEL_WHATSAPP, NULL, 3, collect_one, &C, NULL), -EINVAL);
    cr_assert_eq(channels_parse((enum channel_type)9, "{}", 2, collect_one, &C, NULL), -EINVAL);
    cr_assert_eq(channels_parse(CHANNEL_WHATSAPP, "{", 1, collect_one, &C, NULL), SB_EPARSE,
                 "err may be NULL");
}
