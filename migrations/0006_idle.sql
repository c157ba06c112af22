-- 0006_idle.sql - the scheduler's view of open conversations that have been
-- idle longer than their assistant's idle_close_seconds (auto-close).
-- Returns only ids; the processor closes each in a tenant-scoped transaction.
CREATE FUNCTION work_idle_conversations(p_limit integer)
RETURNS TABLE (tenant_id uuid, id uuid)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT c.tenant_id, c.id
      FROM conversations c
      JOIN assistants a ON a.tenant_id = c.tenant_id AND a.id = c.assistant_id
     WHERE c.status = 'open' AND a.idle_close_seconds IS NOT NULL
       AND coalesce(c.last_message_at, c.created_at)
           <= now() - make_interval(secs => a.idle_close_seconds)
     ORDER BY coalesce(c.last_message_at, c.created_at)
     LIMIT least(greatest(coalesce(p_limit, 100), 1), 1000)
$$;
REVOKE ALL ON FUNCTION work_idle_conversations(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION work_idle_conversations(integer) TO sabia_app;
-- The function runs as the owner, whom FORCE ROW LEVEL SECURITY binds too:
-- like the other scheduler lookups (0004), it may read assistants.
CREATE POLICY owner_lookup ON assistants FOR SELECT TO sabia_owner USING (true);
