/* commands.c - durable commands on Redis streams (and the secret opener the
 * command handlers share).
 *
 * A command is a stream entry with tenant_id, conversation_id, message_id,
 * correlation_id and attempt; its one handler is the worker of that stream.
 * A retry with backoff goes through the sorted set sabia:retry (member: the
 * command as JSON, with a fresh id so equal retries stay distinct) and comes
 * back onto its stream when due (schedule.c). */
#include "processor.h"

#include <stdlib.h>
#include <string.h>

int command_enqueue(struct processor *p, const char *stream, const char *tenant_id,
                    const char *conversation_id, const char *message_id,
                    const char *correlation_id, unsigned attempt)
{
    struct command c = {tenant_id, conversation_id, message_id, correlation_id, attempt};
    bool queued = false;
    command_enqueue_many(p, stream, &c, 1, &queued);
    return queued ? 0 : SB_EREDIS;
}

#define COMMAND_ARGC 16 /* XADD stream MAXLEN ~ n * and five fields */

size_t command_enqueue_many(struct processor *p, const char *stream, const struct command *cmds,
                            size_t n, bool *queued)
{
    char maxlen[24], attempts[COMMAND_BATCH_MAX][16];
    const char *argv[COMMAND_BATCH_MAX][COMMAND_ARGC];
    const char **argvs[COMMAND_BATCH_MAX];
    int argcs[COMMAND_BATCH_MAX];
    redisReply *replies[COMMAND_BATCH_MAX];
    size_t failed = 0;
    snprintf(maxlen, sizeof maxlen, "%ld", PROC_COMMAND_MAXLEN);
    for (size_t from = 0; from < n; from += COMMAND_BATCH_MAX) {
        size_t k = n - from < COMMAND_BATCH_MAX ? n - from : COMMAND_BATCH_MAX;
        for (size_t i = 0; i < k; i++) {
            const struct command *c = &cmds[from + i];
            snprintf(attempts[i], sizeof attempts[i], "%u", c->attempt);
            const char *a[COMMAND_ARGC] = {
                "XADD", stream, "MAXLEN", "~", maxlen, "*", "tenant_id", c->tenant_id,
                "conversation_id", c->conversation_id, "message_id",
                c->message_id ? c->message_id : "", "correlation_id",
                c->correlation_id ? c->correlation_id : "", "attempt", attempts[i]};
            memcpy(argv[i], a, sizeof a);
            argvs[i] = argv[i];
            argcs[i] = COMMAND_ARGC;
        }
        int rc = bus_pipeline(p->svc->bus, k, argcs, argvs, replies);
        for (size_t i = 0; i < k; i++) {
            bool ok = rc == 0 && replies[i]->type == REDIS_REPLY_STRING;
            if (rc == 0)
                freeReplyObject(replies[i]);
            if (queued)
                queued[from + i] = ok;
            failed += !ok;
        }
    }
    return failed;
}

int command_retry_later(struct processor *p, const char *stream, const char *tenant_id,
                        const char *conversation_id, const char *message_id,
                        const char *correlation_id, unsigned attempt, int64_t delay_ms)
{
    char id[SB_UUID_STRLEN];
    if (sb_uuid_v7_str(id) != 0)
        return -EIO;
    json_t *cmd = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "id", id, "stream", stream,
                            "tenant_id", tenant_id, "conversation_id", conversation_id,
                            "message_id", message_id ? message_id : "", "correlation_id",
                            correlation_id ? correlation_id : "", "attempt", (int)attempt);
    char *text = cmd ? json_dumps(cmd, JSON_COMPACT) : NULL;
    json_decref(cmd);
    if (!text)
        return -ENOMEM;
    int rc = bus_delay_add(p->svc->bus, PROC_KEY_RETRY, text, strlen(text), sb_now_ms() + delay_ms);
    free(text);
    return rc;
}

int proc_open_secret(const struct crypto_key *k, const char *bytea_text, const char *aad,
                     char **out)
{
    size_t n = 0;
    *out = NULL;
    unsigned char *blob = PQunescapeBytea((const unsigned char *)bytea_text, &n);
    if (!blob)
        return -ENOMEM;
    uint8_t *plain = NULL;
    size_t plen = 0;
    int rc = crypto_open(k, aad, blob, n, &plain, &plen);
    PQfreemem(blob);
    if (rc == 0)
        *out = (char *)plain; /* crypto_open NUL-terminates */
    return rc;
}

bool proc_uuid_copy(char out[SB_UUID_STRLEN], const char *in)
{
    struct sb_uuid u;
    if (sb_uuid_parse(in, strlen(in), &u) != 0)
        return false;
    sb_uuid_format(&u, out);
    return true;
}
