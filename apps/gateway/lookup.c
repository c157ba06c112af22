/* lookup.c - tenant + channel lookups for the webhook routes.
 *
 * Every webhook needs the tenant's status and limits and the channel's type,
 * status and decrypted secrets. They are read in one tenant-scoped query and
 * kept in a small in-process table for ttl_ms. Misses (unknown tenant or
 * channel) are cached too, so a flood of bogus paths does not reach
 * PostgreSQL. Entries are dropped early when a "tenant:<id>" or
 * "channel:<id>" message arrives on Redis channel "sabia:invalidate"
 * (sabiactl and the webapp publish them; see docs/caching.md), and all of
 * them after a reconnection, when messages may have been missed. */
#include "gateway.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LOOKUP_BUCKETS 4096
#define LOOKUP_MAX_ENTRIES 100000 /* past this the table is emptied */
#define LOOKUP_INVALIDATE_CHANNEL "sabia:invalidate"

struct entry {
    char tenant_id[SB_UUID_STRLEN];
    char channel_id[SB_UUID_STRLEN];
    int64_t expires_ms;
    struct lookup_info info;
    struct entry *next;
};

struct lookup {
    struct db_pool *db;
    const struct crypto_key *key;
    int ttl_ms;
    struct sb_log *log;
    struct bus_subscription *sub;
    struct metric *m_lookups; /* gateway_lookup_total{result=hit|miss} */
    struct metric *m_invalidations; /* gateway_lookup_invalidations_total{scope} */
    pthread_mutex_t mu;
    unsigned long generation; /* bumped by every invalidation (under mu) */
    size_t count;
    struct entry *buckets[LOOKUP_BUCKETS];
};

void lookup_info_cleanup(struct lookup_info *info)
{
    if (info->app_secret)
        OPENSSL_cleanse(info->app_secret, strlen(info->app_secret));
    if (info->verify_token)
        OPENSSL_cleanse(info->verify_token, strlen(info->verify_token));
    free(info->app_secret);
    free(info->verify_token);
    memset(info, 0, sizeof *info);
}

static int info_copy(struct lookup_info *dst, const struct lookup_info *src)
{
    *dst = *src;
    dst->app_secret = src->app_secret ? strdup(src->app_secret) : NULL;
    dst->verify_token = src->verify_token ? strdup(src->verify_token) : NULL;
    if ((src->app_secret && !dst->app_secret) || (src->verify_token && !dst->verify_token)) {
        lookup_info_cleanup(dst);
        return -ENOMEM;
    }
    return 0;
}

static unsigned hash_key(const char *tenant_id, const char *channel_id)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (const char *p = tenant_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    for (const char *p = channel_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % LOOKUP_BUCKETS;
}

static void free_entry(struct entry *e)
{
    lookup_info_cleanup(&e->info);
    free(e);
}

/* Removes entries matching `pred` (all when pred is NULL). Caller holds mu. */
static void drop_where(struct lookup *lk, bool (*pred)(const struct entry *, const char *),
                       const char *id)
{
    for (size_t b = 0; b < LOOKUP_BUCKETS; b++) {
        struct entry **pp = &lk->buckets[b];
        while (*pp) {
            struct entry *e = *pp;
            if (!pred || pred(e, id)) {
                *pp = e->next;
                free_entry(e);
                lk->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

static bool is_tenant(const struct entry *e, const char *id)
{
    return strcmp(e->tenant_id, id) == 0;
}

static bool is_channel(const struct entry *e, const char *id)
{
    return strcmp(e->channel_id, id) == 0;
}

void lookup_invalidate(struct lookup *lk, const char *what, size_t len)
{
    char id[SB_UUID_STRLEN];
    bool (*pred)(const struct entry *, const char *) = NULL;
    if (what && len == 7 + 36 && memcmp(what, "tenant:", 7) == 0)
        pred = is_tenant;
    else if (what && len == 8 + 36 && memcmp(what, "channel:", 8) == 0)
        pred = is_channel;
    else if (what)
        return; /* not ours */
    if (pred) {
        memcpy(id, what + len - 36, 36);
        id[36] = '\0';
    }
    pthread_mutex_lock(&lk->mu);
    lk->generation++;
    drop_where(lk, pred, id);
    pthread_mutex_unlock(&lk->mu);
    metric_add(lk->m_invalidations, (const char *[]){pred == is_tenant ? "tenant"
                                                     : pred           ? "channel"
                                                                      : "all"},
               1);
}

static void on_invalidate(const char *message, size_t len, void *arg)
{
    lookup_invalidate(arg, message, len);
}

/* Decrypts one bytea column (text format, "\\x…") sealed with aad
 * "channel:<id>:<what>". NULL column → *out NULL. */
static int open_secret(struct lookup *lk, const PGresult *res, int col, const char *channel_id,
                       const char *what, char **out)
{
    *out = NULL;
    const char *v = db_value(res, 0, col);
    if (!v)
        return 0;
    size_t n = 0;
    unsigned char *blob = PQunescapeBytea((const unsigned char *)v, &n);
    if (!blob)
        return -ENOMEM;
    char aad[96];
    snprintf(aad, sizeof aad, "channel:%s:%s", channel_id, what);
    uint8_t *plain = NULL;
    size_t plen = 0;
    int rc = crypto_open(lk->key, aad, blob, n, &plain, &plen);
    PQfreemem(blob);
    if (rc != 0) {
        sb_log_error(lk->log, NULL, "channel %s: cannot decrypt %s (%s)", channel_id, what,
                     sb_strerror(rc));
        return rc;
    }
    *out = (char *)plain; /* NUL-terminated by crypto_open */
    return 0;
}

struct fetch {
    struct lookup *lk;
    const char *tenant_id, *channel_id;
    struct lookup_info *info;
};

static int fetch_tx(PGconn *c, void *arg)
{
    struct fetch *f = arg;
    const char *params[] = {f->tenant_id, f->channel_id};
    PGresult *res = NULL;
    int rc = db_exec(c,
                     "SELECT t.status = 'active', t.rate_limit_per_second, t.rate_limit_burst, "
                     "c.id IS NOT NULL, c.workspace_id, c.type, c.status, c.app_secret_enc, "
                     "c.verify_token_enc FROM tenants t LEFT JOIN channels c "
                     "ON c.tenant_id = t.id AND c.id = $2 WHERE t.id = $1",
                     2, params, &res, NULL);
    if (rc != 0)
        return rc;
    struct lookup_info *in = f->info;
    if (PQntuples(res) == 0) {
        in->result = LOOKUP_NO_TENANT;
    } else {
        in->tenant_active = strcmp(db_value(res, 0, 0), "t") == 0;
        if (db_value_long(res, 0, 1, &in->rate_per_second) != 0 ||
            db_value_long(res, 0, 2, &in->rate_burst) != 0)
            rc = SB_EDB;
        in->result = strcmp(db_value(res, 0, 3), "t") == 0 ? LOOKUP_FOUND : LOOKUP_NO_CHANNEL;
    }
    if (rc == 0 && in->result == LOOKUP_FOUND) {
        snprintf(in->workspace_id, sizeof in->workspace_id, "%s", db_value(res, 0, 4));
        snprintf(in->type, sizeof in->type, "%s", db_value(res, 0, 5));
        snprintf(in->channel_status, sizeof in->channel_status, "%s", db_value(res, 0, 6));
        rc = open_secret(f->lk, res, 7, f->channel_id, "app_secret", &in->app_secret);
        if (rc == 0)
            rc = open_secret(f->lk, res, 8, f->channel_id, "verify_token", &in->verify_token);
    }
    PQclear(res);
    return rc;
}

/* Caches what was read, unless an invalidation arrived while it was being
 * read (`generation` then differs): it may already be stale. */
static void cache_put(struct lookup *lk, const char *tenant_id, const char *channel_id,
                      const struct lookup_info *info, unsigned long generation)
{
    struct entry *e = calloc(1, sizeof *e);
    if (!e || info_copy(&e->info, info) != 0) {
        free(e);
        return;
    }
    snprintf(e->tenant_id, sizeof e->tenant_id, "%s", tenant_id);
    snprintf(e->channel_id, sizeof e->channel_id, "%s", channel_id);
    e->expires_ms = sb_mono_ms() + lk->ttl_ms;
    unsigned h = hash_key(tenant_id, channel_id);
    pthread_mutex_lock(&lk->mu);
    if (lk->generation != generation) {
        pthread_mutex_unlock(&lk->mu);
        free_entry(e);
        return;
    }
    if (lk->count >= LOOKUP_MAX_ENTRIES)
        drop_where(lk, NULL, NULL);
    e->next = lk->buckets[h];
    lk->buckets[h] = e;
    lk->count++;
    pthread_mutex_unlock(&lk->mu);
}

/* Copies a live cached entry into *out; false when there is none. Expired
 * entries met on the way are removed. */
static bool cache_get(struct lookup *lk, const char *tenant_id, const char *channel_id,
                      struct lookup_info *out)
{
    unsigned h = hash_key(tenant_id, channel_id);
    int64_t now = sb_mono_ms();
    bool found = false;
    pthread_mutex_lock(&lk->mu);
    struct entry **pp = &lk->buckets[h];
    while (*pp) {
        struct entry *e = *pp;
        if (e->expires_ms <= now) {
            *pp = e->next;
            free_entry(e);
            lk->count--;
            continue;
        }
        if (strcmp(e->tenant_id, tenant_id) == 0 && strcmp(e->channel_id, channel_id) == 0) {
            found = info_copy(out, &e->info) == 0;
            break;
        }
        pp = &e->next;
    }
    pthread_mutex_unlock(&lk->mu);
    return found;
}

int lookup_get(struct lookup *lk, const char *tenant_id, const char *channel_id, bool may_block,
               struct lookup_info *out)
{
    memset(out, 0, sizeof *out);
    if (cache_get(lk, tenant_id, channel_id, out)) {
        metric_add(lk->m_lookups, (const char *[]){"hit"}, 1);
        return 0;
    }
    if (!may_block)
        return SB_EWOULDBLOCK; /* counted as a miss by the caller that may */
    metric_add(lk->m_lookups, (const char *[]){"miss"}, 1);
    pthread_mutex_lock(&lk->mu);
    unsigned long generation = lk->generation;
    pthread_mutex_unlock(&lk->mu);
    struct fetch f = {lk, tenant_id, channel_id, out};
    int rc = db_tenant_tx(lk->db, tenant_id, fetch_tx, &f);
    if (rc != 0) {
        lookup_info_cleanup(out);
        return rc;
    }
    cache_put(lk, tenant_id, channel_id, out, generation);
    return 0;
}

struct lookup *lookup_new(struct db_pool *db, struct bus *bus, const struct crypto_key *key,
                          int ttl_ms, struct metrics *metrics, struct sb_log *log)
{
    struct lookup *lk = calloc(1, sizeof *lk);
    if (!lk)
        return NULL;
    lk->db = db;
    lk->key = key;
    lk->ttl_ms = ttl_ms;
    lk->log = log;
    pthread_mutex_init(&lk->mu, NULL);
    lk->m_lookups = metrics_counter(metrics, "gateway_lookup_total",
                                    "Tenant/channel lookups by cache result.", "result");
    lk->m_invalidations = metrics_counter(
        metrics, "gateway_lookup_invalidations_total",
        "Cache invalidations applied: one tenant, one channel, or all (on every (re)subscription,"
        " since messages sent meanwhile were missed).",
        "scope");
    lk->sub = bus_subscribe(bus, LOOKUP_INVALIDATE_CHANNEL, on_invalidate, lk);
    if (!lk->sub) {
        lookup_free(lk);
        return NULL;
    }
    return lk;
}

void lookup_free(struct lookup *lk)
{
    if (!lk)
        return;
    bus_subscription_free(lk->sub);
    drop_where(lk, NULL, NULL);
    pthread_mutex_destroy(&lk->mu);
    free(lk);
}
