/* instagram.c - Instagram messaging inbound webhooks: the walk over
 * entry[].messaging[] (and standby[], changes[]) classifying each event
 * (message, echo, deletion, edit, reaction, postback, read, delivery, other)
 * and its inspection (counts and dedup key items).
 * Reference: shared/reference/protocols.md §3.1. */
#include <inttypes.h>
#include <string.h>

#include "internal.h"

struct ig_walk {
    channels__ig_visit_fn visit;
    void *ctx;
    struct channels__err *err;
    size_t count;      /* items reported so far */
    const char *array; /* "messaging" or "standby", for messages */
};

static int ig_report(struct ig_walk *w, struct channels__ig_item *it)
{
    if (++w->count > CHANNELS_MAX_ITEMS)
        return channels__fail(w->err, "too_many_items", "more than %d items in one payload",
                              CHANNELS_MAX_ITEMS);
    return w->visit(w->ctx, it, w->err);
}

static int ig_bad_mid(struct ig_walk *w, const struct channels__ig_item *it, const char *what)
{
    return channels__fail(w->err, "invalid_event",
                          "entry[%zu].%s[%zu].%s.mid must be a string of 1..%d printable bytes",
                          it->pos.entry, w->array, it->pos.index, what, CHANNELS_ID_MAX);
}

/* One "delivery" event names several messages: one item per mid. */
static int ig_walk_delivery(struct ig_walk *w, struct channels__ig_item *it, const json_t *delivery)
{
    const json_t *mids = json_object_get(delivery, "mids");
    it->kind = CHANNELS__IG_DELIVERY;
    if (!json_is_array(mids) || json_array_size(mids) == 0) {
        it->mid = NULL;
        return ig_report(w, it);
    }
    for (size_t i = 0; i < json_array_size(mids); i++) {
        const json_t *m = json_array_get(mids, i);
        if (!(it->mid = channels__json_id(m)))
            return ig_bad_mid(w, it, "delivery");
        int rc = ig_report(w, it);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Classifies one messaging[] / standby[] event by the member it carries. */
static int ig_walk_event(struct ig_walk *w, struct channels__ig_item *it)
{
    const json_t *ev = it->event, *part;
    it->mid = NULL;
    if ((part = json_object_get(ev, "message"))) {
        if (!(it->mid = channels__json_id(json_object_get(part, "mid"))))
            return ig_bad_mid(w, it, "message");
        if (json_is_true(json_object_get(part, "is_echo")))
            it->kind = CHANNELS__IG_ECHO;
        else if (json_is_true(json_object_get(part, "is_deleted")))
            it->kind = CHANNELS__IG_DELETED;
        else
            it->kind = CHANNELS__IG_MESSAGE;
    } else if ((part = json_object_get(ev, "message_edit"))) {
        if (!(it->mid = channels__json_id(json_object_get(part, "mid"))))
            return ig_bad_mid(w, it, "message_edit");
        it->kind = CHANNELS__IG_EDIT;
    } else if ((part = json_object_get(ev, "reaction"))) {
        if (!(it->mid = channels__json_id(json_object_get(part, "mid"))))
            return ig_bad_mid(w, it, "reaction");
        it->kind = CHANNELS__IG_REACTION;
    } else if ((part = json_object_get(ev, "postback"))) {
        it->mid = channels__json_id(json_object_get(part, "mid"));
        it->kind = CHANNELS__IG_POSTBACK;
    } else if ((part = json_object_get(ev, "read"))) {
        it->mid = channels__json_id(json_object_get(part, "mid"));
        it->kind = CHANNELS__IG_READ;
    } else if ((part = json_object_get(ev, "delivery"))) {
        return ig_walk_delivery(w, it, part);
    } else {
        it->kind = CHANNELS__IG_OTHER; /* referral, optin, handover, unknown... */
    }
    return ig_report(w, it);
}

static int ig_walk_events(struct ig_walk *w, const json_t *entry, size_t ei, const char *name)
{
    const json_t *arr = json_object_get(entry, name);
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return channels__fail(w->err, "invalid_entry", "entry[%zu].%s must be an array", ei, name);
    w->array = name;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *ev = json_array_get(arr, i);
        struct channels__ig_item it = {.entry = entry,
                                       .event = ev,
                                       .standby = strcmp(name, "standby") == 0,
                                       .pos = {.entry = ei, .index = i}};
        if (!json_is_object(ev))
            return channels__fail(w->err, "invalid_event", "entry[%zu].%s[%zu] must be an object",
                                  ei, name, i);
        int rc;
        if (strcmp(name, "changes") == 0) {
            it.kind = CHANNELS__IG_OTHER; /* comments, mentions...: not messaging */
            rc = ig_report(w, &it);
        } else {
            rc = ig_walk_event(w, &it);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

int channels__ig_walk(const json_t *root, channels__ig_visit_fn visit, void *ctx,
                      struct channels__err *err)
{
    const json_t *entries;
    int rc = channels__json_envelope(root, "instagram", &entries, err);
    if (rc != 0)
        return rc;
    struct ig_walk w = {visit, ctx, err, 0, NULL};
    static const char *const arrays[] = {"messaging", "standby", "changes"};
    for (size_t i = 0; i < json_array_size(entries); i++) {
        const json_t *entry = json_array_get(entries, i);
        if (!json_is_object(entry))
            return channels__fail(err, "invalid_entry", "entry[%zu] must be an object", i);
        for (size_t a = 0; a < sizeof arrays / sizeof arrays[0]; a++)
            if ((rc = ig_walk_events(&w, entry, i, arrays[a])) != 0)
                return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------- inspection */

/* channels_inspect() of an Instagram body reads its tape (see whatsapp.c):
 * the same walk as channels__ig_walk() above, checks in the same order. */
struct ig_scan {
    const struct channels__tape *t;
    struct channels_inspection *out;
    struct channels__keys *keys; /* identified items */
    struct channels__keys anon;  /* content hashes of events without an id */
    struct channels__err *err;
    size_t count;      /* items reported so far */
    const char *array; /* "messaging", "standby" or "changes" */
    bool standby;
};

/* The key item of one event, as ig_key() would make it from the tree; an
 * event without an id of its own goes to the content-hash set. */
static int ig_scan_key(struct ig_scan *s, enum channels__ig_kind kind, uint32_t ev, const char *mid)
{
    const struct channels__tape *t = s->t;
    uint32_t v;
    switch (kind) {
    case CHANNELS__IG_MESSAGE:
    case CHANNELS__IG_ECHO:
        return channels__keys_addf(s->keys, "ig:m:%s", mid);
    case CHANNELS__IG_DELETED:
        return channels__keys_addf(s->keys, "ig:del:%s", mid);
    case CHANNELS__IG_EDIT:
        v = channels__tape_get(t, channels__tape_get(t, ev, "message_edit"), "num_edit");
        if (channels__tape_is(t, v, CHANNELS__TAPE_INTEGER))
            return channels__keys_addf(s->keys, "ig:edit:%s:%" PRId64, mid,
                                       channels__tape_integer(t, v));
        break;
    case CHANNELS__IG_REACTION: {
        v = channels__tape_get(t, ev, "timestamp");
        struct channels__tape_str ab;
        const char *action = channels__tape_id(
            t, channels__tape_get(t, channels__tape_get(t, ev, "reaction"), "action"), &ab);
        if (ab.oom)
            return -ENOMEM;
        bool keyed = channels__tape_is(t, v, CHANNELS__TAPE_INTEGER);
        int rc = keyed
                     ? channels__keys_addf(s->keys, "ig:re:%s:%s:%" PRId64, mid,
                                           action ? action : "react", channels__tape_integer(t, v))
                     : 0;
        channels__tape_str_free(&ab);
        if (keyed)
            return rc;
        break;
    }
    case CHANNELS__IG_POSTBACK:
        if (mid)
            return channels__keys_addf(s->keys, "ig:p:%s", mid);
        break;
    case CHANNELS__IG_READ:
        if (mid)
            return channels__keys_addf(s->keys, "ig:r:%s", mid);
        break;
    case CHANNELS__IG_DELIVERY:
        if (mid)
            return channels__keys_addf(s->keys, "ig:dl:%s", mid);
        break;
    case CHANNELS__IG_OTHER:
        break;
    }
    return channels__tape_add_hash(&s->anon, "ig", t, ev);
}

/* Counts one event and adds its key item (ig_report() + ig_inspect_visit()). */
static int ig_scan_report(struct ig_scan *s, enum channels__ig_kind kind, uint32_t ev,
                          const char *mid)
{
    if (++s->count > CHANNELS_MAX_ITEMS)
        return channels__fail(s->err, "too_many_items", "more than %d items in one payload",
                              CHANNELS_MAX_ITEMS);
    int rc = ig_scan_key(s, kind, ev, mid);
    if (rc != 0)
        return channels__fail_code(s->err, rc, "internal", "out of memory collecting key items");
    if (s->standby)
        s->out->others++;
    else if (kind == CHANNELS__IG_MESSAGE || kind == CHANNELS__IG_REACTION ||
             kind == CHANNELS__IG_POSTBACK)
        s->out->messages++;
    else if (kind == CHANNELS__IG_ECHO)
        s->out->echoes++;
    else if (kind == CHANNELS__IG_READ || kind == CHANNELS__IG_DELIVERY)
        s->out->statuses++;
    else
        s->out->others++;
    return 0;
}

static int ig_scan_bad_mid(struct ig_scan *s, struct channels__pos p, const char *what)
{
    return channels__fail(s->err, "invalid_event",
                          "entry[%zu].%s[%zu].%s.mid must be a string of 1..%d printable bytes",
                          p.entry, s->array, p.index, what, CHANNELS_ID_MAX);
}

static int ig_scan_delivery(struct ig_scan *s, uint32_t ev, uint32_t delivery,
                            struct channels__pos p)
{
    const struct channels__tape *t = s->t;
    uint32_t mids = channels__tape_get(t, delivery, "mids");
    if (!channels__tape_is(t, mids, CHANNELS__TAPE_ARRAY) || channels__tape_size(t, mids) == 0)
        return ig_scan_report(s, CHANNELS__IG_DELIVERY, ev, NULL);
    uint32_t m = mids + 1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < channels__tape_size(t, mids); i++, m = t->nodes[m].next) {
        struct channels__tape_str mb;
        const char *mid = channels__tape_id(t, m, &mb);
        rc = mb.oom ? channels__tape_oom(s->err)
             : mid  ? ig_scan_report(s, CHANNELS__IG_DELIVERY, ev, mid)
                    : ig_scan_bad_mid(s, p, "delivery");
        channels__tape_str_free(&mb);
    }
    return rc;
}

/* Classifies one messaging[] / standby[] event by the member it carries. */
static int ig_scan_event(struct ig_scan *s, uint32_t ev, struct channels__pos p)
{
    static const struct {
        const char *member;
        enum channels__ig_kind kind;
        bool mid_required;
    } parts[] = {
        {"message", CHANNELS__IG_MESSAGE, true},   {"message_edit", CHANNELS__IG_EDIT, true},
        {"reaction", CHANNELS__IG_REACTION, true}, {"postback", CHANNELS__IG_POSTBACK, false},
        {"read", CHANNELS__IG_READ, false},        {"delivery", CHANNELS__IG_DELIVERY, false},
    };
    const struct channels__tape *t = s->t;
    for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
        uint32_t part = channels__tape_get(t, ev, parts[k].member);
        if (part == CHANNELS__TAPE_NONE)
            continue;
        if (parts[k].kind == CHANNELS__IG_DELIVERY)
            return ig_scan_delivery(s, ev, part, p);
        struct channels__tape_str mb;
        const char *mid = channels__tape_id(t, channels__tape_get(t, part, "mid"), &mb);
        if (mb.oom)
            return channels__tape_oom(s->err);
        if (!mid && parts[k].mid_required)
            return ig_scan_bad_mid(s, p, parts[k].member);
        enum channels__ig_kind kind = parts[k].kind;
        if (kind == CHANNELS__IG_MESSAGE &&
            channels__tape_is(t, channels__tape_get(t, part, "is_echo"), CHANNELS__TAPE_TRUE))
            kind = CHANNELS__IG_ECHO;
        else if (kind == CHANNELS__IG_MESSAGE &&
                 channels__tape_is(t, channels__tape_get(t, part, "is_deleted"),
                                   CHANNELS__TAPE_TRUE))
            kind = CHANNELS__IG_DELETED;
        int rc = ig_scan_report(s, kind, ev, mid);
        channels__tape_str_free(&mb);
        return rc;
    }
    return ig_scan_report(s, CHANNELS__IG_OTHER, ev, NULL); /* referral, optin, handover... */
}

static int ig_scan_events(struct ig_scan *s, uint32_t entry, size_t ei, const char *name)
{
    const struct channels__tape *t = s->t;
    uint32_t arr = channels__tape_get(t, entry, name);
    if (arr == CHANNELS__TAPE_NONE)
        return 0;
    if (!channels__tape_is(t, arr, CHANNELS__TAPE_ARRAY))
        return channels__fail(s->err, "invalid_entry", "entry[%zu].%s must be an array", ei, name);
    s->array = name;
    s->standby = strcmp(name, "standby") == 0;
    uint32_t ev = arr + 1;
    for (size_t i = 0; i < channels__tape_size(t, arr); i++, ev = t->nodes[ev].next) {
        if (!channels__tape_is(t, ev, CHANNELS__TAPE_OBJECT))
            return channels__fail(s->err, "invalid_event", "entry[%zu].%s[%zu] must be an object",
                                  ei, name, i);
        int rc = strcmp(name, "changes") == 0 /* comments, mentions...: not messaging */
                     ? ig_scan_report(s, CHANNELS__IG_OTHER, ev, NULL)
                     : ig_scan_event(s, ev, (struct channels__pos){.entry = ei, .index = i});
        if (rc != 0)
            return rc;
    }
    return 0;
}

int channels__ig_inspect(const struct channels__tape *t, struct channels_inspection *out,
                         struct channels__keys *keys, struct channels__err *err)
{
    struct ig_scan s = {.t = t, .out = out, .keys = keys, .err = err};
    channels__keys_init(&s.anon);
    uint32_t entries = 0;
    int rc = channels__tape_envelope(t, "instagram", &entries, err);
    static const char *const arrays[] = {"messaging", "standby", "changes"};
    uint32_t entry = entries + 1;
    for (size_t i = 0; rc == 0 && i < channels__tape_size(t, entries);
         i++, entry = t->nodes[entry].next) {
        if (!channels__tape_is(t, entry, CHANNELS__TAPE_OBJECT))
            rc = channels__fail(err, "invalid_entry", "entry[%zu] must be an object", i);
        for (size_t a = 0; rc == 0 && a < sizeof arrays / sizeof arrays[0]; a++)
            rc = ig_scan_events(&s, entry, i, arrays[a]);
    }
    if (rc == 0 && keys->n > 0 && (rc = channels__keys_merge(keys, &s.anon)) != 0)
        channels__fail_code(err, rc, "internal", "out of memory collecting key items");
    channels__keys_cleanup(&s.anon);
    return rc;
}
