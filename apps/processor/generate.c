/* generate.c - GenerateAIResponse: one reply to one customer message.
 *
 * prepare (one tenant transaction): the conversation must still be the bot's,
 * its newest customer message must still be the one the command names
 * (abort-if-newer: a newer message has its own deadline and its reply will see
 * both), and that message must not have been answered already (commands are
 * delivered at least once). Then the assistant's settings, the recent
 * conversation (bounded) and the knowledge matching the unanswered messages.
 *
 * answer: the built-in retrieval-only provider answers at once from the
 * knowledge; a model provider is called through the libs/llm engine, without
 * holding a thread: the stream entry is acknowledged when the call completes
 * (BUS_DEFER), and a crash before then leaves it pending to be reclaimed.
 *
 * finish (another transaction): the same checks again, then the reply is
 * stored as a queued outbound message; once committed, SendToChannel is
 * queued (a reply stored but never queued is found by the scheduler's sweep
 * of stalled outbound messages). */
#include "generate.h"
#include "retrieval.h"
#include "spend.h"

#include <stdlib.h>
#include <string.h>

#define KNOWLEDGE_HITS 3
#define QUESTION_MAX 16384   /* bytes of unanswered customer text considered */

/* An assistant's own price (config, micro-USD per million tokens), else the
 * instance's. */
static long price_or(const char *text, long fallback)
{
    long v = 0;
    return text[0] && sb_parse_long(text, 0, PROC_PRICE_MAX, &v) == 0 ? v : fallback;
}

static int load_assistant(PGconn *c, struct gen_job *j)
{
    const char *p[] = {j->tenant, j->assistant};
    PGresult *r = NULL;
    int rc = db_exec(c,
                     "SELECT provider, model, system_prompt, personality, temperature, max_tokens, "
                     "context_messages, coalesce(provider_base_url, ''), provider_api_key_enc, "
                     "coalesce(config->>'fallback_text', ''), "
                     "coalesce(config->>'price_input_micros_per_mtok', ''), "
                     "coalesce(config->>'price_output_micros_per_mtok', '') "
                     "FROM assistants WHERE tenant_id = $1 AND id = $2 AND status = 'active'",
                     2, p, &r, &j->dberr);
    if (rc == 0 && PQntuples(r) == 0)
        rc = SB_ENOTFOUND;
    if (rc == 0) {
        snprintf(j->provider, sizeof j->provider, "%s", PQgetvalue(r, 0, 0));
        snprintf(j->model, sizeof j->model, "%s", PQgetvalue(r, 0, 1));
        rc = sb_buf_append_str(&j->system, PQgetvalue(r, 0, 2));
        if (rc == 0 && PQgetvalue(r, 0, 3)[0])
            rc = sb_buf_appendf(&j->system, "\n\nPersonality: %s", PQgetvalue(r, 0, 3));
        j->temperature = strtod(PQgetvalue(r, 0, 4), NULL);
        long v = 0;
        j->max_tokens = db_value_long(r, 0, 5, &v) == 0 ? (int)v : 1024;
        j->context_max = db_value_long(r, 0, 6, &v) == 0 ? (int)v : 20;
        snprintf(j->base_url, sizeof j->base_url, "%s", PQgetvalue(r, 0, 7));
        snprintf(j->fallback, sizeof j->fallback, "%s", PQgetvalue(r, 0, 9));
        j->price_in = price_or(PQgetvalue(r, 0, 10), j->p->price_in);
        j->price_out = price_or(PQgetvalue(r, 0, 11), j->p->price_out);
        if (rc == 0 && !PQgetisnull(r, 0, 8))
            rc = gen_open_key(j, PQgetvalue(r, 0, 8));
    }
    PQclear(r);
    return rc;
}

/* The last context_max messages, oldest first; the customer's messages since
 * the last outbound one also form the question for the knowledge search. */
static int load_context(PGconn *c, struct gen_job *j)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", j->context_max > 0 ? j->context_max : 1);
    const char *p[] = {j->tenant, j->conversation, lim};
    PGresult *r = NULL;
    int rc = db_exec(c,
                     "SELECT direction, content FROM (SELECT direction, content, created_at, id "
                     "FROM messages WHERE tenant_id = $1 AND conversation_id = $2 "
                     "AND type NOT IN ('reaction', 'system') AND content <> '' "
                     "AND status <> 'failed' ORDER BY created_at DESC, id DESC LIMIT $3::int) m "
                     "ORDER BY created_at, id",
                     3, p, &r, &j->dberr);
    if (rc != 0)
        return rc;
    int n = PQntuples(r);
    rc = gen_context_reserve(j, (size_t)n);
    for (int i = 0; rc == 0 && i < n; i++) {
        bool inbound = strcmp(PQgetvalue(r, i, 0), "inbound") == 0;
        rc = gen_context_add(j, inbound ? "user" : "assistant", PQgetvalue(r, i, 1));
        if (rc == 0 && inbound && j->question.len < QUESTION_MAX)
            rc = sb_buf_appendf(&j->question, "%s%s", j->question.len ? "\n" : "",
                                PQgetvalue(r, i, 1));
        else if (!inbound)
            sb_buf_reset(&j->question); /* answered already */
    }
    PQclear(r);
    return rc;
}

#define WANTED_SQL                                                                             \
    "SELECT c.owner, c.status, coalesce(c.assistant_id::text, ''), c.channel_id, "                 \
    "(SELECT m.id FROM messages m WHERE m.tenant_id = c.tenant_id AND "                           \
    " m.conversation_id = c.id AND m.direction = 'inbound' "                                      \
    " ORDER BY m.created_at DESC, m.id DESC LIMIT 1) = $3::uuid, "                                \
    "EXISTS (SELECT 1 FROM messages m WHERE m.tenant_id = c.tenant_id AND "                       \
    " m.conversation_id = c.id AND m.sender_type = 'bot' AND "                                    \
    " m.metadata->>'reply_to_message_id' = $3::text) "                                            \
    "FROM conversations c WHERE c.tenant_id = $1 AND c.id = $2"

/* The checks every step repeats. Sets j->skip with a reason when there is
 * nothing (any more) to answer. */
static int still_wanted(PGconn *c, struct gen_job *j, bool lock)
{
    const char *p[] = {j->tenant, j->conversation, j->message};
    PGresult *r = NULL;
    int rc = db_exec(c, lock ? WANTED_SQL " FOR UPDATE" : WANTED_SQL, 3, p, &r, &j->dberr);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0)
        j->skip = "conversation not found";
    else if (strcmp(PQgetvalue(r, 0, 1), "open") != 0)
        j->skip = "conversation closed";
    else if (strcmp(PQgetvalue(r, 0, 0), "bot") != 0)
        j->skip = "a human has the conversation";
    else if (!PQgetvalue(r, 0, 2)[0])
        j->skip = "no assistant on this channel";
    else if (strcmp(PQgetvalue(r, 0, 4), "t") != 0)
        j->skip = "a newer customer message arrived";
    else if (strcmp(PQgetvalue(r, 0, 5), "t") == 0)
        j->skip = "already answered";
    if (PQntuples(r) == 1) {
        snprintf(j->assistant, sizeof j->assistant, "%s", PQgetvalue(r, 0, 2));
        snprintf(j->channel, sizeof j->channel, "%s", PQgetvalue(r, 0, 3));
    }
    PQclear(r);
    return 0;
}

static int add_knowledge(PGconn *c, struct gen_job *j)
{
    struct retrieval_hit *hits = calloc(KNOWLEDGE_HITS, sizeof *hits);
    int n = 0;
    if (!hits)
        return -ENOMEM;
    int rc = retrieval_search(c, j->tenant, j->assistant, j->question.data, KNOWLEDGE_HITS, hits, &n);
    if (rc == 0 && n > 0)
        rc = sb_buf_append_str(&j->system,
                               "\n\nUse the following facts from the knowledge base when they "
                               "answer the customer:");
    for (int i = 0; rc == 0 && i < n; i++)
        rc = sb_buf_appendf(&j->system, "\n- %s%s%s", hits[i].title, hits[i].title[0] ? ": " : "",
                            hits[i].content);
    free(hits);
    return rc;
}

static int prepare_tx(PGconn *c, void *arg)
{
    struct gen_job *j = arg;
    int rc = still_wanted(c, j, false);
    if (rc != 0 || j->skip)
        return rc;
    rc = load_assistant(c, j);
    if (rc == SB_ENOTFOUND) {
        j->skip = "the assistant is inactive";
        return 0;
    }
    if (rc == 0 && !gen_use_retrieval(j)) {
        bool allowed = true;
        rc = spend_check(j->p->spend, c, j->tenant, &allowed, &j->spent, &j->cap);
        j->capped = !allowed;
    }
    if (rc == 0)
        rc = load_context(c, j);
    if (rc == 0 && gen_use_retrieval(j))
        rc = retrieval_answer(c, j->tenant, j->assistant, j->question.data, j->fallback, &j->reply);
    else if (rc == 0)
        rc = add_knowledge(c, j);
    return rc;
}

int gen_prepare(struct gen_job *j)
{
    return db_tenant_tx(j->p->svc->db, j->tenant, prepare_tx, j);
}

struct finish {
    struct gen_job *j;
    char id[SB_UUID_STRLEN];
    long cost; /* micro-USD of the model call; 0 for retrieval */
};

/* One llm_usage row per completed model call, in the transaction that stores
 * its reply (or finds it no longer wanted: the call was paid for all the
 * same); message_id names the reply when there is one. */
static int record_usage(PGconn *c, struct finish *f)
{
    struct gen_job *j = f->j;
    char tin[24], tout[24], cost[24], latency[24];
    f->cost = spend_cost(j->tokens_in, j->tokens_out, j->price_in, j->price_out);
    snprintf(tin, sizeof tin, "%ld", j->tokens_in > 0 ? j->tokens_in : 0);
    snprintf(tout, sizeof tout, "%ld", j->tokens_out > 0 ? j->tokens_out : 0);
    snprintf(cost, sizeof cost, "%ld", f->cost);
    snprintf(latency, sizeof latency, "%ld", j->latency_ms > 0 ? j->latency_ms : 0);
    const char *p[] = {j->tenant, j->assistant, j->conversation, f->id[0] ? f->id : NULL, j->provider,
                       j->used_model, tin, tout, cost, latency,
                       j->correlation[0] ? j->correlation : NULL};
    return db_exec(c,
                   "INSERT INTO llm_usage (tenant_id, assistant_id, conversation_id, message_id, "
                   "provider, model, outcome, tokens_in, tokens_out, cost_micros, latency_ms, "
                   "correlation_id) VALUES ($1, $2, $3, $4, $5, $6, 'ok', $7::int, $8::int, "
                   "$9::bigint, $10::int, $11)",
                   11, p, NULL, &j->dberr);
}

static int finish_tx(PGconn *c, void *arg)
{
    struct finish *f = arg;
    struct gen_job *j = f->j;
    int rc = still_wanted(c, j, true); /* locked: no other reply can slip in now */
    if (rc == 0 && j->skip && !gen_use_retrieval(j))
        return record_usage(c, f); /* not wanted any more, but the call was paid for */
    if (rc != 0 || j->skip)
        return rc;
    char tin[24], tout[24], preview[DOMAIN_PREVIEW_MAX + 1];
    snprintf(tin, sizeof tin, "%ld", j->tokens_in);
    snprintf(tout, sizeof tout, "%ld", j->tokens_out);
    const char *p[] = {j->tenant, j->conversation, j->channel, j->reply.data ? j->reply.data : "",
                       j->message, gen_use_retrieval(j) ? "retrieval" : j->provider,
                       j->used_model, tin, tout, j->correlation[0] ? j->correlation : NULL,
                       j->capped ? "t" : "f"};
    PGresult *r = NULL;
    rc = db_exec(c,
                 "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, "
                 "sender_type, type, content, metadata, status, llm_model, tokens_in, tokens_out, "
                 "correlation_id) VALUES ($1, $2, $3, 'outbound', 'bot', 'text', $4, "
                 "jsonb_strip_nulls(jsonb_build_object('reply_to_message_id', $5::text, "
                 "'provider', $6::text, 'spend_cap_reached', CASE WHEN $11::boolean THEN true END)), "
                 "'queued', NULLIF($7, ''), $8::int, $9::int, $10) RETURNING id",
                 11, p, &r, &j->dberr);
    if (rc == 0)
        snprintf(f->id, sizeof f->id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (rc == 0 && !gen_use_retrieval(j))
        rc = record_usage(c, f);
    domain_str_copy(preview, sizeof preview, p[3]);
    const char *q[] = {j->tenant, j->conversation, preview};
    if (rc == 0) /* answered: the buffer's lease ends (no newer message: still_wanted) */
        rc = db_exec(c,
                     "UPDATE conversations SET last_message_at = now(), last_outbound_at = now(), "
                     "last_message_preview = $3, buffer_started_at = NULL, "
                     "buffer_deadline_at = NULL WHERE tenant_id = $1 AND id = $2",
                     3, q, NULL, &j->dberr);
    return rc;
}

int gen_finish(struct gen_job *j)
{
    struct finish f = {.j = j};
    int rc = db_tenant_tx(j->p->svc->db, j->tenant, finish_tx, &f);
    if (rc == 0 && !gen_use_retrieval(j))
        spend_add(j->p->spend, j->p->svc->db, j->tenant, f.cost, j->tokens_in, j->tokens_out);
    if (rc != 0 || j->skip)
        return rc;
    /* Only now: a sender must find the committed message. If this fails, the
     * stalled-message sweep sends it later. */
    if (command_enqueue(j->p, PROC_STREAM_SEND, j->tenant, j->conversation, f.id, j->correlation,
                        1) != 0)
        sb_log_warn(j->p->svc->log, NULL, "reply %s stored but not queued; the sweep will send it",
                    f.id);
    struct domain_message_summary s = {.id = f.id, .conversation_id = j->conversation,
                                       .channel_id = j->channel, .type = DOMAIN_TYPE_TEXT,
                                       .direction = DOMAIN_OUTBOUND, .sender = DOMAIN_SENDER_BOT,
                                       .status = DOMAIN_STATUS_QUEUED, .content = j->reply.data,
                                       .created_ms = sb_now_ms()};
    events_emit(j->p->events,
                domain_event_envelope(DOMAIN_EVENT_AI_RESPONSE_GENERATED, j->tenant, sb_now_ms(),
                                      j->correlation[0] ? j->correlation : NULL, NULL,
                                      domain_message_summary_json(&s)));
    return 0;
}

static int release_tx(PGconn *c, void *arg)
{
    struct gen_job *j = arg;
    const char *p[] = {j->tenant, j->conversation, j->message};
    return db_exec(c,
                   "UPDATE conversations c SET buffer_started_at = NULL, buffer_deadline_at = NULL "
                   "WHERE c.tenant_id = $1 AND c.id = $2 AND NOT EXISTS (SELECT 1 FROM messages m "
                   "WHERE m.tenant_id = c.tenant_id AND m.conversation_id = c.id "
                   "AND m.direction = 'inbound' AND m.created_at > (SELECT t.created_at FROM messages t "
                   "WHERE t.tenant_id = c.tenant_id AND t.id = $3::uuid))",
                   3, p, NULL, &j->dberr);
}

int gen_release_buffer(struct gen_job *j)
{
    return db_tenant_tx(j->p->svc->db, j->tenant, release_tx, j);
}
