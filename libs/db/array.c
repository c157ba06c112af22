/* array.c - PostgreSQL array literals for batch parameters (db.h). The
 * literal is kept open ("{a,b") while elements are added; db_array_text()
 * closes it. One byte of the limit is held back for the closing brace. */
#include <stdio.h>
#include <string.h>

#include "db.h"

void db_array_init(struct db_array *a, size_t max_bytes)
{
    sb_buf_init(&a->text, max_bytes);
    a->closed = false;
}

void db_array_cleanup(struct db_array *a)
{
    sb_buf_cleanup(&a->text);
    a->closed = false;
}

void db_array_reset(struct db_array *a)
{
    sb_buf_reset(&a->text);
    a->closed = false;
}

/* Quoted element: backslash and double quote are escaped, everything else is
 * taken as is (inside quotes, braces, commas and spaces are plain text). */
static int append_quoted(struct sb_buf *b, const char *v)
{
    int rc = sb_buf_append(b, "\"", 1);
    while (rc == 0 && *v) {
        size_t run = strcspn(v, "\\\"");
        rc = sb_buf_append(b, v, run);
        v += run;
        if (rc == 0 && *v) {
            char esc[2] = {'\\', *v++};
            rc = sb_buf_append(b, esc, sizeof esc);
        }
    }
    return rc == 0 ? sb_buf_append(b, "\"", 1) : rc;
}

int db_array_add(struct db_array *a, const char *v)
{
    struct sb_buf *b = &a->text;
    if (a->closed)
        return -EINVAL;
    size_t mark = b->len;
    int rc = sb_buf_append(b, mark ? "," : "{", 1);
    if (rc == 0)
        rc = v ? append_quoted(b, v) : sb_buf_append_str(b, "NULL");
    if (rc == 0 && b->len >= b->max)
        rc = SB_ELIMIT; /* no room left for the closing brace */
    if (rc != 0) {
        b->len = mark;
        if (b->data)
            b->data[mark] = '\0';
    }
    return rc;
}

int db_array_add_long(struct db_array *a, long v)
{
    char text[24];
    snprintf(text, sizeof text, "%ld", v);
    return db_array_add(a, text);
}

const char *db_array_text(struct db_array *a)
{
    if (!a->closed) {
        if (sb_buf_append(&a->text, a->text.len ? "}" : "{}", a->text.len ? 1 : 2) != 0)
            return NULL;
        a->closed = true;
    }
    return a->text.data;
}

int db_exec_arrays(PGconn *c, const char *sql, const char *first, struct db_array *a, int n,
                   PGresult **res, struct sb_buf *err)
{
    if (res)
        *res = NULL;
    if (n < 0 || n > DB_ARRAY_PARAMS_MAX)
        return -EINVAL;
    const char *p[1 + DB_ARRAY_PARAMS_MAX] = {first};
    for (int i = 0; i < n; i++)
        if (!(p[1 + i] = db_array_text(&a[i])))
            return SB_ELIMIT;
    return db_exec(c, sql, 1 + n, p, res, err);
}
