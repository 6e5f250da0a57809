/* progress: terminal progress bar (carriage return and erase-line). */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

#define REDRAW_MS 200
#define BAR_WIDTH 30

void payq_progress_init(struct payq_progress *p, bool enabled)
{
    memset(p, 0, sizeof *p);
    p->enabled = enabled;
}

void payq_progress_phase(struct payq_progress *p, const char *label, const char *unit,
                         uint64_t total)
{
    payq_progress_clear(p);
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->done = 0;
    p->items = 0;
    p->items_unit = NULL;
    p->started_ms = payq_clock_mono_ms();
    p->drawn_ms = 0;
}

/* Formats seconds as "42s", "3m07s" or "1h02m". */
static void fmt_duration(char *buf, size_t len, double s)
{
    long t = (long)(s + 0.5);
    if (t < 60)
        snprintf(buf, len, "%lds", t);
    else if (t < 3600)
        snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, len, "%ldh%02ldm", t / 3600, t / 60 % 60);
}

/* One write(2) per frame so the line never flickers half-drawn. */
static void draw(struct payq_progress *p, int64_t now)
{
    double secs = (double)(now - p->started_ms) / 1000.0;
    double rate = secs > 0 ? (double)p->done / secs : 0;
    char line[256], eta[32] = "--";
    int n;
    if (p->total > 0) {
        uint64_t done = p->done > p->total ? p->total : p->done;
        int fill = (int)(done * BAR_WIDTH / p->total);
        char bar[BAR_WIDTH + 1];
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '.', (size_t)(BAR_WIDTH - fill));
        bar[BAR_WIDTH] = '\0';
        if (rate > 0)
            fmt_duration(eta, sizeof eta, (double)(p->total - done) / rate);
        if (p->items_unit)
            n = snprintf(line, sizeof line, "\r\033[K%s [%s] %3d%% %llu %s  %.0f/s  ETA %s",
                         p->label, bar, (int)(done * 100 / p->total), (unsigned long long)p->items,
                         p->items_unit, secs > 0 ? (double)p->items / secs : 0.0, eta);
        else
            n = snprintf(line, sizeof line, "\r\033[K%s [%s] %3d%% %llu/%llu %s  %.0f/s  ETA %s",
                         p->label, bar, (int)(done * 100 / p->total), (unsigned long long)p->done,
                         (unsigned long long)p->total, p->unit, rate, eta);
    } else {
        char spent[32];
        fmt_duration(spent, sizeof spent, secs);
        n = snprintf(line, sizeof line, "\r\033[K%s %llu %s  %.0f/s  %s", p->label,
                     (unsigned long long)p->done, p->unit, rate, spent);
    }
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1;
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
    p->drawn = true;
    p->drawn_ms = now;
}

void payq_progress_update(struct payq_progress *p, uint64_t done)
{
    p->done = done;
    payq_progress_tick(p);
}

void payq_progress_update_items(struct payq_progress *p, uint64_t done, uint64_t items,
                                const char *items_unit)
{
    p->items = items;
    p->items_unit = items_unit;
    payq_progress_update(p, done);
}

void payq_progress_tick(void *arg)
{
    struct payq_progress *p = arg;
    if (!p->enabled || !p->label)
        return;
    int64_t now = payq_clock_mono_ms();
    if (now - p->drawn_ms >= REDRAW_MS)
        draw(p, now);
}

void payq_progress_clear(struct payq_progress *p)
{
    if (!p->enabled || !p->drawn)
        return;
    static const char erase[] = "\r\033[K";
    ssize_t w = write(STDERR_FILENO, erase, sizeof erase - 1);
    (void)w;
    p->drawn = false;
    p->drawn_ms = 0;
}
