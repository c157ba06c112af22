/* seal.c - secrets at rest: AES-256-GCM under a master key, with a random
 * 96-bit nonce per blob and the caller's context string as associated data;
 * and purpose-bound subkeys derived from the same master key. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto.h"
#include "internal.h"

#define SEAL_VERSION   0x01
#define SEAL_KEY_LEN   32
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN   16
#define SEAL_HEX_LEN   (2 * SEAL_KEY_LEN)

struct crypto_key {
    uint8_t bytes[SEAL_KEY_LEN];
};

struct crypto_key *crypto_key_new(const char *hex, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    *err = SB_ECONFIG;
    if (!hex || strnlen(hex, SEAL_HEX_LEN + 1) != SEAL_HEX_LEN)
        return NULL;
    struct crypto_key *k = malloc(sizeof *k);
    if (!k) {
        *err = -ENOMEM;
        return NULL;
    }
    size_t len = 0;
    if (crypto_hex_decode(hex, SEAL_HEX_LEN, k->bytes, sizeof k->bytes, &len) < 0) {
        crypto_key_free(k);
        return NULL;
    }
    *err = 0;
    return k;
}

void crypto_key_free(struct crypto_key *k)
{
    if (!k)
        return;
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

int crypto_key_derive(const struct crypto_key *k, const char *label, uint8_t out[32])
{
    if (!k || !label || !out)
        return -EINVAL;
    size_t len = strnlen(label, CRYPTO_KEY_LABEL_MAX + 1);
    if (len == 0)
        return -EINVAL;
    if (len > CRYPTO_KEY_LABEL_MAX)
        return SB_ELIMIT;
    struct sb_str part = {label, len};
    return crypto_hmac_sha256_parts(k->bytes, sizeof k->bytes, &part, 1, out);
}

/* Checks the aad and returns its length in *len; NULL counts as "". */
static int seal_aad(const char **aad, size_t *len)
{
    if (!*aad)
        *aad = "";
    *len = strnlen(*aad, CRYPTO_AAD_MAX + 1);
    return *len > CRYPTO_AAD_MAX ? SB_ELIMIT : 0;
}

/* Runs one AES-256-GCM pass (enc 1 = encrypt, 0 = decrypt) of n bytes from
 * in to out; tag is written (encrypt) or checked (decrypt). n <= CRYPTO_SEAL_MAX. */
static int seal_gcm(int enc, const struct crypto_key *k, const uint8_t *nonce, const char *aad,
                    size_t aadlen, const uint8_t *in, size_t n, uint8_t *out, uint8_t *tag)
{
    int rc = -ENOMEM;
    int len = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        goto done;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->bytes, nonce, enc) != 1)
        goto done;
    if (aadlen > 0 &&
        EVP_CipherUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)aadlen) != 1)
        goto done;
    if (n > 0 && EVP_CipherUpdate(ctx, out, &len, in, (int)n) != 1)
        goto done;
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, tag) != 1)
        goto done;
    if (EVP_CipherFinal_ex(ctx, out + n, &len) != 1) {
        rc = enc ? -EIO : SB_EAUTH;
        goto done;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN, tag) != 1)
        goto done;
    rc = 0;
done:
    if (rc < 0)
        crypto__clear_errors();
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int crypto_seal(const struct crypto_key *k, const char *aad, const void *plain, size_t n,
                uint8_t **out, size_t *outlen)
{
    if (!out || !outlen)
        return -EINVAL;
    *out = NULL;
    if (!k || (n > 0 && !plain))
        return -EINVAL;
    size_t aadlen = 0;
    if (n > CRYPTO_SEAL_MAX || seal_aad(&aad, &aadlen) < 0)
        return SB_ELIMIT;
    size_t total = n + CRYPTO_SEAL_OVERHEAD;
    uint8_t *blob = malloc(total);
    if (!blob)
        return -ENOMEM;
    blob[0] = SEAL_VERSION;
    uint8_t *nonce = blob + 1;
    uint8_t *cipher = nonce + SEAL_NONCE_LEN;
    int rc = crypto_random(nonce, SEAL_NONCE_LEN);
    if (rc == 0)
        rc = seal_gcm(1, k, nonce, aad, aadlen, plain, n, cipher, cipher + n);
    if (rc < 0) {
        free(blob);
        return rc;
    }
    *out = blob;
    *outlen = total;
    return 0;
}

int crypto_open(const struct crypto_key *k, const char *aad, const uint8_t *blob, size_t n,
                uint8_t **out, size_t *outlen)
{
    if (!out || !outlen)
        return -EINVAL;
    *out = NULL;
    if (!k || (n > 0 && !blob))
        return -EINVAL;
    size_t aadlen = 0;
    if (n > CRYPTO_SEAL_MAX + CRYPTO_SEAL_OVERHEAD || seal_aad(&aad, &aadlen) < 0)
        return SB_ELIMIT;
    if (n < CRYPTO_SEAL_OVERHEAD || blob[0] != SEAL_VERSION)
        return SB_EPARSE;
    size_t plainlen = n - CRYPTO_SEAL_OVERHEAD;
    const uint8_t *nonce = blob + 1;
    const uint8_t *cipher = nonce + SEAL_NONCE_LEN;
    uint8_t tag[SEAL_TAG_LEN];
    memcpy(tag, cipher + plainlen, SEAL_TAG_LEN);
    /* Room for the plaintext, its NUL, and a block EVP may touch at final. */
    uint8_t *plain = malloc(plainlen + 1 + SEAL_TAG_LEN);
    if (!plain)
        return -ENOMEM;
    int rc = seal_gcm(0, k, nonce, aad, aadlen, cipher, plainlen, plain, tag);
    if (rc < 0) {
        OPENSSL_cleanse(plain, plainlen + 1 + SEAL_TAG_LEN);
        free(plain);
        return rc;
    }
    plain[plainlen] = '\0';
    *out = plain;
    *outlen = plainlen;
    return 0;
}
