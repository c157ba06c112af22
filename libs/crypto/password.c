/* password.c - password hashing with scrypt (OpenSSL's EVP_PBE_scrypt) in a
 * PHC-like string: "$scrypt$ln=17,r=8,p=1$<salt>$<hash>", base64 without
 * padding. Stored strings are parsed strictly and their cost parameters are
 * bounded both ways: too weak is refused, and so is too expensive (a stored
 * string must not be able to make a login allocate gigabytes). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto.h"
#include "internal.h"

#define PW_LN       17
#define PW_R        8
#define PW_P        1
#define PW_SALT_LEN 16
#define PW_HASH_LEN 32
#define PW_LN_MIN   14
#define PW_LN_MAX   20
#define PW_R_MIN    8
#define PW_R_MAX    16
#define PW_P_MIN    1
#define PW_P_MAX    4
#define PW_SALT_MIN 16
#define PW_SALT_MAX 32
#define PW_HASH_MIN 32
#define PW_HASH_MAX 48
#define PW_PREFIX   "$scrypt$ln="

struct scrypt_params {
    unsigned ln, r, p;
};

static int scrypt_derive(const char *pw, size_t pwlen, const uint8_t *salt, size_t saltlen,
                         const struct scrypt_params *sp, uint8_t *key, size_t keylen)
{
    uint64_t n = UINT64_C(1) << sp->ln;
    /* OpenSSL needs 128*r*(N+p+2) bytes; give it that plus a little room. */
    uint64_t maxmem = 128 * (uint64_t)sp->r * (n + sp->p + 2) + 65536;
    if (EVP_PBE_scrypt(pw, pwlen, salt, saltlen, n, sp->r, sp->p, maxmem, key, keylen) != 1) {
        crypto__clear_errors();
        return -ENOMEM;
    }
    return 0;
}

static bool scrypt_params_ok(const struct scrypt_params *sp)
{
    if (sp->ln < PW_LN_MIN || sp->ln > PW_LN_MAX || sp->r < PW_R_MIN || sp->r > PW_R_MAX ||
        sp->p < PW_P_MIN || sp->p > PW_P_MAX)
        return false;
    return 128 * (uint64_t)sp->r * (UINT64_C(1) << sp->ln) <= (uint64_t)CRYPTO_PASSWORD_MEM_MAX;
}

int crypto_password_hash(const char *password, char *out, size_t outlen)
{
    if (!password)
        return -EINVAL;
    size_t pwlen = strnlen(password, CRYPTO_PASSWORD_MAX + 1);
    if (pwlen > CRYPTO_PASSWORD_MAX || !out)
        return SB_ELIMIT;
    const struct scrypt_params sp = {PW_LN, PW_R, PW_P};
    /* Room is checked before the slow part: prefix, salt, "$", hash, NUL. */
    int len = snprintf(out, outlen, PW_PREFIX "%u,r=%u,p=%u$", sp.ln, sp.r, sp.p);
    if (len < 0 ||
        (size_t)len + CRYPTO_BASE64URL_SIZE(PW_SALT_LEN) + CRYPTO_BASE64URL_SIZE(PW_HASH_LEN) >
            outlen) {
        if (outlen > 0)
            out[0] = '\0';
        return SB_ELIMIT;
    }
    uint8_t salt[PW_SALT_LEN];
    uint8_t hash[PW_HASH_LEN];
    int rc = crypto_random(salt, sizeof salt);
    if (rc == 0)
        rc = scrypt_derive(password, pwlen, salt, sizeof salt, &sp, hash, sizeof hash);
    if (rc == 0) {
        size_t o = (size_t)len;
        (void)crypto__b64_encode(CRYPTO__B64_STD_NOPAD, salt, sizeof salt, out + o, outlen - o);
        o += strlen(out + o);
        out[o++] = '$';
        (void)crypto__b64_encode(CRYPTO__B64_STD_NOPAD, hash, sizeof hash, out + o, outlen - o);
    } else {
        out[0] = '\0';
    }
    OPENSSL_cleanse(hash, sizeof hash);
    return rc;
}

/* Reads 1..2 decimal digits without a leading zero; advances *s. */
static bool parse_small(const char **s, unsigned *out)
{
    const char *p = *s;
    if (p[0] < '1' || p[0] > '9')
        return false;
    unsigned v = (unsigned)(p[0] - '0');
    p++;
    if (p[0] >= '0' && p[0] <= '9') {
        v = v * 10 + (unsigned)(p[0] - '0');
        p++;
    }
    *s = p;
    *out = v;
    return true;
}

static bool parse_literal(const char **s, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(*s, lit, n) != 0)
        return false;
    *s += n;
    return true;
}

/* Parses a stored string into its parameters, salt and hash. */
static int parse_stored(const char *stored, struct scrypt_params *sp, uint8_t *salt,
                        size_t *saltlen, uint8_t *hash, size_t *hashlen)
{
    if (strnlen(stored, CRYPTO_PASSWORD_HASH_MAX) >= CRYPTO_PASSWORD_HASH_MAX)
        return SB_EPARSE;
    const char *s = stored;
    if (!parse_literal(&s, PW_PREFIX) || !parse_small(&s, &sp->ln) || !parse_literal(&s, ",r=") ||
        !parse_small(&s, &sp->r) || !parse_literal(&s, ",p=") || !parse_small(&s, &sp->p) ||
        !parse_literal(&s, "$"))
        return SB_EPARSE;
    if (!scrypt_params_ok(sp))
        return SB_EPARSE;
    const char *dollar = strchr(s, '$');
    if (!dollar)
        return SB_EPARSE;
    if (crypto__b64_decode(CRYPTO__B64_STD_NOPAD, s, (size_t)(dollar - s), salt, PW_SALT_MAX,
                           saltlen) < 0 ||
        *saltlen < PW_SALT_MIN)
        return SB_EPARSE;
    s = dollar + 1;
    if (crypto__b64_decode(CRYPTO__B64_STD_NOPAD, s, strlen(s), hash, PW_HASH_MAX, hashlen) < 0 ||
        *hashlen < PW_HASH_MIN)
        return SB_EPARSE;
    return 0;
}

int crypto_password_verify(const char *password, const char *stored)
{
    if (!password || !stored)
        return -EINVAL;
    size_t pwlen = strnlen(password, CRYPTO_PASSWORD_MAX + 1);
    if (pwlen > CRYPTO_PASSWORD_MAX)
        return SB_ELIMIT;
    struct scrypt_params sp;
    uint8_t salt[PW_SALT_MAX], want[PW_HASH_MAX], got[PW_HASH_MAX];
    size_t saltlen = 0, hashlen = 0;
    int rc = parse_stored(stored, &sp, salt, &saltlen, want, &hashlen);
    if (rc < 0)
        return rc;
    rc = scrypt_derive(password, pwlen, salt, saltlen, &sp, got, hashlen);
    if (rc == 0)
        rc = crypto_equal(got, hashlen, want, hashlen) ? 0 : SB_EAUTH;
    OPENSSL_cleanse(got, sizeof got);
    OPENSSL_cleanse(want, sizeof want);
    return rc;
}
