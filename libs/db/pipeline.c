/* pipeline.c - several statements in one round trip, as one implicit
 * transaction (libpq pipeline mode, a single Sync).
 *
 * The server runs everything up to the Sync in one transaction and commits it
 * at the Sync; after an error it skips the rest (PGRES_PIPELINE_ABORTED) and
 * rolls back at the Sync. So the caller gets all or nothing for one network
 * round trip and one commit, where BEGIN … COMMIT costs one per statement. */
#include <string.h>

#include "conn.h"
#include "db.h"

/* Queues one statement, prepared when the cache allows. */
static bool pipeline_send(PGconn *c, const char *name, const struct db_call *k)
{
    return name ? PQsendQueryPrepared(c, name, k->nparams, k->values, k->lengths, k->formats, 0)
                : PQsendQueryParams(c, k->sql, k->nparams, NULL, k->values, k->lengths,
                                    k->formats, 0);
}

/* Reads every result up to the Sync. Statement i's result goes to calls[i]
 * when it succeeded; the first failure sets the code and `err`. */
static int pipeline_collect(PGconn *c, struct db_call *calls, int n, struct sb_buf *err)
{
    int rc = 0, i = 0;
    bool was_null = false;
    for (;;) {
        PGresult *r = PQgetResult(c);
        if (!r) {
            if (was_null)
                return rc ? rc : SB_EUNAVAIL; /* the connection went away */
            was_null = true;
            i++; /* one statement's results ended */
            continue;
        }
        was_null = false;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            return i == n || rc ? rc : SB_EDB;
        }
        if (st == PGRES_PIPELINE_ABORTED) {
            PQclear(r);
            continue; /* skipped after an earlier failure */
        }
        PGresult *kept = NULL;
        int one = db_result_outcome(c, r, &kept, rc == 0 ? err : NULL);
        if (one == 0 && i < n && rc == 0)
            calls[i].res = kept;
        else
            PQclear(kept);
        if (rc == 0 && (one != 0 || i >= n))
            rc = one ? one : SB_EDB; /* an error, or more results than statements */
    }
}

int db_pipeline(PGconn *c, struct db_call *calls, int n, struct sb_buf *err)
{
    if (!c || !calls || n < 1 || n > DB_PIPELINE_MAX) {
        db_err_setf(err, "db_pipeline: invalid arguments");
        return -EINVAL;
    }
    const char *names[DB_PIPELINE_MAX];
    for (int i = 0; i < n; i++) {
        calls[i].res = NULL;
        PGresult *failed = NULL;
        int rc = 0;
        names[i] = db_conn_prepared(c, calls[i].sql, calls[i].nparams, &rc, &failed);
        if (rc != 0)
            return db_result_outcome(c, failed, NULL, err);
    }
    if (!PQenterPipelineMode(c)) {
        db_err_setf(err, "db_pipeline: %s", PQerrorMessage(c));
        return SB_EUNAVAIL;
    }
    bool sent = true;
    for (int i = 0; sent && i < n; i++)
        sent = pipeline_send(c, names[i], &calls[i]);
    sent = sent && PQpipelineSync(c);
    int rc = sent ? pipeline_collect(c, calls, n, err) : SB_EUNAVAIL;
    if (!sent)
        db_err_setf(err, "db_pipeline: %s", PQerrorMessage(c));
    if (!PQexitPipelineMode(c) && rc == 0)
        rc = SB_EUNAVAIL; /* db_release() closes a connection left in this state */
    if (rc != 0) {
        for (int i = 0; i < n; i++) {
            PQclear(calls[i].res);
            calls[i].res = NULL;
        }
        if (rc == SB_EDB && PQstatus(c) != CONNECTION_OK)
            rc = SB_EUNAVAIL;
    }
    return rc;
}
