/* ctlrun.h - helpers of the sabiactl suites: a scratch database per test
 * (created by the owner role, migrated with `sabiactl migrate`, dropped at
 * the end), running the built sabiactl with a controlled environment, and
 * reading rows back through a tenant-scoped transaction. */
#ifndef SABIA_TEST_TC_H
#define SABIA_TEST_TC_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>

/* One run of sabiactl: exit status (-1 if it did not exit normally), and
 * everything it wrote (heap strings, released by tc_run_cleanup()). */
struct tc_run {
    int status;
    char *out;
    char *err;
};

/* Criterion .init/.fini: scratch database and its migrations. */
void tc_scratch_setup(void);
void tc_scratch_teardown(void);

/* Runs sabiactl with `args` (NULL-terminated). The environment is the
 * test's own without any SABIA_* variable, plus SABIA_DATABASE_OWNER_URL
 * (the scratch database), SABIA_REDIS_URL and SABIA_MASTER_KEY (from the
 * test environment) and SABIA_ENV_FILE=/nonexistent; then `env` entries
 * (NULL-terminated, may be NULL) are applied: "NAME=value" sets, "NAME"
 * alone removes. */
void tc_exec(struct tc_run *r, const char *const *env, const char *const *args);
void tc_run_cleanup(struct tc_run *r);

/* Runs sabiactl (default environment) and asserts success: exit 0, one line
 * of JSON on stdout, nothing on stderr. Returns the JSON (json_decref it). */
json_t *tc_ok(const char *first, ...) __attribute__((sentinel));
/* Runs sabiactl with extra `env` and asserts exit `status` and a stderr
 * {"error":...} whose message contains `needle`. */
void tc_fails_env(const char *const *env, int status, const char *needle, const char *first, ...)
    __attribute__((sentinel));
#define tc_fails(status, needle, ...) tc_fails_env(NULL, status, needle, __VA_ARGS__)

/* A string member of a JSON object ("" when missing or not a string). */
const char *tc_str(json_t *o, const char *key);

/* Connection of the owner role to the scratch database (owned by the
 * helpers: do not PQfinish it). */
PGconn *tc_db(void);
/* The owner conninfo of the scratch database (borrowed). */
const char *tc_conninfo(void);

/* Runs `sql` with text params inside BEGIN; set_config('app.tenant_id',
 * tenant, true); ... COMMIT, asking for binary results when `binary`.
 * Returns the result (PQclear it); asserts success. */
PGresult *tc_tenant_query(const char *tenant, const char *sql, int n, const char *const *params,
                          bool binary);

/* A new connection to SABIA_REDIS_URL, authenticated, with a 5 s timeout
 * (redisFree it). */
redisContext *tc_redis(void);
/* Runs a command on `c` and asserts it did not fail; returns the reply
 * (freeReplyObject). */
redisReply *tc_redis_cmd(redisContext *c, const char *fmt, ...);
/* Subscribes `c` to sabia:invalidate (waits for the confirmation). */
void tc_subscribe_invalidations(redisContext *c);
/* Waits (up to the timeout) for `msg` on a subscribed connection, skipping
 * other messages. */
void tc_expect_invalidation(redisContext *c, const char *msg);

/* A fresh random name "<prefix>-<hex>", in a static buffer per call slot
 * (slot 0..7). */
const char *tc_random_name(const char *prefix, int slot);

#endif
