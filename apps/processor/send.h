/* send.h - internal to sabia-processor: one SendToChannel job as it goes
 * through claim (send.c), delivery (deliver.c) and settle (settle.c). */
#ifndef SABIA_PROCESSOR_SEND_H
#define SABIA_PROCESSOR_SEND_H

#include "processor.h"

#define SEND_EXTRA_IDS 8 /* provider ids of the extra parts of a split reply kept */

struct send_job {
    struct processor *p;
    char tenant[SB_UUID_STRLEN], message[SB_UUID_STRLEN], conversation[SB_UUID_STRLEN];
    char channel[SB_UUID_STRLEN], correlation[160];
    unsigned attempts;                /* including this one */
    const char *skip;                 /* static: nothing to send (settled, superseded, …) */
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
};

void send_job_init(struct send_job *s, struct processor *p);
void send_job_cleanup(struct send_job *s);
/* Decrypts the channel's access token (bytea text form). */
int send_open_token(struct send_job *s, const char *bytea_text) SB_MUST_USE;

/* send.c: locks the message and decides; sets s->skip when there is nothing to send. */
int send_claim(struct send_job *s) SB_MUST_USE;
/* deliver.c: performs the delivery; fills s->result. Never fails: the outcome
 * is in s->result (ok, or an error with its class). */
void send_deliver(struct send_job *s);
/* settle.c: records the outcome (sent / queued for retry / failed). */
int send_settle(struct send_job *s) SB_MUST_USE;
/* settle.c: marks the message failed inside the caller's transaction. */
int send_settle_failed(PGconn *c, struct send_job *s, const char *code, const char *reason) SB_MUST_USE;

#endif
