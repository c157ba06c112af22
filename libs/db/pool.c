/* pool.c - a bounded, lazily filled pool of libpq connections with
 * deadline-bound connects (non-blocking PQconnectPoll), clean hand-back of
 * connections left inside transactions, and a health check. */
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"

struct db_slot {
    PGconn *conn; /* NULL until first use, or after being dropped */
    bool busy;    /* checked out (or being connected) by some thread */
};

struct db_pool {
    pthread_mutex_t mu;
    pthread_cond_t freed; /* signalled whenever a slot becomes free */
    int size;
    struct db_slot *slots;
    char **keywords; /* NULL-terminated, for PQconnectStartParams */
    char **values;
    int64_t connect_timeout_ms; /* 0: no cap beyond the caller's deadline */
    struct sb_log *log;
};

/* Routes server notices and warnings into the log instead of stderr. */
static void pool_notice(void *arg, const PGresult *res)
{
    struct sb_log *log = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    enum sb_log_level lvl = (sev && strcmp(sev, "WARNING") == 0) ? SB_LOG_WARN : SB_LOG_DEBUG;
    sb_log_write(log, lvl, NULL, NULL, "postgres %s: %s", sev ? sev : "NOTICE", msg ? msg : "");
}

static void strv_free(char **v)
{
    if (!v)
        return;
    for (char **it = v; *it; it++)
        free(*it);
    free(v);
}

/* Appends (or, when `key` is present, replaces) one keyword/value pair. */
static int opts_set(char **kw, char **val, int *n, const char *key, const char *value)
{
    char *v = strdup(value);
    if (!v)
        return -ENOMEM;
    for (int i = 0; i < *n; i++) {
        if (strcmp(kw[i], key) == 0) {
            free(val[i]);
            val[i] = v;
            return 0;
        }
    }
    kw[*n] = strdup(key);
    if (!kw[*n]) {
        free(v);
        return -ENOMEM;
    }
    val[*n] = v;
    (*n)++;
    return 0;
}

/* Turns parsed options into the pool's keyword/value arrays. */
static int pool_set_options(struct db_pool *p, PQconninfoOption *opts, const char *app_name)
{
    int count = 2; /* connect_timeout and application_name may be added */
    for (PQconninfoOption *o = opts; o->keyword; o++)
        count++;
    p->keywords = calloc((size_t)count + 1, sizeof(char *));
    p->values = calloc((size_t)count + 1, sizeof(char *));
    if (!p->keywords || !p->values)
        return -ENOMEM;
    int n = 0, rc = 0;
    const char *timeout = DB_CONNECT_TIMEOUT_DEFAULT;
    for (PQconninfoOption *o = opts; o->keyword && rc == 0; o++) {
        if (!o->val || !o->val[0])
            continue;
        if (strcmp(o->keyword, "connect_timeout") == 0)
            timeout = o->val;
        rc = opts_set(p->keywords, p->values, &n, o->keyword, o->val);
    }
    if (rc == 0)
        rc = opts_set(p->keywords, p->values, &n, "connect_timeout", timeout);
    if (rc == 0 && app_name)
        rc = opts_set(p->keywords, p->values, &n, "application_name", app_name);
    long secs = 0;
    if (rc == 0 && sb_parse_long(timeout, 0, 3600, &secs) == 0)
        p->connect_timeout_ms = secs * 1000;
    return rc;
}

struct db_pool *db_pool_new(const char *conninfo, int size, const char *application_name,
                            struct sb_log *log)
{
    if (!conninfo || size < 1 || size > DB_POOL_MAX_SIZE) {
        sb_log_error(log, NULL, "db pool: invalid arguments (size %d)", size);
        return NULL;
    }
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        sb_log_error(log, NULL, "db pool: invalid conninfo: %s", perr ? perr : "out of memory");
        PQfreemem(perr);
        return NULL;
    }
    struct db_pool *p = calloc(1, sizeof(*p));
    if (!p)
        goto fail;
    p->size = size;
    p->log = log;
    p->slots = calloc((size_t)size, sizeof(*p->slots));
    if (!p->slots || pool_set_options(p, opts, application_name) != 0)
        goto fail;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->freed, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&p->mu, NULL);
    PQconninfoFree(opts);
    return p;
fail:
    sb_log_error(log, NULL, "db pool: out of memory");
    PQconninfoFree(opts);
    if (p) {
        strv_free(p->keywords);
        strv_free(p->values);
        free(p->slots);
        free(p);
    }
    return NULL;
}

void db_pool_free(struct db_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->size; i++) {
        if (p->slots[i].busy)
            sb_log_error(p->log, NULL, "db pool: freed with a connection still checked out");
        if (p->slots[i].conn)
            PQfinish(p->slots[i].conn);
    }
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->mu);
    strv_free(p->keywords);
    strv_free(p->values);
    free(p->slots);
    free(p);
}

/* Waits until the socket of `c` is ready for `events` or `deadline` (monotonic
 * ms) passes. Returns 0, -ETIMEDOUT, or SB_EUNAVAIL. */
static int pool_wait_socket(PGconn *c, short events, int64_t deadline)
{
    int fd = PQsocket(c);
    if (fd < 0)
        return SB_EUNAVAIL;
    for (;;) {
        int64_t left = deadline - sb_mono_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return SB_EUNAVAIL;
    }
}

/* Opens a connection before `deadline`. Returns 0 and *out, or a negative code. */
static int pool_connect(struct db_pool *p, int64_t deadline, PGconn **out)
{
    if (p->connect_timeout_ms > 0 && sb_mono_ms() + p->connect_timeout_ms < deadline)
        deadline = sb_mono_ms() + p->connect_timeout_ms;
    PGconn *c =
        PQconnectStartParams((const char *const *)p->keywords, (const char *const *)p->values, 0);
    if (!c)
        return -ENOMEM;
    int rc = 0;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (rc == 0 && PQstatus(c) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
           st != PGRES_POLLING_FAILED) {
        rc = pool_wait_socket(c, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
        if (rc == 0)
            st = PQconnectPoll(c);
    }
    if (rc == 0 && (st != PGRES_POLLING_OK || PQstatus(c) != CONNECTION_OK))
        rc = SB_EUNAVAIL;
    if (rc != 0) {
        const char *m = rc == -ETIMEDOUT ? "timed out" : PQerrorMessage(c);
        size_t n = strlen(m);
        while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
            n--;
        sb_log_warn(p->log, NULL, "db connect failed: %.*s", (int)n, m);
        PQfinish(c);
        return rc;
    }
    PQsetNoticeReceiver(c, pool_notice, p->log);
    *out = c;
    return 0;
}

/* Frees slot `i` (under the lock), optionally closing its connection. */
static void pool_put_locked(struct db_pool *p, int i, bool drop)
{
    if (drop && p->slots[i].conn) {
        PQfinish(p->slots[i].conn);
        p->slots[i].conn = NULL;
    }
    p->slots[i].busy = false;
    pthread_cond_signal(&p->freed);
}

/* Reserves a free slot, preferring one that already holds a connection.
 * Returns its index, or -ETIMEDOUT once `deadline` passes. */
static int pool_reserve(struct db_pool *p, int64_t deadline)
{
    pthread_mutex_lock(&p->mu);
    for (;;) {
        int pick = -1;
        for (int i = 0; i < p->size; i++) {
            if (!p->slots[i].busy && (pick < 0 || (p->slots[i].conn && !p->slots[pick].conn)))
                pick = i;
        }
        if (pick >= 0) {
            p->slots[pick].busy = true;
            pthread_mutex_unlock(&p->mu);
            return pick;
        }
        int64_t left = deadline - sb_mono_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(left / 1000);
        ts.tv_nsec += (long)(left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->freed, &p->mu, &ts);
    }
    pthread_mutex_unlock(&p->mu);
    return -ETIMEDOUT;
}

int db_acquire(struct db_pool *p, int timeout_ms, PGconn **conn)
{
    if (!p || !conn || timeout_ms < 0)
        return -EINVAL;
    *conn = NULL;
    int64_t deadline = sb_mono_ms() + timeout_ms;
    int i = pool_reserve(p, deadline);
    if (i < 0)
        return i;
    /* The slot is ours; a dead connection is detached under the lock (so no
     * release can match its address again) and closed outside it. */
    pthread_mutex_lock(&p->mu);
    PGconn *c = p->slots[i].conn, *dead = NULL;
    if (c && PQstatus(c) != CONNECTION_OK) {
        dead = c;
        c = NULL;
        p->slots[i].conn = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    if (dead)
        PQfinish(dead);
    int rc = 0;
    if (!c)
        rc = pool_connect(p, deadline, &c);
    pthread_mutex_lock(&p->mu);
    p->slots[i].conn = c;
    if (rc != 0)
        pool_put_locked(p, i, true);
    pthread_mutex_unlock(&p->mu);
    if (rc == 0)
        *conn = c;
    return rc;
}

/* Brings a returned connection back to idle. False when it must be closed. */
static bool pool_clean(struct db_pool *p, PGconn *c)
{
    if (PQstatus(c) != CONNECTION_OK || PQpipelineStatus(c) != PQ_PIPELINE_OFF)
        return false;
    switch (PQtransactionStatus(c)) {
    case PQTRANS_IDLE:
        return true;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR: {
        PGresult *r = PQexec(c, "ROLLBACK");
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK && PQtransactionStatus(c) == PQTRANS_IDLE;
        PQclear(r);
        if (!ok)
            sb_log_warn(p->log, NULL, "db release: rollback failed, closing connection");
        return ok;
    }
    default: /* a query still running, or unknown state */
        return false;
    }
}

void db_release(struct db_pool *p, PGconn *conn)
{
    if (!p || !conn)
        return;
    pthread_mutex_lock(&p->mu);
    int i = 0;
    while (i < p->size && !(p->slots[i].busy && p->slots[i].conn == conn))
        i++;
    pthread_mutex_unlock(&p->mu);
    if (i == p->size) {
        sb_log_error(p->log, NULL, "db release: connection is not checked out from this pool");
        return;
    }
    /* The slot stays busy (ours) while the connection is cleaned. */
    bool keep = pool_clean(p, conn);
    pthread_mutex_lock(&p->mu);
    pool_put_locked(p, i, !keep);
    pthread_mutex_unlock(&p->mu);
}

/* Runs SELECT 1 on `c`, bounded by `deadline`. */
static int pool_select_one(PGconn *c, int64_t deadline)
{
    if (!PQsendQueryParams(c, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0))
        return SB_EUNAVAIL;
    int rc = 0;
    while (rc == 0 && PQisBusy(c)) {
        rc = pool_wait_socket(c, POLLIN, deadline);
        if (rc == 0 && !PQconsumeInput(c))
            rc = SB_EUNAVAIL;
    }
    if (rc != 0) {
        /* Leave the query running: db_release() closes a busy connection. */
        return rc;
    }
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL) {
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            rc = SB_EUNAVAIL;
        PQclear(r);
    }
    return rc;
}

int db_ping(struct db_pool *p, int timeout_ms)
{
    if (!p || timeout_ms < 0)
        return -EINVAL;
    int64_t deadline = sb_mono_ms() + timeout_ms;
    int rc = SB_EUNAVAIL;
    /* Second round only when a pooled connection had silently died. */
    for (int attempt = 0; attempt < 2; attempt++) {
        int64_t left = deadline - sb_mono_ms();
        PGconn *c = NULL;
        rc = db_acquire(p, left > 0 ? (int)left : 0, &c);
        if (rc != 0)
            return rc;
        rc = pool_select_one(c, deadline);
        bool dead = PQstatus(c) != CONNECTION_OK;
        db_release(p, c);
        if (rc == 0 || !dead || rc == -ETIMEDOUT)
            break;
    }
    if (rc != 0)
        sb_log_warn(p->log, NULL, "db ping failed: %s", sb_strerror(rc));
    return rc;
}
