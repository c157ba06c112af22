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

/* Borrows bus, log and metrics. NULL on allocation failure. */
struct events *events_new(struct bus *bus, const char *stream, long maxlen, struct metrics *metrics,
                          struct sb_log *log);
void events_free(struct events *ev);

/* Publishes one envelope (takes the reference; NULL is ignored). Failures
 * are logged and counted, never returned: the caller's work is done. */
void events_emit(struct events *ev, json_t *envelope);

#endif
