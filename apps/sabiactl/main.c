/* sabiactl - the operator CLI. Every command prints one line of JSON on
 * stdout on success (exit 0); on failure {"error":"..."} on stderr and exit
 * 1; a command line that does not parse (unknown command or option, option
 * without value or given twice, required option missing) exits 2.
 *
 *   sabiactl migrate [--dir migrations]       apply pending schema migrations
 *   sabiactl seed-demo [--login-file PATH]    create the demo tenant (idempotent)
 *   sabiactl tenant create|list|suspend|activate|update ...
 *   sabiactl workspace create ...
 *   sabiactl channel create|update|show|visitor-token ...
 *   sabiactl assistant create ...
 *
 * Settings come from the environment or the file named by SABIA_ENV_FILE.
 * SABIA_MASTER_KEY is read only by the commands that encrypt channel secrets
 * or issue visitor tokens; SABIA_REDIS_URL, when set, receives the cache
 * invalidations of docs/caching.md. */
#include "ctl.h"

#include <stdlib.h>
#include <string.h>

static const struct sb_config_spec SPECS[] = {
    {"SABIA_DATABASE_OWNER_URL", SB_CONFIG_STRING, NULL, 0, 0, true,
     "PostgreSQL connection for the schema owner role (libpq URI)"},
    {"SABIA_LOG_LEVEL", SB_CONFIG_STRING, "warn", 0, 0, false, "debug, info, warn or error"},
    {"SABIA_REDIS_URL", SB_CONFIG_STRING, "", 0, 0, true,
     "Redis URL for cache invalidation (optional: empty skips it)"},
    {"SABIA_MASTER_KEY", SB_CONFIG_STRING, "", 0, 0, true,
     "64 hex characters; needed by commands that encrypt channel secrets or issue visitor tokens"},
};

static const char USAGE[] =
    "usage: sabiactl COMMAND [--option value ...]\n"
    "  migrate [--dir DIR]\n"
    "  seed-demo [--login-file PATH]\n"
    "  tenant create --name N [--slug S] [--plan free|pro|enterprise] "
    "[--rate-limit-per-second N] [--rate-limit-burst N]\n"
    "  tenant list\n"
    "  tenant suspend --id T [--reason TEXT]\n"
    "  tenant activate --id T\n"
    "  tenant update --id T [--name N] [--plan P] [--rate-limit-per-second N] "
    "[--rate-limit-burst N]\n"
    "  workspace create --tenant T --name N\n"
    "  channel create --tenant T --workspace W --type whatsapp|instagram|web [channel options]\n"
    "  channel update --tenant T --id C [channel options]\n"
    "  channel show --tenant T --id C\n"
    "  channel visitor-token --tenant T --id C --visitor V [--ttl-seconds N]\n"
    "  assistant create --tenant T --workspace W --name N [--system-prompt P] [--personality P]\n"
    "    [--provider retrieval|openai|anthropic|openai_compatible] [--model M] "
    "[--buffer-seconds N]\n"
    "channel options: --name N --status active|inactive|test --assistant A --app-secret S\n"
    "  --access-token A --verify-token V --phone-number-id P --business-account-id B\n"
    "  --instagram-account-id I\n";

struct command {
    const char *name;
    int (*run)(struct ctl *ctl, int argc, char **argv);
};

static const struct command COMMANDS[] = {
    {"migrate", ctl_migrate},     {"seed-demo", ctl_seed_demo}, {"tenant", ctl_tenant},
    {"workspace", ctl_workspace}, {"channel", ctl_channel},     {"assistant", ctl_assistant},
};

static int usage(void)
{
    fputs(USAGE, stderr);
    return CTL_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    const struct command *cmd = NULL;
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (strcmp(argv[1], COMMANDS[i].name) == 0)
            cmd = &COMMANDS[i];
    if (!cmd)
        return ctl_usage_fail("sabiactl COMMAND [--option value ...]",
                              "unknown command \"%.64s\" (run sabiactl alone for the list)",
                              argv[1]);
    struct sb_buf err;
    sb_buf_init(&err, 16 * 1024);
    const char *env_file = getenv("SABIA_ENV_FILE");
    struct ctl ctl = {0};
    ctl.cfg =
        sb_config_load(SPECS, sizeof SPECS / sizeof SPECS[0], env_file ? env_file : ".env", &err);
    if (!ctl.cfg) {
        int rc = ctl_fail("configuration: %s", err.data ? err.data : "invalid");
        sb_buf_cleanup(&err);
        return rc;
    }
    sb_buf_cleanup(&err);
    enum sb_log_level level;
    if (sb_log_level_parse(sb_config_str(ctl.cfg, "SABIA_LOG_LEVEL"), &level) != 0)
        level = SB_LOG_WARN;
    ctl.log = sb_log_new("sabiactl", level, stderr);
    int rc = cmd->run(&ctl, argc - 1, argv + 1);
    db_pool_free(ctl.pool);
    sb_log_free(ctl.log);
    sb_config_free(ctl.cfg);
    return rc;
}
