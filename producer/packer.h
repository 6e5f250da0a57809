/* packer: gathers transfers into packs (common/pack.h) before they go to an
 * outbox. The broker's cost is per message, so up to producer.pack_max
 * canonical transfer bodies travel as one message with routing key
 * "transfers", joined by '\n' (no trailing newline). A pack is sent when it
 * holds max transfers, when the next body would take it past
 * PAYQ_PACK_MAX_BODY, or on payq_packer_flush. Its message_id is the id of
 * its first transfer: the pack itself is not an idempotency key (each line's
 * id is), so any stable name that points at its content will do.
 * With max 1 nothing is packed: each transfer is one "transfer" message,
 * byte for byte what payq published before packs existed. */
#ifndef PAYQ_PACKER_H
#define PAYQ_PACKER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "message.h"
#include "outbox.h"

struct payq_packer {
    struct payq_outbox *ob; /* not owned */
    uint32_t max;           /* transfers per message, 1..PAYQ_PACK_MAX_ITEMS */
    struct payq_buf body;   /* the pack being filled, owned */
    uint32_t n;             /* transfers in it */
    char first_id[PAYQ_ID_MAX + 1];
    uint64_t sent; /* messages handed to the outbox */
};

/* max outside 1..PAYQ_PACK_MAX_ITEMS is clamped. Free with payq_packer_free. */
void payq_packer_init(struct payq_packer *pk, struct payq_outbox *ob, int max);
void payq_packer_free(struct payq_packer *pk); /* safe twice */

/* Adds one canonical transfer body (no newline in it) with its id; may send
 * the pack. Returns 0, or -1 when the outbox failed (payq_outbox_error). */
int payq_packer_add(struct payq_packer *pk, const char *id, const void *body, size_t len)
    __attribute__((warn_unused_result));

/* Sends what has been gathered, if anything. 0 or -1 as above. Call it
 * before payq_outbox_wait. */
int payq_packer_flush(struct payq_packer *pk) __attribute__((warn_unused_result));

#endif
