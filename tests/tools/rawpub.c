/* payq-rawpub: publishes lines from stdin straight to payq.ingress with
 * publisher confirms, without validating them: an upstream system that
 * talks to the broker directly. Each input line is
 *   ROUTING_KEY <TAB> BODY        or        ROUTING_KEY <TAB> @FILE
 * (@FILE sends the file's bytes as the body, for binary fixtures).
 * Options: --window N (default 500), --timestamp S (AMQP timestamp; default
 * now), --exchange NAME, --rate N (at most N messages per second, for the
 * benchmark's half-load latency run; counts transfers, not messages, with
 * --pack; default unlimited), --pack N (consecutive "transfer" lines go out
 * as packs of up to N, routing key "transfers"; default 1: one message per
 * line). Prints "published N" (messages) on stdout; exit 0 only when
 * every message was confirmed. PAYQ_AMQP_URL names the broker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "publisher.h"

static unsigned long g_failed;

static void on_settle(void *ctx, uint64_t seq, bool ok, const char *why)
{
    (void)ctx;
    (void)seq;
    if (!ok) {
        g_failed++;
        fprintf(stderr, "payq-rawpub: message %llu refused: %s\n", (unsigned long long)seq,
                why ? why : "");
    }
}

static int read_file(const char *path, struct payq_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "payq-rawpub: cannot open %s\n", path);
        return -1;
    }
    char chunk[8192];
    size_t n;
    payq_buf_reset(out);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        payq_buf_append(out, chunk, n);
    fclose(f);
    return 0;
}

struct pub_state {
    struct payq_publisher *p;
    const char *exchange;
    int64_t ts;
    double rate;
    int64_t start_ms;
    unsigned long messages, paced; /* paced: transfers (or messages) sent so far */
};

/* Waits until the message that brings the count to `paced + weight` is due,
 * paced against the start time so pauses do not accumulate drift. */
static int pace(struct pub_state *st)
{
    if (st->rate <= 0)
        return 0;
    int64_t due = st->start_ms + (int64_t)((double)st->paced * 1000.0 / st->rate);
    int64_t wait = due - payq_clock_mono_ms();
    if (wait <= 0)
        return 0;
    if (payq_publisher_poll(st->p) < 0)
        return -1;
    struct timespec sl = {wait / 1000, (long)(wait % 1000) * 1000000L};
    nanosleep(&sl, NULL);
    return 0;
}

static int send_one(struct pub_state *st, const char *rk, const void *body, size_t len,
                    unsigned long weight)
{
    if (pace(st) != 0)
        return -1;
    struct payq_publish_props props = {.timestamp_s = st->ts};
    if (payq_publisher_publish(st->p, st->exchange, rk, body, len, &props) == 0)
        return -1;
    st->messages++;
    st->paced += weight;
    return 0;
}

static int flush_pack(struct pub_state *st, struct payq_buf *pack, unsigned long *items)
{
    if (*items == 0)
        return 0;
    int rc = send_one(st, "transfers", pack->data, pack->len, *items);
    payq_buf_reset(pack);
    *items = 0;
    return rc;
}

int main(int argc, char **argv)
{
    int window = 500;
    unsigned long pack_max = 1;
    struct pub_state st = {.exchange = PAYQ_EXCHANGE_INGRESS};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--window") == 0)
            window = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--timestamp") == 0)
            st.ts = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--exchange") == 0)
            st.exchange = argv[i + 1];
        else if (strcmp(argv[i], "--rate") == 0)
            st.rate = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--pack") == 0)
            pack_max = strtoul(argv[i + 1], NULL, 10);
    }
    if (pack_max < 1)
        pack_max = 1;
    const char *url = getenv("PAYQ_AMQP_URL");
    if (!url) {
        fputs("payq-rawpub: PAYQ_AMQP_URL is not set\n", stderr);
        return 2;
    }
    payq_log_init("rawpub", PAYQ_LOG_WARN);
    struct payq_amqp_target t = {url, NULL, 30, 5000, "payq-rawpub"};
    if (payq_publisher_new(&t, window, on_settle, NULL, &st.p) != 0)
        return 1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    struct payq_buf file = PAYQ_BUF_INIT, pack = PAYQ_BUF_INIT;
    unsigned long items = 0;
    st.start_ms = payq_clock_mono_ms();
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        char *tab = memchr(line, '\t', (size_t)len);
        if (!tab)
            continue;
        *tab = '\0';
        const char *body = tab + 1;
        size_t blen = (size_t)(line + len - body);
        if (body[0] == '@') {
            if (read_file(body + 1, &file) != 0) {
                rc = 1;
                break;
            }
            body = file.data ? file.data : "";
            blen = file.len;
        }
        if (pack_max > 1 && strcmp(line, "transfer") == 0) {
            if (items)
                payq_buf_putc(&pack, '\n');
            payq_buf_append(&pack, body, blen);
            if (++items == pack_max && flush_pack(&st, &pack, &items) != 0) {
                rc = 1;
                break;
            }
            continue;
        }
        if (flush_pack(&st, &pack, &items) != 0 || send_one(&st, line, body, blen, 1) != 0) {
            rc = 1;
            break;
        }
    }
    if (rc == 0 && flush_pack(&st, &pack, &items) != 0)
        rc = 1;
    if (rc == 0 && payq_publisher_flush(st.p, 60000) != 0)
        rc = 1;
    if (g_failed)
        rc = 1;
    printf("published %lu\n", st.messages);
    free(line);
    payq_buf_free(&file);
    payq_buf_free(&pack);
    payq_publisher_free(st.p);
    return rc;
}
