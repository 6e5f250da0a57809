/* digest: SHA-256 through OpenSSL, and hex digits both ways. */
#include "digest.h"

#include <openssl/evp.h>
#include <stdlib.h>

#include "log.h"

void payq_sha256(const void *data, size_t len, uint8_t out[32])
{
    unsigned int n = 0;

    if (!EVP_Digest(len ? data : "", len, out, &n, EVP_sha256(), NULL) || n != 32) {
        /* Only out of memory or a broken libcrypto: fatal (common/alloc.h). */
        payq_log(PAYQ_LOG_ERROR, "sha256_failed", "EVP_Digest failed");
        abort();
    }
}

void payq_hex(const void *bytes, size_t n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *b = bytes;

    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[b[i] >> 4];
        hex[2 * i + 1] = digits[b[i] & 15];
    }
    hex[2 * n] = '\0';
}

void payq_hash_hex(const uint8_t hash[32], char hex[65])
{
    payq_hex(hash, 32, hex);
}

int payq_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
