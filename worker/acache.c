/* acache: accounts' immutable fields across batches (see acache.h). */
#include "acache.h"

#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"

void payq_acache_init(struct payq_acache *c, size_t max)
{
    *c = (struct payq_acache){.max = max};
}

static void clear(struct payq_acache *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->e[i].id);
    c->n = 0;
    payq_strmap_reset(&c->idx, 0);
}

void payq_acache_free(struct payq_acache *c)
{
    clear(c);
    free(c->e);
    payq_strmap_free(&c->idx);
    *c = (struct payq_acache){0};
}

const struct payq_acache_entry *payq_acache_get(struct payq_acache *c, const char *id)
{
    size_t i;
    if (c->n > 0 && payq_strmap_get(&c->idx, id, &i)) {
        c->hits++;
        return &c->e[i];
    }
    c->misses++;
    return NULL;
}

void payq_acache_put(struct payq_acache *c, const char *id, const char *currency, unsigned flags)
{
    size_t i;
    if (c->max == 0 || (c->n > 0 && payq_strmap_get(&c->idx, id, &i)))
        return;
    if (c->n == c->max)
        clear(c); /* simplest bound: the next batches refill what they use */
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        if (c->cap > c->max)
            c->cap = c->max;
        c->e = payq_xreallocarray(c->e, c->cap, sizeof *c->e);
    }
    struct payq_acache_entry *e = &c->e[c->n];
    e->id = payq_xstrdup(id);
    snprintf(e->currency, sizeof e->currency, "%s", currency);
    e->flags = flags;
    payq_strmap_put(&c->idx, e->id, c->n);
    c->n++;
}
