/* progress: the one progress line of payq's command-line runs (the
 * producer's batch files, the reconciler's stages) on stderr, redrawn a few
 * times a second, only when the caller says stderr is a terminal (under
 * cron, systemd or CI stderr carries the JSON log lines alone). With a
 * known total it shows done/total, a bar, the rate and an ETA; without one
 * the count, the rate and the time spent. Terminal display only: nothing
 * here is logged or returned. */
#ifndef PAYQ_PROGRESS_H
#define PAYQ_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct payq_progress {
    bool enabled;
    bool drawn;        /* a bar is on screen and must be erased before other output */
    const char *label; /* "validating", "publishing", "ledger" */
    const char *unit;  /* "lines", "msgs", "rows" */
    uint64_t total;    /* 0 = unknown */
    uint64_t done;
    /* When the bar measures one thing (bytes) but people count another
     * (lines): shown instead of done/total. */
    const char *items_unit;
    uint64_t items;
    int64_t started_ms;
    int64_t drawn_ms;
};

/* enabled = isatty(STDERR_FILENO) && !quiet, decided by the caller. */
void payq_progress_init(struct payq_progress *p, bool enabled);
/* Starts a phase (erasing the last one's line): resets the clock and
 * counters. label and unit are literals; total 0 = unknown. */
void payq_progress_phase(struct payq_progress *p, const char *label, const char *unit,
                         uint64_t total);
/* Records progress; redraws at most every 200 ms. */
void payq_progress_update(struct payq_progress *p, uint64_t done);
/* The same, also counting items (items_unit, a literal, e.g. "lines"). */
void payq_progress_update_items(struct payq_progress *p, uint64_t done, uint64_t items,
                                const char *items_unit);
/* Redraws if due, without new progress (while waiting for the broker). */
void payq_progress_tick(void *p);
/* Erases the bar so other text can be written to stderr; the next update
 * draws it again. */
void payq_progress_clear(struct payq_progress *p);

#endif
