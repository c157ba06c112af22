/* relay.c - re-publishes accepted events the processor has not marked
 * processed in time (see handoff.c for why). One pass: under a transaction-
 * scoped advisory lock (so one gateway relays at a time), list due events
 * through work_pending_webhook_events(), stamp last_attempt_at per tenant,
 * commit, then publish each wake-up again. */
#include "gateway.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RELAY_BATCH "500"
#define RELAY_LOCK_KEY "7212290533" /* any constant shared by all gateways */

struct relay {
    struct db_pool *db;
    struct handoff *handoff;
    char after[32]; /* "<n> seconds" */
    int interval_ms;
    struct sb_log *log;
    struct metric *m_relayed; /* gateway_relay_republished_total */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    pthread_t thread;
};

/* Rows to publish after the transaction commits. */
struct due {
    PGresult *stamped[64]; /* one result per tenant group (id, tenant, correlation, source) */
    int n;
    bool more_tenants;     /* more than 64 tenants due: the rest waits for the next pass */
};

static int stamp_tenant(PGconn *c, const char *tenant_id, const char *ids, struct due *d)
{
    const char *p1[] = {tenant_id};
    int rc = db_exec(c, "SELECT set_config('app.tenant_id', $1, true)", 1, p1, NULL, NULL);
    const char *p2[] = {tenant_id, ids};
    PGresult *res = NULL;
    if (rc == 0)
        rc = db_exec(c,
                     "UPDATE webhook_events SET last_attempt_at = now() "
                     "WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND processed_at IS NULL "
                     "RETURNING id, tenant_id, correlation_id, source",
                     2, p2, &res, NULL);
    if (rc == 0)
        d->stamped[d->n++] = res;
    return rc;
}

/* Walks the due list (ordered by time, not tenant) grouping ids per tenant. */
static int stamp_all(PGconn *c, const PGresult *due, struct due *d)
{
    int n = PQntuples(due), rc = 0;
    bool *taken = calloc((size_t)n + 1, sizeof *taken);
    struct sb_buf ids;
    sb_buf_init(&ids, 1024 * 1024);
    if (!taken)
        return -ENOMEM;
    for (int i = 0; rc == 0 && i < n; i++) {
        if (taken[i])
            continue;
        if (d->n == (int)(sizeof d->stamped / sizeof d->stamped[0])) {
            d->more_tenants = true;
            break;
        }
        const char *tenant = PQgetvalue(due, i, 0);
        sb_buf_reset(&ids);
        rc = sb_buf_append_str(&ids, "{");
        for (int j = i; rc == 0 && j < n; j++) {
            if (taken[j] || strcmp(PQgetvalue(due, j, 0), tenant) != 0)
                continue;
            taken[j] = true;
            rc = sb_buf_appendf(&ids, "%s%s", ids.len > 1 ? "," : "", PQgetvalue(due, j, 1));
        }
        if (rc == 0)
            rc = sb_buf_append_str(&ids, "}");
        if (rc == 0)
            rc = stamp_tenant(c, tenant, ids.data, d);
    }
    free(taken);
    sb_buf_cleanup(&ids);
    return rc;
}

struct pass {
    struct relay *r;
    struct due d;
};

static int pass_tx(PGconn *c, void *arg)
{
    struct pass *p = arg;
    PGresult *res = NULL;
    int rc = db_exec(c, "SELECT pg_try_advisory_xact_lock(" RELAY_LOCK_KEY ")", 0, NULL, &res, NULL);
    bool mine = rc == 0 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (rc != 0 || !mine)
        return rc; /* another gateway is relaying */
    const char *params[] = {p->r->after, RELAY_BATCH};
    rc = db_exec(c, "SELECT tenant_id, id FROM work_pending_webhook_events($1::interval, $2::int)",
                 2, params, &res, NULL);
    if (rc == 0)
        rc = stamp_all(c, res, &p->d);
    PQclear(res);
    return rc;
}

int relay_run_once(struct relay *r)
{
    struct pass p = {.r = r};
    int rc = db_tx(r->db, pass_tx, &p);
    int published = 0;
    for (int g = 0; g < p.d.n; g++) {
        const PGresult *s = p.d.stamped[g];
        for (int i = 0; rc == 0 && i < PQntuples(s); i++) {
            if (handoff_publish(r->handoff, PQgetvalue(s, i, 0), PQgetvalue(s, i, 1),
                                PQgetvalue(s, i, 2), PQgetvalue(s, i, 3)) == 0)
                published++;
        }
        PQclear(p.d.stamped[g]);
    }
    if (published) {
        metric_add(r->m_relayed, NULL, published);
        sb_log_info(r->log, NULL, "relay: re-published %d unprocessed event(s)", published);
    }
    if (rc != 0)
        sb_log_warn(r->log, NULL, "relay: pass failed: %s", sb_strerror(rc));
    return rc != 0 ? rc : published;
}

static void *relay_main(void *arg)
{
    struct relay *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += r->interval_ms / 1000;
        until.tv_nsec += (long)(r->interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->cv, &r->mu, &until);
        if (r->stop)
            break;
        pthread_mutex_unlock(&r->mu);
        (void)relay_run_once(r);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

struct relay *relay_new(struct db_pool *db, struct handoff *h, int after_s, int interval_ms,
                        struct metrics *metrics, struct sb_log *log)
{
    struct relay *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->db = db;
    r->handoff = h;
    snprintf(r->after, sizeof r->after, "%d seconds", after_s);
    r->interval_ms = interval_ms > 0 ? interval_ms : 5000;
    r->log = log;
    r->m_relayed = metrics_counter(metrics, "gateway_relay_republished_total",
                                   "Accepted events published again by the relay.", NULL);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, relay_main, r) != 0) {
        free(r);
        return NULL;
    }
    return r;
}

void relay_free(struct relay *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
