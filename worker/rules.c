/* rules: the money rules of one batch, pure (see rules.h). */
#include "rules.h"
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "money.h"

/* The index in accts of account id, registered as absent if new. */
static size_t acct_index(struct payq_rules *r, const char *id)
{
    size_t i;
    if (payq_strmap_get(&r->acct_idx, id, &i))
        return i;
    if (r->nacct == r->acct_cap) {
        r->acct_cap = r->acct_cap ? r->acct_cap * 2 : 256;
        r->accts = payq_xreallocarray(r->accts, r->acct_cap, sizeof *r->accts);
    }
    struct payq_rules_acct *a = &r->accts[r->nacct];
    memset(a, 0, sizeof *a);
    a->id = id;
    a->opened_at = PAYQ_RULES_NO_INDEX;
    payq_strmap_put(&r->acct_idx, id, r->nacct);
    return r->nacct++;
}

static struct payq_rules_acct *acct_get(struct payq_rules *r, const char *id)
{
    return &r->accts[acct_index(r, id)];
}

void payq_rules_reset(struct payq_rules *r, struct payq_wmsg *const *msgs, size_t n)
{
    r->nacct = 0;
    r->nex = 0;
    payq_strmap_reset(&r->acct_idx, n * 2);
    payq_strmap_reset(&r->ex_idx, n);
    payq_strmap_reset(&r->seen, n);
    if (r->party_cap < 2 * n) {
        r->party_cap = 2 * n;
        r->party = payq_xreallocarray(r->party, r->party_cap, sizeof *r->party);
    }
    for (size_t i = 0; i < n; i++) {
        const struct payq_wmsg *m = msgs[i];
        if (m->kind == WMSG_TRANSFER) {
            r->party[2 * i] = acct_index(r, m->u.transfer.debit_account);
            r->party[2 * i + 1] = acct_index(r, m->u.transfer.credit_account);
        } else if (m->kind == WMSG_ACCOUNT) {
            acct_get(r, m->u.account.id);
        }
    }
}

void payq_rules_free(struct payq_rules *r)
{
    free(r->accts);
    free(r->ex);
    free(r->party);
    payq_strmap_free(&r->acct_idx);
    payq_strmap_free(&r->ex_idx);
    payq_strmap_free(&r->seen);
    memset(r, 0, sizeof *r);
}

struct payq_rules_acct *payq_rules_acct(struct payq_rules *r, const char *id)
{
    size_t i;
    return payq_strmap_get(&r->acct_idx, id, &i) ? &r->accts[i] : NULL;
}

void payq_rules_opened(struct payq_rules *r, const char *id, struct payq_wmsg *const *msgs,
                       size_t n)
{
    struct payq_rules_acct *a = payq_rules_acct(r, id);
    if (!a)
        return;
    for (size_t i = 0; i < n; i++) {
        if (msgs[i]->kind == WMSG_ACCOUNT && strcmp(msgs[i]->u.account.id, id) == 0) {
            a->opened_at = i;
            return;
        }
    }
    a->opened_at = PAYQ_RULES_NO_INDEX;
}

void payq_rules_add_existing(struct payq_rules *r, const char *id,
                             const struct payq_rules_existing *e)
{
    if (r->nex == r->ex_cap) {
        r->ex_cap = r->ex_cap ? r->ex_cap * 2 : 256;
        r->ex = payq_xreallocarray(r->ex, r->ex_cap, sizeof *r->ex);
    }
    r->ex[r->nex] = *e;
    payq_strmap_put(&r->ex_idx, id, r->nex++);
}

const char *payq_rules_conflict_reason(const struct payq_wmsg *m,
                                       const struct payq_rules_existing *e)
{
    const struct payq_transfer *t = &m->u.transfer;
    if (t->amount != e->amount)
        return "exists_with_different_amount";
    if (strcmp(t->debit_account, e->debit) != 0)
        return "exists_with_different_debit_account";
    if (strcmp(t->credit_account, e->credit) != 0)
        return "exists_with_different_credit_account";
    if (strcmp(t->currency, e->currency) != 0)
        return "exists_with_different_currency";
    if (strcmp(t->batch_id, e->batch_id) != 0)
        return "exists_with_different_batch_id";
    if (strcmp(m->business_date, e->date) != 0)
        return "exists_with_different_business_date";
    if (strcmp(t->reference, e->reference) != 0)
        return "exists_with_different_reference";
    return "exists_with_different_payload";
}

/* Idempotency: returns true (and sets the outcome) when the id was seen
 * before, in the ledger or earlier in this batch. */
static bool check_duplicate(struct payq_rules *r, struct payq_wmsg **msgs, struct payq_wmsg *m)
{
    const struct payq_transfer *t = &m->u.transfer;
    size_t i;
    if (r->nex > 0 && payq_strmap_get(&r->ex_idx, t->id, &i)) {
        const struct payq_rules_existing *e = &r->ex[i];
        char hex[65];
        payq_hash_hex(m->hash, hex);
        if (strcmp(hex, e->hash_hex) == 0) {
            m->outcome = WOUT_DUPLICATE;
        } else {
            m->outcome = WOUT_CONFLICT;
            m->reason = payq_rules_conflict_reason(m, e);
        }
        return true;
    }
    if (payq_strmap_get(&r->seen, t->id, &i)) {
        const struct payq_wmsg *first = msgs[i];
        const struct payq_transfer *f = &first->u.transfer;
        if (memcmp(first->hash, m->hash, 32) == 0) {
            m->outcome = WOUT_DUPLICATE;
        } else {
            const struct payq_rules_existing e = {
                .debit = f->debit_account,
                .credit = f->credit_account,
                .amount = f->amount,
                .currency = f->currency,
                .batch_id = f->batch_id,
                .date = first->business_date,
                .reference = f->reference,
            };
            m->outcome = WOUT_CONFLICT;
            m->reason = payq_rules_conflict_reason(m, &e);
        }
        return true;
    }
    return false;
}

const char *payq_rules_decide(const struct payq_rules_acct *d, const struct payq_rules_acct *c,
                              size_t idx, int64_t amount, const char *currency, int64_t *nd,
                              int64_t *nc)
{
    bool d_open = d->in_db && (d->opened_at == PAYQ_RULES_NO_INDEX || d->opened_at < idx);
    bool c_open = c->in_db && (c->opened_at == PAYQ_RULES_NO_INDEX || c->opened_at < idx);
    if (!d_open || !c_open)
        return "account_not_found";
    if (strcmp(d->currency, currency) != 0 || strcmp(c->currency, currency) != 0)
        return "currency_mismatch";
    if (!payq_money_add(d->debits, amount, nd) || !payq_money_add(c->credits, amount, nc))
        return "overflow";
    if ((d->flags & PAYQ_ACCT_DEBITS_MUST_NOT_EXCEED_CREDITS) && *nd > d->credits)
        return "insufficient_funds";
    if ((c->flags & PAYQ_ACCT_CREDITS_MUST_NOT_EXCEED_DEBITS) && *nc > c->debits)
        return "credit_limit";
    return NULL;
}

static void apply_transfer(struct payq_rules *r, struct payq_wmsg **msgs, size_t idx)
{
    struct payq_wmsg *m = msgs[idx];
    const struct payq_transfer *t = &m->u.transfer;
    if (check_duplicate(r, msgs, m))
        return;
    payq_strmap_put(&r->seen, t->id, idx);
    struct payq_rules_acct *d = payq_rules_debit(r, idx);
    struct payq_rules_acct *c = payq_rules_credit(r, idx);
    int64_t nd = 0, nc = 0;
    m->reason = payq_rules_decide(d, c, idx, t->amount, t->currency, &nd, &nc);
    if (m->reason) {
        m->outcome = WOUT_REJECTED;
        return;
    }
    m->outcome = WOUT_POSTED;
    d->debits = nd;
    c->credits = nc;
    d->debit_delta += t->amount; /* cannot overflow: bounded by the new balance */
    c->credit_delta += t->amount;
}

static void apply_account(struct payq_rules *r, struct payq_wmsg *m, size_t idx)
{
    struct payq_rules_acct *a = acct_get(r, m->u.account.id);
    if (a->opened_at == idx) {
        m->outcome = WOUT_OPENED;
    } else if (strcmp(a->currency, m->u.account.currency) != 0) {
        m->outcome = WOUT_CONFLICT;
        m->reason = "exists_with_different_currency";
    } else if (a->flags != m->u.account.flags) {
        m->outcome = WOUT_CONFLICT;
        m->reason = "exists_with_different_flags";
    } else {
        m->outcome = WOUT_DUPLICATE;
    }
}

void payq_rules_decide_batch(struct payq_rules *r, struct payq_wmsg **msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct payq_wmsg *m = msgs[i];
        if (m->kind == WMSG_TRANSFER)
            apply_transfer(r, msgs, i);
        else if (m->kind == WMSG_ACCOUNT)
            apply_account(r, m, i);
        else
            m->outcome = WOUT_DEAD;
    }
}
