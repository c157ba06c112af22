/* visitor.c - `sabiactl channel visitor-token`: issues a web widget visitor
 * token (docs/visitor-tokens.md) for a web channel, for tests and operators;
 * the webapp issues the same tokens to real visitors. Nothing is written. */
#include "ctl.h"

#include <string.h>

#define VISITOR_TTL_DEFAULT 86400L         /* one day */
#define VISITOR_TTL_MAX     (30L * 86400L) /* thirty days */

struct visitor_job {
    char tenant[SB_UUID_STRLEN], id[SB_UUID_STRLEN];
    char type[16];
    struct sb_buf err;
};

static int visitor_tx(PGconn *c, void *arg)
{
    struct visitor_job *j = arg;
    json_t *channel = NULL;
    int rc = ctl_require(c, CTL_TENANT, j->tenant, NULL, &j->err);
    if (rc == 0)
        rc = ctl_channel_json(c, j->tenant, j->id, &channel, &j->err);
    const char *type = json_string_value(json_object_get(channel, "type"));
    snprintf(j->type, sizeof j->type, "%s", type ? type : "");
    json_decref(channel);
    if (rc == 0 && strcmp(j->type, "web") != 0) {
        db_err_setf(&j->err, "channel %s is a %s channel: visitor tokens are for web channels",
                    j->id, j->type);
        rc = -EINVAL;
    }
    return rc;
}

int ctl_channel_visitor_token(struct ctl *ctl, int argc, char **argv)
{
    static const struct ctl_option OPTS[] = {{"--tenant", true},
                                             {"--id", true},
                                             {"--visitor", true},
                                             {"--ttl-seconds", false},
                                             {NULL, false}};
    int rc = ctl_args_check(argc, argv, OPTS,
                            "sabiactl channel visitor-token --tenant T --id C --visitor V "
                            "[--ttl-seconds N]");
    if (rc != 0)
        return rc;
    struct visitor_job j = {0};
    const char *visitor = ctl_opt(argc, argv, "--visitor");
    long ttl = VISITOR_TTL_DEFAULT;
    rc = ctl_arg_uuid("--tenant", ctl_opt(argc, argv, "--tenant"), j.tenant);
    if (rc == 0)
        rc = ctl_arg_uuid("--id", ctl_opt(argc, argv, "--id"), j.id);
    if (rc == 0)
        rc = ctl_arg_long("--ttl-seconds", ctl_opt(argc, argv, "--ttl-seconds"), 1, VISITOR_TTL_MAX,
                          &ttl);
    if (rc == 0 && !crypto_visitor_id_valid(visitor))
        rc = ctl_fail("--visitor: must be 1 to %d characters of A-Z, a-z, 0-9, '_' and '-'",
                      CRYPTO_VISITOR_ID_MAX);
    struct crypto_key *key = NULL;
    if (rc == 0)
        rc = ctl_master_key(ctl, "issue visitor tokens", &key);
    if (rc != 0)
        return rc;
    sb_buf_init(&j.err, CTL_ERR_MAX);
    rc = ctl_run_tx(ctl, "channel visitor-token", j.tenant, visitor_tx, &j, &j.err);
    sb_buf_cleanup(&j.err);
    long expires = (long)(sb_now_ms() / 1000) + ttl;
    char token[CRYPTO_VISITOR_TOKEN_MAX + 1];
    int err =
        rc == 0 ? crypto_visitor_token_issue(key, j.id, visitor, expires, token, sizeof token) : 0;
    crypto_key_free(key);
    if (err != 0)
        return ctl_fail("channel visitor-token: %s", sb_strerror(err));
    if (rc == 0)
        ctl_print(json_pack("{s:s, s:s, s:s, s:I}", "token", token, "channel_id", j.id,
                            "visitor_id", visitor, "expires_at", (json_int_t)expires));
    return rc;
}
