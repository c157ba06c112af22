/* Router matching: literals, {params}, precedence, 404 vs 405, bad patterns. */
#include "router.h"

#include <criterion/criterion.h>
#include <string.h>

static void h_a(struct http_request *q, struct http_response *r, void *a)
{
    (void)q, (void)r, (void)a;
}
static void h_b(struct http_request *q, struct http_response *r, void *a)
{
    (void)q, (void)r, (void)a;
}

static struct router R;

static void setup(void)
{
    router_init(&R);
    cr_assert_eq(router_add(&R, "GET", "/health", h_a, NULL, NULL), 0);
    cr_assert_eq(router_add(&R, "POST", "/v1/webhook/{source}/{tenant_id}/{workspace_id}/{channel_id}",
                            h_a, NULL, NULL), 0);
    cr_assert_eq(router_add(&R, "GET", "/v1/messages/{id}", h_a, NULL, NULL), 0);
    cr_assert_eq(router_add(&R, "GET", "/v1/messages/search", h_b, NULL, NULL), 0);
    cr_assert_eq(router_add(&R, "DELETE", "/v1/messages/{id}", h_b, NULL, NULL), 0);
    cr_assert_eq(router_add(&R, "GET", "/", h_b, NULL, NULL), 0);
}

static void teardown(void)
{
    router_cleanup(&R);
}

TestSuite(router, .init = setup, .fini = teardown, .timeout = 10);

static enum router_result match(const char *m, const char *path, const struct router_route **rt,
                                struct router_param *p, int *np)
{
    return router_match(&R, m, path, rt, p, np, NULL);
}

Test(router, literal)
{
    const struct router_route *rt;
    struct router_param p[HTTP_MAX_PARAMS];
    int np;
    cr_assert_eq(match("GET", "/health", &rt, p, &np), ROUTER_MATCH);
    cr_assert_str_eq(rt->pattern, "/health");
    cr_assert_eq(np, 0);
    cr_assert_eq(match("GET", "/", &rt, p, &np), ROUTER_MATCH);
    cr_assert_str_eq(rt->pattern, "/");
}

Test(router, params_bound_in_order)
{
    const struct router_route *rt;
    struct router_param p[HTTP_MAX_PARAMS];
    int np;
    cr_assert_eq(match("POST", "/v1/webhook/whatsapp/t1/w2/c3", &rt, p, &np), ROUTER_MATCH);
    cr_assert_eq(np, 4);
    const char *names[] = {"source", "tenant_id", "workspace_id", "channel_id"};
    const char *vals[] = {"whatsapp", "t1", "w2", "c3"};
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(p[i].name, names[i]);
        cr_assert_eq(p[i].len, strlen(vals[i]));
        cr_assert(memcmp(p[i].value, vals[i], p[i].len) == 0);
    }
}

Test(router, literal_beats_param_regardless_of_order)
{
    const struct router_route *rt;
    struct router_param p[HTTP_MAX_PARAMS];
    int np;
    cr_assert_eq(match("GET", "/v1/messages/search", &rt, p, &np), ROUTER_MATCH);
    cr_assert_eq(rt->fn, h_b);
    cr_assert_eq(np, 0);
    cr_assert_eq(match("GET", "/v1/messages/abc", &rt, p, &np), ROUTER_MATCH);
    cr_assert_eq(rt->fn, h_a);
    cr_assert_eq(np, 1);
}

Test(router, not_found_cases)
{
    const struct router_route *rt;
    struct router_param p[HTTP_MAX_PARAMS];
    int np;
    cr_assert_eq(match("GET", "/healthz", &rt, p, &np), ROUTER_NOT_FOUND);
    cr_assert_eq(match("GET", "/health/", &rt, p, &np), ROUTER_NOT_FOUND);
    cr_assert_eq(match("GET", "//health", &rt, p, &np), ROUTER_NOT_FOUND);
    cr_assert_eq(match("POST", "/v1/webhook/whatsapp/t1/w2", &rt, p, &np), ROUTER_NOT_FOUND);
    cr_assert_eq(match("POST", "/v1/webhook/whatsapp/t1/w2/c3/extra", &rt, p, &np), ROUTER_NOT_FOUND);
    cr_assert_eq(match("GET", "health", &rt, p, &np), ROUTER_NOT_FOUND);
    cr_assert_null(rt);
}

Test(router, method_not_allowed_lists_allowed)
{
    const struct router_route *rt;
    struct router_param p[HTTP_MAX_PARAMS];
    int np;
    struct sb_buf allow;
    sb_buf_init(&allow, 256);
    cr_assert_eq(router_match(&R, "PUT", "/v1/messages/7", &rt, p, &np, &allow),
                 ROUTER_METHOD_NOT_ALLOWED);
    cr_assert_str_eq(allow.data, "GET, DELETE");
    sb_buf_cleanup(&allow);
}

Test(router, head_uses_get)
{
    const struct router_route *rt;
    struct router_param p[HTTP_MAX_PARAMS];
    int np;
    cr_assert_eq(match("HEAD", "/health", &rt, p, &np), ROUTER_MATCH);
}

Test(router, bad_patterns_rejected)
{
    cr_assert_eq(router_add(&R, "GET", "no-slash", h_a, NULL, NULL), -EINVAL);
    cr_assert_eq(router_add(&R, "GET", "/a//b", h_a, NULL, NULL), -EINVAL);
    cr_assert_eq(router_add(&R, "GET", "/a/", h_a, NULL, NULL), -EINVAL);
    cr_assert_eq(router_add(&R, "GET", "/a/{}", h_a, NULL, NULL), -EINVAL);
    cr_assert_eq(router_add(&R, "GET", "/a/{x", h_a, NULL, NULL), -EINVAL);
    cr_assert_eq(router_add(&R, "GET", "/a/b{x}", h_a, NULL, NULL), -EINVAL);
    cr_assert_eq(router_add(&R, "BREW", "/coffee", h_a, NULL, NULL), -EINVAL);
    cr_assert_eq(router_add(&R, "GET", "/a/{p1}/{p2}/{p3}/{p4}/{p5}/{p6}/{p7}/{p8}/{p9}", h_a, NULL,
                            NULL), -EINVAL);
}

Test(router, duplicate_rejected_even_with_other_param_names)
{
    cr_assert_eq(router_add(&R, "GET", "/health", h_b, NULL, NULL), -EEXIST);
    cr_assert_eq(router_add(&R, "GET", "/v1/messages/{other}", h_b, NULL, NULL), -EEXIST);
    cr_assert_eq(router_add(&R, "PATCH", "/v1/messages/{other}", h_b, NULL, NULL), 0);
}

Test(router, too_deep_path_not_found)
{
    const struct router_route *rt;
    struct router_param p[HTTP_MAX_PARAMS];
    int np;
    char path[256] = "";
    for (int i = 0; i < ROUTER_MAX_SEGMENTS + 2; i++)
        memcpy(path + 2 * i, "/x", 3);
    cr_assert_eq(match("GET", path, &rt, p, &np), ROUTER_NOT_FOUND);
}
