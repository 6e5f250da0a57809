/* progress: a throttled, in-place status line on a terminal's stderr. */
#include "progress.h"

#include <stdio.h>
#include <unistd.h>

#include "broker.h"
#include "clock.h"

#define PROGRESS_EVERY_MS 200

void payq_progress_init(struct payq_progress *p)
{
    *p = (struct payq_progress){.on = isatty(STDERR_FILENO) == 1};
}

void payq_progress_stage(struct payq_progress *p, const char *stage, const char *unit)
{
    payq_progress_done(p);
    p->stage = stage;
    p->unit = unit;
    p->stage_start_ms = payq_clock_mono_ms();
    p->last_ms = 0;
}

void payq_progress_update(struct payq_progress *p, uint64_t count)
{
    if (!p->on)
        return;
    int64_t now = payq_clock_mono_ms();
    if (now - p->last_ms < PROGRESS_EVERY_MS)
        return;
    p->last_ms = now;
    double secs = (double)(now - p->stage_start_ms) / 1000.0;
    double rate = secs > 0 ? (double)count / secs : 0;
    fprintf(stderr, "\r\033[Kpayq-reconciler: %s: %llu %s (%.0f/s, %.1f s)", p->stage,
            (unsigned long long)count, p->unit, rate, secs);
    fflush(stderr);
    p->shown = true;
}

void payq_progress_done(struct payq_progress *p)
{
    if (p->on && p->shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->shown = false;
}
