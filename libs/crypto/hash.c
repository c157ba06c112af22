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
 * every MAC and re-keyed with the empty key afterwards (OpenSSL wipes the
 * previous key then), and frees it when it exits. The algorithm is fetched
 * on first use, and again after a failed attempt. */
static pthread_mutex_t hmac_mu = PTHREAD_MUTEX_INITIALIZER;
static EVP_MAC *hmac_alg;   /* under hmac_mu */
static pthread_key_t hmac_key;
static bool hmac_key_ok;    /* under hmac_mu */
static _Thread_local EVP_MAC_CTX *hmac_tl;

static void hmac_ctx_free(void *ctx)
{
    hmac_tl = NULL; /* runs on the exiting thread: its own context */
    EVP_MAC_CTX_free(ctx);
}

/* A new HMAC-SHA256 context; *cached tells whether it became this thread's. */
static EVP_MAC_CTX *hmac_ctx_new(bool *cached)
{
    pthread_mutex_lock(&hmac_mu);
    if (!hmac_alg)
        hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (hmac_alg && !hmac_key_ok)
        hmac_key_ok = pthread_key_create(&hmac_key, hmac_ctx_free) == 0;
    EVP_MAC *alg = hmac_alg;
    bool keyed = hmac_key_ok;
    pthread_mutex_unlock(&hmac_mu);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC_CTX *ctx = alg ? EVP_MAC_CTX_new(alg) : NULL;
    if (ctx && EVP_MAC_CTX_set_params(ctx, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    *cached = ctx && keyed && pthread_setspecific(hmac_key, ctx) == 0;
    if (*cached)
        hmac_tl = ctx;
    return ctx;
}

/* Forgets this thread's context (after a failure, so no key stays in it). */
static void hmac_ctx_drop(EVP_MAC_CTX *ctx, bool cached)
{
    if (cached) {
        hmac_tl = NULL;
        (void)pthread_setspecific(hmac_key, NULL);
    }
    EVP_MAC_CTX_free(ctx);
}

int crypto_hmac_sha256_parts(const void *key, size_t keylen, const struct sb_str *parts,
                             size_t nparts, uint8_t out[CRYPTO_SHA256_LEN])
{
    static const uint8_t empty[1];
    if (!key && keylen > 0)
        return -EINVAL;
    bool cached = hmac_tl != NULL;
    EVP_MAC_CTX *ctx = cached ? hmac_tl : hmac_ctx_new(&cached);
    if (!ctx) {
        crypto__clear_errors();
        return -ENOMEM;
    }
    /* A NULL key would mean "keep the previous key"; an empty key is a real key. */
    bool ok = EVP_MAC_init(ctx, keylen > 0 ? key : empty, keylen, NULL) == 1;
    for (size_t i = 0; ok && i < nparts; i++)
        ok = parts[i].len == 0 ||
             EVP_MAC_update(ctx, (const unsigned char *)parts[i].ptr, parts[i].len) == 1;
    size_t len = 0;
    ok = ok && EVP_MAC_final(ctx, out, &len, CRYPTO_SHA256_LEN) == 1 && len == CRYPTO_SHA256_LEN;
    /* Drop the key now rather than at the next MAC or at thread exit. */
    bool wiped = cached && EVP_MAC_init(ctx, empty, 0, NULL) == 1;
    if (!wiped)
        hmac_ctx_drop(ctx, cached);
    if (!ok)
        crypto__clear_errors();
    return ok ? 0 : -ENOMEM;
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
