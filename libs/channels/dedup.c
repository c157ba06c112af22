/* dedup.c - deduplication keys: collects one key item per identified thing
 * in a payload and reduces them to one key that does not depend on the order
 * of the payload (see channels_inspect() in channels.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "internal.h"

void channels__keys_init(struct channels__keys *k)
{
    k->items = NULL;
    k->n = 0;
    k->cap = 0;
}

void channels__keys_cleanup(struct channels__keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->items[i]);
    free(k->items);
    channels__keys_init(k);
}

static int keys_push(struct channels__keys *k, char *item)
{
    if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 8;
        char **p = realloc(k->items, cap * sizeof *p);
        if (!p) {
            free(item);
            return -ENOMEM;
        }
        k->items = p;
        k->cap = cap;
    }
    k->items[k->n++] = item;
    return 0;
}

int channels__keys_addf(struct channels__keys *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    char *item = malloc((size_t)n + 1);
    if (!item)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(item, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return keys_push(k, item);
}

static void sha256_hex(const void *data, size_t n, char hex[CRYPTO_HEX_SIZE(CRYPTO_SHA256_LEN)])
{
    uint8_t digest[CRYPTO_SHA256_LEN];
    crypto_sha256(data, n, digest);
    crypto_hex_encode(digest, sizeof digest, hex, CRYPTO_HEX_SIZE(CRYPTO_SHA256_LEN));
}

int channels__keys_add_hash(struct channels__keys *k, const char *prefix, const json_t *v)
{
    /* Compact with sorted keys: the same content always gives the same text. */
    char *canon = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!canon)
        return -ENOMEM;
    char hex[CRYPTO_HEX_SIZE(CRYPTO_SHA256_LEN)];
    sha256_hex(canon, strlen(canon), hex);
    free(canon);
    return channels__keys_addf(k, "%s:h:%s", prefix, hex);
}

static int cmp_items(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts and drops repeated items (a payload may carry the same id twice). */
static void keys_sort_unique(struct channels__keys *k)
{
    if (k->n < 2)
        return;
    qsort(k->items, k->n, sizeof *k->items, cmp_items);
    size_t w = 1;
    for (size_t r = 1; r < k->n; r++) {
        if (strcmp(k->items[r], k->items[w - 1]) == 0)
            free(k->items[r]);
        else
            k->items[w++] = k->items[r];
    }
    k->n = w;
}

static void put_hash_key(char out[CHANNELS_DEDUP_KEY_MAX], const char *prefix, const void *data,
                         size_t n)
{
    char hex[CRYPTO_HEX_SIZE(CRYPTO_SHA256_LEN)];
    sha256_hex(data, n, hex);
    snprintf(out, CHANNELS_DEDUP_KEY_MAX, "%s:%s", prefix, hex);
}

int channels__keys_finish(struct channels__keys *k, const char *body, size_t len,
                          char out[CHANNELS_DEDUP_KEY_MAX])
{
    keys_sort_unique(k);
    if (k->n == 0) {
        put_hash_key(out, "body", body, len);
        return 0;
    }
    if (k->n == 1) {
        size_t n = strlen(k->items[0]);
        if (n < CHANNELS_DEDUP_KEY_MAX)
            memcpy(out, k->items[0], n + 1);
        else
            put_hash_key(out, "sha256", k->items[0], n);
        return 0;
    }
    size_t total = 0;
    for (size_t i = 0; i < k->n; i++)
        total += strlen(k->items[i]) + 1;
    char *joined = malloc(total);
    if (!joined)
        return -ENOMEM;
    size_t at = 0;
    for (size_t i = 0; i < k->n; i++) {
        size_t n = strlen(k->items[i]);
        if (i > 0)
            joined[at++] = '\n';
        memcpy(joined + at, k->items[i], n);
        at += n;
    }
    put_hash_key(out, "sha256", joined, at);
    free(joined);
    return 0;
}

int channels__keys_merge(struct channels__keys *dst, struct channels__keys *src)
{
    while (src->n > 0) {
        char *item = src->items[--src->n];
        int rc = keys_push(dst, item); /* frees item on failure */
        if (rc != 0)
            return rc;
    }
    return 0;
}
