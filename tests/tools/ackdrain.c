/* payq-ackdrain: the broker-ceiling consumer for scripts/bench. It consumes
 * payq.transfers exactly like payq-worker (prefetch, manual acks, one
 * multiple-ack per batch) but does nothing with the messages: what it
 * reaches is the most any consumer could reach on this machine.
 * Usage: payq-ackdrain [--batch N] [--prefetch N] [--expect N] [--idle-ms MS]
 * Exits when --expect messages were taken, or after --idle-ms without one.
 * Prints "drained N in S s" on stdout. PAYQ_AMQP_URL names the broker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "broker.h"
#include "clock.h"
#include "log.h"

int main(int argc, char **argv)
{
    int batch = 1000, prefetch = 2000, idle_ms = 3000;
    long expect = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--batch") == 0)
            batch = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--prefetch") == 0)
            prefetch = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--expect") == 0)
            expect = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--idle-ms") == 0)
            idle_ms = atoi(argv[i + 1]);
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
    amqp_basic_consume(c, 1, amqp_cstring_bytes(PAYQ_QUEUE_TRANSFERS), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    if (payq_amqp_check_reply(amqp_get_rpc_reply(c), "basic.consume") != 0)
        return 1;
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
        if (payq_clock_mono_ms() - last >= idle_ms)
            break;
        if (r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION ||
            r.library_error != AMQP_STATUS_TIMEOUT) {
            payq_amqp_check_reply(r, "consume");
            return 1;
        }
    }
    double secs = start ? (double)(last - start) / 1000.0 : 0.0;
    printf("drained %ld in %.3f s\n", n, secs);
    payq_amqp_close(c);
    return 0;
}
