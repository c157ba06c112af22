/* handoff.c - explicit conversation commands from the dashboard and the
 * public API, on stream sabia:cmd:conversation:
 *   take_over  a person owns the conversation; the bot stays silent (and
 *              resumes after the assistant's handoff_auto_resume_seconds)
 *   hand_back  the bot owns it again; customer messages left unanswered get
 *              a reply (their buffer is armed now)
 *   close      the conversation is closed by an agent
 * Fields: tenant_id, conversation_id, action, user_id (optional),
 * correlation_id. The ownership rules are libs/domain's. */
#include "processor.h"

#include <stdlib.h>
#include <string.h>

struct conv_cmd {
    struct processor *p;
    const char *tenant, *conversation, *action, *user, *correlation;
    enum domain_owner owner_after;
    bool changed, closed, answer_now;
    int64_t resume_at;
};

static int take_over(PGconn *c, struct conv_cmd *k, const PGresult *r)
{
    long resume_s = 0;
    if (db_value_long(r, 0, 2, &resume_s) != 0)
        resume_s = 0;
    k->resume_at = domain_resume_deadline(sb_now_ms(), resume_s);
    char at[32] = "";
    if (k->resume_at > 0)
        snprintf(at, sizeof at, "%lld", (long long)k->resume_at);
    const char *p[] = {k->tenant, k->conversation, k->user && *k->user ? k->user : NULL,
                       at[0] ? at : NULL};
    return db_exec(c,
                   "UPDATE conversations SET owner = 'human', handoff_at = now(), "
                   "handoff_by_user_id = $3::uuid, handoff_reason = 'taken over', "
                   "bot_resume_at = to_timestamp($4::bigint / 1000.0), "
                   "buffer_started_at = NULL, buffer_deadline_at = NULL "
                   "WHERE tenant_id = $1 AND id = $2",
                   4, p, NULL, NULL);
}

static int hand_back(PGconn *c, struct conv_cmd *k)
{
    const char *p[] = {k->tenant, k->conversation};
    PGresult *r = NULL;
    /* Unanswered customer messages: anything inbound after the last outbound. */
    int rc = db_exec(c,
                     "UPDATE conversations SET owner = 'bot', bot_resume_at = NULL, "
                     PROC_SQL_ANSWER_UNANSWERED
                     "WHERE tenant_id = $1 AND id = $2 RETURNING buffer_deadline_at IS NOT NULL",
                     2, p, &r, NULL);
    k->answer_now = rc == 0 && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return rc;
}

static int close_conv(PGconn *c, struct conv_cmd *k)
{
    const char *p[] = {k->tenant, k->conversation};
    k->closed = true;
    return db_exec(c,
                   "UPDATE conversations SET status = 'closed', closed_at = now(), "
                   "closed_reason = 'agent', bot_resume_at = NULL, "
                   "buffer_started_at = NULL, buffer_deadline_at = NULL "
                   "WHERE tenant_id = $1 AND id = $2 AND status = 'open'",
                   2, p, NULL, NULL);
}

static int conv_tx(PGconn *c, void *arg)
{
    struct conv_cmd *k = arg;
    const char *p[] = {k->tenant, k->conversation};
    PGresult *r = NULL;
    int rc = db_exec(c,
                     "SELECT c.owner, c.status, coalesce(a.handoff_auto_resume_seconds, 0) "
                     "FROM conversations c LEFT JOIN assistants a "
                     "ON a.tenant_id = c.tenant_id AND a.id = c.assistant_id "
                     "WHERE c.tenant_id = $1 AND c.id = $2 FOR UPDATE OF c",
                     2, p, &r, NULL);
    if (rc != 0 || PQntuples(r) == 0 || strcmp(PQgetvalue(r, 0, 1), "open") != 0) {
        PQclear(r);
        return rc; /* unknown or closed: nothing to do */
    }
    enum domain_owner now;
    enum domain_owner_event ev = strcmp(k->action, "take_over") == 0 ? DOMAIN_OWNER_TAKE_OVER
                                                                      : DOMAIN_OWNER_HAND_BACK;
    struct domain_owner_result res = {0};
    if (domain_owner_parse(PQgetvalue(r, 0, 0), &now) != 0)
        now = DOMAIN_OWNER_BOT;
    if (domain_owner_apply(now, ev, &res) == 0)
        k->owner_after = res.owner;
    k->changed = res.changed;
    if (strcmp(k->action, "close") == 0)
        k->owner_after = now; /* closing does not change hands */
    if (strcmp(k->action, "close") == 0)
        rc = close_conv(c, k);
    else if (ev == DOMAIN_OWNER_TAKE_OVER)
        rc = take_over(c, k, r);
    else if (res.changed)
        rc = hand_back(c, k);
    PQclear(r);
    return rc;
}

static void announce(struct conv_cmd *k)
{
    struct domain_conversation_summary s = {
        .id = k->conversation, .owner = k->owner_after,
        .status = k->closed ? DOMAIN_CONVERSATION_CLOSED : DOMAIN_CONVERSATION_OPEN,
        .closed_reason = k->closed ? "agent" : NULL, .updated_ms = sb_now_ms()};
    events_emit(k->p->events,
                domain_event_envelope(k->closed ? DOMAIN_EVENT_CONVERSATION_COMPLETED
                                                : DOMAIN_EVENT_CONVERSATION_UPDATED,
                                      k->tenant, sb_now_ms(), k->correlation, NULL,
                                      domain_conversation_summary_json(&s)));
}

static enum bus_verdict on_command(const struct bus_entry *e, unsigned deliveries,
                                   struct sb_buf *reason, void *arg)
{
    struct processor *p = arg;
    (void)deliveries;
    struct conv_cmd k = {.p = p, .tenant = entry_field(e, "tenant_id"),
                         .conversation = entry_field(e, "conversation_id"),
                         .action = entry_field(e, "action"), .user = entry_field(e, "user_id"),
                         .correlation = entry_field(e, "correlation_id")};
    bool known = strcmp(k.action, "take_over") == 0 || strcmp(k.action, "hand_back") == 0 ||
                 strcmp(k.action, "close") == 0;
    if (!known || !sb_uuid_valid(k.tenant, strlen(k.tenant)) ||
        !sb_uuid_valid(k.conversation, strlen(k.conversation)) ||
        (*k.user && !sb_uuid_valid(k.user, strlen(k.user)))) {
        (void)!sb_buf_appendf(reason, "bad conversation command (action '%.32s')", k.action);
        return BUS_DEAD;
    }
    if (!*k.correlation)
        k.correlation = NULL;
    int rc = db_tenant_tx(p->svc->db, k.tenant, conv_tx, &k);
    if (rc != 0) {
        (void)!sb_buf_append_str(reason, sb_strerror(rc));
        return BUS_RETRY;
    }
    if (k.changed || k.closed)
        announce(&k);
    if (k.resume_at > 0) {
        char member[96];
        int n = snprintf(member, sizeof member, "resume:%s:%s", k.tenant, k.conversation);
        (void)!bus_delay_add(p->svc->bus, PROC_KEY_JOBS, member, (size_t)n, k.resume_at);
    }
    if (k.answer_now && buffer_arm(p, k.tenant, k.conversation, sb_now_ms()) != 0)
        sb_log_warn(p->svc->log, NULL, "hand-back of %s: reply not armed; the sweep will", k.conversation);
    return BUS_ACK;
}

int handoff_start(struct processor *p)
{
    struct bus_worker_config wc = {.stream = PROC_STREAM_CONVERSATION, .group = PROC_GROUP,
                                   .consumer = p->consumer, .threads = 1, .fn = on_command,
                                   .arg = p};
    p->handoff = bus_worker_start(p->svc->bus, &wc);
    return p->handoff ? 0 : -ENOMEM;
}

void handoff_stop(struct processor *p)
{
    bus_worker_stop(p->handoff);
    p->handoff = NULL;
}
