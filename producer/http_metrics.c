/* http_metrics: series registration from the route table. */
#include "http_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "http_routes.h"

static const double g_latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,   0.25,   0.5,   1,    2.5,   10};

static void add_series(struct payq_http_metrics *m, const char *path, int status)
{
    for (size_t i = 0; i < m->nrequests; i++)
        if (m->requests[i].status == status &&
            (path == m->requests[i].path ||
             (path && m->requests[i].path && strcmp(path, m->requests[i].path) == 0)))
            return;
    char label[160];
    snprintf(label, sizeof label, "route=\"%s\",code=\"%d\"", path ? path : "unmatched", status);
    m->labels = payq_xreallocarray(m->labels, m->nlabels + 1, sizeof *m->labels);
    m->labels[m->nlabels] = payq_xstrdup(label);
    m->requests = payq_xreallocarray(m->requests, m->nrequests + 1, sizeof *m->requests);
    m->requests[m->nrequests].path = path;
    m->requests[m->nrequests].status = status;
    m->requests[m->nrequests].counter =
        payq_metrics_counter(m->reg, "payq_producer_http_requests_total", m->labels[m->nlabels],
                             "HTTP requests answered, by route and status code");
    m->nlabels++;
    m->nrequests++;
}

void payq_http_metrics_init(struct payq_http_metrics *m)
{
    size_t n;
    const struct payq_route *r = payq_routes(&n);
    memset(m, 0, sizeof *m);
    m->reg = payq_metrics_new();
    for (size_t i = 0; i < n; i++) {
        for (const int *s = r[i].statuses; *s; s++)
            add_series(m, r[i].path, *s);
        add_series(m, r[i].path, PAYQ_ROUTE_STATUS_BAD_METHOD);
    }
    add_series(m, NULL, PAYQ_ROUTE_STATUS_UNMATCHED);
    m->published = payq_metrics_counter(m->reg, "payq_producer_messages_published_total", "",
                                        "basic.publish calls, republishing included");
    m->confirmed = payq_metrics_counter(m->reg, "payq_producer_messages_confirmed_total", "",
                                        "messages the broker confirmed");
    m->transfers = payq_metrics_counter(m->reg, "payq_producer_transfers_confirmed_total", "",
                                        "transfers carried by the confirmed messages");
    m->refused = payq_metrics_counter(m->reg, "payq_producer_messages_refused_total", "",
                                      "messages the broker nacked or returned as unroutable");
    m->reconnects = payq_metrics_counter(m->reg, "payq_producer_broker_reconnects_total", "",
                                         "broker connections reopened after a failure");
    m->replay_unchecked =
        payq_metrics_counter(m->reg, "payq_producer_replay_unchecked_total", "",
                             "POST requests let through without the ledger lookup behind 409 "
                             "because the read replica could not be read");
    m->latency =
        payq_metrics_histogram(m->reg, "payq_producer_http_request_duration_seconds",
                               "time from request headers to the queued response", g_latency_bounds,
                               sizeof g_latency_bounds / sizeof g_latency_bounds[0]);
}

void payq_http_metrics_free(struct payq_http_metrics *m)
{
    payq_metrics_free(m->reg);
    for (size_t i = 0; i < m->nlabels; i++)
        free(m->labels[i]);
    free(m->labels);
    free(m->requests);
    memset(m, 0, sizeof *m);
}

void payq_http_metrics_request(struct payq_http_metrics *m, const char *path, int status,
                               double seconds)
{
    for (size_t i = 0; i < m->nrequests; i++) {
        const struct payq_http_request_series *s = &m->requests[i];
        if (s->status == status &&
            (s->path == path || (s->path && path && strcmp(s->path, path) == 0))) {
            payq_counter_add(s->counter, 1);
            break;
        }
    }
    payq_histogram_observe(m->latency, seconds);
}

void payq_http_metrics_outbox(struct payq_http_metrics *m, const struct payq_outbox_stats *before,
                              const struct payq_outbox_stats *after)
{
    payq_counter_add(m->published, after->published - before->published);
    payq_counter_add(m->confirmed, after->confirmed - before->confirmed);
    payq_counter_add(m->transfers, after->items - before->items);
    payq_counter_add(m->refused, after->refused - before->refused);
    payq_counter_add(m->reconnects, after->reconnects - before->reconnects);
}

void payq_http_metrics_render(struct payq_http_metrics *m, struct payq_buf *out)
{
    payq_metrics_render(m->reg, out);
}
