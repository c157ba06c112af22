/* test_fake_graph.c - sabia-fake-graph as a separate process, driven with
 * libcurl: the WhatsApp and Instagram success shapes (read back with
 * channels_send_response_parse()), token checks, body validation, scripted
 * Graph errors (130429 as in the fixture, 131056, 190), latency, the request
 * log and its clearing, concurrent sends, and a clean stop on SIGTERM. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "channels.h"
#include "testsupport.h"

#define TOKEN      "fake-token-123"
#define THREADS    8
#define PER_THREAD 25

static pid_t PID;
static int PORT;

static void start_fake(void)
{
    PORT = ts_free_port();
    char port[16], log[512];
    snprintf(port, sizeof port, "%d", PORT);
    snprintf(log, sizeof log, "%s/fake-graph-%d.log", ts_env("SABIA_TEST_TMP"), PORT);
    char *bin = ts_build_path("tests/fakes/sabia-fake-graph");
    char *argv[] = {bin, port, TOKEN, NULL};
    PID = ts_spawn(argv, NULL, log);
    free(bin);
    cr_assert(ts_wait_port(PORT, 10000), "the fake did not listen on %d (see %s)", PORT, log);
}

static void stop_fake(void)
{
    if (PID > 0) {
        int st = ts_stop(PID, SIGTERM, 5000);
        PID = 0;
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the fake must stop cleanly (%d)", st);
    }
}

TestSuite(fake_graph, .init = start_fake, .fini = stop_fake, .timeout = 60);

/* One request; returns the parsed JSON answer (never NULL) and sets *status. */
static json_t *call(const char *method, const char *path, const char *auth, const char *body,
                    long *status)
{
    char url[256], hdr[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", PORT, path);
    snprintf(hdr, sizeof hdr, "Authorization: %s", auth ? auth : "");
    const char *headers[] = {"Content-Type: application/json", auth ? hdr : NULL, NULL};
    char *out = ts_http(method, url, headers, body, body ? strlen(body) : 0, status);
    json_error_t err;
    json_t *j = json_loads(out, 0, &err);
    cr_assert_not_null(j, "%s %s: not JSON (%s): %s", method, path, err.text, out);
    free(out);
    return j;
}

static json_t *wa_send(const char *auth, const char *body, long *status)
{
    return call("POST", "/v21.0/106540352242922/messages", auth, body, status);
}

#define BEARER "Bearer " TOKEN
#define WA_BODY(text)                                                                              \
    "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":"                \
    "\"16505551234\",\"type\":\"text\",\"text\":{\"preview_url\":false,\"body\":\"" text "\"}}"

static long graph_code(const json_t *answer)
{
    const json_t *code = json_object_get(json_object_get(answer, "error"), "code");
    cr_assert(json_is_integer(code), "no Graph error code in the answer");
    return (long)json_integer_value(code);
}

/* The answer as the processor will read it. */
static struct channels_send_result read_back(enum channel_type t, long status, json_t *answer)
{
    char *s = json_dumps(answer, JSON_COMPACT);
    struct channels_send_result r;
    cr_assert_eq(channels_send_response_parse(t, status, s, strlen(s), &r), 0);
    free(s);
    return r;
}

Test(fake_graph, whatsapp_success_shape)
{
    long st;
    json_t *a = wa_send(BEARER, WA_BODY("Thanks!"), &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(json_string_value(json_object_get(a, "messaging_product")), "whatsapp");
    json_t *c0 = json_array_get(json_object_get(a, "contacts"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(c0, "input")), "16505551234");
    cr_assert_str_eq(json_string_value(json_object_get(c0, "wa_id")), "16505551234");
    const char *id =
        json_string_value(json_object_get(json_array_get(json_object_get(a, "messages"), 0), "id"));
    cr_assert_not_null(id);
    cr_assert_eq(strncmp(id, "wamid.", 6), 0, "%s", id);
    struct channels_send_result r = read_back(CHANNEL_WHATSAPP, st, a);
    cr_assert(r.ok);
    cr_assert_str_eq(r.message_id, id);
    long st2;
    json_t *b = wa_send(BEARER, WA_BODY("again"), &st2);
    const char *id2 =
        json_string_value(json_object_get(json_array_get(json_object_get(b, "messages"), 0), "id"));
    cr_assert_str_neq(id, id2, "every send gets a fresh id");
    json_decref(a);
    json_decref(b);
}

Test(fake_graph, instagram_success_shape)
{
    long st;
    const char *body =
        "{\"recipient\":{\"id\":\"1234567890123456\"},\"message\":{\"text\":\"Hi\"}}";
    json_t *a = call("POST", "/v21.0/17841400000000000/messages", BEARER, body, &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(json_string_value(json_object_get(a, "recipient_id")), "1234567890123456");
    struct channels_send_result r = read_back(CHANNEL_INSTAGRAM, st, a);
    cr_assert(r.ok);
    json_decref(a);
    /* /me/messages with the token as a query parameter. */
    a = call("POST", "/v21.0/me/messages?access_token=" TOKEN, NULL, body, &st);
    cr_assert_eq(st, 200);
    cr_assert_not_null(json_object_get(a, "message_id"));
    json_decref(a);
}

Test(fake_graph, token_checks)
{
    long st;
    json_t *a = wa_send(NULL, WA_BODY("x"), &st);
    cr_assert_eq(st, 401);
    cr_assert_eq(graph_code(a), 190);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(a, "error"), "type")),
                     "OAuthException");
    struct channels_send_result r = read_back(CHANNEL_WHATSAPP, st, a);
    cr_assert_eq(r.error_class.retry, DOMAIN_FAIL);
    cr_assert(r.error_class.alert);
    json_decref(a);
    a = wa_send("Bearer wrong", WA_BODY("x"), &st);
    cr_assert_eq(st, 401);
    json_decref(a);
    a = wa_send("Basic " TOKEN, WA_BODY("x"), &st);
    cr_assert_eq(st, 401);
    json_decref(a);
    a = wa_send("Bearer " TOKEN "x", WA_BODY("x"), &st);
    cr_assert_eq(st, 401, "a longer token is a different token");
    json_decref(a);
    /* The query parameter is Instagram's, not WhatsApp's. */
    a = call("POST", "/v21.0/106/messages?access_token=" TOKEN, NULL, WA_BODY("x"), &st);
    cr_assert_eq(st, 401);
    json_decref(a);
}

Test(fake_graph, body_validation)
{
    static const char *const bad[] = {
        "not json",
        "[]",
        "{\"to\":\"1\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}",
        "{\"messaging_product\":\"whatsapp\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}",
        "{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"image\",\"image\":{}}",
        "{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"text\",\"text\":{}}",
        "{\"messaging_product\":\"whatsapp\",\"to\":\"1\",\"type\":\"text\",\"text\":{\"body\":"
        "\"\"}}",
        "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"group\",\"to\":\"1\","
        "\"type\":\"text\",\"text\":{\"body\":\"x\"}}",
    };
    long st;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *a = wa_send(BEARER, bad[i], &st);
        cr_assert_eq(st, 400, "case %zu: %ld", i, st);
        cr_assert_eq(graph_code(a), 100, "case %zu", i);
        cr_assert_eq(read_back(CHANNEL_WHATSAPP, st, a).error_class.retry, DOMAIN_FAIL);
        json_decref(a);
    }
    /* text.body: 4096 characters pass, 4097 do not; an emoji counts two. */
    char *body = malloc(8300);
    cr_assert_not_null(body);
    for (int n = 4096; n <= 4097; n++) {
        int len = snprintf(body, 8300,
                           "{\"messaging_product\":\"whatsapp\",\"to\":\"1\","
                           "\"type\":\"text\",\"text\":{\"body\":\"");
        memset(body + len, 'x', (size_t)n);
        snprintf(body + len + n, 8300 - (size_t)(len + n), "\"}}");
        json_t *a = wa_send(BEARER, body, &st);
        cr_assert_eq(st, n == 4096 ? 200 : 400, "%d characters: %ld", n, st);
        json_decref(a);
    }
    free(body);
    json_t *a = call("POST", "/v21.0/me/messages", BEARER, "{\"recipient\":{\"id\":\"1\"}}", &st);
    cr_assert_eq(st, 400);
    cr_assert_eq(graph_code(a), 100);
    cr_assert_null(json_object_get(json_object_get(json_object_get(a, "error"), "error_data"),
                                   "messaging_product"),
                   "Instagram errors carry no WhatsApp product");
    json_decref(a);
}

Test(fake_graph, scripted_130429_like_the_fixture)
{
    long st;
    json_t *a =
        call("POST", "/_script", NULL, "{\"fail_next\":2,\"status\":400,\"code\":130429}", &st);
    cr_assert_eq(st, 200);
    json_decref(a);
    char *fixture_path = ts_source_path("../shared/fixtures/wa_send_error_130429.json");
    char *want_s = ts_read_file(fixture_path, NULL);
    json_t *want = json_loads(want_s, 0, NULL);
    cr_assert_not_null(want);
    for (int i = 0; i < 2; i++) {
        a = wa_send(BEARER, WA_BODY("x"), &st);
        cr_assert_eq(st, 400);
        json_t *e = json_object_get(a, "error"), *we = json_object_get(want, "error");
        /* Same members and values as the fixture, except the trace id. */
        cr_assert_eq(json_object_size(e), json_object_size(we));
        cr_assert(json_equal(json_object_get(e, "message"), json_object_get(we, "message")));
        cr_assert(json_equal(json_object_get(e, "type"), json_object_get(we, "type")));
        cr_assert(json_equal(json_object_get(e, "code"), json_object_get(we, "code")));
        cr_assert(json_equal(json_object_get(e, "error_data"), json_object_get(we, "error_data")));
        cr_assert(json_is_string(json_object_get(e, "fbtrace_id")));
        struct channels_send_result r = read_back(CHANNEL_WHATSAPP, st, a);
        cr_assert_eq(r.code, 130429);
        cr_assert_eq(r.error_class.retry, DOMAIN_RETRY);
        json_decref(a);
    }
    a = wa_send(BEARER, WA_BODY("x"), &st);
    cr_assert_eq(st, 200, "the script is used up");
    json_decref(a);
    json_decref(want);
    free(want_s);
    free(fixture_path);
}

Test(fake_graph, scripted_other_codes_and_bad_scripts)
{
    long st;
    json_decref(call("POST", "/_script", NULL, "{\"fail_next\":1,\"code\":131056}", &st));
    json_t *a = wa_send(BEARER, WA_BODY("x"), &st);
    cr_assert_eq(st, 400);
    cr_assert_eq(read_back(CHANNEL_WHATSAPP, st, a).error_class.retry, DOMAIN_RETRY_RECIPIENT);
    json_decref(a);
    json_decref(call("POST", "/_script", NULL, "{\"fail_next\":1,\"code\":190}", &st));
    a = wa_send(BEARER, WA_BODY("x"), &st);
    cr_assert_eq(st, 401, "190 defaults to 401");
    cr_assert_eq(graph_code(a), 190);
    json_decref(a);
    json_decref(call("POST", "/_script", NULL,
                     "{\"fail_next\":1,\"status\":503,\"code\":131016,\"message\":\"down\","
                     "\"details\":\"try later\"}",
                     &st));
    a = wa_send(BEARER, WA_BODY("x"), &st);
    cr_assert_eq(st, 503);
    struct channels_send_result r = read_back(CHANNEL_WHATSAPP, st, a);
    cr_assert_str_eq(r.error_message, "down");
    cr_assert_str_eq(r.error_details, "try later");
    json_decref(a);
    /* Auth and shape are checked before the script: a bad call does not use it up. */
    json_decref(call("POST", "/_script", NULL, "{\"fail_next\":1,\"code\":131047}", &st));
    json_decref(wa_send(NULL, WA_BODY("x"), &st));
    a = wa_send(BEARER, WA_BODY("x"), &st);
    cr_assert_eq(graph_code(a), 131047);
    json_decref(a);

    static const char *const bad[] = {"[]",
                                      "nope",
                                      "{\"fail_next\":-1}",
                                      "{\"status\":99}",
                                      "{\"delay_ms\":60001}",
                                      "{\"code\":\"x\"}",
                                      "{\"fail_next\":1000001}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a = call("POST", "/_script", NULL, bad[i], &st);
        cr_assert_eq(st, 400, "script %s accepted", bad[i]);
        json_decref(a);
    }
    a = call("GET", "/_script", NULL, NULL, &st);
    cr_assert_eq(json_integer_value(json_object_get(a, "fail_next")), 0);
    json_decref(a);
}

Test(fake_graph, latency)
{
    long st;
    json_decref(call("POST", "/_script", NULL, "{\"delay_ms\":400}", &st));
    int64_t t0 = sb_mono_ms();
    json_t *a = wa_send(BEARER, WA_BODY("slow"), &st);
    int64_t took = sb_mono_ms() - t0;
    cr_assert_eq(st, 200);
    cr_assert_geq(took, 400, "held %lld ms", (long long)took);
    json_decref(a);
    json_decref(call("POST", "/_script", NULL, "{}", &st));
    t0 = sb_mono_ms();
    json_decref(wa_send(BEARER, WA_BODY("fast"), &st));
    cr_assert_lt(sb_mono_ms() - t0, 400, "{} resets the script");
}

Test(fake_graph, request_log)
{
    long st;
    json_decref(wa_send(BEARER, WA_BODY("first"), &st));
    json_decref(wa_send(NULL, WA_BODY("second"), &st));
    json_t *log = call("GET", "/_requests", NULL, NULL, &st);
    cr_assert_eq(st, 200);
    cr_assert_eq(json_array_size(log), 2);
    json_t *r0 = json_array_get(log, 0), *r1 = json_array_get(log, 1);
    cr_assert_str_eq(json_string_value(json_object_get(r0, "path")),
                     "/v21.0/106540352242922/messages");
    cr_assert_str_eq(json_string_value(json_object_get(r0, "channel")), "whatsapp");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(r0, "headers"), "authorization")),
        BEARER);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(r0, "body"), "text"), "body")),
                     "first");
    cr_assert_eq(json_integer_value(json_object_get(r0, "status")), 200);
    cr_assert(json_is_string(json_object_get(r0, "id")));
    cr_assert_gt(json_integer_value(json_object_get(r0, "time_ms")), 0);
    cr_assert_eq(json_integer_value(json_object_get(r1, "status")), 401);
    cr_assert(json_is_null(json_object_get(r1, "id")));
    json_decref(log);

    json_t *d = call("DELETE", "/_requests", NULL, NULL, &st);
    cr_assert_eq(json_integer_value(json_object_get(d, "deleted")), 2);
    json_decref(d);
    log = call("GET", "/_requests", NULL, NULL, &st);
    cr_assert_eq(json_array_size(log), 0);
    json_decref(log);
}

/* ---------------------------------------------------------------- concurrency */

struct sender {
    int ok; /* 200 answers */
};

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
    (void)p, (void)arg;
    return size * n;
}

/* Plain libcurl (no Criterion asserts off the main thread). */
static void *send_many(void *arg)
{
    struct sender *s = arg;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v21.0/1/messages", PORT);
    struct curl_slist *h = curl_slist_append(NULL, "Authorization: " BEARER);
    for (int i = 0; i < PER_THREAD; i++) {
        CURL *c = curl_easy_init();
        if (!c)
            continue;
        long code = 0;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, WA_BODY("parallel"));
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
        if (curl_easy_perform(c) == CURLE_OK &&
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200)
            s->ok++;
        curl_easy_cleanup(c);
    }
    curl_slist_free_all(h);
    return NULL;
}

Test(fake_graph, concurrent_sends_get_unique_ids)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_t th[THREADS];
    struct sender s[THREADS] = {{0}};
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, send_many, &s[i]), 0);
    int ok = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ok += s[i].ok;
    }
    cr_assert_eq(ok, THREADS * PER_THREAD);
    long st;
    json_t *log = call("GET", "/_requests", NULL, NULL, &st);
    cr_assert_eq(json_array_size(log), (size_t)(THREADS * PER_THREAD));
    json_t *seen = json_object();
    for (size_t i = 0; i < json_array_size(log); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(log, i), "id"));
        cr_assert_not_null(id);
        cr_assert_null(json_object_get(seen, id), "id %s given twice", id);
        json_object_set_new(seen, id, json_true());
    }
    json_decref(seen);
    json_decref(log);
}
