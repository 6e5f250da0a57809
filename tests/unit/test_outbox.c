/* test_outbox: the publisher's settle ring (confirms in and out of order,
 * multiple=true, nack, basic.return, the window) and the outbox's
 * republishing (exactly the unconfirmed messages after a lost connection),
 * against a fake broker behind struct payq_broker_ops: no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "outbox.h"
#include "publisher.h"
#include "signals.h"

#define FAKE_MAX 64

struct sent {
    char exchange[32], rk[32], id[32], body[64];
    char hdr[PAYQ_PUBLISH_MAX_HEADERS][2][32];
    int nh;
    int64_t ts;
    int conn; /* which connection (1 = the first) carried it */
};

struct fake {
    int opens, fail_opens; /* the next fail_opens opens fail */
    bool up;
    uint64_t seq, acked; /* publishes and auto-acks on this connection */
    struct sent log[FAKE_MAX];
    int n;
    struct payq_broker_event q[FAKE_MAX]; /* frames the broker will send */
    int qh, qt;
    bool lose_when_drained; /* the connection dies once q is empty */
    bool auto_ack;          /* then acks everything (multiple) */
    int ack_from_conn;      /* ... from this connection on (0 or 1: the first) */
    bool nack_all;          /* then nacks everything (multiple) */
    int die_on_publish;     /* the publish after this many dies (0 = none) */
};

static int fake_open(void *io)
{
    struct fake *f = io;
    if (f->fail_opens > 0) {
        f->fail_opens--;
        return -1;
    }
    f->up = true;
    f->opens++;
    f->seq = f->acked = 0;
    f->qh = f->qt = 0;
    return 0;
}

static void fake_drop(void *io)
{
    ((struct fake *)io)->up = false;
}

static int fake_publish(void *io, const char *exchange, const char *rk, const void *body,
                        size_t len, const struct payq_publish_props *props, int64_t published_ms)
{
    struct fake *f = io;
    if (!f->up)
        return -1;
    if (f->die_on_publish && f->n == f->die_on_publish) {
        f->die_on_publish = 0;
        f->up = false;
        return -1;
    }
    assert_true(f->n < FAKE_MAX);
    struct sent *s = &f->log[f->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->exchange, sizeof s->exchange, "%s", exchange);
    snprintf(s->rk, sizeof s->rk, "%s", rk);
    static const struct payq_publish_props none;
    if (!props)
        props = &none;
    snprintf(s->id, sizeof s->id, "%s", props->message_id ? props->message_id : "(none)");
    snprintf(s->body, sizeof s->body, "%.*s", (int)len, (const char *)body);
    for (int i = 0; i < props->n_headers; i++) {
        snprintf(s->hdr[i][0], sizeof s->hdr[i][0], "%s", props->headers[i].key);
        snprintf(s->hdr[i][1], sizeof s->hdr[i][1], "%s", props->headers[i].value);
    }
    s->nh = props->n_headers;
    s->ts = published_ms;
    s->conn = f->opens;
    f->seq++;
    return 0;
}

static int fake_next_event(void *io, int timeout_ms, struct payq_broker_event *ev)
{
    (void)timeout_ms;
    struct fake *f = io;
    if (!f->up)
        return -1;
    if (f->qh < f->qt) {
        *ev = f->q[f->qh++];
        return 1;
    }
    if (f->lose_when_drained) {
        f->lose_when_drained = false;
        f->up = false;
        return -1;
    }
    if ((f->auto_ack || f->nack_all) && f->acked < f->seq && f->opens >= f->ack_from_conn) {
        *ev = (struct payq_broker_event){f->nack_all ? PAYQ_BROKER_NACK : PAYQ_BROKER_ACK, f->seq,
                                         true, ""};
        f->acked = f->seq;
        return 1;
    }
    return 0;
}

static const struct payq_broker_ops fake_ops = {
    .open = fake_open,
    .drop = fake_drop,
    .publish = fake_publish,
    .next_event = fake_next_event,
};

static void frame(struct fake *f, enum payq_broker_event_kind kind, uint64_t tag, bool multiple)
{
    assert_true(f->qt < FAKE_MAX);
    f->q[f->qt] = (struct payq_broker_event){kind, tag, multiple, ""};
    if (kind == PAYQ_BROKER_RETURN)
        snprintf(f->q[f->qt].why, sizeof f->q[f->qt].why, "returned by the broker: 312 NO_ROUTE");
    f->qt++;
}

/* What the settle callback saw, as "1+ 3- ..." (+ confirmed, - refused). */
struct settled {
    char text[256];
    char why[128];
};

static void on_settle(void *ctx, uint64_t seq, bool ok, const char *why)
{
    struct settled *s = ctx;
    size_t used = strlen(s->text);
    snprintf(s->text + used, sizeof s->text - used, "%s%llu%c", used ? " " : "",
             (unsigned long long)seq, ok ? '+' : '-');
    if (why)
        snprintf(s->why, sizeof s->why, "%s", why);
}

static struct payq_publisher *connected(struct fake *f, int window, struct settled *s)
{
    memset(f, 0, sizeof *f);
    memset(s, 0, sizeof *s);
    struct payq_publisher *p = payq_publisher_new_io(&fake_ops, f, window, on_settle, s);
    assert_int_equal(payq_publisher_reconnect(p), 0);
    return p;
}

static void publish_n(struct payq_publisher *p, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_not_equal(payq_publisher_publish(p, "x", "rk", "b", 1, NULL), 0);
}

static void test_confirms_in_order(void **state)
{
    (void)state;
    struct fake f;
    struct settled s;
    struct payq_publisher *p = connected(&f, 8, &s);
    publish_n(p, 3);
    assert_int_equal(payq_publisher_outstanding(p), 3);
    frame(&f, PAYQ_BROKER_ACK, 1, false);
    frame(&f, PAYQ_BROKER_ACK, 2, false);
    frame(&f, PAYQ_BROKER_ACK, 3, false);
    assert_int_equal(payq_publisher_flush(p, 1000), 0);
    assert_string_equal(s.text, "1+ 2+ 3+");
    assert_int_equal(payq_publisher_outstanding(p), 0);
    payq_publisher_free(p);
}

/* Single acks out of order hold the watermark back; a multiple ack then
 * settles only what is left below it, and a repeated ack settles nothing. */
static void test_confirms_out_of_order(void **state)
{
    (void)state;
    struct fake f;
    struct settled s;
    struct payq_publisher *p = connected(&f, 8, &s);
    publish_n(p, 5);
    frame(&f, PAYQ_BROKER_ACK, 3, false);
    assert_int_equal(payq_publisher_poll(p), 0);
    assert_int_equal(payq_publisher_outstanding(p), 5);
    frame(&f, PAYQ_BROKER_ACK, 1, false);
    frame(&f, PAYQ_BROKER_ACK, 3, false);
    assert_int_equal(payq_publisher_poll(p), 0);
    assert_int_equal(payq_publisher_outstanding(p), 4);
    frame(&f, PAYQ_BROKER_ACK, 4, true);
    assert_int_equal(payq_publisher_poll(p), 0);
    assert_string_equal(s.text, "3+ 1+ 2+ 4+");
    assert_int_equal(payq_publisher_outstanding(p), 1);
    frame(&f, PAYQ_BROKER_ACK, 5, false);
    assert_int_equal(payq_publisher_flush(p, 1000), 0);
    assert_string_equal(s.text, "3+ 1+ 2+ 4+ 5+");
    payq_publisher_free(p);
}

static void test_nack_multiple(void **state)
{
    (void)state;
    struct fake f;
    struct settled s;
    struct payq_publisher *p = connected(&f, 8, &s);
    publish_n(p, 3);
    frame(&f, PAYQ_BROKER_NACK, 2, true);
    frame(&f, PAYQ_BROKER_ACK, 3, false);
    assert_int_equal(payq_publisher_flush(p, 1000), 0);
    assert_string_equal(s.text, "1- 2- 3+");
    assert_string_equal(s.why, "nacked by the broker");
    payq_publisher_free(p);
}

/* An unroutable message comes back as basic.return followed by its own
 * single ack: that ack refuses it; the next ack confirms normally. */
static void test_return(void **state)
{
    (void)state;
    struct fake f;
    struct settled s;
    struct payq_publisher *p = connected(&f, 8, &s);
    publish_n(p, 2);
    frame(&f, PAYQ_BROKER_RETURN, 0, false);
    frame(&f, PAYQ_BROKER_ACK, 1, false);
    frame(&f, PAYQ_BROKER_ACK, 2, false);
    assert_int_equal(payq_publisher_flush(p, 1000), 0);
    assert_string_equal(s.text, "1- 2+");
    assert_string_equal(s.why, "returned by the broker: 312 NO_ROUTE");
    payq_publisher_free(p);
}

/* A full window makes publish read confirms before it sends. */
static void test_window(void **state)
{
    (void)state;
    struct fake f;
    struct settled s;
    struct payq_publisher *p = connected(&f, 2, &s);
    publish_n(p, 2);
    frame(&f, PAYQ_BROKER_ACK, 1, false);
    assert_string_equal(s.text, "");
    assert_int_equal(payq_publisher_publish(p, "x", "rk", "b", 1, NULL), 3);
    assert_string_equal(s.text, "1+");
    assert_int_equal(f.n, 3);
    payq_publisher_free(p);
}

/* After a lost connection publishing fails until a reconnect, which
 * restarts the sequence at 1 and forgets the unsettled without callbacks. */
static void test_lost_connection(void **state)
{
    (void)state;
    struct fake f;
    struct settled s;
    struct payq_publisher *p = connected(&f, 8, &s);
    publish_n(p, 2);
    f.lose_when_drained = true;
    assert_int_equal(payq_publisher_flush(p, 1000), -1);
    assert_int_equal(payq_publisher_publish(p, "x", "rk", "b", 1, NULL), 0);
    assert_int_equal(payq_publisher_reconnect(p), 0);
    assert_int_equal(payq_publisher_outstanding(p), 0);
    assert_int_equal(payq_publisher_publish(p, "x", "rk", "b", 1, NULL), 1);
    assert_string_equal(s.text, "");
    payq_publisher_free(p);
}

static struct payq_outbox *outbox_resend(struct fake *f, int window, int retry_ms, int resend_ms)
{
    memset(f, 0, sizeof *f);
    struct payq_outbox_opts oo = {.exchange = "payq.dlx",
                                  .window = window,
                                  .retry_ms = retry_ms,
                                  .stall_ms = 2000,
                                  .resend_ms = resend_ms,
                                  .ops = &fake_ops,
                                  .io = f};
    return payq_outbox_new(&oo);
}

static struct payq_outbox *outbox(struct fake *f, int window, int retry_ms)
{
    return outbox_resend(f, window, retry_ms, 0);
}

static void send_ids(struct payq_outbox *o, int from, int to)
{
    for (int i = from; i <= to; i++) {
        char id[16];
        snprintf(id, sizeof id, "m%d", i);
        assert_int_equal(payq_outbox_send(o, "transfers", id, id, strlen(id)), 0);
    }
}

/* Which messages were published, in order, as "m1@1 m2@1 ..." (id@conn). */
static void published(const struct fake *f, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < f->n; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%s@%d", i ? " " : "", f->log[i].id,
                                 f->log[i].conn);
}

/* The outbox copies everything it publishes (headers and routing key
 * included) and sends it to its exchange. */
static void test_outbox_copies_message(void **state)
{
    (void)state;
    struct fake f;
    struct payq_outbox *o = outbox(&f, 8, 1000);
    f.auto_ack = true;
    char rk[16] = "transfers", id[16] = "m1", body[16] = "{}", reason[32] = "amount: not a number";
    struct payq_header hdr[] = {{"x-payq-reason", reason}, {"x-payq-field", ""}};
    struct payq_outbox_msg m = {.routing_key = rk,
                                .id = id,
                                .body = body,
                                .len = 2,
                                .timestamp_ms = 1700000000123,
                                .headers = hdr,
                                .n_headers = 2};
    assert_int_equal(payq_outbox_put(o, &m), 0);
    strcpy(rk, "xx");
    strcpy(id, "xx");
    strcpy(body, "xx");
    strcpy(reason, "xx");
    assert_int_equal(payq_outbox_wait(o), 0);
    assert_int_equal(f.n, 1);
    assert_string_equal(f.log[0].exchange, "payq.dlx");
    assert_string_equal(f.log[0].rk, "transfers");
    assert_string_equal(f.log[0].id, "m1");
    assert_string_equal(f.log[0].body, "{}");
    assert_int_equal(f.log[0].nh, 2);
    assert_string_equal(f.log[0].hdr[0][0], "x-payq-reason");
    assert_string_equal(f.log[0].hdr[0][1], "amount: not a number");
    assert_string_equal(f.log[0].hdr[1][1], "");
    assert_int_equal(f.log[0].ts, 1700000000123);
    payq_outbox_free(o);
}

/* The connection dies mid-window, after m1, m2 and m4 are confirmed:
 * exactly m3 and m5 are published again, on the new connection, in order,
 * and the stats count five distinct confirmed messages. */
static void test_outbox_republishes_unconfirmed(void **state)
{
    (void)state;
    struct fake f;
    struct payq_outbox *o = outbox(&f, 8, 5000);
    send_ids(o, 1, 5);
    frame(&f, PAYQ_BROKER_ACK, 2, true);
    frame(&f, PAYQ_BROKER_ACK, 4, false);
    f.lose_when_drained = true;
    f.auto_ack = true;
    assert_int_equal(payq_outbox_wait(o), 0);
    char got[256];
    published(&f, got, sizeof got);
    assert_string_equal(got, "m1@1 m2@1 m3@1 m4@1 m5@1 m3@2 m5@2");
    struct payq_outbox_stats st;
    payq_outbox_stats(o, &st);
    assert_int_equal(st.confirmed, 5);
    assert_int_equal(st.items, 5);
    assert_int_equal(st.published, 7);
    assert_int_equal(st.reconnects, 1);
    assert_int_equal(st.refused, 0);
    payq_outbox_free(o);
}

/* A publish that finds the connection dead republishes the unconfirmed
 * message before it (not the confirmed one), then the new one, after
 * waiting out a broker that refuses two reconnects. */
static void test_outbox_lost_while_sending(void **state)
{
    (void)state;
    struct fake f;
    struct payq_outbox *o = outbox(&f, 2, 5000);
    send_ids(o, 1, 2);
    frame(&f, PAYQ_BROKER_ACK, 1, false); /* read while m3 waits for window space */
    f.die_on_publish = 2;
    f.fail_opens = 2;
    f.auto_ack = true;
    send_ids(o, 3, 3);
    assert_int_equal(payq_outbox_wait(o), 0);
    char got[256];
    published(&f, got, sizeof got);
    assert_string_equal(got, "m1@1 m2@1 m2@2 m3@2");
    struct payq_outbox_stats st;
    payq_outbox_stats(o, &st);
    assert_int_equal(st.confirmed, 3);
    assert_int_equal(st.published, 4);
    assert_int_equal(st.reconnects, 1);
    payq_outbox_free(o);
}

/* A nack (a cluster's queue leader lost mid-publish) is passing: exactly the
 * nacked message is published again, on the same connection, and confirmed. */
static void test_outbox_nack_republishes(void **state)
{
    (void)state;
    struct fake f;
    struct payq_outbox *o = outbox(&f, 8, 1000);
    send_ids(o, 1, 3);
    frame(&f, PAYQ_BROKER_ACK, 1, false);
    frame(&f, PAYQ_BROKER_NACK, 2, false);
    frame(&f, PAYQ_BROKER_ACK, 3, false);
    f.auto_ack = true;
    assert_int_equal(payq_outbox_wait(o), 0);
    char got[256];
    published(&f, got, sizeof got);
    assert_string_equal(got, "m1@1 m2@1 m3@1 m2@1");
    struct payq_outbox_stats st;
    payq_outbox_stats(o, &st);
    assert_int_equal(st.confirmed, 3);
    assert_int_equal(st.nacked, 1);
    assert_int_equal(st.refused, 0);
    assert_int_equal(st.reconnects, 0);
    payq_outbox_free(o);
}

/* A broker that nacks every message never gets it confirmed: the outbox
 * fails at the stall limit instead of publishing forever. */
static void test_outbox_nack_forever_fails(void **state)
{
    (void)state;
    struct fake f;
    struct payq_outbox *o = outbox(&f, 8, 300);
    f.nack_all = true;
    send_ids(o, 1, 1);
    assert_int_equal(payq_outbox_wait(o), -1);
    assert_string_equal(payq_outbox_error(o), "the broker did not confirm in time");
    struct payq_outbox_stats st;
    payq_outbox_stats(o, &st);
    assert_int_equal(st.confirmed, 0);
    assert_true(st.nacked >= 1);
    payq_outbox_free(o);
}

/* A broker that takes messages and never confirms them (an alarm, a stream
 * without a writer): a put that waits for room in the full window fails at
 * the stall limit, on the first connection, instead of reconnecting and
 * publishing again for ever. */
static void test_outbox_window_stall_fails(void **state)
{
    (void)state;
    struct fake f;
    struct payq_outbox *o = outbox(&f, 2, 5000);
    send_ids(o, 1, 2);
    assert_int_equal(payq_outbox_send(o, "transfers", "m3", "m3", 2), -1);
    assert_string_equal(payq_outbox_error(o), "the broker did not confirm in time");
    assert_int_equal(f.opens, 1);
    char got[128];
    published(&f, got, sizeof got);
    assert_string_equal(got, "m1@1 m2@1");
    payq_outbox_free(o);
}

/* Sends m1..m<last> through a window of window to a broker that confirms
 * nothing on the first connection and everything on later ones: after
 * resend_ms (300) the outbox publishes the awaited messages again on a new
 * connection. Checks what went on which connection and the counts. */
static void check_resend(int window, int last, const char *expect)
{
    struct fake f;
    struct payq_outbox *o = outbox_resend(&f, window, 5000, 300);
    f.auto_ack = true;
    f.ack_from_conn = 2;
    send_ids(o, 1, last);
    assert_int_equal(payq_outbox_wait(o), 0);
    char got[128];
    published(&f, got, sizeof got);
    assert_string_equal(got, expect);
    struct payq_outbox_stats st;
    payq_outbox_stats(o, &st);
    assert_int_equal(st.confirmed, last);
    assert_int_equal(st.reconnects, 1);
    payq_outbox_free(o);
}

/* A connection that stays up and never confirms (a cluster member frozen,
 * then restarted, owing the confirms): the wait for them ends at resend_ms. */
static void test_outbox_resends_overdue(void **state)
{
    (void)state;
    check_resend(8, 2, "m1@1 m2@1 m1@2 m2@2");
}

/* The same while a put waits for room in a full window: the new connection
 * carries the awaited messages, then the new one. */
static void test_outbox_resends_from_full_window(void **state)
{
    (void)state;
    check_resend(2, 3, "m1@1 m2@1 m1@2 m2@2 m3@2");
}

/* Resending does not reset the stall limit: a broker that confirms on no
 * connection still fails the outbox once nothing was confirmed for
 * stall_ms (2 s), after publishing again on new connections meanwhile. */
static void test_outbox_resend_still_stalls(void **state)
{
    (void)state;
    struct fake f;
    struct payq_outbox *o = outbox_resend(&f, 8, 5000, 300);
    send_ids(o, 1, 1);
    assert_int_equal(payq_outbox_wait(o), -1);
    assert_string_equal(payq_outbox_error(o), "the broker did not confirm in time");
    assert_true(f.opens >= 3);
    assert_true(f.opens <= 8);
    payq_outbox_free(o);
}

static void test_outbox_return_fails(void **state)
{
    (void)state;
    struct fake f;
    struct payq_outbox *o = outbox(&f, 8, 1000);
    send_ids(o, 1, 1);
    frame(&f, PAYQ_BROKER_RETURN, 0, false);
    frame(&f, PAYQ_BROKER_ACK, 1, false);
    assert_int_equal(payq_outbox_wait(o), -1);
    assert_string_equal(payq_outbox_error(o), "message m1 returned by the broker: 312 NO_ROUTE");
    payq_outbox_free(o);
}

/* After a failure (m1 nacked and unconfirmed, m2 returned) a retry
 * publishes exactly the unconfirmed messages again, the returned one too,
 * on a new connection, and they count once each when confirmed. m0,
 * confirmed before, is not sent again. */
static void test_outbox_retry_after_failure(void **state)
{
    (void)state;
    struct fake f;
    struct payq_outbox *o = outbox(&f, 8, 300);
    f.auto_ack = true;
    send_ids(o, 0, 0);
    assert_int_equal(payq_outbox_wait(o), 0);
    f.auto_ack = false;
    send_ids(o, 1, 2);
    frame(&f, PAYQ_BROKER_NACK, 2, false);
    frame(&f, PAYQ_BROKER_RETURN, 0, false);
    frame(&f, PAYQ_BROKER_ACK, 3, false);
    assert_int_equal(payq_outbox_wait(o), -1);
    assert_string_equal(payq_outbox_error(o), "message m2 returned by the broker: 312 NO_ROUTE");
    payq_outbox_retry(o);
    assert_string_equal(payq_outbox_error(o), "");
    f.auto_ack = true;
    assert_int_equal(payq_outbox_wait(o), 0);
    char got[256];
    published(&f, got, sizeof got);
    assert_string_equal(got, "m0@1 m1@1 m2@1 m1@1 m1@2 m2@2"); /* m1@1 twice: nacked */
    struct payq_outbox_stats st;
    payq_outbox_stats(o, &st);
    assert_int_equal(st.confirmed, 3);
    assert_int_equal(st.refused, 1);
    assert_int_equal(st.reconnects, 1);
    payq_outbox_free(o);
}

/* With stop_on_signal turned on, a stop request ends a wait at once (the
 * broker never confirms: without it the wait would last the stall limit). */
static void test_outbox_stop_on_signal(void **state)
{
    (void)state;
    struct fake f;
    struct payq_outbox *o = outbox(&f, 8, 1000);
    send_ids(o, 1, 1);
    payq_outbox_stop_on_signal(o, true);
    payq_signals_request_stop(); /* the last test: the flag stays set */
    assert_int_equal(payq_outbox_wait(o), -1);
    assert_string_equal(payq_outbox_error(o), "interrupted by a stop signal");
    payq_outbox_free(o);
}

static void test_outbox_unreachable(void **state)
{
    (void)state;
    struct fake f;
    struct payq_outbox *o = outbox(&f, 8, 250);
    f.fail_opens = 1000;
    assert_int_equal(payq_outbox_send(o, "transfers", "m1", "m1", 2), -1);
    assert_non_null(strstr(payq_outbox_error(o), "the broker stayed unreachable for"));
    assert_int_equal(f.n, 0);
    payq_outbox_free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_confirms_in_order),
        cmocka_unit_test(test_confirms_out_of_order),
        cmocka_unit_test(test_nack_multiple),
        cmocka_unit_test(test_return),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_lost_connection),
        cmocka_unit_test(test_outbox_copies_message),
        cmocka_unit_test(test_outbox_republishes_unconfirmed),
        cmocka_unit_test(test_outbox_lost_while_sending),
        cmocka_unit_test(test_outbox_nack_republishes),
        cmocka_unit_test(test_outbox_nack_forever_fails),
        cmocka_unit_test(test_outbox_window_stall_fails),
        cmocka_unit_test(test_outbox_resends_overdue),
        cmocka_unit_test(test_outbox_resends_from_full_window),
        cmocka_unit_test(test_outbox_resend_still_stalls),
        cmocka_unit_test(test_outbox_return_fails),
        cmocka_unit_test(test_outbox_unreachable),
        cmocka_unit_test(test_outbox_retry_after_failure),
        cmocka_unit_test(test_outbox_stop_on_signal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
