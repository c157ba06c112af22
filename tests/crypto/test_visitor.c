/* test_visitor.c - subkey derivation and web widget visitor tokens: issue and
 * verify, other channel or key, tampering, expiry, malformed tokens and bad
 * visitor ids. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "crypto.h"

#define KEY_HEX  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY2_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1e"
#define CHANNEL  "0194f6a2-7c1e-7b3a-9f10-2b3c4d5e6f70"
#define CHANNEL2 "0194f6a2-7c1e-7b3a-9f10-2b3c4d5e6f71"
#define VISITOR  "visitor_42-abc"
#define EXP      1900000000L

static struct crypto_key *key(const char *hex)
{
    int err = 1;
    struct crypto_key *k = crypto_key_new(hex, &err);
    cr_assert_not_null(k);
    return k;
}

static void issue(const struct crypto_key *k, const char *channel, const char *visitor, long exp,
                  char out[CRYPTO_VISITOR_TOKEN_MAX + 1])
{
    int rc =
        crypto_visitor_token_issue(k, channel, visitor, exp, out, CRYPTO_VISITOR_TOKEN_MAX + 1);
    cr_assert_eq(rc, 0, "issue: %d", rc);
}

static int verify(const struct crypto_key *k, const char *channel, const char *token, long now)
{
    char id[CRYPTO_VISITOR_ID_MAX + 1] = "unchanged";
    int rc = crypto_visitor_token_verify(k, channel, token, now, id, sizeof id);
    if (rc != 0)
        cr_assert_str_eq(id, "", "visitor id must be cleared on failure");
    return rc;
}

Test(visitor, derive_is_deterministic_and_label_bound, .timeout = 30)
{
    struct crypto_key *k = key(KEY_HEX), *k2 = key(KEY2_HEX);
    uint8_t a[32], b[32], c[32], d[32];
    cr_assert_eq(crypto_key_derive(k, "visitor-token:" CHANNEL, a), 0);
    cr_assert_eq(crypto_key_derive(k, "visitor-token:" CHANNEL, b), 0);
    cr_assert_eq(crypto_key_derive(k, "visitor-token:" CHANNEL2, c), 0);
    cr_assert_eq(crypto_key_derive(k2, "visitor-token:" CHANNEL, d), 0);
    cr_assert_eq(memcmp(a, b, 32), 0);
    cr_assert_neq(memcmp(a, c, 32), 0, "labels must give different keys");
    cr_assert_neq(memcmp(a, d, 32), 0, "master keys must give different keys");
    /* HMAC-SHA256(key, label), checked against the primitive directly. */
    uint8_t raw[32], want[32];
    size_t rawlen = 0;
    cr_assert_eq(crypto_hex_decode(KEY_HEX, 64, raw, sizeof raw, &rawlen), 0);
    const char *label = "visitor-token:" CHANNEL;
    crypto_hmac_sha256(raw, rawlen, label, strlen(label), want);
    cr_assert_eq(memcmp(a, want, 32), 0);

    cr_assert_eq(crypto_key_derive(NULL, "x", a), -EINVAL);
    cr_assert_eq(crypto_key_derive(k, NULL, a), -EINVAL);
    cr_assert_eq(crypto_key_derive(k, "", a), -EINVAL);
    static char long_label[CRYPTO_KEY_LABEL_MAX + 2];
    memset(long_label, 'a', CRYPTO_KEY_LABEL_MAX + 1);
    cr_assert_eq(crypto_key_derive(k, long_label, a), SB_ELIMIT);
    long_label[CRYPTO_KEY_LABEL_MAX] = '\0';
    cr_assert_eq(crypto_key_derive(k, long_label, a), 0);
    crypto_key_free(k);
    crypto_key_free(k2);
}

Test(visitor, issue_and_verify, .timeout = 30)
{
    struct crypto_key *k = key(KEY_HEX);
    char tok[CRYPTO_VISITOR_TOKEN_MAX + 1];
    issue(k, CHANNEL, VISITOR, EXP, tok);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "v1.%s.%ld.", VISITOR, EXP);
    cr_assert_eq(strncmp(tok, prefix, strlen(prefix)), 0, "token %s", tok);
    cr_assert_eq(strlen(tok), strlen(prefix) + 43);

    /* The MAC is HMAC(derived key, "v1.<channel>.<visitor>.<exp>") in base64url. */
    uint8_t sub[32], mac[32];
    cr_assert_eq(crypto_key_derive(k, "visitor-token:" CHANNEL, sub), 0);
    char msg[256];
    snprintf(msg, sizeof msg, "v1.%s.%s.%ld", CHANNEL, VISITOR, EXP);
    crypto_hmac_sha256(sub, sizeof sub, msg, strlen(msg), mac);
    char b64[CRYPTO_BASE64URL_SIZE(32)];
    cr_assert_eq(crypto_base64url_encode(mac, 32, b64, sizeof b64), 0);
    cr_assert_str_eq(tok + strlen(prefix), b64);

    char id[CRYPTO_VISITOR_ID_MAX + 1];
    cr_assert_eq(crypto_visitor_token_verify(k, CHANNEL, tok, EXP - 100, id, sizeof id), 0);
    cr_assert_str_eq(id, VISITOR);
    /* exactly at the expiry it is still valid; one second later it is not */
    cr_assert_eq(verify(k, CHANNEL, tok, EXP), 0);
    cr_assert_eq(verify(k, CHANNEL, tok, EXP + 1), -ETIMEDOUT);
    /* a visitor id too long for the caller's buffer */
    char small[4];
    cr_assert_eq(crypto_visitor_token_verify(k, CHANNEL, tok, EXP, small, sizeof small), SB_ELIMIT);
    cr_assert_str_eq(small, "");
    crypto_key_free(k);
}

Test(visitor, other_channel_or_key_fails, .timeout = 30)
{
    struct crypto_key *k = key(KEY_HEX), *k2 = key(KEY2_HEX);
    char tok[CRYPTO_VISITOR_TOKEN_MAX + 1];
    issue(k, CHANNEL, VISITOR, EXP, tok);
    cr_assert_eq(verify(k, CHANNEL2, tok, 0), SB_EAUTH);
    cr_assert_eq(verify(k2, CHANNEL, tok, 0), SB_EAUTH);
    /* upper-case spelling of the same UUID is another channel id, byte for byte */
    cr_assert_eq(verify(k, "0194F6A2-7C1E-7B3A-9F10-2B3C4D5E6F70", tok, 0), SB_EAUTH);
    /* a forged token that is expired reports the forgery, not the expiry */
    cr_assert_eq(verify(k, CHANNEL2, tok, EXP + 1), SB_EAUTH);
    crypto_key_free(k);
    crypto_key_free(k2);
}

/* Replaces the part after the n-th dot of tok (0-based part index) with `with`. */
static void replace_part(const char *tok, int part, const char *with, char *out, size_t outlen)
{
    char copy[CRYPTO_VISITOR_TOKEN_MAX + 1];
    snprintf(copy, sizeof copy, "%s", tok);
    char *parts[4];
    char *p = copy;
    for (int i = 0; i < 4; i++) {
        parts[i] = p;
        char *dot = strchr(p, '.');
        if (dot) {
            *dot = '\0';
            p = dot + 1;
        }
    }
    parts[part] = (char *)with;
    snprintf(out, outlen, "%s.%s.%s.%s", parts[0], parts[1], parts[2], parts[3]);
}

Test(visitor, tampered_tokens_fail, .timeout = 30)
{
    struct crypto_key *k = key(KEY_HEX);
    char tok[CRYPTO_VISITOR_TOKEN_MAX + 1], bad[CRYPTO_VISITOR_TOKEN_MAX + 1];
    issue(k, CHANNEL, VISITOR, EXP, tok);
    /* another visitor id, a later expiry */
    replace_part(tok, 1, "someone_else", bad, sizeof bad);
    cr_assert_eq(verify(k, CHANNEL, bad, 0), SB_EAUTH);
    replace_part(tok, 2, "1900000001", bad, sizeof bad);
    cr_assert_eq(verify(k, CHANNEL, bad, 0), SB_EAUTH);
    /* every single character of the MAC flipped to another base64url letter */
    size_t mac_at = strlen(tok) - 43;
    for (size_t i = mac_at; i < strlen(tok); i++) {
        snprintf(bad, sizeof bad, "%s", tok);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        int rc = verify(k, CHANNEL, bad, 0);
        /* the last character also carries 4 padding bits: a change there may
         * make the base64url non-canonical, which is malformed */
        cr_assert(rc == SB_EAUTH || (i == strlen(tok) - 1 && rc == SB_EPARSE), "flip at %zu: %d", i,
                  rc);
    }
    /* a MAC from another token of the same channel */
    char other[CRYPTO_VISITOR_TOKEN_MAX + 1];
    issue(k, CHANNEL, "other", EXP, other);
    replace_part(tok, 3, other + strlen(other) - 43, bad, sizeof bad);
    cr_assert_eq(verify(k, CHANNEL, bad, 0), SB_EAUTH);
    crypto_key_free(k);
}

Test(visitor, malformed_tokens, .timeout = 30)
{
    struct crypto_key *k = key(KEY_HEX);
    char tok[CRYPTO_VISITOR_TOKEN_MAX + 1], bad[CRYPTO_VISITOR_TOKEN_MAX + 64];
    issue(k, CHANNEL, VISITOR, EXP, tok);
    const char *mac = tok + strlen(tok) - 43;
    const char *cases[] = {
        "",
        "v1",
        "v1.",
        "v1...",
        "v2.a.1.x",
        "V1.a.1.x",
        "v1.a.1",
        "v1.a.1.x.y",
        "v1..1900000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.a b.1900000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.a.-1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.a.+1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.a.01.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.a..AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.a.1x.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.a.99999999999999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.a.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* 42 chars */
        "v1.a.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 44 chars */
        "v1.a.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  /* padding */
        "v1.a.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",  /* standard alphabet */
        "v1.a.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",  /* leftover bits set */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(verify(k, CHANNEL, cases[i], 0), SB_EPARSE, "case %zu: %s", i, cases[i]);
    cr_assert_eq(verify(k, CHANNEL, NULL, 0), SB_EPARSE);
    /* a visitor id one character too long */
    char longid[CRYPTO_VISITOR_ID_MAX + 2];
    memset(longid, 'a', CRYPTO_VISITOR_ID_MAX + 1);
    longid[CRYPTO_VISITOR_ID_MAX + 1] = '\0';
    snprintf(bad, sizeof bad, "v1.%s.%ld.%s", longid, EXP, mac);
    cr_assert_eq(verify(k, CHANNEL, bad, 0), SB_EPARSE);
    /* over CRYPTO_VISITOR_TOKEN_MAX */
    char huge[CRYPTO_VISITOR_TOKEN_MAX + 8];
    memset(huge, 'a', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    memcpy(huge, "v1.", 3);
    cr_assert_eq(verify(k, CHANNEL, huge, 0), SB_EPARSE);
    /* bad arguments */
    char id[CRYPTO_VISITOR_ID_MAX + 1];
    cr_assert_eq(crypto_visitor_token_verify(NULL, CHANNEL, tok, 0, id, sizeof id), -EINVAL);
    cr_assert_eq(crypto_visitor_token_verify(k, NULL, tok, 0, id, sizeof id), -EINVAL);
    cr_assert_eq(crypto_visitor_token_verify(k, "a.b", tok, 0, id, sizeof id), -EINVAL);
    cr_assert_eq(crypto_visitor_token_verify(k, CHANNEL, tok, 0, NULL, 0), -EINVAL);
    crypto_key_free(k);
}

Test(visitor, bad_visitor_ids_and_arguments, .timeout = 30)
{
    struct crypto_key *k = key(KEY_HEX);
    char tok[CRYPTO_VISITOR_TOKEN_MAX + 1];
    char maxid[CRYPTO_VISITOR_ID_MAX + 2];
    memset(maxid, 'Z', CRYPTO_VISITOR_ID_MAX);
    maxid[CRYPTO_VISITOR_ID_MAX] = '\0';
    cr_assert(crypto_visitor_id_valid(maxid));
    /* the longest visitor id and expiry still fit CRYPTO_VISITOR_TOKEN_MAX */
    issue(k, CHANNEL, maxid, LONG_MAX, tok);
    cr_assert_leq(strlen(tok), CRYPTO_VISITOR_TOKEN_MAX);
    char id[CRYPTO_VISITOR_ID_MAX + 1];
    cr_assert_eq(crypto_visitor_token_verify(k, CHANNEL, tok, 0, id, sizeof id), 0);
    cr_assert_str_eq(id, maxid);
    maxid[CRYPTO_VISITOR_ID_MAX] = 'Z';
    maxid[CRYPTO_VISITOR_ID_MAX + 1] = '\0';
    cr_assert_not(crypto_visitor_id_valid(maxid));

    const char *bad_ids[] = {"", "a.b", "a b", "a/b", "é", "a\nb", "a=b", "a+b", NULL, maxid};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        cr_assert_not(crypto_visitor_id_valid(bad_ids[i]), "id %zu", i);
        int rc = crypto_visitor_token_issue(k, CHANNEL, bad_ids[i], EXP, tok, sizeof tok);
        cr_assert_eq(rc, -EINVAL, "id %zu: %d", i, rc);
    }
    cr_assert_eq(crypto_visitor_token_issue(k, CHANNEL, "ok", -1, tok, sizeof tok), -EINVAL);
    cr_assert_eq(crypto_visitor_token_issue(k, "", "ok", EXP, tok, sizeof tok), -EINVAL);
    cr_assert_eq(crypto_visitor_token_issue(k, "a.b", "ok", EXP, tok, sizeof tok), -EINVAL);
    cr_assert_eq(crypto_visitor_token_issue(NULL, CHANNEL, "ok", EXP, tok, sizeof tok), -EINVAL);
    cr_assert_eq(crypto_visitor_token_issue(k, CHANNEL, "ok", EXP, NULL, 0), -EINVAL);
    /* an output buffer one byte too small */
    issue(k, CHANNEL, "ok", EXP, tok);
    size_t need = strlen(tok) + 1;
    char small[CRYPTO_VISITOR_TOKEN_MAX + 1];
    cr_assert_eq(crypto_visitor_token_issue(k, CHANNEL, "ok", EXP, small, need - 1), SB_ELIMIT);
    cr_assert_eq(crypto_visitor_token_issue(k, CHANNEL, "ok", EXP, small, need), 0);
    cr_assert_str_eq(small, tok);
    crypto_key_free(k);
}
