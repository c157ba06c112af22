/* retrieval.c - knowledge search and the retrieval-only provider.
 *
 * The question is turned into an OR of its stemmed words in each chunk's own
 * text-search configuration, so "Do you ship to Portugal?" finds a chunk about
 * shipping even if Portugal is never mentioned; ts_rank orders the hits. */
#include "retrieval.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_FALLBACK \
    "I could not find that in our knowledge base. A member of our team will follow up."

static const char SEARCH_SQL[] =
    "SELECT coalesce(kc.title, ''), kc.content, ts_rank(kc.tsv, q.query) AS rank "
    "FROM knowledge_chunks kc "
    "JOIN knowledge_bases kb ON kb.tenant_id = kc.tenant_id AND kb.id = kc.knowledge_base_id "
    "CROSS JOIN LATERAL (SELECT to_tsquery(kc.language::regconfig, "
    "    coalesce(string_agg(quote_literal(l), ' | '), '')) AS query "
    "  FROM unnest(tsvector_to_array(to_tsvector(kc.language::regconfig, $3))) AS l) q "
    "WHERE kc.tenant_id = $1 AND kc.assistant_id = $2 AND kb.status = 'ready' "
    "  AND kc.tsv @@ q.query "
    "ORDER BY rank DESC, kc.ordinal LIMIT $4::int";

int retrieval_search(PGconn *c, const char *tenant_id, const char *assistant_id,
                     const char *question, int limit, struct retrieval_hit *hits, int *n)
{
    *n = 0;
    if (limit <= 0 || limit > RETRIEVAL_MAX_HITS)
        return -EINVAL;
    char q[RETRIEVAL_QUERY_MAX + 1], lim[8];
    snprintf(q, sizeof q, "%s", question ? question : "");
    snprintf(lim, sizeof lim, "%d", limit);
    const char *params[] = {tenant_id, assistant_id, q, lim};
    PGresult *res = NULL;
    int rc = db_exec(c, SEARCH_SQL, 4, params, &res, NULL);
    if (rc != 0)
        return rc;
    for (int i = 0; i < PQntuples(res) && i < limit; i++) {
        struct retrieval_hit *h = &hits[i];
        snprintf(h->title, sizeof h->title, "%s", PQgetvalue(res, i, 0));
        snprintf(h->content, sizeof h->content, "%s", PQgetvalue(res, i, 1));
        h->rank = strtod(PQgetvalue(res, i, 2), NULL);
        (*n)++;
    }
    PQclear(res);
    return 0;
}

int retrieval_answer(PGconn *c, const char *tenant_id, const char *assistant_id,
                     const char *question, const char *fallback, struct sb_buf *out)
{
    struct retrieval_hit *hits = calloc(1, sizeof *hits);
    int n = 0;
    if (!hits)
        return -ENOMEM;
    int rc = retrieval_search(c, tenant_id, assistant_id, question, 1, hits, &n);
    if (rc == 0 && n > 0 && hits[0].title[0])
        rc = sb_buf_appendf(out, "From our knowledge base (%s): %s", hits[0].title,
                            hits[0].content);
    else if (rc == 0 && n > 0)
        rc = sb_buf_appendf(out, "From our knowledge base: %s", hits[0].content);
    else if (rc == 0)
        rc = sb_buf_appendf(out, "[automatic reply] %s",
                            fallback && *fallback ? fallback : DEFAULT_FALLBACK);
    free(hits);
    return rc;
}
