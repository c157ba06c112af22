/* test_outbound.c - send side of the channels: text limits and splitting,
 * send URLs, WhatsApp and Instagram request bodies (exact bytes, escaping,
 * limits, failures leave the buffer alone), and send responses: the
 * wa_send_ok / wa_send_error_130429 fixtures, Instagram, errors without a
 * Graph envelope, network failures. */
#include "helpers.h"

#include <jansson.h>

static char *repeat(const char *unit, size_t times)
{
    size_t n = strlen(unit);
    char *s = malloc(n * times + 1);
    cr_assert_not_null(s);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * n, unit, n);
    s[n * times] = '\0';
    return s;
}

static struct sb_str view(const char *s)
{
    return (struct sb_str){s, strlen(s)};
}

Test(outbound, limits, .timeout = 30)
{
    cr_assert_eq(channels_text_limit(CHANNEL_WHATSAPP), 4096);
    cr_assert_eq(channels_text_limit(CHANNEL_INSTAGRAM), 999);
    cr_assert_eq(channels_text_limit(CHANNEL_WEB), 4096);
    cr_assert_eq(channels_text_limit((enum channel_type)7), 0);
}

Test(outbound, split_per_channel, .timeout = 30)
{
    /* 2500 words of "word " = 12500 bytes: WhatsApp needs 4 parts, Instagram 13+. */
    char *text = repeat("word ", 2500);
    struct sb_str parts[DOMAIN_SPLIT_MAX_PARTS];
    size_t n;
    bool trunc;
    cr_assert_eq(channels_text_split(CHANNEL_WHATSAPP, text, strlen(text), parts, &n, &trunc), 0);
    cr_assert_eq(n, 4);
    cr_assert_not(trunc);
    for (size_t i = 0; i < n; i++) {
        cr_assert_leq(parts[i].len, 4096);
        cr_assert_eq(parts[i].ptr[parts[i].len - 1], 'd', "cut between words");
    }
    cr_assert_eq(channels_text_split(CHANNEL_INSTAGRAM, text, strlen(text), parts, &n, &trunc), 0);
    cr_assert_eq(n, DOMAIN_SPLIT_MAX_PARTS);
    cr_assert(trunc, "12500 characters do not fit 10 Instagram messages");
    for (size_t i = 0; i < n; i++)
        cr_assert_leq(parts[i].len, 999);
    cr_assert_eq(channels_text_split((enum channel_type)7, text, 5, parts, &n, &trunc), -EINVAL);
    cr_assert_eq(n, 0);
    free(text);
}

Test(outbound, send_url, .timeout = 30)
{
    struct sb_buf b;
    sb_buf_init(&b, 4096);
    cr_assert_eq(channels_send_url(&b, "https://graph.facebook.com", "v21.0", "106540352242922"),
                 0);
    cr_assert_str_eq(b.data, "https://graph.facebook.com/v21.0/106540352242922/messages");
    sb_buf_reset(&b);
    cr_assert_eq(channels_send_url(&b, "http://127.0.0.1:4000//", "v19.0", "me"), 0);
    cr_assert_str_eq(b.data, "http://127.0.0.1:4000/v19.0/me/messages");
    sb_buf_reset(&b);
    static const char *const bad[][3] = {
        {"graph.facebook.com", "v21.0", "1"},
        {"https://g", "v21.0/../x", "1"},
        {"https://g", "v21.0", "1/2"},
        {"https://g", "", "1"},
        {"https://g", "v21.0", ".."},
        {"https://g?x=1", "v21.0", "1"},
        {"ftp://g", "v21.0", "1"},
        {"https://g", "v21.0", "a b"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(channels_send_url(&b, bad[i][0], bad[i][1], bad[i][2]), -EINVAL, "case %zu",
                     i);
        cr_assert_eq(b.len, 0);
    }
    cr_assert_eq(channels_send_url(&b, NULL, "v1", "1"), -EINVAL);
    sb_buf_cleanup(&b);
    sb_buf_init(&b, 10);
    cr_assert_eq(channels_send_url(&b, "https://graph.facebook.com", "v21.0", "1"), SB_ELIMIT);
    cr_assert_eq(b.len, 0);
    sb_buf_cleanup(&b);
}

Test(outbound, whatsapp_body_exact, .timeout = 30)
{
    struct sb_buf b;
    sb_buf_init(&b, 65536);
    cr_assert_eq(channels_wa_text_body(&b, "16505551234",
                                       view("Thanks! Your order ships tomorrow."), NULL, false),
                 0);
    cr_assert_str_eq(b.data, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":"
                             "\"individual\",\"to\":\"16505551234\",\"type\":\"text\",\"text\":{"
                             "\"preview_url\":false,\"body\":\"Thanks! Your order ships "
                             "tomorrow.\"}}");
    sb_buf_reset(&b);
    cr_assert_eq(channels_wa_text_body(&b, "+16505551234", view("Ol\xC3\xA1 \"you\"\n\\"),
                                       "wamid.TEST_TEXT_0001", true),
                 0);
    json_error_t jerr;
    json_t *j = json_loads(b.data, 0, &jerr);
    cr_assert_not_null(j, "%s", jerr.text);
    cr_assert_str_eq(json_string_value(json_object_get(j, "to")), "+16505551234");
    json_t *text = json_object_get(j, "text");
    cr_assert_str_eq(json_string_value(json_object_get(text, "body")), "Ol\xC3\xA1 \"you\"\n\\");
    cr_assert(json_is_true(json_object_get(text, "preview_url")));
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(j, "context"), "message_id")),
        "wamid.TEST_TEXT_0001");
    json_decref(j);
    sb_buf_cleanup(&b);
}

Test(outbound, whatsapp_body_limits_and_refusals, .timeout = 30)
{
    struct sb_buf b;
    sb_buf_init(&b, 65536);
    cr_assert_eq(sb_buf_append_str(&b, "PREFIX"), 0);
    char *max = repeat("x", 4096);
    char *over = repeat("x", 4097);
    char *emoji = repeat("\xF0\x9F\x98\x80", 2049); /* 4098 units in 8196 bytes */
    cr_assert_eq(channels_wa_text_body(&b, "1", view(max), NULL, false), 0);
    b.len = 6;
    b.data[6] = '\0';
    cr_assert_eq(channels_wa_text_body(&b, "1", view(over), NULL, false), SB_ELIMIT);
    cr_assert_eq(channels_wa_text_body(&b, "1", view(emoji), NULL, false), SB_ELIMIT,
                 "astral characters count two units");
    cr_assert_eq(channels_wa_text_body(&b, "1", view(""), NULL, false), -EINVAL);
    cr_assert_eq(channels_wa_text_body(&b, "1", (struct sb_str){NULL, 3}, NULL, false), -EINVAL);
    cr_assert_eq(channels_wa_text_body(&b, "", view("x"), NULL, false), -EINVAL);
    cr_assert_eq(channels_wa_text_body(&b, NULL, view("x"), NULL, false), -EINVAL);
    cr_assert_eq(channels_wa_text_body(&b, "1 2", view("x"), NULL, false), -EINVAL);
    cr_assert_eq(channels_wa_text_body(&b, "1\"}", view("x"), NULL, false), 0,
                 "odd but printable ids are escaped, not refused");
    b.len = 6;
    b.data[6] = '\0';
    cr_assert_eq(channels_wa_text_body(&b, "1", view("x"), "", false), -EINVAL);
    cr_assert_eq(channels_wa_text_body(NULL, "1", view("x"), NULL, false), -EINVAL);
    cr_assert_str_eq(b.data, "PREFIX", "failures leave the buffer as it was");
    sb_buf_cleanup(&b);

    /* The buffer's own limit. */
    sb_buf_init(&b, 100);
    cr_assert_eq(channels_wa_text_body(&b, "1", view(max), NULL, false), SB_ELIMIT);
    cr_assert_eq(b.len, 0);
    sb_buf_cleanup(&b);
    free(max);
    free(over);
    free(emoji);
}

Test(outbound, invalid_utf8_is_replaced, .timeout = 30)
{
    struct sb_buf b;
    sb_buf_init(&b, 4096);
    cr_assert_eq(channels_wa_text_body(&b, "1",
                                       view("a\xFF"
                                            "b"),
                                       NULL, false),
                 0);
    json_t *j = json_loads(b.data, 0, NULL);
    cr_assert_not_null(j, "always valid JSON: %s", b.data);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "text"), "body")),
                     "a\xEF\xBF\xBD"
                     "b");
    json_decref(j);
    sb_buf_cleanup(&b);
}

Test(outbound, instagram_body, .timeout = 30)
{
    struct sb_buf b;
    sb_buf_init(&b, 65536);
    cr_assert_eq(channels_ig_text_body(&b, "1234567890123456", view("Hello")), 0);
    cr_assert_str_eq(
        b.data, "{\"recipient\":{\"id\":\"1234567890123456\"},\"message\":{\"text\":\"Hello\"}}");
    sb_buf_reset(&b);
    char *max = repeat("y", 999);
    char *over = repeat("y", 1000);
    cr_assert_eq(channels_ig_text_body(&b, "1", view(max)), 0);
    sb_buf_reset(&b);
    cr_assert_eq(channels_ig_text_body(&b, "1", view(over)), SB_ELIMIT, "less than 1000");
    cr_assert_eq(channels_ig_text_body(&b, "", view("x")), -EINVAL);
    cr_assert_eq(channels_ig_text_body(&b, "1", view("")), -EINVAL);
    cr_assert_eq(b.len, 0);
    free(max);
    free(over);
    sb_buf_cleanup(&b);
}

/* ---------------------------------------------------------------- responses */

static struct channels_send_result parse_resp(enum channel_type t, long status, const char *body)
{
    struct channels_send_result r;
    memset(&r, 0x5a, sizeof r);
    cr_assert_eq(channels_send_response_parse(t, status, body, body ? strlen(body) : 0, &r), 0);
    cr_assert_eq(r.http_status, status);
    cr_assert_not_null(r.error_class.reason);
    return r;
}

Test(send_response, whatsapp_ok_fixture, .timeout = 30)
{
    char *body = fixture("wa_send_ok.json", NULL);
    struct channels_send_result r = parse_resp(CHANNEL_WHATSAPP, 200, body);
    cr_assert(r.ok);
    cr_assert_str_eq(r.message_id, "wamid.TEST_OUT_0001");
    cr_assert_str_eq(r.recipient_id, "16505551234");
    cr_assert_eq(r.code, DOMAIN_NO_CODE);
    cr_assert_str_empty(r.error_message);
    free(body);
}

Test(send_response, whatsapp_130429_fixture, .timeout = 30)
{
    char *body = fixture("wa_send_error_130429.json", NULL);
    struct channels_send_result r = parse_resp(CHANNEL_WHATSAPP, 400, body);
    cr_assert_not(r.ok);
    cr_assert_str_empty(r.message_id);
    cr_assert_eq(r.code, 130429);
    cr_assert_eq(r.subcode, DOMAIN_NO_CODE);
    cr_assert_str_eq(r.error_type, "OAuthException");
    cr_assert_str_eq(r.error_message, "(#130429) Rate limit hit");
    cr_assert_str_eq(r.error_details, "Message failed to send because there were too many "
                                      "messages sent from this phone number in a short period of "
                                      "time");
    cr_assert_str_eq(r.fbtrace_id, "AtestTRACEid0001");
    cr_assert_eq(r.error_class.retry, DOMAIN_RETRY);
    /* The same envelope with HTTP 429 or 200 is still an error of that code. */
    r = parse_resp(CHANNEL_WHATSAPP, 200, body);
    cr_assert_not(r.ok);
    cr_assert_eq(r.code, 130429);
    free(body);
}

Test(send_response, classified_graph_errors, .timeout = 30)
{
    struct channels_send_result r = parse_resp(
        CHANNEL_WHATSAPP, 400,
        "{\"error\":{\"message\":\"(#131056) (Business Account, Consumer Account) pair rate limit "
        "hit\",\"type\":\"OAuthException\",\"code\":131056,\"error_subcode\":2494100,"
        "\"fbtrace_id\":\"t\"}}");
    cr_assert_eq(r.error_class.retry, DOMAIN_RETRY_RECIPIENT);
    cr_assert_eq(r.subcode, 2494100);
    r = parse_resp(CHANNEL_WHATSAPP, 400,
                   "{\"error\":{\"message\":\"(#131047) Re-engagement message\",\"code\":131047,"
                   "\"error_data\":{\"details\":\"24h\"}}}");
    cr_assert_eq(r.error_class.retry, DOMAIN_FAIL);
    cr_assert_str_eq(r.error_details, "24h");
    r = parse_resp(CHANNEL_INSTAGRAM, 401,
                   "{\"error\":{\"message\":\"Invalid OAuth access token\",\"type\":"
                   "\"OAuthException\",\"code\":190,\"fbtrace_id\":\"x\"}}");
    cr_assert_eq(r.error_class.retry, DOMAIN_FAIL);
    cr_assert(r.error_class.alert);
    /* Instagram puts a string in error_data sometimes. */
    r = parse_resp(CHANNEL_INSTAGRAM, 400,
                   "{\"error\":{\"message\":\"x\",\"code\":551,\"error_data\":\"not available\"}}");
    cr_assert_str_eq(r.error_details, "not available");
    /* An envelope without a code: judged by status. */
    r = parse_resp(CHANNEL_WHATSAPP, 502, "{\"error\":{\"message\":\"bad gateway\"}}");
    cr_assert_eq(r.code, DOMAIN_NO_CODE);
    cr_assert_eq(r.error_class.retry, DOMAIN_RETRY);
}

Test(send_response, instagram_ok, .timeout = 30)
{
    struct channels_send_result r = parse_resp(
        CHANNEL_INSTAGRAM, 200, "{\"recipient_id\":\"1234567890123456\",\"message_id\":\"aWdf\"}");
    cr_assert(r.ok);
    cr_assert_str_eq(r.message_id, "aWdf");
    cr_assert_str_eq(r.recipient_id, "1234567890123456");
    /* A WhatsApp-shaped success is no Instagram success. */
    r = parse_resp(CHANNEL_INSTAGRAM, 200, "{\"messages\":[{\"id\":\"wamid.X\"}]}");
    cr_assert_not(r.ok);
}

Test(send_response, no_envelope, .timeout = 30)
{
    struct channels_send_result r = parse_resp(CHANNEL_WHATSAPP, 0, NULL);
    cr_assert_not(r.ok);
    cr_assert_eq(r.error_class.retry, DOMAIN_RETRY, "network error");
    r = parse_resp(CHANNEL_WHATSAPP, 503, "<html>Service Unavailable</html>");
    cr_assert_eq(r.error_class.retry, DOMAIN_RETRY);
    r = parse_resp(CHANNEL_WHATSAPP, 404, "<html>Not Found</html>");
    cr_assert_eq(r.error_class.retry, DOMAIN_FAIL);
    r = parse_resp(CHANNEL_WHATSAPP, 200, "{\"messaging_product\":\"whatsapp\"}");
    cr_assert_not(r.ok, "2xx without an id");
    cr_assert_eq(r.error_class.retry, DOMAIN_FAIL);
    r = parse_resp(CHANNEL_WHATSAPP, 200, "{\"messages\":[{\"id\":\"\"}]}");
    cr_assert_not(r.ok);
    r = parse_resp(CHANNEL_WHATSAPP, 200, "{\"messages\":[{\"id\":42}]}");
    cr_assert_not(r.ok);
    r = parse_resp(CHANNEL_WHATSAPP, 200, "");
    cr_assert_not(r.ok);
    /* Long values are bounded, never overflow. */
    char *big = repeat("z", 5000);
    char *body = xasprintf("{\"error\":{\"message\":\"%s\",\"code\":1,\"error_data\":{\"details\":"
                           "\"%s\"},\"fbtrace_id\":\"%s\",\"type\":\"%s\"}}",
                           big, big, big, big);
    r = parse_resp(CHANNEL_WHATSAPP, 500, body);
    cr_assert_eq(strlen(r.error_message), CHANNELS_GRAPH_MSG_MAX);
    cr_assert_eq(strlen(r.error_details), CHANNELS_GRAPH_DETAILS_MAX);
    cr_assert_eq(strlen(r.fbtrace_id), CHANNELS_GRAPH_SHORT_MAX);
    free(body);
    body = xasprintf("{\"messages\":[{\"id\":\"%.300s\"}]}", big);
    r = parse_resp(CHANNEL_WHATSAPP, 200, body);
    cr_assert(r.ok);
    cr_assert_eq(strncmp(r.message_id, "sha256:", 7), 0, "long ids hash as in webhooks");
    free(body);
    free(big);
}

Test(send_response, bad_arguments, .timeout = 30)
{
    struct channels_send_result r;
    cr_assert_eq(channels_send_response_parse(CHANNEL_WHATSAPP, 200, "{}", 2, NULL), -EINVAL);
    cr_assert_eq(channels_send_response_parse(CHANNEL_WEB, 200, "{}", 2, &r), -EINVAL);
    cr_assert_eq(channels_send_response_parse(CHANNEL_WHATSAPP, 200, NULL, 2, &r), -EINVAL);
}
