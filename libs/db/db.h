/* db.h - PostgreSQL access for every Sabiá service: a bounded pool of libpq
 * connections, parameterised statements, transactions with retries,
 * per-transaction tenant scoping for Row-Level Security, and the runner that
 * applies the versioned files in migrations/.
 *
 * Rules this module enforces (DESIGN.md §4):
 *  - statements from the services are parameterised (prepared once per
 *    connection, see db_exec); the only
 *    place that sends raw SQL text is db_migrate(), for trusted repo files;
 *  - the tenant is set with set_config('app.tenant_id', …, true), which lasts
 *    for one transaction, never with a session-level SET that would leak to
 *    the next user of a pooled connection.
 *
 * A PGconn handed out by db_acquire() belongs to one thread at a time; the
 * pool itself is thread-safe. */
#ifndef SABIA_DB_H
#define SABIA_DB_H

#include <libpq-fe.h>

#include "core.h"

/* ---------------------------------------------------------------- limits */

#define DB_POOL_MAX_SIZE           256  /* connections per pool */
#define DB_CONNECT_TIMEOUT_DEFAULT "2"  /* seconds, added to conninfo when absent */
#define DB_TX_ACQUIRE_TIMEOUT_MS   5000 /* db_tx() wait for a free connection */
#define DB_TX_MAX_ATTEMPTS         4    /* tries on serialization failure / deadlock */
#define DB_ERR_MAX                 1024 /* bytes of message written into an `err` buffer */
#define DB_MIGRATE_MAX_FILES       1000 /* files considered in a migrations dir */
#define DB_MIGRATE_MAX_FILE_BYTES  (4 * 1024 * 1024)
#define DB_MIGRATE_MAX_NAME        128 /* bytes in a migration file name */

/* ---------------------------------------------------------------- pool */

struct db_pool; /* opaque; thread-safe */

/* Creates a pool of at most `size` (1..DB_POOL_MAX_SIZE) connections, opened
 * lazily. `conninfo` is a libpq URI or key=value string (copied); when it has
 * no connect_timeout, connect_timeout=2 is added so health checks fail fast.
 * `application_name` (copied, may be NULL) overrides any in conninfo. `log`
 * is borrowed, must outlive the pool, and may be NULL. Returns NULL on
 * allocation failure, a bad size, or a conninfo PQconninfoParse rejects (the
 * reason is logged; the conninfo itself is never logged, it holds a password).
 * Thread-safe. */
struct db_pool *db_pool_new(const char *conninfo, int size, const char *application_name,
                            struct sb_log *log);
/* Closes every connection and frees the pool. All connections must have been
 * released, and no other thread may still use the pool. NULL is a no-op. */
void db_pool_free(struct db_pool *p);

/* Checks out a connection. timeout_ms bounds the whole call: waiting for a
 * free slot and, when the slot has no connection or its connection went bad,
 * (re)connecting, which is also bounded by connect_timeout. With timeout_ms 0
 * only an already open, free connection can be had.
 * Returns 0 and *conn (owned by the calling thread until db_release()),
 * SB_EUNAVAIL when it cannot connect, -ETIMEDOUT when nothing became free or
 * the connection attempt ran out of time, -EINVAL on bad arguments.
 * Thread-safe. */
int db_acquire(struct db_pool *p, int timeout_ms, PGconn **conn) SB_MUST_USE;

/* Gives `conn` back; it must not be used afterwards. A connection left inside
 * a transaction is rolled back first; one that is busy, broken, or fails the
 * rollback is closed instead (the slot reconnects on next use). NULL is a
 * no-op; a connection not checked out from `p` is left alone (and logged).
 * Thread-safe (call it from the thread that holds `conn`). */
void db_release(struct db_pool *p, PGconn *conn);

/* Health check: SELECT 1 on a pooled connection, all within timeout_ms.
 * A stale pooled connection is replaced once. Returns 0, SB_EUNAVAIL (server
 * down, refused, broken) or -ETIMEDOUT. Fast when the server refuses.
 * Thread-safe. */
int db_ping(struct db_pool *p, int timeout_ms) SB_MUST_USE;

/* ---------------------------------------------------------------- statements */

/* Runs one parameterised statement (text parameters, text results). Each
 * distinct SQL text is prepared once per connection (PQprepare) and then run
 * with PQexecPrepared, so the server parses and analyses it once; past
 * 192 texts per connection (conn.h) the rest run unprepared
 * (PQexecParams). So pass fixed texts with parameters, never values built
 * into the text. `params` holds `nparams` borrowed strings (NULL entries are SQL
 * NULL); nparams may be 0 and params NULL. On success returns 0 and, when
 * `res` is non-NULL, stores a result the caller must PQclear() (when `res`
 * is NULL the result is cleared here). On failure returns SB_ECONFLICT for a
 * unique violation (SQLSTATE 23505), SB_EUNAVAIL when the connection is
 * lost, SB_EDB otherwise; *res is then NULL and, when `err` is non-NULL, its
 * contents are replaced by the server message (at most DB_ERR_MAX bytes).
 * `c` is borrowed: only the thread that checked it out may use it. */
int db_exec(PGconn *c, const char *sql, int nparams, const char *const *params, PGresult **res,
            struct sb_buf *err) SB_MUST_USE;

/* The text of a result field, or NULL for SQL NULL or an out-of-range
 * row/column. Valid until PQclear(res). Thread-safe for distinct results. */
const char *db_value(const PGresult *res, int row, int col);

/* Parses a field as a decimal integer. Returns 0, SB_ENOTFOUND (SQL NULL or
 * out of range), or -EINVAL / -ERANGE (not an integer); `out` may be NULL. */
int db_value_long(const PGresult *res, int row, int col, long *out) SB_MUST_USE;

/* Replaces the contents of `err` (may be NULL) with a formatted message,
 * truncated to DB_ERR_MAX bytes and to the buffer's own limit; a trailing
 * newline (as libpq messages have) is dropped. */
void db_err_setf(struct sb_buf *err, const char *fmt, ...) SB_PRINTF(2, 3);

/* ---------------------------------------------------------------- arrays */

/* A PostgreSQL array literal in text form ("{\"a\",NULL,\"b\"}") built one
 * element at a time, to pass a whole batch as one parameter of a fixed
 * statement (`… FROM unnest($1::uuid[], $2::text[])`): one plan for every
 * batch size, and no value is ever built into SQL text. Elements are quoted
 * and escaped, so any text round-trips (empty strings, quotes, backslashes,
 * braces, "NULL"); a NULL element is SQL NULL. Caller-owned storage. */
struct db_array {
    struct sb_buf text;
    bool closed;
};

/* `max_bytes` bounds the literal (elements, quotes and escapes). */
void db_array_init(struct db_array *a, size_t max_bytes);
void db_array_cleanup(struct db_array *a);
/* Drops every element (the storage is kept). */
void db_array_reset(struct db_array *a);
/* Appends one element: a NUL-terminated text, or NULL for SQL NULL.
 * SB_ELIMIT past max_bytes (the array is then unchanged), -ENOMEM. Not after
 * db_array_text(). */
int db_array_add(struct db_array *a, const char *v) SB_MUST_USE;
/* Same for a long integer. */
int db_array_add_long(struct db_array *a, long v) SB_MUST_USE;
/* The finished literal, valid until the next reset or cleanup; NULL when the
 * closing brace did not fit. */
const char *db_array_text(struct db_array *a);

/* Runs `sql` (see db_exec) with `first` as $1 and the literals of a[0..n) as
 * $2..$(n+1), n ≤ DB_ARRAY_PARAMS_MAX: the shape of a batch statement over
 * columns (first is usually the tenant). SB_ELIMIT when a literal could not
 * be closed, -EINVAL when n is out of range. */
#define DB_ARRAY_PARAMS_MAX 32
int db_exec_arrays(PGconn *c, const char *sql, const char *first, struct db_array *a, int n,
                   PGresult **res, struct sb_buf *err) SB_MUST_USE;

/* The same element by element in PostgreSQL's binary array format, for
 * parameters sent in binary (format 1): no quoting or escaping on either
 * side, and a bytea element travels as its raw bytes. One dimension, lower
 * bound 1. `oid` is the element type's (DB_OID_*); elements are added in
 * that type's binary form (text: its bytes; uuid: 16 bytes; bool: 1 byte). */
#define DB_OID_BOOL  16
#define DB_OID_BYTEA 17
#define DB_OID_TEXT  25
#define DB_OID_UUID  2950
struct db_bin_array {
    struct sb_buf data; /* header, then (length, bytes) per element */
    unsigned oid;
    int count;
    bool has_null;
};
void db_bin_array_init(struct db_bin_array *a, unsigned oid, size_t max_bytes);
void db_bin_array_cleanup(struct db_bin_array *a);
void db_bin_array_reset(struct db_bin_array *a);
/* Appends `len` bytes as one element, or SQL NULL when v is NULL.
 * SB_ELIMIT past max_bytes (the array is then unchanged), -ENOMEM. */
int db_bin_array_add(struct db_bin_array *a, const void *v, size_t len) SB_MUST_USE;
/* A NUL-terminated text element, or NULL. */
int db_bin_array_add_str(struct db_bin_array *a, const char *v) SB_MUST_USE;
/* A canonical UUID string as a uuid element (-EINVAL when malformed), or NULL. */
int db_bin_array_add_uuid(struct db_bin_array *a, const char *uuid) SB_MUST_USE;
/* The finished parameter (valid until the next add, reset or cleanup) and
 * its length in bytes. */
const char *db_bin_array_param(struct db_bin_array *a, int *len);

/* ---------------------------------------------------------------- pipelines */

/* One statement of a pipeline (db_pipeline). `lengths` and `formats` follow
 * PQexecParams (NULL: every parameter is a text string). `res` receives the
 * statement's result on success (the caller PQclear()s it), else NULL. */
struct db_call {
    const char *sql;
    int nparams;
    const char *const *values;
    const int *lengths;
    const int *formats;
    PGresult *res;
};

#define DB_PIPELINE_MAX 16 /* statements in one db_pipeline() */
/* Runs calls[0..n) in one round trip as one implicit transaction (libpq
 * pipeline mode, one Sync): committed together at the end when every
 * statement succeeded, rolled back otherwise. (An explicit BEGIN among them
 * leaves a transaction open instead, as db_tenant_tx() uses it.) A set_config(…, true) among them lasts until the end, so
 * `SELECT set_config('app.tenant_id', $1, true)` first scopes the rest to a
 * tenant. Each text is prepared once per connection, as db_exec() does.
 * Returns 0; or the first failure's code (see db_exec; the server's message in
 * `err`), every res then NULL; -EINVAL for n outside 1..DB_PIPELINE_MAX. */
int db_pipeline(PGconn *c, struct db_call *calls, int n, struct sb_buf *err) SB_MUST_USE;

/* ---------------------------------------------------------------- transactions */

/* Body of a transaction: runs statements on `c` (borrowed for the call) and
 * returns 0 to commit or a negative code to roll back. It may be called more
 * than once (retries), so it must not keep side effects outside the database
 * from a failed attempt. */
typedef int (*db_tx_fn)(PGconn *c, void *arg);

/* Runs fn(c, arg) between BEGIN and COMMIT on a pooled connection (waiting
 * up to DB_TX_ACQUIRE_TIMEOUT_MS for one). When fn returns non-zero the
 * transaction is rolled back and that code returned. When fn returns 0 but a
 * statement inside failed (the transaction is aborted) it is rolled back and
 * SB_EDB returned. A serialization failure or deadlock (40001 / 40P01) seen
 * by any db_exec() in the attempt, or at COMMIT, retries the whole body, up to
 * DB_TX_MAX_ATTEMPTS times. A pooled connection that turns out to be dead at
 * BEGIN is replaced once. Returns 0 or a negative code (SB_EUNAVAIL or
 * -ETIMEDOUT when no connection could be had). `arg` is passed through
 * untouched. Thread-safe: many threads may run transactions on one pool. */
int db_tx(struct db_pool *p, db_tx_fn fn, void *arg) SB_MUST_USE;

/* Like db_tx() but first scopes the transaction to `tenant_id` with
 * SELECT set_config('app.tenant_id', $1, true), sent in the same round trip
 * as BEGIN (libpq pipeline mode), which Row-Level Security
 * policies read with current_setting('app.tenant_id', true). The setting ends
 * with the transaction. `tenant_id` (borrowed) must be a canonical UUID
 * string, otherwise -EINVAL is returned without touching the database.
 * Thread-safe. */
int db_tenant_tx(struct db_pool *p, const char *tenant_id, db_tx_fn fn, void *arg) SB_MUST_USE;

/* ---------------------------------------------------------------- migrations */

/* Applies, in lexical order, every NNNN_name.sql file in `dir` (digits, '_',
 * then [A-Za-z0-9_-], ".sql"; the digits are the version) that is not yet
 * recorded in schema_migrations(version, name, checksum, applied_at), a table
 * created when absent. Other files are ignored, but a .sql file whose name
 * does not fit, two files with one version, or a file over
 * DB_MIGRATE_MAX_FILE_BYTES is an error. Each file runs in its own
 * transaction together with its bookkeeping row, so a failing file leaves
 * nothing behind; files must not contain transaction control (BEGIN/COMMIT)
 * or statements that cannot run inside a transaction. A session advisory
 * lock serialises concurrent runners on the same database. Before applying
 * anything, every recorded file's SHA-256 is compared with the recorded one;
 * a change is refused (SB_ECONFLICT, naming the file).
 * Uses its own connection made from `conninfo` (the owner role). `log` may be
 * NULL. One line per applied file is appended to `report` (may be NULL).
 * Returns the number of files applied (>= 0) or a negative code, with the
 * reason in `err` (may be NULL). Safe to run from several threads or
 * processes at once: each file is still applied exactly once. */
int db_migrate(const char *conninfo, const char *dir, struct sb_log *log, struct sb_buf *report,
               struct sb_buf *err) SB_MUST_USE;

#endif
