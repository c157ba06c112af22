/* test_vocab.c - every enum name matches the schema / DESIGN.md string,
 * round-trips through its parser, and parsers refuse everything else. */
#include <criterion/criterion.h>
#include <string.h>

#include "domain.h"

/* Checks name(i) == want[i] and parse(want[i]) == i for every value. */
#define CHECK_VOCAB(prefix, e, want)                                                               \
    do {                                                                                           \
        for (size_t i = 0; i < sizeof(want) / sizeof((want)[0]); i++) {                            \
            cr_assert_str_eq(prefix##_name((enum e)i), (want)[i]);                                 \
            enum e v = (enum e)99;                                                                 \
            cr_assert_eq(prefix##_parse((want)[i], &v), 0, "%s", (want)[i]);                       \
            cr_assert_eq((size_t)v, i);                                                            \
        }                                                                                          \
        size_t n = sizeof(want) / sizeof((want)[0]);                                               \
        cr_assert_str_eq(prefix##_name((enum e)n), "unknown");                                     \
        cr_assert_str_eq(prefix##_name((enum e) - 1), "unknown");                                  \
        enum e keep = (enum e)0;                                                                   \
        cr_assert_eq(prefix##_parse(NULL, &keep), -EINVAL);                                        \
        cr_assert_eq(prefix##_parse("", &keep), -EINVAL);                                          \
        cr_assert_eq(prefix##_parse("unknown", &keep), -EINVAL);                                   \
        cr_assert_eq(prefix##_parse((want)[0], NULL), -EINVAL);                                    \
        cr_assert_eq((int)keep, 0, "a failed parse must leave *out alone");                        \
    } while (0)

Test(vocab, message_types_match_schema, .timeout = 30)
{
    static const char *const want[] = {
        "text",        "image",  "audio",    "video",   "document", "location", "contacts",
        "interactive", "button", "reaction", "sticker", "template", "system",   "unsupported"};
    CHECK_VOCAB(domain_message_type, domain_message_type, want);
    enum domain_message_type t;
    cr_assert_eq(domain_message_type_parse("Text", &t), -EINVAL, "case matters");
    cr_assert_eq(domain_message_type_parse("text ", &t), -EINVAL);
}

Test(vocab, directions_senders_statuses, .timeout = 30)
{
    static const char *const dirs[] = {"inbound", "outbound"};
    static const char *const senders[] = {"customer", "bot", "human", "system"};
    static const char *const statuses[] = {"received",  "queued", "processing", "sent",
                                           "delivered", "read",   "failed"};
    CHECK_VOCAB(domain_direction, domain_direction, dirs);
    CHECK_VOCAB(domain_sender, domain_sender, senders);
    CHECK_VOCAB(domain_status, domain_status, statuses);
}

Test(vocab, owners_and_conversation_statuses, .timeout = 30)
{
    static const char *const owners[] = {"bot", "human"};
    static const char *const conv[] = {"open", "closed"};
    CHECK_VOCAB(domain_owner, domain_owner, owners);
    CHECK_VOCAB(domain_conversation_status, domain_conversation_status, conv);
}

Test(vocab, events_match_design, .timeout = 30)
{
    static const char *const want[] = {
        "message.received",       "message.processed",    "ai.response.generated",
        "message.sent",           "message.delivered",    "message.read",
        "message.failed",         "conversation.created", "conversation.updated",
        "conversation.completed", "assistant.configured", "channel.status.changed",
        "followup.scheduled",     "knowledge.indexed"};
    cr_assert_eq(sizeof want / sizeof want[0], DOMAIN_EVENT_COUNT);
    CHECK_VOCAB(domain_event, domain_event, want);
}

Test(vocab, commands, .timeout = 30)
{
    static const char *const want[] = {"ProcessMessage", "GenerateAIResponse", "SendToChannel"};
    cr_assert_eq(sizeof want / sizeof want[0], DOMAIN_COMMAND_COUNT);
    CHECK_VOCAB(domain_command, domain_command, want);
    enum domain_command c;
    cr_assert_eq(domain_command_parse("processmessage", &c), -EINVAL);
}

Test(vocab, retry_names, .timeout = 30)
{
    cr_assert_str_eq(domain_retry_name(DOMAIN_RETRY), "retry");
    cr_assert_str_eq(domain_retry_name(DOMAIN_RETRY_RECIPIENT), "retry_recipient");
    cr_assert_str_eq(domain_retry_name(DOMAIN_RETRY_LATER), "retry_later");
    cr_assert_str_eq(domain_retry_name(DOMAIN_FAIL), "fail");
    cr_assert_str_eq(domain_retry_name((enum domain_retry)42), "unknown");
}
