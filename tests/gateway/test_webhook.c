/* Gateway webhooks end to end: every fixture accepted and handed off;
 * every kind of rejection answered with its reason and recorded; the Meta
 * handshake; size, JSON and rate limits; duplicates, sequential and
 * concurrent. */
#include "world.h"

#include "crypto.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct world W;

static void setup(void)
{
    world_create(&W, ts_env("SABIA_DATABASE_OWNER_URL"), ts_env("SABIA_DATABASE_URL"),
                 ts_env("SABIA_REDIS_URL"));
    world_start_gateway(&W);
}

static void teardown(void)
{
    world_stop_gateway(&W);
}

TestSuite(webhook, .init = setup, .fini = teardown, .timeout = 120);

static const char *str(json_t *j, const char *k)
{
    const char *v = json_string_value(json_object_get(j, k));
    return v ? v : "";
}

static const char *error_code(json_t *j)
{
    return str(json_object_get(j, "error"), "code");
}

/* Posts a fixture with its own signature file and checks it is accepted,
 * stored byte for byte and handed to the processor. */
static void expect_fixture_accepted(const char *source, const char *channel, const char *name,
                                    const char *sig)
{
    size_t len;
    char *body = fixture(name, &len), *signature = fixture(sig, NULL);
    char header[200];
    snprintf(header, sizeof header, "X-Hub-Signature-256: %s", signature);
    const char *h[] = {header, NULL};
    long st;
    json_t *j = post_webhook(&W, source, W.tenant, W.ws, channel, body, len, h, &st);
    cr_assert_eq(st, 200, "%s: status %ld (log %s)", name, st, W.log);
    cr_assert_str_eq(str(j, "status"), "received");
    const char *id = str(j, "eventId");
    cr_assert(sb_uuid_valid(id, strlen(id)), "%s: eventId %s", name, id);
    PGresult *r = event_row(&W, id);
    cr_assert_not_null(r, "%s: no row", name);
    cr_assert_str_eq(PQgetvalue(r, 0, 0), "accepted");
    char *hex = malloc(2 * len + 1);
    crypto_hex_encode(body, len, hex, 2 * len + 1);
    cr_assert_str_eq(PQgetvalue(r, 0, 2), hex, "%s: payload not stored byte for byte", name);
    cr_assert_str_eq(PQgetvalue(r, 0, 5), W.tenant);
    cr_assert_str_eq(PQgetvalue(r, 0, 6), channel);
    PQclear(r);
    for (int i = 0; i < 100 && stream_count(&W, id) == 0; i++) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_geq(stream_count(&W, id), 1, "%s: no wake-up on the stream", name);
    free(hex);
    free(body);
    free(signature);
    json_decref(j);
}

Test(webhook, every_fixture_is_accepted)
{
    expect_fixture_accepted("whatsapp", W.wa, "wa_text.json", "wa_text.sig");
    expect_fixture_accepted("whatsapp", W.wa, "wa_text_unicode.json", "wa_text_unicode.sig");
    expect_fixture_accepted("whatsapp", W.wa, "wa_image.json", "wa_image.sig");
    expect_fixture_accepted("whatsapp", W.wa, "wa_status_delivered.json",
                            "wa_status_delivered.sig");
    expect_fixture_accepted("whatsapp", W.wa, "wa_status_failed.json", "wa_status_failed.sig");
    expect_fixture_accepted("instagram", W.ig, "ig_text.json", "ig_text.sig");
}

/* Posts and expects a rejection: status, reason, and a recorded row. */
static void expect_rejected(const char *source, const char *tenant, const char *ws,
                            const char *channel, const char *body, size_t len,
                            const char *const *headers, long want_status, const char *reason,
                            bool recorded_with_tenant)
{
    long st;
    json_t *j = post_webhook(&W, source, tenant, ws, channel, body, len, headers, &st);
    cr_assert_eq(st, want_status, "%s: got %ld", reason, st);
    cr_assert_str_eq(error_code(j), reason);
    const char *id = str(j, "eventId");
    cr_assert(sb_uuid_valid(id, strlen(id)), "%s: the rejection was not recorded", reason);
    PGresult *r = event_row(&W, id);
    cr_assert_not_null(r, "%s: no row for %s", reason, id);
    cr_assert_str_eq(PQgetvalue(r, 0, 0), "rejected");
    cr_assert_str_eq(PQgetvalue(r, 0, 1), reason);
    cr_assert_eq(PQgetisnull(r, 0, 5), !recorded_with_tenant, "%s: tenant recorded wrongly",
                 reason);
    PQclear(r);
    json_decref(j);
}

Test(webhook, bad_signatures_are_rejected_and_recorded)
{
    size_t len;
    char *body = fixture("wa_text.json", &len);
    const char *wrong[] = {
        "X-Hub-Signature-256: "
        "sha256=0000000000000000000000000000000000000000000000000000000000000000",
        NULL};
    expect_rejected("whatsapp", W.tenant, W.ws, W.wa, body, len, wrong, 401, "bad_signature", true);
    expect_rejected("whatsapp", W.tenant, W.ws, W.wa, body, len, NULL, 401, "missing_signature",
                    true);
    const char *malformed[] = {"X-Hub-Signature-256: md5=abc", NULL};
    expect_rejected("whatsapp", W.tenant, W.ws, W.wa, body, len, malformed, 401,
                    "malformed_signature", true);
    free(body);
    /* The same data re-encoded as raw UTF-8 does not match the original signature. */
    size_t rlen;
    char *reenc = fixture("wa_text_unicode_utf8_reencoded.json", &rlen);
    char *sig = fixture("wa_text_unicode.sig", NULL);
    char header[200];
    snprintf(header, sizeof header, "X-Hub-Signature-256: %s", sig);
    const char *h[] = {header, NULL};
    expect_rejected("whatsapp", W.tenant, W.ws, W.wa, reenc, rlen, h, 401, "bad_signature", true);
    free(reenc);
    free(sig);
}

Test(webhook, unknown_or_wrong_targets_are_rejected)
{
    size_t len;
    char *body = fixture("wa_text.json", &len);
    char *sig = fixture("wa_text.sig", NULL), header[200], random[SB_UUID_STRLEN];
    snprintf(header, sizeof header, "X-Hub-Signature-256: %s", sig);
    const char *h[] = {header, NULL};
    cr_assert_eq(sb_uuid_v7_str(random), 0);
    expect_rejected("whatsapp", random, W.ws, W.wa, body, len, h, 404, "unknown_tenant", false);
    expect_rejected("whatsapp", "not-a-uuid", W.ws, W.wa, body, len, h, 400, "invalid_path", false);
    expect_rejected("telegram", W.tenant, W.ws, W.wa, body, len, h, 404, "unknown_source", false);
    expect_rejected("whatsapp", W.suspended, W.suspended_ws, W.suspended_wa, body, len, h, 403,
                    "tenant_inactive", true);
    expect_rejected("whatsapp", W.tenant, W.ws, random, body, len, h, 404, "unknown_channel", true);
    /* A channel of another tenant, addressed through this tenant. */
    expect_rejected("whatsapp", W.tenant, W.ws, W.other_wa, body, len, h, 404, "unknown_channel",
                    true);
    expect_rejected("whatsapp", W.tenant, W.ws_b, W.wa, body, len, h, 404,
                    "channel_workspace_mismatch", true);
    expect_rejected("instagram", W.tenant, W.ws, W.wa, body, len, h, 404, "channel_type_mismatch",
                    true);
    expect_rejected("whatsapp", W.tenant, W.ws, W.wa_inactive, body, len, h, 403,
                    "channel_inactive", true);
    expect_rejected("whatsapp", W.tenant, W.ws, W.wa_no_secret, body, len, h, 401, "no_app_secret",
                    true);
    free(body);
    free(sig);
}

Test(webhook, malformed_json_is_400)
{
    const char bad[] = "{\"object\":\"whatsapp_business_account\",\"entry\":[";
    long st;
    json_t *j = post_signed(&W, "whatsapp", W.wa, bad, sizeof bad - 1, &st);
    cr_assert_eq(st, 400);
    cr_assert_str_eq(error_code(j), "invalid_json");
    json_decref(j);
    const char wrong[] = "{\"object\":\"page\",\"entry\":[]}";
    j = post_signed(&W, "whatsapp", W.wa, wrong, sizeof wrong - 1, &st);
    cr_assert_eq(st, 400);
    cr_assert_str_eq(error_code(j), "wrong_object");
    json_decref(j);
}

Test(webhook, body_over_4_mib_is_413_and_recorded)
{
    size_t n = 4u * 1024 * 1024 + 1;
    char *big = malloc(n);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    long st;
    json_t *j = post_signed(&W, "whatsapp", W.wa, big, n, &st);
    cr_assert_eq(st, 413);
    cr_assert_str_eq(error_code(j), "payload_too_large");
    PGresult *r = event_row(&W, str(j, "eventId"));
    cr_assert_not_null(r);
    cr_assert_str_eq(PQgetvalue(r, 0, 1), "payload_too_large");
    cr_assert_str_eq(PQgetvalue(r, 0, 8), "t", "payload marked truncated");
    PQclear(r);
    json_decref(j);
    /* Exactly 4 MiB is fine as far as size goes (then judged as JSON). */
    j = post_signed(&W, "whatsapp", W.wa, big, n - 1, &st);
    cr_assert_neq(st, 413);
    json_decref(j);
    free(big);
}

/* The X-Hub-Signature-256 header line for `body`, signed with the test app secret. */
static void sign_header(const char *body, size_t len, char *header, size_t size)
{
    uint8_t mac[32];
    char hex[65];
    crypto_hmac_sha256(APP_SECRET, strlen(APP_SECRET), body, len, mac);
    crypto_hex_encode(mac, 32, hex, sizeof hex);
    snprintf(header, size, "X-Hub-Signature-256: sha256=%s", hex);
}

Test(webhook, tenant_rate_limit_is_429_with_retry_after)
{
    size_t len;
    char *body = fixture("wa_text.json", &len), header[128];
    sign_header(body, len, header, sizeof header);
    const char *h[] = {header, NULL};
    long st = 0;
    int limited = 0;
    /* Burst 2, 1 per second: within a few quick requests one must be refused. */
    for (int i = 0; i < 5; i++) {
        json_t *j =
            post_webhook(&W, "whatsapp", W.limited, W.limited_ws, W.limited_wa, body, len, h, &st);
        if (st == 429) {
            limited++;
            cr_assert_str_eq(error_code(j), "rate_limited");
        } else {
            cr_assert_eq(st, 200);
        }
        json_decref(j);
    }
    cr_assert_geq(limited, 2, "only %d of 5 requests were limited", limited);
    free(body);
}

/* How many EVALSHA calls the test Redis has answered so far. */
static long redis_evalsha_calls(void)
{
    redisContext *r = redisConnect("127.0.0.1", atoi(ts_env("SABIA_TEST_REDIS_PORT")));
    cr_assert(r && !r->err, "redis connect");
    redisReply *a = redisCommand(r, "AUTH %s", ts_env("SABIA_TEST_REDIS_PASSWORD"));
    freeReplyObject(a);
    redisReply *info = redisCommand(r, "INFO commandstats");
    cr_assert(info && info->type == REDIS_REPLY_STRING);
    const char *at = strstr(info->str, "cmdstat_evalsha:calls=");
    long n = at ? atol(at + strlen("cmdstat_evalsha:calls=")) : 0;
    freeReplyObject(info);
    redisFree(r);
    return n;
}

/* A tenant with a higher rate (100/s, burst 100): tokens come from Redis in
 * chunks, yet no more requests pass than the bucket allows. */
Test(webhook, rate_limit_leases_tokens_and_still_holds)
{
    size_t len;
    char *body = fixture("wa_text.json", &len), header[128];
    sign_header(body, len, header, sizeof header);
    const char *h[] = {header, NULL};
    long before = redis_evalsha_calls();
    int64_t start = sb_mono_ms();
    int ok = 0, limited = 0;
    for (int i = 0; i < 300; i++) {
        long st = 0;
        json_t *j =
            post_webhook(&W, "whatsapp", W.other, W.other_ws, W.other_wa, body, len, h, &st);
        if (st == 429)
            limited++;
        else if (st == 200)
            ok++;
        else
            cr_assert_fail("unexpected status %ld", st);
        json_decref(j);
        if (i == 49) {
            long calls = redis_evalsha_calls() - before;
            cr_assert_leq(calls, 25, "%ld Redis calls for 50 requests: no leasing", calls);
        }
    }
    double elapsed_s = (double)(sb_mono_ms() - start) / 1000.0;
    /* Burst, refill over the run, and at most one unspent chunk of 5. */
    double bound = 100 + 100 * elapsed_s + 5;
    cr_assert_leq(ok, (int)bound + 1, "%d accepted in %.2fs: over the limit", ok, elapsed_s);
    cr_assert_geq(ok, 100, "the burst was not granted (%d)", ok);
    fprintf(stderr, "rate limit: %d accepted, %d limited in %.2fs\n", ok, limited, elapsed_s);
    free(body);
}

Test(webhook, verification_handshake)
{
    char url[512];
    long st;
    snprintf(url, sizeof url,
             "http://127.0.0.1:%d/v1/webhook/whatsapp/%s/%s/"
             "%s?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=%s",
             W.port, W.tenant, W.ws, W.wa, VERIFY_TOKEN);
    char *body = ts_http("GET", url, NULL, NULL, 0, &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(body, "1158201444");
    free(body);
    snprintf(url, sizeof url,
             "http://127.0.0.1:%d/v1/webhook/whatsapp/%s/%s/"
             "%s?hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong",
             W.port, W.tenant, W.ws, W.wa);
    body = ts_http("GET", url, NULL, NULL, 0, &st);
    cr_assert_eq(st, 403);
    free(body);
    snprintf(url, sizeof url,
             "http://127.0.0.1:%d/v1/webhook/whatsapp/%s/%s/"
             "%s?hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=%s",
             W.port, W.tenant, W.ws, W.wa, VERIFY_TOKEN);
    body = ts_http("GET", url, NULL, NULL, 0, &st);
    cr_assert_eq(st, 403);
    free(body);
}

/* A body unique to this test run, so duplicates are only our own. */
static char *unique_text_payload(size_t *len)
{
    char id[SB_UUID_STRLEN];
    cr_assert_eq(sb_uuid_v7_str(id), 0);
    char *p = malloc(1024);
    int n =
        snprintf(p, 1024,
                 "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":"
                 "[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
                 "\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"1\"},"
                 "\"messages\":[{\"from\":\"16505551234\",\"id\":\"wamid.%s\",\"timestamp\":"
                 "\"1739321024\",\"type\":\"text\",\"text\":{\"body\":\"hi\"}}]},\"field\":"
                 "\"messages\"}]}]}",
                 id);
    *len = (size_t)n;
    return p;
}

Test(webhook, sequential_replay_is_one_event)
{
    size_t len;
    char *body = unique_text_payload(&len);
    long st;
    json_t *a = post_signed(&W, "whatsapp", W.wa, body, len, &st);
    cr_assert_eq(st, 200);
    json_t *b = post_signed(&W, "whatsapp", W.wa, body, len, &st);
    cr_assert_eq(st, 200, "a replay still gets 2xx");
    cr_assert_str_eq(str(b, "eventId"), str(a, "eventId"));
    cr_assert(json_is_true(json_object_get(b, "duplicate")));
    cr_assert_eq(stream_count(&W, str(a, "eventId")), 1);
    json_decref(a);
    json_decref(b);
    free(body);
}

struct racer {
    pthread_t t;
    const char *body;
    size_t len;
    long status;
    char event_id[SB_UUID_STRLEN];
    bool duplicate;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    json_t *j = post_signed(&W, "whatsapp", W.wa, r->body, r->len, &r->status);
    snprintf(r->event_id, sizeof r->event_id, "%s", str(j, "eventId"));
    r->duplicate = json_is_true(json_object_get(j, "duplicate"));
    json_decref(j);
    return NULL;
}

Test(webhook, concurrent_replays_are_one_event)
{
    size_t len;
    char *body = unique_text_payload(&len);
    struct racer r[12];
    for (int i = 0; i < 12; i++) {
        r[i] = (struct racer){.body = body, .len = len};
        pthread_create(&r[i].t, NULL, race, &r[i]);
    }
    int originals = 0;
    for (int i = 0; i < 12; i++) {
        pthread_join(r[i].t, NULL);
        cr_assert_eq(r[i].status, 200);
        cr_assert_str_eq(r[i].event_id, r[0].event_id, "every replay names the same event");
        originals += !r[i].duplicate;
    }
    cr_assert_eq(originals, 1);
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
    cr_assert_eq(stream_count(&W, r[0].event_id), 1, "handed to the processor once");
    free(body);
}

/* A series of the gateway's /metrics (0 when not there yet). */
static double counter(const char *name)
{
    return ts_metric(W.port, name);
}

static void post_unique(int n)
{
    for (int i = 0; i < n; i++) {
        size_t len;
        long st;
        char *b = unique_text_payload(&len);
        json_decref(post_signed(&W, "whatsapp", W.wa, b, len, &st));
        cr_assert_eq(st, 200);
        free(b);
    }
}

/* Batches go in with a plain INSERT; a repeated key makes the unique index
 * refuse one, which is then written again row-aware: the replay is recorded
 * as a duplicate and the new events beside it still land. After a while
 * the plain insert is back and still catches the next replay. */
Test(webhook, replay_in_a_batch_of_new_events)
{
    size_t len;
    char *old = unique_text_payload(&len);
    long st;
    json_t *orig = post_signed(&W, "whatsapp", W.wa, old, len, &st);
    cr_assert_eq(st, 200);
    for (int round = 0; round < 2; round++) {
        post_unique(70); /* well past the careful spell an earlier replay may have started */
        double before = counter("gateway_commit_conflict_retries_total");
        struct racer r[12];
        char *bodies[12];
        for (int i = 0; i < 12; i++) {
            size_t n = len;
            bodies[i] = i == 0 ? old : unique_text_payload(&n);
            r[i] = (struct racer){.body = bodies[i], .len = n};
            pthread_create(&r[i].t, NULL, race, &r[i]);
        }
        for (int i = 0; i < 12; i++) {
            pthread_join(r[i].t, NULL);
            cr_assert_eq(r[i].status, 200);
            cr_assert_eq(r[i].duplicate, i == 0, "round %d request %d", round, i);
            if (i == 0)
                cr_assert_str_eq(r[i].event_id, str(orig, "eventId"));
            else
                free(bodies[i]);
            PGresult *row = event_row(&W, r[i].event_id);
            cr_assert_not_null(row, "request %d's event is stored", i);
            cr_assert_str_eq(PQgetvalue(row, 0, 0), "accepted");
            PQclear(row);
        }
        cr_assert_eq(counter("gateway_commit_conflict_retries_total"), before + 1,
                     "round %d: the refused batch was written again once", round);
    }
    json_decref(orig);
    free(old);
}

/* After a refused batch, the next 64 batches (one request each here) are
 * written row-aware: a replay among them is caught without a refusal; the
 * 65th is plain again, and a replay there is refused once more. */
Test(webhook, careful_spell_lasts_64_batches)
{
    size_t len;
    long st;
    char *old = unique_text_payload(&len);
    json_decref(post_signed(&W, "whatsapp", W.wa, old, len, &st));
    cr_assert_eq(st, 200);
    const char *name = "gateway_commit_conflict_retries_total";
    double c0 = counter(name);
    json_t *j = post_signed(&W, "whatsapp", W.wa, old, len, &st);
    cr_assert(st == 200 && json_is_true(json_object_get(j, "duplicate")));
    json_decref(j);
    cr_assert_eq(counter(name), c0 + 1, "the first replay is refused by the plain insert");
    post_unique(63);
    j = post_signed(&W, "whatsapp", W.wa, old, len, &st);
    cr_assert(st == 200 && json_is_true(json_object_get(j, "duplicate")));
    json_decref(j);
    cr_assert_eq(counter(name), c0 + 1, "the 64th batch after is still row-aware");
    post_unique(64);
    j = post_signed(&W, "whatsapp", W.wa, old, len, &st);
    cr_assert(st == 200 && json_is_true(json_object_get(j, "duplicate")));
    json_decref(j);
    cr_assert_eq(counter(name), c0 + 2, "the 65th batch after is plain again");
    free(old);
}

/* One signed WhatsApp request to any tenant, sent from its own thread. */
struct shot {
    pthread_t t;
    const char *tenant, *ws, *wa;
    char *body;
    size_t len;
    long status;
    char event_id[SB_UUID_STRLEN];
};

static void *shoot(void *arg)
{
    struct shot *s = arg;
    json_t *j = post_signed_to(&W, s->tenant, s->ws, s->wa, s->body, s->len, &s->status);
    snprintf(s->event_id, sizeof s->event_id, "%s", str(j, "eventId"));
    json_decref(j);
    return NULL;
}

/* Sends every shot at once and waits for all the answers. */
static void fire(struct shot *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(pthread_create(&s[i].t, NULL, shoot, &s[i]), 0);
    for (size_t i = 0; i < n; i++) {
        pthread_join(s[i].t, NULL);
        free(s[i].body);
        s[i].body = NULL;
    }
}

static void assert_stored(const char *event_id)
{
    PGresult *row = event_row(&W, event_id);
    cr_assert_not_null(row, "event %s is stored", event_id);
    cr_assert_str_eq(PQgetvalue(row, 0, 0), "accepted");
    PQclear(row);
}

/* A tenant deleted while the gateway still has it cached: its rows break the
 * batch they share with others (foreign key), the batch is retried row by
 * row, and only that tenant's requests fail (503, never a 2xx); the rest are
 * committed and acknowledged. */
Test(webhook, rows_of_a_vanished_tenant_fail_alone)
{
    char t[SB_UUID_STRLEN], ws[SB_UUID_STRLEN], wa[SB_UUID_STRLEN];
    world_add_tenant(&W, t, ws, wa);
    size_t len;
    long st;
    char *warm = unique_text_payload(&len);
    json_decref(post_signed_to(&W, t, ws, wa, warm, len, &st));
    free(warm);
    cr_assert_eq(st, 200, "the tenant and its channel are now in the lookup cache");
    world_delete_tenant(&W, t);

    struct shot s[24];
    for (size_t i = 0; i < 24; i++) {
        bool doomed = i % 2;
        s[i] = (struct shot){
            .tenant = doomed ? t : W.tenant, .ws = doomed ? ws : W.ws, .wa = doomed ? wa : W.wa};
        s[i].body = unique_text_payload(&s[i].len);
    }
    fire(s, 24);
    for (size_t i = 0; i < 24; i++) {
        if (i % 2) {
            cr_assert_eq(s[i].status, 503, "request %zu to the deleted tenant", i);
        } else {
            cr_assert_eq(s[i].status, 200, "request %zu beside it", i);
            assert_stored(s[i].event_id);
        }
    }
    char *log = ts_read_file(W.log, NULL);
    cr_assert(log && strstr(log, "retrying rows one by one"), "a shared batch was retried");
    free(log);
}

/* Rows of more tenants than one transaction takes (8) all land; the batch
 * is written as several transactions. */
Test(webhook, a_batch_of_many_tenants)
{
    enum { TENANTS = 12, PER = 4 };
    char t[TENANTS][SB_UUID_STRLEN], ws[TENANTS][SB_UUID_STRLEN], wa[TENANTS][SB_UUID_STRLEN];
    for (int i = 0; i < TENANTS; i++) {
        world_add_tenant(&W, t[i], ws[i], wa[i]);
        size_t len;
        long st;
        char *warm = unique_text_payload(&len);
        json_decref(post_signed_to(&W, t[i], ws[i], wa[i], warm, len, &st));
        free(warm);
        cr_assert_eq(st, 200);
    }
    double batches = counter("gateway_commit_batch_rows_count");
    double txs = counter("gateway_commit_transactions_total");
    bool split = false;
    for (int round = 0; round < 20 && !split; round++) {
        struct shot s[TENANTS * PER];
        for (int i = 0; i < TENANTS * PER; i++) {
            s[i] = (struct shot){
                .tenant = t[i % TENANTS], .ws = ws[i % TENANTS], .wa = wa[i % TENANTS]};
            s[i].body = unique_text_payload(&s[i].len);
        }
        fire(s, TENANTS * PER);
        for (int i = 0; i < TENANTS * PER; i++) {
            cr_assert_eq(s[i].status, 200, "round %d request %d", round, i);
            assert_stored(s[i].event_id);
        }
        double nb = counter("gateway_commit_batch_rows_count") - batches;
        double nt = counter("gateway_commit_transactions_total") - txs;
        split = nt > nb; /* some batch held more than 8 tenants */
    }
    cr_assert(split, "no batch ever held more than 8 tenants");
}

Test(webhook, metrics_show_outcomes_and_batches)
{
    size_t len;
    char *body = unique_text_payload(&len);
    long st;
    json_decref(post_signed(&W, "whatsapp", W.wa, body, len, &st));
    const char *wrong[] = {"X-Hub-Signature-256: sha256=00", NULL};
    json_decref(post_webhook(&W, "whatsapp", W.tenant, W.ws, W.wa, body, len, wrong, &st));
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", W.port);
    /* The wake-up for the processor is published after the answer, by the
     * hand-off thread: wait for it to be counted. */
    char *text = NULL;
    for (int tries = 0; tries < 100; tries++) {
        free(text);
        text = ts_http("GET", url, NULL, NULL, 0, &st);
        cr_assert_eq(st, 200);
        if (strstr(text, "gateway_handoff_total{result=\"published\"}"))
            break;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert(
        strstr(text, "gateway_webhook_requests_total{source=\"whatsapp\",outcome=\"accepted\"}"),
        "%s", text);
    cr_assert(strstr(text, "gateway_webhook_rejections_total{reason=\"malformed_signature\"} 1"),
              "%s", text);
    cr_assert(strstr(text, "gateway_commit_batch_rows_count "), "%s", text);
    cr_assert(strstr(text, "gateway_commit_seconds_bucket"), "%s", text);
    cr_assert(strstr(text, "gateway_handoff_total{result=\"published\"}"), "%s", text);
    free(text);
    free(body);
}
