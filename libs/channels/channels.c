/* channels.c - channel type names, failure reporting and the entry point of
 * webhook inspection (depth check, parse, per-channel walk, dedup key). */
#include <stdio.h>
#include <string.h>

#include "channels.h"
#include "internal.h"

static const char *const type_names[] = {
    [CHANNEL_WHATSAPP] = "whatsapp",
    [CHANNEL_INSTAGRAM] = "instagram",
    [CHANNEL_WEB] = "web",
};

int channels_type_parse(const char *s, enum channel_type *out)
{
    if (!s || !out)
        return -EINVAL;
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++) {
        if (strcmp(s, type_names[i]) == 0) {
            *out = (enum channel_type)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *channels_type_name(enum channel_type t)
{
    if ((unsigned)t >= sizeof type_names / sizeof type_names[0])
        return "unknown";
    return type_names[t];
}

static void put_text(char *dst, size_t cap, const char *s)
{
    if (dst && cap > 0)
        snprintf(dst, cap, "%s", s);
}

static SB_PRINTF(4, 0) int fail_v(struct channels__err *err, int code, const char *reason,
                                  const char *fmt, va_list ap)
{
    if (err) {
        put_text(err->reason, err->reason_len, reason);
        if (err->detail && err->detail_len > 0)
            vsnprintf(err->detail, err->detail_len, fmt, ap);
    }
    return code;
}

int channels__fail(struct channels__err *err, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fail_v(err, SB_EPARSE, reason, fmt, ap);
    va_end(ap);
    return rc;
}

int channels__fail_code(struct channels__err *err, int code, const char *reason, const char *fmt,
                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fail_v(err, code, reason, fmt, ap);
    va_end(ap);
    return rc;
}

/* Meta's bodies (the gateway's bulk) are read from a tape, with no tree
 * built; the web widget's strict format is checked on a jansson tree. */
static int inspect_body(enum channel_type type, const char *body, size_t len,
                        struct channels_inspection *out, struct channels__keys *keys,
                        struct channels__err *err)
{
    if (type == CHANNEL_WEB) {
        json_t *root = NULL;
        int rc = channels__json_load(body, len, &root, err);
        if (rc == 0)
            rc = channels__web_inspect(root, out, keys, err);
        json_decref(root);
        return rc;
    }
    if (len >= CHANNELS__TAPE_MAX_LEN)
        return channels__fail(err, "too_large", "bodies of 2 GiB or more are not inspected");
    struct channels__tape t;
    channels__tape_init(&t);
    int rc = channels__tape_parse(&t, body, len, err);
    if (rc == 0 && !channels__tape_is(&t, 0, CHANNELS__TAPE_OBJECT))
        rc = channels__fail(err, "not_object", "the body must be a JSON object");
    if (rc == 0)
        rc = type == CHANNEL_WHATSAPP ? channels__wa_inspect(&t, out, keys, err)
                                      : channels__ig_inspect(&t, out, keys, err);
    channels__tape_cleanup(&t);
    return rc;
}

int channels_inspect(enum channel_type type, const char *body, size_t len,
                     struct channels_inspection *out, char *reason, size_t reason_len, char *detail,
                     size_t detail_len)
{
    struct channels__err err = {reason, reason_len, detail, detail_len};
    put_text(reason, reason_len, "");
    put_text(detail, detail_len, "");
    if (!out)
        return channels__fail_code(&err, -EINVAL, "internal", "no output structure given");
    memset(out, 0, sizeof *out);
    if (!body && len > 0)
        return channels__fail_code(&err, -EINVAL, "internal", "NULL body with a length");
    if ((unsigned)type > CHANNEL_WEB)
        return channels__fail_code(&err, -EINVAL, "internal", "unknown channel type %d", (int)type);

    struct channels__keys keys;
    channels__keys_init(&keys);
    int rc = inspect_body(type, body, len, out, &keys, &err);
    if (rc == 0) {
        rc = channels__keys_finish(&keys, body, len, out->dedup_key);
        if (rc != 0)
            channels__fail_code(&err, rc, "internal", "out of memory building the dedup key");
    }
    channels__keys_cleanup(&keys);
    if (rc != 0) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    put_text(reason, reason_len, "");
    put_text(detail, detail_len, "");
    return 0;
}
