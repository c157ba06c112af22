/* events.c - see events.h. */
#include "events.h"

#include <stdlib.h>
#include <string.h>

struct events {
    struct bus *bus;
    char *stream;
    long maxlen;
    struct sb_log *log;
    struct metric *m_emitted; /* processor_events_total{type,result} */
};

struct events *events_new(struct bus *bus, const char *stream, long maxlen, struct metrics *metrics,
                          struct sb_log *log)
{
    struct events *ev = calloc(1, sizeof *ev);
    if (!ev)
        return NULL;
    ev->bus = bus;
    ev->stream = strdup(stream);
    ev->maxlen = maxlen;
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
    if (!envelope)
        return;
    const char *type = json_string_value(json_object_get(envelope, "type"));
    const char *tenant = json_string_value(json_object_get(envelope, "tenant_id"));
    char *text = json_dumps(envelope, JSON_COMPACT);
    int rc = text && type && tenant ? 0 : -ENOMEM;
    if (rc == 0) {
        char channel[96];
        snprintf(channel, sizeof channel, "sabia:events:%s", tenant);
        rc = bus_publish(ev->bus, channel, text, strlen(text), NULL);
        const char *fields[] = {"type", type, "tenant_id", tenant, "event", text};
        int rc2 = bus_stream_add(ev->bus, ev->stream, ev->maxlen, 3, fields, NULL);
        if (rc == 0)
            rc = rc2;
    }
    const char *labels[] = {type ? type : "unknown", rc == 0 ? "published" : "failed"};
    metric_add(ev->m_emitted, labels, 1);
    if (rc != 0)
        sb_log_warn(ev->log, NULL, "event %s not published: %s", type ? type : "?", sb_strerror(rc));
    free(text);
    json_decref(envelope);
}
