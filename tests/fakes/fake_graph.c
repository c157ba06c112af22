/* sabia-fake-graph - a local stand-in for Meta's Graph send APIs, for tests
 * and benchmarks that must not reach graph.facebook.com:
 *
 *   POST /{version}/{phone_number_id}/messages   WhatsApp Cloud API send
 *   POST /{version}/{ig_id}/messages, /{version}/me/messages   Instagram Send API
 *   POST /_script     {"fail_next":N,"status":400,"code":130429,"delay_ms":0,
 *                      "message":"…","details":"…"} replaces the script: the
 *                      next N sends fail with that Graph error, every send
 *                      answer is held delay_ms; {} resets
 *   GET  /_script     the current script
 *   GET  /_requests   the sends received, oldest first (at most FAKE_MAX_RECORDS)
 *   DELETE /_requests forgets them
 *   GET  /_health     {"status":"ok"}
 *
 * A send is checked in this order: the access token (Authorization: Bearer,
 * or Instagram's access_token query parameter; else 401 with Graph code 190),
 * the body's shape (else 400 with code 100), then the script; otherwise the
 * success shape of the real API with a fresh unique id. Which API a send is
 * for: "me" as the account, or a body without messaging_product but with a
 * recipient, is Instagram; anything else WhatsApp. Formats follow
 * shared/reference/protocols.md §2 and §3.2.
 *
 * Usage: sabia-fake-graph [port [token]], or SABIA_FAKE_GRAPH_PORT and
 * SABIA_FAKE_GRAPH_TOKEN (default "test-token"); port 0 picks a free one.
 * Listens on 127.0.0.1 and prints "listening on 127.0.0.1:<port>" on stdout.
 * SIGTERM or SIGINT stops it. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channels.h"
#include "http.h"

#define FAKE_MAX_RECORDS   10000   /* sends kept for GET /_requests */
#define FAKE_TOKEN_MAX     512     /* bytes of the expected token */
#define FAKE_FAIL_NEXT_MAX 1000000 /* fail_next of a script */
#define FAKE_TEXT_MAX      2048    /* bytes of a scripted message/details */
#define FAKE_WORKERS       4

struct script {
    long fail_next;                  /* sends still to fail */
    int status;                      /* their HTTP status */
    long code;                       /* their Graph error code */
    int delay_ms;                    /* every send response is held this long */
    char message[FAKE_TEXT_MAX + 1]; /* "" = from the code table */
    char details[FAKE_TEXT_MAX + 1];
};

struct fake {
    const char *token;
    pthread_mutex_t mu; /* guards everything below */
    struct script script;
    json_t *records;
    unsigned long long seq;
};

/* ---------------------------------------------------------------- Graph errors */

struct known_error {
    long code;
    const char *title, *details;
};

static const struct known_error KNOWN[] = {
    {130429, "Rate limit hit",
     "Message failed to send because there were too many messages sent from this phone number "
     "in a short period of time"},
    {131056, "(Business Account, Consumer Account) pair rate limit hit",
     "Message failed to send because there were too many messages sent from this phone number "
     "to the same phone number in a short period of time"},
    {131047, "Re-engagement message",
     "Message failed to send because more than 24 hours have passed since the customer last "
     "replied to this number."},
    {131026, "Message undeliverable", "Unable to deliver message."},
    {131048, "Spam rate limit hit",
     "Message failed to send because there are restrictions on how many messages can be sent "
     "from this phone number."},
    {131000, "Something went wrong", "Message failed to send due to an unknown error."},
    {190, "Invalid OAuth access token - Cannot parse access token", NULL},
    {100, "Invalid parameter", "Invalid parameter"},
};

/* A fresh trace id, as Meta puts in every error. */
static void trace_id(struct fake *f, char out[32])
{
    pthread_mutex_lock(&f->mu);
    unsigned long long n = ++f->seq;
    pthread_mutex_unlock(&f->mu);
    snprintf(out, 32, "AFake%dT%llu", (int)getpid(), n);
}

/* {"error":{"message":"(#code) title","type":"OAuthException","code":…,
 *  "error_data":{"messaging_product":"whatsapp","details":…},"fbtrace_id":…}} */
static json_t *graph_error(struct fake *f, long code, const char *message, const char *details,
                           bool whatsapp)
{
    const struct known_error *k = NULL;
    for (size_t i = 0; i < sizeof KNOWN / sizeof KNOWN[0] && !k; i++)
        if (KNOWN[i].code == code)
            k = &KNOWN[i];
    char text[FAKE_TEXT_MAX + 64], trace[32];
    if (message && *message)
        snprintf(text, sizeof text, "%s", message);
    else if (code == 190)
        snprintf(text, sizeof text, "%s", k->title);
    else
        snprintf(text, sizeof text, "(#%ld) %s", code, k ? k->title : "Scripted failure");
    if (!details || !*details)
        details = k ? k->details : "Scripted failure";
    trace_id(f, trace);
    json_t *e = json_pack("{s:s, s:s, s:I, s:s}", "message", text, "type", "OAuthException", "code",
                          (json_int_t)code, "fbtrace_id", trace);
    if (e && details) {
        json_t *data =
            whatsapp ? json_pack("{s:s, s:s}", "messaging_product", "whatsapp", "details", details)
                     : json_pack("{s:s}", "details", details);
        json_object_set_new(e, "error_data", data);
    }
    return json_pack("{s:o}", "error", e);
}

/* ---------------------------------------------------------------- sends */

/* The reason a WhatsApp body is refused, or NULL when it is fine. */
static const char *wa_body_problem(const json_t *b)
{
    const json_t *text = json_object_get(b, "text");
    const json_t *body = json_object_get(text, "body");
    const json_t *rtype = json_object_get(b, "recipient_type");
    const json_t *ctx = json_object_get(b, "context");
    const char *product = json_string_value(json_object_get(b, "messaging_product"));
    const char *type = json_string_value(json_object_get(b, "type"));
    const char *to = json_string_value(json_object_get(b, "to"));
    if (!json_is_object(b))
        return "the body must be a JSON object";
    if (!product || strcmp(product, "whatsapp") != 0)
        return "messaging_product must be \"whatsapp\"";
    if (!to || !*to)
        return "The parameter to is required.";
    if (rtype && !(json_is_string(rtype) && strcmp(json_string_value(rtype), "individual") == 0))
        return "recipient_type must be \"individual\"";
    if (!type || strcmp(type, "text") != 0)
        return "this fake only sends type \"text\"";
    if (!json_is_string(body) || json_string_length(body) == 0)
        return "The parameter text['body'] is required.";
    if (domain_text_units(json_string_value(body), json_string_length(body)) > CHANNELS_WA_TEXT_MAX)
        return "Param text['body'] must be at most 4096 characters long.";
    if (ctx && !json_is_string(json_object_get(ctx, "message_id")))
        return "context.message_id must be a string";
    return NULL;
}

static const char *ig_body_problem(const json_t *b)
{
    const json_t *text = json_object_get(json_object_get(b, "message"), "text");
    const char *id = json_string_value(json_object_get(json_object_get(b, "recipient"), "id"));
    if (!json_is_object(b))
        return "the body must be a JSON object";
    if (!id || !*id)
        return "The parameter recipient is required";
    if (!json_is_string(text) || json_string_length(text) == 0)
        return "The parameter message['text'] is required";
    if (domain_text_units(json_string_value(text), json_string_length(text)) > CHANNELS_IG_TEXT_MAX)
        return "Message text must be less than 1000 characters";
    return NULL;
}

static bool token_ok(struct fake *f, struct http_request *req, bool instagram)
{
    const char *auth = http_request_header(req, "authorization");
    if (auth && strncmp(auth, "Bearer ", 7) == 0 && strcmp(auth + 7, f->token) == 0)
        return true;
    const char *q = http_request_query(req, "access_token");
    return instagram && q && strcmp(q, f->token) == 0;
}

/* Appends one send to the log (dropping the oldest past the cap). */
static void record(struct fake *f, struct http_request *req, const char *channel, json_t *body,
                   int status, const char *id)
{
    const char *auth = http_request_header(req, "authorization");
    const char *ct = http_request_header(req, "content-type");
    json_t *r = json_pack("{s:s, s:s, s:s, s:{s:s?, s:s?}, s:O?, s:I, s:i, s:s?}", "method", "POST",
                          "path", http_request_path(req), "channel", channel, "headers",
                          "authorization", auth, "content-type", ct, "body", body, "time_ms",
                          (json_int_t)sb_now_ms(), "status", status, "id", id);
    if (!r)
        return;
    if (json_is_null(json_object_get(r, "body"))) {
        struct sb_str raw = http_request_body(req);
        json_t *text = json_stringn(raw.ptr, raw.len); /* NULL for invalid UTF-8 */
        json_object_set_new(r, "body", text ? text : json_null());
    }
    pthread_mutex_lock(&f->mu);
    if (json_array_size(f->records) >= FAKE_MAX_RECORDS)
        json_array_remove(f->records, 0);
    json_array_append_new(f->records, r);
    pthread_mutex_unlock(&f->mu);
}

/* Takes one scripted failure, if any is left: copies the script into *out. */
static bool take_failure(struct fake *f, struct script *out)
{
    pthread_mutex_lock(&f->mu);
    bool fail = f->script.fail_next > 0;
    if (fail) {
        f->script.fail_next--;
        *out = f->script;
    }
    pthread_mutex_unlock(&f->mu);
    return fail;
}

static int current_delay(struct fake *f)
{
    pthread_mutex_lock(&f->mu);
    int delay = f->script.delay_ms;
    pthread_mutex_unlock(&f->mu);
    return delay;
}

/* The success answer of the real API, with a fresh id in *id_out. */
static json_t *success(struct fake *f, const json_t *body, bool instagram, char id_out[96])
{
    pthread_mutex_lock(&f->mu);
    unsigned long long n = ++f->seq;
    pthread_mutex_unlock(&f->mu);
    if (instagram) {
        snprintf(id_out, 96, "aWdfFAKE.%d.%llu", (int)getpid(), n);
        const char *to =
            json_string_value(json_object_get(json_object_get(body, "recipient"), "id"));
        return json_pack("{s:s, s:s}", "recipient_id", to, "message_id", id_out);
    }
    snprintf(id_out, 96, "wamid.FAKE.%d.%llu", (int)getpid(), n);
    const char *to = json_string_value(json_object_get(body, "to"));
    return json_pack("{s:s, s:[{s:s, s:s}], s:[{s:s}]}", "messaging_product", "whatsapp",
                     "contacts", "input", to, "wa_id", to[0] == '+' ? to + 1 : to, "messages", "id",
                     id_out);
}

static void h_send(struct http_request *req, struct http_response *res, void *arg)
{
    struct fake *f = arg;
    struct sb_str raw = http_request_body(req);
    json_t *body = json_loadb(raw.ptr, raw.len, 0, NULL);
    const char *account = http_request_param(req, "account");
    bool instagram = strcmp(account, "me") == 0 ||
                     (json_is_object(body) && !json_object_get(body, "messaging_product") &&
                      json_object_get(body, "recipient"));
    const char *channel = instagram ? "instagram" : "whatsapp";
    struct script s;
    int delay = current_delay(f);
    char id[96] = "";
    json_t *answer;
    int status;
    const char *problem = instagram ? ig_body_problem(body) : wa_body_problem(body);
    if (!token_ok(f, req, instagram)) {
        status = 401;
        answer = graph_error(f, 190, NULL, NULL, !instagram);
    } else if (problem) {
        status = 400;
        answer = graph_error(f, 100, "(#100) Invalid parameter", problem, !instagram);
    } else if (take_failure(f, &s)) {
        status = s.status;
        answer = graph_error(f, s.code, s.message, s.details, !instagram);
    } else {
        status = 200;
        answer = success(f, body, instagram, id);
    }
    record(f, req, channel, body, status, id[0] ? id : NULL);
    json_decref(body);
    if (delay > 0)
        http_response_delay(res, delay);
    http_respond_json(res, status, answer);
}

/* ---------------------------------------------------------------- control */

static json_t *script_json(const struct script *s)
{
    return json_pack("{s:I, s:i, s:I, s:i, s:s, s:s}", "fail_next", (json_int_t)s->fail_next,
                     "status", s->status, "code", (json_int_t)s->code, "delay_ms", s->delay_ms,
                     "message", s->message, "details", s->details);
}

/* Reads an optional integer member in [min, max] into *out. */
static bool int_member(const json_t *o, const char *key, long min, long max, long *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return false;
    *out = (long)json_integer_value(v);
    return true;
}

static bool str_member(const json_t *o, const char *key, char *out, size_t size)
{
    const json_t *v = json_object_get(o, key);
    if (!v)
        return true;
    if (!json_is_string(v) || json_string_length(v) >= size)
        return false;
    snprintf(out, size, "%s", json_string_value(v));
    return true;
}

static void h_script_post(struct http_request *req, struct http_response *res, void *arg)
{
    struct fake *f = arg;
    struct sb_str raw = http_request_body(req);
    json_t *in = json_loadb(raw.ptr, raw.len, 0, NULL);
    struct script s = {.status = 400, .code = 131000};
    long status = -1, delay = 0;
    bool ok = json_is_object(in) &&
              int_member(in, "fail_next", 0, FAKE_FAIL_NEXT_MAX, &s.fail_next) &&
              int_member(in, "status", 100, 599, &status) &&
              int_member(in, "code", 0, 99999999, &s.code) &&
              int_member(in, "delay_ms", 0, HTTP_MAX_DELAY_MS, &delay) &&
              str_member(in, "message", s.message, sizeof s.message) &&
              str_member(in, "details", s.details, sizeof s.details);
    json_decref(in);
    if (!ok) {
        http_respond_error(res, 400, "invalid_script",
                           "expected {\"fail_next\":0..1000000,\"status\":100..599,\"code\":int,"
                           "\"delay_ms\":0..60000,\"message\":str,\"details\":str}");
        return;
    }
    s.status = status >= 0 ? (int)status : (s.code == 190 ? 401 : 400);
    s.delay_ms = (int)delay;
    pthread_mutex_lock(&f->mu);
    f->script = s;
    pthread_mutex_unlock(&f->mu);
    http_respond_json(res, 200, json_pack("{s:b, s:o}", "ok", 1, "script", script_json(&s)));
}

static void h_script_get(struct http_request *req, struct http_response *res, void *arg)
{
    struct fake *f = arg;
    (void)req;
    pthread_mutex_lock(&f->mu);
    struct script s = f->script;
    pthread_mutex_unlock(&f->mu);
    http_respond_json(res, 200, script_json(&s));
}

static void h_requests_get(struct http_request *req, struct http_response *res, void *arg)
{
    struct fake *f = arg;
    (void)req;
    pthread_mutex_lock(&f->mu);
    json_t *copy = json_deep_copy(f->records);
    pthread_mutex_unlock(&f->mu);
    http_respond_json(res, copy ? 200 : 500, copy ? copy : json_array());
}

static void h_requests_delete(struct http_request *req, struct http_response *res, void *arg)
{
    struct fake *f = arg;
    (void)req;
    pthread_mutex_lock(&f->mu);
    size_t n = json_array_size(f->records);
    json_array_clear(f->records);
    pthread_mutex_unlock(&f->mu);
    http_respond_json(res, 200, json_pack("{s:I}", "deleted", (json_int_t)n));
}

static void h_health(struct http_request *req, struct http_response *res, void *arg)
{
    (void)req, (void)arg;
    http_respond_json(res, 200, json_pack("{s:s}", "status", "ok"));
}

/* ---------------------------------------------------------------- main */

static void *signal_main(void *arg)
{
    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigwait(&set, &sig);
    http_server_stop(arg);
    return NULL;
}

static int add_routes(struct http_server *srv, struct fake *f)
{
    int rc = http_route(srv, "POST", "/{version}/{account}/messages", h_send, f, NULL);
    if (rc == 0)
        rc = http_route(srv, "POST", "/_script", h_script_post, f, NULL);
    if (rc == 0)
        rc = http_route(srv, "GET", "/_script", h_script_get, f, NULL);
    if (rc == 0)
        rc = http_route(srv, "GET", "/_requests", h_requests_get, f, NULL);
    if (rc == 0)
        rc = http_route(srv, "DELETE", "/_requests", h_requests_delete, f, NULL);
    if (rc == 0)
        rc = http_route(srv, "GET", "/_health", h_health, f, NULL);
    return rc;
}

static const char *setting(int argc, char **argv, int i, const char *env, const char *dflt)
{
    if (argc > i)
        return argv[i];
    const char *v = getenv(env);
    return v && *v ? v : dflt;
}

static int serve(struct fake *f, int port, struct sb_log *log)
{
    struct http_server_config cfg = {.service = "fake-graph",
                                     .bind = "127.0.0.1",
                                     .port = port,
                                     .workers = FAKE_WORKERS,
                                     .log = log};
    struct http_server *srv = http_server_new(&cfg);
    if (!srv)
        return 1;
    int rc = add_routes(srv, f);
    pthread_t sig_thread;
    bool started = rc == 0 && pthread_create(&sig_thread, NULL, signal_main, srv) == 0;
    if (started) {
        printf("listening on 127.0.0.1:%d\n", http_server_port(srv));
        fflush(stdout);
        rc = http_server_run(srv);
        pthread_kill(sig_thread, SIGTERM); /* wakes it when the server stopped on its own */
        pthread_join(sig_thread, NULL);
    }
    http_server_free(srv);
    return started && rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    long port;
    const char *port_s = setting(argc, argv, 1, "SABIA_FAKE_GRAPH_PORT", "0");
    const char *token = setting(argc, argv, 2, "SABIA_FAKE_GRAPH_TOKEN", "test-token");
    if (sb_parse_long(port_s, 0, 65535, &port) != 0 || strlen(token) > FAKE_TOKEN_MAX) {
        fprintf(stderr,
                "usage: sabia-fake-graph [port [token]] (port 0..65535, token <= %d "
                "bytes)\n",
                FAKE_TOKEN_MAX);
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct fake f = {.token = token, .records = json_array()};
    struct sb_log *log = sb_log_new("fake-graph", SB_LOG_WARN, stderr);
    pthread_mutex_init(&f.mu, NULL);
    int rc = f.records && log ? serve(&f, (int)port, log) : 1;
    json_decref(f.records);
    pthread_mutex_destroy(&f.mu);
    sb_log_free(log);
    return rc;
}
