/* backoff: capped exponential delays with jitter, sleeping in short steps
 * that notice a stop request. */
#include "backoff.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define BACKOFF_STEP_MS 100

void payq_backoff_init(struct payq_backoff *b, int first_ms, int max_ms)
{
    b->first_ms = first_ms < 1 ? 1 : first_ms;
    b->max_ms = max_ms < b->first_ms ? b->first_ms : max_ms;
    b->cur_ms = b->first_ms;
    b->seed = (unsigned)payq_clock_mono_ns() ^ ((unsigned)getpid() << 16);
    b->tick = NULL;
    b->tick_ctx = NULL;
}

void payq_backoff_reset(struct payq_backoff *b)
{
    b->cur_ms = b->first_ms;
}

int payq_backoff_next_ms(struct payq_backoff *b)
{
    int d = b->cur_ms;
    int half = d / 2;
    int delay = d - (half > 0 ? rand_r(&b->seed) % (half + 1) : 0);
    b->cur_ms = d > b->max_ms / 2 ? b->max_ms : d * 2;
    return delay;
}

bool payq_backoff_fits(const struct payq_backoff *b, int64_t deadline_ms)
{
    return payq_clock_mono_ms() + b->cur_ms < deadline_ms;
}

int payq_backoff_sleep(struct payq_backoff *b, bool (*stop)(void))
{
    int left = payq_backoff_next_ms(b);
    while (left > 0) {
        if (stop && stop())
            return -1;
        int step = left < BACKOFF_STEP_MS ? left : BACKOFF_STEP_MS;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
        left -= step;
        if (b->tick)
            b->tick(b->tick_ctx);
    }
    return stop && stop() ? -1 : 0;
}
