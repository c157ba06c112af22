/* spend.c - the per-tenant monthly LLM spend cap (see spend.h). */
#include "spend.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct tally {
    long cost, tokens_in, tokens_out, calls;
};

struct book {
    char tenant[SB_UUID_STRLEN]; /* "" when free */
    int64_t checked_ms;          /* monotonic; 0 = never read */
    long cap;                    /* -1: none */
    long db_spent;               /* the month's total when last read */
    long since_read;             /* flushed by this instance after that read */
    struct tally pending;        /* not yet written */
};

struct spend {
    pthread_mutex_t mu;
    struct book books[SPEND_MAX_TENANTS];
};

/* This month (UTC), as llm_spend_monthly keys it. */
#define MONTH_SQL "date_trunc('month', now() AT TIME ZONE 'UTC')::date"

struct spend *spend_new(void)
{
    struct spend *s = calloc(1, sizeof *s);
    if (s)
        pthread_mutex_init(&s->mu, NULL);
    return s;
}

void spend_free(struct spend *s, struct db_pool *db)
{
    if (!s)
        return;
    spend_flush(s, db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static unsigned slot_of(const char *tenant)
{
    unsigned h = 2166136261u;
    for (; *tenant; tenant++)
        h = (h ^ (unsigned char)*tenant) * 16777619u;
    return h % SPEND_MAX_TENANTS;
}

/* The tenant's book, created when `create`; NULL when absent or full. Locked. */
static struct book *book_of(struct spend *s, const char *tenant, bool create)
{
    unsigned i = slot_of(tenant);
    for (unsigned probes = 0; probes < SPEND_MAX_TENANTS; probes++) {
        struct book *b = &s->books[i];
        if (strcmp(b->tenant, tenant) == 0)
            return b;
        if (!b->tenant[0]) {
            if (!create)
                return NULL;
            *b = (struct book){.cap = -1};
            snprintf(b->tenant, sizeof b->tenant, "%s", tenant);
            return b;
        }
        i = (i + 1) % SPEND_MAX_TENANTS;
    }
    return NULL;
}

int spend_check(struct spend *s, PGconn *c, const char *tenant, bool *allowed, long *spent,
                long *cap)
{
    int64_t now = sb_mono_ms();
    pthread_mutex_lock(&s->mu);
    struct book *b = book_of(s, tenant, true);
    bool fresh = b && b->checked_ms && now - b->checked_ms < SPEND_REFRESH_MS;
    if (fresh) {
        *cap = b->cap;
        *spent = b->db_spent + b->since_read + b->pending.cost;
    }
    pthread_mutex_unlock(&s->mu);
    if (!fresh) {
        const char *p[] = {tenant};
        PGresult *r = NULL;
        int rc = db_exec(c,
                         "SELECT coalesce(t.llm_monthly_cap_micros, -1), coalesce((SELECT "
                         "m.cost_micros FROM llm_spend_monthly m WHERE m.tenant_id = t.id AND "
                         "m.month = " MONTH_SQL "), 0) FROM tenants t WHERE t.id = $1",
                         1, p, &r, NULL);
        long dbcap = -1, dbspent = 0;
        if (rc == 0 && PQntuples(r) == 1 &&
            (db_value_long(r, 0, 0, &dbcap) != 0 || db_value_long(r, 0, 1, &dbspent) != 0))
            rc = SB_EDB;
        PQclear(r);
        if (rc != 0)
            return rc;
        pthread_mutex_lock(&s->mu);
        b = book_of(s, tenant, true);
        long pending = 0;
        if (b) {
            b->checked_ms = now;
            b->cap = dbcap;
            b->db_spent = dbspent;
            b->since_read = 0;
            pending = b->pending.cost;
        }
        pthread_mutex_unlock(&s->mu);
        *cap = dbcap;
        *spent = dbspent + pending;
    }
    *allowed = *cap < 0 || *spent < *cap;
    return 0;
}

long spend_cost(long tokens_in, long tokens_out, long price_in, long price_out)
{
    /* A model's own count is not trusted: clamped, then with prices <= 10^9
     * (PROC_PRICE_MAX) the products fit in 64 bits. */
    tokens_in = tokens_in < 0 ? 0 : tokens_in > INT_MAX ? INT_MAX : tokens_in;
    tokens_out = tokens_out < 0 ? 0 : tokens_out > INT_MAX ? INT_MAX : tokens_out;
    long long micro_millionths = (long long)tokens_in * price_in + (long long)tokens_out * price_out;
    return (long)((micro_millionths + 999999) / 1000000);
}

struct upsert {
    const char *tenant;
    struct tally t;
};

static int upsert_tx(PGconn *c, void *arg)
{
    const struct upsert *u = arg;
    char cost[24], tin[24], tout[24], calls[24];
    snprintf(cost, sizeof cost, "%ld", u->t.cost);
    snprintf(tin, sizeof tin, "%ld", u->t.tokens_in);
    snprintf(tout, sizeof tout, "%ld", u->t.tokens_out);
    snprintf(calls, sizeof calls, "%ld", u->t.calls);
    const char *p[] = {u->tenant, cost, tin, tout, calls};
    return db_exec(c,
                   "INSERT INTO llm_spend_monthly (tenant_id, month, cost_micros, tokens_in, "
                   "tokens_out, calls) VALUES ($1, " MONTH_SQL ", $2, $3, $4, $5) "
                   "ON CONFLICT (tenant_id, month) DO UPDATE SET "
                   "cost_micros = llm_spend_monthly.cost_micros + EXCLUDED.cost_micros, "
                   "tokens_in = llm_spend_monthly.tokens_in + EXCLUDED.tokens_in, "
                   "tokens_out = llm_spend_monthly.tokens_out + EXCLUDED.tokens_out, "
                   "calls = llm_spend_monthly.calls + EXCLUDED.calls",
                   5, p, NULL, NULL);
}

static void tally_add(struct tally *to, const struct tally *t)
{
    to->cost += t->cost;
    to->tokens_in += t->tokens_in;
    to->tokens_out += t->tokens_out;
    to->calls += t->calls;
}

void spend_add(struct spend *s, struct db_pool *db, const char *tenant, long cost, long tokens_in,
               long tokens_out)
{
    struct tally t = {cost, tokens_in, tokens_out, 1};
    pthread_mutex_lock(&s->mu);
    struct book *b = book_of(s, tenant, true);
    if (b)
        tally_add(&b->pending, &t);
    pthread_mutex_unlock(&s->mu);
    if (!b) { /* more tenants than books: no batching for this one */
        struct upsert u = {tenant, t};
        (void)!db_tenant_tx(db, tenant, upsert_tx, &u);
    }
}

void spend_flush(struct spend *s, struct db_pool *db)
{
    for (unsigned i = 0; i < SPEND_MAX_TENANTS; i++) {
        struct upsert u = {0};
        char tenant[SB_UUID_STRLEN];
        pthread_mutex_lock(&s->mu);
        struct book *b = &s->books[i];
        if (b->tenant[0] && b->pending.calls > 0) {
            snprintf(tenant, sizeof tenant, "%s", b->tenant);
            u.tenant = tenant;
            u.t = b->pending;
            b->pending = (struct tally){0};
            b->since_read += u.t.cost;
        }
        pthread_mutex_unlock(&s->mu);
        if (!u.tenant || db_tenant_tx(db, u.tenant, upsert_tx, &u) == 0)
            continue;
        pthread_mutex_lock(&s->mu); /* not written: keep it for the next flush */
        b = book_of(s, tenant, true);
        if (b) {
            tally_add(&b->pending, &u.t);
            b->since_read -= u.t.cost;
        }
        pthread_mutex_unlock(&s->mu);
        return; /* the database is away or refusing: try again next second, not per tenant */
    }
}
