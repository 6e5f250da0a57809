/* test_event_body: an outcome event's JSON from a binary-format row
 * (worker/event_body.h), without a server: the rows are libpq results built
 * in memory. Each expected body is what PostgreSQL's json_build_object,
 * to_char and extract wrote for the same values when the events were
 * rendered in SQL (copied from psql), so events re-emitted after an upgrade
 * are byte-identical to the ones emitted before it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "event_body.h"

enum { TEXT = 25, INT8 = 20, DATE = 1082, TSTZ = 1184, BYTEA = 17, INT4 = 23 };

/* One column of a test row: its name, type and value (NULL: SQL NULL;
 * len < 0: a C string). */
struct col {
    const char *name;
    Oid type;
    const char *val;
    int len;
};

static void put_be(char *out, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        out[i] = (char)(v & 0xff);
}

/* A one-row binary result of the columns. */
static PGresult *row(const struct col *c, int n)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    assert_non_null(res);
    PGresAttDesc att[16];
    assert_true(n <= 16);
    for (int i = 0; i < n; i++)
        att[i] = (PGresAttDesc){.name = (char *)c[i].name, .format = 1, .typid = c[i].type};
    assert_int_equal(PQsetResultAttrs(res, n, att), 1);
    for (int i = 0; i < n; i++) {
        int len = c[i].val && c[i].len < 0 ? (int)strlen(c[i].val) : c[i].len;
        assert_int_equal(PQsetvalue(res, 0, i, (char *)c[i].val, c[i].val ? len : -1), 1);
    }
    return res;
}

static void expect_body(const struct col *c, int n, const char *want, int64_t want_ms)
{
    PGresult *res = row(c, n);
    struct payq_buf b = PAYQ_BUF_INIT;
    int64_t ms = -7;
    assert_int_equal(payq_event_body(res, 0, &b, &ms), 0);
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, strlen(want));
    assert_int_equal(ms, want_ms);
    payq_buf_free(&b);
    PQclear(res);
}

static void test_posted_row(void **state)
{
    (void)state;
    char amount[8], date[4], ts[8], dbal[8], cbal[8];
    put_be(amount, INT64_MAX, 8);
    put_be(date, 8825, 4);             /* 2024-02-29 */
    put_be(ts, 820638245000500ULL, 8); /* 2026-01-02 03:04:05.0005 UTC */
    put_be(dbal, (uint64_t)-5, 8);
    put_be(cbal, 0, 8);
    struct col c[] = {
        {"id", TEXT, "t:1", -1},
        {"status", TEXT, "posted", -1},
        {"reason", TEXT, NULL, 0},
        {"batch_id", TEXT, "b-7", -1},
        {"business_date", DATE, date, 4},
        {"amount", INT8, amount, 8},
        {"currency", TEXT, "EUR", -1},
        {"debit_account", TEXT, "a:1", -1},
        {"credit_account", TEXT, "a:2", -1},
        {"committed_at", TSTZ, ts, 8},
        {"debit_balance", INT8, dbal, 8},
        {"credit_balance", INT8, cbal, 8},
    };
    expect_body(c, 12,
                "{\"id\" : \"t:1\", \"status\" : \"posted\", \"reason\" : null, \"batch_id\" : "
                "\"b-7\", \"business_date\" : \"2024-02-29\", \"amount\" : "
                "\"9223372036854775807\", \"currency\" : \"EUR\", \"debit_account\" : \"a:1\", "
                "\"credit_account\" : \"a:2\", \"committed_at\" : "
                "\"2026-01-02T03:04:05.000500Z\", \"debit_balance\" : \"-5\", "
                "\"credit_balance\" : \"0\"}",
                1767323045001); /* 45000.5 ms rounds up */
}

/* Escaped text, a NULL id, bytea in hex, a timestamp just before
 * PostgreSQL's epoch. */
static void test_dead_letter_row(void **state)
{
    (void)state;
    char ts[8];
    put_be(ts, (uint64_t)-1, 8); /* 1999-12-31 23:59:59.999999 UTC */
    struct col c[] = {
        {"id", TEXT, NULL, 0},
        {"status", TEXT, "dead_lettered", -1},
        {"reason", TEXT, "bad \"json\"\\", -1},
        {"committed_at", TSTZ, ts, 8},
        {"body_sha256", BYTEA, "\x00\xff\x10\xab", 4},
    };
    expect_body(c, 5,
                "{\"id\" : null, \"status\" : \"dead_lettered\", \"reason\" : \"bad "
                "\\\"json\\\"\\\\\", \"committed_at\" : \"1999-12-31T23:59:59.999999Z\", "
                "\"body_sha256\" : \"00ff10ab\"}",
                946684800000);
}

/* Before 1970, milliseconds round half away from zero, as numeric does. */
static void test_negative_epoch(void **state)
{
    (void)state;
    char ts[8];
    put_be(ts, (uint64_t)-946684800001500LL, 8); /* 1969-12-31 23:59:59.9985 UTC */
    struct col c[] = {{"committed_at", TSTZ, ts, 8}};
    expect_body(c, 1, "{\"committed_at\" : \"1969-12-31T23:59:59.998500Z\"}", -2);
}

/* Without a committed_at column the timestamp is 0; a timestamp under
 * another name is written but is not the event's time. */
static void test_no_committed_at(void **state)
{
    (void)state;
    char ts[8];
    put_be(ts, 0, 8);
    struct col c[] = {{"id", TEXT, "x", -1}, {"seen", TSTZ, ts, 8}};
    expect_body(c, 2, "{\"id\" : \"x\", \"seen\" : \"2000-01-01T00:00:00.000000Z\"}", 0);
}

/* A type the writer does not know, or a value of the wrong width, is
 * refused rather than written wrong. */
static void test_refuses_unknown(void **state)
{
    (void)state;
    char four[4] = {0, 0, 0, 1};
    struct col c1[] = {{"n", INT4, four, 4}};
    struct col c2[] = {{"amount", INT8, four, 4}};
    const struct col *cases[] = {c1, c2};
    for (int i = 0; i < 2; i++) {
        PGresult *res = row(cases[i], 1);
        struct payq_buf b = PAYQ_BUF_INIT;
        int64_t ms;
        assert_int_equal(payq_event_body(res, 0, &b, &ms), -1);
        payq_buf_free(&b);
        PQclear(res);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_posted_row),      cmocka_unit_test(test_dead_letter_row),
        cmocka_unit_test(test_negative_epoch),  cmocka_unit_test(test_no_committed_at),
        cmocka_unit_test(test_refuses_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
