-- 0005_relay.sql - the gateway relay re-publishes an unprocessed event at
-- most once per p_older_than: it stamps last_attempt_at when it does, and
-- this function now skips events stamped more recently than that.
CREATE OR REPLACE FUNCTION work_pending_webhook_events(p_older_than interval, p_limit integer)
RETURNS TABLE (tenant_id uuid, id uuid, received_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT e.tenant_id, e.id, e.received_at
      FROM webhook_events e
     WHERE e.status = 'accepted' AND e.processed_at IS NULL AND e.dead_lettered_at IS NULL
       AND e.received_at <= now() - coalesce(p_older_than, interval '0')
       AND (e.last_attempt_at IS NULL
            OR e.last_attempt_at <= now() - coalesce(p_older_than, interval '0'))
     ORDER BY e.received_at
     LIMIT least(greatest(coalesce(p_limit, 100), 1), 1000)
$$;
