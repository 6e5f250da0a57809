/* test_pack: framing of multi-transfer messages: what is one line, what
 * makes a whole pack invalid, and the limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pack.h"

static size_t check(const char *s, struct payq_msg_error *err)
{
    memset(err, 0, sizeof *err);
    return payq_pack_check(s, strlen(s), err);
}

/* Lines as "a|b|c" for easy comparison. */
static void join(const char *s, size_t len, char *out, size_t cap)
{
    struct payq_pack_iter it = payq_pack_iter(s, len);
    const char *line;
    size_t n, used = 0;
    out[0] = '\0';
    while (payq_pack_next(&it, &line, &n)) {
        assert_true(used + n + 2 < cap);
        if (used)
            out[used++] = '|';
        memcpy(out + used, line, n);
        used += n;
        out[used] = '\0';
    }
}

static void test_lines(void **state)
{
    (void)state;
    struct payq_msg_error err;
    char got[256];
    assert_int_equal(check("{\"a\":1}", &err), 1);
    assert_int_equal(check("{\"a\":1}\n", &err), 1);
    assert_int_equal(check("x\ny\nz", &err), 3);
    assert_int_equal(check("x\ny\nz\n", &err), 3);
    join("x\ny\nz\n", 6, got, sizeof got);
    assert_string_equal(got, "x|y|z");
    join("x\nyy", 4, got, sizeof got);
    assert_string_equal(got, "x|yy");
    /* A carriage return is part of the line: the transfer decoder refuses it
     * as trailing bytes, so that line alone is dead-lettered. */
    join("x\r\ny", 4, got, sizeof got);
    assert_string_equal(got, "x\r|y");
}

static void test_framing_errors(void **state)
{
    (void)state;
    struct payq_msg_error err;
    assert_int_equal(payq_pack_check("", 0, &err), 0);
    assert_string_equal(err.field, "");
    assert_string_equal(err.reason, "a pack must hold at least one transfer");
    assert_int_equal(check("\n", &err), 0);
    assert_string_equal(err.reason, "line 1 of the pack is empty");
    assert_int_equal(check("x\n\ny", &err), 0);
    assert_string_equal(err.reason, "line 2 of the pack is empty");
    assert_int_equal(check("x\n\n", &err), 0);
    assert_string_equal(err.reason, "line 2 of the pack is empty");
}

static void test_limits(void **state)
{
    (void)state;
    struct payq_msg_error err;
    /* Exactly PAYQ_PACK_MAX_ITEMS lines pass; one more does not. */
    size_t len = 2 * (PAYQ_PACK_MAX_ITEMS + 1);
    char *s = malloc(len);
    assert_non_null(s);
    for (size_t i = 0; i < len; i += 2) {
        s[i] = 'x';
        s[i + 1] = '\n';
    }
    assert_int_equal(payq_pack_check(s, len - 2, &err), PAYQ_PACK_MAX_ITEMS);
    assert_int_equal(payq_pack_check(s, len, &err), 0);
    assert_string_equal(err.reason, "a pack must not hold more than 1000 transfers");
    free(s);

    /* A line may be PAYQ_MSG_MAX_BODY bytes, not one more. */
    len = PAYQ_MSG_MAX_BODY + 3;
    s = malloc(len);
    assert_non_null(s);
    memset(s, 'y', len);
    s[0] = 'x';
    s[1] = '\n';
    assert_int_equal(payq_pack_check(s, len - 1, &err), 2);
    assert_int_equal(payq_pack_check(s, len, &err), 0);
    assert_string_equal(err.reason, "line 2 of the pack is longer than 16384 bytes");
    free(s);

    /* The body limit is checked before any line is looked at. */
    len = (size_t)PAYQ_PACK_MAX_BODY + 1;
    s = calloc(1, len);
    assert_non_null(s);
    assert_int_equal(payq_pack_check(s, len, &err), 0);
    assert_string_equal(err.reason, "a pack must not exceed 4194304 bytes (it has 4194305)");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_framing_errors),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
