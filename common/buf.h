/* buf: a growable byte buffer, always NUL-terminated, for building JSON,
 * SQL array literals and HTTP bodies without fixed limits. */
#ifndef PAYQ_BUF_H
#define PAYQ_BUF_H

#include <stddef.h>
#include <stdint.h>

struct payq_buf {
    char *data; /* NUL-terminated when cap > 0; owned by the buffer */
    size_t len;
    size_t cap;
};

#define PAYQ_BUF_INIT                                                                              \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Appending aborts the process on out-of-memory, as everything in payq
 * does (common/alloc.h). */
void payq_buf_append(struct payq_buf *b, const void *data, size_t len);
void payq_buf_puts(struct payq_buf *b, const char *s);
void payq_buf_putc(struct payq_buf *b, char c);
void payq_buf_printf(struct payq_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included, escaping as RFC 8259
 * requires. s must be valid UTF-8 (validated input only). */
void payq_buf_json_str(struct payq_buf *b, const char *s);
void payq_buf_reset(struct payq_buf *b); /* len = 0, keeps the memory */
void payq_buf_free(struct payq_buf *b);  /* frees data; safe on a zeroed buf */

#endif
