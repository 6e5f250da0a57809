/* http_ops: health, readiness and metrics handlers. */
#include "http_ops.h"

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

static bool database_ok(struct payq_http_app *app)
{
    struct payq_http_thread *th = payq_http_thread_get(app);
    for (int attempt = 0; attempt < 2; attempt++) {
        PGconn *pg = payq_http_thread_pg(app, th);
        if (!pg)
            return false;
        PGresult *res = PQexec(pg, "SELECT 1");
        enum payq_pg_fault f = payq_pg_check(pg, res, PGRES_TUPLES_OK, "readiness check");
        PQclear(res);
        if (f == PAYQ_PG_OK)
            return true;
        payq_http_thread_pg_drop(th);
    }
    return false;
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
