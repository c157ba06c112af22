/* breaker.c - one circuit breaker per (provider, base URL). After
 * breaker_failures consecutive calls end in a transient failure the circuit
 * opens and calls fail at once; after the cooldown one trial call goes
 * through (half-open): its success closes the circuit, its failure opens it
 * again. Any answer that is not a transient failure proves the endpoint
 * alive. Engine thread only, so no locks. */
#include "internal.h"
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

static void set_state(struct llm *l, struct breaker *b, enum breaker_state st)
{
    static const char *const NAMES[] = {"closed", "open", "half-open"};
    if (b->state != st) {
        char fields[64];
        snprintf(fields, sizeof fields, "\"provider\":\"%s\"", llm_provider_name(b->provider));
        sb_log_write(l->cfg.log, st == BREAKER_OPEN ? SB_LOG_WARN : SB_LOG_INFO, NULL, fields,
                     "llm: circuit of %s is %s", b->key, NAMES[st]);
    }
    b->state = st;
    metric_series_set(b->gauge, (double)st);
}

struct breaker *breaker_for(struct llm *l, const char *endpoint, enum llm_provider provider)
{
    for (size_t i = 0; i < l->nbreakers; i++)
        if (strcmp(l->breakers[i].key, endpoint) == 0)
            return &l->breakers[i];
    if (l->nbreakers == LLM_MAX_ENDPOINTS)
        return NULL;
    struct breaker *b = &l->breakers[l->nbreakers];
    memset(b, 0, sizeof *b);
    b->key = strdup(endpoint);
    if (!b->key)
        return NULL;
    b->provider = provider;
    b->state = BREAKER_CLOSED;
    if (l->m_circuit) {
        /* The key is "provider base_url": the label is the URL part. */
        const char *base = strchr(b->key, ' ');
        const char *labels[] = {llm_provider_name(provider), base ? base + 1 : b->key};
        b->gauge = metric_series_get(l->m_circuit, labels);
        metric_series_set(b->gauge, BREAKER_CLOSED);
    }
    l->nbreakers++;
    return b;
}

bool breaker_allow(struct llm *l, struct call *c, int64_t now_ms)
{
    struct breaker *b = c->breaker;
    if (!b || c->trial || b->state == BREAKER_CLOSED)
        return true;
    if (b->state == BREAKER_OPEN) {
        if (now_ms < b->open_until_ms)
            return false;
        set_state(l, b, BREAKER_HALF_OPEN);
        b->trial_running = false;
    }
    if (b->trial_running)
        return false;
    b->trial_running = true;
    c->trial = true;
    return true;
}

void breaker_record(struct llm *l, struct call *c, enum llm_error e, int64_t now_ms)
{
    struct breaker *b = c->breaker;
    if (!b)
        return;
    bool trial = c->trial;
    if (trial) {
        b->trial_running = false;
        c->trial = false;
    }
    if (e == LLM_ERR_CIRCUIT_OPEN || e == LLM_ERR_SHUTDOWN)
        return; /* says nothing about the endpoint */
    if (!llm_error_transient(e)) {
        b->failures = 0;
        if (b->state != BREAKER_CLOSED)
            set_state(l, b, BREAKER_CLOSED);
        return;
    }
    b->failures++;
    if (trial || (b->state == BREAKER_CLOSED && b->failures >= l->cfg.breaker_failures)) {
        b->open_until_ms = now_ms + l->cfg.breaker_cooldown_ms;
        set_state(l, b, BREAKER_OPEN);
    }
}

void breaker_free_all(struct llm *l)
{
    for (size_t i = 0; i < l->nbreakers; i++)
        free(l->breakers[i].key);
    l->nbreakers = 0;
}
