/* handoff.c - wake-ups for the processor, and the relay.
 *
 * After a batch commits, each accepted event's id goes onto a Redis stream
 * (XADD) from a thread of its own, so a slow or absent Redis never delays an
 * acknowledgement. The stream entry is only a wake-up: the event itself is in
 * PostgreSQL. If Redis is down, or the process dies between commit and XADD,
 * the relay finds accepted events that are still unprocessed after a while and
 * publishes them again (the transactional-outbox pattern), so nothing that
 * was acknowledged is ever lost. The processor must tolerate duplicates. */
#include "gateway.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define HANDOFF_QUEUE_MAX 100000 /* wake-ups waiting for Redis; past this they are dropped */
#define RELAY_BATCH 500
/* Any constant shared by all gateways: only one relays at a time. */
#define RELAY_LOCK_KEY "7212290533"

struct wakeup {
    char event_id[SB_UUID_STRLEN];
    char tenant_id[SB_UUID_STRLEN];
    char correlation_id[SB_UUID_STRLEN + 32];
    char source[16];
    struct wakeup *next;
};

struct handoff {
    struct bus *bus;
    char *stream;
    char maxlen[24];
    struct sb_log *log;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct wakeup *head, *tail;
    size_t queued;
    bool stop;
    pthread_t thread;
    struct metric *m_published; /* gateway_handoff_total{result} */
};

int handoff_publish(struct handoff *h, const char *event_id, const char *tenant_id,
                    const char *correlation_id, const char *source)
{
    const char *argv[] = {"XADD", h->stream, "MAXLEN", "~", h->maxlen, "*",
                          "event_id", event_id, "tenant_id", tenant_id,
                          "correlation_id", correlation_id ? correlation_id : "",
                          "source", source};
    redisReply *r = NULL;
    int rc = bus_command(h->bus, 14, argv, NULL, &r);
    if (rc == 0 && r->type != REDIS_REPLY_STRING)
        rc = SB_EREDIS;
    freeReplyObject(r);
    metric_add(h->m_published, (const char *[]){rc == 0 ? "published" : "failed"}, 1);
    return rc;
}

#define HANDOFF_BATCH 256 /* wake-ups sent in one pipelined round trip */

/* Publishes a batch of wake-ups in one round trip; returns how many failed. */
static size_t publish_batch(struct handoff *h, struct wakeup **ws, size_t n)
{
    const char *argv[HANDOFF_BATCH][14];
    const char **argvs[HANDOFF_BATCH] = {0};
    int argcs[HANDOFF_BATCH] = {0};
    redisReply *replies[HANDOFF_BATCH];
    for (size_t i = 0; i < n; i++) {
        const char *a[] = {"XADD", h->stream, "MAXLEN", "~", h->maxlen, "*",
                           "event_id", ws[i]->event_id, "tenant_id", ws[i]->tenant_id,
                           "correlation_id", ws[i]->correlation_id, "source", ws[i]->source};
        memcpy(argv[i], a, sizeof a);
        argvs[i] = argv[i];
        argcs[i] = 14;
    }
    size_t failed = n;
    if (bus_pipeline(h->bus, n, argcs, argvs, replies) == 0) {
        failed = 0;
        for (size_t i = 0; i < n; i++) {
            failed += replies[i]->type != REDIS_REPLY_STRING;
            freeReplyObject(replies[i]);
        }
    }
    metric_add(h->m_published, (const char *[]){"published"}, (double)(n - failed));
    if (failed)
        metric_add(h->m_published, (const char *[]){"failed"}, (double)failed);
    return failed;
}

/* Takes what is queued (up to a batch), waiting when there is nothing. */
static size_t take_batch(struct handoff *h, struct wakeup **ws)
{
    size_t n = 0;
    pthread_mutex_lock(&h->mu);
    while (!h->head && !h->stop)
        pthread_cond_wait(&h->cv, &h->mu);
    while (h->head && n < HANDOFF_BATCH) {
        ws[n++] = h->head;
        h->head = h->head->next;
        h->queued--;
    }
    if (!h->head)
        h->tail = NULL;
    pthread_mutex_unlock(&h->mu);
    return n;
}

/* Frees every queued wake-up without publishing it. */
static void drop_queued(struct handoff *h)
{
    pthread_mutex_lock(&h->mu);
    struct wakeup *w = h->head;
    h->head = h->tail = NULL;
    h->queued = 0;
    pthread_mutex_unlock(&h->mu);
    while (w) {
        struct wakeup *next = w->next;
        free(w);
        w = next;
    }
}

static void *handoff_main(void *arg)
{
    struct handoff *h = arg;
    struct wakeup *ws[HANDOFF_BATCH];
    bool warned = false;
    for (;;) {
        size_t n = take_batch(h, ws);
        if (n == 0)
            return NULL; /* stopping and drained */
        size_t failed = publish_batch(h, ws, n);
        if (failed) {
            pthread_mutex_lock(&h->mu);
            bool stopping = h->stop;
            pthread_mutex_unlock(&h->mu);
            if (stopping) /* Redis is away at shutdown: the relay will publish the rest */
                drop_queued(h);
        }
        if (failed && !warned) {
            struct sb_log_ctx lctx = {ws[0]->tenant_id, ws[0]->correlation_id};
            sb_log_warn(h->log, &lctx,
                        "hand-off of %zu event(s) to the processor failed; the relay will retry",
                        failed);
        }
        warned = failed != 0;
        for (size_t i = 0; i < n; i++)
            free(ws[i]);
    }
}

static void copy_into(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

void handoff_push(struct handoff *h, const char *event_id, const char *tenant_id,
                  const char *correlation_id, const char *source)
{
    struct wakeup *w = calloc(1, sizeof *w);
    if (!w)
        return; /* the relay will publish it */
    copy_into(w->event_id, sizeof w->event_id, event_id);
    copy_into(w->tenant_id, sizeof w->tenant_id, tenant_id);
    copy_into(w->correlation_id, sizeof w->correlation_id, correlation_id);
    copy_into(w->source, sizeof w->source, source);
    pthread_mutex_lock(&h->mu);
    if (h->queued >= HANDOFF_QUEUE_MAX || h->stop) {
        pthread_mutex_unlock(&h->mu);
        metric_add(h->m_published, (const char *[]){"dropped"}, 1);
        free(w);
        return;
    }
    if (h->tail)
        h->tail->next = w;
    else
        h->head = w;
    h->tail = w;
    h->queued++;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

struct handoff *handoff_new(struct bus *bus, const char *stream, long maxlen,
                            struct metrics *metrics, struct sb_log *log)
{
    struct handoff *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->bus = bus;
    h->log = log;
    h->stream = strdup(stream);
    snprintf(h->maxlen, sizeof h->maxlen, "%ld", maxlen);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->m_published = metrics_counter(metrics, "gateway_handoff_total",
                                     "Processor wake-ups by result.", "result");
    if (!h->stream || pthread_create(&h->thread, NULL, handoff_main, h) != 0) {
        free(h->stream);
        free(h);
        return NULL;
    }
    return h;
}

/* Publishes what is still queued (while Redis answers), then stops. */
void handoff_free(struct handoff *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    free(h->stream);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}
