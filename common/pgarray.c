/* pgarray: array literal builder with element quoting. */
#include "pgarray.h"

#include <inttypes.h>

static void sep(struct payq_buf *b)
{
    if (b->len > 1)
        payq_buf_putc(b, ',');
}

void payq_pgarr_begin(struct payq_buf *b)
{
    payq_buf_reset(b);
    payq_buf_putc(b, '{');
}

void payq_pgarr_str(struct payq_buf *b, const char *s)
{
    sep(b);
    if (!s) {
        payq_buf_puts(b, "NULL");
        return;
    }
    payq_buf_putc(b, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            payq_buf_putc(b, '\\');
        payq_buf_putc(b, *p);
    }
    payq_buf_putc(b, '"');
}

void payq_pgarr_int(struct payq_buf *b, int64_t v)
{
    sep(b);
    payq_buf_printf(b, "%" PRId64, v);
}

void payq_pgarr_end(struct payq_buf *b)
{
    payq_buf_putc(b, '}');
}
