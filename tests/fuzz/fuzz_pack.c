/* fuzz_pack: libFuzzer target for the pack framing (common/pack.c). The
 * input is the message body as-is, neither copied nor NUL-terminated. A
 * pack the check accepts must walk as exactly that many non-empty lines,
 * each at most PAYQ_MSG_MAX_BODY bytes, without a newline, contiguous and
 * covering the body (one final newline allowed); anything else aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_pack: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct payq_msg_error err;
    size_t count = payq_pack_check(data, size, &err);
    if (count == 0) {
        check(err.reason[0] != '\0', "refused without a reason");
        return 0;
    }
    check(count <= PAYQ_PACK_MAX_ITEMS, "more lines than a pack may hold");
    struct payq_pack_iter it = payq_pack_iter(data, size);
    const char *line, *expect = (const char *)data;
    size_t n, seen = 0;
    while (payq_pack_next(&it, &line, &n)) {
        seen++;
        check(line == expect, "lines are not contiguous");
        check(n > 0 && n <= PAYQ_MSG_MAX_BODY, "an accepted line is empty or too long");
        check(!memchr(line, '\n', n), "a line holds a newline");
        expect = line + n;
        if (expect < (const char *)data + size) {
            check(*expect == '\n', "a line is not ended by a newline");
            expect++;
        }
    }
    check(seen == count, "the walk and the check disagree on the count");
    check(expect == (const char *)data + size, "the lines do not cover the body");
    return 0;
}
