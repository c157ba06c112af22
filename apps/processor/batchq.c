/* batchq.c - a job queue served in batches (batchq.h). */
#include "batchq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct batchq {
    struct batchq_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t work, room;
    struct batchq_item *head, *tail;
    size_t queued;
    bool stop, drain;
    pthread_t threads[BATCHQ_MAX_THREADS];
    int nthreads;
};

/* The head and every queued job that joins it, in order. Called locked. */
static size_t take(struct batchq *q, struct batchq_item **out)
{
    struct batchq_item *kept = NULL; /* the last job left in the queue */
    size_t n = 0;
    out[n++] = q->head;
    q->head = q->head->next;
    struct batchq_item **at = &q->head;
    while (*at && n < q->cfg.batch_max) {
        struct batchq_item *j = *at;
        if (q->cfg.joins(out, n, j)) {
            *at = j->next;
            out[n++] = j;
        } else {
            kept = j;
            at = &j->next;
        }
    }
    if (!*at) /* walked to the end: the tail may have been taken */
        q->tail = kept;
    q->queued -= n;
    return n;
}

static void *worker_main(void *arg)
{
    struct batchq *q = arg;
    struct batchq_item *batch[BATCHQ_MAX_BATCH];
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (!q->head && !q->stop)
            pthread_cond_wait(&q->work, &q->mu);
        size_t n = q->head && (!q->stop || q->drain) ? take(q, batch) : 0;
        pthread_cond_broadcast(&q->room);
        pthread_mutex_unlock(&q->mu);
        if (n == 0)
            return NULL;
        for (size_t i = 0; i < n; i++)
            batch[i]->next = NULL;
        q->cfg.run(batch, n, q->cfg.arg);
    }
}

struct batchq *batchq_start(const struct batchq_config *cfg)
{
    if (cfg->threads < 1 || cfg->threads > BATCHQ_MAX_THREADS || cfg->batch_max < 1 ||
        cfg->batch_max > BATCHQ_MAX_BATCH || !cfg->joins || !cfg->run)
        return NULL;
    struct batchq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->cfg = *cfg;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->work, NULL);
    pthread_cond_init(&q->room, NULL);
    for (int i = 0; i < cfg->threads; i++) {
        if (pthread_create(&q->threads[i], NULL, worker_main, q) != 0) {
            batchq_free(q, NULL);
            return NULL;
        }
        q->nthreads++;
    }
    return q;
}

bool batchq_put(struct batchq *q, struct batchq_item *job)
{
    pthread_mutex_lock(&q->mu);
    while (q->cfg.max_queued && q->queued >= q->cfg.max_queued && !q->stop)
        pthread_cond_wait(&q->room, &q->mu);
    bool ok = !q->stop;
    if (ok) {
        job->next = NULL;
        if (q->tail)
            q->tail->next = job;
        else
            q->head = job;
        q->tail = job;
        q->queued++;
        pthread_cond_signal(&q->work);
    }
    pthread_mutex_unlock(&q->mu);
    return ok;
}

size_t batchq_len(struct batchq *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->queued;
    pthread_mutex_unlock(&q->mu);
    return n;
}

bool batchq_closed(struct batchq *q)
{
    pthread_mutex_lock(&q->mu);
    bool stop = q->stop;
    pthread_mutex_unlock(&q->mu);
    return stop;
}

void batchq_close(struct batchq *q, bool drain)
{
    pthread_mutex_lock(&q->mu);
    if (!q->stop) {
        q->stop = true;
        q->drain = drain;
    }
    pthread_cond_broadcast(&q->work);
    pthread_cond_broadcast(&q->room);
    pthread_mutex_unlock(&q->mu);
}

void batchq_free(struct batchq *q, void (*discard)(struct batchq_item *job))
{
    if (!q)
        return;
    batchq_close(q, true);
    for (int i = 0; i < q->nthreads; i++)
        pthread_join(q->threads[i], NULL);
    while (q->head) { /* not drained, or no worker ever started */
        struct batchq_item *j = q->head;
        q->head = j->next;
        if (discard)
            discard(j);
    }
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->room);
    free(q);
}
