/* test_common: the small shared modules: strmap, pgarray, pgbarray, buf JSON
 * escaping, log redaction and account masking, metrics rendering, the
 * pacing of AMQP heartbeats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker.h"
#include "buf.h"
#include "log.h"
#include "metrics.h"
#include "pgarray.h"
#include "pgbarray.h"
#include "strmap.h"

static void test_strmap(void **state)
{
    (void)state;
    struct payq_strmap m = {0};
    static char keys[5000][16];
    payq_strmap_reset(&m, 4);
    for (size_t i = 0; i < 5000; i++) {
        snprintf(keys[i], sizeof keys[i], "acct-%zu", i);
        payq_strmap_put(&m, keys[i], i);
    }
    assert_int_equal(m.n, 5000);
    size_t v = 0;
    for (size_t i = 0; i < 5000; i++) {
        assert_true(payq_strmap_get(&m, keys[i], &v));
        assert_int_equal(v, i);
    }
    assert_false(payq_strmap_get(&m, "acct-5000", &v));
    payq_strmap_put(&m, keys[7], 99);
    assert_true(payq_strmap_get(&m, "acct-7", &v));
    assert_int_equal(v, 99);
    assert_int_equal(m.n, 5000);
    payq_strmap_reset(&m, 10);
    assert_false(payq_strmap_get(&m, "acct-7", &v));
    payq_strmap_free(&m);
}

static void test_pgarray_quoting(void **state)
{
    (void)state;
    struct payq_buf b = PAYQ_BUF_INIT;
    payq_pgarr_begin(&b);
    payq_pgarr_str(&b, "a");
    payq_pgarr_str(&b, NULL);
    payq_pgarr_str(&b, "say \"hi\" \\ {x,y}");
    payq_pgarr_str(&b, "");
    payq_pgarr_int(&b, -42);
    payq_pgarr_end(&b);
    assert_string_equal(b.data, "{\"a\",NULL,\"say \\\"hi\\\" \\\\ {x,y}\",\"\",-42}");
    payq_pgarr_begin(&b);
    payq_pgarr_end(&b);
    assert_string_equal(b.data, "{}");
    payq_buf_free(&b);
}

/* The binary array layout array_recv reads: header (ndim 1, null flag,
 * element oid, length, lower bound 1), then length-prefixed elements in
 * network byte order, -1 for NULL. */
static void test_pgbarray_layout(void **state)
{
    (void)state;
    struct payq_buf b = PAYQ_BUF_INIT;
    payq_pgbarr_begin(&b, PAYQ_PG_TEXT_OID);
    assert_int_equal(payq_pgbarr_count(&b), 0);
    static const unsigned char empty[20] = {0, 0,  0, 1, 0, 0, 0, 0, 0, 0,
                                            0, 25, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_int_equal(b.len, 20);
    assert_memory_equal(b.data, empty, 20);
    payq_pgbarr_text(&b, "ab");
    payq_pgbarr_text(&b, NULL);
    payq_pgbarr_text(&b, "");
    assert_int_equal(payq_pgbarr_count(&b), 3);
    static const unsigned char text[] = {0,   0,   0,    1,    0,    0,    0, 1, 0, 0, 0, 25,
                                         0,   0,   0,    3,    0,    0,    0, 1, 0, 0, 0, 2,
                                         'a', 'b', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    assert_int_equal(b.len, sizeof text);
    assert_memory_equal(b.data, text, sizeof text);

    payq_pgbarr_begin(&b, PAYQ_PG_INT8_OID); /* reset: no trace of the text array */
    payq_pgbarr_int8(&b, -2);
    payq_pgbarr_int8(&b, INT64_C(0x0102030405060708));
    static const unsigned char ints[] = {
        0, 0, 0,    1,    0,    0,    0,    0,    0,    0,    0, 20, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0,
        0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0, 0,  0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(b.len, sizeof ints);
    assert_memory_equal(b.data, ints, sizeof ints);

    payq_pgbarr_begin(&b, PAYQ_PG_BYTEA_OID);
    const unsigned char raw[3] = {0, 0x80, 0xff}; /* bytes, NUL included */
    payq_pgbarr_bytes(&b, raw, sizeof raw);
    assert_int_equal(payq_pgbarr_count(&b), 1);
    assert_int_equal(b.len, 20 + 4 + 3);
    assert_memory_equal(b.data + 24, raw, 3);
    payq_buf_free(&b);
}

static void test_buf_json(void **state)
{
    (void)state;
    struct payq_buf b = PAYQ_BUF_INIT;
    payq_buf_json_str(&b, "a\"b\\c\n\x01");
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    payq_buf_reset(&b);
    payq_buf_printf(&b, "%d-%s", 7, "x");
    assert_string_equal(b.data, "7-x");
    /* Escapes first, last and alone; UTF-8 and plain runs as they are. */
    payq_buf_reset(&b);
    payq_buf_json_str(&b, "\tx\u00e9y\"");
    payq_buf_json_str(&b, "");
    payq_buf_json_str(&b, "\\");
    assert_string_equal(b.data, "\"\\tx\u00e9y\\\"\"\"\"\"\\\\\"");
    /* Longer than the buffer's spare room: formatted again once grown. */
    char big[1000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    payq_buf_reset(&b);
    payq_buf_puts(&b, "<");
    payq_buf_printf(&b, "%s|%d", big, 42);
    assert_int_equal(b.len, 1 + 999 + 3);
    assert_int_equal(strncmp(b.data + 1, big, 999), 0);
    assert_string_equal(b.data + 1000, "|42");
    payq_buf_free(&b);
}

static void test_redact(void **state)
{
    (void)state;
    char out[256];
    payq_log_redact("host=a port=1 user=w password=s3cret dbname=payq", out, sizeof out);
    assert_string_equal(out, "host=a port=1 user=w password=*** dbname=payq");
    payq_log_redact("amqp://payq:s3cret@127.0.0.1:17672/payq", out, sizeof out);
    assert_string_equal(out, "amqp://payq:***@127.0.0.1:17672/payq");
    assert_null(strstr(out, "s3cret"));
    /* Quoted values (issue 17 item 5): the whole quoted value goes, spaces,
     * escaped quotes and all. */
    payq_log_redact("host=a password='QUOTED SPACEPASS789' dbname=payq", out, sizeof out);
    assert_string_equal(out, "host=a password=*** dbname=payq");
    payq_log_redact("password = 'it\\'s x' user=w", out, sizeof out);
    assert_string_equal(out, "password = *** user=w");
    payq_log_redact("password='never closed", out, sizeof out);
    assert_string_equal(out, "password=***");
    /* URL-form conninfos, with a query password too. */
    payq_log_redact("postgresql://payq_worker:PGPASS123@db1,db2:5432/payq?sslmode=require", out,
                    sizeof out);
    assert_string_equal(out, "postgresql://payq_worker:***@db1,db2:5432/payq?sslmode=require");
    payq_log_redact("postgres://u@h/d?password=QPASS&sslmode=disable", out, sizeof out);
    assert_string_equal(out, "postgres://u@h/d?password=***&sslmode=disable");
    payq_log_redact("amqps://payq:p@ss:w0rd@rabbit:5671/payq", out, sizeof out);
    assert_string_equal(out, "amqps://payq:***@rabbit:5671/payq");
    /* No userinfo, or a user without a password: unchanged. */
    payq_log_redact("http://127.0.0.1:17673 and amqp://guest@h/v", out, sizeof out);
    assert_string_equal(out, "http://127.0.0.1:17673 and amqp://guest@h/v");
}

/* Reads what payq_log wrote to a pipe standing in for stderr. */
static void capture_log(const char *text, char *out, size_t outlen)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    payq_log_init("test", PAYQ_LOG_DEBUG);
    payq_log(PAYQ_LOG_WARN, "pg_connect_failed", "could not connect with %s: refused", text);
    struct payq_log_rec r;
    payq_log_begin(&r, PAYQ_LOG_WARN, "x");
    payq_log_str(&r, "conninfo", text);
    payq_log_end(&r);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    ssize_t n = read(fds[0], out, outlen - 1);
    close(fds[0]);
    out[n > 0 ? n : 0] = '\0';
}

/* Every log line is masked, not only the fields that call payq_log_redact:
 * a driver's error text quoting a conninfo or URL must not leak it. */
static void test_log_lines_masked(void **state)
{
    (void)state;
    char out[8192];
    capture_log("host=a password='QUOTED SPACEPASS789' dbname=payq", out, sizeof out);
    assert_null(strstr(out, "SPACEPASS789"));
    assert_non_null(strstr(out, "password=*** dbname=payq"));
    capture_log("postgresql://u:URLPASS456@h:5432/payq", out, sizeof out);
    assert_null(strstr(out, "URLPASS456"));
    assert_non_null(strstr(out, "postgresql://u:***@h:5432/payq"));
    capture_log("amqp://payq:AMQPPASS@127.0.0.1:17672/payq", out, sizeof out);
    assert_null(strstr(out, "AMQPPASS"));
}

static void test_account_masking(void **state)
{
    (void)state;
    struct payq_log_rec r;
    payq_log_init("test", PAYQ_LOG_DEBUG);
    payq_log_begin(&r, PAYQ_LOG_INFO, "x");
    payq_log_account(&r, "account", "DE89370400440532013000");
    payq_log_account(&r, "short", "abc");
    r.line[r.len] = '\0'; /* the record is not a C string until payq_log_end */
    assert_non_null(strstr(r.line, "\"account\":\"...3000\""));
    assert_null(strstr(r.line, "DE8937"));
    assert_non_null(strstr(r.line, "\"short\":\"...\""));
}

static void test_metrics_render(void **state)
{
    (void)state;
    struct payq_metrics *m = payq_metrics_new();
    struct payq_counter *a = payq_metrics_counter(m, "t_total", "k=\"a\"", "help");
    struct payq_counter *b = payq_metrics_counter(m, "t_total", "k=\"b\"", "help");
    static const double bounds[] = {1, 10};
    struct payq_histogram *h = payq_metrics_histogram(m, "lat_ms", "latency", bounds, 2);
    payq_counter_add(a, 3);
    payq_counter_add(b, 1);
    payq_histogram_observe(h, 0.5);
    payq_histogram_observe(h, 5);
    payq_histogram_observe(h, 50);
    struct payq_buf out = PAYQ_BUF_INIT;
    payq_metrics_render(m, &out);
    assert_non_null(
        strstr(out.data, "# TYPE t_total counter\nt_total{k=\"a\"} 3\nt_total{k=\"b\"} 1\n"));
    assert_non_null(strstr(out.data, "lat_ms_bucket{le=\"1\"} 1\n"));
    assert_non_null(strstr(out.data, "lat_ms_bucket{le=\"10\"} 2\n"));
    assert_non_null(strstr(out.data, "lat_ms_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(out.data, "lat_ms_count 3\n"));
    payq_buf_free(&out);
    payq_metrics_free(m);
}

/* A negative observation (a publisher's clock ahead of the worker's) lands in
 * the first bucket as 0 instead of wrapping the sum. */
static void test_histogram_negative(void **state)
{
    (void)state;
    struct payq_metrics *m = payq_metrics_new();
    static const double bounds[] = {0.5};
    struct payq_histogram *h = payq_metrics_histogram(m, "lag_seconds", "lag", bounds, 1);
    payq_histogram_observe(h, -2.5);
    payq_histogram_observe(h, 1.25);
    struct payq_buf out = PAYQ_BUF_INIT;
    payq_metrics_render(m, &out);
    assert_non_null(strstr(out.data, "lag_seconds_bucket{le=\"0.5\"} 1\n"));
    assert_non_null(strstr(out.data, "lag_seconds_sum 1.250000\n"));
    assert_non_null(strstr(out.data, "lag_seconds_count 2\n"));
    payq_buf_free(&out);
    payq_metrics_free(m);
}

/* A heartbeat is due once a connection has been silent for half its
 * interval, never on one that negotiated none, and a send resets it. */
static void test_heartbeat_due(void **state)
{
    (void)state;
    assert_false(payq_amqp_heartbeat_due(0, 0, 1000000));
    assert_false(payq_amqp_heartbeat_due(-1, 0, 1000000));
    assert_false(payq_amqp_heartbeat_due(4, 10000, 10000));
    assert_false(payq_amqp_heartbeat_due(4, 10000, 11999));
    assert_true(payq_amqp_heartbeat_due(4, 10000, 12000));
    assert_true(payq_amqp_heartbeat_due(1, 10000, 10500));
    assert_false(payq_amqp_heartbeat_due(1, 10000, 10499));
    /* Heartbeats of 0x7fffffff s must not overflow into "due". */
    assert_false(payq_amqp_heartbeat_due(2147483647, 0, 1000000000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strmap),
        cmocka_unit_test(test_pgarray_quoting),
        cmocka_unit_test(test_pgbarray_layout),
        cmocka_unit_test(test_buf_json),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_log_lines_masked),
        cmocka_unit_test(test_account_masking),
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_histogram_negative),
        cmocka_unit_test(test_heartbeat_due),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
