/* ledger_read: standby catch-up, the day's cursor scan, invariants, lookups. */
#include "ledger_read.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "backoff.h"
#include "broker.h"
#include "clock.h"
#include "compare.h"
#include "copy_row.h"
#include "log.h"
#include "pg.h"
#include "pgarray.h"
#include "signals.h"

#define LEDGER_ATTEMPTS 3
#define LEDGER_LOOKUP_CHUNK 1000
#define LEDGER_REPLAY_POLL_MS 20
#define LEDGER_REMARK_MS 5000
#define INVARIANTS_TIMEOUT "1h"

struct payq_ledger_reader {
    PGconn *conn;
    /* A second session running the invariants query from the start of the
     * run (see payq_ledger_open), or NULL. */
    PGconn *inv_conn;
    const struct payq_config *cfg;
    bool full_invariants;   /* verify every date, rebuild the checkpoints */
    bool recon_unreachable; /* no session on pg.recon_conninfo */
    /* payq_ledger_wait_replay passed, with this timeout: a session opened
     * again must catch up too before it answers lookups. */
    bool caught_up;
    int replay_timeout_ms;
    atomic_bool cancel; /* payq_ledger_cancel: stop the scan */
    char err[512];
};

/* Rows of the date, in no particular order (the comparison partitions
 * them anyway), as one binary COPY (copy_row.h): measured on 1M rows here,
 * 2.4 s against 9.2 s for the text rows with the hash hex-encoded. COPY
 * takes no parameters: the date comes through a setting of the
 * transaction (SCAN_DATE_SQL), not through the statement's text. */
static const char SCAN_DATE_SQL[] = "SELECT set_config('payq.recon_date', $1::date::text, true)";
static const char SCAN_SQL[] =
    "COPY (SELECT id, batch_id, debit_account, credit_account, amount, currency, status, reason, "
    "payload_sha256 FROM payq.transfers "
    "WHERE business_date = current_setting('payq.recon_date')::date) TO STDOUT (FORMAT binary)";
/* One statement reads the whole day: bounded like the invariants, not by
 * pg.statement_timeout. */
#define SCAN_TIMEOUT INVARIANTS_TIMEOUT
#define SCAN_PROGRESS_EVERY 5000

/* The books: per currency the accounts' debits_posted and credits_posted
 * must sum alike (double entry), and each account's stored totals must
 * equal the sums of its posted transfers. payq.verify_books() checks the
 * latter against per-account checkpoints plus the transfers committed
 * since its watermark, so a run's cost follows the new rows, not history
 * (schemas/sql/008_recon_checkpoints.sql argues the watermark); it falls
 * back to all dates itself on any disagreement. It moves the watermark, so
 * it runs on the primary (pg.recon_conninfo) in a REPEATABLE READ
 * transaction that must COMMIT. Only violations come back. */
static const char INVARIANTS_SQL[] =
    "SELECT kind, key, stored_debits::text, stored_credits::text, sum_debits::text, "
    "sum_credits::text, known, mode FROM payq.verify_books(%s)";
/* The same check without checkpoints, read-only, all dates (the query of
 * every run before them): used when pg.recon_conninfo cannot be reached,
 * so that the verdict does not depend on the session that records it.
 * Each side is aggregated on its own (two parallel scans, per-account sums
 * first): 13 s instead of 18 s at 17M rows here. */
static const char INVARIANTS_READ_SQL[] =
    "WITH sums AS ("
    "  SELECT account, sum(d) AS debits, sum(c) AS credits FROM ("
    "    SELECT debit_account AS account, sum(amount) AS d, 0::numeric AS c"
    "      FROM payq.transfers WHERE status = 'posted' GROUP BY debit_account"
    "    UNION ALL"
    "    SELECT credit_account, 0::numeric, sum(amount)"
    "      FROM payq.transfers WHERE status = 'posted' GROUP BY credit_account) AS per_side"
    "  GROUP BY account),"
    " bad AS ("
    "  SELECT 'currency'::text AS kind, a.currency::text AS key,"
    "         sum(a.debits_posted)::numeric AS stored_debits,"
    "         sum(a.credits_posted)::numeric AS stored_credits,"
    "         NULL::numeric AS sum_debits, NULL::numeric AS sum_credits, true AS known"
    "  FROM payq.accounts a GROUP BY a.currency"
    "  HAVING sum(a.debits_posted) <> sum(a.credits_posted)"
    "  UNION ALL"
    "  SELECT 'account', coalesce(a.id, s.account), a.debits_posted, a.credits_posted,"
    "         coalesce(s.debits, 0), coalesce(s.credits, 0), a.id IS NOT NULL"
    "  FROM payq.accounts a FULL JOIN sums s ON s.account = a.id"
    "  WHERE a.id IS NULL OR a.debits_posted <> coalesce(s.debits, 0)"
    "     OR a.credits_posted <> coalesce(s.credits, 0))"
    "SELECT kind, key, stored_debits::text, stored_credits::text, sum_debits::text,"
    "       sum_credits::text, known FROM bad ORDER BY kind DESC, key";
/* Every session of the run sets client_connection_check_interval
 * (PAYQ_PG_CLIENT_CHECK): a run stopped (payq_ledger_stop_waits) or killed
 * closes its sessions, and their statements then end on the server too,
 * instead of scanning or waiting on for up to their hour. */
static const char INVARIANTS_BEGIN[] =
    "BEGIN ISOLATION LEVEL REPEATABLE READ; SET LOCAL statement_timeout = '" INVARIANTS_TIMEOUT
    "'; SET LOCAL client_connection_check_interval = '" PAYQ_PG_CLIENT_CHECK "'";
/* The same settings for invariants_once, one statement (run_on). */
static const char INVARIANTS_SETTINGS[] =
    "SELECT set_config('statement_timeout', '" INVARIANTS_TIMEOUT "', true), "
    "set_config('client_connection_check_interval', '" PAYQ_PG_CLIENT_CHECK "', true)";

/* The run is to stop: nothing is tried again, and r->err says so. */
static bool stop_waits(void *arg)
{
    struct payq_ledger_reader *r = arg;
    return payq_signals_stop_requested() || atomic_load(&r->cancel);
}

static bool stopping(struct payq_ledger_reader *r)
{
    if (!stop_waits(r))
        return false;
    snprintf(r->err, sizeof r->err, "interrupted");
    return true;
}

void payq_ledger_stop_waits(struct payq_ledger_reader *r)
{
    payq_pg_set_wait_stop(r ? stop_waits : NULL, r);
}

/* What a step on the read session came to. */
enum step {
    STEP_FAILED = -1,
    STEP_OK = 0,
    STEP_AGAIN = 1, /* start over: a serialization failure or recovery conflict */
    STEP_LOST = 2,  /* the session is lost: start over on a new one (reopen) */
};

/* Whether a statement on the read session failed because the session is
 * gone (not, say, cancelled by a statement timeout). */
static bool lost(const struct payq_ledger_reader *r, enum payq_pg_fault f)
{
    return f == PAYQ_PG_RECONNECT && PQstatus(r->conn) == CONNECTION_BAD;
}

/* A statement's fault on the read session as a step. */
static enum step step_of(const struct payq_ledger_reader *r, enum payq_pg_fault f)
{
    return f == PAYQ_PG_OK      ? STEP_OK
           : f == PAYQ_PG_RETRY ? STEP_AGAIN
           : lost(r, f)         ? STEP_LOST
                                : STEP_FAILED;
}

const char *payq_ledger_error(const struct payq_ledger_reader *r)
{
    return r->err[0] ? r->err : "unknown error";
}

/* Keeps "what: first line of the server's message" for the CLI. */
static void keep_error(struct payq_ledger_reader *r, PGconn *c, const char *what,
                       const PGresult *res)
{
    const char *msg = res ? PQresultErrorMessage(res) : "";
    if (!msg || !*msg)
        msg = PQerrorMessage(c);
    size_t n = strcspn(msg, "\n");
    snprintf(r->err, sizeof r->err, "%s: %.*s", what, (int)n, msg);
}

/* Runs one statement on c, waiting as long as its server is alive (payq_pg_exec_params_alive), and
 * checks its status; on failure logs (once, in payq_pg_check), keeps the reason and returns the
 * fault class. On success *out (if not NULL) holds the result for the caller to clear. */
static enum payq_pg_fault run_on(struct payq_ledger_reader *r, PGconn *c, const char *sql,
                                 int nparams, const char *const *params, ExecStatusType expect,
                                 const char *what, PGresult **out)
{
    PGresult *res = payq_pg_exec_params_alive(c, sql, nparams, params);
    enum payq_pg_fault f = payq_pg_check(c, res, expect, what);
    if (f != PAYQ_PG_OK) {
        keep_error(r, c, what, res);
        PQclear(res);
        return f;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return PAYQ_PG_OK;
}

static enum payq_pg_fault run(struct payq_ledger_reader *r, const char *sql, int nparams,
                              const char *const *params, ExecStatusType expect, const char *what,
                              PGresult **out)
{
    return run_on(r, r->conn, sql, nparams, params, expect, what, out);
}

static void invariants_sql(bool full, char *sql, size_t n)
{
    snprintf(sql, n, INVARIANTS_SQL, full ? "true" : "false");
}

/* Sent on a session of its own as the run starts, the invariants run on
 * the database while the stream is read and the day is scanned and
 * compared, instead of after them (they were the constant part of every
 * run before the checkpoints, and a full check still is). The books
 * balance in every committed snapshot, so an earlier snapshot checks the
 * same invariants. Returns the session with the query in flight, or NULL
 * (then it runs at the end, as before). */
static PGconn *start_invariants(const struct payq_config *cfg, bool full)
{
    PGconn *c = payq_pg_connect(cfg->pg.recon_conninfo, "payq-reconciler-invariants");
    if (!c)
        return NULL;
    if (!PQsendQuery(c, INVARIANTS_BEGIN)) {
        PQfinish(c);
        return NULL;
    }
    /* BEGIN and SET come back at once; the query is then left running. */
    PGresult *res = payq_pg_take_results_alive(c);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    char sql[sizeof INVARIANTS_SQL + 8];
    invariants_sql(full, sql, sizeof sql);
    if (!ok || !PQsendQuery(c, sql)) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* The result of start_invariants' query once committed (the watermark
 * moved), or NULL when it failed (a lost connection, a concurrent run, a
 * failover): the caller then runs it again synchronously. */
static PGresult *collect_invariants(struct payq_ledger_reader *r)
{
    if (!r->inv_conn)
        return NULL;
    PGresult *got = payq_pg_take_results_alive(r->inv_conn);
    if (payq_pg_check(r->inv_conn, got, PGRES_TUPLES_OK, "check invariants (concurrently)") !=
        PAYQ_PG_OK) {
        PQclear(got);
        got = NULL;
    }
    if (got) {
        PGresult *res = payq_pg_exec_params_alive(r->inv_conn, "COMMIT", 0, NULL);
        if (payq_pg_check(r->inv_conn, res, PGRES_COMMAND_OK, "commit the invariants") !=
            PAYQ_PG_OK) {
            PQclear(got);
            got = NULL;
        }
        PQclear(res);
    }
    PQfinish(r->inv_conn);
    r->inv_conn = NULL;
    return got;
}

/* Opens the read session (r->conn, closing one there before) on
 * whichever server of pg.read_conninfo libpq picks. Returns 0, or -1 with
 * r->err set. */
static int open_read_session(struct payq_ledger_reader *r)
{
    const struct payq_config *cfg = r->cfg;
    PQfinish(r->conn);
    r->conn = payq_pg_connect(cfg->pg.read_conninfo, "payq-reconciler");
    if (!r->conn) {
        char shown[400];
        payq_log_redact(cfg->pg.read_conninfo, shown, sizeof shown);
        snprintf(r->err, sizeof r->err,
                 "cannot connect with pg.read_conninfo \"%s\" (see the "
                 "pg_connect_failed log line)",
                 shown);
        return -1;
    }
    char timeout[24];
    snprintf(timeout, sizeof timeout, "%d", cfg->pg.statement_timeout_ms);
    const char *p[1] = {timeout};
    return run(r,
               "SELECT set_config('statement_timeout', $1, false), "
               "set_config('default_transaction_read_only', 'on', false), "
               "set_config('client_connection_check_interval', '" PAYQ_PG_CLIENT_CHECK "', false)",
               1, p, PGRES_TUPLES_OK, "set up the session", NULL) == PAYQ_PG_OK
               ? 0
               : -1;
}

int payq_ledger_open(const struct payq_config *cfg, bool full_invariants,
                     struct payq_ledger_reader **out, char *err, size_t errlen)
{
    *out = NULL;
    struct payq_ledger_reader *r = payq_xcalloc(1, sizeof *r);
    r->cfg = cfg;
    if (open_read_session(r) != 0) {
        snprintf(err, errlen, "%s", r->err);
        payq_ledger_close(r);
        return -1;
    }
    r->full_invariants = full_invariants;
    r->inv_conn = start_invariants(cfg, full_invariants);
    *out = r;
    return 0;
}

void payq_ledger_close(struct payq_ledger_reader *r)
{
    if (!r)
        return;
    PQfinish(r->inv_conn);
    PQfinish(r->conn);
    free(r);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The position the standby must replay to, taken on the primary after the
 * stream's marker: a record boundary behind every commit acknowledged
 * before it. The standby's last received position will not do: the
 * primary's WAL writer sends whole pages, so while a long transaction
 * (payq.verify_books, running during the read) writes WAL without
 * committing, what the standby received can end inside a record, and
 * replay cannot reach it until that record is completed and flushed (5 to
 * 15 s of waiting measured here). pg_current_wal_insert_lsn() is the end
 * of the last record inserted; committing a transaction that holds a
 * transaction id (and writes nothing) then flushes the WAL up to and past
 * it, so the standby receives it whole. That commit waits for the local
 * flush only (synchronous_commit = local): a stalled standby, which the
 * replay wait's timeout is there for, must not hang the run before it.
 * Returns 0 with lsn set, or -1 (the
 * primary cannot be reached through pg.recon_conninfo: logged). */
static int primary_mark(struct payq_ledger_reader *r, char *lsn, size_t len)
{
    PGconn *c = payq_pg_connect(r->cfg->pg.recon_conninfo, "payq-reconciler-replay");
    if (!c)
        return -1;
    PGresult *res = NULL;
    enum payq_pg_fault f =
        run_on(r, c, "BEGIN", 0, NULL, PGRES_COMMAND_OK, "begin the replay mark", NULL);
    if (f == PAYQ_PG_OK)
        f = run_on(r, c, "SET LOCAL synchronous_commit = local", 0, NULL, PGRES_COMMAND_OK,
                   "begin the replay mark", NULL);
    if (f == PAYQ_PG_OK)
        f = run_on(r, c, "SELECT pg_current_xact_id(), pg_current_wal_insert_lsn()::text", 0, NULL,
                   PGRES_TUPLES_OK, "take the replay mark", &res);
    if (f == PAYQ_PG_OK) {
        snprintf(lsn, len, "%s", PQgetvalue(res, 0, 1));
        PQclear(res);
        f = run_on(r, c, "COMMIT", 0, NULL, PGRES_COMMAND_OK, "commit the replay mark", NULL);
    }
    PQfinish(c);
    if (f != PAYQ_PG_OK)
        r->err[0] = '\0'; /* logged; the received position serves instead */
    return f == PAYQ_PG_OK ? 0 : -1;
}

/* A session of the read server lost (frozen, restarted, failed over):
 * another, on whichever server libpq picks now, takes its place. What was
 * read on the old one stays valid: each server holds only commits that
 * were acknowledged (synchronous replication), and a scan started over or
 * a wait for replay makes the new one answer for as much. */
static int reopen(struct payq_ledger_reader *r)
{
    if (!r->conn || stopping(r))
        return -1; /* a reopen already failed (r->err says why), or stopping */
    char was[160];
    snprintf(was, sizeof was, "%s:%s", PQhost(r->conn), PQport(r->conn));
    if (open_read_session(r) != 0)
        return -1;
    payq_log(PAYQ_LOG_WARN, "ledger_session_reopened",
             "the read session on %s was lost: reading on %s:%s now", was, PQhost(r->conn),
             PQport(r->conn));
    r->err[0] = '\0';
    return 0;
}

/* Whether the read server holds everything up to lsn: it replayed that
 * far, or it is a primary now (promoted: Patroni promotes only the
 * synchronous standby, which holds every acknowledged commit). */
static enum payq_pg_fault replayed(struct payq_ledger_reader *r, const char *lsn, bool *yes)
{
    PGresult *res = NULL;
    const char *p[1] = {lsn};
    enum payq_pg_fault f =
        run(r, "SELECT NOT pg_is_in_recovery() OR pg_last_wal_replay_lsn() >= $1::pg_lsn", 1, p,
            PGRES_TUPLES_OK, "check replay", &res);
    if (f == PAYQ_PG_OK)
        *yes = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return f;
}

/* A mark not replayed for LEDGER_REMARK_MS is taken again: the primary
 * that gave it may have been lost after flushing it and before sending it
 * (frozen, crashed), and no standby will ever receive it then. A new mark
 * from whichever primary answers now (the promoted one) is behind every
 * commit acknowledged before the marker just as well. */
static void remark(struct payq_ledger_reader *r, const struct payq_ledger_stats *st, char *lsn,
                   size_t len, int64_t waited_ms)
{
    char was[64];
    snprintf(was, sizeof was, "%s", lsn);
    if (primary_mark(r, lsn, len) == 0)
        payq_log(PAYQ_LOG_WARN, "ledger_replay_remark",
                 "the standby %s had not replayed up to %s after %lld ms: waiting for %s, a mark "
                 "from the primary answering now",
                 st->server, was, (long long)waited_ms, lsn);
}

/* The read server's replay up to a mark taken now on the primary (or, without
 * one, up to what it received), by t0 + timeout_ms. */
static enum step catch_up(struct payq_ledger_reader *r, int64_t t0, int timeout_ms,
                          struct payq_ledger_stats *st)
{
    PGresult *res = NULL;
    snprintf(st->server, sizeof st->server, "%s:%s", PQhost(r->conn), PQport(r->conn));
    enum payq_pg_fault f = run(r, "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text", 0,
                               NULL, PGRES_TUPLES_OK, "check recovery", &res);
    if (f != PAYQ_PG_OK)
        return step_of(r, f);
    st->standby = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    char lsn[64];
    snprintf(lsn, sizeof lsn, "%s", PQgetvalue(res, 0, 1));
    bool no_lsn = PQgetisnull(res, 0, 1);
    PQclear(res);
    if (!st->standby)
        return STEP_OK; /* a primary serves every commit */
    if (!no_lsn && primary_mark(r, lsn, sizeof lsn) != 0)
        payq_log(PAYQ_LOG_WARN, "ledger_replay_mark",
                 "no replay mark from the primary: waiting for what the standby received");
    if (no_lsn) {
        snprintf(r->err, sizeof r->err,
                 "the standby %s is not streaming from a primary, so "
                 "how current it is cannot be told",
                 st->server);
        payq_log(PAYQ_LOG_ERROR, "ledger_standby_stale", "%s", r->err);
        return STEP_FAILED;
    }
    for (int64_t marked = payq_clock_mono_ms();;) {
        bool caught_up = false;
        if ((f = replayed(r, lsn, &caught_up)) != PAYQ_PG_OK)
            return step_of(r, f);
        int64_t now = payq_clock_mono_ms();
        st->replay_wait_ms = now - t0;
        if (caught_up) {
            payq_log(PAYQ_LOG_INFO, "ledger_caught_up", "the read server %s holds %s (%lld ms)",
                     st->server, lsn, (long long)st->replay_wait_ms);
            return STEP_OK;
        }
        if (stopping(r))
            return STEP_FAILED;
        if (st->replay_wait_ms > timeout_ms) {
            snprintf(r->err, sizeof r->err, "the standby %s did not replay up to %s within %d ms",
                     st->server, lsn, timeout_ms);
            payq_log(PAYQ_LOG_ERROR, "ledger_replay_timeout", "%s", r->err);
            return STEP_FAILED;
        }
        if (now - marked >= LEDGER_REMARK_MS) {
            remark(r, st, lsn, sizeof lsn, st->replay_wait_ms);
            marked = payq_clock_mono_ms();
        }
        sleep_ms(LEDGER_REPLAY_POLL_MS);
    }
}

int payq_ledger_wait_replay(struct payq_ledger_reader *r, int timeout_ms,
                            struct payq_ledger_stats *st)
{
    int64_t t0 = payq_clock_mono_ms();
    enum step s = catch_up(r, t0, timeout_ms, st);
    for (int attempt = 1; s == STEP_LOST && attempt < LEDGER_ATTEMPTS && reopen(r) == 0; attempt++)
        s = catch_up(r, t0, timeout_ms, st);
    r->replay_timeout_ms = timeout_ms;
    r->caught_up = s == STEP_OK;
    return s == STEP_OK ? 0 : -1;
}

/* reopen, and after payq_ledger_wait_replay passed, its wait again on the
 * new server: lookups after it must see every commit before the mark. */
static int reopen_caught_up(struct payq_ledger_reader *r)
{
    if (reopen(r) != 0)
        return -1;
    struct payq_ledger_stats scratch = {0};
    return !r->caught_up ||
                   catch_up(r, payq_clock_mono_ms(), r->replay_timeout_ms, &scratch) == STEP_OK
               ? 0
               : -1;
}

int payq_ledger_unhex(const char *s, uint8_t out[32])
{
    if (s[0] == '\\' && s[1] == 'x')
        s += 2;
    for (int i = 0; i < 32; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return s[64] == '\0' ? 0 : -1;
}

/* The row's columns of SCAN_SQL, from column c0 on, as a record; pointers
 * stay valid while res does. */
static int to_rec(struct payq_ledger_reader *r, PGresult *res, int i, int c0,
                  struct payq_spill_rec *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->id = PQgetvalue(res, i, c0);
    rec->batch_id = PQgetvalue(res, i, c0 + 1);
    rec->debit = PQgetvalue(res, i, c0 + 2);
    rec->credit = PQgetvalue(res, i, c0 + 3);
    char *end;
    errno = 0;
    rec->amount = strtoll(PQgetvalue(res, i, c0 + 4), &end, 10);
    snprintf(rec->currency, sizeof rec->currency, "%s", PQgetvalue(res, i, c0 + 5));
    rec->status =
        strcmp(PQgetvalue(res, i, c0 + 6), "posted") == 0 ? PAYQ_SPILL_POSTED : PAYQ_SPILL_REJECTED;
    rec->reason = PQgetvalue(res, i, c0 + 7);
    if (errno || *end || payq_ledger_unhex(PQgetvalue(res, i, c0 + 8), rec->hash) != 0) {
        snprintf(r->err, sizeof r->err, "unreadable row for transfer \"%s\"", rec->id);
        payq_log(PAYQ_LOG_ERROR, "ledger_bad_row", "%s", r->err);
        return -1;
    }
    return 0;
}

/* Reads what is left of the COPY after a failure, so the session can roll
 * back: the server is asked to stop, and what it still sends is dropped. */
static void abandon_copy(struct payq_ledger_reader *r)
{
    /* Stopping, the waits below close the session instead: PQcancel
     * itself would wait for a frozen server. */
    PGcancel *cn = stop_waits(r) ? NULL : PQgetCancel(r->conn);
    char buf[256];
    if (cn) {
        PQcancel(cn, buf, sizeof buf);
        PQfreeCancel(cn);
    }
    char *msg;
    while (payq_pg_copy_data_alive(r->conn, &msg) > 0)
        PQfreemem(msg);
    PQclear(payq_pg_take_results_alive(r->conn));
}

/* Ends the read session's transaction after a failure, best effort: the
 * error is already logged. */
static void rollback(struct payq_ledger_reader *r)
{
    PQclear(payq_pg_exec_params_alive(r->conn, "ROLLBACK", 0, NULL));
}

/* Room for one row's strings, reused from row to row. */
struct copy_strs {
    char *data;
    size_t cap;
};

/* One CopyData message into the sink. Returns 0, 1 at the trailer, -1 on
 * failure (r->err set). */
static int copy_message(struct payq_ledger_reader *r, const char *msg, size_t len,
                        const struct payq_ledger_sink *sink, struct copy_strs *strs,
                        struct payq_ledger_stats *st)
{
    struct payq_spill_rec rec;
    const char *why = "";
    if (strs->cap < len + 16) {
        strs->cap = len + 16 > 1024 ? len + 16 : 1024;
        strs->data = payq_xrealloc(strs->data, strs->cap);
    }
    switch (payq_copy_row(msg, len, strs->data, strs->cap, &rec, &why)) {
    case PAYQ_COPY_NOTHING:
        return 0;
    case PAYQ_COPY_END:
        return 1;
    case PAYQ_COPY_ROW:
        break;
    case PAYQ_COPY_BAD:
        snprintf(r->err, sizeof r->err, "unreadable row after %llu rows: %s",
                 (unsigned long long)st->rows, why);
        payq_log(PAYQ_LOG_ERROR, "ledger_bad_row", "%s", r->err);
        return -1;
    }
    if (sink->row(sink->ctx, &rec) != 0) {
        snprintf(r->err, sizeof r->err, "could not keep the rows read (see log)");
        return -1;
    }
    st->rows++;
    return 0;
}

/* Reads the COPY to its end. */
static enum step copy_all(struct payq_ledger_reader *r, const struct payq_ledger_sink *sink,
                          struct payq_progress *prog, struct payq_ledger_stats *st)
{
    struct copy_strs strs = {NULL, 0};
    int rc = 0, n;
    char *msg;
    while (rc == 0 && (n = payq_pg_copy_data_alive(r->conn, &msg)) > 0) {
        rc = copy_message(r, msg, (size_t)n, sink, &strs, st);
        PQfreemem(msg);
        if (rc == 0 && st->rows % SCAN_PROGRESS_EVERY == 0) {
            payq_progress_update(prog, st->rows);
            if (stopping(r))
                rc = -1;
        }
    }
    free(strs.data);
    if (rc < 0) {
        abandon_copy(r);
        return STEP_FAILED;
    }
    if (rc == 1) /* the trailer: the end of the data follows */
        while ((n = payq_pg_copy_data_alive(r->conn, &msg)) > 0)
            PQfreemem(msg);
    PGresult *res = payq_pg_take_results_alive(r->conn);
    enum payq_pg_fault f = payq_pg_check(r->conn, res, PGRES_COMMAND_OK, "copy transfers");
    if (f != PAYQ_PG_OK)
        keep_error(r, r->conn, "copy transfers", res);
    PQclear(res);
    if (f == PAYQ_PG_OK && rc != 1) {
        snprintf(r->err, sizeof r->err, "copy transfers: the data ended without its trailer");
        payq_log(PAYQ_LOG_ERROR, "ledger_bad_row", "%s", r->err);
        return STEP_FAILED;
    }
    payq_progress_update(prog, st->rows);
    return step_of(r, f);
}

/* One pass of the day's rows in one read-only transaction. */
static enum step scan_once(struct payq_ledger_reader *r, const char *date,
                           const struct payq_ledger_sink *sink, struct payq_progress *prog,
                           struct payq_ledger_stats *st)
{
    const char *p[1] = {date};
    enum payq_pg_fault f = run(r, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL,
                               PGRES_COMMAND_OK, "begin", NULL);
    if (f == PAYQ_PG_OK)
        f = run(r, "SET LOCAL statement_timeout = '" SCAN_TIMEOUT "'", 0, NULL, PGRES_COMMAND_OK,
                "set timeout", NULL);
    if (f == PAYQ_PG_OK)
        f = run(r, SCAN_DATE_SQL, 1, p, PGRES_TUPLES_OK, "set the date", NULL);
    if (f == PAYQ_PG_OK)
        f = run(r, SCAN_SQL, 0, NULL, PGRES_COPY_OUT, "copy transfers", NULL);
    enum step s = f == PAYQ_PG_OK ? copy_all(r, sink, prog, st) : step_of(r, f);
    if (s == STEP_OK)
        s = step_of(r, run(r, "COMMIT", 0, NULL, PGRES_COMMAND_OK, "commit", NULL));
    if (s != STEP_OK && s != STEP_LOST)
        rollback(r);
    return s;
}

static void invariant_row(struct payq_breaks *b, PGresult *res, int i)
{
    struct payq_invariant_row v = {
        .currency_wide = strcmp(PQgetvalue(res, i, 0), "currency") == 0,
        .key = PQgetvalue(res, i, 1),
        .stored_debits = PQgetvalue(res, i, 2),
        .stored_credits = PQgetvalue(res, i, 3),
        .posted_debits = PQgetvalue(res, i, 4),
        .posted_credits = PQgetvalue(res, i, 5),
        .account_exists = strcmp(PQgetvalue(res, i, 6), "f") != 0,
    };
    payq_compare_invariant(b, &v);
}

/* One try of the invariants on a session of its own (pg.recon_conninfo:
 * payq.verify_books() writes its checkpoints), with INVARIANTS_TIMEOUT:
 * a full check reads every posted transfer of every date (about 1 s per
 * million rows here) and may outlast pg.statement_timeout. */
static enum payq_pg_fault invariants_once(struct payq_ledger_reader *r, PGresult **res)
{
    PGconn *c = payq_pg_connect(r->cfg->pg.recon_conninfo, "payq-reconciler-invariants");
    if (!c) {
        snprintf(r->err, sizeof r->err, "cannot connect with pg.recon_conninfo (see log)");
        r->recon_unreachable = true;
        return PAYQ_PG_FATAL;
    }
    char sql[sizeof INVARIANTS_SQL + 8];
    invariants_sql(r->full_invariants, sql, sizeof sql);
    enum payq_pg_fault f = run_on(r, c, "BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL,
                                  PGRES_COMMAND_OK, "begin", NULL);
    if (f == PAYQ_PG_OK)
        f = run_on(r, c, INVARIANTS_SETTINGS, 0, NULL, PGRES_TUPLES_OK, "set timeout", NULL);
    if (f == PAYQ_PG_OK)
        f = run_on(r, c, sql, 0, NULL, PGRES_TUPLES_OK, "check invariants", res);
    if (f == PAYQ_PG_OK) {
        f = run_on(r, c, "COMMIT", 0, NULL, PGRES_COMMAND_OK, "commit", NULL);
        if (f != PAYQ_PG_OK)
            PQclear(*res);
    }
    PQfinish(c); /* rolls back what did not commit */
    return f;
}

/* INVARIANTS_READ_SQL on the read session, in its own read-only
 * transaction with INVARIANTS_TIMEOUT. */
static enum payq_pg_fault invariants_read_once(struct payq_ledger_reader *r, PGresult **res)
{
    enum payq_pg_fault f = run(r, "BEGIN READ ONLY", 0, NULL, PGRES_COMMAND_OK, "begin", NULL);
    if (f == PAYQ_PG_OK)
        f = run(r, "SET LOCAL statement_timeout = '" INVARIANTS_TIMEOUT "'", 0, NULL,
                PGRES_COMMAND_OK, "set timeout", NULL);
    if (f == PAYQ_PG_OK)
        f = run(r, INVARIANTS_READ_SQL, 0, NULL, PGRES_TUPLES_OK, "check invariants", res);
    if (f == PAYQ_PG_OK) {
        f = run(r, "COMMIT", 0, NULL, PGRES_COMMAND_OK, "commit", NULL);
        if (f != PAYQ_PG_OK)
            PQclear(*res);
    }
    if (f != PAYQ_PG_OK)
        rollback(r);
    return f;
}

/* payq.verify_books() on the primary, rerun after a failure: what did not
 * commit moved nothing. When pg.recon_conninfo gives no session (a
 * failover under way), it is waited for, up to reconciler.primary_wait_s:
 * checking every date read-only instead reads the whole ledger. */
static enum payq_pg_fault invariants_on_primary(struct payq_ledger_reader *r, PGresult **res)
{
    int64_t deadline = payq_clock_mono_ms() + r->cfg->reconciler.primary_wait_s * 1000LL;
    struct payq_backoff wait;
    payq_backoff_init(&wait, 500, 5000);
    enum payq_pg_fault f = PAYQ_PG_RETRY;
    for (int attempt = 1; attempt <= LEDGER_ATTEMPTS &&
                          (f == PAYQ_PG_RETRY || f == PAYQ_PG_RECONNECT) && !stopping(r);) {
        r->recon_unreachable = false;
        f = invariants_once(r, res);
        if (!r->recon_unreachable) {
            attempt++;
            continue;
        }
        if (!payq_backoff_fits(&wait, deadline))
            break;
        payq_log(PAYQ_LOG_WARN, "invariants_wait_primary",
                 "no session with pg.recon_conninfo: waiting for a primary");
        if (payq_backoff_sleep(&wait, payq_signals_stop_requested) != 0)
            break;
        f = PAYQ_PG_RETRY;
    }
    return f;
}

static int check_invariants(struct payq_ledger_reader *r, struct payq_breaks *b)
{
    PGresult *res = collect_invariants(r);
    enum payq_pg_fault f = res ? PAYQ_PG_OK : invariants_on_primary(r, &res);
    if (f != PAYQ_PG_OK && r->recon_unreachable && !stopping(r)) {
        payq_log(PAYQ_LOG_WARN, "invariants_without_checkpoints",
                 "pg.recon_conninfo unreachable: checking every date read-only instead");
        r->err[0] = '\0';
        f = PAYQ_PG_RETRY;
        for (int attempt = 1; attempt <= LEDGER_ATTEMPTS && (f == PAYQ_PG_RETRY || lost(r, f));
             attempt++) {
            if (lost(r, f) && reopen(r) != 0)
                break;
            f = invariants_read_once(r, &res);
        }
    }
    if (f != PAYQ_PG_OK)
        return -1;
    for (int i = 0; i < PQntuples(res); i++)
        invariant_row(b, res, i);
    PQclear(res);
    return 0;
}

int payq_ledger_scan(struct payq_ledger_reader *r, const char *date,
                     const struct payq_ledger_sink *sink, struct payq_progress *prog,
                     struct payq_ledger_stats *st)
{
    int64_t t0 = payq_clock_mono_ms();
    enum step s = STEP_AGAIN;
    payq_progress_phase(prog, "ledger", "rows", 0);
    for (st->attempts = 0; (s == STEP_AGAIN || s == STEP_LOST) && st->attempts < LEDGER_ATTEMPTS;) {
        if (st->attempts > 0 && stopping(r))
            break;
        if (st->attempts++ > 0) {
            payq_log(PAYQ_LOG_WARN, "ledger_scan_restart", "attempt %d after: %s", st->attempts,
                     r->err);
            r->err[0] = '\0';
            st->rows = 0;
            if (sink->restart(sink->ctx) != 0) {
                snprintf(r->err, sizeof r->err, "could not start the scan over (see log)");
                return -1;
            }
            if (s == STEP_LOST && reopen(r) != 0)
                break;
        }
        s = scan_once(r, date, sink, prog, st);
    }
    payq_progress_clear(prog);
    st->scan_ms = payq_clock_mono_ms() - t0;
    st->read_ms += st->scan_ms;
    return s == STEP_OK ? 0 : -1;
}

void payq_ledger_cancel(struct payq_ledger_reader *r)
{
    atomic_store(&r->cancel, true);
}

int payq_ledger_check_invariants(struct payq_ledger_reader *r, struct payq_breaks *breaks,
                                 struct payq_ledger_stats *st)
{
    int64_t t0 = payq_clock_mono_ms();
    int rc = check_invariants(r, breaks);
    st->invariants_wait_ms = payq_clock_mono_ms() - t0;
    st->read_ms += st->invariants_wait_ms;
    return rc;
}

/* Runs sql with $1 = a text array of one chunk and calls row() per row. */
static int lookup(struct payq_ledger_reader *r, const char *sql, const char *what,
                  const struct payq_buf *arr, void (*row)(void *ctx, PGresult *res, int i),
                  void *ctx)
{
    PGresult *res = NULL;
    const char *p[1] = {arr->data};
    enum payq_pg_fault f = run(r, sql, 1, p, PGRES_TUPLES_OK, what, &res);
    for (int attempt = 1; lost(r, f) && attempt < LEDGER_ATTEMPTS; attempt++) {
        if (reopen_caught_up(r) != 0)
            return -1;
        f = run(r, sql, 1, p, PGRES_TUPLES_OK, what, &res);
    }
    if (f != PAYQ_PG_OK)
        return -1;
    for (int i = 0; i < PQntuples(res); i++)
        row(ctx, res, i);
    PQclear(res);
    return 0;
}

struct id_hits {
    struct payq_ledger_reader *r;
    void (*transfer)(void *ctx, const char *date, const struct payq_spill_rec *row);
    void (*conflict)(void *ctx, const char *id, const uint8_t hash[32]);
    void (*dead)(void *ctx, const uint8_t hash[32]);
    void *ctx;
};

static void transfer_row(void *ctx, PGresult *res, int i)
{
    struct id_hits *h = ctx;
    struct payq_spill_rec rec;
    if (to_rec(h->r, res, i, 1, &rec) == 0)
        h->transfer(h->ctx, PQgetvalue(res, i, 0), &rec);
}

static void conflict_row(void *ctx, PGresult *res, int i)
{
    struct id_hits *h = ctx;
    uint8_t hash[32];
    if (payq_ledger_unhex(PQgetvalue(res, i, 1), hash) == 0)
        h->conflict(h->ctx, PQgetvalue(res, i, 0), hash);
}

static void dead_row(void *ctx, PGresult *res, int i)
{
    struct id_hits *h = ctx;
    uint8_t hash[32];
    if (payq_ledger_unhex(PQgetvalue(res, i, 0), hash) == 0)
        h->dead(h->ctx, hash);
}

/* Looks ids up in chunks of LEDGER_LOOKUP_CHUNK. */
static int lookup_ids(struct payq_ledger_reader *r, const char *sql, const char *what,
                      const char *const *ids, size_t n,
                      void (*row)(void *ctx, PGresult *res, int i), struct id_hits *h)
{
    struct payq_buf arr = PAYQ_BUF_INIT;
    int rc = 0;
    for (size_t at = 0; at < n && rc == 0; at += LEDGER_LOOKUP_CHUNK) {
        payq_pgarr_begin(&arr);
        for (size_t i = at; i < n && i < at + LEDGER_LOOKUP_CHUNK; i++)
            payq_pgarr_str(&arr, ids[i]);
        payq_pgarr_end(&arr);
        rc = lookup(r, sql, what, &arr, row, h);
    }
    payq_buf_free(&arr);
    return rc;
}

int payq_ledger_find_transfers(struct payq_ledger_reader *r, const char *const *ids, size_t n,
                               void (*hit)(void *ctx, const char *date,
                                           const struct payq_spill_rec *row),
                               void *ctx)
{
    struct id_hits h = {.r = r, .transfer = hit, .ctx = ctx};
    return lookup_ids(
        r,
        "SELECT business_date::text, id, coalesce(batch_id, ''), debit_account, "
        "credit_account, amount::text, currency, status, coalesce(reason, ''), "
        "encode(payload_sha256, 'hex') FROM payq.transfers WHERE id = ANY($1::text[])",
        "look up transfers", ids, n, transfer_row, &h);
}

int payq_ledger_find_conflicts(struct payq_ledger_reader *r, const char *const *ids, size_t n,
                               void (*hit)(void *ctx, const char *id, const uint8_t hash[32]),
                               void *ctx)
{
    struct id_hits h = {.conflict = hit, .ctx = ctx};
    return lookup_ids(r,
                      "SELECT entity_id, encode(payload_sha256, 'hex') FROM payq.conflicts "
                      "WHERE kind = 'transfer' AND entity_id = ANY($1::text[])",
                      "look up conflicts", ids, n, conflict_row, &h);
}

int payq_ledger_find_dead(struct payq_ledger_reader *r, const uint8_t (*hashes)[32], size_t n,
                          void (*hit)(void *ctx, const uint8_t hash[32]), void *ctx)
{
    struct id_hits h = {.dead = hit, .ctx = ctx};
    struct payq_buf arr = PAYQ_BUF_INIT;
    int rc = 0;
    char hex[65];
    for (size_t at = 0; at < n && rc == 0; at += LEDGER_LOOKUP_CHUNK) {
        payq_pgarr_begin(&arr);
        for (size_t i = at; i < n && i < at + LEDGER_LOOKUP_CHUNK; i++) {
            payq_hash_hex(hashes[i], hex);
            payq_pgarr_str(&arr, hex);
        }
        payq_pgarr_end(&arr);
        rc = lookup(r,
                    "SELECT encode(body_sha256, 'hex') FROM payq.dead_letters "
                    "WHERE body_sha256 IN (SELECT decode(h, 'hex') FROM unnest($1::text[]) h)",
                    "look up dead letters", &arr, dead_row, &h);
    }
    payq_buf_free(&arr);
    return rc;
}

int payq_ledger_audit_start(struct payq_ledger_reader *r, const char *date, int64_t *offset)
{
    static const char sql[] = "SELECT s.indexed_to, (SELECT first_offset FROM payq.audit_index "
                              "WHERE business_date = $1::date) FROM payq.audit_index_state s";
    const char *p[1] = {date};
    PGresult *res = NULL;
    if (run(r, sql, 1, p, PGRES_TUPLES_OK, "read payq.audit_index", &res) != PAYQ_PG_OK)
        return -1;
    int found = PQntuples(res) == 1;
    if (found) {
        long long to = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        long long first = PQgetisnull(res, 0, 1) ? to : strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        *offset = first < to ? first : to;
    }
    PQclear(res);
    return found;
}
