/* test_text.c - UTF-8 cutting, UTF-16 unit counting and the splitting of long
 * replies: natural breaks, limits, multi-byte characters, truncation. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

Test(text, utf8_prefix_never_splits_a_character, .timeout = 30)
{
    const char *s = "a\xC3\xA9"
                    "b\xE2\x98\x95"
                    "c\xF0\x9F\x98\x80"; /* a é b ☕ c 😀 */
    size_t n = strlen(s);
    cr_assert_eq(domain_utf8_prefix(s, n, 0), 0);
    cr_assert_eq(domain_utf8_prefix(s, n, 1), 1);
    cr_assert_eq(domain_utf8_prefix(s, n, 2), 1, "é is two bytes");
    cr_assert_eq(domain_utf8_prefix(s, n, 3), 3);
    cr_assert_eq(domain_utf8_prefix(s, n, 5), 4);
    cr_assert_eq(domain_utf8_prefix(s, n, 6), 4);
    cr_assert_eq(domain_utf8_prefix(s, n, 7), 7);
    cr_assert_eq(domain_utf8_prefix(s, n, 10), 8);
    cr_assert_eq(domain_utf8_prefix(s, n, 12), 12);
    cr_assert_eq(domain_utf8_prefix(s, n, 100), n);
    cr_assert_eq(domain_utf8_prefix(NULL, 5, 5), 0);
    /* Invalid bytes count one each: never stuck, never past max. */
    cr_assert_eq(domain_utf8_prefix("\xFF\xFE\x80", 3, 2), 2);
    /* A truncated sequence at the end is one invalid byte per byte. */
    cr_assert_eq(domain_utf8_prefix("ab\xE2\x98", 4, 3), 3);
}

Test(text, units_count_like_meta, .timeout = 30)
{
    cr_assert_eq(domain_text_units("", 0), 0);
    cr_assert_eq(domain_text_units("hello", 5), 5);
    cr_assert_eq(domain_text_units("caf\xC3\xA9", 5), 4);
    cr_assert_eq(domain_text_units("\xE2\x98\x95", 3), 1, "BMP: one unit");
    cr_assert_eq(domain_text_units("\xF0\x9F\x98\x80", 4), 2, "astral: a surrogate pair");
    cr_assert_eq(domain_text_units("\xFF", 1), 1, "invalid byte: one U+FFFD");
    cr_assert_eq(domain_text_units("\xC0\xAF", 2), 2, "overlong form: two invalid bytes");
    cr_assert_eq(domain_text_units("\xED\xA0\x80", 3), 3, "surrogate code point is invalid");
    cr_assert_eq(domain_text_units(NULL, 3), 0);
}

static void split_ok(const char *text, size_t max, struct sb_str parts[DOMAIN_SPLIT_MAX_PARTS],
                     size_t *n, bool *trunc)
{
    cr_assert_eq(domain_text_split(text, strlen(text), max, parts, n, trunc), 0);
    for (size_t i = 0; i < *n; i++) {
        cr_assert_gt(parts[i].len, 0, "part %zu empty", i);
        cr_assert_leq(domain_text_units(parts[i].ptr, parts[i].len), max, "part %zu too long", i);
        cr_assert_neq(parts[i].ptr[0], ' ');
        cr_assert_neq(parts[i].ptr[parts[i].len - 1], ' ');
        cr_assert_neq(parts[i].ptr[parts[i].len - 1], '\n');
    }
}

static bool part_is(struct sb_str p, const char *want)
{
    return p.len == strlen(want) && memcmp(p.ptr, want, p.len) == 0;
}

Test(text, short_text_is_one_trimmed_part, .timeout = 30)
{
    struct sb_str parts[DOMAIN_SPLIT_MAX_PARTS];
    size_t n;
    bool trunc = true;
    split_ok("  Hello there!\n", 4096, parts, &n, &trunc);
    cr_assert_eq(n, 1);
    cr_assert(part_is(parts[0], "Hello there!"));
    cr_assert_not(trunc);
}

Test(text, prefers_paragraph_then_line_then_sentence_then_space, .timeout = 30)
{
    struct sb_str parts[DOMAIN_SPLIT_MAX_PARTS];
    size_t n;
    bool trunc;
    /* 20-unit limit; each candidate break lies in the second half. */
    split_ok("First para here.\n\nSecond", 20, parts, &n, &trunc);
    cr_assert_eq(n, 2);
    cr_assert(part_is(parts[0], "First para here."));
    cr_assert(part_is(parts[1], "Second"));

    split_ok("Line one is ok\nline two", 20, parts, &n, &trunc);
    cr_assert(part_is(parts[0], "Line one is ok"), "%.*s", (int)parts[0].len, parts[0].ptr);
    cr_assert(part_is(parts[1], "line two"));

    split_ok("One two three. Four five six", 20, parts, &n, &trunc);
    cr_assert(part_is(parts[0], "One two three."), "%.*s", (int)parts[0].len, parts[0].ptr);
    cr_assert(part_is(parts[1], "Four five six"));

    split_ok("aaaa bbbb cccc dddd eeee ffff", 20, parts, &n, &trunc);
    cr_assert(part_is(parts[0], "aaaa bbbb cccc dddd"), "%.*s", (int)parts[0].len, parts[0].ptr);
    cr_assert(part_is(parts[1], "eeee ffff"));
    cr_assert_not(trunc);
}

Test(text, break_in_first_half_is_not_used, .timeout = 30)
{
    struct sb_str parts[DOMAIN_SPLIT_MAX_PARTS];
    size_t n;
    bool trunc;
    /* The only space is at unit 2 of a 20-unit part: a hard cut is better
     * than a 2-character message. */
    split_ok("ab cdefghijklmnopqrstuvwxyz", 20, parts, &n, &trunc);
    cr_assert_eq(n, 2);
    cr_assert_eq(parts[0].len, 20);
    cr_assert(part_is(parts[1], "tuvwxyz"));
}

Test(text, hard_cut_respects_multibyte_and_astral, .timeout = 30)
{
    /* 30 emoji (2 units each) without spaces, 16-unit parts: 8 emoji each. */
    char text[30 * 4 + 1] = "";
    for (int i = 0; i < 30; i++)
        memcpy(text + i * 4, "\xF0\x9F\x98\x80", 4);
    text[120] = '\0';
    struct sb_str parts[DOMAIN_SPLIT_MAX_PARTS];
    size_t n;
    bool trunc;
    split_ok(text, 16, parts, &n, &trunc);
    cr_assert_eq(n, 4);
    cr_assert_eq(parts[0].len, 32);
    cr_assert_eq(parts[3].len, 6 * 4);
    /* Rejoining the parts gives the text back. */
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += parts[i].len;
    cr_assert_eq(total, 120);
}

Test(text, exactly_the_limit_is_one_part, .timeout = 30)
{
    char *text = malloc(4097);
    cr_assert_not_null(text);
    memset(text, 'x', 4096);
    text[4096] = '\0';
    struct sb_str parts[DOMAIN_SPLIT_MAX_PARTS];
    size_t n;
    bool trunc;
    split_ok(text, 4096, parts, &n, &trunc);
    cr_assert_eq(n, 1);
    cr_assert_eq(parts[0].len, 4096);
    free(text);
    /* One more character: two parts. */
    text = malloc(4098);
    cr_assert_not_null(text);
    memset(text, 'x', 4097);
    text[4097] = '\0';
    split_ok(text, 4096, parts, &n, &trunc);
    cr_assert_eq(n, 2);
    cr_assert_eq(parts[0].len, 4096);
    cr_assert_eq(parts[1].len, 1);
    free(text);
}

Test(text, too_long_is_truncated_and_reported, .timeout = 30)
{
    size_t len = 16 * (DOMAIN_SPLIT_MAX_PARTS + 2);
    char *text = malloc(len + 1);
    cr_assert_not_null(text);
    memset(text, 'z', len);
    text[len] = '\0';
    struct sb_str parts[DOMAIN_SPLIT_MAX_PARTS];
    size_t n;
    bool trunc = false;
    split_ok(text, 16, parts, &n, &trunc);
    cr_assert_eq(n, DOMAIN_SPLIT_MAX_PARTS);
    cr_assert(trunc);
    /* Exactly enough parts: not truncated, trailing whitespace ignored. */
    text[16 * DOMAIN_SPLIT_MAX_PARTS] = ' ';
    text[16 * DOMAIN_SPLIT_MAX_PARTS + 1] = '\0';
    split_ok(text, 16, parts, &n, &trunc);
    cr_assert_eq(n, DOMAIN_SPLIT_MAX_PARTS);
    cr_assert_not(trunc);
    free(text);
}

Test(text, bad_arguments, .timeout = 30)
{
    struct sb_str parts[DOMAIN_SPLIT_MAX_PARTS];
    size_t n = 7;
    bool trunc = true;
    cr_assert_eq(domain_text_split("", 0, 100, parts, &n, &trunc), -EINVAL);
    cr_assert_eq(n, 0);
    cr_assert_not(trunc);
    cr_assert_eq(domain_text_split(" \n\t ", 4, 100, parts, &n, &trunc), -EINVAL);
    cr_assert_eq(domain_text_split("hi", 2, 15, parts, &n, &trunc), -EINVAL, "max too small");
    cr_assert_eq(domain_text_split(NULL, 2, 100, parts, &n, &trunc), -EINVAL);
    cr_assert_eq(domain_text_split("hi", 2, 100, NULL, &n, &trunc), -EINVAL);
    cr_assert_eq(domain_text_split("hi", 2, 100, parts, NULL, &trunc), -EINVAL);
    cr_assert_eq(domain_text_split("hi", 2, 100, parts, &n, NULL), -EINVAL);
}
