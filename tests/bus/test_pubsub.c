/* PUBLISH / SUBSCRIBE: delivery, the "may have missed messages" signal after
 * every (re)connection, recovery after Redis restarts, prompt stop. */
#include "bus.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

struct inbox {
    pthread_mutex_t mu;
    int resets;
    int count;
    char last[128];
};

static void on_message(const char *msg, size_t len, void *arg)
{
    struct inbox *in = arg;
    pthread_mutex_lock(&in->mu);
    if (!msg) {
        in->resets++;
    } else {
        in->count++;
        snprintf(in->last, sizeof in->last, "%.*s", (int)len, msg);
    }
    pthread_mutex_unlock(&in->mu);
}

static bool wait_for(struct inbox *in, int resets, int count)
{
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&in->mu);
        bool ok = in->resets >= resets && in->count >= count;
        pthread_mutex_unlock(&in->mu);
        if (ok)
            return true;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

Test(pubsub, delivers_and_survives_restart, .timeout = 60)
{
    struct ts_redis r = {0};
    ts_redis_start(&r, 0);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", r.port);
    int err = 0;
    struct bus *b = bus_new(url, 2, NULL, &err);
    cr_assert_not_null(b);
    struct inbox in = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct bus_subscription *s = bus_subscribe(b, "test:pubsub", on_message, &in);
    cr_assert_not_null(s);
    cr_assert(wait_for(&in, 1, 0), "no connection signal");
    long n = 0;
    cr_assert_eq(bus_publish(b, "test:pubsub", "tenant:abc", 10, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert(wait_for(&in, 1, 1));
    cr_assert_str_eq(in.last, "tenant:abc");
    /* Messages on other channels are not delivered. */
    cr_assert_eq(bus_publish(b, "test:other", "x", 1, &n), 0);
    cr_assert_eq(n, 0);

    ts_redis_stop(&r);
    cr_assert_neq(bus_publish(b, "test:pubsub", "lost", 4, NULL), 0);
    ts_redis_start(&r, r.port);
    cr_assert(wait_for(&in, 2, 1), "no reconnection signal after restart");
    cr_assert_eq(bus_publish(b, "test:pubsub", "channel:xyz", 11, &n), 0);
    cr_assert(wait_for(&in, 2, 2));
    cr_assert_str_eq(in.last, "channel:xyz");

    bus_subscription_free(s);
    bus_free(b);
    ts_redis_stop(&r);
}

Test(pubsub, stops_while_redis_is_down, .timeout = 30)
{
    int err = 0;
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", ts_free_port());
    struct bus *b = bus_new(url, 1, NULL, &err);
    struct inbox in = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct bus_subscription *s = bus_subscribe(b, "test:pubsub", on_message, &in);
    cr_assert_not_null(s);
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
    int64_t t0 = sb_mono_ms();
    bus_subscription_free(s);
    cr_assert_lt(sb_mono_ms() - t0, 2000, "stopping took too long");
    cr_assert_eq(in.resets, 0);
    bus_free(b);
}
