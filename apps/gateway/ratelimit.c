/* ratelimit.c - per-tenant token buckets in Redis.
 *
 * One hash per tenant ("sabia:rl:tenant:<id>": tokens, last refill in ms),
 * updated atomically by a Lua script that reads Redis' own clock, so every
 * gateway instance shares the bucket and no two clocks disagree. The key
 * expires once the bucket would be full again. */
#include "gateway.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* KEYS[1] bucket; ARGV[1] rate per second; ARGV[2] burst.
 * Returns {allowed (1|0), retry_after_ms}. */
static const char SCRIPT[] =
    "local rate = tonumber(ARGV[1]) local burst = tonumber(ARGV[2])\n"
    "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')\n"
    "local tokens = tonumber(b[1]) local ts = tonumber(b[2])\n"
    "if tokens == nil or ts == nil then tokens = burst ts = now end\n"
    "if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000) end\n"
    "local allowed = 0 local retry = 0\n"
    "if tokens >= 1 then tokens = tokens - 1 allowed = 1\n"
    "else retry = math.ceil((1 - tokens) * 1000 / rate) end\n"
    "redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))\n"
    "redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)\n"
    "return {allowed, retry}\n";

struct ratelimit {
    struct bus *bus;
    pthread_mutex_t mu;
    char sha[48]; /* the script's SHA1 once loaded; "" before */
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
                      redisReply **reply)
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
        const char *argv[] = {"EVALSHA", sha, "1", key, rate, burst};
        int rc = bus_command(rl->bus, 6, argv, NULL, reply);
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

int ratelimit_take(struct ratelimit *rl, const char *tenant_id, long rate, long burst,
                   long *retry_after_ms)
{
    char key[80], rs[24], bs[24];
    snprintf(key, sizeof key, "sabia:rl:tenant:%s", tenant_id);
    snprintf(rs, sizeof rs, "%ld", rate > 0 ? rate : 1);
    snprintf(bs, sizeof bs, "%ld", burst > 0 ? burst : 1);
    redisReply *r = NULL;
    int rc = run_script(rl, key, rs, bs, &r);
    if (rc != 0)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        return SB_EREDIS;
    }
    bool allowed = r->element[0]->integer == 1;
    *retry_after_ms = (long)r->element[1]->integer;
    freeReplyObject(r);
    return allowed ? 0 : -EAGAIN;
}
