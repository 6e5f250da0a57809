/* tally: the control totals of one business date, per currency and per
 * batch, and the batch check against the producers' manifests (ISO 20022
 * NbOfTxs/CtrlSum, NACHA batch control: compare totals first, drill down to
 * items only where they disagree).
 *
 * Sums are __int128: one transfer is at most 10^18 - 1 minor units, so a
 * day of them can exceed int64; a manifest's control total is an int64.
 *
 * Memory is proportional to the number of currencies and batches of the
 * day, not to the number of transfers (batches group up to thousands). */
#ifndef PAYQ_RECON_TALLY_H
#define PAYQ_RECON_TALLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "breaks.h"
#include "message.h"
#include "strmap.h"

#define PAYQ_TALLY_SUM_MAX 41 /* digits of a signed 128-bit value plus NUL */
#define PAYQ_TALLY_REASON_MAX 32

struct payq_reason_tally {
    char reason[PAYQ_TALLY_REASON_MAX];
    uint64_t n;
    __int128 sum;
};

/* Totals of one currency. "???" collects dead letters whose currency could
 * not be read. */
struct payq_ccy_tally {
    char currency[4];
    uint64_t audited_n; /* distinct transfers in the audit stream */
    __int128 audited_sum;
    uint64_t posted_n; /* ledger rows of the date */
    __int128 posted_sum;
    uint64_t rejected_n;
    __int128 rejected_sum;
    struct payq_reason_tally *reasons; /* owned, by rejection reason */
    size_t nreasons;
    uint64_t dead_n;   /* undecodable messages found in payq.dead_letters */
    __int128 dead_sum; /* of those whose amount could be read */
};

struct payq_ccy_sum {
    char currency[4];
    __int128 sum;
};

struct payq_batch_tally {
    char *batch_id; /* owned; also the key of the batch map */
    bool has_manifest;
    bool manifest_conflict; /* two different manifests were published */
    uint8_t manifest_hash[32];
    int64_t m_count;
    struct payq_manifest_total *m_totals; /* owned */
    size_t m_ntotals;
    uint64_t audited_n;        /* distinct transfers of the batch in the audit */
    struct payq_ccy_sum *sums; /* owned, audited per currency */
    size_t nsums;
    uint64_t posted_n, rejected_n; /* ledger rows of the batch */
};

struct payq_tally {
    struct payq_ccy_tally *ccy;
    size_t nccy, ccy_cap;
    struct payq_batch_tally *batches;
    size_t nbatches, batch_cap;
    struct payq_strmap batch_idx; /* batch_id -> index; invalid after payq_tally_sort() */
    uint64_t manifests_seen;
};

void payq_tally_init(struct payq_tally *t);
void payq_tally_free(struct payq_tally *t); /* safe on a zeroed or freed tally */

/* An audited transfer (each distinct id once). batch_id "" = none. */
void payq_tally_audited(struct payq_tally *t, const char *batch_id, const char *currency,
                        int64_t amount);
/* A ledger row of the date; reason is "" for posted rows. */
void payq_tally_ledger(struct payq_tally *t, const char *batch_id, const char *currency,
                       int64_t amount, bool posted, const char *reason);
/* An undecodable message accounted for in payq.dead_letters. currency ""
 * and amount < 0 when they could not be read from the body. */
void payq_tally_dead(struct payq_tally *t, const char *currency, int64_t amount);
/* A manifest of the date. A re-published identical manifest changes
 * nothing; a different one for the same batch marks a conflict. */
void payq_tally_manifest(struct payq_tally *t, const struct payq_manifest *m);

/* Compares every batch with its manifest and records batch_totals_mismatch
 * breaks (see the policy at the definition). */
void payq_tally_check_batches(struct payq_tally *t, struct payq_breaks *b, const char *date);

/* Sorts currencies and batches for stable output. The batch map is cleared:
 * call only when no more rows will be tallied. */
void payq_tally_sort(struct payq_tally *t);

/* Decimal text of v into buf (PAYQ_TALLY_SUM_MAX bytes); returns buf. */
char *payq_tally_format(__int128 v, char *buf);

#endif
