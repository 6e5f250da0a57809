/* metrics: the Prometheus text file of a run, written atomically. */
#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static void gauge(struct payq_buf *b, const char *name, const char *help)
{
    payq_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

void payq_recon_metrics_format(const struct payq_recon_outcome *run, struct payq_buf *b)
{
    gauge(b, "payq_recon_last_run_timestamp_seconds", "Unix time the last reconciliation ended.");
    payq_buf_printf(b, "payq_recon_last_run_timestamp_seconds %lld.%03d\n",
                    (long long)(run->finished_ms / 1000), (int)(run->finished_ms % 1000));
    gauge(b, "payq_recon_last_run_balanced", "1 if the last reconciliation was balanced, else 0.");
    payq_buf_printf(b, "payq_recon_last_run_balanced %d\n",
                    run->result == PAYQ_RESULT_BALANCED ? 1 : 0);
    gauge(b, "payq_recon_breaks", "Breaks the last reconciliation found, per category.");
    for (int k = 0; k < PAYQ_BREAK_NCAT; k++)
        payq_buf_printf(b, "payq_recon_breaks{category=\"%s\"} %llu\n", payq_break_cat_name(k),
                        (unsigned long long)run->breaks.count[k]);
    gauge(b, "payq_recon_business_date_info", "The business date the last reconciliation covered.");
    payq_buf_printf(b, "payq_recon_business_date_info{date=\"%s\"} 1\n", run->opts->date);
}

int payq_recon_metrics_write(const struct payq_recon_outcome *run, const char *path, char *err,
                             size_t errlen)
{
    char tmp[4200];
    struct payq_buf b = PAYQ_BUF_INIT;
    payq_recon_metrics_format(run, &b);
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (f) {
        bool ok = fwrite(b.data, 1, b.len, f) == b.len && fflush(f) == 0 && fsync(fileno(f)) == 0;
        ok = fclose(f) == 0 && ok;
        rc = ok && rename(tmp, path) == 0 ? 0 : -1;
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot write the metrics file \"%s\": %s", path, strerror(errno));
        payq_log(PAYQ_LOG_ERROR, "metrics_failed", "%s", err);
        unlink(tmp);
    }
    payq_buf_free(&b);
    return rc;
}
