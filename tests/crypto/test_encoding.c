/* test_encoding.c - hex, base64 and base64url: RFC 4648 vectors, round trips,
 * invalid input, and output buffers that are too small. */
#include <criterion/criterion.h>
#include <string.h>

#include "crypto.h"

struct vector {
    const char *plain, *hex, *b64, *b64url;
};

/* RFC 4648 §10 (base16 there is upper-case; ours encodes lower-case). */
static const struct vector RFC4648[] = {
    {"", "", "", ""},
    {"f", "66", "Zg==", "Zg"},
    {"fo", "666f", "Zm8=", "Zm8"},
    {"foo", "666f6f", "Zm9v", "Zm9v"},
    {"foob", "666f6f62", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "666f6f6261", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "666f6f626172", "Zm9vYmFy", "Zm9vYmFy"},
};

Test(encoding, rfc4648_vectors, .timeout = 30)
{
    for (size_t i = 0; i < sizeof RFC4648 / sizeof RFC4648[0]; i++) {
        const struct vector *v = &RFC4648[i];
        size_t n = strlen(v->plain);
        char out[32];
        uint8_t back[16];
        size_t backlen = 99;
        cr_assert_eq(crypto_hex_encode(v->plain, n, out, sizeof out), 0);
        cr_assert_str_eq(out, v->hex);
        cr_assert_eq(crypto_base64_encode(v->plain, n, out, sizeof out), 0);
        cr_assert_str_eq(out, v->b64);
        cr_assert_eq(crypto_base64url_encode(v->plain, n, out, sizeof out), 0);
        cr_assert_str_eq(out, v->b64url);

        cr_assert_eq(crypto_hex_decode(v->hex, strlen(v->hex), back, sizeof back, &backlen), 0);
        cr_assert_eq(backlen, n);
        cr_assert_eq(memcmp(back, v->plain, n), 0);
        backlen = 99;
        cr_assert_eq(crypto_base64_decode(v->b64, strlen(v->b64), back, sizeof back, &backlen), 0);
        cr_assert_eq(backlen, n);
        cr_assert_eq(memcmp(back, v->plain, n), 0);
        backlen = 99;
        cr_assert_eq(
            crypto_base64url_decode(v->b64url, strlen(v->b64url), back, sizeof back, &backlen), 0);
        cr_assert_eq(backlen, n);
        cr_assert_eq(memcmp(back, v->plain, n), 0);
    }
}

Test(encoding, alphabets_differ, .timeout = 30)
{
    const uint8_t in[] = {0xfb, 0xff, 0xbf};
    char out[8];
    cr_assert_eq(crypto_base64_encode(in, 3, out, sizeof out), 0);
    cr_assert_str_eq(out, "+/+/");
    cr_assert_eq(crypto_base64url_encode(in, 3, out, sizeof out), 0);
    cr_assert_str_eq(out, "-_-_");
    uint8_t back[3];
    cr_assert_eq(crypto_base64_decode("-_-_", 4, back, sizeof back, NULL), SB_EPARSE);
    cr_assert_eq(crypto_base64url_decode("+/+/", 4, back, sizeof back, NULL), SB_EPARSE);
}

Test(encoding, round_trips_every_length_and_byte, .timeout = 30)
{
    uint8_t in[300];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 7 + 3); /* covers all 256 values */
    char enc[CRYPTO_HEX_SIZE(300)];
    uint8_t back[300];
    for (size_t n = 0; n <= sizeof in; n++) {
        size_t len = 0;
        cr_assert_eq(crypto_hex_encode(in, n, enc, CRYPTO_HEX_SIZE(n)), 0);
        cr_assert_eq(strlen(enc), 2 * n);
        cr_assert_eq(crypto_hex_decode(enc, 2 * n, back, n, &len), 0);
        cr_assert(len == n && memcmp(back, in, n) == 0, "hex n=%zu", n);

        cr_assert_eq(crypto_base64_encode(in, n, enc, CRYPTO_BASE64_SIZE(n)), 0);
        cr_assert_eq(strlen(enc) + 1, CRYPTO_BASE64_SIZE(n));
        cr_assert_eq(crypto_base64_decode(enc, strlen(enc), back, n, &len), 0);
        cr_assert(len == n && memcmp(back, in, n) == 0, "base64 n=%zu", n);

        cr_assert_eq(crypto_base64url_encode(in, n, enc, CRYPTO_BASE64URL_SIZE(n)), 0);
        cr_assert_eq(strlen(enc) + 1, CRYPTO_BASE64URL_SIZE(n));
        cr_assert_eq(crypto_base64url_decode(enc, strlen(enc), back, n, &len), 0);
        cr_assert(len == n && memcmp(back, in, n) == 0, "base64url n=%zu", n);
    }
}

Test(encoding, hex_decode_accepts_either_case, .timeout = 30)
{
    uint8_t out[4];
    size_t len = 0;
    cr_assert_eq(crypto_hex_decode("0aFfB9c0", 8, out, sizeof out, &len), 0);
    cr_assert_eq(len, 4);
    cr_assert(out[0] == 0x0a && out[1] == 0xff && out[2] == 0xb9 && out[3] == 0xc0);
}

Test(encoding, hex_invalid_input, .timeout = 30)
{
    uint8_t out[8];
    size_t len = 77;
    cr_assert_eq(crypto_hex_decode("abc", 3, out, sizeof out, &len), SB_EPARSE);
    cr_assert_eq(crypto_hex_decode("zz", 2, out, sizeof out, &len), SB_EPARSE);
    cr_assert_eq(crypto_hex_decode("0g", 2, out, sizeof out, &len), SB_EPARSE);
    cr_assert_eq(crypto_hex_decode("0 ", 2, out, sizeof out, &len), SB_EPARSE);
    cr_assert_eq(crypto_hex_decode("0x12", 4, out, sizeof out, &len), SB_EPARSE);
    cr_assert_eq(crypto_hex_decode("a\0", 2, out, sizeof out, &len), SB_EPARSE);
    cr_assert_eq(len, 77, "outlen must not be set on failure");
}

Test(encoding, base64_invalid_input, .timeout = 30)
{
    static const char *bad[] = {
        "Zg=",      /* length not a multiple of 4 */
        "Zg",       /* padding missing */
        "Z===",     /* too much padding */
        "====",     /* nothing but padding */
        "Zh==",     /* leftover bits not zero */
        "Zm9=",     /* leftover bits not zero */
        "Zg==Zg==", /* padding in the middle */
        "Zm=v",     /* padding in the middle */
        "Zm9v\n",   /* whitespace */
        "Zm 9",     /* whitespace */
        "Zm9*",     /* not in the alphabet */
        "Zm9\xc3",  /* high byte */
    };
    uint8_t out[16];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(crypto_base64_decode(bad[i], strlen(bad[i]), out, sizeof out, NULL), SB_EPARSE,
                     "accepted \"%s\"", bad[i]);
    cr_assert_eq(crypto_base64_decode("Zg\0=", 4, out, sizeof out, NULL), SB_EPARSE);
}

Test(encoding, base64url_invalid_input, .timeout = 30)
{
    static const char *bad[] = {
        "Z",     /* one character cannot encode a byte */
        "Zm9vY", /* same, after a full group */
        "Zg==",  /* padding is not used */
        "Zg=",   /* padding is not used */
        "Zh",    /* leftover bits not zero */
        "Zm9",   /* leftover bits not zero */
        "Zm9v ", /* whitespace */
        "Zm+v",  /* standard alphabet */
        "Zm/v",  /* standard alphabet */
    };
    uint8_t out[16];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(crypto_base64url_decode(bad[i], strlen(bad[i]), out, sizeof out, NULL),
                     SB_EPARSE, "accepted \"%s\"", bad[i]);
}

Test(encoding, output_too_small, .timeout = 30)
{
    char out[16];
    uint8_t bytes[16];
    /* Encoders need room for the NUL too. */
    cr_assert_eq(crypto_hex_encode("foo", 3, out, 6), SB_ELIMIT);
    cr_assert_eq(crypto_hex_encode("foo", 3, out, 7), 0);
    cr_assert_eq(crypto_base64_encode("foobar", 6, out, 8), SB_ELIMIT);
    cr_assert_eq(crypto_base64_encode("foobar", 6, out, 9), 0);
    cr_assert_eq(crypto_base64_encode("f", 1, out, 4), SB_ELIMIT);
    cr_assert_eq(crypto_base64url_encode("f", 1, out, 2), SB_ELIMIT);
    cr_assert_eq(crypto_base64url_encode("f", 1, out, 3), 0);
    cr_assert_eq(crypto_base64url_encode("", 0, out, 0), SB_ELIMIT);
    cr_assert_eq(crypto_base64url_encode("", 0, NULL, 5), SB_ELIMIT);
    cr_assert_eq(crypto_base64url_encode("", 0, out, 1), 0);
    cr_assert_str_eq(out, "");
    /* Decoders refuse to write past outcap. */
    cr_assert_eq(crypto_hex_decode("666f6f", 6, bytes, 2, NULL), SB_ELIMIT);
    cr_assert_eq(crypto_base64_decode("Zm9vYmFy", 8, bytes, 5, NULL), SB_ELIMIT);
    cr_assert_eq(crypto_base64_decode("Zm9vYg==", 8, bytes, 3, NULL), SB_ELIMIT);
    cr_assert_eq(crypto_base64_decode("Zm9vYg==", 8, bytes, 4, NULL), 0);
    cr_assert_eq(crypto_base64url_decode("Zm9vYmE", 7, bytes, 4, NULL), SB_ELIMIT);
    cr_assert_eq(crypto_base64url_decode("Zm9vYmE", 7, bytes, 5, NULL), 0);
}

Test(encoding, decode_writes_nothing_past_outcap, .timeout = 30)
{
    uint8_t buf[8];
    memset(buf, 0xee, sizeof buf);
    size_t len = 0;
    cr_assert_eq(crypto_base64_decode("Zm9vYmFy", 8, buf, 6, &len), 0);
    cr_assert_eq(len, 6);
    cr_assert_eq(buf[6], 0xee);
    cr_assert_eq(buf[7], 0xee);
}
