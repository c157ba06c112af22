-- 0009_message_tenant_key.sql - a message's tenant is already proven by its
-- (tenant_id, conversation_id) key into conversations, whose rows reference
-- the tenant, and a tenant's deletion reaches its messages through that
-- cascade. The direct reference was checked again for every message stored,
-- each time locking the tenant's row, the most shared row there is.
ALTER TABLE messages DROP CONSTRAINT messages_tenant_id_fkey;
