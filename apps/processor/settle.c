/* settle.c - records what became of a send: sent, queued again for a retry
 * after a backoff, or failed with the reason; and publishes the matching
 * message.sent / message.failed event. */
#include "send.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define SEND_BACKOFF_BASE_MS 2000
#define SEND_BACKOFF_CAP_MS 300000
#define SEND_DEAD_MAXLEN 100000L

void send_job_init(struct send_job *s, struct processor *p)
{
    memset(s, 0, sizeof *s);
    s->p = p;
    sb_buf_init(&s->text, DOMAIN_TEXT_MAX);
}

void send_job_cleanup(struct send_job *s)
{
    if (s->token) {
        OPENSSL_cleanse(s->token, strlen(s->token));
        free(s->token);
    }
    sb_buf_cleanup(&s->text);
    memset(s, 0, sizeof *s);
}

int send_open_token(struct send_job *s, const char *bytea_text)
{
    char aad[96];
    snprintf(aad, sizeof aad, "channel:%s:access_token", s->channel);
    return proc_open_secret(s->p->master, bytea_text, aad, &s->token);
}

static void emit(struct send_job *s, enum domain_status st, const char *code, const char *reason)
{
    enum domain_event ev;
    if (domain_status_event(st, &ev) != 0)
        return;
    long c = DOMAIN_NO_CODE;
    if (code && sb_parse_long(code, 0, LONG_MAX, &c) != 0)
        c = DOMAIN_NO_CODE;
    struct domain_status_change ch = {.message_id = s->message, .conversation_id = s->conversation,
                                      .provider_message_id = s->provider_id[0] ? s->provider_id : NULL,
                                      .status = st, .at_ms = sb_now_ms(), .error_code = c,
                                      .error_title = code, .error_details = reason};
    events_emit(s->p->events, domain_event_envelope(ev, s->tenant, sb_now_ms(),
                                                    s->correlation[0] ? s->correlation : NULL,
                                                    NULL, domain_status_change_json(&ch)));
}

int send_settle_failed(PGconn *c, struct send_job *s, const char *code, const char *reason)
{
    const char *p[] = {s->tenant, s->message, code, reason};
    s->skip = reason;
    int rc = db_exec(c,
                     "UPDATE messages SET status = 'failed', failed_at = now(), error_code = $3, "
                     "error_reason = $4, next_attempt_at = NULL WHERE tenant_id = $1 AND id = $2",
                     4, p, NULL, NULL);
    if (rc == 0)
        emit(s, DOMAIN_STATUS_FAILED, code, reason);
    return rc;
}

struct outcome {
    struct send_job *s;
    const char *status; /* sent | queued | failed */
    char code[32];
    char reason[2001];
    int64_t retry_ms;
    struct followup_armed followup;
};

static int settle_tx(PGconn *c, void *arg)
{
    struct outcome *o = arg;
    struct send_job *s = o->s;
    json_t *extra = json_array();
    for (int i = 0; extra && i < s->nextra; i++)
        json_array_append_new(extra, json_string(s->extra_ids[i]));
    char *extra_text = extra ? json_dumps(extra, JSON_COMPACT) : NULL;
    json_decref(extra);
    char next[32] = "";
    PGresult *r = NULL;
    if (o->retry_ms > 0)
        snprintf(next, sizeof next, "%lld", (long long)(sb_now_ms() + o->retry_ms));
    const char *p[] = {s->tenant, s->message, o->status,
                       s->provider_id[0] ? s->provider_id : NULL, o->code[0] ? o->code : NULL,
                       o->reason[0] ? o->reason : NULL, next[0] ? next : NULL,
                       extra_text ? extra_text : "[]"};
    int rc = db_exec(c,
                     "UPDATE messages SET status = $3, provider_message_id = coalesce($4, provider_message_id), "
                     "sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END, "
                     "failed_at = CASE WHEN $3 = 'failed' THEN now() ELSE failed_at END, "
                     "error_code = $5, error_reason = $6, "
                     "next_attempt_at = to_timestamp($7::bigint / 1000.0), "
                     "metadata = CASE WHEN $8 = '[]' THEN metadata "
                     "ELSE metadata || jsonb_build_object('extra_provider_ids', $8::jsonb) END "
                     "WHERE tenant_id = $1 AND id = $2 AND status = 'processing' "
                     "RETURNING sender_type = 'bot' AND NOT metadata ? 'followup_job_id'",
                     8, p, &r, NULL);
    free(extra_text);
    bool bot_reply = rc == 0 && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (rc == 0 && bot_reply && strcmp(o->status, "sent") == 0)
        rc = followup_schedule(c, s->tenant, s->conversation, s->message, &o->followup);
    return rc;
}

/* Copies a message that ran out of attempts to the dead-letter stream. */
static void dead_letter(struct send_job *s, const struct outcome *o)
{
    const char *f[] = {"tenant_id", s->tenant, "message_id", s->message, "conversation_id",
                       s->conversation, "reason", o->reason, "code", o->code};
    if (bus_stream_add(s->p->svc->bus, PROC_STREAM_SEND ":dead", SEND_DEAD_MAXLEN, 5, f, NULL) != 0)
        sb_log_warn(s->p->svc->log, NULL, "message %s: dead letter not written", s->message);
}

int send_settle(struct send_job *s)
{
    struct outcome o = {.s = s, .status = "sent"};
    const struct channels_send_result *r = &s->result;
    const struct domain_error_class *cls = &r->error_class;
    bool exhausted = false;
    if (!r->ok) {
        if (r->code != DOMAIN_NO_CODE)
            snprintf(o.code, sizeof o.code, "%ld", r->code);
        else if (r->http_status)
            snprintf(o.code, sizeof o.code, "http_%ld", r->http_status);
        snprintf(o.reason, sizeof o.reason, "%s%s%s", cls->reason ? cls->reason : "send failed",
                 r->error_message[0] ? ": " : "", r->error_message);
        bool again = domain_retry_allowed(cls, s->attempts, (unsigned)s->p->send_max_attempts);
        exhausted = !again && cls->retry != DOMAIN_FAIL;
        o.status = again ? "queued" : "failed";
        if (again)
            o.retry_ms = domain_retry_delay_ms(cls, s->attempts, SEND_BACKOFF_BASE_MS,
                                               SEND_BACKOFF_CAP_MS, (uint32_t)rand());
    }
    int rc = db_tenant_tx(s->p->svc->db, s->tenant, settle_tx, &o);
    if (rc != 0)
        return rc;
    if (o.retry_ms > 0 &&
        command_retry_later(s->p, PROC_STREAM_SEND, s->tenant, s->conversation, s->message,
                            s->correlation, s->attempts + 1, o.retry_ms) != 0)
        sb_log_warn(s->p->svc->log, NULL, "message %s: retry not scheduled; the sweep will", s->message);
    if (exhausted)
        dead_letter(s, &o);
    followup_armed(s->p, s->tenant, s->conversation, &o.followup);
    if (strcmp(o.status, "queued") != 0)
        emit(s, r->ok ? DOMAIN_STATUS_SENT : DOMAIN_STATUS_FAILED, o.code, o.reason);
    const char *labels[] = {s->type, o.status};
    metric_add(s->p->m_sends, labels, 1);
    return 0;
}
