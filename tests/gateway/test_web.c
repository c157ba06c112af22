/* The web widget channel: visitor tokens instead of Meta signatures. */
#include "world.h"

#include "crypto.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct world W;

static void setup(void)
{
    world_create(&W, ts_env("SABIA_DATABASE_OWNER_URL"), ts_env("SABIA_DATABASE_URL"),
                 ts_env("SABIA_REDIS_URL"));
    world_start_gateway(&W);
}

static void teardown(void)
{
    world_stop_gateway(&W);
}

TestSuite(web, .init = setup, .fini = teardown, .timeout = 60);

/* A token for `visitor` on `channel`, expiring `ttl` seconds from now. */
static void token(const char *channel, const char *visitor, long ttl, char *header, size_t n)
{
    int err = 0;
    struct crypto_key *k = crypto_key_new(ts_env("SABIA_MASTER_KEY"), &err);
    cr_assert_not_null(k);
    char tok[CRYPTO_VISITOR_TOKEN_MAX + 1];
    cr_assert_eq(crypto_visitor_token_issue(k, channel, visitor, (long)time(NULL) + ttl, tok,
                                            sizeof tok), 0);
    snprintf(header, n, "X-Sabia-Visitor-Token: %s", tok);
    crypto_key_free(k);
}

static long post_web(const char *header, const char *visitor, const char *message_id, char *code,
                     size_t code_len)
{
    char body[512];
    int len = snprintf(body, sizeof body,
                       "{\"visitor_id\":\"%s\",\"message_id\":\"%s\",\"type\":\"text\","
                       "\"text\":\"Hello from the website\"}",
                       visitor, message_id);
    const char *h[] = {header, "Content-Type: application/json", NULL};
    long st;
    json_t *j = post_webhook(&W, "web", W.tenant, W.ws, W.web, body, (size_t)len,
                             header ? h : h + 1, &st);
    const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    snprintf(code, code_len, "%s", c ? c : json_string_value(json_object_get(j, "status")));
    json_decref(j);
    return st;
}

Test(web, valid_token_accepted_and_replay_deduplicated)
{
    char h[400], code[64], mid[SB_UUID_STRLEN];
    cr_assert_eq(sb_uuid_v7_str(mid), 0);
    token(W.web, "visitor_1", 3600, h, sizeof h);
    cr_assert_eq(post_web(h, "visitor_1", mid, code, sizeof code), 200, "%s (log %s)", code, W.log);
    cr_assert_str_eq(code, "received");
    cr_assert_eq(post_web(h, "visitor_1", mid, code, sizeof code), 200);
}

Test(web, token_problems_are_401_or_403)
{
    char h[400], code[64];
    cr_assert_eq(post_web(NULL, "visitor_1", "m1", code, sizeof code), 401);
    cr_assert_str_eq(code, "missing_visitor_token");
    cr_assert_eq(post_web("X-Sabia-Visitor-Token: v1.visitor_1.99999999999.AAAA", "visitor_1", "m1",
                          code, sizeof code), 401);
    cr_assert_str_eq(code, "bad_visitor_token");
    token(W.web, "visitor_1", -10, h, sizeof h);
    cr_assert_eq(post_web(h, "visitor_1", "m1", code, sizeof code), 401);
    cr_assert_str_eq(code, "expired_visitor_token");
    /* Issued for another channel. */
    token(W.wa, "visitor_1", 3600, h, sizeof h);
    cr_assert_eq(post_web(h, "visitor_1", "m1", code, sizeof code), 401);
    cr_assert_str_eq(code, "bad_visitor_token");
    /* Valid token, but the message claims another visitor. */
    token(W.web, "visitor_1", 3600, h, sizeof h);
    cr_assert_eq(post_web(h, "visitor_2", "m1", code, sizeof code), 403);
    cr_assert_str_eq(code, "visitor_mismatch");
}
