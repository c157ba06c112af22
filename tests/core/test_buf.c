/* test_buf.c - bounded buffer limits, formatting, stealing and JSON escaping. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

Test(buf, starts_empty_and_null, .timeout = 30)
{
    struct sb_buf b;
    sb_buf_init(&b, 16);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.max, 16);
    sb_buf_reset(&b); /* no storage yet: must not crash */
    sb_buf_cleanup(&b);
    sb_buf_cleanup(&b); /* twice is harmless */
}

Test(buf, append_exactly_to_max, .timeout = 30)
{
    struct sb_buf b;
    sb_buf_init(&b, 10);
    cr_assert_eq(sb_buf_append(&b, "01234", 5), 0);
    cr_assert_eq(sb_buf_append(&b, "56789", 5), 0);
    cr_assert_eq(b.len, 10);
    cr_assert_str_eq(b.data, "0123456789");
    cr_assert_leq(b.cap, 11, "capacity must never exceed max + 1, got %zu", b.cap);
    /* Even an empty append works at the limit. */
    cr_assert_eq(sb_buf_append(&b, "", 0), 0);
    sb_buf_cleanup(&b);
}

Test(buf, one_byte_past_max_is_refused_unchanged, .timeout = 30)
{
    struct sb_buf b;
    sb_buf_init(&b, 10);
    cr_assert_eq(sb_buf_append(&b, "0123456789", 10), 0);
    cr_assert_eq(sb_buf_append(&b, "x", 1), SB_ELIMIT);
    cr_assert_eq(b.len, 10);
    cr_assert_str_eq(b.data, "0123456789");
    cr_assert_eq(sb_buf_append_str(&b, "y"), SB_ELIMIT);
    cr_assert_str_eq(b.data, "0123456789");
    sb_buf_cleanup(&b);

    sb_buf_init(&b, 4);
    cr_assert_eq(sb_buf_append(&b, "ab", 2), 0);
    cr_assert_eq(sb_buf_append(&b, "cde", 3), SB_ELIMIT);
    cr_assert_eq(b.len, 2);
    cr_assert_str_eq(b.data, "ab");
    /* A size that would overflow len + n must be refused, not wrapped. */
    cr_assert_eq(sb_buf_append(&b, "z", SIZE_MAX), SB_ELIMIT);
    cr_assert_str_eq(b.data, "ab");
    sb_buf_cleanup(&b);
}

Test(buf, zero_max_refuses_everything_but_empty, .timeout = 30)
{
    struct sb_buf b;
    sb_buf_init(&b, 0);
    cr_assert_eq(sb_buf_append(&b, "a", 1), SB_ELIMIT);
    cr_assert_eq(sb_buf_append(&b, "", 0), 0);
    cr_assert_str_eq(b.data, "");
    sb_buf_cleanup(&b);
}

Test(buf, grows_past_initial_capacity, .timeout = 30)
{
    struct sb_buf b;
    sb_buf_init(&b, 100000);
    for (int i = 0; i < 10000; i++)
        cr_assert_eq(sb_buf_append(&b, "0123456789", 10), 0);
    cr_assert_eq(b.len, 100000);
    cr_assert_eq(b.cap, 100001);
    cr_assert_eq(b.data[b.len], '\0');
    cr_assert_eq(memcmp(b.data + 99990, "0123456789", 10), 0);
    cr_assert_eq(sb_buf_append(&b, "x", 1), SB_ELIMIT);
    sb_buf_cleanup(&b);
}

Test(buf, appendf_formats_and_respects_limit, .timeout = 30)
{
    struct sb_buf b;
    sb_buf_init(&b, 12);
    cr_assert_eq(sb_buf_appendf(&b, "%s-%d", "abc", 42), 0);
    cr_assert_str_eq(b.data, "abc-42");
    /* 7 more bytes would make 13 > 12: refused before anything is written. */
    cr_assert_eq(sb_buf_appendf(&b, "%07d", 1), SB_ELIMIT);
    cr_assert_str_eq(b.data, "abc-42");
    cr_assert_eq(b.len, 6);
    /* Exactly to the limit is fine. */
    cr_assert_eq(sb_buf_appendf(&b, "%06d", 7), 0);
    cr_assert_str_eq(b.data, "abc-42000007");
    cr_assert_eq(sb_buf_appendf(&b, "%s", ""), 0);
    cr_assert_eq(sb_buf_appendf(&b, "%c", 'x'), SB_ELIMIT);
    cr_assert_str_eq(b.data, "abc-42000007");
    sb_buf_cleanup(&b);
}

Test(buf, appendf_large_output, .timeout = 30)
{
    struct sb_buf b;
    sb_buf_init(&b, 5000);
    cr_assert_eq(sb_buf_appendf(&b, "%4000d|", 5), 0);
    cr_assert_eq(b.len, 4001);
    cr_assert_eq(b.data[3999], '5');
    cr_assert_eq(b.data[4000], '|');
    sb_buf_cleanup(&b);
}

Test(buf, reset_keeps_storage, .timeout = 30)
{
    struct sb_buf b;
    sb_buf_init(&b, 64);
    cr_assert_eq(sb_buf_append_str(&b, "hello"), 0);
    char *before = b.data;
    sb_buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_str_eq(b.data, "");
    cr_assert_eq(b.data, before);
    cr_assert_eq(sb_buf_append_str(&b, "again"), 0);
    cr_assert_str_eq(b.data, "again");
    sb_buf_cleanup(&b);
}

Test(buf, steal_transfers_ownership, .timeout = 30)
{
    struct sb_buf b;
    sb_buf_init(&b, 64);
    char *empty = sb_buf_steal(&b);
    cr_assert_not_null(empty);
    cr_assert_str_eq(empty, "");
    free(empty);

    cr_assert_eq(sb_buf_append_str(&b, "owned"), 0);
    char *s = sb_buf_steal(&b);
    cr_assert_str_eq(s, "owned");
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.max, 64, "the limit survives a steal");
    /* The buffer is usable again and independent of the stolen string. */
    cr_assert_eq(sb_buf_append_str(&b, "new"), 0);
    cr_assert_str_eq(b.data, "new");
    cr_assert_str_eq(s, "owned");
    free(s);
    sb_buf_cleanup(&b);
}

/* Escapes n bytes of s and returns the literal (without checking limits). */
static char *json(const char *s, size_t n)
{
    struct sb_buf b;
    sb_buf_init(&b, 4096);
    cr_assert_eq(sb_buf_append_json_str(&b, s, n), 0);
    return sb_buf_steal(&b);
}

#define CHECK_JSON(in, expected)                                                                  \
    do {                                                                                          \
        char *got_ = json(in, sizeof(in) - 1);                                                    \
        cr_expect_str_eq(got_, expected, "escaping %s", #in);                                     \
        free(got_);                                                                               \
    } while (0)

Test(json_str, plain_and_special_characters, .timeout = 30)
{
    CHECK_JSON("", "\"\"");
    CHECK_JSON("hello", "\"hello\"");
    CHECK_JSON("say \"hi\"", "\"say \\\"hi\\\"\"");
    CHECK_JSON("back\\slash", "\"back\\\\slash\"");
    CHECK_JSON("a\nb\rc\td\be\ff", "\"a\\nb\\rc\\td\\be\\ff\"");
    CHECK_JSON("\x01\x1f", "\"\\u0001\\u001f\"");
    CHECK_JSON("nul\0byte", "\"nul\\u0000byte\"");
    CHECK_JSON("slash / ok", "\"slash / ok\"");
}

Test(json_str, valid_utf8_passes_through, .timeout = 30)
{
    CHECK_JSON("Sabiá", "\"Sabiá\"");
    CHECK_JSON("\xE2\x82\xAC", "\"\xE2\x82\xAC\"");             /* U+20AC */
    CHECK_JSON("\xF0\x9F\x90\xA6", "\"\xF0\x9F\x90\xA6\"");     /* U+1F426 */
    CHECK_JSON("\xEF\xBF\xBF", "\"\xEF\xBF\xBF\"");             /* U+FFFF */
    CHECK_JSON("\xF4\x8F\xBF\xBF", "\"\xF4\x8F\xBF\xBF\"");     /* U+10FFFF */
    CHECK_JSON("\xED\x9F\xBF", "\"\xED\x9F\xBF\"");             /* U+D7FF */
}

#define FFFD "\xEF\xBF\xBD"

Test(json_str, invalid_utf8_becomes_replacement, .timeout = 30)
{
    CHECK_JSON("\xFF", "\"" FFFD "\"");
    CHECK_JSON("a\x80z", "\"a" FFFD "z\"");                  /* lone continuation */
    CHECK_JSON("\xC0\xAF", "\"" FFFD FFFD "\"");              /* overlong '/' */
    CHECK_JSON("\xC1\xBF", "\"" FFFD FFFD "\"");              /* overlong */
    CHECK_JSON("\xE0\x80\xAF", "\"" FFFD FFFD FFFD "\"");     /* overlong 3-byte */
    CHECK_JSON("\xF0\x80\x80\xAF", "\"" FFFD FFFD FFFD FFFD "\""); /* overlong 4-byte */
    CHECK_JSON("\xED\xA0\x80", "\"" FFFD FFFD FFFD "\"");     /* surrogate U+D800 */
    CHECK_JSON("\xF4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\""); /* above U+10FFFF */
    CHECK_JSON("\xF5\x80", "\"" FFFD FFFD "\"");
    CHECK_JSON("\xE2\x82", "\"" FFFD "\"");                   /* truncated at the end */
    CHECK_JSON("\xE2\x82z", "\"" FFFD "z\"");                 /* truncated mid-string */
    CHECK_JSON("\xF0\x9F\x90", "\"" FFFD "\"");
    CHECK_JSON("\xC3", "\"" FFFD "\"");
    CHECK_JSON("\xC3\"", "\"" FFFD "\\\"\"");                 /* quote is not swallowed */
}

Test(json_str, limit_leaves_buffer_unchanged, .timeout = 30)
{
    struct sb_buf b;
    sb_buf_init(&b, 10);
    cr_assert_eq(sb_buf_append_str(&b, "ab"), 0);
    /* "\"\\n\\n\\n\\n\"" is 10 bytes: 2 + 10 > 10. */
    cr_assert_eq(sb_buf_append_json_str(&b, "\n\n\n\n", 4), SB_ELIMIT);
    cr_assert_eq(b.len, 2);
    cr_assert_str_eq(b.data, "ab");
    cr_assert_eq(sb_buf_append_json_str(&b, "abcdef", 6), 0);
    cr_assert_str_eq(b.data, "ab\"abcdef\"");
    sb_buf_cleanup(&b);
}
