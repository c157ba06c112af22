/* notify.c - cache invalidation after a change: the services cache tenant
 * and channel lookups in Redis and in memory (docs/caching.md), so sabiactl
 * deletes the shared entry and announces the change on a pub/sub channel.
 * Redis is optional here: when it cannot be reached the change stands and
 * the caches' TTL bounds how long a stale entry lives. */
#include "ctl.h"

#include "bus.h"

#include <string.h>

#define NOTIFY_CHANNEL    "sabia:invalidate"
#define NOTIFY_KEY_PREFIX "sabia:cache:"
#define NOTIFY_MSG_MAX    64 /* "<kind>:<uuid>" */

/* Runs one command; returns 0 or a negative code (an error reply is SB_EREDIS). */
static int notify_command(struct bus *b, int argc, const char **argv)
{
    redisReply *reply = NULL;
    int rc = bus_command(b, argc, argv, NULL, &reply);
    if (rc == 0 && reply->type == REDIS_REPLY_ERROR)
        rc = SB_EREDIS;
    freeReplyObject(reply);
    return rc;
}

void ctl_invalidate(struct ctl *ctl, const char *kind, const char *id)
{
    const char *url = sb_config_str(ctl->cfg, "SABIA_REDIS_URL");
    if (!url || !url[0])
        return;
    char msg[NOTIFY_MSG_MAX], key[NOTIFY_MSG_MAX + sizeof NOTIFY_KEY_PREFIX];
    snprintf(msg, sizeof msg, "%s:%s", kind, id);
    snprintf(key, sizeof key, NOTIFY_KEY_PREFIX "%s", msg);
    int rc = 0;
    struct bus *b = bus_new(url, 1, NULL, &rc);
    /* Delete first: a service that reloads on the message must not find
     * the old entry still in Redis. */
    const char *del[] = {"DEL", key};
    const char *pub[] = {"PUBLISH", NOTIFY_CHANNEL, msg};
    if (b)
        rc = notify_command(b, 2, del);
    if (b && rc == 0)
        rc = notify_command(b, 3, pub);
    bus_free(b);
    if (rc != 0)
        ctl_warn("cache invalidation of %s skipped: Redis (SABIA_REDIS_URL): %s; services may use "
                 "the old %s until their cache entry expires",
                 msg, sb_strerror(rc), kind);
}
