/* test_schema.c - the schema in migrations/: Row-Level Security enabled and
 * forced on every tenant table, a services role that owns nothing and cannot
 * bypass RLS, tenant isolation as that role sees it, composite tenant foreign
 * keys, the SECURITY DEFINER lookups, and the constraints the services rely
 * on (dedup keys, rejected webhooks without a tenant, full-text search).
 *
 * Every test applies all migration files, in order and each in a
 * transaction (as the runner does), to a throw-away database of its own made
 * by the owner role, and drops it afterwards. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "testsupport.h"

#define SCHEMA_MAX_FILES  1000 /* migration files considered */
#define SCHEMA_NAME_MAX   256  /* bytes in a migration file name */
#define UUID_LEN          37   /* canonical text plus NUL */
#define MIN_TENANT_TABLES 20   /* tables with tenant_id the initial schema has */
#define DROP_TRIES        100  /* 100 ms apart: waits for closed backends to exit */

#define OK       "00000"
#define E_RLS    "42501" /* insufficient_privilege: RLS WITH CHECK, no grant */
#define E_FK     "23503"
#define E_UNIQUE "23505"
#define E_CHECK  "23514"

/* Parameter lists: ARGS("a", b) expands to the array and its length. */
#define NARGS(...) ((int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)))
#define ARGS(...)  ((const char *const[]){__VA_ARGS__}), NARGS(__VA_ARGS__)
#define NOARGS     NULL, 0

/* The throw-away database of the running test and its connections. */
struct scratch {
    char dbname[64];
    PGconn *admin; /* owner role, on the configured database */
    PGconn *owner; /* owner role, on the scratch database */
    PGconn *app;   /* services role, on the scratch database */
};

static struct scratch S;

/* What one statement did. */
struct outcome {
    char state[6];   /* SQLSTATE, "00000" on success */
    long rows;       /* rows returned or affected */
    char first[128]; /* first column of the first row, "" when none */
    char msg[512];   /* server message on failure */
};

/* One tenant's rows, created through the services role. */
struct graph {
    char tenant[UUID_LEN], workspace[UUID_LEN], user[UUID_LEN], apikey[UUID_LEN];
    char assistant[UUID_LEN], channel[UUID_LEN], contact[UUID_LEN];
    char conversation[UUID_LEN], message[UUID_LEN], event[UUID_LEN];
    char email[64], prefix[40], wamid[48];
};

static void random_hex(char *out, size_t bytes)
{
    unsigned char b[32];
    cr_assert(bytes <= sizeof b);
    cr_assert_eq(getrandom(b, bytes, 0), (ssize_t)bytes);
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void random_uuid(char out[UUID_LEN])
{
    unsigned char b[16];
    cr_assert_eq(getrandom(b, sizeof b, 0), (ssize_t)sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, UUID_LEN, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Connects with `url`, replacing its database by `dbname` when not NULL. */
static PGconn *pg_connect(const char *url, const char *dbname)
{
    const char *keys[] = {"dbname", dbname ? "dbname" : NULL, NULL};
    const char *vals[] = {url, dbname, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    cr_assert(c && PQstatus(c) == CONNECTION_OK, "connect to %s: %s", dbname ? dbname : "(url)",
              c ? PQerrorMessage(c) : "out of memory");
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    return c;
}

static void exec_must(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%.60s: %s", sql,
              PQresultErrorMessage(r));
    PQclear(r);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Applies every NNNN_*.sql file of migrations/ in lexical order, each in
 * its own transaction, as the owner. Returns how many were applied. */
static int apply_migrations(PGconn *c)
{
    char *dir = ts_source_path("migrations");
    DIR *d = opendir(dir);
    cr_assert(d, "cannot open %s", dir);
    char **names = calloc(SCHEMA_MAX_FILES, sizeof *names);
    cr_assert(names);
    size_t n = 0;
    for (struct dirent *e = readdir(d); e; e = readdir(d)) {
        size_t len = strlen(e->d_name);
        if (len < 5 || len > SCHEMA_NAME_MAX || e->d_name[0] < '0' || e->d_name[0] > '9' ||
            strcmp(e->d_name + len - 4, ".sql") != 0)
            continue;
        cr_assert(n < SCHEMA_MAX_FILES, "too many migration files");
        names[n] = strdup(e->d_name);
        cr_assert(names[n++]);
    }
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        char *sql = ts_read_file(path, NULL);
        exec_must(c, "BEGIN");
        PGresult *r = PQexec(c, sql);
        cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
                  "%s: %s", names[i], PQresultErrorMessage(r));
        PQclear(r);
        cr_assert_eq(PQtransactionStatus(c), PQTRANS_INTRANS,
                     "%s must not contain transaction control", names[i]);
        exec_must(c, "COMMIT");
        free(sql);
        free(names[i]);
    }
    free(names);
    free(dir);
    return (int)n;
}

static void scratch_setup(void)
{
    memset(&S, 0, sizeof S);
    char hex[17];
    random_hex(hex, 8);
    snprintf(S.dbname, sizeof S.dbname, "sabia_schema_%s", hex);
    S.admin = pg_connect(ts_env("SABIA_DATABASE_OWNER_URL"), NULL);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", S.dbname);
    exec_must(S.admin, sql);
    S.owner = pg_connect(ts_env("SABIA_DATABASE_OWNER_URL"), S.dbname);
    cr_assert_geq(apply_migrations(S.owner), 1, "no migration files found");
    S.app = pg_connect(ts_env("SABIA_DATABASE_URL"), S.dbname);
}

/* Drops the scratch database. The backends of the connections just closed
 * may take a moment to exit, and the owner may not terminate the services
 * role's backends (WITH (FORCE) would need that), hence the retries. */
static void scratch_drop(void)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", S.dbname);
    for (int i = 0; i < DROP_TRIES; i++) {
        PGresult *r = PQexec(S.admin, sql);
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        bool busy = state && strcmp(state, "55006") == 0; /* object_in_use */
        if (PQresultStatus(r) != PGRES_COMMAND_OK && (!busy || i == DROP_TRIES - 1))
            fprintf(stderr, "test_schema: could not drop %s: %s", S.dbname,
                    PQresultErrorMessage(r));
        PQclear(r);
        if (!busy)
            return;
        struct timespec ts = {.tv_nsec = 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void scratch_teardown(void)
{
    PQfinish(S.app);
    PQfinish(S.owner);
    S.app = S.owner = NULL;
    if (S.admin && S.dbname[0])
        scratch_drop();
    PQfinish(S.admin);
    S.admin = NULL;
}

/* Runs `sql` in a transaction of its own on `c`, first scoped to `tenant`
 * when not NULL. Without parameters it goes through PQexec, so it may hold
 * several statements. Commits on success, rolls back on failure. */
static struct outcome run(PGconn *c, const char *tenant, const char *sql, const char *const *params,
                          int n)
{
    struct outcome o = {.state = OK};
    exec_must(c, "BEGIN");
    if (tenant) {
        const char *p[] = {tenant};
        PGresult *r = PQexecParams(c, "SELECT set_config('app.tenant_id', $1, true)", 1, NULL, p,
                                   NULL, NULL, 0);
        cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
        PQclear(r);
    }
    PGresult *r = n > 0 ? PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0) : PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        if (st == PGRES_TUPLES_OK) {
            o.rows = PQntuples(r);
            if (o.rows > 0 && PQnfields(r) > 0)
                snprintf(o.first, sizeof o.first, "%s", PQgetvalue(r, 0, 0));
        } else {
            o.rows = strtol(PQcmdTuples(r), NULL, 10);
        }
        exec_must(c, "COMMIT");
    } else {
        const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(o.state, sizeof o.state, "%s", s ? s : "?????");
        snprintf(o.msg, sizeof o.msg, "%s", PQresultErrorMessage(r));
        exec_must(c, "ROLLBACK");
    }
    PQclear(r);
    return o;
}

static struct outcome expect_ok(PGconn *c, const char *tenant, const char *sql,
                                const char *const *params, int n)
{
    struct outcome o = run(c, tenant, sql, params, n);
    cr_assert_str_eq(o.state, OK, "%.80s: %s", sql, o.msg);
    return o;
}

static void expect_state(PGconn *c, const char *tenant, const char *want, const char *sql,
                         const char *const *params, int n)
{
    struct outcome o = run(c, tenant, sql, params, n);
    cr_assert_str_eq(o.state, want, "%.80s: expected SQLSTATE %s, got %s %s", sql, want, o.state,
                     o.msg);
}

static long count_rows(PGconn *c, const char *tenant, const char *sql, const char *const *params,
                       int n)
{
    struct outcome o = expect_ok(c, tenant, sql, params, n);
    cr_assert_eq(o.rows, 1);
    return strtol(o.first, NULL, 10);
}

/* Creates a tenant with one of everything, as the services role. */
static void graph_create(struct graph *g)
{
    memset(g, 0, sizeof *g);
    char *ids[] = {g->tenant,  g->workspace, g->user,         g->apikey,  g->assistant,
                   g->channel, g->contact,   g->conversation, g->message, g->event};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        random_uuid(ids[i]);
    char hex[17];
    random_hex(hex, 8);
    snprintf(g->email, sizeof g->email, "User-%s@Example.test", hex);
    snprintf(g->prefix, sizeof g->prefix, "sk_%s", hex);
    snprintf(g->wamid, sizeof g->wamid, "wamid.%s", hex);
    const char *t = g->tenant;
    PGconn *c = S.app;
    expect_ok(c, t, "INSERT INTO tenants (id, name) VALUES ($1, 'Tenant')", ARGS(t));
    expect_ok(c, t, "INSERT INTO workspaces (id, tenant_id, name) VALUES ($1, $2, 'Main')",
              ARGS(g->workspace, t));
    expect_ok(c, t,
              "INSERT INTO users (id, tenant_id, email, password_hash, role)"
              " VALUES ($1, $2, $3, 'scrypt$ln=17,r=8,p=1$c2FsdA$aGFzaA', 'owner')",
              ARGS(g->user, t, g->email));
    expect_ok(c, t,
              "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes)"
              " VALUES ($1, $2, 'ci', $3, repeat('ab', 32), '{conversations:read}')",
              ARGS(g->apikey, t, g->prefix));
    expect_ok(
        c, t,
        "INSERT INTO assistants (id, tenant_id, workspace_id, name) VALUES ($1, $2, $3, 'Bot')",
        ARGS(g->assistant, t, g->workspace));
    expect_ok(c, t,
              "INSERT INTO channels (id, tenant_id, workspace_id, type, phone_number_id)"
              " VALUES ($1, $2, $3, 'whatsapp', $4)",
              ARGS(g->channel, t, g->workspace, hex));
    expect_ok(c, t,
              "INSERT INTO contacts (id, tenant_id, workspace_id, channel_id, external_id, name)"
              " VALUES ($1, $2, $3, $4, '5511999990000', 'Ana')",
              ARGS(g->contact, t, g->workspace, g->channel));
    expect_ok(c, t,
              "INSERT INTO conversations (id, tenant_id, workspace_id, channel_id, contact_id,"
              " assistant_id) VALUES ($1, $2, $3, $4, $5, $6)",
              ARGS(g->conversation, t, g->workspace, g->channel, g->contact, g->assistant));
    expect_ok(c, t,
              "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, direction,"
              " sender_type, content, provider_message_id, status)"
              " VALUES ($1, $2, $3, $4, 'inbound', 'customer', 'Oi', $5, 'received')",
              ARGS(g->message, t, g->conversation, g->channel, g->wamid));
    expect_ok(
        c, t,
        "INSERT INTO webhook_events (id, tenant_id, workspace_id, channel_id, source, payload,"
        " signature, status, dedup_key) VALUES ($1, $2, $3, $4, 'whatsapp',"
        " convert_to('{\"object\":\"whatsapp_business_account\"}', 'UTF8'),"
        " 'sha256=00', 'accepted', $5)",
        ARGS(g->event, t, g->workspace, g->channel, g->wamid));
}

/* A table of the graph and whether the services role may delete from it. */
struct graph_table {
    const char *name;
    size_t id_off;
    bool app_deletes;
};

static const struct graph_table graph_tables[] = {
    {"tenants", offsetof(struct graph, tenant), true},
    {"workspaces", offsetof(struct graph, workspace), true},
    {"users", offsetof(struct graph, user), true},
    {"api_keys", offsetof(struct graph, apikey), true},
    {"assistants", offsetof(struct graph, assistant), true},
    {"channels", offsetof(struct graph, channel), true},
    {"contacts", offsetof(struct graph, contact), true},
    {"conversations", offsetof(struct graph, conversation), true},
    {"messages", offsetof(struct graph, message), true},
    {"webhook_events", offsetof(struct graph, event), false},
};

#define GRAPH_TABLES (sizeof graph_tables / sizeof graph_tables[0])

static const char *graph_id(const struct graph *g, size_t i)
{
    return (const char *)g + graph_tables[i].id_off;
}

TestSuite(schema, .init = scratch_setup, .fini = scratch_teardown);

/* Tables with a tenant_id column (and tenants), as the catalog sees them. */
static const char tenant_tables_sql[] =
    "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
    "       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid),"
    "       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid"
    "         AND pg_get_expr(p.polqual, p.polrelid) LIKE '%app.tenant_id%')"
    "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
    "   AND (c.relname = 'tenants' OR EXISTS (SELECT 1 FROM pg_attribute a"
    "        WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped))"
    " ORDER BY 1";

Test(schema, rls_enabled_and_forced_on_every_tenant_table, .timeout = 30)
{
    PGresult *r = PQexec(S.owner, tenant_tables_sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    int n = PQntuples(r);
    cr_assert_geq(n, MIN_TENANT_TABLES, "only %d tenant tables found", n);
    bool saw_tenants = false, saw_events = false;
    for (int i = 0; i < n; i++) {
        const char *name = PQgetvalue(r, i, 0);
        cr_expect_str_eq(PQgetvalue(r, i, 1), "t", "%s: row level security not enabled", name);
        cr_expect_str_eq(PQgetvalue(r, i, 2), "t", "%s: row level security not forced", name);
        cr_expect_neq(strtol(PQgetvalue(r, i, 3), NULL, 10), 0, "%s: no policy", name);
        cr_expect_neq(strtol(PQgetvalue(r, i, 4), NULL, 10), 0, "%s: no policy reads app.tenant_id",
                      name);
        saw_tenants |= strcmp(name, "tenants") == 0;
        saw_events |= strcmp(name, "webhook_events") == 0;
    }
    PQclear(r);
    cr_assert(saw_tenants && saw_events);

    /* Every policy that lets the services (or PUBLIC) read, change or
     * delete rows is keyed on the tenant setting; an INSERT-only policy must
     * either be keyed on it or admit only rows without a tenant. */
    r = PQexec(S.owner,
               "SELECT c.relname || '.' || p.polname"
               "  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid"
               " WHERE (0 = ANY (p.polroles) OR"
               "        (SELECT oid FROM pg_roles WHERE rolname = 'sabia_app') = ANY (p.polroles))"
               "   AND ((p.polcmd <> 'a' AND coalesce(pg_get_expr(p.polqual, p.polrelid), '')"
               "         NOT LIKE '%app.tenant_id%')"
               "     OR (p.polcmd IN ('a', 'w', '*') AND"
               "         coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')"
               "         NOT LIKE '%app.tenant_id%' AND"
               "         coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')"
               "         NOT LIKE '%tenant_id IS NULL%'))");
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    cr_expect_eq(PQntuples(r), 0, "policy not keyed on the tenant: %s",
                 PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);

    /* FORCE binds the owner too: it sees no workspace of any tenant. */
    struct graph a;
    graph_create(&a);
    cr_assert_eq(count_rows(S.owner, NULL, "SELECT count(*) FROM workspaces", NOARGS), 0);
    expect_state(S.owner, NULL, E_RLS, "INSERT INTO workspaces (tenant_id, name) VALUES ($1, 'x')",
                 ARGS(a.tenant));
}

Test(schema, services_role_owns_nothing_and_cannot_bypass, .timeout = 30)
{
    struct outcome o = expect_ok(S.owner, NULL,
                                 "SELECT rolbypassrls::text || rolsuper::text FROM pg_roles"
                                 " WHERE rolname = 'sabia_app'",
                                 NOARGS);
    cr_assert_str_eq(o.first, "falsefalse");
    const char *app = "sabia_app";
    cr_assert_eq(count_rows(S.owner, NULL,
                            "SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid)"
                            "     + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid)"
                            "     + (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid)"
                            "     + (SELECT count(*) FROM pg_type WHERE typowner = r.oid)"
                            "  FROM pg_roles r WHERE r.rolname = $1",
                            ARGS(app)),
                 0);
    cr_assert_eq(count_rows(S.owner, NULL,
                            "SELECT count(*) FROM pg_class c JOIN pg_namespace n"
                            " ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
                            " AND c.relowner <> (SELECT oid FROM pg_roles"
                            " WHERE rolname = 'sabia_owner')",
                            NOARGS),
                 0);

    /* The services role cannot switch RLS off, nor create objects. */
    expect_state(S.app, NULL, E_RLS, "ALTER TABLE messages NO FORCE ROW LEVEL SECURITY", NOARGS);
    expect_state(S.app, NULL, E_RLS, "ALTER TABLE messages DISABLE ROW LEVEL SECURITY", NOARGS);
    expect_state(S.app, NULL, E_RLS, "DROP POLICY tenant_isolation ON messages", NOARGS);
    expect_state(S.app, NULL, E_RLS, "SET LOCAL row_security = off; SELECT count(*) FROM messages",
                 NOARGS);
    expect_state(S.app, NULL, E_RLS, "CREATE TABLE sneaky (id int)", NOARGS);
    /* Append-only tables. */
    expect_state(S.app, NULL, E_RLS, "UPDATE audit_log SET action = 'x'", NOARGS);
    expect_state(S.app, NULL, E_RLS, "DELETE FROM audit_log", NOARGS);
    expect_state(S.app, NULL, E_RLS, "DELETE FROM webhook_events", NOARGS);

    /* SECURITY DEFINER functions: pinned search_path, not executable by
     * PUBLIC, executable by the services role. */
    PGresult *r =
        PQexec(S.owner, "SELECT p.proname,"
                        "       coalesce('search_path=public, pg_temp' = ANY (p.proconfig), false),"
                        "       EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl,"
                        "               acldefault('f', p.proowner))) x"
                        "               WHERE x.grantee = 0 AND x.privilege_type = 'EXECUTE'),"
                        "       has_function_privilege('sabia_app', p.oid, 'EXECUTE')"
                        "  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                        " WHERE n.nspname = 'public' AND p.prosecdef");
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    cr_assert_geq(PQntuples(r), 2);
    for (int i = 0; i < PQntuples(r); i++) {
        const char *fn = PQgetvalue(r, i, 0);
        cr_expect_str_eq(PQgetvalue(r, i, 1), "t", "%s: search_path not pinned", fn);
        cr_expect_str_eq(PQgetvalue(r, i, 2), "f", "%s: executable by PUBLIC", fn);
        cr_expect_str_eq(PQgetvalue(r, i, 3), "t", "%s: not executable by sabia_app", fn);
    }
    PQclear(r);
}

/* Tenant B's transactions neither see nor touch tenant A's rows. */
static void check_invisible(const struct graph *a, const struct graph *b)
{
    for (size_t i = 0; i < GRAPH_TABLES; i++) {
        const char *tab = graph_tables[i].name, *id = graph_id(a, i);
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE id = $1", tab);
        cr_expect_eq(count_rows(S.app, b->tenant, sql, ARGS(id)), 0, "%s visible to B", tab);
        snprintf(sql, sizeof sql, "UPDATE %s SET id = id WHERE id = $1", tab);
        cr_expect_eq(expect_ok(S.app, b->tenant, sql, ARGS(id)).rows, 0, "%s updated by B", tab);
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE id = $1", tab);
        if (graph_tables[i].app_deletes)
            cr_expect_eq(expect_ok(S.app, b->tenant, sql, ARGS(id)).rows, 0, "%s deleted by B",
                         tab);
        else
            expect_state(S.app, b->tenant, E_RLS, sql, ARGS(id));
        /* ... while A still sees its row, unchanged in number. */
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE id = $1", tab);
        cr_expect_eq(count_rows(S.app, a->tenant, sql, ARGS(id)), 1, "%s lost for A", tab);
    }
}

/* A transaction that never set the tenant, or set it empty, sees nothing. */
static void check_unscoped_sees_nothing(void)
{
    PGresult *r = PQexec(S.owner, tenant_tables_sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    for (int i = 0; i < PQntuples(r); i++) {
        char *ident = PQescapeIdentifier(S.app, PQgetvalue(r, i, 0), strlen(PQgetvalue(r, i, 0)));
        cr_assert(ident);
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", ident);
        cr_expect_eq(count_rows(S.app, NULL, sql, NOARGS), 0, "%s seen without tenant", ident);
        cr_expect_eq(count_rows(S.app, "", sql, NOARGS), 0, "%s seen with empty tenant", ident);
        PQfreemem(ident);
    }
    PQclear(r);
}

Test(schema, tenants_do_not_see_each_other, .timeout = 30)
{
    struct graph a, b;
    graph_create(&a);
    graph_create(&b);
    check_invisible(&a, &b);
    check_invisible(&b, &a);
    check_unscoped_sees_nothing();
    cr_assert_eq(count_rows(S.app, a.tenant, "SELECT count(*) FROM conversations", NOARGS), 1);
    cr_assert_eq(count_rows(S.app, a.tenant, "SELECT count(*) FROM tenants", NOARGS), 1);
}

Test(schema, rows_of_another_tenant_cannot_be_written, .timeout = 30)
{
    struct graph a, b;
    graph_create(&a);
    graph_create(&b);
    char id[UUID_LEN];
    random_uuid(id);
    expect_state(S.app, b.tenant, E_RLS,
                 "INSERT INTO workspaces (id, tenant_id, name) VALUES ($1, $2, 'x')",
                 ARGS(id, a.tenant));
    expect_state(S.app, b.tenant, E_RLS, "INSERT INTO tenants (id, name) VALUES ($1, 'x')",
                 ARGS(id));
    expect_state(S.app, b.tenant, E_RLS,
                 "INSERT INTO contacts (tenant_id, workspace_id, channel_id, external_id)"
                 " VALUES ($1, $2, $3, 'x')",
                 ARGS(a.tenant, a.workspace, a.channel));
    expect_state(S.app, b.tenant, E_RLS,
                 "INSERT INTO webhook_events (tenant_id, workspace_id, channel_id, source, payload,"
                 " status) VALUES ($1, $2, $3, 'web', '\\x00', 'accepted')",
                 ARGS(a.tenant, a.workspace, a.channel));
    /* moving one's own row to another tenant */
    expect_state(S.app, b.tenant, E_RLS, "UPDATE workspaces SET tenant_id = $1 WHERE id = $2",
                 ARGS(a.tenant, b.workspace));
    /* no tenant set: nothing may be written */
    expect_state(S.app, NULL, E_RLS,
                 "INSERT INTO workspaces (id, tenant_id, name) VALUES ($1, $2, 'x')",
                 ARGS(id, b.tenant));
    cr_assert_eq(count_rows(S.app, a.tenant, "SELECT count(*) FROM workspaces", NOARGS), 1);
    cr_assert_eq(count_rows(S.app, b.tenant, "SELECT count(*) FROM workspaces", NOARGS), 1);
}

Test(schema, composite_keys_refuse_cross_tenant_references, .timeout = 30)
{
    struct graph a, b;
    graph_create(&a);
    graph_create(&b);
    static const char conv_sql[] =
        "INSERT INTO conversations (tenant_id, workspace_id, channel_id, contact_id, status,"
        " closed_at) VALUES ($1, $2, $3, $4, 'closed', now())";
    /* control: the same statement with B's own channel works */
    expect_ok(S.app, b.tenant, conv_sql, ARGS(b.tenant, b.workspace, b.channel, b.contact));
    expect_state(S.app, b.tenant, E_FK, conv_sql,
                 ARGS(b.tenant, b.workspace, a.channel, b.contact));
    expect_state(S.app, b.tenant, E_FK,
                 "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction,"
                 " sender_type, status) VALUES ($1, $2, $3, 'outbound', 'bot', 'queued')",
                 ARGS(b.tenant, a.conversation, b.channel));
    expect_state(S.app, b.tenant, E_FK,
                 "UPDATE conversations SET assigned_user_id = $1 WHERE id = $2",
                 ARGS(a.user, b.conversation));
    expect_state(S.app, b.tenant, E_FK,
                 "INSERT INTO assistant_channels (tenant_id, assistant_id, channel_id)"
                 " VALUES ($1, $2, $3)",
                 ARGS(b.tenant, a.assistant, b.channel));
    expect_ok(S.app, b.tenant,
              "INSERT INTO assistant_channels (tenant_id, assistant_id, channel_id)"
              " VALUES ($1, $2, $3)",
              ARGS(b.tenant, b.assistant, b.channel));
}

Test(schema, definer_lookups_find_only_the_requested_row, .timeout = 30)
{
    struct graph a, b;
    graph_create(&a);
    graph_create(&b);
    static const char user_sql[] =
        "SELECT id::text || ' ' || tenant_id::text || ' ' || tenant_status"
        "  FROM auth_find_user_by_email($1)";
    char want[128];
    snprintf(want, sizeof want, "%s %s active", a.user, a.tenant);
    char upper[64];
    snprintf(upper, sizeof upper, "%s", a.email);
    for (char *p = upper; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    struct outcome o = expect_ok(S.app, NULL, user_sql, ARGS(upper));
    cr_assert_eq(o.rows, 1);
    cr_assert_str_eq(o.first, want);
    o = expect_ok(S.app, b.tenant, user_sql, ARGS(a.email)); /* whatever the scope */
    cr_assert_str_eq(o.first, want);
    cr_assert_eq(expect_ok(S.app, NULL, user_sql, ARGS("nobody@example.test")).rows, 0);
    cr_assert_eq(expect_ok(S.app, NULL, user_sql, ARGS("%")).rows, 0);
    cr_assert_eq(expect_ok(S.app, NULL, user_sql, ARGS("%@example.test")).rows, 0);
    /* the table itself stays closed without a tenant */
    cr_assert_eq(count_rows(S.app, NULL, "SELECT count(*) FROM users", NOARGS), 0);

    static const char key_sql[] =
        "SELECT id::text || ' ' || tenant_id::text || ' ' || revoked::text || ' ' ||"
        " array_to_string(scopes, ',') FROM auth_find_api_key($1)";
    snprintf(want, sizeof want, "%s %s false conversations:read", b.apikey, b.tenant);
    o = expect_ok(S.app, NULL, key_sql, ARGS(b.prefix));
    cr_assert_eq(o.rows, 1);
    cr_assert_str_eq(o.first, want);
    expect_ok(S.app, b.tenant, "UPDATE api_keys SET revoked_at = now() WHERE id = $1",
              ARGS(b.apikey));
    snprintf(want, sizeof want, "%s %s true conversations:read", b.apikey, b.tenant);
    cr_assert_str_eq(expect_ok(S.app, NULL, key_sql, ARGS(b.prefix)).first, want);
    cr_assert_eq(expect_ok(S.app, NULL, key_sql, ARGS("sk_doesnotexist")).rows, 0);
    cr_assert_eq(expect_ok(S.app, NULL, key_sql, ARGS("%")).rows, 0);
    cr_assert_eq(expect_ok(S.app, NULL, key_sql, ARGS("sk_%")).rows, 0);

    /* work discovery returns tenant and id of due work in every tenant */
    static const char work_sql[] =
        "SELECT count(*) FROM work_pending_webhook_events('0', 1000)"
        " WHERE (tenant_id, id) IN (($1::uuid, $2::uuid), ($3::uuid, $4::uuid))";
    cr_assert_eq(count_rows(S.app, NULL, work_sql, ARGS(a.tenant, a.event, b.tenant, b.event)), 2);
    expect_ok(S.app, a.tenant, "UPDATE webhook_events SET processed_at = now() WHERE id = $1",
              ARGS(a.event));
    cr_assert_eq(count_rows(S.app, NULL, work_sql, ARGS(a.tenant, a.event, b.tenant, b.event)), 1);
    cr_assert_eq(count_rows(S.app, NULL,
                            "SELECT count(*) FROM platform_list_tenants(NULL, 1000)"
                            " WHERE id IN ($1, $2)",
                            ARGS(a.tenant, b.tenant)),
                 2);
}

Test(schema, rejected_webhooks_without_tenant, .timeout = 30)
{
    struct graph a;
    graph_create(&a);
    char id[UUID_LEN];
    random_uuid(id);
    static const char rejected_sql[] =
        "INSERT INTO webhook_events (id, source, payload, status, rejection_reason, request_path)"
        " VALUES ($1, 'whatsapp', '\\x7b7d', 'rejected', 'unknown_tenant', '/v1/webhook/x')";
    expect_ok(S.app, NULL, rejected_sql, ARGS(id));
    /* nobody but the owner reads it back */
    static const char count_sql[] = "SELECT count(*) FROM webhook_events WHERE id = $1";
    cr_assert_eq(count_rows(S.app, NULL, count_sql, ARGS(id)), 0);
    cr_assert_eq(count_rows(S.app, a.tenant, count_sql, ARGS(id)), 0);
    cr_assert_eq(count_rows(S.owner, NULL, count_sql, ARGS(id)), 1);
    /* ... so RETURNING is refused */
    random_uuid(id);
    expect_state(S.app, NULL, E_RLS,
                 "INSERT INTO webhook_events (id, source, payload, status, rejection_reason)"
                 " VALUES ($1, 'web', '\\x00', 'rejected', 'bad_path') RETURNING id",
                 ARGS(id));
    /* only rejected rows may lack the tenant */
    expect_state(S.app, NULL, E_RLS,
                 "INSERT INTO webhook_events (source, payload, status) VALUES ('web', '\\x00',"
                 " 'accepted')",
                 NOARGS);
    expect_state(S.app, NULL, E_RLS,
                 "INSERT INTO webhook_events (source, payload) VALUES ('web', '\\x00')", NOARGS);
    expect_state(S.app, NULL, E_CHECK,
                 "INSERT INTO webhook_events (source, payload, status, rejection_reason,"
                 " channel_id) VALUES ('web', '\\x00', 'rejected', 'x', $1)",
                 ARGS(a.channel));
    expect_state(S.app, NULL, E_CHECK,
                 "INSERT INTO webhook_events (source, payload, status) VALUES ('web', '\\x00',"
                 " 'rejected')",
                 NOARGS);
    /* the body is kept byte for byte */
    cr_assert_str_eq(expect_ok(S.owner, NULL,
                               "SELECT encode(payload, 'hex') FROM webhook_events"
                               " WHERE rejection_reason = 'unknown_tenant'",
                               NOARGS)
                         .first,
                     "7b7d");
    /* a known tenant's rejected request is that tenant's to see */
    expect_ok(S.app, a.tenant,
              "INSERT INTO webhook_events (id, tenant_id, source, payload, status,"
              " rejection_reason) VALUES ($1, $2, 'whatsapp', '\\x00', 'rejected',"
              " 'unknown_channel')",
              ARGS(id, a.tenant));
    cr_assert_eq(count_rows(S.app, a.tenant, count_sql, ARGS(id)), 1);
}

Test(schema, duplicates_are_refused, .timeout = 30)
{
    struct graph a, b;
    graph_create(&a);
    graph_create(&b);
    /* the same provider event twice in a channel */
    expect_state(S.app, a.tenant, E_UNIQUE,
                 "INSERT INTO webhook_events (tenant_id, workspace_id, channel_id, source, payload,"
                 " status, dedup_key) VALUES ($1, $2, $3, 'whatsapp', '\\x00', 'accepted', $4)",
                 ARGS(a.tenant, a.workspace, a.channel, a.wamid));
    static const char msg_sql[] =
        "INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, sender_type,"
        " provider_message_id, status) VALUES ($1, $2, $3, 'inbound', 'customer', $4,"
        " 'received')";
    expect_state(S.app, a.tenant, E_UNIQUE, msg_sql,
                 ARGS(a.tenant, a.conversation, a.channel, a.wamid));
    /* ... while another tenant's channel may carry the same provider id */
    expect_ok(S.app, b.tenant, msg_sql, ARGS(b.tenant, b.conversation, b.channel, a.wamid));
    /* one open conversation per channel and contact */
    expect_state(S.app, a.tenant, E_UNIQUE,
                 "INSERT INTO conversations (tenant_id, workspace_id, channel_id, contact_id)"
                 " VALUES ($1, $2, $3, $4)",
                 ARGS(a.tenant, a.workspace, a.channel, a.contact));
    /* e-mail is the login: unique across tenants, whatever the case */
    char upper[64];
    snprintf(upper, sizeof upper, "%s", a.email);
    upper[0] = 'u';
    expect_state(S.app, b.tenant, E_UNIQUE,
                 "INSERT INTO users (tenant_id, email, password_hash)"
                 " VALUES ($1, $2, 'scrypt$ln=17,r=8,p=1$c2FsdA$aGFzaA')",
                 ARGS(b.tenant, upper));
    /* enumerations and status rules */
    expect_state(S.app, a.tenant, E_CHECK, "UPDATE messages SET status = 'bogus' WHERE id = $1",
                 ARGS(a.message));
    expect_state(S.app, a.tenant, E_CHECK, "UPDATE messages SET status = 'sent' WHERE id = $1",
                 ARGS(a.message));
    expect_state(S.app, a.tenant, E_CHECK, "UPDATE channels SET type = 'telegram' WHERE id = $1",
                 ARGS(a.channel));
    expect_state(S.app, a.tenant, E_CHECK, "UPDATE tenants SET status = 'gone' WHERE id = $1",
                 ARGS(a.tenant));
}

Test(schema, knowledge_search_and_updated_at, .timeout = 30)
{
    struct graph a, b;
    graph_create(&a);
    graph_create(&b);
    char kb[UUID_LEN];
    random_uuid(kb);
    expect_ok(S.app, a.tenant,
              "INSERT INTO knowledge_bases (id, tenant_id, assistant_id, name, language)"
              " VALUES ($1, $2, $3, 'FAQ', 'portuguese')",
              ARGS(kb, a.tenant, a.assistant));
    expect_ok(S.app, a.tenant,
              "INSERT INTO knowledge_chunks (tenant_id, knowledge_base_id, assistant_id, ordinal,"
              " content, language) VALUES ($1, $2, $3, 0,"
              " 'Nosso horário de funcionamento é de segunda a sexta', 'portuguese')",
              ARGS(a.tenant, kb, a.assistant));
    static const char search_sql[] = "SELECT count(*) FROM knowledge_chunks WHERE assistant_id = $1"
                                     " AND tsv @@ websearch_to_tsquery('portuguese', $2)";
    cr_assert_eq(count_rows(S.app, a.tenant, search_sql, ARGS(a.assistant, "funcionamentos")), 1);
    cr_assert_eq(count_rows(S.app, a.tenant, search_sql, ARGS(a.assistant, "pizza")), 0);
    cr_assert_eq(count_rows(S.app, b.tenant, search_sql, ARGS(a.assistant, "funcionamento")), 0);
    /* a chunk must point at a knowledge base of its own tenant */
    expect_state(S.app, b.tenant, E_FK,
                 "INSERT INTO knowledge_chunks (tenant_id, knowledge_base_id, assistant_id,"
                 " ordinal, content) VALUES ($1, $2, $3, 0, 'x')",
                 ARGS(b.tenant, kb, b.assistant));

    /* updated_at is kept by the database, whatever the statement says */
    expect_ok(S.app, a.tenant,
              "UPDATE workspaces SET name = 'Renamed', updated_at = '2000-01-01' WHERE id = $1",
              ARGS(a.workspace));
    cr_assert_eq(count_rows(S.app, a.tenant,
                            "SELECT count(*) FROM workspaces WHERE id = $1"
                            " AND updated_at > now() - interval '1 hour'",
                            ARGS(a.workspace)),
                 1);
}
