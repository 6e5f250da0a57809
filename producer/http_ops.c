/* http_ops: health, readiness and metrics handlers. */
#include "http_ops.h"

#include "clock.h"
#include "pg.h"

void payq_http_healthz(struct payq_http_app *app, struct payq_http_reply *rep)
{
    (void)app;
    rep->status = 200;
    payq_buf_reset(&rep->body);
    payq_buf_puts(&rep->body, "{\"status\":\"ok\"}");
}

/* A new connection, not the thread's publisher: that one may be idle and
 * look healthy after the broker went away. */
static bool broker_ok(struct payq_http_app *app)
{
    unsigned cursor = 0;
    amqp_connection_state_t conn;
    if (payq_amqp_connect(&app->target, &cursor, &conn) != 0)
        return false;
    payq_amqp_close(conn);
    return true;
}

/* The database line of /readyz: SELECT 1 on the thread's read connection,
 * connecting if need be, all within READY_DB_MS, so that /readyz answers
 * in time (HAProxy's check allows 3 s) whatever a frozen standby does:
 * left to libpq, a new connection waits connect_timeout on a frozen host
 * before it tries the next, and a statement waits for ever. A second try,
 * on a fresh connection (the old one may predate a failover), only while
 * time is left. */
#define READY_DB_MS 1500

static bool probe_database(struct payq_http_app *app)
{
    struct payq_http_thread *th = payq_http_thread_get(app);
    int64_t deadline = payq_clock_mono_ms() + READY_DB_MS;
    for (int attempt = 0; attempt < 2; attempt++) {
        int left = (int)(deadline - payq_clock_mono_ms());
        if (left < 100)
            return false;
        PGconn *pg = payq_http_thread_pg(app, th, left);
        if (!pg)
            return false;
        left = (int)(deadline - payq_clock_mono_ms());
        if (left < 1)
            left = 1;
        PGresult *res = payq_pg_exec_params_within(pg, left, "SELECT 1", 0, NULL, 0);
        enum payq_pg_fault f = payq_pg_check(pg, res, PGRES_TUPLES_OK, "readiness check");
        PQclear(res);
        if (f == PAYQ_PG_OK)
            return true;
        payq_http_thread_pg_drop(th);
    }
    return false;
}

/* During the pause after a failed read of the ledger (read_pause.h) the line
 * says unreachable without a probe; a probe's outcome moves the pause like
 * any read's. */
static bool database_ok(struct payq_http_app *app)
{
    struct payq_http_read rd;
    if (payq_http_read_begin(app, payq_http_thread_get(app), &rd) > 0)
        return false;
    bool ok = probe_database(app);
    payq_http_read_end(&rd, ok);
    return ok;
}

/* Ready means a POST can be accepted, and a POST needs only the broker:
 * the ledger (a standby) serves the reads and the replay check, which
 * falls back to the worker's conflict record without it. Failing
 * readiness on the database would take every replica out of the load
 * balancer when one standby stops, and stop payments for a read path. The
 * database is still probed and named in the body, for the reads. */
void payq_http_readyz(struct payq_http_app *app, struct payq_http_reply *rep)
{
    bool broker = broker_ok(app);
    bool db = database_ok(app);
    payq_buf_reset(&rep->body);
    if (broker) {
        rep->status = 200;
        payq_buf_printf(&rep->body, "{\"status\":\"ready\",\"broker\":\"ok\",\"database\":\"%s\"}",
                        db ? "ok" : "unreachable");
        return;
    }
    rep->status = 503;
    payq_buf_printf(&rep->body,
                    "{\"error\":\"not ready\",\"detail\":\"the broker refused a connection\","
                    "\"broker\":\"unreachable\",\"database\":\"%s\"}",
                    db ? "ok" : "unreachable");
}

void payq_http_metrics_page(struct payq_http_app *app, struct payq_http_reply *rep)
{
    rep->status = 200;
    rep->content_type = "text/plain; version=0.0.4";
    payq_buf_reset(&rep->body);
    payq_http_metrics_render(&app->metrics, &rep->body);
}
