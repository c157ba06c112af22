/* binarray.c - one-dimensional arrays in PostgreSQL's binary format (what
 * array_recv reads): a header of five big-endian int32 (dimensions = 1,
 * has-nulls flag, element type OID, element count, lower bound = 1), then per
 * element its length (-1 for NULL) and its bytes. The header is written when
 * the parameter is asked for, so elements can be appended one by one. */
#include <arpa/inet.h>
#include <string.h>

#include "db.h"

#define HEADER_BYTES 20

static void put_u32(char *at, uint32_t v)
{
    v = htonl(v);
    memcpy(at, &v, 4);
}

void db_bin_array_init(struct db_bin_array *a, unsigned oid, size_t max_bytes)
{
    memset(a, 0, sizeof *a);
    sb_buf_init(&a->data, max_bytes + HEADER_BYTES);
    a->oid = oid;
}

void db_bin_array_cleanup(struct db_bin_array *a)
{
    sb_buf_cleanup(&a->data);
}

void db_bin_array_reset(struct db_bin_array *a)
{
    sb_buf_reset(&a->data);
    a->count = 0;
    a->has_null = false;
}

int db_bin_array_add(struct db_bin_array *a, const void *v, size_t len)
{
    if (v && len > INT32_MAX)
        return SB_ELIMIT;
    char header[HEADER_BYTES] = {0};
    int rc = a->data.len == 0 ? sb_buf_append(&a->data, header, sizeof header) : 0;
    size_t mark = a->data.len;
    char word[4];
    put_u32(word, v ? (uint32_t)len : UINT32_MAX); /* -1: NULL */
    if (rc == 0)
        rc = sb_buf_append(&a->data, word, sizeof word);
    if (rc == 0 && v && len)
        rc = sb_buf_append(&a->data, v, len);
    if (rc != 0) {
        a->data.len = mark; /* unchanged */
        return rc;
    }
    a->count++;
    a->has_null |= v == NULL;
    return 0;
}

int db_bin_array_add_str(struct db_bin_array *a, const char *v)
{
    return db_bin_array_add(a, v, v ? strlen(v) : 0);
}

int db_bin_array_add_uuid(struct db_bin_array *a, const char *uuid)
{
    if (!uuid)
        return db_bin_array_add(a, NULL, 0);
    struct sb_uuid u;
    if (sb_uuid_parse(uuid, strlen(uuid), &u) != 0)
        return -EINVAL;
    return db_bin_array_add(a, u.b, sizeof u.b);
}

const char *db_bin_array_param(struct db_bin_array *a, int *len)
{
    if (a->data.len == 0) { /* no element yet: an empty array is just its header */
        char header[HEADER_BYTES] = {0};
        if (sb_buf_append(&a->data, header, sizeof header) != 0)
            return NULL;
    }
    char *h = a->data.data;
    put_u32(h, a->count ? 1 : 0); /* an empty array has no dimensions */
    put_u32(h + 4, a->has_null ? 1 : 0);
    put_u32(h + 8, a->oid);
    put_u32(h + 12, (uint32_t)a->count);
    put_u32(h + 16, 1);
    *len = a->count ? (int)a->data.len : 12;
    return h;
}
