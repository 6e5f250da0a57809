/* test_json_items: the request-body splitter (producer/json_items.c) on the
 * bodies the intake meets: one object, an array of them, and each way an
 * array can be broken between its items. What is inside an item is the
 * strict decoder's to judge, not the splitter's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "json_items.h"

#define MAX 4

/* The split of body as "item|item|..." (or "-1: why"), and is_array. */
static const char *split(const char *body, bool *is_array)
{
    static char out[256];
    struct payq_json_item items[MAX];
    const char *why = NULL;
    long n = payq_json_items_split(body, strlen(body), MAX, items, is_array, &why);
    if (n < 0) {
        snprintf(out, sizeof out, "%ld: %s", n, why);
        return out;
    }
    size_t used = 0;
    out[0] = '\0';
    for (long i = 0; i < n; i++)
        used += (size_t)snprintf(out + used, sizeof out - used, "%s%.*s", i ? "|" : "",
                                 (int)items[i].len, body + items[i].off);
    return out;
}

static void test_object_is_one_item(void **state)
{
    (void)state;
    bool arr = true;
    assert_string_equal(split("  {\"id\":\"a\"}\n", &arr), "{\"id\":\"a\"}");
    assert_false(arr);
}

/* Items are trimmed; quotes and escapes hide brackets and commas. */
static void test_array_items(void **state)
{
    (void)state;
    bool arr = false;
    assert_string_equal(split("[ {\"a\":\"],\\\"{\"} ,\n{\"b\":[1,{}]}, 7 ]", &arr),
                        "{\"a\":\"],\\\"{\"}|{\"b\":[1,{}]}|7");
    assert_true(arr);
}

static void test_refusals(void **state)
{
    (void)state;
    bool arr;
    assert_string_equal(split(" \n", &arr), "-1: the body is empty");
    assert_string_equal(split("\"x\"", &arr), "-1: the body must be a JSON object or array");
    assert_string_equal(split("<x/>", &arr), "-1: the body is not valid JSON");
    assert_string_equal(split("[ ]", &arr), "-1: the array is empty");
    assert_string_equal(split("[{},{},{},{},{}]", &arr), "-1: too many items");
    assert_string_equal(split("[{},,{}]", &arr), "-1: the body is not valid JSON");
    assert_string_equal(split("[{},]", &arr), "-1: the body is not valid JSON");
    assert_string_equal(split("[{} {}]", &arr), "-1: the body is not valid JSON");
    assert_string_equal(split("[{}] x", &arr), "-1: the body is not valid JSON");
    assert_string_equal(split("[{\"a\":\"]}", &arr), "-1: the body is not valid JSON");
    assert_string_equal(split("[1}]", &arr), "-1: the body is not valid JSON");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_object_is_one_item),
        cmocka_unit_test(test_array_items),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
