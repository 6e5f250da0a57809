/* metrics: Prometheus counters, gauges and histograms, safe to update from
 * any thread (C11 atomics), rendered in the text exposition format. Series
 * are registered once at start-up; the registry owns them.
 * payq_metrics_serve() exposes GET /metrics, /healthz and /readyz with
 * libmicrohttpd for the worker (the producer mounts the render function in
 * its own server, which has its own probes). */
#ifndef PAYQ_METRICS_H
#define PAYQ_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PAYQ_HIST_MAX_BUCKETS 16

struct payq_metrics;
struct MHD_Daemon;

struct payq_counter {
    _Atomic uint64_t value;
};

struct payq_gauge {
    _Atomic int64_t value;
};

struct payq_histogram {
    size_t nbounds;
    double bounds[PAYQ_HIST_MAX_BUCKETS];
    _Atomic uint64_t buckets[PAYQ_HIST_MAX_BUCKETS + 1]; /* last is +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_micros; /* sum of observations x 1e6 */
};

struct payq_metrics *payq_metrics_new(void);
void payq_metrics_free(struct payq_metrics *m); /* safe on NULL */

/* Registers a series. name is the metric name, labels the label set without
 * braces (`status="posted"`) or "". Strings must be literals or outlive m.
 * The returned pointer is owned by m. Abort on OOM. */
struct payq_counter *payq_metrics_counter(struct payq_metrics *m, const char *name,
                                          const char *labels, const char *help);
struct payq_gauge *payq_metrics_gauge(struct payq_metrics *m, const char *name, const char *labels,
                                      const char *help);
struct payq_histogram *payq_metrics_histogram(struct payq_metrics *m, const char *name,
                                              const char *help, const double *bounds,
                                              size_t nbounds);

static inline void payq_counter_add(struct payq_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

static inline uint64_t payq_counter_get(const struct payq_counter *c)
{
    return atomic_load_explicit(&c->value, memory_order_relaxed);
}

static inline void payq_gauge_set(struct payq_gauge *g, int64_t v)
{
    atomic_store_explicit(&g->value, v, memory_order_relaxed);
}

/* Counts one observation. A negative or NaN value (a clock that stepped, a
 * publisher whose clock runs ahead) is counted as 0 so the sum stays
 * meaningful. */
void payq_histogram_observe(struct payq_histogram *h, double v);

/* Sets what GET /readyz answers: 200 when ready, 503 when not (the default,
 * until the program says it can do its work). Safe from any thread. */
void payq_metrics_set_ready(struct payq_metrics *m, int ready);

/* Appends the text exposition of every series to out. */
void payq_metrics_render(struct payq_metrics *m, struct payq_buf *out);

/* Serves GET /metrics, /healthz (200 while the process answers) and /readyz
 * (see payq_metrics_set_ready) on HOST:PORT in a background thread. Returns 0 and sets
 * *out (stop with payq_metrics_stop), or -1 (logged). */
int payq_metrics_serve(struct payq_metrics *m, const char *listen, struct MHD_Daemon **out)
    __attribute__((warn_unused_result));
void payq_metrics_stop(struct MHD_Daemon *d); /* safe on NULL */

/* Parses "HOST:PORT" (IPv4 literal or "localhost") into a sockaddr_in.
 * Returns 0 or -1. */
struct sockaddr_in;
int payq_parse_listen(const char *listen, struct sockaddr_in *out)
    __attribute__((warn_unused_result));

#endif
