/* http_auth: bearer tokens. The configuration holds only SHA-256 digests
 * of the accepted tokens (producer.api_tokens_sha256, or the environment's
 * PAYQ_API_TOKEN_SHA256), so no token is stored anywhere. A presented token
 * is hashed and compared with every digest in constant time. Tokens are
 * never logged. */
#ifndef PAYQ_HTTP_AUTH_H
#define PAYQ_HTTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Converts the configured hex digests into bytes (out[i] 32 bytes each).
 * Returns how many; logs a warning when there are none (every
 * authenticated route then answers 401). */
size_t payq_http_auth_load(const struct payq_config *cfg, unsigned char out[][32]);

/* Checks an Authorization header value (NULL if absent) against the
 * digests. */
bool payq_http_auth_check(const char *authorization, const unsigned char tokens[][32],
                          size_t ntokens);

#endif
