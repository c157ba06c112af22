/* message.c - the internal message's lifetime (owned strings and metadata),
 * bounded string copies and the validation of a message against the
 * schema's rules. */
#include <stdlib.h>
#include <string.h>

#include "domain.h"

int domain_message_init(struct domain_message *m)
{
    if (!m)
        return -EINVAL;
    memset(m, 0, sizeof *m);
    m->type = DOMAIN_TYPE_TEXT;
    m->direction = DOMAIN_INBOUND;
    m->sender = DOMAIN_SENDER_CUSTOMER;
    m->text = calloc(1, 1);
    m->metadata = json_object();
    if (!m->text || !m->metadata) {
        domain_message_cleanup(m);
        return -ENOMEM;
    }
    return 0;
}

void domain_message_cleanup(struct domain_message *m)
{
    if (!m)
        return;
    free(m->provider_message_id);
    free(m->contact_id);
    free(m->contact_name);
    free(m->contact_phone);
    free(m->contact_email);
    free(m->text);
    free(m->reply_to);
    json_decref(m->metadata);
    memset(m, 0, sizeof *m);
}

int domain_str_set(char **field, const char *s, size_t n, size_t max)
{
    if (!field)
        return -EINVAL;
    if (!s) {
        free(*field);
        *field = NULL;
        return 0;
    }
    if (n > max)
        return SB_ELIMIT;
    char *copy = malloc(n + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, s, n);
    copy[n] = '\0';
    free(*field);
    *field = copy;
    return 0;
}

bool domain_str_copy(char *dst, size_t size, const char *s)
{
    if (!dst || size == 0)
        return false;
    if (!s)
        s = "";
    size_t n = strlen(s);
    size_t keep = domain_utf8_prefix(s, n, size - 1);
    memcpy(dst, s, keep);
    dst[keep] = '\0';
    return keep < n;
}

static bool too_long(const char *s, size_t max)
{
    return s && strlen(s) > max;
}

static bool empty_or_too_long(const char *s, size_t max)
{
    return s && (s[0] == '\0' || strlen(s) > max);
}

static int invalid(const char **why, const char *sentence)
{
    *why = sentence;
    return -EINVAL;
}

int domain_message_validate(const struct domain_message *m, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    if (!m)
        return invalid(why, "no message");
    if ((unsigned)m->type > DOMAIN_TYPE_UNSUPPORTED)
        return invalid(why, "unknown message type");
    if ((unsigned)m->direction > DOMAIN_OUTBOUND || (unsigned)m->sender > DOMAIN_SENDER_SYSTEM)
        return invalid(why, "unknown direction or sender");
    if ((m->direction == DOMAIN_INBOUND) != (m->sender == DOMAIN_SENDER_CUSTOMER))
        return invalid(why, "inbound messages, and only they, come from the customer");
    if (empty_or_too_long(m->provider_message_id, DOMAIN_ID_MAX))
        return invalid(why, "provider_message_id must be 1..256 bytes");
    if (empty_or_too_long(m->contact_id, DOMAIN_ID_MAX) ||
        empty_or_too_long(m->reply_to, DOMAIN_ID_MAX))
        return invalid(why, "contact_id and reply_to must be 1..256 bytes");
    if (too_long(m->contact_name, DOMAIN_NAME_MAX) ||
        too_long(m->contact_phone, DOMAIN_PHONE_MAX) ||
        too_long(m->contact_email, DOMAIN_EMAIL_MAX))
        return invalid(why, "contact name, phone or email too long");
    if (!m->text || strlen(m->text) > DOMAIN_TEXT_MAX)
        return invalid(why, "text must be set and at most 1 MiB");
    if (!json_is_object(m->metadata))
        return invalid(why, "metadata must be a JSON object");
    if (m->timestamp_ms < 0)
        return invalid(why, "timestamp must not be negative");
    return 0;
}
