/* ratelimit.c - per-tenant token buckets in Redis, spent through local leases.
 *
 * One hash per tenant ("sabia:rl:tenant:<id>": tokens, last refill in ms),
 * updated atomically by a Lua script that reads Redis' own clock, so every
 * gateway instance shares the bucket and no two clocks disagree. The key
 * expires once the bucket would be full again.
 *
 * A round trip to Redis for every request would cost more than the rest of
 * the request's checks together, so an instance takes tokens in small
 * chunks (about LEASE_RATE_MS worth of the tenant's rate, at most
 * LEASE_MAX_TOKENS) and spends them locally; what it has not spent after
 * LEASE_TTL_MS is dropped. Tokens only ever leave the shared bucket, so the
 * limit holds across instances; a lease can at most make it slightly
 * stricter. A tenant with a low rate gets chunks of one: every request asks
 * Redis, exactly as without leases. */
#include "gateway.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LEASE_RATE_MS    50   /* a chunk covers this much of the tenant's rate */
#define LEASE_MAX_TOKENS 256  /* and never more tokens than this */
#define LEASE_TTL_MS     250  /* unspent tokens of a chunk are dropped after this */
#define LEASE_SLOTS      1024 /* tenants with a lease at once; others ask Redis each time */

/* KEYS[1] bucket; ARGV[1] rate per second; ARGV[2] burst; ARGV[3] tokens
 * wanted. Returns {tokens granted (0..wanted), retry_after_ms when 0}. */
static const char SCRIPT[] =
    "local rate = tonumber(ARGV[1]) local burst = tonumber(ARGV[2])\n"
    "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')\n"
    "local tokens = tonumber(b[1]) local ts = tonumber(b[2])\n"
    "if tokens == nil or ts == nil then tokens = burst ts = now end\n"
    "if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000) end\n"
    "local want = tonumber(ARGV[3]) local got = math.min(want, math.floor(tokens)) local retry = 0\n"
    "if got >= 1 then tokens = tokens - got\n"
    "else got = 0 retry = math.ceil((1 - tokens) * 1000 / rate) end\n"
    "redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))\n"
    "redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)\n"
    "return {got, retry}\n";

struct lease {
    char tenant[SB_UUID_STRLEN]; /* "" when free */
    long tokens;                 /* left to spend locally */
    int64_t expires_ms;          /* monotonic */
};

struct ratelimit {
    struct bus *bus;
    pthread_mutex_t mu;
    char sha[48]; /* the script's SHA1 once loaded; "" before */
    struct lease leases[LEASE_SLOTS]; /* open addressing by tenant id, under mu */
};

struct ratelimit *ratelimit_new(struct bus *bus)
{
    struct ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    rl->bus = bus;
    pthread_mutex_init(&rl->mu, NULL);
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

/* SCRIPT LOAD: Redis answers the SHA1 later calls use (EVALSHA sends 40
 * bytes instead of the whole script on every request). */
static int load_script(struct ratelimit *rl, char sha[48])
{
    const char *argv[] = {"SCRIPT", "LOAD", SCRIPT};
    redisReply *r = NULL;
    int rc = bus_command(rl->bus, 3, argv, NULL, &r);
    if (rc == 0 && (r->type != REDIS_REPLY_STRING || r->len >= 48))
        rc = SB_EREDIS;
    if (rc == 0) {
        pthread_mutex_lock(&rl->mu);
        snprintf(rl->sha, sizeof rl->sha, "%s", r->str);
        snprintf(sha, 48, "%s", r->str);
        pthread_mutex_unlock(&rl->mu);
    }
    freeReplyObject(r);
    return rc;
}

static int run_script(struct ratelimit *rl, const char *key, const char *rate, const char *burst,
                      const char *want, redisReply **reply)
{
    char sha[48];
    pthread_mutex_lock(&rl->mu);
    snprintf(sha, sizeof sha, "%s", rl->sha);
    pthread_mutex_unlock(&rl->mu);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!sha[0]) {
            int rc = load_script(rl, sha);
            if (rc != 0)
                return rc;
        }
        const char *argv[] = {"EVALSHA", sha, "1", key, rate, burst, want};
        int rc = bus_command(rl->bus, 7, argv, NULL, reply);
        if (rc != 0)
            return rc;
        bool noscript = (*reply)->type == REDIS_REPLY_ERROR && strncmp((*reply)->str, "NOSCRIPT", 8) == 0;
        if (!noscript)
            return 0;
        freeReplyObject(*reply); /* Redis restarted and forgot it: load again */
        *reply = NULL;
        sha[0] = '\0';
    }
    return SB_EREDIS;
}

static struct lease *lease_slot(struct ratelimit *rl, const char *tenant_id)
{
    unsigned h = 2166136261u;
    for (const char *c = tenant_id; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    int64_t now = sb_mono_ms();
    struct lease *reuse = NULL;
    for (unsigned probes = 0, i = h % LEASE_SLOTS; probes < 8; probes++, i = (i + 1) % LEASE_SLOTS) {
        struct lease *l = &rl->leases[i];
        if (strcmp(l->tenant, tenant_id) == 0)
            return l;
        if (!reuse && (!l->tenant[0] || l->expires_ms <= now))
            reuse = l; /* free, or its tokens are stale anyway */
    }
    if (reuse) {
        snprintf(reuse->tenant, sizeof reuse->tenant, "%s", tenant_id);
        reuse->tokens = 0;
    }
    return reuse;
}

/* Spends a locally leased token. Locked. */
static bool lease_spend(struct ratelimit *rl, const char *tenant_id)
{
    struct lease *l = lease_slot(rl, tenant_id);
    if (!l || l->tokens <= 0 || l->expires_ms <= sb_mono_ms())
        return false;
    l->tokens--;
    return true;
}

int ratelimit_take(struct ratelimit *rl, const char *tenant_id, long rate, long burst,
                   long *retry_after_ms)
{
    pthread_mutex_lock(&rl->mu);
    bool leased = lease_spend(rl, tenant_id);
    pthread_mutex_unlock(&rl->mu);
    if (leased)
        return 0;
    rate = rate > 0 ? rate : 1;
    burst = burst > 0 ? burst : 1;
    long want = rate * LEASE_RATE_MS / 1000;
    want = want < 1 ? 1 : want > LEASE_MAX_TOKENS ? LEASE_MAX_TOKENS : want;
    char key[80], rs[24], bs[24], ws[24];
    snprintf(key, sizeof key, "sabia:rl:tenant:%s", tenant_id);
    snprintf(rs, sizeof rs, "%ld", rate);
    snprintf(bs, sizeof bs, "%ld", burst);
    snprintf(ws, sizeof ws, "%ld", want);
    redisReply *r = NULL;
    int rc = run_script(rl, key, rs, bs, ws, &r);
    if (rc != 0)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        return SB_EREDIS;
    }
    long got = (long)r->element[0]->integer;
    *retry_after_ms = (long)r->element[1]->integer;
    freeReplyObject(r);
    if (got < 1)
        return -EAGAIN;
    if (got > 1) { /* one for this request, the rest for the next ones */
        pthread_mutex_lock(&rl->mu);
        struct lease *l = lease_slot(rl, tenant_id);
        if (l) {
            int64_t now = sb_mono_ms();
            l->tokens = (l->expires_ms > now ? l->tokens : 0) + got - 1;
            l->expires_ms = now + LEASE_TTL_MS;
        }
        pthread_mutex_unlock(&rl->mu);
    }
    return 0;
}
