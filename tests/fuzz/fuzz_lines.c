/* fuzz_lines: libFuzzer target for the JSON Lines reader
 * (producer/lines.c). The first byte picks the longest kept line (1..256,
 * so the too-long path runs often); the rest is written to a memory file
 * and read through payq_lines_open by its /proc/self/fd path, twice (the
 * producer validates, rewinds and publishes). Every line must be what the
 * file holds at its offset, numbered in order, ended by a newline or the
 * end of the file; read_at must return the same bytes; the second pass must
 * see the same lines; a too-long line must really be longer than the limit.
 * Anything else aborts. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lines.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_lines: %s\n", what);
    abort();
}

/* One pass over the file; returns the number of lines and a sum of their
 * offsets and lengths, so the two passes can be compared. */
static uint64_t pass(struct payq_lines *r, const char *file, size_t fsize, size_t max_line,
                     uint64_t *sum)
{
    const char *line;
    size_t len;
    bool too_long;
    uint64_t count = 0, next_offset = 0;
    char again[260];
    *sum = 0;
    int rc;
    while ((rc = payq_lines_next(r, &line, &len, &too_long)) == 1) {
        count++;
        check(r->lineno == count, "lines numbered out of order");
        check(r->line_offset == next_offset, "a line does not start after the previous one");
        const char *at = file + r->line_offset;
        const char *nl = memchr(at, '\n', fsize - r->line_offset);
        size_t real = nl ? (size_t)(nl - at) : fsize - r->line_offset;
        check(too_long == (real > max_line), "too_long disagrees with the line's length");
        if (!too_long) {
            check(len == real && memcmp(line, at, len) == 0, "a line differs from the file");
            long got = payq_lines_read_at(r, r->line_offset, again, sizeof again);
            check(got == (long)len && memcmp(again, at, len) == 0, "read_at differs");
        }
        next_offset = r->line_offset + real + (nl ? 1 : 0);
        *sum += r->line_offset * 31 + real;
    }
    check(rc == 0, "a read error on a memory file");
    check(next_offset == fsize, "the lines do not cover the file");
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t max_line = (size_t)data[0] + 1;
    const char *file = (const char *)data + 1;
    size_t fsize = size - 1;
    int fd = memfd_create("fuzz_lines", 0);
    check(fd >= 0, "memfd_create failed");
    check(write(fd, file, fsize) == (ssize_t)fsize, "could not write the memory file");
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct payq_lines r;
    check(payq_lines_open(&r, path, max_line, UINT64_MAX) == 0, "could not open the memory file");
    uint64_t sum1, sum2;
    uint64_t n1 = pass(&r, file, fsize, max_line, &sum1);
    check(payq_lines_rewind(&r) == 0, "rewind failed");
    uint64_t n2 = pass(&r, file, fsize, max_line, &sum2);
    check(n1 == n2 && sum1 == sum2, "the second pass differs");
    payq_lines_close(&r);
    close(fd);
    return 0;
}
