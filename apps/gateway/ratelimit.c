/* ratelimit.c - per-tenant token buckets in Redis, spent through local leases.
 *
 * One hash per tenant ("sabia:rl:tenant:<id>": tokens, last refill in ms),
 * updated atomically by a Lua script that reads Redis' own clock, so every
 * gateway instance shares the bucket and no two clocks disagree. The key
 * expires once the bucket would be full again.
 *
 * A round trip to Redis for every request would cost more than the rest of
 * the request's checks together, so an instance takes tokens in small
 * chunks sized to its own recent use of them (see lease_want; at most
 * LEASE_RATE_MS of the tenant's rate and LEASE_MAX_TOKENS) and spends them
 * locally; what it has not spent after LEASE_TTL_MS is dropped. Tokens only
 * ever leave the shared bucket, so the limit holds across instances; what a
 * lease drops is bounded by about LEASE_RATE_MS of the instance's own
 * traffic. A tenant with a low rate, or an instance that sees little of a
 * tenant's traffic, gets chunks of one: every request asks Redis, exactly as
 * without leases. */
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
    long granted;                /* size of the last chunk (0: none yet) */
    int64_t granted_ms;          /* when it came */
    bool fetching;               /* a thread is asking Redis for the next chunk */
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

static struct lease *lease_slot(struct ratelimit *rl, const char *tenant_id, int64_t now)
{
    unsigned h = 2166136261u;
    for (const char *c = tenant_id; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    struct lease *reuse = NULL;
    for (unsigned probes = 0, i = h % LEASE_SLOTS; probes < 8; probes++, i = (i + 1) % LEASE_SLOTS) {
        struct lease *l = &rl->leases[i];
        if (strcmp(l->tenant, tenant_id) == 0)
            return l;
        if (!reuse && (!l->tenant[0] || (l->expires_ms <= now && !l->fetching)))
            reuse = l; /* free, or its tokens are stale anyway */
    }
    if (reuse) {
        *reuse = (struct lease){0};
        snprintf(reuse->tenant, sizeof reuse->tenant, "%s", tenant_id);
    }
    return reuse;
}

/* How many tokens to ask Redis for: about LEASE_RATE_MS of what this
 * instance itself used since its last chunk (twice that, to grow quickly),
 * within the tenant's own LEASE_RATE_MS and LEASE_MAX_TOKENS. An instance
 * that sees little of a tenant's traffic takes one token at a time and wastes
 * nothing. */
static long lease_want(const struct lease *l, long rate, int64_t now)
{
    long cap = rate * LEASE_RATE_MS / 1000;
    cap = cap < 1 ? 1 : cap > LEASE_MAX_TOKENS ? LEASE_MAX_TOKENS : cap;
    if (l->granted <= 0)
        return 1;
    long used = l->granted - (l->tokens > 0 ? l->tokens : 0);
    int64_t elapsed = now - l->granted_ms;
    long want = (long)((int64_t)used * 2 * LEASE_RATE_MS / (elapsed > 0 ? elapsed : 1));
    return want < 1 ? 1 : want > cap ? cap : want;
}

int ratelimit_take(struct ratelimit *rl, const char *tenant_id, long rate, long burst,
                   bool may_block, long *retry_after_ms)
{
    rate = rate > 0 ? rate : 1;
    burst = burst > 0 ? burst : 1;
    int64_t now = sb_mono_ms();
    long want = 1;
    pthread_mutex_lock(&rl->mu);
    struct lease *l = lease_slot(rl, tenant_id, now);
    if (l && l->tokens > 0 && l->expires_ms > now) {
        l->tokens--;
        pthread_mutex_unlock(&rl->mu);
        return 0;
    }
    if (!may_block) {
        pthread_mutex_unlock(&rl->mu);
        return SB_EWOULDBLOCK;
    }
    /* One thread per tenant fetches a chunk; the others meanwhile ask for one. */
    bool fetch = l && !l->fetching;
    if (fetch) {
        l->fetching = true;
        want = lease_want(l, rate, now);
    }
    pthread_mutex_unlock(&rl->mu);

    char key[80], rs[24], bs[24], ws[24];
    snprintf(key, sizeof key, "sabia:rl:tenant:%s", tenant_id);
    snprintf(rs, sizeof rs, "%ld", rate);
    snprintf(bs, sizeof bs, "%ld", burst);
    snprintf(ws, sizeof ws, "%ld", want);
    redisReply *r = NULL;
    long got = 0;
    int rc = run_script(rl, key, rs, bs, ws, &r);
    if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                    r->element[0]->type != REDIS_REPLY_INTEGER ||
                    r->element[1]->type != REDIS_REPLY_INTEGER))
        rc = SB_EREDIS;
    if (rc == 0) {
        got = (long)r->element[0]->integer;
        *retry_after_ms = (long)r->element[1]->integer;
    }
    freeReplyObject(r);
    if (fetch) {
        pthread_mutex_lock(&rl->mu);
        l = lease_slot(rl, tenant_id, now);
        if (l) {
            l->fetching = false;
            if (got >= 1) { /* one for this request, the rest for the next ones */
                l->tokens = got - 1;
                l->granted = got;
                l->granted_ms = now;
                l->expires_ms = now + LEASE_TTL_MS;
            }
        }
        pthread_mutex_unlock(&rl->mu);
    }
    if (rc != 0)
        return rc;
    return got >= 1 ? 0 : -EAGAIN;
}
