/* strmap: linear-probing string map, FNV-1a hashed. */
#include "strmap.h"
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

uint64_t payq_strhash(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static void alloc_slots(struct payq_strmap *m, size_t cap)
{
    m->slots = payq_xcalloc(cap, sizeof *m->slots);
    m->cap = cap;
    m->n = 0;
}

void payq_strmap_reset(struct payq_strmap *m, size_t expected)
{
    size_t cap = 16;
    while (cap < expected * 2)
        cap *= 2;
    if (m->slots && m->cap >= cap && m->cap <= cap * 4) {
        memset(m->slots, 0, m->cap * sizeof *m->slots);
        m->n = 0;
        return;
    }
    free(m->slots);
    alloc_slots(m, cap);
}

static struct payq_strmap_slot *find(const struct payq_strmap *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct payq_strmap_slot *s = &m->slots[i];
        if (!s->key || (s->hash == h && strcmp(s->key, key) == 0))
            return s;
    }
}

bool payq_strmap_get(const struct payq_strmap *m, const char *key, size_t *val)
{
    if (!m->slots)
        return false;
    struct payq_strmap_slot *s = find(m, key, payq_strhash(key));
    if (!s->key)
        return false;
    *val = s->val;
    return true;
}

static void grow(struct payq_strmap *m)
{
    struct payq_strmap_slot *old = m->slots;
    size_t oldcap = m->cap;
    alloc_slots(m, oldcap ? oldcap * 2 : 16);
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].key) {
            *find(m, old[i].key, old[i].hash) = old[i];
            m->n++;
        }
    }
    free(old);
}

void payq_strmap_put(struct payq_strmap *m, const char *key, size_t val)
{
    if (!m->slots || (m->n + 1) * 2 > m->cap)
        grow(m);
    uint64_t h = payq_strhash(key);
    struct payq_strmap_slot *s = find(m, key, h);
    if (!s->key) {
        s->key = key;
        s->hash = h;
        m->n++;
    }
    s->val = val;
}

void payq_strmap_free(struct payq_strmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}
