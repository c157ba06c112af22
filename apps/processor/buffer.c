/* buffer.c - the reply buffer (seed 004 "MESSAGE BUFFERING").
 *
 * A customer often sends several short messages in a row; they are answered
 * once, when the conversation has been quiet for the assistant's window
 * (capped by a maximum wait). The deadline lives in PostgreSQL
 * (conversations.buffer_deadline_at) and is mirrored in the Redis sorted set
 * sabia:buffer so the scheduler finds it on time. Redis holds nothing that
 * cannot be rebuilt: the scheduler's sweep re-arms deadlines that PostgreSQL
 * says are due, so a wiped Redis or a restarted processor loses no reply, and
 * the member is taken atomically, so two processors never flush the same one.
 *
 * The flush locks the conversation, checks the deadline is really due (a
 * later message may have moved it), leases it (see flush_tx), and queues
 * GenerateAIResponse naming the newest customer message. The command is queued before the
 * commit: a failed commit can only duplicate it, and GenerateAIResponse is
 * idempotent (it answers a given message once). */
#include "processor.h"

#include <stdlib.h>
#include <string.h>

#define BUFFER_EARLY_MS 5 /* a deadline this close counts as due */
#define BUFFER_LEASE "3 minutes" /* longer than a model call with its retries */

int buffer_arm(struct processor *p, const char *tenant_id, const char *conversation_id,
               int64_t deadline_ms)
{
    char member[2 * SB_UUID_STRLEN + 2];
    int n = snprintf(member, sizeof member, "%s:%s", tenant_id, conversation_id);
    return bus_delay_add(p->svc->bus, PROC_KEY_BUFFER, member, (size_t)n, deadline_ms);
}

struct flush {
    struct processor *p;
    const char *tenant, *conversation;
    int64_t rearm_ms;  /* > 0: not due yet, arm again for then */
    bool queued;
    char correlation[160];
};

static int flush_tx(PGconn *c, void *arg)
{
    struct flush *f = arg;
    const char *params[] = {f->tenant, f->conversation};
    PGresult *r = NULL;
    int rc = db_exec(c,
                     "SELECT c.owner, c.status, coalesce((extract(epoch FROM c.buffer_deadline_at) "
                     "* 1000)::bigint, 0), coalesce(c.assistant_id::text, ''), "
                     "(SELECT m.id FROM messages m WHERE m.tenant_id = c.tenant_id AND "
                     "m.conversation_id = c.id AND m.direction = 'inbound' "
                     "ORDER BY m.created_at DESC, m.id DESC LIMIT 1), "
                     "(SELECT m.correlation_id FROM messages m WHERE m.tenant_id = c.tenant_id AND "
                     "m.conversation_id = c.id AND m.direction = 'inbound' "
                     "ORDER BY m.created_at DESC, m.id DESC LIMIT 1) "
                     "FROM conversations c WHERE c.tenant_id = $1 AND c.id = $2 FOR UPDATE",
                     2, params, &r, NULL);
    long deadline = 0;
    if (rc != 0 || PQntuples(r) == 0 || db_value_long(r, 0, 2, &deadline) != 0 || deadline == 0) {
        PQclear(r);
        return rc; /* gone, or already flushed */
    }
    if (deadline > sb_now_ms() + BUFFER_EARLY_MS) {
        f->rearm_ms = deadline; /* a newer message moved it */
        PQclear(r);
        return 0;
    }
    bool bot = strcmp(PQgetvalue(r, 0, 0), "bot") == 0 && strcmp(PQgetvalue(r, 0, 1), "open") == 0 &&
               PQgetvalue(r, 0, 3)[0] && !PQgetisnull(r, 0, 4);
    snprintf(f->correlation, sizeof f->correlation, "%s", PQgetvalue(r, 0, 5));
    /* Not cleared but leased: the deadline moves past the longest a reply
     * can take, and the reply (generate.c) clears it. If the command is lost
     * with Redis, the sweep finds the lease expired and flushes again. */
    const char *lease[] = {f->tenant, f->conversation, BUFFER_LEASE};
    rc = db_exec(c,
                 bot ? "UPDATE conversations SET buffer_deadline_at = now() + $3::interval "
                       "WHERE tenant_id = $1 AND id = $2"
                     : "UPDATE conversations SET buffer_started_at = NULL, buffer_deadline_at = NULL "
                       "WHERE tenant_id = $1 AND id = $2 AND $3::text IS NOT NULL",
                 3, lease, NULL, NULL);
    if (rc == 0 && bot) {
        rc = command_enqueue(f->p, PROC_STREAM_GENERATE, f->tenant, f->conversation,
                             PQgetvalue(r, 0, 4), f->correlation, 1);
        f->queued = rc == 0;
    }
    PQclear(r);
    return rc;
}

void buffer_flush(struct processor *p, const char *tenant_id, const char *conversation_id)
{
    struct flush f = {.p = p, .tenant = tenant_id, .conversation = conversation_id};
    int rc = db_tenant_tx(p->svc->db, tenant_id, flush_tx, &f);
    struct sb_log_ctx lctx = {tenant_id, f.correlation[0] ? f.correlation : NULL};
    if (rc != 0) {
        /* Still recorded in PostgreSQL: try again shortly. */
        sb_log_warn(p->svc->log, &lctx, "buffer flush of %s failed: %s", conversation_id,
                    sb_strerror(rc));
        if (buffer_arm(p, tenant_id, conversation_id, sb_now_ms() + 1000) != 0)
            sb_log_warn(p->svc->log, &lctx, "and could not be re-armed; the sweep will find it");
        return;
    }
    if (f.rearm_ms > 0 && buffer_arm(p, tenant_id, conversation_id, f.rearm_ms) != 0)
        sb_log_warn(p->svc->log, &lctx, "deadline of %s not re-armed; the sweep will find it",
                    conversation_id);
    if (f.queued)
        sb_log_debug(p->svc->log, &lctx, "conversation %s quiet: reply requested", conversation_id);
}
