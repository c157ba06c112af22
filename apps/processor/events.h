/* events.h - internal to sabia-processor: publishing domain events.
 *
 * Every event envelope (domain_event_envelope) goes to two places:
 *   - Redis pub/sub channel "sabia:events:<tenant_id>", for live pushes to
 *     dashboards (every webapp instance subscribes; lost if nobody listens);
 *   - the Redis stream SABIA_DOMAIN_EVENTS_STREAM (default
 *     "sabia:events:domain"), for the public API's outbound webhooks.
 * Events are published after the transaction that caused them commits; the
 * state they describe is always in PostgreSQL, so a lost event is caught up
 * by readers through the REST APIs (see docs/processor.md). */
#ifndef SABIA_PROCESSOR_EVENTS_H
#define SABIA_PROCESSOR_EVENTS_H

#include "bus.h"
#include "metrics.h"

#include <jansson.h>

struct events;

/* Borrows bus, log and metrics; the stream is trimmed to about `maxlen`
 * (≥ 1) entries. NULL on allocation failure or a bad maxlen. */
struct events *events_new(struct bus *bus, const char *stream, long maxlen, struct metrics *metrics,
                          struct sb_log *log);
void events_free(struct events *ev);

/* Publishes one envelope (takes the reference; NULL is ignored). Failures
 * are logged and counted, never returned: the caller's work is done. */
void events_emit(struct events *ev, json_t *envelope);

/* The events of one batch of work (replies stored, messages sent), published
 * together: every PUBLISH and XADD in one pipelined round trip. Caller-owned
 * storage; nothing is allocated until events are added. */
#define EVENTS_BATCH_MAX 128
struct events_batch {
    struct events *ev;
    json_t *env[EVENTS_BATCH_MAX];
    size_t n;
};

void events_batch_init(struct events_batch *b, struct events *ev);
/* Takes the reference (NULL is ignored); a full batch is published first. */
void events_batch_add(struct events_batch *b, json_t *envelope);
/* Publishes what was added (as events_emit does, failures logged and
 * counted) and empties the batch. */
void events_batch_flush(struct events_batch *b);

#endif
