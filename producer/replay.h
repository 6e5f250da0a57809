/* replay: how an HTTP submission compares with what the ledger already
 * holds under the same id. Pure: no I/O; producer/ledger_lookup.c fetches
 * the stored rows and producer/http_transfers.c acts on the verdict.
 *
 * The verdict mirrors the worker's (worker/rules.c): same SHA-256 of the
 * canonical payload = the same instruction (a replay: nothing to do, the
 * worker drops it as a duplicate); a different one = a conflict, named by
 * the first field that differs, in the worker's order: amount,
 * debit_account, credit_account, currency, batch_id, business_date,
 * reference, and "payload" when only the rest differs (metadata, or a
 * business_date sent once and omitted once for the same day). */
#ifndef PAYQ_REPLAY_H
#define PAYQ_REPLAY_H

#include <stdint.h>

#include "message.h"

/* A transfer as the ledger stores it: strings borrowed, "" for an absent
 * batch_id or reference; date is the booked business date. */
struct payq_replay_stored {
    const char *hash_hex; /* 64 lowercase hex digits of payload_sha256 */
    const char *debit_account;
    const char *credit_account;
    int64_t amount;
    const char *currency;
    const char *batch_id;
    const char *business_date;
    const char *reference;
};

/* NULL when t (whose canonical SHA-256 is hash) is the instruction s
 * already holds, else the name of the first differing field (static
 * storage). effective_date is the business date the worker would book t
 * on: t->business_date, or the UTC day it will be published on when t has
 * none. */
const char *payq_replay_field(const struct payq_transfer *t, const uint8_t hash[32],
                              const char *effective_date, const struct payq_replay_stored *s);

#endif
