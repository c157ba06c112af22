/* test_password.c - scrypt password hashes: round trip, wrong password,
 * tampering, salting, limits, known answers computed independently (Python's
 * hashlib.scrypt) and refusal of weak or absurd stored parameters.
 * Each scrypt at the default cost takes ~0.3 s, so few tests run it. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

#define PW "correct horse battery staple"
/* ln=14 (cheap), salt 00 01 .. 0f. */
#define KAT_PW_LN14                                                                                \
    "$scrypt$ln=14,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU"
#define KAT_EMPTY_P2                                                                               \
    "$scrypt$ln=14,r=8,p=2$AAECAwQFBgcICQoLDA0ODw$zFf3ypOpl7M0eQOxd49Pv/R5nuyqlMfnWD/hP8Bx/Qw"
#define KAT_UTF8_R9                                                                                \
    "$scrypt$ln=15,r=9,p=1$AAECAwQFBgcICQoLDA0ODw$DoezFUTb/KMD7Niblhe5bUWtixIbsqDM5PkIiOcMGig"
#define KAT_1024_X                                                                                 \
    "$scrypt$ln=14,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$CdebBt6QGlKZFwMa1HX2hfJW5b/xHkG1g1gmNgM8tOk"

Test(password, round_trip_and_salt, .timeout = 60)
{
    char a[CRYPTO_PASSWORD_HASH_MAX], b[CRYPTO_PASSWORD_HASH_MAX];
    cr_assert_eq(crypto_password_hash(PW, a, sizeof a), 0);
    cr_assert_eq(strncmp(a, "$scrypt$ln=17,r=8,p=1$", 22), 0, "%s", a);
    cr_assert_eq(strlen(a), 22 + 22 + 1 + 43, "%s", a);
    cr_assert_eq(crypto_password_verify(PW, a), 0);
    cr_assert_eq(crypto_password_verify("correct horse battery stapl", a), SB_EAUTH);
    cr_assert_eq(crypto_password_hash(PW, b, sizeof b), 0);
    cr_assert_str_neq(a, b); /* a fresh salt each time */
    /* The hash part changed in the middle (keeps it valid base64). */
    char *h = strrchr(b, '$') + 10;
    *h = *h == 'A' ? 'B' : 'A';
    cr_assert_eq(crypto_password_verify(PW, b), SB_EAUTH);
}

Test(password, known_answers, .timeout = 60)
{
    cr_assert_eq(crypto_password_verify(PW, KAT_PW_LN14), 0);
    cr_assert_eq(crypto_password_verify("", KAT_EMPTY_P2), 0);
    cr_assert_eq(crypto_password_verify("p\xc3\xa4ssw\xc3\xb6rd", KAT_UTF8_R9), 0);
    cr_assert_eq(crypto_password_verify("Correct horse battery staple", KAT_PW_LN14), SB_EAUTH);
    /* Same hash under another salt. */
    char salted[] = KAT_PW_LN14;
    salted[23] = 'B';
    cr_assert_eq(crypto_password_verify(PW, salted), SB_EAUTH);
    /* Same salt and hash, claimed under other parameters. */
    char params[] = KAT_PW_LN14;
    params[20] = '2';
    cr_assert_eq(crypto_password_verify(PW, params), SB_EAUTH);
}

Test(password, length_limit, .timeout = 60)
{
    char *pw = malloc(CRYPTO_PASSWORD_MAX + 2);
    memset(pw, 'x', CRYPTO_PASSWORD_MAX + 1);
    pw[CRYPTO_PASSWORD_MAX + 1] = '\0';
    char out[CRYPTO_PASSWORD_HASH_MAX];
    cr_assert_eq(crypto_password_hash(pw, out, sizeof out), SB_ELIMIT);
    cr_assert_eq(crypto_password_verify(pw, KAT_1024_X), SB_ELIMIT);
    pw[CRYPTO_PASSWORD_MAX] = '\0'; /* exactly the limit is fine */
    cr_assert_eq(crypto_password_verify(pw, KAT_1024_X), 0);
    free(pw);
}

Test(password, bad_arguments, .timeout = 30)
{
    char out[CRYPTO_PASSWORD_HASH_MAX];
    cr_assert_eq(crypto_password_hash(NULL, out, sizeof out), -EINVAL);
    cr_assert_eq(crypto_password_hash(PW, NULL, 0), SB_ELIMIT);
    cr_assert_eq(crypto_password_hash(PW, out, 88), SB_ELIMIT); /* needs 89 */
    cr_assert_str_eq(out, "");
    cr_assert_eq(crypto_password_verify(NULL, KAT_PW_LN14), -EINVAL);
    cr_assert_eq(crypto_password_verify(PW, NULL), -EINVAL);
}

Test(password, malformed_or_out_of_bounds_stored, .timeout = 30)
{
    static const char *bad[] = {
        "",
        "plaintext",
        "$2b$12$abcdefghijklmnopqrstuv",
        "$scrypt$ln=17,r=8,p=1$",
        "$scrypt$ln=14,r=8,p=1$AAECAwQFBgcICQoLDA0ODw",
        "$scrypt$ln=14,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$",
        "$scrypt$ln=13,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU",
        "$scrypt$ln=21,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU",
        "$scrypt$ln=14,r=7,p=1$AAECAwQFBgcICQoLDA0ODw$11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU",
        "$scrypt$ln=14,r=17,p=1$AAECAwQFBgcICQoLDA0ODw$11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU",
        "$scrypt$ln=14,r=8,p=0$AAECAwQFBgcICQoLDA0ODw$11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU",
        "$scrypt$ln=14,r=8,p=5$AAECAwQFBgcICQoLDA0ODw$11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU",
        /* within each bound, but 128*r*N = 2 GiB */
        "$scrypt$ln=20,r=16,p=1$AAECAwQFBgcICQoLDA0ODw$11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU",
        "$scrypt$ln=014,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU",
        "$scrypt$ln=140,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU",
        "$scrypt$ln=-14,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU",
        "$scrypt$r=8,ln=14,p=1$AAECAwQFBgcICQoLDA0ODw$11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU",
        "$SCRYPT$ln=14,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU",
        /* salt of 12 bytes, hash of 24 bytes */
        "$scrypt$ln=14,r=8,p=1$AAECAwQFBgcICQoL$11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU",
        "$scrypt$ln=14,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$11kKyiyYAc8G7rp3KmncMc44YlkdllIq",
        /* padding, a bad character, an extra field, a trailing newline */
        "$scrypt$ln=14,r=8,p=1$AAECAwQFBgcICQoLDA0ODw==$"
        "11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU",
        "$scrypt$ln=14,r=8,p=1$AAECAwQFBgcICQoLDA0OD!$11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU",
        "$scrypt$ln=14,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU$"
        "x",
        "$scrypt$ln=14,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$"
        "11kKyiyYAc8G7rp3KmncMc44YlkdllIqxOa7pq0fMaU\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(crypto_password_verify(PW, bad[i]), SB_EPARSE, "accepted %s", bad[i]);
    /* Over-long stored strings are refused before parsing. */
    char *huge = malloc(4096);
    memset(huge, 'A', 4095);
    huge[4095] = '\0';
    memcpy(huge, KAT_PW_LN14, strlen(KAT_PW_LN14));
    cr_assert_eq(crypto_password_verify(PW, huge), SB_EPARSE);
    free(huge);
}
