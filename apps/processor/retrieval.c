/* retrieval.c - knowledge search and the retrieval-only provider.
 *
 * The question is turned into an OR of its stemmed words in each chunk's own
 * text-search configuration, so "Do you ship to Portugal?" finds a chunk about
 * shipping even if Portugal is never mentioned; ts_rank orders the hits.
 * Several questions (a batch of replies being prepared) are answered by one
 * statement: each question is a row of an unnested array searched LATERALly. */
#include "retrieval.h"
#include "domain.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_FALLBACK \
    "I could not find that in our knowledge base. A member of our team will follow up."

/* For each question (w), in each language its assistant's chunks use (one
 * index probe per language of the chunks' CHECK list), the OR of the
 * question's stemmed words; then the chunks of that language matching it. */
static const char SEARCH_SQL[] =
    "SELECT w.i, h.title, h.content, h.rank "
    "FROM unnest($2::uuid[], $3::text[], $4::int[]) WITH ORDINALITY AS w(asst, question, lim, i) "
    "CROSS JOIN LATERAL (SELECT coalesce(kc.title, '') AS title, kc.content, kc.ordinal, "
    "  ts_rank(kc.tsv, q.query) AS rank "
    "  FROM (VALUES ('simple'), ('portuguese'), ('english'), ('spanish')) AS lang(name) "
    "  CROSS JOIN LATERAL (SELECT to_tsquery(lang.name::regconfig, "
    "      coalesce(string_agg(quote_literal(l), ' | '), '')) AS query "
    "    FROM unnest(tsvector_to_array(to_tsvector(lang.name::regconfig, w.question))) AS l) q "
    "  JOIN knowledge_chunks kc ON kc.tenant_id = $1::uuid AND kc.assistant_id = w.asst "
    "    AND kc.language = lang.name AND kc.tsv @@ q.query "
    "  JOIN knowledge_bases kb ON kb.tenant_id = kc.tenant_id AND kb.id = kc.knowledge_base_id "
    "    AND kb.status = 'ready' "
    "  WHERE EXISTS (SELECT 1 FROM knowledge_chunks x WHERE x.tenant_id = $1::uuid "
    "    AND x.assistant_id = w.asst AND x.language = lang.name) "
    "  ORDER BY rank DESC, kc.ordinal LIMIT w.lim) h "
    "ORDER BY w.i, h.rank DESC, h.ordinal";

/* The statement's three columns, one element per query. */
static int fill_columns(struct db_array *a, struct retrieval_query *const *qs, size_t n)
{
    char *q = malloc(RETRIEVAL_QUERY_MAX + 1);
    int rc = q ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char lim[16];
        snprintf(lim, sizeof lim, "%d", qs[i]->limit);
        (void)domain_str_copy(q, RETRIEVAL_QUERY_MAX + 1, qs[i]->question);
        rc = db_array_add(&a[0], qs[i]->assistant_id);
        if (rc == 0)
            rc = db_array_add(&a[1], q);
        if (rc == 0)
            rc = db_array_add(&a[2], lim);
    }
    free(q);
    return rc;
}

void retrieval_hits_free(struct retrieval_hit *hits, int n)
{
    for (int i = 0; i < n; i++) {
        free(hits[i].title);
        free(hits[i].content);
        hits[i].title = hits[i].content = NULL;
    }
}

/* A heap copy of s, cut at a UTF-8 boundary to at most max bytes. */
static char *copy_cut(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    char *c = malloc((n > max ? max : n) + 1);
    if (c)
        (void)domain_str_copy(c, (n > max ? max : n) + 1, s);
    return c;
}

/* Rows come grouped by query (w.i, 1-based), best first. */
static int read_hits(const PGresult *r, struct retrieval_query *const *qs, size_t n)
{
    for (int row = 0; row < PQntuples(r); row++) {
        long i = 0;
        if (db_value_long(r, row, 0, &i) != 0 || i < 1 || (size_t)i > n)
            return SB_EDB;
        struct retrieval_query *q = qs[i - 1];
        if (q->n >= q->limit)
            continue;
        struct retrieval_hit *h = &q->hits[q->n++];
        h->title = copy_cut(PQgetvalue(r, row, 1), RETRIEVAL_TITLE_MAX);
        h->content = copy_cut(PQgetvalue(r, row, 2), RETRIEVAL_HIT_MAX);
        h->rank = strtod(PQgetvalue(r, row, 3), NULL);
        if (!h->title || !h->content)
            return -ENOMEM;
    }
    return 0;
}

static int search(PGconn *c, const char *tenant_id, struct retrieval_query *const *qs, size_t n)
{
    struct db_array a[3];
    for (size_t k = 0; k < 3; k++)
        db_array_init(&a[k], n * (2 * RETRIEVAL_QUERY_MAX + 64) + 16);
    int rc = fill_columns(a, qs, n);
    PGresult *r = NULL;
    if (rc == 0)
        rc = db_exec_arrays(c, SEARCH_SQL, tenant_id, a, 3, &r, NULL);
    if (rc == 0)
        rc = read_hits(r, qs, n);
    PQclear(r);
    for (size_t k = 0; k < 3; k++)
        db_array_cleanup(&a[k]);
    return rc;
}

int retrieval_search_many(PGconn *c, const char *tenant_id, struct retrieval_query *qs, size_t n)
{
    if (n == 0)
        return 0;
    struct retrieval_query **asked = calloc(n, sizeof *asked);
    if (!asked)
        return -ENOMEM;
    size_t nasked = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        retrieval_hits_free(qs[i].hits, qs[i].n); /* from an earlier run of the transaction */
        qs[i].n = 0;
        if (qs[i].limit <= 0 || qs[i].limit > RETRIEVAL_MAX_HITS)
            rc = -EINVAL;
        else if (qs[i].question && qs[i].question[0]) /* no words: no hits */
            asked[nasked++] = &qs[i];
    }
    if (rc == 0 && nasked)
        rc = search(c, tenant_id, asked, nasked);
    free(asked);
    return rc;
}

int retrieval_search(PGconn *c, const char *tenant_id, const char *assistant_id,
                     const char *question, int limit, struct retrieval_hit *hits, int *n)
{
    struct retrieval_query q = {.assistant_id = assistant_id, .question = question,
                                .limit = limit, .hits = hits}; /* n 0: hits taken as empty */
    int rc = retrieval_search_many(c, tenant_id, &q, 1);
    *n = q.n;
    return rc;
}

int retrieval_reply(const struct retrieval_hit *hits, int n, const char *fallback,
                    struct sb_buf *out)
{
    if (n > 0 && hits[0].title[0])
        return sb_buf_appendf(out, "From our knowledge base (%s): %s", hits[0].title,
                              hits[0].content);
    if (n > 0)
        return sb_buf_appendf(out, "From our knowledge base: %s", hits[0].content);
    return sb_buf_appendf(out, "[automatic reply] %s",
                          fallback && *fallback ? fallback : DEFAULT_FALLBACK);
}

int retrieval_answer(PGconn *c, const char *tenant_id, const char *assistant_id,
                     const char *question, const char *fallback, struct sb_buf *out)
{
    struct retrieval_hit *hits = calloc(1, sizeof *hits);
    int n = 0;
    if (!hits)
        return -ENOMEM;
    int rc = retrieval_search(c, tenant_id, assistant_id, question, 1, hits, &n);
    if (rc == 0)
        rc = retrieval_reply(hits, n, fallback, out);
    retrieval_hits_free(hits, n);
    free(hits);
    return rc;
}
