/* test_webhook.c - Meta's X-Hub-Signature-256 against the shared fixtures, and
 * Standard Webhooks v1 signing and verification (spec vector and own fixture). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "testsupport.h"

#define APP_SECRET "test_app_secret"
#define SW_SECRET  "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_ID      "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
#define SW_TS      1739321024L
#define SW_SIG     "v1,JnxoXNJ4XWHFdO6SMSkd2HwocQsKgph8TqrfdKD41qo="

/* Reads ../shared/fixtures/<name> beside the source tree. */
static char *fixture(const char *name, size_t *len)
{
    char rel[256];
    snprintf(rel, sizeof rel, "../shared/fixtures/%s", name);
    char *path = ts_source_path(rel);
    char *data = ts_read_file(path, len);
    free(path);
    return data;
}

/* A .sig file holds the header value and a newline. */
static char *fixture_sig(const char *name)
{
    char *s = fixture(name, NULL);
    s[strcspn(s, "\r\n")] = '\0';
    return s;
}

static void assert_fixture_verifies(const char *stem)
{
    char json[128], sig[128];
    snprintf(json, sizeof json, "%s.json", stem);
    snprintf(sig, sizeof sig, "%s.sig", stem);
    size_t n = 0;
    char *body = fixture(json, &n);
    char *header = fixture_sig(sig);
    cr_assert_eq(strlen(header), 71, "%s", header);
    cr_assert_eq(crypto_verify_meta_signature(APP_SECRET, body, n, header), 0, "%s", stem);
    cr_assert_eq(crypto_verify_meta_signature("test_app_secreT", body, n, header), SB_EAUTH);
    cr_assert_eq(crypto_verify_meta_signature("test_app_secret ", body, n, header), SB_EAUTH);
    /* One byte more or less, or a trailing newline, breaks it. */
    cr_assert_eq(crypto_verify_meta_signature(APP_SECRET, body, n - 1, header), SB_EAUTH);
    char *nl = malloc(n + 1);
    memcpy(nl, body, n);
    nl[n] = '\n';
    cr_assert_eq(crypto_verify_meta_signature(APP_SECRET, nl, n + 1, header), SB_EAUTH);
    free(nl);
    free(header);
    free(body);
}

Test(meta, every_fixture_verifies, .timeout = 30)
{
    static const char *stems[] = {"wa_text",          "wa_text_unicode",
                                  "wa_image",         "wa_status_delivered",
                                  "wa_status_failed", "ig_text"};
    for (size_t i = 0; i < sizeof stems / sizeof stems[0]; i++)
        assert_fixture_verifies(stems[i]);
}

Test(meta, reencoded_body_does_not_verify, .timeout = 30)
{
    size_t n = 0;
    char *body = fixture("wa_text_unicode_utf8_reencoded.json", &n);
    char *header = fixture_sig("wa_text_unicode.sig");
    cr_assert_eq(crypto_verify_meta_signature(APP_SECRET, body, n, header), SB_EAUTH);
    free(header);
    free(body);
}

Test(meta, uppercase_hex_accepted, .timeout = 30)
{
    size_t n = 0;
    char *body = fixture("wa_text.json", &n);
    char *header = fixture_sig("wa_text.sig");
    for (char *p = header + 7; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    cr_assert_eq(crypto_verify_meta_signature(APP_SECRET, body, n, header), 0, "%s", header);
    free(header);
    free(body);
}

Test(meta, flipped_digit_fails, .timeout = 30)
{
    size_t n = 0;
    char *body = fixture("wa_text.json", &n);
    char *header = fixture_sig("wa_text.sig");
    char *last = header + strlen(header) - 1;
    *last = *last == '0' ? '1' : '0';
    cr_assert_eq(crypto_verify_meta_signature(APP_SECRET, body, n, header), SB_EAUTH);
    free(header);
    free(body);
}

Test(meta, malformed_headers, .timeout = 30)
{
    size_t n = 0;
    char *body = fixture("wa_text.json", &n);
    char *good = fixture_sig("wa_text.sig");
    const char *hex = good + 7;
    char h[200];
    cr_assert_eq(crypto_verify_meta_signature(APP_SECRET, body, n, hex), SB_EPARSE);
    snprintf(h, sizeof h, "sha1=%s", hex);
    cr_assert_eq(crypto_verify_meta_signature(APP_SECRET, body, n, h), SB_EPARSE);
    snprintf(h, sizeof h, "SHA256=%s", hex);
    cr_assert_eq(crypto_verify_meta_signature(APP_SECRET, body, n, h), SB_EPARSE);
    snprintf(h, sizeof h, "sha256=%.63s", hex);
    cr_assert_eq(crypto_verify_meta_signature(APP_SECRET, body, n, h), SB_EPARSE);
    snprintf(h, sizeof h, "sha256=%s0", hex);
    cr_assert_eq(crypto_verify_meta_signature(APP_SECRET, body, n, h), SB_EPARSE);
    snprintf(h, sizeof h, "sha256=%s\n", hex);
    cr_assert_eq(crypto_verify_meta_signature(APP_SECRET, body, n, h), SB_EPARSE);
    snprintf(h, sizeof h, " %s", good);
    cr_assert_eq(crypto_verify_meta_signature(APP_SECRET, body, n, h), SB_EPARSE);
    snprintf(h, sizeof h, "sha256=%.62szz", hex);
    cr_assert_eq(crypto_verify_meta_signature(APP_SECRET, body, n, h), SB_EPARSE);
    cr_assert_eq(crypto_verify_meta_signature(APP_SECRET, body, n, "sha256="), SB_EPARSE);
    cr_assert_eq(crypto_verify_meta_signature(APP_SECRET, body, n, ""), SB_EPARSE);
    cr_assert_eq(crypto_verify_meta_signature(APP_SECRET, body, n, NULL), SB_EPARSE);
    /* No secret configured is refused rather than checked with an empty key. */
    cr_assert_eq(crypto_verify_meta_signature("", body, n, good), -EINVAL);
    cr_assert_eq(crypto_verify_meta_signature(NULL, body, n, good), -EINVAL);
    free(good);
    free(body);
}

Test(standard_webhooks, spec_vector, .timeout = 30)
{
    const char *body = "{\"test\": 2432232314}";
    const char *want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    char sig[CRYPTO_WEBHOOK_SIG_SIZE];
    cr_assert_eq(crypto_standard_webhook_sign(SW_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                                              body, strlen(body), sig, sizeof sig),
                 0);
    cr_assert_str_eq(sig, want);
    cr_assert_eq(crypto_standard_webhook_verify(SW_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek",
                                                1614265330, body, strlen(body), want, 1614265330,
                                                300),
                 0);
}

Test(standard_webhooks, fixture_signs_and_verifies, .timeout = 30)
{
    size_t n = 0;
    char *body = fixture("sw_payload.json", &n);
    char sig[CRYPTO_WEBHOOK_SIG_SIZE];
    cr_assert_eq(crypto_standard_webhook_sign(SW_SECRET, SW_ID, SW_TS, body, n, sig, sizeof sig),
                 0);
    cr_assert_str_eq(sig, SW_SIG);
    cr_assert_eq(strlen(sig) + 1, CRYPTO_WEBHOOK_SIG_SIZE);
    cr_assert_eq(
        crypto_standard_webhook_verify(SW_SECRET, SW_ID, SW_TS, body, n, SW_SIG, SW_TS, 300), 0);
    /* The secret without its prefix decodes to the same key. */
    cr_assert_eq(
        crypto_standard_webhook_verify(SW_SECRET + 6, SW_ID, SW_TS, body, n, SW_SIG, SW_TS, 300),
        0);
    /* Anything that went into the signature, changed, fails. */
    cr_assert_eq(
        crypto_standard_webhook_verify(SW_SECRET, SW_ID, SW_TS, body, n - 1, SW_SIG, SW_TS, 300),
        SB_EAUTH);
    cr_assert_eq(crypto_standard_webhook_verify(SW_SECRET, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4X", SW_TS,
                                                body, n, SW_SIG, SW_TS, 300),
                 SB_EAUTH);
    cr_assert_eq(
        crypto_standard_webhook_verify(SW_SECRET, SW_ID, SW_TS + 1, body, n, SW_SIG, SW_TS, 300),
        SB_EAUTH);
    cr_assert_eq(crypto_standard_webhook_verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx", SW_ID,
                                                SW_TS, body, n, SW_SIG, SW_TS, 300),
                 SB_EAUTH); /* last key byte differs */
    cr_assert_eq(crypto_standard_webhook_verify("whsec_NfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", SW_ID,
                                                SW_TS, body, n, SW_SIG, SW_TS, 300),
                 SB_EAUTH); /* first key byte differs */
    free(body);
}

Test(standard_webhooks, tolerance_both_ways, .timeout = 30)
{
    size_t n = 0;
    char *body = fixture("sw_payload.json", &n);
    long t = SW_TS;
    cr_assert_eq(crypto_standard_webhook_verify(SW_SECRET, SW_ID, t, body, n, SW_SIG, t + 300, 300),
                 0);
    cr_assert_eq(crypto_standard_webhook_verify(SW_SECRET, SW_ID, t, body, n, SW_SIG, t - 300, 300),
                 0);
    cr_assert_eq(crypto_standard_webhook_verify(SW_SECRET, SW_ID, t, body, n, SW_SIG, t + 301, 300),
                 SB_EAUTH); /* too old */
    cr_assert_eq(crypto_standard_webhook_verify(SW_SECRET, SW_ID, t, body, n, SW_SIG, t - 301, 300),
                 SB_EAUTH); /* too new */
    cr_assert_eq(crypto_standard_webhook_verify(SW_SECRET, SW_ID, t, body, n, SW_SIG, t, 0), 0);
    cr_assert_eq(crypto_standard_webhook_verify(SW_SECRET, SW_ID, t, body, n, SW_SIG, t + 1, 0),
                 SB_EAUTH);
    cr_assert_eq(crypto_standard_webhook_verify(SW_SECRET, SW_ID, t, body, n, SW_SIG,
                                                -9000000000000000000L, 300),
                 SB_EAUTH); /* extreme clocks do not overflow into a pass */
    cr_assert_eq(crypto_standard_webhook_verify(SW_SECRET, SW_ID, t, body, n, SW_SIG, t, -1),
                 -EINVAL);
    free(body);
}

Test(standard_webhooks, several_signatures, .timeout = 30)
{
    size_t n = 0;
    char *body = fixture("sw_payload.json", &n);
    static const char *ok[] = {
        "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= " SW_SIG,
        SW_SIG " v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
        "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/"
        "enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== " SW_SIG,
        "garbage v1,!!!! " SW_SIG,
        "v2,x " SW_SIG,
        SW_SIG " " SW_SIG,
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_assert_eq(
            crypto_standard_webhook_verify(SW_SECRET, SW_ID, SW_TS, body, n, ok[i], SW_TS, 300), 0,
            "%s", ok[i]);
    static const char *bad[] = {
        "",
        " ",
        "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
        "v2,JnxoXNJ4XWHFdO6SMSkd2HwocQsKgph8TqrfdKD41qo=", /* right bytes, wrong version */
        "v1,JnxoXNJ4XWHFdO6SMSkd2HwocQsKgph8TqrfdKD41qo",  /* padding missing */
        "v1,JnxoXNJ4XWHFdO6SMSkd2HwocQsKgph8TqrfdKD41qo=x",
        "v1, JnxoXNJ4XWHFdO6SMSkd2HwocQsKgph8TqrfdKD41qo=",
        "v1,JnxoXNJ4XWHFdO6SMSkd2HwocQsKgph8TqrfdKD4", /* a prefix of the MAC */
        "JnxoXNJ4XWHFdO6SMSkd2HwocQsKgph8TqrfdKD41qo=",
        "garbage v1,!!!! v2,JnxoXNJ4XWHFdO6SMSkd2HwocQsKgph8TqrfdKD41qo=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(
            crypto_standard_webhook_verify(SW_SECRET, SW_ID, SW_TS, body, n, bad[i], SW_TS, 300),
            SB_EAUTH, "%s", bad[i]);
    free(body);
}

Test(standard_webhooks, bad_arguments, .timeout = 30)
{
    char sig[CRYPTO_WEBHOOK_SIG_SIZE];
    const char *b = "{}";
    cr_assert_eq(crypto_standard_webhook_sign(SW_SECRET, SW_ID, SW_TS, b, 2, sig, sizeof sig - 1),
                 SB_ELIMIT);
    cr_assert_eq(crypto_standard_webhook_sign(SW_SECRET, "a.b", SW_TS, b, 2, sig, sizeof sig),
                 SB_EPARSE);
    cr_assert_eq(crypto_standard_webhook_sign(SW_SECRET, "", SW_TS, b, 2, sig, sizeof sig),
                 SB_EPARSE);
    cr_assert_eq(crypto_standard_webhook_sign(SW_SECRET, NULL, SW_TS, b, 2, sig, sizeof sig),
                 SB_EPARSE);
    cr_assert_eq(crypto_standard_webhook_sign(SW_SECRET, SW_ID, -1, b, 2, sig, sizeof sig),
                 SB_EPARSE);
    char long_id[CRYPTO_WEBHOOK_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    cr_assert_eq(crypto_standard_webhook_sign(SW_SECRET, long_id, SW_TS, b, 2, sig, sizeof sig),
                 SB_EPARSE);
    long_id[CRYPTO_WEBHOOK_ID_MAX] = '\0';
    cr_assert_eq(crypto_standard_webhook_sign(SW_SECRET, long_id, SW_TS, b, 2, sig, sizeof sig), 0);
    /* Secrets: not base64, too short a key (16 bytes), too long, missing. */
    static const char *secrets[] = {"whsec_not base64!!!",
                                    "whsec_AAAAAAAAAAAAAAAAAAAAAA==", "whsec_", NULL};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        cr_assert_eq(crypto_standard_webhook_sign(secrets[i], SW_ID, SW_TS, b, 2, sig, sizeof sig),
                     SB_EPARSE, "%s", secrets[i] ? secrets[i] : "(null)");
    char big[CRYPTO_WEBHOOK_SECRET_MAX + 8] = "whsec_";
    memset(big + 6, 'A', 120);
    big[126] = '\0'; /* 120 characters: 90 bytes, more than CRYPTO_WEBHOOK_KEY_MAX */
    cr_assert_eq(crypto_standard_webhook_sign(big, SW_ID, SW_TS, b, 2, sig, sizeof sig), SB_EPARSE);
    cr_assert_eq(crypto_standard_webhook_verify(SW_SECRET, SW_ID, SW_TS, b, 2, NULL, SW_TS, 300),
                 SB_EPARSE);
    char *huge = malloc(CRYPTO_WEBHOOK_HEADER_MAX + 2);
    memset(huge, ' ', CRYPTO_WEBHOOK_HEADER_MAX + 1);
    huge[CRYPTO_WEBHOOK_HEADER_MAX + 1] = '\0';
    cr_assert_eq(crypto_standard_webhook_verify(SW_SECRET, SW_ID, SW_TS, b, 2, huge, SW_TS, 300),
                 SB_EPARSE);
    free(huge);
}
