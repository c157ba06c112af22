/* channels.h - the three customer channels (WhatsApp Cloud, Instagram
 * messaging, Sabiá's own web widget) as seen from Sabiá: names, and the
 * inspection of inbound webhook bodies (shape check plus deduplication key)
 * that the gateway runs after checking the signature.
 *
 * Every function is thread-safe and keeps no state between calls. */
#ifndef SABIA_CHANNELS_H
#define SABIA_CHANNELS_H

#include <stddef.h>

#include "core.h"

/* ---------------------------------------------------------------- limits */

/* Messages + statuses + echoes + others per payload; also the most entry[]
 * elements, and changes[] elements over all entries, that are walked. */
#define CHANNELS_MAX_ITEMS     1000
#define CHANNELS_MAX_DEPTH     64   /* JSON nesting limit (DESIGN.md §8) */
#define CHANNELS_DEDUP_KEY_MAX 160  /* dedup_key buffer, NUL included */
#define CHANNELS_ID_MAX        1024 /* bytes of one provider id (wamid, mid, status) */
#define CHANNELS_REASON_MAX    32   /* a big enough `reason` buffer for channels_inspect() */

/* Web widget message fields (docs/web-widget.md). */
#define CHANNELS_WEB_ID_MAX      128  /* visitor_id and message_id characters */
#define CHANNELS_WEB_TEXT_MAX    4096 /* text bytes */
#define CHANNELS_WEB_CAPTION_MAX 1024 /* caption bytes */
#define CHANNELS_WEB_URL_MAX     2048 /* url bytes */
#define CHANNELS_WEB_NAME_MAX    256  /* visitor.name bytes */
#define CHANNELS_WEB_EMAIL_MAX   254  /* visitor.email bytes */

/* ---------------------------------------------------------------- types */

enum channel_type { CHANNEL_WHATSAPP, CHANNEL_INSTAGRAM, CHANNEL_WEB };

/* Parses "whatsapp", "instagram" or "web" (exact, lower case) into *out.
 * Returns 0, or -EINVAL for NULL or any other string (*out untouched). */
int channels_type_parse(const char *s, enum channel_type *out) SB_MUST_USE;

/* The name channels_type_parse() accepts for `t`: a static string, or
 * "unknown" for a value outside the enum. */
const char *channels_type_name(enum channel_type t);

/* ---------------------------------------------------------------- inspection */

struct channels_inspection {
    char dedup_key[CHANNELS_DEDUP_KEY_MAX]; /* NUL-terminated, never empty on success */
    unsigned messages; /* inbound customer messages (reactions, postbacks included) */
    unsigned statuses; /* delivery/read status updates */
    unsigned echoes;   /* messages sent from the business itself (IG is_echo, WhatsApp
                          messages from the business number, coexistence message_echoes) */
    unsigned others;   /* recognised but not a message: change-level errors, system
                          notices, deletions, edits, referrals, other webhook fields */
    /* Web widget only: the message's visitor_id (the gateway checks it against
     * the visitor token); "" for the other channels. */
    char visitor_id[CHANNELS_WEB_ID_MAX + 1];
};

/* Checks that `body` (len bytes, need not be NUL-terminated) never nests
 * arrays/objects deeper than `max_depth`, scanning the raw bytes (brackets
 * inside strings, escaped quotes included, do not count). It does not check
 * that the body is valid JSON. Runs in O(len) time and O(1) space, so it is
 * safe on hostile input before any recursive parser sees it.
 * Returns 0, SB_ELIMIT when too deep, -EINVAL when body is NULL and len > 0. */
int channels_json_check_depth(const char *body, size_t len, unsigned max_depth) SB_MUST_USE;

/* Inspects the raw webhook body of a `type` channel (borrowed for the call;
 * len bytes, need not be NUL-terminated):
 *   1. nesting at most CHANNELS_MAX_DEPTH (raw scan, before parsing);
 *   2. valid JSON whose top level is an object, of the channel's shape
 *      (WhatsApp: object "whatsapp_business_account" and entry[] non-empty;
 *      Instagram: object "instagram" and entry[] non-empty; web: the widget
 *      format of docs/web-widget.md). Unknown fields and message types are
 *      accepted; known objects missing their ids are not;
 *   3. at most CHANNELS_MAX_ITEMS counted items;
 * then fills *out (caller-owned) with the counts and the dedup key:
 *   - each identified item gives a key item: "wa:m:<id>" (message or echo),
 *     "wa:s:<id>:<status>", "ig:m:<mid>", "ig:r:<mid>" (read), "ig:dl:<mid>"
 *     (delivery), "ig:re:<mid>:<action>:<timestamp>" (reaction), "ig:p:<mid>"
 *     (postback), "ig:del:<mid>", "ig:edit:<mid>:<n>", "web:m:<visitor>:<message>";
 *     items without an id (errors, unknown fields, referrals...) give
 *     "<wa|ig>:h:<sha256 of their canonical JSON>";
 *   - duplicates are dropped, then: one item -> that item, or "sha256:<hex>"
 *     of it when it is longer than CHANNELS_DEDUP_KEY_MAX - 1; several ->
 *     "sha256:" + hex SHA-256 of the items sorted bytewise and joined by '\n'
 *     (payload order does not matter); no identified item at all (only
 *     errors, unknown fields) -> "body:" + hex SHA-256 of the raw body.
 * A replay of the same provider payload always gets the same key.
 *
 * Returns 0 with reason set to "" (when given), or SB_EPARSE with a short
 * machine-readable reason ("empty_body", "too_deep", "invalid_json",
 * "not_object", "wrong_object", "missing_entry", "invalid_entry",
 * "invalid_change", "invalid_message", "invalid_status", "invalid_event",
 * "too_many_items", "invalid_web_message") written into `reason` and one
 * human sentence into `detail`; both may be NULL, both are truncated to
 * their sizes and always NUL-terminated when their size is > 0. Also
 * returns -EINVAL (NULL out, body NULL with len > 0, unknown type) or
 * -ENOMEM, with reason "internal". *out is zeroed on every failure.
 * Never crashes and never recurses on the raw bytes, whatever the input. */
int channels_inspect(enum channel_type type, const char *body, size_t len,
                     struct channels_inspection *out, char *reason, size_t reason_len, char *detail,
                     size_t detail_len) SB_MUST_USE;

#endif
