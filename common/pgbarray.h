/* pgbarray: builds one-dimensional PostgreSQL arrays in the binary wire
 * format (array_recv's input), to pass a whole batch as one binary
 * parameter per column. The server then copies each element instead of
 * parsing an array literal: array_in took ~4% of the worker's backend CPU
 * for 15 literals of 4,000 elements (issue 16). Values are bytes, never SQL.
 *
 *   int32 ndim (1), int32 has_nulls, uint32 element type oid,
 *   int32 length, int32 lower bound (1), then per element: int32 byte
 *   length (-1: NULL) and the element's own binary form. */
#ifndef PAYQ_PGBARRAY_H
#define PAYQ_PGBARRAY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Type oids (pg_type.dat: fixed since PostgreSQL 7): array elements, and
 * the columns of binary results the worker reads (event_body.c). */
#define PAYQ_PG_BYTEA_OID 17u
#define PAYQ_PG_INT8_OID 20u
#define PAYQ_PG_TEXT_OID 25u
#define PAYQ_PG_BPCHAR_OID 1042u
#define PAYQ_PG_VARCHAR_OID 1043u
#define PAYQ_PG_DATE_OID 1082u
#define PAYQ_PG_TIMESTAMPTZ_OID 1184u
#define PAYQ_PG_BYTEA_ARRAY_OID 1001u
#define PAYQ_PG_TEXT_ARRAY_OID 1009u
#define PAYQ_PG_INT8_ARRAY_OID 1016u

/* Resets b and writes the header of an empty array of elem_oid. */
void payq_pgbarr_begin(struct payq_buf *b, uint32_t elem_oid);
/* Appends a text element (its bytes, no terminator); s NULL = NULL. */
void payq_pgbarr_text(struct payq_buf *b, const char *s);
/* Appends an element of len raw bytes (bytea); p NULL = NULL. */
void payq_pgbarr_bytes(struct payq_buf *b, const void *p, size_t len);
/* Appends an int8 element. */
void payq_pgbarr_int8(struct payq_buf *b, int64_t v);
/* Appends a NULL element. */
void payq_pgbarr_null(struct payq_buf *b);
/* Elements appended since payq_pgbarr_begin. */
uint32_t payq_pgbarr_count(const struct payq_buf *b);

#endif
