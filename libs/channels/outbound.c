/* outbound.c - what Sabiá sends to customers' channels: per-channel text
 * limits and reply splitting, the Graph send URL, the WhatsApp Cloud API and
 * Instagram Send API request bodies (protocols.md §2.1, §3.2), and the
 * reading of their responses (§2.2, §2.3) into a retry decision. */
#include <string.h>

#include "internal.h"

size_t channels_text_limit(enum channel_type type)
{
    switch (type) {
    case CHANNEL_WHATSAPP:
        return CHANNELS_WA_TEXT_MAX;
    case CHANNEL_INSTAGRAM:
        return CHANNELS_IG_TEXT_MAX;
    case CHANNEL_WEB:
        return CHANNELS_WEB_OUT_MAX;
    }
    return 0;
}

int channels_text_split(enum channel_type type, const char *text, size_t len,
                        struct sb_str parts[DOMAIN_SPLIT_MAX_PARTS], size_t *nparts,
                        bool *truncated)
{
    size_t limit = channels_text_limit(type);
    if (limit == 0) {
        if (nparts)
            *nparts = 0;
        if (truncated)
            *truncated = false;
        return -EINVAL;
    }
    return domain_text_split(text, len, limit, parts, nparts, truncated);
}

/* ---------------------------------------------------------------- request */

/* One URL path segment we may paste into a URL: 1..CHANNELS_SEND_ID_MAX of [A-Za-z0-9._-]. */
static bool segment_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > CHANNELS_SEND_ID_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A recipient id: 1..CHANNELS_SEND_ID_MAX printable ASCII bytes, no spaces. */
static bool recipient_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > CHANNELS_SEND_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* Leaves `out` as it was at `start` when rc reports a failure. */
static int finish(struct sb_buf *out, size_t start, int rc)
{
    if (rc != 0 && out->len > start) {
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}

int channels_send_url(struct sb_buf *out, const char *base_url, const char *version,
                      const char *account_id)
{
    if (!out || !base_url || !segment_ok(version) || !segment_ok(account_id))
        return -EINVAL;
    size_t n = strlen(base_url);
    while (n > 0 && base_url[n - 1] == '/')
        n--;
    bool scheme = (n > 7 && strncmp(base_url, "http://", 7) == 0) ||
                  (n > 8 && strncmp(base_url, "https://", 8) == 0);
    if (!scheme || memchr(base_url, '?', n) || memchr(base_url, '#', n))
        return -EINVAL;
    size_t start = out->len;
    int rc = sb_buf_append(out, base_url, n);
    if (rc == 0)
        rc = sb_buf_appendf(out, "/%s/%s/messages", version, account_id);
    return finish(out, start, rc);
}

/* Checks a text part against the channel's limit. */
static int check_text(struct sb_str text, size_t limit)
{
    if (!text.ptr || text.len == 0)
        return -EINVAL;
    /* Each byte is at most one unit: no need to count short texts. */
    if (text.len > limit && domain_text_units(text.ptr, text.len) > limit)
        return SB_ELIMIT;
    return 0;
}

int channels_wa_text_body(struct sb_buf *out, const char *to, struct sb_str text,
                          const char *reply_to, bool preview_url)
{
    if (!out || !recipient_ok(to) || (reply_to && (!*reply_to || strlen(reply_to) > DOMAIN_ID_MAX)))
        return -EINVAL;
    int rc = check_text(text, CHANNELS_WA_TEXT_MAX);
    if (rc != 0)
        return rc;
    size_t start = out->len;
    rc = sb_buf_append_str(out, "{\"messaging_product\":\"whatsapp\","
                                "\"recipient_type\":\"individual\",\"to\":");
    if (rc == 0)
        rc = sb_buf_append_json_str(out, to, strlen(to));
    if (rc == 0)
        rc = sb_buf_appendf(out, ",\"type\":\"text\",\"text\":{\"preview_url\":%s,\"body\":",
                            preview_url ? "true" : "false");
    if (rc == 0)
        rc = sb_buf_append_json_str(out, text.ptr, text.len);
    if (rc == 0)
        rc = sb_buf_append_str(out, "}");
    if (rc == 0 && reply_to) {
        rc = sb_buf_append_str(out, ",\"context\":{\"message_id\":");
        if (rc == 0)
            rc = sb_buf_append_json_str(out, reply_to, strlen(reply_to));
        if (rc == 0)
            rc = sb_buf_append_str(out, "}");
    }
    if (rc == 0)
        rc = sb_buf_append_str(out, "}");
    return finish(out, start, rc);
}

int channels_ig_text_body(struct sb_buf *out, const char *recipient_id, struct sb_str text)
{
    if (!out || !recipient_ok(recipient_id))
        return -EINVAL;
    int rc = check_text(text, CHANNELS_IG_TEXT_MAX);
    if (rc != 0)
        return rc;
    size_t start = out->len;
    rc = sb_buf_append_str(out, "{\"recipient\":{\"id\":");
    if (rc == 0)
        rc = sb_buf_append_json_str(out, recipient_id, strlen(recipient_id));
    if (rc == 0)
        rc = sb_buf_append_str(out, "},\"message\":{\"text\":");
    if (rc == 0)
        rc = sb_buf_append_json_str(out, text.ptr, text.len);
    if (rc == 0)
        rc = sb_buf_append_str(out, "}}");
    return finish(out, start, rc);
}

/* ---------------------------------------------------------------- response */

static const char *get_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static void read_error(const json_t *e, struct channels_send_result *out)
{
    const json_t *code = json_object_get(e, "code");
    const json_t *sub = json_object_get(e, "error_subcode");
    const json_t *data = json_object_get(e, "error_data");
    out->code = json_is_integer(code) ? (long)json_integer_value(code) : DOMAIN_NO_CODE;
    out->subcode = json_is_integer(sub) ? (long)json_integer_value(sub) : DOMAIN_NO_CODE;
    domain_str_copy(out->error_type, sizeof out->error_type, get_str(e, "type"));
    domain_str_copy(out->error_message, sizeof out->error_message, get_str(e, "message"));
    domain_str_copy(out->error_details, sizeof out->error_details,
                    json_is_string(data) ? json_string_value(data) : get_str(data, "details"));
    domain_str_copy(out->fbtrace_id, sizeof out->fbtrace_id, get_str(e, "fbtrace_id"));
}

/* The id of an accepted send, and the recipient as the provider knows it. */
static void read_success(enum channel_type type, const json_t *root,
                         struct channels_send_result *out)
{
    const json_t *id, *recipient;
    if (type == CHANNEL_WHATSAPP) {
        id = json_object_get(json_array_get(json_object_get(root, "messages"), 0), "id");
        recipient = json_object_get(json_array_get(json_object_get(root, "contacts"), 0), "wa_id");
    } else {
        id = json_object_get(root, "message_id");
        recipient = json_object_get(root, "recipient_id");
    }
    if (channels__json_id(id)) {
        channels__copy_id(out->message_id, json_string_value(id));
        domain_str_copy(out->recipient_id, sizeof out->recipient_id, json_string_value(recipient));
        out->ok = true;
    }
}

int channels_send_response_parse(enum channel_type type, long http_status, const char *body,
                                 size_t len, struct channels_send_result *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    out->http_status = http_status;
    out->code = out->subcode = DOMAIN_NO_CODE;
    if ((type != CHANNEL_WHATSAPP && type != CHANNEL_INSTAGRAM) || (!body && len > 0))
        return -EINVAL;
    json_t *root = NULL;
    if (body && len > 0 && channels__json_load(body, len, &root, NULL) != 0)
        root = NULL; /* not JSON (a proxy's HTML page...): judged by status alone */
    const json_t *e = json_object_get(root, "error");
    if (json_is_object(e))
        read_error(e, out);
    else if (root && http_status >= 200 && http_status <= 299)
        read_success(type, root, out);
    json_decref(root);
    if (out->ok)
        out->error_class = (struct domain_error_class){DOMAIN_FAIL, 0, 0, false, "accepted"};
    else
        out->error_class = domain_send_error_class(http_status, out->code);
    return 0;
}
