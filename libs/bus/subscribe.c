/* subscribe.c - PUBLISH and a SUBSCRIBE loop on a dedicated connection.
 *
 * The loop polls the socket with a short timeout so that a stop request is
 * noticed promptly, and parses replies with hiredis' reader directly: a read
 * timeout inside redisGetReply would poison the context. */
#include "bus.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SUB_POLL_MS 100
#define SUB_BACKOFF_MIN_MS 100
#define SUB_BACKOFF_MAX_MS 5000

struct bus_subscription {
    struct bus *bus;
    char *channel;
    bus_message_fn fn;
    void *arg;
    atomic_bool stop;
    pthread_t thread;
};

int bus_publish(struct bus *b, const char *channel, const char *message, size_t len, long *receivers)
{
    const char *argv[] = {"PUBLISH", channel, message};
    size_t lens[] = {7, strlen(channel), len};
    redisReply *r = NULL;
    int rc = bus_command(b, 3, argv, lens, &r);
    if (rc == 0 && r->type != REDIS_REPLY_INTEGER)
        rc = SB_EREDIS;
    if (rc == 0 && receivers)
        *receivers = (long)r->integer;
    freeReplyObject(r);
    return rc;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Dispatches one pushed reply: ["message", channel, payload]. */
static void deliver(struct bus_subscription *s, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return;
    const redisReply *kind = r->element[0], *msg = r->element[2];
    if (kind->type != REDIS_REPLY_STRING || strcmp(kind->str, "message") != 0 ||
        msg->type != REDIS_REPLY_STRING || msg->len > BUS_SUBSCRIBE_MAX_MESSAGE)
        return;
    s->fn(msg->str, msg->len, s->arg);
}

/* Reads replies until the connection fails or a stop is requested. */
static void listen_on(struct bus_subscription *s, redisContext *ctx)
{
    while (!atomic_load(&s->stop)) {
        void *reply = NULL;
        if (redisGetReplyFromReader(ctx, &reply) != REDIS_OK)
            return;
        if (reply) {
            deliver(s, reply);
            freeReplyObject(reply);
            continue;
        }
        struct pollfd pfd = {.fd = ctx->fd, .events = POLLIN};
        int n = poll(&pfd, 1, SUB_POLL_MS);
        if (n < 0 && errno != EINTR)
            return;
        if (n > 0 && redisBufferRead(ctx) != REDIS_OK)
            return;
    }
}

static void *sub_main(void *arg)
{
    struct bus_subscription *s = arg;
    long backoff = SUB_BACKOFF_MIN_MS;
    while (!atomic_load(&s->stop)) {
        redisContext *ctx = NULL;
        redisReply *r = NULL;
        if (bus_connect_dedicated(s->bus, 1000, &ctx) == 0) {
            r = redisCommand(ctx, "SUBSCRIBE %s", s->channel);
            if (r && r->type == REDIS_REPLY_ARRAY) {
                backoff = SUB_BACKOFF_MIN_MS;
                s->fn(NULL, 0, s->arg); /* anything sent meanwhile was missed */
                freeReplyObject(r);
                r = NULL;
                listen_on(s, ctx);
            }
        }
        freeReplyObject(r);
        redisFree(ctx);
        for (long waited = 0; waited < backoff && !atomic_load(&s->stop); waited += SUB_POLL_MS)
            sleep_ms(SUB_POLL_MS);
        backoff = backoff * 2 > SUB_BACKOFF_MAX_MS ? SUB_BACKOFF_MAX_MS : backoff * 2;
    }
    return NULL;
}

struct bus_subscription *bus_subscribe(struct bus *b, const char *channel, bus_message_fn fn,
                                       void *arg)
{
    struct bus_subscription *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->bus = b;
    s->fn = fn;
    s->arg = arg;
    s->channel = strdup(channel);
    atomic_init(&s->stop, false);
    if (!s->channel || pthread_create(&s->thread, NULL, sub_main, s) != 0) {
        free(s->channel);
        free(s);
        return NULL;
    }
    return s;
}

void bus_subscription_free(struct bus_subscription *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    free(s->channel);
    free(s);
}
