/* report_text: sources, totals, batches, breaks and the verdict as text. */
#include "report_text.h"

#include <string.h>

#include "broker.h"

/* "count / amount" of one column. */
static const char *cell(uint64_t n, __int128 sum, char *buf, size_t len)
{
    char s[PAYQ_TALLY_SUM_MAX];
    snprintf(buf, len, "%llu / %s", (unsigned long long)n, payq_tally_format(sum, s));
    return buf;
}

static void text_sources(const struct payq_recon_outcome *run, FILE *f)
{
    const char *from =
        strcmp(run->audit.from, "first") == 0 ? "its first message" : run->audit.from;
    fputs("Sources\n", f);
    if (run->audit_read)
        fprintf(f,
                "  audit stream  %s from %s up to marker %s: %llu messages, %llu transfers "
                "of the date (%llu identical copies dropped), %llu undecodable, %llu manifests\n",
                PAYQ_STREAM_AUDIT, from, run->audit.marker_id,
                (unsigned long long)run->audit.messages, (unsigned long long)run->cmp.audit_records,
                (unsigned long long)run->cmp.duplicates, (unsigned long long)run->audit.invalid,
                (unsigned long long)run->audit.manifests);
    else
        fputs("  audit stream  NOT READ COMPLETELY\n", f);
    if (run->queues_read)
        fprintf(f, "  queues        %s %lld ready, %lld unacked; %s %lld ready\n",
                PAYQ_QUEUE_TRANSFERS, (long long)run->queues.transfers.ready,
                (long long)run->queues.transfers.unacked, PAYQ_QUEUE_DEAD,
                (long long)(run->queues.dead.ready + run->queues.dead.unacked));
    else
        fputs("  queues        NOT READ\n", f);
    if (run->ledger_read)
        fprintf(f, "  ledger        %s (%s, replay waited %lld ms): %llu rows of the date\n",
                run->ledger.server, run->ledger.standby ? "standby" : "primary",
                (long long)run->ledger.replay_wait_ms, (unsigned long long)run->ledger.rows);
    else
        fputs("  ledger        NOT READ\n", f);
}

static void text_totals(const struct payq_tally *t, FILE *f)
{
    char a[64], p[64], r[64], d[64];
    fputs("\nTotals per currency (count / amount in minor units)\n", f);
    fprintf(f, "  %-4s %-28s %-28s %-28s %s\n", "CUR", "audited", "posted", "rejected",
            "dead-lettered");
    for (size_t i = 0; i < t->nccy; i++) {
        const struct payq_ccy_tally *c = &t->ccy[i];
        fprintf(f, "  %-4s %-28s %-28s %-28s %s\n", c->currency,
                cell(c->audited_n, c->audited_sum, a, sizeof a),
                cell(c->posted_n, c->posted_sum, p, sizeof p),
                cell(c->rejected_n, c->rejected_sum, r, sizeof r),
                cell(c->dead_n, c->dead_sum, d, sizeof d));
        for (size_t k = 0; k < c->nreasons; k++)
            fprintf(f, "       rejected %-24s %s\n", c->reasons[k].reason,
                    cell(c->reasons[k].n, c->reasons[k].sum, r, sizeof r));
    }
    if (t->nccy == 0)
        fputs("  (no transfers)\n", f);
}

static void text_batch(const struct payq_batch_tally *b, FILE *f)
{
    char s[PAYQ_TALLY_SUM_MAX];
    fprintf(f, "  %-24s manifest ", b->batch_id);
    if (!b->has_manifest)
        fputs("none", f);
    else
        fprintf(f, "%lld", (long long)b->m_count);
    for (size_t i = 0; i < b->m_ntotals; i++)
        fprintf(f, " %s %lld", b->m_totals[i].currency, (long long)b->m_totals[i].sum);
    fprintf(f, " | audited %llu", (unsigned long long)b->audited_n);
    for (size_t i = 0; i < b->nsums; i++)
        fprintf(f, " %s %s", b->sums[i].currency, payq_tally_format(b->sums[i].sum, s));
    fprintf(f, " | ledger %llu posted, %llu rejected\n", (unsigned long long)b->posted_n,
            (unsigned long long)b->rejected_n);
}

static void text_breaks(const struct payq_breaks *br, FILE *f)
{
    fputs("\nBreaks\n", f);
    for (int k = 0; k < PAYQ_BREAK_NCAT; k++) {
        if (!br->count[k])
            continue;
        uint64_t n = br->count[k] < br->max_examples ? br->count[k] : br->max_examples;
        fprintf(f, "  %s: %llu%s\n", payq_break_cat_name(k), (unsigned long long)br->count[k],
                n < br->count[k] ? " (first ones shown)" : "");
        for (uint64_t i = 0; i < n; i++) {
            const struct payq_break *e = &br->examples[k][i];
            fprintf(f, "    %s%s%s%s", e->id[0] ? e->id : "-", e->batch_id[0] ? " (batch " : "",
                    e->batch_id, e->batch_id[0] ? ")" : "");
            if (e->field[0])
                fprintf(f, " %s: expected \"%s\", found \"%s\"", e->field, e->expected, e->actual);
            fprintf(f, " - %s\n", e->detail);
        }
    }
    if (payq_breaks_total(br) == 0 && br->count[PAYQ_BREAK_IN_FLIGHT] == 0)
        fputs("  none\n", f);
}

static void text_verdict(const struct payq_recon_outcome *run, FILE *f)
{
    fputs("\nVerdict: ", f);
    switch (run->result) {
    case PAYQ_RESULT_BALANCED:
        fputs("BALANCED: every source read completely, no breaks\n", f);
        break;
    case PAYQ_RESULT_BREAKS:
        fprintf(f, "BREAKS: %llu break(s) to investigate\n",
                (unsigned long long)payq_breaks_total(&run->breaks));
        break;
    case PAYQ_RESULT_IN_FLIGHT:
        fprintf(f, "IN FLIGHT: %llu transfer(s) not applied yet; run again once %s is empty\n",
                (unsigned long long)run->breaks.count[PAYQ_BREAK_IN_FLIGHT], PAYQ_QUEUE_TRANSFERS);
        break;
    case PAYQ_RESULT_FAILED:
        fprintf(f, "FAILED: %s\n", run->error);
        break;
    }
    if (!run->recorded)
        fputs("NOT COMPLETE: this run could not be recorded in payq.reconciliations (exit 2, "
              "see log)\n",
              f);
}

void payq_report_text(const struct payq_recon_outcome *run, FILE *f)
{
    char t0[32], t1[32];
    payq_recon_iso_time(run->started_ms, t0);
    payq_recon_iso_time(run->finished_ms, t1);
    fprintf(f, "payq reconciliation of %s\nstarted %s, finished %s (%.1f s)\n\n", run->opts->date,
            t0, t1, (double)(run->finished_ms - run->started_ms) / 1000.0);
    text_sources(run, f);
    if (run->result != PAYQ_RESULT_FAILED) {
        text_totals(&run->tally, f);
        fputs("\nBatches\n", f);
        for (size_t i = 0; i < run->tally.nbatches; i++)
            text_batch(&run->tally.batches[i], f);
        if (run->tally.nbatches == 0)
            fputs("  (none)\n", f);
        text_breaks(&run->breaks, f);
    }
    text_verdict(run, f);
}
