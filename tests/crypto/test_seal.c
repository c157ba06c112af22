/* test_seal.c - secrets at rest: AES-256-GCM blobs bound to a context string,
 * and the master key parser. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "crypto.h"

#define KEY_HEX  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY2_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1e"
#define AAD      "channel:0194f6a2-7c1e-7b3a-9f10-2b3c4d5e6f70:app_secret"
#define SECRET   "EAAGm0PX4ZCpsBA-super-secret-token"

static struct crypto_key *key(const char *hex)
{
    int err = 1;
    struct crypto_key *k = crypto_key_new(hex, &err);
    cr_assert_not_null(k);
    cr_assert_eq(err, 0);
    return k;
}

static void seal(const struct crypto_key *k, const char *aad, const char *plain, uint8_t **blob,
                 size_t *n)
{
    cr_assert_eq(crypto_seal(k, aad, plain, strlen(plain), blob, n), 0);
    cr_assert_eq(*n, strlen(plain) + CRYPTO_SEAL_OVERHEAD);
}

Test(seal, round_trip, .timeout = 30)
{
    struct crypto_key *k = key(KEY_HEX);
    uint8_t *blob = NULL, *plain = NULL;
    size_t n = 0, plen = 0;
    seal(k, AAD, SECRET, &blob, &n);
    cr_assert_eq(blob[0], 0x01);
    cr_assert_null(memmem(blob, n, SECRET, strlen(SECRET)), "plaintext visible in the blob");
    cr_assert_eq(crypto_open(k, AAD, blob, n, &plain, &plen), 0);
    cr_assert_eq(plen, strlen(SECRET));
    cr_assert_str_eq((char *)plain, SECRET); /* NUL-terminated */
    free(plain);
    /* A second seal of the same secret uses a fresh nonce. */
    uint8_t *blob2 = NULL;
    size_t n2 = 0;
    seal(k, AAD, SECRET, &blob2, &n2);
    cr_assert_neq(memcmp(blob, blob2, n), 0);
    cr_assert_neq(memcmp(blob + 1, blob2 + 1, 12), 0);
    free(blob2);
    free(blob);
    crypto_key_free(k);
}

Test(seal, empty_plaintext_and_null_aad, .timeout = 30)
{
    struct crypto_key *k = key(KEY_HEX);
    uint8_t *blob = NULL, *plain = NULL;
    size_t n = 0, plen = 99;
    cr_assert_eq(crypto_seal(k, NULL, NULL, 0, &blob, &n), 0);
    cr_assert_eq(n, CRYPTO_SEAL_OVERHEAD);
    cr_assert_eq(crypto_open(k, "", blob, n, &plain, &plen), 0); /* NULL aad means "" */
    cr_assert_eq(plen, 0);
    cr_assert_eq(plain[0], '\0');
    free(plain);
    cr_assert_eq(crypto_open(k, "x", blob, n, &plain, &plen), SB_EAUTH);
    cr_assert_null(plain);
    free(blob);
    crypto_key_free(k);
}

Test(seal, wrong_key_or_aad_fails, .timeout = 30)
{
    struct crypto_key *k = key(KEY_HEX);
    struct crypto_key *k2 = key(KEY2_HEX);
    uint8_t *blob = NULL, *plain = (uint8_t *)"sentinel";
    size_t n = 0, plen = 0;
    seal(k, AAD, SECRET, &blob, &n);
    ERR_clear_error();
    cr_assert_eq(crypto_open(k2, AAD, blob, n, &plain, &plen), SB_EAUTH);
    cr_assert_null(plain);
    /* Nothing is left on OpenSSL's error queue for libcurl & co. to trip over. */
    cr_assert_eq(ERR_peek_error(), 0);
    cr_assert_eq(crypto_open(k, "channel:other:app_secret", blob, n, &plain, &plen), SB_EAUTH);
    cr_assert_eq(crypto_open(k, AAD "x", blob, n, &plain, &plen), SB_EAUTH);
    cr_assert_eq(crypto_open(k, NULL, blob, n, &plain, &plen), SB_EAUTH);
    free(blob);
    crypto_key_free(k2);
    crypto_key_free(k);
}

Test(seal, every_flipped_byte_fails, .timeout = 30)
{
    struct crypto_key *k = key(KEY_HEX);
    uint8_t *blob = NULL, *plain = NULL;
    size_t n = 0, plen = 0;
    seal(k, AAD, SECRET, &blob, &n);
    /* Nonce, ciphertext and tag bytes (the version byte is checked separately). */
    for (size_t i = 1; i < n; i++) {
        blob[i] ^= 0x01;
        cr_assert_eq(crypto_open(k, AAD, blob, n, &plain, &plen), SB_EAUTH, "byte %zu", i);
        cr_assert_null(plain);
        blob[i] ^= 0x01;
    }
    cr_assert_eq(crypto_open(k, AAD, blob, n, &plain, &plen), 0);
    free(plain);
    blob[0] = 0x02;
    cr_assert_eq(crypto_open(k, AAD, blob, n, &plain, &plen), SB_EPARSE);
    free(blob);
    crypto_key_free(k);
}

Test(seal, truncated_blob, .timeout = 30)
{
    struct crypto_key *k = key(KEY_HEX);
    uint8_t *blob = NULL, *plain = NULL;
    size_t n = 0, plen = 0;
    seal(k, AAD, SECRET, &blob, &n);
    cr_assert_eq(crypto_open(k, AAD, blob, n - 1, &plain, &plen), SB_EAUTH);
    cr_assert_eq(crypto_open(k, AAD, blob, CRYPTO_SEAL_OVERHEAD, &plain, &plen), SB_EAUTH);
    cr_assert_eq(crypto_open(k, AAD, blob, CRYPTO_SEAL_OVERHEAD - 1, &plain, &plen), SB_EPARSE);
    cr_assert_eq(crypto_open(k, AAD, blob, 1, &plain, &plen), SB_EPARSE);
    cr_assert_eq(crypto_open(k, AAD, blob, 0, &plain, &plen), SB_EPARSE);
    cr_assert_null(plain);
    free(blob);
    crypto_key_free(k);
}

Test(seal, limits_and_arguments, .timeout = 30)
{
    struct crypto_key *k = key(KEY_HEX);
    uint8_t *blob = NULL;
    size_t n = 0;
    char *big = calloc(1, CRYPTO_SEAL_MAX + 1);
    cr_assert_eq(crypto_seal(k, AAD, big, CRYPTO_SEAL_MAX + 1, &blob, &n), SB_ELIMIT);
    cr_assert_null(blob);
    cr_assert_eq(
        crypto_open(k, AAD, (uint8_t *)big, CRYPTO_SEAL_MAX + CRYPTO_SEAL_OVERHEAD + 1, &blob, &n),
        SB_ELIMIT);
    char *aad = malloc(CRYPTO_AAD_MAX + 2);
    memset(aad, 'a', CRYPTO_AAD_MAX + 1);
    aad[CRYPTO_AAD_MAX + 1] = '\0';
    cr_assert_eq(crypto_seal(k, aad, "x", 1, &blob, &n), SB_ELIMIT);
    aad[CRYPTO_AAD_MAX] = '\0';
    cr_assert_eq(crypto_seal(k, aad, "x", 1, &blob, &n), 0);
    uint8_t *plain = NULL;
    cr_assert_eq(crypto_open(k, aad, blob, n, &plain, &n), 0);
    free(plain);
    free(blob);
    free(aad);
    free(big);
    cr_assert_eq(crypto_seal(NULL, AAD, "x", 1, &blob, &n), -EINVAL);
    cr_assert_eq(crypto_seal(k, AAD, NULL, 1, &blob, &n), -EINVAL);
    cr_assert_eq(crypto_open(NULL, AAD, (const uint8_t *)"x", 1, &blob, &n), -EINVAL);
    crypto_key_free(k);
}

Test(seal, master_key_hex, .timeout = 30)
{
    static const char *bad[] = {
        "",
        "00",
        /* 63 and 65 characters */
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f0",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g",
        " 00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
        NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int err = 0;
        cr_assert_null(crypto_key_new(bad[i], &err), "accepted %s", bad[i] ? bad[i] : "(null)");
        cr_assert_eq(err, SB_ECONFIG);
    }
    cr_assert_null(crypto_key_new("xyz", NULL)); /* err is optional */
    /* Upper case is the same key. */
    struct crypto_key *lower = key(KEY_HEX);
    struct crypto_key *upper =
        key("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
    uint8_t *blob = NULL, *plain = NULL;
    size_t n = 0, plen = 0;
    seal(lower, AAD, SECRET, &blob, &n);
    cr_assert_eq(crypto_open(upper, AAD, blob, n, &plain, &plen), 0);
    free(plain);
    free(blob);
    crypto_key_free(upper);
    crypto_key_free(lower);
    crypto_key_free(NULL);
}
