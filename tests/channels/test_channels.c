/* test_channels.c - channel type names, channels_inspect() argument handling
 * (NULL and tiny reason/detail buffers, bad arguments, output reset) and the
 * dedup key length boundary. */
#include "helpers.h"

#define WA_MSG(id)                                                                                 \
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":"               \
    "{\"messages\":[{\"id\":\"" id "\"}]}}]}]}"

Test(types, parse_and_name, .timeout = 30)
{
    enum channel_type t = CHANNEL_WEB;
    cr_assert_eq(channels_type_parse("whatsapp", &t), 0);
    cr_assert_eq(t, CHANNEL_WHATSAPP);
    cr_assert_eq(channels_type_parse("instagram", &t), 0);
    cr_assert_eq(t, CHANNEL_INSTAGRAM);
    cr_assert_eq(channels_type_parse("web", &t), 0);
    cr_assert_eq(t, CHANNEL_WEB);
    const char *bad[] = {"", "WhatsApp", "whatsapp ", "webb", "telegram", "we"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = CHANNEL_INSTAGRAM;
        cr_assert_eq(channels_type_parse(bad[i], &t), -EINVAL, "%s", bad[i]);
        cr_assert_eq(t, CHANNEL_INSTAGRAM, "untouched on failure");
    }
    cr_assert_eq(channels_type_parse(NULL, &t), -EINVAL);
    cr_assert_eq(channels_type_parse("web", NULL), -EINVAL);
    for (enum channel_type i = CHANNEL_WHATSAPP; i <= CHANNEL_WEB; i++) {
        cr_assert_eq(channels_type_parse(channels_type_name(i), &t), 0);
        cr_assert_eq(t, i);
    }
    cr_assert_str_eq(channels_type_name((enum channel_type)42), "unknown");
    cr_assert_str_eq(channels_type_name((enum channel_type) - 1), "unknown");
}

Test(inspect, bad_arguments, .timeout = 30)
{
    struct channels_inspection out;
    char reason[CHANNELS_REASON_MAX], detail[128];
    const char *body = WA_MSG("wamid.1");
    cr_assert_eq(channels_inspect(CHANNEL_WHATSAPP, body, strlen(body), NULL, reason, sizeof reason,
                                  detail, sizeof detail),
                 -EINVAL);
    cr_assert_str_eq(reason, "internal");
    cr_assert_eq(channels_inspect(CHANNEL_WHATSAPP, NULL, 5, &out, reason, sizeof reason, detail,
                                  sizeof detail),
                 -EINVAL);
    cr_assert_eq(out.dedup_key[0], '\0');
    cr_assert_eq(channels_inspect((enum channel_type)7, body, strlen(body), &out, reason,
                                  sizeof reason, detail, sizeof detail),
                 -EINVAL);
    cr_assert_str_eq(reason, "internal");
    cr_assert_neq(detail[0], '\0');
}

Test(inspect, reason_and_detail_buffers, .timeout = 30)
{
    struct channels_inspection out;
    const char *body = "{\"object\":\"page\",\"entry\":[{}]}";
    /* Both NULL. */
    cr_assert_eq(channels_inspect(CHANNEL_WHATSAPP, body, strlen(body), &out, NULL, 0, NULL, 0),
                 SB_EPARSE);
    /* Sizes 0 leave the buffers alone; tiny sizes truncate and terminate. */
    char reason[4] = "abc", detail[1] = {'z'};
    cr_assert_eq(channels_inspect(CHANNEL_WHATSAPP, body, strlen(body), &out, reason, 0, detail, 0),
                 SB_EPARSE);
    cr_assert_str_eq(reason, "abc");
    cr_assert_eq(detail[0], 'z');
    cr_assert_eq(channels_inspect(CHANNEL_WHATSAPP, body, strlen(body), &out, reason, sizeof reason,
                                  detail, sizeof detail),
                 SB_EPARSE);
    cr_assert_str_eq(reason, "wro");
    cr_assert_eq(detail[0], '\0');

    /* Success clears earlier contents; NULL buffers are fine too. */
    char r2[CHANNELS_REASON_MAX] = "stale", d2[64] = "stale";
    const char *good = WA_MSG("wamid.1");
    cr_assert_eq(
        channels_inspect(CHANNEL_WHATSAPP, good, strlen(good), &out, r2, sizeof r2, d2, sizeof d2),
        0);
    cr_assert_str_empty(r2);
    cr_assert_str_empty(d2);
    cr_assert_eq(channels_inspect(CHANNEL_WHATSAPP, good, strlen(good), &out, NULL, 0, NULL, 0), 0);
    cr_assert_str_eq(out.dedup_key, "wa:m:wamid.1");
}

Test(inspect, output_is_reset_on_failure, .timeout = 30)
{
    struct channels_inspection out;
    const char *good = WA_MSG("wamid.1");
    cr_assert_eq(channels_inspect(CHANNEL_WHATSAPP, good, strlen(good), &out, NULL, 0, NULL, 0), 0);
    cr_assert_eq(out.messages, 1);
    /* Fails after counting one message: nothing of it may remain. */
    const char *bad = "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{"
                      "\"value\":{\"messages\":[{\"id\":\"wamid.1\"},{\"id\":1}]}}]}]}";
    cr_assert_eq(channels_inspect(CHANNEL_WHATSAPP, bad, strlen(bad), &out, NULL, 0, NULL, 0),
                 SB_EPARSE);
    cr_assert_eq(out.messages, 0);
    cr_assert_eq(out.dedup_key[0], '\0');
}

Test(inspect, key_length_boundary, .timeout = 30)
{
    /* "wa:m:" + 154 bytes = 159 = CHANNELS_DEDUP_KEY_MAX - 1: kept as is. */
    char id[CHANNELS_DEDUP_KEY_MAX];
    size_t fit = CHANNELS_DEDUP_KEY_MAX - 1 - strlen("wa:m:");
    memset(id, 'i', fit);
    id[fit] = '\0';
    char *body = xasprintf("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":"
                           "[{\"value\":{\"messages\":[{\"id\":\"%s\"}]}}]}]}",
                           id);
    struct channels_inspection r = inspect_ok(CHANNEL_WHATSAPP, body);
    cr_assert_eq(strlen(r.dedup_key), CHANNELS_DEDUP_KEY_MAX - 1);
    cr_assert_eq(strncmp(r.dedup_key, "wa:m:iii", 8), 0);
    free(body);

    id[fit] = 'i';
    id[fit + 1] = '\0';
    body = xasprintf("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":"
                     "[{\"value\":{\"messages\":[{\"id\":\"%s\"}]}}]}]}",
                     id);
    r = inspect_ok(CHANNEL_WHATSAPP, body);
    char *item = xasprintf("wa:m:%s", id);
    char want[128];
    hash_key("sha256", item, strlen(item), want);
    cr_assert_str_eq(r.dedup_key, want);
    free(item);
    free(body);
}

Test(inspect, body_key_depends_on_every_byte, .timeout = 30)
{
    const char *a = "{\"object\":\"instagram\",\"entry\":[{\"id\":\"1\"}]}";
    const char *b = "{\"object\":\"instagram\",\"entry\":[{\"id\":\"1\"}]} ";
    struct channels_inspection ra = inspect_ok(CHANNEL_INSTAGRAM, a);
    struct channels_inspection ra2 = inspect_ok(CHANNEL_INSTAGRAM, a);
    struct channels_inspection rb = inspect_ok(CHANNEL_INSTAGRAM, b);
    cr_assert_str_eq(ra.dedup_key, ra2.dedup_key);
    cr_assert_str_neq(ra.dedup_key, rb.dedup_key);
    cr_assert_eq(strncmp(ra.dedup_key, "body:", 5), 0);
    cr_assert_eq(strlen(ra.dedup_key), 5 + 64);
}
