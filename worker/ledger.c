/* ledger: one transaction per batch, set-based (see ledger.h). */
#include "ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acache.h"
#include "alloc.h"
#include "balances.h"
#include "buf.h"
#include "event_body.h"
#include "events.h"
#include "log.h"
#include "pgarray.h"
#include "pgbarray.h"
#include "rules.h"

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
    struct payq_rules rules; /* the batch's inputs and decisions */
    struct payq_buf col[NCOLS];
    struct payq_buf tmp;
    size_t nrows;
    struct payq_acache cache;  /* accounts' immutable fields across batches */
    unsigned prepared;         /* bit i: stmts[i] exists in the current session */
    bool events;               /* the INSERT returns the rows' outcome events */
    struct payq_wmsg **rowmsg; /* the message of each inserted row, in order */
    size_t rowmsg_cap;
    bool check_all;  /* step 3 reads every id: the last full check found one booked */
    bool met_booked; /* this attempt's INSERT met an id booked already (23505) */
    bool retry_now;  /* ... that step 3 had not read: payq_ledger_retry_now */
};

struct payq_ledger *payq_ledger_new(void)
{
    return payq_xcalloc(1, sizeof(struct payq_ledger));
}

void payq_ledger_free(struct payq_ledger *l)
{
    if (!l)
        return;
    payq_rules_free(&l->rules);
    payq_acache_free(&l->cache);
    for (int i = 0; i < NCOLS; i++)
        payq_buf_free(&l->col[i]);
    payq_buf_free(&l->tmp);
    free(l->rowmsg);
    free(l);
}

void payq_ledger_cache_accounts(struct payq_ledger *l, size_t max)
{
    payq_acache_free(&l->cache);
    payq_acache_init(&l->cache, max);
}

void payq_ledger_cache_stats(const struct payq_ledger *l, unsigned long long *hits,
                             unsigned long long *misses)
{
    *hits = l->cache.hits;
    *misses = l->cache.misses;
}

bool payq_ledger_retry_now(const struct payq_ledger *l)
{
    return l->retry_now;
}

/* Runs a parameterised statement with text parameters and checks it. The
 * result is returned through *out when the caller wants it, else cleared. */
static enum payq_pg_fault run(PGconn *conn, const char *sql, int nparams, const char *const *params,
                              ExecStatusType expect, const char *what, PGresult **out)
{
    PGresult *res = payq_pg_exec_params(conn, sql, nparams, params, 0);
    enum payq_pg_fault f = payq_pg_check(conn, res, expect, what);
    if (f == PAYQ_PG_OK && out) {
        *out = res;
        return f;
    }
    PQclear(res);
    return f;
}

/* The batch's hot statements, each prepared once per session, on its first
 * use (so inside a batch, where its locks were always taken: a worker
 * connecting while a table is locked still connects, then consumes):
 * batches then skip parsing and planning them (~5% of the backend's CPU in
 * a drain, issue 16). A prepared statement outlives the transaction that
 * prepared it, even one rolled back. Every parameter is a binary-format
 * array (pgbarray.h): nothing for the server to parse. With parameters
 * unknown, the plan cache settles on a generic plan after five executions;
 * index_plans() leaves it the same shapes as a custom plan (nested loops
 * over index probes), which update_balances' lock order relies on. */
enum stmt {
    ST_READ_ACCOUNTS,
    ST_LOCK_RESTRICTED,
    ST_READ_EXISTING,
    ST_UPDATE_BALANCES,
    ST_INSERT_TRANSFERS,
    ST_INSERT_TRANSFERS_EVENTS,
    NSTMT
};

#define TEXT_ARR PAYQ_PG_TEXT_ARRAY_OID
#define INT8_ARR PAYQ_PG_INT8_ARRAY_OID
#define BYTEA_ARR PAYQ_PG_BYTEA_ARRAY_OID

/* clang-format off */
#define INSERT_TRANSFERS                                                                           \
    "INSERT INTO payq.transfers (id, batch_id, debit_account, credit_account, amount, "            \
    "currency, business_date, reference, metadata, status, reason, payload_sha256, "               \
    "published_at, debit_balance, credit_balance) "                                                \
    "SELECT id, batch_id, debit, credit, amount, currency, bdate::date, reference, "               \
    "meta::jsonb, status, reason, hash, "                                                          \
    "'epoch'::timestamptz + ts * interval '1 millisecond', dbal, cbal "                            \
    "FROM (SELECT unnest($1::text[]) AS id, unnest($2::text[]) AS batch_id, "                      \
    "unnest($3::text[]) AS debit, unnest($4::text[]) AS credit, "                                  \
    "unnest($5::bigint[]) AS amount, unnest($6::text[]) AS currency, "                             \
    "unnest($7::text[]) AS bdate, unnest($8::text[]) AS reference, "                               \
    "unnest($9::text[]) AS meta, unnest($10::text[]) AS status, "                                  \
    "unnest($11::text[]) AS reason, unnest($12::bytea[]) AS hash, "                                \
    "unnest($13::bigint[]) AS ts, unnest($14::bigint[]) AS dbal, "                                 \
    "unnest($15::bigint[]) AS cbal) AS v"
#define INSERT_TYPES                                                                               \
    {TEXT_ARR, TEXT_ARR, TEXT_ARR, TEXT_ARR, INT8_ARR, TEXT_ARR, TEXT_ARR, TEXT_ARR, TEXT_ARR,     \
     TEXT_ARR, TEXT_ARR, BYTEA_ARR, INT8_ARR, INT8_ARR, INT8_ARR}
/* clang-format on */

static const struct stmt_def {
    const char *name;
    const char *sql;
    int nparams;
    Oid types[NCOLS];
    int result_format; /* 1: binary (the events' columns, for payq_event_body) */
} stmts[NSTMT] = {
    [ST_READ_ACCOUNTS] =
        {"payq_read_accounts",
         "SELECT id, currency, flags, debits_posted, credits_posted FROM payq.accounts "
         "WHERE id = ANY($1::text[])",
         1,
         {TEXT_ARR},
         0},
    [ST_LOCK_RESTRICTED] = {"payq_lock_restricted",
                            "SELECT id, debits_posted, credits_posted FROM payq.accounts "
                            "WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
                            1,
                            {TEXT_ARR},
                            0},
    [ST_READ_EXISTING] = {"payq_read_existing",
                          "SELECT id, encode(payload_sha256, 'hex'), debit_account, "
                          "credit_account, amount, currency, coalesce(batch_id, ''), "
                          "business_date::text, coalesce(reference, '') FROM payq.transfers "
                          "WHERE id = ANY($1::text[])",
                          1,
                          {TEXT_ARR},
                          0},
    /* update_balances says why this order is the lock order. */
    [ST_UPDATE_BALANCES] = {"payq_update_balances",
                            "UPDATE payq.accounts a SET debits_posted = a.debits_posted + v.d, "
                            "credits_posted = a.credits_posted + v.c "
                            "FROM (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) "
                            "AS u(id, d, c) ORDER BY id COLLATE \"C\") AS v WHERE a.id = v.id "
                            "RETURNING a.id, a.debits_posted, a.credits_posted",
                            3,
                            {TEXT_ARR, INT8_ARR, INT8_ARR},
                            0},
    /* insert_transfers says why the arrays are unnested in the select list. */
    [ST_INSERT_TRANSFERS] = {"payq_insert_transfers", INSERT_TRANSFERS, NCOLS, INSERT_TYPES, 0},
    /* The same, returning each row's outcome event (events.h). */
    [ST_INSERT_TRANSFERS_EVENTS] = {"payq_insert_transfers_events",
                                    INSERT_TRANSFERS " RETURNING " PAYQ_EVENT_TRANSFER_COLS, NCOLS,
                                    INSERT_TYPES, 1},
};

void payq_ledger_return_events(struct payq_ledger *l, bool on)
{
    l->events = on;
}

void payq_ledger_new_session(struct payq_ledger *l)
{
    l->prepared = 0;
}

/* Prepares stmts[s] unless this session already has it. */
static enum payq_pg_fault prepare(struct payq_ledger *l, PGconn *conn, enum stmt s)
{
    if (l->prepared & (1u << s))
        return PAYQ_PG_OK;
    PGresult *res = NULL;
    if (PQsendPrepare(conn, stmts[s].name, stmts[s].sql, stmts[s].nparams, stmts[s].types))
        res = payq_pg_take_results(conn);
    enum payq_pg_fault f = payq_pg_check(conn, res, PGRES_COMMAND_OK, stmts[s].name);
    PQclear(res);
    if (f == PAYQ_PG_OK)
        l->prepared |= 1u << s;
    return f;
}

/* Work for the worker while the server runs a statement (NULL: none). */
typedef void payq_ledger_work(struct payq_ledger *l, struct payq_wmsg **msgs, size_t n);

/* Runs prepared statement s with arrays[0..nparams) as its binary
 * parameters, after preparing it if need be, calling work(l, msgs, n) after
 * sending it, while the server runs it. NULL: it could not be prepared or
 * run (*f says why); else the caller checks and clears the result. */
static PGresult *exec_prepared_during(struct payq_ledger *l, PGconn *conn, enum stmt s,
                                      const struct payq_buf *arrays, enum payq_pg_fault *f,
                                      payq_ledger_work *work, struct payq_wmsg **msgs, size_t n)
{
    if ((*f = prepare(l, conn, s)) != PAYQ_PG_OK)
        return NULL;
    const char *values[NCOLS];
    int lengths[NCOLS], formats[NCOLS];
    for (int i = 0; i < stmts[s].nparams; i++) {
        values[i] = arrays[i].data;
        lengths[i] = (int)arrays[i].len;
        formats[i] = 1;
    }
    PGresult *res = NULL;
    if (PQsendQueryPrepared(conn, stmts[s].name, stmts[s].nparams, values, lengths, formats,
                            stmts[s].result_format)) {
        if (work)
            work(l, msgs, n);
        res = payq_pg_take_results(conn);
    }
    /* Not sent, or no result: a lost connection (logged). PQexecPrepared
     * gave NULL here too, which callers took for success. */
    if (!res)
        *f = payq_pg_check(conn, NULL, PGRES_COMMAND_OK, stmts[s].name);
    return res;
}

static PGresult *exec_prepared(struct payq_ledger *l, PGconn *conn, enum stmt s,
                               const struct payq_buf *arrays, enum payq_pg_fault *f)
{
    return exec_prepared_during(l, conn, s, arrays, f, NULL, NULL, 0);
}

/* exec_prepared, checked. The result is returned through *out when the
 * caller wants it, else cleared. */
static enum payq_pg_fault run_prepared(struct payq_ledger *l, PGconn *conn, enum stmt s,
                                       const struct payq_buf *arrays, ExecStatusType expect,
                                       const char *what, PGresult **out)
{
    enum payq_pg_fault f;
    PGresult *res = exec_prepared(l, conn, s, arrays, &f);
    if (!res)
        return f;
    f = payq_pg_check(conn, res, expect, what);
    if (f == PAYQ_PG_OK && out) {
        *out = res;
        return f;
    }
    PQclear(res);
    return f;
}

static int cmp_acct_msg(const void *a, const void *b)
{
    const struct payq_wmsg *x = *(struct payq_wmsg *const *)a, *y = *(struct payq_wmsg *const *)b;
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
static enum payq_pg_fault open_accounts(struct payq_ledger *l, PGconn *conn,
                                        struct payq_wmsg **msgs, size_t n)
{
    struct payq_wmsg **am = payq_xreallocarray(NULL, n ? n : 1, sizeof *am);
    size_t na = 0;
    for (size_t i = 0; i < n; i++)
        if (msgs[i]->kind == WMSG_ACCOUNT)
            am[na++] = msgs[i];
    enum payq_pg_fault f = PAYQ_PG_OK;
    if (na == 0)
        goto out;
    qsort(am, na, sizeof *am, cmp_acct_msg);
    struct payq_buf ids = PAYQ_BUF_INIT, cur = PAYQ_BUF_INIT, flags_arr = PAYQ_BUF_INIT;
    payq_pgarr_begin(&ids);
    payq_pgarr_begin(&cur);
    payq_pgarr_begin(&flags_arr);
    for (size_t i = 0; i < na; i++) {
        if (i > 0 && strcmp(am[i]->u.account.id, am[i - 1]->u.account.id) == 0)
            continue;
        payq_pgarr_str(&ids, am[i]->u.account.id);
        payq_pgarr_str(&cur, am[i]->u.account.currency);
        payq_pgarr_int(&flags_arr, am[i]->u.account.flags);
    }
    payq_pgarr_end(&ids);
    payq_pgarr_end(&cur);
    payq_pgarr_end(&flags_arr);
    const char *p[3] = {ids.data, cur.data, flags_arr.data};
    PGresult *res = NULL;
    f = run(conn,
            "INSERT INTO payq.accounts (id, currency, flags) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::int[]) ON CONFLICT (id) DO NOTHING "
            "RETURNING id",
            3, p, PGRES_TUPLES_OK, "open accounts", &res);
    if (f == PAYQ_PG_OK) {
        for (int r = 0; r < PQntuples(res); r++)
            payq_rules_opened(&l->rules, PQgetvalue(res, r, 0), msgs, n);
        PQclear(res);
    }
    payq_buf_free(&ids);
    payq_buf_free(&cur);
    payq_buf_free(&flags_arr);
out:
    free(am);
    return f;
}

/* Runs sql with the ids of the accounts that pass keep() as $1 (a binary
 * text array, in id order) and hands each row to take(). No matching account:
 * nothing runs. */
static enum payq_pg_fault for_accounts(struct payq_ledger *l, PGconn *conn, enum stmt st,
                                       bool (*keep)(const struct payq_rules_acct *),
                                       const char *what,
                                       void (*take)(struct payq_rules_acct *, PGresult *, int))
{
    payq_pgbarr_begin(&l->tmp, PAYQ_PG_TEXT_OID);
    for (size_t i = 0; i < l->rules.nacct; i++)
        if (keep(&l->rules.accts[i]))
            payq_pgbarr_text(&l->tmp, l->rules.accts[i].id);
    if (payq_pgbarr_count(&l->tmp) == 0)
        return PAYQ_PG_OK;
    PGresult *res = NULL;
    enum payq_pg_fault f = run_prepared(l, conn, st, &l->tmp, PGRES_TUPLES_OK, what, &res);
    if (f != PAYQ_PG_OK)
        return f;
    for (int r = 0; take && r < PQntuples(res); r++) {
        struct payq_rules_acct *a = payq_rules_acct(&l->rules, PQgetvalue(res, r, 0));
        if (a)
            take(a, res, r);
    }
    PQclear(res);
    return PAYQ_PG_OK;
}

/* Not known from the cache (step 2's read fills currency for every row it
 * finds; an account the database lacks stays unknown). */
static bool not_cached(const struct payq_rules_acct *a)
{
    return a->currency[0] == '\0';
}

static bool restricted(const struct payq_rules_acct *a)
{
    return a->in_db && a->flags != 0;
}

static void take_account(struct payq_rules_acct *a, PGresult *res, int r)
{
    a->in_db = true;
    snprintf(a->currency, sizeof a->currency, "%s", PQgetvalue(res, r, 1));
    a->flags = (unsigned)strtoul(PQgetvalue(res, r, 2), NULL, 10);
    a->debits = strtoll(PQgetvalue(res, r, 3), NULL, 10);
    a->credits = strtoll(PQgetvalue(res, r, 4), NULL, 10);
}

static void take_balances(struct payq_rules_acct *a, PGresult *res, int r)
{
    a->debits = strtoll(PQgetvalue(res, r, 1), NULL, 10);
    a->credits = strtoll(PQgetvalue(res, r, 2), NULL, 10);
}

/* Step 2, from memory: accounts a committed batch already saw exist, with
 * the currency and flags they will always have (acache.h). Their balances
 * are left at zero: restricted ones are locked and read below anyway, and
 * an unrestricted balance only foresees an overflow, which the bigint column
 * still refuses (the batch then fails, is split, and each message, alone,
 * reads its accounts from the database: n == 1 never uses the cache, so
 * the transfer is rejected as overflow on its exact balance). */
static void from_cache(struct payq_ledger *l, size_t n)
{
    if (n <= 1)
        return;
    for (size_t i = 0; i < l->rules.nacct; i++) {
        struct payq_rules_acct *a = &l->rules.accts[i];
        const struct payq_acache_entry *e = payq_acache_get(&l->cache, a->id);
        if (!e)
            continue;
        a->in_db = a->cached = true;
        memcpy(a->currency, e->currency, sizeof a->currency);
        a->flags = e->flags;
        a->debits = a->credits = 0;
    }
}

/* After a COMMIT the standby confirmed: every account the batch found or
 * opened exists for good, with these fields (those it took from the cache
 * are there already). */
static void remember_accounts(struct payq_ledger *l)
{
    for (size_t i = 0; i < l->rules.nacct; i++) {
        const struct payq_rules_acct *a = &l->rules.accts[i];
        if (a->in_db && !a->cached && a->currency[0])
            payq_acache_put(&l->cache, a->id, a->currency, a->flags);
    }
}

/* Step 2: reads every account the batch names, without locking: currency and
 * flags never change, and only restricted accounts (a balance rule) need
 * exact balances now. Those are locked, in id order, and read again. The
 * others are locked only by step 5a's UPDATE, so a second worker touching the same
 * accounts waits for the end of this batch's balance update, not for the
 * whole batch. Overflow on an unrestricted account read here without a lock
 * is still refused: the bigint column raises, the batch is split and the
 * transfer, alone, is rejected on a fresh balance. */
static enum payq_pg_fault read_accounts(struct payq_ledger *l, PGconn *conn, size_t n)
{
    from_cache(l, n);
    enum payq_pg_fault f =
        for_accounts(l, conn, ST_READ_ACCOUNTS, not_cached, "read accounts", take_account);
    if (f != PAYQ_PG_OK)
        return f;
    return for_accounts(l, conn, ST_LOCK_RESTRICTED, restricted, "lock restricted accounts",
                        take_balances);
}

/* Index plans for every statement of the batch, whatever the size of the
 * tables: an account read, lock or update costs an index probe, not a share
 * of a sequential scan or of a hash built over every account. Step 5a's lock
 * order depends on it too (see update_balances). Transaction-local, so a
 * retried batch sets it again. */
static enum payq_pg_fault index_plans(PGconn *conn)
{
    return payq_pg_exec(conn,
                        "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; "
                        "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off",
                        "set index plans");
}

/* Step 3: which transfer ids already exist, of every transfer (all) or only
 * of those the broker flagged redelivered. *res keeps the strings alive.
 * A full check records whether it found any, for the next batch
 * (payq_ledger_apply says why). */
static enum payq_pg_fault read_existing(struct payq_ledger *l, PGconn *conn,
                                        struct payq_wmsg **msgs, size_t n, bool all, PGresult **res)
{
    payq_pgbarr_begin(&l->tmp, PAYQ_PG_TEXT_OID);
    for (size_t i = 0; i < n; i++)
        if (msgs[i]->kind == WMSG_TRANSFER && (all || msgs[i]->redelivered))
            payq_pgbarr_text(&l->tmp, msgs[i]->u.transfer.id);
    if (all)
        l->check_all = false;
    if (payq_pgbarr_count(&l->tmp) == 0)
        return PAYQ_PG_OK;
    enum payq_pg_fault f = run_prepared(l, conn, ST_READ_EXISTING, &l->tmp, PGRES_TUPLES_OK,
                                        "read existing transfers", res);
    if (f != PAYQ_PG_OK)
        return f;
    if (all && PQntuples(*res) > 0)
        l->check_all = true;
    for (int r = 0; r < PQntuples(*res); r++) {
        const struct payq_rules_existing e = {
            .hash_hex = PQgetvalue(*res, r, 1),
            .debit = PQgetvalue(*res, r, 2),
            .credit = PQgetvalue(*res, r, 3),
            .amount = strtoll(PQgetvalue(*res, r, 4), NULL, 10),
            .currency = PQgetvalue(*res, r, 5),
            .batch_id = PQgetvalue(*res, r, 6),
            .date = PQgetvalue(*res, r, 7),
            .reference = PQgetvalue(*res, r, 8),
        };
        payq_rules_add_existing(&l->rules, PQgetvalue(*res, r, 0), &e);
    }
    return PAYQ_PG_OK;
}

/* Each ledger column's element type (binary arrays, pgbarray.h). The hash
 * goes as its 32 raw bytes; the date, metadata and timestamp keep their SQL
 * conversions (date and jsonb input validate what the worker passes, and
 * the published time's range errors stay the database's). */
static const uint32_t col_elem[NCOLS] = {
    [COL_ID] = PAYQ_PG_TEXT_OID,     [COL_BATCH] = PAYQ_PG_TEXT_OID,
    [COL_DEBIT] = PAYQ_PG_TEXT_OID,  [COL_CREDIT] = PAYQ_PG_TEXT_OID,
    [COL_AMOUNT] = PAYQ_PG_INT8_OID, [COL_CURRENCY] = PAYQ_PG_TEXT_OID,
    [COL_DATE] = PAYQ_PG_TEXT_OID,   [COL_REF] = PAYQ_PG_TEXT_OID,
    [COL_META] = PAYQ_PG_TEXT_OID,   [COL_STATUS] = PAYQ_PG_TEXT_OID,
    [COL_REASON] = PAYQ_PG_TEXT_OID, [COL_HASH] = PAYQ_PG_BYTEA_OID,
    [COL_TS] = PAYQ_PG_INT8_OID,     [COL_DBAL] = PAYQ_PG_INT8_OID,
    [COL_CBAL] = PAYQ_PG_INT8_OID,
};

/* A bigint array element, NULL unless present. */
static void int8_or_null(struct payq_buf *b, bool present, int64_t v)
{
    if (present)
        payq_pgbarr_int8(b, v);
    else
        payq_pgbarr_null(b);
}

static void add_row(struct payq_ledger *l, struct payq_wmsg *m)
{
    const struct payq_transfer *t = &m->u.transfer;
    payq_pgbarr_text(&l->col[COL_ID], t->id);
    payq_pgbarr_text(&l->col[COL_BATCH], t->batch_id[0] ? t->batch_id : NULL);
    payq_pgbarr_text(&l->col[COL_DEBIT], t->debit_account);
    payq_pgbarr_text(&l->col[COL_CREDIT], t->credit_account);
    payq_pgbarr_int8(&l->col[COL_AMOUNT], t->amount);
    payq_pgbarr_text(&l->col[COL_CURRENCY], t->currency);
    payq_pgbarr_text(&l->col[COL_DATE], m->business_date);
    payq_pgbarr_text(&l->col[COL_REF], t->reference[0] ? t->reference : NULL);
    payq_pgbarr_text(&l->col[COL_META], t->metadata);
    payq_pgbarr_text(&l->col[COL_STATUS], m->outcome == WOUT_POSTED ? "posted" : "rejected");
    payq_pgbarr_text(&l->col[COL_REASON], m->outcome == WOUT_POSTED ? NULL : m->reason);
    payq_pgbarr_bytes(&l->col[COL_HASH], m->hash, sizeof m->hash);
    payq_pgbarr_int8(&l->col[COL_TS], m->published_ms);
    l->rowmsg[l->nrows++] = m;
}

/* Step 5c's rows but their balances, built while step 5a's UPDATE runs:
 * the outcomes are decided (step 4), only the balances after each transfer
 * wait for the UPDATE's result (step 5b). */
static void build_rows(struct payq_ledger *l, struct payq_wmsg **msgs, size_t n)
{
    l->nrows = 0;
    if (l->rowmsg_cap < n) {
        l->rowmsg_cap = n;
        l->rowmsg = payq_xreallocarray(l->rowmsg, n, sizeof *l->rowmsg);
    }
    for (int c = 0; c < NCOLS; c++)
        payq_pgbarr_begin(&l->col[c], col_elem[c]);
    for (size_t i = 0; i < n; i++)
        if (msgs[i]->outcome == WOUT_POSTED || msgs[i]->outcome == WOUT_REJECTED)
            add_row(l, msgs[i]);
}

/* The rows' balance columns, once step 5b has set them; rejected rows:
 * NULL. */
static void add_balances(struct payq_ledger *l)
{
    for (size_t r = 0; r < l->nrows; r++) {
        const struct payq_wmsg *m = l->rowmsg[r];
        bool posted = m->outcome == WOUT_POSTED;
        int8_or_null(&l->col[COL_DBAL], posted, m->debit_balance);
        int8_or_null(&l->col[COL_CBAL], posted, m->credit_balance);
    }
}

/* Hands each returned row's outcome event to its message. Rows come back
 * in insertion order; a row whose id is not the one sent at its place
 * (never seen), or one payq_event_body cannot write, gives its message no
 * event, which events.c then reads back from the ledger after COMMIT:
 * slower, the same bytes. */
static void take_events(struct payq_ledger *l, PGresult *res)
{
    for (int r = 0; r < PQntuples(res) && (size_t)r < l->nrows; r++) {
        struct payq_wmsg *m = l->rowmsg[r];
        payq_wmsg_clear_event(m);
        if (strcmp(PQgetvalue(res, r, 0), m->u.transfer.id) != 0)
            continue;
        payq_buf_reset(&l->tmp);
        if (payq_event_body(res, r, &l->tmp, &m->event_ms) != 0)
            continue;
        m->event_len = l->tmp.len;
        m->event = payq_xmalloc(m->event_len + 1);
        memcpy(m->event, l->tmp.data, m->event_len + 1);
    }
}

/* Step 5c: the ledger rows, posted ones with the balances step 5b derived.
 * If one of these ids is booked already (step 3 did not check it, or
 * another worker inserted it since: a redelivery racing its original), the
 * primary key refuses the row (23505, after waiting for that worker's
 * transaction to end): l->met_booked, and the batch is applied again with
 * every id checked, when step 3 will see it. A plain INSERT, not ON
 * CONFLICT DO NOTHING:
 * that probed transfers_pkey twice per row (the arbiter check, then the
 * insert's own uniqueness check), ~13% of this statement's CPU, to turn
 * the same race into a count mismatch and the same retry. No row lock is
 * taken here (payq.transfers has no foreign keys), so coming after step 5a
 * changes no lock order.
 * The columns are unnested in the select list (a ProjectSet, one row at a
 * time), not in FROM: a function scan over 15 arrays materialises each
 * into a tuplestore first, ~25% of this statement's CPU (issue 16). Every
 * array has one element per row, so both forms yield the same rows. */
static enum payq_pg_fault insert_transfers(struct payq_ledger *l, PGconn *conn)
{
    if (l->nrows == 0)
        return PAYQ_PG_OK;
    add_balances(l);
    enum payq_pg_fault f;
    PGresult *res = exec_prepared(
        l, conn, l->events ? ST_INSERT_TRANSFERS_EVENTS : ST_INSERT_TRANSFERS, l->col, &f);
    if (!res)
        return f;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (PQresultStatus(res) == PGRES_FATAL_ERROR && state && strcmp(state, "23505") == 0) {
        l->met_booked = true;
        PQclear(res);
        return PAYQ_PG_RETRY;
    }
    f = payq_pg_check(conn, res, l->events ? PGRES_TUPLES_OK : PGRES_COMMAND_OK,
                      "insert transfers");
    if (f == PAYQ_PG_OK && l->events)
        take_events(l, res);
    PQclear(res);
    return f;
}

/* Step 5a's result: the new balances of the nupd accounts it updated. */
static enum payq_pg_fault take_updated(struct payq_ledger *l, PGconn *conn, PGresult *res,
                                       size_t nupd)
{
    enum payq_pg_fault f = payq_pg_check(conn, res, PGRES_TUPLES_OK, "update balances");
    if (f != PAYQ_PG_OK)
        return f;
    for (int r = 0; r < PQntuples(res); r++) {
        struct payq_rules_acct *a = payq_rules_acct(&l->rules, PQgetvalue(res, r, 0));
        if (a)
            take_balances(a, res, r);
    }
    if ((size_t)PQntuples(res) != nupd) {
        payq_log(PAYQ_LOG_ERROR, "balance_update_mismatch", "expected %zu account rows to change",
                 nupd);
        return PAYQ_PG_FATAL;
    }
    return PAYQ_PG_OK;
}

/* Step 5a: balances move by the batch's aggregated deltas, in one statement
 * that is also the lock pass: each row is written once. It returns the new
 * balances, exact under the row locks held until COMMIT, into the rules'
 * accounts (for step 5b, balances.h). Rows are updated,
 * and so locked, in id order, so two workers never wait on each other in a
 * cycle. The order comes from the plan: with sequential and bitmap scans,
 * hash and merge joins disabled (index_plans), the only plans left are
 * nested loops driven either by the deltas sorted by id (the subquery's
 * ORDER BY, byte order as the id column's COLLATE "C") with an index probe
 * per row, or by an index scan of accounts_pkey (id order too).
 * tests/integration/integration_worker_plans.sh checks the plan. Restricted
 * accounts, locked at step 2, are never waited for here by a worker: it
 * already holds its own. While the server runs it, the worker builds step
 * 5c's rows (build_rows): one batch's statements run serially on one
 * backend, so what the worker does between them is its drain rate's to
 * pay. */
static enum payq_pg_fault update_balances(struct payq_ledger *l, PGconn *conn,
                                          struct payq_wmsg **msgs, size_t n)
{
    struct payq_buf a3[3] = {PAYQ_BUF_INIT, PAYQ_BUF_INIT, PAYQ_BUF_INIT}; /* id, d, c */
    payq_pgbarr_begin(&a3[0], PAYQ_PG_TEXT_OID);
    payq_pgbarr_begin(&a3[1], PAYQ_PG_INT8_OID);
    payq_pgbarr_begin(&a3[2], PAYQ_PG_INT8_OID);
    for (size_t i = 0; i < l->rules.nacct; i++) {
        const struct payq_rules_acct *a = &l->rules.accts[i];
        if (a->debit_delta == 0 && a->credit_delta == 0)
            continue;
        payq_pgbarr_text(&a3[0], a->id);
        payq_pgbarr_int8(&a3[1], a->debit_delta);
        payq_pgbarr_int8(&a3[2], a->credit_delta);
    }
    size_t nupd = payq_pgbarr_count(&a3[0]);
    enum payq_pg_fault f = PAYQ_PG_OK;
    PGresult *res = NULL;
    if (nupd == 0) /* every transfer rejected */
        build_rows(l, msgs, n);
    else if ((res = exec_prepared_during(l, conn, ST_UPDATE_BALANCES, a3, &f, build_rows, msgs,
                                         n)) != NULL)
        f = take_updated(l, conn, res, nupd);
    PQclear(res);
    for (int k = 0; k < 3; k++)
        payq_buf_free(&a3[k]);
    return f;
}

/* Step 5d: id conflicts (transfers) and re-opened accounts with other fields. */
static enum payq_pg_fault insert_conflicts(struct payq_ledger *l, PGconn *conn,
                                           struct payq_wmsg **msgs, size_t n)
{
    struct payq_buf c[6] = {PAYQ_BUF_INIT, PAYQ_BUF_INIT, PAYQ_BUF_INIT,
                            PAYQ_BUF_INIT, PAYQ_BUF_INIT, PAYQ_BUF_INIT};
    for (int k = 0; k < 6; k++)
        payq_pgarr_begin(&c[k]);
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        struct payq_wmsg *m = msgs[i];
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

/* Step 5e: undecodable messages, so reconciliation can account for them. */
static enum payq_pg_fault insert_dead(struct payq_ledger *l, PGconn *conn, struct payq_wmsg **msgs,
                                      size_t n)
{
    (void)l;
    struct payq_buf c[6] = {PAYQ_BUF_INIT, PAYQ_BUF_INIT, PAYQ_BUF_INIT,
                            PAYQ_BUF_INIT, PAYQ_BUF_INIT, PAYQ_BUF_INIT};
    for (int k = 0; k < 6; k++)
        payq_pgarr_begin(&c[k]);
    size_t nd = 0;
    for (size_t i = 0; i < n; i++) {
        struct payq_wmsg *m = msgs[i];
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

/* One attempt at the batch, steps 1-6; check_all: step 3 reads every id. */
static enum payq_pg_fault apply_once(struct payq_ledger *l, PGconn *conn,
                                     struct payq_commit_watch *watch, const struct payq_journal *j,
                                     struct payq_wmsg **msgs, size_t n, bool check_all,
                                     struct payq_commit_meanwhile meanwhile)
{
    PGresult *existing = NULL;
    for (size_t i = 0; i < n; i++) {
        payq_wmsg_clear_event(msgs[i]); /* a rolled-back attempt's */
        msgs[i]->outcome = WOUT_NONE;
        msgs[i]->reason = NULL;
    }
    l->met_booked = false;
    payq_rules_reset(&l->rules, msgs, n);
    enum payq_pg_fault f = payq_pg_exec(conn, "BEGIN", "begin");
    if (f != PAYQ_PG_OK)
        return f;
    if ((f = index_plans(conn)) != PAYQ_PG_OK ||
        (f = open_accounts(l, conn, msgs, n)) != PAYQ_PG_OK ||
        (f = read_accounts(l, conn, n)) != PAYQ_PG_OK ||
        (f = read_existing(l, conn, msgs, n, check_all, &existing)) != PAYQ_PG_OK)
        goto fail;
    payq_rules_decide_batch(&l->rules, msgs, n); /* step 4 */
    if ((f = update_balances(l, conn, msgs, n)) != PAYQ_PG_OK)
        goto fail;
    payq_balances_after(&l->rules, msgs, n); /* step 5b */
    if ((f = insert_transfers(l, conn)) != PAYQ_PG_OK ||
        (f = insert_conflicts(l, conn, msgs, n)) != PAYQ_PG_OK ||
        (f = insert_dead(l, conn, msgs, n)) != PAYQ_PG_OK)
        goto fail;
    /* Step 6: the journal row and a COMMIT that waited for the standby. */
    f = payq_commit_batch(conn, watch, j, msgs, n, meanwhile);
    if (f == PAYQ_PG_OK)
        remember_accounts(l);
    PQclear(existing);
    return f;
fail:
    PQclear(existing);
    if (PQstatus(conn) == CONNECTION_OK)
        payq_pg_exec(conn, "ROLLBACK", "rollback");
    return f;
}

/* Step 3 reads the ids the broker flagged redelivered, not every id, while
 * the last full check found none booked: a transfer published twice
 * without a redelivery (a producer retrying after an unknown outcome, a
 * file published again) is rare, and the ledger INSERT's primary key
 * refuses it anyway. That refusal rolls the attempt back and the caller
 * applies the batch again at once (payq_ledger_retry_now); checks then stay
 * full until one finds nothing booked. The read spared is an index probe
 * per transfer, about 5% of a batch's statement time (issue 16). A batch of
 * one, and every retry (the attempt before may have committed: an unknown
 * outcome), read every id. A refusal even with every id read is another
 * worker's concurrent insert: the caller retries after a pause. */
enum payq_pg_fault payq_ledger_apply(struct payq_ledger *l, PGconn *conn,
                                     struct payq_commit_watch *watch, const struct payq_journal *j,
                                     struct payq_wmsg **msgs, size_t n,
                                     struct payq_commit_meanwhile meanwhile)
{
    bool all = l->check_all || n <= 1 || j->attempt > 1;
    l->retry_now = false;
    enum payq_pg_fault f = apply_once(l, conn, watch, j, msgs, n, all, meanwhile);
    if (f != PAYQ_PG_RETRY || !l->met_booked)
        return f;
    if (all) {
        payq_log(PAYQ_LOG_WARN, "batch_race",
                 "a transfer id of the batch appeared concurrently: retrying the batch");
        return f;
    }
    l->check_all = true;
    l->retry_now = true;
    payq_log(PAYQ_LOG_INFO, "batch_recheck",
             "a transfer id of the batch is booked already: applying the batch again at once, "
             "every id checked");
    return f;
}
