-- 0004_access.sql - what the services' role (sabia_app) may do, and the few
-- narrow ways to look across tenants.
--
-- sabia_owner (runs migrations, owns everything) and sabia_app (owns
-- nothing, NOBYPASSRLS) are created by the bootstrap script, not here.
--
-- Because RLS is FORCED, the owner is bound by the policies too. Some work
-- has to find rows before the tenant is known (login by e-mail, API key by
-- prefix, background workers looking for due work in every tenant). That is
-- done by SECURITY DEFINER functions owned by sabia_owner which return only
-- what the caller needs (mostly just tenant_id and id: the worker then opens
-- a normal tenant-scoped transaction). For them, sabia_owner (and only it)
-- gets narrow owner_* policies on the tables they read. Services never
-- connect as sabia_owner.

-- ------------------------------------------------------------------ grants

GRANT USAGE ON SCHEMA public TO sabia_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON
    tenants, workspaces, users, api_keys, idempotency_keys,
    assistants, channels, assistant_channels, contacts, conversations, messages,
    knowledge_bases, knowledge_chunks, actions, llm_spend_monthly,
    webhook_subscriptions, webhook_deliveries, scheduled_jobs
TO sabia_app;
-- append-only records
GRANT SELECT, INSERT ON audit_log, llm_usage TO sabia_app;
-- raw evidence: updated as it is processed, removed only by retention
GRANT SELECT, INSERT, UPDATE ON webhook_events TO sabia_app;

GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO sabia_app;

-- Tables and sequences later migrations create follow the same rule (a
-- migration may still REVOKE what a table should not allow). The runner's
-- own schema_migrations table existed before this and is not granted.
ALTER DEFAULT PRIVILEGES FOR ROLE sabia_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO sabia_app;
ALTER DEFAULT PRIVILEGES FOR ROLE sabia_owner IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO sabia_app;

-- ------------------------------------------------------------------ owner policies

CREATE POLICY owner_lookup ON tenants FOR SELECT TO sabia_owner USING (true);
CREATE POLICY owner_lookup ON users FOR SELECT TO sabia_owner USING (true);
CREATE POLICY owner_lookup ON api_keys FOR SELECT TO sabia_owner USING (true);
CREATE POLICY owner_lookup ON conversations FOR SELECT TO sabia_owner USING (true);
CREATE POLICY owner_lookup ON messages FOR SELECT TO sabia_owner USING (true);
CREATE POLICY owner_lookup ON webhook_events FOR SELECT TO sabia_owner USING (true);
CREATE POLICY owner_lookup ON webhook_deliveries FOR SELECT TO sabia_owner USING (true);
CREATE POLICY owner_lookup ON scheduled_jobs FOR SELECT TO sabia_owner USING (true);
CREATE POLICY owner_lookup ON idempotency_keys FOR SELECT TO sabia_owner USING (true);
-- retention: only finished rows may be purged across tenants
CREATE POLICY owner_purge ON idempotency_keys FOR DELETE TO sabia_owner
    USING (expires_at < now());
CREATE POLICY owner_purge ON webhook_events FOR DELETE TO sabia_owner
    USING (status = 'rejected' OR processed_at IS NOT NULL OR dead_lettered_at IS NOT NULL);

-- ------------------------------------------------------------------ authentication lookups

-- Login: the user with this e-mail (case-insensitive), whatever the tenant.
-- Returns no row for an unknown e-mail. The caller verifies the password and
-- the statuses, then works inside a transaction scoped to tenant_id.
CREATE FUNCTION auth_find_user_by_email(p_email text)
RETURNS TABLE (id uuid, tenant_id uuid, password_hash text, role text, status text,
               is_platform_admin boolean, failed_login_count integer,
               locked_until timestamptz, tenant_status text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT u.id, u.tenant_id, u.password_hash, u.role, u.status, u.is_platform_admin,
           u.failed_login_count, u.locked_until, t.status
      FROM users u
      JOIN tenants t ON t.id = u.tenant_id
     WHERE length(p_email) <= 320
       AND lower(u.email) = lower(p_email)
$$;

-- Public API: the key with this prefix, whatever the tenant. The caller
-- compares key_hash in constant time and checks revoked/expires_at.
CREATE FUNCTION auth_find_api_key(p_prefix text)
RETURNS TABLE (id uuid, tenant_id uuid, key_hash text, scopes text[], revoked boolean,
               expires_at timestamptz, rate_limit_per_minute integer, tenant_status text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT k.id, k.tenant_id, k.key_hash, k.scopes, k.revoked_at IS NOT NULL, k.expires_at,
           k.rate_limit_per_minute, t.status
      FROM api_keys k
      JOIN tenants t ON t.id = k.tenant_id
     WHERE length(p_prefix) <= 64
       AND k.prefix = p_prefix
$$;

-- Platform administration: one page of tenants ordered by id (UUIDv7 ids
-- are time-ordered), after p_after (NULL = from the start). The service must
-- check that the caller is a platform admin before calling it.
CREATE FUNCTION platform_list_tenants(p_after uuid, p_limit integer)
RETURNS TABLE (id uuid, name text, slug text, status text, plan text, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT t.id, t.name, t.slug, t.status, t.plan, t.created_at
      FROM tenants t
     WHERE p_after IS NULL OR t.id > p_after
     ORDER BY t.id
     LIMIT least(greatest(coalesce(p_limit, 100), 1), 1000)
$$;

-- ------------------------------------------------------------------ work discovery

-- Accepted webhook events still unprocessed after p_older_than (the relay
-- republishes their wake-ups), oldest first.
CREATE FUNCTION work_pending_webhook_events(p_older_than interval, p_limit integer)
RETURNS TABLE (tenant_id uuid, id uuid, received_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT e.tenant_id, e.id, e.received_at
      FROM webhook_events e
     WHERE e.status = 'accepted' AND e.processed_at IS NULL AND e.dead_lettered_at IS NULL
       AND e.received_at <= now() - coalesce(p_older_than, interval '0')
     ORDER BY e.received_at
     LIMIT least(greatest(coalesce(p_limit, 100), 1), 1000)
$$;

-- Outbound messages stuck in queued/processing for longer than p_older_than
-- (their command was lost with Redis, or a processor died mid-send).
CREATE FUNCTION work_stalled_outbound_messages(p_older_than interval, p_limit integer)
RETURNS TABLE (tenant_id uuid, id uuid, conversation_id uuid, status text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT m.tenant_id, m.id, m.conversation_id, m.status
      FROM messages m
     WHERE m.status IN ('queued', 'processing')
       AND m.updated_at <= now() - coalesce(p_older_than, interval '0')
     ORDER BY m.updated_at
     LIMIT least(greatest(coalesce(p_limit, 100), 1), 1000)
$$;

-- Conversations whose buffered customer messages are due for a reply
-- (reason 'buffer') or whose bot should resume after a handoff ('resume').
CREATE FUNCTION work_due_conversations(p_limit integer)
RETURNS TABLE (tenant_id uuid, id uuid, reason text, due_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT w.tenant_id, w.id, w.reason, w.due_at FROM (
        SELECT c.tenant_id, c.id, 'buffer'::text AS reason, c.buffer_deadline_at AS due_at
          FROM conversations c
         WHERE c.buffer_deadline_at IS NOT NULL AND c.buffer_deadline_at <= now()
        UNION ALL
        SELECT c.tenant_id, c.id, 'resume'::text, c.bot_resume_at
          FROM conversations c
         WHERE c.bot_resume_at IS NOT NULL AND c.bot_resume_at <= now()
    ) w
     ORDER BY w.due_at
     LIMIT least(greatest(coalesce(p_limit, 100), 1), 1000)
$$;

-- Scheduled jobs that are due, or running with an expired lease.
CREATE FUNCTION work_due_jobs(p_limit integer)
RETURNS TABLE (tenant_id uuid, id uuid, kind text, run_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT j.tenant_id, j.id, j.kind, j.run_at FROM (
        SELECT * FROM scheduled_jobs WHERE status = 'pending' AND run_at <= now()
        UNION ALL
        SELECT * FROM scheduled_jobs WHERE status = 'running' AND locked_until < now()
    ) j
     ORDER BY j.run_at
     LIMIT least(greatest(coalesce(p_limit, 100), 1), 1000)
$$;

-- Webhook deliveries that are due: pending ones whose time came, and
-- in_flight ones whose lease (next_attempt_at, set when claimed) expired.
CREATE FUNCTION work_due_webhook_deliveries(p_limit integer)
RETURNS TABLE (tenant_id uuid, id uuid, next_attempt_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT d.tenant_id, d.id, d.next_attempt_at
      FROM webhook_deliveries d
     WHERE d.status IN ('pending', 'in_flight') AND d.next_attempt_at <= now()
     ORDER BY d.next_attempt_at
     LIMIT least(greatest(coalesce(p_limit, 100), 1), 1000)
$$;

-- ------------------------------------------------------------------ retention

-- Deletes up to p_limit expired idempotency keys; returns how many.
CREATE FUNCTION purge_expired_idempotency_keys(p_limit integer)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM idempotency_keys
         WHERE id IN (SELECT k.id FROM idempotency_keys k
                       WHERE k.expires_at < now()
                       LIMIT least(greatest(coalesce(p_limit, 1000), 1), 10000))
        RETURNING 1
    )
    SELECT count(*)::integer FROM gone
$$;

-- Deletes up to p_limit finished webhook events (rejected, processed or
-- dead-lettered) received more than p_keep ago (at least one day); returns
-- how many.
CREATE FUNCTION purge_old_webhook_events(p_keep interval, p_limit integer)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM webhook_events
         WHERE id IN (SELECT e.id FROM webhook_events e
                       WHERE e.received_at < now() - greatest(coalesce(p_keep, interval '30 days'),
                                                              interval '1 day')
                         AND (e.status = 'rejected' OR e.processed_at IS NOT NULL
                              OR e.dead_lettered_at IS NOT NULL)
                       LIMIT least(greatest(coalesce(p_limit, 1000), 1), 10000))
        RETURNING 1
    )
    SELECT count(*)::integer FROM gone
$$;

REVOKE ALL ON FUNCTION
    auth_find_user_by_email(text), auth_find_api_key(text), platform_list_tenants(uuid, integer),
    work_pending_webhook_events(interval, integer), work_stalled_outbound_messages(interval, integer),
    work_due_conversations(integer), work_due_jobs(integer), work_due_webhook_deliveries(integer),
    purge_expired_idempotency_keys(integer), purge_old_webhook_events(interval, integer)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    auth_find_user_by_email(text), auth_find_api_key(text), platform_list_tenants(uuid, integer),
    work_pending_webhook_events(interval, integer), work_stalled_outbound_messages(interval, integer),
    work_due_conversations(integer), work_due_jobs(integer), work_due_webhook_deliveries(integer),
    purge_expired_idempotency_keys(integer), purge_old_webhook_events(interval, integer)
TO sabia_app;
