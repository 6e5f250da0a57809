/* test_copy_row: the ledger scan's binary COPY decoder
 * (reconciler/copy_row.c) on messages built byte by byte as PostgreSQL
 * sends them: the header (alone, or with a row after it), a posted row, a
 * rejected row with NULL batch_id, the trailer, and each way a message can
 * be malformed (truncated, wrong column count or sizes, unknown status,
 * NULL id, a NUL inside a text, bytes after the row or the trailer, an OID
 * flag). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "copy_row.h"

struct msg {
    unsigned char b[1024];
    size_t n;
};

static void put(struct msg *m, const void *p, size_t n)
{
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void be16(struct msg *m, int16_t v)
{
    unsigned char b[2] = {(unsigned char)((uint16_t)v >> 8), (unsigned char)v};
    put(m, b, 2);
}

static void be32(struct msg *m, int32_t v)
{
    uint32_t u = (uint32_t)v;
    unsigned char b[4] = {(unsigned char)(u >> 24), (unsigned char)(u >> 16),
                          (unsigned char)(u >> 8), (unsigned char)u};
    put(m, b, 4);
}

static void field(struct msg *m, const void *p, int32_t n)
{
    be32(m, n);
    if (n > 0)
        put(m, p, (size_t)n);
}

static void text(struct msg *m, const char *s)
{
    if (!s)
        be32(m, -1);
    else
        field(m, s, (int32_t)strlen(s));
}

static void header(struct msg *m, int32_t flags)
{
    put(m, "PGCOPY\n\377\r\n\0", 11);
    be32(m, flags);
    be32(m, 4); /* an extension area, skipped */
    put(m, "abcd", 4);
}

static const unsigned char HASH[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                       12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                       23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* A row of the scan's nine columns. */
static void row(struct msg *m, const char *batch, int64_t amount, const char *status,
                const char *reason)
{
    be16(m, 9);
    text(m, "T-1");
    text(m, batch);
    text(m, "ACC-A");
    text(m, "ACC-B");
    unsigned char a[8];
    for (int i = 0; i < 8; i++)
        a[i] = (unsigned char)((uint64_t)amount >> (56 - 8 * i));
    field(m, a, 8);
    text(m, "EUR");
    text(m, status);
    text(m, reason);
    field(m, HASH, 32);
}

static enum payq_copy_got decode(const struct msg *m, struct payq_spill_rec *r, const char **why)
{
    static char strs[2048];
    *why = "";
    return payq_copy_row((const char *)m->b, m->n, strs, sizeof strs, r, why);
}

static void test_header_alone(void **state)
{
    (void)state;
    struct msg m = {.n = 0};
    struct payq_spill_rec r;
    const char *why;
    header(&m, 0);
    assert_int_equal(decode(&m, &r, &why), PAYQ_COPY_NOTHING);
}

static void test_posted_row(void **state)
{
    (void)state;
    struct msg m = {.n = 0};
    struct payq_spill_rec r;
    const char *why;
    row(&m, "B-1", 123456789012LL, "posted", NULL);
    assert_int_equal(decode(&m, &r, &why), PAYQ_COPY_ROW);
    assert_string_equal(r.id, "T-1");
    assert_string_equal(r.batch_id, "B-1");
    assert_string_equal(r.debit, "ACC-A");
    assert_string_equal(r.credit, "ACC-B");
    assert_true(r.amount == 123456789012LL);
    assert_string_equal(r.currency, "EUR");
    assert_int_equal(r.status, PAYQ_SPILL_POSTED);
    assert_string_equal(r.reason, "");
    assert_memory_equal(r.hash, HASH, 32);
}

static void test_header_then_rejected_row(void **state)
{
    (void)state;
    struct msg m = {.n = 0};
    struct payq_spill_rec r;
    const char *why;
    header(&m, 0);
    row(&m, NULL, 5, "rejected", "insufficient_funds");
    assert_int_equal(decode(&m, &r, &why), PAYQ_COPY_ROW);
    assert_string_equal(r.batch_id, "");
    assert_int_equal(r.status, PAYQ_SPILL_REJECTED);
    assert_string_equal(r.reason, "insufficient_funds");
    assert_true(r.amount == 5);
}

static void test_trailer(void **state)
{
    (void)state;
    struct msg m = {.n = 0};
    struct payq_spill_rec r;
    const char *why;
    be16(&m, -1);
    assert_int_equal(decode(&m, &r, &why), PAYQ_COPY_END);
    be16(&m, 0);
    assert_int_equal(decode(&m, &r, &why), PAYQ_COPY_BAD);
    assert_string_equal(why, "data after the trailer");
}

static void expect_bad(const struct msg *m, const char *why_expected)
{
    struct payq_spill_rec r;
    const char *why;
    assert_int_equal(decode(m, &r, &why), PAYQ_COPY_BAD);
    assert_string_equal(why, why_expected);
}

static void test_malformed(void **state)
{
    (void)state;
    struct msg m = {.n = 0};
    row(&m, "B-1", 1, "posted", NULL);
    for (size_t cut = 0; cut < m.n; cut++) { /* every truncation is refused */
        struct msg t = m;
        t.n = cut;
        struct payq_spill_rec r;
        const char *why;
        assert_int_equal(decode(&t, &r, &why), PAYQ_COPY_BAD);
    }
    struct msg extra = m;
    put(&extra, "x", 1);
    expect_bad(&extra, "data after the row");

    struct msg cols = {.n = 0};
    be16(&cols, 8);
    expect_bad(&cols, "unexpected number of columns");

    struct msg status = {.n = 0};
    row(&status, "B-1", 1, "pending", NULL);
    expect_bad(&status, "status is neither posted nor rejected");

    struct msg nul = {.n = 0};
    row(&nul, "B?x", 1, "posted", NULL);
    nul.b[2 + 4 + 3 + 4 + 1] = '\0'; /* batch_id "B\0x": a NUL inside a text column */
    expect_bad(&nul, "a text column is NULL, holds a NUL or does not fit");

    struct msg oid = {.n = 0};
    header(&oid, 1 << 16);
    expect_bad(&oid, "bad COPY header");
}

static void test_null_id_and_wrong_sizes(void **state)
{
    (void)state;
    struct msg m = {.n = 0};
    be16(&m, 9);
    text(&m, NULL); /* id */
    for (int i = 0; i < 8; i++)
        text(&m, "x");
    expect_bad(&m, "a text column is NULL, holds a NUL or does not fit");

    struct msg s = {.n = 0};
    be16(&s, 9);
    const char *cols[9] = {"T", "B", "D", "C", "1234567", "EUR", "posted", NULL, "short"};
    for (int i = 0; i < 9; i++)
        text(&s, cols[i]);
    expect_bad(&s, "amount, currency or payload_sha256 has the wrong size");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_alone),
        cmocka_unit_test(test_posted_row),
        cmocka_unit_test(test_header_then_rejected_row),
        cmocka_unit_test(test_trailer),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_null_id_and_wrong_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
