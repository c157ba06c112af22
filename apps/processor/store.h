/* store.h - internal to sabia-processor: writing what customers send.
 *
 * Everything here runs inside one tenant-scoped transaction per gateway
 * event (db_tenant_tx): the contact is upserted, the conversation found or
 * opened, each message stored once (unique per channel + provider id), status
 * reports applied monotonically, and the event marked processed. What must
 * happen after the commit (events to publish, buffer deadlines to arm) is
 * collected in `struct after_commit` and done by the caller. */
#ifndef SABIA_PROCESSOR_STORE_H
#define SABIA_PROCESSOR_STORE_H

#include "db.h"
#include "domain.h"

#include <jansson.h>

#define STORE_MAX_AFTER 256 /* events/deadlines remembered for one gateway event */
#define STORE_EARLY_STATUS_WAIT "5 minutes" /* how long a report may wait for its message */
#define STORE_SENDING_RECENT "2 minutes"    /* a send in progress for longer is not waited for */

/* A reply deadline to arm in Redis once committed. */
struct buffer_arm {
    char conversation_id[SB_UUID_STRLEN];
    int64_t deadline_ms;
};

struct after_commit {
    json_t *events[STORE_MAX_AFTER]; /* envelopes, owned */
    size_t nevents;
    struct buffer_arm arms[STORE_MAX_AFTER];
    size_t narms;
    /* A delivery report named no message yet while one of ours on the
     * channel is still being sent: its provider id may not be stored yet, so
     * the event is left unprocessed and the gateway's relay brings it back. */
    bool status_early;
};

void after_commit_cleanup(struct after_commit *a);

/* The channel an event came through, with its assistant's settings. */
struct channel_ctx {
    const char *tenant_id, *workspace_id, *channel_id, *channel_type;
    const char *event_id, *correlation_id;
    char assistant_id[SB_UUID_STRLEN]; /* "" when no assistant answers here */
    bool assistant_active;
    long buffer_s, buffer_max_wait_s, resume_s; /* resume_s 0: never */
    bool event_recent; /* received within STORE_EARLY_STATUS_WAIT: early reports may wait */
};

/* Reads the channel's assistant settings into ctx (inside the tenant tx). */
int store_load_assistant(PGconn *c, struct channel_ctx *ctx) SB_MUST_USE;

/* Stores one message. New inbound customer messages in bot-owned
 * conversations arm the reply buffer; echoes (the business writing from its
 * own phone or app) hand the conversation to a human. A message already
 * stored (same provider id) changes nothing. */
int store_message(PGconn *c, const struct channel_ctx *ctx, const struct domain_message *m,
                  struct after_commit *after) SB_MUST_USE;

/* Applies a delivery report to the outbound message it names (ignored when
 * duplicate or late: the status only moves forward; when unknown, ignored
 * too unless it may be early, see after_commit.status_early). */
int store_status(PGconn *c, const struct channel_ctx *ctx, const struct domain_status_update *u,
                 struct after_commit *after) SB_MUST_USE;

/* Marks the gateway event processed (the relay stops re-publishing it). */
int store_event_processed(PGconn *c, const struct channel_ctx *ctx) SB_MUST_USE;

#endif
