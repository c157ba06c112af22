/* test_json.c - the intake of raw bodies: the nesting-depth scan (strings and
 * escapes, 64 accepted / 65 refused, very deep input refused without
 * recursion), empty, invalid, truncated and non-object bodies; WhatsApp and
 * Instagram bodies are read by the tape parser, which must accept exactly
 * what jansson accepts (held against it on generated numbers, escapes and
 * UTF-8) and decode escaped keys and ids as jansson does. */
#include <jansson.h>

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

/* The tape parser and jansson agree on every value: valid for one iff valid
 * for the other. Tokens come from alphabets that reach the number grammar,
 * int64 and double overflow, escapes, surrogates and UTF-8 edge bytes. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void agree(const char *body, size_t len)
{
    char reason[CHANNELS_REASON_MAX], detail[256];
    struct channels_inspection out;
    int rc = channels_inspect(CHANNEL_WHATSAPP, body, len, &out, reason, sizeof reason, detail,
                              sizeof detail);
    json_t *j = json_loadb(body, len, JSON_DECODE_ANY, NULL);
    bool tape_valid = rc == 0 || strcmp(reason, "invalid_json") != 0;
    cr_assert_eq(tape_valid, j != NULL, "tape says %s (%s), jansson %s: %.*s", reason, detail,
                 j ? "valid" : "invalid", (int)len, body);
    json_decref(j);
}

Test(tape, agrees_with_jansson_on_generated_values, .timeout = 120)
{
    static const char *const number_parts[] = {"0",
                                               "1",
                                               "9",
                                               "-",
                                               "+",
                                               ".",
                                               "e",
                                               "E",
                                               "00",
                                               "922337203685477580",
                                               "7",
                                               "8",
                                               "9",
                                               "1e308",
                                               "1e309",
                                               "e-400",
                                               "17976931348623157",
                                               "99999",
                                               " "};
    static const char *const string_parts[] = {"a",
                                               "\\",
                                               "\\\"",
                                               "\\u",
                                               "0041",
                                               "d83d",
                                               "de00",
                                               "DBFF",
                                               "dc00",
                                               "0000",
                                               "\\n",
                                               "\\x",
                                               "/",
                                               "\x01",
                                               "\x7f",
                                               "\xc3\xa9",
                                               "\xc0\xaf",
                                               "\xe0\x80\xaf",
                                               "\xed\xa0\x80",
                                               "\xf0\x9f\x98\x80",
                                               "\xf4\x90\x80\x80",
                                               "\xff",
                                               "\xc3",
                                               "\"",
                                               "\t"};
    char body[256];
    uint64_t st = 0x7a9eULL;
    for (int run = 0; run < 30000; run++) {
        bool str = run % 2;
        const char *const *parts = str ? string_parts : number_parts;
        size_t np = str ? sizeof string_parts / sizeof string_parts[0]
                        : sizeof number_parts / sizeof number_parts[0];
        size_t n = (size_t)snprintf(body, sizeof body, "{\"a\":%s", str ? "\"" : "");
        for (size_t k = 1 + rnd(&st) % 5; k > 0; k--) {
            const char *p = parts[rnd(&st) % np];
            size_t pl = strlen(p);
            memcpy(body + n, p, pl);
            n += pl;
        }
        n += (size_t)snprintf(body + n, sizeof body - n, "%s}", str ? "\"" : "");
        agree(body, n);
    }
    /* Boundaries, by hand. */
    static const char *const edges[] = {"{\"a\":9223372036854775807}",
                                        "{\"a\":9223372036854775808}",
                                        "{\"a\":-9223372036854775808}",
                                        "{\"a\":-9223372036854775809}",
                                        "{\"a\":1.7976931348623157e308}",
                                        "{\"a\":1.8e308}",
                                        "{\"a\":0e99999}",
                                        "{\"a\":1e-99999}",
                                        "{\"a\":-0}",
                                        "{\"a\":-}",
                                        "{\"a\":1.}",
                                        "{\"a\":.5}",
                                        "{\"a\":\"\\ud83d\\ude00\"}",
                                        "{\"a\":\"\\ude00\"}",
                                        "{\"a\":\"\\ud83d\"}",
                                        "{\"a\":\"\\ud83d\\u0041\"}",
                                        "{\"a\":tru}",
                                        "{\"a\":truex}",
                                        "{\"a\":[1,]}",
                                        "{\"a\":[,1]}",
                                        "{\"a\":{\"b\"}}",
                                        "{\"a\":{,}}",
                                        "[]",
                                        "\"x\"",
                                        "{\"a\":1}  ",
                                        "\xef\xbb\xbf{}",
                                        "{\"a\" :\t[ ] , \"b\":{ }}"};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        agree(edges[i], strlen(edges[i]));
}

/* A raw NUL byte is never JSON. jansson's reader happens to skip one right
 * after a scalar; the tape refuses it wherever it is, as before inside strings. */
Test(tape, refuses_a_nul_byte_that_jansson_skips, .timeout = 30)
{
    static const struct {
        const char *body;
        size_t len;
        bool jansson_accepts;
    } cases[] = {
#define BODY(s) s, sizeof s - 1
        {BODY("{\"a\":1\0}"), true},     {BODY("[true\0]"), true},
        {BODY("[null\0,1]"), true},       {BODY("{\"a\":\"x\"\0}"), false},
        {BODY("[1\0\0]"), false},         {BODY("{\"a\":\"\0\"}"), false},
#undef BODY
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = json_loadb(cases[i].body, cases[i].len, JSON_DECODE_ANY, NULL);
        cr_assert_eq(j != NULL, cases[i].jansson_accepts, "case %zu: jansson changed", i);
        json_decref(j);
        inspect_fails_n(CHANNEL_WHATSAPP, cases[i].body, cases[i].len, "invalid_json", NULL);
    }
}

Test(tape, escaped_keys_and_ids_decode_as_in_jansson, .timeout = 30)
{
    /* "\u0069d" is the key "id"; the id's escapes are decoded into the key. */
    struct channels_inspection r = inspect_ok(
        CHANNEL_WHATSAPP,
        "{\"ob\\u006aect\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":"
        "{\"messages\":[{\"\\u0069d\":\"wamid.\\u0041\\/\\u00e9\\ud83d\\ude00\"}]}}]}]}");
    cr_assert_str_eq(r.dedup_key, "wa:m:wamid.A/\xc3\xa9\xf0\x9f\x98\x80");
    cr_assert_eq(r.messages, 1);
    /* An id with an escaped control character is not an id. */
    inspect_fails(CHANNEL_WHATSAPP,
                  "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":"
                  "{\"messages\":[{\"id\":\"a\\nb\"}]}}]}]}",
                  "invalid_message");
    /* Instagram: repeated keys, the last one wins; integers read exactly. */
    r = inspect_ok(
        CHANNEL_INSTAGRAM,
        "{\"object\":\"instagram\",\"entry\":[{\"messaging\":[{\"timestamp\":1,"
        "\"timestamp\":-9223372036854775808,\"reaction\":{\"mid\":\"x\",\"mid\":\"m\\u0031\","
        "\"action\":\"unreact\"}}]}]}");
    cr_assert_str_eq(r.dedup_key, "ig:re:m1:unreact:-9223372036854775808");
}
