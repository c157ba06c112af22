/* test_batchq.c - the processor's batch queue on its own: a worker takes the
 * head and the queued jobs that join it, in order and up to batch_max;
 * closing drains or hands the rest back; a bounded put waits for room and is
 * released by close. */
#include "batchq.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

struct job {
    int group, id;
    struct batchq_item qi;
};

/* What the worker saw: the ids of each batch, in order. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int seen[64][8], sizes[64], nbatches;
static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER; /* held: the worker waits in run */
static atomic_int discarded;

static bool same_group(struct batchq_item *const *taken, size_t n, const struct batchq_item *c)
{
    (void)n;
    return BATCHQ_JOB(taken[0], struct job, qi)->group == BATCHQ_JOB(c, struct job, qi)->group;
}

static void record(struct batchq_item **items, size_t n, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&gate);
    pthread_mutex_unlock(&gate);
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n && i < 8; i++)
        seen[nbatches][i] = BATCHQ_JOB(items[i], struct job, qi)->id;
    sizes[nbatches++] = (int)n;
    pthread_mutex_unlock(&mu);
}

static void discard(struct batchq_item *item)
{
    (void)item;
    atomic_fetch_add(&discarded, 1);
}

static void reset(void)
{
    memset(seen, 0, sizeof seen);
    memset(sizes, 0, sizeof sizes);
    nbatches = 0;
    atomic_store(&discarded, 0);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int batches(void)
{
    pthread_mutex_lock(&mu);
    int n = nbatches;
    pthread_mutex_unlock(&mu);
    return n;
}

TestSuite(batchq, .init = reset, .timeout = 30);

Test(batchq, a_batch_is_the_head_and_the_jobs_that_join_it_in_order)
{
    struct batchq_config c = {.threads = 1, .batch_max = 3, .joins = same_group, .run = record};
    pthread_mutex_lock(&gate); /* the first batch waits, so the rest queue up */
    struct batchq *q = batchq_start(&c);
    cr_assert_not_null(q);
    struct job jobs[7] = {{0, 1, {0}}, {1, 2, {0}}, {0, 3, {0}}, {1, 4, {0}}, {0, 5, {0}}, {0, 6, {0}}, {0, 7, {0}}};
    cr_assert(batchq_put(q, &jobs[0].qi));
    while (batchq_len(q) > 0) /* taken alone */
        sleep_ms(1);
    for (int i = 1; i < 7; i++)
        cr_assert(batchq_put(q, &jobs[i].qi));
    cr_assert_eq(batchq_len(q), 6);
    pthread_mutex_unlock(&gate);
    batchq_free(q, NULL); /* drains */
    /* {1}, then head 2 with 4 (group 1), then 3,5,6 (group 0, at most 3), then 7 */
    int want[4][3] = {{1}, {2, 4}, {3, 5, 6}, {7}}, want_n[4] = {1, 2, 3, 1};
    cr_assert_eq(nbatches, 4);
    for (int b = 0; b < 4; b++) {
        cr_assert_eq(sizes[b], want_n[b], "batch %d has %d jobs", b, sizes[b]);
        for (int i = 0; i < want_n[b]; i++)
            cr_assert_eq(seen[b][i], want[b][i], "batch %d job %d", b, i);
    }
}

Test(batchq, closing_without_draining_hands_back_the_queued_jobs)
{
    struct batchq_config c = {.threads = 1, .batch_max = 1, .joins = same_group, .run = record};
    pthread_mutex_lock(&gate);
    struct batchq *q = batchq_start(&c);
    struct job jobs[4] = {{0, 1, {0}}, {0, 2, {0}}, {0, 3, {0}}, {0, 4, {0}}};
    cr_assert(batchq_put(q, &jobs[0].qi));
    while (batchq_len(q) > 0)
        sleep_ms(1);
    for (int i = 1; i < 4; i++)
        cr_assert(batchq_put(q, &jobs[i].qi));
    cr_assert_not(batchq_closed(q));
    batchq_close(q, false);
    cr_assert(batchq_closed(q), "a worker held up elsewhere can see it");
    cr_assert_not(batchq_put(q, &jobs[0].qi), "a closed queue takes no job");
    pthread_mutex_unlock(&gate);
    batchq_free(q, discard);
    cr_assert_eq(nbatches, 1, "only the batch in hand runs");
    cr_assert_eq(atomic_load(&discarded), 3);
}

static void *put_one(void *arg)
{
    struct batchq *q = arg;
    static struct job late = {0, 99, {0}};
    return batchq_put(q, &late.qi) ? (void *)1 : NULL;
}

Test(batchq, a_full_queue_makes_put_wait_until_close)
{
    struct batchq_config c = {.threads = 1, .batch_max = 1, .max_queued = 2, .joins = same_group,
                              .run = record};
    pthread_mutex_lock(&gate);
    struct batchq *q = batchq_start(&c);
    struct job jobs[3] = {{0, 1, {0}}, {0, 2, {0}}, {0, 3, {0}}};
    cr_assert(batchq_put(q, &jobs[0].qi));
    while (batchq_len(q) > 0)
        sleep_ms(1);
    cr_assert(batchq_put(q, &jobs[1].qi));
    cr_assert(batchq_put(q, &jobs[2].qi));
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, put_one, q), 0);
    sleep_ms(100);
    cr_assert_eq(batchq_len(q), 2, "a put went past the bound");
    batchq_close(q, false);
    void *ok = (void *)1;
    pthread_join(t, &ok);
    cr_assert_null(ok, "the waiting put was refused by close");
    pthread_mutex_unlock(&gate);
    batchq_free(q, discard);
    cr_assert_eq(batches(), 1);
    cr_assert_eq(atomic_load(&discarded), 2);
}
