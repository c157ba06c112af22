-- 0008_knowledge_languages.sql - knowledge search builds the question's query
-- once per language the assistant's chunks are written in (not once per
-- chunk): which languages those are is answered from this index alone.
CREATE INDEX knowledge_chunks_assistant_language_idx
    ON knowledge_chunks (tenant_id, assistant_id, language);
DROP INDEX knowledge_chunks_assistant_idx; -- its columns lead the new one
