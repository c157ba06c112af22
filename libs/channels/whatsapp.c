/* whatsapp.c - WhatsApp Cloud API inbound webhooks: the walk over
 * entry[].changes[].value (messages, coexistence message_echoes, statuses,
 * change-level errors, other webhook fields) and its inspection (counts and
 * dedup key items). Reference: shared/reference/protocols.md §1.2-1.7. */
#include <string.h>

#include "internal.h"

struct wa_walk {
    channels__wa_visit_fn visit;
    void *ctx;
    struct channels__err *err;
    size_t count; /* items reported so far */
};

static int wa_report(struct wa_walk *w, struct channels__wa_item *it)
{
    if (++w->count > CHANNELS_MAX_ITEMS)
        return channels__fail(w->err, "too_many_items", "more than %d items in one payload",
                              CHANNELS_MAX_ITEMS);
    return w->visit(w->ctx, it, w->err);
}

/* Phone numbers compared on their digits only ("+1 555-0100" == "15550100"). */
static bool same_phone(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    size_t digits = 0;
    for (;;) {
        while (*a && (*a < '0' || *a > '9'))
            a++;
        while (*b && (*b < '0' || *b > '9'))
            b++;
        if (!*a || !*b)
            return !*a && !*b && digits > 0;
        if (*a++ != *b++)
            return false;
        digits++;
    }
}

/* Fetches value[name] as an array: NULL when absent, fails when not an array. */
static int get_array(const json_t *value, const char *name, const struct channels__pos *p,
                     const json_t **out, struct channels__err *err)
{
    *out = json_object_get(value, name);
    if (*out && !json_is_array(*out))
        return channels__fail(err, "invalid_change",
                              "entry[%zu].changes[%zu].value.%s must be an array", p->entry,
                              p->change, name);
    return 0;
}

static int wa_walk_messages(struct wa_walk *w, struct channels__wa_item *it, const char *name,
                            bool all_echoes)
{
    const json_t *arr;
    int rc = get_array(it->value, name, &it->pos, &arr, w->err);
    if (rc != 0 || !arr)
        return rc;
    const json_t *meta = json_object_get(it->value, "metadata");
    const char *business = json_string_value(json_object_get(meta, "display_phone_number"));
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *m = json_array_get(arr, i);
        it->pos.index = i;
        it->item = m;
        it->id = channels__json_id(json_object_get(m, "id"));
        it->status = NULL;
        if (!json_is_object(m) || !it->id)
            return channels__fail(w->err, "invalid_message",
                                  "entry[%zu].changes[%zu].value.%s[%zu] must be an object whose"
                                  " \"id\" is a string of 1..%d printable bytes",
                                  it->pos.entry, it->pos.change, name, i, CHANNELS_ID_MAX);
        const char *from = json_string_value(json_object_get(m, "from"));
        const char *type = json_string_value(json_object_get(m, "type"));
        if (all_echoes || same_phone(from, business))
            it->kind = CHANNELS__WA_ECHO;
        else if (type && strcmp(type, "system") == 0)
            it->kind = CHANNELS__WA_SYSTEM;
        else
            it->kind = CHANNELS__WA_MESSAGE;
        if ((rc = wa_report(w, it)) != 0)
            return rc;
    }
    return 0;
}

static int wa_walk_statuses(struct wa_walk *w, struct channels__wa_item *it)
{
    const json_t *arr;
    int rc = get_array(it->value, "statuses", &it->pos, &arr, w->err);
    if (rc != 0 || !arr)
        return rc;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *s = json_array_get(arr, i);
        it->pos.index = i;
        it->item = s;
        it->kind = CHANNELS__WA_STATUS;
        it->id = channels__json_id(json_object_get(s, "id"));
        it->status = channels__json_id(json_object_get(s, "status"));
        if (!json_is_object(s) || !it->id || !it->status)
            return channels__fail(w->err, "invalid_status",
                                  "entry[%zu].changes[%zu].value.statuses[%zu] must be an object"
                                  " whose \"id\" and \"status\" are strings of 1..%d printable"
                                  " bytes",
                                  it->pos.entry, it->pos.change, i, CHANNELS_ID_MAX);
        if ((rc = wa_report(w, it)) != 0)
            return rc;
    }
    return 0;
}

static int wa_walk_errors(struct wa_walk *w, struct channels__wa_item *it)
{
    const json_t *arr;
    int rc = get_array(it->value, "errors", &it->pos, &arr, w->err);
    if (rc != 0 || !arr)
        return rc;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *e = json_array_get(arr, i);
        it->pos.index = i;
        it->item = e;
        it->kind = CHANNELS__WA_ERROR;
        it->id = it->status = NULL;
        if ((rc = wa_report(w, it)) != 0)
            return rc;
    }
    return 0;
}

static int wa_walk_change(struct wa_walk *w, struct channels__wa_item *it)
{
    it->value = json_object_get(it->change, "value");
    if (it->value && !json_is_object(it->value))
        return channels__fail(w->err, "invalid_change",
                              "entry[%zu].changes[%zu].value must be an object", it->pos.entry,
                              it->pos.change);
    static const char *const known[] = {"messages", "message_echoes", "statuses", "errors"};
    bool any = false;
    for (size_t k = 0; it->value && k < sizeof known / sizeof known[0]; k++)
        any = any || json_object_get(it->value, known[k]) != NULL;
    if (!any) {
        /* Another webhook field (templates, account updates, history...). */
        it->kind = CHANNELS__WA_CHANGE;
        it->item = it->change;
        it->id = it->status = NULL;
        it->pos.index = 0;
        return wa_report(w, it);
    }
    int rc = wa_walk_messages(w, it, "messages", false);
    if (rc == 0)
        rc = wa_walk_messages(w, it, "message_echoes", true);
    if (rc == 0)
        rc = wa_walk_statuses(w, it);
    if (rc == 0)
        rc = wa_walk_errors(w, it);
    return rc;
}

int channels__wa_walk(const json_t *root, channels__wa_visit_fn visit, void *ctx,
                      struct channels__err *err)
{
    const json_t *entries;
    int rc = channels__json_envelope(root, "whatsapp_business_account", &entries, err);
    if (rc != 0)
        return rc;
    struct wa_walk w = {visit, ctx, err, 0};
    size_t changes_seen = 0;
    for (size_t i = 0; i < json_array_size(entries); i++) {
        const json_t *entry = json_array_get(entries, i);
        if (!json_is_object(entry))
            return channels__fail(err, "invalid_entry", "entry[%zu] must be an object", i);
        const json_t *changes = json_object_get(entry, "changes");
        if (!changes)
            continue;
        if (!json_is_array(changes))
            return channels__fail(err, "invalid_entry", "entry[%zu].changes must be an array", i);
        changes_seen += json_array_size(changes);
        if (changes_seen > CHANNELS_MAX_ITEMS)
            return channels__fail(err, "too_many_items", "more than %d changes in one payload",
                                  CHANNELS_MAX_ITEMS);
        for (size_t j = 0; j < json_array_size(changes); j++) {
            const json_t *change = json_array_get(changes, j);
            if (!json_is_object(change))
                return channels__fail(err, "invalid_change",
                                      "entry[%zu].changes[%zu] must be an object", i, j);
            struct channels__wa_item it = {
                .entry = entry, .change = change, .pos = {.entry = i, .change = j}};
            if ((rc = wa_walk_change(&w, &it)) != 0)
                return rc;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- inspection */

/* channels_inspect() of a WhatsApp body reads its tape rather than a jansson
 * tree (the gateway's hot path): the same walk as channels__wa_walk() above,
 * same checks in the same order, and the fuzz tests hold the two to the same
 * verdict on every body. */
struct wa_scan {
    const struct channels__tape *t;
    struct channels_inspection *out;
    struct channels__keys *keys; /* identified items */
    struct channels__keys anon;  /* content hashes of items without an id */
    struct channels__err *err;
    size_t count; /* items reported so far */
};

static int wa_scan_count(struct wa_scan *s)
{
    if (++s->count > CHANNELS_MAX_ITEMS)
        return channels__fail(s->err, "too_many_items", "more than %d items in one payload",
                              CHANNELS_MAX_ITEMS);
    return 0;
}

static int wa_scan_oom(struct wa_scan *s, int rc)
{
    if (rc != 0)
        return channels__fail_code(s->err, rc, "internal", "out of memory collecting key items");
    return 0;
}

/* An item without an id (change-level error, other webhook field). */
static int wa_scan_anon(struct wa_scan *s, uint32_t item)
{
    int rc = wa_scan_count(s);
    if (rc != 0)
        return rc;
    s->out->others++;
    return wa_scan_oom(s, channels__tape_add_hash(&s->anon, "wa", s->t, item));
}

/* value[name] as an array: NONE when absent, fails when not an array. */
static int wa_scan_array(struct wa_scan *s, uint32_t value, const char *name,
                         const struct channels__pos *p, uint32_t *arr)
{
    *arr = channels__tape_get(s->t, value, name);
    if (*arr != CHANNELS__TAPE_NONE && !channels__tape_is(s->t, *arr, CHANNELS__TAPE_ARRAY))
        return channels__fail(s->err, "invalid_change",
                              "entry[%zu].changes[%zu].value.%s must be an array", p->entry,
                              p->change, name);
    return 0;
}

static int wa_scan_messages(struct wa_scan *s, uint32_t value, struct channels__pos p,
                            const char *name, bool all_echoes)
{
    const struct channels__tape *t = s->t;
    uint32_t arr;
    int rc = wa_scan_array(s, value, name, &p, &arr);
    if (rc != 0 || arr == CHANNELS__TAPE_NONE)
        return rc;
    struct channels__tape_str bb, fb, tb, ib;
    const char *business = channels__tape_str(
        t, channels__tape_get(t, channels__tape_get(t, value, "metadata"), "display_phone_number"),
        &bb);
    uint32_t m = arr + 1;
    for (size_t i = 0; rc == 0 && i < channels__tape_size(t, arr); i++, m = t->nodes[m].next) {
        const char *id = channels__tape_id(t, channels__tape_get(t, m, "id"), &ib);
        const char *from = channels__tape_str(t, channels__tape_get(t, m, "from"), &fb);
        const char *type = channels__tape_str(t, channels__tape_get(t, m, "type"), &tb);
        if (bb.oom || ib.oom || fb.oom || tb.oom)
            rc = channels__tape_oom(s->err);
        else if (!channels__tape_is(t, m, CHANNELS__TAPE_OBJECT) || !id)
            rc = channels__fail(s->err, "invalid_message",
                                "entry[%zu].changes[%zu].value.%s[%zu] must be an object whose"
                                " \"id\" is a string of 1..%d printable bytes",
                                p.entry, p.change, name, i, CHANNELS_ID_MAX);
        else if ((rc = wa_scan_count(s)) == 0) {
            if (all_echoes || same_phone(from, business))
                s->out->echoes++;
            else if (type && strcmp(type, "system") == 0)
                s->out->others++;
            else
                s->out->messages++;
            rc = wa_scan_oom(s, channels__keys_addf(s->keys, "wa:m:%s", id));
        }
        channels__tape_str_free(&fb);
        channels__tape_str_free(&tb);
        channels__tape_str_free(&ib);
    }
    channels__tape_str_free(&bb);
    return rc;
}

static int wa_scan_statuses(struct wa_scan *s, uint32_t value, struct channels__pos p)
{
    const struct channels__tape *t = s->t;
    uint32_t arr;
    int rc = wa_scan_array(s, value, "statuses", &p, &arr);
    if (rc != 0 || arr == CHANNELS__TAPE_NONE)
        return rc;
    uint32_t e = arr + 1;
    for (size_t i = 0; rc == 0 && i < channels__tape_size(t, arr); i++, e = t->nodes[e].next) {
        struct channels__tape_str ib, sb;
        const char *id = channels__tape_id(t, channels__tape_get(t, e, "id"), &ib);
        const char *status = channels__tape_id(t, channels__tape_get(t, e, "status"), &sb);
        if (ib.oom || sb.oom)
            rc = channels__tape_oom(s->err);
        else if (!channels__tape_is(t, e, CHANNELS__TAPE_OBJECT) || !id || !status)
            rc = channels__fail(s->err, "invalid_status",
                                "entry[%zu].changes[%zu].value.statuses[%zu] must be an object"
                                " whose \"id\" and \"status\" are strings of 1..%d printable"
                                " bytes",
                                p.entry, p.change, i, CHANNELS_ID_MAX);
        else if ((rc = wa_scan_count(s)) == 0) {
            s->out->statuses++;
            rc = wa_scan_oom(s, channels__keys_addf(s->keys, "wa:s:%s:%s", id, status));
        }
        channels__tape_str_free(&ib);
        channels__tape_str_free(&sb);
    }
    return rc;
}

static int wa_scan_errors(struct wa_scan *s, uint32_t value, struct channels__pos p)
{
    uint32_t arr;
    int rc = wa_scan_array(s, value, "errors", &p, &arr);
    if (rc != 0 || arr == CHANNELS__TAPE_NONE)
        return rc;
    uint32_t e = arr + 1;
    for (size_t i = 0; rc == 0 && i < channels__tape_size(s->t, arr); i++, e = s->t->nodes[e].next)
        rc = wa_scan_anon(s, e);
    return rc;
}

static int wa_scan_change(struct wa_scan *s, uint32_t change, struct channels__pos p)
{
    const struct channels__tape *t = s->t;
    uint32_t value = channels__tape_get(t, change, "value");
    if (value != CHANNELS__TAPE_NONE && !channels__tape_is(t, value, CHANNELS__TAPE_OBJECT))
        return channels__fail(s->err, "invalid_change",
                              "entry[%zu].changes[%zu].value must be an object", p.entry,
                              p.change);
    static const char *const known[] = {"messages", "message_echoes", "statuses", "errors"};
    bool any = false;
    for (size_t k = 0; value != CHANNELS__TAPE_NONE && k < sizeof known / sizeof known[0]; k++)
        any = any || channels__tape_get(t, value, known[k]) != CHANNELS__TAPE_NONE;
    if (!any)
        return wa_scan_anon(s, change); /* another webhook field */
    int rc = wa_scan_messages(s, value, p, "messages", false);
    if (rc == 0)
        rc = wa_scan_messages(s, value, p, "message_echoes", true);
    if (rc == 0)
        rc = wa_scan_statuses(s, value, p);
    if (rc == 0)
        rc = wa_scan_errors(s, value, p);
    return rc;
}

static int wa_scan_entries(struct wa_scan *s)
{
    const struct channels__tape *t = s->t;
    uint32_t entries;
    int rc = channels__tape_envelope(t, "whatsapp_business_account", &entries, s->err);
    if (rc != 0)
        return rc;
    size_t changes_seen = 0;
    uint32_t entry = entries + 1;
    for (size_t i = 0; i < channels__tape_size(t, entries); i++, entry = t->nodes[entry].next) {
        if (!channels__tape_is(t, entry, CHANNELS__TAPE_OBJECT))
            return channels__fail(s->err, "invalid_entry", "entry[%zu] must be an object", i);
        uint32_t changes = channels__tape_get(t, entry, "changes");
        if (changes == CHANNELS__TAPE_NONE)
            continue;
        if (!channels__tape_is(t, changes, CHANNELS__TAPE_ARRAY))
            return channels__fail(s->err, "invalid_entry", "entry[%zu].changes must be an array",
                                  i);
        changes_seen += channels__tape_size(t, changes);
        if (changes_seen > CHANNELS_MAX_ITEMS)
            return channels__fail(s->err, "too_many_items", "more than %d changes in one payload",
                                  CHANNELS_MAX_ITEMS);
        uint32_t change = changes + 1;
        for (size_t j = 0; j < channels__tape_size(t, changes); j++, change = t->nodes[change].next) {
            if (!channels__tape_is(t, change, CHANNELS__TAPE_OBJECT))
                return channels__fail(s->err, "invalid_change",
                                      "entry[%zu].changes[%zu] must be an object", i, j);
            if ((rc = wa_scan_change(s, change, (struct channels__pos){.entry = i, .change = j})))
                return rc;
        }
    }
    return 0;
}

int channels__wa_inspect(const struct channels__tape *t, struct channels_inspection *out,
                         struct channels__keys *keys, struct channels__err *err)
{
    struct wa_scan s = {.t = t, .out = out, .keys = keys, .err = err};
    channels__keys_init(&s.anon);
    int rc = wa_scan_entries(&s);
    /* Items without an id only matter beside identified ones; alone, the
     * whole body is hashed instead (see channels_inspect()). */
    if (rc == 0 && keys->n > 0)
        rc = wa_scan_oom(&s, channels__keys_merge(keys, &s.anon));
    channels__keys_cleanup(&s.anon);
    return rc;
}
