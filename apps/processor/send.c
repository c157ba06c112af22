/* send.c - SendToChannel: delivers one queued outbound message.
 *
 * claim (transaction): the message must still be queued; a bot reply is
 * dropped (failed, "superseded") when a newer customer message arrived since
 * it was written, or when a person took the conversation over; otherwise it
 * becomes `processing`. deliver: WhatsApp Cloud API or Instagram Send API over
 * libcurl (long replies split into several messages), or the web widget
 * through Redis pub/sub to the webapp. settle (transaction): `sent` with the
 * provider's id, or by the error's class (protocols.md §2.4) back to `queued`
 * with a retry after a backoff, or `failed` with the reason. The final state
 * of a message that ran out of attempts is also copied to the dead-letter
 * stream. Status webhooks (inbound.c) then move it to delivered/read/failed. */
#include "send.h"

#include <stdlib.h>
#include <string.h>

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
    "  ORDER BY i.created_at DESC, i.id DESC LIMIT 1), ''), coalesce(m.correlation_id, '') "
    "FROM messages m JOIN conversations c ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id "
    "JOIN contacts ct ON ct.tenant_id = c.tenant_id AND ct.id = c.contact_id "
    "JOIN channels ch ON ch.tenant_id = m.tenant_id AND ch.id = m.channel_id "
    "WHERE m.tenant_id = $1 AND m.id = $2 AND m.direction = 'outbound' FOR UPDATE OF m";

/* Decides, locked, whether to send; reads everything delivery needs. */
static int claim(PGconn *c, struct send_job *s, const PGresult *r)
{
    const char *status = PQgetvalue(r, 0, 0);
    if (strcmp(status, "queued") != 0 && strcmp(status, "processing") != 0) {
        /* settled, or another sender is on it right now ("processing" only
         * counts as abandoned after a while: then it is sent again) */
        s->skip = strcmp(status, "in_flight") == 0 ? "being sent" : "already settled";
        return 0;
    }
    bool bot = strcmp(PQgetvalue(r, 0, 1), "bot") == 0;
    const char *reply_to = PQgetvalue(r, 0, 4);
    if (bot && strcmp(PQgetvalue(r, 0, 6), "bot") != 0)
        return send_settle_failed(c, s, "handed_off", "a person took the conversation over");
    if (bot && reply_to[0] && strcmp(reply_to, PQgetvalue(r, 0, 14)) != 0)
        return send_settle_failed(c, s, "superseded", "a newer customer message arrived");
    if (strcmp(PQgetvalue(r, 0, 1), "human") == 0) {
        /* A person writes (dashboard or API): the bot steps aside, and the
         * auto-resume timer restarts from this message (the human's silence
         * is what gives the conversation back). */
        const char *h[] = {s->tenant, PQgetvalue(r, 0, 5)};
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
    if (db_value_long(r, 0, 3, &attempts) != 0)
        return SB_EDB;
    s->attempts = (unsigned)attempts + 1;
    snprintf(s->conversation, sizeof s->conversation, "%s", PQgetvalue(r, 0, 5));
    snprintf(s->to, sizeof s->to, "%s", PQgetvalue(r, 0, 7));
    snprintf(s->type, sizeof s->type, "%s", PQgetvalue(r, 0, 8));
    snprintf(s->account, sizeof s->account, "%s",
             PQgetvalue(r, 0, strcmp(s->type, "instagram") == 0 ? 10 : 9));
    snprintf(s->channel, sizeof s->channel, "%s", PQgetvalue(r, 0, 12));
    snprintf(s->reply_to_provider, sizeof s->reply_to_provider, "%s", PQgetvalue(r, 0, 13));
    snprintf(s->correlation, sizeof s->correlation, "%s", PQgetvalue(r, 0, 15));
    int rc = sb_buf_append_str(&s->text, PQgetvalue(r, 0, 2));
    if (rc == 0 && !PQgetisnull(r, 0, 11))
        rc = send_open_token(s, PQgetvalue(r, 0, 11));
    const char *p[] = {s->tenant, s->message};
    if (rc == 0)
        rc = db_exec(c,
                     "UPDATE messages SET status = 'processing', attempts = attempts + 1, "
                     "next_attempt_at = NULL WHERE tenant_id = $1 AND id = $2",
                     2, p, NULL, NULL);
    return rc;
}

static int claim_tx(PGconn *c, void *arg)
{
    struct send_job *s = arg;
    const char *p[] = {s->tenant, s->message};
    PGresult *r = NULL;
    int rc = db_exec(c, CLAIM_SQL, 2, p, &r, NULL);
    if (rc == 0 && PQntuples(r) == 0)
        s->skip = "no such outbound message";
    else if (rc == 0)
        rc = claim(c, s, r);
    PQclear(r);
    return rc;
}

int send_claim(struct send_job *s)
{
    return db_tenant_tx(s->p->svc->db, s->tenant, claim_tx, s);
}

static enum bus_verdict on_send(const struct bus_entry *e, unsigned deliveries,
                                struct sb_buf *reason, void *arg)
{
    struct send_job s;
    send_job_init(&s, arg);
    (void)deliveries;
    snprintf(s.tenant, sizeof s.tenant, "%s", entry_field(e, "tenant_id"));
    snprintf(s.message, sizeof s.message, "%s", entry_field(e, "message_id"));
    enum bus_verdict v = BUS_ACK;
    if (!sb_uuid_valid(s.tenant, strlen(s.tenant)) || !sb_uuid_valid(s.message, strlen(s.message))) {
        (void)!sb_buf_append_str(reason, "SendToChannel without valid ids");
        v = BUS_DEAD;
    } else if (send_claim(&s) != 0) {
        v = BUS_RETRY;
    } else if (!s.skip) {
        send_deliver(&s);
        /* Not settled (database away): the message stays `processing` and the
         * stalled-message sweep sends it again. */
        if (send_settle(&s) != 0)
            sb_log_error(s.p->svc->log, NULL, "message %s: outcome not recorded", s.message);
    }
    send_job_cleanup(&s);
    return v;
}

int send_start(struct processor *p)
{
    struct bus_worker_config wc = {
        .stream = PROC_STREAM_SEND,
        .group = PROC_GROUP,
        .consumer = p->consumer,
        .threads = (int)sb_config_int(p->svc->cfg, "SABIA_PROCESSOR_SEND_THREADS"),
        .reclaim_idle_ms = 200000, /* longer than a split reply's sends (10 × 15 s) */
        .max_deliveries = 5,
        .fn = on_send,
        .arg = p,
    };
    p->send = bus_worker_start(p->svc->bus, &wc);
    return p->send ? 0 : -ENOMEM;
}

void send_stop(struct processor *p)
{
    bus_worker_stop(p->send);
    p->send = NULL;
}
