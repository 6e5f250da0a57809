/* balances: each posted transfer's balances after it (see balances.h). */
#include "balances.h"

void payq_balances_after(struct payq_rules *r, struct payq_wmsg **msgs, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        struct payq_wmsg *m = msgs[i];
        if (m->kind != WMSG_TRANSFER || m->outcome != WOUT_POSTED)
            continue;
        const struct payq_transfer *t = &m->u.transfer;
        struct payq_rules_acct *d = payq_rules_debit(r, i);
        struct payq_rules_acct *c = payq_rules_credit(r, i);
        m->debit_balance = d->credits - d->debits;
        m->credit_balance = c->credits - c->debits;
        /* Undo it: both stay within bigint, as they did when it was applied. */
        d->debits -= t->amount;
        c->credits -= t->amount;
    }
}
