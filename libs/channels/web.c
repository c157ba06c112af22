/* web.c - Sabiá's web widget inbound messages: strict validation of the
 * format defined in docs/web-widget.md (we own it, so anything not listed
 * there is refused) and its dedup key item. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

#define WEB_TIMESTAMP_MAX  253402300799999LL /* 9999-12-31T23:59:59.999Z in ms */
#define WEB_FIELD_ECHO_MAX 40                /* bytes of an unknown field name quoted back */

/* The rules quoted back in details (one literal each, for format checking). */
#define ID_RULE "\"%s\" must be a string of 1..%d characters from [A-Za-z0-9_-]"
#define URL_RULE                                                                                   \
    "\"url\" must be an https URL of at most %d printable ASCII bytes with a host and no"          \
    " user information"
#define EMAIL_RULE                                                                                 \
    "\"visitor.email\" must be an address local@domain of at most %d bytes, no spaces"

/* Quotes an unknown field name back as printable ASCII, shortened. */
static void field_echo(const char *key, char out[WEB_FIELD_ECHO_MAX + 4])
{
    size_t i = 0;
    for (; key[i] && i < WEB_FIELD_ECHO_MAX; i++) {
        unsigned char c = (unsigned char)key[i];
        out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    snprintf(out + i, 4, "%s", key[i] ? "..." : "");
}

static bool is_id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static int check_id(const json_t *root, const char *name, const char **out,
                    struct channels__err *err)
{
    const json_t *v = json_object_get(root, name);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    bool ok = s && n > 0 && n <= CHANNELS_WEB_ID_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = is_id_char(s[i]);
    if (!ok)
        return channels__fail(err, "invalid_web_message", ID_RULE, name, CHANNELS_WEB_ID_MAX);
    *out = s;
    return 0;
}

/* Optional (or required) string field of min..max bytes. */
static int check_text(const json_t *obj, const char *prefix, const char *name, bool required,
                      size_t max, struct channels__err *err)
{
    const json_t *v = json_object_get(obj, name);
    if (!v && !required)
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max)
        return channels__fail(
            err, "invalid_web_message", "\"%s%s\" must be a string of 1..%zu bytes%s", prefix, name,
            max, json_is_string(v) && json_string_length(v) > max ? " (too long)" : "");
    return 0;
}

static int check_url(const json_t *root, struct channels__err *err)
{
    const json_t *v = json_object_get(root, "url");
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    bool ok = s && n > 8 && n <= CHANNELS_WEB_URL_MAX && strncasecmp(s, "https://", 8) == 0;
    for (size_t i = 0; ok && i < n; i++)
        ok = (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f;
    if (ok) {
        size_t host = strcspn(s + 8, "/?#");
        ok = host > 0 && !memchr(s + 8, '@', host);
    }
    if (!ok)
        return channels__fail(err, "invalid_web_message", URL_RULE, CHANNELS_WEB_URL_MAX);
    return 0;
}

static int check_email(const json_t *visitor, struct channels__err *err)
{
    const json_t *v = json_object_get(visitor, "email");
    if (!v)
        return 0;
    const char *s = json_string_value(v);
    const char *at = s ? strchr(s, '@') : NULL;
    bool ok = at && at != s && at[1] != '\0' && !strchr(at + 1, '@') &&
              json_string_length(v) <= CHANNELS_WEB_EMAIL_MAX;
    for (const char *p = s; ok && *p; p++)
        ok = (unsigned char)*p > 0x20 && (unsigned char)*p != 0x7f;
    if (!ok)
        return channels__fail(err, "invalid_web_message", EMAIL_RULE, CHANNELS_WEB_EMAIL_MAX);
    return 0;
}

static int check_fields(const json_t *obj, const char *const *allowed, size_t nallowed,
                        const char *where, struct channels__err *err)
{
    for (void *it = json_object_iter((json_t *)obj); it;
         it = json_object_iter_next((json_t *)obj, it)) {
        const char *key = json_object_iter_key(it);
        bool ok = false;
        for (size_t i = 0; i < nallowed && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            char name[WEB_FIELD_ECHO_MAX + 4];
            field_echo(key, name);
            return channels__fail(err, "invalid_web_message", "unknown field \"%s\"%s", name,
                                  where);
        }
    }
    return 0;
}

static int check_visitor(const json_t *root, struct channels__err *err)
{
    static const char *const allowed[] = {"name", "email"};
    const json_t *visitor = json_object_get(root, "visitor");
    if (!visitor)
        return 0;
    if (!json_is_object(visitor))
        return channels__fail(err, "invalid_web_message", "\"visitor\" must be an object");
    int rc = check_fields(visitor, allowed, 2, " in \"visitor\"", err);
    if (rc == 0)
        rc = check_text(visitor, "visitor.", "name", false, CHANNELS_WEB_NAME_MAX, err);
    if (rc == 0)
        rc = check_email(visitor, err);
    return rc;
}

static int check_timestamp(const json_t *root, struct channels__err *err)
{
    const json_t *v = json_object_get(root, "timestamp");
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
        json_integer_value(v) > WEB_TIMESTAMP_MAX)
        return channels__fail(err, "invalid_web_message",
                              "\"timestamp\" must be an integer of Unix milliseconds in 1..%lld",
                              WEB_TIMESTAMP_MAX);
    return 0;
}

/* "type" decides which content fields are required and which are refused. */
static int check_content(const json_t *root, struct channels__err *err)
{
    const char *type = json_string_value(json_object_get(root, "type"));
    if (!type)
        return channels__fail(err, "invalid_web_message",
                              "\"type\" must be \"text\", \"image\" or \"file\"");
    if (strcmp(type, "text") == 0) {
        if (json_object_get(root, "url") || json_object_get(root, "caption"))
            return channels__fail(err, "invalid_web_message",
                                  "a \"text\" message takes no \"url\" nor \"caption\"");
        return check_text(root, "", "text", true, CHANNELS_WEB_TEXT_MAX, err);
    }
    if (strcmp(type, "image") != 0 && strcmp(type, "file") != 0)
        return channels__fail(err, "invalid_web_message",
                              "\"type\" must be \"text\", \"image\" or \"file\"");
    if (json_object_get(root, "text"))
        return channels__fail(err, "invalid_web_message",
                              "a message of type \"%s\" takes \"caption\", not \"text\"", type);
    int rc = check_url(root, err);
    if (rc == 0)
        rc = check_text(root, "", "caption", false, CHANNELS_WEB_CAPTION_MAX, err);
    return rc;
}

int channels__web_inspect(const json_t *root, struct channels_inspection *out,
                          struct channels__keys *keys, struct channels__err *err)
{
    static const char *const allowed[] = {"visitor_id", "message_id", "type",      "text",
                                          "url",        "caption",    "timestamp", "visitor"};
    const char *visitor_id = NULL, *message_id = NULL;
    int rc = check_fields(root, allowed, sizeof allowed / sizeof allowed[0], "", err);
    if (rc == 0)
        rc = check_id(root, "visitor_id", &visitor_id, err);
    if (rc == 0)
        rc = check_id(root, "message_id", &message_id, err);
    if (rc == 0)
        rc = check_content(root, err);
    if (rc == 0)
        rc = check_timestamp(root, err);
    if (rc == 0)
        rc = check_visitor(root, err);
    if (rc != 0)
        return rc;
    out->messages = 1;
    snprintf(out->visitor_id, sizeof out->visitor_id, "%s", visitor_id); /* <= 128 checked */
    rc = channels__keys_addf(keys, "web:m:%s:%s", visitor_id, message_id);
    if (rc != 0)
        return channels__fail_code(err, rc, "internal", "out of memory collecting key items");
    return 0;
}
