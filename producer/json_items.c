/* json_items: a bracket-and-quote scanner over a top-level JSON array. */
#include "json_items.h"

#include <string.h>

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && is_ws(s[i]))
        i++;
    return i;
}

/* Moves *i from an opening quote to just past the closing one. */
static bool skip_string(const char *s, size_t len, size_t *i)
{
    for (size_t j = *i + 1; j < len; j++) {
        if (s[j] == '\\')
            j++;
        else if (s[j] == '"') {
            *i = j + 1;
            return true;
        }
    }
    return false;
}

/* Moves *i past one value: a string, a bracketed container (brackets are
 * only counted, not matched: the strict scan checks that later), or a
 * scalar running to the next separator. */
static bool skip_value(const char *s, size_t len, size_t *i)
{
    size_t j = *i, depth = 0;
    if (s[j] == '"')
        return skip_string(s, len, i);
    if (s[j] != '{' && s[j] != '[') {
        while (j < len && !is_ws(s[j]) && s[j] != ',' && s[j] != ']')
            j++;
        bool moved = j > *i;
        *i = j;
        return moved;
    }
    while (j < len) {
        char c = s[j];
        if (c == '"') {
            if (!skip_string(s, len, &j))
                return false;
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0) {
            *i = j + 1;
            return true;
        }
        j++;
    }
    return false;
}

/* Trims whitespace around s[off..end) into an item. */
static struct payq_json_item trimmed(const char *s, size_t off, size_t end)
{
    while (off < end && is_ws(s[off]))
        off++;
    while (end > off && is_ws(s[end - 1]))
        end--;
    return (struct payq_json_item){off, end - off};
}

long payq_json_items_split(const char *s, size_t len, size_t max, struct payq_json_item *items,
                           bool *is_array, const char **why)
{
    size_t i = skip_ws(s, len, 0);
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
    i = skip_ws(s, len, i + 1);
    if (i < len && s[i] == ']') {
        *why = skip_ws(s, len, i + 1) == len ? "the array is empty" : "the body is not valid JSON";
        return -1;
    }
    long n = 0;
    for (;;) {
        if (i >= len || s[i] == ',' || s[i] == ']')
            goto broken;
        size_t start = i;
        if (!skip_value(s, len, &i))
            goto broken;
        if ((size_t)n == max) {
            *why = "too many items";
            return -1;
        }
        items[n++] = trimmed(s, start, i);
        i = skip_ws(s, len, i);
        if (i < len && s[i] == ',') {
            i = skip_ws(s, len, i + 1);
            continue;
        }
        if (i < len && s[i] == ']' && skip_ws(s, len, i + 1) == len)
            return n;
        goto broken;
    }
broken:
    *why = "the body is not valid JSON";
    return -1;
}
