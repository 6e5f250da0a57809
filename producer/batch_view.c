/* batch_view: grouped ledger rows -> the Batch JSON object. */
#include "batch_view.h"

#include <string.h>

/* {"count":N,"totals":{"CUR":"sum",...}} of the groups with this status. */
static void put_outcome(struct payq_buf *out, const char *status,
                        const struct payq_batch_group *groups, size_t n)
{
    long long count = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(groups[i].status, status) == 0)
            count += groups[i].count;
    payq_buf_printf(out, "{\"count\":%lld,\"totals\":{", count);
    const char *sep = "";
    for (size_t i = 0; i < n; i++) {
        if (strcmp(groups[i].status, status) != 0)
            continue;
        payq_buf_puts(out, sep);
        payq_buf_json_str(out, groups[i].currency);
        payq_buf_putc(out, ':');
        payq_buf_json_str(out, groups[i].sum);
        sep = ",";
    }
    payq_buf_puts(out, "}}");
}

void payq_batch_view_json(const char *batch_id, const char *dates,
                          const struct payq_batch_group *groups, size_t n, struct payq_buf *out)
{
    payq_buf_puts(out, "{\"batch_id\":");
    payq_buf_json_str(out, batch_id);
    payq_buf_puts(out, ",\"business_dates\":[");
    for (const char *d = dates; d && *d;) {
        size_t len = strcspn(d, ",");
        payq_buf_printf(out, "%s\"%.*s\"", d == dates ? "" : ",", (int)len, d);
        d += len;
        if (*d == ',')
            d++;
    }
    payq_buf_puts(out, "],\"booked\":");
    put_outcome(out, "posted", groups, n);
    payq_buf_puts(out, ",\"rejected\":");
    put_outcome(out, "rejected", groups, n);
    payq_buf_puts(out, ",\"declared\":null,\"complete\":null}");
}
