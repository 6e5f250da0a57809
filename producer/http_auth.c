/* http_auth: SHA-256 token digests compared with CRYPTO_memcmp. */
#include "http_auth.h"

#include <openssl/crypto.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "message.h"

size_t payq_http_auth_load(const struct payq_config *cfg, unsigned char out[][32])
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->producer.n_api_tokens; i++) {
        const char *hex = cfg->producer.api_tokens_sha256[i];
        bool ok = strlen(hex) == 64;
        for (size_t k = 0; ok && k < 32; k++) {
            int hi = payq_hex_digit(hex[2 * k]), lo = payq_hex_digit(hex[2 * k + 1]);
            ok = hi >= 0 && lo >= 0;
            out[n][k] = (unsigned char)(hi << 4 | lo);
        }
        /* payq_config_load validates digests; a bad one here is skipped. */
        if (ok)
            n++;
    }
    if (n == 0)
        payq_log(PAYQ_LOG_WARN, "no_api_tokens",
                 "no API token digests configured: authenticated routes answer 401");
    return n;
}

bool payq_http_auth_check(const char *authorization, const unsigned char tokens[][32],
                          size_t ntokens)
{
    if (!authorization)
        return false;
    while (*authorization == ' ')
        authorization++;
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *tok = authorization + 7;
    while (*tok == ' ')
        tok++;
    size_t len = strlen(tok);
    while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
        len--;
    if (len == 0)
        return false;
    uint8_t digest[32];
    payq_sha256(tok, len, digest);
    /* Compare with every digest, without stopping at a match, so the time
     * taken says nothing about which or whether one matched. */
    int match = 0;
    for (size_t i = 0; i < ntokens; i++)
        match |= CRYPTO_memcmp(digest, tokens[i], 32) == 0;
    return match != 0;
}
