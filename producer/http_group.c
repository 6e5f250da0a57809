/* http_group: outbox-backed sinks for the group commit. */
#include "http_group.h"
#include "alloc.h"
#include "broker.h"

#include <stdio.h>
#include <stdlib.h>

#include "http_transfers.h"
#include "log.h"

/* As for a request's own publishing (http_thread.c): how long to keep
 * reaching the broker, and to wait without any confirm, before the pack's
 * requests answer 503. */
#define GROUP_RETRY_MS 2000
#define GROUP_STALL_MS 10000

struct group_sink {
    struct payq_http_app *app;
    struct payq_outbox *ob;
    struct payq_http_thread th; /* only its read-only connection, for the replay check */
};

/* One pack: publish, wait for its confirm, count it in the metrics. After
 * a failure the outbox is reset so its next pack starts clean. */
static int sink_publish(void *ctx, const char *rk, const char *id, const void *body, size_t len,
                        uint32_t items, char *err, size_t errlen)
{
    struct group_sink *s = ctx;
    struct payq_outbox_stats before, after;
    payq_outbox_stats(s->ob, &before);
    int rc = payq_outbox_send_items(s->ob, rk, id, body, len, items);
    if (rc == 0)
        rc = payq_outbox_wait(s->ob);
    if (rc != 0) {
        snprintf(err, errlen, "%s", payq_outbox_error(s->ob));
        payq_outbox_reset(s->ob);
    }
    payq_outbox_stats(s->ob, &after);
    payq_http_metrics_outbox(&s->app->metrics, &before, &after);
    return rc;
}

/* Nothing else uses an idle publisher's broker connection, and RabbitMQ
 * closes one that sent nothing for two heartbeat intervals: the next pack
 * then went into a closed connection and waited for a reconnect and a
 * republish. */
static void sink_idle(void *ctx)
{
    struct group_sink *s = ctx;
    payq_outbox_heartbeat(s->ob);
}

/* The replay check of a whole pack, on this publisher's own connection. */
static void sink_check(void *ctx, struct payq_gc_req *reqs, size_t n)
{
    struct group_sink *s = ctx;
    payq_http_replay_check_pack(s->app, &s->th, reqs, n);
}

int payq_http_group_start(struct payq_http_app *app)
{
    const struct payq_config *cfg = app->cfg;
    int n = cfg->producer.group_publishers;
    if (n <= 0)
        return 0;
    struct payq_gc_opts o = {
        .pack_max = cfg->producer.pack_max,
        .linger_us = cfg->producer.group_linger_us,
        .npublishers = n,
        .idle_ms = PAYQ_AMQP_HEARTBEAT_OFFER_MS(cfg->amqp.heartbeat_s),
    };
    struct payq_outbox_opts oo = {
        .target = &app->target,
        .window = 1, /* one pack in flight per publisher: its fate is its requests' */
        .retry_ms = GROUP_RETRY_MS,
        .stall_ms = GROUP_STALL_MS,
    };
    struct group_sink *sinks = payq_xcalloc((size_t)n, sizeof *sinks);
    app->group_sinks = sinks;
    for (int i = 0; i < n; i++) {
        sinks[i].app = app;
        sinks[i].ob = payq_outbox_new(&oo);
        if (!sinks[i].ob)
            goto fail;
        o.sinks[i] = (struct payq_gc_sink){sink_publish, NULL, &sinks[i],
                                           cfg->amqp.heartbeat_s > 0 ? sink_idle : NULL};
        if (cfg->producer.replay_check)
            o.sinks[i].check = sink_check;
    }
    app->gc = payq_gc_new(&o);
    if (app->gc)
        return 0;
fail:
    payq_log(PAYQ_LOG_ERROR, "http_start_failed", "could not start %d group commit publishers", n);
    payq_http_group_stop(app);
    return -1;
}

void payq_http_group_stop(struct payq_http_app *app)
{
    payq_gc_free(app->gc);
    app->gc = NULL;
    struct group_sink *sinks = app->group_sinks;
    for (int i = 0; sinks && i < app->cfg->producer.group_publishers; i++) {
        payq_outbox_free(sinks[i].ob);
        PQfinish(sinks[i].th.pg);
    }
    free(sinks);
    app->group_sinks = NULL;
}
