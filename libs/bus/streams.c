/* stream.c - Redis Streams with consumer groups on top of bus_command():
 * XADD, XGROUP CREATE, XREADGROUP, XACK and XAUTOCLAIM, plus the copying of
 * entries out of hiredis replies under the BUS_ENTRY_* / BUS_FIELD_* limits
 * (a hostile entry is flagged `oversized`, never copied). hiredis 0.14 has
 * no reply size limit of its own, so a reply is bounded only by COUNT and the
 * server's proto-max-bulk-len; these limits bound what callers receive. */
#include <stdlib.h>
#include <string.h>

#include "bus.h"

/* ---------------------------------------------------------------- helpers */

static bool stream_key_ok(const char *s)
{
    return s && s[0] && strnlen(s, BUS_KEY_MAX_BYTES + 1) <= BUS_KEY_MAX_BYTES;
}

static bool stream_id_ok(const char *s)
{
    return s && s[0] && strnlen(s, BUS_ID_MAX_BYTES + 1) <= BUS_ID_MAX_BYTES;
}

/* Copies a string reply that must be a short id into out. */
static int stream_copy_id(const redisReply *r, char out[BUS_ID_MAX_BYTES + 1])
{
    if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)
        return SB_EREDIS;
    if (r->len == 0 || r->len > BUS_ID_MAX_BYTES || memchr(r->str, '\0', r->len))
        return SB_EREDIS;
    memcpy(out, r->str, r->len);
    out[r->len] = '\0';
    return 0;
}

/* Runs a command and turns error replies into codes (NOGROUP: SB_ENOTFOUND). */
static int stream_run(struct bus *b, int timeout_ms, int argc, const char **argv,
                      const size_t *argvlen, redisReply **reply)
{
    int rc = bus_command_timeout(b, timeout_ms, argc, argv, argvlen, reply);
    if (rc != 0)
        return rc;
    if ((*reply)->type != REDIS_REPLY_ERROR)
        return 0;
    rc = strncmp((*reply)->str, "NOGROUP", 7) == 0 ? SB_ENOTFOUND : SB_EREDIS;
    freeReplyObject(*reply);
    *reply = NULL;
    return rc;
}

/* ---------------------------------------------------------------- entries */

static void stream_entry_cleanup(struct bus_entry *e)
{
    free(e->names); /* one block holds the arrays and the strings */
    memset(e, 0, sizeof *e);
}

void bus_entries_free(struct bus_entry *entries, size_t n)
{
    if (!entries)
        return;
    for (size_t i = 0; i < n; i++)
        stream_entry_cleanup(&entries[i]);
    free(entries);
}

/* Checks a field array against the limits. Returns 0 (fits, *bytes set to
 * the string bytes needed), 1 (oversized) or SB_EREDIS (malformed). */
static int stream_fields_measure(const redisReply *f, size_t *bytes)
{
    if (f->elements % 2 != 0)
        return SB_EREDIS;
    if (f->elements / 2 > BUS_ENTRY_MAX_FIELDS)
        return 1;
    bool over = false;
    size_t total = 0;
    for (size_t i = 0; i < f->elements; i++) {
        const redisReply *s = f->element[i];
        if (s->type != REDIS_REPLY_STRING)
            return SB_EREDIS;
        size_t cap = i % 2 == 0 ? BUS_FIELD_NAME_MAX_BYTES : BUS_FIELD_VALUE_MAX_BYTES;
        if (s->len > cap)
            over = true;
        else
            total += s->len + 1;
    }
    if (over || total > BUS_ENTRY_MAX_BYTES + 2 * BUS_ENTRY_MAX_FIELDS)
        return 1;
    *bytes = total;
    return 0;
}

/* Copies the fields into one allocation: names[], values[], value_lens[], bytes. */
static int stream_fields_copy(const redisReply *f, size_t bytes, struct bus_entry *e)
{
    size_t n = f->elements / 2;
    if (n == 0)
        return 0;
    size_t arrays = n * (2 * sizeof(char *) + sizeof(size_t));
    char *block = malloc(arrays + bytes);
    if (!block)
        return -ENOMEM;
    e->names = (char **)(void *)block;
    e->values = e->names + n;
    e->value_lens = (size_t *)(void *)(e->values + n);
    char *p = block + arrays;
    for (size_t i = 0; i < f->elements; i++) {
        const redisReply *s = f->element[i];
        memcpy(p, s->str, s->len);
        p[s->len] = '\0';
        if (i % 2 == 0) {
            e->names[i / 2] = p;
        } else {
            e->values[i / 2] = p;
            e->value_lens[i / 2] = s->len;
        }
        p += s->len + 1;
    }
    e->nfields = n;
    return 0;
}

/* One [id, [name, value, ...] | nil] pair. */
static int stream_entry_parse(const redisReply *r, struct bus_entry *e)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return SB_EREDIS;
    int rc = stream_copy_id(r->element[0], e->id);
    if (rc != 0)
        return rc;
    const redisReply *f = r->element[1];
    if (f->type == REDIS_REPLY_NIL) {
        e->deleted = true;
        return 0;
    }
    if (f->type != REDIS_REPLY_ARRAY)
        return SB_EREDIS;
    size_t bytes = 0;
    rc = stream_fields_measure(f, &bytes);
    if (rc == 1) {
        e->oversized = true;
        return 0;
    }
    return rc == 0 ? stream_fields_copy(f, bytes, e) : rc;
}

/* An array of entries, at most `max` of them. */
static int stream_entries_parse(const redisReply *r, size_t max, struct bus_entry **out, size_t *n)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements > max)
        return SB_EREDIS;
    if (r->elements == 0)
        return 0;
    struct bus_entry *v = calloc(r->elements, sizeof *v);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < r->elements; i++) {
        int rc = stream_entry_parse(r->element[i], &v[i]);
        if (rc != 0) {
            bus_entries_free(v, i + 1);
            return rc;
        }
    }
    *out = v;
    *n = r->elements;
    return 0;
}

/* ---------------------------------------------------------------- commands */

int bus_stream_add(struct bus *b, const char *stream, long maxlen_approx, size_t nfields,
                   const char *const *fields, char id_out[BUS_ID_MAX_BYTES + 1])
{
    if (!b || !stream_key_ok(stream) || maxlen_approx < 0 || nfields == 0 || !fields)
        return -EINVAL;
    if (nfields > BUS_ENTRY_MAX_FIELDS)
        return SB_ELIMIT;
    size_t total = 0;
    for (size_t i = 0; i < 2 * nfields; i++) {
        if (!fields[i])
            return -EINVAL;
        size_t cap = i % 2 == 0 ? BUS_FIELD_NAME_MAX_BYTES : BUS_FIELD_VALUE_MAX_BYTES;
        size_t len = strnlen(fields[i], cap + 1);
        if (len > cap)
            return SB_ELIMIT;
        total += len + 1;
    }
    if (total > BUS_ENTRY_MAX_BYTES + 2 * BUS_ENTRY_MAX_FIELDS)
        return SB_ELIMIT;
    const char **argv = malloc((6 + 2 * nfields) * sizeof *argv);
    if (!argv)
        return -ENOMEM;
    char maxlen[24];
    int argc = 0;
    argv[argc++] = "XADD";
    argv[argc++] = stream;
    if (maxlen_approx > 0) {
        snprintf(maxlen, sizeof maxlen, "%ld", maxlen_approx);
        argv[argc++] = "MAXLEN";
        argv[argc++] = "~";
        argv[argc++] = maxlen;
    }
    argv[argc++] = "*";
    for (size_t i = 0; i < 2 * nfields; i++)
        argv[argc++] = fields[i];
    redisReply *r = NULL;
    int rc = stream_run(b, BUS_COMMAND_TIMEOUT_MS, argc, argv, NULL, &r);
    free(argv);
    if (rc != 0)
        return rc;
    char id[BUS_ID_MAX_BYTES + 1];
    rc = stream_copy_id(r, id);
    freeReplyObject(r);
    if (rc == 0 && id_out)
        memcpy(id_out, id, sizeof id);
    return rc;
}

int bus_group_create(struct bus *b, const char *stream, const char *group, const char *start_id)
{
    if (!b || !stream_key_ok(stream) || !stream_key_ok(group) || !stream_id_ok(start_id))
        return -EINVAL;
    const char *argv[] = {"XGROUP", "CREATE", stream, group, start_id, "MKSTREAM"};
    redisReply *r = NULL;
    int rc = bus_command(b, 6, argv, NULL, &r);
    if (rc != 0)
        return rc;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
        rc = SB_EREDIS;
    freeReplyObject(r);
    return rc;
}

/* XREADGROUP reply: nil, or [[stream, [entries]]]. */
static int stream_read_reply(const redisReply *r, size_t max, struct bus_entry **out, size_t *n)
{
    if (r->type == REDIS_REPLY_NIL)
        return 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1)
        return SB_EREDIS;
    const redisReply *s = r->element[0];
    if (s->type != REDIS_REPLY_ARRAY || s->elements != 2)
        return SB_EREDIS;
    return stream_entries_parse(s->element[1], max, out, n);
}

int bus_stream_read_group(struct bus *b, const char *stream, const char *group,
                          const char *consumer, const char *id, size_t max, long block_ms,
                          struct bus_entry **out, size_t *n)
{
    if (!out || !n)
        return -EINVAL;
    *out = NULL;
    *n = 0;
    if (!b || !stream_key_ok(stream) || !stream_key_ok(group) || !stream_key_ok(consumer) ||
        !stream_id_ok(id) || max < 1 || max > BUS_READ_MAX_COUNT || block_ms > BUS_BLOCK_MAX_MS)
        return -EINVAL;
    char count[24], block[24];
    snprintf(count, sizeof count, "%zu", max);
    const char *argv[12] = {"XREADGROUP", "GROUP", group, consumer, "COUNT", count};
    int argc = 6;
    int timeout_ms = BUS_COMMAND_TIMEOUT_MS;
    if (block_ms >= 0) {
        snprintf(block, sizeof block, "%ld", block_ms);
        argv[argc++] = "BLOCK";
        argv[argc++] = block;
        timeout_ms = block_ms == 0 ? 0 : (int)block_ms + BUS_COMMAND_TIMEOUT_MS;
    }
    argv[argc++] = "STREAMS";
    argv[argc++] = stream;
    argv[argc++] = id;
    redisReply *r = NULL;
    int rc = stream_run(b, timeout_ms, argc, argv, NULL, &r);
    if (rc != 0)
        return rc;
    rc = stream_read_reply(r, max, out, n);
    freeReplyObject(r);
    return rc;
}

int bus_stream_ack(struct bus *b, const char *stream, const char *group, const char *id)
{
    return bus_stream_ack_many(b, stream, group, &id, 1);
}

int bus_stream_ack_many(struct bus *b, const char *stream, const char *group,
                        const char *const *ids, size_t n)
{
    if (!b || !stream_key_ok(stream) || !stream_key_ok(group) || !ids || n > BUS_READ_MAX_COUNT)
        return -EINVAL;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!stream_id_ok(ids[i]))
            return -EINVAL;
    const char *argv[3 + BUS_READ_MAX_COUNT] = {"XACK", stream, group};
    memcpy(argv + 3, ids, n * sizeof *ids);
    redisReply *r = NULL;
    int rc = stream_run(b, BUS_COMMAND_TIMEOUT_MS, (int)(3 + n), argv, NULL, &r);
    if (rc != 0)
        return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        rc = SB_EREDIS;
    freeReplyObject(r);
    return rc;
}

/* XAUTOCLAIM reply: [cursor, [entries], [deleted ids]] (7.0+; 6.2 has no third). */
static int stream_claim_reply(struct bus *b, const redisReply *r, size_t max,
                              char next_start[BUS_ID_MAX_BYTES + 1], struct bus_entry **out,
                              size_t *n)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->elements > 3)
        return SB_EREDIS;
    char cursor[BUS_ID_MAX_BYTES + 1];
    int rc = stream_copy_id(r->element[0], cursor);
    if (rc != 0)
        return rc;
    if (r->elements == 3) {
        const redisReply *del = r->element[2];
        if (del->type != REDIS_REPLY_ARRAY)
            return SB_EREDIS;
        if (del->elements > 0)
            sb_log_warn(bus_log(b), NULL,
                        "%zu pending entries were deleted from the stream before being "
                        "acknowledged (trimmed?)",
                        del->elements);
    }
    rc = stream_entries_parse(r->element[1], max, out, n);
    if (rc == 0)
        memcpy(next_start, cursor, sizeof cursor);
    return rc;
}

int bus_stream_autoclaim(struct bus *b, const char *stream, const char *group, const char *consumer,
                         long min_idle_ms, const char *start, size_t max,
                         char next_start[BUS_ID_MAX_BYTES + 1], struct bus_entry **out, size_t *n)
{
    if (!out || !n)
        return -EINVAL;
    *out = NULL;
    *n = 0;
    if (!b || !stream_key_ok(stream) || !stream_key_ok(group) || !stream_key_ok(consumer) ||
        !stream_id_ok(start) || !next_start || min_idle_ms < 0 || max < 1 ||
        max > BUS_READ_MAX_COUNT)
        return -EINVAL;
    char idle[24], count[24];
    snprintf(idle, sizeof idle, "%ld", min_idle_ms);
    snprintf(count, sizeof count, "%zu", max);
    const char *argv[] = {"XAUTOCLAIM", stream, group, consumer, idle, start, "COUNT", count};
    redisReply *r = NULL;
    int rc = stream_run(b, BUS_COMMAND_TIMEOUT_MS, 8, argv, NULL, &r);
    if (rc != 0)
        return rc;
    rc = stream_claim_reply(b, r, max, next_start, out, n);
    freeReplyObject(r);
    return rc;
}
