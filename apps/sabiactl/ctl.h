/* ctl.h - internal to sabiactl: the shared context of the subcommands and
 * the helpers they share (command-line checks, output, database access,
 * audit rows, cache invalidation, the master key). */
#ifndef SABIA_CTL_H
#define SABIA_CTL_H

#include "core.h"
#include "crypto.h"
#include "db.h"

#include <jansson.h>

/* Exit statuses: success, a failed command, a command line that does not parse. */
#define CTL_EXIT_OK    0
#define CTL_EXIT_FAIL  1
#define CTL_EXIT_USAGE 2

#define CTL_ERR_MAX        4096    /* bytes of an error message kept for the user */
#define CTL_NAME_MAX_CHARS 200     /* tenant, workspace, channel and assistant names */
#define CTL_RATE_MAX       1000000 /* rate_limit_per_second and rate_limit_burst */

struct ctl {
    struct sb_config *cfg; /* read-only once loaded */
    struct sb_log *log;
    struct db_pool *pool; /* opened by ctl_db() on first use, freed by main */
};

/* ---------------------------------------------------------------- output */

/* Prints `obj` as one line of JSON on stdout and takes ownership of it. */
void ctl_print(json_t *obj);
/* Prints {"error":msg} on stderr; returns the exit status to use (1). */
int ctl_fail(const char *fmt, ...) SB_PRINTF(1, 2);
/* Prints {"error":msg,"usage":usage} on stderr; returns CTL_EXIT_USAGE. */
int ctl_usage_fail(const char *usage, const char *fmt, ...) SB_PRINTF(2, 3);
/* Prints {"warning":msg} on stderr (the command still succeeds). */
void ctl_warn(const char *fmt, ...) SB_PRINTF(1, 2);

/* ---------------------------------------------------------------- command line */

/* One "--name VALUE" option a subcommand accepts. */
struct ctl_option {
    const char *name; /* with the dashes */
    bool required;
};

/* Checks that argv[1..argc-1] is a list of "--name VALUE" pairs, each named
 * in `opts` (terminated by a {NULL} entry) at most once, and that every
 * required option is there. Returns 0, or prints the problem with `usage`
 * and returns CTL_EXIT_USAGE. argv[0] is the subcommand's name. */
int ctl_args_check(int argc, char **argv, const struct ctl_option *opts, const char *usage);
/* Value of "--name VALUE" in argv (borrowed from argv), or NULL. */
const char *ctl_opt(int argc, char **argv, const char *name);

/* Value checks. Each returns 0, or prints a clear error naming `opt` and
 * returns CTL_EXIT_FAIL. A NULL value (option not given) passes and leaves
 * the output alone. */
/* A UUID of any version, written into out in canonical lower case ("" when NULL). */
int ctl_arg_uuid(const char *opt, const char *value, char out[SB_UUID_STRLEN]);
/* A decimal integer in [min, max]. */
int ctl_arg_long(const char *opt, const char *value, long min, long max, long *out);
/* One of the NULL-terminated `allowed` words. */
int ctl_arg_enum(const char *opt, const char *value, const char *const *allowed);
/* Text of min_chars..max_chars UTF-8 characters. */
int ctl_arg_text(const char *opt, const char *value, size_t min_chars, size_t max_chars);
/* 1..max_chars ASCII digits. */
int ctl_arg_digits(const char *opt, const char *value, size_t max_chars);

/* ---------------------------------------------------------------- database */

/* The owner-role pool (one connection), opened on first use. NULL when the
 * connection string is unusable (an error has been printed). */
struct db_pool *ctl_db(struct ctl *ctl);

/* Runs fn in a transaction scoped to tenant_id (NULL: no tenant, for the
 * security-definer listing functions). On failure prints "<what>: <reason>"
 * (the reason from `err` when the body wrote one) and returns CTL_EXIT_FAIL;
 * returns 0 on success. `err` is the body's message buffer. */
int ctl_run_tx(struct ctl *ctl, const char *what, const char *tenant_id, db_tx_fn fn, void *arg,
               struct sb_buf *err);

/* ctl_run_tx, then prints the JSON the job left in *out (taking it) on
 * success; *out is freed either way and `err` initialised and cleaned here. */
int ctl_run_print(struct ctl *ctl, const char *what, const char *tenant_id, db_tx_fn fn, void *arg,
                  json_t **out, struct sb_buf *err);

/* Runs a statement whose first column of the first row is a JSON text and
 * parses it into *out (owned by the caller). Returns 0, SB_ENOTFOUND (no
 * row), SB_EPARSE (not JSON) or a db_exec() code, with a message in err. */
int ctl_query_json(PGconn *c, const char *sql, int n, const char *const *params, json_t **out,
                   struct sb_buf *err);

/* What ctl_require() checks. */
enum ctl_kind { CTL_TENANT, CTL_WORKSPACE, CTL_CHANNEL, CTL_ASSISTANT };

/* Checks that the tenant (kind CTL_TENANT, `id` ignored) or the tenant's
 * workspace/channel/assistant `id` exists. Returns 0, or SB_ENOTFOUND with
 * "unknown <kind> <id> in tenant <tenant>" in err, or a db_exec() code. */
int ctl_require(PGconn *c, enum ctl_kind kind, const char *tenant_id, const char *id,
                struct sb_buf *err);

/* Appends an audit_log row (actor_type 'system') for `action` on
 * target_type/target_id; `details` (borrowed, may be NULL) is a JSON object
 * that must never hold secrets. Returns 0 or a db_exec() code. */
int ctl_audit(PGconn *c, const char *tenant_id, const char *action, const char *target_type,
              const char *target_id, json_t *details, struct sb_buf *err);

/* ---------------------------------------------------------------- side effects */

/* Tells the services that `kind` ("tenant" or "channel") `id` changed, when
 * SABIA_REDIS_URL is set: DEL sabia:cache:<kind>:<id>, then PUBLISH
 * "<kind>:<id>" on sabia:invalidate (docs/caching.md). A Redis failure is
 * only a warning on stderr. */
void ctl_invalidate(struct ctl *ctl, const char *kind, const char *id);

/* Loads SABIA_MASTER_KEY for `purpose` (used in the error). Returns 0 and
 * *out (caller frees with crypto_key_free), or prints a clear error and
 * returns CTL_EXIT_FAIL. */
int ctl_master_key(struct ctl *ctl, const char *purpose, struct crypto_key **out);

/* Seals `plain` (borrowed) for the secret `field` ("app_secret",
 * "access_token" or "verify_token") of channel_id, with the aad
 * "channel:<channel_id>:<field>" the gateway opens it with, and returns the
 * blob hex-encoded in *hex_out (caller frees), for decode($n, 'hex').
 * Returns 0 or a crypto_seal() code. */
int ctl_seal_hex(const struct crypto_key *k, const char *channel_id, const char *field,
                 const char *plain, char **hex_out);

/* ---------------------------------------------------------------- commands */

int ctl_migrate(struct ctl *ctl, int argc, char **argv);
int ctl_seed_demo(struct ctl *ctl, int argc, char **argv);
/* Groups: argv[0] is the group name, argv[1] the subcommand. */
int ctl_tenant(struct ctl *ctl, int argc, char **argv);
int ctl_workspace(struct ctl *ctl, int argc, char **argv);
int ctl_channel(struct ctl *ctl, int argc, char **argv);
int ctl_assistant(struct ctl *ctl, int argc, char **argv);
/* `channel visitor-token`: argv[0] is "visitor-token". */
int ctl_channel_visitor_token(struct ctl *ctl, int argc, char **argv);

/* The channel as printed by `channel show` (no secrets, "has_<secret>"
 * flags instead) into *out (caller owns). Returns 0, SB_ENOTFOUND with
 * "unknown channel ..." in err, or a db_exec() code. */
int ctl_channel_json(PGconn *c, const char *tenant_id, const char *id, json_t **out,
                     struct sb_buf *err);

#endif
