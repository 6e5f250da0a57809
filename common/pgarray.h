/* pgarray: builds PostgreSQL array literals ({"a","b",NULL}) to pass a whole
 * batch as one parameter per column ($1::text[] ... unnest). Values are
 * quoted and escaped, so message text never becomes SQL. */
#ifndef PAYQ_PGARRAY_H
#define PAYQ_PGARRAY_H

#include <stdint.h>

#include "buf.h"

void payq_pgarr_begin(struct payq_buf *b);              /* resets b and writes "{" */
void payq_pgarr_str(struct payq_buf *b, const char *s); /* s NULL = NULL element */
void payq_pgarr_int(struct payq_buf *b, int64_t v);
void payq_pgarr_end(struct payq_buf *b);

#endif
