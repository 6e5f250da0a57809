/* test_replay: the verdict behind POST /v1/transfers' 409
 * (producer/replay.c). A transfer whose canonical SHA-256 matches the
 * stored one is a replay (NULL), whatever else; otherwise the first field
 * that differs is named, in the worker's order (worker/rules.c), each
 * field on its own; a missing business_date is compared as the day it
 * will be booked on; a difference nowhere else is "payload". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "digest.h"
#include "message.h"
#include "replay.h"

static const char *const g_original =
    "{\"id\":\"T-1\",\"debit_account\":\"A-1\",\"credit_account\":\"A-2\",\"amount\":\"1250\","
    "\"currency\":\"EUR\",\"batch_id\":\"B-1\",\"business_date\":\"2026-11-27\","
    "\"reference\":\"inv 7\",\"metadata\":{\"k\":1}}";

/* The stored row of g_original, as ledger_lookup.c reads it. */
static char g_hex[65];
static struct payq_replay_stored g_stored = {
    g_hex, "A-1", "A-2", 1250, "EUR", "B-1", "2026-11-27", "inv 7",
};

static void decode(const char *body, struct payq_transfer *t, uint8_t hash[32])
{
    struct payq_msg_error err;
    assert_int_equal(payq_msg_decode_transfer(body, strlen(body), t, &err), 0);
    payq_transfer_hash(t, hash);
}

static int setup(void **state)
{
    (void)state;
    struct payq_transfer t;
    uint8_t h[32];
    decode(g_original, &t, h);
    payq_hash_hex(h, g_hex);
    payq_transfer_clear(&t);
    return 0;
}

/* The verdict for body against g_stored, dated date (NULL = its own). */
static const char *verdict(const char *body, const char *date)
{
    struct payq_transfer t;
    uint8_t h[32];
    decode(body, &t, h);
    const char *f = payq_replay_field(&t, h, date ? date : t.business_date, &g_stored);
    payq_transfer_clear(&t);
    return f;
}

static void same_payload_is_a_replay(void **state)
{
    (void)state;
    assert_null(verdict(g_original, NULL));
    /* Key order and spacing do not matter: the canonical form does. */
    assert_null(verdict("{\"amount\":\"1250\",\"id\":\"T-1\",\"credit_account\":\"A-2\","
                        "\"debit_account\":\"A-1\",\"currency\":\"EUR\",\"batch_id\":\"B-1\","
                        "\"metadata\":{\"k\":1},\"reference\":\"inv 7\","
                        "\"business_date\":\"2026-11-27\"}",
                        NULL));
}

/* g_original with one member replaced: from "\"name\":" up to the next
 * comma or closing brace. */
static const char *with(const char *name, const char *value)
{
    static char out[1024];
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *at = strstr(g_original, key);
    assert_non_null(at);
    const char *end = at + strlen(key);
    if (*end == '{')
        end = strchr(end, '}') + 1;
    else
        end = strchr(end + 1, '"') + 1;
    snprintf(out, sizeof out, "%.*s%s%s%s", (int)(at - g_original), g_original, key, value, end);
    return out;
}

static void each_field_is_named(void **state)
{
    (void)state;
    assert_string_equal(verdict(with("amount", "\"1251\""), NULL), "amount");
    assert_string_equal(verdict(with("debit_account", "\"A-9\""), NULL), "debit_account");
    assert_string_equal(verdict(with("credit_account", "\"A-9\""), NULL), "credit_account");
    assert_string_equal(verdict(with("currency", "\"USD\""), NULL), "currency");
    assert_string_equal(verdict(with("batch_id", "\"B-2\""), NULL), "batch_id");
    assert_string_equal(verdict(with("business_date", "\"2026-11-28\""), NULL), "business_date");
    assert_string_equal(verdict(with("reference", "\"inv 8\""), NULL), "reference");
    assert_string_equal(verdict(with("metadata", "{\"k\":2}"), NULL), "payload");
}

/* Several differences: the first in the worker's order wins. */
static void first_difference_wins(void **state)
{
    (void)state;
    const char *body = "{\"id\":\"T-1\",\"debit_account\":\"A-1\",\"credit_account\":\"A-3\","
                       "\"amount\":\"99\",\"currency\":\"USD\"}";
    assert_string_equal(verdict(body, "2026-11-27"), "amount");
    body = "{\"id\":\"T-1\",\"debit_account\":\"A-1\",\"credit_account\":\"A-3\","
           "\"amount\":\"1250\",\"currency\":\"USD\"}";
    assert_string_equal(verdict(body, "2026-11-27"), "credit_account");
}

/* Without business_date the day it will be booked on is compared: the
 * stored day when published the same day, else a business_date conflict;
 * batch_id and reference absent vs present are differences too. */
static void missing_date_is_the_booking_day(void **state)
{
    (void)state;
    const char *body = "{\"id\":\"T-1\",\"debit_account\":\"A-1\",\"credit_account\":\"A-2\","
                       "\"amount\":\"1250\",\"currency\":\"EUR\",\"batch_id\":\"B-1\","
                       "\"reference\":\"inv 7\",\"metadata\":{\"k\":1}}";
    assert_string_equal(verdict(body, "2026-11-27"), "payload");
    assert_string_equal(verdict(body, "2026-11-30"), "business_date");
    body = "{\"id\":\"T-1\",\"debit_account\":\"A-1\",\"credit_account\":\"A-2\","
           "\"amount\":\"1250\",\"currency\":\"EUR\"}";
    assert_string_equal(verdict(body, "2026-11-27"), "batch_id");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_payload_is_a_replay),
        cmocka_unit_test(each_field_is_named),
        cmocka_unit_test(first_difference_wins),
        cmocka_unit_test(missing_date_is_the_booking_day),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
