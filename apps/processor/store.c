/* store.c - see store.h. */
#include "store.h"

#include <stdlib.h>
#include <string.h>

struct conv {
    char id[SB_UUID_STRLEN];
    enum domain_owner owner;
    bool created;
    int64_t buffer_started_ms; /* 0: no reply pending */
};

void after_commit_cleanup(struct after_commit *a)
{
    for (size_t i = 0; i < a->nevents; i++)
        json_decref(a->events[i]);
    memset(a, 0, sizeof *a);
}

static void after_event(struct after_commit *a, const struct channel_ctx *ctx, enum domain_event t,
                        json_t *data)
{
    json_t *env = domain_event_envelope(t, ctx->tenant_id, sb_now_ms(), ctx->correlation_id, NULL,
                                        data);
    if (env && a->nevents < STORE_MAX_AFTER)
        a->events[a->nevents++] = env;
    else
        json_decref(env);
}

static int one_row(PGconn *c, const char *sql, int n, const char *const *p, PGresult **res)
{
    int rc = db_exec(c, sql, n, p, res, NULL);
    if (rc == 0 && PQntuples(*res) == 0) {
        PQclear(*res);
        *res = NULL;
        return SB_ENOTFOUND;
    }
    return rc;
}

int store_load_assistant(PGconn *c, struct channel_ctx *ctx)
{
    const char *p[] = {ctx->tenant_id, ctx->channel_id};
    PGresult *r = NULL;
    ctx->assistant_id[0] = '\0';
    int rc = one_row(c,
                     "SELECT a.id, a.status = 'active', a.message_buffer_seconds, "
                     "a.buffer_max_wait_seconds, coalesce(a.handoff_auto_resume_seconds, 0) "
                     "FROM assistant_channels ac JOIN assistants a "
                     "ON a.tenant_id = ac.tenant_id AND a.id = ac.assistant_id "
                     "WHERE ac.tenant_id = $1 AND ac.channel_id = $2",
                     2, p, &r);
    if (rc == SB_ENOTFOUND)
        return 0; /* nobody answers on this channel: messages are stored only */
    if (rc != 0)
        return rc;
    snprintf(ctx->assistant_id, sizeof ctx->assistant_id, "%s", PQgetvalue(r, 0, 0));
    ctx->assistant_active = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    if (db_value_long(r, 0, 2, &ctx->buffer_s) != 0 ||
        db_value_long(r, 0, 3, &ctx->buffer_max_wait_s) != 0 ||
        db_value_long(r, 0, 4, &ctx->resume_s) != 0)
        rc = SB_EDB;
    PQclear(r);
    return rc;
}

static int upsert_contact(PGconn *c, const struct channel_ctx *ctx, const struct domain_message *m,
                          char id[SB_UUID_STRLEN])
{
    const char *p[] = {ctx->tenant_id, ctx->workspace_id, ctx->channel_id, m->contact_id,
                       m->contact_name, m->contact_phone, m->contact_email};
    PGresult *r = NULL;
    int rc = one_row(c,
                     "INSERT INTO contacts (tenant_id, workspace_id, channel_id, external_id, name, "
                     "phone, email) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                     "ON CONFLICT (tenant_id, channel_id, external_id) DO UPDATE SET "
                     "name = coalesce(EXCLUDED.name, contacts.name), "
                     "phone = coalesce(EXCLUDED.phone, contacts.phone), "
                     "email = coalesce(EXCLUDED.email, contacts.email), last_seen_at = now() "
                     "RETURNING id",
                     7, p, &r);
    if (rc == 0)
        snprintf(id, SB_UUID_STRLEN, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

static int read_conv(PGresult *r, struct conv *cv)
{
    snprintf(cv->id, sizeof cv->id, "%s", PQgetvalue(r, 0, 0));
    long started = 0;
    if (domain_owner_parse(PQgetvalue(r, 0, 1), &cv->owner) != 0 ||
        db_value_long(r, 0, 2, &started) != 0)
        return SB_EDB;
    cv->buffer_started_ms = started;
    return 0;
}

/* The open conversation of this contact on this channel, locked for the rest
 * of the transaction (two events of one conversation never interleave), or a
 * new one. */
static int open_conversation(PGconn *c, const struct channel_ctx *ctx, const char *contact_id,
                             struct conv *cv)
{
    const char *p[] = {ctx->tenant_id, ctx->channel_id, contact_id, ctx->workspace_id,
                       ctx->assistant_id};
    for (int attempt = 0; attempt < 3; attempt++) {
        PGresult *r = NULL;
        int rc = one_row(c,
                         "SELECT id, owner, coalesce((extract(epoch FROM buffer_started_at) * 1000)"
                         "::bigint, 0) FROM conversations WHERE tenant_id = $1 AND channel_id = $2 "
                         "AND contact_id = $3 AND status = 'open' FOR UPDATE",
                         3, p, &r);
        if (rc == 0)
            rc = read_conv(r, cv);
        PQclear(r);
        if (rc != SB_ENOTFOUND)
            return rc;
        rc = one_row(c,
                     "INSERT INTO conversations (tenant_id, channel_id, contact_id, workspace_id, "
                     "assistant_id) VALUES ($1, $2, $3, $4, NULLIF($5, '')::uuid) "
                     "ON CONFLICT (tenant_id, channel_id, contact_id) WHERE status = 'open' "
                     "DO NOTHING RETURNING id, owner, 0",
                     5, p, &r);
        if (rc == 0) {
            rc = read_conv(r, cv);
            cv->created = true;
        }
        PQclear(r);
        if (rc != SB_ENOTFOUND)
            return rc;
        /* Opened concurrently by someone else: read theirs. */
    }
    return SB_ECONFLICT;
}

/* Inserts the message unless its provider id is known; *inserted tells. */
static int insert_message(PGconn *c, const struct channel_ctx *ctx, const struct domain_message *m,
                          const char *conversation_id, char id[SB_UUID_STRLEN], bool *inserted)
{
    char *meta = json_dumps(m->metadata, JSON_COMPACT);
    char ts[32] = "";
    if (m->timestamp_ms > 0)
        snprintf(ts, sizeof ts, "%lld", (long long)m->timestamp_ms);
    bool inbound = m->direction == DOMAIN_INBOUND;
    const char *p[] = {ctx->tenant_id, conversation_id, ctx->channel_id,
                       domain_direction_name(m->direction), domain_sender_name(m->sender),
                       domain_message_type_name(m->type), m->text, meta ? meta : "{}",
                       m->provider_message_id, ts[0] ? ts : NULL, ctx->event_id,
                       inbound ? "received" : "sent", ctx->correlation_id};
    PGresult *r = NULL;
    int rc = db_exec(c,
                     "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, "
                     "sender_type, type, content, metadata, provider_message_id, provider_timestamp, "
                     "webhook_event_id, status, correlation_id, sent_at) VALUES ($1, $2, $3, $4, $5, "
                     "$6, $7, $8::jsonb, $9, to_timestamp($10::bigint / 1000.0), $11, $12, $13, "
                     "CASE WHEN $12 = 'sent' THEN now() END) "
                     "ON CONFLICT (tenant_id, channel_id, provider_message_id) DO NOTHING "
                     "RETURNING id",
                     13, p, &r, NULL);
    free(meta);
    *inserted = rc == 0 && PQntuples(r) == 1;
    if (*inserted)
        snprintf(id, SB_UUID_STRLEN, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

/* Conversation bookkeeping after a new customer message; arms the buffer
 * when the bot may answer. */
static int after_inbound(PGconn *c, const struct channel_ctx *ctx, const struct domain_message *m,
                         const struct conv *cv, struct after_commit *after)
{
    struct domain_owner_result own;
    int rc = domain_owner_apply(cv->owner, DOMAIN_OWNER_CUSTOMER_MESSAGE, &own);
    if (rc != 0)
        return rc;
    bool arm = own.bot_may_answer && ctx->assistant_id[0] && ctx->assistant_active;
    int64_t now = sb_now_ms();
    int64_t deadline = domain_buffer_deadline(cv->buffer_started_ms, now, ctx->buffer_s,
                                              ctx->buffer_max_wait_s);
    char dl[32], preview[DOMAIN_PREVIEW_MAX + 1];
    snprintf(dl, sizeof dl, "%lld", (long long)deadline);
    domain_str_copy(preview, sizeof preview, m->text);
    const char *p[] = {ctx->tenant_id, cv->id, preview, arm ? dl : NULL};
    rc = db_exec(c,
                 "UPDATE conversations SET last_message_at = now(), last_inbound_at = now(), "
                 "last_message_preview = $3, unread_count = unread_count + 1, "
                 "buffer_started_at = CASE WHEN $4::bigint IS NULL THEN buffer_started_at "
                 "ELSE coalesce(buffer_started_at, now()) END, "
                 "buffer_deadline_at = CASE WHEN $4::bigint IS NULL THEN buffer_deadline_at "
                 "ELSE to_timestamp($4::bigint / 1000.0) END "
                 "WHERE tenant_id = $1 AND id = $2",
                 4, p, NULL, NULL);
    if (rc == 0 && arm && after->narms < STORE_MAX_AFTER) {
        struct buffer_arm *a = &after->arms[after->narms++];
        snprintf(a->conversation_id, sizeof a->conversation_id, "%s", cv->id);
        a->deadline_ms = deadline;
    }
    return rc;
}

/* The business wrote from its own phone or app: a human has the conversation. */
static int after_echo(PGconn *c, const struct channel_ctx *ctx, const struct domain_message *m,
                      const struct conv *cv, struct after_commit *after)
{
    struct domain_owner_result own;
    int rc = domain_owner_apply(cv->owner, DOMAIN_OWNER_HUMAN_MESSAGE, &own);
    if (rc != 0)
        return rc;
    char resume[32] = "", preview[DOMAIN_PREVIEW_MAX + 1];
    int64_t at = domain_resume_deadline(sb_now_ms(), ctx->resume_s);
    if (own.resume == DOMAIN_RESUME_RESTART && at > 0)
        snprintf(resume, sizeof resume, "%lld", (long long)at);
    domain_str_copy(preview, sizeof preview, m->text);
    const char *p[] = {ctx->tenant_id, cv->id, domain_owner_name(own.owner), resume[0] ? resume : NULL,
                       preview};
    rc = db_exec(c,
                 "UPDATE conversations SET owner = $3, last_message_at = now(), "
                 "last_outbound_at = now(), last_message_preview = $5, "
                 "handoff_at = CASE WHEN owner <> $3 THEN now() ELSE handoff_at END, "
                 "handoff_reason = CASE WHEN owner <> $3 THEN 'reply from the business phone' "
                 "ELSE handoff_reason END, "
                 "bot_resume_at = to_timestamp($4::bigint / 1000.0), "
                 "buffer_started_at = NULL, buffer_deadline_at = NULL "
                 "WHERE tenant_id = $1 AND id = $2",
                 5, p, NULL, NULL);
    if (rc == 0 && own.changed) {
        struct domain_conversation_summary s = {.id = cv->id, .channel_id = ctx->channel_id,
                                                .channel_type = ctx->channel_type,
                                                .owner = own.owner,
                                                .status = DOMAIN_CONVERSATION_OPEN,
                                                .updated_ms = sb_now_ms()};
        after_event(after, ctx, DOMAIN_EVENT_CONVERSATION_UPDATED, domain_conversation_summary_json(&s));
    }
    return rc;
}

/* Instagram echoes Sabiá's own sends back (and a part of a split reply, or
 * an echo that overtakes the send's result, is not yet known by its id): an
 * echo is ours when its id or its text matches a recent outbound message. */
static int is_own_echo(PGconn *c, const struct channel_ctx *ctx, const struct domain_message *m,
                       bool *own)
{
    const char *p[] = {ctx->tenant_id, ctx->channel_id,
                       m->provider_message_id ? m->provider_message_id : "", m->text};
    PGresult *r = NULL;
    int rc = db_exec(c,
                     "SELECT 1 FROM messages WHERE tenant_id = $1 AND channel_id = $2 "
                     "AND direction = 'outbound' AND (provider_message_id = $3 "
                     "OR metadata->'extra_provider_ids' ? $3 OR (created_at > now() - "
                     "interval '10 minutes' AND status IN ('queued', 'processing', 'sent') "
                     "AND $4 <> '' AND strpos(content, $4) > 0)) LIMIT 1",
                     4, p, &r, NULL);
    *own = rc == 0 && PQntuples(r) == 1;
    PQclear(r);
    return rc;
}

int store_message(PGconn *c, const struct channel_ctx *ctx, const struct domain_message *m,
                  struct after_commit *after)
{
    char contact[SB_UUID_STRLEN], id[SB_UUID_STRLEN];
    struct conv cv = {0};
    bool inserted = false, own = false;
    if (!m->contact_id)
        return SB_EPARSE; /* no customer to attach it to */
    int rc = m->echo ? is_own_echo(c, ctx, m, &own) : 0;
    if (rc != 0 || own)
        return rc;
    rc = upsert_contact(c, ctx, m, contact);
    if (rc == 0)
        rc = open_conversation(c, ctx, contact, &cv);
    if (rc == 0)
        rc = insert_message(c, ctx, m, cv.id, id, &inserted);
    if (rc != 0 || !inserted)
        return rc;
    if (cv.created) {
        struct domain_conversation_summary s = {.id = cv.id, .channel_id = ctx->channel_id,
                                                .channel_type = ctx->channel_type,
                                                .contact_id = contact,
                                                .assistant_id = ctx->assistant_id[0] ? ctx->assistant_id : NULL,
                                                .owner = cv.owner, .status = DOMAIN_CONVERSATION_OPEN,
                                                .created_ms = sb_now_ms(), .updated_ms = sb_now_ms()};
        after_event(after, ctx, DOMAIN_EVENT_CONVERSATION_CREATED, domain_conversation_summary_json(&s));
    }
    struct domain_message_summary sum = {
        .id = id, .conversation_id = cv.id, .channel_id = ctx->channel_id,
        .channel_type = ctx->channel_type, .provider_message_id = m->provider_message_id,
        .type = m->type, .direction = m->direction, .sender = m->sender,
        .status = m->direction == DOMAIN_INBOUND ? DOMAIN_STATUS_RECEIVED : DOMAIN_STATUS_SENT,
        .content = m->text, .created_ms = sb_now_ms()};
    after_event(after, ctx, DOMAIN_EVENT_MESSAGE_RECEIVED, domain_message_summary_json(&sum));
    if (m->direction == DOMAIN_INBOUND)
        return after_inbound(c, ctx, m, &cv, after);
    return after_echo(c, ctx, m, &cv, after);
}

int store_status(PGconn *c, const struct channel_ctx *ctx, const struct domain_status_update *u,
                 struct after_commit *after)
{
    const char *p[] = {ctx->tenant_id, ctx->channel_id, u->provider_message_id};
    PGresult *r = NULL;
    int rc = SB_ENOTFOUND;
    for (int look = 0; look < 2 && rc == SB_ENOTFOUND; look++) {
        rc = one_row(c,
                     "SELECT id, conversation_id, status FROM messages WHERE tenant_id = $1 AND "
                     "channel_id = $2 AND provider_message_id = $3 AND direction = 'outbound' "
                     "FOR UPDATE",
                     3, p, &r);
        if (rc != SB_ENOTFOUND || !ctx->event_recent || look > 0)
            break;
        /* The report can overtake the send's own result (Meta answers the
         * send and posts "sent" at about the same time). While one of our
         * messages on this channel is being sent right now, wait for it.
         * Otherwise look once more: a send that committed between the two
         * statements is visible now. */
        const char *q[] = {ctx->tenant_id, ctx->channel_id};
        PGresult *busy = NULL;
        rc = one_row(c,
                     "SELECT 1 FROM messages WHERE status = 'processing' AND tenant_id = $1 AND "
                     "channel_id = $2 AND direction = 'outbound' AND "
                     "updated_at > now() - interval '" STORE_SENDING_RECENT "' LIMIT 1",
                     2, q, &busy);
        PQclear(busy);
        if (rc == 0) {
            after->status_early = true;
            return 0;
        }
        if (rc != SB_ENOTFOUND)
            return rc;
    }
    if (rc == SB_ENOTFOUND)
        return 0; /* a message we did not send (or sent from elsewhere): nothing to update */
    if (rc != 0)
        return rc;
    enum domain_status current;
    enum domain_transition t = DOMAIN_TRANSITION_INVALID;
    if (domain_status_parse(PQgetvalue(r, 0, 2), &current) != 0 ||
        domain_status_transition(current, u->status, &t) != 0 || t != DOMAIN_TRANSITION_APPLY) {
        PQclear(r);
        return 0; /* duplicate, late or impossible: keep what we have */
    }
    char code[24] = "";
    if (u->has_error)
        snprintf(code, sizeof code, "%ld", u->error_code);
    const char *name = domain_status_name(u->status);
    const char *q[] = {ctx->tenant_id, PQgetvalue(r, 0, 0), name, code[0] ? code : NULL,
                       u->has_error ? u->error_details[0] ? u->error_details : u->error_title : NULL};
    rc = db_exec(c,
                 "UPDATE messages SET status = $3, "
                 "sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END, "
                 "delivered_at = CASE WHEN $3 IN ('delivered', 'read') THEN coalesce(delivered_at, now()) "
                 "ELSE delivered_at END, "
                 "read_at = CASE WHEN $3 = 'read' THEN now() ELSE read_at END, "
                 "failed_at = CASE WHEN $3 = 'failed' THEN now() ELSE failed_at END, "
                 "error_code = coalesce($4, error_code), error_reason = coalesce($5, error_reason) "
                 "WHERE tenant_id = $1 AND id = $2",
                 5, q, NULL, NULL);
    enum domain_event ev;
    if (rc == 0 && domain_status_event(u->status, &ev) == 0) {
        struct domain_status_change ch = {.message_id = PQgetvalue(r, 0, 0),
                                          .conversation_id = PQgetvalue(r, 0, 1),
                                          .provider_message_id = u->provider_message_id,
                                          .status = u->status, .at_ms = u->timestamp_ms,
                                          .error_code = u->has_error ? u->error_code : DOMAIN_NO_CODE,
                                          .error_title = u->has_error ? u->error_title : NULL,
                                          .error_details = u->has_error ? u->error_details : NULL};
        after_event(after, ctx, ev, domain_status_change_json(&ch));
    }
    PQclear(r);
    return rc;
}

int store_event_processed(PGconn *c, const struct channel_ctx *ctx)
{
    const char *p[] = {ctx->tenant_id, ctx->event_id};
    return db_exec(c,
                   "UPDATE webhook_events SET processed_at = now(), "
                   "delivery_attempts = delivery_attempts + 1, last_attempt_at = now() "
                   "WHERE tenant_id = $1 AND id = $2",
                   2, p, NULL, NULL);
}
