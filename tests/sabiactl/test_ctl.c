/* test_ctl.c - sabiactl as operators run it: tenants (create, list through
 * platform_list_tenants with paging, suspend, activate, update), workspaces
 * and assistants, audit rows, cache invalidation on Redis (and a Redis that
 * is down), and the command-line and validation errors with their exit
 * codes. Each test has its own scratch database (ctlrun.c). */
#include "ctlrun.h"

#include "testsupport.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MISSING_UUID "01900000-0000-7000-8000-0000000000ff"

TestSuite(ctl, .init = tc_scratch_setup, .fini = tc_scratch_teardown, .timeout = 120);

/* Actions recorded in audit_log for the tenant, in order, comma-separated. */
static char *audit_actions(const char *tenant)
{
    PGresult *r = tc_tenant_query(
        tenant,
        "SELECT string_agg(action || '/' || actor_type || '/' || coalesce(target_type, ''), ',' "
        "ORDER BY created_at, id) FROM audit_log",
        0, NULL, false);
    char *s = strdup(PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return s;
}

static json_t *create_tenant(const char *name)
{
    json_t *t = tc_ok("tenant", "create", "--name", name, NULL);
    cr_assert_str_eq(tc_str(t, "name"), name);
    return t;
}

Test(ctl, tenant_lifecycle)
{
    const char *name = tc_random_name("Tenant", 0);
    const char *slug = tc_random_name("acme", 1);
    json_t *t = tc_ok("tenant", "create", "--name", name, "--slug", slug, "--plan", "pro",
                      "--rate-limit-per-second", "7", "--rate-limit-burst", "21", NULL);
    const char *id = tc_str(t, "id");
    cr_assert_str_eq(tc_str(t, "status"), "active");
    cr_assert_str_eq(tc_str(t, "slug"), slug);
    cr_assert_str_eq(tc_str(t, "plan"), "pro");
    cr_assert_eq(json_integer_value(json_object_get(t, "rate_limit_per_second")), 7);
    cr_assert_eq(json_integer_value(json_object_get(t, "rate_limit_burst")), 21);
    /* a UUIDv7 id */
    cr_assert_eq(strlen(id), 36);
    cr_assert_eq(id[14], '7', "not a UUIDv7: %s", id);

    /* the slug is unique */
    tc_fails(1, "already taken", "tenant", "create", "--name", "Other", "--slug", slug, NULL);

    json_t *s = tc_ok("tenant", "suspend", "--id", id, "--reason", "unpaid invoices", NULL);
    cr_assert_str_eq(tc_str(s, "status"), "suspended");
    cr_assert_str_eq(tc_str(s, "suspended_reason"), "unpaid invoices");
    cr_assert(json_is_string(json_object_get(s, "suspended_at")));
    json_t *a = tc_ok("tenant", "activate", "--id", id, NULL);
    cr_assert_str_eq(tc_str(a, "status"), "active");
    cr_assert(json_is_null(json_object_get(a, "suspended_at")));
    cr_assert(json_is_null(json_object_get(a, "suspended_reason")));

    json_t *u = tc_ok("tenant", "update", "--id", id, "--rate-limit-per-second", "9", "--name",
                      "Renamed", NULL);
    cr_assert_str_eq(tc_str(u, "name"), "Renamed");
    cr_assert_eq(json_integer_value(json_object_get(u, "rate_limit_per_second")), 9);
    cr_assert(json_is_null(json_object_get(u, "llm_monthly_cap_micros")), "no cap by default");
    json_t *cap = tc_ok("tenant", "update", "--id", id, "--llm-monthly-cap-micros", "25000000", NULL);
    cr_assert_eq(json_integer_value(json_object_get(cap, "llm_monthly_cap_micros")), 25000000);
    json_t *uncap = tc_ok("tenant", "update", "--id", id, "--llm-monthly-cap-micros", "none", NULL);
    cr_assert(json_is_null(json_object_get(uncap, "llm_monthly_cap_micros")));
    tc_fails(1, "--llm-monthly-cap-micros", "tenant", "update", "--id", id,
             "--llm-monthly-cap-micros", "-5", NULL);
    json_decref(cap);
    json_decref(uncap);
    cr_assert_eq(json_integer_value(json_object_get(u, "rate_limit_burst")), 21, "kept");
    cr_assert_str_eq(tc_str(u, "plan"), "pro", "kept");

    /* the same rows as the database holds, read in the tenant's own scope */
    const char *p[] = {id};
    PGresult *r = tc_tenant_query(id,
                                  "SELECT name, status, rate_limit_per_second FROM tenants "
                                  "WHERE id = $1",
                                  1, p, false);
    cr_assert_eq(PQntuples(r), 1);
    cr_assert_str_eq(PQgetvalue(r, 0, 0), "Renamed");
    cr_assert_str_eq(PQgetvalue(r, 0, 1), "active");
    cr_assert_str_eq(PQgetvalue(r, 0, 2), "9");
    PQclear(r);

    char *actions = audit_actions(id);
    cr_assert_str_eq(actions, "tenant.create/system/tenant,tenant.suspend/system/tenant,"
                              "tenant.activate/system/tenant,tenant.update/system/tenant,"
                              "tenant.update/system/tenant,tenant.update/system/tenant");
    free(actions);
    json_decref(t);
    json_decref(s);
    json_decref(a);
    json_decref(u);
}

Test(ctl, tenant_list_pages_through_all)
{
    json_t *mine = create_tenant(tc_random_name("Listed", 0));
    /* more tenants than one page of platform_list_tenants() (1000) */
    PGresult *r = PQexec(tc_db(), "DO $$ DECLARE i int; t uuid; BEGIN FOR i IN 1..1005 LOOP "
                                  "t := gen_random_uuid(); "
                                  "PERFORM set_config('app.tenant_id', t::text, true); "
                                  "INSERT INTO tenants (id, name) VALUES (t, 'bulk ' || i); "
                                  "END LOOP; END $$");
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    json_t *l = tc_ok("tenant", "list", NULL);
    json_t *tenants = json_object_get(l, "tenants");
    cr_assert_eq(json_array_size(tenants), 1006);
    bool found = false;
    const char *prev = "";
    size_t i;
    json_t *t;
    json_array_foreach(tenants, i, t)
    {
        const char *id = tc_str(t, "id");
        cr_assert_gt(strcmp(id, prev), 0, "not in id order / repeated at %zu", i);
        prev = id;
        found = found || strcmp(id, tc_str(mine, "id")) == 0;
    }
    cr_assert(found);
    json_decref(l);
    json_decref(mine);
}

Test(ctl, workspace_and_assistant)
{
    json_t *t = create_tenant(tc_random_name("Tenant", 0));
    const char *tid = tc_str(t, "id");
    json_t *w = tc_ok("workspace", "create", "--tenant", tid, "--name", "Support", NULL);
    const char *wid = tc_str(w, "id");
    cr_assert_str_eq(tc_str(w, "tenant_id"), tid);
    cr_assert_str_eq(tc_str(w, "name"), "Support");

    json_t *a = tc_ok("assistant", "create", "--tenant", tid, "--workspace", wid, "--name", "Bot",
                      "--system-prompt", "Answer briefly.", "--personality", "warm", "--provider",
                      "openai_compatible", "--model", "llama3", "--buffer-seconds", "5", NULL);
    cr_assert_str_eq(tc_str(a, "workspace_id"), wid);
    cr_assert_str_eq(tc_str(a, "provider"), "openai_compatible");
    cr_assert_str_eq(tc_str(a, "model"), "llama3");
    cr_assert_eq(json_integer_value(json_object_get(a, "message_buffer_seconds")), 5);
    const char *p[] = {tc_str(a, "id")};
    PGresult *r = tc_tenant_query(tid,
                                  "SELECT system_prompt, personality FROM assistants "
                                  "WHERE id = $1",
                                  1, p, false);
    cr_assert_str_eq(PQgetvalue(r, 0, 0), "Answer briefly.");
    cr_assert_str_eq(PQgetvalue(r, 0, 1), "warm");
    PQclear(r);
    /* defaults from the schema */
    json_t *d =
        tc_ok("assistant", "create", "--tenant", tid, "--workspace", wid, "--name", "Plain", NULL);
    cr_assert_str_eq(tc_str(d, "provider"), "retrieval");
    cr_assert_eq(json_integer_value(json_object_get(d, "message_buffer_seconds")), 3);

    tc_fails(1, "unknown workspace " MISSING_UUID, "assistant", "create", "--tenant", tid,
             "--workspace", MISSING_UUID, "--name", "X", NULL);
    tc_fails(1, "--provider", "assistant", "create", "--tenant", tid, "--workspace", wid, "--name",
             "X", "--provider", "gpt", NULL);
    tc_fails(1, "--buffer-seconds", "assistant", "create", "--tenant", tid, "--workspace", wid,
             "--name", "X", "--buffer-seconds", "301", NULL);
    tc_fails(1, "unknown tenant " MISSING_UUID, "workspace", "create", "--tenant", MISSING_UUID,
             "--name", "X", NULL);

    char *actions = audit_actions(tid);
    cr_assert_str_eq(actions,
                     "tenant.create/system/tenant,workspace.create/system/workspace,"
                     "assistant.create/system/assistant,assistant.create/system/assistant");
    free(actions);
    json_decref(t);
    json_decref(w);
    json_decref(a);
    json_decref(d);
}

Test(ctl, tenant_change_invalidates_cache)
{
    json_t *t = create_tenant(tc_random_name("Cached", 0));
    const char *id = tc_str(t, "id");
    redisContext *cmd = tc_redis(), *sub = tc_redis();
    tc_subscribe_invalidations(sub);
    char key[128], msg[96];
    snprintf(key, sizeof key, "sabia:cache:tenant:%s", id);
    snprintf(msg, sizeof msg, "tenant:%s", id);

    const char *ops[][5] = {
        {"tenant", "suspend", "--id", id, NULL},
        {"tenant", "activate", "--id", id, NULL},
    };
    for (size_t i = 0; i < 2; i++) {
        freeReplyObject(tc_redis_cmd(cmd, "SET %s %s EX 60", key, "{\"stale\":true}"));
        struct tc_run r;
        tc_exec(&r, NULL, ops[i]);
        cr_assert_eq(r.status, 0, "%s", r.err);
        cr_assert_str_empty(r.err);
        tc_run_cleanup(&r);
        tc_expect_invalidation(sub, msg);
        redisReply *e = tc_redis_cmd(cmd, "EXISTS %s", key);
        cr_assert_eq(e->integer, 0, "cache key still there after %s", ops[i][1]);
        freeReplyObject(e);
    }
    /* update too */
    freeReplyObject(tc_redis_cmd(cmd, "SET %s x EX 60", key));
    json_decref(tc_ok("tenant", "update", "--id", id, "--rate-limit-burst", "3", NULL));
    tc_expect_invalidation(sub, msg);
    redisReply *e = tc_redis_cmd(cmd, "EXISTS %s", key);
    cr_assert_eq(e->integer, 0);
    freeReplyObject(e);
    redisFree(sub);
    redisFree(cmd);
    json_decref(t);
}

Test(ctl, redis_down_is_only_a_warning)
{
    json_t *t = create_tenant(tc_random_name("NoRedis", 0));
    char url[64];
    snprintf(url, sizeof url, "SABIA_REDIS_URL=redis://127.0.0.1:%d/0", ts_free_port());
    const char *env[] = {url, NULL};
    const char *args[] = {"tenant", "suspend", "--id", tc_str(t, "id"), NULL};
    struct tc_run r;
    tc_exec(&r, env, args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    json_t *out = json_loads(r.out, 0, NULL);
    cr_assert_str_eq(tc_str(out, "status"), "suspended");
    json_t *w = json_loads(r.err, JSON_DISABLE_EOF_CHECK, NULL);
    cr_assert(strstr(tc_str(w, "warning"), "cache invalidation"), "stderr: %s", r.err);
    json_decref(w);
    json_decref(out);
    tc_run_cleanup(&r);
    /* without SABIA_REDIS_URL nothing is attempted and nothing is said */
    const char *none[] = {"SABIA_REDIS_URL", NULL};
    const char *args2[] = {"tenant", "activate", "--id", tc_str(t, "id"), NULL};
    tc_exec(&r, none, args2);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_empty(r.err);
    tc_run_cleanup(&r);
    json_decref(t);
}

Test(ctl, usage_errors_exit_2)
{
    tc_fails(2, "missing required option --name", "tenant", "create", NULL);
    tc_fails(2, "needs a value", "tenant", "create", "--name", NULL);
    tc_fails(2, "unknown option --colour", "tenant", "create", "--name", "x", "--colour", "red",
             NULL);
    tc_fails(2, "given twice", "tenant", "create", "--name", "x", "--name", "y", NULL);
    tc_fails(2, "unknown tenant command", "tenant", "delete", NULL);
    tc_fails(2, "unknown command", "frobnicate", NULL);
    tc_fails(2, "nothing to update", "tenant", "update", "--id", MISSING_UUID, NULL);
    tc_fails(2, "missing required option --workspace", "channel", "create", "--tenant",
             MISSING_UUID, "--type", "web", NULL);
    tc_fails(2, "unknown option --type", "channel", "update", "--tenant", MISSING_UUID, "--id",
             MISSING_UUID, "--type", "web", NULL);
}

Test(ctl, validation_errors_exit_1)
{
    tc_fails(1, "--id: not a UUID", "tenant", "suspend", "--id", "12345", NULL);
    tc_fails(1, "--tenant: not a UUID", "workspace", "create", "--tenant", "x", "--name", "y",
             NULL);
    tc_fails(1, "unknown tenant " MISSING_UUID, "tenant", "suspend", "--id", MISSING_UUID, NULL);
    tc_fails(1, "unknown tenant " MISSING_UUID, "tenant", "update", "--id", MISSING_UUID, "--name",
             "x", NULL);
    tc_fails(1, "--plan: must be one of free, pro, enterprise", "tenant", "create", "--name", "x",
             "--plan", "gold", NULL);
    tc_fails(1, "--rate-limit-per-second", "tenant", "create", "--name", "x",
             "--rate-limit-per-second", "0", NULL);
    tc_fails(1, "--rate-limit-burst", "tenant", "create", "--name", "x", "--rate-limit-burst",
             "1000001", NULL);
    tc_fails(1, "--rate-limit-burst", "tenant", "create", "--name", "x", "--rate-limit-burst",
             "ten", NULL);
    tc_fails(1, "--slug", "tenant", "create", "--name", "x", "--slug", "Bad_Slug", NULL);
    tc_fails(1, "--slug", "tenant", "create", "--name", "x", "--slug", "-x", NULL);
    tc_fails(1, "--name", "tenant", "create", "--name", "", NULL);
    char long_name[202];
    memset(long_name, 'n', 201);
    long_name[201] = '\0';
    tc_fails(1, "--name: must be 1 to 200 characters", "tenant", "create", "--name", long_name,
             NULL);
    /* 200 characters of two bytes each are fine */
    char wide[401];
    for (int i = 0; i < 200; i++)
        memcpy(wide + 2 * i, "\xc3\xa9", 2);
    wide[400] = '\0';
    json_decref(tc_ok("tenant", "create", "--name", wide, NULL));
    /* nothing was written by the failed commands */
    json_t *l = tc_ok("tenant", "list", NULL);
    cr_assert_eq(json_array_size(json_object_get(l, "tenants")), 1);
    json_decref(l);
}

Test(ctl, database_down_fails_cleanly)
{
    char url[128];
    snprintf(url, sizeof url, "SABIA_DATABASE_OWNER_URL=postgresql://sabia_owner:x@127.0.0.1:%d/x",
             ts_free_port());
    const char *env[] = {url, NULL};
    tc_fails_env(env, 1, "cannot connect to PostgreSQL", "tenant", "list", NULL);
    const char *none[] = {"SABIA_DATABASE_OWNER_URL", NULL};
    tc_fails_env(none, 1, "SABIA_DATABASE_OWNER_URL", "tenant", "list", NULL);
}
