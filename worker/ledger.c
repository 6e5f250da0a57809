/* ledger: one transaction per batch, set-based (see ledger.h). */
#include "ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "log.h"
#include "money.h"
#include "pgarray.h"
#include "strmap.h"

#define NO_INDEX ((size_t)-1)

/* An account as the batch sees it, with its running balances. */
struct acct {
    const char *id;
    bool in_db;       /* a row exists (before, or opened by this batch) */
    size_t opened_at; /* message index that opens it in this batch, or NO_INDEX */
    char currency[4];
    unsigned flags;
    int64_t debits, credits; /* running balances */
    int64_t dd, dc;          /* deltas this batch */
    /* What the balance (credits - debits) read at step 2 missed: another
     * worker's commits before step 5b locked the account. */
    int64_t balance_fix;
};

/* A transfer id already in the ledger (fields point into a PGresult). */
struct existing {
    const char *hash_hex, *debit, *credit, *amount, *currency, *batch_id, *date, *reference;
};

enum {
    COL_ID,
    COL_BATCH,
    COL_DEBIT,
    COL_CREDIT,
    COL_AMOUNT,
    COL_CURRENCY,
    COL_DATE,
    COL_REF,
    COL_META,
    COL_STATUS,
    COL_REASON,
    COL_HASH,
    COL_TS,
    COL_DBAL,
    COL_CBAL,
    NCOLS
};

struct payq_ledger {
    struct acct *accts;
    size_t nacct, acct_cap;
    struct payq_strmap acct_idx; /* id -> accts index */
    struct existing *ex;
    size_t nex, ex_cap;
    struct payq_strmap ex_idx; /* id -> ex index */
    struct payq_strmap seen;   /* id -> message index of its first new row */
    struct payq_buf col[NCOLS];
    struct payq_buf tmp;
    size_t nrows;
};

struct payq_ledger *payq_ledger_new(void)
{
    return payq_xcalloc(1, sizeof(struct payq_ledger));
}

void payq_ledger_free(struct payq_ledger *l)
{
    if (!l)
        return;
    free(l->accts);
    free(l->ex);
    payq_strmap_free(&l->acct_idx);
    payq_strmap_free(&l->ex_idx);
    payq_strmap_free(&l->seen);
    for (int i = 0; i < NCOLS; i++)
        payq_buf_free(&l->col[i]);
    payq_buf_free(&l->tmp);
    free(l);
}

static struct acct *acct_get(struct payq_ledger *l, const char *id)
{
    size_t i;
    if (payq_strmap_get(&l->acct_idx, id, &i))
        return &l->accts[i];
    if (l->nacct == l->acct_cap) {
        l->acct_cap = l->acct_cap ? l->acct_cap * 2 : 256;
        l->accts = payq_xreallocarray(l->accts, l->acct_cap, sizeof *l->accts);
    }
    struct acct *a = &l->accts[l->nacct];
    memset(a, 0, sizeof *a);
    a->id = id;
    a->opened_at = NO_INDEX;
    payq_strmap_put(&l->acct_idx, id, l->nacct++);
    return a;
}

/* Runs a parameterised statement with text parameters and checks it. The
 * result is returned through *out when the caller wants it, else cleared. */
static enum payq_pg_fault run(PGconn *conn, const char *sql, int nparams, const char *const *params,
                              ExecStatusType expect, const char *what, PGresult **out)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    enum payq_pg_fault f = payq_pg_check(conn, res, expect, what);
    if (f == PAYQ_PG_OK && out) {
        *out = res;
        return f;
    }
    PQclear(res);
    return f;
}

static size_t first_opening(struct wmsg **msgs, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (msgs[i]->kind == WMSG_ACCOUNT && strcmp(msgs[i]->u.account.id, id) == 0)
            return i;
    return NO_INDEX;
}

static int cmp_acct_msg(const void *a, const void *b)
{
    const struct wmsg *x = *(struct wmsg *const *)a, *y = *(struct wmsg *const *)b;
    int c = strcmp(x->u.account.id, y->u.account.id);
    if (c)
        return c;
    return x < y ? -1 : x > y;
}

/* Step 1: inserts accounts opened by account messages, sorted by id so that
 * concurrent workers take the unique-index locks in one order. The first
 * message for an id (in delivery order) defines it. The ids this insert
 * created exist only from their first account message on: earlier transfers
 * in the batch still find them missing, as delivery order says. */
static enum payq_pg_fault open_accounts(struct payq_ledger *l, PGconn *conn, struct wmsg **msgs,
                                        size_t n)
{
    struct wmsg **am = payq_xreallocarray(NULL, n ? n : 1, sizeof *am);
    size_t na = 0;
    for (size_t i = 0; i < n; i++)
        if (msgs[i]->kind == WMSG_ACCOUNT)
            am[na++] = msgs[i];
    enum payq_pg_fault f = PAYQ_PG_OK;
    if (na == 0)
        goto out;
    qsort(am, na, sizeof *am, cmp_acct_msg);
    struct payq_buf ids = PAYQ_BUF_INIT, cur = PAYQ_BUF_INIT, fl = PAYQ_BUF_INIT;
    payq_pgarr_begin(&ids);
    payq_pgarr_begin(&cur);
    payq_pgarr_begin(&fl);
    for (size_t i = 0; i < na; i++) {
        if (i > 0 && strcmp(am[i]->u.account.id, am[i - 1]->u.account.id) == 0)
            continue;
        payq_pgarr_str(&ids, am[i]->u.account.id);
        payq_pgarr_str(&cur, am[i]->u.account.currency);
        payq_pgarr_int(&fl, am[i]->u.account.flags);
    }
    payq_pgarr_end(&ids);
    payq_pgarr_end(&cur);
    payq_pgarr_end(&fl);
    const char *p[3] = {ids.data, cur.data, fl.data};
    PGresult *res = NULL;
    f = run(conn,
            "INSERT INTO payq.accounts (id, currency, flags) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::int[]) ON CONFLICT (id) DO NOTHING "
            "RETURNING id",
            3, p, PGRES_TUPLES_OK, "open accounts", &res);
    if (f == PAYQ_PG_OK) {
        for (int r = 0; r < PQntuples(res); r++) {
            size_t ai;
            if (payq_strmap_get(&l->acct_idx, PQgetvalue(res, r, 0), &ai))
                l->accts[ai].opened_at = first_opening(msgs, n, l->accts[ai].id);
        }
        PQclear(res);
    }
    payq_buf_free(&ids);
    payq_buf_free(&cur);
    payq_buf_free(&fl);
out:
    free(am);
    return f;
}

/* Runs sql with the ids of the accounts that pass keep() as $1 (a text
 * array, in id order) and hands each row to take(). No matching account:
 * nothing runs. */
static enum payq_pg_fault for_accounts(struct payq_ledger *l, PGconn *conn, const char *sql,
                                       bool (*keep)(const struct acct *), const char *what,
                                       void (*take)(struct acct *, PGresult *, int))
{
    size_t k = 0;
    payq_pgarr_begin(&l->tmp);
    for (size_t i = 0; i < l->nacct; i++) {
        if (!keep(&l->accts[i]))
            continue;
        payq_pgarr_str(&l->tmp, l->accts[i].id);
        k++;
    }
    payq_pgarr_end(&l->tmp);
    if (k == 0)
        return PAYQ_PG_OK;
    const char *p[1] = {l->tmp.data};
    PGresult *res = NULL;
    enum payq_pg_fault f = run(conn, sql, 1, p, PGRES_TUPLES_OK, what, &res);
    if (f != PAYQ_PG_OK)
        return f;
    for (int r = 0; take && r < PQntuples(res); r++) {
        size_t i;
        if (payq_strmap_get(&l->acct_idx, PQgetvalue(res, r, 0), &i))
            take(&l->accts[i], res, r);
    }
    PQclear(res);
    return PAYQ_PG_OK;
}

static bool any_account(const struct acct *a)
{
    (void)a;
    return true;
}

static bool restricted(const struct acct *a)
{
    return a->in_db && a->flags != 0;
}

/* Unrestricted accounts whose balances move: restricted ones are locked
 * already. */
static bool moving_unrestricted(const struct acct *a)
{
    return a->flags == 0 && (a->dd != 0 || a->dc != 0);
}

static void take_account(struct acct *a, PGresult *res, int r)
{
    a->in_db = true;
    snprintf(a->currency, sizeof a->currency, "%s", PQgetvalue(res, r, 1));
    a->flags = (unsigned)strtoul(PQgetvalue(res, r, 2), NULL, 10);
    a->debits = strtoll(PQgetvalue(res, r, 3), NULL, 10);
    a->credits = strtoll(PQgetvalue(res, r, 4), NULL, 10);
}

static void take_balances(struct acct *a, PGresult *res, int r)
{
    a->debits = strtoll(PQgetvalue(res, r, 1), NULL, 10);
    a->credits = strtoll(PQgetvalue(res, r, 2), NULL, 10);
}

/* Step 2: reads every account the batch names, without locking: currency and
 * flags never change, and only restricted accounts (a balance rule) need
 * exact balances now. Those are locked, in id order, and read again. The
 * others are locked only at step 5b, so a second worker touching the same
 * accounts waits for the end of this batch's balance update, not for the
 * whole batch. Overflow on an unrestricted account read here without a lock
 * is still refused: the bigint column raises, the batch is split and the
 * transfer, alone, is rejected on a fresh balance. */
static enum payq_pg_fault read_accounts(struct payq_ledger *l, PGconn *conn)
{
    enum payq_pg_fault f =
        for_accounts(l, conn,
                     "SELECT id, currency, flags, debits_posted, credits_posted FROM payq.accounts "
                     "WHERE id = ANY($1::text[])",
                     any_account, "read accounts", take_account);
    if (f != PAYQ_PG_OK)
        return f;
    return for_accounts(l, conn,
                        "SELECT id, debits_posted, credits_posted FROM payq.accounts "
                        "WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
                        restricted, "lock restricted accounts", take_balances);
}

/* The locked balances against those step 2 read (running values minus this
 * batch's deltas): the difference corrects the balances the transfer rows
 * record. */
static void take_locked(struct acct *a, PGresult *res, int r)
{
    int64_t debits = strtoll(PQgetvalue(res, r, 1), NULL, 10);
    int64_t credits = strtoll(PQgetvalue(res, r, 2), NULL, 10);
    a->balance_fix = (credits - (a->credits - a->dc)) - (debits - (a->debits - a->dd));
}

/* Step 5, first half: every lock in id order, so two workers never wait on
 * each other in a cycle (restricted accounts, locked at step 2, are never
 * waited for by a worker at this step: it already holds its own). It comes
 * before the ledger rows, which record balances only exact under the lock. */
static enum payq_pg_fault lock_moving(struct payq_ledger *l, PGconn *conn)
{
    return for_accounts(l, conn,
                        "SELECT id, debits_posted, credits_posted FROM payq.accounts "
                        "WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
                        moving_unrestricted, "lock accounts", take_locked);
}

/* Step 3: which transfer ids already exist. *res keeps the strings alive. */
static enum payq_pg_fault read_existing(struct payq_ledger *l, PGconn *conn, struct wmsg **msgs,
                                        size_t n, PGresult **res)
{
    payq_pgarr_begin(&l->tmp);
    size_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        if (msgs[i]->kind == WMSG_TRANSFER) {
            payq_pgarr_str(&l->tmp, msgs[i]->u.transfer.id);
            nt++;
        }
    }
    payq_pgarr_end(&l->tmp);
    if (nt == 0)
        return PAYQ_PG_OK;
    const char *p[1] = {l->tmp.data};
    enum payq_pg_fault f =
        run(conn,
            "SELECT id, encode(payload_sha256, 'hex'), debit_account, credit_account, amount, "
            "currency, coalesce(batch_id, ''), business_date::text, coalesce(reference, '') "
            "FROM payq.transfers WHERE id = ANY($1::text[])",
            1, p, PGRES_TUPLES_OK, "read existing transfers", res);
    if (f != PAYQ_PG_OK)
        return f;
    int rows = PQntuples(*res);
    if ((size_t)rows > l->ex_cap) {
        l->ex_cap = (size_t)rows * 2;
        l->ex = payq_xreallocarray(l->ex, l->ex_cap, sizeof *l->ex);
    }
    for (int r = 0; r < rows; r++) {
        struct existing *e = &l->ex[r];
        e->hash_hex = PQgetvalue(*res, r, 1);
        e->debit = PQgetvalue(*res, r, 2);
        e->credit = PQgetvalue(*res, r, 3);
        e->amount = PQgetvalue(*res, r, 4);
        e->currency = PQgetvalue(*res, r, 5);
        e->batch_id = PQgetvalue(*res, r, 6);
        e->date = PQgetvalue(*res, r, 7);
        e->reference = PQgetvalue(*res, r, 8);
        payq_strmap_put(&l->ex_idx, PQgetvalue(*res, r, 0), (size_t)r);
    }
    l->nex = (size_t)rows;
    return PAYQ_PG_OK;
}

/* Names the first field in which a message differs from what holds its id,
 * TigerBeetle-style. */
static const char *conflict_reason(const struct wmsg *m, const char *debit, const char *credit,
                                   int64_t amount, const char *currency, const char *batch_id,
                                   const char *date, const char *reference)
{
    const struct payq_transfer *t = &m->u.transfer;
    if (t->amount != amount)
        return "exists_with_different_amount";
    if (strcmp(t->debit_account, debit) != 0)
        return "exists_with_different_debit_account";
    if (strcmp(t->credit_account, credit) != 0)
        return "exists_with_different_credit_account";
    if (strcmp(t->currency, currency) != 0)
        return "exists_with_different_currency";
    if (strcmp(t->batch_id, batch_id) != 0)
        return "exists_with_different_batch_id";
    if (strcmp(m->business_date, date) != 0)
        return "exists_with_different_business_date";
    if (strcmp(t->reference, reference) != 0)
        return "exists_with_different_reference";
    return "exists_with_different_payload";
}

/* Idempotency: returns true (and sets the outcome) when the id was seen
 * before, in the ledger or earlier in this batch. */
static bool check_duplicate(struct payq_ledger *l, struct wmsg **msgs, struct wmsg *m)
{
    const struct payq_transfer *t = &m->u.transfer;
    size_t i;
    if (payq_strmap_get(&l->ex_idx, t->id, &i)) {
        const struct existing *e = &l->ex[i];
        char hex[65];
        payq_hash_hex(m->hash, hex);
        if (strcmp(hex, e->hash_hex) == 0) {
            m->outcome = WOUT_DUPLICATE;
        } else {
            m->outcome = WOUT_CONFLICT;
            m->reason = conflict_reason(m, e->debit, e->credit, strtoll(e->amount, NULL, 10),
                                        e->currency, e->batch_id, e->date, e->reference);
        }
        return true;
    }
    if (payq_strmap_get(&l->seen, t->id, &i)) {
        const struct wmsg *first = msgs[i];
        const struct payq_transfer *f = &first->u.transfer;
        if (memcmp(first->hash, m->hash, 32) == 0) {
            m->outcome = WOUT_DUPLICATE;
        } else {
            m->outcome = WOUT_CONFLICT;
            m->reason =
                conflict_reason(m, f->debit_account, f->credit_account, f->amount, f->currency,
                                f->batch_id, first->business_date, f->reference);
        }
        return true;
    }
    return false;
}

/* The balance rules, on running balances. Returns NULL to post, else the
 * rejection reason. */
static const char *decide(const struct acct *d, const struct acct *c, size_t idx, int64_t amount,
                          const char *currency, int64_t *nd, int64_t *nc)
{
    bool d_open = d->in_db && (d->opened_at == NO_INDEX || d->opened_at < idx);
    bool c_open = c->in_db && (c->opened_at == NO_INDEX || c->opened_at < idx);
    if (!d_open || !c_open)
        return "account_not_found";
    if (strcmp(d->currency, currency) != 0 || strcmp(c->currency, currency) != 0)
        return "currency_mismatch";
    if (!payq_money_add(d->debits, amount, nd) || !payq_money_add(c->credits, amount, nc))
        return "overflow";
    if ((d->flags & PAYQ_ACCT_DEBITS_MUST_NOT_EXCEED_CREDITS) && *nd > d->credits)
        return "insufficient_funds";
    if ((c->flags & PAYQ_ACCT_CREDITS_MUST_NOT_EXCEED_DEBITS) && *nc > c->debits)
        return "credit_limit";
    return NULL;
}

static void apply_transfer(struct payq_ledger *l, struct wmsg **msgs, size_t idx)
{
    struct wmsg *m = msgs[idx];
    const struct payq_transfer *t = &m->u.transfer;
    if (check_duplicate(l, msgs, m))
        return;
    payq_strmap_put(&l->seen, t->id, idx);
    struct acct *d = acct_get(l, t->debit_account);
    struct acct *c = acct_get(l, t->credit_account);
    int64_t nd = 0, nc = 0;
    m->reason = decide(d, c, idx, t->amount, t->currency, &nd, &nc);
    if (m->reason) {
        m->outcome = WOUT_REJECTED;
        return;
    }
    m->outcome = WOUT_POSTED;
    d->debits = nd;
    c->credits = nc;
    m->debit_balance = d->credits - d->debits; /* before balance_fix (add_row) */
    m->credit_balance = c->credits - c->debits;
    d->dd += t->amount; /* cannot overflow: bounded by the new balance */
    c->dc += t->amount;
}

static void apply_account(struct payq_ledger *l, struct wmsg *m, size_t idx)
{
    struct acct *a = acct_get(l, m->u.account.id);
    if (a->opened_at == idx) {
        m->outcome = WOUT_OPENED;
    } else if (strcmp(a->currency, m->u.account.currency) != 0) {
        m->outcome = WOUT_CONFLICT;
        m->reason = "exists_with_different_currency";
    } else if (a->flags != m->u.account.flags) {
        m->outcome = WOUT_CONFLICT;
        m->reason = "exists_with_different_flags";
    } else {
        m->outcome = WOUT_DUPLICATE;
    }
}

/* Step 4: every outcome, in delivery order. */
static void simulate(struct payq_ledger *l, struct wmsg **msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct wmsg *m = msgs[i];
        if (m->kind == WMSG_TRANSFER)
            apply_transfer(l, msgs, i);
        else if (m->kind == WMSG_ACCOUNT)
            apply_account(l, m, i);
        else
            m->outcome = WOUT_DEAD;
    }
}

static int64_t d_fix(struct payq_ledger *l, const struct payq_transfer *t)
{
    return acct_get(l, t->debit_account)->balance_fix;
}

static int64_t c_fix(struct payq_ledger *l, const struct payq_transfer *t)
{
    return acct_get(l, t->credit_account)->balance_fix;
}

/* A bigint array element, NULL unless present. */
static void pgarr_int_or_null(struct payq_buf *b, bool present, int64_t v)
{
    if (present)
        payq_pgarr_int(b, v);
    else
        payq_pgarr_str(b, NULL);
}

static void add_row(struct payq_ledger *l, const struct wmsg *m)
{
    const struct payq_transfer *t = &m->u.transfer;
    char hex[65];
    payq_hash_hex(m->hash, hex);
    payq_pgarr_str(&l->col[COL_ID], t->id);
    payq_pgarr_str(&l->col[COL_BATCH], t->batch_id[0] ? t->batch_id : NULL);
    payq_pgarr_str(&l->col[COL_DEBIT], t->debit_account);
    payq_pgarr_str(&l->col[COL_CREDIT], t->credit_account);
    payq_pgarr_int(&l->col[COL_AMOUNT], t->amount);
    payq_pgarr_str(&l->col[COL_CURRENCY], t->currency);
    payq_pgarr_str(&l->col[COL_DATE], m->business_date);
    payq_pgarr_str(&l->col[COL_REF], t->reference[0] ? t->reference : NULL);
    payq_pgarr_str(&l->col[COL_META], t->metadata);
    payq_pgarr_str(&l->col[COL_STATUS], m->outcome == WOUT_POSTED ? "posted" : "rejected");
    payq_pgarr_str(&l->col[COL_REASON], m->outcome == WOUT_POSTED ? NULL : m->reason);
    payq_pgarr_str(&l->col[COL_HASH], hex);
    payq_pgarr_int(&l->col[COL_TS], m->published_ms);
    bool posted = m->outcome == WOUT_POSTED;
    pgarr_int_or_null(&l->col[COL_DBAL], posted, m->debit_balance + d_fix(l, t));
    pgarr_int_or_null(&l->col[COL_CBAL], posted, m->credit_balance + c_fix(l, t));
    l->nrows++;
}

/* Step 5a: the ledger rows. If another worker inserted one of these ids
 * since step 3 (a redelivery racing its original), the counts differ and
 * the batch is retried, when step 3 will see it. */
static enum payq_pg_fault insert_transfers(struct payq_ledger *l, PGconn *conn, struct wmsg **msgs,
                                           size_t n)
{
    l->nrows = 0;
    for (int c = 0; c < NCOLS; c++)
        payq_pgarr_begin(&l->col[c]);
    for (size_t i = 0; i < n; i++)
        if (msgs[i]->outcome == WOUT_POSTED || msgs[i]->outcome == WOUT_REJECTED)
            add_row(l, msgs[i]);
    if (l->nrows == 0)
        return PAYQ_PG_OK;
    const char *p[NCOLS];
    for (int c = 0; c < NCOLS; c++) {
        payq_pgarr_end(&l->col[c]);
        p[c] = l->col[c].data;
    }
    PGresult *res = NULL;
    enum payq_pg_fault f = run(
        conn,
        "INSERT INTO payq.transfers (id, batch_id, debit_account, credit_account, amount, "
        "currency, business_date, reference, metadata, status, reason, payload_sha256, "
        "published_at, debit_balance, credit_balance) "
        "SELECT id, batch_id, debit, credit, amount, currency, bdate::date, reference, "
        "meta::jsonb, status, reason, decode(hash, 'hex'), "
        "'epoch'::timestamptz + ts * interval '1 millisecond', dbal, cbal "
        "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], "
        "$7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], "
        "$14::bigint[], $15::bigint[]) "
        "AS v(id, batch_id, debit, credit, amount, currency, bdate, reference, meta, status, "
        "reason, hash, ts, dbal, cbal) ON CONFLICT (id) DO NOTHING",
        NCOLS, p, PGRES_COMMAND_OK, "insert transfers", &res);
    if (f != PAYQ_PG_OK)
        return f;
    size_t inserted = strtoul(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    if (inserted != l->nrows) {
        payq_log(PAYQ_LOG_WARN, "batch_race", "%zu of %zu transfer ids appeared concurrently",
                 l->nrows - inserted, l->nrows);
        return PAYQ_PG_RETRY;
    }
    return PAYQ_PG_OK;
}

/* Step 5b: balances move by the batch's aggregated deltas. */
static enum payq_pg_fault update_balances(struct payq_ledger *l, PGconn *conn)
{
    struct payq_buf ids = PAYQ_BUF_INIT, dd = PAYQ_BUF_INIT, dc = PAYQ_BUF_INIT;
    payq_pgarr_begin(&ids);
    payq_pgarr_begin(&dd);
    payq_pgarr_begin(&dc);
    size_t nupd = 0;
    for (size_t i = 0; i < l->nacct; i++) {
        const struct acct *a = &l->accts[i];
        if (a->dd == 0 && a->dc == 0)
            continue;
        payq_pgarr_str(&ids, a->id);
        payq_pgarr_int(&dd, a->dd);
        payq_pgarr_int(&dc, a->dc);
        nupd++;
    }
    payq_pgarr_end(&ids);
    payq_pgarr_end(&dd);
    payq_pgarr_end(&dc);
    enum payq_pg_fault f = PAYQ_PG_OK;
    if (nupd > 0) {
        const char *p[3] = {ids.data, dd.data, dc.data};
        PGresult *res = NULL;
        f = run(conn,
                "UPDATE payq.accounts a SET debits_posted = a.debits_posted + v.d, "
                "credits_posted = a.credits_posted + v.c "
                "FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS v(id, d, c) "
                "WHERE a.id = v.id",
                3, p, PGRES_COMMAND_OK, "update balances", &res);
        if (f == PAYQ_PG_OK) {
            if (strtoul(PQcmdTuples(res), NULL, 10) != nupd) {
                payq_log(PAYQ_LOG_ERROR, "balance_update_mismatch",
                         "expected %zu account rows to change", nupd);
                f = PAYQ_PG_FATAL;
            }
            PQclear(res);
        }
    }
    payq_buf_free(&ids);
    payq_buf_free(&dd);
    payq_buf_free(&dc);
    return f;
}

/* Step 5c: id conflicts (transfers) and re-opened accounts with other fields. */
static enum payq_pg_fault insert_conflicts(struct payq_ledger *l, PGconn *conn, struct wmsg **msgs,
                                           size_t n)
{
    struct payq_buf c[6] = {PAYQ_BUF_INIT, PAYQ_BUF_INIT, PAYQ_BUF_INIT,
                            PAYQ_BUF_INIT, PAYQ_BUF_INIT, PAYQ_BUF_INIT};
    for (int k = 0; k < 6; k++)
        payq_pgarr_begin(&c[k]);
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        struct wmsg *m = msgs[i];
        if (m->outcome != WOUT_CONFLICT)
            continue;
        payq_buf_reset(&l->tmp);
        uint8_t h[32];
        char hex[65];
        if (m->kind == WMSG_TRANSFER) {
            payq_msg_encode_transfer(&m->u.transfer, &l->tmp);
            memcpy(h, m->hash, 32);
        } else {
            payq_msg_encode_account(&m->u.account, &l->tmp);
            payq_sha256(l->tmp.data, l->tmp.len, h);
        }
        payq_hash_hex(h, hex);
        payq_pgarr_str(&c[0], m->kind == WMSG_TRANSFER ? "transfer" : "account");
        payq_pgarr_str(&c[1], m->kind == WMSG_TRANSFER ? m->u.transfer.id : m->u.account.id);
        payq_pgarr_str(&c[2], hex);
        payq_pgarr_str(&c[3], l->tmp.data);
        payq_pgarr_str(&c[4], m->reason);
        payq_pgarr_str(&c[5], m->kind == WMSG_TRANSFER ? m->business_date : NULL);
        nc++;
    }
    enum payq_pg_fault f = PAYQ_PG_OK;
    if (nc > 0) {
        const char *p[6];
        for (int k = 0; k < 6; k++) {
            payq_pgarr_end(&c[k]);
            p[k] = c[k].data;
        }
        f = run(conn,
                "INSERT INTO payq.conflicts (kind, entity_id, payload_sha256, payload, reason, "
                "business_date) SELECT k, id, decode(h, 'hex'), p::jsonb, r, d::date "
                "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
                "$6::text[]) AS v(k, id, h, p, r, d) "
                "ON CONFLICT (kind, entity_id, payload_sha256) DO NOTHING",
                6, p, PGRES_COMMAND_OK, "record conflicts", NULL);
    }
    for (int k = 0; k < 6; k++)
        payq_buf_free(&c[k]);
    return f;
}

/* Step 5d: undecodable messages, so reconciliation can account for them. */
static enum payq_pg_fault insert_dead(struct payq_ledger *l, PGconn *conn, struct wmsg **msgs,
                                      size_t n)
{
    (void)l;
    struct payq_buf c[6] = {PAYQ_BUF_INIT, PAYQ_BUF_INIT, PAYQ_BUF_INIT,
                            PAYQ_BUF_INIT, PAYQ_BUF_INIT, PAYQ_BUF_INIT};
    for (int k = 0; k < 6; k++)
        payq_pgarr_begin(&c[k]);
    size_t nd = 0;
    for (size_t i = 0; i < n; i++) {
        struct wmsg *m = msgs[i];
        if (m->outcome != WOUT_DEAD)
            continue;
        char hex[65], id[PAYQ_ID_MAX + 1];
        payq_hash_hex(m->hash, hex);
        payq_pgarr_str(&c[0], hex);
        payq_pgarr_str(&c[1], payq_wmsg_dead_id(m, id));
        payq_pgarr_str(&c[2], m->routing_key);
        payq_pgarr_str(&c[3], m->err.field);
        payq_pgarr_str(&c[4], m->err.reason);
        payq_pgarr_int(&c[5], m->timestamp_s);
        nd++;
    }
    enum payq_pg_fault f = PAYQ_PG_OK;
    if (nd > 0) {
        const char *p[6];
        for (int k = 0; k < 6; k++) {
            payq_pgarr_end(&c[k]);
            p[k] = c[k].data;
        }
        f = run(conn,
                "INSERT INTO payq.dead_letters (body_sha256, message_id, routing_key, field, "
                "reason, published_at) SELECT decode(h, 'hex'), id, rk, f, r, to_timestamp(ts) "
                "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
                "$6::bigint[]) AS v(h, id, rk, f, r, ts) ON CONFLICT (body_sha256) DO NOTHING",
                6, p, PGRES_COMMAND_OK, "record dead letters", NULL);
    }
    for (int k = 0; k < 6; k++)
        payq_buf_free(&c[k]);
    return f;
}

static void prepare(struct payq_ledger *l, struct wmsg **msgs, size_t n)
{
    l->nacct = 0;
    l->nex = 0;
    payq_strmap_reset(&l->acct_idx, n * 2);
    payq_strmap_reset(&l->ex_idx, n);
    payq_strmap_reset(&l->seen, n);
    for (size_t i = 0; i < n; i++) {
        struct wmsg *m = msgs[i];
        if (m->kind == WMSG_TRANSFER) {
            acct_get(l, m->u.transfer.debit_account);
            acct_get(l, m->u.transfer.credit_account);
        } else if (m->kind == WMSG_ACCOUNT) {
            acct_get(l, m->u.account.id);
        }
    }
}

enum payq_pg_fault payq_ledger_apply(struct payq_ledger *l, PGconn *conn,
                                     struct payq_commit_watch *watch, const struct payq_journal *j,
                                     struct wmsg **msgs, size_t n)
{
    PGresult *existing = NULL;
    prepare(l, msgs, n);
    enum payq_pg_fault f = payq_pg_exec(conn, "BEGIN", "begin");
    if (f != PAYQ_PG_OK)
        return f;
    if ((f = open_accounts(l, conn, msgs, n)) != PAYQ_PG_OK ||
        (f = read_accounts(l, conn)) != PAYQ_PG_OK ||
        (f = read_existing(l, conn, msgs, n, &existing)) != PAYQ_PG_OK)
        goto fail;
    simulate(l, msgs, n);
    if ((f = lock_moving(l, conn)) != PAYQ_PG_OK ||
        (f = insert_transfers(l, conn, msgs, n)) != PAYQ_PG_OK ||
        (f = update_balances(l, conn)) != PAYQ_PG_OK ||
        (f = insert_conflicts(l, conn, msgs, n)) != PAYQ_PG_OK ||
        (f = insert_dead(l, conn, msgs, n)) != PAYQ_PG_OK)
        goto fail;
    /* Step 6: the journal row and a COMMIT that waited for the standby. */
    f = payq_commit_batch(conn, watch, j, msgs, n);
    PQclear(existing);
    return f;
fail:
    PQclear(existing);
    if (PQstatus(conn) == CONNECTION_OK) {
        PGresult *r = PQexec(conn, "ROLLBACK");
        PQclear(r);
    }
    return f;
}
