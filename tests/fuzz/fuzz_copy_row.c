/* fuzz_copy_row: libFuzzer target for the ledger scan's binary COPY
 * decoder (reconciler/copy_row.c). The input is one CopyData message as-is.
 * A decoded row must have its strings inside the buffer given, each
 * NUL-terminated, a 3-letter currency slot and a known status; a refusal
 * must say why; anything else aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copy_row.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_copy_row: %s\n", what);
    abort();
}

static void inside(const char *s, const char *strs, size_t len)
{
    check(s >= strs && s < strs + len, "a string outside the buffer");
    check(memchr(s, '\0', len - (size_t)(s - strs)) != NULL, "a string without its NUL");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = size + 16;
    char *strs = malloc(len);
    struct payq_spill_rec r;
    const char *why = NULL;
    enum payq_copy_got got = payq_copy_row((const char *)data, size, strs, len, &r, &why);
    if (got == PAYQ_COPY_BAD)
        check(why && why[0], "refused without a reason");
    if (got == PAYQ_COPY_ROW) {
        const char *s[5] = {r.id, r.batch_id, r.debit, r.credit, r.reason};
        for (int i = 0; i < 5; i++)
            inside(s[i], strs, len);
        check(r.currency[3] == '\0', "currency not terminated");
        check(r.status == PAYQ_SPILL_POSTED || r.status == PAYQ_SPILL_REJECTED, "bad status");
    }
    free(strs);
    return 0;
}
