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

void payq_http_readyz(struct payq_http_app *app, struct payq_http_reply *rep)
{
    bool broker = broker_ok(app);
    bool db = database_ok(app);
    payq_buf_reset(&rep->body);
    if (broker && db) {
        rep->status = 200;
        payq_buf_puts(&rep->body, "{\"status\":\"ready\",\"broker\":\"ok\",\"database\":\"ok\"}");
        return;
    }
    rep->status = 503;
    payq_buf_printf(&rep->body,
                    "{\"error\":\"not ready\",\"detail\":\"%s%s%s\",\"broker\":\"%s\","
                    "\"database\":\"%s\"}",
                    broker ? "" : "the broker refused a connection", !broker && !db ? "; " : "",
                    db ? "" : "the database did not answer SELECT 1", broker ? "ok" : "unreachable",
                    db ? "ok" : "unreachable");
}

void payq_http_metrics_page(struct payq_http_app *app, struct payq_http_reply *rep)
{
    rep->status = 200;
    rep->content_type = "text/plain; version=0.0.4";
    payq_buf_reset(&rep->body);
    payq_http_metrics_render(&app->metrics, &rep->body);
}
