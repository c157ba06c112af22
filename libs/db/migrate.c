/* migrate.c - the schema migrations runner: finds NNNN_name.sql files,
 * checks recorded ones did not change (SHA-256), and applies the rest in
 * order, each in its own transaction with its schema_migrations row, under
 * an advisory lock so concurrent runners never interleave. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"

#define MIG_LOCK_KEY           "7305146252014402610" /* pg_advisory_lock key of the runner */
#define MIG_CONNECT_TIMEOUT_MS 10000
#define MIG_SUM_HEX            65 /* SHA-256 in hex plus NUL */
#define MIG_MSG_MAX            512

static const char mig_create_table[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                       " version text PRIMARY KEY,"
                                       " name text NOT NULL,"
                                       " checksum text NOT NULL,"
                                       " applied_at timestamptz NOT NULL DEFAULT now())";

struct mig_file {
    char name[DB_MIGRATE_MAX_NAME + 1];
    char version[DB_MIGRATE_MAX_NAME + 1];
    char sum[MIG_SUM_HEX];
    char *sql; /* file contents, NUL-terminated */
    bool pending;
};

struct mig_set {
    struct mig_file *files;
    size_t n;
};

static void mig_set_cleanup(struct mig_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->files[i].sql);
    free(s->files);
    s->files = NULL;
    s->n = 0;
}

/* Digits, '_', at least one of [A-Za-z0-9_-], ".sql". Fills version. */
static bool mig_name_parse(const char *name, char *version)
{
    size_t n = strlen(name), d = 0;
    if (n > DB_MIGRATE_MAX_NAME || n < 4 || strcmp(name + n - 4, ".sql") != 0)
        return false;
    while (isdigit((unsigned char)name[d]))
        d++;
    if (d == 0 || name[d] != '_' || d + 1 >= n - 4)
        return false;
    for (size_t i = d + 1; i < n - 4; i++) {
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-')
            return false;
    }
    memcpy(version, name, d);
    version[d] = '\0';
    return true;
}

static void mig_sha256_hex(const char *data, size_t len, char out[MIG_SUM_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL))
        return;
    for (unsigned int i = 0; i < mdlen && 2 * i + 2 < MIG_SUM_HEX; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Reads a whole migration file (regular, bounded, no NUL bytes). */
static int mig_read(int dfd, struct mig_file *f, struct sb_buf *err)
{
    int fd = openat(dfd, f->name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int rc = fd < 0 ? -errno : -EINVAL;
        db_err_setf(err, "migration %s: cannot read (%s)", f->name, sb_strerror(rc));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    if (st.st_size > DB_MIGRATE_MAX_FILE_BYTES) {
        close(fd);
        db_err_setf(err, "migration %s: larger than %d bytes", f->name, DB_MIGRATE_MAX_FILE_BYTES);
        return SB_ELIMIT;
    }
    size_t size = (size_t)st.st_size, got = 0;
    f->sql = malloc(size + 1);
    if (!f->sql) {
        close(fd);
        return -ENOMEM;
    }
    while (got < size) {
        ssize_t r = read(fd, f->sql + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    f->sql[got] = '\0';
    if (got != size || memchr(f->sql, '\0', got)) {
        db_err_setf(err, "migration %s: short read or NUL byte in file", f->name);
        return -EIO;
    }
    mig_sha256_hex(f->sql, got, f->sum);
    return 0;
}

static int mig_cmp(const void *a, const void *b)
{
    return strcmp(((const struct mig_file *)a)->name, ((const struct mig_file *)b)->name);
}

/* Adds one directory entry to the set when it is a .sql file. */
static int mig_add(struct mig_set *s, size_t *cap, const char *name, struct sb_buf *err)
{
    size_t n = strlen(name);
    if (name[0] == '.' || n < 4 || strcmp(name + n - 4, ".sql") != 0)
        return 0;
    if (s->n == DB_MIGRATE_MAX_FILES) {
        db_err_setf(err, "migrations: more than %d files", DB_MIGRATE_MAX_FILES);
        return SB_ELIMIT;
    }
    if (s->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct mig_file *v = realloc(s->files, ncap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        s->files = v;
        *cap = ncap;
    }
    struct mig_file *f = &s->files[s->n];
    memset(f, 0, sizeof(*f));
    if (!mig_name_parse(name, f->version)) {
        db_err_setf(err, "migration %.*s: bad file name (expected NNNN_name.sql)",
                    DB_MIGRATE_MAX_NAME, name);
        return SB_EPARSE;
    }
    memcpy(f->name, name, n + 1);
    s->n++;
    return 0;
}

/* Lists, sorts and reads every migration file in `dir`. */
static int mig_scan(const char *dir, struct mig_set *s, struct sb_buf *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        int rc = -errno;
        db_err_setf(err, "migrations dir %s: %s", dir, sb_strerror(rc));
        return rc;
    }
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL)
        rc = mig_add(s, &cap, e->d_name, err);
    if (rc == 0 && s->n > 1)
        qsort(s->files, s->n, sizeof(*s->files), mig_cmp);
    for (size_t i = 0; rc == 0 && i < s->n; i++) {
        if (i > 0 && strcmp(s->files[i].version, s->files[i - 1].version) == 0) {
            db_err_setf(err, "migrations %s and %s share version %s", s->files[i - 1].name,
                        s->files[i].name, s->files[i].version);
            rc = SB_ECONFLICT;
            break;
        }
        rc = mig_read(dirfd(d), &s->files[i], err);
        s->files[i].pending = true;
    }
    closedir(d);
    return rc;
}

/* Marks recorded files as applied; refuses a recorded file that changed. */
static int mig_check_recorded(PGconn *c, struct mig_set *s, struct sb_log *log, struct sb_buf *err)
{
    PGresult *r = NULL;
    int rc = db_exec(c, "SELECT version, name, checksum FROM schema_migrations ORDER BY version", 0,
                     NULL, &r, err);
    if (rc != 0)
        return rc;
    for (int row = 0; rc == 0 && row < PQntuples(r); row++) {
        const char *version = db_value(r, row, 0), *sum = db_value(r, row, 2);
        size_t i = 0;
        while (i < s->n && strcmp(s->files[i].version, version ? version : "") != 0)
            i++;
        if (i == s->n) {
            sb_log_warn(log, NULL, "migration %s (%s) is recorded but its file is missing",
                        version ? version : "?", db_value(r, row, 1) ? db_value(r, row, 1) : "?");
            continue;
        }
        struct mig_file *f = &s->files[i];
        if (!sum || strcmp(sum, f->sum) != 0) {
            db_err_setf(err,
                        "migration %s was changed after it was applied (checksum %s, "
                        "recorded %s); add a new migration instead",
                        f->name, f->sum, sum ? sum : "none");
            rc = SB_ECONFLICT;
        }
        f->pending = false;
        free(f->sql);
        f->sql = NULL;
    }
    PQclear(r);
    return rc;
}

/* Runs one file and records it, in one transaction. */
static int mig_apply(PGconn *c, const struct mig_file *f, struct sb_buf *err)
{
    struct sb_buf msg;
    sb_buf_init(&msg, MIG_MSG_MAX);
    int rc = db_exec(c, "BEGIN", 0, NULL, NULL, &msg);
    if (rc == 0) {
        /* Trusted repository files with many statements: the one raw PQexec. */
        PGresult *r = PQexec(c, f->sql);
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
            db_err_setf(&msg, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
            rc = PQstatus(c) == CONNECTION_OK ? SB_EDB : SB_EUNAVAIL;
        } else if (PQtransactionStatus(c) != PQTRANS_INTRANS) {
            db_err_setf(&msg, "the file must not end or start transactions");
            rc = SB_EDB;
        }
        PQclear(r);
    }
    if (rc == 0) {
        const char *params[3] = {f->version, f->name, f->sum};
        rc = db_exec(c,
                     "INSERT INTO schema_migrations (version, name, checksum) "
                     "VALUES ($1, $2, $3)",
                     3, params, NULL, &msg);
    }
    if (rc == 0) {
        PGresult *r = NULL;
        rc = db_exec(c, "COMMIT", 0, NULL, &r, &msg);
        if (rc == 0 && strcmp(PQcmdStatus(r), "COMMIT") != 0)
            rc = SB_EDB;
        PQclear(r);
    }
    if (rc != 0) {
        if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE) {
            int rb = db_exec(c, "ROLLBACK", 0, NULL, NULL, NULL);
            (void)rb;
        }
        db_err_setf(err, "migration %s failed: %s", f->name, msg.data ? msg.data : "");
    }
    sb_buf_cleanup(&msg);
    return rc;
}

/* Everything that happens while holding the advisory lock. */
static int mig_locked(PGconn *c, struct mig_set *s, struct sb_log *log, struct sb_buf *report,
                      struct sb_buf *err)
{
    int rc = db_exec(c, mig_create_table, 0, NULL, NULL, err);
    if (rc == 0)
        rc = mig_check_recorded(c, s, log, err);
    int applied = 0;
    for (size_t i = 0; rc == 0 && i < s->n; i++) {
        if (!s->files[i].pending)
            continue;
        rc = mig_apply(c, &s->files[i], err);
        if (rc != 0)
            break;
        applied++;
        sb_log_info(log, NULL, "migration applied: %s", s->files[i].name);
        if (report) {
            int ar = sb_buf_appendf(report, "applied %s (sha256 %.12s)\n", s->files[i].name,
                                    s->files[i].sum);
            (void)ar; /* a full report buffer must not fail the migration */
        }
    }
    return rc != 0 ? rc : applied;
}

int db_migrate(const char *conninfo, const char *dir, struct sb_log *log, struct sb_buf *report,
               struct sb_buf *err)
{
    if (!conninfo || !dir) {
        db_err_setf(err, "db_migrate: invalid arguments");
        return -EINVAL;
    }
    struct mig_set set = {0};
    int rc = mig_scan(dir, &set, err);
    struct db_pool *pool = NULL;
    PGconn *c = NULL;
    if (rc == 0) {
        pool = db_pool_new(conninfo, 1, "sabia-migrate", log);
        rc = pool ? db_acquire(pool, MIG_CONNECT_TIMEOUT_MS, &c) : -EINVAL;
        if (rc != 0)
            db_err_setf(err, "migrations: cannot connect to the database (%s)", sb_strerror(rc));
    }
    if (rc == 0) {
        const char *key[1] = {MIG_LOCK_KEY};
        rc = db_exec(c, "SELECT pg_advisory_lock($1::bigint)", 1, key, NULL, err);
        if (rc == 0) {
            rc = mig_locked(c, &set, log, report, err);
            int ur = db_exec(c, "SELECT pg_advisory_unlock($1::bigint)", 1, key, NULL, NULL);
            (void)ur; /* closing the session releases it anyway */
        }
    }
    if (rc < 0)
        sb_log_error(log, NULL, "migrations failed: %s",
                     err && err->data ? err->data : sb_strerror(rc));
    db_release(pool, c);
    db_pool_free(pool);
    mig_set_cleanup(&set);
    return rc;
}
