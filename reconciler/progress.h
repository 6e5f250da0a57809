/* progress: one line on stderr, rewritten in place, showing how far a long
 * run has come (messages read from the stream, rows read from the ledger,
 * buckets compared, each with its rate). Only when stderr is a terminal:
 * under cron or systemd stderr carries the JSON log lines alone. */
#ifndef PAYQ_RECON_PROGRESS_H
#define PAYQ_RECON_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct payq_progress {
    bool on;           /* stderr is a terminal */
    bool shown;        /* a line is on screen and needs a newline before logs */
    const char *stage; /* "audit", "ledger", "compare" */
    const char *unit;  /* "messages", "rows", "buckets" */
    int64_t stage_start_ms;
    int64_t last_ms;
};

/* Decides whether to show progress (isatty(2)). */
void payq_progress_init(struct payq_progress *p);
/* Starts a stage; count restarts at 0. unit and stage are string literals. */
void payq_progress_stage(struct payq_progress *p, const char *stage, const char *unit);
/* Redraws the line at most 5 times a second. */
void payq_progress_update(struct payq_progress *p, uint64_t count);
/* Ends the line so that the next output starts clean. */
void payq_progress_done(struct payq_progress *p);

#endif
