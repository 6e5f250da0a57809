/* http_transfers: the handlers behind the transfer routes.
 *
 * POST /v1/transfers takes one transfer object or an array of up to
 * producer.max_batch_items. The body is split into raw items
 * (producer/json_items.h) and each goes through payq_msg_decode_transfer,
 * the same strict decoder the worker uses. Nothing is published unless
 * every item is valid; then the canonical encodings are published in packs
 * of up to producer.pack_max (producer/packer.h: routing key "transfers",
 * message_id = the first id; with pack_max 1 one "transfer" message each)
 * and 202 is answered only once the broker has confirmed all of them. An
 * id repeated with identical content is published once and listed once;
 * with different content it is a 422.
 * Transfers are published as sent: no batch id or business date is
 * stamped (the worker books a missing business date on the UTC day of the
 * message's timestamp).
 *
 * When producer.replay_check is on, the ids are first looked up in the
 * ledger (producer/replay.h: 409 for an id held with another payload). A
 * request that shares a group-commit pack is checked by the pack's
 * publisher, with one query for all the pack's requests
 * (payq_http_replay_check_pack); a request published on its own checks
 * itself.
 *
 * GET /v1/transfers/{id} reads the outcome from the ledger. */
#ifndef PAYQ_HTTP_TRANSFERS_H
#define PAYQ_HTTP_TRANSFERS_H

#include <stddef.h>

#include "http.h"

void payq_http_post_transfers(struct payq_http_app *app, const char *body, size_t len,
                              struct payq_http_reply *rep);

/* The group commit's check (producer/group_commit.h): looks the ids of
 * all of a pack's requests (each arg a POST handler's request) up in one
 * query on th's read-only connection and refuses those holding an id the
 * ledger has with another payload; their handlers answer 409. When the
 * ledger cannot be read every request goes through unchecked (counted). */
void payq_http_replay_check_pack(struct payq_http_app *app, struct payq_http_thread *th,
                                 struct payq_gc_req *reqs, size_t n);

#endif
