/* test_digest: SHA-256 against the FIPS 180-2 test vectors, its hex, and
 * hex digits of either case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "digest.h"

static void hex_of(const char *s, char hex[65])
{
    uint8_t h[32];
    payq_sha256(s, strlen(s), h);
    payq_hash_hex(h, hex);
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[65];
    hex_of("", hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    uint8_t a[32], b[32];
    payq_sha256(NULL, 0, a); /* an empty body may come as NULL */
    payq_sha256("", 0, b);
    assert_memory_equal(a, b, 32);
}

static void test_hex_digit(void **state)
{
    (void)state;
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        assert_int_equal(payq_hex_digit(digits[i]), i);
        char up = digits[i] >= 'a' ? (char)(digits[i] - 'a' + 'A') : digits[i];
        assert_int_equal(payq_hex_digit(up), i);
    }
    assert_int_equal(payq_hex_digit('g'), -1);
    assert_int_equal(payq_hex_digit('G'), -1);
    assert_int_equal(payq_hex_digit('/'), -1);
    assert_int_equal(payq_hex_digit(':'), -1);
    assert_int_equal(payq_hex_digit('\0'), -1);
}

/* The hex of every byte value reads back through payq_hex_digit. */
static void test_hex_round_trip(void **state)
{
    (void)state;
    uint8_t h[32];
    char hex[65];
    for (int base = 0; base < 256; base += 32) {
        for (int i = 0; i < 32; i++)
            h[i] = (uint8_t)(base + i);
        payq_hash_hex(h, hex);
        assert_int_equal(strlen(hex), 64);
        for (int i = 0; i < 32; i++)
            assert_int_equal(payq_hex_digit(hex[2 * i]) * 16 + payq_hex_digit(hex[2 * i + 1]),
                             h[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_hex_digit),
        cmocka_unit_test(test_hex_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
