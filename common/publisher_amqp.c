/* publisher_amqp: the broker calls of a confirm-mode publisher
 * (struct payq_broker_ops) over one librabbitmq-c connection and channel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "publisher.h"

#define PUB_CHANNEL 1

struct amqp_io {
    struct payq_amqp_target target;
    unsigned cursor;
    amqp_connection_state_t conn;
    int64_t sent_ms; /* the last frame sent on conn (payq_amqp_heartbeat) */
};

static void io_drop(void *arg)
{
    struct amqp_io *io = arg;
    if (io->conn)
        amqp_destroy_connection(io->conn);
    io->conn = NULL;
}

static int io_open(void *arg)
{
    struct amqp_io *io = arg;
    io_drop(io);
    if (payq_amqp_connect(&io->target, &io->cursor, &io->conn) != 0)
        return -1;
    if (payq_amqp_channel_open(io->conn, PUB_CHANNEL) != 0)
        goto fail;
    amqp_confirm_select(io->conn, PUB_CHANNEL);
    if (payq_amqp_check_reply(amqp_get_rpc_reply(io->conn), "confirm.select") != 0)
        goto fail;
    io->sent_ms = payq_clock_mono_ms();
    return 0;
fail:
    io_drop(io);
    return -1;
}

static void io_free(void *arg)
{
    struct amqp_io *io = arg;
    if (!io)
        return;
    payq_amqp_close(io->conn);
    free(io);
}

static void add_header(amqp_table_entry_t *h, const char *key, const char *value)
{
    h->key = amqp_cstring_bytes(key);
    h->value.kind = AMQP_FIELD_KIND_UTF8;
    h->value.value.bytes = amqp_cstring_bytes(value);
}

static int io_publish(void *arg, const char *exchange, const char *routing_key, const void *body,
                      size_t len, const struct payq_publish_props *props, int64_t published_ms)
{
    struct amqp_io *io = arg;
    amqp_basic_properties_t bp;
    memset(&bp, 0, sizeof bp);
    bp._flags =
        AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG;
    bp.content_type =
        amqp_cstring_bytes(props && props->content_type ? props->content_type : "application/json");
    bp.delivery_mode = 2;
    bp.timestamp = (uint64_t)(published_ms / 1000);
    if (props && props->message_id) {
        bp._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        bp.message_id = amqp_cstring_bytes(props->message_id);
    }
    amqp_table_entry_t hdr[1 + PAYQ_PUBLISH_MAX_HEADERS];
    int nh = 0;
    hdr[nh].key = amqp_cstring_bytes(PAYQ_HEADER_PUBLISHED_MS);
    hdr[nh].value.kind = AMQP_FIELD_KIND_I64;
    hdr[nh++].value.value.i64 = published_ms;
    for (int i = 0; props && i < props->n_headers && i < PAYQ_PUBLISH_MAX_HEADERS; i++)
        add_header(&hdr[nh++], props->headers[i].key, props->headers[i].value);
    bp._flags |= AMQP_BASIC_HEADERS_FLAG;
    bp.headers.num_entries = nh;
    bp.headers.entries = hdr;
    amqp_bytes_t b = {len, (void *)body};
    int st = amqp_basic_publish(io->conn, PUB_CHANNEL, amqp_cstring_bytes(exchange),
                                amqp_cstring_bytes(routing_key), 1, 0, &bp, b);
    io->sent_ms = payq_clock_mono_ms();
    return payq_amqp_check_status(st, "basic.publish") < 0 ? -1 : 0;
}

/* Turns one method frame into an event. Returns 0, or -1 if the channel
 * or connection was closed by the broker (logged). */
static int decode_method(struct amqp_io *io, amqp_frame_t *f, struct payq_broker_event *ev)
{
    switch (f->payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        amqp_basic_ack_t *a = f->payload.method.decoded;
        *ev = (struct payq_broker_event){PAYQ_BROKER_ACK, a->delivery_tag, a->multiple != 0, ""};
        return 0;
    }
    case AMQP_BASIC_NACK_METHOD: {
        amqp_basic_nack_t *n = f->payload.method.decoded;
        *ev = (struct payq_broker_event){PAYQ_BROKER_NACK, n->delivery_tag, n->multiple != 0, ""};
        return 0;
    }
    case AMQP_BASIC_RETURN_METHOD: {
        amqp_basic_return_t *r = f->payload.method.decoded;
        ev->kind = PAYQ_BROKER_RETURN;
        snprintf(ev->why, sizeof ev->why, "returned by the broker: %u %.*s", r->reply_code,
                 (int)r->reply_text.len, (const char *)r->reply_text.bytes);
        amqp_message_t msg;
        amqp_rpc_reply_t rr = amqp_read_message(io->conn, f->channel, &msg, 0);
        if (rr.reply_type != AMQP_RESPONSE_NORMAL)
            return payq_amqp_check_reply(rr, "read returned message");
        amqp_destroy_message(&msg);
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

static int io_next_event(void *arg, int timeout_ms, struct payq_broker_event *ev)
{
    struct amqp_io *io = arg;
    if (!io->conn)
        return -1;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    amqp_frame_t f;
    int st = amqp_simple_wait_frame_noblock(io->conn, &f, &tv);
    if (st == AMQP_STATUS_TIMEOUT)
        return 0;
    if (st != AMQP_STATUS_OK) {
        payq_amqp_check_status(st, "read confirms");
        io_drop(io);
        return -1;
    }
    ev->kind = PAYQ_BROKER_OTHER;
    if (f.frame_type == AMQP_FRAME_METHOD && decode_method(io, &f, ev) != 0) {
        io_drop(io);
        return -1;
    }
    amqp_maybe_release_buffers(io->conn);
    return 1;
}

static void io_heartbeat(void *arg)
{
    struct amqp_io *io = arg;
    payq_amqp_heartbeat(io->conn, &io->sent_ms);
}

static const struct payq_broker_ops amqp_ops = {
    .open = io_open,
    .drop = io_drop,
    .publish = io_publish,
    .next_event = io_next_event,
    .free = io_free,
    .heartbeat = io_heartbeat,
};

struct payq_publisher *payq_publisher_new_amqp(const struct payq_amqp_target *target, int window,
                                               payq_settle_fn on_settle, void *ctx)
{
    struct amqp_io *io = payq_xcalloc(1, sizeof *io);
    io->target = *target;
    return payq_publisher_new_io(&amqp_ops, io, window, on_settle, ctx);
}

int payq_publisher_new(const struct payq_amqp_target *target, int window, payq_settle_fn on_settle,
                       void *ctx, struct payq_publisher **out)
{
    *out = payq_publisher_new_amqp(target, window, on_settle, ctx);
    if (payq_publisher_reconnect(*out) != 0) {
        payq_publisher_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}
