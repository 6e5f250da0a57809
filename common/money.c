/* money: parsing, formatting and overflow-checked arithmetic on minor units. */
#include "money.h"

#include <stdio.h>

static int parse_digits(const char *s, size_t len, size_t max_digits, bool allow_zero, int64_t *out,
                        const char **why)
{
    if (len == 0) {
        *why = "must not be empty";
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            *why = "must be a string of digits (minor units)";
            return -1;
        }
    }
    if (s[0] == '0' && len > 1) {
        *why = "must not have leading zeros";
        return -1;
    }
    if (len > max_digits) {
        *why = max_digits == 18 ? "must have at most 18 digits" : "is out of range";
        return -1;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_C(9223372036854775807) - d) / 10) {
            *why = "is out of range";
            return -1;
        }
        v = v * 10 + d;
    }
    if (v == 0 && !allow_zero) {
        *why = "must be at least 1";
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

int payq_money_parse_amount(const char *s, size_t len, int64_t *out, const char **why)
{
    return parse_digits(s, len, 18, false, out, why);
}

int payq_money_parse_total(const char *s, size_t len, int64_t *out, const char **why)
{
    return parse_digits(s, len, 19, true, out, why);
}

bool payq_money_add(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

bool payq_money_sub(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

char *payq_money_format(int64_t v, char *buf)
{
    snprintf(buf, PAYQ_MONEY_STR_MAX, "%lld", (long long)v);
    return buf;
}
