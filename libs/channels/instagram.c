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

struct ig_inspect {
    struct channels_inspection *out;
    struct channels__keys *keys; /* identified items */
    struct channels__keys anon;  /* content hashes of events without an id */
};

/* Adds the key item of one event; an event without an id of its own goes to
 * the content-hash set instead. Returns 0 or -ENOMEM. */
static int ig_key(struct ig_inspect *s, const struct channels__ig_item *it)
{
    const json_t *part;
    switch (it->kind) {
    case CHANNELS__IG_MESSAGE:
    case CHANNELS__IG_ECHO:
        return channels__keys_addf(s->keys, "ig:m:%s", it->mid);
    case CHANNELS__IG_DELETED:
        return channels__keys_addf(s->keys, "ig:del:%s", it->mid);
    case CHANNELS__IG_EDIT:
        part = json_object_get(json_object_get(it->event, "message_edit"), "num_edit");
        if (json_is_integer(part))
            return channels__keys_addf(s->keys, "ig:edit:%s:%" PRIdMAX, it->mid,
                                       (intmax_t)json_integer_value(part));
        break;
    case CHANNELS__IG_REACTION: {
        const json_t *ts = json_object_get(it->event, "timestamp");
        const char *action =
            channels__json_id(json_object_get(json_object_get(it->event, "reaction"), "action"));
        if (json_is_integer(ts))
            return channels__keys_addf(s->keys, "ig:re:%s:%s:%" PRIdMAX, it->mid,
                                       action ? action : "react", (intmax_t)json_integer_value(ts));
        break;
    }
    case CHANNELS__IG_POSTBACK:
        if (it->mid)
            return channels__keys_addf(s->keys, "ig:p:%s", it->mid);
        break;
    case CHANNELS__IG_READ:
        if (it->mid)
            return channels__keys_addf(s->keys, "ig:r:%s", it->mid);
        break;
    case CHANNELS__IG_DELIVERY:
        if (it->mid)
            return channels__keys_addf(s->keys, "ig:dl:%s", it->mid);
        break;
    case CHANNELS__IG_OTHER:
        break;
    }
    return channels__keys_add_hash(&s->anon, "ig", it->event);
}

static int ig_inspect_visit(void *ctx, const struct channels__ig_item *it,
                            struct channels__err *err)
{
    struct ig_inspect *s = ctx;
    int rc = ig_key(s, it);
    if (rc != 0)
        return channels__fail_code(err, rc, "internal", "out of memory collecting key items");
    /* Standby events belong to the app that owns the thread: not ours to answer. */
    if (it->standby) {
        s->out->others++;
        return 0;
    }
    switch (it->kind) {
    case CHANNELS__IG_MESSAGE:
    case CHANNELS__IG_REACTION:
    case CHANNELS__IG_POSTBACK:
        s->out->messages++;
        break;
    case CHANNELS__IG_ECHO:
        s->out->echoes++;
        break;
    case CHANNELS__IG_READ:
    case CHANNELS__IG_DELIVERY:
        s->out->statuses++;
        break;
    default:
        s->out->others++;
        break;
    }
    return 0;
}

int channels__ig_inspect(const json_t *root, struct channels_inspection *out,
                         struct channels__keys *keys, struct channels__err *err)
{
    struct ig_inspect s = {.out = out, .keys = keys};
    channels__keys_init(&s.anon);
    int rc = channels__ig_walk(root, ig_inspect_visit, &s, err);
    if (rc == 0 && keys->n > 0 && (rc = channels__keys_merge(keys, &s.anon)) != 0)
        channels__fail_code(err, rc, "internal", "out of memory collecting key items");
    channels__keys_cleanup(&s.anon);
    return rc;
}
