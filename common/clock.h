/* clock: the two clocks payq reads, so each use says which one it means.
 *
 * Every timeout, deadline, interval and rate uses the monotonic clock: it
 * never jumps when NTP or an operator sets the time, so a deadline can
 * neither fire at once nor never. The wall clock is only for timestamps
 * that leave the process (AMQP timestamps, x-payq-published-ms, reports,
 * business dates, unique ids). */
#ifndef PAYQ_CLOCK_H
#define PAYQ_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds: only differences mean anything, and
 * only within one process. */
int64_t payq_clock_mono_ms(void);

/* CLOCK_MONOTONIC in nanoseconds, for latency histograms. */
int64_t payq_clock_mono_ns(void);

/* Milliseconds since the epoch (CLOCK_REALTIME), for timestamps only. */
int64_t payq_clock_wall_ms(void);

#endif
