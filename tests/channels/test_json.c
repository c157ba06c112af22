/* test_json.c - the intake of raw bodies: the nesting-depth scan (strings and
 * escapes, 64 accepted / 65 refused, very deep input refused without
 * recursion), empty, invalid, truncated and non-object bodies. */
#include "helpers.h"

/* n opening brackets then n closing ones (heap). */
static char *nest(size_t n, char open, char close)
{
    char *s = malloc(2 * n + 1);
    cr_assert_not_null(s);
    memset(s, open, n);
    memset(s + n, close, n);
    s[2 * n] = '\0';
    return s;
}

Test(depth, scan_rules, .timeout = 30)
{
    cr_assert_eq(channels_json_check_depth(NULL, 0, 1), 0);
    cr_assert_eq(channels_json_check_depth(NULL, 3, 1), -EINVAL);
    cr_assert_eq(channels_json_check_depth("", 0, 0), 0);
    cr_assert_eq(channels_json_check_depth("[{}]", 4, 2), 0);
    cr_assert_eq(channels_json_check_depth("[{}]", 4, 1), SB_ELIMIT);
    cr_assert_eq(channels_json_check_depth("[][][]", 6, 1), 0);
    /* Brackets inside strings do not count, escaped quotes do not end them. */
    const char *in_string = "[\"[[[{{{\"]";
    cr_assert_eq(channels_json_check_depth(in_string, strlen(in_string), 1), 0);
    const char *escaped = "[\"\\\"[[[\"]";
    cr_assert_eq(channels_json_check_depth(escaped, strlen(escaped), 1), 0);
    /* An escaped backslash does not escape the quote after it. */
    const char *backslash = "[\"\\\\\",[[]]]";
    cr_assert_eq(channels_json_check_depth(backslash, strlen(backslash), 3), 0);
    cr_assert_eq(channels_json_check_depth(backslash, strlen(backslash), 2), SB_ELIMIT);
    /* Stray closers do not buy extra depth. */
    cr_assert_eq(channels_json_check_depth("]]]][[", 6, 2), 0);
    cr_assert_eq(channels_json_check_depth("]]]][[", 6, 1), SB_ELIMIT);
    /* Only len bytes are read: the bracket after them does not count. */
    cr_assert_eq(channels_json_check_depth("[]{", 2, 1), 0);
}

Test(depth, limit_64_through_inspect, .timeout = 30)
{
    /* The WhatsApp envelope down to value is 6 levels: 58 more make 64. */
    for (size_t extra = 57; extra <= 59; extra++) {
        char *deep = nest(extra, '[', ']');
        char *body = xasprintf("{\"object\":\"whatsapp_business_account\",\"entry\":[{"
                               "\"changes\":[{\"value\":{\"x\":%s,\"messages\":"
                               "[{\"id\":\"wamid.D\"}]}}]}]}",
                               deep);
        if (extra <= 58) {
            struct channels_inspection r = inspect_ok(CHANNEL_WHATSAPP, body);
            cr_assert_str_eq(r.dedup_key, "wa:m:wamid.D");
        } else {
            inspect_fails(CHANNEL_WHATSAPP, body, "too_deep");
        }
        free(body);
        free(deep);
    }
    /* The scan runs before any shape check. */
    char *objs = malloc(64 * 5 + 64 + 2);
    cr_assert_not_null(objs);
    size_t at = 0;
    for (int i = 0; i < 64; i++)
        at += (size_t)snprintf(objs + at, 6, "{\"a\":");
    objs[at] = '1';
    memset(objs + at + 1, '}', 64);
    objs[at + 65] = '\0';
    inspect_fails(CHANNEL_WEB, objs, "invalid_web_message"); /* 64 levels: parsed */
    free(objs);
    char *arr65 = nest(65, '[', ']');
    inspect_fails(CHANNEL_INSTAGRAM, arr65, "too_deep");
    free(arr65);
}

Test(depth, very_deep_input_is_refused, .timeout = 30)
{
    size_t n = 100000;
    char *open = malloc(n);
    cr_assert_not_null(open);
    memset(open, '[', n);
    /* Unbalanced, not NUL-terminated: exactly n bytes. */
    inspect_fails_n(CHANNEL_WHATSAPP, open, n, "too_deep", NULL);
    memset(open, '{', n);
    inspect_fails_n(CHANNEL_WEB, open, n, "too_deep", NULL);
    free(open);
    char *balanced = nest(n, '[', ']');
    inspect_fails(CHANNEL_INSTAGRAM, balanced, "too_deep");
    free(balanced);
    /* 100k brackets inside one string are just text. */
    char *str = malloc(n + 128);
    cr_assert_not_null(str);
    int k = snprintf(str, 64, "{\"visitor_id\":\"");
    memset(str + k, '[', n);
    snprintf(str + k + n, 64, "\"}");
    inspect_fails(CHANNEL_WEB, str, "invalid_web_message");
    free(str);
}

Test(json, empty_and_invalid, .timeout = 30)
{
    inspect_fails_n(CHANNEL_WHATSAPP, NULL, 0, "empty_body", NULL);
    inspect_fails_n(CHANNEL_WHATSAPP, "", 0, "empty_body", NULL);
    const char *invalid[] = {"{",
                             "}",
                             " ",
                             "{\"object\":}",
                             "{} x",
                             "{}{}",
                             "{'a':1}",
                             "{\"a\":1,}",
                             "{\"a\":01}",
                             "{\"a\":\"\\u0000\"}",
                             "{\"a\":\"\\ud800\"}",
                             "{\"a\":\"\xff\"}",
                             "{\"a\":\"\x01\"}",
                             "{\"a\":99999999999999999999999}",
                             "nul",
                             "{\"a\":NaN}"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        for (enum channel_type t = CHANNEL_WHATSAPP; t <= CHANNEL_WEB; t++)
            inspect_fails(t, invalid[i], "invalid_json");
    /* A raw NUL byte inside the body. */
    inspect_fails_n(CHANNEL_WHATSAPP, "{\"a\":\0}", 7, "invalid_json", NULL);
    char detail[256];
    inspect_fails_n(CHANNEL_WHATSAPP, "{\"a\" 1}", 7, "invalid_json", detail);
    cr_assert(strstr(detail, "byte"), "%s", detail);
}

Test(json, non_objects, .timeout = 30)
{
    const char *scalars[] = {"[]",   "[{\"object\":\"instagram\"}]", "42", "\"s\"", "null", "true",
                             " 1.5 "};
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++)
        for (enum channel_type t = CHANNEL_WHATSAPP; t <= CHANNEL_WEB; t++)
            inspect_fails(t, scalars[i], "not_object");
}

Test(json, every_truncation_of_a_fixture_fails, .timeout = 60)
{
    const char *names[] = {"wa_text.json", "ig_text.json"};
    enum channel_type types[] = {CHANNEL_WHATSAPP, CHANNEL_INSTAGRAM};
    for (size_t f = 0; f < 2; f++) {
        size_t len;
        char *body = fixture(names[f], &len);
        for (size_t n = 0; n < len; n++) {
            char *cut = malloc(n ? n : 1); /* exact size: ASan sees any over-read */
            cr_assert_not_null(cut);
            memcpy(cut, body, n);
            inspect_fails_n(types[f], cut, n, n ? "invalid_json" : "empty_body", NULL);
            free(cut);
        }
        free(body);
    }
}

Test(json, duplicate_keys_and_whitespace_are_tolerated, .timeout = 30)
{
    struct channels_inspection r = inspect_ok(
        CHANNEL_WHATSAPP, " \n{\"object\":\"x\",\"object\":\"whatsapp_business_account\","
                          "\"entry\":[{\"changes\":[{\"value\":{\"messages\":"
                          "[{\"id\":\"wamid.1\"}]}}]}]}\r\n\t");
    cr_assert_str_eq(r.dedup_key, "wa:m:wamid.1");
}
