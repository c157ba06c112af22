/* bus.c - the Redis connection pool behind struct bus: checkout with a
 * deadline, lazy (re)connection with AUTH and SELECT, per-command socket
 * timeouts, outage tracking that logs once per outage, bus_ping() on a
 * reserved connection and the generic bus_command(). */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus.h"

/* One slot of the pool. `ctx` and `timeout_ms` belong to whoever checked the
 * slot out; `busy` is guarded by bus.mu. */
struct bus_conn {
    redisContext *ctx; /* NULL: connect on next use */
    unsigned gen;      /* bus.gen when ctx was connected */
    int timeout_ms;    /* socket timeout currently set on ctx, -1 unknown */
    bool busy;
};

enum bus_state { BUS_STATE_UNKNOWN, BUS_STATE_UP, BUS_STATE_DOWN };

struct bus {
    struct bus_url url;
    char where[BUS_HOST_MAX_BYTES + 16]; /* "host:port" or the socket path, for logs */
    struct sb_log *log;
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* a command connection was returned */
    pthread_cond_t health_cv; /* the health connection was returned */
    /* Guarded by mu: */
    enum bus_state state;
    unsigned gen;         /* bumped at the start of every outage */
    int64_t last_fail_ms; /* monotonic time of the last failed connect */
    int last_fail_rc;     /* and its code, repeated by commands failing fast */
    size_t npool;         /* conns[0..npool) serve commands, conns[npool] bus_ping */
    struct bus_conn conns[];
};

/* ---------------------------------------------------------------- outages */

/* Records a connection-level failure: `connected` when an established
 * connection (made in generation conn_gen) broke, false when connecting or
 * the handshake failed. A failure of a connection made before the current
 * outage began is already accounted for and stays silent. A new failure bumps
 * the generation, so idle connections made before it are dropped rather than
 * handed to callers. */
static void bus_note_failure(struct bus *b, bool connected, unsigned conn_gen, int rc,
                             const char *why)
{
    pthread_mutex_lock(&b->mu);
    if (!connected) {
        b->last_fail_ms = sb_mono_ms();
        b->last_fail_rc = rc;
    }
    if (!connected || conn_gen == b->gen) {
        b->gen++;
        if (b->state != BUS_STATE_DOWN) {
            b->state = BUS_STATE_DOWN;
            sb_log_warn(b->log, NULL, "redis connection lost (%s): %s", b->where, why);
        }
    }
    pthread_mutex_unlock(&b->mu);
}

/* Records a successful connect; returns the generation the context belongs to. */
static unsigned bus_note_success(struct bus *b)
{
    pthread_mutex_lock(&b->mu);
    if (b->state == BUS_STATE_DOWN)
        sb_log_info(b->log, NULL, "redis connection restored (%s)", b->where);
    b->state = BUS_STATE_UP;
    unsigned gen = b->gen;
    pthread_mutex_unlock(&b->mu);
    return gen;
}

bool bus_connected(struct bus *b)
{
    pthread_mutex_lock(&b->mu);
    bool up = b->state == BUS_STATE_UP;
    pthread_mutex_unlock(&b->mu);
    return up;
}

struct sb_log *bus_log(struct bus *b)
{
    return b->log;
}

/* ---------------------------------------------------------------- pool */

static void bus_deadline_ts(int64_t deadline_ms, struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    int64_t left = deadline_ms - sb_mono_ms();
    if (left < 0)
        left = 0;
    ts->tv_sec += (time_t)(left / 1000);
    ts->tv_nsec += (long)(left % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Picks an idle slot (the health slot when `health`), preferring one that is
 * already connected, and marks it busy. Idle connections from before the
 * current outage are freed here so they never fail a caller. When Redis is
 * known down and was tried moments ago, ordinary commands fail fast. */
static int bus_checkout(struct bus *b, bool health, int64_t deadline_ms, struct bus_conn **out)
{
    size_t lo = health ? b->npool : 0, hi = health ? b->npool + 1 : b->npool;
    int rc = 0;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        struct bus_conn *pick = NULL;
        for (size_t i = lo; i < hi; i++) {
            struct bus_conn *c = &b->conns[i];
            if (c->busy)
                continue;
            if (c->ctx && c->gen != b->gen) {
                redisFree(c->ctx);
                c->ctx = NULL;
            }
            if (!pick || (c->ctx && !pick->ctx))
                pick = c;
        }
        if (pick && !health && !pick->ctx && b->state == BUS_STATE_DOWN &&
            sb_mono_ms() - b->last_fail_ms < BUS_RETRY_INTERVAL_MS) {
            rc = b->last_fail_rc;
            break;
        }
        if (pick) {
            pick->busy = true;
            *out = pick;
            break;
        }
        struct timespec ts;
        bus_deadline_ts(deadline_ms, &ts);
        if (sb_mono_ms() >= deadline_ms ||
            pthread_cond_timedwait(health ? &b->health_cv : &b->cv, &b->mu, &ts) == ETIMEDOUT) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

static void bus_checkin(struct bus *b, struct bus_conn *c)
{
    pthread_mutex_lock(&b->mu);
    c->busy = false;
    /* One connection came back: wake one waiter of its kind, not all of them. */
    pthread_cond_signal(c == &b->conns[b->npool] ? &b->health_cv : &b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* ---------------------------------------------------------------- I/O */

static int bus_set_timeout(struct bus_conn *c, int timeout_ms)
{
    if (c->timeout_ms == timeout_ms)
        return 0;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    if (redisSetTimeout(c->ctx, tv) != REDIS_OK)
        return SB_EUNAVAIL;
    c->timeout_ms = timeout_ms;
    return 0;
}

/* Maps a failed context to a code; `saved_errno` is errno right after the call. */
static int bus_ctx_error(const redisContext *ctx, int saved_errno)
{
    switch (ctx->err) {
    case REDIS_ERR_OOM:
        return -ENOMEM;
    case REDIS_ERR_PROTOCOL:
        return SB_EREDIS;
    case REDIS_ERR_IO:
        if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == ETIMEDOUT)
            return -ETIMEDOUT;
        return SB_EUNAVAIL;
    default:
        return SB_EUNAVAIL;
    }
}

/* Writes to a peer that went away must not kill the process: SIGPIPE is
 * blocked around I/O, and one raised meanwhile is consumed before unblocking. */
static void sigpipe_block(sigset_t *old)
{
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, old);
}

static void sigpipe_restore(const sigset_t *old, bool failed)
{
    if (failed && !sigismember(old, SIGPIPE)) {
        sigset_t pending, pipe_set;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
            struct timespec zero = {0, 0};
            (void)sigtimedwait(&pipe_set, NULL, &zero);
        }
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* Runs one command on c->ctx with SIGPIPE blocked. NULL on failure. */
static redisReply *bus_call(struct bus_conn *c, int argc, const char **argv, const size_t *argvlen,
                            int *saved_errno)
{
    sigset_t old;
    sigpipe_block(&old);
    errno = 0;
    redisReply *r = redisCommandArgv(c->ctx, argc, argv, argvlen);
    *saved_errno = errno;
    sigpipe_restore(&old, r == NULL);
    return r;
}

/* Frees c->ctx after a failure, reports it and returns `rc`. `why` may be
 * NULL (then the context's error text is used). */
static int bus_drop(struct bus *b, struct bus_conn *c, int rc, bool connected, const char *why)
{
    char text[160];
    snprintf(text, sizeof text, "%s", why ? why : c->ctx->err ? c->ctx->errstr : sb_strerror(rc));
    unsigned gen = c->gen;
    redisFree(c->ctx);
    c->ctx = NULL;
    bus_note_failure(b, connected, gen, rc, text);
    return rc;
}

/* AUTH and SELECT on a fresh connection. Error replies end the attempt. */
static int bus_handshake(struct bus *b, struct bus_conn *c)
{
    const struct bus_url *u = &b->url;
    char dbstr[16];
    const char *argv[3];
    int argc = 0, err = 0;
    for (int step = 0; step < 2; step++) {
        if (step == 0 && u->password) {
            argv[argc++] = "AUTH";
            if (u->user)
                argv[argc++] = u->user;
            argv[argc++] = u->password;
        } else if (step == 1 && u->db != 0) {
            snprintf(dbstr, sizeof dbstr, "%d", u->db);
            argv[argc++] = "SELECT";
            argv[argc++] = dbstr;
        } else {
            continue;
        }
        redisReply *r = bus_call(c, argc, argv, NULL, &err);
        argc = 0;
        if (!r)
            return bus_drop(b, c, bus_ctx_error(c->ctx, err), false, NULL);
        bool ok = r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (!ok && step == 0)
            return bus_drop(b, c, SB_EAUTH, false, "authentication refused");
        if (!ok)
            return bus_drop(b, c, SB_ECONFIG, false, "SELECT refused");
    }
    return 0;
}

/* Makes sure c->ctx is a live, authenticated connection, connecting within
 * what is left until deadline_ms. */
static int bus_connect(struct bus *b, struct bus_conn *c, int64_t deadline_ms)
{
    if (c->ctx)
        return 0;
    int64_t left = deadline_ms - sb_mono_ms();
    if (left <= 0)
        return -ETIMEDOUT;
    int64_t ct = left < BUS_CONNECT_TIMEOUT_MS ? left : BUS_CONNECT_TIMEOUT_MS;
    struct timeval tv = {.tv_sec = (time_t)(ct / 1000), .tv_usec = (suseconds_t)(ct % 1000) * 1000};
    c->ctx = b->url.path ? redisConnectUnixWithTimeout(b->url.path, tv)
                         : redisConnectWithTimeout(b->url.host, b->url.port, tv);
    c->timeout_ms = -1;
    if (!c->ctx)
        return -ENOMEM;
    if (c->ctx->err)
        return bus_drop(b, c, SB_EUNAVAIL, false, NULL);
    if (!b->url.path)
        (void)redisEnableKeepAlive(c->ctx);
    left = deadline_ms - sb_mono_ms();
    if (bus_set_timeout(c, (int)(left > 0 ? left : 1)) != 0)
        return bus_drop(b, c, SB_EUNAVAIL, false, NULL);
    int rc = bus_handshake(b, c);
    if (rc == 0)
        c->gen = bus_note_success(b);
    return rc;
}

/* Checkout, connect, one command with socket timeout `timeout_ms` (0 none,
 * -1 what is left until deadline_ms), checkin. */
static int bus_exec(struct bus *b, bool health, int64_t deadline_ms, int timeout_ms, int argc,
                    const char **argv, const size_t *argvlen, redisReply **reply)
{
    struct bus_conn *c = NULL;
    *reply = NULL;
    int rc = bus_checkout(b, health, deadline_ms, &c);
    if (rc != 0)
        return rc;
    rc = bus_connect(b, c, deadline_ms);
    if (rc == 0 && timeout_ms < 0) {
        int64_t left = deadline_ms - sb_mono_ms();
        timeout_ms = left > 0 ? (int)left : 1;
    }
    if (rc == 0 && bus_set_timeout(c, timeout_ms) != 0)
        rc = bus_drop(b, c, SB_EUNAVAIL, true, NULL);
    if (rc == 0) {
        int err = 0;
        *reply = bus_call(c, argc, argv, argvlen, &err);
        if (!*reply)
            rc = bus_drop(b, c, bus_ctx_error(c->ctx, err), true, NULL);
    }
    bus_checkin(b, c);
    return rc;
}

/* ---------------------------------------------------------------- public */

struct bus *bus_new(const char *url, int pool_size, struct sb_log *log, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    if (pool_size < 1 || pool_size > BUS_POOL_MAX) {
        *err = -EINVAL;
        return NULL;
    }
    struct bus *b = calloc(1, sizeof *b + ((size_t)pool_size + 1) * sizeof b->conns[0]);
    if (!b) {
        *err = -ENOMEM;
        return NULL;
    }
    *err = bus_url_parse(url, &b->url);
    if (*err != 0) {
        free(b);
        return NULL;
    }
    if (b->url.path)
        snprintf(b->where, sizeof b->where, "%s", b->url.path);
    else
        snprintf(b->where, sizeof b->where, "%s:%d", b->url.host, b->url.port);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_cond_init(&b->health_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&b->mu, NULL);
    b->log = log;
    b->npool = (size_t)pool_size;
    return b;
}

void bus_free(struct bus *b)
{
    if (!b)
        return;
    for (size_t i = 0; i <= b->npool; i++)
        if (b->conns[i].ctx)
            redisFree(b->conns[i].ctx);
    pthread_cond_destroy(&b->cv);
    pthread_cond_destroy(&b->health_cv);
    pthread_mutex_destroy(&b->mu);
    bus_url_cleanup(&b->url);
    free(b);
}

int bus_ping(struct bus *b, int timeout_ms)
{
    if (!b || timeout_ms < 1)
        return -EINVAL;
    const char *argv[] = {"PING"};
    redisReply *r = NULL;
    int rc = bus_exec(b, true, sb_mono_ms() + timeout_ms, -1, 1, argv, NULL, &r);
    if (rc != 0)
        return rc;
    if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0)
        rc = 0;
    else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOAUTH", 6) == 0)
        rc = SB_EAUTH;
    else
        rc = SB_EREDIS;
    freeReplyObject(r);
    return rc;
}

int bus_command_timeout(struct bus *b, int timeout_ms, int argc, const char **argv,
                        const size_t *argvlen, redisReply **reply)
{
    if (!reply)
        return -EINVAL;
    *reply = NULL;
    if (!b || argc < 1 || !argv || timeout_ms < 0)
        return -EINVAL;
    return bus_exec(b, false, sb_mono_ms() + BUS_COMMAND_TIMEOUT_MS, timeout_ms, argc, argv,
                    argvlen, reply);
}

int bus_command(struct bus *b, int argc, const char **argv, const size_t *argvlen,
                redisReply **reply)
{
    return bus_command_timeout(b, BUS_COMMAND_TIMEOUT_MS, argc, argv, argvlen, reply);
}

/* ---------------------------------------------------------------- dedicated */

int bus_connect_dedicated(struct bus *b, int timeout_ms, redisContext **out)
{
    struct bus_conn c = {.timeout_ms = -1};
    *out = NULL;
    int rc = bus_connect(b, &c, sb_mono_ms() + (timeout_ms > 0 ? timeout_ms : 1000));
    if (rc == 0)
        *out = c.ctx;
    return rc;
}

/* ---------------------------------------------------------------- pipelines */

/* Appends every command, then reads every reply: one round trip. */
static int pipeline_io(struct bus_conn *c, size_t n, const int *argcs, const char **const *argvs,
                       redisReply **replies, int *saved_errno)
{
    sigset_t old;
    sigpipe_block(&old);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (redisAppendCommandArgv(c->ctx, argcs[i], argvs[i], NULL) != REDIS_OK)
            rc = SB_EREDIS;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        void *r = NULL;
        errno = 0;
        if (redisGetReply(c->ctx, &r) != REDIS_OK)
            rc = SB_EREDIS;
        replies[i] = r;
    }
    *saved_errno = errno;
    sigpipe_restore(&old, rc != 0);
    return rc;
}

int bus_pipeline(struct bus *b, size_t n, const int *argcs, const char **const *argvs,
                 redisReply **replies)
{
    if (n == 0 || n > BUS_PIPELINE_MAX || !argcs || !argvs || !replies)
        return -EINVAL;
    memset(replies, 0, n * sizeof *replies);
    struct bus_conn *c = NULL;
    int64_t deadline = sb_mono_ms() + BUS_COMMAND_TIMEOUT_MS;
    int rc = bus_checkout(b, false, deadline, &c);
    if (rc != 0)
        return rc;
    rc = bus_connect(b, c, deadline);
    if (rc == 0 && bus_set_timeout(c, BUS_COMMAND_TIMEOUT_MS) != 0)
        rc = bus_drop(b, c, SB_EUNAVAIL, true, NULL);
    if (rc == 0) {
        int err = 0;
        if (pipeline_io(c, n, argcs, argvs, replies, &err) != 0) {
            rc = bus_drop(b, c, bus_ctx_error(c->ctx, err), true, NULL);
            for (size_t i = 0; i < n; i++) {
                freeReplyObject(replies[i]);
                replies[i] = NULL;
            }
        }
    }
    bus_checkin(b, c);
    return rc;
}

