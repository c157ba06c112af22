/* store.c - sabiactl's database access: the owner-role pool, transactions
 * that report a clear reason on failure, JSON rows, existence checks of a
 * tenant's rows and the audit log. Every statement on tenant data runs in a
 * transaction scoped to that tenant: RLS is forced even for the owner. */
#include "ctl.h"

#include <stdlib.h>
#include <string.h>

struct db_pool *ctl_db(struct ctl *ctl)
{
    if (!ctl->pool) {
        ctl->pool = db_pool_new(sb_config_str(ctl->cfg, "SABIA_DATABASE_OWNER_URL"), 1, "sabiactl",
                                ctl->log);
        if (!ctl->pool)
            ctl_fail("SABIA_DATABASE_OWNER_URL: not a usable PostgreSQL connection string");
    }
    return ctl->pool;
}

int ctl_run_tx(struct ctl *ctl, const char *what, const char *tenant_id, db_tx_fn fn, void *arg,
               struct sb_buf *err)
{
    struct db_pool *pool = ctl_db(ctl);
    if (!pool)
        return CTL_EXIT_FAIL;
    sb_buf_reset(err);
    int rc = tenant_id ? db_tenant_tx(pool, tenant_id, fn, arg) : db_tx(pool, fn, arg);
    if (rc == 0)
        return 0;
    if (err->len > 0)
        return ctl_fail("%s: %s", what, err->data);
    if (rc == SB_EUNAVAIL || rc == -ETIMEDOUT)
        return ctl_fail("%s: cannot connect to PostgreSQL (SABIA_DATABASE_OWNER_URL)", what);
    return ctl_fail("%s: %s", what, sb_strerror(rc));
}

int ctl_run_print(struct ctl *ctl, const char *what, const char *tenant_id, db_tx_fn fn, void *arg,
                  json_t **out, struct sb_buf *err)
{
    sb_buf_init(err, CTL_ERR_MAX);
    int rc = ctl_run_tx(ctl, what, tenant_id, fn, arg, err);
    if (rc == 0) {
        ctl_print(*out);
        *out = NULL;
    }
    json_decref(*out);
    *out = NULL;
    sb_buf_cleanup(err);
    return rc;
}

int ctl_query_json(PGconn *c, const char *sql, int n, const char *const *params, json_t **out,
                   struct sb_buf *err)
{
    *out = NULL;
    PGresult *r = NULL;
    int rc = db_exec(c, sql, n, params, &r, err);
    if (rc != 0)
        return rc;
    const char *text = db_value(r, 0, 0);
    if (!text) {
        PQclear(r);
        return SB_ENOTFOUND;
    }
    json_error_t jerr;
    *out = json_loads(text, JSON_DECODE_ANY, &jerr);
    PQclear(r);
    if (!*out) {
        db_err_setf(err, "unreadable row: %s", jerr.text);
        return SB_EPARSE;
    }
    return 0;
}

static const struct {
    const char *noun;
    const char *sql; /* $1 tenant id, $2 row id */
} REQUIRE[] = {
    [CTL_TENANT] = {"tenant", "SELECT 1 FROM tenants WHERE id = $1"},
    [CTL_WORKSPACE] = {"workspace", "SELECT 1 FROM workspaces WHERE tenant_id = $1 AND id = $2"},
    [CTL_CHANNEL] = {"channel", "SELECT 1 FROM channels WHERE tenant_id = $1 AND id = $2"},
    [CTL_ASSISTANT] = {"assistant", "SELECT 1 FROM assistants WHERE tenant_id = $1 AND id = $2"},
};

int ctl_require(PGconn *c, enum ctl_kind kind, const char *tenant_id, const char *id,
                struct sb_buf *err)
{
    const char *params[] = {tenant_id, id};
    PGresult *r = NULL;
    int rc = db_exec(c, REQUIRE[kind].sql, kind == CTL_TENANT ? 1 : 2, params, &r, err);
    if (rc != 0)
        return rc;
    bool found = PQntuples(r) > 0;
    PQclear(r);
    if (found)
        return 0;
    if (kind == CTL_TENANT)
        db_err_setf(err, "unknown tenant %s", tenant_id);
    else
        db_err_setf(err, "unknown %s %s in tenant %s", REQUIRE[kind].noun, id, tenant_id);
    return SB_ENOTFOUND;
}

int ctl_audit(PGconn *c, const char *tenant_id, const char *action, const char *target_type,
              const char *target_id, json_t *details, struct sb_buf *err)
{
    char id[SB_UUID_STRLEN];
    int rc = sb_uuid_v7_str(id);
    if (rc != 0)
        return rc;
    char *text = details ? json_dumps(details, JSON_COMPACT) : strdup("{}");
    if (!text)
        return -ENOMEM;
    const char *params[] = {id, tenant_id, action, target_type, target_id, text};
    rc =
        db_exec(c,
                "INSERT INTO audit_log (id, tenant_id, actor_type, action, target_type, target_id, "
                "details) VALUES ($1, $2, 'system', $3, $4, $5, $6::jsonb)",
                6, params, NULL, err);
    free(text);
    return rc;
}
