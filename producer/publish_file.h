/* publish_file: `payq-producer publish` and `open-accounts`. Pass 1
 * validates the whole file (producer/batch_check.h) and publishes nothing
 * if any line is bad; pass 2 streams the file again and publishes each
 * canonical message through an outbox (producer/outbox.h) that survives
 * broker restarts; for transfers the batch manifest follows once every
 * transfer is confirmed. Exit codes: 0 everything confirmed, 1 invalid
 * input (or unreadable file, or an empty one without allow_empty), 3 publishing failed or was
 * interrupted by SIGINT/SIGTERM (the confirmed count is printed). */
#ifndef PAYQ_PUBLISH_FILE_H
#define PAYQ_PUBLISH_FILE_H

#include "batch_check.h"
#include "config.h"

enum payq_output { PAYQ_OUTPUT_HUMAN, PAYQ_OUTPUT_QUIET, PAYQ_OUTPUT_JSON };

struct payq_publish_file_opts {
    enum payq_batch_kind kind;
    const char *path;          /* "-" = standard input */
    const char *batch_id;      /* validated, or NULL */
    const char *business_date; /* validated, or NULL */
    enum payq_output output;
    bool allow_empty; /* publish an input without lines (else exit 1: "FILE: no transfers") */
};

/* Runs both passes; returns the process exit code. */
int payq_publish_file(const struct payq_config *cfg, const struct payq_publish_file_opts *o);

#endif
