/* bus.h - the message bus: Redis reached through hiredis, a small pool of
 * reconnecting connections, health checks, a generic command call and the
 * Redis Streams operations the services use for at-least-once hand-offs.
 *
 * The stream functions (bus_stream_*, bus_group_create, struct bus_entry)
 * speak only in stream, group, consumer, id and field terms, so another
 * transport can later sit behind them; bus_command() and bus_command_timeout()
 * are Redis-specific escape hatches.
 *
 * Connections: `pool_size` connections for commands plus one reserved for
 * bus_ping(), each created on first use, authenticated (AUTH) and switched to
 * the URL's database (SELECT) after connecting, with TCP keep-alive. Any I/O
 * error or timeout drops that connection; the next use reconnects. A single
 * "redis connection lost" / "redis connection restored" line is logged per
 * outage. The library blocks SIGPIPE in the calling thread while it writes,
 * so a peer that went away never kills the process.
 *
 * Every function here is thread-safe, except bus_free(), which must not run
 * concurrently with any other call on the same bus. */
#ifndef SABIA_BUS_H
#define SABIA_BUS_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#include "core.h"

/* ---------------------------------------------------------------- limits */

#define BUS_URL_MAX_BYTES      1024  /* whole URL */
#define BUS_HOST_MAX_BYTES     255   /* host name or address */
#define BUS_SECRET_MAX_BYTES   512   /* user name or password, decoded */
#define BUS_SOCKET_PATH_MAX    107   /* unix socket path (sun_path minus the NUL) */
#define BUS_DB_MAX             65535 /* highest database index accepted in a URL */
#define BUS_POOL_MAX           256   /* pool_size upper bound */
#define BUS_CONNECT_TIMEOUT_MS 1000  /* TCP/unix connect */
/* Socket timeout of ordinary commands, and the longest wait for a free pooled connection. */
#define BUS_COMMAND_TIMEOUT_MS 3000
/* While Redis is down, commands fail fast (with the same code) for this long
 * after a failed connect instead of each trying again; bus_ping never does. */
#define BUS_RETRY_INTERVAL_MS     250
#define BUS_KEY_MAX_BYTES         1024     /* stream, group and consumer names */
#define BUS_ID_MAX_BYTES          63       /* stream ids and cursors ("<ms>-<seq>") */
#define BUS_BLOCK_MAX_MS          3600000L /* longest BLOCK of a stream read */
#define BUS_READ_MAX_COUNT        1024     /* most entries per read or claim */
#define BUS_ENTRY_MAX_FIELDS      128      /* field/value pairs per entry */
#define BUS_FIELD_NAME_MAX_BYTES  256
#define BUS_FIELD_VALUE_MAX_BYTES (1024 * 1024)
#define BUS_ENTRY_MAX_BYTES       (2 * 1024 * 1024) /* all names and values of one entry */

/* ---------------------------------------------------------------- URL */

/* A parsed connection URL. Exactly one of host and path is set. Strings are
 * heap copies owned by the struct (caller-owned storage: bus_url_parse()
 * fills it, bus_url_cleanup() releases it). */
struct bus_url {
    char *host;     /* TCP host name or address (IPv6 without brackets), or NULL */
    int port;       /* TCP port, 6379 by default */
    char *path;     /* unix socket path, or NULL */
    char *user;     /* ACL user name, or NULL (plain AUTH password) */
    char *password; /* NULL: no AUTH */
    int db;         /* SELECT index, 0 by default */
};

/* Parses
 *   redis://[[user]:password@]host[:port][/db]
 *   unix://[[user]:password@]/path/to.sock[?db=N]
 * User and password may be percent-encoded (required for ':', '@', '/', '?').
 * An IPv6 host is written in brackets ("redis://[::1]:6379").
 * Returns 0, SB_ECONFIG (malformed or out of range, *out zeroed) or -ENOMEM. */
int bus_url_parse(const char *url, struct bus_url *out) SB_MUST_USE;
/* Frees the strings and zeroes *u. NULL and zeroed structs are fine. */
void bus_url_cleanup(struct bus_url *u);

/* ---------------------------------------------------------------- lifecycle */

struct bus; /* opaque; thread-safe */

/* Creates a bus for `url` (see bus_url_parse). Does not connect: connections
 * are made on first use. At most `pool_size` (1..BUS_POOL_MAX) connections
 * serve commands, plus one for bus_ping(). `log` is borrowed, may be NULL and
 * must outlive the bus. Returns NULL with *err (may be NULL) set to
 * SB_ECONFIG (bad URL), -EINVAL (bad pool_size) or -ENOMEM. */
struct bus *bus_new(const char *url, int pool_size, struct sb_log *log, int *err);
/* Closes every connection and frees the bus. NULL is a no-op. No other call on
 * `b` may be running or start afterwards. */
void bus_free(struct bus *b);

/* Health: PING on the connection reserved for health checks (so it never
 * waits behind blocking reads on the pool), reconnecting as needed. Returns
 * within about timeout_ms (>= 1) even when Redis is down or stalled:
 * 0 when Redis answered PONG, SB_EUNAVAIL when it cannot connect or the
 * connection broke, -ETIMEDOUT, SB_EAUTH when authentication was refused, or
 * SB_EREDIS for any other error reply. */
int bus_ping(struct bus *b, int timeout_ms) SB_MUST_USE;

/* True when the last connection attempt or command succeeded at the
 * connection level; false before the first use and during an outage. No I/O. */
bool bus_connected(struct bus *b);

/* The logger given to bus_new() (borrowed, may be NULL). */
struct sb_log *bus_log(struct bus *b);

/* ---------------------------------------------------------------- commands */

/* Runs one command (argv/argvlen as for redisCommandArgv; argvlen may be NULL
 * for NUL-terminated arguments) on a pooled connection with the socket
 * timeout BUS_COMMAND_TIMEOUT_MS. On success returns 0 and *reply is owned by
 * the caller (freeReplyObject). Redis error replies are successes with
 * (*reply)->type == REDIS_REPLY_ERROR. On failure *reply is NULL and the code
 * is SB_EUNAVAIL (cannot connect, connection broke), -ETIMEDOUT (no free
 * connection in time, or no answer in time), SB_EAUTH, SB_EREDIS (protocol
 * error) or -ENOMEM; a connection-level failure drops that connection so the
 * next use reconnects. */
int bus_command(struct bus *b, int argc, const char **argv, const size_t *argvlen,
                redisReply **reply) SB_MUST_USE;

/* As bus_command(), with a socket timeout of `timeout_ms` for this one
 * command (0: wait forever; only TCP keep-alive then notices a dead peer).
 * For commands that block on the server (BLOCK, BLPOP, WAIT). */
int bus_command_timeout(struct bus *b, int timeout_ms, int argc, const char **argv,
                        const size_t *argvlen, redisReply **reply) SB_MUST_USE;

/* ---------------------------------------------------------------- streams */

/* One entry read from a stream. The id and all fields are copies owned by the
 * entry and released by bus_entries_free(). Values may hold any bytes; each is
 * also NUL-terminated. */
struct bus_entry {
    char id[BUS_ID_MAX_BYTES + 1];
    size_t nfields;
    char **names;
    char **values;
    size_t *value_lens;
    /* The entry was deleted from the stream while still pending (nfields 0);
     * acknowledge it and move on. */
    bool deleted;
    /* The entry exceeded BUS_ENTRY_MAX_FIELDS / BUS_FIELD_*_MAX_BYTES /
     * BUS_ENTRY_MAX_BYTES, so no field was copied (nfields 0). It is in the
     * pending list like any other: dead-letter or acknowledge it. */
    bool oversized;
};

/* Frees `n` entries and the array itself. NULL is a no-op. */
void bus_entries_free(struct bus_entry *entries, size_t n);

/* XADD stream [MAXLEN ~ maxlen_approx] * name value ... . `fields` holds
 * 2*nfields NUL-terminated strings (name, value, ...), 1 <= nfields <=
 * BUS_ENTRY_MAX_FIELDS, within the size limits above (else SB_ELIMIT).
 * maxlen_approx 0 = no trimming (trimming may delete entries still pending).
 * Writes the new id into id_out when not NULL. Returns 0, -EINVAL,
 * SB_ELIMIT, SB_EREDIS (error reply) or a bus_command() failure. */
int bus_stream_add(struct bus *b, const char *stream, long maxlen_approx, size_t nfields,
                   const char *const *fields, char id_out[BUS_ID_MAX_BYTES + 1]) SB_MUST_USE;

/* XGROUP CREATE stream group start_id MKSTREAM, start_id "$" (new entries
 * only) or "0" (whole history). An existing group (BUSYGROUP) is a success. */
int bus_group_create(struct bus *b, const char *stream, const char *group,
                     const char *start_id) SB_MUST_USE;

/* XREADGROUP GROUP group consumer COUNT max [BLOCK block_ms] STREAMS stream id.
 * id ">" reads entries never delivered to anyone; "0" re-reads this
 * consumer's own pending entries (some may come back `deleted`).
 * 1 <= max <= BUS_READ_MAX_COUNT; block_ms < 0: no BLOCK; 0: block forever;
 * at most BUS_BLOCK_MAX_MS. The connection's socket timeout is set longer
 * than block_ms, and the pooled connection stays busy for the whole wait.
 * On success *out (NULL when *n is 0) is owned by the caller
 * (bus_entries_free) and *n is the count, 0 when BLOCK timed out.
 * Returns 0, -EINVAL, SB_ENOTFOUND (no such stream or group: NOGROUP),
 * SB_EREDIS (other error reply or malformed reply) or a bus_command()
 * failure; *out is NULL and *n 0 on failure. */
int bus_stream_read_group(struct bus *b, const char *stream, const char *group,
                          const char *consumer, const char *id, size_t max, long block_ms,
                          struct bus_entry **out, size_t *n) SB_MUST_USE;

/* XACK stream group id. Acknowledging an id twice (or an unknown id) is a
 * success. Returns 0, -EINVAL, SB_EREDIS or a bus_command() failure. */
int bus_stream_ack(struct bus *b, const char *stream, const char *group,
                   const char *id) SB_MUST_USE;
/* The same for n (0..BUS_READ_MAX_COUNT) ids in one XACK. */
int bus_stream_ack_many(struct bus *b, const char *stream, const char *group,
                        const char *const *ids, size_t n) SB_MUST_USE;

/* XAUTOCLAIM stream group consumer min_idle_ms start COUNT max: moves to
 * `consumer` the pending entries idle for at least min_idle_ms, scanning from
 * cursor `start` ("0-0" to begin). next_start receives the cursor for the
 * next call ("0-0" once the whole pending list was scanned). Entries deleted
 * from the stream while pending are dropped from the pending list by Redis;
 * their count is logged as a warning. Outputs and codes as for
 * bus_stream_read_group(). */
int bus_stream_autoclaim(struct bus *b, const char *stream, const char *group, const char *consumer,
                         long min_idle_ms, const char *start, size_t max,
                         char next_start[BUS_ID_MAX_BYTES + 1], struct bus_entry **out,
                         size_t *n) SB_MUST_USE;

/* Sends n commands (argv strings NUL-terminated) on one connection in one
 * round trip. On 0 every replies[i] is set (an error reply is a reply) and
 * owned by the caller (freeReplyObject); on failure none is. */
#define BUS_PIPELINE_MAX 1024
int bus_pipeline(struct bus *b, size_t n, const int *argcs, const char **const *argvs,
                 redisReply **replies) SB_MUST_USE;

/* ---------------------------------------------------------------- pub/sub */

/* Opens a connection outside the pool, AUTH and SELECT done, for blocking
 * uses such as SUBSCRIBE. The caller owns it (redisFree). 0 or a negative
 * code (SB_EUNAVAIL, SB_EAUTH, -ETIMEDOUT). */
int bus_connect_dedicated(struct bus *b, int timeout_ms, redisContext **out) SB_MUST_USE;

/* PUBLISH; *receivers (may be NULL) gets the number of subscribers reached. */
int bus_publish(struct bus *b, const char *channel, const char *message, size_t len,
                long *receivers) SB_MUST_USE;

/* Called on the subscription's thread for every message on the channel.
 * message is NULL (len 0) right after every (re)connection: messages sent
 * while disconnected are lost, so a cache should then drop everything. */
typedef void (*bus_message_fn)(const char *message, size_t len, void *arg);

#define BUS_SUBSCRIBE_MAX_MESSAGE 4096 /* longer messages are ignored */

struct bus_subscription; /* opaque */

/* Subscribes to `channel` on a thread and connection of its own, reconnecting
 * with backoff (100 ms doubling to 5 s) while Redis is away. Borrows `b`,
 * which must outlive the subscription; `fn` and `arg` are borrowed too.
 * NULL on allocation or thread-creation failure. */
struct bus_subscription *bus_subscribe(struct bus *b, const char *channel, bus_message_fn fn,
                                       void *arg);
/* Stops the thread (within about 200 ms) and frees. NULL is a no-op. */
void bus_subscription_free(struct bus_subscription *s);

/* ---------------------------------------------------------------- workers */

/* What a worker's handler decides about one entry. */
enum bus_verdict {
    BUS_ACK,   /* done: acknowledge */
    BUS_RETRY, /* leave it pending: it is delivered again after reclaim_idle_ms */
    BUS_DEAD,  /* never going to work: dead-letter it now with the reason */
    BUS_DEFER, /* the handler took it over (asynchronous work): it will call
                  bus_stream_ack itself when done, or leave it to be reclaimed */
};

/* Called on a worker thread for each entry; `deliveries` counts this one
 * (1 the first time). Write a reason into `reason` for BUS_RETRY/BUS_DEAD. */
typedef enum bus_verdict (*bus_worker_fn)(const struct bus_entry *e, unsigned deliveries,
                                          struct sb_buf *reason, void *arg);

struct bus_worker_config {
    const char *stream, *group;
    const char *consumer;       /* unique per process; threads add "-<n>" */
    int threads;                /* handler threads; each holds a pooled connection while
                                   blocked reading, so the bus needs more connections */
    size_t batch;               /* entries per read, default 16 */
    long block_ms;              /* read wait, default 2000 (also the stop latency) */
    long reclaim_idle_ms;       /* pending entries idle this long are taken over, default 30000;
                                   must exceed the longest handler run */
    long reclaim_interval_ms;   /* default 5000 */
    unsigned max_deliveries;    /* past this an entry is dead-lettered, default 5 */
    const char *dead_stream;    /* default "<stream>:dead" */
    bus_worker_fn fn;
    /* Optional: told about every dead-lettered entry (e.g. to record why). */
    void (*on_dead)(const struct bus_entry *e, const char *reason, void *arg);
    void *arg;
};

struct bus_worker; /* opaque */

/* Creates the group if needed (from the stream's beginning) and starts the
 * threads. Strings in cfg are copied; fn/arg borrowed. NULL on bad config or
 * thread/allocation failure. Redis being down is not an error: the threads
 * keep trying. */
struct bus_worker *bus_worker_start(struct bus *b, const struct bus_worker_config *cfg);
/* Stops the threads after their current entry (within about block_ms). */
void bus_worker_stop(struct bus_worker *w);

/* ---------------------------------------------------------------- delays */

/* Delayed work in a sorted set scored by due time (Unix ms): deadlines,
 * retries with backoff, scheduled jobs. Adding an existing member moves it. */
int bus_delay_add(struct bus *b, const char *key, const char *member, size_t len,
                  int64_t due_ms) SB_MUST_USE;
int bus_delay_remove(struct bus *b, const char *key, const char *member, size_t len) SB_MUST_USE;
/* Atomically removes and returns up to `max` members due at or before now_ms
 * (a Lua script, so two instances never take the same member). *members is
 * allocated (free with bus_delay_free); n set. */
int bus_delay_take_due(struct bus *b, const char *key, int64_t now_ms, size_t max,
                       char ***members, size_t *n) SB_MUST_USE;
void bus_delay_free(char **members, size_t n);

#endif
