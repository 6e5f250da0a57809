/* read_pause: when a replica stops reading the ledger for a while. Every
 * read of the ledger on the request path (the replay check, GETs, the
 * database line of /readyz) waits on a pool thread that also serves POSTs,
 * so a standby that is down, frozen or cut off must cost one bounded wait
 * now and then, not one per request: after a read that failed (no
 * connection, no answer in time, a lost connection) none is tried for 1 s,
 * doubled after each failure in a row up to 8 s; then one caller probes
 * while the others stay paused, and a read that works ends it. Shared by
 * the threads of one process without a lock; times are payq_clock_mono_ns
 * values, passed in so that the rules can be tested. */
#ifndef PAYQ_READ_PAUSE_H
#define PAYQ_READ_PAUSE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define PAYQ_READ_PAUSE_MIN_NS (1000 * 1000000LL)
#define PAYQ_READ_PAUSE_MAX_NS (8000 * 1000000LL)

struct payq_read_pause {
    _Atomic int64_t until_ns;     /* no read before this */
    _Atomic int64_t pause_ns;     /* the last pause; 0 after a read that worked */
    _Atomic int64_t failed_at_ns; /* when the last failure was recorded */
    int64_t probe_ns;             /* how long a probe may take: the others wait that long */
};

/* A zeroed struct with probe_ns set is a valid one: reads go. */
void payq_read_pause_init(struct payq_read_pause *p, int64_t probe_ns);

/* Milliseconds left of the pause at now_ns, 0 to read. When the pause is
 * over but the last read failed, the first caller gets 0 (it probes) and
 * the others see the probe's time as pause. */
int64_t payq_read_pause_left_ms(struct payq_read_pause *p, int64_t now_ns);

/* Records the outcome of a read that began at started_ns; after a failure
 * returns the pause in ms. A read that works ends the pause. A failed read
 * that began before the last failure was recorded was in flight with it (a
 * standby that stops fails them all at once): it does not double the
 * pause. (A caller whose read used a connection opened before then passes
 * the connection's opening as started_ns: payq_http_read_begin.) */
int64_t payq_read_pause_done(struct payq_read_pause *p, int64_t started_ns, int64_t now_ns,
                             bool ok);

#endif
