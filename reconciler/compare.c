/* compare: per-bucket join of audited transfers with ledger rows. */
#include "compare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "money.h"
#include "strmap.h"

#define NONE SIZE_MAX

/* One distinct payload of an audited id. */
struct audited_payload {
    struct payq_spill_rec r;
    size_t next;   /* next distinct payload of the same id, or NONE */
    bool recorded; /* found in payq.conflicts as a refused payload */
};

enum id_state {
    ID_UNSEEN = 0, /* not among the day's rows (until looked up) */
    ID_MATCHED,    /* among the day's rows */
    ID_ELSEWHERE,  /* same payload, booked on another date */
    ID_LATE,       /* same payload, booked on the date after the scan */
    ID_TAKEN,      /* the id holds another payload (another date, or after the scan) */
};

struct audited_id {
    size_t first;    /* payloads index of the first payload seen */
    size_t accepted; /* the payload the ledger holds, else first */
    size_t npayloads;
    enum id_state state;
    bool check_conflicts;
    bool hash_matched;          /* the ledger's payload is one of the audited ones */
    struct payq_spill_rec lrec; /* ID_MATCHED: the ledger row (strings in lbuf) */
    uint8_t lhash[32];
    char ldate[11];
};

/* Memory of one bucket, kept between buckets. */
struct bucket_mem {
    struct payq_buf abuf, lbuf;
    struct audited_payload *payloads;
    size_t npayloads, payloads_cap;
    struct audited_id *ids;
    size_t nids, ids_cap;
    struct payq_strmap map; /* id (in abuf) -> ids index */
    const char **keys;      /* ids to look up */
    size_t nkeys, keys_cap;
};

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap * 2 : 1024;
    while (n < need)
        n *= 2;
    p = realloc(p, n * elem);
    if (!p)
        abort(); /* payq treats OOM as fatal (see buf.h) */
    *cap = n;
    return p;
}

static void bucket_mem_free(struct bucket_mem *w)
{
    payq_buf_free(&w->abuf);
    payq_buf_free(&w->lbuf);
    free(w->payloads);
    free(w->ids);
    free(w->keys);
    payq_strmap_free(&w->map);
}

static void add_key(struct bucket_mem *w, const char *id)
{
    w->keys = grow(w->keys, &w->keys_cap, w->nkeys + 1, sizeof *w->keys);
    w->keys[w->nkeys++] = id;
}

static size_t find_payload(const struct bucket_mem *w, const struct audited_id *id,
                           const uint8_t hash[32])
{
    for (size_t p = id->first; p != NONE; p = w->payloads[p].next)
        if (memcmp(w->payloads[p].r.hash, hash, 32) == 0)
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

/* Adds one audit record: an identical copy only counts, a new payload of a
 * known id joins its chain, a new id gets an entry. */
static void add_audit(struct payq_compare *c, struct bucket_mem *w, const struct payq_spill_rec *r)
{
    size_t k;
    c->st.audit_records++;
    if (payq_strmap_get(&w->map, r->id, &k)) {
        struct audited_id *id = &w->ids[k];
        size_t p = id->first, last = NONE;
        for (; p != NONE; last = p, p = w->payloads[p].next) {
            if (memcmp(w->payloads[p].r.hash, r->hash, 32) == 0) {
                c->st.duplicates++;
                return;
            }
        }
        w->payloads = grow(w->payloads, &w->payloads_cap, w->npayloads + 1, sizeof *w->payloads);
        w->payloads[w->npayloads] = (struct audited_payload){*r, NONE, false};
        w->payloads[last].next = w->npayloads++;
        id->npayloads++;
        return;
    }
    w->payloads = grow(w->payloads, &w->payloads_cap, w->npayloads + 1, sizeof *w->payloads);
    w->ids = grow(w->ids, &w->ids_cap, w->nids + 1, sizeof *w->ids);
    w->payloads[w->npayloads] = (struct audited_payload){*r, NONE, false};
    w->ids[w->nids] =
        (struct audited_id){.first = w->npayloads, .accepted = w->npayloads, .npayloads = 1};
    payq_strmap_put(&w->map, r->id, w->nids++);
    w->npayloads++;
    c->st.audit_ids++;
}

static int load_audit(struct payq_compare *c, struct bucket_mem *w, int bucket)
{
    w->npayloads = w->nids = w->nkeys = 0;
    if (payq_spill_load(c->spill, PAYQ_SPILL_AUDIT, bucket, &w->abuf) != 0)
        return -1;
    payq_strmap_reset(&w->map, w->abuf.len / 96 + 16); /* about one id per 96 bytes */
    size_t off = 0;
    struct payq_spill_rec r;
    int rc;
    while ((rc = payq_spill_next(&w->abuf, &off, &r)) > 0)
        add_audit(c, w, &r);
    return rc;
}

static void on_ledger_row(struct payq_compare *c, struct bucket_mem *w,
                          const struct payq_spill_rec *l)
{
    char money[64];
    size_t k;
    c->st.ledger_rows++;
    payq_tally_ledger(c->tally, l->batch_id, l->currency, l->amount, l->status == PAYQ_SPILL_POSTED,
                      l->reason);
    if (!payq_strmap_get(&w->map, l->id, &k)) {
        money_text(l, money, sizeof money);
        payq_breaks_add(c->breaks, PAYQ_BREAK_UNEXPECTED, l->id, l->batch_id, "", "", money,
                        "%s%s%s, debit %s, credit %s: no message for it in the audit stream of %s",
                        l->status == PAYQ_SPILL_POSTED ? "posted" : "rejected",
                        l->reason[0] ? " " : "", l->reason, l->debit, l->credit, c->date);
        return;
    }
    struct audited_id *id = &w->ids[k];
    c->st.matched++;
    id->state = ID_MATCHED;
    id->lrec = *l;
    memcpy(id->lhash, l->hash, 32);
    size_t p = find_payload(w, id, l->hash);
    id->hash_matched = p != NONE;
    if (p != NONE)
        id->accepted = p;
    /* A payload the ledger does not hold may have been refused as a
     * conflict: payq.conflicts will tell. */
    id->check_conflicts = p == NONE || id->npayloads > 1;
}

static int scan_ledger(struct payq_compare *c, struct bucket_mem *w, int bucket)
{
    if (payq_spill_load(c->spill, PAYQ_SPILL_LEDGER, bucket, &w->lbuf) != 0)
        return -1;
    size_t off = 0;
    struct payq_spill_rec r;
    int rc;
    while ((rc = payq_spill_next(&w->lbuf, &off, &r)) > 0)
        on_ledger_row(c, w, &r);
    return rc;
}

/* ---- lookups ---- */

struct hit_ctx {
    struct payq_compare *c;
    struct bucket_mem *w;
};

static void on_found(void *ctx, const char *key, const char *date, const uint8_t hash[32])
{
    struct hit_ctx *h = ctx;
    size_t k;
    if (!payq_strmap_get(&h->w->map, key, &k))
        return;
    struct audited_id *id = &h->w->ids[k];
    memcpy(id->lhash, hash, 32);
    snprintf(id->ldate, sizeof id->ldate, "%s", date);
    size_t p = find_payload(h->w, id, hash);
    if (p == NONE) {
        id->state = ID_TAKEN;
        id->check_conflicts = true;
        return;
    }
    id->accepted = p;
    id->hash_matched = true;
    id->state = strcmp(date, h->c->date) == 0 ? ID_LATE : ID_ELSEWHERE;
    id->check_conflicts = id->npayloads > 1;
}

static void on_conflict(void *ctx, const char *key, const uint8_t hash[32])
{
    struct hit_ctx *h = ctx;
    size_t k;
    if (!payq_strmap_get(&h->w->map, key, &k))
        return;
    size_t p = find_payload(h->w, &h->w->ids[k], hash);
    if (p != NONE)
        h->w->payloads[p].recorded = true;
}

static int lookups(struct payq_compare *c, struct bucket_mem *w)
{
    struct hit_ctx h = {c, w};
    w->nkeys = 0;
    for (size_t k = 0; k < w->nids; k++)
        if (w->ids[k].state == ID_UNSEEN)
            add_key(w, w->payloads[w->ids[k].first].r.id);
    if (w->nkeys && payq_ledger_find_transfers(c->ledger, w->keys, w->nkeys, on_found, &h) != 0)
        return -1;
    w->nkeys = 0;
    for (size_t k = 0; k < w->nids; k++)
        if (w->ids[k].check_conflicts)
            add_key(w, w->payloads[w->ids[k].first].r.id);
    if (w->nkeys && payq_ledger_find_conflicts(c->ledger, w->keys, w->nkeys, on_conflict, &h) != 0)
        return -1;
    return 0;
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
                           const struct audited_id *id)
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
static void conflict_breaks(struct payq_compare *c, const struct bucket_mem *w,
                            const struct audited_id *id, const char *how)
{
    const struct payq_spill_rec *booked = id->hash_matched          ? &w->payloads[id->accepted].r
                                          : id->state == ID_MATCHED ? &id->lrec
                                                                    : NULL;
    char ha[17], hb[17];
    short_hash(id->lhash, ha);
    for (size_t p = id->first; p != NONE; p = w->payloads[p].next) {
        const struct audited_payload *pl = &w->payloads[p];
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

static bool all_recorded(const struct bucket_mem *w, const struct audited_id *id)
{
    for (size_t p = id->first; p != NONE; p = w->payloads[p].next)
        if (!w->payloads[p].recorded)
            return false;
    return true;
}

static void absent_break(struct payq_compare *c, const struct payq_spill_rec *a, const char *why)
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

static void matched_verdict(struct payq_compare *c, const struct bucket_mem *w,
                            const struct audited_id *id)
{
    if (id->hash_matched) {
        content_breaks(c, &w->payloads[id->accepted].r, id);
        if (id->npayloads > 1)
            conflict_breaks(c, w, id, "one id, several payloads");
    } else if (all_recorded(w, id)) {
        /* The booked payload came before the audit window. */
        conflict_breaks(c, w, id, "id used before the audit window");
    } else {
        content_breaks(c, &w->payloads[id->first].r, id);
        if (id->npayloads > 1)
            conflict_breaks(c, w, id, "one id, several payloads");
    }
}

static void verdict(struct payq_compare *c, const struct bucket_mem *w, const struct audited_id *id)
{
    const struct payq_spill_rec *a = &w->payloads[id->accepted].r;
    char how[96];
    switch (id->state) {
    case ID_MATCHED:
        matched_verdict(c, w, id);
        break;
    case ID_ELSEWHERE:
        c->st.elsewhere++;
        if (id->npayloads > 1)
            conflict_breaks(c, w, id, "one id, several payloads");
        break;
    case ID_LATE:
        c->st.late++;
        payq_breaks_add(c->breaks, PAYQ_BREAK_IN_FLIGHT, a->id, a->batch_id, "", "", "",
                        "committed while the reconciler ran: not in this run's ledger scan");
        break;
    case ID_TAKEN:
        snprintf(how, sizeof how, "id already booked on %s", id->ldate);
        conflict_breaks(c, w, id, how);
        break;
    case ID_UNSEEN:
        absent_break(c, a, "");
        break;
    }
    payq_tally_audited(c->tally, a->batch_id, a->currency, a->amount);
}

static int compare_bucket(struct payq_compare *c, struct bucket_mem *w, int bucket)
{
    if (load_audit(c, w, bucket) != 0 || scan_ledger(c, w, bucket) != 0) {
        snprintf(c->err, sizeof c->err, "cannot read the spill files (see log)");
        return -1;
    }
    if (lookups(c, w) != 0) {
        snprintf(c->err, sizeof c->err, "%s", payq_ledger_error(c->ledger));
        return -1;
    }
    for (size_t k = 0; k < w->nids; k++)
        verdict(c, w, &w->ids[k]);
    return 0;
}

int payq_compare_buckets(struct payq_compare *c)
{
    struct bucket_mem w;
    memset(&w, 0, sizeof w);
    int rc = 0, n = payq_spill_buckets(c->spill);
    payq_progress_stage(c->prog, "compare", "buckets");
    for (int b = 0; b < n && rc == 0; b++) {
        rc = compare_bucket(c, &w, b);
        payq_progress_update(c->prog, (uint64_t)b + 1);
    }
    payq_progress_done(c->prog);
    bucket_mem_free(&w);
    return rc;
}

/* ---- undated transfers ---- */

enum { UNDATED_ABSENT = 0, UNDATED_ON_DATE, UNDATED_ELSEWHERE };

struct undated_ctx {
    struct payq_compare *c;
    struct payq_strmap idx; /* id (in recs) -> index of its first record */
    unsigned char *state;   /* per index: UNDATED_* */
};

static void on_undated_found(void *ctx, const char *id, const char *date, const uint8_t hash[32])
{
    (void)hash;
    struct undated_ctx *u = ctx;
    size_t i;
    if (payq_strmap_get(&u->idx, id, &i))
        u->state[i] = strcmp(date, u->c->date) == 0 ? UNDATED_ON_DATE : UNDATED_ELSEWHERE;
}

/* The ledger dated these by their arrival: take its word for the date. */
static int undated_verdicts(struct payq_compare *c, const struct payq_buf *recs,
                            const struct undated_ctx *u)
{
    struct payq_spill_rec r;
    size_t off = 0, i;
    int rc;
    while ((rc = payq_spill_next(recs, &off, &r)) > 0) {
        payq_strmap_get(&u->idx, r.id, &i);
        if (u->state[i] == UNDATED_ABSENT) {
            absent_break(c, &r, " (no business_date and no AMQP timestamp)");
        } else if (u->state[i] == UNDATED_ON_DATE) {
            if (payq_spill_put(c->spill, PAYQ_SPILL_AUDIT, &r) != 0) {
                snprintf(c->err, sizeof c->err, "cannot write the spill files (see log)");
                return -1;
            }
            c->st.undated_found++;
        }
    }
    return rc;
}

int payq_compare_undated(struct payq_compare *c, const struct payq_buf *recs)
{
    struct payq_spill_rec r;
    struct undated_ctx u = {.c = c};
    size_t off = 0, n = 0, cap = 0, i;
    const char **ids = NULL;
    int rc;
    while ((rc = payq_spill_next(recs, &off, &r)) > 0) {
        if (payq_strmap_get(&u.idx, r.id, &i))
            continue;
        ids = grow(ids, &cap, n + 1, sizeof *ids);
        payq_strmap_put(&u.idx, r.id, n);
        ids[n++] = r.id;
    }
    u.state = calloc(n ? n : 1, 1);
    if (!u.state)
        abort();
    if (rc == 0 && n && payq_ledger_find_transfers(c->ledger, ids, n, on_undated_found, &u) != 0) {
        snprintf(c->err, sizeof c->err, "%s", payq_ledger_error(c->ledger));
        rc = -1;
    }
    if (rc == 0)
        rc = undated_verdicts(c, recs, &u);
    if (rc < 0 && !c->err[0])
        snprintf(c->err, sizeof c->err, "corrupt list of undated transfers (see log)");
    payq_strmap_free(&u.idx);
    free(u.state);
    free(ids);
    return rc < 0 ? -1 : 0;
}

/* ---- undecodable messages ---- */

static int cmp_invalid(const void *a, const void *b)
{
    return memcmp(((const struct payq_audit_invalid *)a)->body_hash,
                  ((const struct payq_audit_invalid *)b)->body_hash, 32);
}

struct dead_ctx {
    struct payq_audit_invalid *inv;
    size_t n;
    bool *found;
};

static void on_dead_found(void *ctx, const uint8_t hash[32])
{
    struct dead_ctx *d = ctx;
    struct payq_audit_invalid key;
    memcpy(key.body_hash, hash, 32);
    const struct payq_audit_invalid *hit = bsearch(&key, d->inv, d->n, sizeof *d->inv, cmp_invalid);
    if (hit)
        d->found[hit - d->inv] = true;
}

static void dead_verdict(struct payq_compare *c, const struct payq_audit_invalid *v, bool found)
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

int payq_compare_dead(struct payq_compare *c, struct payq_audit_invalid *inv, size_t n)
{
    if (n == 0)
        return 0;
    qsort(inv, n, sizeof *inv, cmp_invalid);
    size_t u = 1; /* the same body twice is one dead letter */
    for (size_t i = 1; i < n; i++)
        if (memcmp(inv[i].body_hash, inv[u - 1].body_hash, 32) != 0)
            inv[u++] = inv[i];
    uint8_t(*hashes)[32] = malloc(u * sizeof *hashes);
    bool *found = calloc(u, sizeof *found);
    if (!hashes || !found)
        abort();
    for (size_t i = 0; i < u; i++)
        memcpy(hashes[i], inv[i].body_hash, 32);
    struct dead_ctx d = {inv, u, found};
    int rc = payq_ledger_find_dead(c->ledger, (const uint8_t(*)[32])hashes, u, on_dead_found, &d);
    if (rc != 0)
        snprintf(c->err, sizeof c->err, "%s", payq_ledger_error(c->ledger));
    for (size_t i = 0; rc == 0 && i < u; i++)
        dead_verdict(c, &inv[i], found[i]);
    c->st.dead_checked = u;
    free(hashes);
    free(found);
    return rc;
}
