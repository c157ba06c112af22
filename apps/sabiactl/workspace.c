/* workspace.c - `sabiactl workspace create`: a workspace groups a tenant's
 * channels, assistants and contacts. */
#include "ctl.h"

#include <string.h>

struct workspace_job {
    char tenant[SB_UUID_STRLEN];
    char id[SB_UUID_STRLEN];
    const char *name;
    json_t *out;
    struct sb_buf err;
};

static int workspace_tx(PGconn *c, void *arg)
{
    struct workspace_job *j = arg;
    json_decref(j->out);
    j->out = NULL;
    int rc = ctl_require(c, CTL_TENANT, j->tenant, NULL, &j->err);
    const char *p[] = {j->id, j->tenant, j->name};
    if (rc == 0)
        rc = db_exec(c, "INSERT INTO workspaces (id, tenant_id, name) VALUES ($1, $2, $3)", 3, p,
                     NULL, &j->err);
    if (rc == 0)
        rc = ctl_query_json(c,
                            "SELECT json_build_object('id', id, 'tenant_id', tenant_id, "
                            "'name', name, 'created_at', created_at)::text "
                            "FROM workspaces WHERE tenant_id = $2 AND id = $1",
                            2, p, &j->out, &j->err);
    json_t *details = rc == 0 ? json_pack("{s:s}", "name", j->name) : NULL;
    if (rc == 0)
        rc = ctl_audit(c, j->tenant, "workspace.create", "workspace", j->id, details, &j->err);
    json_decref(details);
    return rc;
}

static int workspace_create(struct ctl *ctl, int argc, char **argv)
{
    static const struct ctl_option OPTS[] = {{"--tenant", true}, {"--name", true}, {NULL, false}};
    int rc = ctl_args_check(argc, argv, OPTS, "sabiactl workspace create --tenant T --name N");
    if (rc != 0)
        return rc;
    struct workspace_job j = {.name = ctl_opt(argc, argv, "--name")};
    rc = ctl_arg_uuid("--tenant", ctl_opt(argc, argv, "--tenant"), j.tenant);
    if (rc == 0)
        rc = ctl_arg_text("--name", j.name, 1, CTL_NAME_MAX_CHARS);
    if (rc == 0 && sb_uuid_v7_str(j.id) != 0)
        rc = ctl_fail("workspace create: cannot make an id");
    if (rc != 0)
        return rc;
    return ctl_run_print(ctl, "workspace create", j.tenant, workspace_tx, &j, &j.out, &j.err);
}

int ctl_workspace(struct ctl *ctl, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "create") == 0)
        return workspace_create(ctl, argc - 1, argv + 1);
    return ctl_usage_fail("sabiactl workspace create --tenant T --name N",
                          "unknown workspace command \"%.64s\"", sub);
}
