/* test_web.c - web widget messages (docs/web-widget.md): the accepted forms,
 * their key, and one refusal per rule with a detail that names the field. */
#include "helpers.h"

#define IDS "\"visitor_id\":\"v_1\",\"message_id\":\"msg-1\""

static void web_fails(const char *body, const char *needle)
{
    char detail[256];
    inspect_fails_n(CHANNEL_WEB, body, strlen(body), "invalid_web_message", detail);
    cr_assert(strstr(detail, needle), "detail \"%s\" should mention \"%s\" (body %s)", detail,
              needle, body);
}

Test(web, accepted_forms, .timeout = 30)
{
    const char *good[] = {
        "{" IDS ",\"type\":\"text\",\"text\":\"Olá, tudo bem?\"}",
        "{" IDS ",\"type\":\"text\",\"text\":\"hi\",\"timestamp\":1739321024123,"
        "\"visitor\":{\"name\":\"Ana\",\"email\":\"ana@example.com\"}}",
        "{\"type\":\"text\",\"text\":\"x\"," IDS ",\"visitor\":{}}",
        "{" IDS ",\"type\":\"image\",\"url\":\"https://cdn.example.com/a.png\"}",
        "{" IDS ",\"type\":\"image\",\"url\":\"HTTPS://cdn.example.com/a.png?x=1#f\","
        "\"caption\":\"receipt\"}",
        "{" IDS ",\"type\":\"file\",\"url\":\"https://example.com:8443/doc.pdf\"}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct channels_inspection r = inspect_ok(CHANNEL_WEB, good[i]);
        cr_assert_str_eq(r.dedup_key, "web:m:v_1:msg-1");
        cr_assert_str_eq(r.visitor_id, "v_1");
        cr_assert_eq(r.messages, 1);
        cr_assert_eq(r.statuses + r.echoes + r.others, 0);
    }
}

Test(web, long_ids_are_hashed_into_the_key, .timeout = 30)
{
    char id[CHANNELS_WEB_ID_MAX + 1];
    memset(id, 'a', CHANNELS_WEB_ID_MAX);
    id[CHANNELS_WEB_ID_MAX] = '\0';
    char *body = xasprintf("{\"visitor_id\":\"%s\",\"message_id\":\"%s\",\"type\":\"text\","
                           "\"text\":\"x\"}",
                           id, id);
    struct channels_inspection r = inspect_ok(CHANNEL_WEB, body);
    cr_assert_str_eq(r.visitor_id, id);
    char *item = xasprintf("web:m:%s:%s", id, id);
    char want[128];
    hash_key("sha256", item, strlen(item), want);
    cr_assert_str_eq(r.dedup_key, want);
    free(item);
    free(body);
}

Test(web, ids, .timeout = 30)
{
    web_fails("{\"message_id\":\"m\",\"type\":\"text\",\"text\":\"x\"}", "visitor_id");
    web_fails("{\"visitor_id\":\"v\",\"type\":\"text\",\"text\":\"x\"}", "message_id");
    web_fails("{\"visitor_id\":\"\",\"message_id\":\"m\",\"type\":\"text\",\"text\":\"x\"}",
              "visitor_id");
    web_fails("{\"visitor_id\":7,\"message_id\":\"m\",\"type\":\"text\",\"text\":\"x\"}",
              "visitor_id");
    web_fails("{\"visitor_id\":\"v 1\",\"message_id\":\"m\",\"type\":\"text\",\"text\":\"x\"}",
              "visitor_id");
    web_fails("{\"visitor_id\":\"v\",\"message_id\":\"m.1\",\"type\":\"text\",\"text\":\"x\"}",
              "message_id");
    web_fails("{\"visitor_id\":\"v\",\"message_id\":\"m:1\",\"type\":\"text\",\"text\":\"x\"}",
              "message_id");
    web_fails("{\"visitor_id\":\"v\",\"message_id\":\"\\u00e9\",\"type\":\"text\",\"text\":\"x\"}",
              "message_id");
    char id[CHANNELS_WEB_ID_MAX + 2];
    memset(id, 'a', CHANNELS_WEB_ID_MAX + 1);
    id[CHANNELS_WEB_ID_MAX + 1] = '\0';
    char *body = xasprintf("{\"visitor_id\":\"%s\",\"message_id\":\"m\",\"type\":\"text\","
                           "\"text\":\"x\"}",
                           id);
    web_fails(body, "visitor_id");
    free(body);
}

Test(web, type_and_text, .timeout = 30)
{
    web_fails("{" IDS ",\"text\":\"x\"}", "type");
    web_fails("{" IDS ",\"type\":\"audio\",\"url\":\"https://a/b\"}", "type");
    web_fails("{" IDS ",\"type\":1,\"text\":\"x\"}", "type");
    web_fails("{" IDS ",\"type\":\"text\"}", "\"text\"");
    web_fails("{" IDS ",\"type\":\"text\",\"text\":\"\"}", "\"text\"");
    web_fails("{" IDS ",\"type\":\"text\",\"text\":5}", "\"text\"");
    web_fails("{" IDS ",\"type\":\"text\",\"text\":\"x\",\"url\":\"https://a/b\"}", "url");
    web_fails("{" IDS ",\"type\":\"text\",\"text\":\"x\",\"caption\":\"c\"}", "caption");

    /* 4096 bytes pass (two-byte characters count as two), 4097 do not. */
    char text[6 * (CHANNELS_WEB_TEXT_MAX / 2) + 1]; /* "\\u00e9" per character */
    size_t at = 0;
    for (size_t i = 0; i < CHANNELS_WEB_TEXT_MAX / 2; i++)
        at += (size_t)snprintf(text + at, sizeof text - at, "\\u00e9");
    char *body = xasprintf("{" IDS ",\"type\":\"text\",\"text\":\"%s\"}", text);
    inspect_ok(CHANNEL_WEB, body);
    free(body);
    body = xasprintf("{" IDS ",\"type\":\"text\",\"text\":\"%sx\"}", text);
    web_fails(body, "too long");
    free(body);
}

Test(web, media, .timeout = 30)
{
    web_fails("{" IDS ",\"type\":\"image\"}", "url");
    web_fails("{" IDS ",\"type\":\"image\",\"url\":\"http://cdn.example.com/a.png\"}", "https");
    web_fails("{" IDS ",\"type\":\"file\",\"url\":\"ftp://example.com/a\"}", "https");
    web_fails("{" IDS ",\"type\":\"file\",\"url\":\"https://\"}", "url");
    web_fails("{" IDS ",\"type\":\"file\",\"url\":\"https:///path\"}", "url");
    web_fails("{" IDS ",\"type\":\"file\",\"url\":\"https://user@evil.example/\"}", "url");
    web_fails("{" IDS ",\"type\":\"file\",\"url\":\"https://a.example/b c\"}", "url");
    web_fails("{" IDS ",\"type\":\"file\",\"url\":\"https://a.example/\\u00e9\"}", "url");
    web_fails("{" IDS ",\"type\":\"file\",\"url\":[\"https://a.example/\"]}", "url");
    web_fails("{" IDS ",\"type\":\"image\",\"url\":\"https://a/b\",\"text\":\"x\"}", "text");
    web_fails("{" IDS ",\"type\":\"image\",\"url\":\"https://a/b\",\"caption\":\"\"}", "caption");

    char path[CHANNELS_WEB_URL_MAX + 1];
    memset(path, 'p', sizeof path - 1);
    path[sizeof path - 1] = '\0';
    char *body = xasprintf("{" IDS ",\"type\":\"file\",\"url\":\"https://a/%.*s\"}",
                           CHANNELS_WEB_URL_MAX - 10, path); /* exactly the limit */
    inspect_ok(CHANNEL_WEB, body);
    free(body);
    body = xasprintf("{" IDS ",\"type\":\"file\",\"url\":\"https://a/%.*s\"}",
                     CHANNELS_WEB_URL_MAX - 9, path);
    web_fails(body, "url");
    free(body);

    char caption[CHANNELS_WEB_CAPTION_MAX + 2];
    memset(caption, 'c', sizeof caption - 1);
    caption[sizeof caption - 1] = '\0';
    body = xasprintf("{" IDS ",\"type\":\"image\",\"url\":\"https://a/b\",\"caption\":\"%s\"}",
                     caption);
    web_fails(body, "caption");
    free(body);
}

Test(web, timestamp_and_visitor, .timeout = 30)
{
    const char *base = "{" IDS ",\"type\":\"text\",\"text\":\"x\",";
    const char *bad_ts[] = {"\"1739321024123\"", "-1", "0", "1.5", "253402300800000", "null"};
    for (size_t i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++) {
        char *body = xasprintf("%s\"timestamp\":%s}", base, bad_ts[i]);
        web_fails(body, "timestamp");
        free(body);
    }
    const char *bad_visitor[][2] = {
        {"[]", "visitor"},
        {"{\"phone\":\"1\"}", "phone"},
        {"{\"name\":\"\"}", "visitor.name"},
        {"{\"name\":1}", "visitor.name"},
        {"{\"email\":\"ana.example.com\"}", "visitor.email"},
        {"{\"email\":\"@example.com\"}", "visitor.email"},
        {"{\"email\":\"ana@\"}", "visitor.email"},
        {"{\"email\":\"a@b@c\"}", "visitor.email"},
        {"{\"email\":\"ana @example.com\"}", "visitor.email"},
        {"{\"email\":null}", "visitor.email"},
    };
    for (size_t i = 0; i < sizeof bad_visitor / sizeof bad_visitor[0]; i++) {
        char *body = xasprintf("%s\"visitor\":%s}", base, bad_visitor[i][0]);
        web_fails(body, bad_visitor[i][1]);
        free(body);
    }
    char name[CHANNELS_WEB_NAME_MAX + 2];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    char *body = xasprintf("%s\"visitor\":{\"name\":\"%s\"}}", base, name);
    web_fails(body, "visitor.name");
    free(body);
}

Test(web, unknown_fields_and_non_objects, .timeout = 30)
{
    web_fails("{" IDS ",\"type\":\"text\",\"text\":\"x\",\"admin\":true}", "admin");
    /* A hostile field name is quoted back shortened and printable. */
    char *body = xasprintf("{" IDS ",\"type\":\"text\",\"text\":\"x\",\"%s\\u0001\":1}",
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    char detail[256];
    inspect_fails_n(CHANNEL_WEB, body, strlen(body), "invalid_web_message", detail);
    cr_assert(strstr(detail, "unknown field"), "%s", detail);
    cr_assert(strstr(detail, "..."), "%s", detail);
    for (const char *p = detail; *p; p++)
        cr_assert((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f, "%s", detail);
    free(body);

    inspect_fails(CHANNEL_WEB, "[{\"visitor_id\":\"v\"}]", "not_object");
    inspect_fails(CHANNEL_WEB, "{}", "invalid_web_message");
    size_t len;
    char *wa = fixture("ig_text.json", &len);
    inspect_fails_n(CHANNEL_WEB, wa, len, "invalid_web_message", NULL);
    free(wa);
}
