/* genpayloads.c - sabia-genpayloads: writes signed WhatsApp text-message
 * webhooks for the ingestion benchmark, one request per line:
 *
 *   sha256=<64 hex>\t<compact JSON body>\n
 *
 * Bodies have the shape of /work/shared/fixtures/wa_text.json, each with its
 * own wamid (so the gateway sees no duplicates) and signed with HMAC-SHA256
 * of the exact body bytes, as Meta does. `--tag` keeps the wamids of two
 * files apart when one benchmark uses several files on the same channel.
 *
 *   sabia-genpayloads --count N --secret S --out FILE [--tag T] */
#include "crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEN_COUNT_MAX  10000000L /* lines per file */
#define GEN_SECRET_MAX 1024      /* app secret bytes */
#define GEN_TAG_MAX    32        /* characters of --tag */
#define GEN_BODY_MAX   2048      /* bytes of one body */

struct gen_args {
    long count;
    const char *secret;
    const char *out;
    const char *tag;
};

static int usage(const char *why)
{
    if (why)
        fprintf(stderr, "sabia-genpayloads: %s\n", why);
    fputs("usage: sabia-genpayloads --count N --secret S --out FILE [--tag T]\n"
          "  N signed WhatsApp text webhooks, one per line: <signature>\\t<body>\n",
          stderr);
    return 2;
}

static bool tag_valid(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > GEN_TAG_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= '0' && t[i] <= '9') ||
              (t[i] >= 'a' && t[i] <= 'z') || t[i] == '_'))
            return false;
    return true;
}

static int parse_args(int argc, char **argv, struct gen_args *a)
{
    *a = (struct gen_args){.count = -1, .tag = "A"};
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val)
            return usage("every option takes a value");
        i++;
        if (strcmp(opt, "--count") == 0) {
            if (sb_parse_long(val, 1, GEN_COUNT_MAX, &a->count) != 0)
                return usage("--count must be an integer in [1, 10000000]");
        } else if (strcmp(opt, "--secret") == 0) {
            a->secret = val;
        } else if (strcmp(opt, "--out") == 0) {
            a->out = val;
        } else if (strcmp(opt, "--tag") == 0) {
            a->tag = val;
        } else {
            return usage("unknown option");
        }
    }
    if (a->count < 0 || !a->secret || !a->out)
        return usage("--count, --secret and --out are required");
    if (strlen(a->secret) == 0 || strlen(a->secret) > GEN_SECRET_MAX)
        return usage("--secret must be 1 to 1024 bytes");
    if (!tag_valid(a->tag))
        return usage("--tag must be 1 to 32 characters of A-Z, a-z, 0-9 and _");
    return 0;
}

/* Writes body number `i` into out; returns its length, or -1 if it does not fit. */
static int make_body(char *out, size_t cap, const char *tag, long i)
{
    /* A different sender per 1,000 messages, like many conversations at once. */
    long from = 5511900000000L + i / 1000;
    int n = snprintf(out, cap,
                     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":"
                     "\"102290129340398\",\"changes\":[{\"value\":{\"messaging_product\":"
                     "\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550783881\","
                     "\"phone_number_id\":\"106540352242922\"},\"contacts\":[{\"profile\":"
                     "{\"name\":\"Bench User %ld\"},\"wa_id\":\"%ld\"}],\"messages\":[{\"from\":"
                     "\"%ld\",\"id\":\"wamid.BENCH_%s_%010ld\",\"timestamp\":\"%ld\",\"type\":"
                     "\"text\",\"text\":{\"body\":\"Hello, I need help with my order %ld\"}}]},"
                     "\"field\":\"messages\"}]}]}",
                     i / 1000, from, from, tag, i, 1739321024L + i / 100, i);
    return n > 0 && (size_t)n < cap ? n : -1;
}

static int write_payloads(const struct gen_args *a, FILE *f)
{
    char body[GEN_BODY_MAX], hex[CRYPTO_HEX_SIZE(CRYPTO_SHA256_LEN)];
    uint8_t mac[CRYPTO_SHA256_LEN];
    size_t keylen = strlen(a->secret);
    for (long i = 0; i < a->count; i++) {
        int n = make_body(body, sizeof body, a->tag, i);
        if (n < 0)
            return SB_ELIMIT;
        crypto_hmac_sha256(a->secret, keylen, body, (size_t)n, mac);
        if (crypto_hex_encode(mac, sizeof mac, hex, sizeof hex) != 0)
            return SB_ELIMIT;
        if (fprintf(f, "sha256=%s\t%.*s\n", hex, n, body) < 0)
            return -EIO;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct gen_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != 0)
        return rc;
    FILE *f = fopen(a.out, "w");
    if (!f) {
        fprintf(stderr, "sabia-genpayloads: cannot create %s: %s\n", a.out, strerror(errno));
        return 1;
    }
    rc = write_payloads(&a, f);
    if (fclose(f) != 0 && rc == 0)
        rc = -EIO;
    if (rc != 0) {
        fprintf(stderr, "sabia-genpayloads: writing %s failed: %s\n", a.out, sb_strerror(rc));
        remove(a.out);
        return 1;
    }
    return 0;
}
