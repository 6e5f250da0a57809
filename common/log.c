/* log: one JSON object per line on stderr, built in a fixed buffer. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
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

/* A bounded output for redact(): never overflows, always room for a NUL. */
struct sink {
    char *dst;
    size_t cap, len;
};

static void sink_put(struct sink *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && o->len + 1 < o->cap; i++)
        o->dst[o->len++] = s[i];
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* At p (n bytes left): a conninfo "password" keyword with its "=", spaces
 * allowed around it as libpq allows them. Returns the length up to and
 * including the "=" and its trailing spaces, or 0. */
static size_t password_key_len(const char *p, size_t n)
{
    static const char kw[] = "password";
    if (n < sizeof kw - 1 || strncasecmp(p, kw, sizeof kw - 1) != 0)
        return 0;
    size_t i = sizeof kw - 1;
    while (i < n && is_space(p[i]))
        i++;
    if (i >= n || p[i] != '=')
        return 0;
    i++;
    while (i < n && is_space(p[i]))
        i++;
    return i;
}

/* Length of a conninfo or URL-query value at p: a single-quoted value with
 * libpq's backslash escapes (to its closing quote, or the end if it has
 * none), else up to a space, '&' or a double quote. */
static size_t password_value_len(const char *p, size_t n)
{
    size_t i = 0;
    if (n && p[0] == '\'') {
        for (i = 1; i < n; i++) {
            if (p[i] == '\\' && i + 1 < n)
                i++;
            else if (p[i] == '\'')
                return i + 1;
        }
        return n;
    }
    while (i < n && !is_space(p[i]) && p[i] != '&' && p[i] != '"')
        i++;
    return i;
}

/* At p, just after "://": the length of the userinfo's password (after the
 * first ':' and before the last '@' of the authority), with *skip set to
 * where the password starts; 0 when the authority has no user:pass@. The
 * authority ends at '/', '?', '#', a space or a double quote. */
static size_t url_password_len(const char *p, size_t n, size_t *skip)
{
    size_t end = 0, at = 0, colon = 0;
    bool have_at = false, have_colon = false;
    for (; end < n; end++) {
        char c = p[end];
        if (c == '/' || c == '?' || c == '#' || c == '"' || is_space(c))
            break;
        if (c == '@') {
            at = end;
            have_at = true;
        }
    }
    if (!have_at)
        return 0;
    for (size_t i = 0; i < at; i++)
        if (p[i] == ':') {
            colon = i;
            have_colon = true;
            break;
        }
    if (!have_colon)
        return 0;
    *skip = colon + 1;
    return at - colon - 1;
}

/* Copies src[0..n) into o with every conninfo password value (quoted or
 * not) and every URL user:password@ password replaced by "***". */
static void redact(const char *src, size_t n, struct sink *o)
{
    size_t i = 0;
    while (i < n) {
        size_t k = password_key_len(src + i, n - i);
        if (k) {
            sink_put(o, src + i, k);
            i += k;
            sink_put(o, "***", 3);
            i += password_value_len(src + i, n - i);
            continue;
        }
        if (n - i >= 3 && memcmp(src + i, "://", 3) == 0) {
            size_t skip = 0, pw = url_password_len(src + i + 3, n - i - 3, &skip);
            if (pw) {
                sink_put(o, src + i, 3 + skip);
                sink_put(o, "***", 3);
                i += 3 + skip + pw;
                continue;
            }
        }
        sink_put(o, src + i, 1);
        i++;
    }
}

void payq_log_strn(struct payq_log_rec *r, const char *key, const char *val, size_t len)
{
    if (!r->active)
        return;
    /* Every string value is masked, so a password inside an error message
     * (a libpq or broker text quoting a conninfo or URL) never reaches a
     * line. Masking only shortens: the line's size bounds the copy. */
    char masked[PAYQ_LOG_LINE_MAX];
    struct sink o = {masked, sizeof masked, 0};
    if (val)
        redact(val, len, &o);
    put_key(r, key);
    put_escaped(r, masked, o.len);
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

/* Masks passwords in conninfos ("password=x", "password = 'a b'") and in
 * URLs ("scheme://user:pass@host"). */
void payq_log_redact(const char *src, char *dst, size_t dstlen)
{
    if (dstlen == 0)
        return;
    struct sink o = {dst, dstlen, 0};
    redact(src, strlen(src), &o);
    dst[o.len] = '\0';
}
