/* internal.h - helpers shared by the files of libs/channels: failure
 * reporting, bounded JSON loading, dedup key building and the walkers over
 * WhatsApp and Instagram payloads (reused by the conversion to internal
 * messages). Not part of the public API. */
#ifndef SABIA_CHANNELS_INTERNAL_H
#define SABIA_CHANNELS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "channels.h"

struct channels__tape; /* below */

/* ---------------------------------------------------------------- failures */

/* Where a failing step writes its reason and detail (each may be NULL/0). */
struct channels__err {
    char *reason;
    size_t reason_len;
    char *detail;
    size_t detail_len;
};

/* Writes `reason` and the formatted detail into err and returns SB_EPARSE. */
int channels__fail(struct channels__err *err, const char *reason, const char *fmt, ...)
    SB_PRINTF(3, 4);
/* Same with an explicit return code (e.g. -ENOMEM with reason "internal"). */
int channels__fail_code(struct channels__err *err, int code, const char *reason, const char *fmt,
                        ...) SB_PRINTF(4, 5);

/* ---------------------------------------------------------------- JSON */

/* What every body must pass before any parser sees it: non-empty
 * ("empty_body"), nesting within CHANNELS_MAX_DEPTH ("too_deep"). Returns 0
 * or SB_EPARSE. */
int channels__json_precheck(const char *body, size_t len, struct channels__err *err);
/* Depth check (CHANNELS_MAX_DEPTH), then parse. Requires a non-empty body
 * whose top level is an object. On success *root is a new reference the
 * caller releases with json_decref(). Returns 0 or SB_EPARSE ("empty_body",
 * "too_deep", "invalid_json", "not_object") or -ENOMEM. */
int channels__json_load(const char *body, size_t len, json_t **root, struct channels__err *err);

/* Checks the envelope shared by Meta payloads: root.object equals `object`
 * ("wrong_object") and root.entry is a non-empty array ("missing_entry") of
 * at most CHANNELS_MAX_ITEMS elements ("too_many_items"). On success
 * *entries borrows root's array. Returns 0 or SB_EPARSE. */
int channels__json_envelope(const json_t *root, const char *object, const json_t **entries,
                            struct channels__err *err);
/* The same over a tape whose node 0 is an object; *entries the array's node. */
int channels__tape_envelope(const struct channels__tape *t, const char *object, uint32_t *entries,
                            struct channels__err *err);

/* `v` as a string when it is a JSON string of 1..CHANNELS_ID_MAX bytes
 * without control characters (safe inside a dedup key), else NULL. */
const char *channels__json_id(const json_t *v);

/* ---------------------------------------------------------------- JSON tape */

/* A parsed document as a flat array of nodes in document order (tape.c).
 * A container's elements follow it, each element's subtree before the next
 * element; an object's members are a key (string) node then the value's
 * nodes. Strings are not copied: nodes point into the caller's bytes. */
enum channels__tape_type {
    CHANNELS__TAPE_OBJECT,
    CHANNELS__TAPE_ARRAY,
    CHANNELS__TAPE_STRING,
    CHANNELS__TAPE_INTEGER,
    CHANNELS__TAPE_REAL,
    CHANNELS__TAPE_TRUE,
    CHANNELS__TAPE_FALSE,
    CHANNELS__TAPE_NULL,
};

struct channels__tape_node {
    uint32_t start; /* offset of the value's first byte (a string's opening quote) */
    uint32_t len;   /* bytes of the value, quotes and brackets included */
    uint32_t next;  /* index of the node just past this value's subtree */
    uint32_t count; /* containers: elements, or members */
    uint8_t type;   /* enum channels__tape_type */
    bool escaped;   /* strings: holds a backslash escape */
};

#define CHANNELS__TAPE_INLINE  128           /* nodes held without allocating */
#define CHANNELS__TAPE_NONE    UINT32_MAX    /* "no such node" */
#define CHANNELS__TAPE_MAX_LEN (1u << 31)    /* longest body the tape takes */

struct channels__tape {
    const char *body; /* borrowed from the caller for the tape's life */
    size_t len;
    struct channels__tape_node *nodes; /* inline_nodes, or heap when larger */
    uint32_t n, cap;
    struct channels__tape_node inline_nodes[CHANNELS__TAPE_INLINE];
};

void channels__tape_init(struct channels__tape *t);
void channels__tape_cleanup(struct channels__tape *t);
/* Parses body (len < CHANNELS__TAPE_MAX_LEN) into t, node 0 the top-level
 * value. Fails as channels__json_load() would: "empty_body" and "too_deep"
 * (nesting past CHANNELS_MAX_DEPTH) first, else "invalid_json" with the
 * detail naming the byte. Returns 0, SB_EPARSE, -ENOMEM, or SB_ELIMIT for a
 * longer body. */
int channels__tape_parse(struct channels__tape *t, const char *body, size_t len,
                         struct channels__err *err);

/* obj[name] (the last one when the key repeats), or CHANNELS__TAPE_NONE when
 * obj is not an object or lacks it. Keys compare decoded. */
uint32_t channels__tape_get(const struct channels__tape *t, uint32_t obj, const char *name);
/* Node i exists and is of that type. */
bool channels__tape_is(const struct channels__tape *t, uint32_t i, enum channels__tape_type type);
/* Elements (or members) of container i; 0 for anything else. */
uint32_t channels__tape_size(const struct channels__tape *t, uint32_t i);
/* The value of INTEGER node i (in range by construction). */
int64_t channels__tape_integer(const struct channels__tape *t, uint32_t i);

/* Room for a decoded string: short ones stay inline, longer ones go to heap. */
struct channels__tape_str {
    char inline_buf[256];
    char *heap;
    size_t len; /* decoded bytes */
    bool oom;   /* the string did not fit inline and no heap was to be had */
};
/* String node i decoded and NUL-terminated (in buf), or NULL when i is not a
 * string, or out of memory (buf->oom then set: callers must fail with
 * channels__tape_oom() rather than treat the string as absent). Release
 * with channels__tape_str_free(). */
const char *channels__tape_str(const struct channels__tape *t, uint32_t i,
                               struct channels__tape_str *buf);
void channels__tape_str_free(struct channels__tape_str *buf);
/* The failure for a string that could not be decoded: -ENOMEM, "internal". */
int channels__tape_oom(struct channels__err *err);
/* As channels__json_id(): node i as a string of 1..CHANNELS_ID_MAX bytes
 * without control characters, else NULL (buf then needs no freeing). */
const char *channels__tape_id(const struct channels__tape *t, uint32_t i,
                              struct channels__tape_str *buf);

/* ---------------------------------------------------------------- dedup keys */

/* A set of key items under construction (caller-owned storage). */
struct channels__keys {
    char **items;
    size_t n, cap;
};

void channels__keys_init(struct channels__keys *k);
void channels__keys_cleanup(struct channels__keys *k);
/* Adds one formatted item. Returns 0 or -ENOMEM. */
int channels__keys_addf(struct channels__keys *k, const char *fmt, ...) SB_PRINTF(2, 3);
/* Adds "<prefix>:h:<sha256 hex of v's canonical JSON (compact, sorted keys)>".
 * Returns 0 or -ENOMEM. */
int channels__keys_add_hash(struct channels__keys *k, const char *prefix, const json_t *v);
/* The same for the value at tape node i (parsed again with jansson, so the
 * item hashes as it always did). Returns 0 or -ENOMEM. */
int channels__tape_add_hash(struct channels__keys *k, const char *prefix,
                            const struct channels__tape *t, uint32_t i);
/* Moves every item of `src` into `dst` (src ends empty). Returns 0 or -ENOMEM
 * (then src keeps the items not moved). */
int channels__keys_merge(struct channels__keys *dst, struct channels__keys *src);
/* Computes the dedup key as documented in channels.h into out (sorts and
 * de-duplicates the items). `body` is hashed when there are no items.
 * Returns 0 or -ENOMEM. */
int channels__keys_finish(struct channels__keys *k, const char *body, size_t len,
                          char out[CHANNELS_DEDUP_KEY_MAX]);

/* ---------------------------------------------------------------- walkers */

/* Where an item sits in the payload, for error messages and logs. */
struct channels__pos {
    size_t entry, change, index; /* change is unused for Instagram messaging[] */
};

enum channels__wa_kind {
    CHANNELS__WA_MESSAGE, /* value.messages[] from a customer; id set */
    CHANNELS__WA_ECHO,   /* value.messages[] from the business number, or value.message_echoes[]; id
                            set */
    CHANNELS__WA_SYSTEM, /* value.messages[] of type "system" (e.g. number changed); id set */
    CHANNELS__WA_STATUS, /* value.statuses[]; id and status set */
    CHANNELS__WA_ERROR,  /* value.errors[] (change-level) */
    CHANNELS__WA_CHANGE, /* a change carrying none of the above (other webhook fields) */
};

/* One item reported by channels__wa_walk(); pointers borrow from the tree. */
struct channels__wa_item {
    enum channels__wa_kind kind;
    const json_t *entry, *change, *value;
    const json_t *item; /* the message/status/error object, or the change itself */
    const char *id;     /* message or status id, else NULL */
    const char *status; /* statuses only, else NULL */
    struct channels__pos pos;
};

/* Called once per item; a non-zero return stops the walk and is returned. */
typedef int (*channels__wa_visit_fn)(void *ctx, const struct channels__wa_item *it,
                                     struct channels__err *err);

/* Walks every entry[].changes[].value of a parsed WhatsApp payload (object
 * "whatsapp_business_account", non-empty entry[]) in payload order. Checks the
 * shape of what it reports; stops with "too_many_items" after
 * CHANNELS_MAX_ITEMS items. Returns 0, SB_EPARSE, or a visitor's code. */
int channels__wa_walk(const json_t *root, channels__wa_visit_fn visit, void *ctx,
                      struct channels__err *err);

enum channels__ig_kind {
    CHANNELS__IG_MESSAGE,  /* message from the customer; mid set */
    CHANNELS__IG_ECHO,     /* message with is_echo; mid set */
    CHANNELS__IG_DELETED,  /* message with is_deleted; mid set */
    CHANNELS__IG_EDIT,     /* message_edit; mid set */
    CHANNELS__IG_REACTION, /* reaction; mid set (the message reacted to) */
    CHANNELS__IG_POSTBACK, /* postback; mid may be NULL */
    CHANNELS__IG_READ,     /* read; mid may be NULL (watermark only) */
    CHANNELS__IG_DELIVERY, /* one per delivery.mids[] element; mid NULL when none */
    CHANNELS__IG_OTHER,    /* any other messaging/standby event, or an entry.changes[] element */
};

/* One item reported by channels__ig_walk(); pointers borrow from the tree. */
struct channels__ig_item {
    enum channels__ig_kind kind;
    const json_t *entry;
    const json_t *event; /* the messaging[] / standby[] / changes[] element */
    const char *mid;
    bool standby; /* from entry.standby[] (another app owns the thread) */
    struct channels__pos pos;
};

typedef int (*channels__ig_visit_fn)(void *ctx, const struct channels__ig_item *it,
                                     struct channels__err *err);

/* Walks entry[].messaging[], entry[].standby[] and entry[].changes[] of a
 * parsed Instagram payload (object "instagram", non-empty entry[]), same
 * contract as channels__wa_walk(). */
int channels__ig_walk(const json_t *root, channels__ig_visit_fn visit, void *ctx,
                      struct channels__err *err);

/* ---------------------------------------------------------------- per channel */

/* Per-channel parts of channels_inspect(): WhatsApp and Instagram read the
 * body's tape (node 0 an object), the web widget a parsed object; keys is
 * empty on entry and filled with the key items; counts go to *out. */
int channels__wa_inspect(const struct channels__tape *t, struct channels_inspection *out,
                         struct channels__keys *keys, struct channels__err *err);
int channels__ig_inspect(const struct channels__tape *t, struct channels_inspection *out,
                         struct channels__keys *keys, struct channels__err *err);
int channels__web_inspect(const json_t *root, struct channels_inspection *out,
                          struct channels__keys *keys, struct channels__err *err);

/* ---------------------------------------------------------------- conversion */

/* Where converted events go (channels_parse()'s callback). */
struct channels__conv {
    channels_parse_fn fn;
    void *arg;
};

/* Hands ev to the callback; a MESSAGE is first checked with
 * domain_message_validate() (failing with reason "internal"). Returns 0, the
 * callback's non-zero value, or -EINVAL. */
int channels__emit(struct channels__conv *c, const struct channels_event *ev,
                   struct channels__err *err);

/* Sets *field to the provider id `id`, or to "sha256:<hex>" of it when it is
 * longer than DOMAIN_ID_MAX. id NULL leaves *field alone. Returns 0 or -ENOMEM. */
int channels__set_id(char **field, const char *id);
/* The same into a fixed DOMAIN_ID_MAX + 1 buffer ("" for NULL). */
void channels__copy_id(char dst[DOMAIN_ID_MAX + 1], const char *id);

/* Sets *field to s cut at a character boundary to at most max bytes; s NULL
 * leaves *field alone. Returns 0 or -ENOMEM. */
int channels__set_text(char **field, const char *s, size_t max);

/* meta[key] = a deep copy of v, when v is not NULL. Returns 0 or -ENOMEM. */
int channels__meta_copy(json_t *meta, const char *key, const json_t *v);
/* meta[key] = v (a new reference is taken over). Returns 0 or -ENOMEM. */
int channels__meta_set(json_t *meta, const char *key, json_t *v);

/* Per-channel conversion of a parsed body (channels_parse()). */
int channels__wa_convert(const json_t *root, struct channels__conv *c, struct channels__err *err);
int channels__ig_convert(const json_t *root, struct channels__conv *c, struct channels__err *err);
int channels__web_convert(const json_t *root, struct channels__conv *c, struct channels__err *err);

#endif
