/* assistant.c - `sabiactl assistant create`: an assistant in a workspace,
 * with its prompt, personality, LLM provider and message buffering window.
 * Channels are linked to it with `channel create|update --assistant`. */
#include "ctl.h"

#include <string.h>

#define ASSISTANT_PROMPT_MAX_CHARS      100000
#define ASSISTANT_PERSONALITY_MAX_CHARS 10000
#define ASSISTANT_MODEL_MAX_CHARS       200
#define ASSISTANT_BUFFER_MAX_SECONDS    300

static const char *const PROVIDERS[] = {"retrieval", "openai", "anthropic", "openai_compatible",
                                        NULL};

struct assistant_job {
    char tenant[SB_UUID_STRLEN], workspace[SB_UUID_STRLEN], id[SB_UUID_STRLEN];
    const char *name, *prompt, *personality, *provider, *model; /* borrowed, NULL: default */
    char buffer[24];                                            /* "" when not given */
    json_t *out;
    struct sb_buf err;
};

static int assistant_tx(PGconn *c, void *arg)
{
    struct assistant_job *j = arg;
    json_decref(j->out);
    j->out = NULL;
    int rc = ctl_require(c, CTL_TENANT, j->tenant, NULL, &j->err);
    if (rc == 0)
        rc = ctl_require(c, CTL_WORKSPACE, j->tenant, j->workspace, &j->err);
    const char *p[] = {j->id, j->tenant, j->workspace, j->name};
    /* The INSERT keeps the schema's defaults; the UPDATE sets what was given. */
    if (rc == 0)
        rc = db_exec(c,
                     "INSERT INTO assistants (id, tenant_id, workspace_id, name) "
                     "VALUES ($1, $2, $3, $4)",
                     4, p, NULL, &j->err);
    const char *u[] = {j->id,
                       j->tenant,
                       j->prompt,
                       j->personality,
                       j->provider,
                       j->model,
                       j->buffer[0] ? j->buffer : NULL};
    if (rc == 0)
        rc = db_exec(c,
                     "UPDATE assistants SET system_prompt = COALESCE($3, system_prompt), "
                     "personality = COALESCE($4, personality), provider = COALESCE($5, provider), "
                     "model = COALESCE($6, model), "
                     "message_buffer_seconds = COALESCE($7::int, message_buffer_seconds) "
                     "WHERE tenant_id = $2 AND id = $1",
                     7, u, NULL, &j->err);
    if (rc == 0)
        rc = ctl_query_json(c,
                            "SELECT json_build_object('id', id, 'tenant_id', tenant_id, "
                            "'workspace_id', workspace_id, 'name', name, 'provider', provider, "
                            "'model', model, 'message_buffer_seconds', message_buffer_seconds, "
                            "'status', status, 'version', version, 'created_at', created_at)::text "
                            "FROM assistants WHERE tenant_id = $2 AND id = $1",
                            2, p, &j->out, &j->err);
    json_t *details = NULL;
    if (rc == 0)
        details = json_pack("{s:O?, s:O?, s:O?}", "name", json_object_get(j->out, "name"),
                            "provider", json_object_get(j->out, "provider"), "model",
                            json_object_get(j->out, "model"));
    if (rc == 0)
        rc = ctl_audit(c, j->tenant, "assistant.create", "assistant", j->id, details, &j->err);
    json_decref(details);
    return rc;
}

static int assistant_args(struct assistant_job *j, int argc, char **argv)
{
    j->name = ctl_opt(argc, argv, "--name");
    j->prompt = ctl_opt(argc, argv, "--system-prompt");
    j->personality = ctl_opt(argc, argv, "--personality");
    j->provider = ctl_opt(argc, argv, "--provider");
    j->model = ctl_opt(argc, argv, "--model");
    const char *buffer = ctl_opt(argc, argv, "--buffer-seconds");
    long seconds = 0;
    int rc = ctl_arg_uuid("--tenant", ctl_opt(argc, argv, "--tenant"), j->tenant);
    if (rc == 0)
        rc = ctl_arg_uuid("--workspace", ctl_opt(argc, argv, "--workspace"), j->workspace);
    if (rc == 0)
        rc = ctl_arg_text("--name", j->name, 1, CTL_NAME_MAX_CHARS);
    if (rc == 0)
        rc = ctl_arg_text("--system-prompt", j->prompt, 0, ASSISTANT_PROMPT_MAX_CHARS);
    if (rc == 0)
        rc = ctl_arg_text("--personality", j->personality, 0, ASSISTANT_PERSONALITY_MAX_CHARS);
    if (rc == 0)
        rc = ctl_arg_enum("--provider", j->provider, PROVIDERS);
    if (rc == 0)
        rc = ctl_arg_text("--model", j->model, 0, ASSISTANT_MODEL_MAX_CHARS);
    if (rc == 0)
        rc = ctl_arg_long("--buffer-seconds", buffer, 0, ASSISTANT_BUFFER_MAX_SECONDS, &seconds);
    if (rc == 0 && buffer)
        snprintf(j->buffer, sizeof j->buffer, "%ld", seconds);
    return rc;
}

static int assistant_create(struct ctl *ctl, int argc, char **argv)
{
    static const struct ctl_option OPTS[] = {
        {"--tenant", true},         {"--workspace", true},       {"--name", true},
        {"--system-prompt", false}, {"--personality", false},    {"--provider", false},
        {"--model", false},         {"--buffer-seconds", false}, {NULL, false}};
    static const char USAGE[] =
        "sabiactl assistant create --tenant T --workspace W --name N [--system-prompt P] "
        "[--personality P] [--provider retrieval|openai|anthropic|openai_compatible] "
        "[--model M] [--buffer-seconds N]";
    int rc = ctl_args_check(argc, argv, OPTS, USAGE);
    if (rc != 0)
        return rc;
    struct assistant_job j = {0};
    rc = assistant_args(&j, argc, argv);
    if (rc == 0 && sb_uuid_v7_str(j.id) != 0)
        rc = ctl_fail("assistant create: cannot make an id");
    if (rc != 0)
        return rc;
    return ctl_run_print(ctl, "assistant create", j.tenant, assistant_tx, &j, &j.out, &j.err);
}

int ctl_assistant(struct ctl *ctl, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "create") == 0)
        return assistant_create(ctl, argc - 1, argv + 1);
    return ctl_usage_fail("sabiactl assistant create --tenant T --workspace W --name N [options]",
                          "unknown assistant command \"%.64s\"", sub);
}
