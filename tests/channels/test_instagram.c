/* test_instagram.c - Instagram messaging webhook inspection: the signed
 * fixture, each event kind's counts and key, standby and field changes,
 * order independence, malformed shapes and the item limit. */
#include "helpers.h"

#define IG_HEAD                                                                                    \
    "{\"object\":\"instagram\",\"entry\":[{\"time\":1739321024123,\"id\":\"17841400000000000\","   \
    "\"messaging\":["
#define IG_TAIL "]}]}"
#define EV(member)                                                                                 \
    "{\"sender\":{\"id\":\"1234567890123456\"},\"recipient\":{\"id\":\"17841400000000000\"},"      \
    "\"timestamp\":1739321023999," member "}"

static struct channels_inspection ig_ok(const char *events)
{
    char *body = xasprintf(IG_HEAD "%s" IG_TAIL, events);
    struct channels_inspection r = inspect_ok(CHANNEL_INSTAGRAM, body);
    free(body);
    return r;
}

static void ig_fails(const char *events, const char *reason)
{
    char *body = xasprintf(IG_HEAD "%s" IG_TAIL, events);
    inspect_fails(CHANNEL_INSTAGRAM, body, reason);
    free(body);
}

static void expect_counts(const struct channels_inspection *r, unsigned m, unsigned s, unsigned e,
                          unsigned o)
{
    cr_assert_eq(r->messages, m, "messages %u", r->messages);
    cr_assert_eq(r->statuses, s, "statuses %u", r->statuses);
    cr_assert_eq(r->echoes, e, "echoes %u", r->echoes);
    cr_assert_eq(r->others, o, "others %u", r->others);
}

static void expect_body_key(const char *events, const struct channels_inspection *r)
{
    char *body = xasprintf(IG_HEAD "%s" IG_TAIL, events);
    char want[128];
    hash_key("body", body, strlen(body), want);
    cr_assert_str_eq(r->dedup_key, want);
    free(body);
}

Test(instagram, fixture, .timeout = 30)
{
    size_t len;
    char *body = fixture("ig_text.json", &len);
    struct channels_inspection r;
    char reason[CHANNELS_REASON_MAX], detail[256];
    cr_assert_eq(channels_inspect(CHANNEL_INSTAGRAM, body, len, &r, reason, sizeof reason, detail,
                                  sizeof detail),
                 0, "%s: %s", reason, detail);
    cr_assert_str_eq(r.dedup_key, "ig:m:aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAw");
    expect_counts(&r, 1, 0, 0, 0);
    inspect_fails_n(CHANNEL_WHATSAPP, body, len, "wrong_object", NULL);
    free(body);
}

Test(instagram, echo_and_deleted_and_edit, .timeout = 30)
{
    struct channels_inspection r =
        ig_ok(EV("\"message\":{\"mid\":\"m_ECHO\",\"is_echo\":true,\"text\":\"hi\"}"));
    expect_counts(&r, 0, 0, 1, 0);
    cr_assert_str_eq(r.dedup_key, "ig:m:m_ECHO");

    /* A deletion names the deleted message: it must not collide with it. */
    r = ig_ok(EV("\"message\":{\"mid\":\"m_1\",\"is_deleted\":true}"));
    expect_counts(&r, 0, 0, 0, 1);
    cr_assert_str_eq(r.dedup_key, "ig:del:m_1");

    r = ig_ok(EV("\"message_edit\":{\"mid\":\"m_1\",\"text\":\"b\",\"num_edit\":2}"));
    expect_counts(&r, 0, 0, 0, 1);
    cr_assert_str_eq(r.dedup_key, "ig:edit:m_1:2");

    /* is_echo false is a plain message. */
    r = ig_ok(EV("\"message\":{\"mid\":\"m_2\",\"is_echo\":false}"));
    expect_counts(&r, 1, 0, 0, 0);
}

Test(instagram, reactions_postbacks_reads, .timeout = 30)
{
    struct channels_inspection r =
        ig_ok(EV("\"reaction\":{\"mid\":\"m_1\",\"action\":\"react\",\"reaction\":\"love\"}"));
    expect_counts(&r, 1, 0, 0, 0);
    cr_assert_str_eq(r.dedup_key, "ig:re:m_1:react:1739321023999");
    r = ig_ok(EV("\"reaction\":{\"mid\":\"m_1\",\"action\":\"unreact\"}"));
    cr_assert_str_eq(r.dedup_key, "ig:re:m_1:unreact:1739321023999");

    r = ig_ok(EV("\"postback\":{\"mid\":\"m_PB\",\"title\":\"Yes\",\"payload\":\"Y\"}"));
    expect_counts(&r, 1, 0, 0, 0);
    cr_assert_str_eq(r.dedup_key, "ig:p:m_PB");

    r = ig_ok(EV("\"read\":{\"mid\":\"m_OUT\"}"));
    expect_counts(&r, 0, 1, 0, 0);
    cr_assert_str_eq(r.dedup_key, "ig:r:m_OUT");
}

Test(instagram, delivery_one_item_per_mid, .timeout = 30)
{
    struct channels_inspection r =
        ig_ok(EV("\"delivery\":{\"mids\":[\"m_B\",\"m_A\"],\"watermark\":1739321023999}"));
    expect_counts(&r, 0, 2, 0, 0);
    char want[128];
    const char *items = "ig:dl:m_A\nig:dl:m_B";
    hash_key("sha256", items, strlen(items), want);
    cr_assert_str_eq(r.dedup_key, want);

    const char *wm = EV("\"delivery\":{\"watermark\":1739321023999}");
    r = ig_ok(wm);
    expect_counts(&r, 0, 1, 0, 0);
    expect_body_key(wm, &r);
}

Test(instagram, events_without_ids, .timeout = 30)
{
    const char *events[] = {
        EV("\"referral\":{\"ref\":\"x\",\"source\":\"ADS\",\"type\":\"OPEN_THREAD\"}"),
        EV("\"something_new\":{\"x\":1}"),
        EV("\"postback\":{\"title\":\"Yes\",\"payload\":\"Y\"}"),
        EV("\"read\":{\"watermark\":1}"),
    };
    const unsigned msgs[] = {0, 0, 1, 0}, stat[] = {0, 0, 0, 1}, oth[] = {1, 1, 0, 0};
    for (size_t i = 0; i < 4; i++) {
        struct channels_inspection r = ig_ok(events[i]);
        expect_counts(&r, msgs[i], stat[i], 0, oth[i]);
        expect_body_key(events[i], &r);
    }
    /* Beside an identified message they are keyed by content instead. */
    struct channels_inspection a =
        ig_ok(EV("\"message\":{\"mid\":\"m_1\"}") "," EV("\"referral\":{\"ref\":\"x\"}"));
    struct channels_inspection b =
        ig_ok(EV("\"message\":{\"mid\":\"m_1\"}") "," EV("\"referral\":{\"ref\":\"y\"}"));
    expect_counts(&a, 1, 0, 0, 1);
    cr_assert_str_neq(a.dedup_key, b.dedup_key);
    cr_assert_str_neq(a.dedup_key, "ig:m:m_1");
}

Test(instagram, standby_and_changes_are_others, .timeout = 30)
{
    const char *standby =
        "{\"object\":\"instagram\",\"entry\":[{\"id\":\"1\",\"time\":1,\"standby\":[" EV(
            "\"message\":{\"mid\":\"m_SB\",\"text\":\"x\"}") "]}]}";
    struct channels_inspection r = inspect_ok(CHANNEL_INSTAGRAM, standby);
    expect_counts(&r, 0, 0, 0, 1);
    cr_assert_str_eq(r.dedup_key, "ig:m:m_SB");

    const char *comment = "{\"object\":\"instagram\",\"entry\":[{\"id\":\"1\",\"time\":1,"
                          "\"changes\":[{\"field\":\"comments\",\"value\":{\"id\":\"c1\","
                          "\"text\":\"nice\"}}]}]}";
    r = inspect_ok(CHANNEL_INSTAGRAM, comment);
    expect_counts(&r, 0, 0, 0, 1);
    char want[128];
    hash_key("body", comment, strlen(comment), want);
    cr_assert_str_eq(r.dedup_key, want);
}

Test(instagram, order_does_not_matter, .timeout = 30)
{
    struct channels_inspection ab =
        ig_ok(EV("\"message\":{\"mid\":\"m_A\"}") "," EV("\"message\":{\"mid\":\"m_B\"}"));
    const char *split =
        "{\"object\":\"instagram\",\"entry\":["
        "{\"id\":\"1\",\"messaging\":[" EV(
            "\"message\":{\"mid\":\"m_B\"}") "]},"
                                             "{\"id\":\"1\",\"messaging\":[" EV(
                                                 "\"message\":{\"mid\":\"m_A\"}") "]}]}";
    struct channels_inspection ba = inspect_ok(CHANNEL_INSTAGRAM, split);
    char want[128];
    const char *items = "ig:m:m_A\nig:m:m_B";
    hash_key("sha256", items, strlen(items), want);
    cr_assert_str_eq(ab.dedup_key, want);
    cr_assert_str_eq(ba.dedup_key, want);
    expect_counts(&ba, 2, 0, 0, 0);
}

Test(instagram, shape_errors, .timeout = 30)
{
    inspect_fails(CHANNEL_INSTAGRAM, "{\"object\":\"page\",\"entry\":[{}]}", "wrong_object");
    inspect_fails(CHANNEL_INSTAGRAM, "{\"object\":\"instagram\"}", "missing_entry");
    inspect_fails(CHANNEL_INSTAGRAM, "{\"object\":\"instagram\",\"entry\":[[]]}", "invalid_entry");
    inspect_fails(CHANNEL_INSTAGRAM, "{\"object\":\"instagram\",\"entry\":[{\"messaging\":{}}]}",
                  "invalid_entry");
    inspect_fails(CHANNEL_INSTAGRAM, "{\"object\":\"instagram\",\"entry\":[{\"changes\":[1]}]}",
                  "invalid_event");
    ig_fails("1", "invalid_event");
    ig_fails(EV("\"message\":{\"text\":\"no mid\"}"), "invalid_event");
    ig_fails(EV("\"message\":\"m_1\""), "invalid_event");
    ig_fails(EV("\"message\":{\"mid\":\"\"}"), "invalid_event");
    ig_fails(EV("\"reaction\":{\"action\":\"react\"}"), "invalid_event");
    ig_fails(EV("\"message_edit\":{\"num_edit\":1}"), "invalid_event");
    ig_fails(EV("\"delivery\":{\"mids\":[\"m_1\",2]}"), "invalid_event");

    char *body = xasprintf(IG_HEAD "%s" IG_TAIL, EV("\"message\":{\"mid\":1}"));
    char detail[256];
    inspect_fails_n(CHANNEL_INSTAGRAM, body, strlen(body), "invalid_event", detail);
    cr_assert(strstr(detail, "entry[0].messaging[0].message.mid"), "%s", detail);
    free(body);
}

Test(instagram, item_limit, .timeout = 60)
{
    char *mids = xasprintf("\"m_0\"");
    for (unsigned i = 1; i <= CHANNELS_MAX_ITEMS; i++) {
        char *t = xasprintf("%s,\"m_%u\"", mids, i);
        free(mids);
        mids = t;
    }
    char *ev = xasprintf(EV("\"delivery\":{\"mids\":[%s]}"), mids);
    ig_fails(ev, "too_many_items");
    free(ev);
    free(mids);

    char *events = xasprintf(EV("\"message\":{\"mid\":\"m_0\"}"));
    for (unsigned i = 1; i < CHANNELS_MAX_ITEMS; i++) {
        char *t = xasprintf("%s," EV("\"message\":{\"mid\":\"m_%u\"}"), events, i);
        free(events);
        events = t;
    }
    struct channels_inspection r = ig_ok(events);
    expect_counts(&r, CHANNELS_MAX_ITEMS, 0, 0, 0);
    char *more = xasprintf("%s," EV("\"read\":{\"mid\":\"m_x\"}"), events);
    ig_fails(more, "too_many_items");
    free(more);
    free(events);
}
