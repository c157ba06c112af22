/* The HTTP server end to end over real sockets: routing, request accessors,
 * body limits, keep-alive, worker threads that block, graceful shutdown. */
#include "http.h"
#include "metrics.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* A gate a handler waits on until the test opens it. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    int waiting;
};

static struct gate GATE = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};

static void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static bool gate_wait_waiting(struct gate *g, int n)
{
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&g->mu);
        int w = g->waiting;
        pthread_mutex_unlock(&g->mu);
        if (w >= n)
            return true;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

static void h_echo(struct http_request *req, struct http_response *res, void *arg)
{
    (void)arg;
    struct sb_str body = http_request_body(req);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:I, s:s%}",
                          "method", http_request_method(req), "path", http_request_path(req),
                          "peer", http_request_peer(req),
                          "id", http_request_param(req, "id"), "q", http_request_query(req, "q"),
                          "sig", http_request_header(req, "X-Hub-Signature-256"),
                          "ct", http_request_header(req, "content-type"),
                          "len", (json_int_t)body.len, "body", body.ptr, body.len);
    int rc = http_response_header(res, "X-Echo", "yes");
    cr_assert_eq(rc, 0);
    http_respond_json(res, 200, o);
}

static void h_blocking(struct http_request *req, struct http_response *res, void *arg)
{
    struct gate *g = arg;
    (void)req;
    pthread_mutex_lock(&g->mu);
    g->waiting++;
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    g->waiting--;
    pthread_mutex_unlock(&g->mu);
    http_respond(res, 200, "text/plain", "slow", 4);
}

static void h_silent(struct http_request *req, struct http_response *res, void *arg)
{
    (void)req, (void)res, (void)arg;
}

static void h_inline(struct http_request *req, struct http_response *res, void *arg)
{
    (void)req, (void)arg;
    http_respond(res, 200, "text/plain", "inline", 6);
}

static void h_oversize(struct http_request *req, struct http_response *res, void *arg)
{
    (void)arg;
    if (http_request_oversize(req) && http_request_body(req).len == 0)
        http_respond(res, 413, "text/plain", "recorded", 8);
    else
        http_respond(res, 200, "text/plain", "fine", 4);
}

static atomic_int DELAYED_STARTED, DELAYED_DONE;

static void h_delayed(struct http_request *req, struct http_response *res, void *arg)
{
    (void)req, (void)arg;
    atomic_fetch_add(&DELAYED_STARTED, 1);
    http_response_delay(res, 1500);
    http_respond(res, 200, "text/plain", "late", 4);
}

static void h_bad_header(struct http_request *req, struct http_response *res, void *arg)
{
    (void)req, (void)arg;
    cr_assert_eq(http_response_header(res, "X-Evil", "a\r\nSet-Cookie: x=1"), -EINVAL);
    http_respond(res, 204, NULL, NULL, 0);
}

/* Deferred responses wait here until the test finishes them. */
static struct {
    pthread_mutex_t mu;
    struct http_deferred *items[64];
    int n;
    int on_loop; /* how many were deferred by a handler running on the loop */
} PENDING = {PTHREAD_MUTEX_INITIALIZER, {0}, 0, 0};

static void h_deferred(struct http_request *req, struct http_response *res, void *arg)
{
    (void)res, (void)arg;
    bool loop = http_request_on_loop(req);
    struct http_deferred *d = http_defer(req);
    pthread_mutex_lock(&PENDING.mu);
    cr_assert_lt(PENDING.n, 64);
    PENDING.items[PENDING.n++] = d;
    PENDING.on_loop += loop;
    pthread_mutex_unlock(&PENDING.mu);
}

/* Defers and finishes at once, before the handler returns. */
static void h_deferred_now(struct http_request *req, struct http_response *res, void *arg)
{
    (void)res, (void)arg;
    struct http_deferred *d = http_defer(req);
    http_respond(http_deferred_response(d), 200, "text/plain", "now", 3);
    http_deferred_finish(d);
}

/* On the loop unless ?block=1 asks for a worker; says where it answered. */
static void h_maybe(struct http_request *req, struct http_response *res, void *arg)
{
    (void)arg;
    const char *block = http_request_query(req, "block");
    if (http_request_on_loop(req) && block && strcmp(block, "1") == 0) {
        http_respond(res, 418, "text/plain", "ignored", 7); /* dropped by the pass */
        http_request_pass_to_worker(req);
        return;
    }
    const char *where = http_request_on_loop(req) ? "loop" : "worker";
    http_respond(res, 200, "text/plain", where, strlen(where));
}

static int pending_count(void)
{
    pthread_mutex_lock(&PENDING.mu);
    int n = PENDING.n;
    pthread_mutex_unlock(&PENDING.mu);
    return n;
}

static bool pending_wait(int n)
{
    for (int i = 0; i < 500 && pending_count() < n; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return pending_count() >= n;
}

/* Answers every pending request with `body`, from the test's thread. */
static void pending_finish(const char *body)
{
    pthread_mutex_lock(&PENDING.mu);
    for (int i = 0; i < PENDING.n; i++) {
        struct http_deferred *d = PENDING.items[i];
        cr_assert_str_eq(http_request_method(http_deferred_request(d)), "GET");
        http_respond(http_deferred_response(d), 200, "text/plain", body, strlen(body));
        http_deferred_finish(d);
    }
    PENDING.n = 0;
    PENDING.on_loop = 0;
    pthread_mutex_unlock(&PENDING.mu);
}

static struct http_server *SRV;
static struct metrics *MET;
static pthread_t RUNNER;
static bool JOINED;
static int RUN_RC;
static char BASE[64];

static void *runner(void *arg)
{
    (void)arg;
    RUN_RC = http_server_run(SRV);
    return NULL;
}

static void start(void)
{
    static const char *const capture[] = {"x-hub-signature-256", NULL};
    static const struct http_route_opts small = {.max_body = 1024};
    static const struct http_route_opts inl = {.flags = HTTP_ROUTE_INLINE};
    static const struct http_route_opts seen = {.flags = HTTP_ROUTE_SEE_OVERSIZE, .max_body = 64};
    static const struct http_route_opts try_inl = {.flags = HTTP_ROUTE_TRY_INLINE};
    GATE.open = false;
    GATE.waiting = 0;
    MET = metrics_new();
    struct http_server_config c = {.service = "test", .bind = "127.0.0.1", .port = 0, .workers = 2,
                                   .capture_headers = capture, .metrics = MET,
                                   .drain_timeout_ms = 5000};
    SRV = http_server_new(&c);
    cr_assert_not_null(SRV);
    cr_assert_eq(http_route(SRV, "GET", "/items/{id}", h_echo, NULL, NULL), 0);
    cr_assert_eq(http_route(SRV, "POST", "/items/{id}", h_echo, NULL, NULL), 0);
    cr_assert_eq(http_route(SRV, "POST", "/small", h_echo, NULL, &small), 0);
    cr_assert_eq(http_route(SRV, "GET", "/slow", h_blocking, &GATE, NULL), 0);
    cr_assert_eq(http_route(SRV, "GET", "/silent", h_silent, NULL, NULL), 0);
    cr_assert_eq(http_route(SRV, "GET", "/inline", h_inline, NULL, &inl), 0);
    cr_assert_eq(http_route(SRV, "GET", "/badheader", h_bad_header, NULL, NULL), 0);
    cr_assert_eq(http_route(SRV, "POST", "/seen", h_oversize, NULL, &seen), 0);
    cr_assert_eq(http_route(SRV, "GET", "/delayed", h_delayed, NULL, NULL), 0);
    cr_assert_eq(http_route(SRV, "GET", "/deferred", h_deferred, NULL, NULL), 0);
    cr_assert_eq(http_route(SRV, "GET", "/deferred-loop", h_deferred, NULL, &try_inl), 0);
    cr_assert_eq(http_route(SRV, "GET", "/deferred-now", h_deferred_now, NULL, &try_inl), 0);
    cr_assert_eq(http_route(SRV, "GET", "/maybe", h_maybe, NULL, &try_inl), 0);
    PENDING.n = 0;
    PENDING.on_loop = 0;
    snprintf(BASE, sizeof BASE, "http://127.0.0.1:%d", http_server_port(SRV));
    cr_assert_gt(http_server_port(SRV), 0);
    JOINED = false;
    cr_assert_eq(pthread_create(&RUNNER, NULL, runner, NULL), 0);
}

static void stop(void)
{
    gate_open(&GATE);
    http_server_stop(SRV);
    if (!JOINED)
        pthread_join(RUNNER, NULL);
    http_server_free(SRV);
    metrics_free(MET);
}

TestSuite(server, .init = start, .fini = stop, .timeout = 30);

static char *url(const char *path)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s%s", BASE, path);
    return buf;
}

static json_t *get_json(const char *path, long *status)
{
    char *body = ts_http("GET", url(path), NULL, NULL, 0, status);
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    return j;
}

Test(server, params_query_headers_and_raw_body)
{
    const char *hdrs[] = {"X-Hub-Signature-256: sha256=abc", "Content-Type: application/json", NULL};
    const char body[] = "{\"a\":\"caf\\u00e9\"}\n";
    long st;
    char *resp = ts_http("POST", url("/items/42?q=hello%20world&x=1"), hdrs, body, sizeof body - 1, &st);
    cr_assert_eq(st, 200, "status %ld: %s", st, resp);
    json_t *j = json_loads(resp, 0, NULL);
    cr_assert_not_null(j, "%s", resp);
    cr_assert_str_eq(json_string_value(json_object_get(j, "id")), "42");
    cr_assert_str_eq(json_string_value(json_object_get(j, "q")), "hello world");
    cr_assert_str_eq(json_string_value(json_object_get(j, "sig")), "sha256=abc");
    cr_assert_str_eq(json_string_value(json_object_get(j, "ct")), "application/json");
    cr_assert_eq(json_integer_value(json_object_get(j, "len")), (json_int_t)(sizeof body - 1));
    /* Raw bytes, not re-encoded: the \u00e9 escape must survive as six characters. */
    cr_assert_str_eq(json_string_value(json_object_get(j, "body")), body);
    json_decref(j);
    free(resp);
}

/* Path, parameters, query and headers are kept in the request's inline
 * storage while they fit and on the heap after that: values far past it
 * still arrive whole (and, under ASan, nothing is freed twice or leaked). */
Test(server, long_values_spill_past_the_inline_storage)
{
    char id[901], q[901], sig[3001], hdr[3100], path[2100];
    memset(id, 'i', sizeof id - 1), id[sizeof id - 1] = '\0';
    memset(q, 'q', sizeof q - 1), q[sizeof q - 1] = '\0';
    memset(sig, 's', sizeof sig - 1), sig[sizeof sig - 1] = '\0';
    snprintf(hdr, sizeof hdr, "X-Hub-Signature-256: %s", sig);
    snprintf(path, sizeof path, "%s/items/%s?q=%s", BASE, id, q); /* past url()'s buffer */
    const char *hdrs[] = {hdr, "Content-Type: text/plain", NULL};
    long st;
    char *resp = ts_http("POST", path, hdrs, "x", 1, &st);
    cr_assert_eq(st, 200, "status %ld: %s", st, resp);
    json_t *j = json_loads(resp, 0, NULL);
    cr_assert_not_null(j, "%s", resp);
    cr_assert_str_eq(json_string_value(json_object_get(j, "id")), id);
    cr_assert_str_eq(json_string_value(json_object_get(j, "q")), q);
    cr_assert_str_eq(json_string_value(json_object_get(j, "sig")), sig);
    cr_assert_str_eq(json_string_value(json_object_get(j, "ct")), "text/plain");
    char want_path[1000];
    snprintf(want_path, sizeof want_path, "/items/%s", id);
    cr_assert_str_eq(json_string_value(json_object_get(j, "path")), want_path);
    json_decref(j);
    free(resp);
}

Test(server, query_decoded_exactly_once)
{
    long st;
    json_t *j = get_json("/items/1?q=100%25%2520+x", &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "q")), "100%%20 x");
    json_decref(j);
}

Test(server, not_found_and_method_not_allowed)
{
    long st;
    json_t *j = get_json("/nope", &st);
    cr_assert_eq(st, 404);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "not_found");
    json_decref(j);
    free(ts_http("DELETE", url("/items/1"), NULL, NULL, 0, &st));
    cr_assert_eq(st, 405);
}

static long post_size(const char *path, size_t n, bool chunked)
{
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    const char *hdrs[] = {chunked ? "Transfer-Encoding: chunked" : "X-Nothing: 1", NULL};
    long st;
    free(ts_http("POST", url(path), hdrs, big, n, &st));
    free(big);
    return st;
}

Test(server, body_limit_per_route)
{
    cr_assert_eq(post_size("/small", 1024, false), 200);
    cr_assert_eq(post_size("/small", 1025, false), 413);
    /* Chunked request bodies are refused: lws 4.1 cannot delimit them. */
    cr_assert_eq(post_size("/small", 100, true), 411);
    /* Default limit is 1 MiB. */
    cr_assert_eq(post_size("/items/1", HTTP_DEFAULT_MAX_BODY, false), 200);
    cr_assert_eq(post_size("/items/1", HTTP_DEFAULT_MAX_BODY + 1, false), 413);
    /* The server is still fine afterwards. */
    cr_assert_eq(post_size("/small", 10, false), 200);
}

Test(server, oversize_reaches_handlers_that_ask)
{
    char body[200];
    memset(body, 'y', sizeof body);
    long st;
    char *r = ts_http("POST", url("/seen"), NULL, body, 64, &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(r, "fine");
    free(r);
    r = ts_http("POST", url("/seen"), NULL, body, sizeof body, &st);
    cr_assert_eq(st, 413);
    cr_assert_str_eq(r, "recorded", "the handler, not the server, answered: %s", r);
    free(r);
}

static size_t sink(char *p, size_t s, size_t n, void *u)
{
    (void)p, (void)u;
    return s * n;
}

/* Keeps the answer's first bytes (a small JSON body). */
static size_t keep(char *p, size_t s, size_t n, void *u)
{
    char *buf = u;
    size_t have = strlen(buf), add = s * n;
    if (have + add < 1024)
        memcpy(buf + have, p, add), buf[have + add] = '\0';
    return s * n;
}

/* Every request of a keep-alive connection sees the same peer address (it
 * is read once per connection, and kept with it, not with a request). */
Test(server, keep_alive_reuses_connection)
{
    CURL *c = curl_easy_init();
    char body[1024];
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    for (int i = 0; i < 3; i++) {
        body[0] = '\0';
        curl_easy_setopt(c, CURLOPT_URL, url("/items/7"));
        cr_assert_eq(curl_easy_perform(c), CURLE_OK);
        json_t *j = json_loads(body, 0, NULL);
        cr_assert_not_null(j, "%s", body);
        cr_assert_str_eq(json_string_value(json_object_get(j, "peer")), "127.0.0.1",
                         "request %d: %s", i, body);
        json_decref(j);
        long connects = -1, code = 0;
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        cr_assert_eq(code, 200);
        cr_assert_eq(connects, i == 0 ? 1 : 0, "request %d opened %ld connections", i, connects);
    }
    curl_easy_cleanup(c);
}

struct bg_request {
    pthread_t t;
    const char *path;
    long status;
    char *body;
};

static void *bg_main(void *arg)
{
    struct bg_request *b = arg;
    b->body = ts_http("GET", url(b->path), NULL, NULL, 0, &b->status);
    return NULL;
}

Test(server, blocking_handler_does_not_stall_others)
{
    struct bg_request slow = {.path = "/slow"};
    pthread_create(&slow.t, NULL, bg_main, &slow);
    cr_assert(gate_wait_waiting(&GATE, 1), "slow handler never started");
    /* The loop and the other worker keep serving while one handler blocks. */
    long st;
    json_t *j = get_json("/items/1", &st);
    cr_assert_eq(st, 200);
    json_decref(j);
    free(ts_http("GET", url("/inline"), NULL, NULL, 0, &st));
    cr_assert_eq(st, 200);
    gate_open(&GATE);
    pthread_join(slow.t, NULL);
    cr_assert_eq(slow.status, 200);
    cr_assert_str_eq(slow.body, "slow");
    free(slow.body);
}

static void *delayed_main(void *arg)
{
    struct bg_request *b = arg;
    b->body = ts_http("GET", url(b->path), NULL, NULL, 0, &b->status);
    atomic_fetch_add(&DELAYED_DONE, 1);
    return NULL;
}

Test(server, delayed_responses_hold_no_worker)
{
    /* Two workers, twenty delayed responses: all handlers run at once and the
     * server still answers other requests while every delay is pending. */
    struct bg_request d[20];
    atomic_store(&DELAYED_STARTED, 0);
    atomic_store(&DELAYED_DONE, 0);
    for (int i = 0; i < 20; i++) {
        d[i] = (struct bg_request){.path = "/delayed"};
        pthread_create(&d[i].t, NULL, delayed_main, &d[i]);
    }
    for (int i = 0; i < 500 && atomic_load(&DELAYED_STARTED) < 20; i++) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(atomic_load(&DELAYED_STARTED), 20, "handlers were serialised behind delays");
    long st;
    free(ts_http("GET", url("/items/3"), NULL, NULL, 0, &st));
    cr_assert_eq(st, 200);
    cr_assert_eq(atomic_load(&DELAYED_DONE), 0, "a delayed response came early");
    for (int i = 0; i < 20; i++) {
        pthread_join(d[i].t, NULL);
        cr_assert_eq(d[i].status, 200);
        cr_assert_str_eq(d[i].body, "late");
        free(d[i].body);
    }
}

Test(server, client_leaving_during_a_delay_is_harmless)
{
    for (int i = 0; i < 5; i++) {
        CURL *c = curl_easy_init();
        curl_easy_setopt(c, CURLOPT_URL, url("/delayed"));
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 200L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
        cr_assert_eq(curl_easy_perform(c), CURLE_OPERATION_TIMEDOUT);
        curl_easy_cleanup(c);
    }
    long st;
    char *b = ts_http("GET", url("/delayed"), NULL, NULL, 0, &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(b, "late");
    free(b);
}

/* Starts n GETs of `path` in the background. */
static void bg_start(struct bg_request *r, int n, const char *path)
{
    for (int i = 0; i < n; i++) {
        r[i] = (struct bg_request){.path = path};
        pthread_create(&r[i].t, NULL, bg_main, &r[i]);
    }
}

static void bg_expect(struct bg_request *r, int n, long status, const char *body)
{
    for (int i = 0; i < n; i++) {
        pthread_join(r[i].t, NULL);
        cr_assert_eq(r[i].status, status);
        cr_assert_str_eq(r[i].body, body);
        free(r[i].body);
    }
}

Test(server, deferred_responses_hold_no_worker)
{
    /* Two workers, twenty deferred requests: every handler has run and
     * returned, nobody is answered until the responses are finished, and the
     * server keeps serving meanwhile. */
    struct bg_request d[20];
    bg_start(d, 20, "/deferred");
    cr_assert(pending_wait(20), "handlers were serialised behind deferred responses");
    long st;
    free(ts_http("GET", url("/items/4"), NULL, NULL, 0, &st));
    cr_assert_eq(st, 200);
    cr_assert_eq(pending_count(), 20);
    pending_finish("finished");
    bg_expect(d, 20, 200, "finished");
}

Test(server, deferred_on_the_loop)
{
    struct bg_request d[5];
    bg_start(d, 5, "/deferred-loop");
    cr_assert(pending_wait(5));
    pthread_mutex_lock(&PENDING.mu);
    cr_assert_eq(PENDING.on_loop, 5, "try-inline handlers did not run on the loop");
    pthread_mutex_unlock(&PENDING.mu);
    pending_finish("later");
    bg_expect(d, 5, 200, "later");
    /* Finished before the handler even returned. */
    long st;
    char *b = ts_http("GET", url("/deferred-now"), NULL, NULL, 0, &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(b, "now");
    free(b);
}

Test(server, try_inline_passes_to_a_worker)
{
    long st;
    char *b = ts_http("GET", url("/maybe"), NULL, NULL, 0, &st);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(b, "loop");
    free(b);
    b = ts_http("GET", url("/maybe?block=1"), NULL, NULL, 0, &st);
    cr_assert_eq(st, 200, "the response set before passing was kept");
    cr_assert_str_eq(b, "worker");
    free(b);
}

Test(server, client_leaving_before_a_deferred_response_is_harmless)
{
    for (int i = 0; i < 3; i++) {
        CURL *c = curl_easy_init();
        curl_easy_setopt(c, CURLOPT_URL, url(i % 2 ? "/deferred" : "/deferred-loop"));
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 200L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
        cr_assert_eq(curl_easy_perform(c), CURLE_OPERATION_TIMEDOUT);
        curl_easy_cleanup(c);
    }
    cr_assert(pending_wait(3));
    pending_finish("nobody reads this"); /* the exchanges are freed, not written */
    long st;
    free(ts_http("GET", url("/items/5"), NULL, NULL, 0, &st));
    cr_assert_eq(st, 200);
}

Test(server, shutdown_waits_for_deferred_responses)
{
    struct bg_request d;
    bg_start(&d, 1, "/deferred");
    cr_assert(pending_wait(1));
    http_server_stop(SRV);
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    pending_finish("drained");
    bg_expect(&d, 1, 200, "drained");
    pthread_join(RUNNER, NULL);
    JOINED = true;
    cr_assert_eq(RUN_RC, 0);
}

Test(server, handler_without_response_is_500)
{
    long st;
    free(ts_http("GET", url("/silent"), NULL, NULL, 0, &st));
    cr_assert_eq(st, 500);
}

Test(server, header_injection_refused)
{
    long st;
    free(ts_http("GET", url("/badheader"), NULL, NULL, 0, &st));
    cr_assert_eq(st, 204);
}

static size_t header_cb(char *p, size_t s, size_t n, void *u)
{
    char *dst = u;
    if (strncasecmp(p, "x-correlation-id:", 17) == 0) {
        size_t len = s * n - 17;
        if (len > 100)
            len = 100;
        memcpy(dst, p + 17, len);
        dst[len] = '\0';
    }
    return s * n;
}

static void correlation_for(const char *given, char out[128])
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    if (given)
        h = curl_slist_append(h, given);
    out[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url("/items/1"));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

Test(server, correlation_id_echoed_or_generated)
{
    char got[128];
    correlation_for("X-Request-Id: req-123.abc", got);
    cr_assert(strstr(got, "req-123.abc"), "got '%s'", got);
    correlation_for("X-Request-Id: bad id with spaces;", got);
    cr_assert_null(strstr(got, "spaces"), "the bad id was echoed: %s", got);
    cr_assert(strlen(got) >= 36, "a UUID was generated: '%s'", got);
}

Test(server, many_unknown_headers_are_ignored)
{
    const char *hdrs[HTTP_MAX_HEADERS + 8];
    char store[HTTP_MAX_HEADERS + 8][32];
    int n = 0;
    for (; n < HTTP_MAX_HEADERS + 5; n++) {
        snprintf(store[n], sizeof store[n], "X-Custom-%d: v", n);
        hdrs[n] = store[n];
    }
    hdrs[n] = NULL;
    long st;
    char *body = ts_http("GET", url("/items/1"), hdrs, NULL, 0, &st);
    cr_assert_eq(st, 200);
    json_t *j = json_loads(body, 0, NULL);
    cr_assert(json_is_null(json_object_get(j, "sig")));
    json_decref(j);
    free(body);
}

Test(server, metrics_count_requests)
{
    long st;
    free(ts_http("GET", url("/items/9"), NULL, NULL, 0, &st));
    struct sb_buf out;
    sb_buf_init(&out, 1 << 20);
    cr_assert_eq(metrics_render(MET, &out), 0);
    cr_assert(strstr(out.data, "http_requests_total{method=\"GET\",route=\"/items/{id}\",status=\"200\"}"),
              "%s", out.data);
    sb_buf_cleanup(&out);
}

Test(server, graceful_shutdown_finishes_in_flight)
{
    struct bg_request slow = {.path = "/slow"};
    pthread_create(&slow.t, NULL, bg_main, &slow);
    cr_assert(gate_wait_waiting(&GATE, 1));
    http_server_stop(SRV);
    /* New requests are refused while draining (503 or connection refused). */
    long st;
    free(ts_http("GET", url("/items/1"), NULL, NULL, 0, &st));
    cr_assert(st == 503 || st == 0, "got %ld", st);
    gate_open(&GATE);
    pthread_join(slow.t, NULL);
    cr_assert_eq(slow.status, 200, "in-flight request was lost");
    cr_assert_str_eq(slow.body, "slow");
    free(slow.body);
    pthread_join(RUNNER, NULL);
    JOINED = true;
    cr_assert_eq(RUN_RC, 0);
}
