/* test_bus.c - the connection pool (libs/bus/bus.c): health pings, AUTH and
 * SELECT, error replies, Redis down, stalled or restarted, dropped
 * connections, pool exhaustion and concurrent use. Uses SABIA_REDIS_URL and
 * private redis-server instances that the tests stop and restart. */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bus.h"
#include "testsupport.h"

/* ---------------------------------------------------------------- helpers */

static struct bus *open_bus(const char *url, int pool)
{
    int err = 0;
    struct bus *b = bus_new(url, pool, NULL, &err);
    cr_assert_not_null(b, "bus_new(%s): %s", url, sb_strerror(err));
    return b;
}

static void unique_key(char *out, size_t n, const char *what)
{
    char id[SB_UUID_STRLEN];
    cr_assert_eq(sb_uuid_v7_str(id), 0);
    snprintf(out, n, "test:bus:%s:%s", what, id);
}

/* Runs a command given as NUL-terminated words; asserts it ran. */
static redisReply *cmd(struct bus *b, int argc, const char **argv)
{
    redisReply *r = NULL;
    int rc = bus_command(b, argc, argv, NULL, &r);
    cr_assert_eq(rc, 0, "%s: %s", argv[0], sb_strerror(rc));
    cr_assert_not_null(r);
    return r;
}

static void del_key(struct bus *b, const char *key)
{
    const char *argv[] = {"DEL", key};
    freeReplyObject(cmd(b, 2, argv));
}

/* The shared test Redis URL with its password (and optionally user) replaced. */
static void url_with_auth(char *out, size_t n, const char *user, const char *password)
{
    struct bus_url u;
    cr_assert_eq(bus_url_parse(ts_env("SABIA_REDIS_URL"), &u), 0);
    cr_assert_not_null(u.host);
    if (password)
        snprintf(out, n, "redis://%s:%s@%s:%d/%d", user ? user : "", password, u.host, u.port,
                 u.db);
    else
        snprintf(out, n, "redis://%s:%d/%d", u.host, u.port, u.db);
    bus_url_cleanup(&u);
}

static void remove_redis_dir(struct ts_redis *r)
{
    static const char *const files[] = {"redis.log", "redis.pid", "dump.rdb", "redis.sock"};
    char path[320];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", r->dir, files[i]);
        unlink(path);
    }
    rmdir(r->dir);
}

static size_t count_substr(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* A logger writing into memory, to count outage lines. */
struct mem_log {
    char *buf;
    size_t len;
    FILE *f;
    struct sb_log *log;
};

static void mem_log_open(struct mem_log *m)
{
    m->buf = NULL;
    m->len = 0;
    m->f = open_memstream(&m->buf, &m->len);
    cr_assert_not_null(m->f);
    m->log = sb_log_new("test", SB_LOG_DEBUG, m->f);
    cr_assert_not_null(m->log);
}

static const char *mem_log_text(struct mem_log *m)
{
    fflush(m->f);
    return m->buf ? m->buf : "";
}

static void mem_log_close(struct mem_log *m)
{
    sb_log_free(m->log);
    fclose(m->f);
    free(m->buf);
}

/* ---------------------------------------------------------------- shared Redis */

Test(bus, ping_ok_and_connected_state, .timeout = 30)
{
    struct bus *b = open_bus(ts_env("SABIA_REDIS_URL"), 2);
    cr_assert_not(bus_connected(b), "connected before any use");
    cr_assert_eq(bus_ping(b, 1000), 0);
    cr_assert(bus_connected(b));
    cr_assert_eq(bus_ping(b, 1000), 0); /* reuses the connection */
    cr_assert_eq(bus_ping(b, 0), -EINVAL);
    bus_free(b);
}

Test(bus, wrong_password_is_auth_error, .timeout = 30)
{
    char url[600];
    url_with_auth(url, sizeof url, NULL, "definitely-not-the-password");
    struct bus *b = open_bus(url, 1);
    cr_assert_eq(bus_ping(b, 1000), SB_EAUTH);
    cr_assert_not(bus_connected(b));
    const char *argv[] = {"PING"};
    redisReply *r = (redisReply *)1;
    cr_assert_eq(bus_command(b, 1, argv, NULL, &r), SB_EAUTH);
    cr_assert_null(r);
    bus_free(b);

    url_with_auth(url, sizeof url, "no-such-user", "pw");
    b = open_bus(url, 1);
    cr_assert_eq(bus_ping(b, 1000), SB_EAUTH);
    bus_free(b);
}

Test(bus, acl_user_default_works, .timeout = 30)
{
    struct bus_url u;
    cr_assert_eq(bus_url_parse(ts_env("SABIA_REDIS_URL"), &u), 0);
    cr_assert_not_null(u.password, "SABIA_REDIS_URL is expected to carry a password");
    char url[600];
    url_with_auth(url, sizeof url, "default", u.password);
    bus_url_cleanup(&u);
    struct bus *b = open_bus(url, 1);
    cr_assert_eq(bus_ping(b, 1000), 0);
    bus_free(b);
}

Test(bus, missing_password_reports_noauth, .timeout = 30)
{
    char url[600];
    url_with_auth(url, sizeof url, NULL, NULL);
    struct bus *b = open_bus(url, 1);
    cr_assert_eq(bus_ping(b, 1000), SB_EAUTH);
    /* bus_command hands error replies to the caller. */
    const char *argv[] = {"GET", "x"};
    redisReply *r = cmd(b, 2, argv);
    cr_assert_eq(r->type, REDIS_REPLY_ERROR);
    cr_assert(strncmp(r->str, "NOAUTH", 6) == 0, "%s", r->str);
    freeReplyObject(r);
    bus_free(b);
}

Test(bus, error_reply_is_success, .timeout = 30)
{
    struct bus *b = open_bus(ts_env("SABIA_REDIS_URL"), 1);
    const char *argv[] = {"NO-SUCH-COMMAND", "x"};
    redisReply *r = cmd(b, 2, argv);
    cr_assert_eq(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    /* The connection is still fine afterwards. */
    cr_assert_eq(bus_ping(b, 1000), 0);
    const char *bad[] = {"PING"};
    cr_assert_eq(bus_command(b, 0, bad, NULL, &r), -EINVAL);
    cr_assert_eq(bus_command(b, 1, NULL, NULL, &r), -EINVAL);
    cr_assert_eq(bus_command_timeout(b, -1, 1, bad, NULL, &r), -EINVAL);
    bus_free(b);
}

Test(bus, binary_arguments, .timeout = 30)
{
    struct bus *b = open_bus(ts_env("SABIA_REDIS_URL"), 1);
    char key[128];
    unique_key(key, sizeof key, "bin");
    static const char value[] = {'a', '\0', 'b', '\xff', '\0'};
    const char *argv[] = {"SET", key, value};
    size_t lens[] = {3, strlen(key), sizeof value};
    redisReply *r = NULL;
    cr_assert_eq(bus_command(b, 3, argv, lens, &r), 0);
    cr_assert_eq(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    const char *get[] = {"GET", key};
    r = cmd(b, 2, get);
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_eq(r->len, sizeof value);
    cr_assert_eq(memcmp(r->str, value, sizeof value), 0);
    freeReplyObject(r);
    del_key(b, key);
    bus_free(b);
}

Test(bus, dropped_connection_reconnects, .timeout = 30)
{
    struct bus *b = open_bus(ts_env("SABIA_REDIS_URL"), 1);
    struct bus *killer = open_bus(ts_env("SABIA_REDIS_URL"), 1);
    const char *id_argv[] = {"CLIENT", "ID"};
    redisReply *r = cmd(b, 2, id_argv);
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER);
    char id[32];
    snprintf(id, sizeof id, "%lld", r->integer);
    freeReplyObject(r);
    const char *kill_argv[] = {"CLIENT", "KILL", "ID", id};
    r = cmd(killer, 4, kill_argv);
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER);
    cr_assert_eq(r->integer, 1);
    freeReplyObject(r);
    /* The broken connection fails one call, which drops it... */
    const char *ping[] = {"PING"};
    r = NULL;
    cr_assert_eq(bus_command(b, 1, ping, NULL, &r), SB_EUNAVAIL);
    cr_assert_null(r);
    /* ...and the next call runs on a new connection with a new id. */
    r = cmd(b, 2, id_argv);
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER);
    char id2[32];
    snprintf(id2, sizeof id2, "%lld", r->integer);
    freeReplyObject(r);
    cr_assert_str_neq(id, id2);
    cr_assert(bus_connected(b));
    bus_free(killer);
    bus_free(b);
}

struct incr_job {
    struct bus *b;
    const char *key;
    int n;
    int failures;
};

static void *incr_thread(void *arg)
{
    struct incr_job *j = arg;
    for (int i = 0; i < j->n; i++) {
        const char *argv[] = {"INCR", j->key};
        redisReply *r = NULL;
        if (bus_command(j->b, 2, argv, NULL, &r) != 0 || r->type != REDIS_REPLY_INTEGER)
            j->failures++;
        freeReplyObject(r);
        if (i % 50 == 0 && bus_ping(j->b, 2000) != 0)
            j->failures++;
    }
    return NULL;
}

Test(bus, concurrent_threads_share_pool, .timeout = 60)
{
    struct bus *b = open_bus(ts_env("SABIA_REDIS_URL"), 3);
    char key[128];
    unique_key(key, sizeof key, "incr");
    enum { THREADS = 8, PER_THREAD = 250 };
    pthread_t t[THREADS];
    struct incr_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (struct incr_job){.b = b, .key = key, .n = PER_THREAD};
        cr_assert_eq(pthread_create(&t[i], NULL, incr_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(jobs[i].failures, 0, "thread %d had %d failures", i, jobs[i].failures);
    }
    const char *get[] = {"GET", key};
    redisReply *r = cmd(b, 2, get);
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_eq(strtol(r->str, NULL, 10), THREADS * PER_THREAD);
    freeReplyObject(r);
    del_key(b, key);
    bus_free(b);
}

/* ---------------------------------------------------------------- Redis down or stalled */

Test(bus, ping_refused_port_fails_fast, .timeout = 30)
{
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ts_free_port());
    struct bus *b = open_bus(url, 1);
    int64_t t0 = sb_mono_ms();
    cr_assert_eq(bus_ping(b, 500), SB_EUNAVAIL);
    cr_assert_lt(sb_mono_ms() - t0, 600);
    cr_assert_not(bus_connected(b));
    const char *argv[] = {"PING"};
    redisReply *r = NULL;
    cr_assert_eq(bus_command(b, 1, argv, NULL, &r), SB_EUNAVAIL);
    cr_assert_null(r);
    bus_free(b);
}

Test(bus, ping_against_silent_server_times_out, .timeout = 30)
{
    /* A socket that listens but never answers: the kernel completes the
     * handshake, then nothing. bus_ping must still return on time. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 16), 0);
    socklen_t alen = sizeof a;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(a.sin_port));
    struct bus *b = open_bus(url, 1);
    for (int i = 0; i < 3; i++) {
        int64_t t0 = sb_mono_ms();
        int rc = bus_ping(b, 300);
        int64_t took = sb_mono_ms() - t0;
        cr_assert_eq(rc, -ETIMEDOUT, "rc %d (%s)", rc, sb_strerror(rc));
        cr_assert_geq(took, 250);
        cr_assert_lt(took, 900, "ping took %lld ms", (long long)took);
    }
    bus_free(b);
    close(fd);
}

Test(bus, reconnects_after_restart_and_logs_once, .timeout = 60)
{
    struct ts_redis srv = {0};
    ts_redis_start(&srv, 0);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", srv.port);
    struct mem_log ml;
    mem_log_open(&ml);
    struct bus *b = bus_new(url, 2, ml.log, NULL);
    cr_assert_not_null(b);
    const char *set[] = {"SET", "k", "v"};
    for (int outage = 1; outage <= 2; outage++) {
        cr_assert_eq(bus_ping(b, 1000), 0);
        freeReplyObject(cmd(b, 3, set));
        ts_redis_stop(&srv);
        for (int i = 0; i < 4; i++) {
            int64_t t0 = sb_mono_ms();
            int rc = bus_ping(b, 500);
            cr_assert_neq(rc, 0);
            cr_assert_lt(sb_mono_ms() - t0, 1000);
            redisReply *r = NULL;
            cr_assert_neq(bus_command(b, 3, set, NULL, &r), 0);
            cr_assert_null(r);
            cr_assert_not(bus_connected(b));
        }
        ts_redis_start(&srv, srv.port);
        /* Same bus, no re-creation: both health and commands recover. */
        cr_assert_eq(bus_ping(b, 1000), 0);
        cr_assert(bus_connected(b));
        const char *get[] = {"GET", "k"};
        redisReply *r = cmd(b, 2, get);
        cr_assert_eq(r->type, REDIS_REPLY_NIL); /* fresh server, no persistence */
        freeReplyObject(r);
        freeReplyObject(cmd(b, 3, set));
        const char *text = mem_log_text(&ml);
        cr_assert_eq(count_substr(text, "redis connection lost"), (size_t)outage, "%s", text);
        cr_assert_eq(count_substr(text, "redis connection restored"), (size_t)outage, "%s", text);
    }
    bus_free(b);
    mem_log_close(&ml);
    ts_redis_stop(&srv);
    remove_redis_dir(&srv);
}

Test(bus, stalled_redis_times_out_then_recovers, .timeout = 30)
{
    struct ts_redis srv = {0};
    ts_redis_start(&srv, 0);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", srv.port);
    struct bus *b = open_bus(url, 1);
    cr_assert_eq(bus_ping(b, 1000), 0);
    kill(srv.pid, SIGSTOP);
    int64_t t0 = sb_mono_ms();
    int rc = bus_ping(b, 300);
    int64_t took = sb_mono_ms() - t0;
    kill(srv.pid, SIGCONT);
    cr_assert_eq(rc, -ETIMEDOUT, "%s", sb_strerror(rc));
    cr_assert_lt(took, 900);
    cr_assert_eq(bus_ping(b, 1000), 0);
    bus_free(b);
    ts_redis_stop(&srv);
    remove_redis_dir(&srv);
}

struct blpop_job {
    struct bus *b;
    const char *key;
    int rc;
    redisReply *reply;
};

static void *blpop_thread(void *arg)
{
    struct blpop_job *j = arg;
    const char *argv[] = {"BLPOP", j->key, "8"};
    j->rc = bus_command_timeout(j->b, 10000, 3, argv, NULL, &j->reply);
    return NULL;
}

Test(bus, ping_not_blocked_by_busy_pool, .timeout = 40)
{
    struct ts_redis srv = {0};
    ts_redis_start(&srv, 0);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", srv.port);
    struct bus *b = open_bus(url, 1);
    struct bus *other = open_bus(url, 1);
    struct blpop_job job = {.b = b, .key = "list"};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, blpop_thread, &job), 0);
    /* Wait until the BLPOP is parked on the server. */
    for (int i = 0; i < 100; i++) {
        const char *info[] = {"INFO", "clients"};
        redisReply *r = cmd(other, 2, info);
        bool blocked = strstr(r->str, "blocked_clients:1") != NULL;
        freeReplyObject(r);
        if (blocked)
            break;
        usleep(20000);
    }
    /* The only pooled connection is busy; health still answers at once. */
    int64_t t0 = sb_mono_ms();
    cr_assert_eq(bus_ping(b, 500), 0);
    cr_assert_lt(sb_mono_ms() - t0, 400);
    /* An ordinary command waits for a free connection, then gives up. */
    const char *ping[] = {"PING"};
    redisReply *r = NULL;
    t0 = sb_mono_ms();
    cr_assert_eq(bus_command(b, 1, ping, NULL, &r), -ETIMEDOUT);
    int64_t took = sb_mono_ms() - t0;
    cr_assert_geq(took, BUS_COMMAND_TIMEOUT_MS - 100);
    cr_assert_lt(took, BUS_COMMAND_TIMEOUT_MS + 1000);
    /* Waking the blocked command frees the connection. */
    const char *push[] = {"RPUSH", "list", "x"};
    freeReplyObject(cmd(other, 3, push));
    pthread_join(t, NULL);
    cr_assert_eq(job.rc, 0);
    cr_assert_eq(job.reply->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(job.reply->elements, 2);
    cr_assert_str_eq(job.reply->element[1]->str, "x");
    freeReplyObject(job.reply);
    freeReplyObject(cmd(b, 1, ping));
    bus_free(other);
    bus_free(b);
    ts_redis_stop(&srv);
    remove_redis_dir(&srv);
}

Test(bus, select_database, .timeout = 30)
{
    struct ts_redis srv = {0};
    ts_redis_start(&srv, 0);
    char url0[64], url1[64], url_bad[64];
    snprintf(url0, sizeof url0, "redis://127.0.0.1:%d", srv.port);
    snprintf(url1, sizeof url1, "redis://127.0.0.1:%d/1", srv.port);
    snprintf(url_bad, sizeof url_bad, "redis://127.0.0.1:%d/%d", srv.port, BUS_DB_MAX);
    struct bus *b0 = open_bus(url0, 1), *b1 = open_bus(url1, 1);
    const char *set[] = {"SET", "only-in-1", "v"};
    const char *get[] = {"GET", "only-in-1"};
    freeReplyObject(cmd(b1, 3, set));
    redisReply *r = cmd(b0, 2, get);
    cr_assert_eq(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    r = cmd(b1, 2, get);
    cr_assert_str_eq(r->str, "v");
    freeReplyObject(r);
    /* A database index the server does not have is a configuration error. */
    struct bus *bad = open_bus(url_bad, 1);
    cr_assert_eq(bus_ping(bad, 1000), SB_ECONFIG);
    bus_free(bad);
    bus_free(b0);
    bus_free(b1);
    ts_redis_stop(&srv);
    remove_redis_dir(&srv);
}

Test(bus, unix_socket, .timeout = 30)
{
    struct ts_redis srv = {0};
    snprintf(srv.dir, sizeof srv.dir, "/tmp/bus-unix-%d-XXXXXX", (int)getpid());
    cr_assert_not_null(mkdtemp(srv.dir));
    char sock[300], logpath[300], url[400];
    snprintf(sock, sizeof sock, "%s/redis.sock", srv.dir);
    snprintf(logpath, sizeof logpath, "%s/redis.log", srv.dir);
    char *argv[] = {"redis-server", "--port", "0",     "--unixsocket", sock, "--save", "",
                    "--appendonly", "no",     "--dir", srv.dir,        NULL};
    srv.pid = ts_spawn(argv, NULL, logpath);
    snprintf(url, sizeof url, "unix://%s?db=2", sock);
    struct bus *b = open_bus(url, 1);
    int rc = -1;
    for (int i = 0; i < 250 && rc != 0; i++) {
        rc = bus_ping(b, 200);
        if (rc != 0)
            usleep(20000);
    }
    cr_assert_eq(rc, 0, "%s", sb_strerror(rc));
    const char *client[] = {"CLIENT", "INFO"};
    redisReply *r = cmd(b, 2, client);
    cr_assert(strstr(r->str, " db=2 ") != NULL, "%s", r->str);
    freeReplyObject(r);
    bus_free(b);
    ts_redis_stop(&srv);
    remove_redis_dir(&srv);
}
