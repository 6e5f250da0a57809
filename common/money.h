/* money: amounts are signed 64-bit integers in minor units (cents, pence,
 * satoshi...). Never floating point. Amounts travel as JSON strings of
 * digits because cJSON parses JSON numbers as doubles. */
#ifndef PAYQ_MONEY_H
#define PAYQ_MONEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest transfer amount: 18 digits, so that a sum of any two amounts
 * still fits in int64 and a transfer amount alone can never overflow. */
#define PAYQ_MONEY_AMOUNT_MAX INT64_C(999999999999999999)
#define PAYQ_MONEY_STR_MAX 21 /* "-9223372036854775808" plus NUL */

/* Parses a transfer amount: ^[1-9][0-9]{0,17}$ (1 .. PAYQ_MONEY_AMOUNT_MAX).
 * s need not be NUL-terminated. Returns 0, or -1 with *why set to a static
 * reason ("must be a string of digits (minor units)",
 * "must not have leading zeros",
 * "must be at least 1", "must have at most 18 digits"). */
int payq_money_parse_amount(const char *s, size_t len, int64_t *out, const char **why)
    __attribute__((warn_unused_result));

/* Parses a control total: ^(0|[1-9][0-9]{0,18})$ and at most INT64_MAX. */
int payq_money_parse_total(const char *s, size_t len, int64_t *out, const char **why)
    __attribute__((warn_unused_result));

/* *out = a + b; returns false (and leaves *out alone) on int64 overflow. */
bool payq_money_add(int64_t a, int64_t b, int64_t *out) __attribute__((warn_unused_result));
/* *out = a - b; returns false on overflow. */
bool payq_money_sub(int64_t a, int64_t b, int64_t *out) __attribute__((warn_unused_result));

/* Formats v in decimal into buf (at least PAYQ_MONEY_STR_MAX bytes); returns buf. */
char *payq_money_format(int64_t v, char *buf);

#endif
