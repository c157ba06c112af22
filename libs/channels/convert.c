/* convert.c - the entry point of payload conversion (channels_parse()), the
 * helpers the per-channel converters share (bounded ids and texts, metadata
 * copies, emitting events) and the conversion of web widget messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "internal.h"

#define HASHED_ID_MAX (sizeof "sha256:" + 2 * CRYPTO_SHA256_LEN) /* NUL included */

/* id itself, or "sha256:<hex>" of it when longer than DOMAIN_ID_MAX, in buf. */
static const char *bounded_id(const char *id, char buf[HASHED_ID_MAX])
{
    size_t n = strlen(id);
    if (n <= DOMAIN_ID_MAX)
        return id;
    uint8_t d[CRYPTO_SHA256_LEN];
    char hex[CRYPTO_HEX_SIZE(CRYPTO_SHA256_LEN)];
    crypto_sha256(id, n, d);
    if (crypto_hex_encode(d, sizeof d, hex, sizeof hex) != 0)
        hex[0] = '\0'; /* cannot happen: hex is exactly big enough */
    snprintf(buf, HASHED_ID_MAX, "sha256:%s", hex);
    return buf;
}

int channels__set_id(char **field, const char *id)
{
    if (!id)
        return 0;
    char buf[HASHED_ID_MAX];
    const char *v = bounded_id(id, buf);
    return domain_str_set(field, v, strlen(v), DOMAIN_ID_MAX);
}

void channels__copy_id(char dst[DOMAIN_ID_MAX + 1], const char *id)
{
    char buf[HASHED_ID_MAX];
    domain_str_copy(dst, DOMAIN_ID_MAX + 1, id ? bounded_id(id, buf) : "");
}

int channels__set_text(char **field, const char *s, size_t max)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    return domain_str_set(field, s, domain_utf8_prefix(s, n, max), max);
}

int channels__meta_copy(json_t *meta, const char *key, const json_t *v)
{
    if (!v)
        return 0;
    return channels__meta_set(meta, key, json_deep_copy(v));
}

int channels__meta_set(json_t *meta, const char *key, json_t *v)
{
    /* json_object_set_new() releases v when it fails, and fails on NULL v. */
    return json_object_set_new(meta, key, v) == 0 ? 0 : -ENOMEM;
}

int channels__emit(struct channels__conv *c, const struct channels_event *ev,
                   struct channels__err *err)
{
    if (ev->kind == CHANNELS_EVENT_MESSAGE) {
        const char *why = NULL;
        if (domain_message_validate(ev->message, &why) != 0)
            return channels__fail_code(err, -EINVAL, "internal", "converted message invalid: %s",
                                       why);
    }
    return c->fn(c->arg, ev);
}

/* ---------------------------------------------------------------- web widget */

static int web_fill(const json_t *root, struct domain_message *m)
{
    const char *visitor = json_string_value(json_object_get(root, "visitor_id"));
    const char *msg_id = json_string_value(json_object_get(root, "message_id"));
    const char *type = json_string_value(json_object_get(root, "type"));
    const json_t *who = json_object_get(root, "visitor");
    char id[2 * CHANNELS_WEB_ID_MAX + 2];
    snprintf(id, sizeof id, "%s:%s", visitor, msg_id); /* both checked: 1..128 bytes */
    const json_t *ts = json_object_get(root, "timestamp");
    m->timestamp_ms = json_is_integer(ts) ? (int64_t)json_integer_value(ts) : 0;
    int rc = channels__set_id(&m->provider_message_id, id);
    if (rc == 0)
        rc = channels__set_id(&m->contact_id, visitor);
    if (rc == 0)
        rc = channels__set_text(&m->contact_name, json_string_value(json_object_get(who, "name")),
                                DOMAIN_NAME_MAX);
    if (rc == 0)
        rc = channels__set_text(&m->contact_email, json_string_value(json_object_get(who, "email")),
                                DOMAIN_EMAIL_MAX);
    if (rc != 0)
        return rc;
    if (strcmp(type, "text") == 0)
        return channels__set_text(&m->text, json_string_value(json_object_get(root, "text")),
                                  DOMAIN_TEXT_MAX);
    m->type = strcmp(type, "image") == 0 ? DOMAIN_TYPE_IMAGE : DOMAIN_TYPE_DOCUMENT;
    rc = channels__set_text(&m->text, json_string_value(json_object_get(root, "caption")),
                            DOMAIN_TEXT_MAX);
    if (rc == 0)
        rc = channels__meta_copy(m->metadata, "url", json_object_get(root, "url"));
    return rc;
}

int channels__web_convert(const json_t *root, struct channels__conv *c, struct channels__err *err)
{
    /* The same strict validation as the gateway's inspection. */
    struct channels_inspection seen;
    struct channels__keys keys;
    memset(&seen, 0, sizeof seen);
    channels__keys_init(&keys);
    int rc = channels__web_inspect(root, &seen, &keys, err);
    channels__keys_cleanup(&keys);
    if (rc != 0)
        return rc;
    struct domain_message m;
    if ((rc = domain_message_init(&m)) != 0)
        return channels__fail_code(err, rc, "internal", "out of memory converting");
    rc = web_fill(root, &m);
    if (rc != 0) {
        rc = channels__fail_code(err, rc, "internal", "out of memory converting");
    } else {
        struct channels_event ev = {.kind = CHANNELS_EVENT_MESSAGE, .message = &m, .raw = root};
        rc = channels__emit(c, &ev, err);
    }
    domain_message_cleanup(&m);
    return rc;
}

/* ---------------------------------------------------------------- entry point */

static int accept_wa(void *ctx, const struct channels__wa_item *it, struct channels__err *err)
{
    (void)ctx, (void)it, (void)err;
    return 0;
}

static int accept_ig(void *ctx, const struct channels__ig_item *it, struct channels__err *err)
{
    (void)ctx, (void)it, (void)err;
    return 0;
}

/* A walk that only checks the shape, so that a body with a bad item
 * anywhere reports nothing at all (the walk is cheap next to the parse). */
static int check_shape(enum channel_type type, const json_t *root, struct channels__err *err)
{
    if (type == CHANNEL_WHATSAPP)
        return channels__wa_walk(root, accept_wa, NULL, err);
    if (type == CHANNEL_INSTAGRAM)
        return channels__ig_walk(root, accept_ig, NULL, err);
    return 0; /* web: validated whole before its one message is built */
}

static int convert(enum channel_type type, const json_t *root, struct channels__conv *c,
                   struct channels__err *err)
{
    switch (type) {
    case CHANNEL_WHATSAPP:
        return channels__wa_convert(root, c, err);
    case CHANNEL_INSTAGRAM:
        return channels__ig_convert(root, c, err);
    case CHANNEL_WEB:
        return channels__web_convert(root, c, err);
    }
    return -EINVAL;
}

int channels_parse(enum channel_type type, const char *body, size_t len, channels_parse_fn fn,
                   void *arg, struct channels_parse_error *perr)
{
    struct channels__err err = {NULL, 0, NULL, 0};
    if (perr) {
        memset(perr, 0, sizeof *perr);
        err = (struct channels__err){perr->reason, sizeof perr->reason, perr->detail,
                                     sizeof perr->detail};
    }
    if (!fn || (!body && len > 0))
        return channels__fail_code(&err, -EINVAL, "internal", "no callback, or NULL body");
    if ((unsigned)type > CHANNEL_WEB)
        return channels__fail_code(&err, -EINVAL, "internal", "unknown channel type %d", (int)type);
    json_t *root = NULL;
    int rc = channels__json_load(body, len, &root, &err);
    if (rc != 0)
        return rc;
    struct channels__conv c = {fn, arg};
    rc = check_shape(type, root, &err);
    if (rc == 0)
        rc = convert(type, root, &c, &err);
    json_decref(root);
    return rc;
}
