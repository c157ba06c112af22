/* workers.c - the handler threads. Each takes an exchange off the work queue,
 * runs its handler, puts it on the done queue and wakes the event loop (or,
 * when the handler deferred it, leaves that to whoever finishes it). */
#include "server.h"

#include <stdlib.h>

void queue_push(struct exchange_queue *q, struct exchange *ex)
{
    ex->next = NULL;
    if (q->tail)
        q->tail->next = ex;
    else
        q->head = ex;
    q->tail = ex;
}

struct exchange *queue_pop(struct exchange_queue *q)
{
    struct exchange *ex = q->head;
    if (ex) {
        q->head = ex->next;
        if (!q->head)
            q->tail = NULL;
        ex->next = NULL;
    }
    return ex;
}

static void *worker_main(void *arg)
{
    struct http_server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->work_mu);
        while (!s->work.head && !s->workers_exit)
            pthread_cond_wait(&s->work_cv, &s->work_mu);
        struct exchange *ex = queue_pop(&s->work);
        pthread_mutex_unlock(&s->work_mu);
        if (!ex)
            return NULL; /* exit requested and nothing left */
        exchange_run_handler(ex);
        if (!ex->deferred || exchange_let_go(ex))
            done_push(s, ex);
    }
}

void done_push(struct http_server *s, struct exchange *ex)
{
    pthread_mutex_lock(&s->done_mu);
    bool wake = s->done.head == NULL;
    queue_push(&s->done, ex);
    pthread_mutex_unlock(&s->done_mu);
    if (wake)
        lws_cancel_service(s->ctx);
}

bool exchange_let_go(struct exchange *ex)
{
    return atomic_fetch_sub_explicit(&ex->holders, 1, memory_order_acq_rel) == 1;
}

int workers_start(struct http_server *s)
{
    s->threads = calloc((size_t)s->cfg.workers, sizeof *s->threads);
    if (!s->threads)
        return -ENOMEM;
    for (int i = 0; i < s->cfg.workers; i++) {
        int rc = pthread_create(&s->threads[i], NULL, worker_main, s);
        if (rc != 0) {
            workers_stop(s);
            return -rc;
        }
        s->nthreads++;
    }
    return 0;
}

void workers_submit(struct http_server *s, struct exchange *ex)
{
    pthread_mutex_lock(&s->work_mu);
    queue_push(&s->work, ex);
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->work_mu);
}

void workers_stop(struct http_server *s)
{
    pthread_mutex_lock(&s->work_mu);
    s->workers_exit = true;
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->work_mu);
    for (int i = 0; i < s->nthreads; i++)
        pthread_join(s->threads[i], NULL);
    s->nthreads = 0;
    free(s->threads);
    s->threads = NULL;
}
