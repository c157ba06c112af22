/* crypto.h - Sabiá's cryptography, on OpenSSL 3: random tokens, SHA-256 and
 * HMAC-SHA256, constant-time comparison, hex/base64 codecs, webhook
 * signatures (Meta's X-Hub-Signature-256 and Standard Webhooks), password
 * hashing with scrypt, sealing secrets at rest with AES-256-GCM, subkeys
 * derived from the master key, and web widget visitor tokens.
 *
 * Every function is thread-safe and allocates nothing unless its comment says
 * so. Functions that fail leave no entries behind on OpenSSL's per-thread
 * error queue (other libraries linked with OpenSSL read that queue). */
#ifndef SABIA_CRYPTO_H
#define SABIA_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"

/* ---------------------------------------------------------------- limits */

#define CRYPTO_SHA256_LEN         32
#define CRYPTO_TOKEN_BYTES_MAX    128 /* random bytes in one crypto_random_token() */
#define CRYPTO_WEBHOOK_ID_MAX     256 /* Standard Webhooks msg_id length */
#define CRYPTO_WEBHOOK_KEY_MIN    24  /* Standard Webhooks key bytes (spec: 24..64) */
#define CRYPTO_WEBHOOK_KEY_MAX    64
#define CRYPTO_WEBHOOK_SECRET_MAX 128  /* "whsec_" + base64 of the key, characters */
#define CRYPTO_WEBHOOK_HEADER_MAX 4096 /* webhook-signature header, characters */
/* "v1," + base64 of 32 bytes + NUL: a big enough `out` for crypto_standard_webhook_sign(). */
#define CRYPTO_WEBHOOK_SIG_SIZE  48
#define CRYPTO_PASSWORD_MAX      1024 /* password bytes */
#define CRYPTO_PASSWORD_HASH_MAX 160  /* a big enough `out` for crypto_password_hash() */
#define CRYPTO_PASSWORD_MEM_MAX  (1024L * 1024 * 1024) /* scrypt memory (128*r*N) accepted */
#define CRYPTO_SEAL_MAX          (16 * 1024 * 1024)    /* plaintext bytes per sealed blob */
#define CRYPTO_AAD_MAX           4096                  /* aad characters */
#define CRYPTO_SEAL_OVERHEAD     (1 + 12 + 16)         /* version byte, nonce, tag */

/* Output buffer sizes, NUL included, for encoding n bytes. */
#define CRYPTO_HEX_SIZE(n)       (2 * (size_t)(n) + 1)
#define CRYPTO_BASE64_SIZE(n)    (4 * (((size_t)(n) + 2) / 3) + 1)
#define CRYPTO_BASE64URL_SIZE(n) ((4 * (size_t)(n) + 2) / 3 + 1)

/* ---------------------------------------------------------------- primitives */

/* Fills buf with n bytes from the OS CSPRNG (RAND_bytes). Returns 0 or -EIO. */
int crypto_random(void *buf, size_t n) SB_MUST_USE;

/* A random token: `nbytes` (1..CRYPTO_TOKEN_BYTES_MAX) random bytes encoded
 * base64url without padding into out (NUL-terminated; CRYPTO_BASE64URL_SIZE(nbytes)
 * bytes are enough). Returns 0, SB_ELIMIT if outlen is too small or nbytes too
 * big, -EINVAL when nbytes is 0, -EIO when the CSPRNG fails. */
int crypto_random_token(size_t nbytes, char *out, size_t outlen) SB_MUST_USE;

/* SHA-256 of n bytes (data may be NULL when n is 0). Aborts the process only
 * if OpenSSL cannot allocate its context: a digest is never left unset. */
void crypto_sha256(const void *data, size_t n, uint8_t out[CRYPTO_SHA256_LEN]);

/* HMAC-SHA256(key, data). key/data may be NULL when their length is 0. Aborts
 * the process only if OpenSSL cannot allocate its context. */
void crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                        uint8_t out[CRYPTO_SHA256_LEN]);

/* HMAC-SHA256 over the concatenation of `nparts` borrowed byte ranges, without
 * copying them. key may be NULL only when keylen is 0. Returns 0, -EINVAL
 * (NULL key with a length) or -ENOMEM. */
int crypto_hmac_sha256_parts(const void *key, size_t keylen, const struct sb_str *parts,
                             size_t nparts, uint8_t out[CRYPTO_SHA256_LEN]) SB_MUST_USE;

/* Constant-time equality of two byte strings (time depends only on the
 * lengths); false when the lengths differ (length is not secret). */
bool crypto_equal(const void *a, size_t alen, const void *b, size_t blen);

/* ---------------------------------------------------------------- encodings */

/* All encoders write a NUL-terminated string into caller-owned `out` and
 * return 0 or SB_ELIMIT (out too small, see the *_SIZE macros). Decoders read
 * exactly n characters, write at most `outcap` bytes into caller-owned `out`,
 * set *outlen (may be NULL) and return 0, SB_ELIMIT (outcap too small) or
 * SB_EPARSE (invalid input); on failure out's contents are unspecified. */

/* Hex: lower-case out; decode accepts either case, needs an even length. */
int crypto_hex_encode(const void *in, size_t n, char *out, size_t outlen);
int crypto_hex_decode(const char *in, size_t n, uint8_t *out, size_t outcap,
                      size_t *outlen) SB_MUST_USE;

/* Base64 (RFC 4648 §4, standard alphabet, always padded). The decoder needs
 * the padding, refuses whitespace and non-zero leftover bits. */
int crypto_base64_encode(const void *in, size_t n, char *out, size_t outlen);
int crypto_base64_decode(const char *in, size_t n, uint8_t *out, size_t outcap,
                         size_t *outlen) SB_MUST_USE;

/* Base64url (RFC 4648 §5, "-" and "_", never padded). The decoder refuses
 * "=", whitespace and non-zero leftover bits. */
int crypto_base64url_encode(const void *in, size_t n, char *out, size_t outlen);
int crypto_base64url_decode(const char *in, size_t n, uint8_t *out, size_t outcap,
                            size_t *outlen) SB_MUST_USE;

/* ---------------------------------------------------------------- webhooks */

/* Meta webhook signature: `header` (the X-Hub-Signature-256 value, borrowed)
 * must be "sha256=" and 64 hex digits (either case) equal to
 * HMAC-SHA256(app_secret, body). Returns 0 when valid, SB_EAUTH when it does
 * not match, SB_EPARSE when the header is NULL or malformed (missing prefix,
 * wrong length, non-hex), -EINVAL when app_secret is NULL or empty (an empty
 * key would let anyone sign). The 32 decoded bytes are compared in constant time. */
int crypto_verify_meta_signature(const char *app_secret, const void *body, size_t n,
                                 const char *header) SB_MUST_USE;

/* Standard Webhooks v1: signs "msg_id.timestamp.body" with HMAC-SHA256 keyed
 * by the base64 decoding of `secret` after its "whsec_" prefix (a secret
 * without the prefix is decoded whole, as the reference libraries do) and
 * writes "v1,<base64>" into out (CRYPTO_WEBHOOK_SIG_SIZE bytes are enough).
 * Returns 0, SB_ELIMIT (out too small), SB_EPARSE (secret not valid base64 of
 * CRYPTO_WEBHOOK_KEY_MIN..MAX bytes, msg_id empty, too long or containing
 * ".", timestamp negative) or -ENOMEM. */
int crypto_standard_webhook_sign(const char *secret, const char *msg_id, long timestamp,
                                 const void *body, size_t n, char *out, size_t outlen) SB_MUST_USE;

/* Verifies a webhook-signature header: a space-separated list of
 * "version,signature" entries; "v1" entries are compared in constant time,
 * other versions and unreadable entries are ignored. Also requires
 * |now - timestamp| <= tolerance_s (both too old and too new fail).
 * Returns 0 when one v1 entry matches, SB_EAUTH when none does or the
 * timestamp is outside the window, SB_EPARSE for a bad secret or msg_id (as
 * in sign) or a NULL or over-long header, -EINVAL for a negative tolerance. */
int crypto_standard_webhook_verify(const char *secret, const char *msg_id, long timestamp,
                                   const void *body, size_t n, const char *signature_header,
                                   long now, long tolerance_s) SB_MUST_USE;

/* ---------------------------------------------------------------- passwords */

/* Hashes `password` with scrypt (N=2^17, r=8, p=1, 16-byte random salt,
 * 32-byte key) into out as
 *   "$scrypt$ln=17,r=8,p=1$<salt base64 no pad>$<hash base64 no pad>"
 * (CRYPTO_PASSWORD_HASH_MAX bytes are enough). Slow on purpose (~0.3 s).
 * Returns 0, SB_ELIMIT (password longer than CRYPTO_PASSWORD_MAX or out too
 * small), -EINVAL (NULL password), -EIO (CSPRNG) or -ENOMEM. */
int crypto_password_hash(const char *password, char *out, size_t outlen) SB_MUST_USE;

/* Checks `password` against a string made by crypto_password_hash(). The
 * stored parameters must be within ln 14..20, r 8..16, p 1..4 and
 * 128*r*2^ln <= CRYPTO_PASSWORD_MEM_MAX; salt 16..64 bytes, hash 32..64 bytes.
 * Returns 0 on a match, SB_EAUTH on a mismatch, SB_EPARSE for a malformed or
 * out-of-bounds stored string, SB_ELIMIT for a password longer than
 * CRYPTO_PASSWORD_MAX, -EINVAL for NULL arguments, -ENOMEM. Constant-time compare. */
int crypto_password_verify(const char *password, const char *stored) SB_MUST_USE;

/* ---------------------------------------------------------------- secrets at rest */

/* AES-256-GCM with a 32-byte master key. Layout of a sealed blob:
 *   version byte 0x01 | 12-byte random nonce | ciphertext | 16-byte tag.
 * `aad` (NUL-terminated, NULL means "") binds the blob to its context, e.g.
 * "channel:<id>:app_secret", so a blob copied to another row fails to open. */
struct crypto_key; /* opaque, immutable once made: share it between threads freely */

/* Makes a key from exactly 64 hex characters (SABIA_MASTER_KEY). Returns NULL
 * with *err (may be NULL) = SB_ECONFIG when hex is NULL or not 64 hex
 * characters, or -ENOMEM; on success *err = 0. The caller owns the key:
 * crypto_key_free(). */
struct crypto_key *crypto_key_new(const char *hex, int *err);
/* Wipes and frees the key; NULL is a no-op. */
void crypto_key_free(struct crypto_key *k);

/* Seals n bytes of plain (at most CRYPTO_SEAL_MAX). On success *out is a
 * malloc'd blob of *outlen = n + CRYPTO_SEAL_OVERHEAD bytes that the caller
 * frees. Returns 0, SB_ELIMIT (n or aad too long), -EINVAL, -EIO or -ENOMEM. */
int crypto_seal(const struct crypto_key *k, const char *aad, const void *plain, size_t n,
                uint8_t **out, size_t *outlen) SB_MUST_USE;

/* Opens a sealed blob. On success *out is malloc'd with a NUL after the
 * *outlen plaintext bytes; the caller frees it (wipe first if sensitive).
 * Returns 0, SB_EAUTH (tampered, wrong key or wrong aad), SB_EPARSE (too
 * short or unknown version), SB_ELIMIT (blob or aad too long), -EINVAL,
 * -ENOMEM. *out is NULL after any failure. */
int crypto_open(const struct crypto_key *k, const char *aad, const uint8_t *blob, size_t n,
                uint8_t **out, size_t *outlen) SB_MUST_USE;

/* ---------------------------------------------------------------- derived keys */

#define CRYPTO_KEY_LABEL_MAX 1024 /* characters of a crypto_key_derive() label */

/* Derives a 32-byte subkey from the master key for a purpose label:
 * HMAC-SHA256(master key bytes, label). Different labels give independent
 * keys, so one master key can serve several purposes without one purpose's
 * MACs being valid for another. `label` is borrowed and NUL-terminated.
 * Returns 0, -EINVAL (NULL argument or empty label), SB_ELIMIT (label longer
 * than CRYPTO_KEY_LABEL_MAX) or -ENOMEM. The caller should wipe `out` after use. */
int crypto_key_derive(const struct crypto_key *k, const char *label, uint8_t out[32]) SB_MUST_USE;

/* ---------------------------------------------------------------- web widget visitor tokens */

/* A visitor token lets a web widget visitor post to one web channel:
 *   "v1.<visitor_id>.<expires_unix>.<base64url HMAC, no padding>"
 * where the HMAC key is crypto_key_derive(k, "visitor-token:" channel_id)
 * and the MAC covers "v1.<channel_id>.<visitor_id>.<expires_unix>", so a
 * token is good for one channel only. expires_unix is plain decimal (no sign,
 * no leading zeros). docs/visitor-tokens.md describes the format. */
#define CRYPTO_VISITOR_TOKEN_MAX 256 /* characters of a token, NUL excluded */
#define CRYPTO_VISITOR_ID_MAX    128 /* visitor_id: 1..128 characters of [A-Za-z0-9_-] */
#define CRYPTO_CHANNEL_ID_MAX    64  /* channel_id: 1..64 characters of [A-Za-z0-9_-] */

/* True when `s` is a valid visitor id (1..CRYPTO_VISITOR_ID_MAX characters of
 * [A-Za-z0-9_-]); NULL is not. */
bool crypto_visitor_id_valid(const char *s);

/* Issues a token for visitor_id on channel_id (both borrowed, NUL-terminated;
 * channel_id is compared byte for byte, so use one spelling, e.g. the
 * canonical lower-case UUID) that expires at expires_unix (>= 0), into
 * caller-owned out (CRYPTO_VISITOR_TOKEN_MAX + 1 bytes are always enough).
 * Returns 0, -EINVAL (NULL argument, bad visitor or channel id, negative
 * expiry), SB_ELIMIT (outlen too small) or -ENOMEM. */
int crypto_visitor_token_issue(const struct crypto_key *k, const char *channel_id,
                               const char *visitor_id, long expires_unix, char *out,
                               size_t outlen) SB_MUST_USE;

/* Verifies `token` (borrowed) for channel_id at time now_unix. Returns 0 when
 * valid, copying the visitor id into caller-owned visitor_id_out (outlen
 * bytes; CRYPTO_VISITOR_ID_MAX + 1 are always enough); SB_EAUTH for a MAC
 * that does not match (a forged or tampered token, or one issued for another
 * channel or under another master key); -ETIMEDOUT when the MAC is good but
 * now_unix > expires_unix; SB_EPARSE for a malformed token (NULL, longer than
 * CRYPTO_VISITOR_TOKEN_MAX, wrong version or shape, bad visitor id, expiry
 * or base64url); -EINVAL for NULL k/visitor_id_out or a bad channel id;
 * SB_ELIMIT when outlen is too small for the visitor id; -ENOMEM. The MAC is
 * compared in constant time and checked before the expiry. visitor_id_out is
 * set to "" on any failure (when outlen > 0). */
int crypto_visitor_token_verify(const struct crypto_key *k, const char *channel_id,
                                const char *token, long now_unix, char *visitor_id_out,
                                size_t outlen) SB_MUST_USE;

#endif
