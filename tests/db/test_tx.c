/* test_tx.c - statements and transactions: parameters and NULLs, injection
 * attempts staying literal, error text and codes, commit / rollback, clean
 * connections after failures, retries on serialization failure, and tenant
 * scoping under Row-Level Security as the application role. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "db.h"
#include "testsupport.h"

#define TENANT_A "0190a5d2-7c4e-7000-8000-00000000000a"
#define TENANT_B "0190a5d2-7c4e-7000-8000-00000000000b"

static char table[64];      /* t_rls_<random>, created per test by the owner */
static struct db_pool *app; /* as the application role, size 1 */

static struct db_pool *owner_pool(void)
{
    struct db_pool *p = db_pool_new(ts_env("SABIA_DATABASE_OWNER_URL"), 1, "db-tx-test", NULL);
    cr_assert_not_null(p);
    return p;
}

/* Runs one statement as the owner. */
static void owner_execf(const char *fmt, ...) SB_PRINTF(1, 2);
static void owner_execf(const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    struct db_pool *p = owner_pool();
    PGconn *c = NULL;
    cr_assert_eq(db_acquire(p, 5000, &c), 0);
    struct sb_buf err;
    sb_buf_init(&err, 1024);
    int rc = db_exec(c, sql, 0, NULL, NULL, &err);
    cr_assert_eq(rc, 0, "%s: %s", sql, err.data ? err.data : "");
    sb_buf_cleanup(&err);
    db_release(p, c);
    db_pool_free(p);
}

/* The application role's name, from its URL. */
static char *app_role(void)
{
    PQconninfoOption *opts = PQconninfoParse(ts_env("SABIA_DATABASE_URL"), NULL);
    cr_assert_not_null(opts);
    char *user = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "user") == 0 && o->val)
            user = strdup(o->val);
    }
    PQconninfoFree(opts);
    cr_assert_not_null(user);
    return user;
}

static void setup(void)
{
    unsigned char rnd[6];
    cr_assert_eq(getrandom(rnd, sizeof(rnd), 0), (ssize_t)sizeof(rnd));
    snprintf(table, sizeof(table), "t_rls_%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5]);
    owner_execf("CREATE TABLE %s (tenant_id uuid NOT NULL, body text NOT NULL UNIQUE)", table);
    owner_execf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY", table);
    owner_execf("ALTER TABLE %s FORCE ROW LEVEL SECURITY", table);
    owner_execf(
        "CREATE POLICY tenant_only ON %s"
        " USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)"
        " WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)",
        table);
    char *role = app_role();
    owner_execf("GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO \"%s\"", table, role);
    free(role);
    app = db_pool_new(ts_env("SABIA_DATABASE_URL"), 1, "db-tx-test", NULL);
    cr_assert_not_null(app);
}

static void teardown(void)
{
    db_pool_free(app);
    app = NULL;
    if (table[0])
        owner_execf("DROP TABLE IF EXISTS %s", table);
}

/* ---------------------------------------------------------------- bodies */

struct body {
    const char *tenant; /* row's tenant_id */
    const char *text;
    int fail_with;     /* returned after the insert when non-zero */
    bool ignore_error; /* run a failing statement, then return 0 */
    long count;        /* rows visible, filled by count_rows */
    char setting[64];  /* current_setting('app.tenant_id', true), "<null>" for NULL */
    long pid;
    int calls;
    int rc;
};

static int insert_row(PGconn *c, void *arg)
{
    struct body *b = arg;
    b->calls++;
    char sql[256];
    snprintf(sql, sizeof(sql), "INSERT INTO %s (tenant_id, body) VALUES ($1, $2)", table);
    const char *params[2] = {b->tenant, b->text};
    b->rc = db_exec(c, sql, 2, params, NULL, NULL);
    if (b->rc != 0)
        return b->rc;
    if (b->ignore_error) {
        int rc = db_exec(c, "SELECT 1/0", 0, NULL, NULL, NULL);
        cr_assert_eq(rc, SB_EDB);
        return 0;
    }
    return b->fail_with;
}

static int count_rows(PGconn *c, void *arg)
{
    struct body *b = arg;
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*), coalesce(current_setting('app.tenant_id', true), '<null>'),"
             " pg_backend_pid() FROM %s",
             table);
    PGresult *r = NULL;
    int rc = db_exec(c, sql, 0, NULL, &r, NULL);
    if (rc != 0)
        return rc;
    cr_assert_eq(db_value_long(r, 0, 0, &b->count), 0);
    snprintf(b->setting, sizeof(b->setting), "%s", db_value(r, 0, 1));
    cr_assert_eq(db_value_long(r, 0, 2, &b->pid), 0);
    PQclear(r);
    return 0;
}

static long visible(const char *tenant)
{
    struct body b = {0};
    int rc = tenant ? db_tenant_tx(app, tenant, count_rows, &b) : db_tx(app, count_rows, &b);
    cr_assert_eq(rc, 0);
    return b.count;
}

/* ---------------------------------------------------------------- statements */

TestSuite(exec, .init = setup, .fini = teardown, .timeout = 30);

Test(exec, parameters_and_nulls)
{
    PGconn *c = NULL;
    cr_assert_eq(db_acquire(app, 5000, &c), 0);
    const char *params[3] = {"41", NULL, "it's \"quoted\" \\ text"};
    PGresult *r = NULL;
    cr_assert_eq(
        db_exec(c, "SELECT $1::int + 1, $2::text IS NULL, $3::text, $2::text", 3, params, &r, NULL),
        0);
    cr_assert_eq(PQntuples(r), 1);
    cr_assert_str_eq(db_value(r, 0, 0), "42");
    cr_assert_str_eq(db_value(r, 0, 1), "t");
    cr_assert_str_eq(db_value(r, 0, 2), params[2]);
    cr_assert_null(db_value(r, 0, 3), "SQL NULL reads as NULL");
    cr_assert_null(db_value(r, 1, 0));
    cr_assert_null(db_value(r, 0, 4));
    cr_assert_null(db_value(r, -1, 0));
    long v = 0;
    cr_assert_eq(db_value_long(r, 0, 0, &v), 0);
    cr_assert_eq(v, 42);
    cr_assert_eq(db_value_long(r, 0, 3, &v), SB_ENOTFOUND);
    cr_assert_eq(db_value_long(r, 0, 2, &v), -EINVAL);
    PQclear(r);

    cr_assert_eq(db_exec(c, "SELECT 1", 0, NULL, NULL, NULL), 0, "no result wanted: cleared");
    cr_assert_eq(db_exec(c, NULL, 0, NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(db_exec(c, "SELECT $1", 1, NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(db_exec(NULL, "SELECT 1", 0, NULL, NULL, NULL), -EINVAL);
    db_release(app, c);
}

Test(exec, injection_stays_a_literal)
{
    char text[128];
    snprintf(text, sizeof(text), "x'); DROP TABLE %s; --", table);
    struct body b = {.tenant = TENANT_A, .text = text};
    cr_assert_eq(db_tenant_tx(app, TENANT_A, insert_row, &b), 0);
    cr_assert_eq(b.rc, 0);
    cr_assert_eq(visible(TENANT_A), 1, "the table is still there, holding the text");

    PGconn *c = NULL;
    cr_assert_eq(db_acquire(app, 5000, &c), 0);
    const char *params[1] = {"1 OR 1=1"};
    PGresult *r = NULL;
    cr_assert_eq(db_exec(c, "SELECT $1::text = '1 OR 1=1', length($1)", 1, params, &r, NULL), 0);
    cr_assert_str_eq(db_value(r, 0, 0), "t");
    cr_assert_str_eq(db_value(r, 0, 1), "8");
    PQclear(r);
    /* Two statements in one db_exec are refused: parameterised means one statement. */
    cr_assert_eq(db_exec(c, "SELECT 1; SELECT 2", 0, NULL, NULL, NULL), SB_EDB);
    db_release(app, c);
}

Test(exec, errors_carry_the_server_message)
{
    PGconn *c = NULL;
    cr_assert_eq(db_acquire(app, 5000, &c), 0);
    struct sb_buf err;
    sb_buf_init(&err, 4096);
    PGresult *r = (PGresult *)1;
    cr_assert_eq(db_exec(c, "SELECT * FROM no_such_table_zq", 0, NULL, &r, &err), SB_EDB);
    cr_assert_null(r);
    cr_assert_not_null(strstr(err.data, "no_such_table_zq"), "got: %s", err.data);
    cr_assert_neq(err.data[err.len - 1], '\n');

    cr_assert_eq(db_exec(c, "SELEC 1", 0, NULL, NULL, &err), SB_EDB);
    cr_assert_not_null(strstr(err.data, "syntax error"), "replaced, got: %s", err.data);
    cr_assert_null(strstr(err.data, "no_such_table_zq"));
    cr_assert_eq(db_exec(c, "", 0, NULL, NULL, &err), SB_EDB, "an empty query is not success");

    /* A small buffer gets a truncated message, never an overflow. */
    struct sb_buf small;
    sb_buf_init(&small, 10);
    cr_assert_eq(db_exec(c, "SELECT * FROM no_such_table_zq", 0, NULL, NULL, &small), SB_EDB);
    cr_assert_leq(small.len, 10);
    cr_assert_gt(small.len, 0);
    sb_buf_cleanup(&small);
    sb_buf_cleanup(&err);
    db_release(app, c);
}

Test(exec, unique_violation_is_a_conflict)
{
    struct body b = {.tenant = TENANT_A, .text = "same"};
    cr_assert_eq(db_tenant_tx(app, TENANT_A, insert_row, &b), 0);
    cr_assert_eq(db_tenant_tx(app, TENANT_A, insert_row, &b), SB_ECONFLICT);
    cr_assert_eq(b.rc, SB_ECONFLICT);
    cr_assert_eq(b.calls, 2, "a conflict is not retried");
    cr_assert_eq(visible(TENANT_A), 1);
}

static long prepared_count(PGconn *c, const char *like)
{
    const char *params[1] = {like};
    PGresult *r = NULL;
    cr_assert_eq(db_exec(c, "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE $1",
                         1, params, &r, NULL),
                 0);
    long n = -1;
    cr_assert_eq(db_value_long(r, 0, 0, &n), 0);
    PQclear(r);
    return n;
}

Test(exec, each_text_is_prepared_once_per_connection)
{
    PGconn *c = NULL;
    cr_assert_eq(db_acquire(app, 5000, &c), 0);
    for (int i = 0; i < 5; i++) {
        char v[16], want[16];
        snprintf(v, sizeof v, "%d", i);
        snprintf(want, sizeof want, "%d", i * 7);
        const char *params[1] = {v};
        PGresult *r = NULL;
        cr_assert_eq(db_exec(c, "SELECT $1::int * 7 /* once */", 1, params, &r, NULL), 0);
        cr_assert_str_eq(db_value(r, 0, 0), want, "each call binds its own parameters");
        PQclear(r);
    }
    cr_assert_eq(prepared_count(c, "%/* once */%"), 1);

    /* Past the cache's bound the rest still run, unprepared. */
    for (int i = 0; i < 400; i++) {
        char sql[64], want[16];
        snprintf(sql, sizeof sql, "SELECT %d /* many */", i);
        snprintf(want, sizeof want, "%d", i);
        PGresult *r = NULL;
        cr_assert_eq(db_exec(c, sql, 0, NULL, &r, NULL), 0);
        cr_assert_str_eq(db_value(r, 0, 0), want);
        PQclear(r);
    }
    long many = prepared_count(c, "%/* many */%");
    cr_assert(many > 100 && many < 256, "bounded per connection, got %ld", many);
    db_release(app, c);
}

Test(exec, prepared_statements_outlive_rollback_and_failures)
{
    PGconn *c = NULL;
    cr_assert_eq(db_acquire(app, 5000, &c), 0);
    const char *later = "SELECT count(*) FROM t_prepared_later";
    /* A text that fails to prepare is not remembered: it works once it can. */
    cr_assert_eq(db_exec(c, later, 0, NULL, NULL, NULL), SB_EDB);
    char *role = app_role();
    owner_execf("CREATE TABLE t_prepared_later (x int)");
    owner_execf("GRANT SELECT ON t_prepared_later TO %s", role);
    free(role);
    cr_assert_eq(db_exec(c, later, 0, NULL, NULL, NULL), 0);
    /* A migration changes what a prepared statement returns: one call fails
     * (the server refuses the stale plan), the next prepares it afresh. */
    const char *star = "SELECT * FROM t_prepared_later";
    cr_assert_eq(db_exec(c, star, 0, NULL, NULL, NULL), 0);
    owner_execf("ALTER TABLE t_prepared_later ALTER COLUMN x TYPE text");
    int first = db_exec(c, star, 0, NULL, NULL, NULL);
    cr_assert(first == 0 || first == SB_EDB);
    cr_assert_eq(db_exec(c, star, 0, NULL, NULL, NULL), 0, "still stale after a failure");
    /* Prepared first inside a transaction that rolls back: still prepared. */
    cr_assert_eq(db_exec(c, "BEGIN", 0, NULL, NULL, NULL), 0);
    cr_assert_eq(db_exec(c, "SELECT 'rolled back' /* rb */", 0, NULL, NULL, NULL), 0);
    cr_assert_eq(db_exec(c, "ROLLBACK", 0, NULL, NULL, NULL), 0);
    cr_assert_eq(db_exec(c, "SELECT 'rolled back' /* rb */", 0, NULL, NULL, NULL), 0);
    cr_assert_eq(prepared_count(c, "%/* rb */%"), 1);
    db_release(app, c);
    owner_execf("DROP TABLE t_prepared_later");
}

/* ---------------------------------------------------------------- transactions */

TestSuite(tx, .init = setup, .fini = teardown, .timeout = 30);

Test(tx, commit_is_visible)
{
    struct body b = {.tenant = TENANT_A, .text = "kept"};
    cr_assert_eq(db_tenant_tx(app, TENANT_A, insert_row, &b), 0);
    cr_assert_eq(b.calls, 1);
    /* Seen from another connection, so it really was committed. */
    struct db_pool *other = db_pool_new(ts_env("SABIA_DATABASE_URL"), 1, NULL, NULL);
    struct body n = {0};
    cr_assert_eq(db_tenant_tx(other, TENANT_A, count_rows, &n), 0);
    cr_assert_eq(n.count, 1);
    db_pool_free(other);
}

Test(tx, failing_body_rolls_back)
{
    struct body b = {.tenant = TENANT_A, .text = "gone", .fail_with = -EIO};
    cr_assert_eq(db_tenant_tx(app, TENANT_A, insert_row, &b), -EIO);
    cr_assert_eq(b.rc, 0, "the insert itself worked");
    cr_assert_eq(b.calls, 1);
    cr_assert_eq(visible(TENANT_A), 0);
}

Test(tx, ignored_statement_failure_is_not_committed)
{
    struct body b = {.tenant = TENANT_A, .text = "half", .ignore_error = true};
    cr_assert_eq(db_tenant_tx(app, TENANT_A, insert_row, &b), SB_EDB);
    cr_assert_eq(visible(TENANT_A), 0);
}

Test(tx, connection_comes_back_clean)
{
    PGconn *c = NULL;
    cr_assert_eq(db_acquire(app, 5000, &c), 0);
    cr_assert_eq(db_exec(c, "BEGIN", 0, NULL, NULL, NULL), 0);
    cr_assert_eq(db_exec(c, "SELECT 1/0", 0, NULL, NULL, NULL), SB_EDB);
    cr_assert_eq(PQtransactionStatus(c), PQTRANS_INERROR);
    db_release(app, c);

    PGconn *d = NULL;
    cr_assert_eq(db_acquire(app, 5000, &d), 0);
    cr_assert_eq(d, c, "same pooled connection, kept open");
    cr_assert_eq(PQtransactionStatus(d), PQTRANS_IDLE);
    cr_assert_eq(db_exec(d, "SELECT 1", 0, NULL, NULL, NULL), 0);

    /* Left open with a write in it: released means rolled back. */
    const char *set[1] = {TENANT_A};
    cr_assert_eq(db_exec(d, "BEGIN", 0, NULL, NULL, NULL), 0);
    cr_assert_eq(db_exec(d, "SELECT set_config('app.tenant_id', $1, true)", 1, set, NULL, NULL), 0);
    char sql[256];
    snprintf(sql, sizeof(sql), "INSERT INTO %s VALUES ($1, 'open')", table);
    cr_assert_eq(db_exec(d, sql, 1, set, NULL, NULL), 0);
    db_release(app, d);
    cr_assert_eq(visible(TENANT_A), 0);
}

struct flaky {
    const char *sqlstate;
    int fail_times;
    int calls;
};

static int flaky_body(PGconn *c, void *arg)
{
    struct flaky *f = arg;
    f->calls++;
    if (f->calls > f->fail_times)
        return db_exec(c, "SELECT 1", 0, NULL, NULL, NULL);
    char sql[160];
    snprintf(sql, sizeof(sql),
             "DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '%s'; END $$", f->sqlstate);
    return db_exec(c, sql, 0, NULL, NULL, NULL);
}

Test(tx, serialization_failure_and_deadlock_are_retried)
{
    struct flaky f = {.sqlstate = "40001", .fail_times = 2};
    cr_assert_eq(db_tx(app, flaky_body, &f), 0);
    cr_assert_eq(f.calls, 3);

    f = (struct flaky){.sqlstate = "40P01", .fail_times = 1};
    cr_assert_eq(db_tx(app, flaky_body, &f), 0);
    cr_assert_eq(f.calls, 2);

    f = (struct flaky){.sqlstate = "40001", .fail_times = 100};
    cr_assert_eq(db_tx(app, flaky_body, &f), SB_EDB);
    cr_assert_eq(f.calls, DB_TX_MAX_ATTEMPTS, "gives up after the limit");

    f = (struct flaky){.sqlstate = "22012", .fail_times = 100};
    cr_assert_eq(db_tx(app, flaky_body, &f), SB_EDB);
    cr_assert_eq(f.calls, 1, "other errors are not retried");
}

static int own_pid(PGconn *c, void *arg)
{
    PGresult *r = NULL;
    int rc = db_exec(c, "SELECT pg_backend_pid()", 0, NULL, &r, NULL);
    if (rc == 0)
        rc = db_value_long(r, 0, 0, arg);
    PQclear(r);
    return rc;
}

static int terminate(PGconn *c, void *arg)
{
    char spid[32];
    snprintf(spid, sizeof(spid), "%ld", *(long *)arg);
    const char *params[1] = {spid};
    return db_exec(c, "SELECT pg_terminate_backend($1::int)", 1, params, NULL, NULL);
}

Test(tx, dead_pooled_connection_is_replaced)
{
    long pid = 0, pid2 = 0;
    cr_assert_eq(db_tx(app, own_pid, &pid), 0);
    struct db_pool *killer = db_pool_new(ts_env("SABIA_DATABASE_URL"), 1, NULL, NULL);
    cr_assert_eq(db_tx(killer, terminate, &pid), 0);
    db_pool_free(killer);
    usleep(100 * 1000);
    cr_assert_eq(db_tx(app, own_pid, &pid2), 0);
    cr_assert_neq(pid2, pid);
    /* The new session has nothing prepared: its statements are prepared anew. */
    cr_assert_eq(db_tx(app, own_pid, &pid2), 0);

    /* The same for a tenant transaction (BEGIN and scope sent together). */
    cr_assert_eq(db_tenant_tx(app, TENANT_A, own_pid, &pid), 0);
    killer = db_pool_new(ts_env("SABIA_DATABASE_URL"), 1, NULL, NULL);
    cr_assert_eq(db_tx(killer, terminate, &pid), 0);
    db_pool_free(killer);
    usleep(100 * 1000);
    cr_assert_eq(visible(TENANT_A), 0);
    cr_assert_eq(db_tenant_tx(app, TENANT_A, own_pid, &pid2), 0);
    cr_assert_neq(pid2, pid);
}

Test(tx, bad_arguments)
{
    cr_assert_eq(db_tx(NULL, own_pid, NULL), -EINVAL);
    cr_assert_eq(db_tx(app, NULL, NULL), -EINVAL);
}

/* ---------------------------------------------------------------- tenant scoping */

TestSuite(tenant, .init = setup, .fini = teardown, .timeout = 30);

Test(tenant, rows_are_scoped_to_the_tenant)
{
    struct body a1 = {.tenant = TENANT_A, .text = "a1"}, a2 = {.tenant = TENANT_A, .text = "a2"};
    struct body b1 = {.tenant = TENANT_B, .text = "b1"};
    cr_assert_eq(db_tenant_tx(app, TENANT_A, insert_row, &a1), 0);
    cr_assert_eq(db_tenant_tx(app, TENANT_A, insert_row, &a2), 0);
    cr_assert_eq(db_tenant_tx(app, TENANT_B, insert_row, &b1), 0);

    cr_assert_eq(visible(TENANT_A), 2);
    cr_assert_eq(visible(TENANT_B), 1);
    cr_assert_eq(visible(NULL), 0, "no tenant: nothing visible");

    /* Writing another tenant's row, or without a tenant, is refused by the policy. */
    struct body forged = {.tenant = TENANT_A, .text = "forged"};
    cr_assert_eq(db_tenant_tx(app, TENANT_B, insert_row, &forged), SB_EDB);
    cr_assert_eq(db_tx(app, insert_row, &forged), SB_EDB);
    cr_assert_eq(visible(TENANT_A), 2);
}

Test(tenant, setting_does_not_leak_to_the_next_transaction)
{
    struct body in = {0}, after = {0};
    cr_assert_eq(db_tenant_tx(app, TENANT_A, count_rows, &in), 0);
    cr_assert_str_eq(in.setting, TENANT_A);
    cr_assert_eq(db_tx(app, count_rows, &after), 0);
    cr_assert_eq(after.pid, in.pid, "pool of one: the very same session");
    cr_assert(strcmp(after.setting, "") == 0 || strcmp(after.setting, "<null>") == 0, "leaked: %s",
              after.setting);

    /* Even when the scoped transaction failed. */
    struct body fail = {.tenant = TENANT_A, .text = "x", .fail_with = -EIO};
    cr_assert_eq(db_tenant_tx(app, TENANT_A, insert_row, &fail), -EIO);
    cr_assert_eq(db_tx(app, count_rows, &after), 0);
    cr_assert(strcmp(after.setting, "") == 0 || strcmp(after.setting, "<null>") == 0);
}

Test(tenant, runs_as_a_role_that_cannot_bypass_rls)
{
    PGconn *c = NULL;
    cr_assert_eq(db_acquire(app, 5000, &c), 0);
    PGresult *r = NULL;
    cr_assert_eq(db_exec(c,
                         "SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user",
                         0, NULL, &r, NULL),
                 0);
    cr_assert_str_eq(db_value(r, 0, 0), "f");
    cr_assert_str_eq(db_value(r, 0, 1), "f");
    PQclear(r);
    db_release(app, c);
}

Test(tenant, invalid_tenant_id_never_reaches_the_database)
{
    struct body b = {.tenant = TENANT_A, .text = "x"};
    const char *bad[] = {"",
                         "not-a-uuid",
                         TENANT_A "x",
                         "0190a5d2-7c4e-7000-8000-00000000000",
                         "0190a5d2x7c4e-7000-8000-00000000000a",
                         "'; DROP TABLE x; --"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(db_tenant_tx(app, bad[i], insert_row, &b), -EINVAL, "%s", bad[i]);
    cr_assert_eq(db_tenant_tx(app, NULL, insert_row, &b), -EINVAL);
    cr_assert_eq(b.calls, 0);

    /* Not even a connection is tried: a pool pointing nowhere still says -EINVAL. */
    char ci[128];
    snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d dbname=x user=x", ts_free_port());
    struct db_pool *dead = db_pool_new(ci, 1, NULL, NULL);
    cr_assert_eq(db_tenant_tx(dead, "nope", insert_row, &b), -EINVAL);
    cr_assert_eq(db_tenant_tx(dead, TENANT_A, insert_row, &b), SB_EUNAVAIL);
    cr_assert_eq(b.calls, 0);
    db_pool_free(dead);
}
