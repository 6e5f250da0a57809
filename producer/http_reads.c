/* http_reads: validate the id, read with one retry, map the outcome: one
 * way for every GET of the ledger. */
#include "http_reads.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "ledger_lookup.h"
#include "ledger_reads.h"
#include "log.h"
#include "message.h"

typedef enum payq_lookup (*read_fn)(PGconn *pg, int wait_ms, const char *id, struct payq_buf *out);

/* {"error":"invalid <field>","field":<field>,"detail":...}: the 400 names
 * the field, like the 422 of POST does. */
static void reply_invalid(struct payq_http_reply *rep, const char *field)
{
    rep->status = 400;
    payq_buf_reset(&rep->body);
    payq_buf_printf(&rep->body,
                    "{\"error\":\"invalid %s\",\"field\":\"%s\",\"detail\":\"%s is 1 to 64 "
                    "characters of A-Z a-z 0-9 . _ : -\"}",
                    field, field, field);
}

/* The read within producer.read_timeout_ms, a new connection included:
 * one retry on a fresh connection (the old one may predate a failover)
 * while time is left. */
static enum payq_lookup read_within(struct payq_http_app *app, const char *key, read_fn fn,
                                    struct payq_buf *body)
{
    struct payq_http_thread *th = payq_http_thread_get(app);
    int64_t deadline = payq_clock_mono_ms() + app->cfg->producer.read_timeout_ms;
    enum payq_lookup r = PAYQ_LOOKUP_FAILED;
    for (int attempt = 0; attempt < 2 && r == PAYQ_LOOKUP_FAILED; attempt++) {
        int left = (int)(deadline - payq_clock_mono_ms());
        if (left < 1)
            break;
        PGconn *pg = payq_http_thread_pg(app, th, left);
        if (!pg)
            break;
        left = (int)(deadline - payq_clock_mono_ms());
        payq_buf_reset(body);
        r = fn(pg, left > 0 ? left : 1, key, body);
        if (r == PAYQ_LOOKUP_FAILED || r == PAYQ_LOOKUP_ERROR)
            payq_http_thread_pg_drop(th);
    }
    return r;
}

static void reply_unavailable(struct payq_http_reply *rep, int64_t pause_ms)
{
    payq_http_reply_error(rep, 503, "the ledger is unavailable",
                          "the database could not be read; try again later");
    rep->retry_after_s = pause_ms > 0 ? (int)((pause_ms + 999) / 1000) : 1;
}

static void get(struct payq_http_app *app, const char *id, size_t id_len, const char *field,
                read_fn fn, const char *missing, struct payq_http_reply *rep)
{
    char key[PAYQ_ID_MAX + 1];
    if (!payq_msg_valid_id(id, id_len)) {
        reply_invalid(rep, field);
        return;
    }
    memcpy(key, id, id_len);
    key[id_len] = '\0';
    struct payq_http_read rd;
    int64_t paused = payq_http_read_begin(app, payq_http_thread_get(app), &rd);
    if (paused > 0) {
        reply_unavailable(rep, paused);
        return;
    }
    enum payq_lookup r = read_within(app, key, fn, &rep->body);
    /* Unreachable or no answer in time pauses the reads; a query error
     * (logged) was an answer. */
    int64_t pause = payq_http_read_end(&rd, r != PAYQ_LOOKUP_FAILED);
    if (r == PAYQ_LOOKUP_FOUND) {
        rep->status = 200;
    } else if (r == PAYQ_LOOKUP_NOT_FOUND) {
        payq_http_reply_error(rep, 404, "not found", missing);
    } else if (r == PAYQ_LOOKUP_FAILED) {
        payq_log(PAYQ_LOG_WARN, "ledger_reads_paused",
                 "the ledger could not be read within %d ms: GETs answer 503 for %lld ms",
                 app->cfg->producer.read_timeout_ms, (long long)pause);
        reply_unavailable(rep, pause);
    } else {
        reply_unavailable(rep, 0);
    }
}

void payq_http_get_account(struct payq_http_app *app, const char *id, size_t id_len,
                           struct payq_http_reply *rep)
{
    get(app, id, id_len, "id", payq_ledger_read_account,
        "no such account in the ledger; an account opened a moment ago may still be queued", rep);
}

void payq_http_get_batch(struct payq_http_app *app, const char *id, size_t id_len,
                         struct payq_http_reply *rep)
{
    get(app, id, id_len, "batch_id", payq_ledger_read_batch,
        "no transfer of this batch in the ledger; it may still be queued", rep);
}

void payq_http_get_transfer(struct payq_http_app *app, const char *id, size_t id_len,
                            struct payq_http_reply *rep)
{
    get(app, id, id_len, "id", payq_ledger_lookup, "not in the ledger; it may still be queued",
        rep);
}
