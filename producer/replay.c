/* replay: the field comparison behind POST /v1/transfers' 409. */
#include "replay.h"

#include <string.h>

#include "digest.h"

const char *payq_replay_field(const struct payq_transfer *t, const uint8_t hash[32],
                              const char *effective_date, const struct payq_replay_stored *s)
{
    char hex[65];
    payq_hash_hex(hash, hex);
    if (strcmp(hex, s->hash_hex) == 0)
        return NULL;
    if (t->amount != s->amount)
        return "amount";
    if (strcmp(t->debit_account, s->debit_account) != 0)
        return "debit_account";
    if (strcmp(t->credit_account, s->credit_account) != 0)
        return "credit_account";
    if (strcmp(t->currency, s->currency) != 0)
        return "currency";
    if (strcmp(t->batch_id, s->batch_id) != 0)
        return "batch_id";
    if (strcmp(effective_date, s->business_date) != 0)
        return "business_date";
    if (strcmp(t->reference, s->reference) != 0)
        return "reference";
    return "payload";
}
