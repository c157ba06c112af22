/* exec.c - parameterised statements, error mapping (SQLSTATE to Sabiá
 * codes, server message to the caller's buffer) and result accessors. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "db.h"

#define SQLSTATE_UNIQUE_VIOLATION     "23505"
#define SQLSTATE_NO_SUCH_STATEMENT    "26000"
#define SQLSTATE_FEATURE_NOT_SUPPORTED "0A000" /* what a stale cached plan reports */

void db_err_setf(struct sb_buf *err, const char *fmt, ...)
{
    if (!err)
        return;
    char msg[DB_ERR_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n;
    if (len > DB_ERR_MAX)
        len = DB_ERR_MAX;
    if (len > err->max)
        len = err->max;
    /* Never cut a UTF-8 sequence in half. */
    if (len < (size_t)(n < 0 ? 0 : n)) {
        while (len > 0 && ((unsigned char)msg[len] & 0xC0) == 0x80)
            len--;
    }
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        len--;
    sb_buf_reset(err);
    int rc = sb_buf_append(err, msg, len);
    (void)rc; /* fits by construction; on -ENOMEM the buffer stays empty */
}

int db_result_outcome(PGconn *c, PGresult *r, PGresult **res, struct sb_buf *err)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (res)
            *res = r;
        else
            PQclear(r);
        return 0;
    }
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    int rc = SB_EDB;
    if (state && strcmp(state, SQLSTATE_UNIQUE_VIOLATION) == 0)
        rc = SB_ECONFLICT;
    else if (PQstatus(c) != CONNECTION_OK)
        rc = SB_EUNAVAIL;
    const char *msg = r ? PQresultErrorMessage(r) : "";
    if (!msg[0])
        msg = PQerrorMessage(c);
    if (!msg[0])
        msg = PQresStatus(st); /* e.g. an empty query or an unexpected COPY */
    db_err_setf(err, "%s", msg);
    PQclear(r);
    return rc;
}

int db_exec(PGconn *c, const char *sql, int nparams, const char *const *params, PGresult **res,
            struct sb_buf *err)
{
    if (res)
        *res = NULL;
    if (!c || !sql || nparams < 0 || (nparams > 0 && !params)) {
        db_err_setf(err, "db_exec: invalid arguments");
        return -EINVAL;
    }
    int rc = 0;
    PGresult *failed = NULL;
    const char *name = db_conn_prepared(c, sql, nparams, &rc, &failed);
    if (rc != 0)
        return db_result_outcome(c, failed, res, err);
    PGresult *r = name ? PQexecPrepared(c, name, nparams, params, NULL, NULL, 0)
                       : PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    const char *state = name && r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && (strcmp(state, SQLSTATE_NO_SUCH_STATEMENT) == 0 ||
                  strcmp(state, SQLSTATE_FEATURE_NOT_SUPPORTED) == 0))
        db_conn_forget(c, sql); /* e.g. "cached plan must not change result type" */
    return db_result_outcome(c, r, res, err);
}

const char *db_value(const PGresult *res, int row, int col)
{
    if (!res || row < 0 || col < 0 || row >= PQntuples(res) || col >= PQnfields(res))
        return NULL;
    if (PQgetisnull(res, row, col))
        return NULL;
    return PQgetvalue(res, row, col);
}

int db_value_long(const PGresult *res, int row, int col, long *out)
{
    const char *v = db_value(res, row, col);
    if (!v)
        return SB_ENOTFOUND;
    long x = 0;
    int rc = sb_parse_long(v, LONG_MIN, LONG_MAX, &x);
    if (rc == 0 && out)
        *out = x;
    return rc;
}
