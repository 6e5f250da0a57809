/* json_items: splits a request body into the raw byte ranges of its items
 * (one object, or each element of a top-level array) without parsing them,
 * so each item goes through the same strict decoder as a message from the
 * broker. Parsing the whole array with cJSON first would lose information
 * the decoder must see: cJSON accepts what the strict scan refuses (leading
 * zeros, raw control characters, invalid UTF-8) and turns "\u0000" into a
 * silently shortened string, so a re-printed item could differ from what
 * the client sent. Only quotes, escapes and brackets are trusted here; the
 * strict per-item scan judges everything else. */
#ifndef PAYQ_JSON_ITEMS_H
#define PAYQ_JSON_ITEMS_H

#include <stdbool.h>
#include <stddef.h>

struct payq_json_item {
    size_t off; /* into the body */
    size_t len;
};

/* Splits s[0..len) into at most max items (items has room for max).
 * Returns the count (>= 1), or -1 with why (a static string): empty body,
 * not an object or array, empty array, more than max items, or broken
 * array syntax between items. *is_array says which form the body had. */
long payq_json_items_split(const char *s, size_t len, size_t max, struct payq_json_item *items,
                           bool *is_array, const char **why);

#endif
