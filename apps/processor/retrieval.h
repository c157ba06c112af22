/* retrieval.h - internal to sabia-processor: the assistant's knowledge,
 * searched with PostgreSQL full-text search, and the built-in
 * retrieval-only provider that answers from it without any network. */
#ifndef SABIA_PROCESSOR_RETRIEVAL_H
#define SABIA_PROCESSOR_RETRIEVAL_H

#include "db.h"

#define RETRIEVAL_MAX_HITS 8
#define RETRIEVAL_QUERY_MAX 4096   /* bytes of the question used for search */
#define RETRIEVAL_HIT_MAX 4000     /* bytes of one chunk kept for the prompt */
#define RETRIEVAL_TITLE_MAX 255    /* bytes of its title */

/* One matching chunk; title and content are heap copies (content cut to
 * RETRIEVAL_HIT_MAX bytes), freed by retrieval_hits_free(). */
struct retrieval_hit {
    char *title; /* "" when the chunk has none */
    char *content;
    double rank;
};

/* Frees the strings of n hits. */
void retrieval_hits_free(struct retrieval_hit *hits, int n);

/* One question asked of an assistant's knowledge. */
struct retrieval_query {
    const char *assistant_id;
    const char *question;          /* its first RETRIEVAL_QUERY_MAX bytes are used */
    int limit;                     /* 1..RETRIEVAL_MAX_HITS */
    struct retrieval_hit *hits;    /* room for `limit` */
    int n;                         /* out: hits found, best first (the caller frees them) */
};

/* Answers n questions (of one tenant, any assistants) with one statement on
 * `c`, inside the caller's tenant-scoped transaction: up to `limit` chunks of
 * each assistant's knowledge that share words (after stemming in each chunk's
 * language) with its question. An empty question finds nothing. */
int retrieval_search_many(PGconn *c, const char *tenant_id, struct retrieval_query *qs,
                          size_t n) SB_MUST_USE;

/* The same for one question; *n gets the count of hits (the caller frees
 * them). */
int retrieval_search(PGconn *c, const char *tenant_id, const char *assistant_id,
                     const char *question, int limit, struct retrieval_hit *hits,
                     int *n) SB_MUST_USE;

/* The retrieval-only provider's reply from the hits of a search: the best
 * chunk, labelled as coming from the knowledge base, or `fallback` (labelled
 * too) when there is none. Appends to `out`. */
int retrieval_reply(const struct retrieval_hit *hits, int n, const char *fallback,
                    struct sb_buf *out) SB_MUST_USE;

/* Search (one hit) and reply in one call. */
int retrieval_answer(PGconn *c, const char *tenant_id, const char *assistant_id,
                     const char *question, const char *fallback, struct sb_buf *out) SB_MUST_USE;

#endif
