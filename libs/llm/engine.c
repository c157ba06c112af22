/* engine.c - the engine thread: one curl multi handle driven through the
 * socket API on an epoll loop (so the cost per wake-up follows the sockets
 * that are ready, not the thousands that are waiting), a thread-safe inbox
 * woken by an eventfd, a FIFO of calls waiting for a transfer slot and a
 * min-heap of calls waiting to retry. */
#include "internal.h"
#include "metrics.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define EPOLL_BATCH 512
#define MAX_WAIT_MS 1000 /* the loop wakes at least this often */

/* ---------------------------------------------------------------- curl callbacks */

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    struct llm *l = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, s, NULL); /* may already be closed */
        curl_multi_assign(l->multi, s, NULL);
        return 0;
    }
    struct epoll_event ev = {.events = 0, .data.fd = s};
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev.events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev.events |= EPOLLOUT;
    int op = socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(l->epfd, op, s, &ev) != 0) {
        op = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if (epoll_ctl(l->epfd, op, s, &ev) != 0)
            return -1; /* curl fails the transfer */
    }
    curl_multi_assign(l->multi, s, l); /* any non-NULL marks "registered" */
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct llm *l = userp;
    l->curl_due_ms = timeout_ms < 0 ? -1 : sb_mono_ms() + timeout_ms;
    return 0;
}

/* ---------------------------------------------------------------- queues */

static void fifo_push(struct llm *l, struct call *c, bool front)
{
    c->next = NULL;
    if (!l->fifo_head) {
        l->fifo_head = l->fifo_tail = c;
    } else if (front) {
        c->next = l->fifo_head;
        l->fifo_head = c;
    } else {
        l->fifo_tail->next = c;
        l->fifo_tail = c;
    }
}

static struct call *fifo_pop(struct llm *l)
{
    struct call *c = l->fifo_head;
    if (c) {
        l->fifo_head = c->next;
        if (!l->fifo_head)
            l->fifo_tail = NULL;
        c->next = NULL;
    }
    return c;
}

static void heap_swap(struct llm *l, size_t a, size_t b)
{
    struct call *t = l->heap[a];
    l->heap[a] = l->heap[b];
    l->heap[b] = t;
}

int engine_heap_push(struct llm *l, struct call *c)
{
    if (l->heap_len == l->heap_cap) {
        size_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
        struct call **h = realloc(l->heap, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        l->heap = h;
        l->heap_cap = cap;
    }
    size_t i = l->heap_len++;
    l->heap[i] = c;
    while (i > 0 && l->heap[(i - 1) / 2]->due_ms > l->heap[i]->due_ms) {
        heap_swap(l, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return 0;
}

static struct call *heap_pop(struct llm *l)
{
    if (l->heap_len == 0)
        return NULL;
    struct call *top = l->heap[0];
    l->heap[0] = l->heap[--l->heap_len];
    size_t i = 0;
    for (;;) {
        size_t a = 2 * i + 1, b = a + 1, m = i;
        if (a < l->heap_len && l->heap[a]->due_ms < l->heap[m]->due_ms)
            m = a;
        if (b < l->heap_len && l->heap[b]->due_ms < l->heap[m]->due_ms)
            m = b;
        if (m == i)
            break;
        heap_swap(l, i, m);
        i = m;
    }
    return top;
}

static void active_link(struct llm *l, struct call *c)
{
    c->prev_active = NULL;
    c->next_active = l->active;
    if (l->active)
        l->active->prev_active = c;
    l->active = c;
    l->running++;
}

static void active_unlink(struct llm *l, struct call *c)
{
    if (c->prev_active)
        c->prev_active->next_active = c->next_active;
    else
        l->active = c->next_active;
    if (c->next_active)
        c->next_active->prev_active = c->prev_active;
    c->prev_active = c->next_active = NULL;
    l->running--;
}

/* ---------------------------------------------------------------- the loop */

/* Moves submissions to the FIFO. Returns true once shutdown was asked for. */
static bool take_inbox(struct llm *l)
{
    pthread_mutex_lock(&l->mu);
    struct call *c = l->inbox_head;
    l->inbox_head = l->inbox_tail = NULL;
    bool stop = l->stopping;
    pthread_mutex_unlock(&l->mu);
    while (c) {
        struct call *next = c->next;
        fifo_push(l, c, false);
        c = next;
    }
    return stop;
}

static void start_call(struct llm *l, struct call *c, int64_t now)
{
    if (now >= c->deadline_ms) {
        engine_complete(l, c, LLM_ERR_TIMEOUT,
                        c->attempts ? "timed out" : "timed out waiting for a transfer slot");
        return;
    }
    if (!c->breaker && c->attempts == 0)
        c->breaker = breaker_for(l, c->endpoint, c->provider);
    if (!breaker_allow(l, c, now)) {
        engine_complete(l, c, LLM_ERR_CIRCUIT_OPEN, "circuit open");
        return;
    }
    if (call_start_attempt(c, now) != 0 || curl_multi_add_handle(l->multi, c->easy) != CURLM_OK) {
        engine_complete(l, c, LLM_ERR_NETWORK, "cannot start a transfer");
        return;
    }
    active_link(l, c);
}

static void start_ready(struct llm *l)
{
    int64_t now = sb_mono_ms();
    while (l->heap_len && l->heap[0]->due_ms <= now)
        fifo_push(l, heap_pop(l), true); /* retries go before new calls */
    struct call *c;
    while (l->running < l->cfg.max_in_flight && (c = fifo_pop(l)))
        start_call(l, c, now);
}

static void collect_done(struct llm *l)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(l->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result; /* msg is invalid after the removal */
        void *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        struct call *c = priv;
        curl_multi_remove_handle(l->multi, easy);
        active_unlink(l, c);
        engine_attempt_done(l, c, code);
    }
}

static int next_wait_ms(struct llm *l)
{
    int64_t now = sb_mono_ms(), wait = MAX_WAIT_MS;
    if (l->curl_due_ms >= 0 && l->curl_due_ms - now < wait)
        wait = l->curl_due_ms - now;
    if (l->heap_len && l->heap[0]->due_ms - now < wait)
        wait = l->heap[0]->due_ms - now;
    return wait < 0 ? 0 : (int)wait;
}

static void handle_events(struct llm *l, const struct epoll_event *ev, int n)
{
    int still;
    for (int i = 0; i < n; i++) {
        if (ev[i].data.fd == l->wake_fd) {
            uint64_t v;
            (void)!read(l->wake_fd, &v, sizeof v);
            continue;
        }
        int flags = 0;
        if (ev[i].events & (EPOLLIN | EPOLLHUP))
            flags |= CURL_CSELECT_IN;
        if (ev[i].events & EPOLLOUT)
            flags |= CURL_CSELECT_OUT;
        if (ev[i].events & EPOLLERR)
            flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(l->multi, ev[i].data.fd, flags, &still);
    }
    if (l->curl_due_ms >= 0 && sb_mono_ms() >= l->curl_due_ms) {
        l->curl_due_ms = -1;
        curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &still);
    }
}

/* Every call still owned by the engine completes with LLM_ERR_SHUTDOWN. */
static void fail_everything(struct llm *l)
{
    while (l->active) {
        struct call *c = l->active;
        curl_multi_remove_handle(l->multi, c->easy);
        active_unlink(l, c);
        engine_complete(l, c, LLM_ERR_SHUTDOWN, "engine shutting down");
    }
    struct call *c;
    while ((c = heap_pop(l)))
        engine_complete(l, c, LLM_ERR_SHUTDOWN, "engine shutting down");
    while ((c = fifo_pop(l)))
        engine_complete(l, c, LLM_ERR_SHUTDOWN, "engine shutting down");
}

static void *engine_main(void *arg)
{
    struct llm *l = arg;
    struct epoll_event ev[EPOLL_BATCH];
    while (!take_inbox(l)) {
        start_ready(l);
        int n = epoll_wait(l->epfd, ev, EPOLL_BATCH, next_wait_ms(l));
        handle_events(l, ev, n > 0 ? n : 0);
        collect_done(l);
    }
    fail_everything(l);
    return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

static int apply_defaults(struct llm_config *c)
{
    if (c->max_in_flight == 0)
        c->max_in_flight = 4096;
    if (c->default_timeout_ms == 0)
        c->default_timeout_ms = 60000;
    if (c->max_retries == 0)
        c->max_retries = 2;
    else if (c->max_retries == -1)
        c->max_retries = 0;
    if (c->breaker_failures == 0)
        c->breaker_failures = 5;
    if (c->breaker_cooldown_ms == 0)
        c->breaker_cooldown_ms = 30000;
    if (c->max_in_flight < 0 || c->max_in_flight > LLM_MAX_IN_FLIGHT_LIMIT ||
        c->default_timeout_ms < 0 || c->max_retries < 0 || c->max_retries > LLM_MAX_RETRIES_LIMIT ||
        c->breaker_failures < 0 || c->breaker_cooldown_ms < 0)
        return -EINVAL;
    return 0;
}

static void register_metrics(struct llm *l)
{
    struct metrics *m = l->cfg.metrics;
    static const double BUCKETS[] = {0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120};
    if (!m)
        return;
    l->m_requests = metrics_counter(m, "llm_requests_total", "LLM calls completed, by result.",
                                    "provider,result");
    l->m_seconds =
        metrics_histogram(m, "llm_request_seconds", "LLM call duration, retries included.",
                          "provider", BUCKETS, sizeof BUCKETS / sizeof BUCKETS[0]);
    l->m_tokens = metrics_counter(m, "llm_tokens_total", "Tokens reported by LLM providers.",
                                  "provider,direction");
    l->m_circuit = metrics_gauge(m, "llm_circuit_state",
                                 "Circuit per LLM endpoint: 0 closed, 1 open, 2 half-open.",
                                 "provider,endpoint");
    struct metric *g =
        metrics_gauge(m, "llm_in_flight", "LLM calls accepted, not yet completed.", NULL);
    l->m_in_flight = metric_series_get(g, NULL);
}

static int setup_loop(struct llm *l)
{
    l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->multi = curl_multi_init();
    if (l->wake_fd < 0 || l->epfd < 0 || !l->multi)
        return -ENOMEM;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l->wake_fd};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &ev) != 0)
        return -errno;
    long conns = l->cfg.max_in_flight;
    CURLMcode rc = curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    if (rc == CURLM_OK)
        rc = curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    if (rc == CURLM_OK)
        rc = curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    if (rc == CURLM_OK)
        rc = curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    /* Every call may need its own connection to one host (HTTP/1.1), and
     * they all stay in the cache for reuse. */
    if (rc == CURLM_OK)
        rc = curl_multi_setopt(l->multi, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
    if (rc == CURLM_OK)
        rc = curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, conns);
    return rc == CURLM_OK ? 0 : -EINVAL;
}

static void destroy(struct llm *l)
{
    if (l->multi)
        curl_multi_cleanup(l->multi);
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wake_fd >= 0)
        close(l->wake_fd);
    breaker_free_all(l);
    free(l->heap);
    pthread_mutex_destroy(&l->mu);
    free(l);
    curl_global_cleanup();
}

struct llm *llm_new(const struct llm_config *cfg)
{
    struct llm_config c = *cfg;
    if (apply_defaults(&c) != 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    struct llm *l = calloc(1, sizeof *l);
    if (!l) {
        curl_global_cleanup();
        return NULL;
    }
    l->cfg = c;
    l->wake_fd = l->epfd = -1;
    l->curl_due_ms = -1;
    l->rng = ((uint64_t)sb_now_ms() * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)l) | 1;
    atomic_init(&l->pending, 0);
    pthread_mutex_init(&l->mu, NULL);
    register_metrics(l);
    if (setup_loop(l) != 0 || pthread_create(&l->thread, NULL, engine_main, l) != 0) {
        destroy(l);
        return NULL;
    }
    pthread_setname_np(l->thread, "sabia-llm");
    return l;
}

static void wake(struct llm *l)
{
    uint64_t one = 1;
    (void)!write(l->wake_fd, &one, sizeof one);
}

void llm_free(struct llm *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stopping = true;
    pthread_mutex_unlock(&l->mu);
    wake(l);
    pthread_join(l->thread, NULL);
    destroy(l);
}

int llm_submit(struct llm *l, const struct llm_request *req, llm_done_fn done, void *arg)
{
    if (!l || !req || !done)
        return -EINVAL;
    struct call *c;
    int rc = call_new(req, &c);
    if (rc != 0)
        return rc;
    c->done = done;
    c->arg = arg;
    c->submitted_ms = sb_mono_ms();
    c->deadline_ms = c->submitted_ms + (c->timeout_ms ? c->timeout_ms : l->cfg.default_timeout_ms);
    pthread_mutex_lock(&l->mu);
    if (l->stopping) {
        pthread_mutex_unlock(&l->mu);
        call_free(c);
        return SB_ESHUTDOWN;
    }
    if (l->inbox_tail)
        l->inbox_tail->next = c;
    else
        l->inbox_head = c;
    l->inbox_tail = c;
    size_t n = atomic_fetch_add(&l->pending, 1) + 1;
    metric_series_set(l->m_in_flight, (double)n);
    wake(l); /* under the lock: once llm_free() may run, `l` is not touched again */
    pthread_mutex_unlock(&l->mu);
    return 0;
}

size_t llm_pending(const struct llm *l)
{
    return atomic_load(&l->pending);
}
