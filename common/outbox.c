/* outbox: a ring of unconfirmed messages over common/publisher. */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "backoff.h"
#include "clock.h"
#include "log.h"
#include "message.h"
#include "publisher.h"
#include "signals.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define NACK_PAUSE_MS 100

enum entry_state { ENTRY_PENDING = 0, ENTRY_DONE, ENTRY_REFUSED };

struct entry {
    char *body; /* owned: the body, then the strings below */
    size_t len;
    uint32_t items; /* transfers it carries */
    const char *rk; /* in body's block, as are id and the headers */
    const char *id; /* NULL = no message_id */
    struct payq_header hdr[PAYQ_PUBLISH_MAX_HEADERS];
    int nh;
    int64_t ts;   /* AMQP timestamp, kept when republished */
    uint64_t seq; /* on the current connection; 0 = not published on it */
    enum entry_state state;
};

struct payq_outbox {
    struct payq_outbox_opts opts;
    struct payq_publisher *pub;
    bool connected;
    /* Entries live at absolute numbers [head, tail), stored at
     * ring[n & (cap - 1)]; head only moves past confirmed entries. */
    struct entry *ring;
    uint64_t cap, head, tail;
    size_t held; /* bytes of the bodies in [head, tail) */
    /* seqmap[seq & (seqcap - 1)] = absolute number of the entry published
     * with that seq; the publisher never has more than window unsettled. */
    uint64_t *seqmap;
    uint64_t seqcap;
    struct payq_outbox_stats st;
    /* When the last confirm came, or the first awaited message was put:
     * the stall limit counts from here, across reconnects. */
    int64_t progress_ms;
    int64_t conn_ms;   /* when the current connection opened */
    bool nacked;       /* some pending entry was nacked: publish it again */
    int64_t nacked_ms; /* when nacked entries were last published again */
    bool failed;
    bool retrying; /* payq_outbox_retry dropped the connection: not a loss to log */
    char error[384];
};

static struct entry *at(struct payq_outbox *o, uint64_t n)
{
    return &o->ring[n & (o->cap - 1)];
}

static void fail(struct payq_outbox *o, const char *fmt, const char *arg)
{
    if (o->failed)
        return; /* keep the first reason */
    o->failed = true;
    snprintf(o->error, sizeof o->error, fmt, arg);
}

/* Frees confirmed entries at the head. */
static void trim(struct payq_outbox *o)
{
    while (o->head < o->tail && at(o, o->head)->state == ENTRY_DONE) {
        struct entry *e = at(o, o->head++);
        o->held -= e->len;
        free(e->body);
        e->body = NULL;
    }
}

static void on_settle(void *ctx, uint64_t seq, bool ok, const char *why)
{
    struct payq_outbox *o = ctx;
    uint64_t n = o->seqmap[seq & (o->seqcap - 1)];
    if (n < o->head || n >= o->tail)
        return;
    struct entry *e = at(o, n);
    if (e->seq != seq || e->state != ENTRY_PENDING)
        return;
    if (ok) {
        e->state = ENTRY_DONE;
        o->progress_ms = payq_clock_mono_ms();
        o->st.confirmed++;
        o->st.items += e->items;
        trim(o);
        return;
    }
    if (why && strcmp(why, PAYQ_PUBLISH_NACKED) == 0) {
        /* Published again from settle(); a broker that never takes it ends
         * in the stall limit there. */
        e->seq = 0;
        o->nacked = true;
        if (o->st.nacked++ == 0)
            payq_log(PAYQ_LOG_WARN, "publish_nacked",
                     "message %.*s nacked by the broker: publishing it again", PAYQ_ID_MAX,
                     e->id ? e->id : "");
        return;
    }
    e->state = ENTRY_REFUSED;
    o->st.refused++;
    char what[PAYQ_ID_MAX + 200];
    snprintf(what, sizeof what, "message %.*s %s", PAYQ_ID_MAX, e->id ? e->id : "",
             why ? why : "refused by the broker");
    fail(o, "%s", what);
    payq_log(PAYQ_LOG_ERROR, "publish_refused", "%s", what);
}

struct payq_outbox *payq_outbox_new(const struct payq_outbox_opts *opts)
{
    struct payq_outbox *o = payq_xcalloc(1, sizeof *o);
    o->opts = *opts;
    if (o->opts.window < 1)
        o->opts.window = 1;
    if (!o->opts.exchange)
        o->opts.exchange = PAYQ_EXCHANGE_INGRESS;
    o->pub = o->opts.ops
                 ? payq_publisher_new_io(o->opts.ops, o->opts.io, o->opts.window, on_settle, o)
                 : payq_publisher_new_amqp(o->opts.target, o->opts.window, on_settle, o);
    o->seqcap = 1;
    while (o->seqcap < 2 * (uint64_t)o->opts.window)
        o->seqcap *= 2;
    o->cap = o->seqcap;
    o->seqmap = payq_xcalloc(o->seqcap, sizeof *o->seqmap);
    o->ring = payq_xcalloc(o->cap, sizeof *o->ring);
    return o;
}

void payq_outbox_free(struct payq_outbox *o)
{
    if (!o)
        return;
    if (o->ring)
        for (uint64_t n = o->head; n < o->tail; n++)
            free(at(o, n)->body);
    payq_publisher_free(o->pub);
    free(o->ring);
    free(o->seqmap);
    free(o);
}

/* Doubles the ring, keeping absolute numbers (and so seqmap) valid. */
static void grow(struct payq_outbox *o)
{
    struct entry *ring = payq_xcalloc(o->cap * 2, sizeof *ring);
    for (uint64_t n = o->head; n < o->tail; n++)
        ring[n & (o->cap * 2 - 1)] = *at(o, n);
    free(o->ring);
    o->ring = ring;
    o->cap *= 2;
}

/* When the current connection is due to be replaced for want of confirms
 * (resend_ms), or 0. */
static int64_t resend_at(const struct payq_outbox *o)
{
    if (o->opts.resend_ms <= 0)
        return 0;
    return (o->progress_ms > o->conn_ms ? o->progress_ms : o->conn_ms) + o->opts.resend_ms;
}

/* True (and the connection given up) when messages are awaited and the
 * connection confirmed none of them for resend_ms. Seen with RabbitMQ 3.10:
 * a cluster member frozen, then restarted, and a channel's publishes to the
 * stream it led were never confirmed, while new connections were. Publishing
 * them again is safe: message ids are idempotency keys. */
static bool overdue(struct payq_outbox *o)
{
    int64_t due = resend_at(o);
    if (!o->connected || o->head == o->tail || due == 0 || payq_clock_mono_ms() < due)
        return false;
    payq_log(PAYQ_LOG_WARN, "confirm_overdue",
             "no confirm on this connection for %d ms: publishing the %lld unconfirmed again on "
             "a new one",
             o->opts.resend_ms, (long long)(o->tail - o->head));
    o->connected = false;
    o->retrying = true; /* not a loss: recover() need not log one */
    return true;
}

/* Publishes entry n on the current connection. Returns 0, or -1 when the
 * connection failed or its wait for window room ran out (both logged by the
 * publisher; recover() then publishes the awaited entries again). */
static int publish_entry(struct payq_outbox *o, uint64_t n)
{
    struct entry *e = at(o, n);
    struct payq_publish_props props = {
        .message_id = e->id, .timestamp_ms = e->ts, .headers = e->hdr, .n_headers = e->nh};
    /* Waiting for window room ends where the stall limit does (stalled), or
     * sooner where the connection is overdue. */
    int64_t give_up = o->opts.stall_ms > 0 ? o->progress_ms + o->opts.stall_ms : 0;
    int64_t resend = resend_at(o);
    if (resend && (give_up == 0 || resend < give_up))
        give_up = resend;
    if (give_up)
        payq_publisher_set_give_up(o->pub, give_up);
    uint64_t seq = payq_publisher_publish(o->pub, o->opts.exchange, e->rk, e->body, e->len, &props);
    if (seq == 0) {
        o->connected = false;
        return -1;
    }
    /* While waiting for window space the publish may have settled (and
     * trimmed) other entries, never this pending one, and only send() moves
     * the ring: e is still valid. */
    e->seq = seq;
    o->seqmap[seq & (o->seqcap - 1)] = n;
    o->st.published++;
    return 0;
}

static int connect_once(struct payq_outbox *o)
{
    int rc = payq_publisher_reconnect(o->pub);
    o->connected = rc == 0;
    o->conn_ms = payq_clock_mono_ms();
    return rc;
}

static bool stop_now(struct payq_outbox *o)
{
    if (o->opts.stop_on_signal && payq_signals_stop_requested()) {
        fail(o, "%s", "interrupted by a stop signal");
        return true;
    }
    return o->failed;
}

/* True (and failed) when messages are awaited and none was confirmed for
 * stall_ms: reconnecting and publishing them again would go round for as
 * long as the broker takes them without confirming (an alarm, a stream
 * without a writer). */
static bool stalled(struct payq_outbox *o)
{
    if (o->head == o->tail || o->opts.stall_ms <= 0 ||
        payq_clock_mono_ms() - o->progress_ms <= o->opts.stall_ms)
        return false;
    fail(o, "%s", "the broker did not confirm in time");
    return true;
}

/* Reconnects with exponential backoff for up to retry_ms, then republishes
 * every entry not yet confirmed, oldest first. Returns 0 or -1 (failed). */
static int recover(struct payq_outbox *o)
{
    int64_t started = payq_clock_mono_ms();
    struct payq_backoff bo;
    payq_backoff_init(&bo, BACKOFF_FIRST_MS, BACKOFF_MAX_MS);
    bo.tick = o->opts.tick;
    bo.tick_ctx = o->opts.tick_ctx;
    /* Logged here, once per loss, even when the first attempt succeeds (a
     * broker back before we noticed it had gone). */
    if (o->st.published > 0 && !o->retrying)
        payq_log(PAYQ_LOG_WARN, "broker_reconnect",
                 "connection lost: reconnecting (%lld unconfirmed)",
                 (long long)(o->tail - o->head));
    o->retrying = false;
    for (;;) {
        if (stop_now(o) || stalled(o))
            return -1;
        if (connect_once(o) == 0) {
            if (o->st.published > 0)
                o->st.reconnects++;
            bool ok = true;
            for (uint64_t n = o->head; n < o->tail; n++)
                at(o, n)->seq = 0;
            for (uint64_t n = o->head; ok && n < o->tail; n++)
                if (at(o, n)->state == ENTRY_PENDING)
                    ok = publish_entry(o, n) == 0;
            if (ok)
                return o->failed ? -1 : 0;
        }
        int64_t waited = payq_clock_mono_ms() - started;
        if (waited >= o->opts.retry_ms) {
            char secs[32];
            snprintf(secs, sizeof secs, "%.1f", (double)waited / 1000.0);
            fail(o, "the broker stayed unreachable for %s s", secs);
            return -1;
        }
        payq_log(PAYQ_LOG_WARN, "broker_reconnect", "retrying in up to %d ms (%lld unconfirmed)",
                 bo.cur_ms, (long long)(o->tail - o->head));
        (void)payq_backoff_sleep(&bo, o->opts.stop_on_signal ? payq_signals_stop_requested : NULL);
    }
}

static int settle(struct payq_outbox *o, size_t keep);

/* Publishes again, oldest first, the pending entries that were nacked on
 * this connection. Returns 0 or -1 (the connection failed). */
static int republish_nacked(struct payq_outbox *o)
{
    /* A broker that nacks everything (a queue at its length limit) is asked
     * again at most every NACK_PAUSE_MS, not in a busy loop. */
    if (payq_clock_mono_ms() - o->nacked_ms < NACK_PAUSE_MS)
        return 0;
    o->nacked_ms = payq_clock_mono_ms();
    o->nacked = false;
    for (uint64_t n = o->head; n < o->tail; n++) {
        struct entry *e = at(o, n);
        if (e->state == ENTRY_PENDING && e->seq == 0 && publish_entry(o, n) != 0)
            return -1;
    }
    return 0;
}

/* Copies m into e: the body, then each string, in one block. */
static void copy_msg(struct entry *e, const struct payq_outbox_msg *m)
{
    int nh = m->n_headers < PAYQ_PUBLISH_MAX_HEADERS ? m->n_headers : PAYQ_PUBLISH_MAX_HEADERS;
    size_t size = m->len + strlen(m->routing_key) + 1 + (m->id ? strlen(m->id) + 1 : 0);
    for (int i = 0; i < nh; i++)
        size += strlen(m->headers[i].key) + strlen(m->headers[i].value) + 2;
    e->body = payq_xmalloc(size);
    memcpy(e->body, m->body, m->len);
    e->len = m->len;
    char *p = e->body + m->len;
    e->rk = p;
    p = stpcpy(p, m->routing_key) + 1;
    if (m->id) {
        e->id = p;
        p = stpcpy(p, m->id) + 1;
    }
    for (int i = 0; i < nh; i++) {
        e->hdr[i].key = p;
        p = stpcpy(p, m->headers[i].key) + 1;
        e->hdr[i].value = p;
        p = stpcpy(p, m->headers[i].value) + 1;
    }
    e->nh = nh;
    e->items = m->items ? m->items : 1;
    e->ts = m->timestamp_ms ? m->timestamp_ms
                            : payq_clock_wall_ms(); /* ms: published_at keeps ms latency */
}

int payq_outbox_put(struct payq_outbox *o, const struct payq_outbox_msg *m)
{
    if (stop_now(o))
        return -1;
    /* Wait for room first, so what is held stays under max_bytes. */
    if (o->opts.max_bytes && o->held + m->len > o->opts.max_bytes && o->head < o->tail &&
        settle(o, o->opts.max_bytes > m->len ? o->opts.max_bytes - m->len : 0) != 0)
        return -1;
    if (o->head == o->tail)
        o->progress_ms = payq_clock_mono_ms(); /* nothing was awaited until now */
    if (o->tail - o->head == o->cap)
        grow(o);
    struct entry *e = at(o, o->tail);
    memset(e, 0, sizeof *e);
    copy_msg(e, m);
    o->held += e->len;
    uint64_t n = o->tail++;
    if (o->connected && publish_entry(o, n) == 0)
        return o->failed ? -1 : 0;
    return recover(o);
}

int payq_outbox_send(struct payq_outbox *o, const char *rk, const char *id, const void *body,
                     size_t len)
{
    return payq_outbox_send_items(o, rk, id, body, len, 1);
}

int payq_outbox_send_items(struct payq_outbox *o, const char *rk, const char *id, const void *body,
                           size_t len, uint32_t items)
{
    struct payq_outbox_msg m = {
        .routing_key = rk, .id = id ? id : "", .body = body, .len = len, .items = items};
    return payq_outbox_put(o, &m);
}

/* Waits for confirms until at most keep bytes are held (keep 0: until
 * every message is confirmed), reconnecting as needed. 0 or -1 (failed, or
 * no confirm for stall_ms). */
static int settle(struct payq_outbox *o, size_t keep)
{
    while (o->head < o->tail && (keep == 0 || o->held > keep)) {
        if (stop_now(o) || stalled(o))
            return -1;
        (void)overdue(o);
        if (!o->connected && recover(o) != 0)
            return -1;
        /* Waiting for room needs only some confirms: look again soon. */
        int r = payq_publisher_flush(o->pub, keep ? 10 : 200);
        if (o->opts.tick)
            o->opts.tick(o->opts.tick_ctx);
        if (r < 0 || (o->nacked && republish_nacked(o) != 0))
            o->connected = false;
    }
    return o->failed ? -1 : 0;
}

int payq_outbox_wait(struct payq_outbox *o)
{
    return settle(o, 0);
}

const char *payq_outbox_error(const struct payq_outbox *o)
{
    return o->error;
}

void payq_outbox_stats(const struct payq_outbox *o, struct payq_outbox_stats *out)
{
    *out = o->st;
}

void payq_outbox_retry(struct payq_outbox *o)
{
    for (uint64_t n = o->head; n < o->tail; n++) {
        struct entry *e = at(o, n);
        if (e->state == ENTRY_REFUSED)
            e->state = ENTRY_PENDING;
        e->seq = 0;
    }
    /* A new connection: a late confirm on the old one cannot count. */
    o->connected = false;
    o->retrying = true;
    o->nacked = false;
    o->failed = false;
    o->error[0] = '\0';
    o->progress_ms = payq_clock_mono_ms();
}

void payq_outbox_stop_on_signal(struct payq_outbox *o, bool on)
{
    o->opts.stop_on_signal = on;
}

void payq_outbox_reset(struct payq_outbox *o)
{
    bool in_flight = false;
    for (uint64_t n = o->head; n < o->tail; n++) {
        struct entry *e = at(o, n);
        in_flight |= e->state == ENTRY_PENDING && e->seq != 0;
        free(e->body);
        e->body = NULL;
    }
    o->head = o->tail;
    o->held = 0;
    if (in_flight || o->failed)
        o->connected = false;
    o->failed = false;
    o->error[0] = '\0';
}

void payq_outbox_heartbeat(struct payq_outbox *o)
{
    if (o && o->connected)
        payq_publisher_heartbeat(o->pub);
}
