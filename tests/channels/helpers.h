/* helpers.h - shared by the libs/channels suites: fixture loading, inspection
 * assertions and SHA-256 hex, as static inline functions (one copy per binary). */
#ifndef SABIA_TESTS_CHANNELS_HELPERS_H
#define SABIA_TESTS_CHANNELS_HELPERS_H

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "crypto.h"
#include "testsupport.h"

/* Reads shared/fixtures/<name> (heap, NUL-terminated; free()). */
static inline char *fixture(const char *name, size_t *len)
{
    size_t n = strlen("../shared/fixtures/") + strlen(name) + 1;
    char *rel = malloc(n);
    cr_assert_not_null(rel);
    snprintf(rel, n, "../shared/fixtures/%s", name);
    char *path = ts_source_path(rel);
    char *body = ts_read_file(path, len);
    cr_assert_not_null(body, "cannot read %s", path);
    free(path);
    free(rel);
    return body;
}

/* Inspects a NUL-terminated body and asserts success. */
static inline struct channels_inspection inspect_ok(enum channel_type type, const char *body)
{
    struct channels_inspection out;
    char reason[CHANNELS_REASON_MAX] = "x", detail[256] = "x";
    int rc = channels_inspect(type, body, strlen(body), &out, reason, sizeof reason, detail,
                              sizeof detail);
    cr_assert_eq(rc, 0, "inspect failed: %s: %s (body %.200s)", reason, detail, body);
    cr_assert_str_empty(reason);
    cr_assert_str_empty(detail);
    cr_assert_neq(out.dedup_key[0], '\0');
    return out;
}

/* Inspects len bytes and asserts SB_EPARSE with `want` as the reason; returns
 * nothing but fills detail (at least 256 bytes) when given. */
static inline void inspect_fails_n(enum channel_type type, const char *body, size_t len,
                                   const char *want, char *detail_out)
{
    struct channels_inspection out;
    memset(&out, 0x5a, sizeof out);
    char reason[CHANNELS_REASON_MAX] = "", detail[256] = "";
    int rc = channels_inspect(type, body, len, &out, reason, sizeof reason, detail, sizeof detail);
    cr_assert_eq(rc, SB_EPARSE, "rc %d (%s: %s) for body %.200s", rc, reason, detail,
                 body ? body : "(null)");
    cr_assert_str_eq(reason, want, "reason %s (%s), want %s", reason, detail, want);
    cr_assert_neq(detail[0], '\0', "a failure must explain itself");
    cr_assert_eq(out.dedup_key[0], '\0');
    cr_assert_eq(out.visitor_id[0], '\0');
    cr_assert_eq(out.messages + out.statuses + out.echoes + out.others, 0);
    if (detail_out)
        memcpy(detail_out, detail, sizeof detail);
}

static inline void inspect_fails(enum channel_type type, const char *body, const char *want)
{
    inspect_fails_n(type, body, strlen(body), want, NULL);
}

/* prefix + ":" + hex SHA-256 of n bytes, into out (>= 128 bytes). */
static inline void hash_key(const char *prefix, const void *data, size_t n, char *out)
{
    uint8_t d[CRYPTO_SHA256_LEN];
    char hex[CRYPTO_HEX_SIZE(CRYPTO_SHA256_LEN)];
    crypto_sha256(data, n, d);
    cr_assert_eq(crypto_hex_encode(d, sizeof d, hex, sizeof hex), 0);
    snprintf(out, 128, "%s:%s", prefix, hex);
}

/* A formatted heap string (free()); fails the test instead of returning NULL. */
static inline __attribute__((format(printf, 1, 2))) char *xasprintf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    cr_assert_geq(n, 0);
    return s;
}

#endif
