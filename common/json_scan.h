/* json_scan: one pass over raw JSON bytes, before cJSON sees them, that
 * enforces what cJSON 1.7.15 does not: strict RFC 8259 syntax (cJSON accepts
 * "01", "1.", control bytes as whitespace, a leading BOM and raw control
 * characters in strings), valid UTF-8, the nesting and number-length limits
 * of message.h, no "\u0000" escape (it would silently cut a C string short)
 * and no unpaired surrogate escape. Nothing here allocates.
 *
 * The check is message.c's; errors use its struct payq_msg_error. The
 * skipping helpers at the end serve the best-effort scanners that trust
 * only quotes and brackets (peek_string here, producer/json_items.c). */
#ifndef PAYQ_JSON_SCAN_H
#define PAYQ_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "message.h"

/* Checks s[0..len) (need not be NUL-terminated). Returns 0 when it is
 * exactly one JSON value within the limits, else -1 with *err set: field ""
 * and a byte offset (0-based) for lexical and syntax errors, or the JSON
 * path of the value for limit errors. */
int payq_json_scan_check(const char *s, size_t len, struct payq_msg_error *err)
    __attribute__((warn_unused_result));

/* Best effort on any bytes, never reading past len: finds the first
 * top-level member named key in an object and, if its value is a string
 * without escapes, points *val at its raw text. Skips over values it does
 * not understand as long as brackets and quotes still balance. */
bool payq_json_scan_peek_string(const char *s, size_t len, const char *key, const char **val,
                                size_t *val_len);

/* Appends seg[0..n) to a JSON path held in field[cap] whose length is *len.
 * When it does not fit, cuts at a UTF-8 character boundary and ends the
 * path with "..."; later appends are then ignored. */
void payq_json_scan_path_add(char *field, size_t cap, size_t *len, const char *seg, size_t n);

/* JSON's four whitespace bytes. */
static inline bool payq_json_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The first index at or after i that is not whitespace (len if none). */
size_t payq_json_skip_ws(const char *s, size_t len, size_t i);

/* Moves *i (at a value's first byte) just past that value, trusting only
 * quotes, escapes and brackets: a string, a container (brackets counted,
 * not matched), or a scalar up to the next whitespace, ',', '}' or ']'.
 * False, *i unchanged, when the value is empty or runs past len. */
bool payq_json_skip_value(const char *s, size_t len, size_t *i);

#endif
