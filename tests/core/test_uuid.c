/* test_uuid.c - UUIDv7 layout, ordering, formatting and parsing. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

static int64_t uuid_ms(const struct sb_uuid *u)
{
    int64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | u->b[i];
    return ms;
}

Test(uuid, version_variant_and_timestamp, .timeout = 30)
{
    int64_t before = sb_now_ms();
    struct sb_uuid u;
    cr_assert_eq(sb_uuid_v7(&u), 0);
    int64_t after = sb_now_ms();
    cr_assert_eq(u.b[6] >> 4, 7, "version nibble");
    cr_assert_eq(u.b[8] >> 6, 2, "variant bits 10");
    int64_t ms = uuid_ms(&u);
    /* The generator may run ahead by a few ms when a counter overflowed. */
    cr_assert_geq(ms, before - 1);
    cr_assert_leq(ms, after + 50);
}

Test(uuid, random_part_differs, .timeout = 30)
{
    struct sb_uuid a, b;
    cr_assert_eq(sb_uuid_v7(&a), 0);
    cr_assert_eq(sb_uuid_v7(&b), 0);
    cr_assert_neq(memcmp(a.b + 9, b.b + 9, 7), 0, "56 random bits repeated");
}

Test(uuid, strictly_increasing_10k, .timeout = 30)
{
    struct sb_uuid prev, cur;
    cr_assert_eq(sb_uuid_v7(&prev), 0);
    for (int i = 0; i < 10000; i++) {
        cr_assert_eq(sb_uuid_v7(&cur), 0);
        cr_assert_lt(memcmp(prev.b, cur.b, 16), 0, "id %d not above its predecessor", i);
        cr_assert_eq(cur.b[6] >> 4, 7);
        cr_assert_eq(cur.b[8] >> 6, 2);
        prev = cur;
    }
    /* 10k ids must not have pushed the clock far into the future. */
    cr_assert_leq(uuid_ms(&cur), sb_now_ms() + 50);
}

#define PER_THREAD 5000

static void *uuid_worker(void *arg)
{
    struct sb_uuid *out = arg;
    for (int i = 0; i < PER_THREAD; i++)
        if (sb_uuid_v7(&out[i]) != 0)
            return (void *)1;
    return NULL;
}

static int cmp_uuid(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

Test(uuid, threads_never_collide, .timeout = 30)
{
    enum { NT = 4 };
    struct sb_uuid *ids = calloc(NT * PER_THREAD, sizeof(*ids));
    pthread_t t[NT];
    for (int i = 0; i < NT; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, uuid_worker, ids + i * PER_THREAD), 0);
    for (int i = 0; i < NT; i++) {
        void *r;
        pthread_join(t[i], &r);
        cr_assert_null(r);
    }
    /* Within each thread order holds; across all of them, no (ts, counter) reuse. */
    for (int i = 0; i < NT; i++)
        for (int j = 1; j < PER_THREAD; j++)
            cr_assert_lt(memcmp(ids[i * PER_THREAD + j - 1].b, ids[i * PER_THREAD + j].b, 16), 0);
    qsort(ids, NT * PER_THREAD, sizeof(*ids), cmp_uuid);
    for (int i = 1; i < NT * PER_THREAD; i++)
        cr_assert_neq(memcmp(ids[i - 1].b, ids[i].b, 8), 0, "timestamp+counter reused");
    free(ids);
}

Test(uuid, format_parse_round_trip, .timeout = 30)
{
    for (int i = 0; i < 100; i++) {
        struct sb_uuid u, back;
        char s[SB_UUID_STRLEN];
        cr_assert_eq(sb_uuid_v7(&u), 0);
        sb_uuid_format(&u, s);
        cr_assert_eq(strlen(s), 36);
        cr_assert_eq(s[8], '-');
        cr_assert_eq(s[14], '7');
        cr_assert(sb_uuid_valid(s, 36));
        cr_assert_eq(sb_uuid_parse(s, 36, &back), 0);
        cr_assert_eq(memcmp(u.b, back.b, 16), 0);
    }
    struct sb_uuid u = {{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98,
                         0x76, 0x54, 0x32, 0x10}};
    char s[SB_UUID_STRLEN];
    sb_uuid_format(&u, s);
    cr_assert_str_eq(s, "01234567-89ab-cdef-fedc-ba9876543210");
    struct sb_uuid up;
    cr_assert_eq(sb_uuid_parse("01234567-89AB-CDEF-FEDC-BA9876543210", 36, &up), 0);
    cr_assert_eq(memcmp(u.b, up.b, 16), 0, "upper case accepted");
}

Test(uuid, v7_str, .timeout = 30)
{
    char a[SB_UUID_STRLEN], b[SB_UUID_STRLEN];
    cr_assert_eq(sb_uuid_v7_str(a), 0);
    cr_assert_eq(sb_uuid_v7_str(b), 0);
    cr_assert(sb_uuid_valid(a, strlen(a)));
    cr_assert_lt(strcmp(a, b), 0, "string form sorts like the bytes");
}

Test(uuid, invalid_strings_rejected, .timeout = 30)
{
    static const char *const bad[] = {
        "",
        "01234567-89ab-cdef-fedc-ba987654321",   /* short */
        "01234567-89ab-cdef-fedc-ba98765432100", /* long */
        "0123456789ab-cdef-fedc-ba9876543210-",  /* dashes misplaced */
        "01234567-89abcdef-fedc-ba9876543210-",
        "01234567_89ab_cdef_fedc_ba9876543210",
        "g1234567-89ab-cdef-fedc-ba9876543210",  /* not hex */
        "01234567-89ab-cdef-fedc-ba987654321z",
        "{1234567-89ab-cdef-fedc-ba9876543210",
        " 1234567-89ab-cdef-fedc-ba9876543210",
        "0123456789abcdeffedcba9876543210",      /* no dashes */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sb_uuid u;
        cr_expect_eq(sb_uuid_parse(bad[i], strlen(bad[i]), &u), SB_EPARSE, "%s", bad[i]);
        cr_expect_not(sb_uuid_valid(bad[i], strlen(bad[i])), "%s", bad[i]);
    }
    /* Length is taken from n: a valid prefix of a longer string is fine,
     * a NUL inside the range is not. */
    cr_assert(sb_uuid_valid("01234567-89ab-cdef-fedc-ba9876543210xyz", 36));
    cr_assert_not(sb_uuid_valid("01234567-89ab-cdef-fedc-ba98765\0" "3210", 36));
    cr_assert_not(sb_uuid_valid(NULL, 36));
}
