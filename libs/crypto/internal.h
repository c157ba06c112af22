/* internal.h - helpers shared by the files of libs/crypto; not part of its API. */
#ifndef SABIA_CRYPTO_INTERNAL_H
#define SABIA_CRYPTO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Base64 flavours: the alphabet ("+/" or "-_") and whether "=" padding is
 * written (encode) and required (decode). */
enum crypto__b64 { CRYPTO__B64_STD_PAD, CRYPTO__B64_STD_NOPAD, CRYPTO__B64_URL_NOPAD };

/* Same contracts as crypto_base64_encode()/crypto_base64_decode(), for any flavour. */
int crypto__b64_encode(enum crypto__b64 kind, const void *in, size_t n, char *out, size_t outlen);
int crypto__b64_decode(enum crypto__b64 kind, const char *in, size_t n, uint8_t *out, size_t outcap,
                       size_t *outlen);

/* Drops whatever OpenSSL queued on this thread's error queue. */
void crypto__clear_errors(void);

#endif
