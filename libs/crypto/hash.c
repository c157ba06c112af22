/* hash.c - the primitives: CSPRNG bytes and tokens, SHA-256, HMAC-SHA256 and
 * constant-time comparison. */
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "crypto.h"
#include "internal.h"

void crypto__clear_errors(void)
{
    ERR_clear_error();
}

int crypto_random(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        if (RAND_bytes(p, chunk) != 1) {
            crypto__clear_errors();
            return -EIO;
        }
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

int crypto_random_token(size_t nbytes, char *out, size_t outlen)
{
    if (nbytes == 0)
        return -EINVAL;
    if (nbytes > CRYPTO_TOKEN_BYTES_MAX || !out || outlen < CRYPTO_BASE64URL_SIZE(nbytes))
        return SB_ELIMIT;
    uint8_t raw[CRYPTO_TOKEN_BYTES_MAX];
    int rc = crypto_random(raw, nbytes);
    if (rc == 0)
        rc = crypto_base64url_encode(raw, nbytes, out, outlen);
    OPENSSL_cleanse(raw, sizeof raw);
    return rc;
}

void crypto_sha256(const void *data, size_t n, uint8_t out[CRYPTO_SHA256_LEN])
{
    static const uint8_t empty[1];
    unsigned int len = 0;
    if (EVP_Digest(n > 0 ? data : empty, n, out, &len, EVP_sha256(), NULL) != 1 ||
        len != CRYPTO_SHA256_LEN)
        abort(); /* only on allocation failure inside OpenSSL: never return a bogus digest */
}

/* HMAC contexts are costly to make (OpenSSL 3 looks the algorithm up in its
 * provider store under a lock), so each thread keeps one, keyed afresh for
 * every MAC, and frees it when it exits. The algorithm is fetched once. */
static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static pthread_key_t hmac_key;
static bool hmac_key_ok;
static _Thread_local EVP_MAC_CTX *hmac_tl;

static void hmac_ctx_free(void *ctx)
{
    EVP_MAC_CTX_free(ctx);
}

static void hmac_setup(void)
{
    hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    hmac_key_ok = pthread_key_create(&hmac_key, hmac_ctx_free) == 0;
}

/* This thread's HMAC-SHA256 context, or NULL when OpenSSL is out of memory. */
static EVP_MAC_CTX *hmac_ctx(void)
{
    if (hmac_tl)
        return hmac_tl;
    if (pthread_once(&hmac_once, hmac_setup) != 0 || !hmac_alg || !hmac_key_ok)
        return NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac_alg);
    if (!ctx || EVP_MAC_CTX_set_params(ctx, params) != 1 ||
        pthread_setspecific(hmac_key, ctx) != 0) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return hmac_tl = ctx;
}

int crypto_hmac_sha256_parts(const void *key, size_t keylen, const struct sb_str *parts,
                             size_t nparts, uint8_t out[CRYPTO_SHA256_LEN])
{
    static const uint8_t empty[1];
    int rc = -ENOMEM;
    EVP_MAC_CTX *ctx = hmac_ctx();
    /* A NULL key would mean "keep the previous key"; an empty key is a real key. */
    if (!ctx || EVP_MAC_init(ctx, keylen > 0 ? key : empty, keylen, NULL) != 1)
        goto done;
    for (size_t i = 0; i < nparts; i++) {
        if (parts[i].len > 0 &&
            EVP_MAC_update(ctx, (const unsigned char *)parts[i].ptr, parts[i].len) != 1)
            goto done;
    }
    size_t len = 0;
    if (EVP_MAC_final(ctx, out, &len, CRYPTO_SHA256_LEN) != 1 || len != CRYPTO_SHA256_LEN)
        goto done;
    rc = 0;
done:
    if (rc < 0)
        crypto__clear_errors();
    return rc;
}

void crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                        uint8_t out[CRYPTO_SHA256_LEN])
{
    struct sb_str part = {data, n};
    if (crypto_hmac_sha256_parts(key, keylen, &part, 1, out) < 0)
        abort(); /* only on allocation failure inside OpenSSL: never return a bogus MAC */
}

bool crypto_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen)
        return false;
    if (alen == 0)
        return true;
    return CRYPTO_memcmp(a, b, alen) == 0;
}
