/* worker.c - at-least-once consumption of a stream by a consumer group.
 *
 * Each handler thread reads with its own consumer name (<consumer>-<n>), so
 * that on start it can safely re-read its own pending entries ("0") before
 * taking new ones (">"). An entry is acknowledged only when the handler says
 * so; one left pending is reclaimed (XAUTOCLAIM) by thread 0 once it has been
 * idle for reclaim_idle_ms, which is also how entries of a dead process are
 * taken over. After max_deliveries an entry goes to the dead-letter stream
 * with the reason, then is acknowledged (XADD before XACK: a crash in between
 * duplicates into the dead-letter stream rather than losing the entry). */
#include "bus.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define WORKER_MAX_THREADS 64
#define DEAD_MAXLEN 100000L /* dead-letter streams keep about this many entries */

struct bus_worker {
    struct bus *bus;
    struct bus_worker_config cfg;
    char stream[BUS_KEY_MAX_BYTES + 1], group[BUS_KEY_MAX_BYTES + 1];
    char consumer[BUS_KEY_MAX_BYTES + 1], dead[BUS_KEY_MAX_BYTES + 1];
    atomic_bool stop;
    pthread_t threads[WORKER_MAX_THREADS];
    int nthreads;
};

struct thread_arg {
    struct bus_worker *w;
    int index;
};

/* Delivery count of one pending entry (XPENDING … IDLE 0 id id 1), or 0. */
static unsigned deliveries_of(struct bus_worker *w, const char *id)
{
    const char *argv[] = {"XPENDING", w->stream, w->group, id, id, "1"};
    redisReply *r = NULL;
    unsigned n = 0;
    if (bus_command(w->bus, 6, argv, NULL, &r) == 0 && r->type == REDIS_REPLY_ARRAY &&
        r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 4 && r->element[0]->element[3]->type == REDIS_REPLY_INTEGER)
        n = (unsigned)r->element[0]->element[3]->integer;
    freeReplyObject(r);
    return n;
}

/* Copies the entry to the dead-letter stream with the reason, then acks. */
static void dead_letter(struct bus_worker *w, const struct bus_entry *e, unsigned deliveries,
                        const char *reason)
{
    size_t nf = 4 + e->nfields;
    const char **fields = calloc(2 * nf, sizeof *fields);
    char count[16];
    snprintf(count, sizeof count, "%u", deliveries);
    if (fields) {
        fields[0] = "orig_id", fields[1] = e->id;
        fields[2] = "orig_stream", fields[3] = w->stream;
        fields[4] = "reason", fields[5] = reason;
        fields[6] = "deliveries", fields[7] = count;
        for (size_t i = 0; i < e->nfields; i++) {
            fields[8 + 2 * i] = e->names[i];
            fields[9 + 2 * i] = e->values[i];
        }
        if (bus_stream_add(w->bus, w->dead, DEAD_MAXLEN, nf, fields, NULL) != 0) {
            free(fields);
            return; /* stays pending; tried again at the next reclaim */
        }
    }
    free(fields);
    sb_log_warn(bus_log(w->bus), NULL, "%s: entry %s dead-lettered after %u deliveries: %s",
                w->stream, e->id, deliveries, reason);
    if (w->cfg.on_dead)
        w->cfg.on_dead(e, reason, w->cfg.arg);
    (void)!bus_stream_ack(w->bus, w->stream, w->group, e->id);
}

static void handle(struct bus_worker *w, const struct bus_entry *e, unsigned deliveries)
{
    if (e->deleted) {
        (void)!bus_stream_ack(w->bus, w->stream, w->group, e->id);
        return;
    }
    if (e->oversized) {
        dead_letter(w, e, deliveries, "entry exceeds the size limits");
        return;
    }
    if (deliveries > w->cfg.max_deliveries) {
        dead_letter(w, e, deliveries, "too many failed deliveries");
        return;
    }
    struct sb_buf reason;
    sb_buf_init(&reason, 2000);
    enum bus_verdict v = w->cfg.fn(e, deliveries, &reason, w->cfg.arg);
    if (v == BUS_ACK)
        (void)!bus_stream_ack(w->bus, w->stream, w->group, e->id);
    else if (v == BUS_DEAD)
        dead_letter(w, e, deliveries, reason.len ? reason.data : "rejected by its handler");
    /* BUS_RETRY: left pending, reclaimed after reclaim_idle_ms.
     * BUS_DEFER: the handler acknowledges it later itself. */
    sb_buf_cleanup(&reason);
}

/* Takes over entries idle too long (ours from a crash, or another consumer's). */
static void reclaim(struct bus_worker *w, const char *consumer)
{
    char cursor[BUS_ID_MAX_BYTES + 1] = "0-0";
    for (int rounds = 0; rounds < 100 && !atomic_load(&w->stop); rounds++) {
        struct bus_entry *es = NULL;
        size_t n = 0;
        char next[BUS_ID_MAX_BYTES + 1];
        if (bus_stream_autoclaim(w->bus, w->stream, w->group, consumer, w->cfg.reclaim_idle_ms,
                                 cursor, w->cfg.batch, next, &es, &n) != 0)
            return;
        for (size_t i = 0; i < n; i++)
            handle(w, &es[i], deliveries_of(w, es[i].id));
        bus_entries_free(es, n);
        if (strcmp(next, "0-0") == 0)
            return;
        snprintf(cursor, sizeof cursor, "%s", next);
    }
}

/* Reads after `id` ("0"/an id: own pending entries after it, ">" new ones)
 * once; returns entries handled or -1. `last` (may be NULL) gets the id of the
 * last entry read, so a pass over the pending list can page forward. */
static long read_once(struct bus_worker *w, const char *consumer, const char *id, long block_ms,
                      char last[BUS_ID_MAX_BYTES + 1])
{
    struct bus_entry *es = NULL;
    size_t n = 0;
    int rc = bus_stream_read_group(w->bus, w->stream, w->group, consumer, id, w->cfg.batch, block_ms,
                                   &es, &n);
    if (rc == SB_ENOTFOUND) /* Redis lost the group (restart without data): make it again */
        rc = bus_group_create(w->bus, w->stream, w->group, "0");
    if (rc != 0)
        return -1;
    for (size_t i = 0; i < n && !atomic_load(&w->stop); i++)
        handle(w, &es[i], strcmp(id, ">") == 0 ? 1 : deliveries_of(w, es[i].id));
    if (last && n)
        snprintf(last, BUS_ID_MAX_BYTES + 1, "%s", es[n - 1].id);
    bus_entries_free(es, n);
    return (long)n;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *worker_main(void *arg)
{
    struct thread_arg *ta = arg;
    struct bus_worker *w = ta->w;
    char consumer[BUS_KEY_MAX_BYTES + 16];
    snprintf(consumer, sizeof consumer, "%s-%d", w->consumer, ta->index);
    /* One pass over what this consumer left pending before a restart, paging
     * forward: entries a handler leaves pending again (retry, deferred) are
     * not re-read in a loop, they wait for the reclaim like any other. */
    char cursor[BUS_ID_MAX_BYTES + 1] = "0";
    bool own_done = false;
    int64_t next_reclaim = sb_mono_ms();
    while (!atomic_load(&w->stop)) {
        if (!own_done) {
            long n = read_once(w, consumer, cursor, -1, cursor);
            own_done = n >= 0 && (size_t)n < w->cfg.batch;
            if (n < 0)
                pause_ms(500);
            continue;
        }
        if (ta->index == 0 && sb_mono_ms() >= next_reclaim) {
            reclaim(w, consumer);
            next_reclaim = sb_mono_ms() + w->cfg.reclaim_interval_ms;
        }
        if (read_once(w, consumer, ">", w->cfg.block_ms, NULL) < 0)
            pause_ms(500); /* Redis away: the bus logs it; try again shortly */
    }
    free(ta);
    return NULL;
}

static void apply_defaults(struct bus_worker_config *c)
{
    if (c->threads <= 0)
        c->threads = 1;
    if (c->threads > WORKER_MAX_THREADS)
        c->threads = WORKER_MAX_THREADS;
    if (c->batch == 0 || c->batch > BUS_READ_MAX_COUNT)
        c->batch = 16;
    if (c->block_ms <= 0)
        c->block_ms = 2000;
    if (c->reclaim_idle_ms <= 0)
        c->reclaim_idle_ms = 30000;
    if (c->reclaim_interval_ms <= 0)
        c->reclaim_interval_ms = 5000;
    if (c->max_deliveries == 0)
        c->max_deliveries = 5;
}

struct bus_worker *bus_worker_start(struct bus *b, const struct bus_worker_config *cfg)
{
    if (!cfg->stream || !cfg->group || !cfg->consumer || !cfg->fn)
        return NULL;
    struct bus_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->bus = b;
    w->cfg = *cfg;
    apply_defaults(&w->cfg);
    snprintf(w->stream, sizeof w->stream, "%s", cfg->stream);
    snprintf(w->group, sizeof w->group, "%s", cfg->group);
    snprintf(w->consumer, sizeof w->consumer, "%s", cfg->consumer);
    snprintf(w->dead, sizeof w->dead, "%s", cfg->dead_stream ? cfg->dead_stream : "");
    if (!cfg->dead_stream)
        snprintf(w->dead, sizeof w->dead, "%.*s:dead", (int)(sizeof w->dead - 6), cfg->stream);
    atomic_init(&w->stop, false);
    /* The group may not exist yet (and Redis may be down: threads retry). */
    (void)!bus_group_create(b, w->stream, w->group, "0");
    for (int i = 0; i < w->cfg.threads; i++) {
        struct thread_arg *ta = malloc(sizeof *ta);
        if (!ta)
            break;
        *ta = (struct thread_arg){w, i};
        if (pthread_create(&w->threads[i], NULL, worker_main, ta) != 0) {
            free(ta);
            break;
        }
        w->nthreads++;
    }
    if (w->nthreads != w->cfg.threads) {
        bus_worker_stop(w);
        return NULL;
    }
    return w;
}

void bus_worker_stop(struct bus_worker *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, true);
    for (int i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
    free(w);
}
