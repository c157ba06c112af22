/* test_migrate.c - the migrations runner, each test on a throw-away database
 * (mig_<random>, created and dropped by the owner role): ordering, re-runs,
 * atomic failure, changed files, bad names and limits, concurrent runners,
 * and the repository's own migrations/ directory. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "db.h"
#include "testsupport.h"

static char dbname[64];   /* mig_<random> */
static char *db_conninfo; /* owner role on dbname */
static char tmpdir[256];  /* the test's migrations directory */

/* Runs `sql` as the owner on database `db`; returns the first field as a
 * heap string ("" when there is no row, "<null>" for SQL NULL). */
static char *query_on(const char *db, const char *sql)
{
    char *ci = ts_owner_conninfo(db);
    struct db_pool *p = db_pool_new(ci, 1, "db-migrate-test", NULL);
    free(ci);
    cr_assert_not_null(p);
    PGconn *c = NULL;
    cr_assert_eq(db_acquire(p, 5000, &c), 0);
    struct sb_buf err;
    sb_buf_init(&err, 1024);
    PGresult *r = NULL;
    int rc = db_exec(c, sql, 0, NULL, &r, &err);
    cr_assert_eq(rc, 0, "%s: %s", sql, err.data ? err.data : "");
    const char *v = PQntuples(r) > 0 ? db_value(r, 0, 0) : "";
    char *out = strdup(v ? v : "<null>");
    PQclear(r);
    sb_buf_cleanup(&err);
    db_release(p, c);
    db_pool_free(p);
    return out;
}

static long query_long(const char *sql)
{
    char *v = query_on(dbname, sql);
    long n = -1;
    cr_assert_eq(sb_parse_long(v, -1, 1000000, &n), 0, "%s gave %s", sql, v);
    free(v);
    return n;
}

static void write_file(const char *name, const char *content)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(content, 1, strlen(content), f), strlen(content));
    cr_assert_eq(fclose(f), 0);
}

static void setup(void)
{
    unsigned char rnd[6];
    cr_assert_eq(getrandom(rnd, sizeof(rnd), 0), (ssize_t)sizeof(rnd));
    snprintf(dbname, sizeof(dbname), "mig_%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5]);
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
    free(query_on("postgres", sql));
    db_conninfo = ts_owner_conninfo(dbname);
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/sabia-mig-XXXXXX", base && base[0] ? base : "/tmp");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] != '.')
                unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
        rmdir(tmpdir);
    }
    free(db_conninfo);
    db_conninfo = NULL;
    if (dbname[0]) {
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
        free(query_on("postgres", sql));
    }
}

TestSuite(migrate, .init = setup, .fini = teardown, .timeout = 60);

static int run(struct sb_buf *report, struct sb_buf *err)
{
    return db_migrate(db_conninfo, tmpdir, NULL, report, err);
}

Test(migrate, applies_in_order_once)
{
    write_file("0002_fill.sql", "INSERT INTO m1 VALUES (1);\nCREATE TABLE m2 (y int);\n");
    write_file("0001_create.sql", "-- first\nCREATE TABLE m1 (x int);\n");
    write_file("0010_alter.sql", "ALTER TABLE m2 ADD COLUMN z text; INSERT INTO m1 VALUES (2);");
    write_file("README.md", "not a migration");
    struct sb_buf report, err;
    sb_buf_init(&report, 4096);
    sb_buf_init(&err, 1024);
    int rc = run(&report, &err);
    cr_assert_eq(rc, 3, "rc %d: %s", rc, err.data ? err.data : "");
    const char *a = strstr(report.data, "0001_create.sql"),
               *b = strstr(report.data, "0002_fill.sql");
    const char *c = strstr(report.data, "0010_alter.sql");
    cr_assert(a && b && c && a < b && b < c, "report: %s", report.data);
    cr_assert_eq(query_long("SELECT count(*) FROM m1"), 2);
    cr_assert_eq(query_long("SELECT count(*) FROM schema_migrations"), 3);
    char *v = query_on(dbname, "SELECT string_agg(version || ':' || name, ',' ORDER BY version)"
                               " FROM schema_migrations");
    cr_assert_str_eq(v, "0001:0001_create.sql,0002:0002_fill.sql,0010:0010_alter.sql");
    free(v);
    /* The recorded checksum is the SHA-256 of the file, as the server computes it. */
    v = query_on(dbname, "SELECT checksum = encode(sha256(convert_to("
                         "'-- first' || chr(10) || 'CREATE TABLE m1 (x int);' || chr(10), 'UTF8')),"
                         " 'hex') FROM schema_migrations WHERE version = '0001'");
    cr_assert_str_eq(v, "t");
    free(v);

    sb_buf_reset(&report);
    cr_assert_eq(run(&report, &err), 0, "re-run is a no-op");
    cr_assert_eq(report.len, 0);
    cr_assert_eq(query_long("SELECT count(*) FROM m1"), 2);
    sb_buf_cleanup(&report);
    sb_buf_cleanup(&err);
}

Test(migrate, failing_file_leaves_nothing_behind)
{
    write_file("0001_ok.sql", "CREATE TABLE m1 (x int);");
    write_file("0002_bad.sql", "CREATE TABLE m3 (x int);\nINSERT INTO nope VALUES (1);\n");
    write_file("0003_later.sql", "CREATE TABLE m4 (x int);");
    struct sb_buf err;
    sb_buf_init(&err, 1024);
    cr_assert_eq(run(NULL, &err), SB_EDB);
    cr_assert_not_null(strstr(err.data, "0002_bad.sql"), "err: %s", err.data);
    cr_assert_not_null(strstr(err.data, "nope"), "server reason included: %s", err.data);
    char *v = query_on(dbname, "SELECT string_agg(version, ',') FROM schema_migrations");
    cr_assert_str_eq(v, "0001");
    free(v);
    v = query_on(dbname, "SELECT coalesce(to_regclass('m3')::text, 'none') || ','"
                         " || coalesce(to_regclass('m4')::text, 'none') || ','"
                         " || coalesce(to_regclass('m1')::text, 'none')");
    cr_assert_str_eq(v, "none,none,m1", "the failed file's first statement was rolled back");
    free(v);

    write_file("0002_bad.sql", "CREATE TABLE m3 (x int);");
    cr_assert_eq(run(NULL, &err), 2, "fixed: %s", err.data);
    sb_buf_cleanup(&err);
}

Test(migrate, changed_file_is_refused)
{
    write_file("0001_a.sql", "CREATE TABLE m1 (x int);");
    write_file("0002_b.sql", "CREATE TABLE m2 (x int);");
    struct sb_buf err;
    sb_buf_init(&err, 1024);
    cr_assert_eq(run(NULL, &err), 2);
    write_file("0001_a.sql", "CREATE TABLE m1 (x bigint);");
    write_file("0003_c.sql", "CREATE TABLE m3 (x int);");
    cr_assert_eq(run(NULL, &err), SB_ECONFLICT);
    cr_assert_not_null(strstr(err.data, "0001_a.sql"), "err: %s", err.data);
    cr_assert_eq(query_long("SELECT count(*) FROM schema_migrations"), 2, "nothing applied");

    write_file("0001_a.sql", "CREATE TABLE m1 (x int);");
    cr_assert_eq(run(NULL, &err), 1, "restored: %s", err.data);
    sb_buf_cleanup(&err);
}

Test(migrate, bad_directories_and_names)
{
    struct sb_buf err;
    sb_buf_init(&err, 1024);
    cr_assert_eq(db_migrate(db_conninfo, "/nonexistent/sabia", NULL, NULL, &err), -ENOENT);
    cr_assert_not_null(strstr(err.data, "/nonexistent/sabia"));

    cr_assert_eq(run(NULL, &err), 0, "an empty directory applies nothing");

    write_file("0001_ok.sql", "CREATE TABLE m1 (x int);");
    const char *bad[] = {"abc.sql", "0002_.sql", "0002_a b.sql", "_0002.sql", "0002-x.sql"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(bad[i], "SELECT 1;");
        cr_assert_eq(run(NULL, &err), SB_EPARSE, "%s", bad[i]);
        cr_assert_not_null(strstr(err.data, bad[i]), "err: %s", err.data);
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", tmpdir, bad[i]);
        unlink(path);
    }
    write_file("0001_twin.sql", "SELECT 1;");
    cr_assert_eq(run(NULL, &err), SB_ECONFLICT);
    cr_assert_not_null(strstr(err.data, "0001_twin.sql"), "err: %s", err.data);
    char path[512];
    snprintf(path, sizeof(path), "%s/0001_twin.sql", tmpdir);
    unlink(path);
    cr_assert_eq(query_long("SELECT count(*) FROM pg_tables WHERE tablename = 'm1'"), 0);
    cr_assert_eq(run(NULL, &err), 1);
    sb_buf_cleanup(&err);
}

Test(migrate, oversized_file_is_refused)
{
    size_t n = DB_MIGRATE_MAX_FILE_BYTES + 1;
    char *big = malloc(n + 1);
    cr_assert_not_null(big);
    memset(big, ' ', n);
    big[n] = '\0';
    write_file("0001_big.sql", big);
    free(big);
    struct sb_buf err;
    sb_buf_init(&err, 1024);
    cr_assert_eq(run(NULL, &err), SB_ELIMIT);
    cr_assert_not_null(strstr(err.data, "0001_big.sql"));
    sb_buf_cleanup(&err);
}

Test(migrate, transaction_control_in_a_file_is_an_error)
{
    write_file("0001_commit.sql", "CREATE TABLE m1 (x int); COMMIT;");
    struct sb_buf err;
    sb_buf_init(&err, 1024);
    cr_assert_lt(run(NULL, &err), 0);
    cr_assert_not_null(strstr(err.data, "0001_commit.sql"), "err: %s", err.data);
    cr_assert_eq(query_long("SELECT count(*) FROM schema_migrations"), 0);
    sb_buf_cleanup(&err);
}

Test(migrate, unreachable_database_fails_fast)
{
    write_file("0001_ok.sql", "SELECT 1;");
    char ci[128];
    snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d dbname=x user=x", ts_free_port());
    struct sb_buf err;
    sb_buf_init(&err, 1024);
    int64_t t0 = sb_mono_ms();
    cr_assert_eq(db_migrate(ci, tmpdir, NULL, NULL, &err), SB_EUNAVAIL);
    cr_assert(sb_mono_ms() - t0 < 3000);
    cr_assert_gt(err.len, 0);
    cr_assert_lt(db_migrate("host='broken", tmpdir, NULL, NULL, &err), 0);
    cr_assert_eq(db_migrate(NULL, tmpdir, NULL, NULL, &err), -EINVAL);
    sb_buf_cleanup(&err);
}

struct runner {
    int rc;
    char err[256];
};

static void *run_thread(void *arg)
{
    struct runner *r = arg;
    struct sb_buf err;
    sb_buf_init(&err, 1024);
    r->rc = run(NULL, &err);
    snprintf(r->err, sizeof(r->err), "%s", err.data ? err.data : "");
    sb_buf_cleanup(&err);
    return NULL;
}

Test(migrate, concurrent_runners_apply_each_file_once)
{
    char name[64], sql[128];
    for (int i = 1; i <= 5; i++) {
        snprintf(name, sizeof(name), "%04d_step.sql", i);
        snprintf(sql, sizeof(sql), "CREATE TABLE c%d (x int); SELECT pg_sleep(0.05);", i);
        write_file(name, sql);
    }
    pthread_t t[2];
    struct runner r[2] = {0};
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, run_thread, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    cr_assert_geq(r[0].rc, 0, "%s", r[0].err);
    cr_assert_geq(r[1].rc, 0, "%s", r[1].err);
    cr_assert_eq(r[0].rc + r[1].rc, 5);
    cr_assert_eq(query_long("SELECT count(*) FROM schema_migrations"), 5);
}

Test(migrate, repository_migrations_apply_and_rerun_cleanly)
{
    char *dir = ts_source_path("migrations");
    struct sb_buf report, err;
    sb_buf_init(&report, 64 * 1024);
    sb_buf_init(&err, 4096);
    int rc = db_migrate(db_conninfo, dir, NULL, &report, &err);
    cr_assert_geq(rc, 1, "%s: rc %d: %s", dir, rc, err.data ? err.data : "");
    cr_assert_eq(query_long("SELECT count(*) FROM schema_migrations"), rc);
    sb_buf_reset(&report);
    cr_assert_eq(db_migrate(db_conninfo, dir, NULL, &report, &err), 0, "%s", err.data);
    cr_assert_eq(report.len, 0);
    sb_buf_cleanup(&report);
    sb_buf_cleanup(&err);
    free(dir);
}
