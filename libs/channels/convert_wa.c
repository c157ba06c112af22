/* convert_wa.c - WhatsApp Cloud API webhooks into internal messages and
 * status updates: every message type of shared/reference/protocols.md §1.4
 * (unknown ones kept as "unsupported"), echoes from the business number,
 * contact names, reply context, and statuses[] with their errors (§1.5). */
#include <string.h>

#include "internal.h"

#define WA_TS_MAX  253402300799L /* 9999-12-31 in Unix seconds */
#define MALFORMED  1             /* a fill step's "the type object is unusable" */
#define JOINED_MAX 4096          /* bytes of a joined location / contacts text */

/* The timestamp of an item: a string (or number) of Unix seconds, in ms; 0 when absent. */
static int64_t wa_ts(const json_t *v)
{
    long sec = 0;
    if (json_is_integer(v))
        sec = (long)json_integer_value(v);
    else if (!json_is_string(v) || sb_parse_long(json_string_value(v), 0, WA_TS_MAX, &sec) != 0)
        return 0;
    return sec > 0 && sec <= WA_TS_MAX ? (int64_t)sec * 1000 : 0;
}

static const char *get_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* contacts[].profile.name of the contact whose wa_id is `wa_id`; the only
 * contact when there is exactly one and none matches. */
static const char *wa_contact_name(const json_t *value, const char *wa_id)
{
    const json_t *contacts = json_object_get(value, "contacts");
    size_t n = json_array_size(contacts);
    for (size_t i = 0; i < n && wa_id; i++) {
        const json_t *ct = json_array_get(contacts, i);
        const char *id = get_str(ct, "wa_id");
        if (id && strcmp(id, wa_id) == 0)
            return get_str(json_object_get(ct, "profile"), "name");
    }
    return n == 1 ? get_str(json_object_get(json_array_get(contacts, 0), "profile"), "name") : NULL;
}

static bool is_phone(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > DOMAIN_PHONE_MAX)
        return false;
    for (size_t i = s[0] == '+' ? 1 : 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > (s[0] == '+' ? 1u : 0u);
}

/* ---------------------------------------------------------------- per type */

/* Copies each listed member of obj that is present into the metadata. */
static int copy_members(json_t *meta, const json_t *obj, const char *const *keys, size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = channels__meta_copy(meta, keys[i], json_object_get(obj, keys[i]));
    return rc;
}

static int fill_text(const json_t *obj, struct domain_message *m)
{
    const char *body = get_str(obj, "body");
    return body ? channels__set_text(&m->text, body, DOMAIN_TEXT_MAX) : MALFORMED;
}

static int fill_media(const json_t *obj, struct domain_message *m)
{
    static const char *const keys[] = {"mime_type", "sha256", "url",
                                       "filename",  "voice",  "animated"};
    if (!json_is_object(obj))
        return MALFORMED;
    int rc = channels__meta_copy(m->metadata, "media_id", json_object_get(obj, "id"));
    if (rc == 0)
        rc = copy_members(m->metadata, obj, keys, sizeof keys / sizeof keys[0]);
    if (rc == 0)
        rc = channels__set_text(&m->text, get_str(obj, "caption"), DOMAIN_TEXT_MAX);
    return rc;
}

/* Joins up to two strings with a newline into the message text. */
static int set_joined(struct domain_message *m, const char *a, const char *b)
{
    struct sb_buf buf;
    sb_buf_init(&buf, JOINED_MAX);
    int rc = 0;
    if (a && *a)
        rc = sb_buf_append_str(&buf, a);
    if (rc == 0 && b && *b)
        rc = sb_buf_appendf(&buf, "%s%s", buf.len ? "\n" : "", b);
    if (rc == 0 || rc == SB_ELIMIT)
        rc = channels__set_text(&m->text, buf.data ? buf.data : "", JOINED_MAX);
    sb_buf_cleanup(&buf);
    return rc;
}

static int fill_location(const json_t *obj, struct domain_message *m)
{
    static const char *const keys[] = {"latitude", "longitude", "name", "address", "url"};
    if (!json_is_object(obj))
        return MALFORMED;
    int rc = copy_members(m->metadata, obj, keys, sizeof keys / sizeof keys[0]);
    return rc ? rc : set_joined(m, get_str(obj, "name"), get_str(obj, "address"));
}

/* "contacts" is an array of shared contact cards; the text lists their names. */
static int fill_contacts(const json_t *arr, struct domain_message *m)
{
    if (!json_is_array(arr))
        return MALFORMED;
    int rc = channels__meta_copy(m->metadata, "contacts", arr);
    struct sb_buf buf;
    sb_buf_init(&buf, JOINED_MAX);
    for (size_t i = 0; rc == 0 && i < json_array_size(arr); i++) {
        const char *name =
            get_str(json_object_get(json_array_get(arr, i), "name"), "formatted_name");
        if (name && sb_buf_appendf(&buf, "%s%s", buf.len ? ", " : "", name) != 0)
            break; /* the list is only a summary: stop at the limit */
    }
    if (rc == 0)
        rc = channels__set_text(&m->text, buf.data ? buf.data : "", JOINED_MAX);
    sb_buf_cleanup(&buf);
    return rc;
}

static int fill_interactive(const json_t *obj, struct domain_message *m)
{
    const char *sub = get_str(obj, "type");
    if (!sub)
        return MALFORMED;
    const json_t *reply = json_object_get(obj, sub);
    int rc = channels__meta_copy(m->metadata, "interactive_type", json_object_get(obj, "type"));
    if (rc != 0)
        return rc;
    if (!json_is_object(reply)) /* a kind we do not know: keep it whole */
        return channels__meta_copy(m->metadata, "interactive", obj);
    static const char *const keys[] = {"title", "description", "name", "response_json"};
    rc = channels__meta_copy(m->metadata, "interactive_id", json_object_get(reply, "id"));
    if (rc == 0)
        rc = copy_members(m->metadata, reply, keys, sizeof keys / sizeof keys[0]);
    if (rc == 0) {
        const char *title = get_str(reply, "title");
        rc = channels__set_text(&m->text, title ? title : get_str(reply, "body"), DOMAIN_TEXT_MAX);
    }
    return rc;
}

static int fill_button(const json_t *obj, struct domain_message *m)
{
    if (!json_is_object(obj))
        return MALFORMED;
    int rc = channels__meta_copy(m->metadata, "payload", json_object_get(obj, "payload"));
    if (rc == 0)
        rc = channels__meta_copy(m->metadata, "title", json_object_get(obj, "text"));
    if (rc == 0)
        rc = channels__set_text(&m->text, get_str(obj, "text"), DOMAIN_TEXT_MAX);
    return rc;
}

static int fill_reaction(const json_t *obj, struct domain_message *m)
{
    const char *target = get_str(obj, "message_id");
    if (!target)
        return MALFORMED;
    const char *emoji = get_str(obj, "emoji");
    char id[DOMAIN_ID_MAX + 1];
    channels__copy_id(id, target);
    int rc = channels__meta_set(m->metadata, "reaction_message_id", json_string(id));
    if (rc == 0 && emoji && *emoji)
        rc = channels__meta_copy(m->metadata, "emoji", json_object_get(obj, "emoji"));
    else if (rc == 0)
        rc = channels__meta_set(m->metadata, "removed", json_true());
    if (rc == 0)
        rc = channels__set_text(&m->text, emoji, DOMAIN_TEXT_MAX);
    return rc;
}

static int fill_system(const json_t *obj, struct domain_message *m)
{
    if (!json_is_object(obj))
        return MALFORMED;
    int rc = channels__meta_copy(m->metadata, "system_type", json_object_get(obj, "type"));
    if (rc == 0)
        rc = channels__meta_copy(m->metadata, "new_wa_id", json_object_get(obj, "wa_id"));
    if (rc == 0)
        rc = channels__set_text(&m->text, get_str(obj, "body"), DOMAIN_TEXT_MAX);
    return rc;
}

static int fill_template(const json_t *obj, struct domain_message *m)
{
    return obj ? channels__meta_copy(m->metadata, "template", obj) : MALFORMED;
}

static int fill_unsupported(const json_t *obj, struct domain_message *m)
{
    const char *inner = get_str(obj, "type");
    int rc = channels__meta_set(m->metadata, "original_type",
                                json_string(inner ? inner : "unsupported"));
    return rc ? rc : channels__meta_copy(m->metadata, "raw", obj);
}

struct wa_type {
    const char *name;
    enum domain_message_type type;
    int (*fill)(const json_t *obj, struct domain_message *m);
};

static const struct wa_type WA_TYPES[] = {
    {"text", DOMAIN_TYPE_TEXT, fill_text},
    {"image", DOMAIN_TYPE_IMAGE, fill_media},
    {"audio", DOMAIN_TYPE_AUDIO, fill_media},
    {"video", DOMAIN_TYPE_VIDEO, fill_media},
    {"document", DOMAIN_TYPE_DOCUMENT, fill_media},
    {"sticker", DOMAIN_TYPE_STICKER, fill_media},
    {"location", DOMAIN_TYPE_LOCATION, fill_location},
    {"contacts", DOMAIN_TYPE_CONTACTS, fill_contacts},
    {"interactive", DOMAIN_TYPE_INTERACTIVE, fill_interactive},
    {"button", DOMAIN_TYPE_BUTTON, fill_button},
    {"reaction", DOMAIN_TYPE_REACTION, fill_reaction},
    {"system", DOMAIN_TYPE_SYSTEM, fill_system},
    {"template", DOMAIN_TYPE_TEMPLATE, fill_template},
    {"unsupported", DOMAIN_TYPE_UNSUPPORTED, fill_unsupported},
};

/* Fills type and content; a type we do not know, or whose object is
 * unusable, becomes "unsupported" with what was received. */
static int wa_fill_type(const json_t *msg, struct domain_message *m)
{
    const char *type = get_str(msg, "type");
    const json_t *obj = type ? json_object_get(msg, type) : NULL;
    for (size_t i = 0; type && i < sizeof WA_TYPES / sizeof WA_TYPES[0]; i++) {
        if (strcmp(type, WA_TYPES[i].name) != 0)
            continue;
        m->type = WA_TYPES[i].type;
        int rc = WA_TYPES[i].fill(obj, m);
        if (rc != MALFORMED)
            return rc;
        if ((rc = channels__meta_set(m->metadata, "malformed", json_true())) != 0)
            return rc;
        break;
    }
    m->type = DOMAIN_TYPE_UNSUPPORTED;
    int rc = type ? channels__meta_set(m->metadata, "original_type", json_string(type)) : 0;
    if (rc == 0 && obj && !json_object_get(m->metadata, "raw"))
        rc = channels__meta_copy(m->metadata, "raw", obj);
    return rc;
}

/* reply_to, forwarding flags, referred product, ad referral, errors. */
static int wa_fill_context(const json_t *msg, struct domain_message *m)
{
    static const char *const keys[] = {"forwarded", "frequently_forwarded", "referred_product"};
    const json_t *ctx = json_object_get(msg, "context");
    int rc = channels__set_id(&m->reply_to, channels__json_id(json_object_get(ctx, "id")));
    if (rc == 0 && json_is_object(ctx))
        rc = copy_members(m->metadata, ctx, keys, sizeof keys / sizeof keys[0]);
    if (rc == 0 && json_is_object(ctx))
        rc = channels__meta_copy(m->metadata, "context_from", json_object_get(ctx, "from"));
    if (rc == 0)
        rc = channels__meta_copy(m->metadata, "referral", json_object_get(msg, "referral"));
    if (rc == 0)
        rc = channels__meta_copy(m->metadata, "errors", json_object_get(msg, "errors"));
    return rc;
}

static int wa_fill_message(const struct channels__wa_item *it, struct domain_message *m)
{
    const json_t *msg = it->item;
    m->echo = it->kind == CHANNELS__WA_ECHO;
    if (m->echo) {
        m->direction = DOMAIN_OUTBOUND;
        m->sender = DOMAIN_SENDER_HUMAN;
    }
    /* The customer: who wrote, or for an echo whom the business wrote to. */
    const char *customer = channels__json_id(json_object_get(msg, m->echo ? "to" : "from"));
    m->timestamp_ms = wa_ts(json_object_get(msg, "timestamp"));
    int rc = channels__set_id(&m->provider_message_id, it->id);
    if (rc == 0)
        rc = channels__set_id(&m->contact_id, customer);
    if (rc == 0 && !m->echo)
        rc = channels__set_text(&m->contact_name, wa_contact_name(it->value, customer),
                                DOMAIN_NAME_MAX);
    if (rc == 0 && is_phone(customer))
        rc = channels__set_text(&m->contact_phone, customer, DOMAIN_PHONE_MAX);
    if (rc == 0 && m->echo)
        rc = channels__meta_set(m->metadata, "is_echo", json_true());
    if (rc == 0)
        rc = wa_fill_context(msg, m);
    if (rc == 0)
        rc = wa_fill_type(msg, m);
    return rc;
}

/* ---------------------------------------------------------------- statuses */

/* Our vocabulary for a WhatsApp status string; false for others. */
static bool wa_status_of(const char *s, enum domain_status *out)
{
    if (strcmp(s, "played") == 0) { /* voice note played: it was read */
        *out = DOMAIN_STATUS_READ;
        return true;
    }
    return domain_status_parse(s, out) == 0 &&
           (*out == DOMAIN_STATUS_SENT || *out == DOMAIN_STATUS_DELIVERED ||
            *out == DOMAIN_STATUS_READ || *out == DOMAIN_STATUS_FAILED);
}

static void wa_fill_status(const struct channels__wa_item *it, struct domain_status_update *st)
{
    const json_t *s = it->item;
    channels__copy_id(st->provider_message_id, it->id);
    st->timestamp_ms = wa_ts(json_object_get(s, "timestamp"));
    domain_str_copy(st->recipient_id, sizeof st->recipient_id, get_str(s, "recipient_id"));
    const json_t *e = json_array_get(json_object_get(s, "errors"), 0);
    if (!json_is_object(e))
        return;
    const json_t *code = json_object_get(e, "code");
    const char *title = get_str(e, "title");
    const char *details = get_str(json_object_get(e, "error_data"), "details");
    st->has_error = true;
    st->error_code = json_is_integer(code) ? (long)json_integer_value(code) : DOMAIN_NO_CODE;
    domain_str_copy(st->error_title, sizeof st->error_title, title ? title : get_str(e, "message"));
    domain_str_copy(st->error_details, sizeof st->error_details,
                    details ? details : get_str(e, "message"));
}

/* ---------------------------------------------------------------- walk */

static int wa_convert_visit(void *ctx, const struct channels__wa_item *it,
                            struct channels__err *err)
{
    struct channels__conv *c = ctx;
    struct channels_event ev = {
        .raw = it->item,
        .account_id = get_str(json_object_get(it->value, "metadata"), "phone_number_id"),
    };
    if (it->kind == CHANNELS__WA_STATUS) {
        struct domain_status_update st;
        memset(&st, 0, sizeof st);
        if (!wa_status_of(it->status, &st.status)) {
            ev.kind = CHANNELS_EVENT_NOTICE;
            ev.notice = "status_other";
            return channels__emit(c, &ev, err);
        }
        wa_fill_status(it, &st);
        ev.kind = CHANNELS_EVENT_STATUS;
        ev.status = &st;
        return channels__emit(c, &ev, err);
    }
    if (it->kind == CHANNELS__WA_ERROR || it->kind == CHANNELS__WA_CHANGE) {
        ev.kind = CHANNELS_EVENT_NOTICE;
        ev.notice = it->kind == CHANNELS__WA_ERROR ? "error" : "change";
        return channels__emit(c, &ev, err);
    }
    struct domain_message m;
    int rc = domain_message_init(&m);
    if (rc == 0)
        rc = wa_fill_message(it, &m);
    if (rc != 0) {
        domain_message_cleanup(&m);
        return channels__fail_code(err, rc, "internal", "out of memory converting a message");
    }
    ev.kind = CHANNELS_EVENT_MESSAGE;
    ev.message = &m;
    rc = channels__emit(c, &ev, err);
    domain_message_cleanup(&m);
    return rc;
}

int channels__wa_convert(const json_t *root, struct channels__conv *c, struct channels__err *err)
{
    return channels__wa_walk(root, wa_convert_visit, c, err);
}
