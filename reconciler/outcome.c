/* outcome: the verdict of a run and the names it goes by. */
#include "outcome.h"

#include <stdio.h>
#include <time.h>

const char *payq_recon_result_name(enum payq_recon_result r)
{
    static const char *const names[] = {"balanced", "breaks", "in_flight", "failed"};
    return r <= PAYQ_RESULT_FAILED ? names[r] : "failed";
}

enum payq_recon_result payq_recon_verdict(const struct payq_breaks *b)
{
    if (payq_breaks_total(b) > 0)
        return PAYQ_RESULT_BREAKS;
    if (b->count[PAYQ_BREAK_IN_FLIGHT] > 0)
        return PAYQ_RESULT_IN_FLIGHT;
    return PAYQ_RESULT_BALANCED;
}

int payq_recon_exit_code(enum payq_recon_result r)
{
    switch (r) {
    case PAYQ_RESULT_BALANCED:
        return 0;
    case PAYQ_RESULT_BREAKS:
    case PAYQ_RESULT_IN_FLIGHT:
        return 1;
    case PAYQ_RESULT_FAILED:
        break;
    }
    return 2;
}

void payq_recon_iso_time(int64_t ms, char buf[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, 32, "%s.%03dZ", base, (int)(ms % 1000));
}
