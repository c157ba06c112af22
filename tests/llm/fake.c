/* fake.c - sabia-fake-llm as a child process, and result collection for the
 * llm suites (see fake.h). */
#include "fake.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void fake_llm_start(struct fake_llm *f, char *const *extra_env)
{
    memset(f, 0, sizeof *f);
    f->port = ts_free_port();
    char port_env[48];
    snprintf(port_env, sizeof port_env, "FAKE_LLM_PORT=%d", f->port);
    char *env[16];
    size_t n = 0;
    env[n++] = port_env;
    for (size_t i = 0; extra_env && extra_env[i] && n < 15; i++)
        env[n++] = extra_env[i];
    env[n] = NULL;
    const char *tmp = getenv("SABIA_TEST_TMP");
    snprintf(f->log, sizeof f->log, "%s/fake-llm-%d-%d.log", tmp ? tmp : "/tmp", (int)getpid(),
             f->port);
    char *bin = ts_build_path("tests/fakes/sabia-fake-llm");
    char *argv[] = {bin, NULL};
    f->pid = ts_spawn(argv, env, f->log);
    free(bin);
    cr_assert(ts_wait_port(f->port, 10000), "sabia-fake-llm did not start (see %s)", f->log);
    snprintf(f->root, sizeof f->root, "http://127.0.0.1:%d", f->port);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d/v1", f->port);
}

void fake_llm_stop(struct fake_llm *f)
{
    if (f->pid > 0)
        ts_stop(f->pid, SIGTERM, 5000);
    f->pid = 0;
    unlink(f->log);
}

void fake_llm_script(struct fake_llm *f, const char *json)
{
    char url[192];
    snprintf(url, sizeof url, "%s/_script", f->root);
    long status = 0;
    char *body = ts_http("POST", url, NULL, json, strlen(json), &status);
    cr_assert_eq(status, 200, "script %s: %ld %s", json, status, body);
    free(body);
}

json_t *fake_llm_requests(struct fake_llm *f)
{
    char url[192];
    snprintf(url, sizeof url, "%s/_requests", f->root);
    long status = 0;
    char *body = ts_http("GET", url, NULL, NULL, 0, &status);
    cr_assert_eq(status, 200);
    json_t *root = json_loads(body, 0, NULL);
    free(body);
    json_t *arr = json_incref(json_object_get(root, "requests"));
    json_decref(root);
    cr_assert(json_is_array(arr));
    return arr;
}

void waiter_init(struct waiter *w, size_t cap)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->out = calloc(cap, sizeof *w->out);
    w->calls_per_tag = calloc(cap, sizeof *w->calls_per_tag);
    cr_assert(w->out && w->calls_per_tag);
    w->cap = cap;
    w->got = 0;
}

void outcome_cleanup(struct outcome *o)
{
    free(o->error_message);
    free(o->text);
    free(o->model);
    free(o->stop_reason);
    free(o->response_id);
    free(o->request_id);
    memset(o, 0, sizeof *o);
}

void waiter_cleanup(struct waiter *w)
{
    for (size_t i = 0; i < w->got && i < w->cap; i++)
        outcome_cleanup(&w->out[i]);
    free(w->out);
    free(w->calls_per_tag);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static char *dup_or_fail(const char *s)
{
    cr_assert_not_null(s, "llm_result strings are never NULL");
    char *d = strdup(s);
    cr_assert_not_null(d);
    return d;
}

static void copy_result(struct outcome *o, const struct llm_result *r)
{
    o->error = r->error;
    o->error_message = dup_or_fail(r->error_message);
    o->retryable = r->retryable;
    o->http_status = r->http_status;
    o->attempts = r->attempts;
    o->text = dup_or_fail(r->text);
    o->tokens_in = r->tokens_in;
    o->tokens_out = r->tokens_out;
    o->model = dup_or_fail(r->model);
    o->stop_reason = dup_or_fail(r->stop_reason);
    o->response_id = dup_or_fail(r->response_id);
    o->request_id = dup_or_fail(r->request_id);
    o->latency_ms = r->latency_ms;
    o->thread = pthread_self();
}

void waiter_done(const struct llm_result *res, void *arg)
{
    struct waiter_arg *wa = arg;
    struct waiter *w = wa->w;
    pthread_mutex_lock(&w->mu);
    if (w->got < w->cap) {
        copy_result(&w->out[w->got], res);
        w->out[w->got].tag = wa->tag;
    }
    if (wa->tag >= 0 && (size_t)wa->tag < w->cap)
        w->calls_per_tag[wa->tag]++;
    w->got++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

bool waiter_wait(struct waiter *w, size_t n, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    int rc = 0;
    while (w->got < n && rc == 0)
        rc = pthread_cond_timedwait(&w->cv, &w->mu, &until);
    bool ok = w->got >= n;
    pthread_mutex_unlock(&w->mu);
    return ok;
}

size_t waiter_count(struct waiter *w)
{
    pthread_mutex_lock(&w->mu);
    size_t n = w->got;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void call_sync(struct llm *l, const struct llm_request *req, struct outcome *out)
{
    struct waiter w;
    waiter_init(&w, 1);
    struct waiter_arg wa = {&w, 0};
    int rc = llm_submit(l, req, waiter_done, &wa);
    cr_assert_eq(rc, 0, "llm_submit: %s", sb_strerror(rc));
    cr_assert(waiter_wait(&w, 1, 30000), "no callback within 30 s");
    *out = w.out[0];
    memset(&w.out[0], 0, sizeof w.out[0]);
    cr_assert_eq(w.calls_per_tag[0], 1);
    waiter_cleanup(&w);
}

struct llm_request fake_request(const struct fake_llm *f, enum llm_provider p, bool stream,
                                const struct llm_message *msgs, size_t n)
{
    return (struct llm_request){
        .provider = p,
        .base_url = f->base,
        .api_key = "sk-test",
        .model = p == LLM_ANTHROPIC ? "claude-test" : "gpt-test",
        .system = "You are terse",
        .messages = msgs,
        .nmessages = n,
        .temperature = 0.5,
        .max_tokens = 100,
        .stream = stream,
    };
}
