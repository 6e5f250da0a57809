/* http_reads: validate the id, read with one retry, map the outcome: one
 * way for every GET of the ledger. */
#include "http_reads.h"

#include <stdio.h>
#include <string.h>

#include "ledger_lookup.h"
#include "ledger_reads.h"
#include "message.h"

typedef enum payq_lookup (*read_fn)(PGconn *pg, const char *id, struct payq_buf *out);

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
    struct payq_http_thread *th = payq_http_thread_get(app);
    enum payq_lookup r = PAYQ_LOOKUP_FAILED;
    /* One retry on a fresh connection: the old one may predate a failover. */
    for (int attempt = 0; attempt < 2 && r == PAYQ_LOOKUP_FAILED; attempt++) {
        PGconn *pg = payq_http_thread_pg(app, th, 0);
        if (!pg)
            break;
        payq_buf_reset(&rep->body);
        r = fn(pg, key, &rep->body);
        if (r == PAYQ_LOOKUP_FAILED || r == PAYQ_LOOKUP_ERROR)
            payq_http_thread_pg_drop(th);
    }
    if (r == PAYQ_LOOKUP_FOUND)
        rep->status = 200;
    else if (r == PAYQ_LOOKUP_NOT_FOUND)
        payq_http_reply_error(rep, 404, "not found", missing);
    else
        payq_http_reply_error(rep, 503, "the ledger is unavailable",
                              "the database could not be read; try again later");
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
