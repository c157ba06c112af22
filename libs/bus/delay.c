/* delay.c - delayed work in Redis sorted sets scored by due time. */
#include "bus.h"

#include <stdlib.h>
#include <string.h>

#define DELAY_TAKE_MAX 1000

/* KEYS[1] set; ARGV[1] now (ms); ARGV[2] max. */
static const char TAKE_SCRIPT[] =
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])\n"
    "if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end\n"
    "return due\n";

int bus_delay_add(struct bus *b, const char *key, const char *member, size_t len, int64_t due_ms)
{
    char score[24];
    snprintf(score, sizeof score, "%lld", (long long)due_ms);
    const char *argv[] = {"ZADD", key, score, member};
    size_t lens[] = {4, strlen(key), strlen(score), len};
    redisReply *r = NULL;
    int rc = bus_command(b, 4, argv, lens, &r);
    if (rc == 0 && r->type == REDIS_REPLY_ERROR)
        rc = SB_EREDIS;
    freeReplyObject(r);
    return rc;
}

int bus_delay_remove(struct bus *b, const char *key, const char *member, size_t len)
{
    const char *argv[] = {"ZREM", key, member};
    size_t lens[] = {4, strlen(key), len};
    redisReply *r = NULL;
    int rc = bus_command(b, 3, argv, lens, &r);
    if (rc == 0 && r->type == REDIS_REPLY_ERROR)
        rc = SB_EREDIS;
    freeReplyObject(r);
    return rc;
}

void bus_delay_free(char **members, size_t n)
{
    for (size_t i = 0; members && i < n; i++)
        free(members[i]);
    free(members);
}

int bus_delay_take_due(struct bus *b, const char *key, int64_t now_ms, size_t max, char ***members,
                       size_t *n)
{
    *members = NULL;
    *n = 0;
    if (max == 0 || max > DELAY_TAKE_MAX)
        return -EINVAL;
    char now[24], cnt[16];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(cnt, sizeof cnt, "%zu", max);
    const char *argv[] = {"EVAL", TAKE_SCRIPT, "1", key, now, cnt};
    redisReply *r = NULL;
    int rc = bus_command(b, 6, argv, NULL, &r);
    if (rc == 0 && r->type != REDIS_REPLY_ARRAY)
        rc = SB_EREDIS;
    if (rc == 0 && r->elements) {
        *members = calloc(r->elements, sizeof **members);
        for (size_t i = 0; *members && i < r->elements; i++) {
            (*members)[i] = strndup(r->element[i]->str ? r->element[i]->str : "",
                                    r->element[i]->len);
            if (!(*members)[i]) {
                bus_delay_free(*members, i);
                *members = NULL;
                break;
            }
        }
        if (!*members)
            rc = -ENOMEM; /* the members are gone from Redis: callers must have a durable copy */
        else
            *n = r->elements;
    }
    freeReplyObject(r);
    return rc;
}
