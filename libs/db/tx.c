/* tx.c - transactions on pooled connections: BEGIN/COMMIT around a callback,
 * rollback on failure, retry on serialization failure or deadlock, and
 * per-transaction tenant scoping through set_config(..., true).
 *
 * To know whether a failed attempt may be retried, the connection's state
 * (conn.h) remembers the SQLSTATE of the last error result it produced,
 * whichever code path ran the statement. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "db.h"

#define TX_BACKOFF_MS 10 /* times the attempt number, plus jitter */
#define TX_TENANT_MAX 64 /* bytes looked at when validating a tenant id */
#define TX_SCOPE_SQL "SELECT set_config('app.tenant_id', $1, true)"

static bool tx_retryable(const struct db_conn_state *t)
{
    return t && (strcmp(t->sqlstate, "40001") == 0 || strcmp(t->sqlstate, "40P01") == 0);
}

static int tx_commit(PGconn *c)
{
    PGresult *r = NULL;
    int rc = db_exec(c, "COMMIT", 0, NULL, &r, NULL);
    /* COMMIT of an aborted transaction "succeeds" with the tag ROLLBACK. */
    if (rc == 0 && strcmp(PQcmdStatus(r), "COMMIT") != 0)
        rc = SB_EDB;
    PQclear(r);
    return rc;
}

/* BEGIN and the tenant's set_config in one round trip (db_pipeline; the
 * explicit BEGIN keeps the transaction open past the pipeline's end).
 * *began tells whether BEGIN went through. */
static int tx_begin_tenant(PGconn *c, const char *tenant_id, bool *began)
{
    const char *params[1] = {tenant_id};
    struct db_call calls[] = {{.sql = "BEGIN"},
                              {.sql = TX_SCOPE_SQL, .nparams = 1, .values = params}};
    int rc = db_pipeline(c, calls, 2, NULL);
    PQclear(calls[0].res);
    PQclear(calls[1].res);
    *began = PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE;
    return rc;
}

/* One attempt on `c`. *began tells whether BEGIN went through. */
static int tx_attempt(PGconn *c, const char *tenant_id, db_tx_fn fn, void *arg, bool *began)
{
    int rc;
    *began = false;
    if (tenant_id) {
        rc = tx_begin_tenant(c, tenant_id, began);
    } else {
        rc = db_exec(c, "BEGIN", 0, NULL, NULL, NULL);
        *began = rc == 0;
    }
    if (!*began)
        return rc;
    if (rc == 0)
        rc = fn(c, arg);
    /* The body reported success but ignored a failed statement, or ended
     * the transaction itself: either way nothing it meant is committed. */
    if (rc == 0 && PQtransactionStatus(c) != PQTRANS_INTRANS)
        rc = SB_EDB;
    if (rc == 0)
        return tx_commit(c);
    if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE) {
        int rb = db_exec(c, "ROLLBACK", 0, NULL, NULL, NULL);
        (void)rb; /* db_release() closes the connection if this failed */
    }
    return rc;
}

static void tx_backoff(int attempt)
{
    long ms = (long)TX_BACKOFF_MS * attempt + (long)(sb_now_ms() % TX_BACKOFF_MS);
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int tx_run(struct db_pool *p, const char *tenant_id, db_tx_fn fn, void *arg)
{
    if (!p || !fn)
        return -EINVAL;
    int rc = 0;
    int attempt = 0;
    bool replaced = false;
    while (attempt < DB_TX_MAX_ATTEMPTS) {
        PGconn *c = NULL;
        rc = db_acquire(p, DB_TX_ACQUIRE_TIMEOUT_MS, &c);
        if (rc != 0)
            return rc;
        struct db_conn_state *t = db_conn_state(c);
        if (t)
            t->sqlstate[0] = '\0';
        bool began = false;
        rc = tx_attempt(c, tenant_id, fn, arg, &began);
        bool stale = !began && PQstatus(c) != CONNECTION_OK;
        bool retry = rc != 0 && tx_retryable(t);
        db_release(p, c);
        if (stale && !replaced) {
            /* A pooled connection died while idle: nothing ran, try a fresh one. */
            replaced = true;
            continue;
        }
        attempt++;
        if (!retry)
            break;
        if (attempt < DB_TX_MAX_ATTEMPTS)
            tx_backoff(attempt);
    }
    return rc;
}

int db_tx(struct db_pool *p, db_tx_fn fn, void *arg)
{
    return tx_run(p, NULL, fn, arg);
}

int db_tenant_tx(struct db_pool *p, const char *tenant_id, db_tx_fn fn, void *arg)
{
    if (!tenant_id || !sb_uuid_valid(tenant_id, strnlen(tenant_id, TX_TENANT_MAX)))
        return -EINVAL;
    return tx_run(p, tenant_id, fn, arg);
}
