/* packer: transfers gathered into "transfers" messages (see packer.h). */
#include "packer.h"

#include <stdio.h>
#include <string.h>

#include "pack.h"

void payq_packer_init(struct payq_packer *pk, struct payq_outbox *ob, int max)
{
    memset(pk, 0, sizeof *pk);
    pk->ob = ob;
    pk->max = max < 1 ? 1 : max > PAYQ_PACK_MAX_ITEMS ? PAYQ_PACK_MAX_ITEMS : (uint32_t)max;
}

void payq_packer_free(struct payq_packer *pk)
{
    payq_buf_free(&pk->body);
    pk->n = 0;
}

int payq_packer_flush(struct payq_packer *pk)
{
    if (pk->n == 0)
        return 0;
    /* A pack of one still goes as a pack when packing is on: the routing
     * key says how to read the body, and it should not depend on where a
     * file happened to end. */
    const char *rk =
        pk->max == 1 ? payq_msg_kind_routing_key(PAYQ_MSG_TRANSFER) : PAYQ_PACK_ROUTING_KEY;
    uint32_t n = pk->n;
    pk->n = 0;
    pk->sent++;
    int rc = payq_outbox_send_items(pk->ob, rk, pk->first_id, pk->body.data, pk->body.len, n);
    payq_buf_reset(&pk->body);
    return rc;
}

int payq_packer_add(struct payq_packer *pk, const char *id, const void *body, size_t len)
{
    /* Canonical transfers are at most PAYQ_MSG_MAX_BODY bytes, so one
     * always fits an empty pack; the size check only ever ends a pack early. */
    if (pk->n > 0 && pk->body.len + 1 + len > PAYQ_PACK_MAX_BODY && payq_packer_flush(pk) != 0)
        return -1;
    if (pk->n == 0)
        snprintf(pk->first_id, sizeof pk->first_id, "%s", id);
    else
        payq_buf_putc(&pk->body, '\n');
    payq_buf_append(&pk->body, body, len);
    if (++pk->n < pk->max)
        return 0;
    return payq_packer_flush(pk);
}
