/* test_array.c - db_array literals go through a real PostgreSQL unchanged:
 * awkward texts, NULLs, the text "NULL", numbers and uuids, the empty array,
 * and the byte limit (refused element leaves a valid literal behind). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "testsupport.h"

static struct db_pool *pool;
static PGconn *conn;

static void setup(void)
{
    pool = db_pool_new(ts_env("SABIA_DATABASE_URL"), 1, "db-array-test", NULL);
    cr_assert_not_null(pool);
    cr_assert_eq(db_acquire(pool, 5000, &conn), 0);
}

static void teardown(void)
{
    db_release(pool, conn);
    db_pool_free(pool);
}

TestSuite(array, .init = setup, .fini = teardown, .timeout = 60);

/* The elements as PostgreSQL reads them back, in order. */
static PGresult *unnest_text(const char *literal)
{
    const char *p[] = {literal};
    PGresult *r = NULL;
    struct sb_buf err;
    sb_buf_init(&err, 1024);
    int rc = db_exec(conn, "SELECT v, v IS NULL FROM unnest($1::text[]) WITH ORDINALITY u(v, i) ORDER BY i",
                     1, p, &r, &err);
    cr_assert_eq(rc, 0, "%s: %s", literal, err.data ? err.data : "");
    sb_buf_cleanup(&err);
    return r;
}

Test(array, awkward_texts_round_trip)
{
    const char *in[] = {"plain", "", "NULL", "with \"quotes\"", "back\\slash\\", "{braces}",
                        "a,b", " spaced ", "ção ✓ 🚀", "line\nbreak\ttab", "\\\"", NULL, "last"};
    size_t n = sizeof in / sizeof *in;
    struct db_array a;
    db_array_init(&a, 4096);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(db_array_add(&a, in[i]), 0);
    PGresult *r = unnest_text(db_array_text(&a));
    cr_assert_eq(PQntuples(r), (int)n);
    for (size_t i = 0; i < n; i++) {
        if (!in[i]) {
            cr_assert_str_eq(PQgetvalue(r, (int)i, 1), "t", "element %zu should be NULL", i);
            continue;
        }
        cr_assert_str_eq(PQgetvalue(r, (int)i, 1), "f");
        cr_assert_str_eq(PQgetvalue(r, (int)i, 0), in[i], "element %zu", i);
    }
    PQclear(r);
    db_array_cleanup(&a);
}

Test(array, empty_array_has_no_rows)
{
    struct db_array a;
    db_array_init(&a, 16);
    cr_assert_str_eq(db_array_text(&a), "{}");
    PGresult *r = unnest_text(db_array_text(&a));
    cr_assert_eq(PQntuples(r), 0);
    PQclear(r);
    cr_assert_eq(db_array_add(&a, "x"), -EINVAL, "no element after the literal is closed");
    db_array_reset(&a);
    cr_assert_eq(db_array_add(&a, "x"), 0);
    cr_assert_str_eq(db_array_text(&a), "{\"x\"}");
    db_array_cleanup(&a);
}

Test(array, numbers_and_uuids_cast)
{
    struct db_array ids, nums;
    db_array_init(&ids, 1024);
    db_array_init(&nums, 1024);
    cr_assert_eq(db_array_add(&ids, "0190a5d2-7c4e-7000-8000-00000000000a"), 0);
    cr_assert_eq(db_array_add(&ids, "0190a5d2-7c4e-7000-8000-00000000000b"), 0);
    cr_assert_eq(db_array_add_long(&nums, -42), 0);
    cr_assert_eq(db_array_add_long(&nums, 9000000000L), 0);
    const char *p[] = {db_array_text(&ids), db_array_text(&nums)};
    PGresult *r = NULL;
    cr_assert_eq(db_exec(conn,
                         "SELECT u.id::text, u.n + 1 FROM unnest($1::uuid[], $2::bigint[]) "
                         "WITH ORDINALITY u(id, n, i) ORDER BY i",
                         2, p, &r, NULL),
                 0);
    cr_assert_eq(PQntuples(r), 2);
    cr_assert_str_eq(PQgetvalue(r, 1, 0), "0190a5d2-7c4e-7000-8000-00000000000b");
    cr_assert_str_eq(PQgetvalue(r, 0, 1), "-41");
    cr_assert_str_eq(PQgetvalue(r, 1, 1), "9000000001");
    PQclear(r);
    db_array_cleanup(&ids);
    db_array_cleanup(&nums);
}

Test(array, limit_refuses_the_element_and_keeps_the_rest)
{
    struct db_array a;
    db_array_init(&a, 11); /* {"abc","de" is 11 bytes: no room left for the brace */
    cr_assert_eq(db_array_add(&a, "abc"), 0);
    cr_assert_eq(db_array_add(&a, "de"), SB_ELIMIT);
    cr_assert_eq(db_array_add(&a, "d"), 0); /* {"abc","d"} is 11 */
    cr_assert_eq(db_array_add(&a, NULL), SB_ELIMIT);
    PGresult *r = unnest_text(db_array_text(&a));
    cr_assert_eq(PQntuples(r), 2);
    cr_assert_str_eq(PQgetvalue(r, 0, 0), "abc");
    cr_assert_str_eq(PQgetvalue(r, 1, 0), "d");
    PQclear(r);
    db_array_cleanup(&a);
}

Test(array, exec_arrays_binds_first_then_each_column)
{
    struct db_array a[2];
    db_array_init(&a[0], 1024);
    db_array_init(&a[1], 1024);
    cr_assert_eq(db_array_add(&a[0], "x"), 0);
    cr_assert_eq(db_array_add(&a[0], "y"), 0);
    cr_assert_eq(db_array_add_long(&a[1], 1), 0);
    cr_assert_eq(db_array_add_long(&a[1], 2), 0);
    PGresult *r = NULL;
    cr_assert_eq(db_exec_arrays(conn,
                                "SELECT $1 || u.t || u.n FROM unnest($2::text[], $3::int[]) "
                                "WITH ORDINALITY u(t, n, i) ORDER BY i",
                                "k:", a, 2, &r, NULL),
                 0);
    cr_assert_eq(PQntuples(r), 2);
    cr_assert_str_eq(PQgetvalue(r, 0, 0), "k:x1");
    cr_assert_str_eq(PQgetvalue(r, 1, 0), "k:y2");
    PQclear(r);
    cr_assert_eq(db_exec_arrays(conn, "SELECT 1", "k", a, DB_ARRAY_PARAMS_MAX + 1, &r, NULL),
                 -EINVAL);
    cr_assert_null(r);
    db_array_cleanup(&a[0]);
    db_array_cleanup(&a[1]);
}
