-- 0007_stalled.sql - an outbound message waiting for its retry (next_attempt_at
-- in the future) is not stalled: the sweep must not send it early.
CREATE OR REPLACE FUNCTION work_stalled_outbound_messages(p_older_than interval, p_limit integer)
RETURNS TABLE (tenant_id uuid, id uuid, conversation_id uuid, status text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT m.tenant_id, m.id, m.conversation_id, m.status
      FROM messages m
     WHERE m.status IN ('queued', 'processing')
       AND greatest(m.updated_at, coalesce(m.next_attempt_at, m.updated_at))
           <= now() - coalesce(p_older_than, interval '0')
     ORDER BY m.updated_at
     LIMIT least(greatest(coalesce(p_limit, 100), 1), 1000)
$$;
