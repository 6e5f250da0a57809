/* alloc: payq's out-of-memory policy, in one place.
 *
 * Running out of memory is fatal: the allocation wrappers below log one
 * JSON line ({"level":"error","event":"out_of_memory","fatal":true,
 * "bytes":N}) and abort(). Nothing is lost by dying: a worker's batch is
 * unacked and comes back, a producer's unconfirmed messages were never
 * reported as accepted, a reconciler run simply did not finish. Threading
 * an impossible-to-handle NULL through every caller would only add paths
 * that are never tested.
 *
 * Use them for every allocation whose failure the caller cannot handle
 * meaningfully (nearly all). Call plain malloc only where a failure has a
 * real answer (e.g. refusing one oversized request), and say so there. */
#ifndef PAYQ_ALLOC_H
#define PAYQ_ALLOC_H

#include <stddef.h>

/* Never return NULL. payq_xmalloc(0) returns a unique pointer to free. */
void *payq_xmalloc(size_t size) __attribute__((malloc, returns_nonnull));
void *payq_xcalloc(size_t n, size_t size) __attribute__((malloc, returns_nonnull));
void *payq_xrealloc(void *p, size_t size) __attribute__((returns_nonnull));
/* p's count of n elements of size each; aborts on overflow too. */
void *payq_xreallocarray(void *p, size_t n, size_t size) __attribute__((returns_nonnull));
char *payq_xstrdup(const char *s) __attribute__((malloc, returns_nonnull));

/* Logs the fatal line for size bytes and aborts: for allocators payq does
 * not wrap (e.g. a library's own that returns NULL). */
void payq_oom(size_t size) __attribute__((noreturn));

#endif
