/* http_server: libmicrohttpd glue: request life cycle, early refusals,
 * dispatch, responses, graceful stop. */
#include "http_server.h"

#include <ctype.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "http.h"
#include "http_auth.h"
#include "http_group.h"
#include "http_ops.h"
#include "http_reads.h"
#include "http_routes.h"
#include "http_transfers.h"
#include "log.h"
#include "message.h"
#include "pg.h"
#include "signals.h"

/* libmicrohttpd's own idle timeout: a backstop behind the guard's
 * deadlines (producer/http_guard.h), which a trickle cannot extend. */
#define HTTP_IDLE_TIMEOUT_S 60
/* Descriptors kept beyond the connection limit: listen socket, broker and
 * database connections, epoll and pipe descriptors, logs. */
#define HTTP_FD_SPARE 256
/* How often the serve loop reaps connections past their deadlines. */
#define HTTP_REAP_MS 100

struct request {
    struct payq_route_match m;
    char param[PAYQ_ID_MAX + 2]; /* copied: longer than an id is invalid anyway */
    size_t param_len;
    struct payq_buf body;
    size_t reserved; /* of the body budget (g_body_bytes), given back when the request ends */
    bool too_large;
    bool shed;                  /* the body budget was spent: answered 503, its body dropped */
    struct payq_http_reply rep; /* status 0 until decided */
    bool queued;                /* a response was queued: ignore the rest */
    int64_t started_ns;
    struct payq_http_guard_conn *guarded; /* this connection's deadlines, or NULL */
};

static _Atomic long g_in_flight;
/* Bytes of request bodies held in memory, every connection together: at most
 * producer.body_memory_bytes. A body is read whole before it is checked, so
 * without this bound slow uploads on many connections could take the
 * process's memory. */
static _Atomic long long g_body_bytes;
/* Set at SIGTERM: /readyz fails and every response closes its connection,
 * while requests are still served (drain_then_stop). */
static _Atomic bool g_draining;

static int64_t mono_ns(void)
{
    return payq_clock_mono_ns();
}

/* "application/json", any case, optionally followed by parameters. */
static bool is_json_type(const char *ct)
{
    static const char want[] = "application/json";
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, want, sizeof want - 1) != 0)
        return false;
    ct += sizeof want - 1;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static void reply_too_large(struct payq_http_app *app, struct request *rq)
{
    char detail[96];
    snprintf(detail, sizeof detail, "the body must be at most %d bytes",
             app->cfg->producer.max_request_bytes);
    payq_http_reply_error(&rq->rep, 413, "request body too large", detail);
}

/* Takes n more bytes of the body budget for rq; false (nothing taken) when
 * they would go over it. */
static bool body_reserve(struct payq_http_app *app, struct request *rq, size_t n)
{
    long long limit = app->cfg->producer.body_memory_bytes;
    long long now = atomic_fetch_add(&g_body_bytes, (long long)n) + (long long)n;
    if (now > limit) {
        atomic_fetch_sub(&g_body_bytes, (long long)n);
        return false;
    }
    rq->reserved += n;
    return true;
}

static void body_release(struct request *rq)
{
    atomic_fetch_sub(&g_body_bytes, (long long)rq->reserved);
    rq->reserved = 0;
}

static void reply_shed(struct request *rq)
{
    payq_http_reply_error(&rq->rep, 503, "too many request bodies at once",
                          "this server holds as many request bodies as producer.body_memory_bytes "
                          "allows; try again");
    rq->rep.retry_after_s = 1;
}

/* Decides what can be decided from the request line and headers alone.
 * Returns true when rq->rep holds the answer. */
static bool early_answer(struct payq_http_app *app, struct request *rq, struct MHD_Connection *conn,
                         const char *url, const char *method)
{
    payq_route_match(method, url, &rq->m);
    if (rq->m.status == PAYQ_ROUTE_STATUS_UNMATCHED) {
        payq_http_reply_error(&rq->rep, 404, "not found", "no such route");
        return true;
    }
    if (rq->m.status == PAYQ_ROUTE_STATUS_BAD_METHOD) {
        payq_http_reply_error(&rq->rep, 405, "method not allowed", rq->m.allow);
        snprintf(rq->rep.allow, sizeof rq->rep.allow, "%s", rq->m.allow);
        return true;
    }
    const struct payq_route *r = rq->m.route;
    rq->param_len = rq->m.param_len < sizeof rq->param - 1 ? rq->m.param_len : sizeof rq->param - 1;
    if (rq->m.param)
        memcpy(rq->param, rq->m.param, rq->param_len);
    rq->m.param = NULL; /* points into MHD's buffer: use rq->param */
    if (r->needs_token &&
        !payq_http_auth_check(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
                              (const unsigned char(*)[32])app->tokens, app->ntokens)) {
        payq_http_reply_error(&rq->rep, 401, "unauthorized",
                              "send Authorization: Bearer <token> with a valid API token");
        rq->rep.www_authenticate = true;
        return true;
    }
    if (!r->json_body)
        return false;
    if (!is_json_type(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"))) {
        payq_http_reply_error(&rq->rep, 415, "unsupported media type",
                              "the body must be sent as Content-Type: application/json");
        return true;
    }
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    unsigned long long len = cl ? strtoull(cl, NULL, 10) : 0;
    if (len > (unsigned long long)app->cfg->producer.max_request_bytes) {
        reply_too_large(app, rq);
        return true;
    }
    /* The whole body's room now, before a byte of it is read; a body
     * without Content-Length (chunked) takes it as it arrives. */
    if (len > 0 && !body_reserve(app, rq, (size_t)len)) {
        reply_shed(rq);
        return true;
    }
    return false;
}

static void dispatch(struct payq_http_app *app, struct request *rq)
{
    if (rq->too_large) {
        reply_too_large(app, rq);
        return;
    }
    if (rq->shed) {
        reply_shed(rq);
        return;
    }
    switch (rq->m.route->id) {
    case PAYQ_ROUTE_POST_TRANSFERS:
        payq_http_post_transfers(app, rq->body.data ? rq->body.data : "", rq->body.len, &rq->rep);
        break;
    case PAYQ_ROUTE_GET_TRANSFER:
        payq_http_get_transfer(app, rq->param, rq->param_len, &rq->rep);
        break;
    case PAYQ_ROUTE_GET_ACCOUNT:
        payq_http_get_account(app, rq->param, rq->param_len, &rq->rep);
        break;
    case PAYQ_ROUTE_GET_BATCH:
        payq_http_get_batch(app, rq->param, rq->param_len, &rq->rep);
        break;
    case PAYQ_ROUTE_HEALTHZ:
        payq_http_healthz(app, &rq->rep);
        break;
    case PAYQ_ROUTE_READYZ:
        if (atomic_load(&g_draining))
            payq_http_reply_error(&rq->rep, 503, "not ready",
                                  "draining: this server is stopping, send requests elsewhere");
        else
            payq_http_readyz(app, &rq->rep);
        break;
    case PAYQ_ROUTE_METRICS:
        payq_http_metrics_page(app, &rq->rep);
        break;
    }
}

/* Queues rq->rep as the response, counts it, and checks it against the
 * route table so the table (and the OpenAPI document held to it) stays
 * true. */
static enum MHD_Result respond(struct payq_http_app *app, struct MHD_Connection *conn,
                               struct request *rq)
{
    struct payq_http_reply *rep = &rq->rep;
    if (!payq_route_answers(rq->m.route, rep->status))
        payq_log(PAYQ_LOG_ERROR, "undeclared_status", "%s answered %d, not in the route table",
                 rq->m.path ? rq->m.path : "unmatched", rep->status);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        rep->body.len, rep->body.data ? rep->body.data : (char *)"", MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            rep->content_type ? rep->content_type : "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (rep->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rep->allow);
    if (rep->retry_after_s > 0) {
        char s[16];
        snprintf(s, sizeof s, "%d", rep->retry_after_s);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, s);
    }
    if (rep->www_authenticate)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"payq\"");
    if (atomic_load(&g_draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)rep->status, resp);
    MHD_destroy_response(resp);
    rq->queued = true;
    double secs = (double)(mono_ns() - rq->started_ns) / 1e9;
    payq_http_metrics_request(&app->metrics, rq->m.path, rep->status, secs);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct payq_http_app *app = cls;
    struct request *rq = *con_cls;
    (void)version;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        rq->started_ns = mono_ns();
        *con_cls = rq;
        atomic_fetch_add(&g_in_flight, 1);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        rq->guarded = ci ? ci->socket_context : NULL;
        payq_http_guard_headers_in(app->guard, rq->guarded, rq->started_ns);
        /* Refusals go out before any body is read. */
        if (early_answer(app, rq, conn, url, method))
            return respond(app, conn, rq);
        return MHD_YES;
    }
    if (rq->queued) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t max = (size_t)app->cfg->producer.max_request_bytes;
        /* Counted while it arrives: a body without Content-Length (chunked)
         * is held to the same limit, and dropped once over it. */
        if (!rq->too_large && !rq->shed && rq->m.route->json_body) {
            size_t want = rq->body.len + *upload_data_size;
            if (want > max) {
                rq->too_large = true;
            } else if (want > rq->reserved && !body_reserve(app, rq, want - rq->reserved)) {
                rq->shed = true;
            } else {
                payq_buf_append(&rq->body, upload_data, *upload_data_size);
            }
            if (rq->too_large || rq->shed) {
                payq_buf_free(&rq->body);
                body_release(rq);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    payq_http_guard_handling(app->guard, rq->guarded);
    dispatch(app, rq);
    return respond(app, conn, rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct payq_http_app *app = cls;
    (void)conn;
    (void)toe;
    struct request *rq = *con_cls;
    if (!rq)
        return;
    payq_http_guard_request_done(app->guard, rq->guarded, mono_ns());
    payq_buf_free(&rq->body);
    body_release(rq);
    payq_buf_free(&rq->rep.body);
    free(rq);
    *con_cls = NULL;
    atomic_fetch_sub(&g_in_flight, 1);
}

/* Connections open and close for the guard. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct payq_http_app *app = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? payq_http_guard_open(app->guard, ci->connect_fd, mono_ns()) : NULL;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        payq_http_guard_close(app->guard, *socket_context);
        *socket_context = NULL;
    }
}

/* At most this many library lines a second: under a flood libmicrohttpd
 * reports every refused connection, and the log must not become the
 * bottleneck. The next line says how many were dropped. */
#define HTTP_LIBLOG_PER_S 5

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static int64_t window_s;
    static long in_window, dropped;
    (void)cls;
    int64_t now_s = mono_ns() / 1000000000;
    long skipped = 0;
    pthread_mutex_lock(&lock);
    if (now_s != window_s) {
        window_s = now_s;
        in_window = 0;
    }
    bool emit = ++in_window <= HTTP_LIBLOG_PER_S;
    if (emit) {
        skipped = dropped;
        dropped = 0;
    } else {
        dropped++;
    }
    pthread_mutex_unlock(&lock);
    if (!emit)
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && isspace((unsigned char)msg[n - 1]))
        msg[--n] = '\0';
    struct payq_log_rec r;
    payq_log_begin(&r, PAYQ_LOG_WARN, "http_library");
    payq_log_str(&r, "msg", msg);
    if (skipped)
        payq_log_int(&r, "dropped_before", skipped);
    payq_log_end(&r);
}

/* Raises the open-file limit to fit max connections (up to the hard
 * limit); returns the connection limit that fits. */
static unsigned fit_fd_limit(long max)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return (unsigned)max;
    rlim_t want = (rlim_t)max + HTTP_FD_SPARE;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur >= want)
        return (unsigned)max;
    long fit = (long)rl.rlim_cur - HTTP_FD_SPARE;
    if (fit < 16)
        fit = 16;
    payq_log(PAYQ_LOG_WARN, "http_fd_limit",
             "open-file limit %ld fits %ld connections, not producer.http_max_connections %ld",
             (long)rl.rlim_cur, fit, max);
    return (unsigned)fit;
}

static struct MHD_Daemon *start(struct payq_http_app *app, const char *listen)
{
    struct sockaddr_in addr;
    if (payq_parse_listen(listen, &addr) != 0) {
        payq_log(PAYQ_LOG_ERROR, "http_start_failed", "invalid listen address \"%s\"", listen);
        return NULL;
    }
    /* epoll: no select() FD_SETSIZE ceiling on descriptors. */
    const struct payq_config *cfg = app->cfg;
    unsigned limit = fit_fd_limit(cfg->producer.http_max_connections);
    struct payq_http_guard_opts go = {
        .header_timeout_ms = cfg->producer.http_header_timeout_ms,
        .body_timeout_ms = cfg->producer.http_body_timeout_ms,
        .evict_at = (long)limit - (long)limit / 8,
    };
    app->guard = payq_http_guard_new(&go);
    if (!app->guard)
        return NULL;
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG, ntohs(addr.sin_port), NULL,
        NULL, on_request, app, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->producer.http_threads,
        MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)cfg->producer.http_max_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)HTTP_IDLE_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, on_completed, app,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, app, MHD_OPTION_END);
    if (!d)
        payq_log(PAYQ_LOG_ERROR, "http_start_failed", "could not listen on %s", listen);
    return d;
}

/* Shuts down connections past their deadlines; logs what the guard did at
 * most every 10 s, so a flood costs one line, not one per connection. */
static void reap(struct payq_http_app *app)
{
    static int64_t last_log_ns;
    static struct payq_http_guard_stats logged;
    int64_t now = mono_ns();
    payq_http_guard_reap(app->guard, now);
    if (now - last_log_ns < 10 * (int64_t)1000000000)
        return;
    struct payq_http_guard_stats st;
    payq_http_guard_stats(app->guard, &st);
    last_log_ns = now;
    if (st.timed_out == logged.timed_out && st.evicted == logged.evicted)
        return;
    struct payq_log_rec r;
    payq_log_begin(&r, PAYQ_LOG_WARN, "http_connections_closed");
    payq_log_int(&r, "timed_out", st.timed_out - logged.timed_out);
    payq_log_int(&r, "evicted", st.evicted - logged.evicted);
    payq_log_int(&r, "open", st.open);
    payq_log_end(&r);
    logged = st;
}

/* The drain window: /readyz answers 503 at once, but every request, new
 * ones included, is still served for producer.http_drain_ms, so a load
 * balancer takes this server out of rotation on its health check before
 * the listener closes (a connection refused then is one it retries
 * elsewhere, never a request lost). Responses carry Connection: close, so
 * the balancer's kept-alive connections end after a reply, not at the
 * stop. */
static void drain(struct payq_http_app *app)
{
    atomic_store(&g_draining, true);
    struct payq_log_rec r;
    payq_log_begin(&r, PAYQ_LOG_INFO, "http_draining");
    payq_log_int(&r, "drain_ms", app->cfg->producer.http_drain_ms);
    payq_log_int(&r, "in_flight", atomic_load(&g_in_flight));
    payq_log_end(&r);
    int64_t until = mono_ns() + (int64_t)app->cfg->producer.http_drain_ms * 1000000;
    while (mono_ns() < until) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        reap(app);
    }
}

/* Stops accepting, waits for the requests in flight (each answered once
 * its pack is confirmed or failed), stops the daemon. */
static void stop(struct MHD_Daemon *d)
{
    MHD_socket fd = MHD_quiesce_daemon(d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    payq_log(PAYQ_LOG_INFO, "http_stopping", "%ld requests in flight", atomic_load(&g_in_flight));
    int64_t deadline = mono_ns() + (int64_t)PAYQ_HTTP_DRAIN_S * 1000000000;
    while (atomic_load(&g_in_flight) > 0 && mono_ns() < deadline) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(d);
}

int payq_http_serve(const struct payq_config *cfg, const char *listen)
{
    struct payq_http_app app;
    memset(&app, 0, sizeof app);
    app.cfg = cfg;
    app.target = (struct payq_amqp_target){
        .urls = cfg->amqp.url,
        .tls = &cfg->amqp.tls,
        .heartbeat_s = cfg->amqp.heartbeat_s,
        .connect_timeout_ms = cfg->amqp.connect_timeout_ms,
        .conn_name = "payq-producer serve",
    };
    app.ntokens = payq_http_auth_load(cfg, app.tokens);
    /* GETs and the replay check read a standby; one that is frozen must
     * not hold a pool thread for ever (the replay check and /readyz bound
     * their own waits tighter: http_transfers.c, http_ops.c). */
    if (cfg->pg.statement_timeout_ms > 0)
        payq_pg_set_response_timeout(cfg->pg.statement_timeout_ms + PAYQ_PG_ANSWER_GRACE_MS);
    pthread_mutex_init(&app.threads_lock, NULL);
    payq_http_metrics_init(&app.metrics);
    /* The replay check's 500 ms and /readyz's 1.5 s are within a GET's. */
    payq_read_pause_init(&app.reads, (int64_t)cfg->producer.read_timeout_ms * 1000000);
    struct MHD_Daemon *d = payq_http_group_start(&app) == 0 ? start(&app, listen) : NULL;
    int rc = 1;
    if (d) {
        struct payq_log_rec r;
        payq_log_begin(&r, PAYQ_LOG_INFO, "http_listening");
        payq_log_str(&r, "listen", listen);
        payq_log_int(&r, "threads", cfg->producer.http_threads);
        payq_log_int(&r, "max_connections", cfg->producer.http_max_connections);
        payq_log_int(&r, "max_per_ip", cfg->producer.http_max_per_ip);
        payq_log_end(&r);
        while (!payq_signals_stop_requested()) {
            struct timespec ts = {0, HTTP_REAP_MS * 1000000L};
            nanosleep(&ts, NULL);
            reap(&app);
            payq_http_threads_heartbeat(&app);
        }
        drain(&app);
        stop(d);
        payq_log(PAYQ_LOG_INFO, "http_stopped", "stopped after a signal");
        rc = 0;
    }
    payq_http_group_stop(&app);
    payq_http_threads_free(&app);
    payq_http_guard_free(app.guard);
    payq_http_metrics_free(&app.metrics);
    pthread_mutex_destroy(&app.threads_lock);
    return rc;
}
