/* message: the payq message contract (schemas/<kind>.schema.json) as C.
 * Decoding is strict: the body must be valid UTF-8 JSON of at most
 * PAYQ_MSG_MAX_BODY bytes, one object, no duplicate keys, no unknown
 * fields, nesting at most PAYQ_MSG_MAX_DEPTH, no number token longer than
 * PAYQ_MSG_MAX_NUMBER_LEN characters. The body need not be NUL-terminated:
 * the decoder copies it before handing it to cJSON (cJSON 1.7.15's
 * ParseWithLength reads past the end, CVE-2023-53154).
 *
 * Every failure fills a payq_msg_error naming the field (a JSON path such as
 * "amount" or "metadata.a.b", or "" for the body as a whole) and a reason
 * in PostgreSQL's message style (lowercase, no final period). */
#ifndef PAYQ_MESSAGE_H
#define PAYQ_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "digest.h" /* the fingerprint's users want its hex too */

#define PAYQ_MSG_MAX_BODY 16384
#define PAYQ_MSG_MAX_DEPTH 16
#define PAYQ_MSG_MAX_NUMBER_LEN 15
#define PAYQ_ID_MAX 64
#define PAYQ_REFERENCE_MAX_CHARS 140
#define PAYQ_METADATA_MAX_BYTES 4096 /* of its compact JSON encoding */
#define PAYQ_MANIFEST_MAX_CURRENCIES 64

/* Account flags (TigerBeetle's names). Mutually exclusive. */
#define PAYQ_ACCT_DEBITS_MUST_NOT_EXCEED_CREDITS 0x1u
#define PAYQ_ACCT_CREDITS_MUST_NOT_EXCEED_DEBITS 0x2u

enum payq_msg_kind {
    PAYQ_MSG_TRANSFER = 0, /* routing key "transfer" */
    PAYQ_MSG_ACCOUNT,      /* routing key "account" */
    PAYQ_MSG_BATCH,        /* routing key "batch" (manifests) */
    PAYQ_MSG_PACK,         /* routing key "transfers": JSON Lines of transfers (pack.h) */
};

struct payq_msg_error {
    char field[96];
    char reason[160];
};

/* A transfer instruction. Optional strings are "" when absent. */
struct payq_transfer {
    char id[PAYQ_ID_MAX + 1];
    char debit_account[PAYQ_ID_MAX + 1];
    char credit_account[PAYQ_ID_MAX + 1];
    int64_t amount; /* 1 .. PAYQ_MONEY_AMOUNT_MAX minor units */
    char currency[4];
    char batch_id[PAYQ_ID_MAX + 1];
    char business_date[11];                           /* YYYY-MM-DD, a real date */
    char reference[PAYQ_REFERENCE_MAX_CHARS * 4 + 1]; /* UTF-8 */
    char *metadata; /* compact JSON object text, owned; NULL when absent */
};

struct payq_account_msg {
    char id[PAYQ_ID_MAX + 1];
    char currency[4];
    unsigned flags; /* PAYQ_ACCT_* */
};

struct payq_manifest_total {
    char currency[4];
    int64_t sum; /* 0 .. INT64_MAX */
};

struct payq_manifest {
    char batch_id[PAYQ_ID_MAX + 1];
    char business_date[11];
    int64_t count; /* >= 0 */
    size_t ntotals;
    struct payq_manifest_total totals[PAYQ_MANIFEST_MAX_CURRENCIES];
};

/* Routing key <-> kind. Returns -1 for an unknown routing key. */
int payq_msg_kind_from_routing_key(const char *rk, size_t len, enum payq_msg_kind *out);
const char *payq_msg_kind_routing_key(enum payq_msg_kind kind);

/* Decoders: 0 on success, -1 with *err filled. On success the caller owns
 * what *out holds and releases it with payq_transfer_clear() (the other two
 * kinds own no memory). On failure *out holds nothing to free. */
int payq_msg_decode_transfer(const void *body, size_t len, struct payq_transfer *out,
                             struct payq_msg_error *err) __attribute__((warn_unused_result));
int payq_msg_decode_account(const void *body, size_t len, struct payq_account_msg *out,
                            struct payq_msg_error *err) __attribute__((warn_unused_result));
int payq_msg_decode_manifest(const void *body, size_t len, struct payq_manifest *out,
                             struct payq_msg_error *err) __attribute__((warn_unused_result));
void payq_transfer_clear(struct payq_transfer *t); /* frees metadata; safe twice */

/* Canonical encodings: compact JSON, keys in schema order, optional fields
 * omitted when absent, amount as a digit string. Decoding the encoding gives
 * back an equal value. Appends to out. */
void payq_msg_encode_transfer(const struct payq_transfer *t, struct payq_buf *out);
void payq_msg_encode_account(const struct payq_account_msg *a, struct payq_buf *out);
void payq_msg_encode_manifest(const struct payq_manifest *m, struct payq_buf *out);

/* SHA-256 of the canonical encoding: the idempotency fingerprint. Two
 * transfers with the same id are "the same instruction" iff their hashes
 * are equal. */
void payq_transfer_hash(const struct payq_transfer *t, uint8_t out[32]);

/* Field validators shared by producer, worker and reconciler. */
bool payq_msg_valid_id(const char *s, size_t len);       /* 1-64 of [A-Za-z0-9._:-] */
bool payq_msg_valid_currency(const char *s, size_t len); /* ^[A-Z]{3}$ */
bool payq_msg_valid_date(const char *s, size_t len);     /* YYYY-MM-DD, real calendar date */

/* Best effort for dead letters: copies the top-level "id" string of a body
 * that failed validation into id (PAYQ_ID_MAX+1 bytes) if one can be read
 * and is itself a valid id; returns whether it found one. */
bool payq_msg_peek_id(const void *body, size_t len, char *id);

#endif
