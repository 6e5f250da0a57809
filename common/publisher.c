/* publisher: a confirm window and its settle ring over one broker
 * connection (the broker calls are struct payq_broker_ops). */
#include "publisher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"

struct payq_publisher {
    const struct payq_broker_ops *ops;
    void *io; /* owned, freed by ops->free */
    bool connected;
    int window;
    int64_t give_up_ms; /* window waits end here (monotonic); 0 = 60 s after the call */
    payq_settle_fn on_settle;
    void *ctx;
    uint64_t next_seq;     /* sequence number of the next publish */
    uint64_t settled_upto; /* every seq <= this has been settled */
    /* Settlement state of seqs in (settled_upto, next_seq): a ring indexed by
     * seq % ring_size; 0 pending, 1 acked, 2 failed. Acks may arrive out of
     * order (single acks) so the contiguous watermark advances lazily. */
    unsigned char *ring;
    uint64_t ring_size;
    unsigned returns_pending; /* basic.return seen; the next single ack is its */
    char return_why[128];
};

static void drop_connection(struct payq_publisher *p)
{
    if (p->connected)
        p->ops->drop(p->io);
    p->connected = false;
}

struct payq_publisher *payq_publisher_new_io(const struct payq_broker_ops *ops, void *io,
                                             int window, payq_settle_fn on_settle, void *ctx)
{
    struct payq_publisher *p = payq_xcalloc(1, sizeof *p);
    p->ops = ops;
    p->io = io;
    p->window = window < 1 ? 1 : window;
    p->on_settle = on_settle;
    p->ctx = ctx;
    p->next_seq = 1;
    p->ring_size = 1;
    while (p->ring_size <= (uint64_t)p->window)
        p->ring_size *= 2;
    p->ring = payq_xcalloc(p->ring_size, 1);
    return p;
}

void payq_publisher_set_give_up(struct payq_publisher *p, int64_t mono_ms)
{
    p->give_up_ms = mono_ms;
}

void payq_publisher_free(struct payq_publisher *p)
{
    if (!p)
        return;
    if (p->ops->free)
        p->ops->free(p->io);
    free(p->ring);
    free(p);
}

int payq_publisher_reconnect(struct payq_publisher *p)
{
    drop_connection(p);
    p->next_seq = 1;
    p->settled_upto = 0;
    p->returns_pending = 0;
    memset(p->ring, 0, p->ring_size);
    if (p->ops->open(p->io) != 0)
        return -1;
    p->connected = true;
    return 0;
}

uint64_t payq_publisher_outstanding(const struct payq_publisher *p)
{
    return p->next_seq - 1 - p->settled_upto;
}

void payq_publisher_heartbeat(struct payq_publisher *p)
{
    if (p && p->connected && p->ops->heartbeat)
        p->ops->heartbeat(p->io);
}

static void settle_one(struct payq_publisher *p, uint64_t seq, bool ok, const char *why)
{
    if (seq <= p->settled_upto || seq >= p->next_seq)
        return;
    unsigned char *slot = &p->ring[seq % p->ring_size];
    if (*slot)
        return;
    *slot = ok ? 1 : 2;
    if (p->on_settle)
        p->on_settle(p->ctx, seq, ok, why);
    while (p->settled_upto + 1 < p->next_seq && p->ring[(p->settled_upto + 1) % p->ring_size]) {
        p->settled_upto++;
        p->ring[p->settled_upto % p->ring_size] = 0;
    }
}

static void settle(struct payq_publisher *p, uint64_t tag, bool multiple, bool ok, const char *why)
{
    if (!multiple) {
        settle_one(p, tag, ok, why);
        return;
    }
    for (uint64_t s = p->settled_upto + 1; s <= tag; s++)
        settle_one(p, s, ok, why);
}

/* A basic.return comes just before the ack of the same message (a single
 * ack: the broker confirms a returned message on its own). */
static void on_event(struct payq_publisher *p, const struct payq_broker_event *ev)
{
    switch (ev->kind) {
    case PAYQ_BROKER_ACK:
        if (p->returns_pending && !ev->multiple) {
            p->returns_pending--;
            settle(p, ev->tag, false, false, p->return_why);
        } else {
            settle(p, ev->tag, ev->multiple, true, NULL);
        }
        break;
    case PAYQ_BROKER_NACK:
        settle(p, ev->tag, ev->multiple, false, PAYQ_PUBLISH_NACKED);
        break;
    case PAYQ_BROKER_RETURN:
        snprintf(p->return_why, sizeof p->return_why, "%s", ev->why);
        p->returns_pending++;
        break;
    case PAYQ_BROKER_OTHER:
        break;
    }
}

/* Reads one frame, waiting up to timeout_ms (0 = only what is buffered).
 * Returns 1 if a frame was handled, 0 on timeout, -1 on failure. */
static int read_one(struct payq_publisher *p, int timeout_ms)
{
    if (!p->connected)
        return -1;
    struct payq_broker_event ev;
    int r = p->ops->next_event(p->io, timeout_ms, &ev);
    if (r < 0) {
        drop_connection(p);
        return -1;
    }
    if (r > 0)
        on_event(p, &ev);
    return r;
}

int payq_publisher_poll(struct payq_publisher *p)
{
    int r;
    while ((r = read_one(p, 0)) > 0)
        ;
    return r;
}

uint64_t payq_publisher_publish(struct payq_publisher *p, const char *exchange,
                                const char *routing_key, const void *body, size_t len,
                                const struct payq_publish_props *props)
{
    if (!p->connected)
        return 0;
    /* A broker that stops confirming (a memory or disk alarm blocks
     * publishers, a stream without a writer) must not stall the caller
     * forever: at the give-up time the connection is treated as lost. Any
     * confirm frees room and ends the wait, so a deadline counted from the
     * caller's last confirm is exact. */
    int64_t give_up = p->give_up_ms ? p->give_up_ms : payq_clock_mono_ms() + 60000;
    while (payq_publisher_outstanding(p) >= (uint64_t)p->window) {
        if (read_one(p, 1000) < 0)
            return 0;
        if (payq_clock_mono_ms() > give_up) {
            payq_log(PAYQ_LOG_WARN, "confirm_timeout",
                     "no publisher confirm in time: dropping the connection");
            drop_connection(p);
            return 0;
        }
    }
    /* The header is the timestamp property at millisecond resolution. */
    int64_t now_ms = props && props->timestamp_ms  ? props->timestamp_ms
                     : props && props->timestamp_s ? props->timestamp_s * 1000
                                                   : payq_clock_wall_ms();
    if (p->ops->publish(p->io, exchange, routing_key, body, len, props, now_ms) != 0) {
        drop_connection(p);
        return 0;
    }
    uint64_t seq = p->next_seq++;
    p->ring[seq % p->ring_size] = 0;
    return seq;
}

int payq_publisher_flush(struct payq_publisher *p, int timeout_ms)
{
    int64_t deadline = payq_clock_mono_ms() + timeout_ms;
    while (payq_publisher_outstanding(p) > 0) {
        int64_t left = deadline - payq_clock_mono_ms();
        if (left <= 0)
            return 1;
        if (read_one(p, left > 1000 ? 1000 : (int)left) < 0)
            return -1;
    }
    return 0;
}
