/* hash.c - the primitives: CSPRNG bytes and tokens, SHA-256, HMAC-SHA256 and
 * constant-time comparison. */
#include <limits.h>
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

int crypto_hmac_sha256_parts(const void *key, size_t keylen, const struct sb_str *parts,
                             size_t nparts, uint8_t out[CRYPTO_SHA256_LEN])
{
    static const uint8_t empty[1];
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    int rc = -ENOMEM;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    if (!ctx)
        goto done;
    /* A NULL key would mean "keep the previous key"; an empty key is a real key. */
    if (EVP_MAC_init(ctx, keylen > 0 ? key : empty, keylen, params) != 1)
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
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
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
