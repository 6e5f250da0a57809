/* payq-ackdrain: the broker-ceiling consumer for scripts/bench. It consumes
 * payq.transfers exactly like payq-worker (prefetch, manual acks, one
 * multiple-ack per batch) but does nothing with the messages: what it
 * reaches is the most any consumer could reach on this machine.
 * Usage: payq-ackdrain [--batch N] [--prefetch N] [--expect N] [--idle-ms MS]
 *                      [--queue NAME] [--bind EXCHANGE --dump FILE]
 * Exits when --expect messages were taken, or after --idle-ms without one
 * (--idle-ms 0: never; it then runs until a signal stops it).
 * --queue consumes NAME instead of payq.transfers: scripts/bench consumes
 * payq.results.all, as upstream would, so that outcome events do not pile up
 * in the broker while it measures.
 * Prints "drained N in S s" on stdout. PAYQ_AMQP_URL names the broker.
 * --bind consumes instead an exclusive server-named queue bound to EXCHANGE
 * with key "#" (a consumer of payq.results); --dump writes each message as
 * "ROUTING_KEY <TAB> MESSAGE_ID <TAB> SEQ <TAB> LINE" to FILE, one record per
 * line of its body (SEQ numbers the messages from 1, so a reader can put a
 * pack's lines back together; flushed whenever no message is waiting), and
 * writes "ready" to stderr once the queue is bound. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "broker.h"
#include "clock.h"
#include "log.h"

/* Declares an exclusive server-named queue bound to exchange with "#". */
static int bind_queue(amqp_connection_state_t c, const char *exchange, char *name, size_t cap)
{
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(c, 1, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
    if (payq_amqp_check_reply(amqp_get_rpc_reply(c), "queue.declare") != 0 || !ok)
        return -1;
    snprintf(name, cap, "%.*s", (int)ok->queue.len, (const char *)ok->queue.bytes);
    amqp_queue_bind(c, 1, amqp_cstring_bytes(name), amqp_cstring_bytes(exchange),
                    amqp_cstring_bytes("#"), amqp_empty_table);
    return payq_amqp_check_reply(amqp_get_rpc_reply(c), "queue.bind");
}

/* One record per line of the body (an event pack is JSON Lines). */
static void dump_message(FILE *out, const amqp_envelope_t *e, long seq)
{
    const amqp_basic_properties_t *p = &e->message.properties;
    bool has_id = p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG;
    const char *b = e->message.body.bytes, *end = b + e->message.body.len;
    while (b < end) {
        const char *nl = memchr(b, '\n', (size_t)(end - b));
        const char *stop = nl ? nl : end;
        fprintf(out, "%.*s\t%.*s\t%ld\t%.*s\n", (int)e->routing_key.len,
                (const char *)e->routing_key.bytes, has_id ? (int)p->message_id.len : 0,
                has_id ? (const char *)p->message_id.bytes : "", seq, (int)(stop - b), b);
        b = stop + 1;
    }
}

int main(int argc, char **argv)
{
    int batch = 1000, prefetch = 2000, idle_ms = 3000;
    long expect = 0;
    const char *bind = NULL, *dump = NULL, *queue = PAYQ_QUEUE_TRANSFERS;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--batch") == 0)
            batch = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--prefetch") == 0)
            prefetch = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--expect") == 0)
            expect = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--idle-ms") == 0)
            idle_ms = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--queue") == 0)
            queue = argv[i + 1];
        else if (strcmp(argv[i], "--bind") == 0)
            bind = argv[i + 1];
        else if (strcmp(argv[i], "--dump") == 0)
            dump = argv[i + 1];
    }
    const char *url = getenv("PAYQ_AMQP_URL");
    if (!url)
        return 2;
    payq_log_init("ackdrain", PAYQ_LOG_WARN);
    struct payq_amqp_target t = {url, NULL, 30, 5000, "payq-ackdrain"};
    unsigned cursor = 0;
    amqp_connection_state_t c;
    if (payq_amqp_connect(&t, &cursor, &c) != 0 || payq_amqp_channel_open(c, 1) != 0)
        return 1;
    amqp_basic_qos(c, 1, 0, (uint16_t)prefetch, 0);
    char qname[256];
    snprintf(qname, sizeof qname, "%s", queue);
    if (bind && bind_queue(c, bind, qname, sizeof qname) != 0)
        return 1;
    FILE *out = dump ? fopen(dump, "w") : NULL;
    if (dump && !out)
        return 1;
    amqp_basic_consume(c, 1, amqp_cstring_bytes(qname), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    if (payq_amqp_check_reply(amqp_get_rpc_reply(c), "basic.consume") != 0)
        return 1;
    if (bind)
        fputs("ready\n", stderr);
    long n = 0, pending = 0;
    uint64_t last_tag = 0;
    int64_t start = 0, last = payq_clock_mono_ms();
    for (;;) {
        amqp_maybe_release_buffers(c);
        struct timeval tv = {0, 100000};
        amqp_envelope_t e;
        amqp_rpc_reply_t r = amqp_consume_message(c, &e, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            if (!start)
                start = payq_clock_mono_ms();
            last_tag = e.delivery_tag;
            if (out)
                dump_message(out, &e, n + 1);
            amqp_destroy_envelope(&e);
            n++;
            last = payq_clock_mono_ms();
            if (++pending >= batch || (expect && n >= expect)) {
                amqp_basic_ack(c, 1, last_tag, 1);
                pending = 0;
            }
            if (expect && n >= expect)
                break;
            continue;
        }
        if (pending) {
            amqp_basic_ack(c, 1, last_tag, 1);
            pending = 0;
        }
        if (out)
            fflush(out); /* idle: a test may read the dump while this runs */
        if (idle_ms > 0 && payq_clock_mono_ms() - last >= idle_ms)
            break;
        if (r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION ||
            r.library_error != AMQP_STATUS_TIMEOUT) {
            payq_amqp_check_reply(r, "consume");
            return 1;
        }
    }
    double secs = start ? (double)(last - start) / 1000.0 : 0.0;
    if (out && fclose(out) != 0)
        return 1;
    printf("drained %ld in %.3f s\n", n, secs);
    payq_amqp_close(c);
    return 0;
}
