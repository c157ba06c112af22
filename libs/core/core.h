/* core.h - the ground every Sabiá module stands on: error codes, bounded
 * buffers, string views, time, UUIDv7 ids, JSON logging and configuration
 * read from the environment (plus an optional .env file).
 *
 * Nothing here performs network I/O. All functions are thread-safe unless a
 * comment says otherwise. */
#ifndef SABIA_CORE_H
#define SABIA_CORE_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SB_MUST_USE __attribute__((warn_unused_result))
#define SB_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

/* ---------------------------------------------------------------- errors */

/* Actions return 0 on success or a negative code: either a negated errno
 * value (-ENOMEM, -EINVAL, -ETIMEDOUT, ...) or one of the codes below, which
 * live above the errno range. */
enum sb_err {
    SB_ELIMIT = -10001,   /* a named size limit would be exceeded */
    SB_EPARSE = -10002,   /* malformed input */
    SB_ECONFIG = -10003,  /* invalid configuration */
    SB_EDB = -10004,      /* PostgreSQL error */
    SB_EREDIS = -10005,   /* Redis error */
    SB_ENOTFOUND = -10006,/* no such thing */
    SB_ECONFLICT = -10007,/* unique or state conflict */
    SB_EUNAVAIL = -10008, /* a dependency is unavailable */
    SB_EAUTH = -10009,    /* authentication or signature failure */
    SB_ESHUTDOWN = -10010,/* the component is shutting down */
    SB_EWOULDBLOCK = -10011, /* the caller may not wait, and the answer needs waiting */
};

/* Returns a static, human-readable description of `code` (0 or negative). */
const char *sb_strerror(int code);

/* ---------------------------------------------------------------- strings */

/* A borrowed, not necessarily NUL-terminated, byte range. */
struct sb_str {
    const char *ptr;
    size_t len;
};

#define SB_STR_NULL ((struct sb_str){NULL, 0})
/* Borrows a NUL-terminated string (NULL gives an empty view). */
struct sb_str sb_str_c(const char *s);
bool sb_str_eq(struct sb_str a, struct sb_str b);
bool sb_str_eq_c(struct sb_str a, const char *s);
/* Returns a NUL-terminated heap copy of `s`, or NULL on allocation failure. */
char *sb_str_dup(struct sb_str s);

/* The value of one hexadecimal digit (either case), or -1. */
int sb_hex_value(int c);

/* Parses a whole decimal string into a long in [min, max]; no leading
 * whitespace, sign allowed. Returns 0, -EINVAL (not a number) or -ERANGE. */
int sb_parse_long(const char *s, long min, long max, long *out) SB_MUST_USE;

/* ---------------------------------------------------------------- buffers */

/* A growable byte buffer that refuses to grow past `max` bytes. Always kept
 * NUL-terminated (the terminator is not counted in len nor in max).
 * Caller-owned storage: sb_buf_init() / sb_buf_cleanup(). */
struct sb_buf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap;
    size_t max;
};

void sb_buf_init(struct sb_buf *b, size_t max);
/* Frees the storage; the buffer may be re-used after another sb_buf_init(). */
void sb_buf_cleanup(struct sb_buf *b);
/* Empties the buffer, keeping its storage. */
void sb_buf_reset(struct sb_buf *b);
/* Appends bytes. Returns 0, SB_ELIMIT (contents unchanged) or -ENOMEM. */
int sb_buf_append(struct sb_buf *b, const void *p, size_t n) SB_MUST_USE;
int sb_buf_append_str(struct sb_buf *b, const char *s) SB_MUST_USE;
int sb_buf_appendf(struct sb_buf *b, const char *fmt, ...) SB_PRINTF(2, 3) SB_MUST_USE;
int sb_buf_vappendf(struct sb_buf *b, const char *fmt, va_list ap) SB_PRINTF(2, 0) SB_MUST_USE;
/* Appends `s` as a JSON string literal, quotes included, escaping control
 * characters, quote and backslash. Invalid UTF-8 bytes become U+FFFD. */
int sb_buf_append_json_str(struct sb_buf *b, const char *s, size_t n) SB_MUST_USE;
/* Transfers ownership of the data to the caller (free() it) and resets the
 * buffer to empty. Returns an empty heap string when nothing was appended,
 * or NULL on allocation failure. */
char *sb_buf_steal(struct sb_buf *b);

/* ---------------------------------------------------------------- time */

/* Wall-clock milliseconds since the Unix epoch. */
int64_t sb_now_ms(void);
/* Monotonic milliseconds, for deadlines and durations. */
int64_t sb_mono_ms(void);
/* Writes an RFC 3339 UTC timestamp with milliseconds ("2026-11-22T10:00:00.123Z")
 * into out (at least SB_TIME_STRLEN bytes). */
#define SB_TIME_STRLEN 25
void sb_time_format(int64_t epoch_ms, char out[SB_TIME_STRLEN]);

/* ---------------------------------------------------------------- ids */

/* UUIDv7 (RFC 9562): 48-bit Unix ms timestamp, version 7, variant 10, then
 * random bits from the kernel. Ids made by one process are strictly
 * increasing in byte order, even within one millisecond. */
#define SB_UUID_STRLEN 37 /* 36 characters and the NUL */
struct sb_uuid {
    uint8_t b[16];
};
int sb_uuid_v7(struct sb_uuid *out) SB_MUST_USE;
void sb_uuid_format(const struct sb_uuid *u, char out[SB_UUID_STRLEN]);
/* Parses the canonical 8-4-4-4-12 hex form (either case). Returns 0 or SB_EPARSE. */
int sb_uuid_parse(const char *s, size_t n, struct sb_uuid *out) SB_MUST_USE;
/* True when `s` (n bytes) is a canonical UUID string of any version. */
bool sb_uuid_valid(const char *s, size_t n);
/* Convenience: a new UUIDv7 already formatted. Returns 0 or a negative code. */
int sb_uuid_v7_str(char out[SB_UUID_STRLEN]) SB_MUST_USE;

/* ---------------------------------------------------------------- logging */

enum sb_log_level { SB_LOG_DEBUG, SB_LOG_INFO, SB_LOG_WARN, SB_LOG_ERROR };

/* Per-call context carried into a log line; any field may be NULL. */
struct sb_log_ctx {
    const char *tenant_id;
    const char *correlation_id;
};

struct sb_log; /* opaque */

/* Creates a logger that writes one JSON object per line to `out` (borrowed,
 * must outlive the logger):
 *   {"time":"…","level":"info","service":"gateway","msg":"…",
 *    "tenant_id":"…","correlation_id":"…", <extra fields>}
 * Lines below `min_level` are dropped. Each line is written with a single
 * write so concurrent threads never interleave. NULL on allocation failure. */
struct sb_log *sb_log_new(const char *service, enum sb_log_level min_level, FILE *out);
void sb_log_free(struct sb_log *log);

/* Parses "debug", "info", "warn" or "error". Returns 0 or -EINVAL. */
int sb_log_level_parse(const char *s, enum sb_log_level *out) SB_MUST_USE;

/* Whether a line of `level` would be written: lets a caller skip building
 * fields nobody will read. False for a NULL `log`. */
bool sb_log_enabled(const struct sb_log *log, enum sb_log_level level);

/* Writes one line. `log` may be NULL (nothing is written); `ctx` may be NULL.
 * `fields` is NULL or a string of extra JSON members without braces, e.g.
 * "\"port\":3001,\"path\":\"/health\"", appended verbatim. */
void sb_log_write(struct sb_log *log, enum sb_log_level level, const struct sb_log_ctx *ctx,
                  const char *fields, const char *fmt, ...) SB_PRINTF(5, 6);

#define sb_log_debug(log, ctx, ...) sb_log_write(log, SB_LOG_DEBUG, ctx, NULL, __VA_ARGS__)
#define sb_log_info(log, ctx, ...) sb_log_write(log, SB_LOG_INFO, ctx, NULL, __VA_ARGS__)
#define sb_log_warn(log, ctx, ...) sb_log_write(log, SB_LOG_WARN, ctx, NULL, __VA_ARGS__)
#define sb_log_error(log, ctx, ...) sb_log_write(log, SB_LOG_ERROR, ctx, NULL, __VA_ARGS__)

/* ---------------------------------------------------------------- config */

enum sb_config_type { SB_CONFIG_STRING, SB_CONFIG_INT, SB_CONFIG_BOOL };

/* One recognised setting. Tables of these are static const in each app. */
struct sb_config_spec {
    const char *name;        /* environment variable, e.g. "SABIA_GATEWAY_PORT" */
    enum sb_config_type type;
    const char *default_value; /* NULL: required */
    long min, max;           /* bounds for SB_CONFIG_INT (inclusive) */
    bool secret;             /* never echoed back in errors or dumps */
    const char *help;        /* one line, shown in errors */
};

struct sb_config; /* opaque, read-only once loaded */

/* Loads every spec'd setting. Values come from the process environment first,
 * then from the .env file at `env_file` (KEY=VALUE lines, '#' comments,
 * optional "export ", single or double quotes; a missing file is fine when
 * `env_file` is NULL or the file does not exist), then from the default.
 * Validates types, bounds and required values. On failure returns NULL and
 * writes one clear sentence per problem into `err` (may be NULL), e.g.
 *   "SABIA_GATEWAY_PORT: must be an integer in [1, 65535], got \"abc\"". */
struct sb_config *sb_config_load(const struct sb_config_spec *specs, size_t nspecs,
                                 const char *env_file, struct sb_buf *err);
void sb_config_free(struct sb_config *cfg);

/* Accessors for spec'd names; asking for an unknown name or the wrong type
 * is a programming error and aborts. Returned strings live as long as cfg. */
const char *sb_config_str(const struct sb_config *cfg, const char *name);
long sb_config_int(const struct sb_config *cfg, const char *name);
bool sb_config_bool(const struct sb_config *cfg, const char *name);

#endif
