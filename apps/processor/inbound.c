/* inbound.c - consumes the gateway's wake-ups (at least once) and stores
 * what each accepted event contains, in one tenant-scoped transaction that
 * also marks the event processed. A wake-up for an event already processed,
 * or a second wake-up racing the first (the row is locked), changes nothing.
 * Events and reply deadlines follow the commit; the wake-up is acknowledged
 * last. */
#include "processor.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

#define INBOUND_MAX_DELIVERIES 5

struct ingest {
    struct processor *p;
    struct channel_ctx ctx;
    char tenant[SB_UUID_STRLEN], event[SB_UUID_STRLEN];
    char workspace[SB_UUID_STRLEN], channel[SB_UUID_STRLEN], type[16], correlation[160];
    struct after_commit after;
    struct channels_parse_error perr;
    bool already_done, recent;
};

struct item_ctx {
    struct ingest *in;
    PGconn *conn;
};

static int store_item(void *arg, const struct channels_event *ev)
{
    struct item_ctx *ic = arg;
    if (ev->kind == CHANNELS_EVENT_MESSAGE)
        return store_message(ic->conn, &ic->in->ctx, ev->message, &ic->in->after);
    if (ev->kind == CHANNELS_EVENT_STATUS)
        return store_status(ic->conn, &ic->in->ctx, ev->status, &ic->in->after);
    return 0; /* notices: nothing to store */
}

/* Loads the event (locked) and its channel. */
static int load_event(PGconn *c, struct ingest *in, PGresult **payload)
{
    const char *p[] = {in->tenant, in->event};
    PGresult *r = NULL;
    int rc = db_exec(c,
                     "SELECT e.workspace_id, e.channel_id, ch.type, e.payload, "
                     "e.processed_at IS NOT NULL, coalesce(e.correlation_id, ''), "
                     "e.received_at > now() - interval '" STORE_EARLY_STATUS_WAIT "' "
                     "FROM webhook_events e JOIN channels ch "
                     "ON ch.tenant_id = e.tenant_id AND ch.id = e.channel_id "
                     "WHERE e.tenant_id = $1 AND e.id = $2 AND e.status = 'accepted' "
                     "AND e.duplicate_of IS NULL FOR UPDATE OF e",
                     2, p, &r, NULL);
    if (rc == 0 && PQntuples(r) == 0)
        rc = SB_ENOTFOUND;
    if (rc != 0) {
        PQclear(r);
        return rc;
    }
    snprintf(in->workspace, sizeof in->workspace, "%s", PQgetvalue(r, 0, 0));
    snprintf(in->channel, sizeof in->channel, "%s", PQgetvalue(r, 0, 1));
    snprintf(in->type, sizeof in->type, "%s", PQgetvalue(r, 0, 2));
    snprintf(in->correlation, sizeof in->correlation, "%s", PQgetvalue(r, 0, 5));
    in->already_done = strcmp(PQgetvalue(r, 0, 4), "t") == 0;
    in->recent = strcmp(PQgetvalue(r, 0, 6), "t") == 0;
    *payload = r;
    return 0;
}

static int ingest_tx(PGconn *c, void *arg)
{
    struct ingest *in = arg;
    PGresult *r = NULL;
    after_commit_cleanup(&in->after);
    int rc = load_event(c, in, &r);
    if (rc != 0 || in->already_done) {
        PQclear(r);
        return rc;
    }
    in->ctx = (struct channel_ctx){.tenant_id = in->tenant, .workspace_id = in->workspace,
                                   .channel_id = in->channel, .channel_type = in->type,
                                   .event_id = in->event,
                                   .correlation_id = in->correlation[0] ? in->correlation : NULL,
                                   .event_recent = in->recent};
    rc = store_load_assistant(c, &in->ctx);
    size_t len = 0;
    unsigned char *body = rc == 0 ? PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 3), &len)
                                  : NULL;
    enum channel_type type;
    if (rc == 0 && (!body || channels_type_parse(in->type, &type) != 0))
        rc = body ? SB_EPARSE : -ENOMEM;
    struct item_ctx ic = {in, c};
    if (rc == 0)
        rc = channels_parse(type, (const char *)body, len, store_item, &ic, &in->perr);
    if (rc == 0 && !in->after.status_early)
        rc = store_event_processed(c, &in->ctx);
    PQfreemem(body);
    PQclear(r);
    return rc;
}

static void after(struct processor *p, struct ingest *in)
{
    for (size_t i = 0; i < in->after.narms; i++) {
        const struct buffer_arm *a = &in->after.arms[i];
        if (buffer_arm(p, in->tenant, a->conversation_id, a->deadline_ms) != 0)
            sb_log_warn(p->svc->log, NULL, "reply deadline not armed in Redis; the sweep will");
    }
    struct events_batch events;
    events_batch_init(&events, p->events);
    for (size_t i = 0; i < in->after.nevents; i++) {
        events_batch_add(&events, in->after.events[i]);
        in->after.events[i] = NULL;
    }
    in->after.nevents = 0;
    events_batch_flush(&events);
}

struct dead_mark {
    const char *tenant, *event, *why;
};

static int mark_dead_tx(PGconn *c, void *arg)
{
    struct dead_mark *d = arg;
    char why[2001];
    domain_str_copy(why, sizeof why, d->why);
    const char *p[] = {d->tenant, d->event, why};
    return db_exec(c,
                   "UPDATE webhook_events SET dead_lettered_at = now(), dead_letter_reason = $3, "
                   "last_error = $3, last_attempt_at = now() WHERE tenant_id = $1 AND id = $2",
                   3, p, NULL, NULL);
}

/* Records on the event why it could not be processed (the relay then leaves it alone). */
static void mark_dead(struct processor *p, const char *tenant, const char *event, const char *why)
{
    struct dead_mark d = {tenant, event, why};
    int rc = db_tenant_tx(p->svc->db, tenant, mark_dead_tx, &d);
    if (rc != 0)
        sb_log_error(p->svc->log, NULL, "event %s dead-lettered but not marked: %s", event,
                     sb_strerror(rc));
}

static enum bus_verdict on_wakeup(const struct bus_entry *e, unsigned deliveries,
                                  struct sb_buf *reason, void *arg)
{
    struct processor *p = arg;
    struct ingest *in = calloc(1, sizeof *in);
    if (!in)
        return BUS_RETRY;
    in->p = p;
    snprintf(in->tenant, sizeof in->tenant, "%s", entry_field(e, "tenant_id"));
    snprintf(in->event, sizeof in->event, "%s", entry_field(e, "event_id"));
    enum bus_verdict v = BUS_ACK;
    if (!sb_uuid_valid(in->tenant, strlen(in->tenant)) || !sb_uuid_valid(in->event, strlen(in->event))) {
        (void)!sb_buf_append_str(reason, "wake-up without a valid tenant_id and event_id");
        v = BUS_DEAD;
        goto out;
    }
    struct sb_log_ctx lctx = {in->tenant, entry_field(e, "correlation_id")};
    int rc = db_tenant_tx(p->svc->db, in->tenant, ingest_tx, in);
    if (rc == 0) {
        if (in->after.status_early)
            sb_log_info(p->svc->log, &lctx,
                        "event %s: a delivery report names a message still being sent; "
                        "left unprocessed for the relay to bring back",
                        in->event);
        after(p, in);
    } else if (rc == SB_ENOTFOUND) {
        sb_log_info(p->svc->log, &lctx, "event %s not found (purged?): nothing to do", in->event);
    } else if (rc == SB_EPARSE) {
        (void)!sb_buf_appendf(reason, "payload cannot be converted: %s %s", in->perr.reason,
                              in->perr.detail);
        mark_dead(p, in->tenant, in->event, reason->data);
        v = BUS_DEAD;
    } else {
        (void)!sb_buf_appendf(reason, "%s", sb_strerror(rc));
        sb_log_warn(p->svc->log, &lctx, "event %s not processed (delivery %u): %s", in->event,
                    deliveries, sb_strerror(rc));
        v = BUS_RETRY;
    }
out:
    after_commit_cleanup(&in->after);
    free(in);
    return v;
}

/* The worker dead-lettered a wake-up after too many deliveries. */
static void on_dead(const struct bus_entry *e, const char *reason, void *arg)
{
    const char *tenant = entry_field(e, "tenant_id"), *event = entry_field(e, "event_id");
    /* Only repeated failures (the database away, say): the event stays
     * unprocessed and unmarked, so the gateway's relay publishes it again
     * later and nothing acknowledged is lost. Unconvertible payloads were
     * marked by on_wakeup itself. */
    struct processor *p = arg;
    struct sb_log_ctx lctx = {sb_uuid_valid(tenant, strlen(tenant)) ? tenant : NULL, NULL};
    sb_log_warn(p->svc->log, &lctx, "wake-up for event %.40s dead-lettered (%s); the relay will retry",
                event, reason);
}

const char *entry_field(const struct bus_entry *e, const char *name)
{
    for (size_t i = 0; i < e->nfields; i++)
        if (strcmp(e->names[i], name) == 0)
            return e->values[i];
    return "";
}

int inbound_start(struct processor *p)
{
    const struct sb_config *cfg = p->svc->cfg;
    struct bus_worker_config wc = {
        .stream = p->inbound_stream,
        .group = PROC_GROUP,
        .consumer = p->consumer,
        .threads = (int)sb_config_int(cfg, "SABIA_PROCESSOR_INBOUND_THREADS"),
        .reclaim_idle_ms = sb_config_int(cfg, "SABIA_PROCESSOR_RECLAIM_IDLE_MS"),
        .max_deliveries = INBOUND_MAX_DELIVERIES,
        .fn = on_wakeup,
        .on_dead = on_dead,
        .arg = p,
    };
    p->inbound = bus_worker_start(p->svc->bus, &wc);
    return p->inbound ? 0 : -ENOMEM;
}

void inbound_stop(struct processor *p)
{
    bus_worker_stop(p->inbound);
    p->inbound = NULL;
}
