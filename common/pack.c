/* pack: framing of multi-transfer messages (see pack.h for why they exist). */
#include "pack.h"

#include <stdio.h>
#include <string.h>

/* Fills err (the pack as a whole, so no field) and returns 0. */
static size_t refuse(struct payq_msg_error *err, const char *reason)
{
    err->field[0] = '\0';
    snprintf(err->reason, sizeof err->reason, "%s", reason);
    return 0;
}

size_t payq_pack_check(const void *body, size_t len, struct payq_msg_error *err)
{
    char why[sizeof err->reason];
    if (len == 0)
        return refuse(err, "a pack must hold at least one transfer");
    if (len > PAYQ_PACK_MAX_BODY) {
        snprintf(why, sizeof why, "a pack must not exceed %d bytes (it has %zu)",
                 PAYQ_PACK_MAX_BODY, len);
        return refuse(err, why);
    }
    struct payq_pack_iter it = payq_pack_iter(body, len);
    const char *line;
    size_t n, count = 0;
    while (payq_pack_next(&it, &line, &n)) {
        if (++count > PAYQ_PACK_MAX_ITEMS) {
            snprintf(why, sizeof why, "a pack must not hold more than %d transfers",
                     PAYQ_PACK_MAX_ITEMS);
            return refuse(err, why);
        }
        if (n == 0) {
            snprintf(why, sizeof why, "line %zu of the pack is empty", count);
            return refuse(err, why);
        }
        if (n > PAYQ_MSG_MAX_BODY) {
            snprintf(why, sizeof why, "line %zu of the pack is longer than %d bytes", count,
                     PAYQ_MSG_MAX_BODY);
            return refuse(err, why);
        }
    }
    return count;
}

struct payq_pack_iter payq_pack_iter(const void *body, size_t len)
{
    struct payq_pack_iter it = {body, (const char *)body + len};
    if (len == 0)
        it.p = it.end = NULL;
    return it;
}

bool payq_pack_next(struct payq_pack_iter *it, const char **line, size_t *len)
{
    if (it->p == it->end)
        return false;
    const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
    *line = it->p;
    *len = (size_t)((nl ? nl : it->end) - it->p);
    /* A final '\n' ends the last line rather than opening an empty one. */
    it->p = nl ? nl + 1 : it->end;
    return true;
}
