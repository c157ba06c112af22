/* channel.c - `sabiactl channel create|update|show`: a tenant's WhatsApp
 * number, Instagram account or web widget, its secrets and the assistant
 * that answers on it. (`channel visitor-token` lives in visitor.c.)
 *
 * Secrets (app secret, access token, verify token) are sealed with the
 * master key under the aad "channel:<id>:<field>" before the transaction and
 * are never printed: `show` says only whether each one is set. Every change
 * writes an audit row naming the fields changed (never their secret values)
 * and invalidates the services' cached copy of the channel. */
#include "ctl.h"

#include <stdlib.h>
#include <string.h>

#define CHANNEL_ACCOUNT_ID_MAX 64 /* phone number, business account and Instagram ids */

static const char *const TYPES[] = {"whatsapp", "instagram", "web", NULL};
static const char *const STATUSES[] = {"active", "inactive", "test", NULL};

/* The secret options, their column stem and plaintext limit in bytes. */
static const struct {
    const char *opt, *field;
    size_t max;
} SECRETS[] = {
    {"--app-secret", "app_secret", 1024},
    {"--access-token", "access_token", 4096},
    {"--verify-token", "verify_token", 1024},
};
#define NSECRETS (sizeof SECRETS / sizeof SECRETS[0])

static const char CHANNEL_JSON_SQL[] =
    "SELECT json_build_object('id', c.id, 'tenant_id', c.tenant_id, "
    "'workspace_id', c.workspace_id, 'type', c.type, 'name', c.name, 'status', c.status, "
    "'phone_number_id', c.phone_number_id, 'business_account_id', c.business_account_id, "
    "'display_phone_number', c.display_phone_number, "
    "'instagram_account_id', c.instagram_account_id, "
    "'has_app_secret', c.app_secret_enc IS NOT NULL, "
    "'has_access_token', c.access_token_enc IS NOT NULL, "
    "'has_verify_token', c.verify_token_enc IS NOT NULL, "
    "'assistant_id', ac.assistant_id, 'config', c.config, "
    "'webhook_path', '/v1/webhook/' || c.type || '/' || c.tenant_id || '/' || c.workspace_id "
    "|| '/' || c.id, "
    "'status_changed_at', c.status_changed_at, 'created_at', c.created_at, "
    "'updated_at', c.updated_at)::text "
    "FROM channels c LEFT JOIN assistant_channels ac "
    "ON ac.tenant_id = c.tenant_id AND ac.channel_id = c.id "
    "WHERE c.tenant_id = $1 AND c.id = $2";

struct channel_job {
    bool create;
    char tenant[SB_UUID_STRLEN], workspace[SB_UUID_STRLEN], id[SB_UUID_STRLEN];
    char assistant[SB_UUID_STRLEN];                /* "" when not given */
    char type[16];                                 /* create: given; update: read from the row */
    const char *name, *status, *phone, *waba, *ig; /* borrowed, NULL when not given */
    char *sealed[NSECRETS];                        /* hex blobs (owned), NULL when not given */
    json_t *details;                               /* audit details (owned) */
    json_t *out;                                   /* the channel after the change (owned) */
    struct sb_buf err;
};

/* The account ids a channel of `type` may carry; "" when they fit, else why not. */
static void channel_type_check(const struct channel_job *j, char *why, size_t n)
{
    why[0] = '\0';
    bool wa = strcmp(j->type, "whatsapp") == 0, ig = strcmp(j->type, "instagram") == 0;
    if (!wa && (j->phone || j->waba))
        snprintf(why, n, "%s is only for whatsapp channels, not %s",
                 j->phone ? "--phone-number-id" : "--business-account-id", j->type);
    else if (!ig && j->ig)
        snprintf(why, n, "--instagram-account-id is only for instagram channels, not %s", j->type);
}

int ctl_channel_json(PGconn *c, const char *tenant_id, const char *id, json_t **out,
                     struct sb_buf *err)
{
    const char *p[] = {tenant_id, id};
    int rc = ctl_query_json(c, CHANNEL_JSON_SQL, 2, p, out, err);
    if (rc == SB_ENOTFOUND)
        db_err_setf(err, "unknown channel %s in tenant %s", id, tenant_id);
    return rc;
}

/* Explains a unique violation of the per-tenant account id indexes. */
static void channel_conflict(struct channel_job *j)
{
    if (strstr(j->err.data ? j->err.data : "", "channels_wa_number_key"))
        db_err_setf(&j->err, "phone number id %s is already used by another channel of tenant %s",
                    j->phone, j->tenant);
    else if (strstr(j->err.data ? j->err.data : "", "channels_ig_account_key"))
        db_err_setf(&j->err,
                    "instagram account id %s is already used by another channel of tenant %s",
                    j->ig, j->tenant);
}

/* Create: the row with the schema's defaults; channel_set_fields() follows. */
static int channel_insert(PGconn *c, struct channel_job *j)
{
    const char *p[] = {j->id, j->tenant, j->workspace, j->type};
    return db_exec(c,
                   "INSERT INTO channels (id, tenant_id, workspace_id, type) "
                   "VALUES ($1, $2, $3, $4)",
                   4, p, NULL, &j->err);
}

/* Sets the fields given (NULL parameters keep the column). */
static int channel_set_fields(PGconn *c, struct channel_job *j)
{
    const char *p[] = {j->tenant, j->id, j->name,      j->status,    j->phone,
                       j->waba,   j->ig, j->sealed[0], j->sealed[1], j->sealed[2]};
    return db_exec(c,
                   "UPDATE channels SET name = COALESCE($3, name), "
                   "status_changed_at = CASE WHEN $4::text <> status THEN now() "
                   "ELSE status_changed_at END, status = COALESCE($4, status), "
                   "phone_number_id = COALESCE($5, phone_number_id), "
                   "business_account_id = COALESCE($6, business_account_id), "
                   "instagram_account_id = COALESCE($7, instagram_account_id), "
                   "app_secret_enc = COALESCE(decode($8, 'hex'), app_secret_enc), "
                   "access_token_enc = COALESCE(decode($9, 'hex'), access_token_enc), "
                   "verify_token_enc = COALESCE(decode($10, 'hex'), verify_token_enc) "
                   "WHERE tenant_id = $1 AND id = $2",
                   10, p, NULL, &j->err);
}

/* Update: the row's type, locked until the end of the transaction. */
static int channel_load_type(PGconn *c, struct channel_job *j)
{
    const char *p[] = {j->tenant, j->id};
    PGresult *r = NULL;
    int rc = db_exec(c, "SELECT type FROM channels WHERE tenant_id = $1 AND id = $2 FOR UPDATE", 2,
                     p, &r, &j->err);
    if (rc != 0)
        return rc;
    const char *type = db_value(r, 0, 0);
    bool found = type != NULL;
    if (found)
        snprintf(j->type, sizeof j->type, "%s", type);
    PQclear(r);
    if (!found) {
        db_err_setf(&j->err, "unknown channel %s in tenant %s", j->id, j->tenant);
        return SB_ENOTFOUND;
    }
    char why[128];
    channel_type_check(j, why, sizeof why);
    if (why[0]) {
        db_err_setf(&j->err, "%s", why);
        return -EINVAL;
    }
    return 0;
}

static int channel_link_assistant(PGconn *c, struct channel_job *j)
{
    if (!j->assistant[0])
        return 0;
    char link[SB_UUID_STRLEN];
    int rc = sb_uuid_v7_str(link);
    const char *p[] = {link, j->tenant, j->assistant, j->id};
    if (rc == 0)
        rc = db_exec(c,
                     "INSERT INTO assistant_channels (id, tenant_id, assistant_id, channel_id) "
                     "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, channel_id) "
                     "DO UPDATE SET assistant_id = EXCLUDED.assistant_id",
                     4, p, NULL, &j->err);
    return rc;
}

static int channel_tx(PGconn *c, void *arg)
{
    struct channel_job *j = arg;
    json_decref(j->out); /* from an attempt that was retried */
    j->out = NULL;
    int rc = ctl_require(c, CTL_TENANT, j->tenant, NULL, &j->err);
    if (rc == 0)
        rc = j->create ? ctl_require(c, CTL_WORKSPACE, j->tenant, j->workspace, &j->err)
                       : channel_load_type(c, j);
    if (rc == 0 && j->assistant[0])
        rc = ctl_require(c, CTL_ASSISTANT, j->tenant, j->assistant, &j->err);
    if (rc == 0 && j->create)
        rc = channel_insert(c, j);
    if (rc == 0)
        rc = channel_set_fields(c, j);
    if (rc == SB_ECONFLICT)
        channel_conflict(j);
    if (rc == 0)
        rc = channel_link_assistant(c, j);
    if (rc == 0)
        rc = ctl_channel_json(c, j->tenant, j->id, &j->out, &j->err);
    if (rc == 0)
        rc = ctl_audit(c, j->tenant, j->create ? "channel.create" : "channel.update", "channel",
                       j->id, j->details, &j->err);
    return rc;
}

/* Checks the options shared by create and update (type rules for create;
 * update checks them against the row's type in the transaction). */
static int channel_args(struct channel_job *j, int argc, char **argv)
{
    j->name = ctl_opt(argc, argv, "--name");
    j->status = ctl_opt(argc, argv, "--status");
    j->phone = ctl_opt(argc, argv, "--phone-number-id");
    j->waba = ctl_opt(argc, argv, "--business-account-id");
    j->ig = ctl_opt(argc, argv, "--instagram-account-id");
    int rc = ctl_arg_uuid("--tenant", ctl_opt(argc, argv, "--tenant"), j->tenant);
    if (rc == 0)
        rc = ctl_arg_uuid("--assistant", ctl_opt(argc, argv, "--assistant"), j->assistant);
    if (rc == 0)
        rc = ctl_arg_text("--name", j->name, 0, CTL_NAME_MAX_CHARS);
    if (rc == 0)
        rc = ctl_arg_enum("--status", j->status, STATUSES);
    if (rc == 0)
        rc = ctl_arg_digits("--phone-number-id", j->phone, CHANNEL_ACCOUNT_ID_MAX);
    if (rc == 0)
        rc = ctl_arg_text("--business-account-id", j->waba, 1, CHANNEL_ACCOUNT_ID_MAX);
    if (rc == 0)
        rc = ctl_arg_text("--instagram-account-id", j->ig, 1, CHANNEL_ACCOUNT_ID_MAX);
    for (size_t i = 0; rc == 0 && i < NSECRETS; i++) {
        const char *v = ctl_opt(argc, argv, SECRETS[i].opt);
        if (v && (!v[0] || strlen(v) > SECRETS[i].max))
            rc = ctl_fail("%s: must be 1 to %zu bytes", SECRETS[i].opt, SECRETS[i].max);
    }
    return rc;
}

/* Seals the secrets given, now that the channel id is known. */
static int channel_seal(struct ctl *ctl, struct channel_job *j, int argc, char **argv)
{
    bool any = false;
    for (size_t i = 0; i < NSECRETS; i++)
        any = any || ctl_opt(argc, argv, SECRETS[i].opt);
    if (!any)
        return 0;
    struct crypto_key *key = NULL;
    int rc = ctl_master_key(ctl, "encrypt channel secrets", &key);
    for (size_t i = 0; rc == 0 && i < NSECRETS; i++) {
        const char *v = ctl_opt(argc, argv, SECRETS[i].opt);
        int err = v ? ctl_seal_hex(key, j->id, SECRETS[i].field, v, &j->sealed[i]) : 0;
        if (err != 0)
            rc = ctl_fail("%s: cannot encrypt: %s", SECRETS[i].opt, sb_strerror(err));
    }
    crypto_key_free(key);
    return rc;
}

/* Audit details: the type and the names of the fields given (never values of secrets). */
static json_t *channel_details(const struct channel_job *j, int argc, char **argv)
{
    json_t *fields = json_array();
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *opt = argv[i] + 2;
        if (strcmp(opt, "tenant") == 0 || strcmp(opt, "id") == 0 || strcmp(opt, "workspace") == 0 ||
            strcmp(opt, "type") == 0)
            continue;
        char name[64];
        snprintf(name, sizeof name, "%s", opt);
        for (char *p = name; *p; p++)
            if (*p == '-')
                *p = '_';
        json_array_append_new(fields, json_string(name));
    }
    json_t *d = json_pack("{s:o}", "fields", fields);
    if (j->create) {
        json_object_set_new(d, "type", json_string(j->type));
        json_object_set_new(d, "workspace_id", json_string(j->workspace));
    }
    return d;
}

/* Runs the job, prints the channel and invalidates its cache entry. */
static int channel_run(struct ctl *ctl, struct channel_job *j, int argc, char **argv)
{
    const char *what = j->create ? "channel create" : "channel update";
    int rc = channel_seal(ctl, j, argc, argv);
    if (rc == 0) {
        j->details = channel_details(j, argc, argv);
        sb_buf_init(&j->err, CTL_ERR_MAX);
        rc = ctl_run_tx(ctl, what, j->tenant, channel_tx, j, &j->err);
        sb_buf_cleanup(&j->err);
    }
    if (rc == 0) {
        ctl_print(j->out);
        j->out = NULL;
        ctl_invalidate(ctl, "channel", j->id);
    }
    for (size_t i = 0; i < NSECRETS; i++)
        free(j->sealed[i]);
    json_decref(j->details);
    json_decref(j->out);
    return rc;
}

/* The field options of create and update. */
/* clang-format off */
#define CHANNEL_FIELD_OPTIONS                                                           \
    {"--name", false}, {"--status", false}, {"--assistant", false},                     \
    {"--app-secret", false}, {"--access-token", false}, {"--verify-token", false},      \
    {"--phone-number-id", false}, {"--business-account-id", false},                     \
    {"--instagram-account-id", false}
/* clang-format on */

static int channel_create(struct ctl *ctl, int argc, char **argv)
{
    static const struct ctl_option OPTS[] = {{"--tenant", true},
                                             {"--workspace", true},
                                             {"--type", true},
                                             CHANNEL_FIELD_OPTIONS,
                                             {NULL, false}};
    static const char USAGE[] =
        "sabiactl channel create --tenant T --workspace W --type whatsapp|instagram|web "
        "[--name N] [--status active|inactive|test] [--assistant A] [--app-secret S] "
        "[--access-token A] [--verify-token V] [--phone-number-id P] "
        "[--business-account-id B] [--instagram-account-id I]";
    int rc = ctl_args_check(argc, argv, OPTS, USAGE);
    if (rc != 0)
        return rc;
    struct channel_job j = {.create = true};
    const char *type = ctl_opt(argc, argv, "--type");
    rc = channel_args(&j, argc, argv);
    if (rc == 0)
        rc = ctl_arg_uuid("--workspace", ctl_opt(argc, argv, "--workspace"), j.workspace);
    if (rc == 0)
        rc = ctl_arg_enum("--type", type, TYPES);
    if (rc != 0)
        return rc;
    snprintf(j.type, sizeof j.type, "%s", type);
    char why[128];
    channel_type_check(&j, why, sizeof why);
    if (why[0])
        return ctl_fail("channel create: %s", why);
    if (sb_uuid_v7_str(j.id) != 0)
        return ctl_fail("channel create: cannot make an id");
    return channel_run(ctl, &j, argc, argv);
}

static int channel_update(struct ctl *ctl, int argc, char **argv)
{
    static const struct ctl_option OPTS[] = {
        {"--tenant", true}, {"--id", true}, CHANNEL_FIELD_OPTIONS, {NULL, false}};
    static const char USAGE[] =
        "sabiactl channel update --tenant T --id C [--name N] [--status active|inactive|test] "
        "[--assistant A] [--app-secret S] [--access-token A] [--verify-token V] "
        "[--phone-number-id P] [--business-account-id B] [--instagram-account-id I]";
    int rc = ctl_args_check(argc, argv, OPTS, USAGE);
    if (rc != 0)
        return rc;
    if (argc <= 5) /* "update --tenant T --id C" */
        return ctl_usage_fail(USAGE, "nothing to update: give at least one field option");
    struct channel_job j = {.create = false};
    rc = channel_args(&j, argc, argv);
    if (rc == 0)
        rc = ctl_arg_uuid("--id", ctl_opt(argc, argv, "--id"), j.id);
    if (rc != 0)
        return rc;
    return channel_run(ctl, &j, argc, argv);
}

struct channel_show {
    char tenant[SB_UUID_STRLEN], id[SB_UUID_STRLEN];
    json_t *out;
    struct sb_buf err;
};

static int channel_show_tx(PGconn *c, void *arg)
{
    struct channel_show *s = arg;
    json_decref(s->out);
    s->out = NULL;
    int rc = ctl_require(c, CTL_TENANT, s->tenant, NULL, &s->err);
    if (rc == 0)
        rc = ctl_channel_json(c, s->tenant, s->id, &s->out, &s->err);
    return rc;
}

static int channel_show(struct ctl *ctl, int argc, char **argv)
{
    static const struct ctl_option OPTS[] = {{"--tenant", true}, {"--id", true}, {NULL, false}};
    int rc = ctl_args_check(argc, argv, OPTS, "sabiactl channel show --tenant T --id C");
    if (rc != 0)
        return rc;
    struct channel_show s = {0};
    rc = ctl_arg_uuid("--tenant", ctl_opt(argc, argv, "--tenant"), s.tenant);
    if (rc == 0)
        rc = ctl_arg_uuid("--id", ctl_opt(argc, argv, "--id"), s.id);
    if (rc != 0)
        return rc;
    sb_buf_init(&s.err, CTL_ERR_MAX);
    rc = ctl_run_tx(ctl, "channel show", s.tenant, channel_show_tx, &s, &s.err);
    if (rc == 0) {
        ctl_print(s.out);
        s.out = NULL;
    }
    json_decref(s.out);
    sb_buf_cleanup(&s.err);
    return rc;
}

int ctl_channel(struct ctl *ctl, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    argc--;
    argv++;
    if (strcmp(sub, "create") == 0)
        return channel_create(ctl, argc, argv);
    if (strcmp(sub, "update") == 0)
        return channel_update(ctl, argc, argv);
    if (strcmp(sub, "show") == 0)
        return channel_show(ctl, argc, argv);
    if (strcmp(sub, "visitor-token") == 0)
        return ctl_channel_visitor_token(ctl, argc, argv);
    return ctl_usage_fail("sabiactl channel create|update|show|visitor-token [options]",
                          "unknown channel command \"%.64s\"", sub);
}
