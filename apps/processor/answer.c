/* answer.c - the GenerateAIResponse worker: job lifecycle, provider choice,
 * the model call through the libs/llm engine, and what happens when it
 * completes (on a completion thread, never on the engine's own thread). */
#include "generate.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define GENERATE_MAX_ATTEMPTS 30     /* model outage: about 25 minutes of retries */
#define GENERATE_BACKOFF_BASE_MS 1000
#define GENERATE_BACKOFF_CAP_MS 60000
#define GENERATE_QUEUE_MAX 512     /* commands read ahead of the preparers */

struct gen_job *gen_job_new(struct processor *p)
{
    struct gen_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->p = p;
    sb_buf_init(&j->system, GEN_PROMPT_MAX);
    sb_buf_init(&j->question, GEN_QUESTION_MAX);
    sb_buf_init(&j->reply, 1024 * 1024);
    sb_buf_init(&j->dberr, 2048);
    return j;
}

void gen_job_free(struct gen_job *j)
{
    if (!j)
        return;
    gen_drop_key(j);
    for (size_t i = 0; i < j->ncontext; i++)
        free((char *)j->context[i].content);
    free(j->context);
    free(j->base_url);
    free(j->fallback);
    sb_buf_cleanup(&j->system);
    sb_buf_cleanup(&j->question);
    sb_buf_cleanup(&j->reply);
    sb_buf_cleanup(&j->dberr);
    free(j);
}

int gen_context_reserve(struct gen_job *j, size_t n)
{
    if (n <= j->context_cap)
        return 0;
    struct llm_message *m = realloc(j->context, n * sizeof *m);
    if (!m)
        return -ENOMEM;
    j->context = m;
    j->context_cap = n;
    return 0;
}

int gen_context_add(struct gen_job *j, const char *role, const char *content)
{
    if (j->ncontext == j->context_cap)
        return SB_ELIMIT;
    char *copy = strdup(content);
    if (!copy)
        return -ENOMEM;
    j->context[j->ncontext++] = (struct llm_message){role, copy};
    return 0;
}

void gen_drop_key(struct gen_job *j)
{
    if (!j->api_key)
        return;
    OPENSSL_cleanse(j->api_key, strlen(j->api_key));
    free(j->api_key);
    j->api_key = NULL;
}

int gen_open_key(struct gen_job *j, const char *bytea_text)
{
    char aad[96];
    snprintf(aad, sizeof aad, "assistant:%s:provider_api_key", j->assistant);
    return proc_open_secret(j->p->master, bytea_text, aad, &j->api_key);
}

/* The key and endpoint for the job's provider, from the assistant or the
 * instance's settings. NULL key when none is configured. */
static const char *provider_key(const struct gen_job *j)
{
    if (j->api_key && *j->api_key)
        return j->api_key;
    if (strcmp(j->provider, "openai") == 0 && *j->p->openai_key)
        return j->p->openai_key;
    if (strcmp(j->provider, "anthropic") == 0 && *j->p->anthropic_key)
        return j->p->anthropic_key;
    return NULL;
}

static const char *provider_base(const struct gen_job *j)
{
    if (j->base_url)
        return j->base_url;
    const char *b = strcmp(j->provider, "anthropic") == 0 ? j->p->anthropic_base
                    : strcmp(j->provider, "openai") == 0  ? j->p->openai_base
                                                          : j->p->compatible_base;
    return *b ? b : NULL;
}

bool gen_use_retrieval(const struct gen_job *j)
{
    if (j->capped)
        return true;
    if (strcmp(j->provider, "openai_compatible") == 0)
        return provider_base(j) == NULL;
    if (strcmp(j->provider, "openai") == 0 || strcmp(j->provider, "anthropic") == 0)
        return provider_key(j) == NULL;
    return true;
}

static void count(struct processor *p, const char *provider, const char *result)
{
    const char *labels[] = {provider, result};
    metric_add(p->m_replies, labels, 1);
}

struct handoff {
    const struct gen_job *j;
    char reason[600];
    bool changed;
};

static int handoff_tx(PGconn *c, void *arg)
{
    struct handoff *h = arg;
    const char *p[] = {h->j->tenant, h->j->conversation, h->reason};
    PGresult *r = NULL;
    int rc = db_exec(c,
                     "UPDATE conversations SET owner = 'human', handoff_at = now(), "
                     "handoff_reason = $3, buffer_started_at = NULL, buffer_deadline_at = NULL "
                     "WHERE tenant_id = $1 AND id = $2 AND owner = 'bot' RETURNING id",
                     3, p, &r, NULL);
    h->changed = rc == 0 && PQntuples(r) == 1;
    PQclear(r);
    return rc;
}

/* The model refused for good (bad key, no quota, bad request): rather than
 * leave the customer without an answer, hand the conversation to a person. */
static void hand_to_human(struct gen_job *j)
{
    struct handoff h = {.j = j};
    snprintf(h.reason, sizeof h.reason, "the AI provider failed: %s (%s)",
             llm_error_name(j->llm_error), j->llm_message);
    if (db_tenant_tx(j->p->svc->db, j->tenant, handoff_tx, &h) != 0 || !h.changed)
        return;
    struct domain_conversation_summary s = {.id = j->conversation, .channel_id = j->channel,
                                            .owner = DOMAIN_OWNER_HUMAN,
                                            .status = DOMAIN_CONVERSATION_OPEN,
                                            .updated_ms = sb_now_ms()};
    events_emit(j->p->events, domain_event_envelope(DOMAIN_EVENT_CONVERSATION_UPDATED, j->tenant,
                                                    sb_now_ms(), j->correlation, NULL,
                                                    domain_conversation_summary_json(&s)));
}

/* What follows a finish: counted, and true when the command is to be
 * acknowledged (done, or retried later as a new entry); false leaves it
 * pending when even a retry cannot be arranged. */
static bool finished(struct gen_job *j, int rc)
{
    struct processor *p = j->p;
    struct sb_log_ctx lctx = {j->tenant, j->correlation[0] ? j->correlation : NULL};
    count(p, j->provider, rc != 0 ? "failed" : j->skip ? "skipped" : "replied");
    if (rc != 0 && (j->attempt >= GENERATE_MAX_ATTEMPTS ||
                    command_retry_later(p, PROC_STREAM_GENERATE, j->tenant, j->conversation,
                                        j->message, j->correlation, j->attempt + 1, 1000) != 0)) {
        sb_log_error(p->svc->log, &lctx, "reply for %s not stored: %s; left pending", j->message,
                     sb_strerror(rc));
        return false; /* not acknowledged: reclaimed later */
    }
    return true;
}

/* Acknowledges the commands of the n jobs marked in `ack` with one XACK and
 * frees every job. */
static void ack_and_free(struct processor *p, struct gen_job **jobs, const bool *ack, size_t n)
{
    const char *ids[GEN_BATCH_MAX] = {0};
    size_t nids = 0;
    for (size_t i = 0; i < n; i++)
        if (ack[i])
            ids[nids++] = jobs[i]->entry_id;
    if (bus_stream_ack_many(p->svc->bus, PROC_STREAM_GENERATE, PROC_GROUP, ids, nids) != 0)
        sb_log_warn(p->svc->log, NULL, "%zu GenerateAIResponse commands done but not "
                    "acknowledged; they will be checked again", nids);
    for (size_t i = 0; i < n; i++)
        gen_job_free(jobs[i]);
}

/* A model call that failed: retried later, or handed to a person. */
static void failed(struct gen_job *j)
{
    struct processor *p = j->p;
    struct sb_log_ctx lctx = {j->tenant, j->correlation[0] ? j->correlation : NULL};
    if (j->llm_error == LLM_ERR_SHUTDOWN)
        return; /* stopping: left pending, another instance (or this one, restarted) reclaims it */
    if ((j->llm_retryable || j->llm_error == LLM_ERR_CIRCUIT_OPEN) &&
        j->attempt < GENERATE_MAX_ATTEMPTS) {
        int64_t delay = domain_backoff_ms(j->attempt, GENERATE_BACKOFF_BASE_MS,
                                          GENERATE_BACKOFF_CAP_MS, (uint32_t)rand());
        count(p, j->provider, "retry");
        sb_log_warn(p->svc->log, &lctx, "model call failed (%s), retrying in %lld ms",
                    llm_error_name(j->llm_error), (long long)delay);
        if (command_retry_later(p, PROC_STREAM_GENERATE, j->tenant, j->conversation, j->message,
                                j->correlation, j->attempt + 1, delay) != 0)
            return; /* Redis is away: leave the entry pending, it is reclaimed later */
    } else {
        count(p, j->provider, "failed");
        sb_log_error(p->svc->log, &lctx, "model call failed for good (%s: %s): handing over",
                     llm_error_name(j->llm_error), j->llm_message);
        hand_to_human(j);
    }
    (void)!bus_stream_ack(p->svc->bus, PROC_STREAM_GENERATE, PROC_GROUP, j->entry_id);
}

/* A completed call joins a batch led by a succeeded call of the same tenant
 * while the replies' text stays within GEN_FINISH_BATCH_BYTES; a failed one
 * is handled alone. */
static bool joins(struct batchq_item *const *taken, size_t n, const struct batchq_item *candidate)
{
    const struct gen_job *head = BATCHQ_JOB(taken[0], struct gen_job, qi);
    const struct gen_job *j = BATCHQ_JOB(candidate, struct gen_job, qi);
    if (head->llm_error != LLM_OK || j->llm_error != LLM_OK || strcmp(j->tenant, head->tenant) != 0)
        return false;
    size_t bytes = j->reply.len;
    for (size_t i = 0; i < n; i++)
        bytes += BATCHQ_JOB(taken[i], struct gen_job, qi)->reply.len;
    return bytes <= GEN_FINISH_BATCH_BYTES;
}

/* On a completion thread. */
static void complete(struct batchq_item **items, size_t n, void *arg)
{
    struct processor *p = arg;
    struct gen_job *batch[GEN_BATCH_MAX];
    int rcs[GEN_BATCH_MAX];
    bool ack[GEN_BATCH_MAX];
    struct gen_job *head = BATCHQ_JOB(items[0], struct gen_job, qi);
    if (head->llm_error != LLM_OK) { /* alone in its batch (joins) */
        failed(head);
        gen_job_free(head);
        return;
    }
    for (size_t i = 0; i < n; i++)
        batch[i] = BATCHQ_JOB(items[i], struct gen_job, qi);
    gen_finish_batch(batch, n, rcs);
    for (size_t i = 0; i < n; i++)
        ack[i] = finished(batch[i], rcs[i]);
    ack_and_free(p, batch, ack, n);
}

/* On the LLM engine's thread: copy the result and hand the job over. */
static void on_llm_done(const struct llm_result *res, void *arg)
{
    struct gen_job *j = arg;
    j->llm_error = res->error;
    j->llm_retryable = res->retryable;
    snprintf(j->llm_message, sizeof j->llm_message, "%s", res->error_message);
    if (res->error == LLM_OK) {
        j->tokens_in = res->tokens_in;
        j->tokens_out = res->tokens_out;
        j->latency_ms = res->latency_ms;
        snprintf(j->used_model, sizeof j->used_model, "%s", res->model[0] ? res->model : j->model);
        if (sb_buf_append_str(&j->reply, res->text) != 0 || j->reply.len == 0) {
            j->llm_error = LLM_ERR_SERVER; /* empty or oversized answer: try again */
            j->llm_retryable = true;
        }
    }
    if (!batchq_put(j->p->completions, &j->qi))
        gen_job_free(j); /* only if stopping out of order: left pending, reclaimed later */
}

/* The prompt's parts, taken out of a job. */
struct prompt {
    struct sb_buf system, question;
    struct llm_message *context;
    size_t ncontext;
};

static void take_prompt(struct gen_job *j, struct prompt *pr)
{
    *pr = (struct prompt){j->system, j->question, j->context, j->ncontext};
    sb_buf_init(&j->system, GEN_PROMPT_MAX);
    sb_buf_init(&j->question, GEN_QUESTION_MAX);
    j->context = NULL;
    j->ncontext = j->context_cap = 0;
}

static void free_prompt(struct prompt *pr)
{
    for (size_t i = 0; i < pr->ncontext; i++)
        free((char *)pr->context[i].content);
    free(pr->context);
    sb_buf_cleanup(&pr->system);
    sb_buf_cleanup(&pr->question);
}

/* The prompt is copied by llm_submit() and never needed again, so the job
 * gives it up first (once submitted, the job is the engine's and may be
 * completed and freed at any moment): a call in flight keeps only what its
 * finish needs. */
static int submit(struct gen_job *j)
{
    struct processor *p = j->p;
    enum llm_provider prov = strcmp(j->provider, "anthropic") == 0 ? LLM_ANTHROPIC
                             : strcmp(j->provider, "openai") == 0  ? LLM_OPENAI
                                                                   : LLM_OPENAI_COMPATIBLE;
    if (!j->model[0])
        snprintf(j->model, sizeof j->model, "%s",
                 prov == LLM_ANTHROPIC ? p->default_model_anthropic : p->default_model_openai);
    if (prov == LLM_ANTHROPIC && j->temperature > 1.0)
        j->temperature = 1.0; /* Anthropic's range is 0..1; assistants allow up to 2 */
    struct prompt pr;
    take_prompt(j, &pr);
    struct llm_request req = {.provider = prov, .base_url = provider_base(j),
                              .api_key = provider_key(j), .model = j->model,
                              .system = pr.system.data, .messages = pr.context,
                              .nmessages = pr.ncontext, .temperature = j->temperature,
                              .max_tokens = j->max_tokens, .idempotency_key = j->message};
    int rc = llm_submit(p->llm, &req, on_llm_done, j);
    free_prompt(&pr);
    return rc;
}

/* Back-pressure: a new model call starts only while the calls in flight and
 * the finished ones still to be stored stay under SABIA_LLM_MAX_IN_FLIGHT, so
 * a burst of commands waits in Redis instead of in memory. False when the
 * processor is stopping (the command stays pending). */
static bool wait_for_room(struct processor *p)
{
    for (int waited = 0; waited < 60000; waited += 5) {
        size_t finishing = batchq_len(p->completions);
        if (llm_pending(p->llm) + finishing < (size_t)p->llm_max_in_flight)
            return true;
        if (batchq_closed(p->prepq))
            return false;
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return !batchq_closed(p->prepq); /* a minute without room: go ahead rather than stall */
}

/* False when the command's ids are not UUIDs. */
static bool fill_job(struct gen_job *j, const struct bus_entry *e)
{
    snprintf(j->entry_id, sizeof j->entry_id, "%s", e->id);
    snprintf(j->correlation, sizeof j->correlation, "%s", entry_field(e, "correlation_id"));
    long attempt = 1;
    if (sb_parse_long(entry_field(e, "attempt"), 1, GENERATE_MAX_ATTEMPTS * 2, &attempt) != 0)
        attempt = 1;
    j->attempt = (unsigned)attempt;
    return proc_uuid_copy(j->tenant, entry_field(e, "tenant_id")) &&
           proc_uuid_copy(j->conversation, entry_field(e, "conversation_id")) &&
           proc_uuid_copy(j->message, entry_field(e, "message_id"));
}

/* A prepared job the retrieval-only provider answered: its reply is stored
 * with the others of its batch (answered_batch). */
static void log_capped(const struct gen_job *j)
{
    struct sb_log_ctx lctx = {j->tenant, j->correlation[0] ? j->correlation : NULL};
    count(j->p, j->provider, "spend_capped");
    sb_log_warn(j->p->svc->log, &lctx,
                "monthly LLM spend cap reached (%ld of %ld micro-USD): answering %s from the "
                "knowledge base",
                j->spent, j->cap, j->message);
}

static void answered_batch(struct gen_job **jobs, size_t n, bool *ack)
{
    int rcs[GEN_BATCH_MAX];
    gen_finish_batch(jobs, n, rcs);
    for (size_t i = 0; i < n; i++) {
        struct gen_job *j = jobs[i];
        count(j->p, "retrieval", rcs[i] != 0 ? "failed" : j->skip ? "skipped" : "replied");
        if (rcs[i] != 0) {
            struct sb_log_ctx lctx = {j->tenant, j->correlation[0] ? j->correlation : NULL};
            sb_log_warn(j->p->svc->log, &lctx, "reply to %s not stored: %s %s", j->message,
                        sb_strerror(rcs[i]), j->dberr.len ? j->dberr.data : "");
        }
        ack[i] = rcs[i] == 0; /* else left pending: reclaimed and tried again */
    }
}

/* A prepared job that needs no reply: the buffer's lease ends. True when its
 * command is done. */
static bool skipped(struct gen_job *j)
{
    struct sb_log_ctx lctx = {j->tenant, j->correlation[0] ? j->correlation : NULL};
    count(j->p, j->provider[0] ? j->provider : "none", "skipped");
    sb_log_info(j->p->svc->log, &lctx, "no reply to %s: %s", j->message, j->skip);
    return gen_release_buffer(j) == 0;
}

/* Starts a prepared job's model call. True when the engine took the job
 * (it is no longer ours); otherwise *ack says whether the command is done. */
static bool call_model(struct gen_job *j, bool *ack)
{
    struct processor *p = j->p;
    struct sb_log_ctx lctx = {j->tenant, j->correlation[0] ? j->correlation : NULL};
    int rc = 0;
    *ack = false;
    if (!wait_for_room(p))
        return false; /* stopping: left pending */
    if ((rc = submit(j)) == 0)
        return true; /* acknowledged by the completion thread */
    sb_log_warn(p->svc->log, &lctx, "model call for %s refused: %s", j->message, sb_strerror(rc));
    if (rc == -EINVAL || rc == SB_ELIMIT) {
        /* The request itself is wrong (settings, or nothing a model can read):
         * retrying cannot help; a person answers instead. */
        j->llm_error = LLM_ERR_INVALID;
        snprintf(j->llm_message, sizeof j->llm_message, "request refused: %s", sb_strerror(rc));
        hand_to_human(j);
        *ack = true;
    }
    return false;
}

/* On a preparer thread: n GenerateAIResponse commands of one tenant. */
static void prepare(struct batchq_item **items, size_t n, void *arg)
{
    struct processor *p = arg;
    struct gen_job *jobs[GEN_BATCH_MAX], *done[GEN_BATCH_MAX], *answered[GEN_BATCH_MAX];
    bool ack[GEN_BATCH_MAX], answered_ack[GEN_BATCH_MAX];
    size_t ndone = 0, nanswered = 0;
    for (size_t i = 0; i < n; i++)
        jobs[i] = BATCHQ_JOB(items[i], struct gen_job, qi);
    int rc = gen_prepare_batch(jobs, n);
    if (rc != 0 && n > 1 && rc != SB_EUNAVAIL && rc != -ETIMEDOUT) {
        for (size_t i = 0; i < n; i++) /* find the one at fault; prepare the others */
            prepare(&items[i], 1, arg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct gen_job *j = jobs[i];
        if (rc != 0) {
            struct sb_log_ctx lctx = {j->tenant, j->correlation[0] ? j->correlation : NULL};
            sb_log_warn(p->svc->log, &lctx, "reply to %s not prepared: %s %s", j->message,
                        sb_strerror(rc), j->dberr.len ? j->dberr.data : "");
            ack[ndone] = false; /* left pending: reclaimed and tried again */
            done[ndone++] = j;
        } else if (j->skip) {
            ack[ndone] = skipped(j);
            done[ndone++] = j;
        } else if (gen_use_retrieval(j)) {
            if (j->capped)
                log_capped(j);
            snprintf(j->used_model, sizeof j->used_model, "retrieval");
            answered[nanswered++] = j;
        } else if (!call_model(j, &ack[ndone])) {
            done[ndone++] = j;
        }
    }
    if (nanswered) {
        answered_batch(answered, nanswered, answered_ack);
        ack_and_free(p, answered, answered_ack, nanswered);
    }
    ack_and_free(p, done, ack, ndone);
}

/* Commands of one tenant are prepared together. */
static bool same_tenant(struct batchq_item *const *taken, size_t n,
                        const struct batchq_item *candidate)
{
    (void)n;
    return strcmp(BATCHQ_JOB(taken[0], struct gen_job, qi)->tenant,
                  BATCHQ_JOB(candidate, struct gen_job, qi)->tenant) == 0;
}

static void discard(struct batchq_item *item)
{
    gen_job_free(BATCHQ_JOB(item, struct gen_job, qi)); /* left pending in Redis */
}

/* The stream handler only queues: preparers take a tenant's batch. */
static enum bus_verdict on_generate(const struct bus_entry *e, unsigned deliveries,
                                    struct sb_buf *reason, void *arg)
{
    struct processor *p = arg;
    (void)deliveries;
    struct gen_job *j = gen_job_new(p);
    if (!j)
        return BUS_RETRY;
    if (!fill_job(j, e)) {
        (void)!sb_buf_append_str(reason, "GenerateAIResponse without valid ids");
        gen_job_free(j);
        return BUS_DEAD;
    }
    if (!batchq_put(p->prepq, &j->qi)) { /* stopping */
        gen_job_free(j);
        return BUS_RETRY;
    }
    return BUS_DEFER; /* acknowledged once answered (or found needing no answer) */
}

int generate_start(struct processor *p)
{
    const struct sb_config *cfg = p->svc->cfg;
    struct batchq_config cc = {
        .threads = (int)sb_config_int(cfg, "SABIA_PROCESSOR_COMPLETION_THREADS"),
        .batch_max = GEN_FINISH_BATCH_MAX,
        .joins = joins,
        .run = complete,
        .arg = p,
    };
    struct batchq_config pc = {
        .threads = (int)sb_config_int(cfg, "SABIA_PROCESSOR_GENERATE_THREADS"),
        .batch_max = GEN_PREPARE_BATCH_MAX,
        .max_queued = GENERATE_QUEUE_MAX,
        .joins = same_tenant,
        .run = prepare,
        .arg = p,
    };
    if (!(p->completions = batchq_start(&cc)) || !(p->prepq = batchq_start(&pc)))
        return -ENOMEM;
    struct bus_worker_config wc = {
        .stream = PROC_STREAM_GENERATE,
        .group = PROC_GROUP,
        .consumer = p->consumer,
        .threads = 1, /* it only queues: the preparers do the work */
        .batch = 64,
        /* longer than any model call, retries included */
        .reclaim_idle_ms = 2 * sb_config_int(cfg, "SABIA_LLM_TIMEOUT_MS") + 10000,
        .max_deliveries = 5,
        .fn = on_generate,
        .arg = p,
    };
    p->generate = bus_worker_start(p->svc->bus, &wc);
    return p->generate ? 0 : -ENOMEM;
}

/* Stops taking commands; the preparers finish the batch they hold (queued
 * commands stay pending); calls still in flight finish with the engine
 * (freed by the caller afterwards), then the completion threads drain. */
void generate_stop(struct processor *p)
{
    bus_worker_stop(p->generate);
    p->generate = NULL;
    if (p->prepq)
        batchq_close(p->prepq, false);
    batchq_free(p->prepq, discard);
    p->prepq = NULL;
    if (!p->completions)
        return;
    llm_free(p->llm); /* completes every pending call (with LLM_ERR_SHUTDOWN if need be) */
    p->llm = NULL;
    batchq_free(p->completions, NULL); /* drains: every completed call is finished */
    p->completions = NULL;
}
