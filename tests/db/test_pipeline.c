/* test_pipeline.c - db_pipeline() against a real PostgreSQL: statements in one
 * round trip commit together or not at all, set_config(…, true) spans them
 * and ends with them; and db_bin_array parameters (binary format) arrive
 * byte for byte: bytea with NULs, UTF-8 text, uuids, booleans, NULLs, the
 * empty array, and the byte limit. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "testsupport.h"

static struct db_pool *pool;
static PGconn *conn;
static struct sb_buf err;

static void setup(void)
{
    pool = db_pool_new(ts_env("SABIA_DATABASE_URL"), 1, "db-pipeline-test", NULL);
    cr_assert_not_null(pool);
    cr_assert_eq(db_acquire(pool, 5000, &conn), 0);
    sb_buf_init(&err, 2048);
    cr_assert_eq(db_exec(conn, "CREATE TEMP TABLE pl (v integer PRIMARY KEY)", 0, NULL, NULL, &err),
                 0, "%s", err.data);
}

static void teardown(void)
{
    sb_buf_cleanup(&err);
    db_release(pool, conn);
    db_pool_free(pool);
}

TestSuite(pipeline, .init = setup, .fini = teardown, .timeout = 60);

static long count_rows(void)
{
    PGresult *r = NULL;
    cr_assert_eq(db_exec(conn, "SELECT count(*) FROM pl", 0, NULL, &r, NULL), 0);
    long n = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

static const char INSERT_SQL[] = "INSERT INTO pl (v) VALUES ($1::integer) RETURNING v";

Test(pipeline, statements_commit_together)
{
    const char *one[] = {"1"}, *two[] = {"2"};
    struct db_call calls[] = {{.sql = INSERT_SQL, .nparams = 1, .values = one},
                              {.sql = INSERT_SQL, .nparams = 1, .values = two},
                              {.sql = "SELECT count(*) FROM pl"}};
    cr_assert_eq(db_pipeline(conn, calls, 3, &err), 0, "%s", err.data);
    cr_assert_str_eq(PQgetvalue(calls[0].res, 0, 0), "1");
    cr_assert_str_eq(PQgetvalue(calls[1].res, 0, 0), "2");
    cr_assert_str_eq(PQgetvalue(calls[2].res, 0, 0), "2", "later statements see earlier ones");
    for (int i = 0; i < 3; i++)
        PQclear(calls[i].res);
    cr_assert_eq(PQtransactionStatus(conn), PQTRANS_IDLE, "committed at the Sync");
    cr_assert_eq(count_rows(), 2);
    /* Prepared once: the same texts again. */
    const char *three[] = {"3"};
    struct db_call again[] = {{.sql = INSERT_SQL, .nparams = 1, .values = three}};
    cr_assert_eq(db_pipeline(conn, again, 1, &err), 0, "%s", err.data);
    PQclear(again[0].res);
    cr_assert_eq(count_rows(), 3);
}

Test(pipeline, one_failure_rolls_back_everything)
{
    const char *seven[] = {"7"}, *eight[] = {"8"};
    struct db_call calls[] = {{.sql = INSERT_SQL, .nparams = 1, .values = seven},
                              {.sql = INSERT_SQL, .nparams = 1, .values = seven},
                              {.sql = INSERT_SQL, .nparams = 1, .values = eight}};
    cr_assert_eq(db_pipeline(conn, calls, 3, &err), SB_ECONFLICT);
    cr_assert(strstr(err.data, "duplicate key"), "%s", err.data);
    for (int i = 0; i < 3; i++)
        cr_assert_null(calls[i].res);
    cr_assert_eq(count_rows(), 0, "nothing of a failed pipeline is kept");
    cr_assert_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
    /* The connection serves the next pipeline normally. */
    struct db_call ok[] = {{.sql = INSERT_SQL, .nparams = 1, .values = eight}};
    cr_assert_eq(db_pipeline(conn, ok, 1, &err), 0, "%s", err.data);
    PQclear(ok[0].res);
    cr_assert_eq(count_rows(), 1);
    /* A statement the server cannot even prepare. */
    struct db_call bad[] = {{.sql = "SELECT no_such_column FROM pl"}};
    cr_assert_eq(db_pipeline(conn, bad, 1, &err), SB_EDB);
    cr_assert(strstr(err.data, "no_such_column"), "%s", err.data);
    cr_assert_eq(db_pipeline(conn, bad, 0, &err), -EINVAL);
    cr_assert_eq(db_pipeline(conn, bad, DB_PIPELINE_MAX + 1, &err), -EINVAL);
}

Test(pipeline, local_settings_span_the_statements_and_end_with_them)
{
    const char *v[] = {"tenant-x"};
    struct db_call calls[] = {
        {.sql = "SELECT set_config('app.tenant_id', $1, true)", .nparams = 1, .values = v},
        {.sql = "SELECT current_setting('app.tenant_id', true)"}};
    cr_assert_eq(db_pipeline(conn, calls, 2, &err), 0, "%s", err.data);
    cr_assert_str_eq(PQgetvalue(calls[1].res, 0, 0), "tenant-x");
    PQclear(calls[0].res);
    PQclear(calls[1].res);
    PGresult *r = NULL;
    cr_assert_eq(db_exec(conn, "SELECT coalesce(current_setting('app.tenant_id', true), '')", 0,
                         NULL, &r, NULL),
                 0);
    cr_assert_str_eq(PQgetvalue(r, 0, 0), "", "the setting outlived its transaction");
    PQclear(r);
}

Test(pipeline, binary_arrays_arrive_byte_for_byte)
{
    static const char blob[] = {'a', 0, (char)0xff, '\\', '"', '{', '}', ',', 'z'};
    const char *texts[] = {"plain", "", "ção ✓ 🚀", "{\"json\": [1, \"x\"]}", NULL, "NULL"};
    const char *uuids[] = {"01a202e3-110f-770b-aa2e-b5c480253142", NULL,
                           "ffffffff-ffff-ffff-ffff-ffffffffffff", "00000000-0000-0000-0000-000000000000",
                           "01a202e3-1127-70af-956f-fc69d75ac1b8", "01a202e3-1140-7063-abfa-e12e6d50949d"};
    const bool flags[] = {true, false, true, false, true, false};
    struct db_bin_array b, t, u, f;
    db_bin_array_init(&b, DB_OID_BYTEA, 4096);
    db_bin_array_init(&t, DB_OID_TEXT, 4096);
    db_bin_array_init(&u, DB_OID_UUID, 4096);
    db_bin_array_init(&f, DB_OID_BOOL, 4096);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(db_bin_array_add(&b, i == 4 ? NULL : blob, (size_t)i), 0);
        cr_assert_eq(db_bin_array_add_str(&t, texts[i]), 0);
        cr_assert_eq(db_bin_array_add_uuid(&u, uuids[i]), 0);
        cr_assert_eq(db_bin_array_add(&f, &flags[i], 1), 0);
    }
    cr_assert_eq(db_bin_array_add_uuid(&u, "not-a-uuid"), -EINVAL);
    const char *values[4];
    int lengths[4], formats[4] = {1, 1, 1, 1};
    values[0] = db_bin_array_param(&b, &lengths[0]);
    values[1] = db_bin_array_param(&t, &lengths[1]);
    values[2] = db_bin_array_param(&u, &lengths[2]);
    values[3] = db_bin_array_param(&f, &lengths[3]);
    struct db_call call = {
        .sql = "SELECT encode(x.b, 'hex'), x.b IS NULL, x.t, x.t IS NULL, x.u::text, x.f "
               "FROM unnest($1::bytea[], $2::text[], $3::uuid[], $4::boolean[]) "
               "WITH ORDINALITY AS x(b, t, u, f, i) ORDER BY x.i",
        .nparams = 4, .values = values, .lengths = lengths, .formats = formats};
    cr_assert_eq(db_pipeline(conn, &call, 1, &err), 0, "%s", err.data);
    PGresult *r = call.res;
    cr_assert_eq(PQntuples(r), 6);
    for (int i = 0; i < 6; i++) {
        char hex[32] = "";
        for (int k = 0; k < i; k++)
            snprintf(hex + 2 * k, 3, "%02x", (unsigned char)blob[k]);
        cr_assert_str_eq(PQgetvalue(r, i, 1), i == 4 ? "t" : "f");
        if (i != 4)
            cr_assert_str_eq(PQgetvalue(r, i, 0), hex, "bytea %d", i);
        cr_assert_str_eq(PQgetvalue(r, i, 3), texts[i] ? "f" : "t");
        if (texts[i])
            cr_assert_str_eq(PQgetvalue(r, i, 2), texts[i], "text %d", i);
        if (uuids[i])
            cr_assert_str_eq(PQgetvalue(r, i, 4), uuids[i], "uuid %d", i);
        else
            cr_assert(PQgetisnull(r, i, 4));
        cr_assert_str_eq(PQgetvalue(r, i, 5), flags[i] ? "t" : "f");
    }
    PQclear(r);
    /* Empty, and refused past the limit without damage. */
    struct db_bin_array small;
    db_bin_array_init(&small, DB_OID_TEXT, 16);
    int len = 0;
    const char *p = db_bin_array_param(&small, &len);
    cr_assert_eq(db_bin_array_add_str(&small, "0123456789"), 0);
    cr_assert_eq(db_bin_array_add_str(&small, "0123456789"), SB_ELIMIT);
    p = db_bin_array_param(&small, &len);
    struct db_call one = {.sql = "SELECT cardinality($1::text[])", .nparams = 1, .values = &p,
                          .lengths = &len, .formats = formats};
    cr_assert_eq(db_pipeline(conn, &one, 1, &err), 0, "%s", err.data);
    cr_assert_str_eq(PQgetvalue(one.res, 0, 0), "1");
    PQclear(one.res);
    db_bin_array_reset(&small);
    p = db_bin_array_param(&small, &len);
    cr_assert_eq(db_pipeline(conn, &one, 1, &err), 0, "%s", err.data);
    cr_assert_str_eq(PQgetvalue(one.res, 0, 0), "0", "the empty array");
    PQclear(one.res);
    db_bin_array_cleanup(&small);
    db_bin_array_cleanup(&b);
    db_bin_array_cleanup(&t);
    db_bin_array_cleanup(&u);
    db_bin_array_cleanup(&f);
}
