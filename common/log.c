/* log: one JSON object per line on stderr, built in a fixed buffer. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *g_comp = "payq";
static enum payq_log_level g_min = PAYQ_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void payq_log_init(const char *comp, enum payq_log_level min_level)
{
    g_comp = comp;
    g_min = min_level;
}

void payq_log_set_level(enum payq_log_level min_level)
{
    g_min = min_level;
}

bool payq_log_enabled(enum payq_log_level level)
{
    return level >= g_min;
}

int payq_log_level_parse(const char *s, enum payq_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum payq_log_level)i;
            return 0;
        }
    }
    return -1;
}

static void put_raw(struct payq_log_rec *r, const char *s, size_t n)
{
    /* Leave room for the closing "}\n"; truncate rather than overflow. */
    if (r->len + n + 2 >= sizeof r->line)
        n = sizeof r->line - r->len - 3;
    memcpy(r->line + r->len, s, n);
    r->len += n;
}

static void put_escaped(struct payq_log_rec *r, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put_raw(r, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put_raw(r, e, 2);
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put_raw(r, e, 6);
        } else {
            put_raw(r, (const char *)&c, 1);
        }
    }
    put_raw(r, "\"", 1);
}

static void put_key(struct payq_log_rec *r, const char *key)
{
    put_raw(r, ",", 1);
    put_escaped(r, key, strlen(key));
    put_raw(r, ":", 1);
}

void payq_log_begin(struct payq_log_rec *r, enum payq_log_level level, const char *event)
{
    r->len = 0;
    r->active = payq_log_enabled(level);
    if (!r->active)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char head[64];
    int n = snprintf(head, sizeof head, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000);
    put_raw(r, head, (size_t)n);
    put_key(r, "level");
    put_escaped(r, level_names[level], strlen(level_names[level]));
    put_key(r, "comp");
    put_escaped(r, g_comp, strlen(g_comp));
    put_key(r, "event");
    put_escaped(r, event, strlen(event));
}

void payq_log_strn(struct payq_log_rec *r, const char *key, const char *val, size_t len)
{
    if (!r->active)
        return;
    put_key(r, key);
    put_escaped(r, val ? val : "", val ? len : 0);
}

void payq_log_str(struct payq_log_rec *r, const char *key, const char *val)
{
    payq_log_strn(r, key, val, val ? strlen(val) : 0);
}

void payq_log_int(struct payq_log_rec *r, const char *key, long long val)
{
    if (!r->active)
        return;
    char num[32];
    int n = snprintf(num, sizeof num, "%lld", val);
    put_key(r, key);
    put_raw(r, num, (size_t)n);
}

void payq_log_num(struct payq_log_rec *r, const char *key, double val)
{
    if (!r->active)
        return;
    char num[48];
    int n = snprintf(num, sizeof num, "%.3f", val);
    put_key(r, key);
    put_raw(r, num, (size_t)n);
}

void payq_log_bool(struct payq_log_rec *r, const char *key, bool val)
{
    if (!r->active)
        return;
    put_key(r, key);
    put_raw(r, val ? "true" : "false", val ? 4 : 5);
}

void payq_log_account(struct payq_log_rec *r, const char *key, const char *account_id)
{
    if (!r->active)
        return;
    size_t n = account_id ? strlen(account_id) : 0;
    char masked[16] = "...";
    size_t keep = n < 4 ? n : 4;
    /* Very short ids keep nothing: four of six characters would identify them. */
    if (n <= 6)
        keep = 0;
    memcpy(masked + 3, account_id + n - keep, keep);
    masked[3 + keep] = '\0';
    payq_log_str(r, key, masked);
}

void payq_log_end(struct payq_log_rec *r)
{
    if (!r->active)
        return;
    r->line[r->len++] = '}';
    r->line[r->len++] = '\n';
    ssize_t off = 0;
    while ((size_t)off < r->len) {
        ssize_t w = write(STDERR_FILENO, r->line + off, r->len - (size_t)off);
        if (w <= 0)
            break;
        off += w;
    }
}

void payq_log(enum payq_log_level level, const char *event, const char *fmt, ...)
{
    struct payq_log_rec r;
    payq_log_begin(&r, level, event);
    if (!r.active)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    payq_log_str(&r, "msg", msg);
    payq_log_end(&r);
}

/* Masks "password=..." in conninfos and "user:pass@" in URLs. */
void payq_log_redact(const char *src, char *dst, size_t dstlen)
{
    if (dstlen == 0)
        return;
    size_t o = 0;
    const char *p = src;
    while (*p && o + 1 < dstlen) {
        if (strncmp(p, "password=", 9) == 0) {
            const char *m = "password=***";
            for (; *m && o + 1 < dstlen; m++)
                dst[o++] = *m;
            p += 9;
            while (*p && *p != ' ' && *p != '&')
                p++;
            continue;
        }
        if (strncmp(p, "://", 3) == 0) {
            const char *at = strchr(p + 3, '@');
            const char *colon = strchr(p + 3, ':');
            const char *slash = strchr(p + 3, '/');
            if (at && colon && colon < at && (!slash || at < slash)) {
                for (const char *q = p; q <= colon && o + 1 < dstlen; q++)
                    dst[o++] = *q;
                for (const char *m = "***"; *m && o + 1 < dstlen; m++)
                    dst[o++] = *m;
                p = at;
                continue;
            }
        }
        dst[o++] = *p++;
    }
    dst[o] = '\0';
}
