/* test_hash.c - SHA-256 and HMAC-SHA256 known answers (FIPS 180-2 examples,
 * RFC 4231), CSPRNG bytes and tokens, constant-time equality. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

static void assert_hex(const uint8_t *bytes, size_t n, const char *want)
{
    char hex[2 * 64 + 1];
    cr_assert_eq(crypto_hex_encode(bytes, n, hex, sizeof hex), 0);
    cr_assert_str_eq(hex, want);
}

Test(sha256, known_vectors, .timeout = 30)
{
    uint8_t d[CRYPTO_SHA256_LEN];
    crypto_sha256(NULL, 0, d);
    assert_hex(d, sizeof d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    crypto_sha256("abc", 3, d);
    assert_hex(d, sizeof d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    crypto_sha256(two_blocks, strlen(two_blocks), d);
    assert_hex(d, sizeof d, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    size_t million = 1000000;
    char *a = malloc(million);
    cr_assert_not_null(a);
    memset(a, 'a', million);
    crypto_sha256(a, million, d);
    free(a);
    assert_hex(d, sizeof d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

struct hmac_case {
    uint8_t key[131];
    size_t keylen;
    const char *data;
    size_t datalen;
    const char *mac; /* hex; case 5 compares only its first 16 bytes */
};

static void fill(uint8_t *p, uint8_t v, size_t n)
{
    memset(p, v, n);
}

Test(hmac, rfc4231_vectors, .timeout = 30)
{
    static struct hmac_case c[7];
    uint8_t dd[50], cd[50];
    fill(dd, 0xdd, sizeof dd);
    fill(cd, 0xcd, sizeof cd);
    fill(c[0].key, 0x0b, c[0].keylen = 20);
    c[0].data = "Hi There";
    c[0].mac = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
    memcpy(c[1].key, "Jefe", c[1].keylen = 4);
    c[1].data = "what do ya want for nothing?";
    c[1].mac = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    fill(c[2].key, 0xaa, c[2].keylen = 20);
    c[2].data = (const char *)dd;
    c[2].datalen = sizeof dd;
    c[2].mac = "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe";
    for (size_t i = 0; i < 25; i++)
        c[3].key[i] = (uint8_t)(i + 1);
    c[3].keylen = 25;
    c[3].data = (const char *)cd;
    c[3].datalen = sizeof cd;
    c[3].mac = "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b";
    fill(c[4].key, 0x0c, c[4].keylen = 20);
    c[4].data = "Test With Truncation";
    c[4].mac = "a3b6167473100ee06e0c796c2955552b";
    fill(c[5].key, 0xaa, c[5].keylen = 131);
    c[5].data = "Test Using Larger Than Block-Size Key - Hash Key First";
    c[5].mac = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
    fill(c[6].key, 0xaa, c[6].keylen = 131);
    c[6].data = "This is a test using a larger than block-size key and a larger than "
                "block-size data. The key needs to be hashed before being used by the "
                "HMAC algorithm.";
    c[6].mac = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2";
    for (size_t i = 0; i < 7; i++) {
        size_t dl = c[i].datalen ? c[i].datalen : strlen(c[i].data);
        uint8_t mac[CRYPTO_SHA256_LEN];
        crypto_hmac_sha256(c[i].key, c[i].keylen, c[i].data, dl, mac);
        assert_hex(mac, strlen(c[i].mac) / 2, c[i].mac);
    }
}

Test(hmac, empty_key_and_data, .timeout = 30)
{
    uint8_t mac[CRYPTO_SHA256_LEN];
    crypto_hmac_sha256(NULL, 0, NULL, 0, mac);
    assert_hex(mac, sizeof mac, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    crypto_hmac_sha256("", 0, "abc", 3, mac);
    assert_hex(mac, sizeof mac, "fd7adb152c05ef80dccf50a1fa4c05d5a3ec6da95575fc312ae7c5d091836351");
}

Test(hmac, parts_equal_concatenation, .timeout = 30)
{
    const char *whole = "what do ya want for nothing?";
    struct sb_str parts[] = {{"what do", 7}, {NULL, 0}, {" ya want", 8}, {" for nothing?", 13}};
    uint8_t a[CRYPTO_SHA256_LEN], b[CRYPTO_SHA256_LEN];
    cr_assert_eq(crypto_hmac_sha256_parts("Jefe", 4, parts, 4, a), 0);
    crypto_hmac_sha256("Jefe", 4, whole, strlen(whole), b);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    assert_hex(a, sizeof a, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* A different split of other bytes must not collide. */
    struct sb_str other[] = {{"what do", 7}, {" ya want for nothing!", 21}};
    cr_assert_eq(crypto_hmac_sha256_parts("Jefe", 4, other, 2, b), 0);
    cr_assert_neq(memcmp(a, b, sizeof a), 0);
}

/* Each thread keys its own reused context: MACs computed at the same time
 * on several threads, each switching keys, match the one-thread answers. */
#define HMAC_THREADS 4
#define HMAC_ROUNDS  500

static void *hmac_worker(void *arg)
{
    const uint8_t *want = arg; /* [2][CRYPTO_SHA256_LEN]: key "Jefe", then key "k" */
    uint8_t mac[CRYPTO_SHA256_LEN];
    const char *msg = "what do ya want for nothing?";
    for (int i = 0; i < HMAC_ROUNDS; i++) {
        const char *key = i % 2 ? "k" : "Jefe";
        crypto_hmac_sha256(key, strlen(key), msg, strlen(msg), mac);
        if (memcmp(mac, want + (i % 2) * CRYPTO_SHA256_LEN, sizeof mac) != 0)
            return (void *)1;
    }
    return NULL;
}

Test(hmac, threads_switching_keys_agree, .timeout = 60)
{
    const char *msg = "what do ya want for nothing?";
    uint8_t want[2][CRYPTO_SHA256_LEN];
    crypto_hmac_sha256("Jefe", 4, msg, strlen(msg), want[0]);
    crypto_hmac_sha256("k", 1, msg, strlen(msg), want[1]);
    assert_hex(want[0], CRYPTO_SHA256_LEN,
               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    pthread_t t[HMAC_THREADS];
    for (int i = 0; i < HMAC_THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, hmac_worker, want), 0);
    for (int i = 0; i < HMAC_THREADS; i++) {
        void *res = (void *)1;
        cr_assert_eq(pthread_join(t[i], &res), 0);
        cr_assert_null(res, "thread %d computed a wrong MAC", i);
    }
}

Test(hmac, null_key_with_a_length_is_refused, .timeout = 30)
{
    uint8_t mac[CRYPTO_SHA256_LEN];
    struct sb_str part = {"abc", 3};
    /* A NULL key to OpenSSL means "the previous key": never reuse another's. */
    crypto_hmac_sha256("Jefe", 4, "abc", 3, mac);
    cr_assert_eq(crypto_hmac_sha256_parts(NULL, 4, &part, 1, mac), -EINVAL);
}

Test(random, fills_and_differs, .timeout = 30)
{
    uint8_t a[32] = {0}, b[32] = {0}, zero[32] = {0};
    cr_assert_eq(crypto_random(a, sizeof a), 0);
    cr_assert_eq(crypto_random(b, sizeof b), 0);
    cr_assert_neq(memcmp(a, zero, sizeof a), 0);
    cr_assert_neq(memcmp(a, b, sizeof a), 0);
    cr_assert_eq(crypto_random(NULL, 0), 0);
}

static bool all_base64url(const char *s)
{
    for (; *s; s++) {
        char c = *s;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok)
            return false;
    }
    return true;
}

Test(random, tokens, .timeout = 30)
{
    char a[CRYPTO_BASE64URL_SIZE(32)], b[sizeof a];
    cr_assert_eq(sizeof a, 44);
    cr_assert_eq(crypto_random_token(32, a, sizeof a), 0);
    cr_assert_eq(crypto_random_token(32, b, sizeof b), 0);
    cr_assert_eq(strlen(a), 43);
    cr_assert(all_base64url(a), "%s", a);
    cr_assert_str_neq(a, b);
    uint8_t raw[32];
    size_t rawlen = 0;
    cr_assert_eq(crypto_base64url_decode(a, strlen(a), raw, sizeof raw, &rawlen), 0);
    cr_assert_eq(rawlen, 32);
}

Test(random, token_limits, .timeout = 30)
{
    char out[CRYPTO_BASE64URL_SIZE(CRYPTO_TOKEN_BYTES_MAX) + 8];
    cr_assert_eq(crypto_random_token(32, out, 43), SB_ELIMIT); /* no room for the NUL */
    cr_assert_eq(crypto_random_token(32, NULL, 0), SB_ELIMIT);
    cr_assert_eq(crypto_random_token(0, out, sizeof out), -EINVAL);
    cr_assert_eq(crypto_random_token(CRYPTO_TOKEN_BYTES_MAX + 1, out, sizeof out), SB_ELIMIT);
    cr_assert_eq(crypto_random_token(CRYPTO_TOKEN_BYTES_MAX, out, sizeof out), 0);
    cr_assert_eq(strlen(out), CRYPTO_BASE64URL_SIZE(CRYPTO_TOKEN_BYTES_MAX) - 1);
    cr_assert_eq(crypto_random_token(1, out, 3), 0);
    cr_assert_eq(strlen(out), 2);
}

Test(equal, edge_cases, .timeout = 30)
{
    cr_assert(crypto_equal(NULL, 0, NULL, 0));
    cr_assert(crypto_equal("", 0, "x", 0));
    cr_assert(crypto_equal("abc", 3, "abc", 3));
    cr_assert_not(crypto_equal("abc", 3, "abd", 3));
    cr_assert_not(crypto_equal("abc", 3, "xbc", 3));
    cr_assert_not(crypto_equal("abc", 3, "abcd", 4));
    cr_assert_not(crypto_equal("abc", 3, "ab", 2));
    cr_assert_not(crypto_equal("a", 1, NULL, 0));
    uint8_t x[64], y[64];
    memset(x, 0x5a, sizeof x);
    memcpy(y, x, sizeof y);
    cr_assert(crypto_equal(x, sizeof x, y, sizeof y));
    y[63] ^= 0x80;
    cr_assert_not(crypto_equal(x, sizeof x, y, sizeof y));
    /* Bytes past the given length are not looked at. */
    cr_assert(crypto_equal(x, 63, y, 63));
}
