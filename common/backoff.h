/* backoff: the one way payq waits before retrying something that failed
 * (a broker or database connection, a transaction that hit a deadlock).
 *
 * Delays grow exponentially from first_ms to max_ms, each with random
 * jitter (between half and all of the nominal delay) so that many clients
 * cut off together do not come back in lockstep. The sleep is cut into
 * steps of at most 100 ms and checks a stop predicate between them, so a
 * SIGTERM is noticed within 100 ms even in the middle of a long delay. */
#ifndef PAYQ_BACKOFF_H
#define PAYQ_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

struct payq_backoff {
    int first_ms, max_ms;
    int cur_ms; /* the next nominal delay */
    unsigned seed;
    void (*tick)(void *ctx); /* called after each step of a sleep; may be NULL */
    void *tick_ctx;
};

/* Starts at first_ms (at least 1), capped at max_ms (at least first_ms). */
void payq_backoff_init(struct payq_backoff *b, int first_ms, int max_ms);

/* Back to first_ms, after a success. */
void payq_backoff_reset(struct payq_backoff *b);

/* The next delay in ms (in [cur/2, cur]); cur then doubles up to max_ms. */
int payq_backoff_next_ms(struct payq_backoff *b);

/* Whether the next delay, however long its jitter makes it, ends before
 * deadline_ms (payq_clock_mono_ms): a retry bounded by a deadline is given
 * up when it does not, rather than slept into. */
bool payq_backoff_fits(const struct payq_backoff *b, int64_t deadline_ms);

/* Sleeps the next delay. Returns 0 after the whole delay, or -1 as soon as
 * stop (when not NULL) returns true, e.g. payq_signals_stop_requested. */
int payq_backoff_sleep(struct payq_backoff *b, bool (*stop)(void));

#endif
