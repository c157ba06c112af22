/* tenant.c - `sabiactl tenant create|list|suspend|activate|update`.
 *
 * A tenant row is only visible inside a transaction scoped to its own id
 * (RLS is forced), so each command scopes its transaction to the tenant it
 * touches; a new tenant is inserted after scoping to its new id. The list
 * goes through platform_list_tenants(), the security-definer function made
 * for platform administration. Every change writes an audit row and
 * invalidates the services' cached copy of the tenant. */
#include "ctl.h"

#include <stdlib.h>
#include <string.h>

#define TENANT_CAP_MAX          1000000000000000L /* micro-USD a month: a billion dollars */
#define TENANT_LIST_PAGE        1000    /* rows per platform_list_tenants() call (its maximum) */
#define TENANT_LIST_MAX         1000000 /* tenants one `tenant list` prints */
#define TENANT_REASON_MAX_CHARS 1000
#define TENANT_SLUG_MAX         63

static const char TENANT_JSON_SQL[] =
    "SELECT json_build_object('id', id, 'name', name, 'slug', slug, 'status', status, "
    "'plan', plan, 'rate_limit_per_second', rate_limit_per_second, "
    "'rate_limit_burst', rate_limit_burst, 'llm_monthly_cap_micros', llm_monthly_cap_micros, "
    "'suspended_at', suspended_at, "
    "'suspended_reason', suspended_reason, 'created_at', created_at, "
    "'updated_at', updated_at)::text FROM tenants WHERE id = $1";

static const char *const PLANS[] = {"free", "pro", "enterprise", NULL};

enum tenant_op { TENANT_CREATE, TENANT_UPDATE, TENANT_SUSPEND, TENANT_ACTIVATE };

struct tenant_job {
    enum tenant_op op;
    char id[SB_UUID_STRLEN];
    const char *name, *slug, *plan, *reason; /* borrowed from argv, NULL when not given */
    char rate[24], burst[24];                /* canonical decimal, "" when not given */
    char cap[24];                            /* micro-USD, "" when not given, "none" clears */
    json_t *details;                         /* audit details (owned) */
    json_t *out;                             /* the tenant after the change (owned) */
    struct sb_buf err;
};

/* Sets the optional columns given on the command line. */
static int tenant_set_fields(PGconn *c, struct tenant_job *j)
{
    if (!j->name && !j->plan && !j->rate[0] && !j->burst[0] && !j->cap[0])
        return 0;
    const char *p[] = {j->id, j->op == TENANT_UPDATE ? j->name : NULL, j->plan,
                       j->rate[0] ? j->rate : NULL, j->burst[0] ? j->burst : NULL,
                       j->cap[0] ? j->cap : NULL};
    return db_exec(c,
                   "UPDATE tenants SET name = COALESCE($2, name), plan = COALESCE($3, plan), "
                   "rate_limit_per_second = COALESCE($4::int, rate_limit_per_second), "
                   "rate_limit_burst = COALESCE($5::int, rate_limit_burst), "
                   "llm_monthly_cap_micros = CASE WHEN $6::text IS NULL THEN llm_monthly_cap_micros "
                   "WHEN $6 = 'none' THEN NULL ELSE $6::bigint END WHERE id = $1",
                   6, p, NULL, &j->err);
}

static int tenant_change(PGconn *c, struct tenant_job *j)
{
    const char *p[] = {j->id, j->reason};
    switch (j->op) {
    case TENANT_CREATE: {
        const char *ins[] = {j->id, j->name, j->slug};
        int rc = db_exec(c, "INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $3)", 3, ins,
                         NULL, &j->err);
        if (rc == SB_ECONFLICT)
            db_err_setf(&j->err, "slug \"%s\" is already taken", j->slug ? j->slug : "");
        return rc ? rc : tenant_set_fields(c, j);
    }
    case TENANT_UPDATE:
        return tenant_set_fields(c, j);
    case TENANT_SUSPEND:
        return db_exec(c,
                       "UPDATE tenants SET status = 'suspended', "
                       "suspended_at = COALESCE(suspended_at, now()), suspended_reason = $2 "
                       "WHERE id = $1",
                       2, p, NULL, &j->err);
    case TENANT_ACTIVATE:
        return db_exec(c,
                       "UPDATE tenants SET status = 'active', suspended_at = NULL, "
                       "suspended_reason = NULL WHERE id = $1",
                       1, p, NULL, &j->err);
    }
    return -EINVAL;
}

static int tenant_tx(PGconn *c, void *arg)
{
    static const char *const ACTIONS[] = {
        [TENANT_CREATE] = "tenant.create",
        [TENANT_UPDATE] = "tenant.update",
        [TENANT_SUSPEND] = "tenant.suspend",
        [TENANT_ACTIVATE] = "tenant.activate",
    };
    struct tenant_job *j = arg;
    json_decref(j->out); /* from an attempt that was retried */
    j->out = NULL;
    int rc = j->op == TENANT_CREATE ? 0 : ctl_require(c, CTL_TENANT, j->id, NULL, &j->err);
    if (rc == 0)
        rc = tenant_change(c, j);
    const char *p[] = {j->id};
    if (rc == 0)
        rc = ctl_query_json(c, TENANT_JSON_SQL, 1, p, &j->out, &j->err);
    if (rc == 0)
        rc = ctl_audit(c, j->id, ACTIONS[j->op], "tenant", j->id, j->details, &j->err);
    return rc;
}

/* Runs the job, prints the tenant and invalidates its cache entry. */
static int tenant_run(struct ctl *ctl, struct tenant_job *j, const char *what)
{
    int rc = ctl_run_print(ctl, what, j->id, tenant_tx, j, &j->out, &j->err);
    if (rc == 0)
        ctl_invalidate(ctl, "tenant", j->id);
    json_decref(j->details);
    return rc;
}

static bool tenant_slug_valid(const char *s)
{
    size_t n = strnlen(s, TENANT_SLUG_MAX + 1);
    if (n == 0 || n > TENANT_SLUG_MAX || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

/* Checks and copies the options shared by create and update. */
static int tenant_fields(struct tenant_job *j, int argc, char **argv)
{
    j->name = ctl_opt(argc, argv, "--name");
    j->plan = ctl_opt(argc, argv, "--plan");
    j->slug = ctl_opt(argc, argv, "--slug");
    long rate = 0, burst = 0;
    const char *rate_s = ctl_opt(argc, argv, "--rate-limit-per-second");
    const char *burst_s = ctl_opt(argc, argv, "--rate-limit-burst");
    const char *cap_s = ctl_opt(argc, argv, "--llm-monthly-cap-micros");
    long cap = -1;
    int rc = ctl_arg_text("--name", j->name, 1, CTL_NAME_MAX_CHARS);
    if (rc == 0)
        rc = ctl_arg_enum("--plan", j->plan, PLANS);
    if (rc == 0)
        rc = ctl_arg_long("--rate-limit-per-second", rate_s, 1, CTL_RATE_MAX, &rate);
    if (rc == 0)
        rc = ctl_arg_long("--rate-limit-burst", burst_s, 1, CTL_RATE_MAX, &burst);
    if (rc == 0 && cap_s && strcmp(cap_s, "none") != 0)
        rc = ctl_arg_long("--llm-monthly-cap-micros", cap_s, 0, TENANT_CAP_MAX, &cap);
    if (rc == 0 && j->slug && !tenant_slug_valid(j->slug))
        rc = ctl_fail("--slug: 1 to %d characters of a-z, 0-9 and '-', not starting or ending "
                      "with '-'",
                      TENANT_SLUG_MAX);
    if (rc != 0)
        return rc;
    if (rate_s)
        snprintf(j->rate, sizeof j->rate, "%ld", rate);
    if (burst_s)
        snprintf(j->burst, sizeof j->burst, "%ld", burst);
    if (cap_s && cap < 0)
        snprintf(j->cap, sizeof j->cap, "none");
    else if (cap_s)
        snprintf(j->cap, sizeof j->cap, "%ld", cap);
    j->details = json_object();
    const char *keys[] = {"name", "slug", "plan"};
    const char *vals[] = {j->name, j->slug, j->plan};
    for (size_t i = 0; i < 3; i++)
        if (vals[i])
            json_object_set_new(j->details, keys[i], json_string(vals[i]));
    if (rate_s)
        json_object_set_new(j->details, "rate_limit_per_second", json_integer(rate));
    if (burst_s)
        json_object_set_new(j->details, "rate_limit_burst", json_integer(burst));
    if (cap_s)
        json_object_set_new(j->details, "llm_monthly_cap_micros",
                            cap < 0 ? json_null() : json_integer(cap));
    return 0;
}

static int tenant_create(struct ctl *ctl, int argc, char **argv)
{
    static const struct ctl_option OPTS[] = {{"--name", true},
                                             {"--slug", false},
                                             {"--plan", false},
                                             {"--rate-limit-per-second", false},
                                             {"--rate-limit-burst", false},
                                             {"--llm-monthly-cap-micros", false},
                                             {NULL, false}};
    static const char USAGE[] = "sabiactl tenant create --name N [--slug S] "
                                "[--plan free|pro|enterprise] [--rate-limit-per-second N] "
                                "[--rate-limit-burst N] [--llm-monthly-cap-micros N|none]";
    int rc = ctl_args_check(argc, argv, OPTS, USAGE);
    if (rc != 0)
        return rc;
    struct tenant_job j = {.op = TENANT_CREATE};
    if ((rc = tenant_fields(&j, argc, argv)) != 0)
        return rc;
    if (sb_uuid_v7_str(j.id) != 0) {
        json_decref(j.details);
        return ctl_fail("tenant create: cannot make an id");
    }
    return tenant_run(ctl, &j, "tenant create");
}

static int tenant_update(struct ctl *ctl, int argc, char **argv)
{
    static const struct ctl_option OPTS[] = {{"--id", true},
                                             {"--name", false},
                                             {"--plan", false},
                                             {"--rate-limit-per-second", false},
                                             {"--rate-limit-burst", false},
                                             {"--llm-monthly-cap-micros", false},
                                             {NULL, false}};
    static const char USAGE[] = "sabiactl tenant update --id T [--name N] "
                                "[--plan free|pro|enterprise] [--rate-limit-per-second N] "
                                "[--rate-limit-burst N] [--llm-monthly-cap-micros N|none]";
    int rc = ctl_args_check(argc, argv, OPTS, USAGE);
    if (rc != 0)
        return rc;
    if (argc <= 3) /* "update --id T" */
        return ctl_usage_fail(USAGE, "nothing to update: give at least one option besides --id");
    struct tenant_job j = {.op = TENANT_UPDATE};
    rc = ctl_arg_uuid("--id", ctl_opt(argc, argv, "--id"), j.id);
    if (rc == 0)
        rc = tenant_fields(&j, argc, argv);
    if (rc != 0)
        return rc;
    return tenant_run(ctl, &j, "tenant update");
}

/* suspend and activate. */
static int tenant_status(struct ctl *ctl, int argc, char **argv, bool suspend)
{
    static const struct ctl_option SUSPEND_OPTS[] = {
        {"--id", true}, {"--reason", false}, {NULL, false}};
    static const struct ctl_option ACTIVATE_OPTS[] = {{"--id", true}, {NULL, false}};
    const char *usage = suspend ? "sabiactl tenant suspend --id T [--reason TEXT]"
                                : "sabiactl tenant activate --id T";
    int rc = ctl_args_check(argc, argv, suspend ? SUSPEND_OPTS : ACTIVATE_OPTS, usage);
    if (rc != 0)
        return rc;
    struct tenant_job j = {.op = suspend ? TENANT_SUSPEND : TENANT_ACTIVATE};
    j.reason = ctl_opt(argc, argv, "--reason");
    rc = ctl_arg_uuid("--id", ctl_opt(argc, argv, "--id"), j.id);
    if (rc == 0)
        rc = ctl_arg_text("--reason", j.reason, 0, TENANT_REASON_MAX_CHARS);
    if (rc != 0)
        return rc;
    j.details = j.reason ? json_pack("{s:s}", "reason", j.reason) : NULL;
    return tenant_run(ctl, &j, suspend ? "tenant suspend" : "tenant activate");
}

struct tenant_list {
    json_t *tenants;
    struct sb_buf err;
};

static int tenant_list_tx(PGconn *c, void *arg)
{
    struct tenant_list *l = arg;
    json_array_clear(l->tenants);
    char after[SB_UUID_STRLEN] = "";
    char limit[16];
    snprintf(limit, sizeof limit, "%d", TENANT_LIST_PAGE);
    for (;;) {
        const char *p[] = {after[0] ? after : NULL, limit};
        PGresult *r = NULL;
        int rc = db_exec(c,
                         "SELECT row_to_json(t)::text, t.id FROM "
                         "platform_list_tenants($1::uuid, $2::int) t",
                         2, p, &r, &l->err);
        if (rc != 0)
            return rc;
        int n = PQntuples(r);
        for (int i = 0; i < n; i++)
            json_array_append_new(l->tenants, json_loads(db_value(r, i, 0), 0, NULL));
        if (n > 0)
            snprintf(after, sizeof after, "%s", db_value(r, n - 1, 1));
        PQclear(r);
        if (n < TENANT_LIST_PAGE)
            return 0;
        if (json_array_size(l->tenants) >= TENANT_LIST_MAX) {
            db_err_setf(&l->err, "more than %d tenants: too many to list at once", TENANT_LIST_MAX);
            return SB_ELIMIT;
        }
    }
}

static int tenant_list(struct ctl *ctl, int argc, char **argv)
{
    static const struct ctl_option OPTS[] = {{NULL, false}};
    int rc = ctl_args_check(argc, argv, OPTS, "sabiactl tenant list");
    if (rc != 0)
        return rc;
    struct tenant_list l = {.tenants = json_array()};
    sb_buf_init(&l.err, CTL_ERR_MAX);
    rc = ctl_run_tx(ctl, "tenant list", NULL, tenant_list_tx, &l, &l.err);
    if (rc == 0)
        ctl_print(json_pack("{s:O}", "tenants", l.tenants));
    json_decref(l.tenants);
    sb_buf_cleanup(&l.err);
    return rc;
}

int ctl_tenant(struct ctl *ctl, int argc, char **argv)
{
    static const char USAGE[] = "sabiactl tenant create|list|suspend|activate|update [options]";
    const char *sub = argc > 1 ? argv[1] : "";
    argc--;
    argv++;
    if (strcmp(sub, "create") == 0)
        return tenant_create(ctl, argc, argv);
    if (strcmp(sub, "list") == 0)
        return tenant_list(ctl, argc, argv);
    if (strcmp(sub, "suspend") == 0)
        return tenant_status(ctl, argc, argv, true);
    if (strcmp(sub, "activate") == 0)
        return tenant_status(ctl, argc, argv, false);
    if (strcmp(sub, "update") == 0)
        return tenant_update(ctl, argc, argv);
    return ctl_usage_fail(USAGE, "unknown tenant command \"%.64s\"", sub);
}
