/* read_pause: a doubling pause with one probe, over three atomics. */
#include "read_pause.h"

void payq_read_pause_init(struct payq_read_pause *p, int64_t probe_ns)
{
    atomic_store(&p->until_ns, 0);
    atomic_store(&p->pause_ns, 0);
    atomic_store(&p->failed_at_ns, 0);
    p->probe_ns = probe_ns;
}

int64_t payq_read_pause_left_ms(struct payq_read_pause *p, int64_t now_ns)
{
    for (;;) {
        int64_t until = atomic_load(&p->until_ns);
        if (until > now_ns)
            return (until - now_ns + 999999) / 1000000;
        if (atomic_load(&p->pause_ns) == 0)
            return 0; /* reads work */
        if (atomic_compare_exchange_strong(&p->until_ns, &until, now_ns + p->probe_ns))
            return 0; /* this caller probes */
    }
}

int64_t payq_read_pause_done(struct payq_read_pause *p, int64_t started_ns, int64_t now_ns, bool ok)
{
    if (!ok && started_ns < atomic_load(&p->failed_at_ns)) {
        int64_t left = atomic_load(&p->until_ns) - now_ns;
        return left <= 0 ? 0 : (left + 999999) / 1000000;
    }
    if (ok) {
        if (atomic_load(&p->pause_ns)) {
            atomic_store(&p->pause_ns, 0);
            atomic_store(&p->until_ns, 0);
        }
        return 0;
    }
    /* Two probes cannot fail together (one at a time), and a failure of a
     * read that began after the last one is a new failure in a row. */
    int64_t pause = atomic_load(&p->pause_ns);
    pause = pause ? pause * 2 : PAYQ_READ_PAUSE_MIN_NS;
    if (pause > PAYQ_READ_PAUSE_MAX_NS)
        pause = PAYQ_READ_PAUSE_MAX_NS;
    atomic_store(&p->failed_at_ns, now_ns);
    atomic_store(&p->pause_ns, pause);
    atomic_store(&p->until_ns, now_ns + pause);
    return pause / 1000000;
}
