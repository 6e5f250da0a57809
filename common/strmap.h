/* strmap: an open-addressing hash map from borrowed NUL-terminated string
 * keys to size_t values (usually indexes into the caller's arrays). The map
 * never copies or frees keys: they must outlive it (batch memory). */
#ifndef PAYQ_STRMAP_H
#define PAYQ_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct payq_strmap_slot {
    const char *key; /* NULL = empty */
    uint64_t hash;
    size_t val;
};

struct payq_strmap {
    struct payq_strmap_slot *slots;
    size_t cap; /* power of two */
    size_t n;
};

/* Empties the map, keeping room for at least `expected` keys without
 * growing. Aborts on OOM. */
void payq_strmap_reset(struct payq_strmap *m, size_t expected);
bool payq_strmap_get(const struct payq_strmap *m, const char *key, size_t *val);
/* Inserts or replaces. */
void payq_strmap_put(struct payq_strmap *m, const char *key, size_t val);
void payq_strmap_free(struct payq_strmap *m); /* safe on a zeroed map */
uint64_t payq_strhash(const char *s);

#endif
