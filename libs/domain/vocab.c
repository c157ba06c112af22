/* vocab.c - the names of the domain's enums, exactly as the database CHECK
 * lists (migrations/0002_messaging.sql), DESIGN.md §3.2 events and seed 004
 * commands spell them, and their parsers. */
#include <string.h>

#include "domain.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_of(const char *const *names, size_t n, unsigned v)
{
    return v < n ? names[v] : "unknown";
}

static int index_of(const char *const *names, size_t n, const char *s, unsigned *out)
{
    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (unsigned)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* Defines foo_name() and foo_parse() over a names table for `enum e`. */
#define DOMAIN_VOCAB(prefix, e, names)                                                             \
    const char *prefix##_name(enum e v)                                                            \
    {                                                                                              \
        return name_of(names, COUNT(names), (unsigned)v);                                          \
    }                                                                                              \
    int prefix##_parse(const char *s, enum e *out)                                                 \
    {                                                                                              \
        unsigned i;                                                                                \
        if (!out || index_of(names, COUNT(names), s, &i) != 0)                                     \
            return -EINVAL;                                                                        \
        *out = (enum e)i;                                                                          \
        return 0;                                                                                  \
    }

static const char *const MESSAGE_TYPES[] = {
    [DOMAIN_TYPE_TEXT] = "text",         [DOMAIN_TYPE_IMAGE] = "image",
    [DOMAIN_TYPE_AUDIO] = "audio",       [DOMAIN_TYPE_VIDEO] = "video",
    [DOMAIN_TYPE_DOCUMENT] = "document", [DOMAIN_TYPE_LOCATION] = "location",
    [DOMAIN_TYPE_CONTACTS] = "contacts", [DOMAIN_TYPE_INTERACTIVE] = "interactive",
    [DOMAIN_TYPE_BUTTON] = "button",     [DOMAIN_TYPE_REACTION] = "reaction",
    [DOMAIN_TYPE_STICKER] = "sticker",   [DOMAIN_TYPE_TEMPLATE] = "template",
    [DOMAIN_TYPE_SYSTEM] = "system",     [DOMAIN_TYPE_UNSUPPORTED] = "unsupported",
};
DOMAIN_VOCAB(domain_message_type, domain_message_type, MESSAGE_TYPES)

static const char *const DIRECTIONS[] = {
    [DOMAIN_INBOUND] = "inbound",
    [DOMAIN_OUTBOUND] = "outbound",
};
DOMAIN_VOCAB(domain_direction, domain_direction, DIRECTIONS)

static const char *const SENDERS[] = {
    [DOMAIN_SENDER_CUSTOMER] = "customer",
    [DOMAIN_SENDER_BOT] = "bot",
    [DOMAIN_SENDER_HUMAN] = "human",
    [DOMAIN_SENDER_SYSTEM] = "system",
};
DOMAIN_VOCAB(domain_sender, domain_sender, SENDERS)

static const char *const STATUSES[] = {
    [DOMAIN_STATUS_RECEIVED] = "received",     [DOMAIN_STATUS_QUEUED] = "queued",
    [DOMAIN_STATUS_PROCESSING] = "processing", [DOMAIN_STATUS_SENT] = "sent",
    [DOMAIN_STATUS_DELIVERED] = "delivered",   [DOMAIN_STATUS_READ] = "read",
    [DOMAIN_STATUS_FAILED] = "failed",
};
DOMAIN_VOCAB(domain_status, domain_status, STATUSES)

static const char *const OWNERS[] = {
    [DOMAIN_OWNER_BOT] = "bot",
    [DOMAIN_OWNER_HUMAN] = "human",
};
DOMAIN_VOCAB(domain_owner, domain_owner, OWNERS)

static const char *const CONVERSATION_STATUSES[] = {
    [DOMAIN_CONVERSATION_OPEN] = "open",
    [DOMAIN_CONVERSATION_CLOSED] = "closed",
};
DOMAIN_VOCAB(domain_conversation_status, domain_conversation_status, CONVERSATION_STATUSES)

static const char *const RETRIES[] = {
    [DOMAIN_RETRY] = "retry",
    [DOMAIN_RETRY_RECIPIENT] = "retry_recipient",
    [DOMAIN_RETRY_LATER] = "retry_later",
    [DOMAIN_FAIL] = "fail",
};

const char *domain_retry_name(enum domain_retry r)
{
    return name_of(RETRIES, COUNT(RETRIES), (unsigned)r);
}

static const char *const EVENTS[] = {
    [DOMAIN_EVENT_MESSAGE_RECEIVED] = "message.received",
    [DOMAIN_EVENT_MESSAGE_PROCESSED] = "message.processed",
    [DOMAIN_EVENT_AI_RESPONSE_GENERATED] = "ai.response.generated",
    [DOMAIN_EVENT_MESSAGE_SENT] = "message.sent",
    [DOMAIN_EVENT_MESSAGE_DELIVERED] = "message.delivered",
    [DOMAIN_EVENT_MESSAGE_READ] = "message.read",
    [DOMAIN_EVENT_MESSAGE_FAILED] = "message.failed",
    [DOMAIN_EVENT_CONVERSATION_CREATED] = "conversation.created",
    [DOMAIN_EVENT_CONVERSATION_UPDATED] = "conversation.updated",
    [DOMAIN_EVENT_CONVERSATION_COMPLETED] = "conversation.completed",
    [DOMAIN_EVENT_ASSISTANT_CONFIGURED] = "assistant.configured",
    [DOMAIN_EVENT_CHANNEL_STATUS_CHANGED] = "channel.status.changed",
    [DOMAIN_EVENT_FOLLOWUP_SCHEDULED] = "followup.scheduled",
    [DOMAIN_EVENT_KNOWLEDGE_INDEXED] = "knowledge.indexed",
};
_Static_assert(COUNT(EVENTS) == DOMAIN_EVENT_COUNT, "DOMAIN_EVENT_COUNT");
DOMAIN_VOCAB(domain_event, domain_event, EVENTS)

static const char *const COMMANDS[] = {
    [DOMAIN_COMMAND_PROCESS_MESSAGE] = "ProcessMessage",
    [DOMAIN_COMMAND_GENERATE_AI_RESPONSE] = "GenerateAIResponse",
    [DOMAIN_COMMAND_SEND_TO_CHANNEL] = "SendToChannel",
};
_Static_assert(COUNT(COMMANDS) == DOMAIN_COMMAND_COUNT, "DOMAIN_COMMAND_COUNT");
DOMAIN_VOCAB(domain_command, domain_command, COMMANDS)
