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

struct send_job *send_job_new(struct processor *p)
{
    struct send_job *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->p = p;
    sb_buf_init(&s->text, DOMAIN_TEXT_MAX);
    return s;
}

void send_job_free(struct send_job *s)
{
    if (!s)
        return;
    if (s->token) {
        OPENSSL_cleanse(s->token, strlen(s->token));
        free(s->token);
    }
    sb_buf_cleanup(&s->text);
    free(s);
}

int send_open_token(struct send_job *s, const char *bytea_text)
{
    char aad[96];
    snprintf(aad, sizeof aad, "channel:%s:access_token", s->channel);
    return proc_open_secret(s->p->master, bytea_text, aad, &s->token);
}

static void emit(struct send_job *s, struct events_batch *events, enum domain_status st,
                 const char *code, const char *reason)
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
    events_batch_add(events, domain_event_envelope(ev, s->tenant, sb_now_ms(),
                                                   s->correlation[0] ? s->correlation : NULL, NULL,
                                                   domain_status_change_json(&ch)));
}

int send_settle_failed(PGconn *c, struct send_job *s, const char *code, const char *reason)
{
    const char *p[] = {s->tenant, s->message, code, reason};
    s->skip = reason;
    s->failed_now = true;
    snprintf(s->code, sizeof s->code, "%s", code);
    snprintf(s->reason, sizeof s->reason, "%s", reason);
    return db_exec(c,
                   "UPDATE messages SET status = 'failed', failed_at = now(), error_code = $3, "
                   "error_reason = $4, next_attempt_at = NULL WHERE tenant_id = $1 AND id = $2",
                   4, p, NULL, NULL);
}

void send_failed_event(struct send_job *s, struct events_batch *events)
{
    emit(s, events, DOMAIN_STATUS_FAILED, s->code, s->reason);
}

void send_decide(struct send_job *s)
{
    const struct channels_send_result *r = &s->result;
    const struct domain_error_class *cls = &r->error_class;
    s->status = "sent";
    s->code[0] = s->reason[0] = '\0';
    s->retry_ms = 0;
    s->exhausted = false;
    if (r->ok)
        return;
    if (r->code != DOMAIN_NO_CODE)
        snprintf(s->code, sizeof s->code, "%ld", r->code);
    else if (r->http_status)
        snprintf(s->code, sizeof s->code, "http_%ld", r->http_status);
    snprintf(s->reason, sizeof s->reason, "%s%s%s", cls->reason ? cls->reason : "send failed",
             r->error_message[0] ? ": " : "", r->error_message);
    bool again = domain_retry_allowed(cls, s->attempts, (unsigned)s->p->send_max_attempts);
    s->exhausted = !again && cls->retry != DOMAIN_FAIL;
    s->status = again ? "queued" : "failed";
    if (again)
        s->retry_ms = domain_retry_delay_ms(cls, s->attempts, SEND_BACKOFF_BASE_MS,
                                            SEND_BACKOFF_CAP_MS, (uint32_t)rand());
}

/* Every outcome of a batch in one statement. A message moves only from the
 * state its claim left it in (`processing`, or still `queued` when it was
 * published inside the claim, which then also counts the attempt). */
static const char RECORD_SQL[] =
    "UPDATE messages m SET status = u.status, "
    "provider_message_id = coalesce(u.pid, m.provider_message_id), "
    "attempts = m.attempts + u.claims, "
    "sent_at = CASE WHEN u.status = 'sent' THEN now() ELSE m.sent_at END, "
    "failed_at = CASE WHEN u.status = 'failed' THEN now() ELSE m.failed_at END, "
    "error_code = u.code, error_reason = u.reason, next_attempt_at = to_timestamp(u.next / 1000.0), "
    "metadata = CASE WHEN u.extra = '[]' THEN m.metadata "
    "ELSE m.metadata || jsonb_build_object('extra_provider_ids', u.extra::jsonb) END "
    "FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], "
    "$8::text[], $9::text[], $10::int[]) AS u(id, status, pid, code, reason, next, extra, expect, claims) "
    "WHERE m.tenant_id = $1::uuid AND m.id = u.id AND m.status = u.expect "
    "RETURNING m.id, m.sender_type = 'bot' AND NOT m.metadata ? 'followup_job_id'";

enum { COL_ID, COL_STATUS, COL_PID, COL_CODE, COL_REASON, COL_NEXT, COL_EXTRA, COL_EXPECT,
       COL_CLAIMS, NCOLS };

static int add_outcome(struct db_array *a, struct send_job *s)
{
    struct sb_buf extra;
    sb_buf_init(&extra, SEND_EXTRA_IDS * (2 * DOMAIN_ID_MAX + 8) + 8);
    int rc = sb_buf_append_str(&extra, "[");
    for (int i = 0; rc == 0 && i < s->nextra; i++) {
        rc = i ? sb_buf_append_str(&extra, ",") : 0;
        if (rc == 0)
            rc = sb_buf_append_json_str(&extra, s->extra_ids[i], strlen(s->extra_ids[i]));
    }
    if (rc == 0)
        rc = sb_buf_append_str(&extra, "]");
    const char *v[NCOLS] = {s->message, s->status, s->provider_id[0] ? s->provider_id : NULL,
                            s->code[0] ? s->code : NULL, s->reason[0] ? s->reason : NULL, NULL,
                            extra.data, s->inline_web ? s->claimed_from : "processing",
                            s->inline_web ? "1" : "0"};
    char next[32];
    if (s->retry_ms > 0) {
        snprintf(next, sizeof next, "%lld", (long long)(sb_now_ms() + s->retry_ms));
        v[COL_NEXT] = next;
    }
    for (int k = 0; rc == 0 && k < NCOLS; k++)
        rc = db_array_add(&a[k], v[k]);
    sb_buf_cleanup(&extra);
    return rc;
}

/* Follow-ups of the bot replies just sent: the latest reply of each
 * conversation anchors its conversation's follow-up. */
static int schedule_followups(PGconn *c, struct send_job **jobs, size_t n, const bool *bot_sent)
{
    const char *conv[SEND_BATCH_MAX], *msg[SEND_BATCH_MAX];
    struct followup_armed *out[SEND_BATCH_MAX];
    size_t m = 0;
    for (size_t i = n; i-- > 0;) {
        if (!bot_sent[i])
            continue;
        bool seen = false;
        for (size_t k = 0; k < m && !seen; k++)
            seen = strcmp(conv[k], jobs[i]->conversation) == 0;
        if (!seen) {
            conv[m] = jobs[i]->conversation;
            msg[m] = jobs[i]->message;
            out[m++] = &jobs[i]->followup;
        }
    }
    return m ? followup_schedule(c, jobs[0]->tenant, m, conv, msg, out) : 0;
}

int send_record(PGconn *c, struct send_job **jobs, size_t n)
{
    struct db_array a[NCOLS];
    for (int k = 0; k < NCOLS; k++)
        db_array_init(&a[k], SEND_BATCH_MAX * 6 * 1024);
    int rc = 0, rows = 0;
    bool bot_sent[SEND_BATCH_MAX] = {false};
    for (size_t i = 0; rc == 0 && i < n; i++) {
        jobs[i]->recorded = false;
        jobs[i]->followup.job_id[0] = '\0';
        if (jobs[i]->status) {
            rc = add_outcome(a, jobs[i]);
            rows++;
        }
    }
    PGresult *r = NULL;
    if (rc == 0 && rows > 0)
        rc = db_exec_arrays(c, RECORD_SQL, jobs[0]->tenant, a, NCOLS, &r, NULL);
    for (int row = 0; rc == 0 && r && row < PQntuples(r); row++)
        for (size_t i = 0; i < n; i++)
            if (jobs[i]->status && strcmp(jobs[i]->message, PQgetvalue(r, row, 0)) == 0) {
                jobs[i]->recorded = true;
                bot_sent[i] = strcmp(PQgetvalue(r, row, 1), "t") == 0 &&
                              strcmp(jobs[i]->status, "sent") == 0;
            }
    PQclear(r);
    for (int k = 0; k < NCOLS; k++)
        db_array_cleanup(&a[k]);
    return rc == 0 ? schedule_followups(c, jobs, n, bot_sent) : rc;
}

/* Copies a message that ran out of attempts to the dead-letter stream. */
static void dead_letter(struct send_job *s)
{
    const char *f[] = {"tenant_id", s->tenant, "message_id", s->message, "conversation_id",
                       s->conversation, "reason", s->reason, "code", s->code};
    if (bus_stream_add(s->p->svc->bus, PROC_STREAM_SEND ":dead", SEND_DEAD_MAXLEN, 5, f, NULL) != 0)
        sb_log_warn(s->p->svc->log, NULL, "message %s: dead letter not written", s->message);
}

void send_settled(struct send_job *s, struct events_batch *events)
{
    if (!s->recorded)
        return; /* settled by someone else meanwhile */
    if (s->retry_ms > 0 &&
        command_retry_later(s->p, PROC_STREAM_SEND, s->tenant, s->conversation, s->message,
                            s->correlation, s->attempts + 1, s->retry_ms) != 0)
        sb_log_warn(s->p->svc->log, NULL, "message %s: retry not scheduled; the sweep will", s->message);
    if (s->exhausted)
        dead_letter(s);
    followup_armed(s->p, s->tenant, s->conversation, &s->followup, events);
    if (strcmp(s->status, "queued") != 0)
        emit(s, events, s->result.ok ? DOMAIN_STATUS_SENT : DOMAIN_STATUS_FAILED, s->code,
             s->reason);
    const char *labels[] = {s->type, s->status};
    metric_add(s->p->m_sends, labels, 1);
}
