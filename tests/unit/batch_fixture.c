/* batch_fixture: see batch_fixture.h. */
#include "batch_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    *state = f;
    return 0;
}

int fx_teardown(void **state)
{
    struct fx *f = *state;
    payq_rules_free(&f->r);
    free(f);
    return 0;
}

struct payq_wmsg *fx_add(struct fx *f, enum wmsg_kind kind)
{
    assert_true(f->n < FX_MAXMSG);
    struct payq_wmsg *m = &f->m[f->n];
    memset(m, 0, sizeof *m);
    m->kind = kind;
    f->p[f->n++] = m;
    return m;
}

struct payq_wmsg *fx_xfer_full(struct fx *f, const char *id, const char *debit, const char *credit,
                               int64_t amount, const char *currency, const char *batch_id,
                               const char *date, const char *reference, char *metadata)
{
    struct payq_wmsg *m = fx_add(f, WMSG_TRANSFER);
    struct payq_transfer *t = &m->u.transfer;
    snprintf(t->id, sizeof t->id, "%s", id);
    snprintf(t->debit_account, sizeof t->debit_account, "%s", debit);
    snprintf(t->credit_account, sizeof t->credit_account, "%s", credit);
    t->amount = amount;
    snprintf(t->currency, sizeof t->currency, "%s", currency);
    snprintf(t->batch_id, sizeof t->batch_id, "%s", batch_id);
    snprintf(t->business_date, sizeof t->business_date, "%s", date);
    snprintf(t->reference, sizeof t->reference, "%s", reference);
    t->metadata = metadata;
    snprintf(m->business_date, sizeof m->business_date, "%s", date);
    payq_transfer_hash(t, m->hash);
    return m;
}

struct payq_wmsg *fx_xfer(struct fx *f, const char *id, const char *debit, const char *credit,
                          int64_t amount)
{
    return fx_xfer_full(f, id, debit, credit, amount, "EUR", "B-1", "2026-01-02", "", NULL);
}

void fx_begin(struct fx *f)
{
    payq_rules_reset(&f->r, f->p, f->n);
}

void fx_decide(struct fx *f)
{
    payq_rules_decide_batch(&f->r, f->p, f->n);
}

struct payq_rules_acct *fx_in_db(struct fx *f, const char *id, const char *currency, unsigned flags,
                                 int64_t debits, int64_t credits)
{
    struct payq_rules_acct *a = payq_rules_acct(&f->r, id);
    assert_non_null(a);
    a->in_db = true;
    snprintf(a->currency, sizeof a->currency, "%s", currency);
    a->flags = flags;
    a->debits = debits;
    a->credits = credits;
    return a;
}
