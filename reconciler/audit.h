/* audit: reads the payq.audit stream (every message published to
 * payq.ingress, kept by the broker for its retention) over AMQP 0-9-1 for
 * one business date, without consuming it.
 *
 * Completeness: before reading, a marker message with a unique message_id
 * is published (confirmed) to payq.ingress with routing key
 * reconciler.marker, which only the stream's "#" binding receives. Reading
 * stops at that marker, so everything published before the run began has
 * been read; if the marker does not arrive, the read is incomplete and the
 * run fails.
 *
 * Each transfer is decoded as the worker decodes it and dated as the worker
 * dates it (its business_date, else the UTC date of its AMQP timestamp);
 * only those of the requested date reach the sink. Manifests (routing key
 * batch) of the date reach it too. Undecodable transfer messages are handed
 * over with what could be read of them, to be looked up in
 * payq.dead_letters. Accounts are counted; other routing keys are ignored. */
#ifndef PAYQ_RECON_AUDIT_H
#define PAYQ_RECON_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "message.h"
#include "progress.h"

#define PAYQ_AUDIT_MARKER_KEY "reconciler.marker"

/* An undecodable transfer message. */
struct payq_audit_invalid {
    uint8_t body_hash[32];     /* the key of payq.dead_letters */
    char id[PAYQ_ID_MAX + 1];  /* "" when none could be read */
    char currency[4];          /* "" when none could be read */
    int64_t amount;            /* -1 when none could be read */
    bool undated;              /* no readable business_date and no timestamp */
    struct payq_msg_error err; /* why it does not decode */
};

struct payq_audit_sink {
    void *ctx;
    /* A valid transfer of the date; seq is its position in the read. */
    int (*transfer)(void *ctx, const struct payq_transfer *t, const uint8_t hash[32], uint64_t seq);
    /* A valid transfer with neither business_date nor AMQP timestamp: the
     * worker dated it by its arrival, which only the ledger knows. */
    int (*undated)(void *ctx, const struct payq_transfer *t, const uint8_t hash[32], uint64_t seq);
    void (*manifest)(void *ctx, const struct payq_manifest *m);
    void (*invalid)(void *ctx, const struct payq_audit_invalid *inv);
};

/* Where in the stream each business date seen in a read first appears
 * (its x-stream-offset), for payq.audit_index. */
struct payq_audit_index {
    char **dates; /* owned, each "YYYY-MM-DD" */
    int64_t *offsets;
    size_t n, cap;
};

struct payq_audit_req {
    const struct payq_config *cfg;
    const char *date;               /* YYYY-MM-DD */
    bool from_first;                /* read the whole stream */
    int64_t from_offset;            /* else, when >= 0, start at this stream offset */
    int64_t from_s;                 /* else start at this time (seconds since the epoch) */
    struct payq_audit_index *index; /* when not NULL, filled for every date seen */
};

struct payq_audit_stats {
    uint64_t messages;  /* deliveries read, marker included */
    uint64_t packs;     /* well-framed packs (their lines count below) */
    uint64_t transfers; /* valid transfer messages (or pack lines), any date */
    uint64_t kept;      /* of those, of the requested date */
    uint64_t undated;
    uint64_t invalid;   /* undecodable transfer messages of the date (or undated) */
    uint64_t manifests; /* valid manifests of the date */
    uint64_t invalid_manifests;
    uint64_t accounts;
    uint64_t ignored; /* other routing keys, other runs' markers */
    char marker_id[96];
    int64_t marker_offset; /* the marker's x-stream-offset, -1 if unknown */
    int64_t first_offset;  /* the first delivery's, -1 if none or unknown */
    char from[40];         /* where the read started: "first", "offset N" or a UTC time */
    int64_t read_ms;
    /* The read failed because the connection to the broker was lost (its
     * node died or went silent): a new read, from the start, may succeed. */
    bool broker_lost;
};

/* Publishes the marker and reads up to it, calling the sink. Returns 0 when
 * the stream was read whole, -1 otherwise (st->broker_lost says whether the
 * broker went away mid-read) with a one-line reason in err
 * (details are logged where detected). A sink callback returning non-zero
 * stops the read (its failure is logged by the sink). */
int payq_audit_read(const struct payq_audit_req *req, const struct payq_audit_sink *sink,
                    struct payq_progress *prog, struct payq_audit_stats *st, char *err,
                    size_t errlen) __attribute__((warn_unused_result));

void payq_audit_index_free(struct payq_audit_index *ix); /* safe on a zeroed index */

/* The UTC date (YYYY-MM-DD) of a time in seconds into buf (11 bytes). */
void payq_audit_utc_date(int64_t t, char buf[11]);

#endif
