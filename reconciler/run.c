/* run: the stages of one reconciliation, their sinks, and the verdict. */
#include "run.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "broker.h"
#include "clock.h"
#include "join.h"
#include "log.h"
#include "metrics.h"
#include "progress.h"
#include "report.h"
#include "run_record.h"
#include "signals.h"
#include "spill.h"

#define REPLAY_TIMEOUT_MS 60000

/* The ledger scan, on a thread of its own while the stream is read. */
struct scan_job {
    pthread_t tid;
    bool running;              /* the thread was started and not joined yet */
    int rc;                    /* payq_ledger_scan's */
    bool spill_failed;         /* written by the scan thread only */
    struct payq_progress prog; /* disabled: the terminal shows the stream */
};

struct run_ctx {
    struct payq_recon_outcome *run;
    struct payq_spill *spill;
    struct payq_ledger_reader *ledger;
    struct payq_progress prog;
    struct payq_buf undated; /* encoded spill records of undated transfers */
    struct payq_audit_invalid *inv;
    size_t ninv, inv_cap;
    bool spill_failed;             /* the audit side's, or the comparison's */
    struct payq_audit_index index; /* dates seen by a default read */
    struct scan_job scan;
};

/* Marks the run failed with "cannot <what>: <why>" (the CLI prints it). */
static int fail(struct run_ctx *x, const char *what, const char *why)
{
    snprintf(x->run->error, sizeof x->run->error, "cannot %s: %s", what, why);
    x->run->result = PAYQ_RESULT_FAILED;
    return -1;
}

/* ---- audit sink ---- */

static struct payq_spill_rec audit_rec(const struct payq_transfer *t, const uint8_t hash[32],
                                       uint64_t seq)
{
    struct payq_spill_rec r = {.id = t->id,
                               .batch_id = t->batch_id,
                               .debit = t->debit_account,
                               .credit = t->credit_account,
                               .reason = "",
                               .amount = t->amount,
                               .seq = seq,
                               .status = PAYQ_SPILL_NONE};
    memcpy(r.hash, hash, 32);
    memcpy(r.currency, t->currency, 4);
    r.body_dated = t->business_date[0] != '\0';
    return r;
}

static int sink_transfer(void *ctx, const struct payq_transfer *t, const uint8_t hash[32],
                         uint64_t seq)
{
    struct run_ctx *x = ctx;
    struct payq_spill_rec r = audit_rec(t, hash, seq);
    if (payq_spill_put(x->spill, PAYQ_SPILL_AUDIT, &r) != 0) {
        x->spill_failed = true;
        return -1;
    }
    return 0;
}

static int sink_undated(void *ctx, const struct payq_transfer *t, const uint8_t hash[32],
                        uint64_t seq)
{
    struct run_ctx *x = ctx;
    struct payq_spill_rec r = audit_rec(t, hash, seq);
    payq_spill_encode(&x->undated, &r);
    return 0;
}

static void sink_manifest(void *ctx, const struct payq_manifest *m)
{
    struct run_ctx *x = ctx;
    payq_tally_manifest(&x->run->tally, m);
}

/* Undecodable messages are few (each is a producer's mistake): they are
 * kept in memory until they can be looked up. */
static void sink_invalid(void *ctx, const struct payq_audit_invalid *inv)
{
    struct run_ctx *x = ctx;
    if (x->ninv == x->inv_cap) {
        x->inv_cap = x->inv_cap ? x->inv_cap * 2 : 64;
        x->inv = payq_xreallocarray(x->inv, x->inv_cap, sizeof *x->inv);
    }
    x->inv[x->ninv++] = *inv;
}

/* ---- ledger sink ---- */

static int sink_row(void *ctx, const struct payq_spill_rec *r)
{
    struct run_ctx *x = ctx;
    if (payq_spill_put(x->spill, PAYQ_SPILL_LEDGER, r) != 0) {
        x->scan.spill_failed = true;
        return -1;
    }
    return 0;
}

static int sink_restart(void *ctx)
{
    struct run_ctx *x = ctx;
    return payq_spill_reset(x->spill, PAYQ_SPILL_LEDGER);
}

/* Drops what a partial read of the audit stream kept, before reading it
 * again from the start. Returns 0 or -1 (spill write failed, logged). */
static int audit_forget(struct run_ctx *x)
{
    payq_buf_reset(&x->undated);
    payq_audit_index_free(&x->index); /* the new read notes every date again */
    memset(&x->index, 0, sizeof x->index);
    x->ninv = 0;
    payq_tally_free(&x->run->tally);
    payq_tally_init(&x->run->tally);
    return payq_spill_reset(x->spill, PAYQ_SPILL_AUDIT);
}

/* ---- stages ---- */

/* With default options the read starts where payq.audit_index says the
 * date's first message is (or at the stream's first message before any
 * run indexed it), so a transfer published long before its business date
 * is still read; the lookback window is the fallback. */
static void choose_start(struct run_ctx *x, struct payq_audit_req *req)
{
    int64_t offset;
    switch (payq_ledger_audit_start(x->ledger, x->run->opts->date, &offset)) {
    case 1:
        req->from_offset = offset;
        req->index = &x->index;
        break;
    case 0:
        req->from_first = true;
        req->index = &x->index;
        break;
    default:
        payq_log(PAYQ_LOG_WARN, "audit_index_unavailable",
                 "reading the stream from reconciler.lookback_hours before the date");
        break;
    }
}

/* Notes where each date seen starts, for the next runs. A failure costs
 * the next run a longer read, not correctness: it is only logged. */
static void index_stream(struct run_ctx *x, const struct payq_audit_req *req)
{
    const struct payq_audit_stats *a = &x->run->audit;
    if (!req->index || a->marker_offset < 0)
        return;
    int64_t from = req->from_first ? 0 : req->from_offset;
    if (a->first_offset >= 0 && a->first_offset < from)
        from = a->first_offset;
    char why[512];
    if (payq_run_record_index(x->run->cfg, from, a->marker_offset, req->index, why, sizeof why) !=
        0)
        payq_log(PAYQ_LOG_WARN, "audit_index_not_recorded", "%s", why);
}
/* Reads of the audit stream when the broker goes away mid-read (a cluster
 * node lost): each starts over on the next node that answers. */
#define AUDIT_READS 3

/* Where the stream read starts; uses the ledger session, so before the
 * scan takes it. */
static struct payq_audit_req plan_audit(struct run_ctx *x)
{
    struct payq_recon_outcome *run = x->run;
    struct payq_audit_req req = {.cfg = run->cfg,
                                 .date = run->opts->date,
                                 .from_first = run->opts->from_first,
                                 .from_offset = -1,
                                 .from_s = run->opts->from_s};
    if (run->opts->use_index)
        choose_start(x, &req);
    return req;
}

static int read_audit(struct run_ctx *x, const struct payq_audit_req *rq)
{
    struct payq_recon_outcome *run = x->run;
    struct payq_audit_req req = *rq;
    struct payq_audit_sink sink = {x, sink_transfer, sink_undated, sink_manifest, sink_invalid};
    char why[512];
    for (int attempt = 1;; attempt++) {
        if (payq_audit_read(&req, &sink, &x->prog, &run->audit, why, sizeof why) == 0)
            break;
        if (x->spill_failed || !run->audit.broker_lost || attempt == AUDIT_READS ||
            payq_signals_stop_requested())
            return fail(x, x->spill_failed ? "use the spill directory" : "read the audit stream",
                        x->spill_failed ? "a write failed (see log)" : why);
        payq_log(PAYQ_LOG_WARN, "audit_reread",
                 "the broker went away after %llu messages (%s): reading the stream again from "
                 "the start, attempt %d of %d",
                 (unsigned long long)run->audit.messages, why, attempt + 1, AUDIT_READS);
        if (audit_forget(x) != 0)
            return fail(x, "use the spill directory", "a write failed (see log)");
    }
    if (payq_spill_flush(x->spill, PAYQ_SPILL_AUDIT) != 0)
        return fail(x, "use the spill directory", "a write failed (see log)");
    run->audit_read = true;
    index_stream(x, &req);
    return 0;
}

static int read_queues(struct run_ctx *x)
{
    char why[512];
    if (payq_queues_read(x->run->cfg, &x->run->queues, why, sizeof why) != 0)
        return fail(x, "read the queue depths", why);
    x->run->queues_read = true;
    return 0;
}

static void *scan_main(void *arg)
{
    struct run_ctx *x = arg;
    struct payq_ledger_sink sink = {x, sink_row, sink_restart};
    payq_ledger_stop_waits(x->ledger);
    x->scan.rc =
        payq_ledger_scan(x->ledger, x->run->opts->date, &sink, &x->scan.prog, &x->run->ledger);
    return NULL;
}

/* The day's rows are scanned while the stream is read, instead of after
 * its marker: the run then lasts the longer of the two, not their sum.
 * What commits after the scan's snapshot is still compared in full: every
 * audited id the scan did not hold is looked up by id after the marker
 * (and after the standby replayed up to a mark the primary gave after it),
 * and a row
 * of the date found so is compared as a scanned one (compare.c). The
 * thread blocks the signals, which stay with the main thread's loop. If it
 * cannot be started, the scan runs in finish_ledger instead. */
static void start_scan(struct run_ctx *x)
{
    sigset_t all, old;
    payq_progress_init(&x->scan.prog, false);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    x->scan.running = pthread_create(&x->scan.tid, NULL, scan_main, x) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!x->scan.running)
        payq_log(PAYQ_LOG_WARN, "ledger_scan_thread",
                 "cannot start the scan's thread: scanning after the stream");
}

static void join_scan(struct run_ctx *x)
{
    if (x->scan.running)
        pthread_join(x->scan.tid, NULL);
    x->scan.running = false;
}

/* Stops the scan when the run failed before it was needed. */
static void stop_scan(struct run_ctx *x)
{
    if (!x->scan.running)
        return;
    payq_ledger_cancel(x->ledger);
    join_scan(x);
}

/* The scan's outcome (or the scan itself when no thread ran it), then the
 * standby's replay up to a mark taken after the marker (for the lookups),
 * then the books' invariants. */
static int finish_ledger(struct run_ctx *x)
{
    struct payq_recon_outcome *run = x->run;
    bool threaded = x->scan.running;
    join_scan(x);
    if (!threaded)
        scan_main(x);
    if (x->scan.rc != 0)
        return fail(x, x->scan.spill_failed ? "use the spill directory" : "read the ledger",
                    x->scan.spill_failed ? "a write failed (see log)"
                                         : payq_ledger_error(x->ledger));
    if (payq_spill_flush(x->spill, PAYQ_SPILL_LEDGER) != 0)
        return fail(x, "use the spill directory", "a write failed (see log)");
    if (payq_ledger_wait_replay(x->ledger, REPLAY_TIMEOUT_MS, &run->ledger) != 0 ||
        payq_ledger_check_invariants(x->ledger, &run->breaks, &run->ledger) != 0)
        return fail(x, "read the ledger", payq_ledger_error(x->ledger));
    run->ledger_read = true;
    return 0;
}

static int compare(struct run_ctx *x)
{
    struct payq_recon_outcome *run = x->run;
    int64_t t0 = payq_clock_mono_ms();
    struct payq_join j = {.spill = x->spill,
                          .ledger = x->ledger,
                          .prog = &x->prog,
                          .cmp = {.tally = &run->tally,
                                  .breaks = &run->breaks,
                                  .date = run->opts->date,
                                  .pending = payq_queues_pending(&run->queues)}};
    int rc = payq_join_undated(&j, &x->undated);
    if (rc == 0 && (rc = payq_spill_flush(x->spill, PAYQ_SPILL_AUDIT)) != 0)
        snprintf(j.err, sizeof j.err, "cannot write the spill files (see log)");
    if (rc == 0)
        rc = payq_join_dead(&j, x->inv, x->ninv);
    if (rc == 0)
        rc = payq_join_buckets(&j);
    run->cmp = j.cmp.st;
    run->spill_bytes = payq_spill_bytes(x->spill);
    if (rc != 0)
        return fail(x, "compare with the ledger", j.err);
    payq_tally_check_batches(&run->tally, &run->breaks, run->opts->date);
    run->result = payq_recon_verdict(&run->breaks);
    run->compare_ms = payq_clock_mono_ms() - t0;
    return 0;
}

/* ---- the whole run ---- */

static int prepare(struct run_ctx *x)
{
    struct payq_recon_outcome *run = x->run;
    const struct payq_config *cfg = run->cfg;
    char path[4200], why[512];
    if (payq_spill_new(cfg->reconciler.spill_dir, cfg->reconciler.buckets, &x->spill) != 0)
        return fail(x, "use the spill directory", cfg->reconciler.spill_dir);
    const char *csv = NULL; /* only the csv report lists every break */
    if (run->opts->format == PAYQ_REPORT_CSV)
        csv = payq_spill_path(x->spill, "breaks.csv", path, sizeof path);
    if (payq_breaks_init(&run->breaks, (size_t)cfg->reconciler.examples, csv) != 0)
        return fail(x, "use the spill directory", "cannot create the list of breaks");
    if (payq_ledger_open(cfg, run->opts->full_invariants, &x->ledger, why, sizeof why) != 0)
        return fail(x, "read the ledger", why);
    return 0;
}

static void log_summary(const struct payq_recon_outcome *run)
{
    struct payq_log_rec r;
    payq_log_begin(&r, run->result == PAYQ_RESULT_FAILED ? PAYQ_LOG_ERROR : PAYQ_LOG_INFO,
                   "reconciliation_finished");
    payq_log_str(&r, "date", run->opts->date);
    payq_log_str(&r, "result", payq_recon_result_name(run->result));
    payq_log_int(&r, "breaks", (long long)payq_breaks_total(&run->breaks));
    payq_log_int(&r, "in_flight", (long long)run->breaks.count[PAYQ_BREAK_IN_FLIGHT]);
    payq_log_int(&r, "audit_messages", (long long)run->audit.messages);
    payq_log_int(&r, "ledger_rows", (long long)run->ledger.rows);
    payq_log_num(&r, "seconds", (double)(run->finished_ms - run->started_ms) / 1000.0);
    if (run->result == PAYQ_RESULT_FAILED)
        payq_log_str(&r, "error", run->error);
    payq_log_end(&r);
}

int payq_recon_run(const struct payq_config *cfg, const struct payq_recon_opts *opts)
{
    static struct payq_recon_outcome run; /* large; one per process */
    memset(&run, 0, sizeof run);
    run.cfg = cfg;
    run.opts = opts;
    run.started_ms = payq_clock_wall_ms();
    /* Only a comparison that ran to the end sets another verdict. */
    run.result = PAYQ_RESULT_FAILED;
    snprintf(run.error, sizeof run.error, "the run did not finish");
    payq_tally_init(&run.tally);
    struct run_ctx x = {.run = &run, .undated = PAYQ_BUF_INIT};
    payq_progress_init(&x.prog, isatty(STDERR_FILENO) == 1);

    struct payq_report_out out;
    if (payq_report_open(&out, opts->out_path) != 0) {
        fprintf(stderr, "payq-reconciler: cannot write the report to \"%s\": %s\n", opts->out_path,
                strerror(errno));
        return 2;
    }
    if (prepare(&x) == 0) {
        payq_ledger_stop_waits(x.ledger);
        struct payq_audit_req req = plan_audit(&x);
        start_scan(&x);
        if (read_audit(&x, &req) == 0 && read_queues(&x) == 0 && finish_ledger(&x) == 0)
            compare(&x);
        stop_scan(&x);
        payq_ledger_stop_waits(NULL);
    }
    payq_ledger_close(x.ledger);
    /* Whichever step noticed the stop first, the run failed for it. */
    if (run.result == PAYQ_RESULT_FAILED && payq_signals_stop_requested())
        snprintf(run.error, sizeof run.error, "stopped by SIGTERM or SIGINT before it finished");
    run.finished_ms = payq_clock_wall_ms();
    char unrecorded[512] = "";
    run.recorded = payq_run_record(&run, unrecorded, sizeof unrecorded) == 0;
    int rc = payq_recon_exit_code(run.result);
    /* The CSV list of breaks lives in the spill directory: report first. */
    bool written = payq_report_write(&run, &out) == 0;
    char metrics_err[4400] = "";
    bool metrics_ok =
        !opts->metrics_path ||
        payq_recon_metrics_write(&run, opts->metrics_path, metrics_err, sizeof metrics_err) == 0;
    payq_spill_free(x.spill);
    log_summary(&run);
    if (run.result == PAYQ_RESULT_FAILED)
        fprintf(stderr, "payq-reconciler: %s\n", run.error);
    else if (!run.recorded)
        fprintf(stderr, "payq-reconciler: cannot record the run in payq.reconciliations: %s\n",
                unrecorded);
    else if (!written)
        fprintf(stderr, "payq-reconciler: cannot write the report (see log)\n");
    else if (!metrics_ok)
        fprintf(stderr, "payq-reconciler: %s\n", metrics_err);
    /* A verdict nobody can read is no verdict; a run missing from the
     * history is a run that did not complete. */
    if (!written || !run.recorded || !metrics_ok)
        rc = 2;
    payq_breaks_free(&run.breaks);
    payq_tally_free(&run.tally);
    payq_buf_free(&x.undated);
    free(x.inv);
    payq_audit_index_free(&x.index);
    return rc;
}
