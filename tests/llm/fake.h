/* fake.h - what the llm suites share: sabia-fake-llm run as a child process
 * on a free port, and a waiter that copies llm results out of callbacks. */
#ifndef SABIA_TESTS_LLM_FAKE_H
#define SABIA_TESTS_LLM_FAKE_H

#include "llm.h"

#include <jansson.h>
#include <pthread.h>
#include <sys/types.h>

struct fake_llm {
    pid_t pid;
    int port;
    char base[128]; /* http://127.0.0.1:<port>/v1 */
    char root[128]; /* http://127.0.0.1:<port> */
    char log[256];
};

/* Starts the fake with extra "K=V" environment entries (NULL-terminated, may
 * be NULL) and waits until it listens. */
void fake_llm_start(struct fake_llm *f, char *const *extra_env);
void fake_llm_stop(struct fake_llm *f);
/* POST /_script with `json`; fails the test unless 200. */
void fake_llm_script(struct fake_llm *f, const char *json);
/* GET /_requests: the "requests" array (caller json_decref()s it). */
json_t *fake_llm_requests(struct fake_llm *f);

/* A copy of one llm_result, kept after the callback. */
struct outcome {
    enum llm_error error;
    char *error_message;
    bool retryable;
    int http_status;
    int attempts;
    char *text;
    long tokens_in, tokens_out;
    char *model, *stop_reason, *response_id, *request_id;
    long latency_ms;
    pthread_t thread;
    long tag; /* the waiter_arg index the call was submitted with */
};

/* Collects up to `cap` callbacks. */
struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct outcome *out;
    size_t cap, got;
    int *calls_per_tag; /* how often each tag's callback ran */
};

/* The arg to pass to llm_submit with waiter_done: a (waiter, tag) pair. */
struct waiter_arg {
    struct waiter *w;
    long tag;
};

void waiter_init(struct waiter *w, size_t cap);
void waiter_cleanup(struct waiter *w);
void waiter_done(const struct llm_result *res, void *arg);
/* Waits until `n` callbacks arrived; false on timeout. */
bool waiter_wait(struct waiter *w, size_t n, int timeout_ms);
size_t waiter_count(struct waiter *w);

/* Submits one request and waits for it (fails the test when submission
 * fails or no callback comes within 30 s). The outcome is copied into *out;
 * free its strings with outcome_cleanup(). */
void call_sync(struct llm *l, const struct llm_request *req, struct outcome *out);
void outcome_cleanup(struct outcome *o);

/* A request to the fake with one user message (and a system prompt). */
struct llm_request fake_request(const struct fake_llm *f, enum llm_provider p, bool stream,
                                const struct llm_message *msgs, size_t n);

#endif
