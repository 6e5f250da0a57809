/* group_commit: shared packs across requests (see group_commit.h). */
#include "group_commit.h"
#include "alloc.h"
#include "clock.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "message.h"
#include "pack.h"

/* A request waiting in the queue; lives on its submitter's stack. */
struct job {
    const struct payq_gc_item *items;
    size_t n, bytes;
    void *arg; /* for the sink's check */
    int64_t queued_ns;
    bool refused; /* by the sink's check: left out of the pack */
    bool done;
    int rc;
    char *err;
    size_t errlen;
    struct job *next;
};

struct publisher {
    struct payq_gc *gc;
    struct payq_gc_sink sink;
    pthread_t thread;
    bool started;
    int64_t idle_due_ns; /* its sink's next idle call (0: not set yet) */
};

struct payq_gc {
    pthread_mutex_t lock;
    pthread_cond_t work; /* publishers: a job arrived or stopping */
    pthread_cond_t done; /* submitters: some job finished */
    struct job *head, *tail;
    size_t queued_items;
    bool stopping;
    int pack_max;
    int64_t linger_ns;
    int64_t idle_ns; /* a sink's idle call every so often while nothing is queued */
    int npub;
    struct publisher pubs[PAYQ_GC_MAX_PUBLISHERS];
};

static int64_t now_ns(void)
{
    return payq_clock_mono_ns();
}

bool payq_gc_fits(const struct payq_gc *gc, size_t n, size_t bytes)
{
    return n >= 1 && n <= (size_t)gc->pack_max && bytes + n <= PAYQ_PACK_MAX_BODY;
}

/* Takes from the queue's head the jobs that fit one pack (at least the
 * first); the caller holds the lock. */
static struct job *take_pack(struct payq_gc *gc)
{
    struct job *first = gc->head, *last = NULL;
    size_t items = 0, bytes = 0;
    for (struct job *j = gc->head; j; j = j->next) {
        if (last && (items + j->n > (size_t)gc->pack_max ||
                     bytes + j->bytes + items + j->n > PAYQ_PACK_MAX_BODY))
            break;
        items += j->n;
        bytes += j->bytes;
        last = j;
    }
    gc->head = last->next;
    if (!gc->head)
        gc->tail = NULL;
    last->next = NULL;
    gc->queued_items -= items;
    return first;
}

/* Runs the sink's check over the pack's requests, in one call so that it
 * can make one query for all of them, and marks the refused jobs. */
static void check_pack(struct publisher *p, struct job *jobs)
{
    if (!p->sink.check)
        return;
    size_t n = 0;
    for (struct job *j = jobs; j; j = j->next)
        n++;
    struct payq_gc_req *reqs = payq_xreallocarray(NULL, n, sizeof *reqs);
    n = 0;
    for (struct job *j = jobs; j; j = j->next)
        reqs[n++] = (struct payq_gc_req){.items = j->items, .n = j->n, .arg = j->arg};
    p->sink.check(p->sink.ctx, reqs, n);
    n = 0;
    for (struct job *j = jobs; j; j = j->next)
        j->refused = reqs[n++].refused;
    free(reqs);
}

/* Puts the lines of the jobs not refused into body; returns their count
 * and sets first_id to the first line's id (NULL when none). */
static uint32_t build_pack(struct job *jobs, struct payq_buf *body, const char **first_id)
{
    uint32_t n = 0;
    *first_id = NULL;
    payq_buf_reset(body);
    for (struct job *j = jobs; j; j = j->next)
        for (size_t i = 0; !j->refused && i < j->n; i++, n++) {
            if (n)
                payq_buf_putc(body, '\n');
            else
                *first_id = j->items[0].id;
            payq_buf_append(body, j->items[i].body, j->items[i].len);
        }
    return n;
}

/* Publishes the jobs the check let through as one pack and settles them
 * all: the refused with 1, the others with the pack's outcome. */
static void publish_pack(struct publisher *p, struct job *jobs, struct payq_buf *body)
{
    struct payq_gc *gc = p->gc;
    check_pack(p, jobs);
    const char *first_id;
    uint32_t n = build_pack(jobs, body, &first_id);
    const char *rk =
        gc->pack_max == 1 ? payq_msg_kind_routing_key(PAYQ_MSG_TRANSFER) : PAYQ_PACK_ROUTING_KEY;
    char err[256] = "";
    int rc = n == 0 ? 0
                    : p->sink.publish(p->sink.ctx, rk, first_id, body->data, body->len, n, err,
                                      sizeof err);
    pthread_mutex_lock(&gc->lock);
    for (struct job *j = jobs, *next; j; j = next) {
        next = j->next; /* j belongs to its submitter once done is set */
        j->rc = j->refused ? 1 : rc == 0 ? 0 : -1;
        if (!j->refused && rc != 0)
            snprintf(j->err, j->errlen, "%s", err[0] ? err : "the pack was not confirmed");
        j->done = true;
    }
    pthread_cond_broadcast(&gc->done);
    pthread_mutex_unlock(&gc->lock);
}

/* Waits for work while nothing is queued, calling the sink's idle (without
 * the lock) every idle_ns: on a schedule of its own, which a wake-up that
 * found nothing to take (another publisher took it) does not push back.
 * The caller holds the lock. */
static void wait_idle(struct publisher *p)
{
    struct payq_gc *gc = p->gc;
    if (!p->sink.idle) {
        pthread_cond_wait(&gc->work, &gc->lock);
        return;
    }
    int64_t now = now_ns();
    if (p->idle_due_ns == 0)
        p->idle_due_ns = now + gc->idle_ns;
    if (now >= p->idle_due_ns) {
        p->idle_due_ns = now + gc->idle_ns;
        pthread_mutex_unlock(&gc->lock);
        p->sink.idle(p->sink.ctx);
        pthread_mutex_lock(&gc->lock);
        return;
    }
    struct timespec ts = {(time_t)(p->idle_due_ns / 1000000000),
                          (long)(p->idle_due_ns % 1000000000)};
    pthread_cond_timedwait(&gc->work, &gc->lock, &ts);
}

/* Waits for a pack's worth of jobs, or for linger after the first; returns
 * them, or NULL when stopping with nothing queued. The caller holds the lock. */
static struct job *next_pack(struct publisher *p)
{
    struct payq_gc *gc = p->gc;
    for (;;) {
        if (!gc->head) {
            if (gc->stopping)
                return NULL;
            wait_idle(p);
            continue;
        }
        int64_t due = gc->head->queued_ns + gc->linger_ns;
        if (gc->stopping || gc->queued_items >= (size_t)gc->pack_max || now_ns() >= due)
            return take_pack(gc);
        struct timespec ts = {(time_t)(due / 1000000000), (long)(due % 1000000000)};
        pthread_cond_timedwait(&gc->work, &gc->lock, &ts);
    }
}

static void *publisher_main(void *arg)
{
    struct publisher *p = arg;
    struct payq_gc *gc = p->gc;
    struct payq_buf body = PAYQ_BUF_INIT;
    pthread_mutex_lock(&gc->lock);
    struct job *jobs;
    while ((jobs = next_pack(p)) != NULL) {
        pthread_mutex_unlock(&gc->lock);
        publish_pack(p, jobs, &body);
        pthread_mutex_lock(&gc->lock);
    }
    pthread_mutex_unlock(&gc->lock);
    payq_buf_free(&body);
    return NULL;
}

struct payq_gc *payq_gc_new(const struct payq_gc_opts *o)
{
    struct payq_gc *gc = payq_xcalloc(1, sizeof *gc);
    pthread_mutex_init(&gc->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the linger deadline's clock */
    pthread_cond_init(&gc->work, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&gc->done, NULL);
    gc->pack_max = o->pack_max < 1                     ? 1
                   : o->pack_max > PAYQ_PACK_MAX_ITEMS ? PAYQ_PACK_MAX_ITEMS
                                                       : o->pack_max;
    gc->linger_ns = (int64_t)o->linger_us * 1000;
    gc->idle_ns = (int64_t)(o->idle_ms > 0 ? o->idle_ms : 1000) * 1000000;
    gc->npub = o->npublishers < 1                        ? 1
               : o->npublishers > PAYQ_GC_MAX_PUBLISHERS ? PAYQ_GC_MAX_PUBLISHERS
                                                         : o->npublishers;
    for (int i = 0; i < gc->npub; i++) {
        struct publisher *p = &gc->pubs[i];
        p->gc = gc;
        p->sink = o->sinks[i];
        if (pthread_create(&p->thread, NULL, publisher_main, p) != 0) {
            payq_gc_free(gc);
            return NULL;
        }
        p->started = true;
    }
    return gc;
}

void payq_gc_free(struct payq_gc *gc)
{
    if (!gc)
        return;
    pthread_mutex_lock(&gc->lock);
    gc->stopping = true;
    pthread_cond_broadcast(&gc->work);
    pthread_mutex_unlock(&gc->lock);
    for (int i = 0; i < gc->npub; i++)
        if (gc->pubs[i].started)
            pthread_join(gc->pubs[i].thread, NULL);
    pthread_cond_destroy(&gc->work);
    pthread_cond_destroy(&gc->done);
    pthread_mutex_destroy(&gc->lock);
    free(gc);
}

int payq_gc_submit(struct payq_gc *gc, const struct payq_gc_item *items, size_t n, void *arg,
                   char *err, size_t errlen)
{
    struct job j = {.items = items, .n = n, .arg = arg, .err = err, .errlen = errlen};
    for (size_t i = 0; i < n; i++)
        j.bytes += items[i].len;
    pthread_mutex_lock(&gc->lock);
    j.queued_ns = now_ns();
    if (gc->tail)
        gc->tail->next = &j;
    else
        gc->head = &j;
    gc->tail = &j;
    gc->queued_items += n;
    /* A full pack wakes every publisher; a first job wakes one to linger. */
    if (gc->queued_items >= (size_t)gc->pack_max)
        pthread_cond_broadcast(&gc->work);
    else
        pthread_cond_signal(&gc->work);
    while (!j.done)
        pthread_cond_wait(&gc->done, &gc->lock);
    pthread_mutex_unlock(&gc->lock);
    return j.rc;
}
