/* test_fuzz.c - robustness: 10,000 bodies derived from the fixtures and
 * hand-written seeds go through channels_inspect() for every channel type:
 * byte-level mutations (exercise the depth scan and the parser), JSON-tree
 * mutations (valid JSON with wrong types, missing or extra members: exercise
 * the walkers and the web rules) and purely random bytes. Each must give 0
 * with a sane key or SB_EPARSE with a documented reason; ASan/UBSan catch the
 * rest. channels_parse() must agree with channels_inspect() on every body
 * (same verdict, one event per item, every message valid). Buffers are
 * allocated at their exact length so over-reads are caught. */
#include <jansson.h>

#include "helpers.h"

#define FUZZ_RUNS    10000
#define FUZZ_MAX_LEN 8192

static const char *const seeds_inline[] = {
    "{\"visitor_id\":\"v_1\",\"message_id\":\"m-1\",\"type\":\"text\",\"text\":\"hi\","
    "\"timestamp\":1739321024123,\"visitor\":{\"name\":\"Ana\",\"email\":\"a@b.c\"}}",
    "{\"visitor_id\":\"v\",\"message_id\":\"m\",\"type\":\"image\",\"url\":\"https://a/b\","
    "\"caption\":\"c\"}",
    "{\"object\":\"instagram\",\"entry\":[{\"id\":\"1\",\"messaging\":[{\"sender\":{\"id\":\"2\"},"
    "\"timestamp\":1,\"reaction\":{\"mid\":\"m\",\"action\":\"react\"}},{\"delivery\":{\"mids\":"
    "[\"a\",\"b\"]}},{\"read\":{\"mid\":\"x\"}},{\"postback\":{\"payload\":\"p\"}}],"
    "\"standby\":[{\"message\":{\"mid\":\"s\",\"is_echo\":true}}],\"changes\":[{\"field\":\"c\"}]}]"
    "}",
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
    "\"smb_message_echoes\",\"value\":{\"metadata\":{\"display_phone_number\":\"1\"},"
    "\"message_echoes\":[{\"id\":\"e\",\"from\":\"1\"}],\"errors\":[{\"code\":1}],\"statuses\":"
    "[{\"id\":\"s\",\"status\":\"read\"}],\"messages\":[{\"id\":\"m\",\"type\":\"system\"}]}}]}]}",
};

static const char *const fixture_names[] = {
    "wa_text.json",          "wa_image.json",        "wa_status_delivered.json",
    "wa_status_failed.json", "wa_text_unicode.json", "wa_text_unicode_utf8_reencoded.json",
    "ig_text.json",
};

static const char *const reasons[] = {
    "empty_body",    "too_deep",       "invalid_json",        "not_object",      "wrong_object",
    "missing_entry", "invalid_entry",  "invalid_change",      "invalid_message", "invalid_status",
    "invalid_event", "too_many_items", "invalid_web_message",
};

struct seed {
    char *data;
    size_t len;
};

/* xorshift64*: deterministic, so a failure can be replayed. */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static size_t pick(uint64_t *s, size_t n)
{
    return n ? (size_t)(next_rand(s) % n) : 0;
}

/* One random edit of buf (len bytes, room for FUZZ_MAX_LEN). */
static size_t mutate_once(uint64_t *s, char *buf, size_t len, const struct seed *other)
{
    static const char tokens[] = "{}[]\":,\\0123456789eE.-+ tfnu\x01\xff\xc3\xa9";
    size_t at = pick(s, len + 1);
    switch (pick(s, 7)) {
    case 0: /* flip a byte */
        if (len)
            buf[pick(s, len)] ^= (char)(1u << pick(s, 8));
        return len;
    case 1: /* insert a structural or odd byte */
        if (len >= FUZZ_MAX_LEN)
            return len;
        memmove(buf + at + 1, buf + at, len - at);
        buf[at] = tokens[pick(s, sizeof tokens - 1)];
        return len + 1;
    case 2: { /* delete a range */
        size_t n = pick(s, len - at + 1);
        memmove(buf + at, buf + at + n, len - at - n);
        return len - n;
    }
    case 3: { /* duplicate a range in place */
        size_t n = pick(s, len - at + 1);
        if (len + n > FUZZ_MAX_LEN)
            return len;
        memmove(buf + at + n, buf + at, len - at);
        return len + n;
    }
    case 4: /* truncate */
        return at;
    case 5: { /* splice in a piece of another seed */
        size_t from = pick(s, other->len + 1);
        size_t n = pick(s, other->len - from + 1);
        if (len + n > FUZZ_MAX_LEN)
            return len;
        memmove(buf + at + n, buf + at, len - at);
        memcpy(buf + at, other->data + from, n);
        return len + n;
    }
    default: /* overwrite a byte with a random one */
        if (len)
            buf[pick(s, len)] = (char)next_rand(s);
        return len;
    }
}

/* Member names the walkers and the web rules look at. */
static const char *const known_keys[] = {
    "object",     "entry",
    "changes",    "value",
    "messages",   "statuses",
    "errors",     "message_echoes",
    "metadata",   "display_phone_number",
    "from",       "id",
    "status",     "type",
    "messaging",  "standby",
    "message",    "mid",
    "is_echo",    "is_deleted",
    "reaction",   "action",
    "timestamp",  "postback",
    "read",       "delivery",
    "mids",       "message_edit",
    "num_edit",   "visitor_id",
    "message_id", "text",
    "url",        "caption",
    "visitor",    "name",
    "email",
};

static json_t *random_value(uint64_t *s, json_t *root)
{
    switch (pick(s, 12)) {
    case 0:
        return json_null();
    case 1:
        return json_true();
    case 2:
        return json_false();
    case 3:
        return json_integer((json_int_t)next_rand(s));
    case 4:
        return json_real(1.5);
    case 5:
        return json_string("");
    case 6:
        return json_string("https://x.example/a");
    case 7:
        return json_string("15550783881");
    case 8:
        return json_array();
    case 9:
        return json_object();
    case 10:
        return json_string(known_keys[pick(s, sizeof known_keys / sizeof known_keys[0])]);
    default:
        return json_deep_copy(root); /* may nest deeper */
    }
}

/* One random change somewhere in the tree: descend a random path, then
 * replace, delete, duplicate or add a member with a meaningful name. */
static void mutate_tree(uint64_t *s, json_t *root)
{
    json_t *node = root;
    for (size_t depth = pick(s, 8); depth > 0; depth--) {
        json_t *child = NULL;
        if (json_is_array(node) && json_array_size(node) > 0) {
            child = json_array_get(node, pick(s, json_array_size(node)));
        } else if (json_is_object(node) && json_object_size(node) > 0) {
            void *it = json_object_iter(node);
            for (size_t k = pick(s, json_object_size(node)); k > 0 && it; k--)
                it = json_object_iter_next(node, it);
            child = it ? json_object_iter_value(it) : NULL;
        }
        if (!child || (!json_is_array(child) && !json_is_object(child)))
            break;
        node = child;
    }
    const char *name = known_keys[pick(s, sizeof known_keys / sizeof known_keys[0])];
    if (json_is_array(node)) {
        size_t n = json_array_size(node);
        switch (pick(s, 3)) {
        case 0:
            json_array_append_new(node, random_value(s, root));
            break;
        case 1:
            if (n)
                json_array_remove(node, pick(s, n));
            break;
        default:
            if (n)
                json_array_append_new(node, json_deep_copy(json_array_get(node, 0)));
        }
    } else if (json_is_object(node)) {
        switch (pick(s, 3)) {
        case 0:
            json_object_set_new(node, name, random_value(s, root));
            break;
        case 1:
            json_object_del(node, name);
            break;
        default:
            json_object_set_new(node, name, json_deep_copy(node));
        }
    }
}

/* A tree-mutated copy of the seed into buf; returns its length (0 if the
 * seed is not JSON or the result does not fit). */
static size_t tree_mutation(uint64_t *s, const struct seed *sd, char *buf)
{
    json_t *root = json_loadb(sd->data, sd->len, 0, NULL);
    if (!root)
        return 0;
    for (size_t e = 1 + pick(s, 4); e > 0; e--)
        mutate_tree(s, root);
    size_t n = json_dumpb(root, buf, FUZZ_MAX_LEN, JSON_COMPACT);
    json_decref(root);
    return n <= FUZZ_MAX_LEN ? n : 0;
}

/* Counts channels_parse() events and checks each one's shape. */
static int count_event(void *arg, const struct channels_event *ev)
{
    unsigned *n = arg;
    (*n)++;
    switch (ev->kind) {
    case CHANNELS_EVENT_MESSAGE:
        cr_assert_eq(domain_message_validate(ev->message, NULL), 0);
        cr_assert_null(ev->status);
        break;
    case CHANNELS_EVENT_STATUS:
        cr_assert_not_null(ev->status);
        cr_assert_neq(ev->status->provider_message_id[0], '\0');
        break;
    default:
        cr_assert_not_null(ev->notice);
    }
    return 0;
}

/* channels_parse() agrees with channels_inspect(): same verdict, one event
 * per inspected item. */
static void check_parse(enum channel_type t, const char *exact, size_t len, int inspect_rc,
                        const struct channels_inspection *out, const char *reason)
{
    unsigned events = 0;
    struct channels_parse_error err;
    int rc = channels_parse(t, exact, len, count_event, &events, &err);
    cr_assert_eq(rc, inspect_rc, "parse %d (%s) vs inspect %d (%s)", rc, err.reason, inspect_rc,
                 reason);
    if (rc == 0)
        cr_assert_eq(events, out->messages + out->statuses + out->echoes + out->others);
    else
        cr_assert_str_eq(err.reason, reason);
}

static void check_one(const char *buf, size_t len)
{
    char *exact = malloc(len ? len : 1);
    cr_assert_not_null(exact);
    memcpy(exact, buf, len);
    for (enum channel_type t = CHANNEL_WHATSAPP; t <= CHANNEL_WEB; t++) {
        struct channels_inspection out;
        char reason[CHANNELS_REASON_MAX], detail[256];
        int rc =
            channels_inspect(t, exact, len, &out, reason, sizeof reason, detail, sizeof detail);
        check_parse(t, exact, len, rc, &out, reason);
        if (rc == 0) {
            size_t n = strnlen(out.dedup_key, sizeof out.dedup_key);
            cr_assert(n > 0 && n < sizeof out.dedup_key);
            cr_assert(out.messages + out.statuses + out.echoes + out.others <= CHANNELS_MAX_ITEMS);
            continue;
        }
        cr_assert_eq(rc, SB_EPARSE, "rc %d (%s)", rc, reason);
        bool known = false;
        for (size_t i = 0; i < sizeof reasons / sizeof reasons[0] && !known; i++)
            known = strcmp(reason, reasons[i]) == 0;
        cr_assert(known, "undocumented reason \"%s\"", reason);
        cr_assert(strnlen(detail, sizeof detail) < sizeof detail);
    }
    free(exact);
}

Test(fuzz, mutated_and_random_bodies, .timeout = 300)
{
    size_t nfix = sizeof fixture_names / sizeof fixture_names[0];
    size_t ninl = sizeof seeds_inline / sizeof seeds_inline[0];
    size_t nseeds = nfix + ninl;
    struct seed seeds[sizeof fixture_names / sizeof fixture_names[0] +
                      sizeof seeds_inline / sizeof seeds_inline[0]];
    for (size_t i = 0; i < nfix; i++)
        seeds[i].data = fixture(fixture_names[i], &seeds[i].len);
    for (size_t i = 0; i < ninl; i++) {
        seeds[nfix + i].data = xasprintf("%s", seeds_inline[i]);
        seeds[nfix + i].len = strlen(seeds_inline[i]);
    }
    /* Every seed is accepted by at least one channel type. */
    for (size_t i = 0; i < nseeds; i++) {
        bool any = false;
        for (enum channel_type t = CHANNEL_WHATSAPP; t <= CHANNEL_WEB && !any; t++) {
            struct channels_inspection out;
            any = channels_inspect(t, seeds[i].data, seeds[i].len, &out, NULL, 0, NULL, 0) == 0;
        }
        cr_assert(any, "seed %zu is refused by every type", i);
    }

    char *buf = malloc(FUZZ_MAX_LEN);
    cr_assert_not_null(buf);
    uint64_t state = 0x5ab1a5eedULL;
    for (int run = 0; run < FUZZ_RUNS; run++) {
        size_t len;
        const struct seed *sd = &seeds[pick(&state, nseeds)];
        if (run % 10 == 9) { /* purely random bytes */
            len = pick(&state, 512);
            for (size_t i = 0; i < len; i++)
                buf[i] = (char)next_rand(&state);
        } else if (run % 2 == 0) {
            len = tree_mutation(&state, sd, buf);
        } else {
            memcpy(buf, sd->data, sd->len);
            len = sd->len;
            for (size_t e = 1 + pick(&state, 3); e > 0; e--)
                len = mutate_once(&state, buf, len, &seeds[pick(&state, nseeds)]);
        }
        check_one(buf, len);
    }
    free(buf);
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i].data);
}
