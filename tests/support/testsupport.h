/* testsupport.h - helpers shared by the Criterion suites: the environment
 * that ./sabia test provides, child processes, free ports and HTTP calls.
 * Failures inside these helpers abort the current test (cr_assert_fail). */
#ifndef SABIA_TESTSUPPORT_H
#define SABIA_TESTSUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Returns the value of `name`, failing the test (never skipping it) when
 * unset: suites that need PostgreSQL or Redis must run under ./sabia test. */
const char *ts_env(const char *name);

/* Path of a file in the source tree or the build tree (static buffer per call
 * site is not used: the result is heap-allocated; free() it). */
char *ts_source_path(const char *rel);
char *ts_build_path(const char *rel);

/* A TCP port on 127.0.0.1 that nothing listens on right now. */
int ts_free_port(void);
/* Waits until something accepts connections on 127.0.0.1:port. Returns false on timeout. */
bool ts_wait_port(int port, int timeout_ms);

/* Starts `argv[0]` with extra environment entries ("K=V", NULL-terminated,
 * may be NULL) added to the current environment; stdout/stderr go to
 * `log_path` when not NULL. Returns the pid. */
pid_t ts_spawn(char *const argv[], char *const extra_env[], const char *log_path);
/* Sends `sig` and waits up to timeout_ms for the child to exit; then SIGKILL.
 * Returns the exit status as from waitpid, or -1. */
int ts_stop(pid_t pid, int sig, int timeout_ms);

/* A private redis-server on a free port (no password, no persistence),
 * for tests that stop and restart Redis. */
struct ts_redis {
    pid_t pid;
    int port;
    char dir[256];
};
void ts_redis_start(struct ts_redis *r, int port /* 0 = pick a free one */);
void ts_redis_stop(struct ts_redis *r);

/* A private PostgreSQL cluster on a free port, with the project's roles, the
 * `sabia` database and every migration applied: for tests that stop and
 * restart the database. Built with the same functions as ./sabia. */
struct ts_pg {
    int port;
    char dir[256];
    char owner_url[256]; /* sabia_owner */
    char app_url[256];   /* sabia_app */
};
void ts_pg_start(struct ts_pg *pg);
void ts_pg_stop(struct ts_pg *pg);
/* Starts a stopped cluster again on the same port and data. */
void ts_pg_restart(struct ts_pg *pg);
/* Stops it and deletes its data. */
void ts_pg_destroy(struct ts_pg *pg);

/* One HTTP/1.1 request with libcurl. `body` may be NULL. headers is a
 * NULL-terminated list of "Name: value" strings or NULL. Fills *status
 * and returns the response body (heap, NUL-terminated; free()). */
char *ts_http(const char *method, const char *url, const char *const *headers, const char *body,
              size_t body_len, long *status);

/* The value of the series `series` (name and labels, as printed) on the
 * /metrics page of the service on 127.0.0.1:port; 0 while it has no line yet
 * (a series appears with its first sample). */
double ts_metric(int port, const char *series);

/* Reads a whole file (heap, NUL-terminated). *len may be NULL. */
char *ts_read_file(const char *path, size_t *len);

/* SABIA_DATABASE_OWNER_URL with its database replaced by `db`, as libpq
 * key='value' pairs (heap; the caller frees). For throw-away databases. */
char *ts_owner_conninfo(const char *db);

#endif
