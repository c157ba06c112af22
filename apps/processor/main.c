/* sabia-processor - turns accepted events into conversations and replies.
 * main.c only wires configuration, libraries and the parts (processor.h). */
#include "processor.h"
#include "spend.h"

#include "llm.h"

#include <curl/curl.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

static const struct sb_config_spec SETTINGS[] = {
    {"SABIA_MASTER_KEY", SB_CONFIG_STRING, NULL, 0, 0, true,
     "64 hex characters; decrypts channel tokens and provider keys"},
    {"SABIA_EVENTS_STREAM", SB_CONFIG_STRING, "sabia:events:inbound", 0, 0, false,
     "the gateway's stream of wake-ups"},
    {"SABIA_DOMAIN_EVENTS_STREAM", SB_CONFIG_STRING, "sabia:events:domain", 0, 0, false,
     "where domain events are published for the public API"},
    {"SABIA_PROCESSOR_INBOUND_THREADS", SB_CONFIG_INT, "2", 1, 64, false, "event consumers"},
    {"SABIA_PROCESSOR_GENERATE_THREADS", SB_CONFIG_INT, "2", 1, 64, false,
     "threads preparing replies (checks, context, knowledge) in batches"},
    {"SABIA_PROCESSOR_SEND_THREADS", SB_CONFIG_INT, "4", 1, 64, false, "channel senders"},
    {"SABIA_PROCESSOR_COMPLETION_THREADS", SB_CONFIG_INT, "2", 1, 64, false,
     "threads storing the replies of finished model calls"},
    {"SABIA_PROCESSOR_RECLAIM_IDLE_MS", SB_CONFIG_INT, "60000", 1000, 3600000, false,
     "wake-ups pending this long are taken over from a stopped instance"},
    {"SABIA_SEND_MAX_ATTEMPTS", SB_CONFIG_INT, "6", 1, 50, false, "attempts per outbound message"},
    {"SABIA_GRAPH_BASE_URL", SB_CONFIG_STRING, "https://graph.facebook.com", 0, 0, false,
     "WhatsApp Cloud API host"},
    {"SABIA_INSTAGRAM_BASE_URL", SB_CONFIG_STRING, "https://graph.facebook.com", 0, 0, false,
     "Instagram Send API host (graph.instagram.com for Instagram Login apps)"},
    {"SABIA_GRAPH_VERSION", SB_CONFIG_STRING, "v21.0", 0, 0, false, "Graph API version"},
    {"SABIA_OPENAI_API_KEY", SB_CONFIG_STRING, "", 0, 0, true, "default OpenAI key"},
    {"SABIA_ANTHROPIC_API_KEY", SB_CONFIG_STRING, "", 0, 0, true, "default Anthropic key"},
    {"SABIA_OPENAI_BASE_URL", SB_CONFIG_STRING, "", 0, 0, false, "OpenAI base URL override"},
    {"SABIA_ANTHROPIC_BASE_URL", SB_CONFIG_STRING, "", 0, 0, false, "Anthropic base URL override"},
    {"SABIA_LLM_BASE_URL", SB_CONFIG_STRING, "", 0, 0, false,
     "OpenAI-compatible server (Ollama, vLLM, llama.cpp) for openai_compatible assistants"},
    {"SABIA_OPENAI_MODEL", SB_CONFIG_STRING, "gpt-4o-mini", 0, 0, false, "default OpenAI model"},
    {"SABIA_ANTHROPIC_MODEL", SB_CONFIG_STRING, "claude-sonnet-4-5", 0, 0, false,
     "default Anthropic model"},
    {"SABIA_LLM_MAX_IN_FLIGHT", SB_CONFIG_INT, "4096", 1, 100000, false, "model calls at once"},
    {"SABIA_LLM_PRICE_INPUT", SB_CONFIG_INT, "2500000", 0, PROC_PRICE_MAX, false,
     "model price for input tokens, micro-USD per million (an assistant's config may override)"},
    {"SABIA_LLM_PRICE_OUTPUT", SB_CONFIG_INT, "10000000", 0, PROC_PRICE_MAX, false,
     "model price for output tokens, micro-USD per million (an assistant's config may override)"},
    {"SABIA_LLM_TIMEOUT_MS", SB_CONFIG_INT, "60000", 1000, 600000, false, "one model call"},
    {"SABIA_LLM_BREAKER_FAILURES", SB_CONFIG_INT, "5", 1, 1000, false,
     "consecutive failed calls that open an endpoint's circuit"},
    {"SABIA_LLM_BREAKER_COOLDOWN_MS", SB_CONFIG_INT, "30000", 100, 3600000, false,
     "how long an open circuit waits before a trial call"},
};

/* The standard variables win over empty SABIA_ ones (DESIGN.md §5). */
static const char *key_or_env(const struct sb_config *cfg, const char *name, const char *env)
{
    const char *v = sb_config_str(cfg, name);
    const char *e = getenv(env);
    return *v ? v : e ? e : "";
}

static int processor_start(struct processor *p, struct service *svc)
{
    const struct sb_config *cfg = svc->cfg;
    int err = 0;
    p->svc = svc;
    snprintf(p->consumer, sizeof p->consumer, "processor-%ld-%ld", (long)gethostid(), (long)getpid());
    p->master = crypto_key_new(sb_config_str(cfg, "SABIA_MASTER_KEY"), &err);
    if (!p->master) {
        sb_log_error(svc->log, NULL, "config: SABIA_MASTER_KEY must be 64 hex characters");
        return SB_ECONFIG;
    }
    /* Stream readers each hold a connection while blocked: the inbound
     * consumers, and one reader each for generate, send and conversation
     * commands (their work is done by threads that do not block on Redis). */
    long blocking = 3 + sb_config_int(cfg, "SABIA_PROCESSOR_INBOUND_THREADS");
    if (blocking + 8 > 32 && blocking + 8 > sb_config_int(cfg, "SABIA_REDIS_POOL_SIZE")) {
        sb_log_error(svc->log, NULL,
                     "config: SABIA_REDIS_POOL_SIZE must be at least %ld for %ld worker threads",
                     blocking + 8, blocking);
        return SB_ECONFIG;
    }
    p->inbound_stream = sb_config_str(cfg, "SABIA_EVENTS_STREAM");
    p->graph_base_url = sb_config_str(cfg, "SABIA_GRAPH_BASE_URL");
    p->instagram_base_url = sb_config_str(cfg, "SABIA_INSTAGRAM_BASE_URL");
    p->graph_version = sb_config_str(cfg, "SABIA_GRAPH_VERSION");
    p->send_max_attempts = sb_config_int(cfg, "SABIA_SEND_MAX_ATTEMPTS");
    p->openai_key = key_or_env(cfg, "SABIA_OPENAI_API_KEY", "OPENAI_API_KEY");
    p->anthropic_key = key_or_env(cfg, "SABIA_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY");
    p->openai_base = sb_config_str(cfg, "SABIA_OPENAI_BASE_URL");
    p->anthropic_base = sb_config_str(cfg, "SABIA_ANTHROPIC_BASE_URL");
    p->compatible_base = sb_config_str(cfg, "SABIA_LLM_BASE_URL");
    p->default_model_openai = sb_config_str(cfg, "SABIA_OPENAI_MODEL");
    p->default_model_anthropic = sb_config_str(cfg, "SABIA_ANTHROPIC_MODEL");
    p->m_replies = metrics_counter(svc->metrics, "processor_replies_total",
                                   "Reply generations by provider and result.", "provider,result");
    p->m_sends = metrics_counter(svc->metrics, "processor_sends_total",
                                 "Outbound sends by channel and result.", "channel,result");
    static const double batch_buckets[] = {1, 2, 4, 8, 16, 32, 64};
    p->m_batch = metrics_histogram(svc->metrics, "processor_batch_size",
                                   "Items per transaction of a batched stage: finish (replies "
                                   "stored), claim and record (messages sent).",
                                   "stage", batch_buckets, sizeof batch_buckets / sizeof *batch_buckets);
    struct llm_config lc = {.max_in_flight = (int)sb_config_int(cfg, "SABIA_LLM_MAX_IN_FLIGHT"),
                            .default_timeout_ms = (int)sb_config_int(cfg, "SABIA_LLM_TIMEOUT_MS"),
                            .breaker_failures = (int)sb_config_int(cfg, "SABIA_LLM_BREAKER_FAILURES"),
                            .breaker_cooldown_ms =
                                (int)sb_config_int(cfg, "SABIA_LLM_BREAKER_COOLDOWN_MS"),
                            .log = svc->log, .metrics = svc->metrics};
    p->llm_max_in_flight = lc.max_in_flight;
    p->price_in = sb_config_int(cfg, "SABIA_LLM_PRICE_INPUT");
    p->price_out = sb_config_int(cfg, "SABIA_LLM_PRICE_OUTPUT");
    p->spend = spend_new();
    p->llm = llm_new(&lc);
    p->events = events_new(svc->bus, sb_config_str(cfg, "SABIA_DOMAIN_EVENTS_STREAM"), 1000000,
                           svc->metrics, svc->log);
    if (!p->llm || !p->events || !p->spend)
        return -ENOMEM;
    int rc = send_start(p);
    if (rc == 0)
        rc = generate_start(p);
    if (rc == 0)
        rc = handoff_start(p);
    if (rc == 0)
        rc = inbound_start(p);
    if (rc == 0 && !(p->schedule = schedule_start(p)))
        rc = -ENOMEM;
    return rc;
}

/* Upstream first: stop taking events, then replies, then sends. */
static void processor_stop(struct processor *p)
{
    schedule_stop(p->schedule);
    inbound_stop(p);
    handoff_stop(p);
    generate_stop(p); /* also frees the LLM engine */
    send_stop(p);
    spend_free(p->spend, p->svc->db); /* after the last reply was stored */
    llm_free(p->llm);
    events_free(p->events);
    crypto_key_free(p->master);
}

int main(void)
{
    static const struct service_def def = {
        .name = "processor",
        .port_var = "SABIA_PROCESSOR_PORT",
        .default_port = "3002",
        .extra = SETTINGS,
        .nextra = sizeof SETTINGS / sizeof SETTINGS[0],
        .redis_pool_min = 32,
    };
    /* Jobs are allocated on one thread and freed on another (stream handler,
     * LLM engine, completion, sender): with glibc's default of an arena per
     * thread, memory freed into one arena is not reused by the others and the
     * footprint grows with the thread count. Two arenas are plenty here. */
    mallopt(M_ARENA_MAX, 2);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct service svc;
    struct processor p = {0};
    if (service_init(&svc, &def) != 0)
        return 1;
    int rc = processor_start(&p, &svc);
    if (rc == 0)
        rc = service_run(&svc);
    if (rc == -ETIMEDOUT)
        return 1;
    processor_stop(&p);
    service_cleanup(&svc);
    curl_global_cleanup();
    return rc == 0 ? 0 : 1;
}
