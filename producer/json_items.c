/* json_items: a bracket-and-quote scanner over a top-level JSON array. */
#include "json_items.h"

#include <string.h>

#include "json_scan.h"

/* Trims whitespace around s[off..end) into an item. */
static struct payq_json_item trimmed(const char *s, size_t off, size_t end)
{
    while (off < end && payq_json_is_ws(s[off]))
        off++;
    while (end > off && payq_json_is_ws(s[end - 1]))
        end--;
    return (struct payq_json_item){off, end - off};
}

long payq_json_items_split(const char *s, size_t len, size_t max, struct payq_json_item *items,
                           bool *is_array, const char **why)
{
    size_t i = payq_json_skip_ws(s, len, 0);
    *is_array = false;
    if (i == len) {
        *why = "the body is empty";
        return -1;
    }
    if (s[i] == '{') {
        items[0] = trimmed(s, i, len);
        return 1;
    }
    if (s[i] != '[') {
        *why = strchr("\"-0123456789tfn", s[i]) ? "the body must be a JSON object or array"
                                                : "the body is not valid JSON";
        return -1;
    }
    *is_array = true;
    i = payq_json_skip_ws(s, len, i + 1);
    if (i < len && s[i] == ']') {
        *why = payq_json_skip_ws(s, len, i + 1) == len ? "the array is empty"
                                                       : "the body is not valid JSON";
        return -1;
    }
    long n = 0;
    for (;;) {
        if (i >= len || s[i] == ',' || s[i] == ']')
            goto broken;
        size_t start = i;
        if (!payq_json_skip_value(s, len, &i))
            goto broken;
        if ((size_t)n == max) {
            *why = "too many items";
            return -1;
        }
        items[n++] = trimmed(s, start, i);
        i = payq_json_skip_ws(s, len, i);
        if (i < len && s[i] == ',') {
            i = payq_json_skip_ws(s, len, i + 1);
            continue;
        }
        if (i < len && s[i] == ']' && payq_json_skip_ws(s, len, i + 1) == len)
            return n;
        goto broken;
    }
broken:
    *why = "the body is not valid JSON";
    return -1;
}
