/* gateway.h - internal to sabia-gateway: the parts behind the webhook routes.
 *
 *   webhook.c   the HTTP handlers: validate, record, answer
 *   lookup.c    tenant + channel lookups, cached in process, invalidated over Redis
 *   ratelimit.c per-tenant token buckets in Redis
 *   commit.c    group commit of webhook_events rows
 *   handoff.c   the Redis stream wake-ups for the processor, and the relay
 *               that re-publishes what was committed but not processed */
#ifndef SABIA_GATEWAY_H
#define SABIA_GATEWAY_H

#include "channels.h"
#include "crypto.h"
#include "service.h"

/* ---------------------------------------------------------------- lookup */

enum lookup_result { LOOKUP_FOUND, LOOKUP_NO_TENANT, LOOKUP_NO_CHANNEL };

/* What the gateway needs to know about one tenant's channel. Strings are
 * owned by the struct: lookup_info_cleanup() frees them. */
struct lookup_info {
    enum lookup_result result;
    bool tenant_active;
    long rate_per_second, rate_burst;
    char workspace_id[SB_UUID_STRLEN];
    char type[16];           /* whatsapp | instagram | web */
    char channel_status[16]; /* active | inactive | test */
    char *app_secret;        /* decrypted; NULL when none is configured */
    char *verify_token;      /* decrypted; NULL when none is configured */
};

void lookup_info_cleanup(struct lookup_info *info);

struct lookup;

/* Borrows db, bus, key, metrics and log (all must outlive it). Subscribes to
 * "sabia:invalidate" for "tenant:<id>" / "channel:<id>" messages. */
struct lookup *lookup_new(struct db_pool *db, struct bus *bus, const struct crypto_key *key,
                          int ttl_ms, struct metrics *metrics, struct sb_log *log);
void lookup_free(struct lookup *lk);
/* Fills *out (a copy the caller cleans up). 0, SB_EWOULDBLOCK when it is not
 * cached and may_block is false, or another negative code when the database
 * could not answer (then *out is empty). */
int lookup_get(struct lookup *lk, const char *tenant_id, const char *channel_id, bool may_block,
               struct lookup_info *out) SB_MUST_USE;
/* Drops cached entries: "tenant:<id>", "channel:<id>", or everything (NULL). */
void lookup_invalidate(struct lookup *lk, const char *what, size_t len);

/* ---------------------------------------------------------------- rate limit */

struct ratelimit;
/* Borrows bus. NULL on allocation failure. */
struct ratelimit *ratelimit_new(struct bus *bus);
void ratelimit_free(struct ratelimit *rl);
/* Takes one token from the tenant's bucket (rate per second, burst). 0 when
 * allowed, -EAGAIN when limited (then *retry_after_ms is set), SB_EWOULDBLOCK
 * when no leased token is at hand and may_block is false (nothing was
 * taken), another negative code when Redis could not answer (callers let the
 * request through: ingestion must not stop because Redis is away).
 * Thread-safe. */
int ratelimit_take(struct ratelimit *rl, const char *tenant_id, long rate, long burst,
                   bool may_block, long *retry_after_ms) SB_MUST_USE;

/* ---------------------------------------------------------------- commit */

struct event_row;
/* Called once the row's batch was committed or failed (row->result), on a
 * writer thread; the row and everything it borrows may go away after it. */
typedef void (*event_row_done_fn)(struct event_row *row, void *arg);

/* One webhook_events row on its way to PostgreSQL. Everything is borrowed
 * from the request being handled, which waits (deferred) for the commit. */
struct event_row {
    char id[SB_UUID_STRLEN];
    const char *tenant_id;    /* NULL when the tenant is unknown */
    const char *workspace_id; /* NULL unless the channel is known */
    const char *channel_id;   /* NULL unless the channel is known */
    const char *source;       /* whatsapp | instagram | web */
    const char *request_path;
    const char *remote_addr;
    const char *payload;
    size_t payload_len;
    bool payload_truncated;
    const char *signature;
    const char *rejection_reason; /* NULL: accepted */
    const char *dedup_key;        /* accepted rows only */
    const char *correlation_id;
    /* Set by the committer: */
    int result;                        /* 0 committed, else negative */
    bool duplicate;                    /* an accepted event with this key existed */
    char original_id[SB_UUID_STRLEN];  /* its id, when duplicate */
    event_row_done_fn done;
    void *done_arg;
    struct event_row *next; /* the committer's queue */
};

struct handoff;
struct committer;

/* Starts `threads` writer threads, each with batches of at most batch_max
 * rows. Committed accepted, non-duplicate rows are passed to `handoff`. */
struct committer *committer_new(struct db_pool *db, int threads, int batch_max,
                                struct handoff *handoff, struct metrics *metrics,
                                struct sb_log *log);
void committer_free(struct committer *c);
/* Queues the row without waiting; row->done is called once its batch is
 * committed or failed (at once, from this thread, when the committer is
 * stopping: row->result is then SB_ESHUTDOWN). Rows queued before
 * committer_free() are still written. */
void committer_enqueue(struct committer *c, struct event_row *row);

/* ---------------------------------------------------------------- hand-off */

/* Stream entries carry event_id, tenant_id, correlation_id and source. */
struct handoff *handoff_new(struct bus *bus, const char *stream, long maxlen,
                            struct metrics *metrics, struct sb_log *log);
void handoff_free(struct handoff *h);
/* Queues a wake-up for publication (never blocks; when the queue is full the
 * wake-up is dropped and the relay will publish it later). Strings are copied. */
void handoff_push(struct handoff *h, const char *event_id, const char *tenant_id,
                  const char *correlation_id, const char *source);

/* Publishes one wake-up now, from the calling thread. 0 or a negative code. */
int handoff_publish(struct handoff *h, const char *event_id, const char *tenant_id,
                    const char *correlation_id, const char *source);

struct relay;
/* Every interval_ms, re-publishes accepted events still unprocessed after
 * after_s seconds (and not re-published in the last after_s seconds). Only one
 * gateway instance relays at a time (advisory lock). */
struct relay *relay_new(struct db_pool *db, struct handoff *h, int after_s, int interval_ms,
                        struct metrics *metrics, struct sb_log *log);
void relay_free(struct relay *r);
/* Runs one relay pass now; returns how many events were re-published. */
int relay_run_once(struct relay *r);

/* ---------------------------------------------------------------- webhooks */

struct gateway {
    struct service *svc;
    struct crypto_key *master;
    struct lookup *lookup;
    struct ratelimit *ratelimit;
    struct committer *committer;
    struct handoff *handoff;
    struct relay *relay;
    struct metric *m_requests;   /* gateway_webhook_requests_total{source,outcome} */
    struct metric *m_rejections; /* gateway_webhook_rejections_total{reason} */
};

/* Registers the webhook routes on svc->http. */
int webhook_routes(struct gateway *gw) SB_MUST_USE;

#endif
