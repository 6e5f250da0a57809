/* idset: an open-addressing multiset of (hash, line, offset) entries. */
#include "idset.h"

#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "strmap.h"

uint32_t payq_idset_hash(const char *id)
{
    /* FNV-1a leaves the low bits weak for ids that differ only in their
     * last characters (t-1, t-2...): fold and mix before truncating. */
    uint64_t h = payq_strhash(id);
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return (uint32_t)h;
}

/* Doubles the table (or creates it) and re-inserts every entry. */
static void grow(struct payq_idset *s)
{
    size_t cap = s->cap ? s->cap * 2 : 1024;
    struct payq_idset_slot *slots = payq_xcalloc(cap, sizeof *slots);
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->slots[i].offset1)
            continue;
        size_t j = s->slots[i].hash & (cap - 1);
        while (slots[j].offset1)
            j = (j + 1) & (cap - 1);
        slots[j] = s->slots[i];
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
}

void payq_idset_add(struct payq_idset *s, uint32_t hash, uint32_t line, uint64_t offset)
{
    /* Keep the load under 3/4 so probe runs stay short. */
    if ((s->n + 1) * 4 > s->cap * 3)
        grow(s);
    size_t j = hash & (s->cap - 1);
    while (s->slots[j].offset1)
        j = (j + 1) & (s->cap - 1);
    s->slots[j].offset1 = offset + 1;
    s->slots[j].hash = hash;
    s->slots[j].line = line;
    s->n++;
}

/* *cursor counts the slots already visited from the hash's home slot. */
bool payq_idset_next(const struct payq_idset *s, uint32_t hash, size_t *cursor, uint32_t *line,
                     uint64_t *offset)
{
    while (*cursor < s->cap) {
        const struct payq_idset_slot *sl = &s->slots[(hash + *cursor) & (s->cap - 1)];
        (*cursor)++;
        if (!sl->offset1)
            return false;
        if (sl->hash == hash) {
            *line = sl->line;
            *offset = sl->offset1 - 1;
            return true;
        }
    }
    return false;
}

void payq_idset_free(struct payq_idset *s)
{
    free(s->slots);
    s->slots = NULL;
    s->cap = s->n = 0;
}
