/* metrics: a small Prometheus registry and its HTTP endpoint. */
#include "metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "log.h"

enum series_kind { SERIES_COUNTER, SERIES_GAUGE, SERIES_HISTOGRAM };

struct series {
    enum series_kind kind;
    const char *name;
    const char *labels;
    const char *help;
    union {
        struct payq_counter counter;
        struct payq_gauge gauge;
        struct payq_histogram hist;
    } u;
};

struct payq_metrics {
    struct series **all;
    size_t n, cap;
    _Atomic int ready;
};

struct payq_metrics *payq_metrics_new(void)
{
    struct payq_metrics *m = payq_xcalloc(1, sizeof *m);
    return m;
}

void payq_metrics_free(struct payq_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->all[i]);
    free(m->all);
    free(m);
}

static struct series *add(struct payq_metrics *m, enum series_kind k, const char *name,
                          const char *labels, const char *help)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 32;
        m->all = payq_xreallocarray(m->all, m->cap, sizeof *m->all);
    }
    struct series *s = payq_xcalloc(1, sizeof *s);
    s->kind = k;
    s->name = name;
    s->labels = labels ? labels : "";
    s->help = help;
    m->all[m->n++] = s;
    return s;
}

struct payq_counter *payq_metrics_counter(struct payq_metrics *m, const char *name,
                                          const char *labels, const char *help)
{
    return &add(m, SERIES_COUNTER, name, labels, help)->u.counter;
}

struct payq_gauge *payq_metrics_gauge(struct payq_metrics *m, const char *name, const char *labels,
                                      const char *help)
{
    return &add(m, SERIES_GAUGE, name, labels, help)->u.gauge;
}

struct payq_histogram *payq_metrics_histogram(struct payq_metrics *m, const char *name,
                                              const char *help, const double *bounds,
                                              size_t nbounds)
{
    struct series *s = add(m, SERIES_HISTOGRAM, name, "", help);
    if (nbounds > PAYQ_HIST_MAX_BUCKETS)
        nbounds = PAYQ_HIST_MAX_BUCKETS;
    s->u.hist.nbounds = nbounds;
    memcpy(s->u.hist.bounds, bounds, nbounds * sizeof *bounds);
    return &s->u.hist;
}

void payq_metrics_set_ready(struct payq_metrics *m, int ready)
{
    atomic_store(&m->ready, ready != 0);
}

void payq_histogram_observe(struct payq_histogram *h, double v)
{
    if (!(v > 0))
        v = 0; /* also NaN: casting it or a negative to uint64_t is undefined */
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_micros, (uint64_t)(v * 1e6), memory_order_relaxed);
}

static void render_hist(const struct series *s, struct payq_buf *out)
{
    const struct payq_histogram *h = &s->u.hist;
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->nbounds; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->nbounds)
            payq_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", s->name, h->bounds[i],
                            (unsigned long long)cum);
        else
            payq_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", s->name, (unsigned long long)cum);
    }
    uint64_t sum = atomic_load_explicit(&h->sum_micros, memory_order_relaxed);
    payq_buf_printf(out, "%s_sum %llu.%06llu\n", s->name, (unsigned long long)(sum / 1000000),
                    (unsigned long long)(sum % 1000000));
    payq_buf_printf(out, "%s_count %llu\n", s->name,
                    (unsigned long long)atomic_load_explicit(&h->count, memory_order_relaxed));
}

void payq_metrics_render(struct payq_metrics *m, struct payq_buf *out)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    for (size_t i = 0; i < m->n; i++) {
        const struct series *s = m->all[i];
        bool first = true;
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->all[j]->name, s->name) == 0)
                first = false;
        if (first)
            payq_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", s->name, s->help, s->name,
                            types[s->kind]);
        const char *open = s->labels[0] ? "{" : "";
        const char *close = s->labels[0] ? "}" : "";
        if (s->kind == SERIES_COUNTER)
            payq_buf_printf(out, "%s%s%s%s %llu\n", s->name, open, s->labels, close,
                            (unsigned long long)atomic_load(&s->u.counter.value));
        else if (s->kind == SERIES_GAUGE)
            payq_buf_printf(out, "%s%s%s%s %lld\n", s->name, open, s->labels, close,
                            (long long)atomic_load(&s->u.gauge.value));
        else
            render_hist(s, out);
    }
}

int payq_parse_listen(const char *listen, struct sockaddr_in *out)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen)
        return -1;
    char host[64];
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host)
        return -1;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        return -1;
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **req_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_size;
    (void)req_cls;
    struct payq_metrics *m = cls;
    struct payq_buf body = PAYQ_BUF_INIT;
    unsigned status = MHD_HTTP_OK;
    if (strcmp(method, "GET") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        payq_buf_puts(&body, "method not allowed\n");
    } else if (strcmp(url, "/metrics") == 0) {
        payq_metrics_render(m, &body);
    } else if (strcmp(url, "/healthz") == 0) {
        payq_buf_puts(&body, "ok\n");
    } else if (strcmp(url, "/readyz") == 0) {
        bool ready = atomic_load(&m->ready);
        status = ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
        payq_buf_puts(&body, ready ? "ready\n" : "not ready\n");
    } else {
        status = MHD_HTTP_NOT_FOUND;
        payq_buf_puts(&body, "not found\n");
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(
        body.len, body.data ? body.data : (char *)"", MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    payq_buf_free(&body);
    return ret;
}

int payq_metrics_serve(struct payq_metrics *m, const char *listen, struct MHD_Daemon **out)
{
    struct sockaddr_in sa;
    if (payq_parse_listen(listen, &sa) != 0) {
        payq_log(PAYQ_LOG_ERROR, "metrics_listen_invalid", "invalid listen address \"%s\"", listen);
        return -1;
    }
    *out = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                            on_request, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_END);
    if (!*out) {
        payq_log(PAYQ_LOG_ERROR, "metrics_listen_failed", "could not listen on %s", listen);
        return -1;
    }
    return 0;
}

void payq_metrics_stop(struct MHD_Daemon *d)
{
    if (d)
        MHD_stop_daemon(d);
}
