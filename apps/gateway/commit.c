/* commit.c - group commit of webhook_events rows.
 *
 * Request handlers queue their row and return (their response is deferred).
 * Writer threads take whatever is queued (up to batch_max rows), write it
 * with one multi-row INSERT per tenant inside a single transaction, commit,
 * and call each row's `done`, which answers: a 2xx leaves only after the row
 * is durable. While one batch commits
 * the next one fills up, so batches grow with load and no time is spent
 * waiting when the gateway is idle.
 *
 * Duplicates: accepted rows are inserted with ON CONFLICT DO NOTHING on the
 * dedup index; a row that was not inserted is recorded again as a duplicate
 * (dedup_key NULL, duplicate_of = the original, processed_at set so the relay
 * ignores it) and its handler is told the original's id.
 *
 * Failure: if the batch fails because of one bad row, each row is retried on
 * its own so the others still land; if PostgreSQL is unreachable every row
 * fails and the handlers answer 503. */
#include "gateway.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define COLS 15
#define COMMIT_ACQUIRE_MS 5000

struct committer {
    struct db_pool *db;
    struct handoff *handoff;
    struct sb_log *log;
    int batch_max;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct event_row *head, *tail;
    bool stop;
    pthread_t *threads;
    int nthreads;
    struct metric *m_batch;   /* gateway_commit_batch_rows */
    struct metric *m_latency; /* gateway_commit_seconds */
    struct metric *m_rows;    /* gateway_commit_rows_total{outcome} */
};

static const char INSERT_HEAD[] =
    "INSERT INTO webhook_events (id, tenant_id, workspace_id, channel_id, source, request_path, "
    "remote_addr, payload, payload_truncated, signature, status, rejection_reason, dedup_key, "
    "correlation_id, duplicate_of, processed_at) VALUES ";

/* Appends one "($1::uuid, …)" tuple and fills its parameters. `dup_of` is
 * the original's id for a duplicate row, else NULL. */
static int add_tuple(struct sb_buf *sql, int base, const struct event_row *r, const char *dup_of,
                     const char **vals, int *lens, int *fmts)
{
    const char *v[COLS] = {r->id, r->tenant_id, r->workspace_id, r->channel_id, r->source,
                           r->request_path, r->remote_addr && *r->remote_addr ? r->remote_addr : NULL,
                           r->payload, r->payload_truncated ? "t" : "f", r->signature,
                           r->rejection_reason ? "rejected" : "accepted", r->rejection_reason,
                           dup_of ? NULL : r->dedup_key, r->correlation_id, dup_of};
    for (int i = 0; i < COLS; i++) {
        vals[base + i] = v[i];
        lens[base + i] = 0;
        fmts[base + i] = 0;
    }
    lens[base + 7] = (int)r->payload_len; /* payload travels as binary bytea */
    fmts[base + 7] = 1;
    int n = base + 1;
    return sb_buf_appendf(sql,
                          "%s($%d::uuid,$%d::uuid,$%d::uuid,$%d::uuid,$%d,$%d,$%d::inet,$%d::bytea,"
                          "$%d::boolean,$%d,$%d,$%d,$%d,$%d,$%d::uuid,%s)",
                          base ? "," : "", n, n + 1, n + 2, n + 3, n + 4, n + 5, n + 6, n + 7,
                          n + 8, n + 9, n + 10, n + 11, n + 12, n + 13, n + 14,
                          dup_of ? "now()" : "NULL");
}

/* Inserts rows[0..n) (one tenant, or none). Accepted rows use the dedup
 * index; `inserted` (may be NULL) receives the ids that were written. */
static int insert_rows(PGconn *c, struct event_row **rows, size_t n, char **dup_of,
                       bool on_conflict, PGresult **inserted)
{
    struct sb_buf sql;
    sb_buf_init(&sql, 64u * 1024 * 1024);
    const char **vals = calloc(n * COLS, sizeof *vals);
    int *lens = calloc(n * COLS, sizeof *lens), *fmts = calloc(n * COLS, sizeof *fmts);
    int rc = (!vals || !lens || !fmts) ? -ENOMEM : sb_buf_append_str(&sql, INSERT_HEAD);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = add_tuple(&sql, (int)(i * COLS), rows[i], dup_of ? dup_of[i] : NULL, vals, lens, fmts);
    if (rc == 0 && on_conflict)
        rc = sb_buf_append_str(&sql, " ON CONFLICT (tenant_id, channel_id, dedup_key) "
                                     "WHERE dedup_key IS NOT NULL DO NOTHING RETURNING id");
    if (rc == 0) {
        PGresult *res = PQexecParams(c, sql.data, (int)(n * COLS), NULL, vals, lens, fmts, 0);
        ExecStatusType st = PQresultStatus(res);
        rc = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? 0 : SB_EDB;
        if (rc == 0 && inserted)
            *inserted = res;
        else
            PQclear(res);
    }
    sb_buf_cleanup(&sql);
    free(vals);
    free(lens);
    free(fmts);
    return rc;
}

static bool returned(const PGresult *res, const char *id)
{
    for (int i = 0; i < PQntuples(res); i++)
        if (strcmp(PQgetvalue(res, i, 0), id) == 0)
            return true;
    return false;
}

/* Accepted rows whose key already existed: find the originals, record the
 * requests as duplicates. */
static int record_duplicates(PGconn *c, struct event_row **rows, size_t n, const PGresult *ins)
{
    struct event_row **dups = calloc(n, sizeof *dups);
    char **orig = calloc(n, sizeof *orig);
    size_t nd = 0;
    int rc = dups && orig ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (returned(ins, rows[i]->id))
            continue;
        const char *p[] = {rows[i]->tenant_id, rows[i]->channel_id, rows[i]->dedup_key};
        PGresult *res = NULL;
        rc = db_exec(c,
                     "SELECT id FROM webhook_events WHERE tenant_id = $1 AND channel_id = $2 "
                     "AND dedup_key = $3",
                     3, p, &res, NULL);
        if (rc == 0 && PQntuples(res) == 1) {
            snprintf(rows[i]->original_id, sizeof rows[i]->original_id, "%s", PQgetvalue(res, 0, 0));
            rows[i]->duplicate = true;
            dups[nd] = rows[i];
            orig[nd++] = rows[i]->original_id;
        } else if (rc == 0) {
            rc = SB_EDB; /* vanished between the insert and the select: retry the batch */
        }
        PQclear(res);
    }
    if (rc == 0 && nd)
        rc = insert_rows(c, dups, nd, orig, false, NULL);
    free(dups);
    free(orig);
    return rc;
}

static int set_tenant(PGconn *c, const char *tenant_id)
{
    const char *p[] = {tenant_id ? tenant_id : ""};
    return db_exec(c, "SELECT set_config('app.tenant_id', $1, true)", 1, p, NULL, NULL);
}

/* Writes one tenant's rows (or the tenant-less rejected ones). */
static int write_group(PGconn *c, struct event_row **rows, size_t n)
{
    struct event_row **acc = calloc(n, sizeof *acc), **rej = calloc(n, sizeof *rej);
    size_t na = 0, nr = 0;
    if (!acc || !rej) {
        free(acc);
        free(rej);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        rows[i]->duplicate = false;
        if (rows[i]->rejection_reason)
            rej[nr++] = rows[i];
        else
            acc[na++] = rows[i];
    }
    int rc = set_tenant(c, rows[0]->tenant_id);
    if (rc == 0 && nr)
        rc = insert_rows(c, rej, nr, NULL, false, NULL);
    if (rc == 0 && na) {
        PGresult *ins = NULL;
        rc = insert_rows(c, acc, na, NULL, true, &ins);
        if (rc == 0 && (size_t)PQntuples(ins) < na)
            rc = record_duplicates(c, acc, na, ins);
        PQclear(ins);
    }
    free(acc);
    free(rej);
    return rc;
}

static bool same_tenant(const struct event_row *a, const struct event_row *b)
{
    if (!a->tenant_id || !b->tenant_id)
        return a->tenant_id == b->tenant_id;
    return strcmp(a->tenant_id, b->tenant_id) == 0;
}

static int cmp_tenant(const void *a, const void *b)
{
    const struct event_row *x = *(struct event_row *const *)a, *y = *(struct event_row *const *)b;
    if (!x->tenant_id || !y->tenant_id)
        return (x->tenant_id != NULL) - (y->tenant_id != NULL);
    return strcmp(x->tenant_id, y->tenant_id);
}

/* One transaction for the whole batch; rows grouped by tenant. */
static int write_batch(PGconn *c, struct event_row **rows, size_t n)
{
    qsort(rows, n, sizeof *rows, cmp_tenant);
    int rc = db_exec(c, "BEGIN", 0, NULL, NULL, NULL);
    for (size_t i = 0; rc == 0 && i < n;) {
        size_t j = i + 1;
        while (j < n && same_tenant(rows[i], rows[j]))
            j++;
        rc = write_group(c, rows + i, j - i);
        i = j;
    }
    if (rc == 0)
        rc = db_exec(c, "COMMIT", 0, NULL, NULL, NULL);
    if (rc != 0 && PQstatus(c) == CONNECTION_OK) {
        int rb = db_exec(c, "ROLLBACK", 0, NULL, NULL, NULL);
        (void)rb; /* db_release discards a connection left in a broken transaction */
    }
    return rc;
}

static void finish(struct committer *cm, struct event_row *r, int rc)
{
    r->result = rc;
    const char *outcome = rc != 0 ? "failed" : r->rejection_reason ? "rejected"
                          : r->duplicate ? "duplicate" : "accepted";
    metric_add(cm->m_rows, (const char *[]){outcome}, 1);
    if (rc == 0 && !r->rejection_reason && !r->duplicate)
        handoff_push(cm->handoff, r->id, r->tenant_id, r->correlation_id, r->source);
    r->done(r, r->done_arg); /* after this the row is gone */
}

/* Commits rows[0..n) and finishes them; `scratch` has room for n pointers
 * (write_batch reorders the array it is given). */
static void commit_rows(struct committer *cm, struct event_row **rows, struct event_row **scratch,
                        size_t n)
{
    PGconn *c = NULL;
    int64_t t0 = sb_mono_ms();
    memcpy(scratch, rows, n * sizeof *rows);
    int rc = db_acquire(cm->db, COMMIT_ACQUIRE_MS, &c);
    if (rc == 0)
        rc = write_batch(c, scratch, n);
    if (rc != 0 && c && PQstatus(c) == CONNECTION_OK && n > 1) {
        /* Probably one bad row: give every row its own transaction. */
        sb_log_warn(cm->log, NULL, "commit: batch of %zu failed, retrying rows one by one", n);
        for (size_t i = 0; i < n; i++)
            finish(cm, rows[i], write_batch(c, &rows[i], 1));
        db_release(cm->db, c);
        return;
    }
    if (c)
        db_release(cm->db, c);
    if (rc != 0)
        sb_log_error(cm->log, NULL, "commit: %zu row(s) not written: %s", n, sb_strerror(rc));
    metric_observe(cm->m_batch, NULL, (double)n);
    metric_observe(cm->m_latency, NULL, (double)(sb_mono_ms() - t0) / 1000.0);
    for (size_t i = 0; i < n; i++)
        finish(cm, rows[i], rc);
}

static void *writer_main(void *arg)
{
    struct committer *cm = arg;
    struct event_row **rows = calloc((size_t)cm->batch_max, sizeof *rows);
    struct event_row **scratch = calloc((size_t)cm->batch_max, sizeof *scratch);
    if (!rows || !scratch)
        abort(); /* at start-up, a few KiB: nothing sensible to do without them */
    for (;;) {
        pthread_mutex_lock(&cm->mu);
        while (!cm->head && !cm->stop)
            pthread_cond_wait(&cm->cv, &cm->mu);
        size_t n = 0;
        while (cm->head && n < (size_t)cm->batch_max) {
            rows[n++] = cm->head;
            cm->head = cm->head->next;
        }
        if (!cm->head)
            cm->tail = NULL;
        bool stop = cm->stop && n == 0;
        pthread_mutex_unlock(&cm->mu);
        if (stop)
            break;
        commit_rows(cm, rows, scratch, n);
    }
    free(rows);
    free(scratch);
    return NULL;
}

void committer_enqueue(struct committer *cm, struct event_row *row)
{
    row->next = NULL;
    pthread_mutex_lock(&cm->mu);
    if (cm->stop) {
        pthread_mutex_unlock(&cm->mu);
        row->result = SB_ESHUTDOWN;
        row->done(row, row->done_arg);
        return;
    }
    if (cm->tail)
        cm->tail->next = row;
    else
        cm->head = row;
    cm->tail = row;
    pthread_cond_signal(&cm->cv);
    pthread_mutex_unlock(&cm->mu);
}

static const double BATCH_BUCKETS[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

struct committer *committer_new(struct db_pool *db, int threads, int batch_max,
                                struct handoff *handoff, struct metrics *metrics,
                                struct sb_log *log)
{
    struct committer *cm = calloc(1, sizeof *cm);
    if (!cm)
        return NULL;
    cm->db = db;
    cm->handoff = handoff;
    cm->log = log;
    cm->batch_max = batch_max > 0 ? batch_max : 256;
    pthread_mutex_init(&cm->mu, NULL);
    pthread_cond_init(&cm->cv, NULL);
    cm->m_batch = metrics_histogram(metrics, "gateway_commit_batch_rows",
                                    "Rows per group-commit transaction.", NULL, BATCH_BUCKETS,
                                    sizeof BATCH_BUCKETS / sizeof BATCH_BUCKETS[0]);
    cm->m_latency = metrics_histogram(metrics, "gateway_commit_seconds",
                                      "Time to write and commit one batch.", NULL, NULL, 0);
    cm->m_rows = metrics_counter(metrics, "gateway_commit_rows_total",
                                 "webhook_events rows by outcome.", "outcome");
    cm->threads = calloc((size_t)threads, sizeof *cm->threads);
    for (int i = 0; cm->threads && i < threads; i++) {
        if (pthread_create(&cm->threads[i], NULL, writer_main, cm) != 0)
            break;
        cm->nthreads++;
    }
    if (cm->nthreads != threads) {
        committer_free(cm);
        return NULL;
    }
    return cm;
}

/* Stops after the queue is drained: rows already queued are still written. */
void committer_free(struct committer *cm)
{
    if (!cm)
        return;
    pthread_mutex_lock(&cm->mu);
    cm->stop = true;
    pthread_cond_broadcast(&cm->cv);
    pthread_mutex_unlock(&cm->mu);
    for (int i = 0; i < cm->nthreads; i++)
        pthread_join(cm->threads[i], NULL);
    free(cm->threads);
    pthread_mutex_destroy(&cm->mu);
    pthread_cond_destroy(&cm->cv);
    free(cm);
}
