/* http_routes: the one table of what the HTTP API answers: each route's
 * method, path (an OpenAPI path template), whether it needs a bearer token
 * or a JSON body, and every status code it can answer. The server routes
 * with it and refuses (logs) any status not declared here; `payq-producer
 * routes` prints it so tests/integration/integration_openapi.sh can hold
 * schemas/openapi.yaml to it. Any other method on a known path answers 405,
 * any other path 404. */
#ifndef PAYQ_HTTP_ROUTES_H
#define PAYQ_HTTP_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum payq_route_id {
    PAYQ_ROUTE_POST_TRANSFERS,
    PAYQ_ROUTE_GET_TRANSFER,
    PAYQ_ROUTE_GET_ACCOUNT,
    PAYQ_ROUTE_GET_BATCH,
    PAYQ_ROUTE_HEALTHZ,
    PAYQ_ROUTE_READYZ,
    PAYQ_ROUTE_METRICS,
};

#define PAYQ_ROUTE_MAX_STATUSES 10

struct payq_route {
    enum payq_route_id id;
    const char *method;
    const char *path; /* "/v1/transfers/{id}": a {name} is one non-empty segment */
    bool needs_token; /* Authorization: Bearer, else 401 */
    bool json_body;   /* Content-Type application/json (415) and size limit (413) */
    int statuses[PAYQ_ROUTE_MAX_STATUSES]; /* 0-terminated */
};

/* Status of a request that matched no path, and of a known path asked with
 * a method it does not have. */
#define PAYQ_ROUTE_STATUS_UNMATCHED 404
#define PAYQ_ROUTE_STATUS_BAD_METHOD 405

/* The table (static storage) and its length. */
const struct payq_route *payq_routes(size_t *n);

struct payq_route_match {
    const struct payq_route *route; /* NULL when status is 404 or 405 */
    const char *path;               /* template of the matched path (for metrics); NULL for 404 */
    const char *param;              /* the {name} segment inside url, or NULL */
    size_t param_len;
    int status;     /* 0 when route is set, else 404 or 405 */
    char allow[64]; /* for 405: the methods the path does have */
};

/* Finds the route for method and url (the path, without query string). */
void payq_route_match(const char *method, const char *url, struct payq_route_match *m);

/* Whether route r (NULL = an unmatched or 405 answer on path) may answer
 * status. */
bool payq_route_answers(const struct payq_route *r, int status);

/* Prints `METHOD PATH STATUS` for every answer: each route's statuses, 405
 * for each of the eight OpenAPI methods a path lacks, and `* * 404` for
 * unmatched paths. */
void payq_routes_print(FILE *out);

#endif
