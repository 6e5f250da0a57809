/* consumer: batches of deliveries from payq.transfers. */
#include "consumer.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"

#define CONSUME_CHANNEL 1
#define CONSUMER_TAG_MAX 128

struct payq_consumer {
    struct payq_amqp_target target;
    unsigned cursor;
    int prefetch;
    amqp_connection_state_t conn;
    int64_t sent_ms;   /* the last frame sent on conn (payq_amqp_heartbeat) */
    uint64_t conn_seq; /* bumped whenever conn is dropped: its delivery tags die with it */
    char tag[CONSUMER_TAG_MAX];
};

static void drop(struct payq_consumer *c)
{
    if (c->conn)
        amqp_destroy_connection(c->conn);
    c->conn = NULL;
    c->conn_seq++;
}

static int start(struct payq_consumer *c)
{
    drop(c);
    if (payq_amqp_connect(&c->target, &c->cursor, &c->conn) != 0)
        return -1;
    if (payq_amqp_channel_open(c->conn, CONSUME_CHANNEL) != 0)
        goto fail;
    amqp_basic_qos(c->conn, CONSUME_CHANNEL, 0, (uint16_t)c->prefetch, 0);
    if (payq_amqp_check_reply(amqp_get_rpc_reply(c->conn), "basic.qos") != 0)
        goto fail;
    amqp_basic_consume_ok_t *ok =
        amqp_basic_consume(c->conn, CONSUME_CHANNEL, amqp_cstring_bytes(PAYQ_QUEUE_TRANSFERS),
                           amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    if (payq_amqp_check_reply(amqp_get_rpc_reply(c->conn), "basic.consume") != 0 || !ok)
        goto fail;
    size_t n =
        ok->consumer_tag.len < CONSUMER_TAG_MAX - 1 ? ok->consumer_tag.len : CONSUMER_TAG_MAX - 1;
    memcpy(c->tag, ok->consumer_tag.bytes, n);
    c->tag[n] = '\0';
    c->sent_ms = payq_clock_mono_ms();
    return 0;
fail:
    drop(c);
    return -1;
}

int payq_consumer_open(const struct payq_amqp_target *t, int prefetch, struct payq_consumer **out)
{
    *out = NULL;
    struct payq_consumer *c = payq_xcalloc(1, sizeof *c);
    c->target = *t;
    c->prefetch = prefetch > 65535 ? 65535 : prefetch;
    if (start(c) != 0) {
        free(c);
        return -1;
    }
    *out = c;
    return 0;
}

void payq_consumer_free(struct payq_consumer *c)
{
    if (!c)
        return;
    if (c->conn)
        payq_amqp_close(c->conn);
    free(c);
}

void payq_consumer_release(struct payq_consumer *c)
{
    /* Closing the socket is enough: the broker requeues a channel's unacked
     * deliveries when its connection ends, and an AMQP close handshake could
     * block on a broker that does not answer. */
    if (c)
        drop(c);
}

void payq_consumer_heartbeat(struct payq_consumer *c)
{
    if (c)
        payq_amqp_heartbeat(c->conn, &c->sent_ms);
}

int payq_consumer_reconnect(struct payq_consumer *c)
{
    return start(c);
}

/* An integer header of any width, or 0 when absent or not an integer. */
static int64_t int_header(const amqp_basic_properties_t *p, const char *key)
{
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return 0;
    const amqp_field_value_t *v = payq_amqp_header(&p->headers, key);
    if (!v)
        return 0;
    switch (v->kind) {
    case AMQP_FIELD_KIND_I64:
        return v->value.i64;
    case AMQP_FIELD_KIND_U64:
        return (int64_t)v->value.u64;
    case AMQP_FIELD_KIND_I32:
        return v->value.i32;
    case AMQP_FIELD_KIND_U32:
        return v->value.u32;
    case AMQP_FIELD_KIND_I16:
        return v->value.i16;
    case AMQP_FIELD_KIND_U16:
        return v->value.u16;
    case AMQP_FIELD_KIND_I8:
        return v->value.i8;
    case AMQP_FIELD_KIND_U8:
        return v->value.u8;
    default:
        return 0;
    }
}

static void take(struct payq_wbatch *b, const amqp_envelope_t *e)
{
    const amqp_basic_properties_t *p = &e->message.properties;
    int64_t dc = int_header(p, "x-delivery-count");
    struct payq_wdelivery d = {
        .tag = e->delivery_tag,
        .redelivered = e->redelivered != 0,
        .delivery_count = dc > 1000 ? 1000 : (int)dc,
        .timestamp_s = (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG) ? (int64_t)p->timestamp
                                                               : payq_clock_wall_ms() / 1000,
        .published_ms = int_header(p, PAYQ_HEADER_PUBLISHED_MS),
    };
    if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
        d.message_id = p->message_id.bytes;
        d.message_id_len = p->message_id.len;
    }
    payq_wbatch_add(b, &d, e->routing_key.bytes, e->routing_key.len, e->message.body.bytes,
                    e->message.body.len);
}

/* A frame other than a delivery arrived: a broker-side close or cancel means
 * the connection is finished; anything else is ignored. */
static int handle_other_frame(struct payq_consumer *c)
{
    char why[256];
    switch (payq_amqp_other_frame(c->conn, "consume", why, sizeof why)) {
    case PAYQ_FRAME_IGNORED:
        return 0;
    case PAYQ_FRAME_CANCELLED:
        payq_log(PAYQ_LOG_WARN, "consumer_cancelled", "the broker cancelled the consumer");
        return -1;
    case PAYQ_FRAME_FAILED:
    case PAYQ_FRAME_CLOSED:
        break;
    }
    return -1;
}

/* One delivery within timeout_ms: 1 taken, 0 timed out, -1 failed. */
static int next(struct payq_consumer *c, struct payq_wbatch *b, int timeout_ms)
{
    amqp_maybe_release_buffers(c->conn);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    amqp_envelope_t e;
    amqp_rpc_reply_t r = amqp_consume_message(c->conn, &e, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        take(b, &e);
        amqp_destroy_envelope(&e);
        return 1;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
        return 0;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        r.library_error == AMQP_STATUS_UNEXPECTED_STATE)
        return handle_other_frame(c) == 0 ? 0 : -1;
    payq_amqp_check_reply(r, "basic.consume");
    return -1;
}

int payq_consumer_collect(struct payq_consumer *c, struct payq_wbatch *b,
                          const struct payq_batch_size *size, int first_wait_ms)
{
    if (!c->conn)
        return -1;
    int r = next(c, b, first_wait_ms);
    if (r <= 0)
        return r < 0 ? (drop(c), -1) : 0;
    int64_t first_ms = b->n > 0 ? b->msgs[0].published_ms : 0;
    int max = payq_batch_size_limit(size, first_ms, payq_clock_wall_ms());
    b->backlog = max > size->max;
    int64_t deadline = payq_clock_mono_ms() + size->wait_ms;
    /* The broker sends at most prefetch unacked deliveries: once this batch
     * holds that many, waiting for more is waiting out wait_ms for nothing
     * (one transfer per message, a batch that may grow under a backlog). */
    int taken = 1;
    while ((int)b->n < max && taken < c->prefetch) {
        /* Take what is already buffered without waiting; only then wait out
         * what remains of wait_ms. */
        int64_t left = deadline - payq_clock_mono_ms();
        int wait = left > 0 ? (int)left : 0;
        if (!amqp_data_in_buffer(c->conn) && !amqp_frames_enqueued(c->conn) && wait == 0)
            break;
        r = next(c, b, wait);
        if (r < 0) {
            drop(c);
            return -1;
        }
        taken += r;
        if (r == 0 && wait == 0)
            break;
        if (r == 0 && payq_clock_mono_ms() >= deadline)
            break;
    }
    return 0;
}

int payq_consumer_ack_upto(struct payq_consumer *c, uint64_t tag)
{
    if (!c->conn)
        return -1;
    int st = amqp_basic_ack(c->conn, CONSUME_CHANNEL, tag, 1);
    c->sent_ms = payq_clock_mono_ms();
    if (payq_amqp_check_status(st, "basic.ack") != 0) {
        drop(c);
        return -1;
    }
    return 0;
}

struct payq_consumer_mark payq_consumer_mark(const struct payq_consumer *c, uint64_t tag)
{
    return (struct payq_consumer_mark){c->conn_seq, tag};
}

bool payq_consumer_mark_live(const struct payq_consumer *c, struct payq_consumer_mark m)
{
    return c && c->conn && m.conn_seq == c->conn_seq;
}

int payq_consumer_ack_mark(struct payq_consumer *c, struct payq_consumer_mark m)
{
    if (!payq_consumer_mark_live(c, m))
        return 1;
    return payq_consumer_ack_upto(c, m.tag);
}
