/* retrieval.h - internal to sabia-processor: the assistant's knowledge,
 * searched with PostgreSQL full-text search, and the built-in
 * retrieval-only provider that answers from it without any network. */
#ifndef SABIA_PROCESSOR_RETRIEVAL_H
#define SABIA_PROCESSOR_RETRIEVAL_H

#include "db.h"

#define RETRIEVAL_MAX_HITS 8
#define RETRIEVAL_QUERY_MAX 4096   /* bytes of the question used for search */
#define RETRIEVAL_HIT_MAX 4000     /* bytes of one chunk kept for the prompt */

struct retrieval_hit {
    char title[256];
    char content[RETRIEVAL_HIT_MAX + 1];
    double rank;
};

/* Finds up to `limit` (≤ RETRIEVAL_MAX_HITS) chunks of the assistant's
 * knowledge that share words (after stemming in each chunk's language) with
 * `question`, best first. Runs on `c` inside the caller's tenant-scoped
 * transaction. *n gets the count (0 when nothing matches). */
int retrieval_search(PGconn *c, const char *tenant_id, const char *assistant_id,
                     const char *question, int limit, struct retrieval_hit *hits,
                     int *n) SB_MUST_USE;

/* The retrieval-only provider's reply: the best matching chunk, labelled as
 * coming from the knowledge base, or `fallback` (labelled too) when nothing
 * matches. Appends to `out`. */
int retrieval_answer(PGconn *c, const char *tenant_id, const char *assistant_id,
                     const char *question, const char *fallback, struct sb_buf *out) SB_MUST_USE;

#endif
