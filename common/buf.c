/* buf: growable NUL-terminated byte buffer. */
#include "buf.h"
#include "alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reserve(struct payq_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = payq_xrealloc(b->data, cap);
    b->cap = cap;
}

void payq_buf_append(struct payq_buf *b, const void *data, size_t len)
{
    reserve(b, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void payq_buf_puts(struct payq_buf *b, const char *s)
{
    payq_buf_append(b, s, strlen(s));
}

void payq_buf_putc(struct payq_buf *b, char c)
{
    payq_buf_append(b, &c, 1);
}

/* Formats into the spare capacity first: a second pass only when it did
 * not fit. */
void payq_buf_printf(struct payq_buf *b, const char *fmt, ...)
{
    reserve(b, 64);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->data[b->len] = '\0';
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        reserve(b, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* The bytes a JSON string may hold as they are: none below 0x20, no quote,
 * no backslash. Runs of them are copied at once. */
static size_t plain_run(const unsigned char *p)
{
    const unsigned char *q = p;
    while (*q >= 0x20 && *q != '"' && *q != '\\')
        q++;
    return (size_t)(q - p);
}

void payq_buf_json_str(struct payq_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    payq_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        size_t run = plain_run(p);
        if (run) {
            payq_buf_append(b, p, run);
            p += run;
            if (!*p)
                break;
        }
        switch (*p) {
        case '"':
            payq_buf_puts(b, "\\\"");
            break;
        case '\\':
            payq_buf_puts(b, "\\\\");
            break;
        case '\n':
            payq_buf_puts(b, "\\n");
            break;
        case '\r':
            payq_buf_puts(b, "\\r");
            break;
        case '\t':
            payq_buf_puts(b, "\\t");
            break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            payq_buf_append(b, esc, 6);
        }
        }
    }
    payq_buf_putc(b, '"');
}

void payq_buf_reset(struct payq_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void payq_buf_free(struct payq_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
