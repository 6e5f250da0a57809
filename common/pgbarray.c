/* pgbarray: binary-format array parameters (see pgbarray.h). The header is
 * kept valid after every append (element count and null flag patched in
 * place), so there is no end call to forget. */
#include "pgbarray.h"

#include <string.h>

enum { OFF_HAS_NULLS = 4, OFF_COUNT = 12, HEADER_LEN = 20 };

static void put32(struct payq_buf *b, uint32_t v)
{
    unsigned char c[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    payq_buf_append(b, c, 4);
}

static uint32_t get32_at(const struct payq_buf *b, size_t off)
{
    const unsigned char *c = (const unsigned char *)b->data + off;
    return (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
}

static void set32_at(struct payq_buf *b, size_t off, uint32_t v)
{
    unsigned char *c = (unsigned char *)b->data + off;
    c[0] = (unsigned char)(v >> 24);
    c[1] = (unsigned char)(v >> 16);
    c[2] = (unsigned char)(v >> 8);
    c[3] = (unsigned char)v;
}

void payq_pgbarr_begin(struct payq_buf *b, uint32_t elem_oid)
{
    payq_buf_reset(b);
    put32(b, 1);        /* ndim */
    put32(b, 0);        /* has_nulls */
    put32(b, elem_oid); /* element type */
    put32(b, 0);        /* length of the one dimension */
    put32(b, 1);        /* its lower bound */
}

uint32_t payq_pgbarr_count(const struct payq_buf *b)
{
    return b->len >= HEADER_LEN ? get32_at(b, OFF_COUNT) : 0;
}

static void counted(struct payq_buf *b)
{
    set32_at(b, OFF_COUNT, get32_at(b, OFF_COUNT) + 1);
}

void payq_pgbarr_null(struct payq_buf *b)
{
    put32(b, UINT32_MAX); /* -1 */
    set32_at(b, OFF_HAS_NULLS, 1);
    counted(b);
}

void payq_pgbarr_bytes(struct payq_buf *b, const void *p, size_t len)
{
    if (!p) {
        payq_pgbarr_null(b);
        return;
    }
    put32(b, (uint32_t)len);
    payq_buf_append(b, p, len);
    counted(b);
}

void payq_pgbarr_text(struct payq_buf *b, const char *s)
{
    payq_pgbarr_bytes(b, s, s ? strlen(s) : 0);
}

void payq_pgbarr_int8(struct payq_buf *b, int64_t v)
{
    uint64_t u = (uint64_t)v;
    put32(b, 8);
    put32(b, (uint32_t)(u >> 32));
    put32(b, (uint32_t)u);
    counted(b);
}
