/* http_thread: per-pool-thread broker and database connections. */
#include "alloc.h"
#include "http.h"

#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "pg.h"
#include "pg_hosts.h"

/* How long a request keeps trying to reach the broker, and how long it
 * waits without any confirm, before it answers 503. */
#define HTTP_RETRY_MS 2000
#define HTTP_STALL_MS 10000

static _Thread_local struct payq_http_thread *t_self;

#define SET_TIMEOUT "SELECT set_config('statement_timeout', $1, false)"

struct payq_http_thread *payq_http_thread_get(struct payq_http_app *app)
{
    if (t_self)
        return t_self;
    struct payq_http_thread *th = payq_xcalloc(1, sizeof *th);
    /* A request never waits inside the publisher for window space (that
     * wait has no time limit): the window covers the largest request, and
     * every wait goes through payq_outbox_wait and its stall limit. */
    int window = app->cfg->producer.confirm_window;
    if (window < app->cfg->producer.max_batch_items)
        window = app->cfg->producer.max_batch_items;
    struct payq_outbox_opts oo = {
        .target = &app->target,
        .window = window,
        .retry_ms = HTTP_RETRY_MS,
        .stall_ms = HTTP_STALL_MS,
    };
    th->outbox = payq_outbox_new(&oo);
    pthread_mutex_init(&th->outbox_lock, NULL);
    pthread_mutex_lock(&app->threads_lock);
    th->next = app->threads;
    app->threads = th;
    pthread_mutex_unlock(&app->threads_lock);
    t_self = th;
    return th;
}

void payq_http_threads_free(struct payq_http_app *app)
{
    pthread_mutex_lock(&app->threads_lock);
    struct payq_http_thread *th = app->threads;
    app->threads = NULL;
    pthread_mutex_unlock(&app->threads_lock);
    while (th) {
        struct payq_http_thread *next = th->next;
        payq_outbox_free(th->outbox);
        pthread_mutex_destroy(&th->outbox_lock);
        PQfinish(th->pg);
        free(th);
        th = next;
    }
}

void payq_http_threads_heartbeat(struct payq_http_app *app)
{
    pthread_mutex_lock(&app->threads_lock);
    for (struct payq_http_thread *th = app->threads; th; th = th->next) {
        if (pthread_mutex_trylock(&th->outbox_lock) != 0)
            continue; /* publishing */
        payq_outbox_heartbeat(th->outbox);
        pthread_mutex_unlock(&th->outbox_lock);
    }
    pthread_mutex_unlock(&app->threads_lock);
}

PGconn *payq_http_thread_pg(struct payq_http_app *app, struct payq_http_thread *th, int wait_ms)
{
    if (th->pg && PQstatus(th->pg) == CONNECTION_OK)
        return th->pg;
    payq_http_thread_pg_drop(th);
    PGconn *pg = payq_pg_connect_within(app->cfg->pg.read_conninfo, "payq-producer", wait_ms);
    if (!pg)
        return NULL;
    char ms[16];
    snprintf(ms, sizeof ms, "%d", app->cfg->pg.statement_timeout_ms);
    const char *params[1] = {ms};
    PGresult *res = wait_ms > 0 ? payq_pg_exec_params_within(pg, wait_ms, SET_TIMEOUT, 1, params, 0)
                                : payq_pg_exec_params(pg, SET_TIMEOUT, 1, params, 0);
    enum payq_pg_fault f = payq_pg_check(pg, res, PGRES_TUPLES_OK, "set statement_timeout");
    PQclear(res);
    if (f != PAYQ_PG_OK) {
        PQfinish(pg);
        return NULL;
    }
    th->pg = pg;
    th->pg_opened_ns = payq_clock_mono_ns();
    return pg;
}

void payq_http_thread_pg_drop(struct payq_http_thread *th)
{
    PQfinish(th->pg);
    th->pg = NULL;
}

int64_t payq_http_read_begin(struct payq_http_app *app, struct payq_http_thread *th,
                             struct payq_http_read *rd)
{
    int64_t now = payq_clock_mono_ns();
    /* A connection to a server that has since stopped answering another
     * thread's read (or a connect) would most likely wait out its own
     * bound too: reconnect, trying that server last (pg_hosts.h). */
    if (th->pg && payq_pg_hosts_hung_since(PQhost(th->pg), PQhostaddr(th->pg), PQport(th->pg),
                                           th->pg_opened_ns))
        payq_http_thread_pg_drop(th);
    rd->pause = &app->reads;
    rd->started_ns = th->pg && th->pg_opened_ns < now ? th->pg_opened_ns : now;
    return payq_read_pause_left_ms(rd->pause, now);
}

int64_t payq_http_read_end(const struct payq_http_read *rd, bool answered)
{
    return payq_read_pause_done(rd->pause, rd->started_ns, payq_clock_mono_ns(), answered);
}
