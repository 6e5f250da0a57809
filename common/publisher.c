/* publisher: a confirm-window publisher over one connection and channel. */
#include "publisher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "log.h"

#define PUB_CHANNEL 1

struct payq_publisher {
    struct payq_amqp_target target;
    unsigned cursor;
    amqp_connection_state_t conn;
    int window;
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
    if (p->conn)
        amqp_destroy_connection(p->conn);
    p->conn = NULL;
}

static int open_connection(struct payq_publisher *p)
{
    drop_connection(p);
    if (payq_amqp_connect(&p->target, &p->cursor, &p->conn) != 0)
        return -1;
    if (payq_amqp_channel_open(p->conn, PUB_CHANNEL) != 0)
        goto fail;
    amqp_confirm_select(p->conn, PUB_CHANNEL);
    if (payq_amqp_check_reply(amqp_get_rpc_reply(p->conn), "confirm.select") != 0)
        goto fail;
    p->next_seq = 1;
    p->settled_upto = 0;
    p->returns_pending = 0;
    memset(p->ring, 0, p->ring_size);
    return 0;
fail:
    drop_connection(p);
    return -1;
}

int payq_publisher_new(const struct payq_amqp_target *target, int window, payq_settle_fn on_settle,
                       void *ctx, struct payq_publisher **out)
{
    *out = NULL;
    struct payq_publisher *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->target = *target;
    p->window = window < 1 ? 1 : window;
    p->on_settle = on_settle;
    p->ctx = ctx;
    p->ring_size = 1;
    while (p->ring_size <= (uint64_t)p->window)
        p->ring_size *= 2;
    p->ring = calloc(p->ring_size, 1);
    if (!p->ring || open_connection(p) != 0) {
        payq_publisher_free(p);
        return -1;
    }
    *out = p;
    return 0;
}

void payq_publisher_free(struct payq_publisher *p)
{
    if (!p)
        return;
    if (p->conn)
        payq_amqp_close(p->conn);
    free(p->ring);
    free(p);
}

int payq_publisher_reconnect(struct payq_publisher *p)
{
    return open_connection(p);
}

uint64_t payq_publisher_outstanding(const struct payq_publisher *p)
{
    return p->next_seq - 1 - p->settled_upto;
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

/* Handles one method frame on the channel. Returns 0, or -1 if the channel
 * or connection was closed by the broker. */
static int handle_method(struct payq_publisher *p, amqp_frame_t *f)
{
    switch (f->payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        amqp_basic_ack_t *a = f->payload.method.decoded;
        if (p->returns_pending && !a->multiple) {
            p->returns_pending--;
            settle(p, a->delivery_tag, false, false, p->return_why);
        } else {
            settle(p, a->delivery_tag, a->multiple, true, NULL);
        }
        return 0;
    }
    case AMQP_BASIC_NACK_METHOD: {
        amqp_basic_nack_t *n = f->payload.method.decoded;
        settle(p, n->delivery_tag, n->multiple, false, "nacked by the broker");
        return 0;
    }
    case AMQP_BASIC_RETURN_METHOD: {
        amqp_basic_return_t *r = f->payload.method.decoded;
        snprintf(p->return_why, sizeof p->return_why, "returned by the broker: %u %.*s",
                 r->reply_code, (int)r->reply_text.len, (const char *)r->reply_text.bytes);
        amqp_message_t msg;
        amqp_rpc_reply_t rr = amqp_read_message(p->conn, f->channel, &msg, 0);
        if (rr.reply_type != AMQP_RESPONSE_NORMAL)
            return payq_amqp_check_reply(rr, "read returned message");
        amqp_destroy_message(&msg);
        p->returns_pending++;
        return 0;
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_rpc_reply_t rr = {.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION,
                               .reply = f->payload.method};
        return payq_amqp_check_reply(rr, "publish");
    }
    default:
        return 0;
    }
}

/* Reads one frame, waiting up to timeout_ms (0 = only what is buffered).
 * Returns 1 if a frame was handled, 0 on timeout, -1 on failure. */
static int read_one(struct payq_publisher *p, int timeout_ms)
{
    if (!p->conn)
        return -1;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    amqp_frame_t f;
    int st = amqp_simple_wait_frame_noblock(p->conn, &f, &tv);
    if (st == AMQP_STATUS_TIMEOUT)
        return 0;
    if (st != AMQP_STATUS_OK) {
        payq_amqp_check_status(st, "read confirms");
        drop_connection(p);
        return -1;
    }
    if (f.frame_type == AMQP_FRAME_METHOD && handle_method(p, &f) != 0) {
        drop_connection(p);
        return -1;
    }
    amqp_maybe_release_buffers(p->conn);
    return 1;
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
    if (!p->conn)
        return 0;
    /* A broker that stops confirming (a memory or disk alarm blocks
     * publishers) must not stall the caller forever: after a minute the
     * connection is treated as lost and the caller republishes. */
    int64_t give_up = payq_now_ms() + 60000;
    while (payq_publisher_outstanding(p) >= (uint64_t)p->window) {
        if (read_one(p, 1000) < 0)
            return 0;
        if (payq_now_ms() > give_up) {
            payq_log(PAYQ_LOG_ERROR, "confirm_timeout", "no publisher confirm for 60 s");
            drop_connection(p);
            return 0;
        }
    }
    amqp_basic_properties_t bp;
    memset(&bp, 0, sizeof bp);
    bp._flags =
        AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG;
    bp.content_type =
        amqp_cstring_bytes(props && props->content_type ? props->content_type : "application/json");
    bp.delivery_mode = 2;
    /* The header is the timestamp property at millisecond resolution. */
    int64_t now_ms = props && props->timestamp_ms  ? props->timestamp_ms
                     : props && props->timestamp_s ? props->timestamp_s * 1000
                                                   : payq_now_ms();
    bp.timestamp = (uint64_t)(now_ms / 1000);
    if (props && props->message_id) {
        bp._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        bp.message_id = amqp_cstring_bytes(props->message_id);
    }
    amqp_table_entry_t hdr[3];
    int nh = 0;
    hdr[nh].key = amqp_cstring_bytes(PAYQ_HEADER_PUBLISHED_MS);
    hdr[nh].value.kind = AMQP_FIELD_KIND_I64;
    hdr[nh++].value.value.i64 = now_ms;
    if (props && props->reason_header) {
        hdr[nh].key = amqp_cstring_bytes(PAYQ_HEADER_DEAD_REASON);
        hdr[nh].value.kind = AMQP_FIELD_KIND_UTF8;
        hdr[nh++].value.value.bytes = amqp_cstring_bytes(props->reason_header);
    }
    if (props && props->field_header) {
        hdr[nh].key = amqp_cstring_bytes(PAYQ_HEADER_DEAD_FIELD);
        hdr[nh].value.kind = AMQP_FIELD_KIND_UTF8;
        hdr[nh++].value.value.bytes = amqp_cstring_bytes(props->field_header);
    }
    bp._flags |= AMQP_BASIC_HEADERS_FLAG;
    bp.headers.num_entries = nh;
    bp.headers.entries = hdr;
    amqp_bytes_t b = {len, (void *)body};
    int st = amqp_basic_publish(p->conn, PUB_CHANNEL, amqp_cstring_bytes(exchange),
                                amqp_cstring_bytes(routing_key), 1, 0, &bp, b);
    if (st != AMQP_STATUS_OK) {
        payq_amqp_check_status(st, "basic.publish");
        drop_connection(p);
        return 0;
    }
    uint64_t seq = p->next_seq++;
    p->ring[seq % p->ring_size] = 0;
    return seq;
}

int payq_publisher_flush(struct payq_publisher *p, int timeout_ms)
{
    int64_t deadline = payq_now_ms() + timeout_ms;
    while (payq_publisher_outstanding(p) > 0) {
        int64_t left = deadline - payq_now_ms();
        if (left <= 0)
            return 1;
        if (read_one(p, left > 1000 ? 1000 : (int)left) < 0)
            return -1;
    }
    return 0;
}
