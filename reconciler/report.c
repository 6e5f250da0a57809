/* report: JSON and CSV forms, the counts object, and atomic output. */
#include "report.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "report_text.h"

int payq_report_open(struct payq_report_out *o, const char *path)
{
    memset(o, 0, sizeof *o);
    if (!path) {
        o->f = stdout;
        return 0;
    }
    if (snprintf(o->path, sizeof o->path, "%s", path) >= (int)sizeof o->path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    snprintf(o->tmp, sizeof o->tmp, "%s.partial", path);
    o->f = fopen(o->tmp, "w");
    return o->f ? 0 : -1;
}

static void j_u64(struct payq_buf *b, const char *key, uint64_t v, bool comma)
{
    payq_buf_printf(b, "%s\"%s\":%llu", comma ? "," : "", key, (unsigned long long)v);
}

static void j_str(struct payq_buf *b, const char *key, const char *v, bool comma)
{
    payq_buf_printf(b, "%s\"%s\":", comma ? "," : "", key);
    payq_buf_json_str(b, v);
}

/* {"count":n,"amount":"digits"} */
static void j_sum(struct payq_buf *b, const char *key, uint64_t n, __int128 sum, bool comma)
{
    char s[PAYQ_TALLY_SUM_MAX];
    payq_buf_printf(b, "%s\"%s\":{\"count\":%llu,\"amount\":\"%s\"}", comma ? "," : "", key,
                    (unsigned long long)n, payq_tally_format(sum, s));
}

void payq_report_counts(const struct payq_recon_outcome *run, struct payq_buf *b)
{
    const struct payq_audit_stats *a = &run->audit;
    const struct payq_compare_stats *c = &run->cmp;
    payq_buf_putc(b, '{');
    j_str(b, "result", payq_recon_result_name(run->result), false);
    j_u64(b, "audit_messages", a->messages, true);
    j_u64(b, "audit_packs", a->packs, true);
    j_u64(b, "audit_transfers_of_date", c->audit_records, true);
    j_u64(b, "audit_distinct_transfers", c->audit_ids, true);
    j_u64(b, "audit_duplicates", c->duplicates, true);
    j_u64(b, "audit_undated", a->undated, true);
    j_u64(b, "audit_undecodable", a->invalid, true);
    j_u64(b, "manifests", a->manifests, true);
    j_u64(b, "invalid_manifests", a->invalid_manifests, true);
    j_u64(b, "batches", run->tally.nbatches, true);
    j_u64(b, "ledger_rows", run->ledger.rows, true);
    j_u64(b, "matched", c->matched, true);
    j_u64(b, "booked_on_other_date", c->elsewhere, true);
    j_u64(b, "dead_lettered", c->dead_found, true);
    j_u64(b, "breaks_total", payq_breaks_total(&run->breaks), true);
    payq_buf_puts(b, ",\"breaks\":{");
    for (int k = 0; k < PAYQ_BREAK_NCAT; k++)
        j_u64(b, payq_break_cat_name(k), run->breaks.count[k], k > 0);
    payq_buf_puts(b, "}}");
}

static void j_queue(struct payq_buf *b, const char *name, const struct payq_queue_depth *q,
                    bool comma)
{
    payq_buf_printf(b, "%s\"%s\":{\"ready\":%lld,\"unacked\":%lld,\"consumers\":%lld}",
                    comma ? "," : "", name, (long long)q->ready, (long long)q->unacked,
                    (long long)q->consumers);
}

static void j_sources(const struct payq_recon_outcome *run, struct payq_buf *b)
{
    payq_buf_puts(b, ",\"sources\":{\"audit\":{");
    payq_buf_printf(b, "\"read\":%s", run->audit_read ? "true" : "false");
    j_str(b, "stream", PAYQ_STREAM_AUDIT, true);
    j_str(b, "from", run->audit.from, true);
    j_str(b, "marker", run->audit.marker_id, true);
    j_u64(b, "messages", run->audit.messages, true);
    j_u64(b, "ms", (uint64_t)run->audit.read_ms, true);
    payq_buf_printf(b, "},\"queues\":{\"read\":%s", run->queues_read ? "true" : "false");
    j_queue(b, PAYQ_QUEUE_TRANSFERS, &run->queues.transfers, true);
    j_queue(b, PAYQ_QUEUE_DEAD, &run->queues.dead, true);
    payq_buf_printf(b, "},\"ledger\":{\"read\":%s", run->ledger_read ? "true" : "false");
    j_str(b, "server", run->ledger.server, true);
    payq_buf_printf(b, ",\"standby\":%s", run->ledger.standby ? "true" : "false");
    j_u64(b, "replay_wait_ms", (uint64_t)run->ledger.replay_wait_ms, true);
    j_u64(b, "rows", run->ledger.rows, true);
    j_u64(b, "attempts", (uint64_t)run->ledger.attempts, true);
    j_u64(b, "ms", (uint64_t)run->ledger.read_ms, true);
    j_u64(b, "scan_ms", (uint64_t)run->ledger.scan_ms, true);
    j_u64(b, "invariants_wait_ms", (uint64_t)run->ledger.invariants_wait_ms, true);
    payq_buf_puts(b, "},\"compare\":{");
    j_u64(b, "ms", (uint64_t)run->compare_ms, false);
    payq_buf_puts(b, "}}");
}

static void j_currency(const struct payq_ccy_tally *c, struct payq_buf *b, bool comma)
{
    payq_buf_printf(b, "%s\"%s\":{", comma ? "," : "", c->currency);
    j_sum(b, "audited", c->audited_n, c->audited_sum, false);
    j_sum(b, "posted", c->posted_n, c->posted_sum, true);
    j_sum(b, "rejected", c->rejected_n, c->rejected_sum, true);
    payq_buf_puts(b, ",\"rejected_by_reason\":{");
    for (size_t i = 0; i < c->nreasons; i++)
        j_sum(b, c->reasons[i].reason, c->reasons[i].n, c->reasons[i].sum, i > 0);
    payq_buf_putc(b, '}');
    j_sum(b, "dead_lettered", c->dead_n, c->dead_sum, true);
    payq_buf_putc(b, '}');
}

static void j_batch(const struct payq_batch_tally *t, struct payq_buf *b, bool comma)
{
    char s[PAYQ_TALLY_SUM_MAX];
    payq_buf_puts(b, comma ? ",{" : "{");
    j_str(b, "batch_id", t->batch_id, false);
    if (t->has_manifest) {
        payq_buf_printf(b, ",\"manifest\":{\"count\":%lld,\"totals\":{", (long long)t->m_count);
        for (size_t i = 0; i < t->m_ntotals; i++)
            payq_buf_printf(b, "%s\"%s\":\"%lld\"", i ? "," : "", t->m_totals[i].currency,
                            (long long)t->m_totals[i].sum);
        payq_buf_printf(b, "},\"several\":%s}", t->manifest_conflict ? "true" : "false");
    } else {
        payq_buf_puts(b, ",\"manifest\":null");
    }
    payq_buf_printf(b, ",\"audited\":{\"count\":%llu,\"totals\":{",
                    (unsigned long long)t->audited_n);
    for (size_t i = 0; i < t->nsums; i++)
        payq_buf_printf(b, "%s\"%s\":\"%s\"", i ? "," : "", t->sums[i].currency,
                        payq_tally_format(t->sums[i].sum, s));
    payq_buf_printf(b, "}},\"ledger\":{\"posted\":%llu,\"rejected\":%llu}}",
                    (unsigned long long)t->posted_n, (unsigned long long)t->rejected_n);
}

static void j_breaks(const struct payq_breaks *br, struct payq_buf *b)
{
    bool comma = false;
    payq_buf_puts(b, ",\"breaks\":[");
    for (int k = 0; k < PAYQ_BREAK_NCAT; k++) {
        uint64_t n = br->count[k] < br->max_examples ? br->count[k] : br->max_examples;
        for (uint64_t i = 0; i < n; i++, comma = true) {
            const struct payq_break *e = &br->examples[k][i];
            payq_buf_puts(b, comma ? ",{" : "{");
            j_str(b, "category", payq_break_cat_name(e->cat), false);
            j_str(b, "id", e->id, true);
            j_str(b, "batch_id", e->batch_id, true);
            j_str(b, "field", e->field, true);
            j_str(b, "expected", e->expected, true);
            j_str(b, "actual", e->actual, true);
            j_str(b, "detail", e->detail, true);
            payq_buf_putc(b, '}');
        }
    }
    payq_buf_putc(b, ']');
    j_u64(b, "examples_per_category", br->max_examples, true);
}

static void write_json(const struct payq_recon_outcome *run, struct payq_buf *b)
{
    char t0[32], t1[32];
    payq_recon_iso_time(run->started_ms, t0);
    payq_recon_iso_time(run->finished_ms, t1);
    payq_buf_putc(b, '{');
    j_str(b, "date", run->opts->date, false);
    j_str(b, "started", t0, true);
    j_str(b, "finished", t1, true);
    j_str(b, "result", payq_recon_result_name(run->result), true);
    if (run->result == PAYQ_RESULT_FAILED)
        j_str(b, "error", run->error, true);
    payq_buf_printf(b, ",\"recorded\":%s", run->recorded ? "true" : "false");
    j_sources(run, b);
    payq_buf_puts(b, ",\"counts\":");
    payq_report_counts(run, b);
    /* A failed run's totals and breaks are partial: show none rather than
     * figures that look final. */
    bool whole = run->result != PAYQ_RESULT_FAILED;
    payq_buf_puts(b, ",\"totals\":{");
    for (size_t i = 0; whole && i < run->tally.nccy; i++)
        j_currency(&run->tally.ccy[i], b, i > 0);
    payq_buf_puts(b, "},\"batches\":[");
    for (size_t i = 0; whole && i < run->tally.nbatches; i++)
        j_batch(&run->tally.batches[i], b, i > 0);
    payq_buf_putc(b, ']');
    if (whole)
        j_breaks(&run->breaks, b);
    else
        payq_buf_puts(b, ",\"breaks\":[]");
    payq_buf_puts(b, "}\n");
}

/* Flushes, closes and renames; reports the first failure. */
static int finish(struct payq_report_out *o, int rc)
{
    errno = 0;
    if (fflush(o->f) != 0 || ferror(o->f))
        rc = -1;
    if (!o->path[0])
        return rc;
    if (fclose(o->f) != 0)
        rc = -1;
    if (rc == 0 && rename(o->tmp, o->path) != 0)
        rc = -1;
    if (rc != 0) {
        payq_log(PAYQ_LOG_ERROR, "report_failed", "could not write file \"%s\": %s", o->path,
                 errno ? strerror(errno) : "incomplete list of breaks");
        unlink(o->tmp);
    }
    return rc;
}

int payq_report_write(struct payq_recon_outcome *run, struct payq_report_out *o)
{
    int rc = 0;
    payq_tally_sort(&run->tally);
    if (run->opts->format == PAYQ_REPORT_JSON) {
        struct payq_buf b = PAYQ_BUF_INIT;
        write_json(run, &b);
        fwrite(b.data, 1, b.len, o->f);
        payq_buf_free(&b);
    } else if (run->opts->format == PAYQ_REPORT_CSV) {
        rc = payq_breaks_write_csv(&run->breaks, o->f);
    } else {
        payq_report_text(run, o->f);
    }
    return finish(o, rc);
}
