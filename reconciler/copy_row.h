/* copy_row: the ledger scan's rows as PostgreSQL sends them for
 * `COPY (SELECT id, batch_id, debit_account, credit_account, amount,
 * currency, status, reason, payload_sha256 ...) TO STDOUT (FORMAT binary)`:
 * no text conversion on the server (amount as an int8, the fingerprint as
 * its 32 bytes) and none on the client. Each CopyData message libpq hands
 * over (PQgetCopyData) is the file header, one row, or the trailer; a
 * message that starts with the header may carry a row after it. Pure: no
 * I/O, fuzzed (tests/fuzz/fuzz_copy_row.c). */
#ifndef PAYQ_RECON_COPY_ROW_H
#define PAYQ_RECON_COPY_ROW_H

#include <stddef.h>

#include "spill.h"

enum payq_copy_got {
    PAYQ_COPY_BAD = -1,    /* malformed: *why says what */
    PAYQ_COPY_NOTHING = 0, /* the header alone */
    PAYQ_COPY_ROW = 1,     /* *out holds a row */
    PAYQ_COPY_END = 2,     /* the trailer */
};

/* Decodes one CopyData message of len bytes. The row's strings are copied,
 * NUL-terminated, into strs (strs_len bytes; len + 16 is always enough) and
 * *out points into it. NULL batch_id and reason read as "". *why is a
 * static string. */
enum payq_copy_got payq_copy_row(const char *msg, size_t len, char *strs, size_t strs_len,
                                 struct payq_spill_rec *out, const char **why);

#endif
