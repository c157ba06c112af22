/* router.c - method + path matching with {params}.
 *
 * Routes are few (tens) and matched by a linear scan that splits the path
 * once; among routes matching the same path, the one whose earliest
 * differing segment is literal wins, so "/v1/messages/search" beats
 * "/v1/messages/{id}" regardless of registration order. */
#include "router.h"

#include <stdlib.h>
#include <string.h>

static const char *const METHODS[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};

void router_init(struct router *r)
{
    memset(r, 0, sizeof *r);
}

void router_cleanup(struct router *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->routes[i].pattern);
        free(r->routes[i].seg_storage);
    }
    free(r->routes);
    memset(r, 0, sizeof *r);
}

static bool method_known(const char *m)
{
    for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++)
        if (strcmp(m, METHODS[i]) == 0)
            return true;
    return false;
}

/* Splits a pattern into segments in place; validates {param} syntax. */
static int compile_pattern(struct router_route *rt)
{
    char *p = rt->seg_storage;
    if (*p != '/')
        return -EINVAL;
    rt->nsegments = 0;
    rt->nparams = 0;
    if (strcmp(p, "/") == 0)
        return 0;
    p++;
    while (p && *p) {
        if (rt->nsegments == ROUTER_MAX_SEGMENTS)
            return -EINVAL;
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        size_t len = strlen(p);
        if (len == 0)
            return -EINVAL;
        bool param = p[0] == '{';
        if (param) {
            if (len < 3 || p[len - 1] != '}' || rt->nparams == HTTP_MAX_PARAMS)
                return -EINVAL;
            p[len - 1] = '\0';
            p++;
            rt->nparams++;
        } else if (strchr(p, '{') || strchr(p, '}')) {
            return -EINVAL;
        }
        rt->segments[rt->nsegments] = p;
        rt->is_param[rt->nsegments] = param;
        rt->nsegments++;
        p = slash ? slash + 1 : NULL;
        if (slash && *p == '\0')
            return -EINVAL; /* trailing slash */
    }
    return 0;
}

static bool same_shape(const struct router_route *a, const struct router_route *b)
{
    if (a->nsegments != b->nsegments)
        return false;
    for (int i = 0; i < a->nsegments; i++) {
        if (a->is_param[i] != b->is_param[i])
            return false;
        if (!a->is_param[i] && strcmp(a->segments[i], b->segments[i]) != 0)
            return false;
    }
    return true;
}

int router_add(struct router *r, const char *method, const char *pattern, http_handler_fn fn,
               void *arg, const struct http_route_opts *opts)
{
    if (!method || !pattern || !fn || !method_known(method))
        return -EINVAL;
    struct router_route rt = {0};
    snprintf(rt.method, sizeof rt.method, "%s", method);
    rt.fn = fn;
    rt.arg = arg;
    if (opts)
        rt.opts = *opts;
    rt.pattern = strdup(pattern);
    rt.seg_storage = strdup(pattern);
    if (!rt.pattern || !rt.seg_storage) {
        free(rt.pattern);
        free(rt.seg_storage);
        return -ENOMEM;
    }
    int rc = compile_pattern(&rt);
    for (size_t i = 0; rc == 0 && i < r->n; i++)
        if (strcmp(r->routes[i].method, method) == 0 && same_shape(&r->routes[i], &rt))
            rc = -EEXIST;
    if (rc == 0 && r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct router_route *nr = realloc(r->routes, cap * sizeof *nr);
        if (!nr)
            rc = -ENOMEM;
        else {
            r->routes = nr;
            r->cap = cap;
        }
    }
    if (rc != 0) {
        free(rt.pattern);
        free(rt.seg_storage);
        return rc;
    }
    r->routes[r->n++] = rt;
    return 0;
}

struct split_path {
    const char *seg[ROUTER_MAX_SEGMENTS];
    size_t len[ROUTER_MAX_SEGMENTS];
    int n;
};

/* Splits "/a/b/c"; false when the path is not matchable at all (too deep,
 * empty segments, no leading slash). "/" has zero segments. */
static bool split(const char *path, struct split_path *sp)
{
    sp->n = 0;
    if (path[0] != '/')
        return false;
    if (path[1] == '\0')
        return true;
    const char *p = path + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || sp->n == ROUTER_MAX_SEGMENTS)
            return false;
        sp->seg[sp->n] = p;
        sp->len[sp->n] = len;
        sp->n++;
        if (!slash)
            return true;
        p = slash + 1;
    }
}

/* Score of a route for a split path, or -1 when it does not match.
 * Literal segments earlier in the path weigh more. */
static long score(const struct router_route *rt, const struct split_path *sp)
{
    if (rt->nsegments != sp->n)
        return -1;
    long s = 0;
    for (int i = 0; i < sp->n; i++) {
        if (rt->is_param[i])
            continue;
        if (strlen(rt->segments[i]) != sp->len[i] ||
            memcmp(rt->segments[i], sp->seg[i], sp->len[i]) != 0)
            return -1;
        s |= 1L << (ROUTER_MAX_SEGMENTS - i);
    }
    return s;
}

static bool method_matches(const char *route_method, const char *method)
{
    if (strcmp(route_method, method) == 0)
        return true;
    return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

static void bind_params(const struct router_route *rt, const struct split_path *sp,
                        struct router_param *params, int *nparams)
{
    *nparams = 0;
    for (int i = 0; i < sp->n; i++) {
        if (!rt->is_param[i])
            continue;
        params[*nparams] = (struct router_param){rt->segments[i], sp->seg[i], sp->len[i]};
        (*nparams)++;
    }
}

enum router_result router_match(const struct router *r, const char *method, const char *path,
                                const struct router_route **route, struct router_param *params,
                                int *nparams, struct sb_buf *allow)
{
    struct split_path sp;
    *route = NULL;
    *nparams = 0;
    if (!split(path, &sp))
        return ROUTER_NOT_FOUND;
    const struct router_route *best = NULL;
    long best_score = -1;
    bool path_matched = false;
    for (size_t i = 0; i < r->n; i++) {
        long s = score(&r->routes[i], &sp);
        if (s < 0)
            continue;
        path_matched = true;
        if (method_matches(r->routes[i].method, method) && s > best_score) {
            best = &r->routes[i];
            best_score = s;
        }
    }
    if (best) {
        *route = best;
        bind_params(best, &sp, params, nparams);
        return ROUTER_MATCH;
    }
    if (!path_matched)
        return ROUTER_NOT_FOUND;
    for (size_t i = 0; allow && i < r->n; i++) {
        if (score(&r->routes[i], &sp) < 0 || strstr(allow->data ? allow->data : "", r->routes[i].method))
            continue;
        if (sb_buf_appendf(allow, "%s%s", allow->len ? ", " : "", r->routes[i].method) != 0)
            break;
    }
    return ROUTER_METHOD_NOT_ALLOWED;
}
