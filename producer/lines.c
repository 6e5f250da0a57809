/* lines: buffered line reading over a file descriptor, with offsets. */
#include "lines.h"
#include "alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAYQ_LINES_BUF (1u << 20)

/* Copies src (standard input, a pipe, a FIFO, a character device: input
 * that cannot be read twice) into an unlinked temporary file in $TMPDIR
 * (or /tmp) and returns its descriptor, or -1 (printed). Nothing is held in
 * memory; more than max bytes is refused, so a runaway upstream cannot
 * fill the disk. */
static int spool(int src, const char *name, uint64_t max)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/payq-producer-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "payq-producer: could not create temporary file \"%s\": %s\n", path,
                strerror(errno));
        return -1;
    }
    unlink(path);
    uint64_t total = 0;
    char *chunk = payq_xmalloc(PAYQ_LINES_BUF);
    for (;;) {
        ssize_t n = read(src, chunk, PAYQ_LINES_BUF);
        if (n == 0)
            break;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "payq-producer: could not read %s: %s\n", name, strerror(errno));
            goto fail;
        }
        total += (uint64_t)n;
        if (total > max) {
            fprintf(stderr,
                    "payq-producer: %s is larger than producer.spool_max_mib (%llu bytes); "
                    "write it to a file and publish the file\n",
                    name, (unsigned long long)max);
            goto fail;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, chunk + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                fprintf(stderr, "payq-producer: could not spool %s into \"%s\": %s\n", name, path,
                        strerror(errno));
                goto fail;
            }
            off += w;
        }
    }
    free(chunk);
    return fd;
fail:
    free(chunk);
    close(fd);
    return -1;
}

/* Opens path for reading twice: a regular file as it is, anything that
 * cannot seek (a FIFO, <(...), /dev/stdin on a pipe) through a spool. */
static int open_input(const char *path, uint64_t spool_max)
{
    if (strcmp(path, "-") == 0)
        return spool(STDIN_FILENO, "standard input", spool_max);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "payq-producer: could not open file \"%s\": %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        return fd;
    char name[4200];
    snprintf(name, sizeof name, "\"%s\"", path);
    int spooled = spool(fd, name, spool_max);
    close(fd);
    return spooled;
}

int payq_lines_open(struct payq_lines *r, const char *path, size_t max_line, uint64_t spool_max)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    /* A line we keep must fit in the buffer with room to spare. */
    r->max_line = max_line < PAYQ_LINES_BUF / 2 ? max_line : PAYQ_LINES_BUF / 2;
    r->fd = open_input(path, spool_max);
    if (r->fd < 0)
        return -1;
    struct stat st;
    if (fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode))
        r->size = (uint64_t)st.st_size;
    r->buf = payq_xmalloc(PAYQ_LINES_BUF);
    if (payq_lines_rewind(r) != 0) {
        payq_lines_close(r);
        return -1;
    }
    return 0;
}

int payq_lines_rewind(struct payq_lines *r)
{
    if (lseek(r->fd, 0, SEEK_SET) < 0) {
        fprintf(stderr, "payq-producer: could not rewind input: %s\n", strerror(errno));
        return -1;
    }
    r->start = r->end = 0;
    r->eof = r->skipping = false;
    r->buf_offset = r->lineno = r->line_offset = 0;
    return 0;
}

/* Moves unread bytes to the front and reads more. Returns 0 or -1. */
static int refill(struct payq_lines *r)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->buf_offset += r->start;
        r->end -= r->start;
        r->start = 0;
    }
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->end, PAYQ_LINES_BUF - r->end);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "payq-producer: could not read input: %s\n", strerror(errno));
            return -1;
        }
        if (n == 0)
            r->eof = true;
        r->end += (size_t)n;
        return 0;
    }
}

/* Hands out buf[start..start+len) as the next line and steps past it and
 * its newline (if any). A line that was being skipped keeps the offset
 * where it began. */
static int take(struct payq_lines *r, size_t len, size_t skip, const char **line, size_t *out_len,
                bool *too_long)
{
    r->lineno++;
    r->line_offset = r->skipping ? r->skip_begin : r->buf_offset + r->start;
    *too_long = r->skipping || len > r->max_line;
    *line = r->buf + r->start;
    *out_len = *too_long ? 0 : len;
    r->start += len + skip;
    r->skipping = false;
    return 1;
}

int payq_lines_next(struct payq_lines *r, const char **line, size_t *len, bool *too_long)
{
    for (;;) {
        size_t avail = r->end - r->start;
        char *nl = memchr(r->buf + r->start, '\n', avail);
        if (nl)
            return take(r, (size_t)(nl - (r->buf + r->start)), 1, line, len, too_long);
        if (r->eof) {
            if (avail == 0 && !r->skipping)
                return 0;
            return take(r, avail, 0, line, len, too_long);
        }
        if (avail > r->max_line) {
            /* Too long to keep: drop what we have, remember where the line
             * began, and read on until its newline. */
            if (!r->skipping)
                r->skip_begin = r->buf_offset + r->start;
            r->skipping = true;
            r->buf_offset += r->end;
            r->start = r->end = 0;
        }
        if (refill(r) != 0)
            return -1;
    }
}

long payq_lines_read_at(const struct payq_lines *r, uint64_t offset, char *out, size_t cap)
{
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t n = pread(r->fd, out + got, cap - 1 - got, (off_t)(offset + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        char *nl = memchr(out + got, '\n', (size_t)n);
        if (nl) {
            got = (size_t)(nl - out);
            out[got] = '\0';
            return (long)got;
        }
        got += (size_t)n;
    }
    if (cap)
        out[got] = '\0';
    return (long)got;
}

uint64_t payq_lines_position(const struct payq_lines *r)
{
    return r->buf_offset + r->start;
}

void payq_lines_close(struct payq_lines *r)
{
    if (r->buf && r->fd >= 0)
        close(r->fd);
    free(r->buf);
    r->buf = NULL;
    r->fd = -1;
}
