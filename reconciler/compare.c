/* compare: the verdict on each audited transfer, from what the ledger holds
 * for it. No I/O here (see compare.h). */
#include "compare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "money.h"

#define NONE PAYQ_COMPARE_NONE

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap * 2 : 1024;
    while (n < need)
        n *= 2;
    p = payq_xreallocarray(p, n, elem);
    *cap = n;
    return p;
}

static void free_owned(struct payq_compare_bucket *b)
{
    for (size_t i = 0; i < b->nowned; i++)
        free(b->owned[i]);
    b->nowned = 0;
}

void payq_compare_bucket_reset(struct payq_compare_bucket *b, size_t expect_ids)
{
    free_owned(b);
    b->npayloads = b->nids = b->nkeys = 0;
    payq_strmap_reset(&b->map, expect_ids + 16);
}

void payq_compare_bucket_free(struct payq_compare_bucket *b)
{
    free_owned(b);
    free(b->owned);
    free(b->payloads);
    free(b->ids);
    free(b->keys);
    payq_strmap_free(&b->map);
    memset(b, 0, sizeof *b);
}

static void add_key(struct payq_compare_bucket *b, const char *id)
{
    b->keys = grow(b->keys, &b->keys_cap, b->nkeys + 1, sizeof *b->keys);
    b->keys[b->nkeys++] = id;
}

static size_t find_payload(const struct payq_compare_bucket *b, const struct payq_compare_id *id,
                           const uint8_t hash[32])
{
    for (size_t p = id->first; p != NONE; p = b->payloads[p].next)
        if (memcmp(b->payloads[p].r.hash, hash, 32) == 0)
            return p;
    return NONE;
}

static void short_hash(const uint8_t h[32], char out[17])
{
    char hex[65];
    payq_hash_hex(h, hex);
    memcpy(out, hex, 16);
    out[16] = '\0';
}

static void money_text(const struct payq_spill_rec *r, char *buf, size_t len)
{
    char amt[PAYQ_MONEY_STR_MAX];
    snprintf(buf, len, "%s %s", payq_money_format(r->amount, amt), r->currency);
}

/* ---- loading ---- */

void payq_compare_add_audit(struct payq_compare *c, struct payq_compare_bucket *b,
                            const struct payq_spill_rec *r)
{
    size_t k;
    c->st.audit_records++;
    if (payq_strmap_get(&b->map, r->id, &k)) {
        struct payq_compare_id *id = &b->ids[k];
        size_t p = id->first, last = NONE;
        for (; p != NONE; last = p, p = b->payloads[p].next) {
            if (memcmp(b->payloads[p].r.hash, r->hash, 32) == 0) {
                c->st.duplicates++;
                return;
            }
        }
        b->payloads = grow(b->payloads, &b->payloads_cap, b->npayloads + 1, sizeof *b->payloads);
        b->payloads[b->npayloads] = (struct payq_compare_payload){*r, NONE, false};
        b->payloads[last].next = b->npayloads++;
        id->npayloads++;
        return;
    }
    b->payloads = grow(b->payloads, &b->payloads_cap, b->npayloads + 1, sizeof *b->payloads);
    b->ids = grow(b->ids, &b->ids_cap, b->nids + 1, sizeof *b->ids);
    b->payloads[b->npayloads] = (struct payq_compare_payload){*r, NONE, false};
    b->ids[b->nids] =
        (struct payq_compare_id){.first = b->npayloads, .accepted = b->npayloads, .npayloads = 1};
    payq_strmap_put(&b->map, r->id, b->nids++);
    b->npayloads++;
    c->st.audit_ids++;
}

void payq_compare_add_ledger(struct payq_compare *c, struct payq_compare_bucket *b,
                             const struct payq_spill_rec *l)
{
    char money[64];
    size_t k;
    c->st.ledger_rows++;
    payq_tally_ledger(c->tally, l->batch_id, l->currency, l->amount, l->status == PAYQ_SPILL_POSTED,
                      l->reason);
    if (!payq_strmap_get(&b->map, l->id, &k)) {
        money_text(l, money, sizeof money);
        payq_breaks_add(c->breaks, PAYQ_BREAK_UNEXPECTED, l->id, l->batch_id, "", "", money,
                        "%s%s%s, debit %s, credit %s: no message for it in the audit stream of %s",
                        l->status == PAYQ_SPILL_POSTED ? "posted" : "rejected",
                        l->reason[0] ? " " : "", l->reason, l->debit, l->credit, c->date);
        return;
    }
    struct payq_compare_id *id = &b->ids[k];
    c->st.matched++;
    id->state = PAYQ_ID_MATCHED;
    id->lrec = *l;
    memcpy(id->lhash, l->hash, 32);
    snprintf(id->ldate, sizeof id->ldate, "%s", c->date);
    size_t p = find_payload(b, id, l->hash);
    id->hash_matched = p != NONE;
    if (p != NONE)
        id->accepted = p;
    /* A payload the ledger does not hold may have been refused as a
     * conflict: payq.conflicts will tell. */
    id->check_conflicts = p == NONE || id->npayloads > 1;
}

/* ---- lookups ---- */

size_t payq_compare_unseen_keys(struct payq_compare_bucket *b)
{
    b->nkeys = 0;
    for (size_t k = 0; k < b->nids; k++)
        if (b->ids[k].state == PAYQ_ID_UNSEEN)
            add_key(b, b->payloads[b->ids[k].first].r.id);
    return b->nkeys;
}

size_t payq_compare_conflict_keys(struct payq_compare_bucket *b)
{
    b->nkeys = 0;
    for (size_t k = 0; k < b->nids; k++)
        if (b->ids[k].check_conflicts)
            add_key(b, b->payloads[b->ids[k].first].r.id);
    return b->nkeys;
}

/* A copy of r whose strings the bucket owns until its reset (a looked-up
 * row's strings live in a result the caller frees). */
static struct payq_spill_rec own_rec(struct payq_compare_bucket *b, const struct payq_spill_rec *r)
{
    const char *src[5] = {r->id, r->batch_id, r->debit, r->credit, r->reason};
    size_t len[5], total = 0;
    for (int i = 0; i < 5; i++)
        total += (len[i] = strlen(src[i]) + 1);
    char *p = payq_xmalloc(total);
    b->owned = grow(b->owned, &b->owned_cap, b->nowned + 1, sizeof *b->owned);
    b->owned[b->nowned++] = p;
    const char **dst[5];
    struct payq_spill_rec c = *r;
    dst[0] = &c.id, dst[1] = &c.batch_id, dst[2] = &c.debit, dst[3] = &c.credit, dst[4] = &c.reason;
    for (int i = 0; i < 5; i++) {
        memcpy(p, src[i], len[i]);
        *dst[i] = p;
        p += len[i];
    }
    return c;
}

void payq_compare_found(struct payq_compare *c, struct payq_compare_bucket *b, const char *date,
                        const struct payq_spill_rec *row)
{
    size_t k;
    if (!payq_strmap_get(&b->map, row->id, &k) || b->ids[k].state != PAYQ_ID_UNSEEN)
        return;
    if (strcmp(date, c->date) == 0) {
        /* Committed after the scan's snapshot (the scan runs while the
         * stream is read): the row is compared as if the scan had held it. */
        struct payq_spill_rec l = own_rec(b, row);
        c->st.late++;
        payq_compare_add_ledger(c, b, &l);
        return;
    }
    struct payq_compare_id *id = &b->ids[k];
    memcpy(id->lhash, row->hash, 32);
    snprintf(id->ldate, sizeof id->ldate, "%s", date);
    size_t p = find_payload(b, id, row->hash);
    if (p == NONE) {
        id->state = PAYQ_ID_TAKEN;
        id->check_conflicts = true;
        return;
    }
    id->accepted = p;
    id->hash_matched = true;
    id->state = PAYQ_ID_ELSEWHERE;
    id->check_conflicts = id->npayloads > 1;
}

void payq_compare_refused(struct payq_compare_bucket *b, const char *key, const uint8_t hash[32])
{
    size_t k;
    if (!payq_strmap_get(&b->map, key, &k))
        return;
    size_t p = find_payload(b, &b->ids[k], hash);
    if (p != NONE)
        b->payloads[p].recorded = true;
}

/* ---- verdicts ---- */

struct diff {
    const char *field;
    char a[PAYQ_BREAK_TEXT_MAX], b[PAYQ_BREAK_TEXT_MAX];
};

/* The fields the ledger must hold as audited, in the order they are named. */
static size_t diff_fields(const struct payq_spill_rec *a, const struct payq_spill_rec *b,
                          struct diff out[5])
{
    const char *names[4] = {"debit_account", "credit_account", "currency", "batch_id"};
    const char *av[4] = {a->debit, a->credit, a->currency, a->batch_id};
    const char *bv[4] = {b->debit, b->credit, b->currency, b->batch_id};
    size_t n = 0;
    if (a->amount != b->amount) {
        out[n].field = "amount";
        payq_money_format(a->amount, out[n].a);
        payq_money_format(b->amount, out[n].b);
        n++;
    }
    for (int i = 0; i < 4; i++) {
        if (strcmp(av[i], bv[i]) == 0)
            continue;
        out[n].field = names[i];
        snprintf(out[n].a, sizeof out[n].a, "%s", av[i]);
        snprintf(out[n].b, sizeof out[n].b, "%s", bv[i]);
        n++;
    }
    return n;
}

/* The ledger row claims to hold what was audited, or the audited payload
 * was never refused: either way the row differs from the message. */
static void content_breaks(struct payq_compare *c, const struct payq_spill_rec *a,
                           const struct payq_compare_id *id)
{
    struct diff d[5];
    size_t n = diff_fields(a, &id->lrec, d);
    for (size_t i = 0; i < n; i++)
        payq_breaks_add(c->breaks, PAYQ_BREAK_CONTENT, a->id, a->batch_id, d[i].field, d[i].a,
                        d[i].b, "the ledger row's %s differs from the audited message", d[i].field);
    if (n == 0 && !id->hash_matched) {
        char ea[65], eb[65];
        payq_hash_hex(a->hash, ea);
        payq_hash_hex(id->lhash, eb);
        payq_breaks_add(c->breaks, PAYQ_BREAK_CONTENT, a->id, a->batch_id, "payload_sha256", ea, eb,
                        "the ledger row's fingerprint differs from the audited message "
                        "(reference, metadata or date)");
    }
}

/* One id_conflict per payload the ledger does not hold, naming the first
 * field in which it differs from the booked one when the booked row is at
 * hand (else the two fingerprints). */
static void conflict_breaks(struct payq_compare *c, const struct payq_compare_bucket *b,
                            const struct payq_compare_id *id, const char *how)
{
    const struct payq_spill_rec *booked = id->hash_matched ? &b->payloads[id->accepted].r
                                          : id->state == PAYQ_ID_MATCHED ? &id->lrec
                                                                         : NULL;
    char ha[17], hb[17];
    short_hash(id->lhash, ha);
    for (size_t p = id->first; p != NONE; p = b->payloads[p].next) {
        const struct payq_compare_payload *pl = &b->payloads[p];
        if (id->hash_matched && p == id->accepted)
            continue;
        struct diff d[5];
        size_t n = booked ? diff_fields(booked, &pl->r, d) : 0;
        short_hash(pl->r.hash, hb);
        payq_breaks_add(c->breaks, PAYQ_BREAK_ID_CONFLICT, pl->r.id,
                        booked ? booked->batch_id : pl->r.batch_id, n ? d[0].field : "payload",
                        n ? d[0].a : ha, n ? d[0].b : hb,
                        "%s: payload %s is booked, payload %s was refused and is %s "
                        "payq.conflicts",
                        how, ha, hb, pl->recorded ? "recorded in" : "NOT recorded in");
    }
}

static bool all_recorded(const struct payq_compare_bucket *b, const struct payq_compare_id *id)
{
    for (size_t p = id->first; p != NONE; p = b->payloads[p].next)
        if (!b->payloads[p].recorded)
            return false;
    return true;
}

void payq_compare_absent(struct payq_compare *c, const struct payq_spill_rec *a, const char *why)
{
    char money[64];
    money_text(a, money, sizeof money);
    if (c->pending > 0)
        payq_breaks_add(c->breaks, PAYQ_BREAK_IN_FLIGHT, a->id, a->batch_id, "", money, "",
                        "debit %s, credit %s: not in the ledger yet while payq.transfers holds "
                        "%lld messages%s",
                        a->debit, a->credit, (long long)c->pending, why);
    else
        payq_breaks_add(c->breaks, PAYQ_BREAK_MISSING, a->id, a->batch_id, "", money, "",
                        "debit %s, credit %s: audited but not in the ledger%s", a->debit, a->credit,
                        why);
}

static void matched_verdict(struct payq_compare *c, const struct payq_compare_bucket *b,
                            const struct payq_compare_id *id)
{
    if (id->hash_matched) {
        content_breaks(c, &b->payloads[id->accepted].r, id);
        if (id->npayloads > 1)
            conflict_breaks(c, b, id, "one id, several payloads");
    } else if (all_recorded(b, id)) {
        /* The booked payload came before the audit window. */
        conflict_breaks(c, b, id, "id used before the audit window");
    } else {
        content_breaks(c, &b->payloads[id->first].r, id);
        if (id->npayloads > 1)
            conflict_breaks(c, b, id, "one id, several payloads");
    }
}

/* The same payload booked on another date. A message without its own
 * business_date was dated by its AMQP timestamp: a retry of it published
 * after midnight is the same transfer, booked the day its first copy
 * arrived. A message that named its date must be booked on that date. */
static void elsewhere_verdict(struct payq_compare *c, const struct payq_compare_bucket *b,
                              const struct payq_compare_id *id)
{
    const struct payq_spill_rec *a = &b->payloads[id->accepted].r;
    if (a->body_dated)
        payq_breaks_add(c->breaks, PAYQ_BREAK_CONTENT, a->id, a->batch_id, "business_date", c->date,
                        id->ldate, "the message names business_date %s; the ledger booked it on %s",
                        c->date, id->ldate);
    else
        c->st.elsewhere++;
    if (id->npayloads > 1)
        conflict_breaks(c, b, id, "one id, several payloads");
}

static void verdict(struct payq_compare *c, const struct payq_compare_bucket *b,
                    const struct payq_compare_id *id)
{
    const struct payq_spill_rec *a = &b->payloads[id->accepted].r;
    char how[96];
    switch (id->state) {
    case PAYQ_ID_MATCHED:
        matched_verdict(c, b, id);
        break;
    case PAYQ_ID_ELSEWHERE:
        elsewhere_verdict(c, b, id);
        break;
    case PAYQ_ID_TAKEN:
        snprintf(how, sizeof how, "id already booked on %s", id->ldate);
        conflict_breaks(c, b, id, how);
        break;
    case PAYQ_ID_UNSEEN:
        payq_compare_absent(c, a, "");
        break;
    }
    payq_tally_audited(c->tally, a->batch_id, a->currency, a->amount);
}

void payq_compare_verdicts(struct payq_compare *c, const struct payq_compare_bucket *b)
{
    for (size_t k = 0; k < b->nids; k++)
        verdict(c, b, &b->ids[k]);
}

void payq_compare_dead_verdict(struct payq_compare *c, const struct payq_audit_invalid *v,
                               bool found)
{
    char hex[65];
    if (found) {
        c->st.dead_found++;
        payq_tally_dead(c->tally, v->currency, v->amount);
        return;
    }
    payq_hash_hex(v->body_hash, hex);
    enum payq_break_cat cat = c->pending > 0 ? PAYQ_BREAK_IN_FLIGHT : PAYQ_BREAK_MISSING;
    payq_breaks_add(c->breaks, cat, v->id, "", v->err.field, hex, "",
                    "undecodable transfer message (%s%s%s) not in payq.dead_letters%s",
                    v->err.field, v->err.field[0] ? ": " : "", v->err.reason,
                    cat == PAYQ_BREAK_IN_FLIGHT ? " yet while payq.transfers holds messages" : "");
}

void payq_compare_invariant(struct payq_breaks *b, const struct payq_invariant_row *v)
{
    const char *key = v->key, *sd = v->stored_debits, *sc = v->stored_credits;
    const char *td = v->posted_debits, *tc = v->posted_credits;
    if (v->currency_wide) {
        payq_breaks_add(b, PAYQ_BREAK_INVARIANT, key, NULL, "debits_vs_credits", sd, sc,
                        "over the %s accounts the debits_posted sum to %s but the "
                        "credits_posted to %s",
                        key, sd, sc);
        return;
    }
    if (!v->account_exists) {
        payq_breaks_add(b, PAYQ_BREAK_INVARIANT, key, NULL, "account", "an account", "none",
                        "posted transfers move account %s (debits %s, credits %s), which does "
                        "not exist",
                        key, td, tc);
        return;
    }
    if (strcmp(sd, td) != 0)
        payq_breaks_add(b, PAYQ_BREAK_INVARIANT, key, NULL, "debits_posted", td, sd,
                        "the account stores debits_posted %s but its posted transfers debit %s", sd,
                        td);
    if (strcmp(sc, tc) != 0)
        payq_breaks_add(b, PAYQ_BREAK_INVARIANT, key, NULL, "credits_posted", tc, sc,
                        "the account stores credits_posted %s but its posted transfers credit "
                        "%s",
                        sc, tc);
}
