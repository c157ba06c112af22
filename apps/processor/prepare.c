/* prepare.c - the first step of GenerateAIResponse, for a batch of commands
 * of one tenant in one read transaction (answer.c forms the batches).
 *
 * Each job is checked: the conversation must still be the bot's, its newest
 * customer message must still be the one the command names (abort-if-newer:
 * a newer message has its own deadline and its reply will see both), and that
 * message must not have been answered already (commands are delivered at
 * least once). A job still wanted then gets its assistant's settings, the
 * recent conversation (bounded) and the knowledge matching the unanswered
 * messages; the retrieval-only provider's reply is written right here.
 *
 * Every step is one fixed statement over arrays (unnest … WITH ORDINALITY,
 * LATERAL for the per-conversation parts), so a batch of any size costs the
 * same handful of round trips and one plan each. */
#include "generate.h"
#include "retrieval.h"
#include "spend.h"

#include <stdlib.h>
#include <string.h>

#define KNOWLEDGE_HITS 3
#define QUESTION_MAX 16384 /* bytes of unanswered customer text considered */

static const char WANTED_SQL[] =
    "SELECT w.i, " GEN_SQL_WANTED_COLUMNS("w.msg")
    "FROM unnest($2::uuid[], $3::uuid[]) WITH ORDINALITY AS w(conv, msg, i) "
    "JOIN conversations c ON c.tenant_id = $1::uuid AND c.id = w.conv";

static const char ASSISTANTS_SQL[] =
    "SELECT id, provider, model, system_prompt, personality, temperature, max_tokens, "
    "context_messages, coalesce(provider_base_url, ''), provider_api_key_enc, "
    "coalesce(config->>'fallback_text', ''), "
    "coalesce(config->>'price_input_micros_per_mtok', ''), "
    "coalesce(config->>'price_output_micros_per_mtok', '') "
    "FROM assistants WHERE tenant_id = $1::uuid AND id = ANY($2::uuid[]) AND status = 'active'";

/* The last `lim` messages of each conversation, oldest first. */
static const char CONTEXT_SQL[] =
    "SELECT w.i, m.direction, m.content "
    "FROM unnest($2::uuid[], $3::int[]) WITH ORDINALITY AS w(conv, lim, i) "
    "CROSS JOIN LATERAL (SELECT direction, content, created_at, id FROM messages "
    "  WHERE tenant_id = $1::uuid AND conversation_id = w.conv "
    "  AND type NOT IN ('reaction', 'system') AND content <> '' AND status <> 'failed' "
    "  ORDER BY created_at DESC, id DESC LIMIT w.lim) m "
    "ORDER BY w.i, m.created_at, m.id";

static bool wanted(const struct gen_job *j)
{
    return !j->skip;
}

/* An assistant's own price (config, micro-USD per million tokens), else the
 * instance's. */
static long price_or(const char *text, long fallback)
{
    long v = 0;
    return text[0] && sb_parse_long(text, 0, PROC_PRICE_MAX, &v) == 0 ? v : fallback;
}

/* An optional text setting: heap copy, or NULL when empty. Jobs are many and
 * long-lived (a model call each), so they keep only what is set. */
static int copy_setting(char **to, const char *value)
{
    free(*to);
    *to = value[0] ? strdup(value) : NULL;
    return value[0] && !*to ? -ENOMEM : 0;
}

/* Fills j from its assistant's row of ASSISTANTS_SQL. */
static int fill_assistant(struct gen_job *j, const PGresult *r, int row)
{
    snprintf(j->provider, sizeof j->provider, "%s", PQgetvalue(r, row, 1));
    snprintf(j->model, sizeof j->model, "%s", PQgetvalue(r, row, 2));
    sb_buf_reset(&j->system);
    int rc = sb_buf_append_str(&j->system, PQgetvalue(r, row, 3));
    if (rc == 0 && PQgetvalue(r, row, 4)[0])
        rc = sb_buf_appendf(&j->system, "\n\nPersonality: %s", PQgetvalue(r, row, 4));
    j->temperature = strtod(PQgetvalue(r, row, 5), NULL);
    long v = 0;
    j->max_tokens = db_value_long(r, row, 6, &v) == 0 ? (int)v : 1024;
    j->context_max = db_value_long(r, row, 7, &v) == 0 ? (int)v : 20;
    if (rc == 0)
        rc = copy_setting(&j->base_url, PQgetvalue(r, row, 8));
    if (rc == 0)
        rc = copy_setting(&j->fallback, PQgetvalue(r, row, 10));
    j->price_in = price_or(PQgetvalue(r, row, 11), j->p->price_in);
    j->price_out = price_or(PQgetvalue(r, row, 12), j->p->price_out);
    gen_drop_key(j); /* from an earlier run of the transaction */
    if (rc == 0 && !PQgetisnull(r, row, 9))
        rc = gen_open_key(j, PQgetvalue(r, row, 9));
    return rc;
}

static int load_assistants(PGconn *c, struct gen_batch *b)
{
    int rc = 0, asked = 0;
    gen_batch_reset(b);
    for (size_t i = 0; rc == 0 && i < b->n; i++)
        if (wanted(b->jobs[i])) {
            rc = db_array_add(&b->a[0], b->jobs[i]->assistant);
            asked++;
        }
    if (rc != 0 || asked == 0)
        return rc;
    PGresult *r = NULL;
    rc = gen_batch_exec(c, b, ASSISTANTS_SQL, 1, &r);
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        struct gen_job *j = b->jobs[i];
        if (!wanted(j))
            continue;
        j->skip = "the assistant is inactive"; /* unless found */
        for (int row = 0; rc == 0 && row < PQntuples(r); row++)
            if (strcmp(PQgetvalue(r, row, 0), j->assistant) == 0) {
                j->skip = NULL;
                rc = fill_assistant(j, r, row);
                break;
            }
    }
    PQclear(r);
    return rc;
}

/* The tenant's monthly spend cap, checked once for the batch: a job whose
 * model call it forbids is answered by the retrieval-only provider. */
static int check_spend(PGconn *c, struct gen_batch *b)
{
    bool checked = false, allowed = true;
    long spent = 0, cap = -1;
    for (size_t i = 0; i < b->n; i++) {
        struct gen_job *j = b->jobs[i];
        j->capped = false;
        if (!wanted(j) || gen_use_retrieval(j))
            continue;
        if (!checked) {
            int rc = spend_check(j->p->spend, c, j->tenant, &allowed, &spent, &cap);
            if (rc != 0)
                return rc;
            checked = true;
        }
        j->capped = !allowed;
        j->spent = spent;
        j->cap = cap;
    }
    return 0;
}

/* One job's rows of CONTEXT_SQL, oldest first; the customer's messages since
 * the last outbound one also form the question for the knowledge search. */
static int add_context(struct gen_job *j, const PGresult *r, int from, int to)
{
    int rc = gen_context_reserve(j, (size_t)(to - from));
    for (int row = from; rc == 0 && row < to; row++) {
        bool inbound = strcmp(PQgetvalue(r, row, 1), "inbound") == 0;
        rc = gen_context_add(j, inbound ? "user" : "assistant", PQgetvalue(r, row, 2));
        if (rc == 0 && inbound && j->question.len < QUESTION_MAX)
            rc = sb_buf_appendf(&j->question, "%s%s", j->question.len ? "\n" : "",
                                PQgetvalue(r, row, 2));
        else if (!inbound)
            sb_buf_reset(&j->question); /* answered already */
    }
    return rc;
}

static void clear_context(struct gen_job *j)
{
    for (size_t i = 0; i < j->ncontext; i++)
        free((char *)j->context[i].content);
    j->ncontext = 0;
    sb_buf_reset(&j->question);
}

static int load_context(PGconn *c, struct gen_batch *b)
{
    int rc = 0, asked = 0;
    gen_batch_reset(b);
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        struct gen_job *j = b->jobs[i];
        clear_context(j);
        if (!wanted(j))
            continue;
        rc = db_array_add(&b->a[0], j->conversation);
        if (rc == 0)
            rc = db_array_add_long(&b->a[1], j->context_max > 0 ? j->context_max : 1);
        asked++;
    }
    if (rc != 0 || asked == 0)
        return rc;
    /* Positions in the arrays count wanted jobs only: the w.i of a row is
     * mapped back through `order`. */
    struct gen_job **order = calloc((size_t)asked, sizeof *order);
    if (!order)
        return -ENOMEM;
    for (size_t i = 0, k = 0; i < b->n; i++)
        if (wanted(b->jobs[i]))
            order[k++] = b->jobs[i];
    PGresult *r = NULL;
    rc = gen_batch_exec(c, b, CONTEXT_SQL, 2, &r);
    for (int row = 0; rc == 0 && row < PQntuples(r);) {
        long i = 0;
        if (db_value_long(r, row, 0, &i) != 0 || i < 1 || i > asked) {
            rc = SB_EDB;
            break;
        }
        int end = row + 1;
        while (end < PQntuples(r) && strcmp(PQgetvalue(r, end, 0), PQgetvalue(r, row, 0)) == 0)
            end++;
        rc = add_context(order[i - 1], r, row, end);
        row = end;
    }
    PQclear(r);
    free(order);
    return rc;
}

/* The knowledge matching each wanted job's question: the retrieval-only
 * provider's reply, or facts added to the model's system prompt. */
static int add_knowledge(PGconn *c, struct gen_batch *b)
{
    struct retrieval_query *qs = calloc(b->n, sizeof *qs);
    struct retrieval_hit *hits = calloc(b->n * KNOWLEDGE_HITS, sizeof *hits);
    int rc = qs && hits ? 0 : -ENOMEM;
    size_t nq = 0;
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        struct gen_job *j = b->jobs[i];
        if (!wanted(j))
            continue;
        qs[nq] = (struct retrieval_query){.assistant_id = j->assistant,
                                          .question = j->question.data,
                                          .limit = gen_use_retrieval(j) ? 1 : KNOWLEDGE_HITS,
                                          .hits = &hits[nq * KNOWLEDGE_HITS]};
        nq++;
    }
    if (rc == 0)
        rc = retrieval_search_many(c, b->jobs[0]->tenant, qs, nq);
    for (size_t i = 0, k = 0; rc == 0 && i < b->n; i++) {
        struct gen_job *j = b->jobs[i];
        if (!wanted(j))
            continue;
        const struct retrieval_query *q = &qs[k++];
        if (gen_use_retrieval(j)) {
            sb_buf_reset(&j->reply);
            rc = retrieval_reply(q->hits, q->n, j->fallback, &j->reply);
            continue;
        }
        if (q->n > 0)
            rc = sb_buf_append_str(&j->system,
                                   "\n\nUse the following facts from the knowledge base when "
                                   "they answer the customer:");
        for (int h = 0; rc == 0 && h < q->n; h++)
            rc = sb_buf_appendf(&j->system, "\n- %s%s%s", q->hits[h].title,
                                q->hits[h].title[0] ? ": " : "", q->hits[h].content);
    }
    for (size_t k = 0; qs && k < nq; k++)
        retrieval_hits_free(qs[k].hits, qs[k].n);
    free(qs);
    free(hits);
    return rc;
}

static int prepare_tx(PGconn *c, void *arg)
{
    struct gen_batch *b = arg;
    int rc = gen_batch_check(c, b, WANTED_SQL);
    if (rc == 0)
        rc = load_assistants(c, b);
    if (rc == 0)
        rc = check_spend(c, b);
    if (rc == 0)
        rc = load_context(c, b);
    if (rc == 0)
        rc = add_knowledge(c, b);
    return rc;
}

int gen_prepare_batch(struct gen_job **jobs, size_t n)
{
    struct processor *p = jobs[0]->p;
    struct gen_batch b;
    gen_batch_init(&b, jobs, n, n * 128 + 64);
    int rc = db_tenant_tx(p->svc->db, jobs[0]->tenant, prepare_tx, &b);
    gen_batch_cleanup(&b);
    metric_observe(p->m_batch, (const char *[]){"prepare"}, (double)n);
    return rc;
}
