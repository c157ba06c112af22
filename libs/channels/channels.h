/* channels.h - the three customer channels (WhatsApp Cloud, Instagram
 * messaging, Sabiá's own web widget) as seen from Sabiá: names; the
 * inspection of inbound webhook bodies (shape check plus deduplication key)
 * that the gateway runs after checking the signature; the conversion of
 * those bodies into internal messages and status updates (libs/domain) that
 * the processor runs; and the outbound side: send request bodies and the
 * reading of send responses. No HTTP here: callers do the I/O.
 *
 * Every function is thread-safe and keeps no state between calls. */
#ifndef SABIA_CHANNELS_H
#define SABIA_CHANNELS_H

#include <stddef.h>

#include "core.h"
#include "domain.h"

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

/* Outbound text, in UTF-16 units as Meta counts (domain_text_units()). */
#define CHANNELS_WA_TEXT_MAX       4096 /* WhatsApp text.body */
#define CHANNELS_IG_TEXT_MAX       999  /* Instagram: "less than 1000 characters" */
#define CHANNELS_WEB_OUT_MAX       4096 /* web widget replies (our own limit) */
#define CHANNELS_SEND_ID_MAX       64   /* bytes of a recipient id / phone number in a send */
#define CHANNELS_GRAPH_MSG_MAX     511  /* Graph error message kept */
#define CHANNELS_GRAPH_DETAILS_MAX 1023 /* Graph error_data.details kept */
#define CHANNELS_GRAPH_SHORT_MAX   127  /* Graph error type, fbtrace_id kept */

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
 * "too_many_items", "invalid_web_message", "too_large" for a WhatsApp or
 * Instagram body of 2 GiB or more) written into `reason` and one
 * human sentence into `detail`; both may be NULL, both are truncated to
 * their sizes and always NUL-terminated when their size is > 0. Also
 * returns -EINVAL (NULL out, body NULL with len > 0, unknown type) or
 * -ENOMEM, with reason "internal". *out is zeroed on every failure.
 * Never crashes and never recurses on the raw bytes, whatever the input. */
int channels_inspect(enum channel_type type, const char *body, size_t len,
                     struct channels_inspection *out, char *reason, size_t reason_len, char *detail,
                     size_t detail_len) SB_MUST_USE;

/* ---------------------------------------------------------------- conversion */

enum channels_event_kind {
    CHANNELS_EVENT_MESSAGE, /* a message (customer's, or an echo of the business's own) */
    CHANNELS_EVENT_STATUS,  /* a delivery report about one of our outbound messages */
    CHANNELS_EVENT_NOTICE,  /* recognised, neither: see `notice` */
};

/* One thing found in a payload. Everything is borrowed for the duration of
 * the callback only: copy what must outlive it (json_incref() metadata). */
struct channels_event {
    enum channels_event_kind kind;
    const struct domain_message *message;      /* MESSAGE, else NULL */
    const struct domain_status_update *status; /* STATUS, else NULL */
    /* NOTICE only: "error" (WhatsApp change-level errors[]), "change" (another
     * WhatsApp webhook field), "status_other" (a WhatsApp status outside our
     * vocabulary, e.g. "deleted"), "deleted" and "edit" (Instagram message
     * deleted/edited by the customer), "read_watermark" and
     * "delivery_watermark" (Instagram report without a message id), "other"
     * (any other Instagram event: referral, optin, handover, changes[]). */
    const char *notice;
    /* The business account the payload was addressed to: WhatsApp
     * value.metadata.phone_number_id, Instagram entry.id; NULL for web or
     * when absent. The processor checks it against the channel. */
    const char *account_id;
    bool standby;      /* Instagram standby[]: another app owns the thread */
    const json_t *raw; /* the item as received (message, status, event, error) */
};

/* Called once per event in payload order; a non-zero return stops the parse
 * and is returned by channels_parse(). */
typedef int (*channels_parse_fn)(void *arg, const struct channels_event *ev);

struct channels_parse_error {
    char reason[CHANNELS_REASON_MAX]; /* as channels_inspect(), "" on success */
    char detail[256];
};

/* Converts a `type` webhook body (borrowed; len bytes) into events:
 *   - WhatsApp: every messages[] / message_echoes[] element becomes a
 *     MESSAGE of the matching type (protocols.md §1.4); an unknown or
 *     malformed type becomes DOMAIN_TYPE_UNSUPPORTED with metadata
 *     original_type, never dropped. Messages from the business number and
 *     message_echoes[] are echoes: outbound, sender human, echo true, the
 *     contact being their "to". Contact name from contacts[].profile.name of
 *     the matching wa_id. statuses[] become STATUS events ("played" counts as
 *     read; failed ones carry errors[0]).
 *   - Instagram: messages (text, attachments, quick replies), echoes
 *     (is_echo: outbound, human, contact = recipient), reactions (type
 *     reaction, content the emoji, removed on unreact; provider id
 *     "reaction:<action>:<timestamp ms>:<mid>"), postbacks (type button;
 *     provider id the mid, else "postback:<sender>:<timestamp ms>"), read
 *     (STATUS read of that mid) and delivery (STATUS delivered per mid).
 *   - web: the widget message of docs/web-widget.md (validated as strictly as
 *     channels_inspect() does): provider id "<visitor_id>:<message_id>" (a
 *     message_id is only unique per visitor), contact = visitor, name and email.
 * Provider ids longer than DOMAIN_ID_MAX are replaced by "sha256:<hex>" of
 * themselves (here, in status updates and in send results alike). Names and
 * texts over the domain limits are cut at a character boundary.
 * The whole body's shape is checked before the first callback, so a body
 * channels_inspect() refuses reports nothing.
 * Returns 0; SB_EPARSE with err->reason as channels_inspect() gives for a
 * body it would refuse; -EINVAL (NULL fn, NULL body with len > 0, unknown
 * type); -ENOMEM; or the callback's non-zero value. err may be NULL. */
int channels_parse(enum channel_type type, const char *body, size_t len, channels_parse_fn fn,
                   void *arg, struct channels_parse_error *err) SB_MUST_USE;

/* ---------------------------------------------------------------- outbound */

/* The most UTF-16 units one message of `type` may carry (0 for an unknown type). */
size_t channels_text_limit(enum channel_type type);

/* Splits a reply for `type` (domain_text_split() with channels_text_limit()):
 * a long reply is sent as several messages, cut at paragraph, line, sentence
 * or word breaks; text needing more than DOMAIN_SPLIT_MAX_PARTS messages is
 * cut and *truncated set. Same contract as domain_text_split(). */
int channels_text_split(enum channel_type type, const char *text, size_t len,
                        struct sb_str parts[DOMAIN_SPLIT_MAX_PARTS], size_t *nparts,
                        bool *truncated) SB_MUST_USE;

/* Appends to `out` the URL of the send endpoint:
 * "<base_url>/<version>/<account_id>/messages", where base_url is e.g.
 * "https://graph.facebook.com" (no trailing slash needed), version "v21.0",
 * account_id the WhatsApp phone_number_id or the Instagram account id (or
 * "me"). Returns 0, -EINVAL (empty part, or a version/account_id that is not
 * one path segment of [A-Za-z0-9._-]), SB_ELIMIT or -ENOMEM (out unchanged). */
int channels_send_url(struct sb_buf *out, const char *base_url, const char *version,
                      const char *account_id) SB_MUST_USE;

/* Appends the WhatsApp Cloud API body sending one text message:
 *   {"messaging_product":"whatsapp","recipient_type":"individual","to":…,
 *    "type":"text","text":{"preview_url":false,"body":…}
 *    [,"context":{"message_id":reply_to}]}
 * `to` is the customer's wa_id (digits, optional leading +), reply_to the
 * wamid answered or NULL (give it for the first part of a split reply only).
 * text must be non-empty and at most CHANNELS_WA_TEXT_MAX units (split
 * first); invalid UTF-8 is sent as U+FFFD. Returns 0; -EINVAL (bad `to`,
 * empty text, bad reply_to); SB_ELIMIT (text too long, or out's limit);
 * -ENOMEM. out is unchanged on failure. */
int channels_wa_text_body(struct sb_buf *out, const char *to, struct sb_str text,
                          const char *reply_to, bool preview_url) SB_MUST_USE;

/* Appends the Instagram Send API body {"recipient":{"id":…},"message":{"text":…}}
 * for the customer's IGSID; text at most CHANNELS_IG_TEXT_MAX units. Same
 * returns as channels_wa_text_body(). */
int channels_ig_text_body(struct sb_buf *out, const char *recipient_id,
                          struct sb_str text) SB_MUST_USE;

/* What a send call came back with. */
struct channels_send_result {
    bool ok;                              /* accepted: message_id is set */
    char message_id[DOMAIN_ID_MAX + 1];   /* WhatsApp messages[0].id, Instagram message_id */
    char recipient_id[DOMAIN_ID_MAX + 1]; /* WhatsApp contacts[0].wa_id, Instagram recipient_id */
    long http_status;                     /* as given */
    /* The Graph error envelope, when there was one (code DOMAIN_NO_CODE otherwise). */
    long code, subcode;
    char error_type[CHANNELS_GRAPH_SHORT_MAX + 1];
    char error_message[CHANNELS_GRAPH_MSG_MAX + 1];
    char error_details[CHANNELS_GRAPH_DETAILS_MAX + 1];
    char fbtrace_id[CHANNELS_GRAPH_SHORT_MAX + 1];
    struct domain_error_class error_class; /* what to do when !ok (domain_send_error_class()) */
};

/* Reads the response of a WhatsApp or Instagram send: http_status is the
 * HTTP status, or 0 when the request failed without one (connection error,
 * timeout; body NULL). Fills *out completely in every case:
 *   - 2xx with the success shape -> ok, message_id (and recipient_id);
 *   - the Graph envelope {"error":{message,type,code,error_subcode,
 *     error_data{details},fbtrace_id}} -> the error fields, classified by code;
 *   - anything else (no body, HTML from a proxy, 2xx without an id) ->
 *     classified by HTTP status alone (a 2xx without an id FAILs: resending
 *     could deliver twice).
 * Returns 0, or -EINVAL for NULL out, an unknown type, or NULL body with len > 0. */
int channels_send_response_parse(enum channel_type type, long http_status, const char *body,
                                 size_t len, struct channels_send_result *out) SB_MUST_USE;

#endif
