/* spend.h - internal to sabia-processor: the per-tenant monthly LLM spend
 * cap (DESIGN.md §8, tenants.llm_monthly_cap_micros).
 *
 * Every model reply stores one llm_usage row with its tokens and cost in the
 * transaction that stores the reply (generate.c). The month's running total,
 * llm_spend_monthly, is one row per tenant: updating it in every reply's
 * transaction would serialise all of a tenant's replies on that row lock, so
 * this instance adds its costs up in memory and writes them once a second
 * (spend_flush, from the scheduler) and at shutdown. The check before a model
 * call reads the cap and the month's total at most once a second per tenant
 * and adds what this instance spent since. The cap is therefore soft: calls
 * already in flight when it is crossed still complete, and a crash loses at
 * most a second of this instance's running total (never the llm_usage rows).
 *
 * Thread-safe. */
#ifndef SABIA_PROCESSOR_SPEND_H
#define SABIA_PROCESSOR_SPEND_H

#include "db.h"

#include <stdbool.h>

#define SPEND_REFRESH_MS 1000  /* a tenant's cap and total are re-read this often */
#define SPEND_MAX_TENANTS 4096 /* tenants remembered; past that, totals go straight to the database */

struct spend;

struct spend *spend_new(void);
/* Writes what is still unflushed (best effort) and frees. NULL is a no-op. */
void spend_free(struct spend *s, struct db_pool *db);

/* Inside `tenant`'s transaction on `c`: *allowed tells whether the tenant may
 * still call a model this month; *spent and *cap (micro-USD; *cap -1 when the
 * tenant has no cap) say why. 0 or a database error. */
int spend_check(struct spend *s, PGconn *c, const char *tenant, bool *allowed, long *spent,
                long *cap) SB_MUST_USE;

/* The cost of one call in micro-USD, rounded up, from prices in micro-USD per
 * million tokens. */
long spend_cost(long tokens_in, long tokens_out, long price_in, long price_out);

/* After a reply's transaction committed: adds its cost to the tenant's month. */
void spend_add(struct spend *s, struct db_pool *db, const char *tenant, long cost, long tokens_in,
               long tokens_out);

/* Adds the unflushed totals to llm_spend_monthly, one upsert per tenant. */
void spend_flush(struct spend *s, struct db_pool *db);

#endif
