/* digest: SHA-256 (OpenSSL's EVP) and hex, for the fingerprints payq keys
 * things by: a transfer's canonical encoding (message.h), a dead-lettered
 * body, an API token. No state, no allocation that can fail quietly: a
 * digest that cannot be computed aborts, as out of memory does
 * (common/alloc.h), since nothing could be keyed without it. */
#ifndef PAYQ_DIGEST_H
#define PAYQ_DIGEST_H

#include <stddef.h>
#include <stdint.h>

/* SHA-256 of len bytes at data (data may be NULL when len is 0). */
void payq_sha256(const void *data, size_t len, uint8_t out[32]);
/* Lowercase hex of n bytes into hex (2n + 1 bytes, NUL-terminated). */
void payq_hex(const void *bytes, size_t n, char *hex);
/* Lowercase hex of a 32-byte hash into hex (65 bytes, NUL-terminated). */
void payq_hash_hex(const uint8_t hash[32], char hex[65]);
/* Value of one hex digit (either case), or -1. */
int payq_hex_digit(char c);

#endif
