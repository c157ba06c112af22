/* loadgen.c - sabia-loadgen: an HTTP/1.1 load generator for the gateway
 * ingestion benchmark (DESIGN.md §6).
 *
 * Reads a payload file (one request per line, "<signature>\t<body>"), then
 * POSTs the bodies round-robin to 127.0.0.1:PORT/PATH over C keep-alive
 * connections, each with its X-Hub-Signature-256 header. One thread, epoll,
 * non-blocking sockets, one request in flight per connection. With --get it
 * sends bodiless GETs of PATH instead (no payload file): what the HTTP
 * exchange alone costs, e.g. against /health/live.
 *
 *   --max      closed loop: a connection sends its next request as soon as
 *              the previous answer arrived. Measures peak throughput.
 *   --rate R   open loop: request k is due at start + k/R, whatever happened
 *              before. A due request waits for a free connection, and its
 *              latency is measured from when it was DUE, not from when it
 *              could be sent, so a stall shows up in the latencies instead
 *              of silently lowering the offered load (coordinated omission).
 *
 * Only what happens after --warmup seconds, for --seconds seconds, counts:
 * closed loop counts answers that arrive in that window; open loop counts
 * requests due in it, and waits up to LG_DRAIN_NS for their answers (those
 * still missing then are errors). Prints one JSON line on stdout:
 *
 *   {"mode":"max","connections":64,"seconds":10,"requests":…,"ok":…,
 *    "errors":…,"rps":…,"p50_ms":…,"p90_ms":…,"p99_ms":…,"max_ms":…,
 *    "total_ok":…,"payloads_wrapped":false,"connect_failures":…,
 *    "cpu_seconds":…,"setup_cpu_seconds":…}
 *
 * rps counts 2xx answers per second; total_ok counts every 2xx answer of
 * the run, warm-up and drain included (for checking against the database);
 * payloads_wrapped says the file ran out and bodies were sent twice;
 * connect_failures counts connections that could not be (re)opened;
 * cpu_seconds is the CPU time the load generator itself used while
 * sending (loading the file excluded), setup_cpu_seconds what it used
 * before (loading the file, connecting).
 * Latencies go into a log-linear histogram (≤ 3% error, reported as the
 * bucket's upper bound; max is exact). --timeline also prints, on stderr,
 * one line per second of the run (by start or due time): answers, mean and
 * worst latency, which shows stalls that percentiles only hint at. */
#include "core.h"
#include "histogram.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LG_CONN_MAX     4096                             /* --connections */
#define LG_SECONDS_MAX  3600                             /* --seconds and --warmup */
#define LG_RATE_MAX     1000000.0                        /* --rate, requests per second */
#define LG_FILE_MAX     (2048L * 1024 * 1024)            /* payload file bytes */
#define LG_LINES_MAX    20000000L                        /* payload lines */
#define LG_PATH_MAX     1024                             /* --path characters */
#define LG_SIG_MAX      512                              /* signature characters per line */
#define LG_BODY_MAX     (1024 * 1024)                    /* body bytes per line */
#define LG_HEAD_MAX     (LG_PATH_MAX + LG_SIG_MAX + 256) /* request head bytes */
#define LG_RESP_MAX     (64 * 1024)                      /* response bytes (head and body) */
#define LG_DRAIN_NS     (10 * NS)                        /* open loop: wait for late answers */
#define LG_RETRY_NS     (10 * MS)                        /* first pause before reconnecting */
#define LG_RETRY_MAX_NS (1000 * MS)                      /* pauses double up to this */
#define LG_EVENTS       256                              /* epoll events per wait */
#define LG_ERRMSG_MAX   200                              /* bytes of the first error answer kept */

#define NS 1000000000LL
#define MS 1000000LL

struct payload {
    const char *sig; /* NUL-terminated, inside the file's buffer */
    const char *body;
    size_t body_len;
};

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_IDLE, CONN_SENDING, CONN_READING };

struct conn {
    int fd;
    enum conn_state state;
    int64_t start_ns; /* when the request in flight was due (open) or sent (closed) */
    int64_t retry_at; /* CONN_DOWN: reconnect from then on */
    int64_t backoff;  /* the next pause; reset once connected */
    bool queued;      /* open loop: on the idle stack (maybe stale, see dispatch_due) */
    char *out;        /* LG_HEAD_MAX + the longest body of the file */
    size_t out_len, out_off;
    char *in; /* LG_RESP_MAX bytes */
    size_t in_len;
};

/* One second of the run, by the time requests started (or were due). */
struct lg_second {
    uint64_t n;
    int64_t sum_ns, max_ns;
};

struct lg_args {
    bool timeline;
    bool get; /* GET PATH, no payloads */
    int port;
    const char *path;
    const char *payloads;
    int connections;
    bool max;
    double rate;
    long seconds, warmup;
};

struct loadgen {
    struct lg_args a;
    char *file;
    struct payload *p;
    size_t np, next_p;
    size_t body_max; /* the longest body in the file */
    bool wrapped;
    struct conn *conns;
    int *idle; /* open loop: stack of idle connection indexes */
    int nidle;
    int epfd;
    struct sockaddr_in addr;
    int64_t t0, warm_end, end, hard_end;
    uint64_t due; /* open loop: index of the next request to send */
    uint64_t ok, errors, total_ok;
    uint64_t connect_failures;
    bool connected; /* at least one connection was established */
    struct hist hist;
    struct lg_second *seconds; /* warmup + seconds + 1 entries */
    double cpu0;               /* our CPU seconds when the run started */
    int first_status;
    char first_error[LG_ERRMSG_MAX + 1];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* ---------------------------------------------------------------- arguments */

static int usage(const char *why)
{
    if (why)
        fprintf(stderr, "sabia-loadgen: %s\n", why);
    fputs("usage: sabia-loadgen --port P --path /url/path (--payloads FILE | --get)\n"
          "                     (--max | --rate R) [--connections C] [--seconds S] "
          "[--warmup S] [--timeline]\n"
          "  FILE: one request per line, <X-Hub-Signature-256 value>\\t<body>\n"
          "  defaults: 64 connections, 10 seconds, 2 seconds of warm-up; 127.0.0.1 only\n",
          stderr);
    return 2;
}

static int parse_rate(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v > 0) || v > LG_RATE_MAX)
        return -EINVAL;
    *out = v;
    return 0;
}

/* One option and its value; 0, or the exit code of a usage error. */
static int parse_option(struct lg_args *a, const char *opt, const char *val)
{
    long v = 0;
    if (strcmp(opt, "--port") == 0 && sb_parse_long(val, 1, 65535, &v) == 0)
        a->port = (int)v;
    else if (strcmp(opt, "--connections") == 0 && sb_parse_long(val, 1, LG_CONN_MAX, &v) == 0)
        a->connections = (int)v;
    else if (strcmp(opt, "--seconds") == 0 && sb_parse_long(val, 1, LG_SECONDS_MAX, &v) == 0)
        a->seconds = v;
    else if (strcmp(opt, "--warmup") == 0 && sb_parse_long(val, 0, LG_SECONDS_MAX, &v) == 0)
        a->warmup = v;
    else if (strcmp(opt, "--rate") == 0 && parse_rate(val, &a->rate) == 0)
        return 0;
    else if (strcmp(opt, "--path") == 0 && val[0] == '/' && strlen(val) <= LG_PATH_MAX &&
             !strpbrk(val, " \r\n"))
        a->path = val;
    else if (strcmp(opt, "--payloads") == 0)
        a->payloads = val;
    else
        return usage("unknown option, or a value out of range");
    return 0;
}

static int parse_args(int argc, char **argv, struct lg_args *a)
{
    *a = (struct lg_args){.connections = 64, .seconds = 10, .warmup = 2};
    bool max = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--max") == 0 || strcmp(argv[i], "--timeline") == 0 ||
            strcmp(argv[i], "--get") == 0) {
            max |= argv[i][2] == 'm';
            a->timeline |= argv[i][2] == 't';
            a->get |= argv[i][2] == 'g';
            continue;
        }
        if (i + 1 >= argc)
            return usage("option without a value");
        int rc = parse_option(a, argv[i], argv[i + 1]);
        if (rc != 0)
            return rc;
        i++;
    }
    if (!a->port || !a->path)
        return usage("--port and --path are required");
    if (!a->payloads == !a->get)
        return usage("give exactly one of --payloads FILE and --get");
    if (max == (a->rate > 0))
        return usage("give exactly one of --max and --rate R");
    a->max = max;
    return 0;
}

/* ---------------------------------------------------------------- payloads */

static int split_line(char *line, size_t len, struct payload *p)
{
    char *tab = memchr(line, '\t', len);
    if (!tab || tab == line || (size_t)(tab - line) > LG_SIG_MAX)
        return SB_EPARSE;
    *tab = '\0';
    p->sig = line;
    p->body = tab + 1;
    p->body_len = len - (size_t)(tab + 1 - line);
    if (p->body_len && p->body[p->body_len - 1] == '\r') /* a file with CRLF line ends */
        p->body_len--;
    if (p->body_len == 0 || p->body_len > LG_BODY_MAX || strpbrk(p->sig, "\r\n"))
        return SB_EPARSE;
    return 0;
}

/* Reads the whole file and indexes its lines (the buffer stays alive). */
static int load_payloads(struct loadgen *lg)
{
    FILE *f = fopen(lg->a.payloads, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || st.st_size <= 0 || st.st_size > LG_FILE_MAX) {
        fprintf(stderr, "sabia-loadgen: %s: missing, empty or larger than %ld bytes\n",
                lg->a.payloads, LG_FILE_MAX);
        if (f)
            fclose(f);
        return -EINVAL;
    }
    size_t size = (size_t)st.st_size, lines = 0;
    lg->file = malloc(size + 1);
    int rc = lg->file && fread(lg->file, 1, size, f) == size ? 0 : -EIO;
    fclose(f);
    if (rc != 0)
        return rc;
    lg->file[size] = '\n';
    for (size_t i = 0; i <= size; i++)
        lines += lg->file[i] == '\n';
    if (lines > (size_t)LG_LINES_MAX || !(lg->p = calloc(lines, sizeof *lg->p)))
        return SB_ELIMIT;
    for (char *s = lg->file, *e = lg->file + size; s < e && rc == 0;) {
        char *nl = memchr(s, '\n', (size_t)(e - s) + 1);
        *nl = '\0';
        if (nl > s) {
            rc = split_line(s, (size_t)(nl - s), &lg->p[lg->np]);
            if (rc == 0 && lg->p[lg->np].body_len > lg->body_max)
                lg->body_max = lg->p[lg->np].body_len;
            if (rc != 0)
                fprintf(stderr, "sabia-loadgen: %s: line %zu is not <signature>\\t<body>\n",
                        lg->a.payloads, lg->np + 1);
            lg->np++;
        }
        s = nl + 1;
    }
    if (rc == 0 && lg->np == 0) {
        fprintf(stderr, "sabia-loadgen: %s has no requests\n", lg->a.payloads);
        rc = -EINVAL;
    }
    return rc;
}

/* ---------------------------------------------------------------- connections */

static void conn_close(struct loadgen *lg, struct conn *c, int64_t now)
{
    if (c->fd >= 0) {
        epoll_ctl(lg->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = CONN_DOWN;
    c->backoff = c->backoff ? c->backoff : LG_RETRY_NS;
    c->retry_at = now + c->backoff;
    c->backoff = c->backoff * 2 < LG_RETRY_MAX_NS ? c->backoff * 2 : LG_RETRY_MAX_NS;
}

static int conn_open(struct loadgen *lg, struct conn *c, int index)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = (uint32_t)index};
    if (epoll_ctl(lg->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        return -errno;
    c->in_len = 0;
    c->state = CONN_CONNECTING;
    if (connect(c->fd, (const struct sockaddr *)&lg->addr, sizeof lg->addr) != 0 &&
        errno != EINPROGRESS)
        return -errno;
    return 0;
}

/* Counts an answer (or a failure: status 0) for a request that started at start_ns. */
static void record(struct loadgen *lg, int status, int64_t start_ns, int64_t now)
{
    bool good = status >= 200 && status < 300;
    lg->total_ok += good;
    int64_t sec = (start_ns - lg->t0) / NS;
    if (good && sec >= 0 && sec <= lg->a.warmup + lg->a.seconds) {
        struct lg_second *s = &lg->seconds[sec];
        s->n++;
        s->sum_ns += now - start_ns;
        if (now - start_ns > s->max_ns)
            s->max_ns = now - start_ns;
    }
    bool counted = lg->a.max ? (now >= lg->warm_end && now <= lg->end)
                             : (start_ns >= lg->warm_end && start_ns < lg->end);
    if (!counted)
        return;
    if (good) {
        lg->ok++;
        hist_add(&lg->hist, now - start_ns);
    } else {
        lg->errors++;
    }
}

/* Keeps the first failure for the report: the answer's body when there is one. */
static void note_error(struct loadgen *lg, int status, const char *body, size_t n)
{
    if (lg->first_status != 0)
        return;
    const char *head_end = body ? memmem(body, n, "\r\n\r\n", 4) : NULL;
    if (head_end && head_end + 4 < body + n) {
        n -= (size_t)(head_end + 4 - body);
        body = head_end + 4;
    }
    lg->first_status = status ? status : -1;
    snprintf(lg->first_error, sizeof lg->first_error, "%.*s",
             (int)(n < LG_ERRMSG_MAX ? n : LG_ERRMSG_MAX), body ? body : "");
}

/* A request in flight failed at the transport level: count it, reconnect later. */
static void conn_fail(struct loadgen *lg, struct conn *c, int64_t now, const char *why)
{
    if (c->state == CONN_SENDING || c->state == CONN_READING) {
        record(lg, 0, c->start_ns, now);
        note_error(lg, 0, why, strlen(why));
    }
    conn_close(lg, c, now);
}

/* Formats the next payload as a request into c->out. */
static void conn_prepare(struct loadgen *lg, struct conn *c)
{
    c->out_off = 0;
    c->in_len = 0;
    if (lg->a.get) {
        int n = snprintf(c->out, LG_HEAD_MAX, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
                         lg->a.path, lg->a.port);
        c->out_len = (size_t)n;
        return;
    }
    const struct payload *p = &lg->p[lg->next_p++];
    if (lg->next_p == lg->np) {
        lg->next_p = 0;
        lg->wrapped = true;
    }
    int n = snprintf(c->out, LG_HEAD_MAX,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                     "X-Hub-Signature-256: %s\r\nContent-Length: %zu\r\n\r\n",
                     lg->a.path, lg->a.port, p->sig, p->body_len);
    /* n < LG_HEAD_MAX: path and signature lengths are capped below it. */
    memcpy(c->out + n, p->body, p->body_len);
    c->out_len = (size_t)n + p->body_len;
}

/* Writes what it can; moves to CONN_READING when the request is out. */
static void conn_write(struct loadgen *lg, struct conn *c, int64_t now)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* EPOLLOUT will come */
        if (w <= 0) {
            conn_fail(lg, c, now, strerror(errno));
            return;
        }
        c->out_off += (size_t)w;
    }
    c->state = CONN_READING;
}

static void conn_send(struct loadgen *lg, struct conn *c, int64_t start_ns, int64_t now)
{
    conn_prepare(lg, c);
    c->start_ns = start_ns;
    c->state = CONN_SENDING;
    conn_write(lg, c, now);
}

/* ---------------------------------------------------------------- responses */

/* Parses the answer in buf[0..len). Returns 1 when complete (status, size of
 * the whole answer and whether the server will close are set), 0 when more
 * bytes are needed, SB_EPARSE when it is not an answer we understand. */
static int parse_response(const char *buf, size_t len, int *status, size_t *total, bool *closing)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end)
        return len >= LG_RESP_MAX ? SB_EPARSE : 0;
    if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
        return SB_EPARSE;
    int code = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return SB_EPARSE;
        code = code * 10 + (buf[i] - '0');
    }
    long clen = -1;
    *closing = false;
    const char *first_nl = memchr(buf, '\n', (size_t)(end - buf));
    for (const char *line = first_nl ? first_nl + 1 : end; line < end;) {
        const char *eol = memchr(line, '\r', (size_t)(end - line) + 1);
        size_t n = (size_t)(eol - line);
        if (n > 15 && strncasecmp(line, "content-length:", 15) == 0) {
            char num[24];
            snprintf(num, sizeof num, "%.*s", (int)(n - 15 < 23 ? n - 15 : 23), line + 15);
            const char *s = num + strspn(num, " \t");
            if (sb_parse_long(s, 0, LG_RESP_MAX, &clen) != 0)
                return SB_EPARSE;
        } else if (n > 11 && strncasecmp(line, "connection:", 11) == 0) {
            *closing = memmem(line, n, "close", 5) != NULL;
        }
        line = eol + 2;
    }
    if (clen < 0)
        return SB_EPARSE; /* the gateway always sends Content-Length */
    size_t need = (size_t)(end + 4 - buf) + (size_t)clen;
    if (need > LG_RESP_MAX)
        return SB_EPARSE;
    if (len < need)
        return 0;
    *status = code;
    *total = need;
    return 1;
}

static void on_answer(struct loadgen *lg, struct conn *c, int status, int64_t now);

/* Reads until EAGAIN (edge-triggered), handling a complete answer. */
static void conn_read(struct loadgen *lg, struct conn *c, int64_t now)
{
    for (;;) {
        if (c->in_len >= LG_RESP_MAX) {
            conn_fail(lg, c, now, "answer larger than the limit");
            return;
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, LG_RESP_MAX - c->in_len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            conn_fail(lg, c, now, r == 0 ? "connection closed by the server" : strerror(errno));
            return;
        }
        if (c->state != CONN_READING) {
            conn_fail(lg, c, now, "unexpected bytes from the server");
            return;
        }
        c->in_len += (size_t)r;
        int status = 0;
        size_t total = 0;
        bool closing = false;
        int rc = parse_response(c->in, c->in_len, &status, &total, &closing);
        if (rc < 0) {
            conn_fail(lg, c, now, "malformed answer");
            return;
        }
        if (rc == 1) {
            if (status < 200 || status >= 300)
                note_error(lg, status, c->in, c->in_len);
            if (closing) {
                record(lg, status, c->start_ns, now);
                conn_close(lg, c, now);
                return;
            }
            on_answer(lg, c, status, now);
            return;
        }
    }
}

/* ---------------------------------------------------------------- the loop */

static void make_idle(struct loadgen *lg, struct conn *c)
{
    c->state = CONN_IDLE;
    if (!lg->a.max && !c->queued) {
        c->queued = true;
        lg->idle[lg->nidle++] = (int)(c - lg->conns);
    }
}

static void on_answer(struct loadgen *lg, struct conn *c, int status, int64_t now)
{
    record(lg, status, c->start_ns, now);
    if (lg->a.max && now < lg->end)
        conn_send(lg, c, now, now);
    else if (lg->a.max)
        c->state = CONN_IDLE;
    else
        make_idle(lg, c);
}

static int64_t due_at(const struct loadgen *lg, uint64_t k)
{
    return lg->t0 + (int64_t)((double)k * (double)NS / lg->a.rate);
}

/* Open loop: hands every request that is due to an idle connection. */
static void dispatch_due(struct loadgen *lg, int64_t now)
{
    while (lg->nidle > 0) {
        int64_t at = due_at(lg, lg->due);
        if (at > now || at >= lg->end)
            return;
        struct conn *c = &lg->conns[lg->idle[--lg->nidle]];
        c->queued = false;
        if (c->state != CONN_IDLE) /* closed while idle: back on the stack once reconnected */
            continue;
        lg->due++;
        conn_send(lg, c, at, now);
    }
}

static void on_event(struct loadgen *lg, struct conn *c, uint32_t events, int64_t now)
{
    if (c->state == CONN_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if ((events & (EPOLLERR | EPOLLHUP)) ||
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            note_error(lg, 0, "connect failed", 14);
            lg->connect_failures++;
            conn_close(lg, c, now);
            return;
        }
        if (!(events & EPOLLOUT))
            return;
        c->backoff = 0;
        lg->connected = true;
        if (lg->a.max && now < lg->end)
            conn_send(lg, c, now, now);
        else
            make_idle(lg, c);
        return;
    }
    if (c->state == CONN_SENDING && (events & EPOLLOUT))
        conn_write(lg, c, now);
    if (c->fd >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        conn_read(lg, c, now);
}

static void reconnect_due(struct loadgen *lg, int64_t now)
{
    for (int i = 0; i < lg->a.connections; i++) {
        struct conn *c = &lg->conns[i];
        if (c->state == CONN_DOWN && c->retry_at <= now && now < lg->hard_end &&
            conn_open(lg, c, i) != 0) {
            note_error(lg, 0, "socket/connect failed", 21);
            lg->connect_failures++;
            conn_close(lg, c, now);
        }
    }
}

/* Open loop: something due in the window is still unanswered. */
static bool outstanding(const struct loadgen *lg)
{
    if (due_at(lg, lg->due) < lg->end)
        return true;
    for (int i = 0; i < lg->a.connections; i++)
        if (lg->conns[i].state == CONN_SENDING || lg->conns[i].state == CONN_READING)
            return true;
    return false;
}

/* How long the loop may sleep: until the next due request, a reconnect,
 * or the end of a phase; never more than 50 ms. */
static int64_t sleep_ns(const struct loadgen *lg, int64_t now)
{
    int64_t until = now + 50 * MS;
    if (!lg->a.max && lg->nidle > 0 && due_at(lg, lg->due) < until)
        until = due_at(lg, lg->due);
    if (lg->end > now && lg->end < until)
        until = lg->end;
    for (int i = 0; i < lg->a.connections; i++)
        if (lg->conns[i].state == CONN_DOWN && lg->conns[i].retry_at < until)
            until = lg->conns[i].retry_at;
    return until > now ? until - now : 0;
}

static void wait_events(struct loadgen *lg, int64_t now)
{
    struct epoll_event ev[LG_EVENTS];
    int64_t ns = sleep_ns(lg, now);
    struct timespec ts = {.tv_sec = ns / NS, .tv_nsec = ns % NS};
    int n = epoll_pwait2(lg->epfd, ev, LG_EVENTS, &ts, NULL);
    if (n < 0 && errno == ENOSYS) /* kernels before 5.11 */
        n = epoll_wait(lg->epfd, ev, LG_EVENTS, (int)((ns + MS - 1) / MS));
    int64_t t = now_ns();
    for (int i = 0; i < n; i++)
        on_event(lg, &lg->conns[ev[i].data.u32], ev[i].events, t);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Runs until the window is over (closed loop) or every due request was
 * answered or the drain time ran out (open loop). */
static void run(struct loadgen *lg)
{
    lg->cpu0 = cpu_seconds();
    lg->t0 = now_ns();
    lg->warm_end = lg->t0 + lg->a.warmup * NS;
    lg->end = lg->warm_end + lg->a.seconds * NS;
    lg->hard_end = lg->end + (lg->a.max ? 0 : LG_DRAIN_NS);
    for (int64_t now = lg->t0; now < lg->hard_end; now = now_ns()) {
        if (!lg->a.max) {
            dispatch_due(lg, now);
            if (now >= lg->end && !outstanding(lg))
                break;
        }
        reconnect_due(lg, now);
        wait_events(lg, now);
    }
}

/* Open loop: due requests that never got an answer are errors. */
static void count_missing(struct loadgen *lg)
{
    if (lg->a.max)
        return;
    int64_t now = now_ns();
    for (int i = 0; i < lg->a.connections; i++) {
        struct conn *c = &lg->conns[i];
        if (c->state == CONN_SENDING || c->state == CONN_READING) {
            record(lg, 0, c->start_ns, now);
            note_error(lg, 0, "no answer before the drain time ran out", 39);
        }
    }
    for (uint64_t k = lg->due; due_at(lg, k) < lg->end; k++)
        record(lg, 0, due_at(lg, k), now);
}

static void report(const struct loadgen *lg)
{
    double secs = (double)lg->a.seconds;
    printf("{\"mode\":\"%s\",", lg->a.max ? "max" : "rate");
    if (!lg->a.max)
        printf("\"rate\":%.1f,", lg->a.rate);
    printf("\"connections\":%d,\"seconds\":%ld,\"requests\":%llu,\"ok\":%llu,\"errors\":%llu,"
           "\"rps\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
           "\"total_ok\":%llu,\"payloads_wrapped\":%s,\"connect_failures\":%llu,"
           "\"cpu_seconds\":%.2f,\"setup_cpu_seconds\":%.2f}\n",
           lg->a.connections, lg->a.seconds, (unsigned long long)(lg->ok + lg->errors),
           (unsigned long long)lg->ok, (unsigned long long)lg->errors, (double)lg->ok / secs,
           hist_quantile_ms(&lg->hist, 0.50), hist_quantile_ms(&lg->hist, 0.90),
           hist_quantile_ms(&lg->hist, 0.99), (double)lg->hist.max_us / 1000.0,
           (unsigned long long)lg->total_ok, lg->wrapped ? "true" : "false",
           (unsigned long long)lg->connect_failures, cpu_seconds() - lg->cpu0, lg->cpu0);
    fflush(stdout);
    if (lg->first_status)
        fprintf(stderr, "sabia-loadgen: first error: %s%d: %s\n",
                lg->first_status > 0 ? "HTTP " : "", lg->first_status > 0 ? lg->first_status : 0,
                lg->first_error);
    for (long s = 0; lg->a.timeline && s < lg->a.warmup + lg->a.seconds; s++) {
        const struct lg_second *t = &lg->seconds[s];
        fprintf(stderr, "sabia-loadgen: second %3ld%s: %7llu ok, mean %8.3f ms, max %8.3f ms\n", s,
                s < lg->a.warmup ? " (warm-up)" : "", (unsigned long long)t->n,
                t->n ? (double)t->sum_ns / (double)t->n / 1e6 : 0.0, (double)t->max_ns / 1e6);
    }
    if (lg->wrapped)
        fprintf(stderr, "sabia-loadgen: warning: the %zu payloads ran out and were sent again\n",
                lg->np);
}

static int setup(struct loadgen *lg)
{
    lg->epfd = epoll_create1(EPOLL_CLOEXEC);
    lg->conns = calloc((size_t)lg->a.connections, sizeof *lg->conns);
    lg->idle = calloc((size_t)lg->a.connections, sizeof *lg->idle);
    lg->seconds = calloc((size_t)(lg->a.warmup + lg->a.seconds + 1), sizeof *lg->seconds);
    if (lg->epfd < 0 || !lg->conns || !lg->idle || !lg->seconds)
        return -ENOMEM;
    lg->addr.sin_family = AF_INET;
    lg->addr.sin_port = htons((uint16_t)lg->a.port);
    lg->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < lg->a.connections; i++) {
        struct conn *c = &lg->conns[i];
        c->fd = -1;
        c->out = malloc(LG_HEAD_MAX + lg->body_max);
        c->in = malloc(LG_RESP_MAX);
        if (!c->out || !c->in)
            return -ENOMEM;
        if (conn_open(lg, c, i) != 0) {
            fprintf(stderr, "sabia-loadgen: cannot connect to 127.0.0.1:%d: %s\n", lg->a.port,
                    strerror(errno));
            return -ECONNREFUSED;
        }
    }
    return 0;
}

static void teardown(struct loadgen *lg)
{
    for (int i = 0; lg->conns && i < lg->a.connections; i++) {
        if (lg->conns[i].fd >= 0)
            close(lg->conns[i].fd);
        free(lg->conns[i].out);
        free(lg->conns[i].in);
    }
    if (lg->epfd >= 0)
        close(lg->epfd);
    free(lg->conns);
    free(lg->idle);
    free(lg->seconds);
    free(lg->p);
    free(lg->file);
}

int main(int argc, char **argv)
{
    struct loadgen *lg = calloc(1, sizeof *lg);
    if (!lg)
        return 1;
    lg->epfd = -1;
    int rc = parse_args(argc, argv, &lg->a);
    if (rc != 0) {
        free(lg);
        return rc;
    }
    rc = lg->a.get ? 0 : load_payloads(lg);
    if (rc == 0)
        rc = setup(lg);
    if (rc == 0) {
        run(lg);
        count_missing(lg);
        report(lg);
        if (!lg->connected) {
            fprintf(stderr, "sabia-loadgen: could not connect to 127.0.0.1:%d\n", lg->a.port);
            rc = -ECONNREFUSED;
        }
    } else if (rc != -ECONNREFUSED) {
        fprintf(stderr, "sabia-loadgen: cannot start: %s\n", sb_strerror(rc));
    }
    teardown(lg);
    free(lg);
    return rc == 0 ? 0 : 1;
}
