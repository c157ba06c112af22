/* tx.c - transactions on pooled connections: BEGIN/COMMIT around a callback,
 * rollback on failure, retry on serialization failure or deadlock, and
 * per-transaction tenant scoping through set_config(..., true).
 *
 * To know whether a failed attempt may be retried, a libpq event procedure
 * attached to each connection remembers the SQLSTATE of the last error
 * result it produced, whichever code path ran the statement. */
#include <libpq-events.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"

#define TX_TRACK_NAME "sabia_db_tx"
#define TX_BACKOFF_MS 10 /* times the attempt number, plus jitter */
#define TX_TENANT_MAX 64 /* bytes looked at when validating a tenant id */

struct tx_track {
    char sqlstate[6]; /* of the last error result, "" when none since reset */
};

static int tx_event(PGEventId id, void *info, void *pass)
{
    (void)pass;
    if (id == PGEVT_REGISTER) {
        PGEventRegister *e = info;
        struct tx_track *t = calloc(1, sizeof(*t));
        if (!t)
            return 0;
        if (!PQsetInstanceData(e->conn, tx_event, t)) {
            free(t);
            return 0;
        }
    } else if (id == PGEVT_RESULTCREATE) {
        PGEventResultCreate *e = info;
        struct tx_track *t = PQinstanceData(e->conn, tx_event);
        const char *state = PQresultErrorField(e->result, PG_DIAG_SQLSTATE);
        if (t && state && PQresultStatus(e->result) == PGRES_FATAL_ERROR)
            snprintf(t->sqlstate, sizeof(t->sqlstate), "%s", state);
    } else if (id == PGEVT_CONNDESTROY) {
        PGEventConnDestroy *e = info;
        free(PQinstanceData(e->conn, tx_event));
    }
    return 1;
}

/* The connection's tracker, attached on first use; NULL when that failed
 * (then nothing is retried). */
static struct tx_track *tx_track_get(PGconn *c)
{
    struct tx_track *t = PQinstanceData(c, tx_event);
    if (!t && PQregisterEventProc(c, tx_event, TX_TRACK_NAME, NULL))
        t = PQinstanceData(c, tx_event);
    return t;
}

static bool tx_retryable(const struct tx_track *t)
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

/* One attempt on `c`. *began tells whether BEGIN went through. */
static int tx_attempt(PGconn *c, const char *tenant_id, db_tx_fn fn, void *arg, bool *began)
{
    int rc = db_exec(c, "BEGIN", 0, NULL, NULL, NULL);
    *began = rc == 0;
    if (rc != 0)
        return rc;
    if (tenant_id) {
        const char *params[1] = {tenant_id};
        rc = db_exec(c, "SELECT set_config('app.tenant_id', $1, true)", 1, params, NULL, NULL);
    }
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
        struct tx_track *t = tx_track_get(c);
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
