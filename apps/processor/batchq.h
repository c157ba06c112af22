/* batchq.h - internal to sabia-processor: a queue of jobs served in batches
 * by a few threads. Finishing model calls (answer.c) and sending messages
 * (send.c) both store or claim many jobs of one tenant with one transaction:
 * a worker takes the job at the head and every queued job that `joins` it,
 * in order, up to batch_max, and runs them together.
 *
 * Jobs embed a `struct batchq_item` (intrusive: nothing is allocated per
 * job) and are recovered with BATCHQ_JOB. A job belongs to the queue from
 * batchq_put() until `run` (or `discard`) gets it. Thread-safe. */
#ifndef SABIA_PROCESSOR_BATCHQ_H
#define SABIA_PROCESSOR_BATCHQ_H

#include <stdbool.h>
#include <stddef.h>

#define BATCHQ_MAX_THREADS 64
#define BATCHQ_MAX_BATCH 256

struct batchq_item {
    struct batchq_item *next;
};

#define BATCHQ_JOB(item, type, member) ((type *)(void *)((char *)(item) - offsetof(type, member)))

/* True when `candidate` may join the n jobs taken so far (taken[0] is the head). */
typedef bool (*batchq_joins_fn)(struct batchq_item *const *taken, size_t n,
                                const struct batchq_item *candidate);
/* Runs one batch on a worker thread; the jobs are its to free. */
typedef void (*batchq_run_fn)(struct batchq_item **jobs, size_t n, void *arg);

struct batchq_config {
    int threads;          /* 1..BATCHQ_MAX_THREADS */
    size_t batch_max;     /* 1..BATCHQ_MAX_BATCH */
    size_t max_queued;    /* batchq_put waits while this many are queued; 0: never waits */
    batchq_joins_fn joins;
    batchq_run_fn run;
    void *arg;            /* passed to run */
};

struct batchq; /* opaque */

/* Starts the workers. NULL on a bad config or thread/allocation failure. */
struct batchq *batchq_start(const struct batchq_config *cfg);
/* Queues a job (waiting for room when bounded). False once stopping: the
 * job is still the caller's. */
bool batchq_put(struct batchq *q, struct batchq_item *job);
/* Jobs queued and not yet taken by a worker. */
size_t batchq_len(struct batchq *q);
/* Stops taking jobs (batchq_put returns false from now on) and wakes every
 * waiter. drain: the workers run every queued job before they exit;
 * otherwise they finish the batch they hold. Idempotent. */
void batchq_close(struct batchq *q, bool drain);
/* True once batchq_close() was called: a worker waiting on something else
 * (back-pressure) gives up its batch. */
bool batchq_closed(struct batchq *q);
/* Closes (draining) if not closed yet, waits for the workers, hands every
 * job still queued to `discard` (NULL: none is expected), and frees. NULL is
 * a no-op. */
void batchq_free(struct batchq *q, void (*discard)(struct batchq_item *job));

#endif
