/* world.h - a small world for gateway tests: tenants, workspaces and channels
 * written straight into PostgreSQL (secrets sealed with SABIA_MASTER_KEY as
 * sabiactl would), a running sabia-gateway, and HTTP helpers. */
#ifndef SABIA_TEST_WORLD_H
#define SABIA_TEST_WORLD_H

#include "bus.h"
#include "db.h"

#include <jansson.h>
#include <sys/types.h>

#define APP_SECRET     "test_app_secret"
#define VERIFY_TOKEN   "verify-me-123"
#define ACCESS_TOKEN   "test-token"
#define BUSINESS_PHONE "15550783881"

struct world {
    char owner_url[256], app_url[256], redis_url[256];
    char stream[64];
    char tenant[SB_UUID_STRLEN], ws[SB_UUID_STRLEN], ws_b[SB_UUID_STRLEN];
    char wa[SB_UUID_STRLEN], ig[SB_UUID_STRLEN], web[SB_UUID_STRLEN];
    char wa_inactive[SB_UUID_STRLEN], wa_no_secret[SB_UUID_STRLEN];
    char suspended[SB_UUID_STRLEN], suspended_ws[SB_UUID_STRLEN], suspended_wa[SB_UUID_STRLEN];
    char limited[SB_UUID_STRLEN], limited_ws[SB_UUID_STRLEN], limited_wa[SB_UUID_STRLEN];
    char other[SB_UUID_STRLEN], other_ws[SB_UUID_STRLEN], other_wa[SB_UUID_STRLEN];
    char assistant[SB_UUID_STRLEN]; /* retrieval provider, answers on wa, ig and web */
    int cache_ttl_ms;               /* 0: 1000 */
    pid_t gateway;
    int port;
    char log[512];
};

/* Creates the rows in the database at owner_url. */
void world_create(struct world *w, const char *owner_url, const char *app_url,
                  const char *redis_url);
/* Starts sabia-gateway (relay after 1 s, every 200 ms; cache 1 s). */
void world_start_gateway(struct world *w);
void world_stop_gateway(struct world *w);

/* Reads ../shared/fixtures/<name> (a .sig loses its trailing newline). */
char *fixture(const char *name, size_t *len);

/* POSTs to /v1/webhook/<source>/<tenant>/<ws>/<channel>; headers NULL-terminated
 * or NULL. Returns the parsed JSON answer (NULL if not JSON) and *status. */
json_t *post_webhook(struct world *w, const char *source, const char *tenant, const char *ws,
                     const char *channel, const char *body, size_t len, const char *const *headers,
                     long *status);
/* Signed with APP_SECRET like Meta does. */
json_t *post_signed(struct world *w, const char *source, const char *channel, const char *body,
                    size_t len, long *status);

/* post_signed() to the WhatsApp channel `wa` of any tenant and workspace. */
json_t *post_signed_to(struct world *w, const char *tenant, const char *ws, const char *wa,
                       const char *body, size_t len, long *status);

/* One more active tenant (10,000 requests/s) with a workspace and an active
 * WhatsApp channel whose app secret is APP_SECRET. */
void world_add_tenant(struct world *w, char tenant[SB_UUID_STRLEN], char ws[SB_UUID_STRLEN],
                      char wa[SB_UUID_STRLEN]);
/* Deletes a tenant (everything of it goes by cascade) behind the gateway's
 * back: no cache invalidation is published. */
void world_delete_tenant(struct world *w, const char *tenant);

/* The stored row as the owner sees it: status, rejection_reason, payload
 * (bytea as hex), dedup_key, duplicate_of. NULL when absent. Caller PQclear()s. */
PGresult *event_row(struct world *w, const char *id);
/* Number of stream entries carrying this event id. */
int stream_count(struct world *w, const char *event_id);

#endif
