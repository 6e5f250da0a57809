/* http_routes: the route table and path-template matching. */
#include "http_routes.h"

#include <string.h>

/* One line per route: id, method, path, needs a token, takes a JSON body,
 * every status it can answer. Kept tabular on purpose. */
/* clang-format off */
static const struct payq_route g_routes[] = {
    {PAYQ_ROUTE_POST_TRANSFERS, "POST", "/v1/transfers", true, true,
     {202, 400, 401, 409, 413, 415, 422, 503, 0}},
    {PAYQ_ROUTE_GET_TRANSFER, "GET", "/v1/transfers/{id}", true, false,
     {200, 400, 401, 404, 503, 0}},
    {PAYQ_ROUTE_GET_ACCOUNT, "GET", "/v1/accounts/{id}", true, false,
     {200, 400, 401, 404, 503, 0}},
    {PAYQ_ROUTE_GET_BATCH, "GET", "/v1/batches/{batch_id}", true, false,
     {200, 400, 401, 404, 503, 0}},
    {PAYQ_ROUTE_HEALTHZ, "GET", "/healthz", false, false, {200, 0}},
    {PAYQ_ROUTE_READYZ, "GET", "/readyz", false, false, {200, 503, 0}},
    {PAYQ_ROUTE_METRICS, "GET", "/metrics", false, false, {200, 0}},
};
/* clang-format on */

#define NROUTES (sizeof g_routes / sizeof g_routes[0])

/* The methods an OpenAPI 3.0 path item can describe. */
static const char *const g_methods[] = {"GET",     "PUT",  "POST",  "DELETE",
                                        "OPTIONS", "HEAD", "PATCH", "TRACE"};

const struct payq_route *payq_routes(size_t *n)
{
    *n = NROUTES;
    return g_routes;
}

/* Matches url against a template; a {name} stands for one non-empty
 * segment and must end the template. */
static bool path_matches(const char *tpl, const char *url, const char **param, size_t *param_len)
{
    const char *brace = strchr(tpl, '{');
    *param = NULL;
    *param_len = 0;
    if (!brace)
        return strcmp(tpl, url) == 0;
    size_t prefix = (size_t)(brace - tpl);
    if (strncmp(tpl, url, prefix) != 0)
        return false;
    const char *seg = url + prefix;
    size_t n = strlen(seg);
    if (n == 0 || memchr(seg, '/', n))
        return false;
    *param = seg;
    *param_len = n;
    return true;
}

/* Appends a method to the Allow list. */
static void allow_add(struct payq_route_match *m, const char *method)
{
    size_t used = strlen(m->allow), n = strlen(method);
    if (used + n + 3 >= sizeof m->allow)
        return;
    if (used) {
        memcpy(m->allow + used, ", ", 2);
        used += 2;
    }
    memcpy(m->allow + used, method, n + 1);
}

void payq_route_match(const char *method, const char *url, struct payq_route_match *m)
{
    const char *param;
    size_t param_len;
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < NROUTES; i++) {
        if (!path_matches(g_routes[i].path, url, &param, &param_len))
            continue;
        m->path = g_routes[i].path;
        if (strcmp(g_routes[i].method, method) == 0) {
            m->route = &g_routes[i];
            m->param = param;
            m->param_len = param_len;
            m->status = 0;
            m->allow[0] = '\0';
            return;
        }
        allow_add(m, g_routes[i].method);
    }
    m->status = m->path ? PAYQ_ROUTE_STATUS_BAD_METHOD : PAYQ_ROUTE_STATUS_UNMATCHED;
}

bool payq_route_answers(const struct payq_route *r, int status)
{
    if (!r)
        return status == PAYQ_ROUTE_STATUS_UNMATCHED || status == PAYQ_ROUTE_STATUS_BAD_METHOD;
    for (const int *s = r->statuses; *s; s++)
        if (*s == status)
            return true;
    return false;
}

static bool path_has_method(const char *path, const char *method)
{
    for (size_t i = 0; i < NROUTES; i++)
        if (strcmp(g_routes[i].path, path) == 0 && strcmp(g_routes[i].method, method) == 0)
            return true;
    return false;
}

void payq_routes_print(FILE *out)
{
    for (size_t i = 0; i < NROUTES; i++) {
        const struct payq_route *r = &g_routes[i];
        for (const int *s = r->statuses; *s; s++)
            fprintf(out, "%s %s %d\n", r->method, r->path, *s);
        /* 405 lines once per path: at its first route. */
        bool first = true;
        for (size_t j = 0; j < i; j++)
            first &= strcmp(g_routes[j].path, r->path) != 0;
        for (size_t m = 0; first && m < sizeof g_methods / sizeof g_methods[0]; m++)
            if (!path_has_method(r->path, g_methods[m]))
                fprintf(out, "%s %s %d\n", g_methods[m], r->path, PAYQ_ROUTE_STATUS_BAD_METHOD);
    }
    fprintf(out, "* * %d\n", PAYQ_ROUTE_STATUS_UNMATCHED);
}
