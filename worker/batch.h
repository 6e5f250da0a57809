/* batch: the messages one worker transaction applies, in delivery order,
 * with what became of each. The consumer fills it, the decoder classifies
 * each message, the ledger decides outcomes, and the batch is reset (its
 * memory kept) before the next one. */
#ifndef PAYQ_WORKER_BATCH_H
#define PAYQ_WORKER_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "message.h"

/* An AMQP message_id is a short string: at most 255 bytes. */
#define WMSG_MESSAGE_ID_MAX 255

enum wmsg_kind {
    WMSG_TRANSFER,
    WMSG_ACCOUNT,
    WMSG_INVALID, /* dead-lettered with err */
};

/* What the ledger did with a message. */
enum wmsg_outcome {
    WOUT_NONE = 0,
    WOUT_POSTED,
    WOUT_REJECTED,  /* a ledger row with a reason */
    WOUT_DUPLICATE, /* same id, same payload: no effect */
    WOUT_CONFLICT,  /* same id, other payload: recorded in payq.conflicts */
    WOUT_OPENED,    /* account created */
    WOUT_DEAD,      /* undecodable: payq.dead + payq.dead_letters */
};

struct payq_wmsg {
    uint64_t delivery_tag;
    bool redelivered;
    int delivery_count;   /* x-delivery-count (quorum queues), 0 if absent */
    int64_t timestamp_s;  /* AMQP timestamp, or arrival time when absent */
    int64_t published_ms; /* x-payq-published-ms, else timestamp_s * 1000 */
    char routing_key[32];
    /* The publisher's AMQP message_id, "" if none; bytes outside printable
     * ASCII are replaced by '?' (it goes into a text column and headers). */
    char message_id[WMSG_MESSAGE_ID_MAX + 1];
    char *body; /* owned by the batch */
    size_t body_len;
    enum wmsg_kind kind;
    union {
        struct payq_transfer transfer;
        struct payq_account_msg account;
    } u;
    struct payq_msg_error err;
    uint8_t hash[32];       /* transfer: canonical payload hash; invalid: body hash */
    char business_date[11]; /* effective date of a transfer */
    enum wmsg_outcome outcome;
    const char *reason; /* static string for rejections and conflicts */
    /* Posted: credits_posted - debits_posted of each account just after
     * this transfer (balances.h), stored in its ledger row for the outcome
     * event. */
    int64_t debit_balance, credit_balance;
    /* Posted or rejected by this worker's committed transaction: its
     * outcome event as the ledger INSERT returned it (events.h), NULL
     * otherwise. Owned by the batch; cleared when a transaction over the
     * message begins, so a rolled-back attempt leaves none behind. */
    char *event;
    size_t event_len;
    int64_t event_ms; /* committed_at, epoch milliseconds */
};

struct payq_wbatch {
    struct payq_wmsg *msgs;
    size_t n, cap;
    bool backlog; /* collected under a backlog (batch_size.h); reset by clear */
};

/* What the broker said about one delivery; shared by every message a pack
 * carries. */
struct payq_wdelivery {
    uint64_t tag;
    bool redelivered;
    int delivery_count;     /* x-delivery-count, 0 if absent */
    int64_t timestamp_s;    /* AMQP timestamp, or arrival time when absent */
    int64_t published_ms;   /* x-payq-published-ms, 0 if absent */
    const void *message_id; /* AMQP message_id bytes, NULL if absent */
    size_t message_id_len;
};

/* Appends a delivery, copying its body. A well-framed pack (routing key
 * "transfers") becomes one "transfer" message per line, each with the
 * delivery's properties; a badly framed pack stays one message and is
 * dead-lettered whole by the decoder. Returns the number of messages added.
 * Aborts on OOM. */
size_t payq_wbatch_add(struct payq_wbatch *b, const struct payq_wdelivery *d,
                       const char *routing_key, size_t rk_len, const void *body, size_t len);
/* The id a dead letter goes by, so an upstream system can find its message:
 * the body's own "id" when it can be read (a pack line names itself), else
 * the publisher's AMQP message_id (a body that is not JSON, too big, binary,
 * an array, empty), else NULL. buf holds PAYQ_ID_MAX + 1 bytes. */
const char *payq_wmsg_dead_id(const struct payq_wmsg *m, char *buf);

/* Forgets m's outcome event (see payq_wmsg.event). */
void payq_wmsg_clear_event(struct payq_wmsg *m);

/* Decodes every message (sets kind, u, err, hash, business_date). */
void payq_wbatch_decode(struct payq_wbatch *b);
/* Frees the messages' memory and empties the batch, keeping the array. */
void payq_wbatch_clear(struct payq_wbatch *b);
void payq_wbatch_free(struct payq_wbatch *b);

#endif
