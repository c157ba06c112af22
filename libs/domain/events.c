/* events.c - the JSON shapes domain events and commands travel in: the
 * envelope published for webapp and public-api (docs/events.md), its
 * reading back, the command message, and the data builders for messages,
 * status changes and conversations. */
#include <string.h>

#include "domain.h"

/* obj[key] = s as a JSON string, or null when s is NULL. Returns 0 or -1
 * (allocation failure or invalid UTF-8). */
static int set_str(json_t *obj, const char *key, const char *s)
{
    json_t *v = s ? json_string(s) : json_null();
    return v ? json_object_set_new(obj, key, v) : -1;
}

static int set_time(json_t *obj, const char *key, int64_t ms)
{
    if (ms <= 0)
        return json_object_set_new(obj, key, json_null());
    char t[SB_TIME_STRLEN];
    sb_time_format(ms, t);
    return set_str(obj, key, t);
}

static bool uuid_ok(const char *s)
{
    return s && sb_uuid_valid(s, strlen(s));
}

/* The members shared by events and commands; `kind` is "type" or "command".
 * Consumes `data` in every case. */
static json_t *envelope(const char *kind, const char *name, const char *tenant_id, int64_t ms,
                        const char *time_key, const char *correlation_id, const char *id,
                        json_t *data)
{
    char fresh[SB_UUID_STRLEN];
    if (!id && sb_uuid_v7_str(fresh) == 0)
        id = fresh;
    json_t *env = NULL;
    if (uuid_ok(id) && uuid_ok(tenant_id) && json_is_object(data) && ms > 0)
        env = json_object();
    if (!env) {
        json_decref(data);
        return NULL;
    }
    /* json_object_set_new() consumes data even when it fails. */
    if (json_object_set_new(env, "data", data) || set_str(env, "id", id) ||
        set_str(env, kind, name) || set_str(env, "tenant_id", tenant_id) ||
        set_time(env, time_key, ms) || set_str(env, "correlation_id", correlation_id)) {
        json_decref(env);
        return NULL;
    }
    return env;
}

json_t *domain_event_envelope(enum domain_event type, const char *tenant_id, int64_t occurred_ms,
                              const char *correlation_id, const char *id, json_t *data)
{
    if ((unsigned)type >= DOMAIN_EVENT_COUNT) {
        json_decref(data);
        return NULL;
    }
    return envelope("type", domain_event_name(type), tenant_id, occurred_ms, "occurred_at",
                    correlation_id, id, data);
}

json_t *domain_command_envelope(enum domain_command cmd, const char *tenant_id, int64_t issued_ms,
                                const char *correlation_id, unsigned attempt, json_t *data)
{
    if ((unsigned)cmd >= DOMAIN_COMMAND_COUNT) {
        json_decref(data);
        return NULL;
    }
    json_t *env = envelope("command", domain_command_name(cmd), tenant_id, issued_ms, "issued_at",
                           correlation_id, NULL, data);
    if (env && json_object_set_new(env, "attempt", json_integer(attempt)) != 0) {
        json_decref(env);
        return NULL;
    }
    return env;
}

static const char *member_str(const json_t *env, const char *key)
{
    return json_string_value(json_object_get(env, key));
}

int domain_event_envelope_parse(const json_t *env, struct domain_event_header *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    if (!json_is_object(env))
        return SB_EPARSE;
    const json_t *corr = json_object_get(env, "correlation_id");
    out->id = member_str(env, "id");
    out->tenant_id = member_str(env, "tenant_id");
    out->occurred_at = member_str(env, "occurred_at");
    out->correlation_id = json_string_value(corr);
    out->data = json_object_get(env, "data");
    bool ok = uuid_ok(out->id) && uuid_ok(out->tenant_id) && out->occurred_at &&
              json_is_object(out->data) && (!corr || json_is_null(corr) || json_is_string(corr)) &&
              domain_event_parse(member_str(env, "type"), &out->type) == 0;
    if (!ok) {
        memset(out, 0, sizeof *out);
        return SB_EPARSE;
    }
    return 0;
}

/* ---------------------------------------------------------------- data builders */

json_t *domain_message_summary_json(const struct domain_message_summary *m)
{
    if (!m || (unsigned)m->type > DOMAIN_TYPE_UNSUPPORTED ||
        (unsigned)m->direction > DOMAIN_OUTBOUND || (unsigned)m->sender > DOMAIN_SENDER_SYSTEM ||
        (unsigned)m->status > DOMAIN_STATUS_FAILED)
        return NULL;
    const char *content = m->content ? m->content : "";
    size_t n = strlen(content);
    size_t keep = domain_utf8_prefix(content, n, DOMAIN_EVENT_CONTENT_MAX);
    json_t *o = json_object();
    json_t *c = json_stringn(content, keep);
    if (!o || !c || json_object_set_new(o, "content", c) != 0) {
        json_decref(c);
        json_decref(o);
        return NULL;
    }
    if (set_str(o, "id", m->id) || set_str(o, "conversation_id", m->conversation_id) ||
        set_str(o, "channel_id", m->channel_id) || set_str(o, "channel_type", m->channel_type) ||
        set_str(o, "direction", domain_direction_name(m->direction)) ||
        set_str(o, "sender_type", domain_sender_name(m->sender)) ||
        set_str(o, "sender_user_id", m->sender_user_id) ||
        set_str(o, "type", domain_message_type_name(m->type)) ||
        set_str(o, "status", domain_status_name(m->status)) ||
        json_object_set_new(o, "content_truncated", json_boolean(keep < n)) ||
        set_str(o, "provider_message_id", m->provider_message_id) ||
        set_time(o, "created_at", m->created_ms)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* {"code","title","details"} of a failed status, or null without a code. */
static json_t *status_error(const struct domain_status_change *c)
{
    if (c->error_code == DOMAIN_NO_CODE)
        return json_null();
    json_t *err = json_object();
    if (err &&
        (json_object_set_new(err, "code", json_integer(c->error_code)) ||
         set_str(err, "title", c->error_title) || set_str(err, "details", c->error_details))) {
        json_decref(err);
        return NULL;
    }
    return err;
}

json_t *domain_status_change_json(const struct domain_status_change *c)
{
    if (!c || (unsigned)c->status > DOMAIN_STATUS_FAILED)
        return NULL;
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "error", status_error(c)) ||
        set_str(o, "message_id", c->message_id) ||
        set_str(o, "conversation_id", c->conversation_id) ||
        set_str(o, "provider_message_id", c->provider_message_id) ||
        set_str(o, "status", domain_status_name(c->status)) || set_time(o, "timestamp", c->at_ms)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *domain_conversation_summary_json(const struct domain_conversation_summary *c)
{
    if (!c || (unsigned)c->status > DOMAIN_CONVERSATION_CLOSED ||
        (unsigned)c->owner > DOMAIN_OWNER_HUMAN)
        return NULL;
    json_t *o = json_object();
    if (!o || set_str(o, "id", c->id) || set_str(o, "channel_id", c->channel_id) ||
        set_str(o, "channel_type", c->channel_type) || set_str(o, "contact_id", c->contact_id) ||
        set_str(o, "assistant_id", c->assistant_id) ||
        set_str(o, "assigned_user_id", c->assigned_user_id) ||
        set_str(o, "status", domain_conversation_status_name(c->status)) ||
        set_str(o, "owner", domain_owner_name(c->owner)) ||
        set_str(o, "closed_reason", c->closed_reason) || set_time(o, "created_at", c->created_ms) ||
        set_time(o, "updated_at", c->updated_ms)) {
        json_decref(o);
        return NULL;
    }
    return o;
}
