/* generate.c - GenerateAIResponse: storing replies.
 *
 * prepare (prepare.c) checks and loads a batch of commands; the answer comes
 * from the retrieval-only provider at once or from a model through the
 * libs/llm engine (answer.c).
 *
 * finish (one transaction shared by every reply completed at the same time):
 * the checks of prepare again, then each reply is stored as a queued outbound
 * message; once committed, SendToChannel is queued (a reply stored but never
 * queued is found by the scheduler's sweep of stalled outbound messages). */
#include "generate.h"
#include "spend.h"

#include <stdlib.h>
#include <string.h>

/* Reads the GEN_SQL_WANTED_COLUMNS (from `col` on) into j: its assistant and
 * channel, and j->skip with a reason when there is nothing (any more) to
 * answer. */
static void read_wanted(struct gen_job *j, const PGresult *r, int row, int col)
{
    const char *assistant = PQgetvalue(r, row, col + 2);
    j->skip = strcmp(PQgetvalue(r, row, col + 1), "open") != 0 ? "conversation closed"
              : strcmp(PQgetvalue(r, row, col), "bot") != 0    ? "a human has the conversation"
              : !assistant[0]                                  ? "no assistant on this channel"
              : strcmp(PQgetvalue(r, row, col + 4), "t") != 0  ? "a newer customer message arrived"
              : strcmp(PQgetvalue(r, row, col + 5), "t") == 0  ? "already answered"
                                                               : NULL;
    snprintf(j->assistant, sizeof j->assistant, "%s", assistant);
    snprintf(j->channel, sizeof j->channel, "%s", PQgetvalue(r, row, col + 3));
}

void gen_batch_init(struct gen_batch *b, struct gen_job **jobs, size_t n, size_t column_bytes)
{
    b->jobs = jobs;
    b->n = n;
    for (size_t i = 0; i < GEN_BATCH_COLUMNS; i++)
        db_array_init(&b->a[i], column_bytes);
}

void gen_batch_cleanup(struct gen_batch *b)
{
    for (size_t i = 0; i < GEN_BATCH_COLUMNS; i++)
        db_array_cleanup(&b->a[i]);
}

void gen_batch_reset(struct gen_batch *b)
{
    for (size_t i = 0; i < GEN_BATCH_COLUMNS; i++)
        db_array_reset(&b->a[i]);
}

int gen_batch_exec(PGconn *c, struct gen_batch *b, const char *sql, int ncols, PGresult **r)
{
    return db_exec_arrays(c, sql, b->jobs[0]->tenant, b->a, ncols, r, &b->jobs[0]->dberr);
}

int gen_batch_check(PGconn *c, struct gen_batch *b, const char *sql)
{
    int rc = 0;
    gen_batch_reset(b);
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        b->jobs[i]->skip = "conversation not found"; /* unless a row below says otherwise */
        rc = db_array_add(&b->a[0], b->jobs[i]->conversation);
        if (rc == 0)
            rc = db_array_add(&b->a[1], b->jobs[i]->message);
    }
    PGresult *r = NULL;
    if (rc == 0)
        rc = gen_batch_exec(c, b, sql, 2, &r);
    for (int row = 0; rc == 0 && row < PQntuples(r); row++) {
        long i = 0;
        if (db_value_long(r, row, 0, &i) != 0 || i < 1 || (size_t)i > b->n)
            rc = SB_EDB;
        else
            read_wanted(b->jobs[i - 1], r, row, 1);
    }
    PQclear(r);
    return rc;
}

/* ---------------------------------------------------------------- finish
 *
 * Finishes are batched: the completion threads hand over every completed call
 * of one tenant waiting at that moment (answer.c), and one transaction with a
 * fixed set of statements stores them all, whatever their number (arrays
 * through unnest: one plan, one commit). A batch that fails is finished again
 * one job at a time, so one bad reply never holds up the others. */

/* Every wanted job of the batch: conversation locked in id order (two batches
 * never wait on each other in a cycle), then the checks of prepare. */
static const char WANTED_BATCH_SQL[] =
    "SELECT w.i, " GEN_SQL_WANTED_COLUMNS("w.msg")
    "FROM unnest($2::uuid[], $3::uuid[]) WITH ORDINALITY AS w(conv, msg, i) "
    "JOIN conversations c ON c.tenant_id = $1::uuid AND c.id = w.conv "
    "ORDER BY c.id FOR UPDATE OF c";

/* Reply ids are UUIDv7 made here (time-ordered: new rows go to the right
 * edge of the indexes on id). */
static const char REPLIES_SQL[] =
    "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction, sender_type, "
    "type, content, metadata, status, llm_model, tokens_in, tokens_out, correlation_id) "
    "SELECT u.id, $1::uuid, u.conv, u.chan, 'outbound', 'bot', 'text', u.body, "
    "jsonb_strip_nulls(jsonb_build_object('reply_to_message_id', u.msg::text, "
    "'provider', u.provider, 'spend_cap_reached', CASE WHEN u.capped THEN true END)), "
    "'queued', NULLIF(u.model, ''), u.tin, u.tout, u.corr "
    "FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::uuid[], $6::text[], $7::text[], "
    "$8::int[], $9::int[], $10::text[], $11::boolean[], $12::uuid[]) WITH ORDINALITY "
    "AS u(conv, chan, body, msg, provider, model, tin, tout, corr, capped, id, i) ORDER BY u.i";

/* One llm_usage row per completed model call, in the transaction that stores
 * its reply (or finds it no longer wanted: the call was paid for all the
 * same); message_id names the reply when there is one. */
static const char USAGE_SQL[] =
    "INSERT INTO llm_usage (tenant_id, assistant_id, conversation_id, message_id, provider, "
    "model, outcome, tokens_in, tokens_out, cost_micros, latency_ms, correlation_id) "
    "SELECT $1::uuid, u.asst, u.conv, u.msg, u.provider, u.model, 'ok', u.tin, u.tout, u.cost, "
    "u.lat, u.corr FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], "
    "$7::int[], $8::int[], $9::bigint[], $10::int[], $11::text[]) "
    "AS u(asst, conv, msg, provider, model, tin, tout, cost, lat, corr)";

/* Answered: the buffer's lease ends (no newer message: checked above). */
static const char ANSWERED_SQL[] =
    "UPDATE conversations c SET last_message_at = now(), last_outbound_at = now(), "
    "last_message_preview = u.preview, buffer_started_at = NULL, buffer_deadline_at = NULL "
    "FROM unnest($2::uuid[], $3::text[]) AS u(id, preview) "
    "WHERE c.tenant_id = $1::uuid AND c.id = u.id";

static bool finish_wanted(const struct gen_job *j)
{
    return !j->skip && !j->again;
}

static int check_batch(PGconn *c, struct gen_batch *f)
{
    int rc = gen_batch_check(c, f, WANTED_BATCH_SQL);
    /* Two replies for one conversation in a batch: the later one waits for the
     * earlier to be committed and is finished on its own (it may then find
     * itself answered already). */
    for (size_t i = 0; rc == 0 && i < f->n; i++)
        for (size_t k = 0; k < i && !f->jobs[i]->again; k++)
            if (strcmp(f->jobs[k]->conversation, f->jobs[i]->conversation) == 0) {
                f->jobs[i]->again = true;
                f->jobs[i]->skip = NULL;
            }
    return rc;
}

static int add_reply_row(struct gen_batch *f, struct gen_job *j)
{
    char tin[24], tout[24];
    if (sb_uuid_v7_str(j->reply_id) != 0)
        return -EIO;
    snprintf(tin, sizeof tin, "%ld", j->tokens_in > 0 ? j->tokens_in : 0);
    snprintf(tout, sizeof tout, "%ld", j->tokens_out > 0 ? j->tokens_out : 0);
    const char *v[] = {j->conversation, j->channel, j->reply.data ? j->reply.data : "", j->message,
                       gen_use_retrieval(j) ? "retrieval" : j->provider, j->used_model, tin, tout,
                       j->correlation[0] ? j->correlation : NULL, j->capped ? "t" : "f",
                       j->reply_id};
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < sizeof v / sizeof v[0]; k++)
        rc = db_array_add(&f->a[k], v[k]);
    return rc;
}

static int insert_replies(PGconn *c, struct gen_batch *f)
{
    int rc = 0, want = 0;
    gen_batch_reset(f);
    for (size_t i = 0; rc == 0 && i < f->n; i++)
        if (finish_wanted(f->jobs[i])) {
            rc = add_reply_row(f, f->jobs[i]);
            want++;
        }
    if (rc != 0 || want == 0)
        return rc;
    PGresult *r = NULL;
    rc = gen_batch_exec(c, f, REPLIES_SQL, 11, &r);
    if (rc == 0 && strtol(PQcmdTuples(r), NULL, 10) != want)
        rc = SB_EDB;
    PQclear(r);
    return rc;
}

static int record_usage(PGconn *c, struct gen_batch *f)
{
    int rc = 0, rows = 0;
    gen_batch_reset(f);
    for (size_t i = 0; rc == 0 && i < f->n; i++) {
        struct gen_job *j = f->jobs[i];
        if (j->again || gen_use_retrieval(j))
            continue;
        j->cost = spend_cost(j->tokens_in, j->tokens_out, j->price_in, j->price_out);
        rows++;
        const char *v[] = {j->assistant, j->conversation, j->reply_id[0] ? j->reply_id : NULL,
                           j->provider, j->used_model};
        for (size_t k = 0; rc == 0 && k < sizeof v / sizeof v[0]; k++)
            rc = db_array_add(&f->a[k], v[k]);
        long n[] = {j->tokens_in > 0 ? j->tokens_in : 0, j->tokens_out > 0 ? j->tokens_out : 0,
                    j->cost, j->latency_ms > 0 ? j->latency_ms : 0};
        for (size_t k = 0; rc == 0 && k < sizeof n / sizeof n[0]; k++)
            rc = db_array_add_long(&f->a[5 + k], n[k]);
        if (rc == 0)
            rc = db_array_add(&f->a[9], j->correlation[0] ? j->correlation : NULL);
    }
    return rc != 0 || rows == 0 ? rc : gen_batch_exec(c, f, USAGE_SQL, 10, NULL);
}

static int mark_answered(PGconn *c, struct gen_batch *f)
{
    int rc = 0, rows = 0;
    gen_batch_reset(f);
    for (size_t i = 0; rc == 0 && i < f->n; i++) {
        struct gen_job *j = f->jobs[i];
        if (!finish_wanted(j))
            continue;
        char preview[DOMAIN_PREVIEW_MAX + 1];
        domain_str_copy(preview, sizeof preview, j->reply.data ? j->reply.data : "");
        rc = db_array_add(&f->a[0], j->conversation);
        if (rc == 0)
            rc = db_array_add(&f->a[1], preview);
        rows++;
    }
    return rc != 0 || rows == 0 ? rc : gen_batch_exec(c, f, ANSWERED_SQL, 2, NULL);
}

static int finish_tx(PGconn *c, void *arg)
{
    struct gen_batch *f = arg;
    for (size_t i = 0; i < f->n; i++) { /* the body may run again: start clean */
        f->jobs[i]->skip = NULL;
        f->jobs[i]->again = false;
        f->jobs[i]->reply_id[0] = '\0';
        f->jobs[i]->cost = 0;
    }
    int rc = check_batch(c, f);
    if (rc == 0)
        rc = insert_replies(c, f);
    if (rc == 0)
        rc = record_usage(c, f);
    if (rc == 0)
        rc = mark_answered(c, f);
    return rc;
}

/* After the commit: spend tallies, then SendToChannel and the event for each
 * stored reply, all of them in two pipelined round trips (a sender must find
 * the committed message; a reply stored but not queued is found by the
 * stalled-message sweep). */
static void after_finish(struct gen_job **jobs, size_t n)
{
    struct processor *p = jobs[0]->p;
    struct command cmds[GEN_FINISH_BATCH_MAX];
    bool queued[GEN_FINISH_BATCH_MAX];
    struct gen_job *sent[GEN_FINISH_BATCH_MAX];
    struct events_batch events;
    size_t ncmds = 0;
    events_batch_init(&events, p->events);
    for (size_t i = 0; i < n; i++) {
        struct gen_job *j = jobs[i];
        if (j->again)
            continue; /* counted by its own finish */
        if (!gen_use_retrieval(j))
            spend_add(p->spend, p->svc->db, j->tenant, j->cost, j->tokens_in, j->tokens_out);
        if (!finish_wanted(j))
            continue;
        sent[ncmds] = j;
        cmds[ncmds++] = (struct command){j->tenant, j->conversation, j->reply_id, j->correlation, 1};
        struct domain_message_summary s = {.id = j->reply_id, .conversation_id = j->conversation,
                                           .channel_id = j->channel, .type = DOMAIN_TYPE_TEXT,
                                           .direction = DOMAIN_OUTBOUND,
                                           .sender = DOMAIN_SENDER_BOT,
                                           .status = DOMAIN_STATUS_QUEUED, .content = j->reply.data,
                                           .created_ms = sb_now_ms()};
        events_batch_add(&events,
                         domain_event_envelope(DOMAIN_EVENT_AI_RESPONSE_GENERATED, j->tenant,
                                               sb_now_ms(), j->correlation[0] ? j->correlation : NULL,
                                               NULL, domain_message_summary_json(&s)));
    }
    if (ncmds && command_enqueue_many(p, PROC_STREAM_SEND, cmds, ncmds, queued) > 0)
        for (size_t i = 0; i < ncmds; i++)
            if (!queued[i])
                sb_log_warn(p->svc->log, NULL, "reply %s stored but not queued; the sweep will "
                            "send it", sent[i]->reply_id);
    events_batch_flush(&events);
}

void gen_finish_batch(struct gen_job **jobs, size_t n, int *rcs)
{
    struct processor *p = jobs[0]->p;
    struct gen_batch f;
    gen_batch_init(&f, jobs, n, 2 * GEN_FINISH_BATCH_BYTES + 64 * 1024);
    int rc = db_tenant_tx(p->svc->db, jobs[0]->tenant, finish_tx, &f);
    gen_batch_cleanup(&f);
    const char *stage[] = {"finish"};
    metric_observe(p->m_batch, stage, (double)n);
    if (rc != 0 && rc != SB_EUNAVAIL && rc != -ETIMEDOUT && n > 1) {
        for (size_t i = 0; i < n; i++) /* find the one at fault; finish the others */
            gen_finish_batch(&jobs[i], 1, &rcs[i]);
        return;
    }
    for (size_t i = 0; i < n; i++)
        rcs[i] = rc;
    if (rc != 0)
        return;
    after_finish(jobs, n);
    for (size_t i = 0; i < n; i++)
        if (jobs[i]->again) /* its conversation had an earlier reply in this batch */
            gen_finish_batch(&jobs[i], 1, &rcs[i]);
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
