/* conn.h - internal to libs/db: what the library remembers per libpq
 * connection, attached to the PGconn with a libpq event procedure so it lives
 * and dies with the connection whichever code path created or closed it.
 *
 *  - the SQLSTATE of the last error result (tx.c decides retries with it);
 *  - the statements prepared on this connection (exec.c): db_exec() prepares
 *    each distinct SQL text once per connection and then only binds and
 *    executes it, so the server parses and analyses it once instead of on
 *    every call. Prepared statements outlive transactions (also rolled-back
 *    ones) and end with the session, as this cache does.
 *
 * The state belongs to the thread holding the connection (db_acquire). */
#ifndef SABIA_DB_CONN_H
#define SABIA_DB_CONN_H

#include <libpq-fe.h>
#include <stdint.h>

#include "core.h"

#define DB_STMT_CACHE_SLOTS 256 /* statements per connection; more are run unprepared */
#define DB_STMT_NAME_MAX    16

struct db_stmt {
    uint64_t hash;                /* 0: free slot */
    char *sql;                    /* owned copy of the text */
    int nparams;
    char name[DB_STMT_NAME_MAX];  /* "sabia_<n>" */
};

struct db_conn_state {
    char sqlstate[6];             /* of the last error result, "" when none since reset */
    unsigned nstmts, next_name;
    struct db_stmt stmts[DB_STMT_CACHE_SLOTS];
};

/* The connection's state, attached on first use; NULL when that failed (then
 * nothing is retried or prepared, everything still works). */
struct db_conn_state *db_conn_state(PGconn *c);

/* The prepared statement for `sql` with `nparams` parameters, preparing it on
 * `c` when new. Returns its name (valid while the connection lives), NULL when
 * it should run unprepared (no state, cache full), or sets *rc (and leaves the
 * server's error result in *failed, owned by the caller) when PREPARE failed. */
const char *db_conn_prepared(PGconn *c, const char *sql, int nparams, int *rc, PGresult **failed);

/* Stops using the statement prepared for `sql` (the server no longer has it,
 * or its plan cannot serve any more, e.g. after a migration changed a column
 * it returns): the next call prepares it afresh under a new name. */
void db_conn_forget(PGconn *c, const char *sql);

/* Maps a statement's result to 0 (kept in *res or cleared) or an error code
 * (see db_exec) with the server's message in `err`. Takes ownership of `r`. */
int db_result_outcome(PGconn *c, PGresult *r, PGresult **res, struct sb_buf *err);

#endif
