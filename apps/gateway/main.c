/* sabia-gateway - the front door: signed webhooks from WhatsApp, Instagram
 * and the web widget, validated, recorded and handed to the processor.
 * main.c only wires configuration, libraries and handlers. */
#include "gateway.h"

static const struct sb_config_spec SETTINGS[] = {
    {"SABIA_MASTER_KEY", SB_CONFIG_STRING, NULL, 0, 0, true,
     "64 hex characters; decrypts channel secrets"},
    {"SABIA_EVENTS_STREAM", SB_CONFIG_STRING, "sabia:events:inbound", 0, 0, false,
     "Redis stream of wake-ups for the processor"},
    {"SABIA_EVENTS_STREAM_MAXLEN", SB_CONFIG_INT, "1000000", 1000, 100000000, false,
     "approximate cap on the stream's length"},
    {"SABIA_GATEWAY_COMMIT_THREADS", SB_CONFIG_INT, "1", 1, 32, false,
     "group-commit writer threads (each uses one database connection)"},
    {"SABIA_GATEWAY_BATCH_MAX", SB_CONFIG_INT, "256", 1, 4000, false,
     "most rows written in one transaction"},
    {"SABIA_GATEWAY_CACHE_TTL_MS", SB_CONFIG_INT, "30000", 0, 3600000, false,
     "how long tenant/channel lookups are cached"},
    {"SABIA_GATEWAY_RELAY_AFTER_SECONDS", SB_CONFIG_INT, "30", 1, 86400, false,
     "accepted events unprocessed this long are published again"},
    {"SABIA_GATEWAY_RELAY_INTERVAL_MS", SB_CONFIG_INT, "5000", 100, 3600000, false,
     "how often the relay looks for them"},
};

static const char *const CAPTURE[] = {"x-hub-signature-256", "x-sabia-visitor-token", NULL};

static int gateway_start(struct gateway *gw, struct service *svc)
{
    const struct sb_config *cfg = svc->cfg;
    int err = 0;
    gw->svc = svc;
    gw->master = crypto_key_new(sb_config_str(cfg, "SABIA_MASTER_KEY"), &err);
    if (!gw->master) {
        sb_log_error(svc->log, NULL, "config: SABIA_MASTER_KEY must be 64 hex characters");
        return SB_ECONFIG;
    }
    gw->handoff = handoff_new(svc->bus, sb_config_str(cfg, "SABIA_EVENTS_STREAM"),
                              sb_config_int(cfg, "SABIA_EVENTS_STREAM_MAXLEN"), svc->metrics,
                              svc->log);
    gw->lookup = lookup_new(svc->db, svc->bus, gw->master,
                            (int)sb_config_int(cfg, "SABIA_GATEWAY_CACHE_TTL_MS"), svc->metrics,
                            svc->log);
    gw->ratelimit = ratelimit_new(svc->bus);
    if (!gw->handoff || !gw->lookup || !gw->ratelimit)
        return -ENOMEM;
    gw->committer = committer_new(svc->db, (int)sb_config_int(cfg, "SABIA_GATEWAY_COMMIT_THREADS"),
                                  (int)sb_config_int(cfg, "SABIA_GATEWAY_BATCH_MAX"), gw->handoff,
                                  svc->metrics, svc->log);
    gw->relay = relay_new(svc->db, gw->handoff,
                          (int)sb_config_int(cfg, "SABIA_GATEWAY_RELAY_AFTER_SECONDS"),
                          (int)sb_config_int(cfg, "SABIA_GATEWAY_RELAY_INTERVAL_MS"), svc->metrics,
                          svc->log);
    if (!gw->committer || !gw->relay)
        return -ENOMEM;
    return webhook_routes(gw);
}

/* In reverse order: writers drain their queue, then the wake-ups go out. */
static void gateway_stop(struct gateway *gw)
{
    relay_free(gw->relay);
    committer_free(gw->committer);
    handoff_free(gw->handoff);
    lookup_free(gw->lookup);
    ratelimit_free(gw->ratelimit);
    crypto_key_free(gw->master);
}

int main(void)
{
    static const struct service_def def = {
        .name = "gateway",
        .port_var = "SABIA_GATEWAY_PORT",
        .default_port = "3001",
        .extra = SETTINGS,
        .nextra = sizeof SETTINGS / sizeof SETTINGS[0],
        .capture_headers = CAPTURE,
        /* Webhook POSTs run on the event loop and answer from the commit
         * writer; workers only take cache misses, lease refills and handshakes. */
        .default_workers = "8",
        .redis_pool_min = 16,
    };
    struct service svc;
    struct gateway gw = {0};
    if (service_init(&svc, &def) != 0)
        return 1;
    int rc = gateway_start(&gw, &svc);
    if (rc == 0)
        rc = service_run(&svc);
    if (rc == -ETIMEDOUT)
        return 1; /* a handler is stuck: leave without waiting for it */
    gateway_stop(&gw);
    service_cleanup(&svc);
    return rc == 0 ? 0 : 1;
}
