/* followup.c - follow-ups: when an assistant has
 *   config.followup_after_seconds and config.followup_text,
 * a customer who goes quiet after a bot reply gets that text once, after
 * that long. The job is a row of scheduled_jobs (durable; one pending
 * follow-up per conversation, pushed later by every new bot reply) mirrored in
 * the Redis set sabia:jobs as "job:<tenant>:<job id>" for timely pickup; the
 * scheduler's sweep (work_due_jobs) finds any Redis lost. */
#include "processor.h"

#include <stdlib.h>
#include <string.h>

int followup_schedule(PGconn *c, const char *tenant, size_t n, const char *const *conversations,
                      const char *const *messages, struct followup_armed **out)
{
    struct db_array conv, msg;
    db_array_init(&conv, n * (SB_UUID_STRLEN + 3) + 2);
    db_array_init(&msg, n * (SB_UUID_STRLEN + 3) + 2);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        out[i]->job_id[0] = '\0';
        rc = db_array_add(&conv, conversations[i]);
        if (rc == 0)
            rc = db_array_add(&msg, messages[i]);
    }
    const char *p[] = {tenant, db_array_text(&conv), db_array_text(&msg)};
    PGresult *r = NULL;
    if (rc == 0)
        rc = p[1] && p[2] ? 0 : SB_ELIMIT;
    if (rc == 0)
        rc = db_exec(c,
                     "INSERT INTO scheduled_jobs (tenant_id, kind, conversation_id, dedup_key, "
                     "payload, run_at) SELECT cv.tenant_id, 'followup', cv.id, "
                     "'followup:' || cv.id::text, jsonb_build_object('after_message_id', u.msg::text), "
                     "now() + make_interval(secs => (a.config->>'followup_after_seconds')::int) "
                     "FROM unnest($2::uuid[], $3::uuid[]) AS u(conv, msg) "
                     "JOIN conversations cv ON cv.tenant_id = $1::uuid AND cv.id = u.conv "
                     "JOIN assistants a ON a.tenant_id = cv.tenant_id AND a.id = cv.assistant_id "
                     "WHERE a.config->>'followup_after_seconds' ~ '^[1-9][0-9]{0,6}$' "
                     "AND coalesce(a.config->>'followup_text', '') <> '' "
                     "ON CONFLICT (tenant_id, dedup_key) WHERE dedup_key IS NOT NULL "
                     "AND status IN ('pending', 'running') DO UPDATE SET run_at = EXCLUDED.run_at, "
                     "payload = EXCLUDED.payload "
                     "RETURNING id, (extract(epoch FROM run_at) * 1000)::bigint, conversation_id",
                     3, p, &r, NULL);
    for (int row = 0; rc == 0 && row < PQntuples(r); row++) {
        long due = 0;
        for (size_t i = 0; i < n; i++)
            if (strcmp(conversations[i], PQgetvalue(r, row, 2)) == 0 &&
                db_value_long(r, row, 1, &due) == 0) {
                snprintf(out[i]->job_id, sizeof out[i]->job_id, "%s", PQgetvalue(r, row, 0));
                out[i]->due_ms = due;
            }
    }
    PQclear(r);
    db_array_cleanup(&conv);
    db_array_cleanup(&msg);
    return rc;
}

void followup_armed(struct processor *p, const char *tenant, const char *conversation,
                    const struct followup_armed *a, struct events_batch *events)
{
    if (!a->job_id[0])
        return;
    char member[96];
    int n = snprintf(member, sizeof member, "job:%s:%s", tenant, a->job_id);
    if (bus_delay_add(p->svc->bus, PROC_KEY_JOBS, member, (size_t)n, a->due_ms) != 0)
        sb_log_warn(p->svc->log, NULL, "follow-up %s not armed in Redis; the sweep will", a->job_id);
    char at[SB_TIME_STRLEN];
    sb_time_format(a->due_ms, at);
    events_batch_add(events, domain_event_envelope(DOMAIN_EVENT_FOLLOWUP_SCHEDULED, tenant,
                                                   sb_now_ms(), NULL, NULL,
                                                   json_pack("{s:s, s:s, s:s}", "job_id", a->job_id,
                                                             "conversation_id", conversation,
                                                             "due_at", at)));
}

struct job_run {
    const char *tenant, *job;
    char conversation[SB_UUID_STRLEN], message[SB_UUID_STRLEN];
};

/* Sends the follow-up only if the conversation is still the bot's, open,
 * and the customer has not written since the reply it follows. */
static int run_tx(PGconn *c, void *arg)
{
    struct job_run *j = arg;
    const char *p[] = {j->tenant, j->job};
    PGresult *r = NULL;
    int rc = db_exec(c,
                     "SELECT s.conversation_id, cv.status = 'open' AND cv.owner = 'bot' AND NOT EXISTS ("
                     " SELECT 1 FROM messages i WHERE i.tenant_id = s.tenant_id AND "
                     " i.conversation_id = s.conversation_id AND i.direction = 'inbound' AND "
                     " i.created_at > (SELECT b.created_at FROM messages b WHERE b.tenant_id = "
                     " s.tenant_id AND b.id = (s.payload->>'after_message_id')::uuid)), "
                     "coalesce(a.config->>'followup_text', ''), cv.channel_id "
                     "FROM scheduled_jobs s JOIN conversations cv ON cv.tenant_id = s.tenant_id "
                     "AND cv.id = s.conversation_id LEFT JOIN assistants a ON a.tenant_id = "
                     "cv.tenant_id AND a.id = cv.assistant_id WHERE s.tenant_id = $1 AND s.id = $2 "
                     "AND s.kind = 'followup' AND s.status IN ('pending', 'running') AND s.run_at <= now() "
                     "FOR UPDATE OF s",
                     2, p, &r, NULL);
    if (rc != 0 || PQntuples(r) == 0) {
        PQclear(r);
        return rc; /* done or cancelled already */
    }
    bool send = strcmp(PQgetvalue(r, 0, 1), "t") == 0 && PQgetvalue(r, 0, 2)[0];
    snprintf(j->conversation, sizeof j->conversation, "%s", PQgetvalue(r, 0, 0));
    if (send) {
        const char *q[] = {j->tenant, j->conversation, PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 2), j->job};
        PGresult *ins = NULL;
        rc = db_exec(c,
                     "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, "
                     "sender_type, type, content, metadata, status) VALUES ($1, $2, $3, 'outbound', "
                     "'bot', 'text', $4, jsonb_build_object('followup_job_id', $5::text), 'queued') "
                     "RETURNING id",
                     5, q, &ins, NULL);
        if (rc == 0)
            snprintf(j->message, sizeof j->message, "%s", PQgetvalue(ins, 0, 0));
        PQclear(ins);
    }
    const char *d[] = {j->tenant, j->job, send ? "done" : "cancelled"};
    if (rc == 0)
        rc = db_exec(c,
                     "UPDATE scheduled_jobs SET status = $3, completed_at = now(), "
                     "attempts = attempts + 1 WHERE tenant_id = $1 AND id = $2",
                     3, d, NULL, NULL);
    PQclear(r);
    return rc;
}

void followup_run(struct processor *p, const char *tenant, const char *job)
{
    struct job_run j = {.tenant = tenant, .job = job};
    int rc = db_tenant_tx(p->svc->db, tenant, run_tx, &j);
    if (rc != 0) {
        sb_log_warn(p->svc->log, NULL, "follow-up %s failed: %s", job, sb_strerror(rc));
        return; /* still pending: the sweep retries */
    }
    if (j.message[0] &&
        command_enqueue(p, PROC_STREAM_SEND, tenant, j.conversation, j.message, NULL, 1) != 0)
        sb_log_warn(p->svc->log, NULL, "follow-up %s stored but not queued; the sweep will send it",
                    j.message);
}
