/* spill: the partitions of the reconciler's Grace hash join. Audit records
 * and ledger rows are appended to one of `buckets` files per side, chosen
 * by a hash of the transfer id, under a private directory made with
 * mkdtemp() inside reconciler.spill_dir. Comparing then needs only one
 * bucket of each side in memory at a time: with 256 buckets a day of 10M
 * transfers is about 40,000 per bucket.
 *
 * Each side buffers a little per bucket (16 MiB in all) and appends a full
 * buffer with open/write/close, so the number of open descriptors never
 * depends on the bucket count (4096 buckets would pass the usual 1024
 * limit). Records are binary, for this process only: a header then the
 * NUL-terminated strings, so a loaded bucket is read in place.
 *
 * The two sides share nothing while they are written: one thread may put,
 * flush or reset the audit side while another does the ledger side. */
#ifndef PAYQ_RECON_SPILL_H
#define PAYQ_RECON_SPILL_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

enum payq_spill_side {
    PAYQ_SPILL_AUDIT = 0,
    PAYQ_SPILL_LEDGER = 1,
};

enum payq_spill_status {
    PAYQ_SPILL_NONE = 0, /* audit records */
    PAYQ_SPILL_POSTED = 1,
    PAYQ_SPILL_REJECTED = 2,
};

/* One transfer as either side saw it. Strings are "" when absent. */
struct payq_spill_rec {
    const char *id;
    const char *batch_id;
    const char *debit;
    const char *credit;
    const char *reason; /* ledger: rejection reason; audit: "" */
    int64_t amount;
    uint64_t seq;     /* audit: position in the stream, to tell first from later */
    uint8_t hash[32]; /* payq_transfer_hash (audit) or payload_sha256 (ledger) */
    char currency[4];
    uint8_t status; /* enum payq_spill_status */
    /* audit: the message names its business_date (else it was dated by its
     * AMQP timestamp or by the ledger); ledger: false */
    bool body_dated;
};

struct payq_spill;

/* Makes the private directory under parent and prepares `buckets`
 * partitions per side (1..4096). Returns 0 or -1 (logged); *out is NULL on
 * failure. */
int payq_spill_new(const char *parent, int buckets, struct payq_spill **out)
    __attribute__((warn_unused_result));
/* Removes every file of the directory and the directory itself. Safe on
 * NULL. */
void payq_spill_free(struct payq_spill *s);

int payq_spill_buckets(const struct payq_spill *s);
/* Path of an extra file in the private directory (removed with it) into
 * buf; returns buf. */
char *payq_spill_path(const struct payq_spill *s, const char *name, char *buf, size_t len);

/* Appends r to its bucket. Returns 0 or -1 on a write error (logged once;
 * later calls for that side keep failing). */
int payq_spill_put(struct payq_spill *s, enum payq_spill_side side, const struct payq_spill_rec *r)
    __attribute__((warn_unused_result));
/* Writes out what is buffered for a side and frees its buffers. */
int payq_spill_flush(struct payq_spill *s, enum payq_spill_side side)
    __attribute__((warn_unused_result));
/* Empties a side (a ledger read that must start over). */
int payq_spill_reset(struct payq_spill *s, enum payq_spill_side side)
    __attribute__((warn_unused_result));

/* Reads a whole bucket of a flushed side into out (replacing its content).
 * An absent file is an empty bucket. Returns 0 or -1 (logged). */
int payq_spill_load(struct payq_spill *s, enum payq_spill_side side, int bucket,
                    struct payq_buf *out) __attribute__((warn_unused_result));

/* Encodes r at the end of out (the format payq_spill_next reads). */
void payq_spill_encode(struct payq_buf *out, const struct payq_spill_rec *r);

/* Decodes the record at *off in data and advances *off. Strings point into
 * data, which must stay unchanged while they are used. Returns 1 for a
 * record, 0 at the end, -1 if the data is corrupt (logged). */
int payq_spill_next(const struct payq_buf *data, size_t *off, struct payq_spill_rec *out)
    __attribute__((warn_unused_result));

/* Bytes written so far, both sides (for the report). */
uint64_t payq_spill_bytes(const struct payq_spill *s);

#endif
