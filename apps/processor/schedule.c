/* schedule.c - due work: reply deadlines, delayed command retries and
 * auto-resume jobs, all taken atomically from Redis sorted sets; plus a
 * periodic sweep of PostgreSQL that re-arms whatever Redis lost (deadlines
 * past due, handoffs due to resume, outbound messages stuck in queued) and
 * closes conversations idle past their assistant's idle_close_seconds. */
#include "processor.h"
#include "spend.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SCHEDULE_TICK_MS 50
#define SCHEDULE_TAKE 100
#define SWEEP_INTERVAL_MS 5000
#define STALLED_AFTER "3 minutes" /* as send.c: younger "processing" is in flight */

struct schedule {
    struct processor *p;
    atomic_bool stop;
    pthread_t thread;
};

/* "<tenant>:<conversation>" → the two ids; false when malformed. */
static bool split_member(const char *m, char tenant[SB_UUID_STRLEN], char conv[SB_UUID_STRLEN])
{
    const char *colon = strchr(m, ':');
    if (!colon || colon - m != 36 || strlen(colon + 1) != 36)
        return false;
    memcpy(tenant, m, 36);
    tenant[36] = '\0';
    memcpy(conv, colon + 1, 37);
    return sb_uuid_valid(tenant, 36) && sb_uuid_valid(conv, 36);
}

static void due_buffers(struct processor *p)
{
    char **m = NULL, t[SB_UUID_STRLEN], c[SB_UUID_STRLEN];
    size_t n = 0;
    if (bus_delay_take_due(p->svc->bus, PROC_KEY_BUFFER, sb_now_ms(), SCHEDULE_TAKE, &m, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (split_member(m[i], t, c))
            buffer_flush(p, t, c);
    bus_delay_free(m, n);
}

static void due_retries(struct processor *p)
{
    char **m = NULL;
    size_t n = 0;
    if (bus_delay_take_due(p->svc->bus, PROC_KEY_RETRY, sb_now_ms(), SCHEDULE_TAKE, &m, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_loads(m[i], 0, NULL);
        const char *stream = json_string_value(json_object_get(j, "stream"));
        int rc = -EINVAL;
        if (stream && (strcmp(stream, PROC_STREAM_SEND) == 0 || strcmp(stream, PROC_STREAM_GENERATE) == 0))
            rc = command_enqueue(p, stream, json_string_value(json_object_get(j, "tenant_id")),
                                 json_string_value(json_object_get(j, "conversation_id")),
                                 json_string_value(json_object_get(j, "message_id")),
                                 json_string_value(json_object_get(j, "correlation_id")),
                                 (unsigned)json_integer_value(json_object_get(j, "attempt")));
        if (rc != 0 && rc != -EINVAL) /* Redis went away between take and add: keep it */
            (void)!bus_delay_add(p->svc->bus, PROC_KEY_RETRY, m[i], strlen(m[i]), sb_now_ms() + 1000);
        json_decref(j);
    }
    bus_delay_free(m, n);
}

struct resume {
    const char *tenant, *conversation;
    bool resumed, answer_now;
};

static int resume_tx(PGconn *c, void *arg)
{
    struct resume *r = arg;
    const char *p[] = {r->tenant, r->conversation};
    PGresult *res = NULL;
    /* Customer messages the human left unanswered get the bot's reply now. */
    int rc = db_exec(c,
                     "UPDATE conversations SET owner = 'bot', bot_resume_at = NULL, "
                     PROC_SQL_ANSWER_UNANSWERED
                     "WHERE tenant_id = $1 AND id = $2 AND owner = 'human' "
                     "AND bot_resume_at IS NOT NULL AND bot_resume_at <= now() "
                     "RETURNING buffer_deadline_at IS NOT NULL",
                     2, p, &res, NULL);
    r->resumed = rc == 0 && PQntuples(res) == 1;
    r->answer_now = r->resumed && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return rc;
}

/* The human has been silent long enough: the bot takes the conversation back. */
static void resume_due(struct processor *p, const char *tenant, const char *conversation)
{
    struct resume r = {tenant, conversation, false, false};
    if (db_tenant_tx(p->svc->db, tenant, resume_tx, &r) != 0 || !r.resumed)
        return;
    if (r.answer_now)
        (void)!buffer_arm(p, tenant, conversation, sb_now_ms());
    struct domain_conversation_summary s = {.id = conversation, .owner = DOMAIN_OWNER_BOT,
                                            .status = DOMAIN_CONVERSATION_OPEN,
                                            .updated_ms = sb_now_ms()};
    events_emit(p->events, domain_event_envelope(DOMAIN_EVENT_CONVERSATION_UPDATED, tenant,
                                                  sb_now_ms(), NULL, NULL,
                                                  domain_conversation_summary_json(&s)));
    struct sb_log_ctx lctx = {tenant, NULL};
    sb_log_info(p->svc->log, &lctx, "conversation %s handed back to the bot (auto-resume)",
                conversation);
}

static void due_jobs(struct processor *p)
{
    char **m = NULL, t[SB_UUID_STRLEN], c[SB_UUID_STRLEN];
    size_t n = 0;
    if (bus_delay_take_due(p->svc->bus, PROC_KEY_JOBS, sb_now_ms(), SCHEDULE_TAKE, &m, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(m[i], "resume:", 7) == 0 && split_member(m[i] + 7, t, c))
            resume_due(p, t, c);
        else if (strncmp(m[i], "job:", 4) == 0 && split_member(m[i] + 4, t, c))
            followup_run(p, t, c);
    }
    bus_delay_free(m, n);
}

struct idle {
    const char *tenant, *conversation;
    bool closed;
};

static int idle_tx(PGconn *c, void *arg)
{
    struct idle *k = arg;
    const char *p[] = {k->tenant, k->conversation};
    PGresult *r = NULL;
    int rc = db_exec(c,
                     "UPDATE conversations SET status = 'closed', closed_at = now(), "
                     "closed_reason = 'idle', bot_resume_at = NULL, buffer_started_at = NULL, "
                     "buffer_deadline_at = NULL WHERE tenant_id = $1 AND id = $2 "
                     "AND status = 'open' RETURNING id",
                     2, p, &r, NULL);
    k->closed = rc == 0 && PQntuples(r) == 1;
    PQclear(r);
    return rc;
}

/* Closes a conversation idle past its assistant's idle_close_seconds. */
static void close_idle(struct processor *p, const char *tenant, const char *conversation)
{
    struct idle k = {tenant, conversation, false};
    if (db_tenant_tx(p->svc->db, tenant, idle_tx, &k) != 0 || !k.closed)
        return;
    struct domain_conversation_summary s = {.id = conversation, .owner = DOMAIN_OWNER_BOT,
                                            .status = DOMAIN_CONVERSATION_CLOSED,
                                            .closed_reason = "idle", .updated_ms = sb_now_ms()};
    events_emit(p->events, domain_event_envelope(DOMAIN_EVENT_CONVERSATION_COMPLETED, tenant,
                                                  sb_now_ms(), NULL, NULL,
                                                  domain_conversation_summary_json(&s)));
}

/* PostgreSQL knows what is due even if Redis forgot: arm it again. */
static void sweep(struct processor *p)
{
    PGconn *c = NULL;
    if (db_acquire(p->svc->db, 2000, &c) != 0)
        return;
    PGresult *r = NULL;
    if (db_exec(c, "SELECT tenant_id, id, reason FROM work_due_conversations(200)", 0, NULL, &r,
                NULL) == 0) {
        for (int i = 0; i < PQntuples(r); i++) {
            const char *t = PQgetvalue(r, i, 0), *id = PQgetvalue(r, i, 1);
            if (strcmp(PQgetvalue(r, i, 2), "buffer") == 0)
                (void)!buffer_arm(p, t, id, sb_now_ms());
            else
                resume_due(p, t, id);
        }
    }
    PQclear(r);
    r = NULL;
    const char *params[] = {STALLED_AFTER};
    if (db_exec(c,
                "SELECT tenant_id, id, conversation_id FROM "
                "work_stalled_outbound_messages($1::interval, 100)",
                1, params, &r, NULL) == 0) {
        for (int i = 0; i < PQntuples(r); i++)
            (void)!command_enqueue(p, PROC_STREAM_SEND, PQgetvalue(r, i, 0), PQgetvalue(r, i, 2),
                                   PQgetvalue(r, i, 1), NULL, 1);
    }
    PQclear(r);
    r = NULL;
    if (db_exec(c, "SELECT tenant_id, id, kind FROM work_due_jobs(100)", 0, NULL, &r, NULL) == 0)
        for (int i = 0; i < PQntuples(r); i++)
            if (strcmp(PQgetvalue(r, i, 2), "followup") == 0)
                followup_run(p, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    PQclear(r);
    r = NULL;
    if (db_exec(c, "SELECT tenant_id, id FROM work_idle_conversations(100)", 0, NULL, &r, NULL) == 0)
        for (int i = 0; i < PQntuples(r); i++)
            close_idle(p, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    PQclear(r);
    db_release(p->svc->db, c);
}

static void *schedule_main(void *arg)
{
    struct schedule *s = arg;
    int64_t next_sweep = sb_mono_ms() + SWEEP_INTERVAL_MS;
    int64_t next_spend = sb_mono_ms() + SPEND_REFRESH_MS;
    while (!atomic_load(&s->stop)) {
        due_buffers(s->p);
        due_retries(s->p);
        due_jobs(s->p);
        if (sb_mono_ms() >= next_sweep) {
            sweep(s->p);
            next_sweep = sb_mono_ms() + SWEEP_INTERVAL_MS;
        }
        if (sb_mono_ms() >= next_spend) {
            spend_flush(s->p->spend, s->p->svc->db);
            next_spend = sb_mono_ms() + SPEND_REFRESH_MS;
        }
        struct timespec ts = {0, SCHEDULE_TICK_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

struct schedule *schedule_start(struct processor *p)
{
    struct schedule *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->p = p;
    atomic_init(&s->stop, false);
    if (pthread_create(&s->thread, NULL, schedule_main, s) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

void schedule_stop(struct schedule *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    free(s);
}
