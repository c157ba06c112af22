/* processor.h - internal to sabia-processor: the shared context and the
 * parts that make up the service.
 *
 *   inbound.c   consumes the gateway's wake-ups: stores contacts,
 *               conversations, messages and status reports (store.c)
 *   buffer.c    the reply buffer: deadlines in a Redis sorted set, the flush
 *               that turns a quiet conversation into a GenerateAIResponse
 *   prepare.c   GenerateAIResponse: checks, context, knowledge (batches)
 *   answer.c    GenerateAIResponse: provider call, job lifecycle
 *   generate.c  GenerateAIResponse: the replies stored (batches)
 *   send.c      SendToChannel: WhatsApp, Instagram, web widget; statuses
 *   schedule.c  due work: retries with backoff, auto-resume, sweeps that
 *               re-arm what Redis lost
 *   batchq.c    the job queue served in batches (prepares, finishes, sends)
 *
 * Streams and keys (docs/processor.md):
 *   sabia:events:inbound    gateway wake-ups (group "processor")
 *   sabia:cmd:generate      GenerateAIResponse commands
 *   sabia:cmd:send          SendToChannel commands
 *   sabia:cmd:conversation  take_over / hand_back / close (handoff.c)
 *   <stream>:dead           dead letters of each
 *   sabia:buffer            reply deadlines, member "<tenant>:<conversation>"
 *   sabia:retry             delayed commands, member = the command JSON
 *   sabia:jobs              scheduled jobs: "resume:<tenant>:<conversation>",
 *                           "job:<tenant>:<scheduled_jobs.id>" (follow-ups) */
#ifndef SABIA_PROCESSOR_H
#define SABIA_PROCESSOR_H

#include "channels.h"
#include "crypto.h"
#include "domain.h"
#include "events.h"
#include "service.h"

#define PROC_STREAM_GENERATE "sabia:cmd:generate"
#define PROC_STREAM_SEND "sabia:cmd:send"
#define PROC_STREAM_CONVERSATION "sabia:cmd:conversation"
#define PROC_KEY_BUFFER "sabia:buffer"
#define PROC_KEY_RETRY "sabia:retry"
#define PROC_KEY_JOBS "sabia:jobs"
#define PROC_GROUP "processor"
#define PROC_COMMAND_MAXLEN 1000000L
#define PROC_PRICE_MAX 1000000000L /* micro-USD per million tokens: $1,000 per million */

/* SQL SET items for a conversation the bot gets back (hand-back, auto-resume):
 * when a customer message came after the last outbound one, the reply buffer
 * is due now, so what the human left unanswered gets the bot's reply. */
#define PROC_SQL_ANSWER_UNANSWERED                                                                 \
    "buffer_started_at = CASE WHEN coalesce(last_inbound_at > last_outbound_at, "                 \
    "last_inbound_at IS NOT NULL) THEN now() END, "                                                \
    "buffer_deadline_at = CASE WHEN coalesce(last_inbound_at > last_outbound_at, "                \
    "last_inbound_at IS NOT NULL) THEN now() END "

/* Decrypts a sealed secret read as bytea text ("\\x…") with its aad. *out is
 * heap, NUL-terminated; the caller wipes and frees it. */
int proc_open_secret(const struct crypto_key *k, const char *bytea_text, const char *aad,
                     char **out) SB_MUST_USE;

/* Copies a UUID from a command in its canonical (lower-case) form, as the
 * database writes it, so ids from commands and from result rows compare as
 * strings. False when `in` is not a UUID. */
bool proc_uuid_copy(char out[SB_UUID_STRLEN], const char *in) SB_MUST_USE;

struct processor {
    struct service *svc;         /* borrowed: config, log, metrics, db, bus, http */
    struct crypto_key *master;
    struct events *events;
    char consumer[96];           /* this instance's consumer name */
    const char *inbound_stream;
    const char *graph_base_url;  /* e.g. https://graph.facebook.com */
    const char *graph_version;   /* e.g. v21.0 */
    const char *instagram_base_url;
    long send_max_attempts;
    long context_messages_max;
    struct bus_worker *inbound, *generate, *send, *handoff;
    struct batchq *sendq;                 /* SendToChannel jobs awaiting a sender (send.c) */
    struct llm *llm;                      /* model calls (generate) */
    long llm_max_in_flight;               /* back-pressure bound (answer.c) */
    struct spend *spend;                  /* monthly LLM spend per tenant (spend.c) */
    long price_in, price_out;             /* default model prices, micro-USD per million tokens */
    const char *openai_key, *anthropic_key; /* instance-wide keys; "" when none */
    const char *openai_base, *anthropic_base, *compatible_base; /* "" = provider default */
    const char *default_model_openai, *default_model_anthropic;
    struct batchq *prepq;                /* GenerateAIResponse commands awaiting a preparer (answer.c) */
    struct batchq *completions;          /* completed model calls awaiting their finish (answer.c) */
    struct schedule *schedule;
    struct metric *m_replies;    /* processor_replies_total{provider,result} */
    struct metric *m_sends;      /* processor_sends_total{channel,result} */
    struct metric *m_batch;      /* processor_batch_size{stage}: items per batched transaction */
};

/* Each part starts its threads and registers its metrics; the matching stop
 * waits for them. */
int inbound_start(struct processor *p) SB_MUST_USE;
void inbound_stop(struct processor *p);
int generate_start(struct processor *p) SB_MUST_USE;
void generate_stop(struct processor *p);
int send_start(struct processor *p) SB_MUST_USE;
void send_stop(struct processor *p);
int handoff_start(struct processor *p) SB_MUST_USE;
void handoff_stop(struct processor *p);

struct batchq;
struct schedule;
struct schedule *schedule_start(struct processor *p);
void schedule_stop(struct schedule *s);

/* Arms (or moves) a conversation's reply deadline. */
int buffer_arm(struct processor *p, const char *tenant_id, const char *conversation_id,
               int64_t deadline_ms) SB_MUST_USE;
/* Handles one due reply deadline (called by the scheduler). */
void buffer_flush(struct processor *p, const char *tenant_id, const char *conversation_id);

/* followup.c. Inside a tenant transaction, after bot replies were sent:
 * schedules (or pushes back) each conversation's follow-up when its assistant
 * has one configured; *out[i] gets conversation i's job (job_id "" when
 * none). The n conversations must be distinct. */
struct followup_armed {
    char job_id[SB_UUID_STRLEN];
    int64_t due_ms;
};
int followup_schedule(PGconn *c, const char *tenant, size_t n, const char *const *conversations,
                      const char *const *messages, struct followup_armed **out) SB_MUST_USE;
/* After the commit: arms the job in Redis and adds followup.scheduled to
 * `events`. */
void followup_armed(struct processor *p, const char *tenant, const char *conversation,
                    const struct followup_armed *a, struct events_batch *events);
/* Runs one due follow-up job. */
void followup_run(struct processor *p, const char *tenant, const char *job);

/* Queues a command on `stream`: {"tenant_id", "conversation_id", "message_id",
 * "correlation_id", "attempt"} as fields. 0 or a negative code. */
int command_enqueue(struct processor *p, const char *stream, const char *tenant_id,
                    const char *conversation_id, const char *message_id,
                    const char *correlation_id, unsigned attempt) SB_MUST_USE;
/* The same for n commands, pipelined (COMMAND_BATCH_MAX per round trip);
 * queued[i] (queued may be NULL) says whether command i was. Returns how many
 * were not. */
#define COMMAND_BATCH_MAX 128
struct command {
    const char *tenant_id, *conversation_id, *message_id, *correlation_id; /* ids may be NULL */
    unsigned attempt;
};
size_t command_enqueue_many(struct processor *p, const char *stream, const struct command *cmds,
                            size_t n, bool *queued);
/* Queues the same command again after `delay_ms` (through sabia:retry). */
int command_retry_later(struct processor *p, const char *stream, const char *tenant_id,
                        const char *conversation_id, const char *message_id,
                        const char *correlation_id, unsigned attempt, int64_t delay_ms) SB_MUST_USE;
/* Reads a field of a stream entry ("" when absent). */
const char *entry_field(const struct bus_entry *e, const char *name);

#endif
