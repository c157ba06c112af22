/* convert_ig.c - Instagram messaging webhooks into internal messages and
 * status updates (shared/reference/protocols.md §3.1): text, attachments,
 * quick replies, echoes, reactions, postbacks, read and delivery reports.
 * Deletions, edits and other events are reported as notices. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define IG_TS_MAX    253402300799999LL      /* 9999-12-31 in Unix ms */
#define SYNTH_ID_MAX (CHANNELS_ID_MAX + 64) /* synthetic ids: a prefix, a number, an id */

static int64_t ig_ts(const json_t *ev)
{
    const json_t *v = json_object_get(ev, "timestamp");
    json_int_t t = json_is_integer(v) ? json_integer_value(v) : 0;
    return t > 0 && t <= IG_TS_MAX ? (int64_t)t : 0;
}

/* ev[who].id when it is a sane id, else NULL. */
static const char *ig_party(const json_t *ev, const char *who)
{
    return channels__json_id(json_object_get(json_object_get(ev, who), "id"));
}

static const char *get_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* The customer's side of an event: the sender, unless the business itself
 * sent it (an echo, or the account's id as sender), then the recipient. */
static int ig_set_parties(const struct channels__ig_item *it, struct domain_message *m, bool echo)
{
    const char *account = channels__json_id(json_object_get(it->entry, "id"));
    const char *sender = ig_party(it->event, "sender");
    echo = echo || (account && sender && strcmp(account, sender) == 0);
    m->timestamp_ms = ig_ts(it->event);
    int rc = 0;
    if (echo) {
        m->echo = true;
        m->direction = DOMAIN_OUTBOUND;
        m->sender = DOMAIN_SENDER_HUMAN;
        rc = channels__meta_set(m->metadata, "is_echo", json_true());
    }
    if (rc == 0 && it->standby)
        rc = channels__meta_set(m->metadata, "standby", json_true());
    if (rc == 0)
        rc = channels__set_id(&m->contact_id, echo ? ig_party(it->event, "recipient") : sender);
    return rc;
}

/* ---------------------------------------------------------------- messages */

static int ig_fill_attachments(const json_t *atts, struct domain_message *m)
{
    const json_t *first = json_array_get(atts, 0);
    const char *type = get_str(first, "type");
    const json_t *payload = json_object_get(first, "payload");
    int rc = channels__meta_copy(m->metadata, "attachments", atts);
    if (rc == 0)
        rc = channels__meta_copy(m->metadata, "url", json_object_get(payload, "url"));
    if (rc != 0)
        return rc;
    if (type && strcmp(type, "image") == 0) {
        m->type = json_object_get(payload, "sticker_id") ? DOMAIN_TYPE_STICKER : DOMAIN_TYPE_IMAGE;
    } else if (type && strcmp(type, "video") == 0) {
        m->type = DOMAIN_TYPE_VIDEO;
    } else if (type && strcmp(type, "audio") == 0) {
        m->type = DOMAIN_TYPE_AUDIO;
    } else if (type && strcmp(type, "file") == 0) {
        m->type = DOMAIN_TYPE_DOCUMENT;
    } else { /* share, story_mention, reel, ig_reel, ephemeral, unknown... */
        m->type = DOMAIN_TYPE_UNSUPPORTED;
        rc = channels__meta_set(m->metadata, "original_type",
                                json_string(type ? type : "attachment"));
    }
    return rc;
}

static int ig_fill_content(const json_t *msg, struct domain_message *m)
{
    const json_t *atts = json_object_get(msg, "attachments");
    const json_t *quick = json_object_get(msg, "quick_reply");
    const char *text = get_str(msg, "text");
    int rc = channels__set_text(&m->text, text, DOMAIN_TEXT_MAX);
    if (rc != 0)
        return rc;
    if (json_is_true(json_object_get(msg, "is_unsupported"))) {
        m->type = DOMAIN_TYPE_UNSUPPORTED;
        rc = channels__meta_set(m->metadata, "original_type", json_string("unsupported"));
        return rc ? rc : channels__meta_copy(m->metadata, "raw", msg);
    }
    if (json_array_size(atts) > 0)
        return ig_fill_attachments(atts, m);
    if (json_is_object(quick)) {
        m->type = DOMAIN_TYPE_BUTTON;
        rc = channels__meta_copy(m->metadata, "payload", json_object_get(quick, "payload"));
        return rc ? rc : channels__meta_copy(m->metadata, "title", json_object_get(msg, "text"));
    }
    if (text)
        return 0;
    m->type = DOMAIN_TYPE_UNSUPPORTED;
    rc = channels__meta_set(m->metadata, "original_type", json_string("message"));
    if (rc == 0)
        rc = channels__meta_set(m->metadata, "malformed", json_true());
    return rc ? rc : channels__meta_copy(m->metadata, "raw", msg);
}

static int ig_fill_message(const struct channels__ig_item *it, struct domain_message *m)
{
    const json_t *msg = json_object_get(it->event, "message");
    const json_t *reply = json_object_get(msg, "reply_to");
    int rc = ig_set_parties(it, m, it->kind == CHANNELS__IG_ECHO);
    if (rc == 0)
        rc = channels__set_id(&m->provider_message_id, it->mid);
    if (rc == 0)
        rc = channels__set_id(&m->reply_to, channels__json_id(json_object_get(reply, "mid")));
    if (rc == 0)
        rc = channels__meta_copy(m->metadata, "reply_to_story", json_object_get(reply, "story"));
    if (rc == 0)
        rc = channels__meta_copy(m->metadata, "referral", json_object_get(msg, "referral"));
    if (rc == 0 && m->echo)
        rc = channels__meta_copy(m->metadata, "app_id", json_object_get(msg, "app_id"));
    if (rc == 0)
        rc = ig_fill_content(msg, m);
    return rc;
}

static int ig_fill_reaction(const struct channels__ig_item *it, struct domain_message *m)
{
    const json_t *r = json_object_get(it->event, "reaction");
    const char *action = channels__json_id(json_object_get(r, "action"));
    const char *emoji = get_str(r, "emoji");
    bool removed = action && strcmp(action, "unreact") == 0;
    char id[SYNTH_ID_MAX], target[DOMAIN_ID_MAX + 1];
    m->type = DOMAIN_TYPE_REACTION;
    int rc = ig_set_parties(it, m, false);
    snprintf(id, sizeof id, "reaction:%s:%" PRId64 ":%s", removed ? "unreact" : "react",
             m->timestamp_ms, it->mid);
    channels__copy_id(target, it->mid);
    if (rc == 0)
        rc = channels__set_id(&m->provider_message_id, id);
    if (rc == 0)
        rc = channels__meta_set(m->metadata, "reaction_message_id", json_string(target));
    if (rc == 0)
        rc = channels__meta_copy(m->metadata, "reaction", json_object_get(r, "reaction"));
    if (rc == 0 && removed)
        rc = channels__meta_set(m->metadata, "removed", json_true());
    if (rc == 0 && !removed && emoji)
        rc = channels__meta_copy(m->metadata, "emoji", json_object_get(r, "emoji"));
    if (rc == 0 && !removed)
        rc = channels__set_text(&m->text, emoji, DOMAIN_TEXT_MAX);
    return rc;
}

static int ig_fill_postback(const struct channels__ig_item *it, struct domain_message *m)
{
    const json_t *p = json_object_get(it->event, "postback");
    char id[SYNTH_ID_MAX];
    m->type = DOMAIN_TYPE_BUTTON;
    int rc = ig_set_parties(it, m, false);
    if (it->mid) {
        snprintf(id, sizeof id, "%s", it->mid);
    } else {
        const char *sender = ig_party(it->event, "sender");
        snprintf(id, sizeof id, "postback:%s:%" PRId64, sender ? sender : "-", m->timestamp_ms);
    }
    if (rc == 0)
        rc = channels__set_id(&m->provider_message_id, id);
    if (rc == 0)
        rc = channels__meta_copy(m->metadata, "payload", json_object_get(p, "payload"));
    if (rc == 0)
        rc = channels__meta_copy(m->metadata, "title", json_object_get(p, "title"));
    if (rc == 0)
        rc = channels__set_text(&m->text, get_str(p, "title"), DOMAIN_TEXT_MAX);
    return rc;
}

/* ---------------------------------------------------------------- walk */

static int ig_emit_message(struct channels__conv *c, struct channels_event *ev,
                           const struct channels__ig_item *it, struct channels__err *err)
{
    struct domain_message m;
    int rc = domain_message_init(&m);
    if (rc == 0) {
        if (it->kind == CHANNELS__IG_REACTION)
            rc = ig_fill_reaction(it, &m);
        else if (it->kind == CHANNELS__IG_POSTBACK)
            rc = ig_fill_postback(it, &m);
        else
            rc = ig_fill_message(it, &m);
    }
    if (rc != 0) {
        domain_message_cleanup(&m);
        return channels__fail_code(err, rc, "internal", "out of memory converting a message");
    }
    ev->kind = CHANNELS_EVENT_MESSAGE;
    ev->message = &m;
    rc = channels__emit(c, ev, err);
    domain_message_cleanup(&m);
    return rc;
}

/* read -> READ, delivery -> DELIVERED for that mid; the reader is the sender. */
static int ig_emit_status(struct channels__conv *c, struct channels_event *ev,
                          const struct channels__ig_item *it, struct channels__err *err)
{
    struct domain_status_update st;
    memset(&st, 0, sizeof st);
    st.status = it->kind == CHANNELS__IG_READ ? DOMAIN_STATUS_READ : DOMAIN_STATUS_DELIVERED;
    st.timestamp_ms = ig_ts(it->event);
    channels__copy_id(st.provider_message_id, it->mid);
    domain_str_copy(st.recipient_id, sizeof st.recipient_id, ig_party(it->event, "sender"));
    ev->kind = CHANNELS_EVENT_STATUS;
    ev->status = &st;
    return channels__emit(c, ev, err);
}

static int ig_convert_visit(void *ctx, const struct channels__ig_item *it,
                            struct channels__err *err)
{
    struct channels__conv *c = ctx;
    struct channels_event ev = {
        .kind = CHANNELS_EVENT_NOTICE,
        .raw = it->event,
        .standby = it->standby,
        .account_id = channels__json_id(json_object_get(it->entry, "id")),
    };
    switch (it->kind) {
    case CHANNELS__IG_MESSAGE:
    case CHANNELS__IG_ECHO:
    case CHANNELS__IG_REACTION:
    case CHANNELS__IG_POSTBACK:
        return ig_emit_message(c, &ev, it, err);
    case CHANNELS__IG_READ:
    case CHANNELS__IG_DELIVERY:
        if (it->mid)
            return ig_emit_status(c, &ev, it, err);
        ev.notice = it->kind == CHANNELS__IG_READ ? "read_watermark" : "delivery_watermark";
        break;
    case CHANNELS__IG_DELETED:
        ev.notice = "deleted";
        break;
    case CHANNELS__IG_EDIT:
        ev.notice = "edit";
        break;
    case CHANNELS__IG_OTHER:
        ev.notice = "other";
        break;
    }
    return channels__emit(c, &ev, err);
}

int channels__ig_convert(const json_t *root, struct channels__conv *c, struct channels__err *err)
{
    return channels__ig_walk(root, ig_convert_visit, c, err);
}
