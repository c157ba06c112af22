/* json.c - bounded JSON intake: a raw nesting-depth scan that runs before
 * jansson ever sees the bytes (jansson recurses once per level), parsing
 * with precise failure reasons, and the id check used for dedup key items. */
#include <string.h>

#include "channels.h"
#include "internal.h"

int channels_json_check_depth(const char *body, size_t len, unsigned max_depth)
{
    if (!body)
        return len > 0 ? -EINVAL : 0;
    size_t depth = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return SB_ELIMIT;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

/* Copies jansson's message, which may quote input bytes, as printable ASCII. */
static void printable_copy(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    dst[i] = '\0';
}

int channels__json_precheck(const char *body, size_t len, struct channels__err *err)
{
    if (len == 0)
        return channels__fail(err, "empty_body", "the body is empty");
    if (channels_json_check_depth(body, len, CHANNELS_MAX_DEPTH) != 0)
        return channels__fail(err, "too_deep", "JSON nesting is deeper than %d levels",
                              CHANNELS_MAX_DEPTH);
    return 0;
}

int channels__json_load(const char *body, size_t len, json_t **root, struct channels__err *err)
{
    *root = NULL;
    int rc = channels__json_precheck(body, len, err);
    if (rc != 0)
        return rc;
    json_error_t jerr;
    /* Flags: scalars are decoded so that they can be refused with a precise
     * reason; NUL bytes inside strings stay refused (no JSON_ALLOW_NUL);
     * duplicate keys are tolerated (the last one wins), as Meta does not
     * promise their absence. */
    json_t *v = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
    if (!v) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return channels__fail_code(err, -ENOMEM, "internal", "out of memory parsing JSON");
        char text[JSON_ERROR_TEXT_LENGTH];
        printable_copy(text, sizeof text, jerr.text);
        return channels__fail(err, "invalid_json", "invalid JSON at byte %d: %s", jerr.position,
                              text);
    }
    if (!json_is_object(v)) {
        json_decref(v);
        return channels__fail(err, "not_object", "the body must be a JSON object");
    }
    *root = v;
    return 0;
}

const char *channels__json_id(const json_t *v)
{
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > CHANNELS_ID_MAX || strlen(s) != n)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return NULL;
    }
    return s;
}

int channels__json_envelope(const json_t *root, const char *object, const json_t **entries,
                            struct channels__err *err)
{
    const json_t *obj = json_object_get(root, "object");
    if (!json_is_string(obj) || strcmp(json_string_value(obj), object) != 0)
        return channels__fail(err, "wrong_object", "the \"object\" field must be \"%s\"", object);
    const json_t *entry = json_object_get(root, "entry");
    if (!json_is_array(entry) || json_array_size(entry) == 0)
        return channels__fail(err, "missing_entry", "\"entry\" must be a non-empty array");
    if (json_array_size(entry) > CHANNELS_MAX_ITEMS)
        return channels__fail(err, "too_many_items", "more than %d entries in one payload",
                              CHANNELS_MAX_ITEMS);
    *entries = entry;
    return 0;
}

int channels__tape_envelope(const struct channels__tape *t, const char *object, uint32_t *entries,
                            struct channels__err *err)
{
    struct channels__tape_str ob;
    const char *obj = channels__tape_str(t, channels__tape_get(t, 0, "object"), &ob);
    bool same = obj && strcmp(obj, object) == 0;
    channels__tape_str_free(&ob);
    if (ob.oom)
        return channels__tape_oom(err);
    if (!same)
        return channels__fail(err, "wrong_object", "the \"object\" field must be \"%s\"", object);
    uint32_t entry = channels__tape_get(t, 0, "entry");
    if (!channels__tape_is(t, entry, CHANNELS__TAPE_ARRAY) || channels__tape_size(t, entry) == 0)
        return channels__fail(err, "missing_entry", "\"entry\" must be a non-empty array");
    if (channels__tape_size(t, entry) > CHANNELS_MAX_ITEMS)
        return channels__fail(err, "too_many_items", "more than %d entries in one payload",
                              CHANNELS_MAX_ITEMS);
    *entries = entry;
    return 0;
}
