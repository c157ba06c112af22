/* migrate.c - `sabiactl migrate`: applies pending files from migrations/. */
#include "ctl.h"

#include <string.h>

int ctl_migrate(struct ctl *ctl, int argc, char **argv)
{
    const char *dir = ctl_opt(argc, argv, "--dir");
    struct sb_buf report, err;
    sb_buf_init(&report, 1024 * 1024);
    sb_buf_init(&err, 16 * 1024);
    int n = db_migrate(sb_config_str(ctl->cfg, "SABIA_DATABASE_OWNER_URL"), dir ? dir : "migrations",
                       ctl->log, &report, &err);
    int rc = 0;
    if (n < 0) {
        rc = ctl_fail("migrate: %s", err.data ? err.data : sb_strerror(n));
    } else {
        json_t *applied = json_array();
        const char *p = report.data ? report.data : "";
        while (*p) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            if (len)
                json_array_append_new(applied, json_stringn(p, len));
            p += len + (nl ? 1 : 0);
        }
        ctl_print(json_pack("{s:i, s:o}", "applied", n, "files", applied));
    }
    sb_buf_cleanup(&report);
    sb_buf_cleanup(&err);
    return rc;
}
