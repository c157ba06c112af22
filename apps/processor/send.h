/* send.h - internal to sabia-processor: SendToChannel jobs as they go
 * through claim (send.c), delivery (deliver.c) and settle (settle.c).
 *
 * Jobs are handled in batches of one tenant: one transaction claims every
 * message of the batch, one records every outcome. A web widget message is
 * published while its claim holds the row and settled in that same
 * transaction; WhatsApp and Instagram messages are sent between the two. */
#ifndef SABIA_PROCESSOR_SEND_H
#define SABIA_PROCESSOR_SEND_H

#include "batchq.h"
#include "processor.h"

#define SEND_EXTRA_IDS 8     /* provider ids of the extra parts of a split reply kept */
#define SEND_BATCH_MAX 64    /* messages claimed or settled by one transaction */

struct send_job {
    struct processor *p;
    char entry_id[BUS_ID_MAX_BYTES + 1]; /* the command's stream entry, acked at the end */
    char tenant[SB_UUID_STRLEN], message[SB_UUID_STRLEN], conversation[SB_UUID_STRLEN];
    char channel[SB_UUID_STRLEN], correlation[160];
    unsigned attempts;                /* including this one */
    const char *skip;                 /* static: nothing to send (settled, superseded, …) */
    bool failed_now;                  /* skip was recorded as a failure in the claim */
    bool inline_web;                  /* published and settled inside the claim */
    const char *claimed_from;         /* static: the status the claim found (queued, or
                                         processing abandoned by another sender) */
    char type[16];                    /* whatsapp | instagram | web */
    char to[DOMAIN_ID_MAX + 1];       /* wa_id, IGSID or visitor id */
    char account[65];                 /* phone_number_id or Instagram account id */
    char reply_to_provider[DOMAIN_ID_MAX + 1];
    char *token;                      /* decrypted access token, wiped on free */
    struct sb_buf text;
    /* delivery outcome */
    struct channels_send_result result;
    char provider_id[DOMAIN_ID_MAX + 1];
    char extra_ids[SEND_EXTRA_IDS][DOMAIN_ID_MAX + 1];
    int nextra;
    /* what settle decided (settle.c) */
    const char *status;               /* sent | queued | failed */
    char code[32];
    char reason[2001];
    int64_t retry_ms;
    bool exhausted;                   /* out of attempts on a retryable error */
    bool recorded;                    /* the outcome is in the database */
    struct followup_armed followup;
    struct batchq_item qi;            /* sender queue */
};

/* Heap job for one SendToChannel entry; NULL on allocation failure. */
struct send_job *send_job_new(struct processor *p);
void send_job_free(struct send_job *s);
/* Decrypts the channel's access token (bytea text form). */
int send_open_token(struct send_job *s, const char *bytea_text) SB_MUST_USE;

/* deliver.c: performs the delivery; fills s->result. Never fails: the outcome
 * is in s->result (ok, or an error with its class). */
void send_deliver(struct send_job *s);

/* settle.c: decides what the delivery result means for the message. */
void send_decide(struct send_job *s);
/* settle.c: records the outcomes of jobs[0..n) (those with a status) inside
 * the caller's transaction, and their follow-ups. */
int send_record(PGconn *c, struct send_job **jobs, size_t n) SB_MUST_USE;
/* settle.c: after the commit: retries, dead letters, follow-ups armed and
 * metrics of one recorded job; its events are added to `events`. */
void send_settled(struct send_job *s, struct events_batch *events);
/* settle.c: marks the message failed inside the caller's transaction (the
 * job is skipped from then on); send_failed_event() tells, once committed. */
int send_settle_failed(PGconn *c, struct send_job *s, const char *code, const char *reason) SB_MUST_USE;
void send_failed_event(struct send_job *s, struct events_batch *events);

#endif
