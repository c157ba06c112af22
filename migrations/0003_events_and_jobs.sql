-- 0003_events_and_jobs.sql - what comes in (gateway webhook events), what
-- goes out (webhook subscriptions and deliveries), and scheduled work.
-- Same conventions as 0001 (composite tenant keys, RLS enabled and forced).

-- ------------------------------------------------------------------ webhook_events

-- Every request that reaches a gateway webhook route, accepted or not, with
-- its body exactly as received (bytea: re-encoding would break signatures).
-- It is also the transactional outbox: an accepted event with no
-- processed_at has not been handled yet, and the relay re-publishes it.
--
-- A request rejected before its tenant is known (bad path, unknown tenant)
-- is recorded with tenant_id NULL: the policy rejected_without_tenant lets
-- the services insert such rows (no RETURNING: they cannot read them back),
-- and nobody but the owner role can read them. Every row that has a tenant
-- is under the normal tenant policy.
CREATE TABLE webhook_events (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id           uuid REFERENCES tenants (id) ON DELETE CASCADE,
    workspace_id        uuid,
    channel_id          uuid,
    source              text NOT NULL CHECK (source IN ('whatsapp', 'instagram', 'web')),
    -- the path as requested, kept for rejected requests (bounded by the gateway)
    request_path        text CHECK (length(request_path) <= 1024),
    remote_addr         inet,
    payload             bytea NOT NULL CHECK (octet_length(payload) <= 4194304),
    -- true when only the first bytes of an oversized or rejected body were kept
    payload_truncated   boolean NOT NULL DEFAULT false,
    signature           text CHECK (length(signature) <= 512),
    status              text NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'accepted', 'rejected')),
    -- short machine-readable reason, e.g. bad_signature, unknown_channel
    rejection_reason    text CHECK (length(rejection_reason) BETWEEN 1 AND 500),
    -- dedup: computed by the gateway from provider ids (message id, status id)
    -- or a hash of the body; a second accepted event with the same key in the
    -- same channel is refused by the unique index below. The gateway then
    -- records the request with dedup_key NULL and duplicate_of set.
    dedup_key           text CHECK (length(dedup_key) BETWEEN 1 AND 512),
    duplicate_of        uuid,
    correlation_id      text CHECK (length(correlation_id) <= 128),
    received_at         timestamptz NOT NULL DEFAULT now(),
    processed_at        timestamptz,
    -- hand-off to the processor: wake-ups published, processing attempts
    delivery_attempts   integer NOT NULL DEFAULT 0 CHECK (delivery_attempts >= 0),
    last_attempt_at     timestamptz,
    last_error          text CHECK (length(last_error) <= 2000),
    dead_lettered_at    timestamptz,
    dead_letter_reason  text CHECK (length(dead_letter_reason) <= 2000),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, workspace_id) REFERENCES workspaces (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id) ON DELETE CASCADE,
    -- only a rejected request may lack its tenant; accepted ones know everything
    CHECK (status = 'rejected' OR tenant_id IS NOT NULL),
    CHECK (status <> 'accepted' OR (workspace_id IS NOT NULL AND channel_id IS NOT NULL)),
    CHECK (tenant_id IS NOT NULL OR (workspace_id IS NULL AND channel_id IS NULL)),
    CHECK ((status = 'rejected') = (rejection_reason IS NOT NULL)),
    CHECK (status <> 'rejected' OR dedup_key IS NULL),
    CHECK ((dead_lettered_at IS NULL) = (dead_letter_reason IS NULL))
);
CREATE UNIQUE INDEX webhook_events_dedup_key ON webhook_events (tenant_id, channel_id, dedup_key)
    WHERE dedup_key IS NOT NULL;
CREATE INDEX webhook_events_channel_idx ON webhook_events (tenant_id, channel_id, received_at DESC);
CREATE INDEX webhook_events_tenant_idx ON webhook_events (tenant_id, received_at DESC);
-- the relay's scan: accepted, not yet processed, not dead-lettered
CREATE INDEX webhook_events_pending_idx ON webhook_events (received_at)
    WHERE status = 'accepted' AND processed_at IS NULL AND dead_lettered_at IS NULL;
CREATE INDEX webhook_events_untenanted_idx ON webhook_events (received_at)
    WHERE tenant_id IS NULL;
ALTER TABLE webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_events
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
CREATE POLICY rejected_without_tenant ON webhook_events FOR INSERT TO sabia_app
    WITH CHECK (tenant_id IS NULL AND status = 'rejected');

-- ------------------------------------------------------------------ outbound webhooks

-- Integrators' endpoints (Standard Webhooks). The signing secret is
-- encrypted with the master key. An endpoint is disabled on 410 Gone or
-- after sustained failure.
CREATE TABLE webhook_subscriptions (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id             uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url                   text NOT NULL CHECK (url ~* '^https?://[^\s]+$' AND length(url) <= 2048),
    events                text[] NOT NULL
                          CHECK (cardinality(events) BETWEEN 1 AND 64
                                 AND array_position(events, NULL) IS NULL),
    description           text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    secret_enc            bytea NOT NULL CHECK (octet_length(secret_enc) <= 4096),
    status                text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    disabled_reason       text CHECK (length(disabled_reason) <= 500),
    disabled_at           timestamptz,
    consecutive_failures  integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    total_failures        bigint NOT NULL DEFAULT 0 CHECK (total_failures >= 0),
    first_failure_at      timestamptz,  -- start of the current failure streak
    last_success_at       timestamptz,
    last_failure_at       timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE INDEX webhook_subscriptions_tenant_idx ON webhook_subscriptions (tenant_id, status);
CREATE TRIGGER webhook_subscriptions_touch BEFORE UPDATE ON webhook_subscriptions
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
ALTER TABLE webhook_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_subscriptions
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- One event for one subscription. id is the webhook-id header (stable across
-- retries); payload is the exact body that is signed and sent each time.
CREATE TABLE webhook_deliveries (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subscription_id   uuid NOT NULL,
    event_type        text NOT NULL CHECK (event_type ~ '^[a-z][a-z0-9_.]{0,99}$'),
    event_id          uuid,
    payload           text NOT NULL CHECK (octet_length(payload) <= 1048576),
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'in_flight', 'succeeded', 'failed', 'cancelled')),
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_attempt_at   timestamptz,
    response_code     integer CHECK (response_code BETWEEN 100 AND 599),
    response_excerpt  text CHECK (length(response_excerpt) <= 1024),
    error_reason      text CHECK (length(error_reason) <= 1000),
    duration_ms       integer CHECK (duration_ms >= 0),
    is_test           boolean NOT NULL DEFAULT false,
    redelivery_of     uuid,
    completed_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, subscription_id) REFERENCES webhook_subscriptions (tenant_id, id)
        ON DELETE CASCADE,
    CHECK (status IN ('pending', 'in_flight') OR completed_at IS NOT NULL)
);
CREATE INDEX webhook_deliveries_subscription_idx
    ON webhook_deliveries (tenant_id, subscription_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status IN ('pending', 'in_flight');
CREATE TRIGGER webhook_deliveries_touch BEFORE UPDATE ON webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_deliveries
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- ------------------------------------------------------------------ scheduled_jobs

-- Durable delayed work (follow-ups, auto-close, knowledge indexing, ...).
-- Redis holds the timers; this table is the record they are rebuilt from.
-- dedup_key keeps one live job per purpose (e.g. 'auto_close:<conversation>').
CREATE TABLE scheduled_jobs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{0,63}$'),
    conversation_id  uuid,
    dedup_key        text CHECK (length(dedup_key) BETWEEN 1 AND 256),
    payload          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    run_at           timestamptz NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    locked_until     timestamptz,
    last_error       text CHECK (length(last_error) <= 2000),
    completed_at     timestamptz,
    correlation_id   text CHECK (length(correlation_id) <= 128),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
        ON DELETE CASCADE
);
CREATE UNIQUE INDEX scheduled_jobs_dedup_key ON scheduled_jobs (tenant_id, dedup_key)
    WHERE dedup_key IS NOT NULL AND status IN ('pending', 'running');
CREATE INDEX scheduled_jobs_due_idx ON scheduled_jobs (run_at) WHERE status = 'pending';
CREATE INDEX scheduled_jobs_stuck_idx ON scheduled_jobs (locked_until) WHERE status = 'running';
CREATE INDEX scheduled_jobs_conversation_idx ON scheduled_jobs (tenant_id, conversation_id)
    WHERE conversation_id IS NOT NULL;
CREATE TRIGGER scheduled_jobs_touch BEFORE UPDATE ON scheduled_jobs
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
ALTER TABLE scheduled_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE scheduled_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON scheduled_jobs
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
