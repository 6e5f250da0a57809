/* alloc: allocation that aborts with one log line on out-of-memory. */
#include "alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void payq_oom(size_t size)
{
    /* payq_log builds its line on the stack: it needs no memory. */
    struct payq_log_rec r;
    payq_log_begin(&r, PAYQ_LOG_ERROR, "out_of_memory");
    payq_log_bool(&r, "fatal", true);
    payq_log_int(&r, "bytes", (long long)size);
    payq_log_end(&r);
    abort();
}

void *payq_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        payq_oom(size);
    return p;
}

void *payq_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        payq_oom(n * size);
    return p;
}

void *payq_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        payq_oom(size);
    return q;
}

void *payq_xreallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        payq_oom(SIZE_MAX);
    return payq_xrealloc(p, n * size);
}

char *payq_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = payq_xmalloc(n);
    memcpy(p, s, n);
    return p;
}
