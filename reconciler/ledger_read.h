/* ledger_read: the reconciler's read-only view of the PostgreSQL ledger,
 * through pg.read_conninfo (role payq_reader, usually a hot standby).
 *
 *  - scan: the day's payq.transfers rows in one binary COPY (copy_row.h;
 *    one row in memory at a time; one statement, bounded by a timeout of
 *    its own rather than pg.statement_timeout), handed to a sink. It may
 *    run on a thread of its own while the audit stream is read (nothing
 *    else may use the reader meanwhile): rows that commit after its
 *    snapshot are found by find_transfers, which returns whole rows for
 *    the comparison. A standby may cancel a query that conflicts with
 *    recovery (SQLSTATE 40001): the scan then starts over, a few times,
 *    after telling the sink.
 *  - wait_replay: a standby serves what it has replayed, which may trail
 *    what it has received; wait (bounded) until replay reaches a mark
 *    taken on the primary when it is called (after the stream's marker;
 *    the standby's received position when the primary cannot be reached),
 *    so every commit the worker had acked by then is visible to the
 *    lookups.
 *  - check_invariants: the books' invariants (started at open).
 *  - find_*: lookups by id or hash, in chunks, for the few records the
 *    comparison could not settle from the day's rows alone.
 * Errors are logged where detected (payq_pg_check); payq_ledger_error()
 * gives a one-line reason for the CLI. */
#ifndef PAYQ_RECON_LEDGER_READ_H
#define PAYQ_RECON_LEDGER_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "breaks.h"
#include "config.h"
#include "progress.h"
#include "spill.h"

struct payq_ledger_reader;

struct payq_ledger_stats {
    bool standby;           /* the server was in recovery */
    char server[160];       /* host:port that answered */
    int64_t replay_wait_ms; /* time spent waiting for replay */
    uint64_t rows;          /* transfer rows of the date */
    int attempts;           /* scans started (more after a recovery conflict or a lost session) */
    int64_t read_ms;        /* the scan plus the wait for the invariants */
    int64_t scan_ms;        /* the day's rows alone, every attempt */
    /* How long the run waited for the invariants after the scan: the part
     * of them that was not hidden behind the stream read and the scan. */
    int64_t invariants_wait_ms;
};

struct payq_ledger_sink {
    void *ctx;
    /* One row of the date. Non-zero stops the scan (logged by the sink). */
    int (*row)(void *ctx, const struct payq_spill_rec *r);
    /* The scan starts over: forget every row given so far. */
    int (*restart)(void *ctx);
};

/* Connects and sets the session up (read only, statement_timeout), and
 * starts the invariants (payq.verify_books() on pg.recon_conninfo; every
 * date and the checkpoints rebuilt when full_invariants). On failure
 * returns -1, *out NULL, and a one-line reason in err. */
int payq_ledger_open(const struct payq_config *cfg, bool full_invariants,
                     struct payq_ledger_reader **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void payq_ledger_close(struct payq_ledger_reader *r); /* safe on NULL */

/* The reason of the last failure, for the CLI's one line. */
const char *payq_ledger_error(const struct payq_ledger_reader *r);

int payq_ledger_wait_replay(struct payq_ledger_reader *r, int timeout_ms,
                            struct payq_ledger_stats *st) __attribute__((warn_unused_result));

/* Scans the date's rows into the sink in one snapshot. Returns 0 or -1. */
int payq_ledger_scan(struct payq_ledger_reader *r, const char *date,
                     const struct payq_ledger_sink *sink, struct payq_progress *prog,
                     struct payq_ledger_stats *st) __attribute__((warn_unused_result));
/* Makes a scan running on another thread stop (it then fails with
 * "interrupted"): at its next batch of rows, or at once in a thread that
 * called payq_ledger_stop_waits. */
void payq_ledger_cancel(struct payq_ledger_reader *r);

/* Makes the calling thread's waits on the database (the reader's, and any
 * other) give up at once when a stop signal arrives or payq_ledger_cancel
 * is called: the session is closed with its statement in flight, which
 * the server then rolls back, and the reader tries nothing again. Without
 * it a stop waits for the statement, a day's scan or the invariants
 * behind a lock, for up to their hour. Cleared with r NULL: what the run
 * writes after a stop (its record) must not be cut short. */
void payq_ledger_stop_waits(struct payq_ledger_reader *r);

/* Waits for the invariants started at open (or runs them) and records
 * their invariant_violation breaks. Returns 0 or -1. */
int payq_ledger_check_invariants(struct payq_ledger_reader *r, struct payq_breaks *breaks,
                                 struct payq_ledger_stats *st) __attribute__((warn_unused_result));

/* Transfers with these ids, any date: calls hit with the date it is booked
 * on and the whole row (strings valid during the call) for each one found. */
int payq_ledger_find_transfers(struct payq_ledger_reader *r, const char *const *ids, size_t n,
                               void (*hit)(void *ctx, const char *date,
                                           const struct payq_spill_rec *row),
                               void *ctx) __attribute__((warn_unused_result));

/* payq.conflicts rows of kind transfer for these ids. */
int payq_ledger_find_conflicts(struct payq_ledger_reader *r, const char *const *ids, size_t n,
                               void (*hit)(void *ctx, const char *id, const uint8_t hash[32]),
                               void *ctx) __attribute__((warn_unused_result));

/* payq.dead_letters rows with these body hashes. */
int payq_ledger_find_dead(struct payq_ledger_reader *r, const uint8_t (*hashes)[32], size_t n,
                          void (*hit)(void *ctx, const uint8_t hash[32]), void *ctx)
    __attribute__((warn_unused_result));

/* Where a default read of the audit stream for date starts (see
 * schemas/sql/004_audit_index.sql): 1 with *offset set, 0 when no run has
 * indexed the stream yet (read it from its first message), -1 when the
 * index cannot be read (logged). */
int payq_ledger_audit_start(struct payq_ledger_reader *r, const char *date, int64_t *offset)
    __attribute__((warn_unused_result));

/* Parses 64 hex digits (an optional leading "\x" is skipped). */
int payq_ledger_unhex(const char *s, uint8_t out[32]) __attribute__((warn_unused_result));

#endif
