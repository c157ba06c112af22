/* testsupport.c - environment, processes, ports and HTTP for the test suites. */
#include "testsupport.h"

#include "core.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const char *ts_env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        cr_assert_fail("%s is not set: run this suite through ./sabia test", name);
    return v;
}

static char *join_path(const char *base_var, const char *rel)
{
    const char *base = ts_env(base_var);
    size_t n = strlen(base) + strlen(rel) + 2;
    char *p = malloc(n);
    cr_assert_not_null(p);
    snprintf(p, n, "%s/%s", base, rel);
    return p;
}

char *ts_source_path(const char *rel)
{
    return join_path("SABIA_SOURCE_DIR", rel);
}

char *ts_build_path(const char *rel)
{
    return join_path("SABIA_BUILD_DIR", rel);
}

static bool port_connects(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

int ts_free_port(void)
{
    /* Bind to port 0 and let the kernel choose; released right away, so a
     * tiny race remains, acceptable for tests. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

bool ts_wait_port(int port, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        if (port_connects(port))
            return true;
        sleep_ms(20);
    }
    return false;
}

pid_t ts_spawn(char *const argv[], char *const extra_env[], const char *log_path)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork failed");
    if (pid == 0) {
        if (extra_env)
            for (char *const *e = extra_env; *e; e++)
                putenv(*e);
        if (log_path) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, STDOUT_FILENO);
                dup2(fd, STDERR_FILENO);
                close(fd);
            }
        }
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

int ts_stop(pid_t pid, int sig, int timeout_ms)
{
    int status = -1;
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return status;
}

void ts_redis_start(struct ts_redis *r, int port)
{
    if (port == 0)
        port = ts_free_port();
    r->port = port;
    if (r->dir[0] == '\0') {
        const char *tmp = getenv("SABIA_TEST_TMP");
        snprintf(r->dir, sizeof r->dir, "%s/redis-%d-XXXXXX", tmp ? tmp : "/tmp", (int)getpid());
        cr_assert_not_null(mkdtemp(r->dir), "mkdtemp %s", r->dir);
    }
    char portstr[16], pidfile[300];
    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(pidfile, sizeof pidfile, "%s/redis.pid", r->dir);
    char *argv[] = {"redis-server", "--port", portstr, "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", r->dir, "--pidfile", pidfile, NULL};
    char logpath[300];
    snprintf(logpath, sizeof logpath, "%s/redis.log", r->dir);
    r->pid = ts_spawn(argv, NULL, logpath);
    cr_assert(ts_wait_port(port, 5000), "redis-server did not start on port %d", port);
}

void ts_redis_stop(struct ts_redis *r)
{
    if (r->pid > 0)
        ts_stop(r->pid, SIGTERM, 5000);
    r->pid = 0;
}

/* Runs `script` with scripts/lib.sh sourced; fails the test on error. */
static void run_lib(const char *script)
{
    const char *root = ts_env("SABIA_SOURCE_DIR");
    size_t n = strlen(root) * 2 + strlen(script) + 128;
    char *cmd = malloc(n);
    cr_assert_not_null(cmd);
    snprintf(cmd, n, "bash -c 'ROOT=\"%s\"; . \"%s/scripts/lib.sh\"; %s' >/dev/null", root, root,
             script);
    int rc = system(cmd);
    cr_assert_eq(rc, 0, "failed: %s", cmd);
    free(cmd);
}

void ts_pg_start(struct ts_pg *pg)
{
    memset(pg, 0, sizeof *pg);
    pg->port = ts_free_port();
    snprintf(pg->dir, sizeof pg->dir, "%s/pg-%d", ts_env("SABIA_TEST_TMP"), pg->port);
    char script[2048];
    snprintf(script, sizeof script,
             "pg_init %s %d && echo \"fsync = off\" | as_pg tee -a %s/postgresql.auto.conf && "
             "pg_start %s && pg_bootstrap %s %d sabia ownerpw apppw",
             pg->dir, pg->port, pg->dir, pg->dir, pg->dir, pg->port);
    run_lib(script);
    snprintf(pg->owner_url, sizeof pg->owner_url,
             "postgresql://sabia_owner:ownerpw@127.0.0.1:%d/sabia", pg->port);
    snprintf(pg->app_url, sizeof pg->app_url, "postgresql://sabia_app:apppw@127.0.0.1:%d/sabia",
             pg->port);
    char *ctl = ts_build_path("apps/sabiactl/sabiactl");
    char *migrations = ts_source_path("migrations");
    size_t n = strlen(ctl) + strlen(migrations) + 512;
    char *cmd = malloc(n);
    snprintf(cmd, n, "SABIA_ENV_FILE=/nonexistent SABIA_DATABASE_OWNER_URL='%s' %s migrate --dir %s >/dev/null",
             pg->owner_url, ctl, migrations);
    cr_assert_eq(system(cmd), 0, "migrations failed on the private cluster");
    free(cmd);
    free(ctl);
    free(migrations);
}

void ts_pg_stop(struct ts_pg *pg)
{
    char script[600];
    snprintf(script, sizeof script, "pg_stop %s", pg->dir);
    run_lib(script);
}

void ts_pg_restart(struct ts_pg *pg)
{
    char script[600];
    snprintf(script, sizeof script, "pg_start %s", pg->dir);
    run_lib(script);
}

void ts_pg_destroy(struct ts_pg *pg)
{
    if (!pg->dir[0])
        return;
    char script[700];
    snprintf(script, sizeof script, "pg_stop %s; rm -rf %s", pg->dir, pg->dir);
    run_lib(script);
    pg->dir[0] = '\0';
}

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    size_t n = size * nmemb;
    char **buf = userdata;
    size_t old = *buf ? strlen(*buf) : 0;
    char *p = realloc(*buf, old + n + 1);
    if (p == NULL)
        return 0;
    memcpy(p + old, ptr, n);
    p[old + n] = '\0';
    *buf = p;
    return n;
}

char *ts_http(const char *method, const char *url, const char *const *headers, const char *body,
              size_t body_len, long *status)
{
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    char *out = calloc(1, 1);
    struct curl_slist *h = NULL;
    if (headers)
        for (const char *const *p = headers; *p; p++)
            h = curl_slist_append(h, *p);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    CURLcode rc = curl_easy_perform(c);
    *status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return out;
}

char *ts_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    struct stat st;
    cr_assert_eq(fstat(fileno(f), &st), 0);
    char *p = malloc((size_t)st.st_size + 1);
    cr_assert_not_null(p);
    size_t n = fread(p, 1, (size_t)st.st_size, f);
    fclose(f);
    p[n] = '\0';
    if (len)
        *len = n;
    return p;
}

char *ts_owner_conninfo(const char *db)
{
    PQconninfoOption *opts = PQconninfoParse(ts_env("SABIA_DATABASE_OWNER_URL"), NULL);
    cr_assert_not_null(opts);
    struct sb_buf b;
    sb_buf_init(&b, 4096);
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !o->val[0] || strcmp(o->keyword, "dbname") == 0)
            continue;
        cr_assert_eq(sb_buf_appendf(&b, "%s='", o->keyword), 0);
        for (const char *s = o->val; *s; s++) {
            if (*s == '\'' || *s == '\\')
                cr_assert_eq(sb_buf_append(&b, "\\", 1), 0);
            cr_assert_eq(sb_buf_append(&b, s, 1), 0);
        }
        cr_assert_eq(sb_buf_append_str(&b, "' "), 0);
    }
    PQconninfoFree(opts);
    cr_assert_eq(sb_buf_appendf(&b, "dbname='%s'", db), 0);
    return sb_buf_steal(&b);
}

double ts_metric(int port, const char *series)
{
    char url[64];
    long st;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    char *text = ts_http("GET", url, NULL, NULL, 0, &st);
    cr_assert_eq(st, 200, "GET %s", url);
    double v = 0;
    size_t n = strlen(series);
    for (const char *line = text; line;) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            v = strtod(line + n + 1, NULL);
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    free(text);
    return v;
}
