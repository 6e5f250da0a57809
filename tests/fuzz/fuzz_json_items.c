/* fuzz_json_items: libFuzzer target for the request-body splitter
 * (producer/json_items.c). The first byte picks the item limit (1..32);
 * the rest is the body, neither copied nor NUL-terminated. A split that
 * succeeds must give 1..max items, in order, not overlapping, inside the
 * body, each non-empty and trimmed of whitespace; an object body is one
 * item. A failure must say why. Anything else aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_items.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_json_items: %s\n", what);
    abort();
}

static bool ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct payq_json_item items[32];
    if (size == 0)
        return 0;
    size_t max = (size_t)(data[0] % 32) + 1;
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    bool is_array = true;
    const char *why = NULL;
    long n = payq_json_items_split(s, len, max, items, &is_array, &why);
    if (n < 0) {
        check(n == -1 && why && why[0], "a refusal without a reason");
        return 0;
    }
    check(n >= 1 && (size_t)n <= max, "item count out of range");
    check(is_array || n == 1, "an object body split into several items");
    size_t prev_end = 0;
    for (long i = 0; i < n; i++) {
        const struct payq_json_item *it = &items[i];
        check(it->len > 0, "an empty item");
        check(it->off >= prev_end && it->off + it->len <= len, "items overlap or leave the body");
        check(!ws(s[it->off]) && !ws(s[it->off + it->len - 1]), "an item is not trimmed");
        if (is_array)
            check(it->off > 0, "an array item at the array's opening bracket");
        prev_end = it->off + it->len;
    }
    return 0;
}
