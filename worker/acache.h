/* acache: what never changes about an account (that it exists, its currency
 * and its flags), remembered across batches by one worker process, so that
 * most batches need not read payq.accounts at all.
 *
 * Nothing to keep consistent: an account row is never deleted (no role may),
 * and only its two balance columns may ever be updated (payq_worker's
 * column grant; the owner does not run the ledger). Only rows that a
 * committed batch saw are remembered (payq_acache_put after a COMMIT the
 * standby confirmed), so a rolled-back account opening is never cached.
 * Balances are not cached: restricted accounts are still locked and read
 * every batch, and an unrestricted account's balance is needed only to
 * foresee an overflow, which the bigint column refuses anyway (see
 * ledger.c). Bounded: at `max` entries the cache is emptied and refills
 * from the next batches' reads. */
#ifndef PAYQ_WORKER_ACACHE_H
#define PAYQ_WORKER_ACACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "strmap.h"

struct payq_acache_entry {
    char *id; /* owned */
    char currency[4];
    unsigned flags;
};

struct payq_acache {
    struct payq_acache_entry *e;
    size_t n, cap, max;     /* max 0: the cache is off */
    struct payq_strmap idx; /* id (the entry's own copy) -> index in e */
    unsigned long long hits, misses;
};

/* An empty cache of at most max entries (0: off). */
void payq_acache_init(struct payq_acache *c, size_t max);
void payq_acache_free(struct payq_acache *c); /* safe on a zeroed struct */

/* The entry for id, or NULL. Counts a hit or a miss. */
const struct payq_acache_entry *payq_acache_get(struct payq_acache *c, const char *id);

/* Remembers id (copied) with its currency and flags; a known id is left as
 * it is. Empties the cache first when it is full. */
void payq_acache_put(struct payq_acache *c, const char *id, const char *currency, unsigned flags);

#endif
