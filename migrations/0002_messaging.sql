-- 0002_messaging.sql - assistants, channels, contacts, conversations and
-- messages; knowledge and actions of the assistants; LLM usage and spend.
-- Same conventions as 0001 (composite tenant keys, RLS enabled and forced).

-- ------------------------------------------------------------------ assistants

CREATE TABLE assistants (
    id                           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id                    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    workspace_id                 uuid NOT NULL,
    name                         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description                  text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    system_prompt                text NOT NULL DEFAULT '' CHECK (length(system_prompt) <= 100000),
    personality                  text NOT NULL DEFAULT '' CHECK (length(personality) <= 10000),
    -- 'retrieval' is the built-in provider that answers from the knowledge base
    provider                     text NOT NULL DEFAULT 'retrieval'
                                 CHECK (provider IN ('openai', 'anthropic', 'openai_compatible', 'retrieval')),
    model                        text NOT NULL DEFAULT '' CHECK (length(model) <= 200),
    -- OpenAI-compatible servers (Ollama, vLLM, ...) and a tenant's own key
    provider_base_url            text CHECK (provider_base_url ~* '^https?://' AND length(provider_base_url) <= 2048),
    provider_api_key_enc         bytea CHECK (octet_length(provider_api_key_enc) <= 8192),
    temperature                  numeric(3, 2) NOT NULL DEFAULT 0.70
                                 CHECK (temperature BETWEEN 0 AND 2),
    max_tokens                   integer NOT NULL DEFAULT 1024 CHECK (max_tokens BETWEEN 1 AND 200000),
    -- recent messages sent to the model as context
    context_messages             integer NOT NULL DEFAULT 20 CHECK (context_messages BETWEEN 0 AND 200),
    -- message buffering: trailing window after the last customer message,
    -- capped by the wait since the first unanswered one
    message_buffer_seconds       integer NOT NULL DEFAULT 3
                                 CHECK (message_buffer_seconds BETWEEN 0 AND 300),
    buffer_max_wait_seconds      integer NOT NULL DEFAULT 15
                                 CHECK (buffer_max_wait_seconds BETWEEN 0 AND 3600),
    -- after a human takes over, the bot resumes after this much silence; NULL = never
    handoff_auto_resume_seconds  integer CHECK (handoff_auto_resume_seconds > 0),
    -- open conversations idle this long are closed; NULL = never
    idle_close_seconds           integer CHECK (idle_close_seconds > 0),
    config                       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    -- bumped on every configuration change (API versioning, optimistic locking)
    version                      integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    status                       text NOT NULL DEFAULT 'active'
                                 CHECK (status IN ('active', 'inactive')),
    created_at                   timestamptz NOT NULL DEFAULT now(),
    updated_at                   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, workspace_id) REFERENCES workspaces (tenant_id, id) ON DELETE CASCADE,
    CHECK (buffer_max_wait_seconds >= message_buffer_seconds)
);
CREATE INDEX assistants_workspace_idx ON assistants (tenant_id, workspace_id, created_at);
CREATE TRIGGER assistants_touch BEFORE UPDATE ON assistants
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
ALTER TABLE assistants ENABLE ROW LEVEL SECURITY;
ALTER TABLE assistants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON assistants
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- ------------------------------------------------------------------ channels

-- One connected WhatsApp number, Instagram account or web widget. Secrets are
-- AES-256-GCM ciphertexts made with the master key (never plaintext here).
CREATE TABLE channels (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id             uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    workspace_id          uuid NOT NULL,
    type                  text NOT NULL CHECK (type IN ('whatsapp', 'instagram', 'web')),
    name                  text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    status                text NOT NULL DEFAULT 'active'
                          CHECK (status IN ('active', 'inactive', 'test')),
    -- WhatsApp Cloud API
    phone_number_id       text CHECK (length(phone_number_id) <= 64),
    business_account_id   text CHECK (length(business_account_id) <= 64),
    display_phone_number  text CHECK (length(display_phone_number) <= 32),
    -- Instagram professional account id (the recipient id in webhooks)
    instagram_account_id  text CHECK (length(instagram_account_id) <= 64),
    -- encrypted secrets: signature key, Graph API token, handshake token
    app_secret_enc        bytea CHECK (octet_length(app_secret_enc) <= 4096),
    access_token_enc      bytea CHECK (octet_length(access_token_enc) <= 8192),
    verify_token_enc      bytea CHECK (octet_length(verify_token_enc) <= 4096),
    -- web widget settings (allowed origins, greeting, colours) and other
    -- non-secret per-type settings
    config                jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    status_changed_at     timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, workspace_id) REFERENCES workspaces (tenant_id, id) ON DELETE CASCADE,
    CHECK (type = 'whatsapp' OR (phone_number_id IS NULL AND business_account_id IS NULL)),
    CHECK (type = 'instagram' OR instagram_account_id IS NULL)
);
CREATE INDEX channels_workspace_idx ON channels (tenant_id, workspace_id, created_at);
CREATE UNIQUE INDEX channels_wa_number_key ON channels (tenant_id, phone_number_id)
    WHERE phone_number_id IS NOT NULL;
CREATE UNIQUE INDEX channels_ig_account_key ON channels (tenant_id, instagram_account_id)
    WHERE instagram_account_id IS NOT NULL;
CREATE TRIGGER channels_touch BEFORE UPDATE ON channels
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
ALTER TABLE channels ENABLE ROW LEVEL SECURITY;
ALTER TABLE channels FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON channels
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- Which assistant answers on which channel: at most one per channel.
CREATE TABLE assistant_channels (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    assistant_id  uuid NOT NULL,
    channel_id    uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, channel_id),
    FOREIGN KEY (tenant_id, assistant_id) REFERENCES assistants (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX assistant_channels_assistant_idx ON assistant_channels (tenant_id, assistant_id);
ALTER TABLE assistant_channels ENABLE ROW LEVEL SECURITY;
ALTER TABLE assistant_channels FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON assistant_channels
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- ------------------------------------------------------------------ contacts

-- An end customer as seen on one channel: external_id is the WhatsApp wa_id,
-- the Instagram-scoped user id, or the web visitor id.
CREATE TABLE contacts (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    workspace_id   uuid NOT NULL,
    channel_id     uuid NOT NULL,
    external_id    text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 256),
    phone          text CHECK (length(phone) <= 32),
    email          text CHECK (length(email) <= 320),
    name           text CHECK (length(name) <= 256),
    tags           text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 100),
    attributes     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, channel_id, external_id),
    FOREIGN KEY (tenant_id, workspace_id) REFERENCES workspaces (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX contacts_workspace_idx ON contacts (tenant_id, workspace_id, updated_at DESC, id DESC);
CREATE INDEX contacts_tags_idx ON contacts USING gin (tags);
CREATE TRIGGER contacts_touch BEFORE UPDATE ON contacts
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
ALTER TABLE contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contacts
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- ------------------------------------------------------------------ conversations

-- At most one open conversation per channel and contact. owner says who
-- answers: the bot, or a human who took over (handoff).
CREATE TABLE conversations (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id             uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    workspace_id          uuid NOT NULL,
    channel_id            uuid NOT NULL,
    contact_id            uuid NOT NULL,
    assistant_id          uuid,
    status                text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    owner                 text NOT NULL DEFAULT 'bot' CHECK (owner IN ('bot', 'human')),
    assigned_user_id      uuid,
    last_message_at       timestamptz,
    last_inbound_at       timestamptz,
    last_outbound_at      timestamptz,
    last_message_preview  text CHECK (length(last_message_preview) <= 500),
    unread_count          integer NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
    -- handoff: when and by whom a human took over; when the bot resumes on its own
    handoff_at            timestamptz,
    handoff_by_user_id    uuid,
    handoff_reason        text CHECK (length(handoff_reason) <= 500),
    bot_resume_at         timestamptz,
    -- message buffering: first unanswered customer message, and when the
    -- buffered messages are due to be answered (NULL = nothing pending)
    buffer_started_at     timestamptz,
    buffer_deadline_at    timestamptz,
    closed_at             timestamptz,
    closed_reason         text CHECK (closed_reason IN ('agent', 'idle', 'api', 'contact', 'system')),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, workspace_id) REFERENCES workspaces (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, assistant_id) REFERENCES assistants (tenant_id, id)
        ON DELETE SET NULL (assistant_id),
    FOREIGN KEY (tenant_id, assigned_user_id) REFERENCES users (tenant_id, id)
        ON DELETE SET NULL (assigned_user_id),
    FOREIGN KEY (tenant_id, handoff_by_user_id) REFERENCES users (tenant_id, id)
        ON DELETE SET NULL (handoff_by_user_id),
    CHECK (status = 'open' OR closed_at IS NOT NULL),
    CHECK (owner = 'human' OR bot_resume_at IS NULL)
);
CREATE UNIQUE INDEX conversations_open_key ON conversations (tenant_id, channel_id, contact_id)
    WHERE status = 'open';
CREATE INDEX conversations_list_idx ON conversations (tenant_id, updated_at DESC, id DESC);
CREATE INDEX conversations_workspace_idx
    ON conversations (tenant_id, workspace_id, status, updated_at DESC, id DESC);
CREATE INDEX conversations_contact_idx ON conversations (tenant_id, contact_id, created_at DESC);
CREATE INDEX conversations_channel_idx ON conversations (tenant_id, channel_id, created_at DESC);
CREATE INDEX conversations_assigned_idx ON conversations (tenant_id, assigned_user_id, updated_at DESC)
    WHERE assigned_user_id IS NOT NULL;
CREATE INDEX conversations_buffer_due_idx ON conversations (buffer_deadline_at)
    WHERE buffer_deadline_at IS NOT NULL;
CREATE INDEX conversations_resume_due_idx ON conversations (bot_resume_at)
    WHERE bot_resume_at IS NOT NULL;
CREATE TRIGGER conversations_touch BEFORE UPDATE ON conversations
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
ALTER TABLE conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversations
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- ------------------------------------------------------------------ messages

-- Inbound messages are 'received'. Outbound ones go queued -> processing ->
-- sent -> delivered -> read, or failed. provider_message_id (the wamid, the
-- Instagram mid) is unique per channel: this is what keeps a redelivered
-- webhook from being processed twice.
CREATE TABLE messages (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id            uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id      uuid NOT NULL,
    channel_id           uuid NOT NULL,
    direction            text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    sender_type          text NOT NULL CHECK (sender_type IN ('customer', 'bot', 'human', 'system')),
    sender_user_id       uuid,
    type                 text NOT NULL DEFAULT 'text'
                         CHECK (type IN ('text', 'image', 'audio', 'video', 'document', 'location',
                                         'contacts', 'interactive', 'button', 'reaction', 'sticker',
                                         'template', 'system', 'unsupported')),
    content              text NOT NULL DEFAULT '' CHECK (octet_length(content) <= 1048576),
    -- media ids and mime types, coordinates, reply-to, interactive payloads ...
    metadata             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    provider_message_id  text CHECK (length(provider_message_id) BETWEEN 1 AND 256),
    -- when the provider says the message was sent (inbound webhooks carry it)
    provider_timestamp   timestamptz,
    webhook_event_id     uuid,  -- the gateway event it came from (no FK: events are pruned)
    status               text NOT NULL
                         CHECK (status IN ('received', 'queued', 'processing', 'sent',
                                           'delivered', 'read', 'failed')),
    error_code           text CHECK (length(error_code) <= 64),
    error_reason         text CHECK (length(error_reason) <= 2000),
    attempts             integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at      timestamptz,
    -- LLM accounting for bot replies
    llm_model            text CHECK (length(llm_model) <= 200),
    tokens_in            integer CHECK (tokens_in >= 0),
    tokens_out           integer CHECK (tokens_out >= 0),
    correlation_id       text CHECK (length(correlation_id) <= 128),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    sent_at              timestamptz,
    delivered_at         timestamptz,
    read_at              timestamptz,
    failed_at            timestamptz,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, channel_id, provider_message_id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, sender_user_id) REFERENCES users (tenant_id, id)
        ON DELETE SET NULL (sender_user_id),
    CHECK ((direction = 'inbound') = (status = 'received')),
    CHECK (direction = 'outbound' OR sender_type = 'customer'),
    CHECK (direction = 'inbound' OR sender_type <> 'customer')
);
CREATE INDEX messages_conversation_idx ON messages (tenant_id, conversation_id, created_at, id);
CREATE INDEX messages_tenant_time_idx ON messages (tenant_id, created_at);
CREATE INDEX messages_outbound_pending_idx ON messages (updated_at)
    WHERE status IN ('queued', 'processing');
CREATE TRIGGER messages_touch BEFORE UPDATE ON messages
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON messages
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- ------------------------------------------------------------------ knowledge

-- What an assistant knows: the uploaded source, indexing status and
-- progress (indexing runs in the background), split into chunks searched
-- with PostgreSQL full-text search. language names a built-in text search
-- configuration; a chunk's tsvector is generated with the chunk's language
-- and queries must use the same one: websearch_to_tsquery(language::regconfig, $q).
CREATE TABLE knowledge_bases (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    assistant_id    uuid NOT NULL,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    type            text NOT NULL DEFAULT 'text' CHECK (type IN ('text', 'faq', 'url', 'document')),
    language        text NOT NULL DEFAULT 'simple'
                    CHECK (language IN ('simple', 'portuguese', 'english', 'spanish')),
    source          text CHECK (octet_length(source) <= 10485760),  -- raw content as uploaded
    source_hash     text CHECK (length(source_hash) <= 128),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'indexing', 'ready', 'failed')),
    progress_done   integer NOT NULL DEFAULT 0 CHECK (progress_done >= 0),
    progress_total  integer NOT NULL DEFAULT 0 CHECK (progress_total >= 0),
    chunk_count     integer NOT NULL DEFAULT 0 CHECK (chunk_count >= 0),
    error_reason    text CHECK (length(error_reason) <= 2000),
    indexed_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, assistant_id) REFERENCES assistants (tenant_id, id) ON DELETE CASCADE,
    CHECK (progress_done <= progress_total)
);
CREATE INDEX knowledge_bases_assistant_idx ON knowledge_bases (tenant_id, assistant_id);
CREATE TRIGGER knowledge_bases_touch BEFORE UPDATE ON knowledge_bases
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
ALTER TABLE knowledge_bases ENABLE ROW LEVEL SECURITY;
ALTER TABLE knowledge_bases FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON knowledge_bases
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

CREATE TABLE knowledge_chunks (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    knowledge_base_id  uuid NOT NULL,
    assistant_id       uuid NOT NULL,  -- copied from the knowledge base, for search
    ordinal            integer NOT NULL CHECK (ordinal >= 0),
    title              text CHECK (length(title) <= 500),
    content            text NOT NULL CHECK (octet_length(content) BETWEEN 1 AND 65536),
    language           text NOT NULL DEFAULT 'simple'
                       CHECK (language IN ('simple', 'portuguese', 'english', 'spanish')),
    tsv                tsvector GENERATED ALWAYS AS (
                           CASE language
                               WHEN 'portuguese' THEN
                                   to_tsvector('portuguese'::regconfig, coalesce(title, '') || ' ' || content)
                               WHEN 'english' THEN
                                   to_tsvector('english'::regconfig, coalesce(title, '') || ' ' || content)
                               WHEN 'spanish' THEN
                                   to_tsvector('spanish'::regconfig, coalesce(title, '') || ' ' || content)
                               ELSE
                                   to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || content)
                           END) STORED,
    metadata           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, knowledge_base_id, ordinal),
    FOREIGN KEY (tenant_id, knowledge_base_id) REFERENCES knowledge_bases (tenant_id, id)
        ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, assistant_id) REFERENCES assistants (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX knowledge_chunks_tsv_idx ON knowledge_chunks USING gin (tsv);
CREATE INDEX knowledge_chunks_assistant_idx ON knowledge_chunks (tenant_id, assistant_id);
ALTER TABLE knowledge_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE knowledge_chunks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON knowledge_chunks
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- ------------------------------------------------------------------ actions

-- Tools an assistant may call (function calling): a JSON schema of the
-- arguments and what to do with them.
CREATE TABLE actions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    assistant_id     uuid NOT NULL,
    name             text NOT NULL CHECK (name ~ '^[A-Za-z0-9_-]{1,64}$'),
    description      text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    kind             text NOT NULL DEFAULT 'webhook' CHECK (kind IN ('webhook', 'handoff', 'builtin')),
    function_schema  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(function_schema) = 'object'),
    url              text CHECK (url ~* '^https?://' AND length(url) <= 2048),
    secret_enc       bytea CHECK (octet_length(secret_enc) <= 4096),
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, assistant_id, name),
    FOREIGN KEY (tenant_id, assistant_id) REFERENCES assistants (tenant_id, id) ON DELETE CASCADE,
    CHECK (kind <> 'webhook' OR url IS NOT NULL)
);
CREATE TRIGGER actions_touch BEFORE UPDATE ON actions
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
ALTER TABLE actions ENABLE ROW LEVEL SECURITY;
ALTER TABLE actions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON actions
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- ------------------------------------------------------------------ LLM usage

-- One row per provider call (analytics, debugging); references are plain
-- columns so usage survives deletions.
CREATE TABLE llm_usage (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    assistant_id     uuid,
    conversation_id  uuid,
    message_id       uuid,
    provider         text NOT NULL CHECK (length(provider) BETWEEN 1 AND 64),
    model            text NOT NULL DEFAULT '' CHECK (length(model) <= 200),
    outcome          text NOT NULL
                     CHECK (outcome IN ('ok', 'error', 'timeout', 'rate_limited', 'quota',
                                        'auth', 'cancelled')),
    error_code       text CHECK (length(error_code) <= 64),
    tokens_in        integer NOT NULL DEFAULT 0 CHECK (tokens_in >= 0),
    tokens_out       integer NOT NULL DEFAULT 0 CHECK (tokens_out >= 0),
    cost_micros      bigint NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    latency_ms       integer CHECK (latency_ms >= 0),
    correlation_id   text CHECK (length(correlation_id) <= 128),
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX llm_usage_tenant_idx ON llm_usage (tenant_id, created_at);
ALTER TABLE llm_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE llm_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON llm_usage
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- Running spend per tenant and month, for the cap check (one row read) and
-- updated with INSERT ... ON CONFLICT (tenant_id, month) DO UPDATE.
CREATE TABLE llm_spend_monthly (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    month        date NOT NULL CHECK (extract(day FROM month) = 1),
    cost_micros  bigint NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    tokens_in    bigint NOT NULL DEFAULT 0 CHECK (tokens_in >= 0),
    tokens_out   bigint NOT NULL DEFAULT 0 CHECK (tokens_out >= 0),
    calls        bigint NOT NULL DEFAULT 0 CHECK (calls >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, month)
);
CREATE TRIGGER llm_spend_monthly_touch BEFORE UPDATE ON llm_spend_monthly
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
ALTER TABLE llm_spend_monthly ENABLE ROW LEVEL SECURITY;
ALTER TABLE llm_spend_monthly FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON llm_spend_monthly
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
