/* domain.h - what Sabiá knows about messaging, with no I/O at all: the
 * vocabulary of messages and conversations (the strings of the database
 * CHECK lists), the internal message every channel is converted into
 * (seed 004 "Protocol Interno"), status updates, the rules as pure
 * functions (outbound status machine, conversation ownership, message
 * buffering, retry and backoff, provider error classification), domain
 * event and command names and the JSON envelope events travel in.
 *
 * Nothing here includes libpq, hiredis, curl or libwebsockets, reads the
 * clock or the network: every input, including time and randomness, is an
 * argument, so the rules are testable in microseconds. JSON values are
 * jansson's. Every function is thread-safe and keeps no state. */
#ifndef SABIA_DOMAIN_H
#define SABIA_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core.h"

/* ---------------------------------------------------------------- limits
 * The column limits of migrations/0002_messaging.sql, in bytes. */

#define DOMAIN_ID_MAX            256     /* provider ids, external contact ids */
#define DOMAIN_NAME_MAX          256     /* contact name */
#define DOMAIN_PHONE_MAX         32      /* contact phone */
#define DOMAIN_EMAIL_MAX         320     /* contact email */
#define DOMAIN_TEXT_MAX          1048576 /* message content */
#define DOMAIN_ERROR_TITLE_MAX   255     /* provider error title in a status update */
#define DOMAIN_ERROR_DETAILS_MAX 1023    /* provider error details in a status update */
#define DOMAIN_EVENT_CONTENT_MAX 4096    /* message content carried inside an event */
#define DOMAIN_PREVIEW_MAX       500     /* conversations.last_message_preview */
#define DOMAIN_SPLIT_MAX_PARTS   10      /* most parts domain_text_split() produces */

/* ---------------------------------------------------------------- vocabulary
 * Each enum has a _name() returning the exact schema string (a static string,
 * "unknown" outside the enum) and a _parse() accepting exactly those strings:
 * it returns 0, or -EINVAL for NULL or anything else (*out untouched). */

enum domain_message_type {
    DOMAIN_TYPE_TEXT,
    DOMAIN_TYPE_IMAGE,
    DOMAIN_TYPE_AUDIO,
    DOMAIN_TYPE_VIDEO,
    DOMAIN_TYPE_DOCUMENT,
    DOMAIN_TYPE_LOCATION,
    DOMAIN_TYPE_CONTACTS,
    DOMAIN_TYPE_INTERACTIVE,
    DOMAIN_TYPE_BUTTON,
    DOMAIN_TYPE_REACTION,
    DOMAIN_TYPE_STICKER,
    DOMAIN_TYPE_TEMPLATE,
    DOMAIN_TYPE_SYSTEM,
    DOMAIN_TYPE_UNSUPPORTED,
};
const char *domain_message_type_name(enum domain_message_type t);
int domain_message_type_parse(const char *s, enum domain_message_type *out) SB_MUST_USE;

enum domain_direction { DOMAIN_INBOUND, DOMAIN_OUTBOUND };
const char *domain_direction_name(enum domain_direction d);
int domain_direction_parse(const char *s, enum domain_direction *out) SB_MUST_USE;

enum domain_sender {
    DOMAIN_SENDER_CUSTOMER,
    DOMAIN_SENDER_BOT,
    DOMAIN_SENDER_HUMAN,
    DOMAIN_SENDER_SYSTEM,
};
const char *domain_sender_name(enum domain_sender s);
int domain_sender_parse(const char *s, enum domain_sender *out) SB_MUST_USE;

/* Message status: inbound messages are RECEIVED; outbound ones go
 * QUEUED -> PROCESSING -> SENT -> DELIVERED -> READ, or FAILED. */
enum domain_status {
    DOMAIN_STATUS_RECEIVED,
    DOMAIN_STATUS_QUEUED,
    DOMAIN_STATUS_PROCESSING,
    DOMAIN_STATUS_SENT,
    DOMAIN_STATUS_DELIVERED,
    DOMAIN_STATUS_READ,
    DOMAIN_STATUS_FAILED,
};
const char *domain_status_name(enum domain_status s);
int domain_status_parse(const char *s, enum domain_status *out) SB_MUST_USE;

enum domain_owner { DOMAIN_OWNER_BOT, DOMAIN_OWNER_HUMAN };
const char *domain_owner_name(enum domain_owner o);
int domain_owner_parse(const char *s, enum domain_owner *out) SB_MUST_USE;

enum domain_conversation_status { DOMAIN_CONVERSATION_OPEN, DOMAIN_CONVERSATION_CLOSED };
const char *domain_conversation_status_name(enum domain_conversation_status s);
int domain_conversation_status_parse(const char *s,
                                     enum domain_conversation_status *out) SB_MUST_USE;

/* ---------------------------------------------------------------- text */

/* Length (1..4) of the valid UTF-8 sequence at s (n >= 1 bytes available),
 * or 0 when s starts no valid sequence (overlong forms, surrogates and code
 * points above U+10FFFF are invalid). *cp receives its code point. */
size_t domain_utf8_seq(const char *s, size_t n, uint32_t *cp);

/* Length of the longest prefix of s (n bytes) that is at most `max` bytes and
 * does not end inside a UTF-8 sequence. Invalid bytes count as one byte each. */
size_t domain_utf8_prefix(const char *s, size_t n, size_t max);

/* Length of s (n bytes) in UTF-16 code units, which is how Meta (and
 * JavaScript) count "characters": a code point above U+FFFF counts 2, every
 * other code point 1, an invalid byte 1 (it is sent as U+FFFD). */
size_t domain_text_units(const char *s, size_t n);

/* Splits text (n bytes) into at most DOMAIN_SPLIT_MAX_PARTS parts of at most
 * `max_units` UTF-16 units each, for channels that cap a message's length.
 * A cut prefers, in order, the last paragraph break, line break, sentence end
 * (". ", "! ", "? ") or space in the second half of the part, else falls on a
 * code point boundary; whitespace at a cut is dropped, so no part starts or
 * ends with the whitespace it was cut at, and no part is empty. Text that
 * needs more parts is cut at the end of the last part and *truncated is set
 * (it is never dropped silently: the caller logs it).
 * parts[] (caller-owned, DOMAIN_SPLIT_MAX_PARTS elements) borrow from text.
 * Returns 0; -EINVAL for NULL arguments, max_units < 16, or text that is empty
 * or only whitespace (*nparts is then 0). */
int domain_text_split(const char *text, size_t n, size_t max_units,
                      struct sb_str parts[DOMAIN_SPLIT_MAX_PARTS], size_t *nparts,
                      bool *truncated) SB_MUST_USE;

/* ---------------------------------------------------------------- internal message
 *
 * The one shape every channel's payload becomes (seed 004 "Protocol
 * Interno"). text (the messages.content column) is the readable part: the
 * body, a caption, the title of a tapped button or list row, a reaction's
 * emoji, a location's name and address. metadata holds the type-specific
 * fields, with these keys (absent when the provider did not send them):
 *   media (image/audio/video/document/sticker): media_id, mime_type, sha256,
 *     url, filename, voice (bool), animated (bool); attachments (Instagram:
 *     every attachment as sent, array)
 *   location: latitude, longitude (numbers), name, address, url
 *   contacts: contacts (array as sent)
 *   interactive: interactive_type ("button_reply", "list_reply", "nfm_reply",
 *     ...), interactive_id, title, description, response_json
 *   button: payload, title (Instagram postbacks and quick replies too)
 *   reaction: reaction_message_id (the message reacted to), emoji, reaction
 *     (Instagram's name, e.g. "love"), removed: true when the reaction was
 *     taken back (no emoji)
 *   context: forwarded, frequently_forwarded (bools), referred_product,
 *     context_from, reply_to_story (Instagram {url,id}), referral (as sent)
 *   system: system_type (e.g. "user_changed_number"), new_wa_id
 *   template: template (as sent)
 *   unsupported: original_type (the provider's type), errors (as sent), raw
 *     (the provider's type-specific object as sent), malformed: true when a
 *     known type lacked its object
 *   echo: is_echo: true (sent from the business phone or app, not by Sabiá's
 *     API calls on WhatsApp; on Instagram also Sabiá's own sends come back:
 *     app_id tells which app sent it)
 *   standby: true (Instagram: another app owns the thread)
 */
struct domain_message {
    enum domain_message_type type;
    enum domain_direction direction;
    enum domain_sender sender;
    bool echo;                 /* sent from the business itself (see metadata is_echo) */
    char *provider_message_id; /* wamid, Instagram mid, web "<visitor>:<message>"; may be NULL */
    char *contact_id;          /* the customer: wa_id, IGSID or visitor_id; may be NULL */
    char *contact_name;        /* may be NULL */
    char *contact_phone;       /* may be NULL */
    char *contact_email;       /* may be NULL */
    int64_t timestamp_ms;      /* when the provider says it was sent; 0 = unknown */
    char *text;                /* content; never NULL after init ("" when none) */
    char *reply_to;            /* provider id of the message replied to; may be NULL */
    json_t *metadata;          /* a JSON object, never NULL after init */
};

/* Initialises caller-owned storage: type text, inbound, customer, every
 * string NULL except text "", metadata a new empty object. Returns 0 or
 * -ENOMEM (then m needs no cleanup, but cleanup is harmless). */
int domain_message_init(struct domain_message *m) SB_MUST_USE;

/* Frees every string and drops the metadata reference; m may be re-initialised.
 * Safe on a zeroed struct. */
void domain_message_cleanup(struct domain_message *m);

/* Replaces *field (any char * member of a message, or any heap string) with a
 * NUL-terminated copy of s (n bytes; s NULL clears it to NULL). The old value
 * is freed only on success. Returns 0, SB_ELIMIT when n > max (field
 * untouched; use domain_utf8_prefix() to shorten first), -EINVAL for NULL
 * field, or -ENOMEM. */
int domain_str_set(char **field, const char *s, size_t n, size_t max) SB_MUST_USE;

/* Checks m against the schema: a known type/direction/sender; inbound iff
 * sent by the customer; string lengths within the DOMAIN_*_MAX limits; text
 * not NULL; metadata an object. Returns 0 or -EINVAL and points *why (may
 * be NULL) at a static sentence. */
int domain_message_validate(const struct domain_message *m, const char **why) SB_MUST_USE;

/* A delivery report for an outbound message (WhatsApp statuses[], Instagram
 * read/delivery). Caller-owned, fixed size: no cleanup needed. */
struct domain_status_update {
    char provider_message_id[DOMAIN_ID_MAX + 1]; /* the id our send got back */
    enum domain_status status;                   /* SENT, DELIVERED, READ or FAILED */
    int64_t timestamp_ms;                        /* 0 = unknown */
    char recipient_id[DOMAIN_ID_MAX + 1];        /* the customer; "" when unknown */
    bool has_error;                              /* FAILED with a provider error */
    long error_code;
    char error_title[DOMAIN_ERROR_TITLE_MAX + 1];
    char error_details[DOMAIN_ERROR_DETAILS_MAX + 1];
};

/* Copies s into a fixed buffer of `size` bytes, cut at a UTF-8 boundary when
 * too long; always NUL-terminates (size > 0). Returns true when cut. */
bool domain_str_copy(char *dst, size_t size, const char *s);

/* ---------------------------------------------------------------- outbound status
 *
 * Monotonic: queued < processing < sent < delivered < read, forward jumps
 * allowed (Meta may skip "delivered": read implies it). failed is terminal.
 * Decisions:
 *   - a status at or below the current one (duplicate or late webhook, e.g.
 *     "delivered" after "read") is IGNORED, never an error;
 *   - failed after delivered or read is IGNORED: the customer has the message,
 *     a late failure report cannot take it back;
 *   - anything after failed is IGNORED (a retry is a new attempt on the same
 *     row through domain_status_requeue_ok(), not a transition);
 *   - received belongs to inbound messages only: received -> anything else,
 *     and any outbound status -> received, is INVALID. */
enum domain_transition {
    DOMAIN_TRANSITION_APPLY,   /* store `next` */
    DOMAIN_TRANSITION_IGNORE,  /* keep the current status, not an error */
    DOMAIN_TRANSITION_INVALID, /* a programming or data error: refuse and log */
};

/* Decides what `next` does to a message in status `current`. Returns 0 with
 * *result set, or -EINVAL for NULL result or values outside the enum. */
int domain_status_transition(enum domain_status current, enum domain_status next,
                             enum domain_transition *result) SB_MUST_USE;

/* True when a message in `current` may be put back to QUEUED for another
 * send attempt: only PROCESSING (an attempt that failed with a retryable
 * error) and QUEUED itself. */
bool domain_status_requeue_ok(enum domain_status current);

/* ---------------------------------------------------------------- ownership
 *
 * A conversation is owned by the bot or a human. Any human message (the
 * dashboard, the API, or an echo from the business phone/app) and an explicit
 * take-over give it to the human; hand-back and the auto-resume timer give it
 * back to the bot. The resume timer measures the human's silence: it is
 * restarted by human activity, never by customer messages (so a customer the
 * human forgot gets the bot back). */
enum domain_owner_event {
    DOMAIN_OWNER_CUSTOMER_MESSAGE,
    DOMAIN_OWNER_BOT_REPLY,     /* the bot is about to send a reply */
    DOMAIN_OWNER_HUMAN_MESSAGE, /* a person wrote (dashboard, API, business echo) */
    DOMAIN_OWNER_TAKE_OVER,
    DOMAIN_OWNER_HAND_BACK,
    DOMAIN_OWNER_AUTO_RESUME_DUE,
};

enum domain_resume_timer {
    DOMAIN_RESUME_KEEP,    /* leave bot_resume_at as it is */
    DOMAIN_RESUME_RESTART, /* set bot_resume_at = now + handoff_auto_resume_seconds */
    DOMAIN_RESUME_CLEAR,   /* set bot_resume_at = NULL */
};

struct domain_owner_result {
    enum domain_owner owner;         /* the owner after the event */
    bool changed;                    /* owner differs from before */
    bool bot_may_answer;             /* the bot may answer (CUSTOMER_MESSAGE) or send its
                                        reply (BOT_REPLY) now */
    enum domain_resume_timer resume; /* what to do with the auto-resume timer */
};

/* Applies `ev` to a conversation owned by `current`. Returns 0 with *out set,
 * or -EINVAL for NULL out or values outside the enums. */
int domain_owner_apply(enum domain_owner current, enum domain_owner_event ev,
                       struct domain_owner_result *out) SB_MUST_USE;

/* bot_resume_at for human activity at now_ms: now_ms + resume_s seconds, or
 * 0 (never) when resume_s <= 0 (handoff_auto_resume_seconds is NULL). */
int64_t domain_resume_deadline(int64_t now_ms, long resume_s);

/* True when an open conversation whose last message was at last_ms is idle
 * for idle_close_s seconds at now_ms (idle_close_s <= 0: never). */
bool domain_idle_close_due(int64_t last_ms, long idle_close_s, int64_t now_ms);

/* ---------------------------------------------------------------- buffering
 *
 * Consecutive customer messages are answered once: the answer is due at
 * min(last_inbound + window, first_pending + max_wait) (a trailing window
 * capped by the total wait), never before the last message itself. */

/* The deadline in ms. first_pending_ms <= 0 means "the last message is the
 * first pending one"; negative window/max_wait count as 0; max_wait below
 * window is raised to window. */
int64_t domain_buffer_deadline(int64_t first_pending_ms, int64_t last_inbound_ms, long window_s,
                               long max_wait_s);

/* The newest inbound message of a conversation as seen at some instant. */
struct domain_inbound_mark {
    const char *message_id; /* our messages.id; NULL when there is none */
    int64_t at_ms;          /* its created_at */
};

/* Abort-if-newer: true when `now` shows a customer message that `at_start`
 * (taken when reply generation began) did not, i.e. the newest message id
 * changed and did not go back in time. The reply being generated is then
 * stale: drop it and let the new deadline answer everything together. */
bool domain_buffer_superseded(const struct domain_inbound_mark *at_start,
                              const struct domain_inbound_mark *now);

/* ---------------------------------------------------------------- retries */

/* Exponential backoff with "equal jitter", deterministic in `random`:
 * d = min(cap_ms, base_ms * 2^(attempt-1)) and the result is
 * d/2 + random % (d - d/2 + 1), i.e. within [d/2, d]. attempt 0 counts as 1;
 * cap_ms below base_ms is raised to base_ms; base_ms <= 0 gives 0. Never
 * overflows, whatever the attempt. */
int64_t domain_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms, uint32_t random);

enum domain_retry {
    DOMAIN_RETRY,           /* retry with backoff */
    DOMAIN_RETRY_RECIPIENT, /* retry later for this recipient only (pair rate limit) */
    DOMAIN_RETRY_LATER,     /* retry after a long delay (spam limit, maintenance) */
    DOMAIN_FAIL,            /* do not retry: fail the message */
};
/* "retry", "retry_recipient", "retry_later", "fail" ("unknown" outside the enum). */
const char *domain_retry_name(enum domain_retry r);

#define DOMAIN_NO_CODE (-1L) /* no provider error code (network error, bare HTTP status) */

/* What to do about one failed send. */
struct domain_error_class {
    enum domain_retry retry;
    int max_attempts;     /* cap on total attempts for this error; 0 = the caller's policy */
    int64_t min_delay_ms; /* floor for the next attempt's delay (131056: 6 s) */
    bool alert;           /* needs an operator (token, permissions, policy, spam) */
    const char *reason;   /* static short text, e.g. "rate limit hit" */
};

/* Classifies a Graph API error code (WhatsApp Cloud and Instagram share the
 * envelope) per shared/reference/protocols.md §2.4. Unknown codes FAIL. */
struct domain_error_class domain_wa_error_class(long code);

/* Classifies a failed send from what is known: with a Graph code, the table
 * above (except that an unknown code with an HTTP 5xx status retries);
 * without one (code DOMAIN_NO_CODE): network error (http_status 0), 5xx, 408
 * and 429 retry; any other status FAILs (a 4xx without the Graph envelope
 * means a wrong URL or proxy, which retrying does not fix). */
struct domain_error_class domain_send_error_class(long http_status, long code);

/* The delay before attempt number `attempt` (1 = first retry) of a send that
 * failed with `cls`: max(domain_backoff_ms(...), cls->min_delay_ms). */
int64_t domain_retry_delay_ms(const struct domain_error_class *cls, unsigned attempt,
                              int64_t base_ms, int64_t cap_ms, uint32_t random);

/* True when another attempt is allowed after `attempts_done` attempts, given
 * the policy's max_attempts and the class's own cap. FAIL never retries. */
bool domain_retry_allowed(const struct domain_error_class *cls, unsigned attempts_done,
                          unsigned max_attempts);

/* ---------------------------------------------------------------- events and commands
 * docs/events.md describes each event's data. */

enum domain_event {
    DOMAIN_EVENT_MESSAGE_RECEIVED,
    DOMAIN_EVENT_MESSAGE_PROCESSED,
    DOMAIN_EVENT_AI_RESPONSE_GENERATED,
    DOMAIN_EVENT_MESSAGE_SENT,
    DOMAIN_EVENT_MESSAGE_DELIVERED,
    DOMAIN_EVENT_MESSAGE_READ,
    DOMAIN_EVENT_MESSAGE_FAILED,
    DOMAIN_EVENT_CONVERSATION_CREATED,
    DOMAIN_EVENT_CONVERSATION_UPDATED,
    DOMAIN_EVENT_CONVERSATION_COMPLETED,
    DOMAIN_EVENT_ASSISTANT_CONFIGURED,
    DOMAIN_EVENT_CHANNEL_STATUS_CHANGED,
    DOMAIN_EVENT_FOLLOWUP_SCHEDULED,
    DOMAIN_EVENT_KNOWLEDGE_INDEXED,
};
#define DOMAIN_EVENT_COUNT 14
/* "message.received", ... as listed in DESIGN.md §3.2. */
const char *domain_event_name(enum domain_event e);
int domain_event_parse(const char *s, enum domain_event *out) SB_MUST_USE;

/* The event published when an outbound message reaches `s` (message.sent,
 * .delivered, .read, .failed), via *out. Returns 0 or -EINVAL for the other
 * statuses. */
int domain_status_event(enum domain_status s, enum domain_event *out) SB_MUST_USE;

/* Commands: each has exactly one handler and may be retried. */
enum domain_command {
    DOMAIN_COMMAND_PROCESS_MESSAGE,
    DOMAIN_COMMAND_GENERATE_AI_RESPONSE,
    DOMAIN_COMMAND_SEND_TO_CHANNEL,
};
#define DOMAIN_COMMAND_COUNT 3
/* "ProcessMessage", "GenerateAIResponse", "SendToChannel". */
const char *domain_command_name(enum domain_command c);
int domain_command_parse(const char *s, enum domain_command *out) SB_MUST_USE;

/* Builds the envelope published for webapp and public-api:
 *   {"id","type","tenant_id","occurred_at","correlation_id","data"}
 * id: `id` when given (a UUID), else a new UUIDv7; occurred_at: RFC 3339 UTC
 * with milliseconds of occurred_ms (> 0); correlation_id: null when NULL.
 * Steals the reference to `data` (a JSON object) even on failure.
 * Returns a new reference, or NULL for a bad argument (unknown type, tenant_id
 * not a UUID, data not an object, id not a UUID) or allocation failure. */
json_t *domain_event_envelope(enum domain_event type, const char *tenant_id, int64_t occurred_ms,
                              const char *correlation_id, const char *id, json_t *data);

/* The envelope read back, borrowing from the JSON value. */
struct domain_event_header {
    enum domain_event type;
    const char *id, *tenant_id, *occurred_at, *correlation_id; /* correlation_id may be NULL */
    const json_t *data;
};
/* Checks an envelope made by domain_event_envelope() (as received from the
 * bus). Returns 0, or SB_EPARSE when a member is missing or of the wrong
 * kind or the type is unknown. */
int domain_event_envelope_parse(const json_t *env, struct domain_event_header *out) SB_MUST_USE;

/* Builds a command message: {"id","command","tenant_id","issued_at",
 * "correlation_id","attempt","data"}; same rules as domain_event_envelope(). */
json_t *domain_command_envelope(enum domain_command cmd, const char *tenant_id, int64_t issued_ms,
                                const char *correlation_id, unsigned attempt, json_t *data);

/* ---------------------------------------------------------------- event data builders */

/* A stored message as events describe it; strings are borrowed, may be NULL. */
struct domain_message_summary {
    const char *id, *conversation_id, *channel_id, *channel_type;
    const char *provider_message_id, *sender_user_id;
    enum domain_message_type type;
    enum domain_direction direction;
    enum domain_sender sender;
    enum domain_status status;
    const char *content; /* carried up to DOMAIN_EVENT_CONTENT_MAX bytes */
    int64_t created_ms;
};

/* {"id","conversation_id","channel_id","channel_type","direction",
 *  "sender_type","sender_user_id","type","status","content",
 *  "content_truncated","provider_message_id","created_at"}: a new
 * reference, or NULL on allocation failure or values outside the enums. */
json_t *domain_message_summary_json(const struct domain_message_summary *m);

/* data of message.sent/delivered/read/failed:
 * {"message_id","conversation_id","provider_message_id","status",
 *  "timestamp" (RFC 3339, null when 0), "error": {"code","title","details"}
 *  or null}. error_code is DOMAIN_NO_CODE when none; strings may be NULL. */
struct domain_status_change {
    const char *message_id, *conversation_id, *provider_message_id;
    enum domain_status status;
    int64_t at_ms;
    long error_code;
    const char *error_title, *error_details;
};
json_t *domain_status_change_json(const struct domain_status_change *c);

/* A conversation as events describe it; strings borrowed, may be NULL. */
struct domain_conversation_summary {
    const char *id, *channel_id, *channel_type, *contact_id, *assistant_id, *assigned_user_id;
    enum domain_conversation_status status;
    enum domain_owner owner;
    const char *closed_reason;
    int64_t created_ms, updated_ms;
};
/* {"id","channel_id","channel_type","contact_id","assistant_id",
 *  "assigned_user_id","status","owner","closed_reason","created_at",
 *  "updated_at"}: a new reference or NULL. */
json_t *domain_conversation_summary_json(const struct domain_conversation_summary *c);

#endif
