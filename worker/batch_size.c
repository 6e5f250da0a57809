/* batch_size: the batch grows under a backlog (batch_size.h says why). */
#include "batch_size.h"

int payq_batch_size_limit(const struct payq_batch_size *s, int64_t published_ms, int64_t now_ms)
{
    if (s->backlog_after_ms <= 0 || published_ms <= 0 || s->backlog_max <= s->max)
        return s->max;
    return now_ms - published_ms >= s->backlog_after_ms ? s->backlog_max : s->max;
}
