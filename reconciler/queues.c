/* queues: live and management-API depths of payq.transfers and payq.dead. */
#include "queues.h"

#include <amqp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "broker.h"
#include "mgmt_http.h"

#define QUEUES_CHANNEL 1
#define QUEUES_HTTP_TIMEOUT_MS 10000

/* The vhost of the first AMQP URL: the management API wants it by name. */
static void vhost_of(const char *urls, char *buf, size_t len)
{
    snprintf(buf, len, "/");
    char *copy = payq_xstrdup(urls);
    char *comma = strchr(copy, ',');
    if (comma)
        *comma = '\0';
    struct amqp_connection_info ci;
    if (amqp_parse_url(copy, &ci) == AMQP_STATUS_OK)
        snprintf(buf, len, "%s", ci.vhost);
    free(copy);
}

static int declare_passive(amqp_connection_state_t c, const char *queue, struct payq_queue_depth *d)
{
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(c, QUEUES_CHANNEL, amqp_cstring_bytes(queue),
                                                     1, 0, 0, 0, amqp_empty_table);
    char what[96];
    snprintf(what, sizeof what, "queue.declare passive %s", queue);
    if (payq_amqp_check_reply(amqp_get_rpc_reply(c), what) != 0 || !ok)
        return -1;
    d->ready = ok->message_count;
    d->consumers = ok->consumer_count;
    return 0;
}

static int read_live(const struct payq_config *cfg, struct payq_queue_depths *out, char *err,
                     size_t errlen)
{
    struct payq_amqp_target t = {cfg->amqp.url, &cfg->amqp.tls, cfg->amqp.heartbeat_s,
                                 cfg->amqp.connect_timeout_ms, "payq-reconciler-depth"};
    unsigned cursor = 0;
    amqp_connection_state_t c = NULL;
    if (payq_amqp_connect(&t, &cursor, &c) != 0) {
        snprintf(err, errlen, "cannot connect to the broker (amqp.url)");
        return -1;
    }
    int rc = -1;
    if (payq_amqp_channel_open(c, QUEUES_CHANNEL) != 0)
        snprintf(err, errlen, "cannot open a channel");
    else if (declare_passive(c, PAYQ_QUEUE_TRANSFERS, &out->transfers) != 0)
        snprintf(err, errlen, "cannot inspect queue %s", PAYQ_QUEUE_TRANSFERS);
    else if (declare_passive(c, PAYQ_QUEUE_DEAD, &out->dead) != 0)
        snprintf(err, errlen, "cannot inspect queue %s", PAYQ_QUEUE_DEAD);
    else
        rc = 0;
    payq_amqp_close(c);
    return rc;
}

static int read_unacked(const struct payq_config *cfg, const char *vhost, const char *queue,
                        struct payq_queue_depth *d, char *err, size_t errlen)
{
    struct payq_mgmt_queue m;
    char why[256];
    if (payq_mgmt_queue_get(cfg->amqp.mgmt_url, vhost, queue, QUEUES_HTTP_TIMEOUT_MS, &m, why,
                            sizeof why) != 0) {
        snprintf(err, errlen, "management API: %s", why);
        return -1;
    }
    d->unacked = d->consumers > 0 && m.has_counts ? m.unacked : 0;
    return 0;
}

int payq_queues_read(const struct payq_config *cfg, struct payq_queue_depths *out, char *err,
                     size_t errlen)
{
    memset(out, 0, sizeof *out);
    char vhost[256];
    vhost_of(cfg->amqp.url, vhost, sizeof vhost);
    if (read_live(cfg, out, err, errlen) != 0)
        return -1;
    if (read_unacked(cfg, vhost, PAYQ_QUEUE_TRANSFERS, &out->transfers, err, errlen) != 0 ||
        read_unacked(cfg, vhost, PAYQ_QUEUE_DEAD, &out->dead, err, errlen) != 0)
        return -1;
    return 0;
}

int64_t payq_queues_pending(const struct payq_queue_depths *q)
{
    return q->transfers.ready + q->transfers.unacked;
}
