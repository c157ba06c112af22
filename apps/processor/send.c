/* send.c - SendToChannel: delivers queued outbound messages.
 *
 * The stream handler only queues each command (BUS_DEFER); sender threads
 * take what is queued for one tenant as a batch. claim (one transaction for
 * the batch): each message must still be queued; a bot reply is dropped
 * (failed, "superseded") when a newer customer message arrived since it was
 * written, or when a person took the conversation over; otherwise it becomes
 * `processing`. A web widget message is instead published to the webapp
 * through Redis right there and settled in the same transaction (a claim
 * that does not commit leaves it queued, so it is published again: the
 * widget keys messages by id). deliver: WhatsApp Cloud API or Instagram Send
 * API over libcurl (long replies split into several messages). settle (one
 * transaction for the batch): `sent` with the provider's id, or by the
 * error's class (protocols.md §2.4) back to `queued` with a retry after a
 * backoff, or `failed` with the reason. The final state of a message that
 * ran out of attempts is also copied to the dead-letter stream. Status
 * webhooks (inbound.c) then move it to delivered/read/failed. */
#include "send.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define SEND_QUEUE_MAX 512 /* commands read ahead of the senders */
/* A claim counts as abandoned after 3 minutes (CLAIM_SQL, the stalled sweep);
 * one delivery takes at most 10 parts × 15 s: renewed claims every 20 s keep
 * every message of a batch well inside that. */
#define SEND_RENEW_MS 20000

static const char CLAIM_SQL[] =
    "SELECT CASE WHEN m.status = 'processing' AND m.updated_at > now() - interval '3 minutes' "
    "THEN 'in_flight' ELSE m.status END, m.sender_type, m.content, m.attempts, "
    "coalesce(m.metadata->>'reply_to_message_id', ''), m.conversation_id, c.owner, "
    "ct.external_id, ch.type, coalesce(ch.phone_number_id, ''), "
    "coalesce(ch.instagram_account_id, ''), ch.access_token_enc, ch.id, "
    "coalesce((SELECT r.provider_message_id FROM messages r WHERE r.tenant_id = m.tenant_id "
    "  AND r.id = (m.metadata->>'reply_to_message_id')::uuid), ''), "
    "coalesce((SELECT i.id::text FROM messages i WHERE i.tenant_id = m.tenant_id "
    "  AND i.conversation_id = m.conversation_id AND i.direction = 'inbound' "
    "  ORDER BY i.created_at DESC, i.id DESC LIMIT 1), ''), coalesce(m.correlation_id, ''), m.id "
    "FROM messages m JOIN conversations c ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id "
    "JOIN contacts ct ON ct.tenant_id = c.tenant_id AND ct.id = c.contact_id "
    "JOIN channels ch ON ch.tenant_id = m.tenant_id AND ch.id = m.channel_id "
    "WHERE m.tenant_id = $1::uuid AND m.id = ANY($2::uuid[]) AND m.direction = 'outbound' "
    "ORDER BY m.id FOR UPDATE OF m";

/* Decides, locked, whether to send; reads everything delivery needs. */
static int claim(PGconn *c, struct send_job *s, const PGresult *r, int row)
{
    const char *status = PQgetvalue(r, row, 0);
    if (strcmp(status, "queued") != 0 && strcmp(status, "processing") != 0) {
        /* settled, or another sender is on it right now ("processing" only
         * counts as abandoned after a while: then it is sent again) */
        s->skip = strcmp(status, "in_flight") == 0 ? "being sent" : "already settled";
        return 0;
    }
    s->claimed_from = strcmp(status, "queued") == 0 ? "queued" : "processing";
    snprintf(s->conversation, sizeof s->conversation, "%s", PQgetvalue(r, row, 5));
    snprintf(s->correlation, sizeof s->correlation, "%s", PQgetvalue(r, row, 15));
    bool bot = strcmp(PQgetvalue(r, row, 1), "bot") == 0;
    const char *reply_to = PQgetvalue(r, row, 4);
    if (bot && strcmp(PQgetvalue(r, row, 6), "bot") != 0)
        return send_settle_failed(c, s, "handed_off", "a person took the conversation over");
    if (bot && reply_to[0] && strcmp(reply_to, PQgetvalue(r, row, 14)) != 0)
        return send_settle_failed(c, s, "superseded", "a newer customer message arrived");
    if (strcmp(PQgetvalue(r, row, 1), "human") == 0) {
        /* A person writes (dashboard or API): the bot steps aside, and the
         * auto-resume timer restarts from this message (the human's silence
         * is what gives the conversation back). */
        const char *h[] = {s->tenant, PQgetvalue(r, row, 5)};
        int hr = db_exec(c,
                         "UPDATE conversations SET owner = 'human', "
                         "handoff_at = CASE WHEN owner = 'bot' THEN now() ELSE handoff_at END, "
                         "handoff_reason = CASE WHEN owner = 'bot' THEN 'a person replied' "
                         "ELSE handoff_reason END, buffer_started_at = NULL, "
                         "buffer_deadline_at = NULL, bot_resume_at = now() + make_interval(secs => "
                         "(SELECT a.handoff_auto_resume_seconds FROM assistants a WHERE "
                         "a.tenant_id = conversations.tenant_id AND a.id = conversations.assistant_id)) "
                         "WHERE tenant_id = $1 AND id = $2",
                         2, h, NULL, NULL);
        if (hr != 0)
            return hr;
    }
    long attempts = 0;
    if (db_value_long(r, row, 3, &attempts) != 0)
        return SB_EDB;
    s->attempts = (unsigned)attempts + 1;
    snprintf(s->to, sizeof s->to, "%s", PQgetvalue(r, row, 7));
    snprintf(s->type, sizeof s->type, "%s", PQgetvalue(r, row, 8));
    snprintf(s->account, sizeof s->account, "%s",
             PQgetvalue(r, row, strcmp(s->type, "instagram") == 0 ? 10 : 9));
    snprintf(s->channel, sizeof s->channel, "%s", PQgetvalue(r, row, 12));
    snprintf(s->reply_to_provider, sizeof s->reply_to_provider, "%s", PQgetvalue(r, row, 13));
    int rc = sb_buf_append_str(&s->text, PQgetvalue(r, row, 2));
    if (rc == 0 && !PQgetisnull(r, row, 11) && strcmp(s->type, "web") != 0)
        rc = send_open_token(s, PQgetvalue(r, row, 11));
    return rc;
}

/* One batch of claims: every message locked in id order, the decisions
 * made, the ones to send over HTTP marked `processing` together, and the web
 * widget's published and recorded on the spot. */
struct claims {
    struct send_job **jobs;
    size_t n;
};

static const char NO_ROW[] = "no such outbound message";

/* The job a claimed row is for (one row per message: a second command for
 * the same message in the batch finds none and is skipped). */
static struct send_job *unclaimed(struct claims *b, const char *id)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->jobs[i]->skip == NO_ROW && strcmp(b->jobs[i]->message, id) == 0)
            return b->jobs[i];
    return NULL;
}

/* Back to what the stream entry said: the body may run more than once. */
static void reset_job(struct send_job *s)
{
    s->skip = NULL;
    s->failed_now = s->inline_web = false;
    s->status = NULL;
    s->type[0] = s->provider_id[0] = '\0';
    s->nextra = 0;
    sb_buf_reset(&s->text);
    if (s->token) {
        OPENSSL_cleanse(s->token, strlen(s->token));
        free(s->token);
        s->token = NULL;
    }
}

static int mark_processing(PGconn *c, struct claims *b)
{
    struct db_array ids;
    db_array_init(&ids, SEND_BATCH_MAX * (SB_UUID_STRLEN + 3) + 2);
    int rc = 0, rows = 0;
    for (size_t i = 0; rc == 0 && i < b->n; i++)
        if (!b->jobs[i]->skip && !b->jobs[i]->inline_web) {
            rc = db_array_add(&ids, b->jobs[i]->message);
            rows++;
        }
    const char *p[] = {b->jobs[0]->tenant, db_array_text(&ids)};
    if (rc == 0 && rows > 0)
        rc = p[1] ? db_exec(c,
                            "UPDATE messages SET status = 'processing', attempts = attempts + 1, "
                            "next_attempt_at = NULL FROM unnest($2::uuid[]) AS u(id) "
                            "WHERE tenant_id = $1::uuid AND messages.id = u.id",
                            2, p, NULL, NULL)
                  : SB_ELIMIT;
    db_array_cleanup(&ids);
    return rc;
}

static int claim_tx(PGconn *c, void *arg)
{
    struct claims *b = arg;
    struct db_array ids;
    db_array_init(&ids, SEND_BATCH_MAX * (SB_UUID_STRLEN + 3) + 2);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        reset_job(b->jobs[i]);
        b->jobs[i]->skip = NO_ROW; /* unless a row below says otherwise */
        rc = db_array_add(&ids, b->jobs[i]->message);
    }
    const char *p[] = {b->jobs[0]->tenant, db_array_text(&ids)};
    PGresult *r = NULL;
    if (rc == 0)
        rc = p[1] ? db_exec(c, CLAIM_SQL, 2, p, &r, NULL) : SB_ELIMIT;
    for (int row = 0; rc == 0 && row < PQntuples(r); row++) {
        struct send_job *s = unclaimed(b, PQgetvalue(r, row, 16));
        if (!s)
            continue;
        s->skip = NULL;
        rc = claim(c, s, r, row);
        if (rc == 0 && !s->skip && strcmp(s->type, "web") == 0) {
            send_deliver(s); /* a PUBLISH: done under the lock, settled below */
            send_decide(s);
            s->inline_web = true;
        }
    }
    PQclear(r);
    db_array_cleanup(&ids);
    if (rc == 0)
        rc = mark_processing(c, b);
    return rc == 0 ? send_record(c, b->jobs, b->n) : rc;
}

/* Acknowledges the commands of n jobs with one XACK. */
static void ack(struct processor *p, struct send_job **jobs, size_t n)
{
    const char *ids[SEND_BATCH_MAX] = {0};
    for (size_t i = 0; i < n; i++)
        ids[i] = jobs[i]->entry_id;
    if (bus_stream_ack_many(p->svc->bus, PROC_STREAM_SEND, PROC_GROUP, ids, n) != 0)
        sb_log_warn(p->svc->log, NULL, "%zu SendToChannel commands done but not acknowledged; "
                    "they will be checked again", n);
}

/* Outcomes to record, and the claimed messages still waiting for their
 * delivery, whose claim is renewed so nobody takes them for abandoned. */
struct outcomes {
    struct send_job **jobs, **waiting;
    size_t n, nwaiting;
};

static int renew_claims(PGconn *c, struct outcomes *o)
{
    struct db_array ids;
    db_array_init(&ids, SEND_BATCH_MAX * (SB_UUID_STRLEN + 3) + 2);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < o->nwaiting; i++)
        rc = db_array_add(&ids, o->waiting[i]->message);
    const char *p[] = {o->waiting[0]->tenant, db_array_text(&ids)};
    if (rc == 0)
        rc = p[1] ? db_exec(c,
                            "UPDATE messages SET updated_at = now() WHERE tenant_id = $1::uuid "
                            "AND id = ANY($2::uuid[]) AND status = 'processing'",
                            2, p, NULL, NULL)
                  : SB_ELIMIT;
    db_array_cleanup(&ids);
    return rc;
}

static int record_tx(PGconn *c, void *arg)
{
    struct outcomes *o = arg;
    int rc = o->n ? send_record(c, o->jobs, o->n) : 0;
    return rc == 0 && o->nwaiting ? renew_claims(c, o) : rc;
}

/* Records o's outcomes (renewing the waiting claims), then what follows. Not
 * recorded (database away): the messages stay `processing` and the
 * stalled-message sweep sends them again. */
static void record(struct processor *p, struct outcomes *o)
{
    const char *stage[] = {"record"};
    int rc = db_tenant_tx(p->svc->db, o->jobs[0]->tenant, record_tx, o);
    metric_observe(p->m_batch, stage, (double)o->n);
    struct events_batch events;
    events_batch_init(&events, p->events);
    for (size_t i = 0; i < o->n; i++) {
        if (rc != 0) {
            o->jobs[i]->recorded = false;
            sb_log_error(p->svc->log, NULL, "message %s: outcome not recorded: %s",
                         o->jobs[i]->message, sb_strerror(rc));
        }
        send_settled(o->jobs[i], &events);
    }
    events_batch_flush(&events);
    ack(p, o->jobs, o->n);
}

/* After a committed claim: what was settled by the claim itself is told
 * about, and acknowledged. */
static void claimed(struct processor *p, struct send_job **jobs, size_t n)
{
    struct send_job *done[SEND_BATCH_MAX];
    size_t ndone = 0;
    struct events_batch events;
    events_batch_init(&events, p->events);
    for (size_t i = 0; i < n; i++) {
        struct send_job *s = jobs[i];
        if (s->failed_now)
            send_failed_event(s, &events);
        if (s->inline_web)
            send_settled(s, &events);
        if (s->skip || s->inline_web)
            done[ndone++] = s;
    }
    events_batch_flush(&events);
    ack(p, done, ndone);
}

static void run_batch(struct processor *p, struct send_job **jobs, size_t n)
{
    struct claims b = {jobs, n};
    const char *claim_stage[] = {"claim"};
    int rc = db_tenant_tx(p->svc->db, jobs[0]->tenant, claim_tx, &b);
    metric_observe(p->m_batch, claim_stage, (double)n);
    if (rc != 0 && rc != SB_EUNAVAIL && rc != -ETIMEDOUT && n > 1) {
        for (size_t i = 0; i < n; i++) /* find the one at fault; send the others */
            run_batch(p, &jobs[i], 1);
        return;
    }
    if (rc != 0) {
        for (size_t i = 0; i < n; i++) /* left pending: delivered again after the reclaim time */
            sb_log_warn(p->svc->log, NULL, "message %s not claimed: %s", jobs[i]->message,
                        sb_strerror(rc));
        return;
    }
    claimed(p, jobs, n);
    struct send_job *todo[SEND_BATCH_MAX];
    size_t ntodo = 0;
    for (size_t i = 0; i < n; i++)
        if (!jobs[i]->skip && !jobs[i]->inline_web)
            todo[ntodo++] = jobs[i];
    /* Over HTTP, one at a time; every SEND_RENEW_MS what was delivered is
     * recorded and the rest's claims renewed, so no message stays `processing`
     * long enough to be taken for abandoned. */
    size_t from = 0;
    int64_t since = sb_mono_ms();
    for (size_t i = 0; i < ntodo; i++) {
        if (i > from && sb_mono_ms() - since >= SEND_RENEW_MS) {
            struct outcomes o = {todo + from, todo + i, i - from, ntodo - i};
            record(p, &o);
            from = i;
            since = sb_mono_ms();
        }
        send_deliver(todo[i]);
        send_decide(todo[i]);
    }
    if (ntodo > from) {
        struct outcomes o = {todo + from, NULL, ntodo - from, 0};
        record(p, &o);
    }
}

/* A batch is one tenant's. */
static bool joins(struct batchq_item *const *taken, size_t n, const struct batchq_item *candidate)
{
    (void)n;
    return strcmp(BATCHQ_JOB(taken[0], struct send_job, qi)->tenant,
                  BATCHQ_JOB(candidate, struct send_job, qi)->tenant) == 0;
}

/* On a sender thread. */
static void send_batch(struct batchq_item **items, size_t n, void *arg)
{
    struct send_job *batch[SEND_BATCH_MAX];
    for (size_t i = 0; i < n && i < SEND_BATCH_MAX; i++)
        batch[i] = BATCHQ_JOB(items[i], struct send_job, qi);
    run_batch(arg, batch, n);
    for (size_t i = 0; i < n; i++)
        send_job_free(batch[i]);
}

/* Not acknowledged: stays pending in Redis and is reclaimed. */
static void discard(struct batchq_item *item)
{
    send_job_free(BATCHQ_JOB(item, struct send_job, qi));
}

static enum bus_verdict on_send(const struct bus_entry *e, unsigned deliveries,
                                struct sb_buf *reason, void *arg)
{
    struct processor *p = arg;
    (void)deliveries;
    struct send_job *s = send_job_new(p);
    if (!s)
        return BUS_RETRY;
    if (!proc_uuid_copy(s->tenant, entry_field(e, "tenant_id")) ||
        !proc_uuid_copy(s->message, entry_field(e, "message_id"))) {
        (void)!sb_buf_append_str(reason, "SendToChannel without valid ids");
        send_job_free(s);
        return BUS_DEAD;
    }
    snprintf(s->entry_id, sizeof s->entry_id, "%s", e->id);
    if (!batchq_put(p->sendq, &s->qi)) { /* stopping */
        send_job_free(s);
        return BUS_RETRY;
    }
    return BUS_DEFER; /* acknowledged by the sender once claimed */
}

int send_start(struct processor *p)
{
    struct batchq_config qc = {
        .threads = (int)sb_config_int(p->svc->cfg, "SABIA_PROCESSOR_SEND_THREADS"),
        .batch_max = SEND_BATCH_MAX,
        .max_queued = SEND_QUEUE_MAX,
        .joins = joins,
        .run = send_batch,
        .arg = p,
    };
    if (!(p->sendq = batchq_start(&qc)))
        return -ENOMEM;
    struct bus_worker_config wc = {
        .stream = PROC_STREAM_SEND,
        .group = PROC_GROUP,
        .consumer = p->consumer,
        .threads = 1, /* it only queues: the senders do the work */
        .batch = SEND_BATCH_MAX,
        .reclaim_idle_ms = 200000, /* longer than a split reply's sends (10 × 15 s) */
        .max_deliveries = 5,
        .fn = on_send,
        .arg = p,
    };
    p->send = bus_worker_start(p->svc->bus, &wc);
    return p->send ? 0 : -ENOMEM;
}

/* Stops: the senders finish the batch they hold; commands still queued are
 * not acknowledged, so they stay pending in Redis and are reclaimed. The
 * queue stops first, so a handler waiting for room returns at once. */
void send_stop(struct processor *p)
{
    if (p->sendq)
        batchq_close(p->sendq, false);
    bus_worker_stop(p->send);
    p->send = NULL;
    batchq_free(p->sendq, discard);
    p->sendq = NULL;
}
