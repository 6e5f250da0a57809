/* compare: the verdicts of the reconciliation, as pure functions over plain
 * structs (no I/O: join.c fetches the records and the lookups, and hands
 * them over here).
 *
 * The audit side of one spill bucket is loaded into a payq_compare_bucket
 * keyed by transfer id, with identical copies dropped (publisher retries
 * and re-runs are normal) and every distinct payload of an id kept; then
 * the day's ledger rows stream past it. What the day's rows cannot settle
 * is looked up by the caller: an audited id absent from the day's rows
 * (booked on another date? committed after the scan's snapshot, then
 * compared in full like a scanned row? re-used with another payload?), and
 * payloads that may have been refused as id conflicts
 * (payq.conflicts). payq_compare_verdicts() then records one verdict per
 * audited id and tallies it.
 *
 * Breaks by category (breaks.h):
 *  - unexpected_in_ledger: a row of the date with no audited message;
 *  - content_mismatch: a row that differs from its message (a field, the
 *    fingerprint, or the business_date: a message that named its date and
 *    was booked on another);
 *  - id_conflict: an id audited with several payloads, each one the ledger
 *    does not hold;
 *  - missing_in_ledger / in_flight: audited, not in the ledger, while
 *    payq.transfers is empty / holds messages. */
#ifndef PAYQ_RECON_COMPARE_H
#define PAYQ_RECON_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "breaks.h"
#include "spill.h"
#include "strmap.h"
#include "tally.h"

struct payq_compare_stats {
    uint64_t audit_records; /* audited transfer messages of the date, copies included */
    uint64_t audit_ids;     /* distinct ids among them */
    uint64_t duplicates;    /* identical copies dropped */
    uint64_t ledger_rows;   /* ledger rows of the date compared */
    uint64_t matched;       /* audited ids found among them */
    uint64_t elsewhere;     /* same payload, booked on another date (undated retries) */
    uint64_t late;          /* committed after the scan's snapshot, compared from a lookup */
    uint64_t undated_found; /* undated transfers the ledger booked on the date */
    uint64_t dead_checked;  /* distinct undecodable messages looked up */
    uint64_t dead_found;    /* of those, recorded in payq.dead_letters */
};

/* Where verdicts go, and what they depend on. */
struct payq_compare {
    struct payq_tally *tally;
    struct payq_breaks *breaks;
    const char *date; /* the business date reconciled */
    int64_t pending;  /* messages payq.transfers still holds: absent ids are in flight */
    struct payq_compare_stats st;
};

#define PAYQ_COMPARE_NONE SIZE_MAX

/* One distinct payload of an audited id. */
struct payq_compare_payload {
    struct payq_spill_rec r;
    size_t next;   /* next distinct payload of the same id, or PAYQ_COMPARE_NONE */
    bool recorded; /* found in payq.conflicts as a refused payload */
};

enum payq_compare_state {
    PAYQ_ID_UNSEEN = 0, /* not among the day's rows (until looked up) */
    PAYQ_ID_MATCHED,    /* among the day's rows (or looked up on the date) */
    PAYQ_ID_ELSEWHERE,  /* same payload, booked on another date */
    PAYQ_ID_TAKEN,      /* the id holds another payload on another date */
};

/* One audited id and what the ledger holds for it. */
struct payq_compare_id {
    size_t first;    /* payloads index of the first payload seen */
    size_t accepted; /* the payload the ledger holds, else first */
    size_t npayloads;
    enum payq_compare_state state;
    bool check_conflicts;
    bool hash_matched;          /* the ledger's payload is one of the audited ones */
    struct payq_spill_rec lrec; /* PAYQ_ID_MATCHED: the ledger row */
    uint8_t lhash[32];
    char ldate[11]; /* looked up: the date the ledger booked it on */
};

/* The audit side of one bucket. Record strings are not copied: they must
 * stay valid until the bucket is reset (join.c keeps the loaded bucket). */
struct payq_compare_bucket {
    struct payq_compare_payload *payloads;
    size_t npayloads, payloads_cap;
    struct payq_compare_id *ids;
    size_t nids, ids_cap;
    struct payq_strmap map; /* id -> ids index */
    const char **keys;      /* ids to look up (payq_compare_*_keys) */
    size_t nkeys, keys_cap;
    char **owned; /* strings of looked-up rows, freed at reset */
    size_t nowned, owned_cap;
};

/* Empties the bucket for about expect_ids ids (memory is kept). */
void payq_compare_bucket_reset(struct payq_compare_bucket *b, size_t expect_ids);
void payq_compare_bucket_free(struct payq_compare_bucket *b); /* safe on a zeroed bucket */

/* Adds one audit record: an identical copy only counts, a new payload of a
 * known id joins its chain, a new id gets an entry. */
void payq_compare_add_audit(struct payq_compare *c, struct payq_compare_bucket *b,
                            const struct payq_spill_rec *r);

/* One ledger row of the date: tallied; unexpected_in_ledger when no
 * message was audited for its id, else the id is matched. */
void payq_compare_add_ledger(struct payq_compare *c, struct payq_compare_bucket *b,
                             const struct payq_spill_rec *l);

/* Fills b->keys with the ids absent from the day's rows (to look up in the
 * whole ledger), or with the ids whose refused payloads should be looked up
 * in payq.conflicts; returns how many. */
size_t payq_compare_unseen_keys(struct payq_compare_bucket *b);
size_t payq_compare_conflict_keys(struct payq_compare_bucket *b);

/* Lookup results: the ledger holds row (an unseen id of the bucket) on
 * date, the reconciled date being a row committed after the scan's
 * snapshot, compared like payq_compare_add_ledger (its strings are copied);
 * the payload hash of id was refused and is recorded in payq.conflicts. */
void payq_compare_found(struct payq_compare *c, struct payq_compare_bucket *b, const char *date,
                        const struct payq_spill_rec *row);
void payq_compare_refused(struct payq_compare_bucket *b, const char *id, const uint8_t hash[32]);

/* One verdict per audited id of the bucket, each tallied as audited. */
void payq_compare_verdicts(struct payq_compare *c, const struct payq_compare_bucket *b);

/* An audited transfer the ledger does not hold: in_flight while
 * payq.transfers holds messages, else missing_in_ledger. why is appended to
 * the detail. */
void payq_compare_absent(struct payq_compare *c, const struct payq_spill_rec *a, const char *why);

/* An undecodable message: tallied as dead-lettered when found in
 * payq.dead_letters, else missing (or in flight). */
void payq_compare_dead_verdict(struct payq_compare *c, const struct payq_audit_invalid *v,
                               bool found);

/* One row of the ledger's invariants query (ledger_read.c): an account
 * whose stored totals differ from its posted transfers, or a currency
 * whose debits and credits differ. Amounts are decimal text. */
struct payq_invariant_row {
    bool currency_wide; /* key is a currency: debits vs credits over its accounts */
    const char *key;    /* account id or currency */
    const char *stored_debits, *stored_credits; /* accounts' debits_posted/credits_posted */
    const char *posted_debits, *posted_credits; /* sums of the posted transfers */
    bool account_exists;
};

/* Records the invariant_violation breaks of one such row. */
void payq_compare_invariant(struct payq_breaks *b, const struct payq_invariant_row *v);

#endif
