/* http_guard: per-connection deadlines and eviction (see http_guard.h). */
#include "http_guard.h"
#include "alloc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>

enum phase {
    WAIT_HEADERS, /* deadline: since + header timeout */
    READ_BODY,    /* deadline: since + body timeout */
    HANDLING,     /* no deadline */
    SHUT,         /* already shut down: waiting for libmicrohttpd to close it */
};

struct payq_http_guard_conn {
    int fd;
    enum phase phase;
    int64_t since_ns;
    struct payq_http_guard_conn *prev, *next; /* oldest first */
};

struct payq_http_guard {
    pthread_mutex_t lock;
    struct payq_http_guard_opts o;
    struct payq_http_guard_conn *head, *tail;
    struct payq_http_guard_stats st;
};

struct payq_http_guard *payq_http_guard_new(const struct payq_http_guard_opts *o)
{
    struct payq_http_guard *g = payq_xcalloc(1, sizeof *g);
    pthread_mutex_init(&g->lock, NULL);
    g->o = *o;
    return g;
}

void payq_http_guard_free(struct payq_http_guard *g)
{
    if (!g)
        return;
    struct payq_http_guard_conn *c = g->head;
    while (c) {
        struct payq_http_guard_conn *next = c->next;
        free(c);
        c = next;
    }
    pthread_mutex_destroy(&g->lock);
    free(g);
}

/* Shuts c down once; the caller holds the lock. */
static void shut(struct payq_http_guard_conn *c)
{
    if (c->phase == SHUT)
        return;
    shutdown(c->fd, SHUT_RDWR);
    c->phase = SHUT;
}

/* The oldest connection other than except still waiting for headers, or NULL. */
static struct payq_http_guard_conn *oldest_waiting(struct payq_http_guard *g,
                                                   const struct payq_http_guard_conn *except)
{
    for (struct payq_http_guard_conn *c = g->head; c; c = c->next)
        if (c != except && c->phase == WAIT_HEADERS)
            return c;
    return NULL;
}

struct payq_http_guard_conn *payq_http_guard_open(struct payq_http_guard *g, int fd, int64_t now_ns)
{
    struct payq_http_guard_conn *c = payq_xcalloc(1, sizeof *c);
    c->fd = fd;
    c->phase = WAIT_HEADERS;
    c->since_ns = now_ns;
    pthread_mutex_lock(&g->lock);
    c->prev = g->tail;
    if (g->tail)
        g->tail->next = c;
    else
        g->head = c;
    g->tail = c;
    g->st.open++;
    if (g->st.open > g->o.evict_at) {
        struct payq_http_guard_conn *victim = oldest_waiting(g, c);
        if (victim) {
            shut(victim);
            g->st.evicted++;
        }
    }
    pthread_mutex_unlock(&g->lock);
    return c;
}

void payq_http_guard_close(struct payq_http_guard *g, struct payq_http_guard_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        g->tail = c->prev;
    g->st.open--;
    pthread_mutex_unlock(&g->lock);
    free(c);
}

/* Moves c to phase (unless it was already shut down). */
static void set_phase(struct payq_http_guard *g, struct payq_http_guard_conn *c, enum phase p,
                      int64_t now_ns)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    if (c->phase != SHUT) {
        c->phase = p;
        c->since_ns = now_ns;
    }
    pthread_mutex_unlock(&g->lock);
}

void payq_http_guard_headers_in(struct payq_http_guard *g, struct payq_http_guard_conn *c,
                                int64_t now_ns)
{
    set_phase(g, c, READ_BODY, now_ns);
}

void payq_http_guard_handling(struct payq_http_guard *g, struct payq_http_guard_conn *c)
{
    set_phase(g, c, HANDLING, 0);
}

void payq_http_guard_request_done(struct payq_http_guard *g, struct payq_http_guard_conn *c,
                                  int64_t now_ns)
{
    set_phase(g, c, WAIT_HEADERS, now_ns);
}

long payq_http_guard_reap(struct payq_http_guard *g, int64_t now_ns)
{
    long n = 0;
    int64_t head_ns = g->o.header_timeout_ms * 1000000, body_ns = g->o.body_timeout_ms * 1000000;
    pthread_mutex_lock(&g->lock);
    for (struct payq_http_guard_conn *c = g->head; c; c = c->next) {
        bool late = (c->phase == WAIT_HEADERS && now_ns - c->since_ns > head_ns) ||
                    (c->phase == READ_BODY && now_ns - c->since_ns > body_ns);
        if (late) {
            shut(c);
            n++;
        }
    }
    g->st.timed_out += n;
    pthread_mutex_unlock(&g->lock);
    return n;
}

void payq_http_guard_stats(struct payq_http_guard *g, struct payq_http_guard_stats *out)
{
    pthread_mutex_lock(&g->lock);
    *out = g->st;
    pthread_mutex_unlock(&g->lock);
}
