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

struct wa_inspect {
    struct channels_inspection *out;
    struct channels__keys *keys; /* identified items */
    struct channels__keys anon;  /* content hashes of items without an id */
};

static int wa_inspect_visit(void *ctx, const struct channels__wa_item *it,
                            struct channels__err *err)
{
    struct wa_inspect *s = ctx;
    int rc;
    switch (it->kind) {
    case CHANNELS__WA_MESSAGE:
        s->out->messages++;
        rc = channels__keys_addf(s->keys, "wa:m:%s", it->id);
        break;
    case CHANNELS__WA_ECHO:
        s->out->echoes++;
        rc = channels__keys_addf(s->keys, "wa:m:%s", it->id);
        break;
    case CHANNELS__WA_SYSTEM:
        s->out->others++;
        rc = channels__keys_addf(s->keys, "wa:m:%s", it->id);
        break;
    case CHANNELS__WA_STATUS:
        s->out->statuses++;
        rc = channels__keys_addf(s->keys, "wa:s:%s:%s", it->id, it->status);
        break;
    default:
        s->out->others++;
        rc = channels__keys_add_hash(&s->anon, "wa", it->item);
        break;
    }
    if (rc != 0)
        return channels__fail_code(err, rc, "internal", "out of memory collecting key items");
    return 0;
}

int channels__wa_inspect(const json_t *root, struct channels_inspection *out,
                         struct channels__keys *keys, struct channels__err *err)
{
    struct wa_inspect s = {.out = out, .keys = keys};
    channels__keys_init(&s.anon);
    int rc = channels__wa_walk(root, wa_inspect_visit, &s, err);
    /* Items without an id only matter beside identified ones; alone, the
     * whole body is hashed instead (see channels_inspect()). */
    if (rc == 0 && keys->n > 0 && (rc = channels__keys_merge(keys, &s.anon)) != 0)
        channels__fail_code(err, rc, "internal", "out of memory collecting key items");
    channels__keys_cleanup(&s.anon);
    return rc;
}
