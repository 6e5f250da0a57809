/* audit: the payq.audit stream reader, read up to a marker of its own. */
#include "audit.h"
#include "alloc.h"

#include <amqp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "clock.h"
#include "json_scan.h"
#include "log.h"
#include "money.h"
#include "outbox.h"
#include "pack.h"
#include "signals.h"
#include "strmap.h"

#define AUDIT_CHANNEL 1
#define AUDIT_PREFETCH 2000
/* Acks are credit for a stream consumer: give it back well before the
 * prefetch runs out, in few frames. */
#define AUDIT_ACK_EVERY 500
/* The marker is behind everything the broker already holds; while messages
 * keep coming the read is making progress, so only silence counts. */
#define AUDIT_IDLE_TIMEOUT_MS 120000
#define AUDIT_CONFIRM_TIMEOUT_MS 30000
/* The marker is published again on a new connection after this long
 * without its confirm (outbox.h); the read stops at its first copy. */
#define AUDIT_RESEND_MS 10000

struct reader {
    const struct payq_audit_req *req;
    const struct payq_audit_sink *sink;
    struct payq_audit_stats *st;
    amqp_connection_state_t conn;
    char *err;
    size_t errlen;
    int64_t offset;         /* x-stream-offset of the delivery at hand, -1 if unknown */
    struct payq_strmap idx; /* date -> index in req->index */
};

void payq_audit_utc_date(int64_t t, char buf[11])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, 11, "%Y-%m-%d", &tm);
}

void payq_audit_index_free(struct payq_audit_index *ix)
{
    for (size_t i = 0; i < ix->n; i++)
        free(ix->dates[i]);
    free(ix->dates);
    free(ix->offsets);
    memset(ix, 0, sizeof *ix);
}

/* Notes that a message of date sits at the current offset. Offsets only
 * grow within a read, so the first note of a date is its first offset. */
static void index_note(struct reader *rd, const char *date)
{
    struct payq_audit_index *ix = rd->req->index;
    size_t i;
    if (!ix || rd->offset < 0 || !date[0] || payq_strmap_get(&rd->idx, date, &i))
        return;
    if (ix->n == ix->cap) {
        ix->cap = ix->cap ? ix->cap * 2 : 64;
        ix->dates = payq_xreallocarray(ix->dates, ix->cap, sizeof *ix->dates);
        ix->offsets = payq_xreallocarray(ix->offsets, ix->cap, sizeof *ix->offsets);
    }
    ix->dates[ix->n] = payq_xstrdup(date);
    ix->offsets[ix->n] = rd->offset;
    payq_strmap_put(&rd->idx, ix->dates[ix->n], ix->n);
    ix->n++;
}

/* The x-stream-offset header the broker adds to each stream delivery. */
static int64_t stream_offset(const amqp_envelope_t *e)
{
    const amqp_basic_properties_t *p = &e->message.properties;
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return -1;
    for (int i = 0; i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *h = &p->headers.entries[i];
        if (h->key.len != 15 || memcmp(h->key.bytes, "x-stream-offset", 15) != 0)
            continue;
        switch (h->value.kind) {
        case AMQP_FIELD_KIND_I64:
            return h->value.value.i64;
        case AMQP_FIELD_KIND_U64:
            return (int64_t)h->value.value.u64;
        case AMQP_FIELD_KIND_I32:
            return h->value.value.i32;
        case AMQP_FIELD_KIND_U32:
            return h->value.value.u32;
        default:
            return -1;
        }
    }
    return -1;
}

static void make_marker_id(char *buf, size_t len, const char *date)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint64_t)payq_clock_wall_ms() ^ ((uint64_t)getpid() << 32);
    snprintf(buf, len, "payq-reconciler.%s.%d.%lld.%016llx", date, (int)getpid(),
             (long long)payq_clock_wall_ms(), (unsigned long long)r);
}

/* Publishes the marker and waits for the broker's confirm: once confirmed
 * it is in the stream, behind everything published before it. */
static int publish_marker(struct reader *rd)
{
    const struct payq_config *cfg = rd->req->cfg;
    struct payq_amqp_target t = {cfg->amqp.url, &cfg->amqp.tls, cfg->amqp.heartbeat_s,
                                 cfg->amqp.connect_timeout_ms, "payq-reconciler-marker"};
    struct payq_outbox_opts oo = {.target = &t,
                                  .window = 1,
                                  .stall_ms = AUDIT_CONFIRM_TIMEOUT_MS,
                                  .resend_ms = AUDIT_RESEND_MS,
                                  .stop_on_signal = true};
    struct payq_outbox *ob = payq_outbox_new(&oo);
    char body[256];
    int n = snprintf(body, sizeof body, "{\"marker\":\"%s\",\"business_date\":\"%s\"}",
                     rd->st->marker_id, rd->req->date);
    int rc = payq_outbox_send(ob, PAYQ_AUDIT_MARKER_KEY, rd->st->marker_id, body, (size_t)n);
    if (rc == 0)
        rc = payq_outbox_wait(ob);
    struct payq_outbox_stats st;
    payq_outbox_stats(ob, &st);
    if (rc != 0 && st.refused > 0)
        snprintf(rd->err, rd->errlen, "the marker was refused (%s): is payq.audit bound to %s?",
                 payq_outbox_error(ob), PAYQ_EXCHANGE_INGRESS);
    else if (rc != 0)
        snprintf(rd->err, rd->errlen, "the marker was not published: %s", payq_outbox_error(ob));
    if (rc != 0)
        payq_log(PAYQ_LOG_ERROR, "audit_marker_failed", "%s", rd->err);
    payq_outbox_free(ob);
    return rc;
}

/* Subscribes to the stream from the requested offset with manual acks. */
static int start_consumer(struct reader *rd)
{
    amqp_connection_state_t c = rd->conn;
    if (payq_amqp_channel_open(c, AUDIT_CHANNEL) != 0)
        return -1;
    amqp_basic_qos(c, AUDIT_CHANNEL, 0, AUDIT_PREFETCH, 0);
    if (payq_amqp_check_reply(amqp_get_rpc_reply(c), "basic.qos") != 0)
        return -1;
    amqp_table_entry_t arg;
    arg.key = amqp_cstring_bytes("x-stream-offset");
    if (rd->req->from_first) {
        arg.value.kind = AMQP_FIELD_KIND_UTF8;
        arg.value.value.bytes = amqp_cstring_bytes("first");
    } else if (rd->req->from_offset >= 0) {
        arg.value.kind = AMQP_FIELD_KIND_I64;
        arg.value.value.i64 = rd->req->from_offset;
    } else {
        arg.value.kind = AMQP_FIELD_KIND_TIMESTAMP;
        arg.value.value.u64 = (uint64_t)rd->req->from_s;
    }
    amqp_table_t args = {1, &arg};
    amqp_basic_consume(c, AUDIT_CHANNEL, amqp_cstring_bytes(PAYQ_STREAM_AUDIT), amqp_empty_bytes, 0,
                       0, 0, args);
    return payq_amqp_check_reply(amqp_get_rpc_reply(c), "basic.consume payq.audit");
}

/* What can be read of a body that does not decode: the worker keys its
 * dead letter by the body's SHA-256, and finance wants the currency and
 * amount when they are legible. Dated like a transfer, from the body's
 * business_date if it is a real date, else from the AMQP timestamp. */
static void on_invalid(struct reader *rd, const char *body, size_t len, int64_t ts,
                       const struct payq_msg_error *err)
{
    const char *v;
    size_t n;
    struct payq_audit_invalid inv = {.amount = -1, .err = *err};
    char date[11] = "";
    if (payq_json_scan_peek_string(body, len, "business_date", &v, &n) &&
        payq_msg_valid_date(v, n)) {
        memcpy(date, v, 10);
        date[10] = '\0';
    } else if (ts >= 0) {
        payq_audit_utc_date(ts, date);
    }
    inv.undated = date[0] == '\0';
    index_note(rd, date);
    if (!inv.undated && strcmp(date, rd->req->date) != 0)
        return;
    payq_sha256(body, len, inv.body_hash);
    payq_msg_peek_id(body, len, inv.id);
    if (payq_json_scan_peek_string(body, len, "currency", &v, &n) &&
        payq_msg_valid_currency(v, n)) {
        memcpy(inv.currency, v, 3);
        inv.currency[3] = '\0';
    }
    const char *why;
    if (payq_json_scan_peek_string(body, len, "amount", &v, &n) &&
        payq_money_parse_amount(v, n, &inv.amount, &why) != 0)
        inv.amount = -1;
    rd->st->invalid++;
    rd->sink->invalid(rd->sink->ctx, &inv);
}

static int on_transfer(struct reader *rd, const char *body, size_t len, int64_t ts, uint64_t seq)
{
    struct payq_transfer t;
    struct payq_msg_error err;
    if (payq_msg_decode_transfer(body, len, &t, &err) != 0) {
        on_invalid(rd, body, len, ts, &err);
        return 0;
    }
    rd->st->transfers++;
    uint8_t hash[32];
    payq_transfer_hash(&t, hash);
    char date[11] = "";
    if (t.business_date[0])
        memcpy(date, t.business_date, sizeof date);
    else if (ts >= 0)
        payq_audit_utc_date(ts, date);
    int rc = 0;
    index_note(rd, date);
    if (!date[0]) {
        rd->st->undated++;
        rc = rd->sink->undated(rd->sink->ctx, &t, hash, seq);
    } else if (strcmp(date, rd->req->date) == 0) {
        rd->st->kept++;
        rc = rd->sink->transfer(rd->sink->ctx, &t, hash, seq);
    }
    payq_transfer_clear(&t);
    return rc;
}

static int64_t amqp_timestamp(const amqp_envelope_t *e)
{
    const amqp_basic_properties_t *p = &e->message.properties;
    return (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG) ? (int64_t)p->timestamp : -1;
}

/* Each line of a pack counts as a transfer message of its own, as the
 * worker applies it; a badly framed pack is one invalid message, as the
 * worker dead-letters it whole. */
static int on_pack(struct reader *rd, const amqp_envelope_t *e, uint64_t seq)
{
    const char *body = e->message.body.bytes;
    size_t len = e->message.body.len;
    int64_t ts = amqp_timestamp(e);
    struct payq_msg_error err;
    if (payq_pack_check(body, len, &err) == 0) {
        on_invalid(rd, body, len, ts, &err);
        return 0;
    }
    rd->st->packs++;
    struct payq_pack_iter it = payq_pack_iter(body, len);
    const char *line;
    size_t n;
    while (payq_pack_next(&it, &line, &n))
        if (on_transfer(rd, line, n, ts, seq) != 0)
            return -1;
    return 0;
}

static void on_manifest(struct reader *rd, const amqp_envelope_t *e)
{
    struct payq_manifest m;
    struct payq_msg_error err;
    if (payq_msg_decode_manifest(e->message.body.bytes, e->message.body.len, &m, &err) != 0) {
        /* Nothing else records a bad manifest (the worker never sees
         * manifests); its batch will show up without one. */
        rd->st->invalid_manifests++;
        struct payq_log_rec r;
        payq_log_begin(&r, PAYQ_LOG_WARN, "audit_invalid_manifest");
        payq_log_str(&r, "field", err.field);
        payq_log_str(&r, "reason", err.reason);
        payq_log_end(&r);
        return;
    }
    index_note(rd, m.business_date);
    if (strcmp(m.business_date, rd->req->date) != 0)
        return;
    rd->st->manifests++;
    rd->sink->manifest(rd->sink->ctx, &m);
}

static bool is_our_marker(const struct reader *rd, const amqp_envelope_t *e)
{
    const amqp_basic_properties_t *p = &e->message.properties;
    size_t n = strlen(rd->st->marker_id);
    return (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) && p->message_id.len == n &&
           memcmp(p->message_id.bytes, rd->st->marker_id, n) == 0;
}

/* Returns 1 at our marker, 0 to go on, -1 when the sink failed. */
static int on_delivery(struct reader *rd, const amqp_envelope_t *e, uint64_t seq)
{
    const amqp_bytes_t rk = e->routing_key;
    rd->offset = stream_offset(e);
    if (rd->st->first_offset < 0)
        rd->st->first_offset = rd->offset;
    if (rk.len == strlen(PAYQ_AUDIT_MARKER_KEY) &&
        memcmp(rk.bytes, PAYQ_AUDIT_MARKER_KEY, rk.len) == 0) {
        if (is_our_marker(rd, e)) {
            rd->st->marker_offset = rd->offset;
            return 1;
        }
        rd->st->ignored++; /* another run's marker */
        return 0;
    }
    enum payq_msg_kind kind;
    if (payq_msg_kind_from_routing_key(rk.bytes, rk.len, &kind) != 0) {
        rd->st->ignored++;
        return 0;
    }
    switch (kind) {
    case PAYQ_MSG_TRANSFER:
        return on_transfer(rd, e->message.body.bytes, e->message.body.len, amqp_timestamp(e),
                           seq) == 0
                   ? 0
                   : -1;
    case PAYQ_MSG_PACK:
        return on_pack(rd, e, seq) == 0 ? 0 : -1;
    case PAYQ_MSG_BATCH:
        on_manifest(rd, e);
        return 0;
    case PAYQ_MSG_ACCOUNT:
        rd->st->accounts++;
        return 0;
    }
    return 0;
}

/* A frame other than a delivery: the broker closing the channel or
 * cancelling the consumer (stream deleted) ends the read. */
static int on_other_frame(struct reader *rd)
{
    switch (payq_amqp_other_frame(rd->conn, "read payq.audit", rd->err, rd->errlen)) {
    case PAYQ_FRAME_IGNORED:
        return 0;
    case PAYQ_FRAME_FAILED:
        snprintf(rd->err, rd->errlen, "the connection to the broker failed while reading");
        rd->st->broker_lost = true;
        return -1;
    case PAYQ_FRAME_CANCELLED:
        snprintf(rd->err, rd->errlen, "the broker cancelled the stream consumer");
        payq_log(PAYQ_LOG_ERROR, "audit_cancelled", "%s", rd->err);
        return -1;
    case PAYQ_FRAME_CLOSED:
        break;
    }
    return -1;
}

/* Waits for one delivery. Returns 1 with *e filled, 0 on a quiet second or
 * a frame that was handled, -1 on failure (err set). */
static int next_delivery(struct reader *rd, amqp_envelope_t *e)
{
    struct timeval tv = {1, 0};
    amqp_maybe_release_buffers(rd->conn);
    amqp_rpc_reply_t r = amqp_consume_message(rd->conn, e, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 1;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
        return 0;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        r.library_error == AMQP_STATUS_UNEXPECTED_STATE)
        return on_other_frame(rd) == 0 ? 0 : -1;
    /* A library error here is the connection: closed, reset, or no
     * heartbeat from a node that went silent. */
    rd->st->broker_lost = r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION;
    payq_amqp_reply_text(r, rd->err, rd->errlen);
    payq_amqp_check_reply(r, "read payq.audit");
    return -1;
}

static int read_to_marker(struct reader *rd, struct payq_progress *prog)
{
    int64_t last = payq_clock_mono_ms();
    uint64_t unacked = 0;
    for (;;) {
        if (payq_signals_stop_requested()) {
            snprintf(rd->err, rd->errlen, "interrupted before the marker arrived");
            return -1;
        }
        amqp_envelope_t e;
        int got = next_delivery(rd, &e);
        if (got < 0)
            return -1;
        if (got == 0) {
            if (payq_clock_mono_ms() - last <= AUDIT_IDLE_TIMEOUT_MS)
                continue;
            /* Nothing at all although the marker is in the stream: the read
             * attached after it. A stream attaches from a time by the
             * broker's clock, which RabbitMQ does not step with the host's. */
            snprintf(rd->err, rd->errlen,
                     "not read completely: the marker did not arrive "
                     "within %d s of silence%s",
                     AUDIT_IDLE_TIMEOUT_MS / 1000,
                     rd->st->messages ? ""
                                      : " and nothing was delivered: a read from a time "
                                        "after the broker's clock starts after the marker "
                                        "(compare this host's clock with the broker's)");
            payq_log(PAYQ_LOG_ERROR, "audit_incomplete", "%s", rd->err);
            return -1;
        }
        last = payq_clock_mono_ms();
        uint64_t seq = rd->st->messages++;
        int rc = on_delivery(rd, &e, seq);
        uint64_t tag = e.delivery_tag;
        amqp_destroy_envelope(&e);
        if (rc < 0) {
            snprintf(rd->err, rd->errlen, "could not keep what was read (see log)");
            return -1;
        }
        if (rc > 0)
            return 0;
        if (++unacked >= AUDIT_ACK_EVERY) {
            if (payq_amqp_check_status(amqp_basic_ack(rd->conn, AUDIT_CHANNEL, tag, 1),
                                       "basic.ack payq.audit") != 0) {
                snprintf(rd->err, rd->errlen, "the connection failed while acking");
                rd->st->broker_lost = true;
                return -1;
            }
            unacked = 0;
        }
        payq_progress_update(prog, rd->st->messages);
    }
}

static void describe_start(const struct payq_audit_req *req, char *buf, size_t len)
{
    time_t t = (time_t)req->from_s;
    struct tm tm;
    if (req->from_first) {
        snprintf(buf, len, "first");
    } else if (req->from_offset >= 0) {
        snprintf(buf, len, "offset %lld", (long long)req->from_offset);
    } else {
        gmtime_r(&t, &tm);
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
}

int payq_audit_read(const struct payq_audit_req *req, const struct payq_audit_sink *sink,
                    struct payq_progress *prog, struct payq_audit_stats *st, char *err,
                    size_t errlen)
{
    int64_t t0 = payq_clock_mono_ms();
    memset(st, 0, sizeof *st);
    st->marker_offset = st->first_offset = -1;
    describe_start(req, st->from, sizeof st->from);
    struct reader rd = {req, sink, st, NULL, err, errlen, -1, {0}};
    make_marker_id(st->marker_id, sizeof st->marker_id, req->date);
    const struct payq_config *cfg = req->cfg;
    struct payq_amqp_target t = {cfg->amqp.url, &cfg->amqp.tls, cfg->amqp.heartbeat_s,
                                 cfg->amqp.connect_timeout_ms, "payq-reconciler"};
    unsigned cursor = 0;
    /* Connect before publishing the marker: an unreachable broker should
     * leave no marker behind. */
    if (payq_amqp_connect(&t, &cursor, &rd.conn) != 0) {
        snprintf(err, errlen, "cannot connect to the broker (amqp.url)");
        return -1;
    }
    int rc = -1;
    if (publish_marker(&rd) != 0)
        goto out;
    if (start_consumer(&rd) != 0) {
        snprintf(err, errlen, "cannot subscribe to %s", PAYQ_STREAM_AUDIT);
        goto out;
    }
    payq_progress_phase(prog, "audit stream", "messages", 0);
    rc = read_to_marker(&rd, prog);
    payq_progress_clear(prog);
out:
    payq_amqp_close(rd.conn);
    payq_strmap_free(&rd.idx);
    st->read_ms = payq_clock_mono_ms() - t0;
    return rc;
}
