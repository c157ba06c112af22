/* Stream workers (ack, retry via reclaim, dead letters, several consumers,
 * takeover from a dead consumer) and delayed work in sorted sets. */
#include "bus.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N 20

static struct bus *B;
static char STREAM[96], GROUP[] = "g";

static void setup(void)
{
    int err = 0;
    B = bus_new(ts_env("SABIA_REDIS_URL"), 8, NULL, &err);
    cr_assert_not_null(B);
    snprintf(STREAM, sizeof STREAM, "test:worker:%d:%d", (int)getpid(), ts_free_port());
}

static void teardown(void)
{
    char dead[128];
    snprintf(dead, sizeof dead, "%s:dead", STREAM);
    const char *argv[] = {"DEL", STREAM, dead};
    redisReply *r = NULL;
    if (bus_command(B, 3, argv, NULL, &r) == 0)
        freeReplyObject(r);
    bus_free(B);
}

TestSuite(worker, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(delay, .init = setup, .fini = teardown, .timeout = 60);

struct tally {
    atomic_int calls;
    atomic_int seen[N];
    atomic_int dead;
    int mode; /* 0 ack, 1 retry once then ack, 2 always retry, 3 dead at once */
};

static int index_of(const struct bus_entry *e)
{
    for (size_t i = 0; i < e->nfields; i++)
        if (strcmp(e->names[i], "n") == 0)
            return (int)strtol(e->values[i], NULL, 10);
    return -1;
}

static enum bus_verdict handler(const struct bus_entry *e, unsigned deliveries, struct sb_buf *reason,
                                void *arg)
{
    struct tally *t = arg;
    atomic_fetch_add(&t->calls, 1);
    int i = index_of(e);
    cr_assert(i >= 0 && i < N);
    if (t->mode == 1 && deliveries == 1)
        return BUS_RETRY;
    if (t->mode == 2)
        return BUS_RETRY;
    if (t->mode == 3) {
        (void)!sb_buf_append_str(reason, "unparseable payload");
        return BUS_DEAD;
    }
    atomic_fetch_add(&t->seen[i], 1);
    return BUS_ACK;
}

static void on_dead(const struct bus_entry *e, const char *reason, void *arg)
{
    (void)e;
    (void)reason;
    struct tally *t = arg;
    atomic_fetch_add(&t->dead, 1);
}

static void add_entries(void)
{
    for (int i = 0; i < N; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        const char *f[] = {"n", v};
        cr_assert_eq(bus_stream_add(B, STREAM, 0, 1, f, NULL), 0);
    }
}

static bool wait_until(bool (*pred)(struct tally *), struct tally *t)
{
    for (int i = 0; i < 1500; i++) {
        if (pred(t))
            return true;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

static bool all_seen_once(struct tally *t)
{
    for (int i = 0; i < N; i++)
        if (atomic_load(&t->seen[i]) != 1)
            return false;
    return true;
}

static bool all_called_once(struct tally *t)
{
    return atomic_load(&t->calls) >= N;
}

static bool all_dead(struct tally *t)
{
    return atomic_load(&t->dead) == N;
}

static long pending(void)
{
    const char *argv[] = {"XPENDING", STREAM, GROUP};
    redisReply *r = NULL;
    cr_assert_eq(bus_command(B, 3, argv, NULL, &r), 0);
    long n = r->type == REDIS_REPLY_ARRAY ? (long)r->element[0]->integer : -1;
    freeReplyObject(r);
    return n;
}

static long dead_len(void)
{
    char dead[128];
    snprintf(dead, sizeof dead, "%s:dead", STREAM);
    const char *argv[] = {"XLEN", dead};
    redisReply *r = NULL;
    cr_assert_eq(bus_command(B, 2, argv, NULL, &r), 0);
    long n = (long)r->integer;
    freeReplyObject(r);
    return n;
}

static struct bus_worker *start(struct tally *t, const char *consumer, int threads)
{
    struct bus_worker_config c = {.stream = STREAM, .group = GROUP, .consumer = consumer,
                                  .threads = threads, .block_ms = 200, .reclaim_idle_ms = 300,
                                  .reclaim_interval_ms = 100, .max_deliveries = 3, .fn = handler,
                                  .on_dead = on_dead, .arg = t};
    struct bus_worker *w = bus_worker_start(B, &c);
    cr_assert_not_null(w);
    return w;
}

Test(worker, every_entry_acknowledged_once)
{
    struct tally t = {.mode = 0};
    add_entries();
    struct bus_worker *w = start(&t, "c", 2);
    cr_assert(wait_until(all_seen_once, &t));
    bus_worker_stop(w);
    cr_assert_eq(pending(), 0);
    cr_assert_eq(atomic_load(&t.calls), N);
}

Test(worker, retried_entries_come_back_after_idle)
{
    struct tally t = {.mode = 1};
    add_entries();
    struct bus_worker *w = start(&t, "c", 1);
    cr_assert(wait_until(all_seen_once, &t), "retried entries were not redelivered");
    bus_worker_stop(w);
    cr_assert_eq(pending(), 0);
    cr_assert_eq(atomic_load(&t.calls), 2 * N);
}

Test(worker, endless_failures_are_dead_lettered)
{
    struct tally t = {.mode = 2};
    add_entries();
    struct bus_worker *w = start(&t, "c", 1);
    cr_assert(wait_until(all_dead, &t), "only %d dead", atomic_load(&t.dead));
    bus_worker_stop(w);
    cr_assert_eq(pending(), 0);
    cr_assert_eq(dead_len(), N);
    /* Delivered max_deliveries times, then dead-lettered without another call. */
    cr_assert_eq(atomic_load(&t.calls), 3 * N);
}

Test(worker, handler_can_dead_letter_at_once_with_a_reason)
{
    struct tally t = {.mode = 3};
    add_entries();
    struct bus_worker *w = start(&t, "c", 1);
    cr_assert(wait_until(all_dead, &t));
    bus_worker_stop(w);
    char dead[128];
    snprintf(dead, sizeof dead, "%s:dead", STREAM);
    const char *argv[] = {"XRANGE", dead, "-", "+", "COUNT", "1"};
    redisReply *r = NULL;
    cr_assert_eq(bus_command(B, 6, argv, NULL, &r), 0);
    redisReply *f = r->element[0]->element[1];
    bool found = false;
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (strcmp(f->element[i]->str, "reason") == 0)
            found = strcmp(f->element[i + 1]->str, "unparseable payload") == 0;
    cr_assert(found, "reason not kept in the dead-letter entry");
    freeReplyObject(r);
}

Test(worker, two_processes_share_the_work)
{
    struct tally t = {.mode = 0};
    add_entries();
    struct bus_worker *a = start(&t, "process-a", 2), *b = start(&t, "process-b", 2);
    cr_assert(wait_until(all_seen_once, &t));
    bus_worker_stop(a);
    bus_worker_stop(b);
    cr_assert_eq(atomic_load(&t.calls), N, "an entry was handled twice");
}

Test(worker, entries_of_a_dead_consumer_are_taken_over)
{
    struct tally t = {.mode = 0};
    add_entries();
    cr_assert_eq(bus_group_create(B, STREAM, GROUP, "0"), 0);
    struct bus_entry *es = NULL;
    size_t n = 0;
    /* A consumer takes everything and dies without acknowledging. */
    cr_assert_eq(bus_stream_read_group(B, STREAM, GROUP, "crashed", ">", N, -1, &es, &n), 0);
    cr_assert_eq(n, N);
    bus_entries_free(es, n);
    struct bus_worker *w = start(&t, "survivor", 1);
    cr_assert(wait_until(all_seen_once, &t), "pending entries of the dead consumer were lost");
    bus_worker_stop(w);
    cr_assert_eq(pending(), 0);
}

Test(delay, due_members_taken_once)
{
    char key[96];
    snprintf(key, sizeof key, "test:delay:%d:%d", (int)getpid(), ts_free_port());
    int64_t now = sb_now_ms();
    cr_assert_eq(bus_delay_add(B, key, "past", 4, now - 1000), 0);
    cr_assert_eq(bus_delay_add(B, key, "soon", 4, now + 60000), 0);
    cr_assert_eq(bus_delay_add(B, key, "later", 5, now + 120000), 0);
    char **m = NULL;
    size_t n = 0;
    cr_assert_eq(bus_delay_take_due(B, key, now, 10, &m, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(m[0], "past");
    bus_delay_free(m, n);
    cr_assert_eq(bus_delay_take_due(B, key, now, 10, &m, &n), 0);
    cr_assert_eq(n, 0, "taken twice");
    /* Re-adding moves the deadline. */
    cr_assert_eq(bus_delay_add(B, key, "soon", 4, now - 5), 0);
    cr_assert_eq(bus_delay_remove(B, key, "later", 5), 0);
    cr_assert_eq(bus_delay_take_due(B, key, now + 200000, 10, &m, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(m[0], "soon");
    bus_delay_free(m, n);
    cr_assert_eq(bus_delay_take_due(B, key, now, 0, &m, &n), -EINVAL);
}

struct taker {
    pthread_t t;
    const char *key;
    int got;
};

static void *take_all(void *arg)
{
    struct taker *k = arg;
    for (int i = 0; i < 200; i++) {
        char **m = NULL;
        size_t n = 0;
        if (bus_delay_take_due(B, k->key, sb_now_ms(), 7, &m, &n) == 0)
            k->got += (int)n;
        bus_delay_free(m, n);
    }
    return NULL;
}

Test(delay, concurrent_takers_never_share_a_member)
{
    char key[96];
    snprintf(key, sizeof key, "test:delay:%d:%d", (int)getpid(), ts_free_port());
    for (int i = 0; i < 300; i++) {
        char m[16];
        snprintf(m, sizeof m, "m%d", i);
        cr_assert_eq(bus_delay_add(B, key, m, strlen(m), 0), 0);
    }
    struct taker a = {.key = key}, b = {.key = key};
    pthread_create(&a.t, NULL, take_all, &a);
    pthread_create(&b.t, NULL, take_all, &b);
    pthread_join(a.t, NULL);
    pthread_join(b.t, NULL);
    cr_assert_eq(a.got + b.got, 300);
}

Test(worker, a_restart_does_not_burn_deliveries_of_pending_entries)
{
    struct tally t = {.mode = 2}; /* always retry */
    add_entries();
    struct bus_worker_config c = {.stream = STREAM, .group = GROUP, .consumer = "same",
                                  .threads = 1, .block_ms = 200, .reclaim_idle_ms = 60000,
                                  .reclaim_interval_ms = 60000, .max_deliveries = 10,
                                  .fn = handler, .on_dead = on_dead, .arg = &t};
    struct bus_worker *w = bus_worker_start(B, &c);
    cr_assert(wait_until(all_called_once, &t));
    bus_worker_stop(w);
    /* The same consumer comes back: its pending entries are read once per
     * start (each read counts a delivery), not over and over until dead. */
    for (int round = 0; round < 3; round++) {
        w = bus_worker_start(B, &c);
        struct timespec ts = {0, 300 * 1000000L};
        nanosleep(&ts, NULL);
        bus_worker_stop(w);
    }
    cr_assert_eq(atomic_load(&t.dead), 0, "pending entries were dead-lettered by restarts");
    cr_assert_eq(pending(), N);
}
