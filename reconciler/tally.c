/* tally: per-currency and per-batch control totals, and the batch check. */
#include "tally.h"
#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *grow_array(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need)
        n *= 2;
    p = payq_xreallocarray(p, n, elem);
    memset((char *)p + *cap * elem, 0, (n - *cap) * elem);
    *cap = n;
    return p;
}

void payq_tally_init(struct payq_tally *t)
{
    memset(t, 0, sizeof *t);
}

void payq_tally_free(struct payq_tally *t)
{
    for (size_t i = 0; i < t->nccy; i++)
        free(t->ccy[i].reasons);
    free(t->ccy);
    for (size_t i = 0; i < t->nbatches; i++) {
        free(t->batches[i].batch_id);
        free(t->batches[i].m_totals);
        free(t->batches[i].sums);
    }
    free(t->batches);
    payq_strmap_free(&t->batch_idx);
    memset(t, 0, sizeof *t);
}

/* Currencies are few (ISO 4217 has under 200): a linear search is enough. */
static struct payq_ccy_tally *currency(struct payq_tally *t, const char *ccy)
{
    for (size_t i = 0; i < t->nccy; i++)
        if (strcmp(t->ccy[i].currency, ccy) == 0)
            return &t->ccy[i];
    t->ccy = grow_array(t->ccy, &t->ccy_cap, t->nccy + 1, sizeof *t->ccy);
    struct payq_ccy_tally *c = &t->ccy[t->nccy++];
    snprintf(c->currency, sizeof c->currency, "%s", ccy);
    return c;
}

static struct payq_batch_tally *batch(struct payq_tally *t, const char *batch_id)
{
    size_t i;
    if (payq_strmap_get(&t->batch_idx, batch_id, &i))
        return &t->batches[i];
    t->batches = grow_array(t->batches, &t->batch_cap, t->nbatches + 1, sizeof *t->batches);
    struct payq_batch_tally *b = &t->batches[t->nbatches];
    b->batch_id = payq_xstrdup(batch_id);
    /* The key is the batch's own copy: it stays put when the array moves. */
    payq_strmap_put(&t->batch_idx, b->batch_id, t->nbatches++);
    return b;
}

static void add_ccy_sum(struct payq_ccy_sum **sums, size_t *n, const char *ccy, int64_t amount)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*sums)[i].currency, ccy) == 0) {
            (*sums)[i].sum += amount;
            return;
        }
    }
    /* Batches hold one or a few currencies: grow one at a time. */
    *sums = payq_xreallocarray(*sums, *n + 1, sizeof **sums);
    snprintf((*sums)[*n].currency, sizeof(*sums)[*n].currency, "%s", ccy);
    (*sums)[*n].sum = amount;
    (*n)++;
}

void payq_tally_audited(struct payq_tally *t, const char *batch_id, const char *ccy, int64_t amount)
{
    struct payq_ccy_tally *c = currency(t, ccy);
    c->audited_n++;
    c->audited_sum += amount;
    if (!batch_id[0])
        return;
    struct payq_batch_tally *b = batch(t, batch_id);
    b->audited_n++;
    add_ccy_sum(&b->sums, &b->nsums, ccy, amount);
}

static void add_reason(struct payq_ccy_tally *c, const char *reason, int64_t amount)
{
    for (size_t i = 0; i < c->nreasons; i++) {
        if (strcmp(c->reasons[i].reason, reason) == 0) {
            c->reasons[i].n++;
            c->reasons[i].sum += amount;
            return;
        }
    }
    c->reasons = payq_xreallocarray(c->reasons, c->nreasons + 1, sizeof *c->reasons);
    struct payq_reason_tally *r = &c->reasons[c->nreasons++];
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    r->n = 1;
    r->sum = amount;
}

void payq_tally_ledger(struct payq_tally *t, const char *batch_id, const char *ccy, int64_t amount,
                       bool posted, const char *reason)
{
    struct payq_ccy_tally *c = currency(t, ccy);
    if (posted) {
        c->posted_n++;
        c->posted_sum += amount;
    } else {
        c->rejected_n++;
        c->rejected_sum += amount;
        add_reason(c, reason, amount);
    }
    if (!batch_id[0])
        return;
    struct payq_batch_tally *b = batch(t, batch_id);
    if (posted)
        b->posted_n++;
    else
        b->rejected_n++;
}

void payq_tally_dead(struct payq_tally *t, const char *ccy, int64_t amount)
{
    struct payq_ccy_tally *c = currency(t, ccy[0] ? ccy : "???");
    c->dead_n++;
    if (amount > 0)
        c->dead_sum += amount;
}

void payq_tally_manifest(struct payq_tally *t, const struct payq_manifest *m)
{
    uint8_t h[32];
    struct payq_buf enc = PAYQ_BUF_INIT;
    payq_msg_encode_manifest(m, &enc);
    payq_sha256(enc.data, enc.len, h);
    payq_buf_free(&enc);

    t->manifests_seen++;
    struct payq_batch_tally *b = batch(t, m->batch_id);
    if (b->has_manifest) {
        if (memcmp(b->manifest_hash, h, 32) != 0)
            b->manifest_conflict = true;
        /* Last one wins, as the issue asks; a conflict stays flagged. */
    }
    b->has_manifest = true;
    memcpy(b->manifest_hash, h, 32);
    b->m_count = m->count;
    free(b->m_totals);
    b->m_totals = NULL;
    b->m_ntotals = m->ntotals;
    if (m->ntotals) {
        b->m_totals = payq_xreallocarray(NULL, m->ntotals, sizeof *b->m_totals);
        memcpy(b->m_totals, m->totals, m->ntotals * sizeof *b->m_totals);
    }
}

char *payq_tally_format(__int128 v, char *buf)
{
    char tmp[PAYQ_TALLY_SUM_MAX];
    size_t n = 0;
    unsigned __int128 u = v < 0 ? -(unsigned __int128)v : (unsigned __int128)v;
    do {
        tmp[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    size_t o = 0;
    if (v < 0)
        buf[o++] = '-';
    while (n)
        buf[o++] = tmp[--n];
    buf[o] = '\0';
    return buf;
}

static __int128 audited_sum(const struct payq_batch_tally *b, const char *ccy)
{
    for (size_t i = 0; i < b->nsums; i++)
        if (strcmp(b->sums[i].currency, ccy) == 0)
            return b->sums[i].sum;
    return 0;
}

static int64_t manifest_sum(const struct payq_batch_tally *b, const char *ccy, bool *present)
{
    *present = false;
    for (size_t i = 0; i < b->m_ntotals; i++) {
        if (strcmp(b->m_totals[i].currency, ccy) == 0) {
            *present = true;
            return b->m_totals[i].sum;
        }
    }
    return 0;
}

/* One break per differing control total: count, then each currency of the
 * manifest or of the audit. */
static void check_totals(const struct payq_batch_tally *b, struct payq_breaks *br)
{
    char exp[PAYQ_TALLY_SUM_MAX], act[PAYQ_TALLY_SUM_MAX], field[16];
    if ((uint64_t)b->m_count != b->audited_n) {
        snprintf(exp, sizeof exp, "%lld", (long long)b->m_count);
        snprintf(act, sizeof act, "%llu", (unsigned long long)b->audited_n);
        payq_breaks_add(br, PAYQ_BREAK_BATCH, NULL, b->batch_id, "count", exp, act,
                        "the manifest counts %s transfers, the audit stream holds %s distinct "
                        "ones",
                        exp, act);
    }
    for (size_t i = 0; i < b->m_ntotals + b->nsums; i++) {
        bool in_manifest;
        const char *ccy =
            i < b->m_ntotals ? b->m_totals[i].currency : b->sums[i - b->m_ntotals].currency;
        int64_t m = manifest_sum(b, ccy, &in_manifest);
        if (i >= b->m_ntotals && in_manifest)
            continue; /* already compared from the manifest's side */
        __int128 a = audited_sum(b, ccy);
        if ((__int128)m == a)
            continue;
        snprintf(field, sizeof field, "totals.%s", ccy);
        snprintf(exp, sizeof exp, "%lld", (long long)m);
        payq_tally_format(a, act);
        payq_breaks_add(br, PAYQ_BREAK_BATCH, NULL, b->batch_id, field, exp, act,
                        "control total %s %s in the manifest%s, %s in the audit stream", exp, ccy,
                        in_manifest ? "" : " (absent)", act);
    }
}

/* The ledger must hold every transfer the manifest counts, posted or
 * rejected, on the manifest's date. A shortfall while transfers are in
 * flight is theirs to explain (the run is not balanced either way). */
static void check_ledger_count(const struct payq_batch_tally *b, struct payq_breaks *br)
{
    uint64_t booked = b->posted_n + b->rejected_n;
    if ((uint64_t)b->m_count == booked ||
        (booked < (uint64_t)b->m_count && br->count[PAYQ_BREAK_IN_FLIGHT] > 0))
        return;
    char exp[24], act[24];
    snprintf(exp, sizeof exp, "%lld", (long long)b->m_count);
    snprintf(act, sizeof act, "%llu", (unsigned long long)booked);
    payq_breaks_add(br, PAYQ_BREAK_BATCH, NULL, b->batch_id, "ledger_count", exp, act,
                    "the manifest counts %s transfers, the ledger holds %s of the batch on its "
                    "date (posted or rejected)",
                    exp, act);
}

/* Policy: a batch is checked when the audit holds a manifest or transfers
 * of it for the date. Transfers without batch_id (HTTP API) have no
 * manifest and are not batch-checked. A batch with transfers but no
 * manifest by the end of the read is a break: producers publish the
 * manifest after the last transfer, so its absence means the batch was cut
 * short (producer crash) or its manifest carries another date, and finance
 * cannot confirm the batch is whole. Rows that exist only in the ledger are
 * already unexpected_in_ledger and do not make a batch. */
void payq_tally_check_batches(struct payq_tally *t, struct payq_breaks *br, const char *date)
{
    for (size_t i = 0; i < t->nbatches; i++) {
        const struct payq_batch_tally *b = &t->batches[i];
        if (!b->has_manifest) {
            if (b->audited_n > 0) {
                char act[24];
                snprintf(act, sizeof act, "%llu", (unsigned long long)b->audited_n);
                payq_breaks_add(br, PAYQ_BREAK_BATCH, NULL, b->batch_id, "manifest", "manifest",
                                "none",
                                "%s transfers of this batch for %s but no manifest for that date "
                                "by the end of the read: the batch may be incomplete",
                                act, date);
            }
            continue;
        }
        if (b->manifest_conflict)
            payq_breaks_add(br, PAYQ_BREAK_BATCH, NULL, b->batch_id, "manifest", "one manifest",
                            "several",
                            "two different manifests were published for this batch; the last "
                            "one was compared");
        check_totals(b, br);
        check_ledger_count(b, br);
    }
}

static int cmp_ccy(const void *a, const void *b)
{
    return strcmp(((const struct payq_ccy_tally *)a)->currency,
                  ((const struct payq_ccy_tally *)b)->currency);
}

static int cmp_batch(const void *a, const void *b)
{
    return strcmp(((const struct payq_batch_tally *)a)->batch_id,
                  ((const struct payq_batch_tally *)b)->batch_id);
}

static int cmp_reason(const void *a, const void *b)
{
    return strcmp(((const struct payq_reason_tally *)a)->reason,
                  ((const struct payq_reason_tally *)b)->reason);
}

void payq_tally_sort(struct payq_tally *t)
{
    if (t->nccy)
        qsort(t->ccy, t->nccy, sizeof *t->ccy, cmp_ccy);
    for (size_t i = 0; i < t->nccy; i++)
        if (t->ccy[i].nreasons)
            qsort(t->ccy[i].reasons, t->ccy[i].nreasons, sizeof *t->ccy[i].reasons, cmp_reason);
    if (t->nbatches)
        qsort(t->batches, t->nbatches, sizeof *t->batches, cmp_batch);
    payq_strmap_free(&t->batch_idx);
}
