/* lines: reads a JSON Lines file one line at a time in bounded memory,
 * knowing each line's number and byte offset, so that a file of millions of
 * lines can be read twice (validate, then publish) and any earlier line can
 * be read again by its offset. Standard input ("-") and any input that
 * cannot seek (a FIFO, a shell's <(...), /dev/stdin on a pipe) are first
 * spooled into an unlinked temporary file: a pipe cannot be read twice. */
#ifndef PAYQ_LINES_H
#define PAYQ_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct payq_lines {
    int fd;
    char *buf;         /* PAYQ_LINES_BUF bytes, owned */
    size_t start, end; /* unread bytes are buf[start..end) */
    bool eof;
    bool skipping;        /* inside a line already known to be too long */
    uint64_t skip_begin;  /* offset of that line */
    uint64_t buf_offset;  /* file offset of buf[0] */
    uint64_t lineno;      /* 1-based number of the line last returned */
    uint64_t line_offset; /* file offset of the line last returned */
    uint64_t size;        /* file size in bytes (after spooling) */
    size_t max_line;      /* longer lines are reported, not returned */
};

/* Opens path ("-" = standard input). Input that cannot seek is spooled to
 * $TMPDIR or /tmp, at most spool_max bytes (more is refused). Lines longer
 * than max_line bytes come back with too_long set. Returns 0, or -1 after
 * printing why to stderr. Close with payq_lines_close. */
int payq_lines_open(struct payq_lines *r, const char *path, size_t max_line, uint64_t spool_max)
    __attribute__((warn_unused_result));

/* Starts again at the first line. Returns 0 or -1 (printed). */
int payq_lines_rewind(struct payq_lines *r) __attribute__((warn_unused_result));

/* Reads the next line. Returns 1 with *line and *len (without the newline;
 * valid until the next call) and r->lineno/line_offset set; 0 at end of
 * file; -1 on a read error (printed). A line over max_line bytes returns 1
 * with *too_long true and *len 0. A final line without a newline counts. */
int payq_lines_next(struct payq_lines *r, const char **line, size_t *len, bool *too_long)
    __attribute__((warn_unused_result));

/* Reads the line starting at offset into out (cap bytes; at most cap - 1
 * are kept) without moving the reader. Returns its length, or -1. */
long payq_lines_read_at(const struct payq_lines *r, uint64_t offset, char *out, size_t cap);

/* Bytes consumed so far by payq_lines_next (for progress). */
uint64_t payq_lines_position(const struct payq_lines *r);

void payq_lines_close(struct payq_lines *r); /* safe twice and on a zeroed struct */

#endif
