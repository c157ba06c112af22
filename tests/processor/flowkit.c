/* flowkit.c - the world of the processor's end-to-end tests: the gateway,
 * one or two processors, the fake Graph API and the fake LLM, and helpers
 * that speak as a customer and look at what came out. See flowkit.h. */
#include "flowkit.h"

#include "testsupport.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct world W;
pid_t GRAPH, PROC[2], LLM;
int PROC_PORT[2];
int GRAPH_PORT, LLM_PORT;
char PROC_LOG[2][512];

void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void start_processor(int i)
{
    static char env[12][512];
    int port = PROC_PORT[i] = ts_free_port();
    snprintf(env[0], sizeof env[0], "SABIA_PROCESSOR_PORT=%d", port);
    snprintf(env[1], sizeof env[1], "SABIA_DATABASE_URL=%s", W.app_url);
    snprintf(env[2], sizeof env[2], "SABIA_REDIS_URL=%s", W.redis_url);
    snprintf(env[3], sizeof env[3], "SABIA_ENV_FILE=/nonexistent");
    snprintf(env[4], sizeof env[4], "SABIA_EVENTS_STREAM=%s", W.stream);
    snprintf(env[5], sizeof env[5], "SABIA_GRAPH_BASE_URL=http://127.0.0.1:%d", GRAPH_PORT);
    snprintf(env[6], sizeof env[6], "SABIA_INSTAGRAM_BASE_URL=http://127.0.0.1:%d", GRAPH_PORT);
    snprintf(env[7], sizeof env[7], "SABIA_PROCESSOR_RECLAIM_IDLE_MS=3000");
    snprintf(env[8], sizeof env[8], "SABIA_REDIS_POOL_SIZE=16");
    snprintf(env[9], sizeof env[9], "SABIA_LLM_BASE_URL=http://127.0.0.1:%d/v1", LLM_PORT);
    snprintf(env[10], sizeof env[10], "SABIA_LLM_BREAKER_FAILURES=3");
    snprintf(env[11], sizeof env[11], "SABIA_LLM_BREAKER_COOLDOWN_MS=1000");
    char *extra[] = {env[0], env[1], env[2], env[3], env[4], env[5], env[6], env[7], env[8],
                     env[9], env[10], env[11], NULL};
    char *bin = ts_build_path("apps/processor/sabia-processor");
    snprintf(PROC_LOG[i], sizeof PROC_LOG[i], "%s/processor-%d.log", ts_env("SABIA_TEST_TMP"), port);
    char *argv[] = {bin, NULL};
    PROC[i] = ts_spawn(argv, extra, PROC_LOG[i]);
    free(bin);
    cr_assert(ts_wait_port(port, 10000), "processor did not start (log %s)", PROC_LOG[i]);
}

void flow_setup(void)
{
    world_create(&W, ts_env("SABIA_DATABASE_OWNER_URL"), ts_env("SABIA_DATABASE_URL"),
                 ts_env("SABIA_REDIS_URL"));
    world_start_gateway(&W);
    GRAPH_PORT = ts_free_port();
    char port[16];
    snprintf(port, sizeof port, "%d", GRAPH_PORT);
    char *bin = ts_build_path("tests/fakes/sabia-fake-graph");
    char log[512];
    snprintf(log, sizeof log, "%s/fake-graph-%d.log", ts_env("SABIA_TEST_TMP"), GRAPH_PORT);
    char *argv[] = {bin, port, ACCESS_TOKEN, NULL};
    GRAPH = ts_spawn(argv, NULL, log);
    free(bin);
    cr_assert(ts_wait_port(GRAPH_PORT, 10000), "fake graph did not start");
    LLM_PORT = ts_free_port();
    static char lport[32];
    char llog[512];
    snprintf(lport, sizeof lport, "FAKE_LLM_PORT=%d", LLM_PORT);
    snprintf(llog, sizeof llog, "%s/fake-llm-%d.log", ts_env("SABIA_TEST_TMP"), LLM_PORT);
    char *lbin = ts_build_path("tests/fakes/sabia-fake-llm");
    char *largv[] = {lbin, NULL};
    char *lenv[] = {lport, NULL};
    LLM = ts_spawn(largv, lenv, llog);
    free(lbin);
    cr_assert(ts_wait_port(LLM_PORT, 10000), "fake LLM did not start");
    start_processor(0);
}

void flow_teardown(void)
{
    for (int i = 0; i < 2; i++)
        if (PROC[i] > 0)
            ts_stop(PROC[i], SIGTERM, 15000);
    PROC[0] = PROC[1] = 0;
    ts_stop(GRAPH, SIGTERM, 5000);
    ts_stop(LLM, SIGTERM, 5000);
    world_stop_gateway(&W);
}


/* A customer number no other test uses. */
void new_customer(char phone[16])
{
    snprintf(phone, 16, "1%010d", (int)(sb_now_ms() % 1000000000) + ts_free_port());
}

char *wa_message(const char *from, const char *text, char wamid[80])
{
    char id[SB_UUID_STRLEN];
    cr_assert_eq(sb_uuid_v7_str(id), 0);
    snprintf(wamid, 80, "wamid.%s", id);
    char *p = malloc(2048);
    snprintf(p, 2048,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{"
             "\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":"
             "\"" BUSINESS_PHONE "\",\"phone_number_id\":\"1\"},\"contacts\":[{\"profile\":{\"name\":"
             "\"Customer\"},\"wa_id\":\"%s\"}],\"messages\":[{\"from\":\"%s\",\"id\":\"%s\","
             "\"timestamp\":\"1739321024\",\"type\":\"text\",\"text\":{\"body\":\"%s\"}}]},"
             "\"field\":\"messages\"}]}]}",
             from, from, wamid, text);
    return p;
}

void customer_says(const char *phone, const char *text)
{
    char wamid[80];
    char *body = wa_message(phone, text, wamid);
    long st;
    json_decref(post_signed(&W, "whatsapp", W.wa, body, strlen(body), &st));
    cr_assert_eq(st, 200, "gateway refused the message (log %s)", W.log);
    free(body);
}

/* Sends the fake graph received for `phone`; *last gets the last text. */
int sends_to(const char *phone, char *last, size_t last_len)
{
    char url[128];
    long st;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_requests", GRAPH_PORT);
    char *text = ts_http("GET", url, NULL, NULL, 0, &st);
    json_t *all = json_loads(text, 0, NULL);
    free(text);
    int n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r) {
        json_t *body = json_object_get(r, "body");
        const char *to = json_string_value(json_object_get(body, "to"));
        if (!to) /* Instagram: {"recipient":{"id":…},"message":{"text":…}} */
            to = json_string_value(json_object_get(json_object_get(body, "recipient"), "id"));
        if (to && strcmp(to, phone) == 0) {
            n++;
            const char *t = json_string_value(json_object_get(json_object_get(body, "text"), "body"));
            if (!t)
                t = json_string_value(json_object_get(json_object_get(body, "message"), "text"));
            if (last)
                snprintf(last, last_len, "%s", t ? t : "");
        }
    }
    json_decref(all);
    return n;
}

int wait_sends(const char *phone, int want, int timeout_ms, char *last, size_t last_len)
{
    int n = 0;
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        if ((n = sends_to(phone, last, last_len)) >= want)
            return n;
        sleep_ms(100);
    }
    return n;
}

/* One value from the owner's view of the customer's latest bot reply. */
char *reply_field(const char *phone, const char *column)
{
    PGconn *c = PQconnectdb(W.owner_url);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM messages m JOIN conversations cv ON cv.tenant_id = m.tenant_id AND "
             "cv.id = m.conversation_id JOIN contacts ct ON ct.tenant_id = cv.tenant_id AND "
             "ct.id = cv.contact_id WHERE m.tenant_id = $1 AND ct.external_id = $2 AND "
             "m.sender_type = 'bot' ORDER BY m.created_at DESC LIMIT 1",
             column);
    PQclear(PQexec(c, "BEGIN"));
    const char *t[] = {W.tenant};
    PQclear(PQexecParams(c, "SELECT set_config('app.tenant_id', $1, true)", 1, NULL, t, NULL, NULL, 0));
    const char *p[] = {W.tenant, phone};
    PGresult *r = PQexecParams(c, sql, 2, NULL, p, NULL, NULL, 0);
    char *v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? strdup(PQgetvalue(r, 0, 0))
                                                                       : NULL;
    PQclear(r);
    PQclear(PQexec(c, "COMMIT"));
    PQfinish(c);
    return v;
}

bool wait_reply_field(const char *phone, const char *column, const char *want, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        char *v = reply_field(phone, column);
        bool ok = v && strcmp(v, want) == 0;
        free(v);
        if (ok)
            return true;
        sleep_ms(100);
    }
    return false;
}

void post_status(const char *provider_id, const char *phone, const char *status)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{"
             "\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":"
             "\"" BUSINESS_PHONE "\",\"phone_number_id\":\"1\"},\"statuses\":[{\"id\":\"%s\","
             "\"status\":\"%s\",\"timestamp\":\"1739321100\",\"recipient_id\":\"%s\"}]},"
             "\"field\":\"messages\"}]}]}",
             provider_id, status, phone);
    long st;
    json_decref(post_signed(&W, "whatsapp", W.wa, body, strlen(body), &st));
    cr_assert_eq(st, 200);
}

void script_graph(const char *json)
{
    char url[128];
    long st;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_script", GRAPH_PORT);
    free(ts_http("POST", url, NULL, json, strlen(json), &st));
    cr_assert_eq(st, 200);
}


/* Runs `sql` as the owner inside the test tenant; the first value, or NULL. */
char *tenant_sql(const char *sql)
{
    PGconn *c = PQconnectdb(W.owner_url);
    PQclear(PQexec(c, "BEGIN"));
    const char *t[] = {W.tenant};
    PQclear(PQexecParams(c, "SELECT set_config('app.tenant_id', $1, true)", 1, NULL, t, NULL, NULL, 0));
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
    char *v = st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)
                  ? strdup(PQgetvalue(r, 0, 0))
                  : NULL;
    PQclear(r);
    PQclear(PQexec(c, "COMMIT"));
    PQfinish(c);
    return v;
}
