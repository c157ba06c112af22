/* llm_engine.c - sabia-llm-engine: the ceiling of the LLM concurrency
 * benchmark (bench/llm.sh, DESIGN.md §6).
 *
 * Drives the libs/llm engine alone, without the processor around it: keeps
 * --in-flight calls running against an OpenAI-compatible server (the fake LLM
 * with its 1 s latency), closed loop: every completion submits the next call
 * from the engine's own callback. Only completions within the --seconds
 * window after --warmup count. What it measures is what the engine plus the
 * fake can do on this machine, so that the processor's figure can be read
 * against it: if this is below the Little's-law bound, neither the processor
 * nor anything else using the engine can reach it here.
 *
 * Prints one JSON line on stdout:
 *   {"in_flight_target":2000,"seconds":10,"completed":…,"errors":…,"rps":…,
 *    "avg_in_flight":…,"bound_rps":…,"mean_ms":…,"p50_ms":…,"p99_ms":…,
 *    "max_ms":…,"first_error":"…","cpu_seconds":…,"peak_rss_kb":…}
 *
 * bound_rps is avg_in_flight divided by the mean latency (Little's law);
 * latencies (submit to completion, as the engine reports them) are counted
 * in buckets of ENG_BUCKET_MS, so p50/p99 are the buckets' upper bounds. */
#include "llm.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define ENG_IN_FLIGHT_MAX 20000  /* --in-flight */
#define ENG_SECONDS_MAX   600    /* --seconds and --warmup */
#define ENG_URL_MAX       1024   /* --url characters */
#define ENG_BUCKET_MS     5      /* latency histogram resolution */
#define ENG_BUCKETS       12000  /* 60 s of buckets; slower calls land in the last */
#define ENG_SAMPLE_MS     100    /* in-flight sampling period */
#define ENG_ERRMSG_MAX    200    /* bytes of the first error message kept */

struct eng_args {
    const char *url;
    long in_flight, seconds, warmup;
};

struct eng {
    struct llm *llm;
    struct llm_request req;
    struct llm_message msg;
    atomic_bool counting, stopping;
    atomic_long completed, errors, submitted_total, done_total;
    pthread_mutex_t mu;              /* guards the latency figures and first_error */
    long buckets[ENG_BUCKETS];
    long long latency_sum_ms;
    long latency_max_ms;
    char first_error[ENG_ERRMSG_MAX];
};

static int usage(const char *why)
{
    fprintf(stderr,
            "sabia-llm-engine: %s\n"
            "usage: sabia-llm-engine --url http://127.0.0.1:PORT/v1 [--in-flight 2000] "
            "[--seconds 10] [--warmup 3]\n",
            why);
    return 2;
}

static int parse_args(int argc, char **argv, struct eng_args *a)
{
    *a = (struct eng_args){.in_flight = 2000, .seconds = 10, .warmup = 3};
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            return usage("every option takes a value");
        const char *o = argv[i], *v = argv[i + 1];
        int rc = 0;
        if (strcmp(o, "--url") == 0)
            a->url = strlen(v) <= ENG_URL_MAX ? v : NULL;
        else if (strcmp(o, "--in-flight") == 0)
            rc = sb_parse_long(v, 1, ENG_IN_FLIGHT_MAX, &a->in_flight);
        else if (strcmp(o, "--seconds") == 0)
            rc = sb_parse_long(v, 1, ENG_SECONDS_MAX, &a->seconds);
        else if (strcmp(o, "--warmup") == 0)
            rc = sb_parse_long(v, 0, ENG_SECONDS_MAX, &a->warmup);
        else
            return usage("unknown option");
        if (rc != 0)
            return usage("a number is out of range");
    }
    return a->url ? 0 : usage("--url is required (at most 1024 characters)");
}

static void on_done(const struct llm_result *res, void *arg);

/* Submits one call; counts it as done at once when the engine refuses it. */
static void submit_one(struct eng *e)
{
    atomic_fetch_add(&e->submitted_total, 1);
    int rc = llm_submit(e->llm, &e->req, on_done, e);
    if (rc != 0) {
        atomic_fetch_add(&e->done_total, 1);
        if (rc != SB_ESHUTDOWN)
            atomic_fetch_add(&e->errors, 1);
    }
}

static void record(struct eng *e, const struct llm_result *res)
{
    long ms = res->latency_ms < 0 ? 0 : res->latency_ms;
    long b = ms / ENG_BUCKET_MS;
    pthread_mutex_lock(&e->mu);
    e->buckets[b < ENG_BUCKETS ? b : ENG_BUCKETS - 1]++;
    e->latency_sum_ms += ms;
    if (ms > e->latency_max_ms)
        e->latency_max_ms = ms;
    pthread_mutex_unlock(&e->mu);
}

/* On the engine thread: count, then keep the loop closed. */
static void on_done(const struct llm_result *res, void *arg)
{
    struct eng *e = arg;
    atomic_fetch_add(&e->done_total, 1);
    if (res->error == LLM_ERR_SHUTDOWN)
        return;
    if (atomic_load(&e->counting)) {
        if (res->error == LLM_OK) {
            atomic_fetch_add(&e->completed, 1);
            record(e, res);
        } else {
            atomic_fetch_add(&e->errors, 1);
            pthread_mutex_lock(&e->mu);
            if (!e->first_error[0])
                snprintf(e->first_error, sizeof e->first_error, "%s: %s",
                         llm_error_name(res->error), res->error_message);
            pthread_mutex_unlock(&e->mu);
        }
    }
    if (!atomic_load(&e->stopping))
        submit_one(e);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* p in (0, 1]: the upper bound of the bucket holding that fraction. */
static long percentile_ms(const struct eng *e, long total, double p)
{
    long want = (long)(p * (double)total + 0.999999), seen = 0;
    for (long i = 0; i < ENG_BUCKETS; i++) {
        seen += e->buckets[i];
        if (seen >= want && want > 0)
            return (i + 1) * ENG_BUCKET_MS;
    }
    return 0;
}

static double cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec +
           ((double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_usec) / 1e6;
}

/* The measured window: samples the calls in flight (submitted, not done). */
static double measure(struct eng *e, const struct eng_args *a, double *cpu)
{
    double sum = 0;
    long n = 0;
    double cpu0 = cpu_seconds();
    atomic_store(&e->counting, true);
    int64_t end = sb_mono_ms() + a->seconds * 1000;
    while (sb_mono_ms() < end) {
        sleep_ms(ENG_SAMPLE_MS);
        sum += (double)(atomic_load(&e->submitted_total) - atomic_load(&e->done_total));
        n++;
    }
    atomic_store(&e->counting, false);
    *cpu = cpu_seconds() - cpu0;
    return n ? sum / (double)n : 0;
}

static void report(struct eng *e, const struct eng_args *a, double avg_in_flight, double cpu)
{
    long done = atomic_load(&e->completed);
    double mean = done ? (double)e->latency_sum_ms / (double)done : 0;
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    char err[2 * ENG_ERRMSG_MAX];
    size_t k = 0;
    for (const char *s = e->first_error; *s && k + 2 < sizeof err; s++) {
        if (*s == '"' || *s == '\\')
            err[k++] = '\\';
        err[k++] = (*s >= 0 && *s < ' ') ? ' ' : *s;
    }
    err[k] = '\0';
    printf("{\"in_flight_target\":%ld,\"seconds\":%ld,\"completed\":%ld,\"errors\":%ld,"
           "\"rps\":%.1f,\"avg_in_flight\":%.1f,\"bound_rps\":%.1f,\"mean_ms\":%.1f,"
           "\"p50_ms\":%ld,\"p99_ms\":%ld,\"max_ms\":%ld,\"first_error\":\"%s\","
           "\"cpu_seconds\":%.2f,\"peak_rss_kb\":%ld}\n",
           a->in_flight, a->seconds, done, atomic_load(&e->errors),
           (double)done / (double)a->seconds, avg_in_flight,
           mean > 0 ? avg_in_flight / (mean / 1000.0) : 0, mean, percentile_ms(e, done, 0.5),
           percentile_ms(e, done, 0.99), e->latency_max_ms, err, cpu, u.ru_maxrss);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct eng_args a;
    if (parse_args(argc, argv, &a) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    struct eng *e = calloc(1, sizeof *e);
    struct llm_config cfg = {.max_in_flight = (int)a.in_flight, .default_timeout_ms = 60000};
    if (!e || !(e->llm = llm_new(&cfg))) {
        fprintf(stderr, "sabia-llm-engine: cannot start the engine\n");
        free(e);
        return 1;
    }
    pthread_mutex_init(&e->mu, NULL);
    e->msg = (struct llm_message){"user", "Hello, when does my order ship?"};
    e->req = (struct llm_request){.provider = LLM_OPENAI_COMPATIBLE, .base_url = a.url,
                                  .model = "fake", .system = "You are a helpful assistant.",
                                  .messages = &e->msg, .nmessages = 1, .temperature = -1,
                                  .max_tokens = 256};
    for (long i = 0; i < a.in_flight; i++)
        submit_one(e);
    sleep_ms(a.warmup * 1000);
    double cpu = 0;
    double avg = measure(e, &a, &cpu);
    atomic_store(&e->stopping, true);
    llm_free(e->llm); /* the calls still running complete with LLM_ERR_SHUTDOWN */
    report(e, &a, avg, cpu);
    pthread_mutex_destroy(&e->mu);
    free(e);
    return 0;
}
