/* metrics: the run's result as a Prometheus text-format file, for the node
 * exporter's textfile collector (alert rules watch these names):
 *   payq_recon_last_run_timestamp_seconds  unix time the run ended
 *   payq_recon_last_run_balanced           1 balanced, else 0
 *   payq_recon_breaks{category="..."}      per break category, every one
 *   payq_recon_business_date_info{date="YYYY-MM-DD"} 1
 * The file is written to a temporary name beside it and renamed, so the
 * collector never reads half of it. */
#ifndef PAYQ_RECON_METRICS_H
#define PAYQ_RECON_METRICS_H

#include <stddef.h>

#include "buf.h"
#include "outcome.h"

/* Appends the metrics text of a finished run to out. */
void payq_recon_metrics_format(const struct payq_recon_outcome *run, struct payq_buf *out);

/* Writes them to path atomically. Returns 0, or -1 with a one-line reason
 * in err (also logged). */
int payq_recon_metrics_write(const struct payq_recon_outcome *run, const char *path, char *err,
                             size_t errlen) __attribute__((warn_unused_result));

#endif
