/* join: per-bucket loading and ledger lookups for compare.c's verdicts. */
#include "join.h"
#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

/* The loaded spill files of one bucket, kept between buckets: the
 * records' strings point into them. */
struct bucket_files {
    struct payq_buf audit, ledger;
    struct payq_compare_bucket b;
};

static int load_audit(struct payq_join *j, struct bucket_files *f, int bucket)
{
    if (payq_spill_load(j->spill, PAYQ_SPILL_AUDIT, bucket, &f->audit) != 0)
        return -1;
    payq_compare_bucket_reset(&f->b, f->audit.len / 96); /* about one id per 96 bytes */
    size_t off = 0;
    struct payq_spill_rec r;
    int rc;
    while ((rc = payq_spill_next(&f->audit, &off, &r)) > 0)
        payq_compare_add_audit(&j->cmp, &f->b, &r);
    return rc;
}

static int scan_ledger(struct payq_join *j, struct bucket_files *f, int bucket)
{
    if (payq_spill_load(j->spill, PAYQ_SPILL_LEDGER, bucket, &f->ledger) != 0)
        return -1;
    size_t off = 0;
    struct payq_spill_rec r;
    int rc;
    while ((rc = payq_spill_next(&f->ledger, &off, &r)) > 0)
        payq_compare_add_ledger(&j->cmp, &f->b, &r);
    return rc;
}

struct hit_ctx {
    struct payq_join *j;
    struct payq_compare_bucket *b;
};

static void on_found(void *ctx, const char *date, const struct payq_spill_rec *row)
{
    struct hit_ctx *h = ctx;
    payq_compare_found(&h->j->cmp, h->b, date, row);
}

static void on_conflict(void *ctx, const char *key, const uint8_t hash[32])
{
    struct hit_ctx *h = ctx;
    payq_compare_refused(h->b, key, hash);
}

static int lookups(struct payq_join *j, struct payq_compare_bucket *b)
{
    struct hit_ctx h = {j, b};
    size_t n = payq_compare_unseen_keys(b);
    if (n && payq_ledger_find_transfers(j->ledger, b->keys, n, on_found, &h) != 0)
        return -1;
    n = payq_compare_conflict_keys(b);
    if (n && payq_ledger_find_conflicts(j->ledger, b->keys, n, on_conflict, &h) != 0)
        return -1;
    return 0;
}

static int join_bucket(struct payq_join *j, struct bucket_files *f, int bucket)
{
    if (load_audit(j, f, bucket) != 0 || scan_ledger(j, f, bucket) != 0) {
        snprintf(j->err, sizeof j->err, "cannot read the spill files (see log)");
        return -1;
    }
    if (lookups(j, &f->b) != 0) {
        snprintf(j->err, sizeof j->err, "%s", payq_ledger_error(j->ledger));
        return -1;
    }
    payq_compare_verdicts(&j->cmp, &f->b);
    return 0;
}

int payq_join_buckets(struct payq_join *j)
{
    struct bucket_files f;
    memset(&f, 0, sizeof f);
    int rc = 0, n = payq_spill_buckets(j->spill);
    payq_progress_phase(j->prog, "compare", "buckets", (uint64_t)n);
    for (int b = 0; b < n && rc == 0; b++) {
        rc = join_bucket(j, &f, b);
        payq_progress_update(j->prog, (uint64_t)b + 1);
    }
    payq_progress_clear(j->prog);
    payq_buf_free(&f.audit);
    payq_buf_free(&f.ledger);
    payq_compare_bucket_free(&f.b);
    return rc;
}

/* ---- undated transfers ---- */

enum { UNDATED_ABSENT = 0, UNDATED_ON_DATE, UNDATED_ELSEWHERE };

struct undated_ctx {
    struct payq_join *j;
    struct payq_strmap idx; /* id (in recs) -> index of its first record */
    unsigned char *state;   /* per index: UNDATED_* */
};

static void on_undated_found(void *ctx, const char *date, const struct payq_spill_rec *row)
{
    struct undated_ctx *u = ctx;
    size_t i;
    if (payq_strmap_get(&u->idx, row->id, &i))
        u->state[i] = strcmp(date, u->j->cmp.date) == 0 ? UNDATED_ON_DATE : UNDATED_ELSEWHERE;
}

/* The ledger dated these by their arrival: take its word for the date. */
static int undated_verdicts(struct payq_join *j, const struct payq_buf *recs,
                            const struct undated_ctx *u)
{
    struct payq_spill_rec r;
    size_t off = 0, i;
    int rc;
    while ((rc = payq_spill_next(recs, &off, &r)) > 0) {
        payq_strmap_get(&u->idx, r.id, &i);
        if (u->state[i] == UNDATED_ABSENT) {
            payq_compare_absent(&j->cmp, &r, " (no business_date and no AMQP timestamp)");
        } else if (u->state[i] == UNDATED_ON_DATE) {
            if (payq_spill_put(j->spill, PAYQ_SPILL_AUDIT, &r) != 0) {
                snprintf(j->err, sizeof j->err, "cannot write the spill files (see log)");
                return -1;
            }
            j->cmp.st.undated_found++;
        }
    }
    return rc;
}

int payq_join_undated(struct payq_join *j, const struct payq_buf *recs)
{
    struct payq_spill_rec r;
    struct undated_ctx u = {.j = j};
    size_t off = 0, n = 0, cap = 0, i;
    const char **ids = NULL;
    int rc;
    while ((rc = payq_spill_next(recs, &off, &r)) > 0) {
        if (payq_strmap_get(&u.idx, r.id, &i))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            ids = payq_xreallocarray(ids, cap, sizeof *ids);
        }
        payq_strmap_put(&u.idx, r.id, n);
        ids[n++] = r.id;
    }
    u.state = payq_xcalloc(n ? n : 1, 1);
    if (rc == 0 && n && payq_ledger_find_transfers(j->ledger, ids, n, on_undated_found, &u) != 0) {
        snprintf(j->err, sizeof j->err, "%s", payq_ledger_error(j->ledger));
        rc = -1;
    }
    if (rc == 0)
        rc = undated_verdicts(j, recs, &u);
    if (rc < 0 && !j->err[0])
        snprintf(j->err, sizeof j->err, "corrupt list of undated transfers (see log)");
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

int payq_join_dead(struct payq_join *j, struct payq_audit_invalid *inv, size_t n)
{
    if (n == 0)
        return 0;
    qsort(inv, n, sizeof *inv, cmp_invalid);
    size_t u = 1; /* the same body twice is one dead letter */
    for (size_t i = 1; i < n; i++)
        if (memcmp(inv[i].body_hash, inv[u - 1].body_hash, 32) != 0)
            inv[u++] = inv[i];
    uint8_t(*hashes)[32] = payq_xreallocarray(NULL, u, sizeof *hashes);
    bool *found = payq_xcalloc(u, sizeof *found);
    for (size_t i = 0; i < u; i++)
        memcpy(hashes[i], inv[i].body_hash, 32);
    struct dead_ctx d = {inv, u, found};
    int rc = payq_ledger_find_dead(j->ledger, (const uint8_t(*)[32])hashes, u, on_dead_found, &d);
    if (rc != 0)
        snprintf(j->err, sizeof j->err, "%s", payq_ledger_error(j->ledger));
    for (size_t i = 0; rc == 0 && i < u; i++)
        payq_compare_dead_verdict(&j->cmp, &inv[i], found[i]);
    j->cmp.st.dead_checked = u;
    free(hashes);
    free(found);
    return rc;
}
