/* rules: the money rules of one batch, as pure functions over plain structs
 * (no I/O). The ledger fills in what the database says (which accounts exist,
 * their currency, flags and balances; which transfer ids exist and with what
 * payload), payq_rules_decide_batch() decides every message's outcome in
 * delivery order on running balances, and the ledger stores the result (the
 * outcomes and each account's aggregated deltas). Tested without servers in
 * tests/unit/test_rules.c. */
#ifndef PAYQ_WORKER_RULES_H
#define PAYQ_WORKER_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "strmap.h"

#define PAYQ_RULES_NO_INDEX ((size_t)-1)

/* An account as the batch sees it, with its running balances. */
struct payq_rules_acct {
    const char *id;   /* borrowed from the batch's messages */
    bool in_db;       /* a row exists (before, or opened by this batch) */
    bool cached;      /* currency and flags came from the worker's account cache */
    size_t opened_at; /* message index that opens it in this batch, or NO_INDEX */
    char currency[4];
    unsigned flags;                    /* PAYQ_ACCT_* */
    int64_t debits, credits;           /* running balances */
    int64_t debit_delta, credit_delta; /* this batch: what the ledger adds to the row */
};

/* A transfer id already in the ledger, as stored (strings borrowed from the
 * caller, e.g. a PGresult that outlives the decision). */
struct payq_rules_existing {
    const char *hash_hex; /* lowercase hex of payload_sha256 */
    const char *debit, *credit;
    int64_t amount;
    const char *currency, *batch_id, *date, *reference; /* "" when absent */
};

/* One batch's view of the ledger. Zero-initialise; payq_rules_free() releases
 * its memory. Nothing it points to is owned: ids are borrowed from the
 * messages and existing rows from the caller. */
struct payq_rules {
    struct payq_rules_acct *accts;
    size_t nacct, acct_cap;
    struct payq_strmap acct_idx; /* id -> accts index */
    struct payq_rules_existing *ex;
    size_t nex, ex_cap;
    struct payq_strmap ex_idx; /* id -> ex index */
    struct payq_strmap seen;   /* id -> message index of its first new row */
    size_t *party;             /* transfer message i: accts index of its debit account at
                                  [2i], of its credit account at [2i + 1] */
    size_t party_cap;
};

/* Empties r and registers every account msgs[0..n) names, as absent from the
 * database, in order of first mention. Aborts on OOM. */
void payq_rules_reset(struct payq_rules *r, struct payq_wmsg *const *msgs, size_t n);
void payq_rules_free(struct payq_rules *r); /* safe on a zeroed struct */

/* The account the batch names as id, or NULL when it names none. */
struct payq_rules_acct *payq_rules_acct(struct payq_rules *r, const char *id);

/* The debit and credit accounts of transfer message i (as registered by
 * payq_rules_reset: no lookup by id). */
static inline struct payq_rules_acct *payq_rules_debit(const struct payq_rules *r, size_t i)
{
    return &r->accts[r->party[2 * i]];
}
static inline struct payq_rules_acct *payq_rules_credit(const struct payq_rules *r, size_t i)
{
    return &r->accts[r->party[2 * i + 1]];
}

/* Records that this batch created account id (the database said so): it
 * exists from its first account message in msgs on, so earlier transfers
 * still find it missing, as delivery order says. */
void payq_rules_opened(struct payq_rules *r, const char *id, struct payq_wmsg *const *msgs,
                       size_t n);

/* Records that transfer id is already in the ledger as *e (copied; its
 * strings and id stay borrowed). Aborts on OOM. */
void payq_rules_add_existing(struct payq_rules *r, const char *id,
                             const struct payq_rules_existing *e);

/* Decides every message's outcome (and reason) in delivery order: transfers
 * are posted, rejected, duplicates or conflicts; account messages opened,
 * duplicates or conflicts; invalid messages dead. Posted transfers move the
 * running balances and add to each account's debit_delta/credit_delta. Call once per reset. */
void payq_rules_decide_batch(struct payq_rules *r, struct payq_wmsg **msgs, size_t n);

/* The balance rules for one transfer at message index idx: returns NULL to
 * post (with the new running debits of d in *nd and credits of c in *nc),
 * else the rejection reason (a static string). */
const char *payq_rules_decide(const struct payq_rules_acct *d, const struct payq_rules_acct *c,
                              size_t idx, int64_t amount, const char *currency, int64_t *nd,
                              int64_t *nc);

/* The first field in which transfer message m differs from what holds its id
 * (TigerBeetle-style), as a static conflict reason. */
const char *payq_rules_conflict_reason(const struct payq_wmsg *m,
                                       const struct payq_rules_existing *e);

#endif
