/* test_message: the message codec against tests/fixtures/messages (every
 * valid fixture must decode and round-trip, every invalid one must fail
 * with exactly the line in its .expect file), plus direct tests of the
 * hash, peek_id, the date validator, routing keys and number encoding. */
/* cmocka.h needs these four included before it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"

#define MIN_INVALID_FIXTURES 45

union decoded {
    struct payq_transfer t;
    struct payq_account_msg a;
    struct payq_manifest m;
};

static const char *source_dir(void)
{
    static char dir[4096];
    const char *env = getenv("PAYQ_SOURCE_DIR");
    const char *suffix = "tests/unit/test_message.c";

    if (env && *env)
        return env;
    /* __FILE__ is this file's path as the compiler was given it. */
    snprintf(dir, sizeof dir, "%s", __FILE__);
    size_t n = strlen(dir), s = strlen(suffix);
    if (n >= s && strcmp(dir + n - s, suffix) == 0)
        dir[n - s] = '\0';
    if (!dir[0])
        return ".";
    return dir;
}

/* Reads a whole file into an exact-size heap buffer (no NUL terminator),
 * so ASan flags any read past the end by the decoder. */
static void *read_exact(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    void *buf = malloc(n ? (size_t)n : 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int kind_of(const char *name, enum payq_msg_kind *kind)
{
    static const struct {
        const char *prefix;
        enum payq_msg_kind kind;
    } kinds[] = {{"transfer_", PAYQ_MSG_TRANSFER},
                 {"account_", PAYQ_MSG_ACCOUNT},
                 {"batch_", PAYQ_MSG_BATCH}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strncmp(name, kinds[i].prefix, strlen(kinds[i].prefix)) == 0) {
            *kind = kinds[i].kind;
            return 0;
        }
    }
    return -1;
}

static int decode(enum payq_msg_kind kind, const void *body, size_t len, union decoded *out,
                  struct payq_msg_error *err)
{
    switch (kind) {
    case PAYQ_MSG_TRANSFER:
        return payq_msg_decode_transfer(body, len, &out->t, err);
    case PAYQ_MSG_ACCOUNT:
        return payq_msg_decode_account(body, len, &out->a, err);
    case PAYQ_MSG_BATCH:
        return payq_msg_decode_manifest(body, len, &out->m, err);
    case PAYQ_MSG_PACK: /* framing only: tests/unit/test_pack.c */
        break;
    }
    return -1;
}

static void encode(enum payq_msg_kind kind, const union decoded *d, struct payq_buf *out)
{
    if (kind == PAYQ_MSG_TRANSFER)
        payq_msg_encode_transfer(&d->t, out);
    else if (kind == PAYQ_MSG_ACCOUNT)
        payq_msg_encode_account(&d->a, out);
    else
        payq_msg_encode_manifest(&d->m, out);
}

static void release(enum payq_msg_kind kind, union decoded *d)
{
    if (kind == PAYQ_MSG_TRANSFER)
        payq_transfer_clear(&d->t);
}

static bool transfers_equal(const struct payq_transfer *a, const struct payq_transfer *b)
{
    return strcmp(a->id, b->id) == 0 && strcmp(a->debit_account, b->debit_account) == 0 &&
           strcmp(a->credit_account, b->credit_account) == 0 && a->amount == b->amount &&
           strcmp(a->currency, b->currency) == 0 && strcmp(a->batch_id, b->batch_id) == 0 &&
           strcmp(a->business_date, b->business_date) == 0 &&
           strcmp(a->reference, b->reference) == 0 &&
           (a->metadata && b->metadata ? strcmp(a->metadata, b->metadata) == 0
                                       : a->metadata == b->metadata);
}

static bool decoded_equal(enum payq_msg_kind kind, const union decoded *a, const union decoded *b)
{
    if (kind == PAYQ_MSG_TRANSFER)
        return transfers_equal(&a->t, &b->t);
    if (kind == PAYQ_MSG_ACCOUNT)
        return strcmp(a->a.id, b->a.id) == 0 && strcmp(a->a.currency, b->a.currency) == 0 &&
               a->a.flags == b->a.flags;
    if (strcmp(a->m.batch_id, b->m.batch_id) != 0 ||
        strcmp(a->m.business_date, b->m.business_date) != 0 || a->m.count != b->m.count ||
        a->m.ntotals != b->m.ntotals)
        return false;
    for (size_t i = 0; i < a->m.ntotals; i++)
        if (strcmp(a->m.totals[i].currency, b->m.totals[i].currency) != 0 ||
            a->m.totals[i].sum != b->m.totals[i].sum)
            return false;
    return true;
}

/* decode -> encode -> decode -> encode: same value, same bytes, same hash.
 * Returns a description of the first failure, or NULL. */
static const char *check_valid(enum payq_msg_kind kind, const void *body, size_t len)
{
    union decoded d1, d2;
    struct payq_msg_error err;
    struct payq_buf e1 = PAYQ_BUF_INIT, e2 = PAYQ_BUF_INIT;
    const char *problem = NULL;
    static char msg[300];

    if (decode(kind, body, len, &d1, &err)) {
        snprintf(msg, sizeof msg, "rejected: %s: %s", err.field, err.reason);
        return msg;
    }
    encode(kind, &d1, &e1);
    /* exact-size copy again, so the re-decode cannot lean on the NUL */
    char *copy = malloc(e1.len);
    assert_non_null(copy);
    memcpy(copy, e1.data, e1.len);
    if (decode(kind, copy, e1.len, &d2, &err)) {
        snprintf(msg, sizeof msg, "encoding %s rejected: %s: %s", e1.data, err.field, err.reason);
        problem = msg;
        goto out1;
    }
    encode(kind, &d2, &e2);
    if (!decoded_equal(kind, &d1, &d2))
        problem = "decode(encode(x)) != x";
    else if (e1.len != e2.len || memcmp(e1.data, e2.data, e1.len) != 0)
        problem = "encoding not stable";
    if (!problem && kind == PAYQ_MSG_TRANSFER) {
        uint8_t h1[32], h2[32], h3[32];
        payq_transfer_hash(&d1.t, h1);
        payq_transfer_hash(&d2.t, h2);
        payq_sha256(e1.data, e1.len, h3);
        if (memcmp(h1, h2, 32) != 0 || memcmp(h1, h3, 32) != 0)
            problem = "hash not stable";
    }
    release(kind, &d2);
out1:
    release(kind, &d1);
    free(copy);
    payq_buf_free(&e1);
    payq_buf_free(&e2);
    return problem;
}

/* Returns a description of the mismatch, or NULL. */
static const char *check_invalid(enum payq_msg_kind kind, const void *body, size_t len,
                                 const char *expect_path)
{
    union decoded d;
    struct payq_msg_error err;
    static char msg[800];
    char want[400] = "";
    char got[300];

    FILE *f = fopen(expect_path, "r");
    if (!f)
        return "missing .expect file";
    if (!fgets(want, sizeof want, f))
        want[0] = '\0';
    fclose(f);
    want[strcspn(want, "\n")] = '\0';
    if (decode(kind, body, len, &d, &err) == 0) {
        release(kind, &d);
        snprintf(msg, sizeof msg, "accepted, expected \"%s\"", want);
        return msg;
    }
    snprintf(got, sizeof got, "%s: %s", err.field, err.reason);
    if (strcmp(got, want) != 0) {
        snprintf(msg, sizeof msg, "got \"%s\", expected \"%s\"", got, want);
        return msg;
    }
    return NULL;
}

/* Runs every *.json in fixtures/messages/<sub>; returns how many ran and
 * counts the failures (each printed). */
static size_t walk_fixtures(const char *sub, bool want_valid, size_t *failures)
{
    char dir[4200], path[4600];
    size_t ran = 0;

    snprintf(dir, sizeof dir, "%s/tests/fixtures/messages/%s", source_dir(), sub);
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("cannot open fixture directory %s", dir);
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        enum payq_msg_kind kind;
        if (n < 5 || strcmp(e->d_name + n - 5, ".json") != 0)
            continue;
        if (kind_of(e->d_name, &kind)) {
            print_error("%s/%s: name does not start with a kind\n", sub, e->d_name);
            (*failures)++;
            continue;
        }
        size_t len;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        void *body = read_exact(path, &len);
        const char *problem;
        if (want_valid) {
            problem = check_valid(kind, body, len);
        } else {
            snprintf(path, sizeof path, "%s/%.*s.expect", dir, (int)(n - 5), e->d_name);
            problem = check_invalid(kind, body, len, path);
        }
        free(body);
        if (problem) {
            print_error("%s/%s: %s\n", sub, e->d_name, problem);
            (*failures)++;
        }
        ran++;
    }
    closedir(d);
    return ran;
}

static void test_valid_fixtures(void **state)
{
    (void)state;
    size_t failures = 0;
    size_t ran = walk_fixtures("valid", true, &failures);
    assert_true(ran >= 10);
    assert_int_equal(failures, 0);
}

static void test_invalid_fixtures(void **state)
{
    (void)state;
    size_t failures = 0;
    size_t ran = walk_fixtures("invalid", false, &failures);
    assert_true(ran >= MIN_INVALID_FIXTURES);
    assert_int_equal(failures, 0);
}

static void base_transfer(struct payq_transfer *t)
{
    memset(t, 0, sizeof *t);
    strcpy(t->id, "t-1");
    strcpy(t->debit_account, "acct:a");
    strcpy(t->credit_account, "acct:b");
    t->amount = 100;
    strcpy(t->currency, "EUR");
    strcpy(t->batch_id, "b-1");
    strcpy(t->business_date, "2024-01-31");
    strcpy(t->reference, "ref");
    t->metadata = strdup("{\"a\":1}");
    assert_non_null(t->metadata);
}

static void test_hash_differs_per_field(void **state)
{
    (void)state;
    enum { VARIANTS = 12 };
    uint8_t h[VARIANTS][32];
    struct payq_transfer t;

    for (int v = 0; v < VARIANTS; v++) {
        base_transfer(&t);
        switch (v) {
        case 1:
            strcpy(t.id, "t-2");
            break;
        case 2:
            strcpy(t.debit_account, "acct:c");
            break;
        case 3:
            strcpy(t.credit_account, "acct:c");
            break;
        case 4:
            t.amount = 101;
            break;
        case 5:
            strcpy(t.currency, "USD");
            break;
        case 6:
            strcpy(t.batch_id, "b-2");
            break;
        case 7:
            t.batch_id[0] = '\0';
            break;
        case 8:
            strcpy(t.business_date, "2024-02-01");
            break;
        case 9:
            strcpy(t.reference, "ref2");
            break;
        case 10:
            free(t.metadata);
            t.metadata = strdup("{\"a\":2}");
            break;
        case 11:
            payq_transfer_clear(&t);
            break;
        default:
            break;
        }
        payq_transfer_hash(&t, h[v]);
        payq_transfer_clear(&t);
        payq_transfer_clear(&t); /* safe twice */
    }
    for (int i = 0; i < VARIANTS; i++)
        for (int j = i + 1; j < VARIANTS; j++)
            if (memcmp(h[i], h[j], 32) == 0)
                fail_msg("variants %d and %d hash the same", i, j);

    char hex[65];
    payq_sha256("abc", 3, h[0]);
    payq_hash_hex(h[0], hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* The hash is of the canonical form, so spelling does not matter. */
static void test_hash_ignores_spelling(void **state)
{
    (void)state;
    static const char a[] =
        "{\"id\":\"t\",\"debit_account\":\"x\",\"credit_account\":\"y\","
        "\"amount\":\"5\",\"currency\":\"EUR\",\"metadata\":{\"b\":1e2,\"a\":1}}";
    static const char b[] =
        " {\"metadata\" : {\"a\":1.0, \"b\":100}, \"currency\":\"EUR\", "
        "\"amount\":\"5\",\"credit_account\":\"y\",\"debit_account\":\"\\u0078\","
        "\"id\":\"t\"}";
    struct payq_transfer ta, tb;
    struct payq_msg_error err;
    uint8_t ha[32], hb[32];

    assert_int_equal(payq_msg_decode_transfer(a, strlen(a), &ta, &err), 0);
    assert_int_equal(payq_msg_decode_transfer(b, strlen(b), &tb, &err), 0);
    assert_string_equal(ta.metadata, "{\"a\":1,\"b\":100}");
    payq_transfer_hash(&ta, ha);
    payq_transfer_hash(&tb, hb);
    assert_memory_equal(ha, hb, 32);
    payq_transfer_clear(&ta);
    payq_transfer_clear(&tb);
}

static void expect_metadata(const char *in, const char *want)
{
    char body[512];
    struct payq_transfer t;
    struct payq_msg_error err = {"", ""};

    snprintf(body, sizeof body,
             "{\"id\":\"t\",\"debit_account\":\"x\",\"credit_account\":\"y\",\"amount\":\"5\","
             "\"currency\":\"EUR\",\"metadata\":%s}",
             in);
    if (payq_msg_decode_transfer(body, strlen(body), &t, &err))
        fail_msg("%s rejected: %s: %s", in, err.field, err.reason);
    if (!want)
        assert_null(t.metadata);
    else
        assert_string_equal(t.metadata, want);
    payq_transfer_clear(&t);
}

static void test_metadata_canonical(void **state)
{
    (void)state;
    expect_metadata("{}", NULL);
    expect_metadata("{\"n\":-1e14}", "{\"n\":-1e14}");
    expect_metadata("{\"n\":100000000000000}", "{\"n\":1e14}");
    expect_metadata("{\"n\":-12345678901234}", "{\"n\":-12345678901234}");
    expect_metadata("{\"n\":1.2345678901e-5}", "{\"n\":1.2345678901e-5}");
    expect_metadata("{\"n\":0.000001}", "{\"n\":1e-6}");
    expect_metadata("{\"n\":123e10}", "{\"n\":123e10}");
    expect_metadata("{\"n\":12300}", "{\"n\":12300}");
    expect_metadata("{\"n\":0.5}", "{\"n\":0.5}");
    expect_metadata("{\"n\":-0.0}", "{\"n\":-0}");
    expect_metadata("{\"n\":1E+2}", "{\"n\":100}");
    expect_metadata("{\"n\":2.50}", "{\"n\":2.5}");
    expect_metadata("{\"n\":5e-324}", "{\"n\":5e-324}");
    expect_metadata("{\"n\":1.797693134e308}", "{\"n\":1797693134e299}");
    expect_metadata("{\"s\":\"\\u00e9\\t\\b\\/\",\"a\":[true,false,null]}",
                    "{\"a\":[true,false,null],\"s\":\"\xc3\xa9\\t\\u0008/\"}");
}

/* Random number tokens of at most 15 characters: each must survive the
 * round trip, and its canonical form must be no longer than the token. */
static void test_metadata_numbers_round_trip(void **state)
{
    (void)state;
    unsigned seed = 42;
    char tok[16], body[256];
    struct payq_msg_error err;
    int accepted = 0;

    for (int round = 0; round < 20000; round++) {
        size_t n = 0;
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 8;
        if (r & 1)
            tok[n++] = '-';
        size_t ndig = 1 + (r >> 1) % 9, nfrac = (r >> 5) % 6;
        tok[n++] = (char)('1' + (r >> 9) % 9);
        for (size_t k = 1; k < ndig; k++)
            tok[n++] = (char)('0' + (seed = seed * 1103515245u + 12345u, (seed >> 16) % 10));
        if (nfrac) {
            tok[n++] = '.';
            for (size_t k = 0; k < nfrac && n < 12; k++)
                tok[n++] = (char)('0' + (seed = seed * 1103515245u + 12345u, (seed >> 16) % 10));
        }
        if ((r >> 12) & 1)
            n += (size_t)snprintf(tok + n, sizeof tok - n, "e%d", (int)((r >> 13) % 600) - 300);
        tok[n < 15 ? n : 15] = '\0';
        snprintf(body, sizeof body,
                 "{\"id\":\"t\",\"debit_account\":\"x\",\"credit_account\":\"y\",\"amount\":"
                 "\"5\",\"currency\":\"EUR\",\"metadata\":{\"n\":%s}}",
                 tok);
        struct payq_transfer t1, t2;
        if (payq_msg_decode_transfer(body, strlen(body), &t1, &err))
            continue; /* out of range or cut mid-exponent: fine to refuse */
        size_t out_len = strlen(t1.metadata) - strlen("{\"n\":}");
        if (out_len > strlen(tok))
            fail_msg("%s became %s", tok, t1.metadata);
        struct payq_buf e = PAYQ_BUF_INIT;
        payq_msg_encode_transfer(&t1, &e);
        if (payq_msg_decode_transfer(e.data, e.len, &t2, &err))
            fail_msg("%s: canonical %s rejected: %s", tok, t1.metadata, err.reason);
        assert_string_equal(t1.metadata, t2.metadata);
        payq_transfer_clear(&t1);
        payq_transfer_clear(&t2);
        payq_buf_free(&e);
        accepted++;
    }
    assert_true(accepted > 15000); /* the generator mostly makes valid tokens */
}

static void test_peek_id(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *want; /* NULL: no id */
    } cases[] = {
        {"{\"id\":\"t-1\",\"amount\":5}", "t-1"},
        {"  {\"amount\":\"x\" , \"id\" : \"t-2\"", "t-2"},
        {"{\"metadata\":{\"id\":\"inner\",\"s\":\"}]\\\"{\"},\"id\":\"outer\"}", "outer"},
        {"{\"list\":[1,[2,{\"id\":\"no\"}]],\"id\":\"yes\"}", "yes"},
        {"{\"id\":\"has space\"}", NULL},
        {"{\"id\":\"\\u0041\"}", NULL},
        {"{\"id\":7}", NULL},
        {"{\"id\":\"unterminated", NULL},
        {"[\"id\",\"x\"]", NULL},
        {"{\"ident\":\"x\"}", NULL},
        {"{\"a\":tru", NULL},
        {"", NULL},
        {"{", NULL},
        {"{\"", NULL},
        {"{\"id\"", NULL},
        {"{\"id\":", NULL},
        {"{\"x\":\"\\", NULL},
        {"\xff\xfe{\"id\":\"x\"}", NULL},
    };
    char id[PAYQ_ID_MAX + 1];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i].body);
        char *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, cases[i].body, len);
        bool found = payq_msg_peek_id(copy, len, id);
        free(copy);
        if (found != (cases[i].want != NULL) || (found && strcmp(id, cases[i].want) != 0))
            fail_msg("case %zu (%s): found=%d id=%s", i, cases[i].body, found, id);
    }
    assert_false(payq_msg_peek_id(NULL, 0, id));

    /* Garbage must never crash: every prefix of a messy body, then noise. */
    static const char messy[] =
        "{\"a\":[{\"b\":\"]}\\\\\"},1e5,null],\"c\":{\"d\":[]},\"id\":\"z9\"}";
    for (size_t n = 0; n <= sizeof messy - 1; n++) {
        char *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, messy, n);
        bool found = payq_msg_peek_id(copy, n, id);
        assert_true(found == (n >= sizeof messy - 2));
        free(copy);
    }
    unsigned seed = 12345;
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(round % 64);
        unsigned char *buf = malloc(n ? n : 1);
        assert_non_null(buf);
        for (size_t k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            buf[k] = (unsigned char)"{}[]\":,\\id x\x80"[(seed >> 16) % 14];
        }
        (void)payq_msg_peek_id(buf, n, id);
        free(buf);
    }
}

static void test_dates(void **state)
{
    (void)state;
    static const char *const good[] = {"2024-02-29", "2000-02-29", "1972-02-29", "1970-01-01",
                                       "9999-12-31", "2023-12-31", "2023-04-30", "2400-02-29"};
    static const char *const bad[] = {
        "2023-02-29",  "2100-02-29", "1900-02-29", "1969-12-31", "2023-00-10",
        "2023-13-01",  "2023-04-31", "2023-01-00", "2023-1-01",  "20230101",
        "2023-01-01T", "2023/01/01", "0000-01-01", "2023-01-3a", ""};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!payq_msg_valid_date(good[i], strlen(good[i])))
            fail_msg("%s rejected", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (payq_msg_valid_date(bad[i], strlen(bad[i])))
            fail_msg("%s accepted", bad[i]);
    /* length is honoured: a valid prefix of a longer buffer */
    assert_true(payq_msg_valid_date("2024-02-29xyz", 10));
    assert_false(payq_msg_valid_date("2024-02-29", 9));
}

static void test_validators(void **state)
{
    (void)state;
    assert_true(payq_msg_valid_id("a.b_c:d-E9", 10));
    assert_false(payq_msg_valid_id("", 0));
    assert_false(payq_msg_valid_id("a b", 3));
    char id65[66];
    memset(id65, 'x', 65);
    id65[65] = '\0';
    assert_true(payq_msg_valid_id(id65, 64));
    assert_false(payq_msg_valid_id(id65, 65));
    assert_true(payq_msg_valid_currency("EUR", 3));
    assert_false(payq_msg_valid_currency("EUr", 3));
    assert_false(payq_msg_valid_currency("EURO", 4));
}

static void test_routing_keys(void **state)
{
    (void)state;
    enum payq_msg_kind k;

    assert_int_equal(payq_msg_kind_from_routing_key("transfer", 8, &k), 0);
    assert_int_equal(k, PAYQ_MSG_TRANSFER);
    assert_int_equal(payq_msg_kind_from_routing_key("account", 7, &k), 0);
    assert_int_equal(k, PAYQ_MSG_ACCOUNT);
    assert_int_equal(payq_msg_kind_from_routing_key("batch", 5, &k), 0);
    assert_int_equal(k, PAYQ_MSG_BATCH);
    assert_int_equal(payq_msg_kind_from_routing_key("transfers", 9, &k), 0);
    assert_int_equal(k, PAYQ_MSG_PACK);
    assert_int_equal(payq_msg_kind_from_routing_key("transfers.", 10, &k), -1);
    assert_int_equal(payq_msg_kind_from_routing_key("transfer", 7, &k), -1);
    assert_int_equal(payq_msg_kind_from_routing_key("Batch", 5, &k), -1);
    assert_int_equal(payq_msg_kind_from_routing_key("", 0, &k), -1);
    assert_int_equal(payq_msg_kind_from_routing_key(NULL, 0, &k), -1);
    for (int i = PAYQ_MSG_TRANSFER; i <= PAYQ_MSG_PACK; i++) {
        const char *rk = payq_msg_kind_routing_key((enum payq_msg_kind)i);
        assert_non_null(rk);
        assert_int_equal(payq_msg_kind_from_routing_key(rk, strlen(rk), &k), 0);
        assert_int_equal(k, i);
    }
}

/* Totals come out sorted whatever order the struct holds them in. */
static void test_manifest_encoding_sorted(void **state)
{
    (void)state;
    struct payq_manifest m;
    struct payq_buf b = PAYQ_BUF_INIT;

    memset(&m, 0, sizeof m);
    strcpy(m.batch_id, "b1");
    strcpy(m.business_date, "2024-06-01");
    m.count = 2;
    m.ntotals = 3;
    strcpy(m.totals[0].currency, "USD");
    m.totals[0].sum = 1;
    strcpy(m.totals[1].currency, "CHF");
    m.totals[1].sum = 0;
    strcpy(m.totals[2].currency, "EUR");
    m.totals[2].sum = INT64_MAX;
    payq_msg_encode_manifest(&m, &b);
    assert_string_equal(b.data, "{\"batch_id\":\"b1\",\"business_date\":\"2024-06-01\",\"count\":"
                                "\"2\",\"totals\":{\"CHF\":\"0\",\"EUR\":\"9223372036854775807\","
                                "\"USD\":\"1\"}}");
    payq_buf_reset(&b);
    m.ntotals = 0;
    payq_msg_encode_manifest(&m, &b);
    assert_string_equal(b.data, "{\"batch_id\":\"b1\",\"business_date\":\"2024-06-01\",\"count\":"
                                "\"2\",\"totals\":{}}");
    payq_buf_free(&b);

    struct payq_account_msg a = {"acct:1", "EUR", PAYQ_ACCT_CREDITS_MUST_NOT_EXCEED_DEBITS};
    payq_msg_encode_account(&a, &b);
    assert_string_equal(b.data, "{\"id\":\"acct:1\",\"currency\":\"EUR\",\"flags\":"
                                "[\"credits_must_not_exceed_debits\"]}");
    payq_buf_free(&b);
}

/* Only len bytes are read: what follows in memory must not matter. */
static void test_length_is_honoured(void **state)
{
    (void)state;
    static const char body[] = "{\"id\":\"acct:1\",\"currency\":\"EUR\"}GARBAGE";
    struct payq_account_msg a;
    struct payq_msg_error err;

    assert_int_equal(payq_msg_decode_account(body, sizeof body - 1 - 7, &a, &err), 0);
    assert_string_equal(a.id, "acct:1");
    assert_int_not_equal(payq_msg_decode_account(body, sizeof body - 1, &a, &err), 0);
    assert_string_equal(err.reason, "not valid JSON at byte 32");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_fixtures),
        cmocka_unit_test(test_invalid_fixtures),
        cmocka_unit_test(test_hash_differs_per_field),
        cmocka_unit_test(test_hash_ignores_spelling),
        cmocka_unit_test(test_metadata_canonical),
        cmocka_unit_test(test_metadata_numbers_round_trip),
        cmocka_unit_test(test_peek_id),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_validators),
        cmocka_unit_test(test_routing_keys),
        cmocka_unit_test(test_manifest_encoding_sorted),
        cmocka_unit_test(test_length_is_honoured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
