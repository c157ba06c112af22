/* sabiactl - the operator CLI. Prints JSON; exit status 0 on success.
 *
 *   sabiactl migrate [--dir migrations]       apply pending schema migrations
 *   sabiactl seed-demo [--login-file PATH]    create the demo tenant (idempotent)
 *
 * Settings come from the environment or the file named by SABIA_ENV_FILE. */
#include "ctl.h"

#include <stdlib.h>
#include <string.h>

static const struct sb_config_spec SPECS[] = {
    {"SABIA_DATABASE_OWNER_URL", SB_CONFIG_STRING, NULL, 0, 0, true,
     "PostgreSQL connection for the schema owner role (libpq URI)"},
    {"SABIA_LOG_LEVEL", SB_CONFIG_STRING, "warn", 0, 0, false, "debug, info, warn or error"},
};

static int usage(void)
{
    fputs("usage: sabiactl migrate [--dir DIR] | seed-demo [--login-file PATH]\n", stderr);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    struct sb_buf err;
    sb_buf_init(&err, 16 * 1024);
    const char *env_file = getenv("SABIA_ENV_FILE");
    struct ctl ctl = {0};
    ctl.cfg = sb_config_load(SPECS, sizeof SPECS / sizeof SPECS[0], env_file ? env_file : ".env", &err);
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
    int rc;
    if (strcmp(argv[1], "migrate") == 0)
        rc = ctl_migrate(&ctl, argc - 1, argv + 1);
    else if (strcmp(argv[1], "seed-demo") == 0)
        rc = ctl_seed_demo(&ctl, argc - 1, argv + 1);
    else
        rc = usage();
    sb_log_free(ctl.log);
    sb_config_free(ctl.cfg);
    return rc;
}

void ctl_print(json_t *obj)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (s) {
        puts(s);
        free(s);
    }
}

int ctl_fail(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s}", "error", msg);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    fprintf(stderr, "%s\n", s ? s : msg);
    free(s);
    return 1;
}

const char *ctl_opt(int argc, char **argv, const char *name)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}
