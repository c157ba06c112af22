/* generate.h - internal to sabia-processor: one GenerateAIResponse job as it
 * goes through prepare (prepare.c), the provider call (answer.c) and
 * finish (generate.c). A job is heap-allocated because a model call completes
 * on the LLM engine's thread, after the stream handler has returned. */
#ifndef SABIA_PROCESSOR_GENERATE_H
#define SABIA_PROCESSOR_GENERATE_H

#include "batchq.h"
#include "llm.h"
#include "processor.h"

#define GEN_PROMPT_MAX (256u * 1024u) /* system prompt with knowledge, bytes */
#define GEN_QUESTION_MAX (64u * 1024u) /* the unanswered customer text, bytes */
#define GEN_BATCH_MAX 64                        /* jobs of one batch, at most */
#define GEN_PREPARE_BATCH_MAX GEN_BATCH_MAX     /* commands prepared by one transaction */
#define GEN_FINISH_BATCH_MAX GEN_BATCH_MAX                 /* replies stored by one transaction */
#define GEN_FINISH_BATCH_BYTES (4u * 1024u * 1024u) /* their text, together (one may exceed it) */

struct gen_job {
    struct processor *p;
    char entry_id[BUS_ID_MAX_BYTES + 1]; /* the command's stream entry, acked at the end */
    char tenant[SB_UUID_STRLEN], conversation[SB_UUID_STRLEN];
    char message[SB_UUID_STRLEN];        /* the customer message being answered */
    char correlation[160];
    unsigned attempt;
    /* prepare */
    const char *skip;                    /* static reason when there is nothing to do */
    char assistant[SB_UUID_STRLEN], channel[SB_UUID_STRLEN];
    char provider[24], model[201];
    char *base_url, *fallback;           /* the assistant's own (heap), NULL when none */
    char *api_key;                       /* decrypted tenant key, wiped on free */
    double temperature;
    int max_tokens, context_max;
    long price_in, price_out;            /* micro-USD per million tokens */
    bool capped;                         /* the tenant's monthly spend cap is reached */
    long spent, cap;                     /* micro-USD, when capped (cap -1: none) */
    /* the prompt: given up when the model call starts (answer.c, submit) */
    struct sb_buf system;                /* system prompt + personality + knowledge */
    struct sb_buf question;              /* the unanswered customer text */
    struct llm_message *context;         /* roles are static strings, contents owned */
    size_t ncontext, context_cap;
    /* answer */
    struct sb_buf reply;
    char used_model[201];
    long latency_ms;                     /* of the model call */
    long tokens_in, tokens_out;
    enum llm_error llm_error;
    bool llm_retryable;
    char llm_message[512];
    /* finish */
    char reply_id[SB_UUID_STRLEN];       /* the stored reply; "" when none */
    long cost;                           /* micro-USD of the model call; 0 for retrieval */
    bool again;                          /* an earlier job of its batch answers the same
                                            conversation: finished on its own afterwards */
    struct sb_buf dberr;                 /* the last database error, for the logs */
    struct batchq_item qi;               /* the prepare queue, later the completion queue */
};

struct gen_job *gen_job_new(struct processor *p);
void gen_job_free(struct gen_job *j);
int gen_context_reserve(struct gen_job *j, size_t n) SB_MUST_USE;
int gen_context_add(struct gen_job *j, const char *role, const char *content) SB_MUST_USE;
/* Wipes and frees the job's decrypted key, if any. */
void gen_drop_key(struct gen_job *j);
/* Decrypts the assistant's own provider key (bytea text form). */
int gen_open_key(struct gen_job *j, const char *bytea_text) SB_MUST_USE;
/* True when the built-in retrieval-only provider answers this job: the
 * assistant chose it, no key is configured for its provider, or the tenant's
 * monthly LLM spend cap is reached. */
bool gen_use_retrieval(const struct gen_job *j);

/* The checks prepare and finish both make, as SQL columns of a row of
 * conversations c, for the customer message `msg` (an SQL expression):
 * owner, status, assistant, channel, "is the newest customer message",
 * "answered already". */
#define GEN_SQL_WANTED_COLUMNS(msg)                                                                \
    "c.owner, c.status, coalesce(c.assistant_id::text, ''), c.channel_id, "                        \
    "(SELECT m.id FROM messages m WHERE m.tenant_id = c.tenant_id AND "                           \
    " m.conversation_id = c.id AND m.direction = 'inbound' "                                      \
    " ORDER BY m.created_at DESC, m.id DESC LIMIT 1) = " msg ", "                                 \
    "EXISTS (SELECT 1 FROM messages m WHERE m.tenant_id = c.tenant_id AND "                       \
    " m.conversation_id = c.id AND m.sender_type = 'bot' AND "                                    \
    " m.metadata->>'reply_to_message_id' = " msg "::text) "

/* A batch of jobs of one tenant (prepare, finish) and the array columns its
 * statements are built from (one element per job, re-filled per statement;
 * nothing is allocated before the first element). */
#define GEN_BATCH_COLUMNS 11
struct gen_batch {
    struct gen_job **jobs;
    size_t n;
    struct db_array a[GEN_BATCH_COLUMNS];
};

/* Each column holds at most column_bytes. */
void gen_batch_init(struct gen_batch *b, struct gen_job **jobs, size_t n, size_t column_bytes);
void gen_batch_cleanup(struct gen_batch *b);
/* Empties every column. */
void gen_batch_reset(struct gen_batch *b);
/* Runs `sql` with the tenant as $1 and the first `ncols` columns after it. */
int gen_batch_exec(PGconn *c, struct gen_batch *b, const char *sql, int ncols,
                   PGresult **r) SB_MUST_USE;
/* The checks of every job: `sql` selects w.i and then GEN_SQL_WANTED_COLUMNS
 * over unnest($2 conversations, $3 messages) WITH ORDINALITY w(conv, msg, i).
 * Sets each job's assistant, channel and skip ("conversation not found" when
 * no row names it). */
int gen_batch_check(PGconn *c, struct gen_batch *b, const char *sql) SB_MUST_USE;

/* prepare.c: for n (1..GEN_PREPARE_BATCH_MAX) commands of one tenant, in one
 * transaction: the checks (j->skip), then for each job still wanted its
 * assistant, context and knowledge, and the reply itself when the
 * retrieval-only provider answers. 0, or a negative code for the whole batch. */
int gen_prepare_batch(struct gen_job **jobs, size_t n) SB_MUST_USE;

/* Ends the buffer's lease when no reply will come for this message (already
 * answered, a human has it, …) unless a newer customer message is waiting. */
int gen_release_buffer(struct gen_job *j) SB_MUST_USE;
/* generate.c: stores the replies of n (1..GEN_FINISH_BATCH_MAX) completed
 * jobs of one tenant and queues SendToChannel for each, in one transaction
 * (re-checking that each is still wanted); rcs[i] gets job i's result: 0, or
 * a negative code to retry the job later. */
void gen_finish_batch(struct gen_job **jobs, size_t n, int *rcs);

#endif
