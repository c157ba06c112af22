/* webhook.c - webhook signatures: Meta's X-Hub-Signature-256 (hex HMAC of the
 * raw body) and Standard Webhooks v1 (base64 HMAC of "id.timestamp.body"). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto.h"
#include "internal.h"

#define META_PREFIX         "sha256="
#define META_PREFIX_LEN     (sizeof META_PREFIX - 1)
#define META_HEADER_LEN     (META_PREFIX_LEN + 2 * CRYPTO_SHA256_LEN)
#define WHSEC_PREFIX        "whsec_"
#define WHSEC_PREFIX_LEN    (sizeof WHSEC_PREFIX - 1)
#define TIMESTAMP_MAX_CHARS 24

int crypto_verify_meta_signature(const char *app_secret, const void *body, size_t n,
                                 const char *header)
{
    if (!app_secret || !*app_secret)
        return -EINVAL;
    if (!header || strnlen(header, META_HEADER_LEN + 1) != META_HEADER_LEN ||
        memcmp(header, META_PREFIX, META_PREFIX_LEN) != 0)
        return SB_EPARSE;
    uint8_t got[CRYPTO_SHA256_LEN];
    size_t got_len = 0;
    if (crypto_hex_decode(header + META_PREFIX_LEN, 2 * CRYPTO_SHA256_LEN, got, sizeof got,
                          &got_len) < 0)
        return SB_EPARSE;
    uint8_t want[CRYPTO_SHA256_LEN];
    struct sb_str part = {body, n};
    if (crypto_hmac_sha256_parts(app_secret, strlen(app_secret), &part, 1, want) < 0)
        return -ENOMEM;
    bool ok = crypto_equal(got, got_len, want, sizeof want);
    OPENSSL_cleanse(want, sizeof want);
    return ok ? 0 : SB_EAUTH;
}

/* Decodes a "whsec_<base64>" secret (prefix optional) into key. */
static int webhook_key(const char *secret, uint8_t key[CRYPTO_WEBHOOK_KEY_MAX], size_t *keylen)
{
    if (!secret)
        return SB_EPARSE;
    size_t len = strnlen(secret, CRYPTO_WEBHOOK_SECRET_MAX + 1);
    if (len > CRYPTO_WEBHOOK_SECRET_MAX)
        return SB_EPARSE;
    if (len >= WHSEC_PREFIX_LEN && memcmp(secret, WHSEC_PREFIX, WHSEC_PREFIX_LEN) == 0) {
        secret += WHSEC_PREFIX_LEN;
        len -= WHSEC_PREFIX_LEN;
    }
    int rc = crypto_base64_decode(secret, len, key, CRYPTO_WEBHOOK_KEY_MAX, keylen);
    if (rc < 0 || *keylen < CRYPTO_WEBHOOK_KEY_MIN) {
        OPENSSL_cleanse(key, CRYPTO_WEBHOOK_KEY_MAX);
        return SB_EPARSE;
    }
    return 0;
}

/* HMAC-SHA256(key of `secret`, "msg_id.timestamp.body") into mac. */
static int webhook_mac(const char *secret, const char *msg_id, long timestamp, const void *body,
                       size_t n, uint8_t mac[CRYPTO_SHA256_LEN])
{
    if (!msg_id || timestamp < 0)
        return SB_EPARSE;
    size_t id_len = strnlen(msg_id, CRYPTO_WEBHOOK_ID_MAX + 1);
    if (id_len == 0 || id_len > CRYPTO_WEBHOOK_ID_MAX || memchr(msg_id, '.', id_len))
        return SB_EPARSE;
    char ts[TIMESTAMP_MAX_CHARS];
    int ts_len = snprintf(ts, sizeof ts, "%ld", timestamp);
    if (ts_len < 0 || (size_t)ts_len >= sizeof ts)
        return SB_EPARSE;
    uint8_t key[CRYPTO_WEBHOOK_KEY_MAX];
    size_t keylen = 0;
    int rc = webhook_key(secret, key, &keylen);
    if (rc < 0)
        return rc;
    struct sb_str parts[] = {
        {msg_id, id_len}, {".", 1}, {ts, (size_t)ts_len}, {".", 1}, {body, n},
    };
    rc = crypto_hmac_sha256_parts(key, keylen, parts, sizeof parts / sizeof parts[0], mac);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

int crypto_standard_webhook_sign(const char *secret, const char *msg_id, long timestamp,
                                 const void *body, size_t n, char *out, size_t outlen)
{
    if (!out || outlen < CRYPTO_WEBHOOK_SIG_SIZE)
        return SB_ELIMIT;
    uint8_t mac[CRYPTO_SHA256_LEN];
    int rc = webhook_mac(secret, msg_id, timestamp, body, n, mac);
    if (rc < 0)
        return rc;
    memcpy(out, "v1,", 3);
    return crypto_base64_encode(mac, sizeof mac, out + 3, outlen - 3);
}

/* True when `entry` (len bytes, "version,signature") is a v1 signature equal to mac. */
static bool webhook_entry_matches(const char *entry, size_t len,
                                  const uint8_t mac[CRYPTO_SHA256_LEN])
{
    if (len < 3 || memcmp(entry, "v1,", 3) != 0)
        return false;
    uint8_t got[CRYPTO_SHA256_LEN];
    size_t got_len = 0;
    if (crypto_base64_decode(entry + 3, len - 3, got, sizeof got, &got_len) < 0)
        return false;
    return crypto_equal(got, got_len, mac, CRYPTO_SHA256_LEN);
}

/* |now - timestamp| <= tolerance, without overflowing on extreme values. */
static bool webhook_fresh(long timestamp, long now, long tolerance_s)
{
    unsigned long diff = timestamp >= now ? (unsigned long)timestamp - (unsigned long)now
                                          : (unsigned long)now - (unsigned long)timestamp;
    return diff <= (unsigned long)tolerance_s;
}

int crypto_standard_webhook_verify(const char *secret, const char *msg_id, long timestamp,
                                   const void *body, size_t n, const char *signature_header,
                                   long now, long tolerance_s)
{
    if (tolerance_s < 0)
        return -EINVAL;
    if (!signature_header)
        return SB_EPARSE;
    size_t hlen = strnlen(signature_header, CRYPTO_WEBHOOK_HEADER_MAX + 1);
    if (hlen > CRYPTO_WEBHOOK_HEADER_MAX)
        return SB_EPARSE;
    uint8_t mac[CRYPTO_SHA256_LEN];
    int rc = webhook_mac(secret, msg_id, timestamp, body, n, mac);
    if (rc < 0)
        return rc;
    if (!webhook_fresh(timestamp, now, tolerance_s))
        return SB_EAUTH;
    /* Every entry is examined, matching or not, so timing says nothing about which matched. */
    bool matched = false;
    const char *p = signature_header;
    const char *end = signature_header + hlen;
    while (p < end) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        size_t len = sp ? (size_t)(sp - p) : (size_t)(end - p);
        if (webhook_entry_matches(p, len, mac))
            matched = true;
        p += len + 1;
    }
    OPENSSL_cleanse(mac, sizeof mac);
    return matched ? 0 : SB_EAUTH;
}
