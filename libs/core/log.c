/* log.c - one JSON object per line, written atomically under a lock. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core.h"

/* A message escapes to at most 6 bytes per input byte ("\u001f"), so an
 * 8 KiB message always fits a 64 KiB line with room for the other members. */
#define SB_LOG_LINE_MAX (64 * 1024) /* whole line, newline included */
#define SB_LOG_MSG_MAX (8 * 1024)   /* formatted message, before escaping */

struct sb_log {
    char *service;
    enum sb_log_level min_level;
    FILE *out;
    pthread_mutex_t lock; /* one line at a time */
};

static const char *const sb_log_level_names[] = {"debug", "info", "warn", "error"};

struct sb_log *sb_log_new(const char *service, enum sb_log_level min_level, FILE *out)
{
    struct sb_log *log = calloc(1, sizeof(*log));
    if (!log)
        return NULL;
    log->service = sb_str_dup(sb_str_c(service));
    if (!log->service || pthread_mutex_init(&log->lock, NULL) != 0) {
        free(log->service);
        free(log);
        return NULL;
    }
    log->min_level = min_level;
    log->out = out;
    return log;
}

void sb_log_free(struct sb_log *log)
{
    if (!log)
        return;
    pthread_mutex_destroy(&log->lock);
    free(log->service);
    free(log);
}

int sb_log_level_parse(const char *s, enum sb_log_level *out)
{
    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(sb_log_level_names) / sizeof(sb_log_level_names[0]); i++) {
        if (strcasecmp(s, sb_log_level_names[i]) == 0) {
            *out = (enum sb_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* Appends `"key":<json string>` preceded by a comma. */
static int sb_log_append_member(struct sb_buf *b, const char *key, const char *val)
{
    int rc = sb_buf_appendf(b, ",\"%s\":", key);
    if (rc == 0)
        rc = sb_buf_append_json_str(b, val, strlen(val));
    return rc;
}

/* Builds the whole line into `line`. `msg` is the formatted message. */
static int sb_log_build(const struct sb_log *log, struct sb_buf *line, enum sb_log_level level,
                        const struct sb_log_ctx *ctx, const char *fields, const char *msg,
                        size_t msg_len, bool truncated)
{
    char ts[SB_TIME_STRLEN];
    sb_time_format(sb_now_ms(), ts);
    int rc = sb_buf_appendf(line, "{\"time\":\"%s\",\"level\":\"%s\"", ts,
                            sb_log_level_names[level]);
    if (rc == 0)
        rc = sb_log_append_member(line, "service", log->service);
    if (rc == 0)
        rc = sb_buf_append_str(line, ",\"msg\":");
    if (rc == 0)
        rc = sb_buf_append_json_str(line, msg, msg_len);
    if (rc == 0 && truncated)
        rc = sb_buf_append_str(line, ",\"truncated\":true");
    if (rc == 0 && ctx && ctx->tenant_id)
        rc = sb_log_append_member(line, "tenant_id", ctx->tenant_id);
    if (rc == 0 && ctx && ctx->correlation_id)
        rc = sb_log_append_member(line, "correlation_id", ctx->correlation_id);
    if (rc == 0 && fields && fields[0])
        rc = sb_buf_appendf(line, ",%s", fields);
    if (rc == 0)
        rc = sb_buf_append(line, "}\n", 2);
    return rc;
}

bool sb_log_enabled(const struct sb_log *log, enum sb_log_level level)
{
    return log && level >= log->min_level && (unsigned)level <= SB_LOG_ERROR;
}

void sb_log_write(struct sb_log *log, enum sb_log_level level, const struct sb_log_ctx *ctx,
                  const char *fields, const char *fmt, ...)
{
    if (!sb_log_enabled(log, level))
        return;
    struct sb_buf msg, line;
    sb_buf_init(&msg, SB_LOG_MSG_MAX);
    sb_buf_init(&line, SB_LOG_LINE_MAX);
    va_list ap;
    va_start(ap, fmt);
    int rc = sb_buf_vappendf(&msg, fmt, ap);
    va_end(ap);
    bool truncated = false;
    if (rc == SB_ELIMIT) {
        /* Too long: keep the first SB_LOG_MSG_MAX bytes. */
        char *tmp = malloc(SB_LOG_MSG_MAX + 1);
        if (tmp) {
            va_start(ap, fmt);
            vsnprintf(tmp, SB_LOG_MSG_MAX + 1, fmt, ap);
            va_end(ap);
            rc = sb_buf_append(&msg, tmp, strlen(tmp));
            free(tmp);
        }
        truncated = true;
    }
    const char *m = msg.data ? msg.data : "";
    rc = sb_log_build(log, &line, level, ctx, fields, m, msg.len, truncated);
    if (rc < 0) {
        /* Over the line limit (huge ids or fields): drop the extras. */
        sb_buf_reset(&line);
        rc = sb_log_build(log, &line, level, NULL, NULL, m, msg.len, true);
    }
    if (rc == 0 && log->out) {
        pthread_mutex_lock(&log->lock);
        fwrite(line.data, 1, line.len, log->out);
        fflush(log->out);
        pthread_mutex_unlock(&log->lock);
    }
    sb_buf_cleanup(&msg);
    sb_buf_cleanup(&line);
}
