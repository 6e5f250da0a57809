/* pack: several transfers in one broker message (routing key "transfers").
 *
 * The broker's cost is per message (on this machine about 160 µs of broker
 * CPU for a persistent message written to the quorum queue and the audit
 * stream, confirmed and consumed), so one transfer per message caps payq at
 * a few thousand transfers a second whatever the database can do. A pack
 * carries up to PAYQ_PACK_MAX_ITEMS transfers as JSON Lines: every line is
 * exactly the body of a "transfer" message, and the worker and reconciler
 * treat each line as a transfer message of its own with the pack's
 * properties and headers. So a line that is not a valid transfer is
 * dead-lettered alone (its body is the line, without the newline), while a
 * pack whose framing is wrong (empty, too large, too many lines, an empty
 * line) is dead-lettered whole. */
#ifndef PAYQ_PACK_H
#define PAYQ_PACK_H

#include <stdbool.h>
#include <stddef.h>

#include "message.h"

#define PAYQ_PACK_ROUTING_KEY "transfers"
#define PAYQ_PACK_MAX_ITEMS 1000
#define PAYQ_PACK_MAX_BODY (4 * 1024 * 1024)

/* Checks a pack's framing: at most PAYQ_PACK_MAX_BODY bytes, 1 to
 * PAYQ_PACK_MAX_ITEMS lines separated by '\n' (one final '\n' allowed), no
 * empty line, no line longer than PAYQ_MSG_MAX_BODY. Returns the number of
 * lines, or 0 with *err filled (field "", reason naming the line). */
size_t payq_pack_check(const void *body, size_t len, struct payq_msg_error *err);

/* Walks the lines of a pack that passed payq_pack_check:
 *   struct payq_pack_iter it = payq_pack_iter(body, len);
 *   while (payq_pack_next(&it, &line, &n)) ...
 * Lines point into body; no newline is included. */
struct payq_pack_iter {
    const char *p, *end;
};
struct payq_pack_iter payq_pack_iter(const void *body, size_t len);
bool payq_pack_next(struct payq_pack_iter *it, const char **line, size_t *len);

#endif
