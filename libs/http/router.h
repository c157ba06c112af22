/* router.h - internal: method + path matching with {params}. Pure; no I/O.
 * Used by server.c and by the tests; not part of the public API. */
#ifndef SABIA_HTTP_ROUTER_H
#define SABIA_HTTP_ROUTER_H

#include "http.h"

#define ROUTER_MAX_SEGMENTS 16

struct router_route {
    char method[8];
    char *pattern;                 /* owned copy of the pattern */
    char *segments[ROUTER_MAX_SEGMENTS]; /* point into seg_storage */
    bool is_param[ROUTER_MAX_SEGMENTS];
    char *seg_storage;
    int nsegments;
    int nparams;
    http_handler_fn fn;
    void *arg;
    struct http_route_opts opts;
};

struct router {
    struct router_route *routes;
    size_t n, cap;
};

/* A path parameter bound during matching; name points into the route, value
 * is [ptr, ptr+len) inside the matched path. */
struct router_param {
    const char *name;
    const char *value;
    size_t len;
};

enum router_result { ROUTER_MATCH, ROUTER_NOT_FOUND, ROUTER_METHOD_NOT_ALLOWED };

void router_init(struct router *r);
void router_cleanup(struct router *r);
/* See http_route() for the contract. */
int router_add(struct router *r, const char *method, const char *pattern, http_handler_fn fn,
               void *arg, const struct http_route_opts *opts);
/* Matches `path` (no query string). On ROUTER_MATCH *route and params[0..*nparams)
 * are set. On ROUTER_METHOD_NOT_ALLOWED, `allow` (may be NULL) receives the
 * comma-separated methods that the path does accept. HEAD matches GET routes. */
enum router_result router_match(const struct router *r, const char *method, const char *path,
                                const struct router_route **route, struct router_param *params,
                                int *nparams, struct sb_buf *allow);

#endif
