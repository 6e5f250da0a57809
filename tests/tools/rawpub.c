/* payq-rawpub: publishes lines from stdin straight to payq.ingress with
 * publisher confirms, without validating them: an upstream system that
 * talks to the broker directly. Each input line is
 *   ROUTING_KEY <TAB> BODY        or        ROUTING_KEY <TAB> @FILE
 * (@FILE sends the file's bytes as the body, for binary fixtures).
 * Options: --window N (default 500), --timestamp S (AMQP timestamp; default
 * now), --exchange NAME, --rate N (at most N messages per second, for the
 * benchmark's half-load latency run; default unlimited). Prints "published N" on stdout; exit 0 only when
 * every message was confirmed. PAYQ_AMQP_URL names the broker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
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

int main(int argc, char **argv)
{
    int window = 500;
    int64_t ts = 0;
    double rate = 0;
    const char *exchange = PAYQ_EXCHANGE_INGRESS;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--window") == 0)
            window = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--timestamp") == 0)
            ts = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--exchange") == 0)
            exchange = argv[i + 1];
        else if (strcmp(argv[i], "--rate") == 0)
            rate = atof(argv[i + 1]);
    }
    const char *url = getenv("PAYQ_AMQP_URL");
    if (!url) {
        fputs("payq-rawpub: PAYQ_AMQP_URL is not set\n", stderr);
        return 2;
    }
    payq_log_init("rawpub", PAYQ_LOG_WARN);
    struct payq_amqp_target t = {url, NULL, 30, 5000, "payq-rawpub"};
    struct payq_publisher *p = NULL;
    if (payq_publisher_new(&t, window, on_settle, NULL, &p) != 0)
        return 1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned long n = 0;
    int rc = 0;
    struct payq_buf file = PAYQ_BUF_INIT;
    int64_t start_ms = payq_now_ms();
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
        if (rate > 0) {
            /* Pace against the start time so pauses do not accumulate drift. */
            int64_t due = start_ms + (int64_t)((double)n * 1000.0 / rate);
            int64_t wait = due - payq_now_ms();
            if (wait > 0) {
                if (payq_publisher_poll(p) < 0) {
                    rc = 1;
                    break;
                }
                struct timespec sl = {wait / 1000, (long)(wait % 1000) * 1000000L};
                nanosleep(&sl, NULL);
            }
        }
        struct payq_publish_props props = {.timestamp_s = ts};
        if (payq_publisher_publish(p, exchange, line, body, blen, &props) == 0) {
            rc = 1;
            break;
        }
        n++;
    }
    if (rc == 0 && payq_publisher_flush(p, 60000) != 0)
        rc = 1;
    if (g_failed)
        rc = 1;
    printf("published %lu\n", n);
    free(line);
    payq_buf_free(&file);
    payq_publisher_free(p);
    return rc;
}
