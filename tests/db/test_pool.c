/* test_pool.c - the connection pool: lazy connects and reuse, exhaustion and
 * wake-ups, health checks against a live, a refusing and a silent server,
 * recovery from killed connections, bad conninfo, many threads at once. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "db.h"
#include "testsupport.h"

static struct db_pool *app_pool(int size)
{
    struct db_pool *p = db_pool_new(ts_env("SABIA_DATABASE_URL"), size, "db-pool-test", NULL);
    cr_assert_not_null(p);
    return p;
}

static struct db_pool *pool_at_port(int port)
{
    char ci[256];
    snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d dbname=none user=none password=x", port);
    struct db_pool *p = db_pool_new(ci, 2, NULL, NULL);
    cr_assert_not_null(p);
    return p;
}

static long backend_pid(PGconn *c)
{
    PGresult *r = NULL;
    cr_assert_eq(db_exec(c, "SELECT pg_backend_pid()", 0, NULL, &r, NULL), 0);
    long pid = 0;
    cr_assert_eq(db_value_long(r, 0, 0, &pid), 0);
    PQclear(r);
    return pid;
}

/* Ends backend `pid` from a separate connection of the same role. */
static void kill_backend(long pid)
{
    struct db_pool *killer = app_pool(1);
    PGconn *k = NULL;
    cr_assert_eq(db_acquire(killer, 5000, &k), 0);
    char spid[32];
    snprintf(spid, sizeof(spid), "%ld", pid);
    const char *params[1] = {spid};
    PGresult *r = NULL;
    cr_assert_eq(db_exec(k, "SELECT pg_terminate_backend($1::int)", 1, params, &r, NULL), 0);
    cr_assert_str_eq(db_value(r, 0, 0), "t");
    PQclear(r);
    db_release(killer, k);
    db_pool_free(killer);
    usleep(100 * 1000); /* let the backend go */
}

Test(pool, bad_arguments_give_null, .timeout = 10)
{
    cr_assert_null(db_pool_new("host=127.0.0.1 no_such_option=1", 1, NULL, NULL));
    cr_assert_null(db_pool_new("postgresql://[broken", 1, NULL, NULL));
    cr_assert_null(db_pool_new("host='unterminated", 1, NULL, NULL));
    cr_assert_null(db_pool_new(NULL, 1, NULL, NULL));
    cr_assert_null(db_pool_new("host=127.0.0.1", 0, NULL, NULL));
    cr_assert_null(db_pool_new("host=127.0.0.1", DB_POOL_MAX_SIZE + 1, NULL, NULL));
    db_pool_free(NULL);
    db_release(NULL, NULL);
    PGconn *c = (PGconn *)1;
    cr_assert_eq(db_acquire(NULL, 10, &c), -EINVAL);
    cr_assert_eq(db_ping(NULL, 10), -EINVAL);
}

Test(pool, acquire_release_reuses_the_connection, .timeout = 20)
{
    struct db_pool *p = app_pool(2);
    PGconn *c = NULL;
    cr_assert_eq(db_acquire(p, 5000, &c), 0);
    cr_assert_not_null(c);
    cr_assert_eq(PQstatus(c), CONNECTION_OK);

    PGresult *r = NULL;
    cr_assert_eq(db_exec(c, "SELECT current_setting('application_name')", 0, NULL, &r, NULL), 0);
    cr_assert_str_eq(db_value(r, 0, 0), "db-pool-test");
    PQclear(r);

    /* connect_timeout=2 was added to a conninfo that had none. */
    bool found = false;
    PQconninfoOption *opts = PQconninfo(c);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (strcmp(o->keyword, "connect_timeout") == 0) {
            cr_assert_str_eq(o->val, "2");
            found = true;
        }
    }
    PQconninfoFree(opts);
    cr_assert(found);

    long pid = backend_pid(c);
    db_release(p, c);
    PGconn *again = NULL;
    cr_assert_eq(db_acquire(p, 5000, &again), 0);
    cr_assert_eq(again, c, "an idle open connection is reused before opening a new one");
    cr_assert_eq(backend_pid(again), pid);
    db_release(p, again);
    db_pool_free(p);
}

Test(pool, exhaustion_times_out, .timeout = 20)
{
    struct db_pool *p = app_pool(1);
    PGconn *c = NULL, *d = NULL;
    cr_assert_eq(db_acquire(p, 5000, &c), 0);

    int64_t t0 = sb_mono_ms();
    cr_assert_eq(db_acquire(p, 300, &d), -ETIMEDOUT);
    int64_t took = sb_mono_ms() - t0;
    cr_assert(took >= 290 && took < 1500, "waited %lld ms", (long long)took);
    cr_assert_null(d);

    t0 = sb_mono_ms();
    cr_assert_eq(db_acquire(p, 0, &d), -ETIMEDOUT);
    cr_assert(sb_mono_ms() - t0 < 100);
    cr_assert_eq(db_acquire(p, -1, &d), -EINVAL);

    db_release(p, c);
    cr_assert_eq(db_acquire(p, 0, &d), 0, "a free open connection needs no waiting");
    db_release(p, d);
    db_pool_free(p);
}

struct delayed_release {
    struct db_pool *p;
    PGconn *c;
};

static void *release_later(void *arg)
{
    struct delayed_release *dr = arg;
    usleep(200 * 1000);
    db_release(dr->p, dr->c);
    return NULL;
}

Test(pool, waiter_wakes_when_released, .timeout = 20)
{
    struct db_pool *p = app_pool(1);
    struct delayed_release dr = {.p = p};
    cr_assert_eq(db_acquire(p, 5000, &dr.c), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, release_later, &dr), 0);
    int64_t t0 = sb_mono_ms();
    PGconn *c = NULL;
    cr_assert_eq(db_acquire(p, 5000, &c), 0);
    int64_t took = sb_mono_ms() - t0;
    cr_assert(took >= 150 && took < 2000, "woke after %lld ms", (long long)took);
    cr_assert_eq(c, dr.c);
    pthread_join(t, NULL);
    db_release(p, c);
    db_pool_free(p);
}

Test(pool, ping_ok, .timeout = 20)
{
    struct db_pool *p = app_pool(1);
    cr_assert_eq(db_ping(p, 2000), 0);
    cr_assert_eq(db_ping(p, 2000), 0);
    db_pool_free(p);
}

Test(pool, ping_fails_fast_when_nothing_listens, .timeout = 20)
{
    struct db_pool *p = pool_at_port(ts_free_port());
    int64_t t0 = sb_mono_ms();
    cr_assert_eq(db_ping(p, 10000), SB_EUNAVAIL);
    cr_assert(sb_mono_ms() - t0 < 3000);
    PGconn *c = (PGconn *)1;
    t0 = sb_mono_ms();
    cr_assert_eq(db_acquire(p, 10000, &c), SB_EUNAVAIL);
    cr_assert_null(c);
    cr_assert(sb_mono_ms() - t0 < 3000);
    db_pool_free(p);
}

/* A socket that completes TCP handshakes but never says a word. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(fd, 16), 0);
    socklen_t len = sizeof(a);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

Test(pool, ping_bounded_when_server_is_silent, .timeout = 20)
{
    int port = 0;
    int fd = silent_listener(&port);
    struct db_pool *p = pool_at_port(port);

    int64_t t0 = sb_mono_ms();
    cr_assert_eq(db_ping(p, 400), -ETIMEDOUT);
    int64_t took = sb_mono_ms() - t0;
    cr_assert(took >= 350 && took < 1500, "took %lld ms", (long long)took);

    /* With a long deadline, the added connect_timeout=2 still cuts it short. */
    t0 = sb_mono_ms();
    cr_assert_lt(db_ping(p, 20000), 0);
    took = sb_mono_ms() - t0;
    cr_assert(took >= 1800 && took < 3500, "took %lld ms", (long long)took);
    db_pool_free(p);
    close(fd);
}

Test(pool, killed_connection_is_replaced, .timeout = 20)
{
    struct db_pool *p = app_pool(1);
    PGconn *c = NULL;
    cr_assert_eq(db_acquire(p, 5000, &c), 0);
    long pid = backend_pid(c);
    db_release(p, c);
    kill_backend(pid);

    /* The pooled connection still looks fine to libpq: ping finds out and retries. */
    cr_assert_eq(db_ping(p, 5000), 0);
    cr_assert_eq(db_acquire(p, 5000, &c), 0);
    cr_assert_neq(backend_pid(c), pid);

    /* A statement on a dead connection says the database is unavailable. */
    long pid2 = backend_pid(c);
    db_release(p, c);
    kill_backend(pid2);
    cr_assert_eq(db_acquire(p, 5000, &c), 0);
    struct sb_buf err;
    sb_buf_init(&err, 1024);
    cr_assert_eq(db_exec(c, "SELECT 1", 0, NULL, NULL, &err), SB_EUNAVAIL);
    cr_assert_gt(err.len, 0);
    db_release(p, c); /* broken: closed, the slot reconnects next time */
    cr_assert_eq(db_acquire(p, 5000, &c), 0);
    cr_assert_eq(db_exec(c, "SELECT 1", 0, NULL, NULL, NULL), 0);
    db_release(p, c);
    sb_buf_cleanup(&err);
    db_pool_free(p);
}

Test(pool, foreign_connection_is_not_taken, .timeout = 20)
{
    struct db_pool *p = app_pool(1);
    PGconn *own = PQconnectdb(ts_env("SABIA_DATABASE_URL"));
    cr_assert_eq(PQstatus(own), CONNECTION_OK);
    db_release(p, own); /* not from this pool: ignored */
    cr_assert_eq(PQstatus(own), CONNECTION_OK);
    PQfinish(own);
    cr_assert_eq(db_ping(p, 2000), 0);
    db_pool_free(p);
}

#define THREADS 12
#define ROUNDS  40

struct worker {
    struct db_pool *p;
    int id;
    int ok;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        PGconn *c = NULL;
        if (db_acquire(w->p, 10000, &c) != 0)
            continue;
        char a[16], b[16], want[16];
        snprintf(a, sizeof(a), "%d", w->id);
        snprintf(b, sizeof(b), "%d", i);
        snprintf(want, sizeof(want), "%d", w->id * 1000 + i);
        const char *params[2] = {a, b};
        PGresult *r = NULL;
        if (db_exec(c, "SELECT $1::int * 1000 + $2::int", 2, params, &r, NULL) == 0 &&
            strcmp(db_value(r, 0, 0), want) == 0)
            w->ok++;
        PQclear(r);
        db_release(w->p, c);
    }
    return NULL;
}

Test(pool, many_threads_share_a_small_pool, .timeout = 60)
{
    char app[64];
    snprintf(app, sizeof(app), "db-pool-threads-%d", (int)getpid());
    struct db_pool *p = db_pool_new(ts_env("SABIA_DATABASE_URL"), 4, app, NULL);
    cr_assert_not_null(p);
    pthread_t t[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.p = p, .id = i + 1};
        cr_assert_eq(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(w[i].ok, ROUNDS, "worker %d: %d/%d", i, w[i].ok, ROUNDS);
    }
    /* The pool never opened more than its size. */
    PGconn *c[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(db_acquire(p, 1000, &c[i]), 0);
    const char *params[1] = {app};
    PGresult *r = NULL;
    cr_assert_eq(db_exec(c[0], "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                         1, params, &r, NULL),
                 0);
    long n = 0;
    cr_assert_eq(db_value_long(r, 0, 0, &n), 0);
    cr_assert_eq(n, 4);
    PQclear(r);
    PGconn *extra = NULL;
    cr_assert_eq(db_acquire(p, 50, &extra), -ETIMEDOUT);
    for (int i = 0; i < 4; i++)
        db_release(p, c[i]);
    db_pool_free(p);
}
