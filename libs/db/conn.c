/* conn.c - per-connection state (see conn.h): the last error's SQLSTATE and
 * the cache of prepared statements. */
#include <libpq-events.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "db.h"

#define CONN_EVENT_NAME "sabia_db_conn"

static void stmts_forget(struct db_conn_state *s)
{
    for (unsigned i = 0; i < DB_STMT_CACHE_SLOTS; i++) {
        free(s->stmts[i].sql);
        s->stmts[i] = (struct db_stmt){0};
    }
    s->nstmts = 0;
}

static int conn_event(PGEventId id, void *info, void *pass)
{
    (void)pass;
    if (id == PGEVT_REGISTER) {
        PGEventRegister *e = info;
        struct db_conn_state *s = calloc(1, sizeof(*s));
        if (!s)
            return 0;
        if (!PQsetInstanceData(e->conn, conn_event, s)) {
            free(s);
            return 0;
        }
    } else if (id == PGEVT_RESULTCREATE) {
        PGEventResultCreate *e = info;
        struct db_conn_state *s = PQinstanceData(e->conn, conn_event);
        const char *state = PQresultErrorField(e->result, PG_DIAG_SQLSTATE);
        if (s && state && PQresultStatus(e->result) == PGRES_FATAL_ERROR)
            snprintf(s->sqlstate, sizeof(s->sqlstate), "%s", state);
    } else if (id == PGEVT_CONNRESET) {
        PGEventConnReset *e = info; /* a new session: nothing is prepared any more */
        struct db_conn_state *s = PQinstanceData(e->conn, conn_event);
        if (s)
            stmts_forget(s);
    } else if (id == PGEVT_CONNDESTROY) {
        PGEventConnDestroy *e = info;
        struct db_conn_state *s = PQinstanceData(e->conn, conn_event);
        if (s) {
            stmts_forget(s);
            free(s);
        }
    }
    return 1;
}

struct db_conn_state *db_conn_state(PGconn *c)
{
    struct db_conn_state *s = PQinstanceData(c, conn_event);
    if (!s && PQregisterEventProc(c, conn_event, CONN_EVENT_NAME, NULL))
        s = PQinstanceData(c, conn_event);
    return s;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h ? h : 1; /* 0 marks a free slot */
}

void db_conn_forget(PGconn *c, const char *sql)
{
    struct db_conn_state *s = PQinstanceData(c, conn_event);
    if (!s)
        return;
    uint64_t h = fnv1a(sql);
    unsigned i = (unsigned)(h % DB_STMT_CACHE_SLOTS);
    for (unsigned probes = 0; probes < DB_STMT_CACHE_SLOTS && s->stmts[i].hash; probes++) {
        struct db_stmt *st = &s->stmts[i];
        if (st->hash == h && st->nparams >= 0 && strcmp(st->sql, sql) == 0) {
            st->nparams = -1; /* stays as a tombstone so probing still works; never matches */
            return;
        }
        i = (i + 1) % DB_STMT_CACHE_SLOTS;
    }
}

const char *db_conn_prepared(PGconn *c, const char *sql, int nparams, int *rc, PGresult **failed)
{
    *rc = 0;
    *failed = NULL;
    struct db_conn_state *s = db_conn_state(c);
    if (!s)
        return NULL;
    uint64_t h = fnv1a(sql);
    unsigned i = (unsigned)(h % DB_STMT_CACHE_SLOTS);
    for (unsigned probes = 0; probes < DB_STMT_CACHE_SLOTS; probes++) {
        struct db_stmt *st = &s->stmts[i];
        if (st->hash == 0)
            break;
        if (st->hash == h && st->nparams == nparams && strcmp(st->sql, sql) == 0)
            return st->name;
        i = (i + 1) % DB_STMT_CACHE_SLOTS;
    }
    /* New. Keep a quarter of the table free so probes stay short. */
    if (s->nstmts >= DB_STMT_CACHE_SLOTS * 3 / 4)
        return NULL;
    struct db_stmt *st = &s->stmts[i];
    char *copy = strdup(sql);
    if (!copy)
        return NULL;
    char name[DB_STMT_NAME_MAX];
    snprintf(name, sizeof name, "sabia_%u", s->next_name);
    PGresult *r = PQprepare(c, name, sql, nparams, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        free(copy);
        *failed = r;
        *rc = SB_EDB;
        return NULL;
    }
    PQclear(r);
    s->next_name++;
    s->nstmts++;
    *st = (struct db_stmt){.hash = h, .sql = copy, .nparams = nparams};
    memcpy(st->name, name, sizeof name);
    return st->name;
}
