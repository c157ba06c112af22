/* sse.c - splits a text/event-stream body into events as the WHATWG
 * HTML standard describes (the decoder both provider SDKs use), fed in
 * arbitrary chunks. */
#include "internal.h"

#include <string.h>

void sse_init(struct sse *s, sse_event_fn fn, void *arg)
{
    memset(s, 0, sizeof *s);
    sb_buf_init(&s->line, LLM_MAX_SSE_LINE);
    sb_buf_init(&s->data, LLM_MAX_SSE_LINE);
    s->fn = fn;
    s->arg = arg;
}

void sse_cleanup(struct sse *s)
{
    sb_buf_cleanup(&s->line);
    sb_buf_cleanup(&s->data);
}

static int sse_dispatch(struct sse *s)
{
    int rc = 0;
    if (s->has_data) {
        /* Every data line appended a LF; the last one is not part of the data. */
        size_t n = s->data.len ? s->data.len - 1 : 0;
        const char *d = s->data.data ? s->data.data : "";
        if (s->data.data)
            s->data.data[n] = '\0';
        rc = s->fn(s->arg, s->event[0] ? s->event : "message", d, n);
    }
    sb_buf_reset(&s->data);
    s->has_data = false;
    s->event[0] = '\0';
    return rc;
}

static int sse_line(struct sse *s, const char *line, size_t n)
{
    if (n == 0)
        return sse_dispatch(s);
    if (line[0] == ':')
        return 0; /* comment, e.g. a keep-alive */
    const char *colon = memchr(line, ':', n);
    size_t flen = colon ? (size_t)(colon - line) : n;
    const char *value = colon ? colon + 1 : line + n;
    size_t vlen = (size_t)(line + n - value);
    if (vlen && value[0] == ' ') {
        value++;
        vlen--;
    }
    if (flen == 5 && memcmp(line, "event", 5) == 0) {
        size_t k = vlen < sizeof s->event - 1 ? vlen : sizeof s->event - 1;
        memcpy(s->event, value, k);
        s->event[k] = '\0';
    } else if (flen == 4 && memcmp(line, "data", 4) == 0) {
        int rc = sb_buf_append(&s->data, value, vlen);
        if (rc == 0)
            rc = sb_buf_append(&s->data, "\n", 1);
        if (rc != 0)
            return rc;
        s->has_data = true;
    }
    /* id, retry and unknown fields are ignored. */
    return 0;
}

int sse_feed(struct sse *s, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s->skip_lf) {
            s->skip_lf = false;
            if (p[i] == '\n') {
                i++;
                continue;
            }
        }
        size_t j = i;
        while (j < n && p[j] != '\n' && p[j] != '\r')
            j++;
        if (j > i) {
            int rc = sb_buf_append(&s->line, p + i, j - i);
            if (rc != 0)
                return rc;
        }
        if (j == n)
            break; /* the line continues in the next chunk */
        s->skip_lf = p[j] == '\r';
        int rc = sse_line(s, s->line.data ? s->line.data : "", s->line.len);
        sb_buf_reset(&s->line);
        if (rc != 0)
            return rc;
        i = j + 1;
    }
    return 0;
}
