/* visitor.c - web widget visitor tokens: an HMAC, under a per-channel subkey
 * of the master key, over the channel, the visitor id and an expiry. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto.h"

#define VT_VERSION       "v1"
#define VT_LABEL_PREFIX  "visitor-token:"
#define VT_EXP_MAX_CHARS 19 /* digits of LONG_MAX on LP64 */
#define VT_MAC_CHARS     43 /* base64url of 32 bytes, no padding */

/* n is 1..max and every character is in [A-Za-z0-9_-]. */
static bool vt_chars_valid(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* A NUL-terminated id of 1..max valid characters; its length goes to *len. */
static bool vt_id_valid(const char *s, size_t max, size_t *len)
{
    size_t n = s ? strnlen(s, max + 1) : 0;
    if (!s || !vt_chars_valid(s, n, max))
        return false;
    if (len)
        *len = n;
    return true;
}

bool crypto_visitor_id_valid(const char *s)
{
    return vt_id_valid(s, CRYPTO_VISITOR_ID_MAX, NULL);
}

/* HMAC over "v1.<channel>.<visitor>.<exp>" under the channel's subkey. */
static int vt_mac(const struct crypto_key *k, const char *channel_id, struct sb_str visitor,
                  struct sb_str exp, uint8_t mac[CRYPTO_SHA256_LEN])
{
    char label[sizeof VT_LABEL_PREFIX + CRYPTO_CHANNEL_ID_MAX];
    snprintf(label, sizeof label, "%s%s", VT_LABEL_PREFIX, channel_id);
    uint8_t key[32];
    int rc = crypto_key_derive(k, label, key);
    if (rc == 0) {
        const struct sb_str parts[] = {
            sb_str_c(VT_VERSION "."),
            sb_str_c(channel_id),
            sb_str_c("."),
            visitor,
            sb_str_c("."),
            exp,
        };
        rc = crypto_hmac_sha256_parts(key, sizeof key, parts, sizeof parts / sizeof parts[0], mac);
    }
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

int crypto_visitor_token_issue(const struct crypto_key *k, const char *channel_id,
                               const char *visitor_id, long expires_unix, char *out, size_t outlen)
{
    size_t vlen = 0;
    if (!k || !out || expires_unix < 0 || !vt_id_valid(channel_id, CRYPTO_CHANNEL_ID_MAX, NULL) ||
        !vt_id_valid(visitor_id, CRYPTO_VISITOR_ID_MAX, &vlen))
        return -EINVAL;
    char exp[VT_EXP_MAX_CHARS + 1];
    int elen = snprintf(exp, sizeof exp, "%ld", expires_unix);
    uint8_t mac[CRYPTO_SHA256_LEN];
    int rc = vt_mac(k, channel_id, (struct sb_str){visitor_id, vlen},
                    (struct sb_str){exp, (size_t)elen}, mac);
    if (rc < 0)
        return rc;
    char b64[CRYPTO_BASE64URL_SIZE(CRYPTO_SHA256_LEN)];
    rc = crypto_base64url_encode(mac, sizeof mac, b64, sizeof b64);
    OPENSSL_cleanse(mac, sizeof mac);
    if (rc < 0)
        return rc;
    int n = snprintf(out, outlen, VT_VERSION ".%s.%s.%s", visitor_id, exp, b64);
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen > 0)
            out[0] = '\0';
        return SB_ELIMIT;
    }
    return 0;
}

/* The parts of a token, borrowed from it. */
struct vt_parts {
    struct sb_str visitor, exp, mac;
    long expires;
};

/* A plain non-negative decimal: digits only, no leading zero but "0". */
static bool vt_parse_exp(struct sb_str s, long *out)
{
    if (s.len == 0 || s.len > VT_EXP_MAX_CHARS || (s.len > 1 && s.ptr[0] == '0'))
        return false;
    char buf[VT_EXP_MAX_CHARS + 1];
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
        buf[i] = s.ptr[i];
    }
    buf[s.len] = '\0';
    return sb_parse_long(buf, 0, LONG_MAX, out) == 0;
}

/* Splits "v1.<visitor>.<exp>.<mac>" and checks the shape of each part. */
static int vt_split(const char *token, struct vt_parts *p)
{
    size_t n = strnlen(token, CRYPTO_VISITOR_TOKEN_MAX + 1);
    if (n > CRYPTO_VISITOR_TOKEN_MAX || n < sizeof VT_VERSION ||
        memcmp(token, VT_VERSION ".", sizeof VT_VERSION) != 0)
        return SB_EPARSE;
    const char *v = token + sizeof VT_VERSION, *end = token + n;
    const char *d1 = memchr(v, '.', (size_t)(end - v));
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)))
        return SB_EPARSE;
    p->visitor = (struct sb_str){v, (size_t)(d1 - v)};
    p->exp = (struct sb_str){d1 + 1, (size_t)(d2 - d1 - 1)};
    p->mac = (struct sb_str){d2 + 1, (size_t)(end - d2 - 1)};
    if (!vt_chars_valid(p->visitor.ptr, p->visitor.len, CRYPTO_VISITOR_ID_MAX) ||
        !vt_parse_exp(p->exp, &p->expires) || p->mac.len != VT_MAC_CHARS)
        return SB_EPARSE;
    return 0;
}

int crypto_visitor_token_verify(const struct crypto_key *k, const char *channel_id,
                                const char *token, long now_unix, char *visitor_id_out,
                                size_t outlen)
{
    if (visitor_id_out && outlen > 0)
        visitor_id_out[0] = '\0';
    if (!k || !visitor_id_out || !vt_id_valid(channel_id, CRYPTO_CHANNEL_ID_MAX, NULL))
        return -EINVAL;
    struct vt_parts p;
    if (!token || vt_split(token, &p) < 0)
        return SB_EPARSE;
    uint8_t got[CRYPTO_SHA256_LEN], want[CRYPTO_SHA256_LEN];
    size_t got_len = 0;
    if (crypto_base64url_decode(p.mac.ptr, p.mac.len, got, sizeof got, &got_len) < 0 ||
        got_len != sizeof got)
        return SB_EPARSE;
    int rc = vt_mac(k, channel_id, p.visitor, p.exp, want);
    if (rc < 0)
        return rc;
    bool ok = crypto_equal(got, got_len, want, sizeof want);
    OPENSSL_cleanse(want, sizeof want);
    if (!ok)
        return SB_EAUTH;
    if (now_unix > p.expires)
        return -ETIMEDOUT;
    if (outlen <= p.visitor.len)
        return SB_ELIMIT;
    memcpy(visitor_id_out, p.visitor.ptr, p.visitor.len);
    visitor_id_out[p.visitor.len] = '\0';
    return 0;
}
