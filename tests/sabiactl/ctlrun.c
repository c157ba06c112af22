/* ctlrun.c - scratch database, sabiactl runs and tenant-scoped reads for the
 * sabiactl suites (see ctlrun.h). */
#include "ctlrun.h"

#include "bus.h"
#include "core.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define TC_MAX_ARGS   64
#define TC_MAX_ENV    512
#define TC_DROP_TRIES 50

static struct {
    char dbname[64];
    char *conninfo; /* owner role on dbname, key='value' form */
    PGconn *admin;  /* owner role on the main database */
    PGconn *db;     /* owner role on dbname */
} S;

static void random_hex(char *out, size_t bytes)
{
    unsigned char raw[32];
    cr_assert_leq(bytes, sizeof raw);
    cr_assert_eq(getrandom(raw, bytes, 0), (ssize_t)bytes);
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

const char *tc_random_name(const char *prefix, int slot)
{
    static char names[8][96];
    cr_assert(slot >= 0 && slot < 8);
    char hex[17];
    random_hex(hex, 8);
    snprintf(names[slot], sizeof names[slot], "%s-%s", prefix, hex);
    return names[slot];
}

static void exec_must(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

void tc_scratch_setup(void)
{
    memset(&S, 0, sizeof S);
    char hex[17];
    random_hex(hex, 8);
    snprintf(S.dbname, sizeof S.dbname, "sabia_ctl_%s", hex);
    S.admin = PQconnectdb(ts_env("SABIA_DATABASE_OWNER_URL"));
    cr_assert_eq(PQstatus(S.admin), CONNECTION_OK, "%s", PQerrorMessage(S.admin));
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", S.dbname);
    exec_must(S.admin, sql);
    S.conninfo = ts_owner_conninfo(S.dbname);
    char *dir = ts_source_path("migrations");
    const char *args[] = {"migrate", "--dir", dir, NULL};
    struct tc_run r;
    tc_exec(&r, NULL, args);
    cr_assert_eq(r.status, 0, "migrate: %s", r.err);
    tc_run_cleanup(&r);
    free(dir);
    S.db = PQconnectdb(S.conninfo);
    cr_assert_eq(PQstatus(S.db), CONNECTION_OK, "%s", PQerrorMessage(S.db));
}

/* Drops the scratch database; a backend of a connection just closed may
 * take a moment to exit, hence the retries. */
void tc_scratch_teardown(void)
{
    PQfinish(S.db);
    S.db = NULL;
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", S.dbname);
    for (int i = 0; S.admin && i < TC_DROP_TRIES; i++) {
        PGresult *r = PQexec(S.admin, sql);
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        bool busy = state && strcmp(state, "55006") == 0; /* object_in_use */
        if (PQresultStatus(r) != PGRES_COMMAND_OK && !busy)
            fprintf(stderr, "test_ctl: could not drop %s: %s", S.dbname, PQresultErrorMessage(r));
        PQclear(r);
        if (!busy)
            break;
        struct timespec ts = {.tv_nsec = 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    PQfinish(S.admin);
    S.admin = NULL;
    free(S.conninfo);
    S.conninfo = NULL;
}

PGconn *tc_db(void)
{
    return S.db;
}

const char *tc_conninfo(void)
{
    return S.conninfo;
}

/* Applies "NAME=value" (set) or "NAME" (remove) to the env list. */
static void env_apply(char **envp, size_t *n, char *entry)
{
    const char *eq = strchr(entry, '=');
    size_t name_len = eq ? (size_t)(eq - entry) : strlen(entry);
    size_t w = 0;
    for (size_t i = 0; i < *n; i++) {
        bool same = strncmp(envp[i], entry, name_len) == 0 && envp[i][name_len] == '=';
        if (same)
            free(envp[i]);
        else
            envp[w++] = envp[i];
    }
    *n = w;
    if (eq) {
        cr_assert_lt(*n, TC_MAX_ENV - 1);
        envp[(*n)++] = entry;
    } else {
        free(entry);
    }
}

static char *env_entry(const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 2;
    char *e = malloc(len);
    cr_assert_not_null(e);
    snprintf(e, len, "%s=%s", name, value);
    return e;
}

/* The child's environment (heap entries, NULL-terminated). */
static char **env_build(const char *const *extra)
{
    char **envp = calloc(TC_MAX_ENV, sizeof *envp);
    cr_assert_not_null(envp);
    size_t n = 0;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "SABIA_", 6) == 0)
            continue;
        cr_assert_lt(n, TC_MAX_ENV - 8);
        envp[n++] = strdup(*e);
    }
    envp[n++] = env_entry("SABIA_DATABASE_OWNER_URL", S.conninfo);
    envp[n++] = env_entry("SABIA_REDIS_URL", ts_env("SABIA_REDIS_URL"));
    envp[n++] = env_entry("SABIA_MASTER_KEY", ts_env("SABIA_MASTER_KEY"));
    envp[n++] = env_entry("SABIA_ENV_FILE", "/nonexistent");
    for (; extra && *extra; extra++)
        env_apply(envp, &n, strdup(*extra));
    envp[n] = NULL;
    return envp;
}

static char *read_all(FILE *f)
{
    fflush(f);
    long len = ftell(f);
    cr_assert_geq(len, 0);
    char *s = malloc((size_t)len + 1);
    cr_assert_not_null(s);
    rewind(f);
    size_t got = fread(s, 1, (size_t)len, f);
    s[got] = '\0';
    fclose(f);
    return s;
}

void tc_exec(struct tc_run *r, const char *const *env, const char *const *args)
{
    char *bin = ts_build_path("apps/sabiactl/sabiactl");
    char *argv[TC_MAX_ARGS + 2] = {bin};
    size_t argc = 1;
    for (; args[argc - 1]; argc++) {
        cr_assert_lt(argc, TC_MAX_ARGS);
        argv[argc] = (char *)args[argc - 1];
    }
    argv[argc] = NULL;
    char **envp = env_build(env);
    FILE *out = tmpfile(), *err = tmpfile();
    cr_assert(out && err);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fileno(out), 1);
        dup2(fileno(err), 2);
        execve(bin, argv, envp);
        _exit(127);
    }
    int ws = 0;
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
    fseek(out, 0, SEEK_END);
    fseek(err, 0, SEEK_END);
    r->out = read_all(out);
    r->err = read_all(err);
    for (char **e = envp; *e; e++)
        free(*e);
    free(envp);
    free(bin);
}

void tc_run_cleanup(struct tc_run *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* Collects the NULL-terminated variadic arguments after `first`. */
static void collect_args(const char **args, const char *first, va_list ap)
{
    size_t n = 0;
    for (const char *a = first; a; a = va_arg(ap, const char *)) {
        cr_assert_lt(n, TC_MAX_ARGS);
        args[n++] = a;
    }
    args[n] = NULL;
}

json_t *tc_ok(const char *first, ...)
{
    const char *args[TC_MAX_ARGS + 1];
    va_list ap;
    va_start(ap, first);
    collect_args(args, first, ap);
    va_end(ap);
    struct tc_run r;
    tc_exec(&r, NULL, args);
    cr_assert_eq(r.status, 0, "sabiactl %s %s: exit %d, stderr: %s", args[0],
                 args[1] ? args[1] : "", r.status, r.err);
    cr_assert_str_empty(r.err, "sabiactl %s: stderr: %s", args[0], r.err);
    size_t len = strlen(r.out);
    cr_assert(len > 0 && r.out[len - 1] == '\n' && !memchr(r.out, '\n', len - 1),
              "not one line: %s", r.out);
    json_error_t jerr;
    json_t *j = json_loads(r.out, 0, &jerr);
    cr_assert_not_null(j, "not JSON (%s): %s", jerr.text, r.out);
    tc_run_cleanup(&r);
    return j;
}

void tc_fails_env(const char *const *env, int status, const char *needle, const char *first, ...)
{
    const char *args[TC_MAX_ARGS + 1];
    va_list ap;
    va_start(ap, first);
    collect_args(args, first, ap);
    va_end(ap);
    struct tc_run r;
    tc_exec(&r, env, args);
    cr_assert_eq(r.status, status, "sabiactl %s %s: exit %d (want %d), stderr: %s", args[0],
                 args[1] ? args[1] : "", r.status, status, r.err);
    cr_assert_str_empty(r.out, "stdout on failure: %s", r.out);
    /* the last line of stderr is {"error": ...} (log lines may come first) */
    size_t len = strlen(r.err);
    while (len > 0 && r.err[len - 1] == '\n')
        r.err[--len] = '\0';
    char *last = strrchr(r.err, '\n');
    json_t *j = json_loads(last ? last + 1 : r.err, 0, NULL);
    cr_assert_not_null(j, "stderr is not JSON: %s", r.err);
    const char *msg = tc_str(j, "error");
    cr_assert(strstr(msg, needle), "error \"%s\" does not mention \"%s\"", msg, needle);
    json_decref(j);
    tc_run_cleanup(&r);
}

const char *tc_str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

PGresult *tc_tenant_query(const char *tenant, const char *sql, int n, const char *const *params,
                          bool binary)
{
    PGconn *c = S.db;
    exec_must(c, "BEGIN");
    const char *tp[] = {tenant};
    PGresult *r =
        PQexecParams(c, "SELECT set_config('app.tenant_id', $1, true)", 1, NULL, tp, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, binary ? 1 : 0);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK, "%s: %s", sql,
              PQresultErrorMessage(r));
    exec_must(c, "COMMIT");
    return r;
}

redisContext *tc_redis(void)
{
    struct bus_url u;
    cr_assert_eq(bus_url_parse(ts_env("SABIA_REDIS_URL"), &u), 0);
    struct timeval tv = {.tv_sec = 5};
    redisContext *c = u.path ? redisConnectUnixWithTimeout(u.path, tv)
                             : redisConnectWithTimeout(u.host, u.port, tv);
    cr_assert(c && !c->err, "redis connect: %s", c ? c->errstr : "out of memory");
    cr_assert_eq(redisSetTimeout(c, tv), REDIS_OK);
    if (u.password) {
        redisReply *r = u.user ? redisCommand(c, "AUTH %s %s", u.user, u.password)
                               : redisCommand(c, "AUTH %s", u.password);
        cr_assert(r && r->type != REDIS_REPLY_ERROR, "AUTH failed");
        freeReplyObject(r);
    }
    bus_url_cleanup(&u);
    return c;
}

redisReply *tc_redis_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert(r && r->type != REDIS_REPLY_ERROR, "%s: %s", fmt, r ? r->str : c->errstr);
    return r;
}

void tc_subscribe_invalidations(redisContext *c)
{
    freeReplyObject(tc_redis_cmd(c, "SUBSCRIBE sabia:invalidate"));
}

void tc_expect_invalidation(redisContext *c, const char *msg)
{
    for (;;) {
        void *v = NULL;
        cr_assert_eq(redisGetReply(c, &v), REDIS_OK, "no \"%s\" on sabia:invalidate: %s", msg,
                     c->errstr);
        redisReply *r = v;
        bool match = r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                     strcmp(r->element[0]->str, "message") == 0 &&
                     strcmp(r->element[1]->str, "sabia:invalidate") == 0 &&
                     strcmp(r->element[2]->str, msg) == 0;
        freeReplyObject(r);
        if (match)
            return;
    }
}
