/* events: outcome events from the ledger's rows (see events.h). */
#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "digest.h"
#include "event_body.h"
#include "log.h"
#include "message.h"
#include "pgarray.h"
#include "strmap.h"

/* Each query's columns are its events' keys (payq_event_body, event_body.h):
 * column 0 the id, 1 the status (routing key), and a committed_at. Each
 * lookup probes a unique index. */
/* clang-format off */
static const char SQL_TRANSFERS[] =
    "SELECT " PAYQ_EVENT_TRANSFER_COLS " "
    "FROM payq.transfers WHERE id = ANY($1::text[]) ORDER BY status, id";

static const char SQL_CONFLICTS[] =
    "SELECT entity_id AS id, 'conflict'::text AS status, reason, "
    "payload->>'batch_id' AS batch_id, business_date, payload->>'amount' AS amount, "
    "payload->>'currency' AS currency, payload->>'debit_account' AS debit_account, "
    "payload->>'credit_account' AS credit_account, seen_at AS committed_at, payload_sha256 "
    "FROM payq.conflicts WHERE kind = 'transfer' AND (entity_id, payload_sha256) IN "
    "(SELECT id, decode(h, 'hex') FROM unnest($1::text[], $2::text[]) AS v(id, h)) "
    "ORDER BY entity_id, seq";

static const char SQL_DEAD[] =
    "SELECT message_id AS id, 'dead_lettered'::text AS status, reason, field, routing_key, "
    "NULL::text AS batch_id, NULL::text AS business_date, NULL::text AS amount, "
    "NULL::text AS currency, NULL::text AS debit_account, NULL::text AS credit_account, "
    "dead_at AS committed_at, body_sha256 "
    "FROM payq.dead_letters WHERE body_sha256 IN "
    "(SELECT decode(h, 'hex') FROM unnest($1::text[]) AS h) ORDER BY body_sha256";
/* clang-format on */

/* Events waiting to go out as one pack (JSON Lines) per routing key. */
struct pack {
    struct payq_buf body;
    char rk[16];
    char first_id[PAYQ_ID_MAX + 1]; /* the message_id of a pack of one */
    int64_t ts_ms;                  /* its first event's */
    uint32_t n;
};

/* Publishes the pack and empties it. A pack of one event is named by its
 * id (NULL for a dead letter without one); a larger pack by the SHA-256 of
 * its body ("sha256:HEX"), so that a consumer deduplicating whole messages
 * by message_id drops only byte-identical re-emissions: a redelivered batch
 * may be packed differently, and a pack named after its first id would then
 * hide the new events behind an old name. */
static int flush(struct payq_outbox *out, struct pack *p)
{
    if (p->n == 0)
        return 0;
    char name[7 + 65] = "sha256:";
    const char *id = p->first_id[0] ? p->first_id : NULL;
    if (p->n > 1) {
        uint8_t h[32];
        payq_sha256(p->body.data, p->body.len, h);
        payq_hash_hex(h, name + 7);
        id = name;
    }
    struct payq_outbox_msg om = {.routing_key = p->rk,
                                 .id = id,
                                 .body = p->body.data,
                                 .len = p->body.len,
                                 .items = p->n,
                                 .timestamp_ms = p->ts_ms};
    int rc = payq_outbox_put(out, &om); /* copies the body */
    p->n = 0;
    payq_buf_reset(&p->body);
    return rc;
}

/* Adds one event to the pack of its routing key, sending the pack when it
 * is full or belongs to another key. */
static int add_event(struct payq_outbox *out, struct pack *p, int pack_max, const char *rk,
                     const char *id, int64_t ts_ms, const char *body, size_t len)
{
    if (p->n > 0 && strcmp(p->rk, rk) != 0 && flush(out, p) != 0)
        return -1;
    if (p->n == 0) {
        snprintf(p->rk, sizeof p->rk, "%s", rk);
        snprintf(p->first_id, sizeof p->first_id, "%s", id);
        p->ts_ms = ts_ms;
    } else {
        payq_buf_putc(&p->body, '\n');
    }
    payq_buf_append(&p->body, body, len);
    p->n++;
    return (int)p->n >= pack_max ? flush(out, p) : 0;
}

/* Runs one query (params are Postgres array literals; the result in binary
 * format) and publishes its rows' events. */
static enum payq_pg_fault emit(PGconn *conn, struct payq_outbox *out, struct pack *pk, int pack_max,
                               const char *sql, int np, const char *const *params, const char *what,
                               size_t *published)
{
    PGresult *res = payq_pg_exec_params(conn, sql, np, params, 1);
    enum payq_pg_fault f = payq_pg_check(conn, res, PGRES_TUPLES_OK, what);
    if (f != PAYQ_PG_OK) {
        PQclear(res);
        return f;
    }
    struct payq_buf body = PAYQ_BUF_INIT;
    for (int r = 0; r < PQntuples(res) && f == PAYQ_PG_OK; r++) {
        int64_t ts_ms;
        payq_buf_reset(&body);
        if (payq_event_body(res, r, &body, &ts_ms) != 0) {
            payq_log(PAYQ_LOG_ERROR, "result_event_unwritable",
                     "%s: a column of a type events are not written from", what);
            f = PAYQ_PG_FATAL;
        } else if (add_event(out, pk, pack_max, PQgetvalue(res, r, 1), PQgetvalue(res, r, 0), ts_ms,
                             body.data, body.len) != 0) {
            f = PAYQ_PG_FATAL;
        } else {
            (*published)++;
        }
    }
    payq_buf_free(&body);
    PQclear(res);
    return f;
}

/* True for a message whose event its own committed INSERT returned. */
static bool returned(const struct payq_wmsg *m)
{
    return m->event && (m->outcome == WOUT_POSTED || m->outcome == WOUT_REJECTED);
}

/* The events the batch's INSERTs returned, posted ones first, so that one
 * status's events share packs as the ORDER BY status of a re-read does. */
static enum payq_pg_fault emit_returned(struct payq_outbox *out, struct pack *pk, int pack_max,
                                        const struct payq_wmsg *msgs, size_t n, size_t *published)
{
    static const enum wmsg_outcome order[] = {WOUT_POSTED, WOUT_REJECTED};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        for (size_t i = 0; i < n; i++) {
            const struct payq_wmsg *m = &msgs[i];
            if (!returned(m) || m->outcome != order[k])
                continue;
            if (add_event(out, pk, pack_max, order[k] == WOUT_POSTED ? "posted" : "rejected",
                          m->u.transfer.id, m->event_ms, m->event, m->event_len) != 0)
                return PAYQ_PG_FATAL;
            (*published)++;
        }
    }
    return PAYQ_PG_OK;
}

enum payq_pg_fault payq_events_publish(PGconn *conn, struct payq_outbox *out, int pack_max,
                                       struct payq_wmsg *msgs, size_t n, size_t *published)
{
    struct pack pk = {.body = PAYQ_BUF_INIT};
    struct payq_buf ids = PAYQ_BUF_INIT, cids = PAYQ_BUF_INIT, chash = PAYQ_BUF_INIT,
                    dhash = PAYQ_BUF_INIT;
    payq_pgarr_begin(&ids);
    payq_pgarr_begin(&cids);
    payq_pgarr_begin(&chash);
    payq_pgarr_begin(&dhash);
    size_t nt = 0, nc = 0, nd = 0;
    /* A duplicate of a transfer the batch itself booked has its event among
     * the returned ones already: read back, the row would be sent twice
     * (one row per id, as when every event was read back). */
    struct payq_strmap booked = {0};
    bool reread = false; /* a transfer outcome not returned: usually none */
    for (size_t i = 0; i < n; i++)
        reread |= msgs[i].kind == WMSG_TRANSFER && !returned(&msgs[i]) &&
                  msgs[i].outcome != WOUT_CONFLICT && msgs[i].outcome != WOUT_DEAD;
    if (reread) {
        payq_strmap_reset(&booked, n);
        for (size_t i = 0; i < n; i++)
            if (returned(&msgs[i]))
                payq_strmap_put(&booked, msgs[i].u.transfer.id, i);
    }
    for (size_t i = 0; i < n; i++) {
        const struct payq_wmsg *m = &msgs[i];
        char hex[65];
        size_t at;
        payq_hash_hex(m->hash, hex);
        if (returned(m)) {
            continue;
        } else if (m->outcome == WOUT_DEAD) {
            payq_pgarr_str(&dhash, hex);
            nd++;
        } else if (m->kind != WMSG_TRANSFER) {
            continue;
        } else if (m->outcome == WOUT_CONFLICT) {
            payq_pgarr_str(&cids, m->u.transfer.id);
            payq_pgarr_str(&chash, hex);
            nc++;
        } else if (!payq_strmap_get(&booked, m->u.transfer.id, &at)) {
            payq_pgarr_str(&ids, m->u.transfer.id); /* posted, rejected, duplicate */
            nt++;
        }
    }
    payq_pgarr_end(&ids);
    payq_pgarr_end(&cids);
    payq_pgarr_end(&chash);
    payq_pgarr_end(&dhash);
    *published = 0;
    const char *pc[2] = {cids.data, chash.data};
    enum payq_pg_fault f = emit_returned(out, &pk, pack_max, msgs, n, published);
    if (f == PAYQ_PG_OK && nt > 0)
        f = emit(conn, out, &pk, pack_max, SQL_TRANSFERS, 1, (const char *const[]){ids.data},
                 "read outcomes", published);
    if (f == PAYQ_PG_OK && nc > 0)
        f = emit(conn, out, &pk, pack_max, SQL_CONFLICTS, 2, pc, "read conflicts", published);
    if (f == PAYQ_PG_OK && nd > 0)
        f = emit(conn, out, &pk, pack_max, SQL_DEAD, 1, (const char *const[]){dhash.data},
                 "read dead letters", published);
    if (f == PAYQ_PG_OK && flush(out, &pk) != 0)
        f = PAYQ_PG_FATAL;
    if (f == PAYQ_PG_FATAL && payq_outbox_error(out)[0])
        payq_events_failed(out, "send");
    payq_buf_free(&ids);
    payq_buf_free(&cids);
    payq_buf_free(&chash);
    payq_buf_free(&dhash);
    payq_buf_free(&pk.body);
    payq_strmap_free(&booked);
    return f;
}

void payq_events_failed(struct payq_outbox *out, const char *stage)
{
    struct payq_log_rec r;
    payq_log_begin(&r, PAYQ_LOG_ERROR, "result_events_failed");
    payq_log_str(&r, "stage", stage);
    payq_log_str(&r, "error", payq_outbox_error(out));
    payq_log_end(&r);
}
