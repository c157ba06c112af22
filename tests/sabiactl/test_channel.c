/* test_channel.c - sabiactl's channels: create for each type with the type
 * rules, update, show, the assistant link, secrets sealed with the master
 * key under the gateway's aad (and never printed), the master key loaded
 * only when needed, visitor tokens that crypto_visitor_token_verify()
 * accepts, cache invalidation, and isolation between tenants. */
#include "ctlrun.h"

#include "crypto.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MISSING_UUID "01900000-0000-7000-8000-0000000000ff"

TestSuite(channel, .init = tc_scratch_setup, .fini = tc_scratch_teardown, .timeout = 120);

/* A tenant with a workspace and an assistant. */
struct fixture {
    json_t *tenant, *workspace, *assistant;
    const char *tid, *wid, *aid;
};

static void fixture_make(struct fixture *f)
{
    f->tenant = tc_ok("tenant", "create", "--name", tc_random_name("Tenant", 0), NULL);
    f->tid = tc_str(f->tenant, "id");
    f->workspace = tc_ok("workspace", "create", "--tenant", f->tid, "--name", "Main", NULL);
    f->wid = tc_str(f->workspace, "id");
    f->assistant = tc_ok("assistant", "create", "--tenant", f->tid, "--workspace", f->wid, "--name",
                         "Bot", NULL);
    f->aid = tc_str(f->assistant, "id");
}

static void fixture_free(struct fixture *f)
{
    json_decref(f->tenant);
    json_decref(f->workspace);
    json_decref(f->assistant);
}

static struct crypto_key *master_key(void)
{
    int err = 0;
    struct crypto_key *k = crypto_key_new(ts_env("SABIA_MASTER_KEY"), &err);
    cr_assert_not_null(k, "SABIA_MASTER_KEY: %d", err);
    return k;
}

/* Reads one *_enc column raw and checks it opens to `plain` with the aad
 * "channel:<id>:<field>", and to nothing with another field's aad. */
static void expect_sealed(const char *tid, const char *cid, const char *field, const char *plain)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT %s_enc FROM channels WHERE id = $1", field);
    const char *p[] = {cid};
    PGresult *r = tc_tenant_query(tid, sql, 1, p, true);
    cr_assert_eq(PQntuples(r), 1);
    cr_assert_not(PQgetisnull(r, 0, 0), "%s not stored", field);
    const uint8_t *blob = (const uint8_t *)PQgetvalue(r, 0, 0);
    size_t n = (size_t)PQgetlength(r, 0, 0);
    cr_assert_null(memmem(blob, n, plain, strlen(plain)), "%s stored in clear", field);
    struct crypto_key *k = master_key();
    char aad[128];
    snprintf(aad, sizeof aad, "channel:%s:%s", cid, field);
    uint8_t *out = NULL;
    size_t outlen = 0;
    cr_assert_eq(crypto_open(k, aad, blob, n, &out, &outlen), 0, "%s does not open", field);
    cr_assert_eq(outlen, strlen(plain));
    cr_assert_eq(memcmp(out, plain, outlen), 0);
    free(out);
    snprintf(aad, sizeof aad, "channel:%s:%s", cid,
             strcmp(field, "app_secret") == 0 ? "access_token" : "app_secret");
    cr_assert_eq(crypto_open(k, aad, blob, n, &out, &outlen), SB_EAUTH, "aad not bound");
    crypto_key_free(k);
    PQclear(r);
}

/* Runs a command that must succeed and whose output must not contain any of
 * `secrets` (NULL-terminated). */
static json_t *ok_without(const char *const *secrets, const char *const *args)
{
    struct tc_run r;
    tc_exec(&r, NULL, args);
    cr_assert_eq(r.status, 0, "%s %s: %s", args[0], args[1], r.err);
    for (const char *const *s = secrets; *s; s++) {
        cr_assert_null(strstr(r.out, *s), "secret printed on stdout: %s", r.out);
        cr_assert_null(strstr(r.err, *s), "secret printed on stderr: %s", r.err);
    }
    json_t *j = json_loads(r.out, 0, NULL);
    cr_assert_not_null(j, "%s", r.out);
    tc_run_cleanup(&r);
    return j;
}

Test(channel, create_each_type_and_show)
{
    struct fixture f;
    fixture_make(&f);
    json_t *wa = tc_ok("channel", "create", "--tenant", f.tid, "--workspace", f.wid, "--type",
                       "whatsapp", "--name", "Sales", "--phone-number-id", "1234567890",
                       "--business-account-id", "998877", "--assistant", f.aid, NULL);
    const char *cid = tc_str(wa, "id");
    cr_assert_str_eq(tc_str(wa, "type"), "whatsapp");
    cr_assert_str_eq(tc_str(wa, "status"), "active");
    cr_assert_str_eq(tc_str(wa, "phone_number_id"), "1234567890");
    cr_assert_str_eq(tc_str(wa, "business_account_id"), "998877");
    cr_assert_str_eq(tc_str(wa, "assistant_id"), f.aid);
    cr_assert(json_is_false(json_object_get(wa, "has_app_secret")));
    char path[256];
    snprintf(path, sizeof path, "/v1/webhook/whatsapp/%s/%s/%s", f.tid, f.wid, cid);
    cr_assert_str_eq(tc_str(wa, "webhook_path"), path);
    json_t *shown = tc_ok("channel", "show", "--tenant", f.tid, "--id", cid, NULL);
    cr_assert(json_equal(shown, wa), "show differs from create");

    json_t *ig =
        tc_ok("channel", "create", "--tenant", f.tid, "--workspace", f.wid, "--type", "instagram",
              "--instagram-account-id", "17841400000000000", "--status", "test", NULL);
    cr_assert_str_eq(tc_str(ig, "instagram_account_id"), "17841400000000000");
    cr_assert_str_eq(tc_str(ig, "status"), "test");
    cr_assert(json_is_null(json_object_get(ig, "assistant_id")));
    json_t *web =
        tc_ok("channel", "create", "--tenant", f.tid, "--workspace", f.wid, "--type", "web", NULL);
    cr_assert_str_eq(tc_str(web, "name"), "");

    /* the type rules */
    tc_fails(1, "--phone-number-id is only for whatsapp", "channel", "create", "--tenant", f.tid,
             "--workspace", f.wid, "--type", "instagram", "--phone-number-id", "123", NULL);
    tc_fails(1, "--phone-number-id is only for whatsapp", "channel", "create", "--tenant", f.tid,
             "--workspace", f.wid, "--type", "web", "--phone-number-id", "123", NULL);
    tc_fails(1, "--instagram-account-id is only for instagram", "channel", "create", "--tenant",
             f.tid, "--workspace", f.wid, "--type", "whatsapp", "--instagram-account-id", "1",
             NULL);
    tc_fails(1, "--phone-number-id: must be 1 to 64 digits", "channel", "create", "--tenant", f.tid,
             "--workspace", f.wid, "--type", "whatsapp", "--phone-number-id", "+5511999", NULL);
    tc_fails(1, "--type: must be one of whatsapp, instagram, web", "channel", "create", "--tenant",
             f.tid, "--workspace", f.wid, "--type", "sms", NULL);
    tc_fails(1, "--status", "channel", "create", "--tenant", f.tid, "--workspace", f.wid, "--type",
             "web", "--status", "paused", NULL);
    tc_fails(1, "already used", "channel", "create", "--tenant", f.tid, "--workspace", f.wid,
             "--type", "whatsapp", "--phone-number-id", "1234567890", NULL);
    tc_fails(1, "unknown workspace " MISSING_UUID, "channel", "create", "--tenant", f.tid,
             "--workspace", MISSING_UUID, "--type", "web", NULL);
    tc_fails(1, "unknown assistant " MISSING_UUID, "channel", "create", "--tenant", f.tid,
             "--workspace", f.wid, "--type", "web", "--assistant", MISSING_UUID, NULL);
    tc_fails(1, "unknown tenant " MISSING_UUID, "channel", "create", "--tenant", MISSING_UUID,
             "--workspace", f.wid, "--type", "web", NULL);
    tc_fails(1, "unknown channel " MISSING_UUID, "channel", "show", "--tenant", f.tid, "--id",
             MISSING_UUID, NULL);
    tc_fails(1, "--workspace: not a UUID", "channel", "create", "--tenant", f.tid, "--workspace",
             "main", "--type", "web", NULL);

    PGresult *r = tc_tenant_query(f.tid, "SELECT count(*) FROM channels", 0, NULL, false);
    cr_assert_str_eq(PQgetvalue(r, 0, 0), "3", "a failed create left a row");
    PQclear(r);
    json_decref(wa);
    json_decref(shown);
    json_decref(ig);
    json_decref(web);
    fixture_free(&f);
}

Test(channel, secrets_are_sealed_and_never_printed)
{
    struct fixture f;
    fixture_make(&f);
    char app[64], verify[64], access[64];
    snprintf(app, sizeof app, "app-%s", tc_random_name("secret", 0));
    snprintf(verify, sizeof verify, "verify-%s", tc_random_name("secret", 1));
    snprintf(access, sizeof access, "access-%s", tc_random_name("secret", 2));
    const char *secrets[] = {app, verify, access, NULL};
    const char *create[] = {"channel", "create",   "--tenant",     f.tid, "--workspace",    f.wid,
                            "--type",  "whatsapp", "--app-secret", app,   "--verify-token", verify,
                            NULL};
    json_t *c = ok_without(secrets, create);
    const char *cid = tc_str(c, "id");
    cr_assert(json_is_true(json_object_get(c, "has_app_secret")));
    cr_assert(json_is_true(json_object_get(c, "has_verify_token")));
    cr_assert(json_is_false(json_object_get(c, "has_access_token")));
    expect_sealed(f.tid, cid, "app_secret", app);
    expect_sealed(f.tid, cid, "verify_token", verify);

    /* adding the access token keeps the other secrets as they were */
    const char *p[] = {cid};
    PGresult *before = tc_tenant_query(f.tid,
                                       "SELECT encode(app_secret_enc, 'hex') FROM channels "
                                       "WHERE id = $1",
                                       1, p, false);
    const char *update[] = {"channel", "update",         "--tenant", f.tid, "--id",
                            cid,       "--access-token", access,     NULL};
    json_t *u = ok_without(secrets, update);
    cr_assert(json_is_true(json_object_get(u, "has_access_token")));
    expect_sealed(f.tid, cid, "access_token", access);
    PGresult *after = tc_tenant_query(f.tid,
                                      "SELECT encode(app_secret_enc, 'hex') FROM channels "
                                      "WHERE id = $1",
                                      1, p, false);
    cr_assert_str_eq(PQgetvalue(before, 0, 0), PQgetvalue(after, 0, 0));
    PQclear(before);
    PQclear(after);
    const char *show[] = {"channel", "show", "--tenant", f.tid, "--id", cid, NULL};
    json_decref(ok_without(secrets, show));

    /* the audit row names the fields, never the values */
    PGresult *r = tc_tenant_query(f.tid,
                                  "SELECT string_agg(details::text, ' ') FROM audit_log "
                                  "WHERE target_id = $1",
                                  1, p, false);
    const char *details = PQgetvalue(r, 0, 0);
    cr_assert(strstr(details, "app_secret") && strstr(details, "access_token"), "%s", details);
    for (const char *const *s = secrets; *s; s++)
        cr_assert_null(strstr(details, *s), "secret in audit_log: %s", details);
    PQclear(r);

    /* the master key is needed for secrets, and only for them */
    const char *nokey[] = {"SABIA_MASTER_KEY", NULL};
    tc_fails_env(nokey, 1, "SABIA_MASTER_KEY is not set", "channel", "update", "--tenant", f.tid,
                 "--id", cid, "--app-secret", "x", NULL);
    const char *badkey[] = {"SABIA_MASTER_KEY=abcd", NULL};
    tc_fails_env(badkey, 1, "SABIA_MASTER_KEY must be exactly 64 hex", "channel", "create",
                 "--tenant", f.tid, "--workspace", f.wid, "--type", "web", "--verify-token", "x",
                 NULL);
    const char *args[] = {"channel", "update", "--tenant", f.tid, "--id",
                          cid,       "--name", "NoKey",    NULL};
    struct tc_run run;
    tc_exec(&run, nokey, args);
    cr_assert_eq(run.status, 0, "%s", run.err);
    tc_run_cleanup(&run);
    expect_sealed(f.tid, cid, "app_secret", app);
    tc_fails(1, "--app-secret: must be 1 to", "channel", "update", "--tenant", f.tid, "--id", cid,
             "--app-secret", "", NULL);
    json_decref(c);
    json_decref(u);
    fixture_free(&f);
}

Test(channel, update_fields_and_assistant)
{
    struct fixture f;
    fixture_make(&f);
    json_t *c = tc_ok("channel", "create", "--tenant", f.tid, "--workspace", f.wid, "--type",
                      "whatsapp", "--name", "Old", NULL);
    const char *cid = tc_str(c, "id");
    cr_assert(json_is_null(json_object_get(c, "status_changed_at")));
    json_t *u =
        tc_ok("channel", "update", "--tenant", f.tid, "--id", cid, "--name", "New", "--status",
              "inactive", "--phone-number-id", "5511", "--assistant", f.aid, NULL);
    cr_assert_str_eq(tc_str(u, "name"), "New");
    cr_assert_str_eq(tc_str(u, "status"), "inactive");
    cr_assert_str_eq(tc_str(u, "phone_number_id"), "5511");
    cr_assert_str_eq(tc_str(u, "assistant_id"), f.aid);
    cr_assert(json_is_string(json_object_get(u, "status_changed_at")));
    /* another assistant replaces the link (one per channel) */
    json_t *a2 = tc_ok("assistant", "create", "--tenant", f.tid, "--workspace", f.wid, "--name",
                       "Second", NULL);
    json_t *u2 = tc_ok("channel", "update", "--tenant", f.tid, "--id", cid, "--assistant",
                       tc_str(a2, "id"), NULL);
    cr_assert_str_eq(tc_str(u2, "assistant_id"), tc_str(a2, "id"));
    cr_assert_str_eq(tc_str(u2, "name"), "New", "kept");
    const char *p[] = {cid};
    PGresult *r = tc_tenant_query(f.tid,
                                  "SELECT count(*) FROM assistant_channels WHERE "
                                  "channel_id = $1",
                                  1, p, false);
    cr_assert_str_eq(PQgetvalue(r, 0, 0), "1");
    PQclear(r);

    json_t *web =
        tc_ok("channel", "create", "--tenant", f.tid, "--workspace", f.wid, "--type", "web", NULL);
    tc_fails(1, "--phone-number-id is only for whatsapp channels, not web", "channel", "update",
             "--tenant", f.tid, "--id", tc_str(web, "id"), "--phone-number-id", "1", NULL);
    tc_fails(1, "unknown channel " MISSING_UUID, "channel", "update", "--tenant", f.tid, "--id",
             MISSING_UUID, "--name", "x", NULL);
    tc_fails(1, "unknown assistant " MISSING_UUID, "channel", "update", "--tenant", f.tid, "--id",
             cid, "--assistant", MISSING_UUID, NULL);
    tc_fails(2, "nothing to update", "channel", "update", "--tenant", f.tid, "--id", cid, NULL);

    /* another tenant cannot see or change this one's channel */
    json_t *other = tc_ok("tenant", "create", "--name", tc_random_name("Other", 1), NULL);
    tc_fails(1, "unknown channel", "channel", "show", "--tenant", tc_str(other, "id"), "--id", cid,
             NULL);
    tc_fails(1, "unknown channel", "channel", "update", "--tenant", tc_str(other, "id"), "--id",
             cid, "--name", "hijack", NULL);
    /* ids are accepted in upper case and printed canonical */
    char upper[40];
    snprintf(upper, sizeof upper, "%s", cid);
    for (char *s = upper; *s; s++)
        if (*s >= 'a' && *s <= 'f')
            *s = (char)(*s - 'a' + 'A');
    json_t *s = tc_ok("channel", "show", "--tenant", f.tid, "--id", upper, NULL);
    cr_assert_str_eq(tc_str(s, "id"), cid);
    cr_assert_str_eq(tc_str(s, "name"), "New");

    json_decref(c);
    json_decref(u);
    json_decref(a2);
    json_decref(u2);
    json_decref(web);
    json_decref(other);
    json_decref(s);
    fixture_free(&f);
}

Test(channel, visitor_token)
{
    struct fixture f;
    fixture_make(&f);
    json_t *web =
        tc_ok("channel", "create", "--tenant", f.tid, "--workspace", f.wid, "--type", "web", NULL);
    const char *cid = tc_str(web, "id");
    long now = (long)time(NULL);
    json_t *t = tc_ok("channel", "visitor-token", "--tenant", f.tid, "--id", cid, "--visitor",
                      "visitor_1-A", "--ttl-seconds", "600", NULL);
    const char *token = tc_str(t, "token");
    long exp = (long)json_integer_value(json_object_get(t, "expires_at"));
    cr_assert(exp >= now + 600 && exp <= now + 605, "expires_at %ld, now %ld", exp, now);
    struct crypto_key *k = master_key();
    char id[CRYPTO_VISITOR_ID_MAX + 1];
    cr_assert_eq(crypto_visitor_token_verify(k, cid, token, now, id, sizeof id), 0, "%s", token);
    cr_assert_str_eq(id, "visitor_1-A");
    cr_assert_eq(crypto_visitor_token_verify(k, cid, token, exp + 1, id, sizeof id), -ETIMEDOUT);
    cr_assert_eq(crypto_visitor_token_verify(k, f.tid, token, now, id, sizeof id), SB_EAUTH);
    /* the default lifetime is one day */
    json_t *d =
        tc_ok("channel", "visitor-token", "--tenant", f.tid, "--id", cid, "--visitor", "v", NULL);
    long dexp = (long)json_integer_value(json_object_get(d, "expires_at"));
    cr_assert(dexp >= now + 86400 && dexp <= now + 86405);

    json_t *wa = tc_ok("channel", "create", "--tenant", f.tid, "--workspace", f.wid, "--type",
                       "whatsapp", NULL);
    tc_fails(1, "visitor tokens are for web channels", "channel", "visitor-token", "--tenant",
             f.tid, "--id", tc_str(wa, "id"), "--visitor", "v", NULL);
    tc_fails(1, "--visitor", "channel", "visitor-token", "--tenant", f.tid, "--id", cid,
             "--visitor", "bad.visitor", NULL);
    tc_fails(1, "--ttl-seconds", "channel", "visitor-token", "--tenant", f.tid, "--id", cid,
             "--visitor", "v", "--ttl-seconds", "0", NULL);
    tc_fails(1, "unknown channel " MISSING_UUID, "channel", "visitor-token", "--tenant", f.tid,
             "--id", MISSING_UUID, "--visitor", "v", NULL);
    const char *nokey[] = {"SABIA_MASTER_KEY", NULL};
    tc_fails_env(nokey, 1, "SABIA_MASTER_KEY is not set: it is needed to issue visitor tokens",
                 "channel", "visitor-token", "--tenant", f.tid, "--id", cid, "--visitor", "v",
                 NULL);
    tc_fails(2, "missing required option --visitor", "channel", "visitor-token", "--tenant", f.tid,
             "--id", cid, NULL);
    crypto_key_free(k);
    json_decref(web);
    json_decref(t);
    json_decref(d);
    json_decref(wa);
    fixture_free(&f);
}

Test(channel, change_invalidates_cache)
{
    struct fixture f;
    fixture_make(&f);
    redisContext *cmd = tc_redis(), *sub = tc_redis();
    tc_subscribe_invalidations(sub);
    json_t *c =
        tc_ok("channel", "create", "--tenant", f.tid, "--workspace", f.wid, "--type", "web", NULL);
    const char *cid = tc_str(c, "id");
    char key[128], msg[96];
    snprintf(key, sizeof key, "sabia:cache:channel:%s", cid);
    snprintf(msg, sizeof msg, "channel:%s", cid);
    /* a created channel is announced too (a service may cache "not found") */
    tc_expect_invalidation(sub, msg);
    freeReplyObject(tc_redis_cmd(cmd, "SET %s %s EX 60", key, "{\"status\":\"active\"}"));
    json_decref(
        tc_ok("channel", "update", "--tenant", f.tid, "--id", cid, "--status", "inactive", NULL));
    tc_expect_invalidation(sub, msg);
    redisReply *e = tc_redis_cmd(cmd, "EXISTS %s", key);
    cr_assert_eq(e->integer, 0, "cache key still there");
    freeReplyObject(e);
    /* a failed update announces nothing: the next message is the later update's */
    tc_fails(1, "unknown assistant", "channel", "update", "--tenant", f.tid, "--id", cid,
             "--assistant", MISSING_UUID, NULL);
    json_t *web2 =
        tc_ok("channel", "create", "--tenant", f.tid, "--workspace", f.wid, "--type", "web", NULL);
    char msg2[96];
    snprintf(msg2, sizeof msg2, "channel:%s", tc_str(web2, "id"));
    for (;;) {
        void *v = NULL;
        cr_assert_eq(redisGetReply(sub, &v), REDIS_OK, "no %s", msg2);
        redisReply *m = v;
        cr_assert_eq(m->type, REDIS_REPLY_ARRAY);
        cr_assert_str_neq(m->element[2]->str, msg, "a failed update was announced");
        bool done = strcmp(m->element[2]->str, msg2) == 0;
        freeReplyObject(m);
        if (done)
            break;
    }
    redisFree(sub);
    redisFree(cmd);
    json_decref(c);
    json_decref(web2);
    fixture_free(&f);
}
