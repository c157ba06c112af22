/* world.c - see world.h. */
#include "world.h"

#include "crypto.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void new_id(char out[SB_UUID_STRLEN])
{
    cr_assert_eq(sb_uuid_v7_str(out), 0);
}

/* Runs SQL as the owner inside a transaction scoped to `tenant`. */
static void owner_sql(const char *url, const char *tenant, const char *sql, int n,
                      const char *const *params)
{
    PGconn *c = PQconnectdb(url);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, "BEGIN");
    PQclear(r);
    const char *t[] = {tenant};
    r = PQexecParams(c, "SELECT set_config('app.tenant_id', $1, true)", 1, NULL, t, NULL, NULL, 0);
    PQclear(r);
    r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
              "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    r = PQexec(c, "COMMIT");
    PQclear(r);
    PQfinish(c);
}

static void make_tenant(struct world *w, char *tenant, char *ws, const char *status, long rate,
                        long burst)
{
    char rs[16], bs[16];
    new_id(tenant);
    new_id(ws);
    snprintf(rs, sizeof rs, "%ld", rate);
    snprintf(bs, sizeof bs, "%ld", burst);
    const char *p[] = {tenant, status, rs, bs};
    owner_sql(w->owner_url, tenant,
              "INSERT INTO tenants (id, name, status, rate_limit_per_second, rate_limit_burst) "
              "VALUES ($1, 'Test tenant', $2, $3::int, $4::int)",
              4, p);
    const char *q[] = {ws, tenant};
    owner_sql(w->owner_url, tenant, "INSERT INTO workspaces (id, tenant_id, name) VALUES ($1, $2, 'W')",
              2, q);
}

/* Seals `secret` for the channel like sabiactl does; returns "\\x<hex>". */
static char *sealed(const char *channel, const char *what, const char *secret)
{
    int err = 0;
    struct crypto_key *k = crypto_key_new(ts_env("SABIA_MASTER_KEY"), &err);
    cr_assert_not_null(k);
    char aad[128];
    snprintf(aad, sizeof aad, "channel:%s:%s", channel, what);
    uint8_t *blob = NULL;
    size_t n = 0;
    cr_assert_eq(crypto_seal(k, aad, secret, strlen(secret), &blob, &n), 0);
    char *hex = malloc(2 * n + 3);
    memcpy(hex, "\\x", 2);
    crypto_hex_encode(blob, n, hex + 2, 2 * n + 1);
    free(blob);
    crypto_key_free(k);
    return hex;
}

static void make_channel(struct world *w, const char *tenant, const char *ws, char *id,
                         const char *type, const char *status, bool secrets)
{
    new_id(id);
    char *app = secrets ? sealed(id, "app_secret", APP_SECRET) : NULL;
    char *verify = secrets ? sealed(id, "verify_token", VERIFY_TOKEN) : NULL;
    char *access = secrets ? sealed(id, "access_token", ACCESS_TOKEN) : NULL;
    bool wa = strcmp(type, "whatsapp") == 0, ig = strcmp(type, "instagram") == 0;
    char account[32];
    snprintf(account, sizeof account, "1%05d", ts_free_port());
    const char *p[] = {id, tenant, ws, type, status, app, verify, access,
                       wa ? account : NULL, ig ? account : NULL, wa ? BUSINESS_PHONE : NULL};
    owner_sql(w->owner_url, tenant,
              "INSERT INTO channels (id, tenant_id, workspace_id, type, status, app_secret_enc, "
              "verify_token_enc, access_token_enc, phone_number_id, instagram_account_id, "
              "display_phone_number) VALUES ($1, $2, $3, $4, $5, $6::bytea, $7::bytea, $8::bytea, "
              "$9, $10, $11)",
              11, p);
    free(app);
    free(verify);
    free(access);
}

/* A retrieval assistant (1 s buffer) with a small FAQ, answering on wa, ig, web. */
static void make_assistant(struct world *w)
{
    char kb[SB_UUID_STRLEN];
    new_id(w->assistant);
    new_id(kb);
    const char *a[] = {w->assistant, w->tenant, w->ws};
    owner_sql(w->owner_url, w->tenant,
              "INSERT INTO assistants (id, tenant_id, workspace_id, name, provider, "
              "message_buffer_seconds, buffer_max_wait_seconds, handoff_auto_resume_seconds) "
              "VALUES ($1, $2, $3, 'Test assistant', 'retrieval', 1, 5, 3600)",
              3, a);
    const char *channels[] = {w->wa, w->ig, w->web};
    for (int i = 0; i < 3; i++) {
        const char *l[] = {w->tenant, w->assistant, channels[i]};
        owner_sql(w->owner_url, w->tenant,
                  "INSERT INTO assistant_channels (tenant_id, assistant_id, channel_id) "
                  "VALUES ($1, $2, $3)",
                  3, l);
    }
    const char *k[] = {kb, w->tenant, w->assistant};
    owner_sql(w->owner_url, w->tenant,
              "INSERT INTO knowledge_bases (id, tenant_id, assistant_id, name, status, language) "
              "VALUES ($1, $2, $3, 'FAQ', 'ready', 'english')",
              3, k);
    const char *c[] = {w->tenant, kb, w->assistant};
    owner_sql(w->owner_url, w->tenant,
              "INSERT INTO knowledge_chunks (tenant_id, knowledge_base_id, assistant_id, ordinal, "
              "title, content, language) VALUES ($1, $2, $3, 0, 'Orders', "
              "'Orders ship within two days and arrive in three to five days.', 'english')",
              3, c);
}

void world_create(struct world *w, const char *owner_url, const char *app_url,
                  const char *redis_url)
{
    memset(w, 0, sizeof *w);
    snprintf(w->owner_url, sizeof w->owner_url, "%s", owner_url);
    snprintf(w->app_url, sizeof w->app_url, "%s", app_url);
    snprintf(w->redis_url, sizeof w->redis_url, "%s", redis_url);
    snprintf(w->stream, sizeof w->stream, "test:events:%d:%d", (int)getpid(), ts_free_port());
    make_tenant(w, w->tenant, w->ws, "active", 10000, 10000);
    new_id(w->ws_b);
    const char *q[] = {w->ws_b, w->tenant};
    owner_sql(w->owner_url, w->tenant,
              "INSERT INTO workspaces (id, tenant_id, name) VALUES ($1, $2, 'B')", 2, q);
    make_channel(w, w->tenant, w->ws, w->wa, "whatsapp", "active", true);
    make_channel(w, w->tenant, w->ws, w->ig, "instagram", "active", true);
    make_channel(w, w->tenant, w->ws, w->web, "web", "active", false);
    make_channel(w, w->tenant, w->ws, w->wa_inactive, "whatsapp", "inactive", true);
    make_channel(w, w->tenant, w->ws, w->wa_no_secret, "whatsapp", "active", false);
    make_assistant(w);
    make_tenant(w, w->suspended, w->suspended_ws, "suspended", 100, 100);
    make_channel(w, w->suspended, w->suspended_ws, w->suspended_wa, "whatsapp", "active", true);
    make_tenant(w, w->limited, w->limited_ws, "active", 1, 2);
    make_channel(w, w->limited, w->limited_ws, w->limited_wa, "whatsapp", "active", true);
    make_tenant(w, w->other, w->other_ws, "active", 100, 100);
    make_channel(w, w->other, w->other_ws, w->other_wa, "whatsapp", "active", true);
}

void world_start_gateway(struct world *w)
{
    static char env[10][400];
    w->port = ts_free_port();
    snprintf(env[0], sizeof env[0], "SABIA_GATEWAY_PORT=%d", w->port);
    snprintf(env[1], sizeof env[1], "SABIA_DATABASE_URL=%s", w->app_url);
    snprintf(env[2], sizeof env[2], "SABIA_REDIS_URL=%s", w->redis_url);
    snprintf(env[3], sizeof env[3], "SABIA_ENV_FILE=/nonexistent");
    snprintf(env[4], sizeof env[4], "SABIA_EVENTS_STREAM=%s", w->stream);
    snprintf(env[5], sizeof env[5], "SABIA_GATEWAY_RELAY_AFTER_SECONDS=1");
    snprintf(env[6], sizeof env[6], "SABIA_GATEWAY_RELAY_INTERVAL_MS=200");
    snprintf(env[7], sizeof env[7], "SABIA_GATEWAY_CACHE_TTL_MS=%d",
             w->cache_ttl_ms ? w->cache_ttl_ms : 1000);
    snprintf(env[8], sizeof env[8], "SABIA_HTTP_WORKERS=16");
    char *extra[] = {env[0], env[1], env[2], env[3], env[4], env[5], env[6], env[7], env[8], NULL};
    char *bin = ts_build_path("apps/gateway/sabia-gateway");
    snprintf(w->log, sizeof w->log, "%s/gateway-%d.log", ts_env("SABIA_TEST_TMP"), w->port);
    char *argv[] = {bin, NULL};
    w->gateway = ts_spawn(argv, extra, w->log);
    free(bin);
    cr_assert(ts_wait_port(w->port, 10000), "gateway did not start (log %s)", w->log);
}

void world_stop_gateway(struct world *w)
{
    if (w->gateway > 0)
        ts_stop(w->gateway, SIGTERM, 10000);
    w->gateway = 0;
}

char *fixture(const char *name, size_t *len)
{
    char rel[256];
    snprintf(rel, sizeof rel, "../shared/fixtures/%s", name);
    char *path = ts_source_path(rel);
    size_t n = 0;
    char *data = ts_read_file(path, &n);
    free(path);
    if (strstr(name, ".sig"))
        while (n && (data[n - 1] == '\n' || data[n - 1] == '\r'))
            data[--n] = '\0';
    if (len)
        *len = n;
    return data;
}

json_t *post_webhook(struct world *w, const char *source, const char *tenant, const char *ws,
                     const char *channel, const char *body, size_t len, const char *const *headers,
                     long *status)
{
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/webhook/%s/%s/%s/%s", w->port, source, tenant,
             ws, channel);
    char *resp = ts_http("POST", url, headers, body, len, status);
    json_t *j = json_loads(resp, 0, NULL);
    free(resp);
    return j;
}

/* POSTs body with X-Hub-Signature-256 computed with APP_SECRET, as Meta does. */
static json_t *post_meta_signed(struct world *w, const char *source, const char *tenant,
                                const char *ws, const char *channel, const char *body, size_t len,
                                long *status)
{
    uint8_t mac[CRYPTO_SHA256_LEN];
    char hex[2 * CRYPTO_SHA256_LEN + 1], header[128];
    crypto_hmac_sha256(APP_SECRET, strlen(APP_SECRET), body, len, mac);
    crypto_hex_encode(mac, sizeof mac, hex, sizeof hex);
    snprintf(header, sizeof header, "X-Hub-Signature-256: sha256=%s", hex);
    const char *headers[] = {header, "Content-Type: application/json", NULL};
    return post_webhook(w, source, tenant, ws, channel, body, len, headers, status);
}

json_t *post_signed_to(struct world *w, const char *tenant, const char *ws, const char *wa,
                       const char *body, size_t len, long *status)
{
    return post_meta_signed(w, "whatsapp", tenant, ws, wa, body, len, status);
}

json_t *post_signed(struct world *w, const char *source, const char *channel, const char *body,
                    size_t len, long *status)
{
    return post_meta_signed(w, source, w->tenant, w->ws, channel, body, len, status);
}

void world_add_tenant(struct world *w, char tenant[SB_UUID_STRLEN], char ws[SB_UUID_STRLEN],
                      char wa[SB_UUID_STRLEN])
{
    make_tenant(w, tenant, ws, "active", 10000, 10000);
    make_channel(w, tenant, ws, wa, "whatsapp", "active", true);
}

void world_delete_tenant(struct world *w, const char *tenant)
{
    const char *p[] = {tenant};
    owner_sql(w->owner_url, tenant, "DELETE FROM tenants WHERE id = $1", 1, p);
}

PGresult *event_row(struct world *w, const char *id)
{
    PGconn *c = PQconnectdb(w->owner_url);
    cr_assert_eq(PQstatus(c), CONNECTION_OK);
    const char *p[] = {id};
    PGresult *r = PQexecParams(c,
                               "SELECT status, rejection_reason, encode(payload, 'hex'), dedup_key, "
                               "duplicate_of, tenant_id, channel_id, processed_at IS NOT NULL, "
                               "payload_truncated FROM webhook_events WHERE id = $1",
                               1, NULL, p, NULL, NULL, 0);
    PQfinish(c);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        PQclear(r);
        return NULL;
    }
    return r;
}

int stream_count(struct world *w, const char *event_id)
{
    int err = 0;
    struct bus *b = bus_new(w->redis_url, 1, NULL, &err);
    cr_assert_not_null(b);
    const char *argv[] = {"XRANGE", w->stream, "-", "+"};
    redisReply *r = NULL;
    int n = 0;
    if (bus_command(b, 4, argv, NULL, &r) == 0 && r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            redisReply *fields = r->element[i]->element[1];
            for (size_t f = 0; f + 1 < fields->elements; f += 2)
                if (strcmp(fields->element[f]->str, "event_id") == 0 &&
                    strcmp(fields->element[f + 1]->str, event_id) == 0)
                    n++;
        }
    }
    freeReplyObject(r);
    bus_free(b);
    return n;
}
