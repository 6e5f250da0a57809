/* group_commit: the transfers of concurrent HTTP requests share packs.
 *
 * One transfer per request meant one broker message and one confirm per
 * request, and the broker's per-message cost capped the API near 1,800
 * requests/s (issue 12). Here each request hands its canonical transfers to
 * a shared queue and waits; publisher threads, each with its own sink (a
 * broker connection), take whole requests from the queue into one pack of
 * up to pack_max transfers, as soon as the pack is full or linger_us after
 * its first request arrived, publish it, wait for its confirm and wake the
 * requests it carried.
 *
 * Failure is exact: a request's transfers always travel in one pack (a
 * request that does not fit one pack is not submitted here), and a pack is
 * published and confirmed on its own before its publisher takes another,
 * so a nack, a return or a lost connection fails exactly the requests in
 * that pack, and nothing of theirs was accepted. Other packs, including
 * ones in flight on other publishers, are unaffected.
 *
 * A sink may also check a pack's requests before publishing it (the HTTP
 * replay check): one ledger query per pack, where one query per request
 * halved the API's rate. A request the check refuses is left out of the
 * pack, so nothing of it is published; the pack's other requests go on.
 *
 * A pack's message_id is its first transfer's id, as for any pack
 * (README "The message contract"); with pack_max 1 each transfer goes as a
 * "transfer" message, as producer/packer.c does. */
#ifndef PAYQ_GROUP_COMMIT_H
#define PAYQ_GROUP_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAYQ_GC_MAX_PUBLISHERS 16

/* One transfer of a request: its id and canonical body (owned by the caller). */
struct payq_gc_item {
    const char *id;
    const char *body;
    size_t len;
};

/* One request of a pack as a sink's check sees it. */
struct payq_gc_req {
    const struct payq_gc_item *items;
    size_t n;
    void *arg;    /* the submitter's, from payq_gc_submit */
    bool refused; /* set by the check: leave the request out of the pack */
};

/* Where packs go: publish one message and wait for its confirm. Returns 0
 * once confirmed, or -1 (nacked, returned, unreachable) with a reason in
 * err. check, when not NULL, is called first with the pack's requests and
 * sets refused on those that must not be published; it must return (a
 * check that cannot decide lets the request through). Both are called only
 * by their own publisher thread. */
struct payq_gc_sink {
    int (*publish)(void *ctx, const char *rk, const char *id, const void *body, size_t len,
                   uint32_t items, char *err, size_t errlen);
    void (*check)(void *ctx, struct payq_gc_req *reqs, size_t n);
    void *ctx;
    /* When not NULL: called every idle_ms while no job is queued (a broker
     * connection's heartbeat, which nothing else sends while idle). */
    void (*idle)(void *ctx);
};

struct payq_gc_opts {
    int pack_max;  /* transfers per pack, 1..PAYQ_PACK_MAX_ITEMS */
    int linger_us; /* how long a pack waits for more requests after its first */
    int npublishers;
    int idle_ms; /* how often an idle publisher calls its sink's idle (> 0 when one is set) */
    struct payq_gc_sink sinks[PAYQ_GC_MAX_PUBLISHERS]; /* one per publisher */
};

struct payq_gc;

/* Starts the publisher threads. Returns NULL when out of memory or a thread
 * could not start. Free with payq_gc_free. */
struct payq_gc *payq_gc_new(const struct payq_gc_opts *o);
/* Publishes what is queued, stops the threads, frees. NULL is fine. Call
 * only after every payq_gc_submit has returned. */
void payq_gc_free(struct payq_gc *gc);

/* True when n items of bytes (their bodies' total length) fit one pack. */
bool payq_gc_fits(const struct payq_gc *gc, size_t n, size_t bytes);

/* Queues a request's items (n >= 1, payq_gc_fits) and waits until the pack
 * carrying them is confirmed (0) or failed (-1, the reason in err), or the
 * sink's check refused the request (1: nothing of it was published). items
 * must stay valid until it returns; arg is handed to the check. Thread-safe. */
int payq_gc_submit(struct payq_gc *gc, const struct payq_gc_item *items, size_t n, void *arg,
                   char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
