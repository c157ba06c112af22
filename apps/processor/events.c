/* events.c - see events.h. */
#include "events.h"

#include <stdlib.h>
#include <string.h>

struct events {
    struct bus *bus;
    char *stream;
    char maxlen_text[24]; /* XADD MAXLEN ~ <this> */
    struct sb_log *log;
    struct metric *m_emitted; /* processor_events_total{type,result} */
};

struct events *events_new(struct bus *bus, const char *stream, long maxlen, struct metrics *metrics,
                          struct sb_log *log)
{
    if (maxlen < 1)
        return NULL;
    struct events *ev = calloc(1, sizeof *ev);
    if (!ev)
        return NULL;
    ev->bus = bus;
    ev->stream = strdup(stream);
    snprintf(ev->maxlen_text, sizeof ev->maxlen_text, "%ld", maxlen);
    ev->log = log;
    ev->m_emitted = metrics_counter(metrics, "processor_events_total",
                                    "Domain events published, by type and result.", "type,result");
    if (!ev->stream) {
        free(ev);
        return NULL;
    }
    return ev;
}

void events_free(struct events *ev)
{
    if (!ev)
        return;
    free(ev->stream);
    free(ev);
}

void events_emit(struct events *ev, json_t *envelope)
{
    struct events_batch b;
    events_batch_init(&b, ev);
    events_batch_add(&b, envelope);
    events_batch_flush(&b);
}

void events_batch_init(struct events_batch *b, struct events *ev)
{
    b->ev = ev;
    b->n = 0;
}

void events_batch_add(struct events_batch *b, json_t *envelope)
{
    if (!envelope)
        return;
    if (b->n == EVENTS_BATCH_MAX)
        events_batch_flush(b);
    b->env[b->n++] = envelope;
}

/* One event's two commands. */
struct wire {
    char *text;
    char channel[96];
    const char *publish[3];
    const char *xadd[12];
};

static int prepare_wire(struct events *ev, json_t *envelope, struct wire *w, const char **type)
{
    const char *tenant = json_string_value(json_object_get(envelope, "tenant_id"));
    *type = json_string_value(json_object_get(envelope, "type"));
    w->text = json_dumps(envelope, JSON_COMPACT);
    if (!w->text || !*type || !tenant)
        return -ENOMEM;
    if (strlen(w->text) > BUS_FIELD_VALUE_MAX_BYTES)
        return SB_ELIMIT; /* stream readers would not take it */
    snprintf(w->channel, sizeof w->channel, "sabia:events:%s", tenant);
    w->publish[0] = "PUBLISH";
    w->publish[1] = w->channel;
    w->publish[2] = w->text;
    const char *x[] = {"XADD", ev->stream, "MAXLEN", "~", ev->maxlen_text, "*",
                       "type", *type, "tenant_id", tenant, "event", w->text};
    memcpy(w->xadd, x, sizeof x);
    return 0;
}

void events_batch_flush(struct events_batch *b)
{
    struct events *ev = b->ev;
    size_t n = b->n;
    if (n == 0)
        return;
    struct wire w[EVENTS_BATCH_MAX];
    const char *types[EVENTS_BATCH_MAX];
    bool ok[EVENTS_BATCH_MAX];
    const char **argvs[2 * EVENTS_BATCH_MAX];
    int argcs[2 * EVENTS_BATCH_MAX];
    redisReply *replies[2 * EVENTS_BATCH_MAX];
    size_t ncmd = 0;
    for (size_t i = 0; i < n; i++) {
        memset(&w[i], 0, sizeof w[i]);
        int wrc = prepare_wire(ev, b->env[i], &w[i], &types[i]);
        ok[i] = wrc == 0;
        if (!ok[i]) {
            sb_log_warn(ev->log, NULL, "event %s not published: %s", types[i] ? types[i] : "?",
                        sb_strerror(wrc));
            continue;
        }
        argvs[ncmd] = w[i].publish;
        argcs[ncmd++] = 3;
        argvs[ncmd] = w[i].xadd;
        argcs[ncmd++] = 12;
    }
    int rc = ncmd ? bus_pipeline(ev->bus, ncmd, argcs, argvs, replies) : 0;
    for (size_t i = 0, k = 0; i < n; i++) {
        bool published = ok[i] && rc == 0;
        if (ok[i] && rc == 0) { /* PUBLISH answers a count, XADD an id */
            published = replies[k]->type == REDIS_REPLY_INTEGER &&
                        replies[k + 1]->type == REDIS_REPLY_STRING;
            freeReplyObject(replies[k]);
            freeReplyObject(replies[k + 1]);
        }
        k += ok[i] ? 2 : 0;
        const char *labels[] = {types[i] ? types[i] : "unknown", published ? "published" : "failed"};
        metric_add(ev->m_emitted, labels, 1);
        if (!published && ok[i])
            sb_log_warn(ev->log, NULL, "event %s not published: %s", types[i] ? types[i] : "?",
                        sb_strerror(rc != 0 ? rc : SB_EREDIS));
        free(w[i].text);
        json_decref(b->env[i]); /* after the last use of types[i] */
    }
    b->n = 0;
}
