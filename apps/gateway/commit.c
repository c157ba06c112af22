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
 * Duplicates: a batch is first inserted plainly, which costs PostgreSQL the
 * least per row and succeeds whenever no key repeats (nearly always). When
 * a key does repeat, the unique index refuses the batch and it is written
 * again with ON CONFLICT DO NOTHING on the dedup index, as are the next
 * CAREFUL_BATCHES batches (replays come in bursts); a row that was not
 * inserted is recorded again as a duplicate (dedup_key NULL, duplicate_of =
 * the original, processed_at set so the relay ignores it) and its handler is
 * told the original's id.
 *
 * Failure: if the batch fails because of one bad row, each row is retried on
 * its own so the others still land; if PostgreSQL is unreachable every row
 * fails and the handlers answer 503. */
#include "gateway.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define COMMIT_ACQUIRE_MS 5000
#define GROUPS_PER_TX (DB_PIPELINE_MAX / 2) /* tenants per transaction: set_config + INSERT each */
#define NCOLS 12                            /* the column arrays of a group (the tenant apart) */
#define PAYLOADS_MAX_BYTES (1024u * 1024u * 1024u) /* one group's payloads in one parameter */
#define COLUMN_MAX_BYTES (64u * 1024u * 1024u)     /* any other column of a group */
#define CAREFUL_BATCHES 64 /* batches written with ON CONFLICT after a refused one */

struct writer;

struct committer {
    struct db_pool *db;
    struct handoff *handoff;
    struct sb_log *log;
    int batch_max;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct event_row *head, *tail; /* queued rows, under mu */
    bool stop;
    pthread_t *threads;
    struct writer **writers;
    int nthreads;
    struct metric *m_batch;   /* gateway_commit_batch_rows */
    struct metric *m_latency; /* gateway_commit_seconds */
    struct metric *m_rows;    /* gateway_commit_rows_total{outcome} */
    struct metric *m_redone;  /* gateway_commit_conflict_retries_total */
    struct metric *m_txs;     /* gateway_commit_transactions_total */
};

/* Every row of a tenant goes in with one fixed statement over arrays: it is
 * prepared once per connection and planned once, whatever the batch size,
 * and the columns travel in binary (a payload as its raw bytes). Rejected
 * rows carry a reason and no dedup key; accepted rows whose key exists are
 * not inserted (ON CONFLICT … DO NOTHING) and so missing from RETURNING. */
#define ROWS_FROM_ARRAYS                                                                          \
    "FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], "      \
    "$8::bytea[], $9::boolean[], $10::text[], $11::text[], $12::text[], $13::text[]) "          \
    "AS u(id, workspace_id, channel_id, source, request_path, remote_addr, payload, truncated, " \
    "signature, reason, dedup_key, correlation_id) "

#define INSERT_ROWS                                                                               \
    "INSERT INTO webhook_events (id, tenant_id, workspace_id, channel_id, source, request_path, "  \
    "remote_addr, payload, payload_truncated, signature, status, rejection_reason, dedup_key, "   \
    "correlation_id) "                                                                            \
    "SELECT u.id, $1::uuid, u.workspace_id, u.channel_id, u.source, u.request_path, "             \
    "u.remote_addr::inet, u.payload, u.truncated, u.signature, "                                  \
    "CASE WHEN u.reason IS NULL THEN 'accepted' ELSE 'rejected' END, u.reason, u.dedup_key, "     \
    "u.correlation_id " ROWS_FROM_ARRAYS

/* The usual statement: every row goes in, or a repeated key fails it all. */
static const char INSERT_PLAIN_SQL[] = INSERT_ROWS;
/* After such a failure: rows whose key exists are left out and found missing
 * from RETURNING. */
static const char INSERT_SQL[] =
    INSERT_ROWS "ON CONFLICT (tenant_id, channel_id, dedup_key) WHERE dedup_key IS NOT NULL "
                "DO NOTHING RETURNING id";

/* The requests whose key existed, recorded as duplicates of the original
 * (no key, processed_at set so the relay ignores them). A row whose original
 * is gone is not returned. */
static const char DUPLICATES_SQL[] =
    "INSERT INTO webhook_events (id, tenant_id, workspace_id, channel_id, source, request_path, "
    "remote_addr, payload, payload_truncated, signature, status, correlation_id, duplicate_of, "
    "processed_at) "
    "SELECT u.id, $1::uuid, u.workspace_id, u.channel_id, u.source, u.request_path, "
    "u.remote_addr::inet, u.payload, u.truncated, u.signature, 'accepted', u.correlation_id, e.id, "
    "now() " ROWS_FROM_ARRAYS
    "JOIN webhook_events e ON e.tenant_id = $1::uuid AND e.channel_id = u.channel_id "
    "AND e.dedup_key = u.dedup_key "
    "RETURNING id, duplicate_of";

static const char SCOPE_SQL[] = "SELECT set_config('app.tenant_id', $1, true)";

static const unsigned COLUMN_OIDS[NCOLS] = {
    DB_OID_UUID, DB_OID_UUID, DB_OID_UUID, DB_OID_TEXT, DB_OID_TEXT, DB_OID_TEXT,
    DB_OID_BYTEA, DB_OID_BOOL, DB_OID_TEXT, DB_OID_TEXT, DB_OID_TEXT, DB_OID_TEXT};

/* One tenant's rows of a transaction, as statement parameters. */
struct group {
    struct event_row **rows;
    size_t n;
    const char *tenant; /* "" for the tenant-less rejected rows (set_config) */
    struct db_bin_array col[NCOLS];
    const char *values[1 + NCOLS];
    int lengths[1 + NCOLS], formats[1 + NCOLS];
};

/* A writer thread's reusable space. */
struct writer {
    struct committer *cm;
    struct event_row **rows, **scratch, **dups;
    struct group groups[GROUPS_PER_TX];
    unsigned careful;  /* batches still to write with INSERT_SQL after this one */
    bool careful_now;  /* this batch is written with INSERT_SQL */
};

static void group_init(struct group *g)
{
    for (int i = 0; i < NCOLS; i++)
        db_bin_array_init(&g->col[i], COLUMN_OIDS[i],
                          COLUMN_OIDS[i] == DB_OID_BYTEA ? PAYLOADS_MAX_BYTES : COLUMN_MAX_BYTES);
}

static void group_cleanup(struct group *g)
{
    for (int i = 0; i < NCOLS; i++)
        db_bin_array_cleanup(&g->col[i]);
}

static int add_row(struct group *g, const struct event_row *r)
{
    const bool t = r->payload_truncated;
    int rc = db_bin_array_add_uuid(&g->col[0], r->id);
    if (rc == 0)
        rc = db_bin_array_add_uuid(&g->col[1], r->workspace_id);
    if (rc == 0)
        rc = db_bin_array_add_uuid(&g->col[2], r->channel_id);
    if (rc == 0)
        rc = db_bin_array_add_str(&g->col[3], r->source);
    if (rc == 0)
        rc = db_bin_array_add_str(&g->col[4], r->request_path);
    if (rc == 0)
        rc = db_bin_array_add_str(&g->col[5], r->remote_addr && *r->remote_addr ? r->remote_addr : NULL);
    if (rc == 0)
        rc = db_bin_array_add(&g->col[6], r->payload ? r->payload : "", r->payload_len);
    if (rc == 0)
        rc = db_bin_array_add(&g->col[7], &t, 1);
    if (rc == 0)
        rc = db_bin_array_add_str(&g->col[8], r->signature);
    if (rc == 0)
        rc = db_bin_array_add_str(&g->col[9], r->rejection_reason);
    if (rc == 0)
        rc = db_bin_array_add_str(&g->col[10], r->rejection_reason ? NULL : r->dedup_key);
    if (rc == 0)
        rc = db_bin_array_add_str(&g->col[11], r->correlation_id);
    return rc;
}

/* Fills the group's parameters from rows[0..n). */
static int group_fill(struct group *g, struct event_row **rows, size_t n)
{
    g->rows = rows;
    g->n = n;
    g->tenant = rows[0]->tenant_id ? rows[0]->tenant_id : "";
    g->values[0] = rows[0]->tenant_id; /* NULL: the tenant-less rows */
    g->lengths[0] = 0;
    g->formats[0] = 0;
    for (int i = 0; i < NCOLS; i++)
        db_bin_array_reset(&g->col[i]);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = add_row(g, rows[i]);
    for (int i = 0; rc == 0 && i < NCOLS; i++) {
        g->values[1 + i] = db_bin_array_param(&g->col[i], &g->lengths[1 + i]);
        g->formats[1 + i] = 1;
        if (!g->values[1 + i])
            rc = -ENOMEM;
    }
    return rc;
}

/* Runs `sql` for every group in one implicit transaction (one round trip,
 * one commit); results[i] gets group i's RETURNING rows. */
static int run_groups(PGconn *c, const char *sql, struct group *groups, size_t ng,
                      PGresult **results)
{
    struct db_call calls[DB_PIPELINE_MAX];
    for (size_t i = 0; i < ng; i++) {
        calls[2 * i] = (struct db_call){.sql = SCOPE_SQL, .nparams = 1, .values = &groups[i].tenant};
        /* Rows without a tenant (rejected before one was known) may be
         * written but not read back: RETURNING would need a SELECT policy
         * that admits them. They carry no key, so never conflict. */
        bool untenanted = !groups[i].values[0] && sql == INSERT_SQL;
        calls[2 * i + 1] = (struct db_call){.sql = untenanted ? INSERT_PLAIN_SQL : sql,
                                            .nparams = 1 + NCOLS,
                                            .values = groups[i].values,
                                            .lengths = groups[i].lengths,
                                            .formats = groups[i].formats};
    }
    int rc = db_pipeline(c, calls, (int)(2 * ng), NULL);
    for (size_t i = 0; i < ng; i++) {
        PQclear(calls[2 * i].res);
        results[i] = calls[2 * i + 1].res;
    }
    return rc;
}

static int cmp_row_id(const void *key, const void *elem)
{
    return strcmp(key, (*(struct event_row *const *)elem)->id);
}

/* The row of `g` with this id (a group's rows are sorted by id), or NULL. */
static struct event_row *group_row(const struct group *g, const char *id)
{
    struct event_row **r = bsearch(id, g->rows, g->n, sizeof *g->rows, cmp_row_id);
    return r ? *r : NULL;
}

/* Accepted rows of `g` whose id the INSERT did not return: their key
 * existed. Appends them to dups[*nd]. (Rejected rows have no key, and the
 * tenant-less ones are not returned at all.) */
static void collect_missing(const struct group *g, const PGresult *res, struct event_row **dups,
                            size_t *nd)
{
    if ((size_t)PQntuples(res) == g->n || !g->values[0])
        return;
    for (size_t i = 0; i < g->n; i++)
        g->rows[i]->result = SB_ENOTFOUND; /* until found among the returned */
    for (int k = 0; k < PQntuples(res); k++) {
        struct event_row *r = group_row(g, PQgetvalue(res, k, 0));
        if (r)
            r->result = 0;
    }
    for (size_t i = 0; i < g->n; i++) {
        struct event_row *r = g->rows[i];
        if (r->result == SB_ENOTFOUND && r->rejection_reason)
            r->result = SB_EDB; /* cannot happen: rejected rows meet no conflict */
        else if (r->result == SB_ENOTFOUND)
            dups[(*nd)++] = r;
    }
}

/* Marks the duplicates the second statement recorded (id, original's id); a
 * row it did not return (its original vanished meanwhile) fails. */
static void mark_duplicates(const struct group *g, const PGresult *res)
{
    for (size_t i = 0; i < g->n; i++)
        g->rows[i]->result = SB_EDB;
    for (int k = 0; k < PQntuples(res); k++) {
        struct event_row *r = group_row(g, PQgetvalue(res, k, 0));
        if (!r)
            continue;
        r->duplicate = true;
        r->result = 0;
        snprintf(r->original_id, sizeof r->original_id, "%s", PQgetvalue(res, k, 1));
    }
}

static bool same_tenant(const struct event_row *a, const struct event_row *b)
{
    if (!a->tenant_id || !b->tenant_id)
        return a->tenant_id == b->tenant_id;
    return strcmp(a->tenant_id, b->tenant_id) == 0;
}

/* By tenant (the tenant-less first), then by id: groups come out sorted by
 * id, so a returned id finds its row by binary search. */
static int cmp_tenant_id(const void *a, const void *b)
{
    const struct event_row *x = *(struct event_row *const *)a, *y = *(struct event_row *const *)b;
    if (!x->tenant_id || !y->tenant_id) {
        if (x->tenant_id != y->tenant_id)
            return (x->tenant_id != NULL) - (y->tenant_id != NULL);
    } else {
        int t = strcmp(x->tenant_id, y->tenant_id);
        if (t != 0)
            return t;
    }
    return strcmp(x->id, y->id);
}

/* Splits rows[0..n) (sorted by tenant) into at most GROUPS_PER_TX groups;
 * returns how many rows they hold. */
static size_t make_groups(struct writer *w, struct event_row **rows, size_t n, size_t *ng, int *rc)
{
    size_t i = 0;
    *ng = 0;
    *rc = 0;
    while (i < n && *ng < GROUPS_PER_TX && *rc == 0) {
        size_t j = i + 1;
        while (j < n && same_tenant(rows[i], rows[j]))
            j++;
        *rc = group_fill(&w->groups[(*ng)++], rows + i, j - i);
        i = j;
    }
    return i;
}

/* Records the duplicates found by write_chunk: their originals are
 * committed, so each request is stored pointing at its original. */
static void write_duplicates(struct writer *w, PGconn *c, struct event_row **dups, size_t nd)
{
    for (size_t done = 0; done < nd;) {
        size_t ng = 0;
        int rc = 0;
        size_t took = make_groups(w, dups + done, nd - done, &ng, &rc);
        PGresult *res[GROUPS_PER_TX] = {0};
        if (rc == 0)
            rc = run_groups(c, DUPLICATES_SQL, w->groups, ng, res);
        for (size_t g = 0; g < ng; g++) {
            if (rc == 0)
                mark_duplicates(&w->groups[g], res[g]);
            PQclear(res[g]);
        }
        for (size_t i = 0; rc != 0 && i < took; i++)
            dups[done + i]->result = rc;
        done += took;
    }
}

/* The plain insert of the groups: 0 when every row went in, SB_ECONFLICT
 * when a key existed (nothing went in), or another failure. */
static int insert_plain(struct writer *w, PGconn *c, size_t ng)
{
    PGresult *res[GROUPS_PER_TX] = {0};
    int rc = run_groups(c, INSERT_PLAIN_SQL, w->groups, ng, res);
    for (size_t g = 0; g < ng; g++)
        PQclear(res[g]);
    return rc;
}

/* The careful insert: rows whose key existed are recorded as duplicates. */
static int insert_careful(struct writer *w, PGconn *c, size_t ng)
{
    PGresult *res[GROUPS_PER_TX] = {0};
    int rc = run_groups(c, INSERT_SQL, w->groups, ng, res);
    size_t nd = 0;
    for (size_t g = 0; g < ng; g++) {
        if (rc == 0)
            collect_missing(&w->groups[g], res[g], w->dups, &nd);
        PQclear(res[g]);
    }
    if (rc == 0 && nd)
        write_duplicates(w, c, w->dups, nd);
    return rc;
}

/* Writes the first rows of rows[0..n) (sorted by tenant and id), those of at most
 * GROUPS_PER_TX tenants, in one transaction; *took says how many. Sets each
 * row's result; returns the transaction's outcome. */
static int write_chunk(struct writer *w, PGconn *c, struct event_row **rows, size_t n, size_t *took)
{
    size_t ng = 0;
    int rc = 0;
    *took = make_groups(w, rows, n, &ng, &rc);
    for (size_t i = 0; i < *took; i++) {
        rows[i]->duplicate = false;
        rows[i]->result = 0;
    }
    metric_add(w->cm->m_txs, NULL, 1);
    bool plain = rc == 0 && !w->careful_now;
    if (plain && (rc = insert_plain(w, c, ng)) == SB_ECONFLICT) {
        w->careful = CAREFUL_BATCHES;
        w->careful_now = true; /* also the rest of this batch, and its retries */
        metric_add(w->cm->m_redone, NULL, 1);
        plain = false;
        rc = 0;
    }
    if (rc == 0 && !plain)
        rc = insert_careful(w, c, ng);
    for (size_t i = 0; rc != 0 && i < *took; i++)
        rows[i]->result = rows[i]->result ? rows[i]->result : rc;
    return rc;
}

/* Writes rows[0..n) (reordered: sorted by tenant and id). Returns the first
 * failed transaction's code, 0 when every one committed. */
static int write_batch(struct writer *w, PGconn *c, struct event_row **rows, size_t n)
{
    qsort(rows, n, sizeof *rows, cmp_tenant_id);
    int first = 0;
    for (size_t i = 0, took = 0; i < n; i += took) {
        int rc = write_chunk(w, c, rows + i, n - i, &took);
        if (rc != 0 && first == 0)
            first = rc;
        if (rc != 0 && PQstatus(c) != CONNECTION_OK)
            break;
    }
    return first;
}

static void finish(struct committer *cm, struct event_row *r)
{
    const char *outcome = r->result != 0 ? "failed" : r->rejection_reason ? "rejected"
                          : r->duplicate ? "duplicate" : "accepted";
    metric_add(cm->m_rows, (const char *[]){outcome}, 1);
    if (r->result == 0 && !r->rejection_reason && !r->duplicate)
        handoff_push(cm->handoff, r->id, r->tenant_id, r->correlation_id, r->source);
    r->done(r, r->done_arg); /* after this the row is gone */
}

/* Commits rows[0..n) and finishes them. */
static void commit_rows(struct writer *w, struct event_row **rows, size_t n)
{
    struct committer *cm = w->cm;
    PGconn *c = NULL;
    int64_t t0 = sb_mono_ms();
    w->careful_now = w->careful > 0;
    if (w->careful > 0)
        w->careful--;
    memcpy(w->scratch, rows, n * sizeof *rows);
    int rc = db_acquire(cm->db, COMMIT_ACQUIRE_MS, &c);
    if (rc == 0)
        rc = write_batch(w, c, w->scratch, n);
    if (rc != 0 && c && PQstatus(c) == CONNECTION_OK && n > 1) {
        /* Probably one bad row: give every row its own transaction. */
        sb_log_warn(cm->log, NULL, "commit: batch of %zu failed, retrying rows one by one", n);
        for (size_t i = 0; i < n; i++) {
            if (rows[i]->result != 0 && write_batch(w, c, &rows[i], 1) != 0)
                sb_log_error(cm->log, NULL, "commit: row %s not written: %s", rows[i]->id,
                             sb_strerror(rows[i]->result));
        }
    } else if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            rows[i]->result = rows[i]->result ? rows[i]->result : rc;
        sb_log_error(cm->log, NULL, "commit: %zu row(s) not written: %s", n, sb_strerror(rc));
    }
    if (c)
        db_release(cm->db, c);
    metric_observe(cm->m_batch, NULL, (double)n);
    metric_observe(cm->m_latency, NULL, (double)(sb_mono_ms() - t0) / 1000.0);
    for (size_t i = 0; i < n; i++)
        finish(cm, rows[i]);
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct committer *cm = w->cm;
    for (;;) {
        pthread_mutex_lock(&cm->mu);
        while (!cm->head && !cm->stop)
            pthread_cond_wait(&cm->cv, &cm->mu);
        size_t n = 0;
        while (cm->head && n < (size_t)cm->batch_max) {
            w->rows[n++] = cm->head;
            cm->head = cm->head->next;
        }
        if (!cm->head)
            cm->tail = NULL;
        bool stop = cm->stop && n == 0;
        pthread_mutex_unlock(&cm->mu);
        if (stop)
            break;
        commit_rows(w, w->rows, n);
    }
    return NULL;
}

static void writer_free(struct writer *w)
{
    if (!w)
        return;
    for (int g = 0; g < GROUPS_PER_TX; g++)
        group_cleanup(&w->groups[g]);
    free(w->rows);
    free(w->scratch);
    free(w->dups);
    free(w);
}

static struct writer *writer_new(struct committer *cm)
{
    struct writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->cm = cm;
    size_t n = (size_t)cm->batch_max;
    w->rows = calloc(n, sizeof *w->rows);
    w->scratch = calloc(n, sizeof *w->scratch);
    w->dups = calloc(n, sizeof *w->dups);
    if (!w->rows || !w->scratch || !w->dups) {
        writer_free(w);
        return NULL;
    }
    for (int g = 0; g < GROUPS_PER_TX; g++)
        group_init(&w->groups[g]);
    return w;
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
    cm->m_redone = metrics_counter(metrics, "gateway_commit_conflict_retries_total",
                                   "Batches written again with ON CONFLICT after a repeated key.",
                                   NULL);
    cm->m_txs = metrics_counter(metrics, "gateway_commit_transactions_total",
                                "Transactions the commit writers ran: one per batch, more when a"
                                " batch holds rows of more than 8 tenants or is retried row by row.",
                                NULL);
    cm->threads = calloc((size_t)threads, sizeof *cm->threads);
    cm->writers = calloc((size_t)threads, sizeof *cm->writers);
    for (int i = 0; cm->threads && cm->writers && i < threads; i++) {
        struct writer *w = writer_new(cm);
        if (!w || pthread_create(&cm->threads[i], NULL, writer_main, w) != 0) {
            writer_free(w);
            break;
        }
        cm->writers[cm->nthreads++] = w;
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
    for (int i = 0; i < cm->nthreads; i++) {
        pthread_join(cm->threads[i], NULL);
        writer_free(cm->writers[i]);
    }
    free(cm->threads);
    free(cm->writers);
    pthread_mutex_destroy(&cm->mu);
    pthread_cond_destroy(&cm->cv);
    free(cm);
}
