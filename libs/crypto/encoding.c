/* encoding.c - hex, base64 and base64url codecs (RFC 4648), strict on input:
 * a string has exactly one accepted spelling (hex case aside), so encoded
 * signatures and tokens are not malleable. */
#include <string.h>

#include "crypto.h"
#include "internal.h"

static const char HEX_DIGITS[] = "0123456789abcdef";
static const char B64_STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64_URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int crypto_hex_encode(const void *in, size_t n, char *out, size_t outlen)
{
    if (n > (SIZE_MAX - 1) / 2 || !out || outlen < 2 * n + 1)
        return SB_ELIMIT;
    const uint8_t *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = HEX_DIGITS[p[i] >> 4];
        out[2 * i + 1] = HEX_DIGITS[p[i] & 0x0f];
    }
    out[2 * n] = '\0';
    return 0;
}

int crypto_hex_decode(const char *in, size_t n, uint8_t *out, size_t outcap, size_t *outlen)
{
    if (n % 2 != 0 || (n > 0 && !in))
        return SB_EPARSE;
    if (n / 2 > outcap || (n > 0 && !out))
        return SB_ELIMIT;
    for (size_t i = 0; i < n; i += 2) {
        int hi = sb_hex_value((unsigned char)in[i]);
        int lo = sb_hex_value((unsigned char)in[i + 1]);
        if (hi < 0 || lo < 0)
            return SB_EPARSE;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    if (outlen)
        *outlen = n / 2;
    return 0;
}

static const char *b64_alphabet(enum crypto__b64 kind)
{
    return kind == CRYPTO__B64_URL_NOPAD ? B64_URL : B64_STD;
}

int crypto__b64_encode(enum crypto__b64 kind, const void *in, size_t n, char *out, size_t outlen)
{
    bool pad = kind == CRYPTO__B64_STD_PAD;
    if (n > (SIZE_MAX - 8) / 4 || !out)
        return SB_ELIMIT;
    size_t need = pad ? 4 * ((n + 2) / 3) : (4 * n + 2) / 3;
    if (outlen < need + 1)
        return SB_ELIMIT;
    const char *abc = b64_alphabet(kind);
    const uint8_t *p = in;
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = abc[v & 63];
    }
    size_t rest = n - i;
    if (rest > 0) {
        uint32_t v = (uint32_t)p[i] << 16 | (rest == 2 ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        if (rest == 2)
            out[o++] = abc[(v >> 6) & 63];
        else if (pad)
            out[o++] = '=';
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return 0;
}

static int b64_value(enum crypto__b64 kind, unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    bool url = kind == CRYPTO__B64_URL_NOPAD;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

/* Decodes `len` characters (no padding among them) into out, which has room. */
static int b64_decode_body(enum crypto__b64 kind, const char *in, size_t len, uint8_t *out)
{
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(kind, (unsigned char)in[i]);
        if (v < 0)
            return SB_EPARSE;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits of the last group must be zero: one spelling per value. */
    if (acc != 0)
        return SB_EPARSE;
    return 0;
}

int crypto__b64_decode(enum crypto__b64 kind, const char *in, size_t n, uint8_t *out, size_t outcap,
                       size_t *outlen)
{
    if (n > 0 && !in)
        return SB_EPARSE;
    size_t len = n;
    if (kind == CRYPTO__B64_STD_PAD) {
        if (n % 4 != 0)
            return SB_EPARSE;
        if (len > 0 && in[len - 1] == '=')
            len--;
        if (len > 0 && in[len - 1] == '=' && len == n - 1)
            len--;
    }
    if (len % 4 == 1)
        return SB_EPARSE;
    size_t total = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
    if (total > outcap || (total > 0 && !out))
        return SB_ELIMIT;
    int rc = b64_decode_body(kind, in, len, out);
    if (rc < 0)
        return rc;
    if (outlen)
        *outlen = total;
    return 0;
}

int crypto_base64_encode(const void *in, size_t n, char *out, size_t outlen)
{
    return crypto__b64_encode(CRYPTO__B64_STD_PAD, in, n, out, outlen);
}

int crypto_base64_decode(const char *in, size_t n, uint8_t *out, size_t outcap, size_t *outlen)
{
    return crypto__b64_decode(CRYPTO__B64_STD_PAD, in, n, out, outcap, outlen);
}

int crypto_base64url_encode(const void *in, size_t n, char *out, size_t outlen)
{
    return crypto__b64_encode(CRYPTO__B64_URL_NOPAD, in, n, out, outlen);
}

int crypto_base64url_decode(const char *in, size_t n, uint8_t *out, size_t outcap, size_t *outlen)
{
    return crypto__b64_decode(CRYPTO__B64_URL_NOPAD, in, n, out, outcap, outlen);
}
