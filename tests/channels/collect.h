/* collect.h - shared by the conversion suites: runs channels_parse() and keeps
 * deep copies of every event, with accessors for metadata members. */
#ifndef SABIA_TESTS_CHANNELS_COLLECT_H
#define SABIA_TESTS_CHANNELS_COLLECT_H

#include "helpers.h"

#define COLLECT_MAX 32

struct collected_event {
    enum channels_event_kind kind;
    struct domain_message msg; /* MESSAGE: a deep copy */
    struct domain_status_update st;
    char notice[32];
    char account[64]; /* "" when NULL */
    bool standby;
};

struct collected {
    size_t n;
    struct collected_event ev[COLLECT_MAX];
};

static inline char *dup_or_null(const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    cr_assert_not_null(d);
    return d;
}

static inline int collect_one(void *arg, const struct channels_event *ev)
{
    struct collected *c = arg;
    cr_assert_lt(c->n, COLLECT_MAX);
    struct collected_event *e = &c->ev[c->n++];
    memset(e, 0, sizeof *e);
    e->kind = ev->kind;
    e->standby = ev->standby;
    snprintf(e->account, sizeof e->account, "%s", ev->account_id ? ev->account_id : "");
    if (ev->kind == CHANNELS_EVENT_NOTICE) {
        cr_assert_not_null(ev->notice);
        snprintf(e->notice, sizeof e->notice, "%s", ev->notice);
    } else if (ev->kind == CHANNELS_EVENT_STATUS) {
        e->st = *ev->status;
    } else {
        const struct domain_message *m = ev->message;
        cr_assert_eq(domain_message_validate(m, NULL), 0);
        e->msg = *m;
        e->msg.provider_message_id = dup_or_null(m->provider_message_id);
        e->msg.contact_id = dup_or_null(m->contact_id);
        e->msg.contact_name = dup_or_null(m->contact_name);
        e->msg.contact_phone = dup_or_null(m->contact_phone);
        e->msg.contact_email = dup_or_null(m->contact_email);
        e->msg.text = dup_or_null(m->text);
        e->msg.reply_to = dup_or_null(m->reply_to);
        e->msg.metadata = json_deep_copy(m->metadata);
    }
    cr_assert_not_null(ev->raw, "every event carries its raw item");
    return 0;
}

static inline void collected_free(struct collected *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->ev[i].kind == CHANNELS_EVENT_MESSAGE)
            domain_message_cleanup(&c->ev[i].msg);
    c->n = 0;
}

/* Parses a NUL-terminated body and asserts success. */
static inline void parse_ok(enum channel_type t, const char *body, struct collected *c)
{
    struct channels_parse_error err;
    c->n = 0;
    int rc = channels_parse(t, body, strlen(body), collect_one, c, &err);
    cr_assert_eq(rc, 0, "parse failed: %s: %s (body %.300s)", err.reason, err.detail, body);
    cr_assert_str_empty(err.reason);
}

/* The only event of a parse, which must be a message. */
static inline const struct domain_message *only_message(const struct collected *c)
{
    cr_assert_eq(c->n, 1, "%zu events", c->n);
    cr_assert_eq(c->ev[0].kind, CHANNELS_EVENT_MESSAGE, "kind %d", c->ev[0].kind);
    return &c->ev[0].msg;
}

static inline const char *meta_str(const struct domain_message *m, const char *key)
{
    const char *s = json_string_value(json_object_get(m->metadata, key));
    cr_assert_not_null(s, "metadata.%s missing or not a string", key);
    return s;
}

static inline bool meta_true(const struct domain_message *m, const char *key)
{
    return json_is_true(json_object_get(m->metadata, key));
}

#endif
