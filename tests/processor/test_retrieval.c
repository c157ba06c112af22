/* Knowledge search and the retrieval-only provider against PostgreSQL. */
#include "retrieval.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static char T[SB_UUID_STRLEN], W[SB_UUID_STRLEN], A[SB_UUID_STRLEN], KB[SB_UUID_STRLEN];
static struct db_pool *POOL;

static void owner(const char *sql, int n, const char *const *p)
{
    PGconn *c = PQconnectdb(ts_env("SABIA_DATABASE_OWNER_URL"));
    cr_assert_eq(PQstatus(c), CONNECTION_OK);
    PQclear(PQexec(c, "BEGIN"));
    const char *t[] = {T};
    PQclear(PQexecParams(c, "SELECT set_config('app.tenant_id', $1, true)", 1, NULL, t, NULL, NULL, 0));
    PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    PQclear(PQexec(c, "COMMIT"));
    PQfinish(c);
}

static void setup(void)
{
    cr_assert_eq(sb_uuid_v7_str(T), 0);
    cr_assert_eq(sb_uuid_v7_str(W), 0);
    cr_assert_eq(sb_uuid_v7_str(A), 0);
    cr_assert_eq(sb_uuid_v7_str(KB), 0);
    const char *t[] = {T};
    owner("INSERT INTO tenants (id, name) VALUES ($1, 'R')", 1, t);
    const char *w[] = {W, T};
    owner("INSERT INTO workspaces (id, tenant_id, name) VALUES ($1, $2, 'W')", 2, w);
    const char *a[] = {A, T, W};
    owner("INSERT INTO assistants (id, tenant_id, workspace_id, name) VALUES ($1, $2, $3, 'A')", 3, a);
    const char *kb[] = {KB, T, A};
    owner("INSERT INTO knowledge_bases (id, tenant_id, assistant_id, name, status) "
          "VALUES ($1, $2, $3, 'FAQ', 'ready')", 3, kb);
    const char *c1[] = {T, KB, A, "Shipping", "We ship orders within two days to every country in Europe.", "english", "0"};
    const char *c2[] = {T, KB, A, "Devoluções", "Aceitamos devoluções em até 30 dias após a entrega.", "portuguese", "1"};
    const char *c3[] = {T, KB, A, "Hours", "Open Monday to Friday, nine to six.", "english", "2"};
    const char *sql = "INSERT INTO knowledge_chunks (tenant_id, knowledge_base_id, assistant_id, title, "
                      "content, language, ordinal) VALUES ($1, $2, $3, $4, $5, $6, $7::int)";
    owner(sql, 7, c1);
    owner(sql, 7, c2);
    owner(sql, 7, c3);
    POOL = db_pool_new(ts_env("SABIA_DATABASE_URL"), 2, "test", NULL);
    cr_assert_not_null(POOL);
}

static void teardown(void)
{
    db_pool_free(POOL);
}

TestSuite(retrieval, .init = setup, .fini = teardown, .timeout = 60);

struct ask {
    const char *assistant, *question;
    struct retrieval_hit hits[RETRIEVAL_MAX_HITS];
    int n;
    struct sb_buf answer;
};

static int search_tx(PGconn *c, void *arg)
{
    struct ask *q = arg;
    int rc = retrieval_search(c, T, q->assistant, q->question, 3, q->hits, &q->n);
    if (rc == 0)
        rc = retrieval_answer(c, T, q->assistant, q->question, NULL, &q->answer);
    return rc;
}

static void ask(struct ask *q)
{
    sb_buf_init(&q->answer, 16384);
    cr_assert_eq(db_tenant_tx(POOL, T, search_tx, q), 0);
}

static void done(struct ask *q)
{
    retrieval_hits_free(q->hits, q->n);
    sb_buf_cleanup(&q->answer);
}

Test(retrieval, stemmed_words_find_the_chunk)
{
    struct ask q = {.assistant = A, .question = "Do you ship to Portugal?"};
    ask(&q);
    cr_assert_eq(q.n, 1);
    cr_assert_str_eq(q.hits[0].title, "Shipping");
    cr_assert(strstr(q.answer.data, "From our knowledge base (Shipping): We ship"), "%s", q.answer.data);
    done(&q);
}

Test(retrieval, each_chunk_in_its_own_language)
{
    struct ask q = {.assistant = A, .question = "Como funcionam as devoluções?"};
    ask(&q);
    cr_assert_geq(q.n, 1);
    cr_assert_str_eq(q.hits[0].title, "Devoluções");
    done(&q);
}

Test(retrieval, nothing_matches_gives_the_labelled_fallback)
{
    struct ask q = {.assistant = A, .question = "quantum chromodynamics"};
    ask(&q);
    cr_assert_eq(q.n, 0);
    cr_assert(strncmp(q.answer.data, "[automatic reply] ", 18) == 0, "%s", q.answer.data);
    done(&q);
}

Test(retrieval, other_assistants_knowledge_is_not_used)
{
    char other[SB_UUID_STRLEN];
    cr_assert_eq(sb_uuid_v7_str(other), 0);
    struct ask q = {.assistant = other, .question = "Do you ship?"};
    ask(&q);
    cr_assert_eq(q.n, 0);
    done(&q);
}

Test(retrieval, empty_or_hostile_questions_are_harmless)
{
    struct ask q = {.assistant = A, .question = ""};
    ask(&q);
    cr_assert_eq(q.n, 0);
    done(&q);
    struct ask q2 = {.assistant = A, .question = "ship' | !(:*) & ''); DROP TABLE messages; --"};
    ask(&q2);
    cr_assert_geq(q2.n, 1, "the words still count; the syntax is not interpreted");
    done(&q2);
}

struct many {
    struct retrieval_query qs[4];
    struct retrieval_hit hits[4][RETRIEVAL_MAX_HITS];
};

static int many_tx(PGconn *c, void *arg)
{
    struct many *m = arg;
    return retrieval_search_many(c, T, m->qs, 4);
}

Test(retrieval, many_questions_in_one_statement_each_get_their_own_hits)
{
    char other[SB_UUID_STRLEN];
    cr_assert_eq(sb_uuid_v7_str(other), 0);
    struct many m = {.qs = {
        {.assistant_id = A, .question = "When are you open?", .limit = 3},
        {.assistant_id = A, .question = "", .limit = 3},
        {.assistant_id = other, .question = "Do you ship?", .limit = 3},
        {.assistant_id = A, .question = "ship devoluções hours", .limit = 2},
    }};
    for (int i = 0; i < 4; i++)
        m.qs[i].hits = m.hits[i];
    cr_assert_eq(db_tenant_tx(POOL, T, many_tx, &m), 0);
    cr_assert_eq(m.qs[0].n, 1);
    cr_assert_str_eq(m.qs[0].hits[0].title, "Hours");
    cr_assert_eq(m.qs[1].n, 0, "an empty question finds nothing");
    cr_assert_eq(m.qs[2].n, 0, "another assistant's question sees none of A's knowledge");
    cr_assert_eq(m.qs[3].n, 2, "three chunks match, the limit is two");
    for (int i = 0; i < 4; i++)
        retrieval_hits_free(m.qs[i].hits, m.qs[i].n);
}

Test(retrieval, a_long_question_is_cut_on_a_character_boundary)
{
    /* "ç" is two bytes: cutting at RETRIEVAL_QUERY_MAX lands inside one
     * unless the cut respects UTF-8 (PostgreSQL would refuse the text). */
    size_t len = RETRIEVAL_QUERY_MAX + 64;
    char *long_q = malloc(len + 1);
    cr_assert_not_null(long_q);
    memcpy(long_q, "ship ", 5);
    for (size_t i = 5; i + 2 <= len; i += 2)
        memcpy(long_q + i, "\xc3\xa7", 2);
    long_q[len - (len - 5) % 2] = '\0';
    struct ask q = {.assistant = A, .question = long_q};
    ask(&q);
    cr_assert_geq(q.n, 1, "the words within the limit still count");
    done(&q);
    free(long_q);
}
