/* The gateway when its dependencies fail: PostgreSQL down means 503 and
 * nothing acknowledged; Redis down means events are still committed and
 * acknowledged, and the relay hands them to the processor once Redis is back. */
#include "world.h"

#include "testsupport.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *unique_payload(char wamid[80], size_t *len)
{
    char id[SB_UUID_STRLEN];
    cr_assert_eq(sb_uuid_v7_str(id), 0);
    snprintf(wamid, 80, "wamid.%s", id);
    char *p = malloc(1024);
    *len = (size_t)snprintf(p, 1024,
                            "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
                            "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\","
                            "\"metadata\":{\"display_phone_number\":\"15550783881\","
                            "\"phone_number_id\":\"1\"},\"messages\":[{\"from\":\"16505551234\","
                            "\"id\":\"%s\",\"timestamp\":\"1739321024\",\"type\":\"text\","
                            "\"text\":{\"body\":\"hi\"}}]},\"field\":\"messages\"}]}]}",
                            wamid);
    return p;
}

static long rows_with_key(const char *owner_url, const char *wamid)
{
    PGconn *c = PQconnectdb(owner_url);
    cr_assert_eq(PQstatus(c), CONNECTION_OK);
    char key[128];
    snprintf(key, sizeof key, "wa:m:%s", wamid);
    const char *p[] = {key};
    PGresult *r = PQexecParams(c, "SELECT count(*) FROM webhook_events WHERE dedup_key = $1", 1,
                               NULL, p, NULL, NULL, 0);
    long n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return n;
}

Test(outage, postgres_down_is_503_and_nothing_acknowledged, .timeout = 180)
{
    struct ts_pg pg;
    ts_pg_start(&pg);
    struct world w;
    world_create(&w, pg.owner_url, pg.app_url, ts_env("SABIA_REDIS_URL"));
    world_start_gateway(&w);
    char wamid[80];
    size_t len;
    char *body = unique_payload(wamid, &len);
    long st;
    json_t *j = post_signed(&w, "whatsapp", w.wa, body, len, &st);
    cr_assert_eq(st, 200, "warm-up failed (log %s)", w.log);
    json_decref(j);
    free(body);

    ts_pg_stop(&pg);
    body = unique_payload(wamid, &len);
    for (int i = 0; i < 3; i++) {
        j = post_signed(&w, "whatsapp", w.wa, body, len, &st);
        cr_assert_eq(st, 503, "got %ld while PostgreSQL was down", st);
        cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                         "unavailable");
        json_decref(j);
    }
    ts_pg_restart(&pg);
    cr_assert_eq(rows_with_key(pg.owner_url, wamid), 0, "an unacknowledged event was stored");
    /* The sender retries, and now it lands. */
    for (int i = 0; i < 50; i++) {
        j = post_signed(&w, "whatsapp", w.wa, body, len, &st);
        json_decref(j);
        if (st == 200)
            break;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(st, 200, "not accepted after PostgreSQL came back (log %s)", w.log);
    cr_assert_eq(rows_with_key(pg.owner_url, wamid), 1);
    free(body);
    world_stop_gateway(&w);
    ts_pg_destroy(&pg);
}

Test(outage, redis_down_still_commits_and_relay_publishes_later, .timeout = 180)
{
    struct ts_redis redis = {0};
    ts_redis_start(&redis, 0);
    char redis_url[64];
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d/0", redis.port);
    struct world w;
    world_create(&w, ts_env("SABIA_DATABASE_OWNER_URL"), ts_env("SABIA_DATABASE_URL"), redis_url);
    world_start_gateway(&w);

    ts_redis_stop(&redis);
    char ids[3][SB_UUID_STRLEN];
    for (int i = 0; i < 3; i++) {
        char wamid[80];
        size_t len;
        char *body = unique_payload(wamid, &len);
        long st;
        json_t *j = post_signed(&w, "whatsapp", w.wa, body, len, &st);
        cr_assert_eq(st, 200, "event %d not accepted while Redis was down (log %s)", i, w.log);
        snprintf(ids[i], sizeof ids[i], "%s", json_string_value(json_object_get(j, "eventId")));
        PGresult *r = event_row(&w, ids[i]);
        cr_assert_not_null(r, "acknowledged but not committed");
        cr_assert_str_eq(PQgetvalue(r, 0, 0), "accepted");
        PQclear(r);
        json_decref(j);
        free(body);
    }
    ts_redis_start(&redis, redis.port);
    for (int i = 0; i < 3; i++) {
        int n = 0;
        for (int t = 0; t < 150 && (n = stream_count(&w, ids[i])) == 0; t++) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
        cr_assert_geq(n, 1, "event %s never reached the stream (log %s)", ids[i], w.log);
    }
    world_stop_gateway(&w);
    ts_redis_stop(&redis);
}
