/* test_message.c - the internal message's lifetime, bounded string copies and
 * validation against the schema's rules. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

Test(message, init_gives_an_empty_inbound_text, .timeout = 30)
{
    struct domain_message m;
    memset(&m, 0x5a, sizeof m);
    cr_assert_eq(domain_message_init(&m), 0);
    cr_assert_eq(m.type, DOMAIN_TYPE_TEXT);
    cr_assert_eq(m.direction, DOMAIN_INBOUND);
    cr_assert_eq(m.sender, DOMAIN_SENDER_CUSTOMER);
    cr_assert_not(m.echo);
    cr_assert_null(m.provider_message_id);
    cr_assert_null(m.contact_id);
    cr_assert_null(m.reply_to);
    cr_assert_str_eq(m.text, "");
    cr_assert(json_is_object(m.metadata));
    cr_assert_eq(json_object_size(m.metadata), 0);
    cr_assert_eq(m.timestamp_ms, 0);
    cr_assert_eq(domain_message_validate(&m, NULL), 0);
    domain_message_cleanup(&m);
    cr_assert_null(m.text);
    cr_assert_null(m.metadata);
    domain_message_cleanup(&m); /* twice is harmless */
    cr_assert_eq(domain_message_init(NULL), -EINVAL);
    domain_message_cleanup(NULL);
}

Test(message, str_set_copies_replaces_and_limits, .timeout = 30)
{
    char *f = NULL;
    cr_assert_eq(domain_str_set(&f, "hello world", 5, 10), 0);
    cr_assert_str_eq(f, "hello");
    char *before = f;
    cr_assert_eq(domain_str_set(&f, "0123456789A", 11, 10), SB_ELIMIT);
    cr_assert_eq(f, before, "a refused copy leaves the field alone");
    cr_assert_str_eq(f, "hello");
    cr_assert_eq(domain_str_set(&f, "0123456789", 10, 10), 0, "exactly max is fine");
    cr_assert_str_eq(f, "0123456789");
    cr_assert_eq(domain_str_set(&f, NULL, 0, 10), 0);
    cr_assert_null(f);
    cr_assert_eq(domain_str_set(NULL, "x", 1, 10), -EINVAL);
    cr_assert_eq(domain_str_set(&f, "", 0, 0), 0);
    cr_assert_str_eq(f, "");
    free(f);
}

Test(message, str_copy_cuts_at_character_boundary, .timeout = 30)
{
    char buf[6];
    cr_assert_not(domain_str_copy(buf, sizeof buf, "abc"));
    cr_assert_str_eq(buf, "abc");
    cr_assert(domain_str_copy(buf, sizeof buf, "abcd\xC3\xA9")); /* é would end at byte 6 */
    cr_assert_str_eq(buf, "abcd");
    cr_assert_not(domain_str_copy(buf, sizeof buf, NULL));
    cr_assert_str_eq(buf, "");
    cr_assert_not(domain_str_copy(buf, 0, "x"));
    cr_assert(domain_str_copy(buf, 1, "x"));
    cr_assert_str_eq(buf, "");
}

static void expect_invalid(struct domain_message *m, const char *what)
{
    const char *why = NULL;
    cr_assert_eq(domain_message_validate(m, &why), -EINVAL, "%s should be refused", what);
    cr_assert_not_null(why);
    cr_assert_neq(why[0], '\0');
}

Test(message, validate_enforces_schema_rules, .timeout = 30)
{
    struct domain_message m;
    cr_assert_eq(domain_message_init(&m), 0);
    const char *why = "x";
    cr_assert_eq(domain_message_validate(&m, &why), 0);
    cr_assert_null(why);

    m.direction = DOMAIN_OUTBOUND;
    expect_invalid(&m, "outbound from the customer");
    m.sender = DOMAIN_SENDER_HUMAN;
    cr_assert_eq(domain_message_validate(&m, NULL), 0);
    m.direction = DOMAIN_INBOUND;
    expect_invalid(&m, "inbound from a human");
    m.sender = DOMAIN_SENDER_CUSTOMER;

    m.type = (enum domain_message_type)77;
    expect_invalid(&m, "unknown type");
    m.type = DOMAIN_TYPE_REACTION;

    char id[DOMAIN_ID_MAX + 2];
    memset(id, 'i', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    cr_assert_eq(domain_str_set(&m.provider_message_id, id, DOMAIN_ID_MAX + 1, 4096), 0);
    expect_invalid(&m, "a 257-byte provider id");
    cr_assert_eq(domain_str_set(&m.provider_message_id, id, DOMAIN_ID_MAX, 4096), 0);
    cr_assert_eq(domain_message_validate(&m, NULL), 0);
    cr_assert_eq(domain_str_set(&m.provider_message_id, "", 0, 4096), 0);
    expect_invalid(&m, "an empty provider id");
    cr_assert_eq(domain_str_set(&m.provider_message_id, "wamid.1", 7, 4096), 0);

    cr_assert_eq(domain_str_set(&m.contact_phone, "123456789012345678901234567890123", 33, 64), 0);
    expect_invalid(&m, "a 33-byte phone");
    cr_assert_eq(domain_str_set(&m.contact_phone, NULL, 0, 64), 0);

    json_decref(m.metadata);
    m.metadata = json_array();
    expect_invalid(&m, "array metadata");
    json_decref(m.metadata);
    m.metadata = json_object();

    free(m.text);
    m.text = NULL;
    expect_invalid(&m, "NULL text");
    cr_assert_eq(domain_str_set(&m.text, "ok", 2, 10), 0);

    m.timestamp_ms = -1;
    expect_invalid(&m, "negative timestamp");
    m.timestamp_ms = 1739321024000;
    cr_assert_eq(domain_message_validate(&m, NULL), 0);
    cr_assert_eq(domain_message_validate(NULL, &why), -EINVAL);
    domain_message_cleanup(&m);
}
