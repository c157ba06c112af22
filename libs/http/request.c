/* request.c - request storage and the accessors handlers use. */
#include "server.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct exchange *exchange_new(struct http_server *server)
{
    struct exchange *ex = calloc(1, sizeof *ex);
    if (!ex)
        return NULL;
    ex->server = server;
    ex->res.status = 500;
    sb_buf_init(&ex->req.body, HTTP_DEFAULT_MAX_BODY);
    sb_buf_init(&ex->res.headers, 16 * 1024);
    sb_buf_init(&ex->res.body, 64u * 1024 * 1024);
    return ex;
}

char *request_strndup(struct http_request *r, const char *s, size_t n)
{
    char *p;
    if (n < sizeof r->strings - r->strings_used) {
        p = r->strings + r->strings_used;
        r->strings_used += n + 1;
    } else if (!(p = malloc(n + 1))) {
        return NULL;
    }
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Frees a string of request_strndup's that did not fit the arena. */
static void request_strfree(struct http_request *r, char *p)
{
    uintptr_t a = (uintptr_t)r->strings, q = (uintptr_t)p;
    if (q < a || q >= a + sizeof r->strings)
        free(p);
}

static void kv_free(struct http_request *r, struct kv *kv, int n)
{
    for (int i = 0; i < n; i++) {
        request_strfree(r, kv[i].name);
        request_strfree(r, kv[i].value);
    }
}

void exchange_free(struct exchange *ex)
{
    if (!ex)
        return;
    request_strfree(&ex->req, ex->req.path);
    kv_free(&ex->req, ex->req.params, ex->req.nparams);
    kv_free(&ex->req, ex->req.query, ex->req.nquery);
    kv_free(&ex->req, ex->req.headers, ex->req.nheaders);
    sb_buf_cleanup(&ex->req.body);
    sb_buf_cleanup(&ex->res.headers);
    sb_buf_cleanup(&ex->res.body);
    free(ex);
}

int request_add_header(struct http_request *r, const char *name, const char *value)
{
    if (r->nheaders == HTTP_MAX_HEADERS)
        return SB_ELIMIT;
    size_t nl = strlen(name);
    if (nl && name[nl - 1] == ':')
        nl--;
    char *n = request_strndup(r, name, nl), *v = n ? request_strndup(r, value, strlen(value)) : NULL;
    if (!v) {
        if (n)
            request_strfree(r, n);
        return -ENOMEM;
    }
    for (char *p = n; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    r->headers[r->nheaders++] = (struct kv){n, v};
    return 0;
}

int request_add_query_arg(struct http_request *r, const char *arg)
{
    if (r->nquery == HTTP_MAX_QUERY_ARGS)
        return SB_ELIMIT;
    const char *eq = strchr(arg, '=');
    const char *val = eq ? eq + 1 : "";
    char *n = request_strndup(r, arg, eq ? (size_t)(eq - arg) : strlen(arg));
    char *v = n ? request_strndup(r, val, strlen(val)) : NULL;
    if (!v) {
        if (n)
            request_strfree(r, n);
        return -ENOMEM;
    }
    r->query[r->nquery++] = (struct kv){n, v};
    return 0;
}

static bool sane_token(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return false;
    return true;
}

void request_set_correlation_id(struct http_request *r)
{
    const char *given = http_request_header(r, "x-correlation-id");
    if (!given || !sane_token(given))
        given = http_request_header(r, "x-request-id");
    if (given && sane_token(given)) {
        snprintf(r->correlation_id, sizeof r->correlation_id, "%s", given);
        return;
    }
    if (sb_uuid_v7_str(r->correlation_id) != 0)
        snprintf(r->correlation_id, sizeof r->correlation_id, "unknown");
}

static const char *kv_find(const struct kv *kv, int n, const char *name, bool nocase)
{
    for (int i = 0; i < n; i++)
        if ((nocase ? strcasecmp(kv[i].name, name) : strcmp(kv[i].name, name)) == 0)
            return kv[i].value;
    return NULL;
}

const char *http_request_method(const struct http_request *r)
{
    return r->method;
}

const char *http_request_path(const struct http_request *r)
{
    return r->path;
}

const char *http_request_route(const struct http_request *r)
{
    return r->route ? r->route->pattern : "";
}

const char *http_request_param(const struct http_request *r, const char *name)
{
    return kv_find(r->params, r->nparams, name, false);
}

const char *http_request_query(const struct http_request *r, const char *name)
{
    return kv_find(r->query, r->nquery, name, false);
}

const char *http_request_header(const struct http_request *r, const char *name)
{
    return kv_find(r->headers, r->nheaders, name, true);
}

struct sb_str http_request_body(const struct http_request *r)
{
    if (!r->body.data)
        return (struct sb_str){"", 0};
    return (struct sb_str){r->body.data, r->body.len};
}

bool http_request_oversize(const struct http_request *r)
{
    return r->oversize;
}

const char *http_request_correlation_id(const struct http_request *r)
{
    return r->correlation_id;
}

const char *http_request_peer(const struct http_request *r)
{
    return r->peer;
}

bool http_request_on_loop(const struct http_request *r)
{
    return ((const struct exchange *)r)->on_loop;
}

void http_request_pass_to_worker(struct http_request *r)
{
    struct exchange *ex = (struct exchange *)r;
    if (ex->on_loop)
        ex->to_worker = true;
}

struct http_deferred *http_defer(struct http_request *req)
{
    struct exchange *ex = (struct exchange *)req;
    ex->deferred = true;
    atomic_store_explicit(&ex->holders, 2, memory_order_relaxed);
    return (struct http_deferred *)ex;
}

const struct http_request *http_deferred_request(struct http_deferred *d)
{
    return &((struct exchange *)d)->req;
}

struct http_response *http_deferred_response(struct http_deferred *d)
{
    return &((struct exchange *)d)->res;
}

void http_deferred_finish(struct http_deferred *d)
{
    struct exchange *ex = (struct exchange *)d;
    response_ensure(&ex->res, "deferred response left empty");
    if (exchange_let_go(ex))
        done_push(ex->server, ex);
}
