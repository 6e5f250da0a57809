/* log: structured logging, one JSON object per line on stderr:
 *   {"ts":"2026-11-27T14:07:54.123Z","level":"warn","comp":"worker",
 *    "event":"batch_retry","reason":"..."}
 * A record is built with begin/field/end so every value is escaped and no
 * allocation happens. Account identifiers go through payq_log_account(),
 * which keeps only the last four characters: full ids never reach a log. */
#ifndef PAYQ_LOG_H
#define PAYQ_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum payq_log_level {
    PAYQ_LOG_DEBUG = 0,
    PAYQ_LOG_INFO,
    PAYQ_LOG_WARN,
    PAYQ_LOG_ERROR,
};

#define PAYQ_LOG_LINE_MAX 4096

struct payq_log_rec {
    char line[PAYQ_LOG_LINE_MAX];
    size_t len;
    bool active; /* false when the level is filtered out: fields are no-ops */
};

/* Sets the component name ("producer", "worker", ...) and the minimum level.
 * comp must outlive the process (a string literal). */
void payq_log_init(const char *comp, enum payq_log_level min_level);
void payq_log_set_level(enum payq_log_level min_level);
bool payq_log_enabled(enum payq_log_level level);
/* Parses "debug|info|warn|error"; returns -1 on anything else. */
int payq_log_level_parse(const char *s, enum payq_log_level *out);

void payq_log_begin(struct payq_log_rec *r, enum payq_log_level level, const char *event);
void payq_log_str(struct payq_log_rec *r, const char *key, const char *val);
void payq_log_strn(struct payq_log_rec *r, const char *key, const char *val, size_t len);
void payq_log_int(struct payq_log_rec *r, const char *key, long long val);
void payq_log_num(struct payq_log_rec *r, const char *key,
                  double val); /* timings only, never money */
void payq_log_bool(struct payq_log_rec *r, const char *key, bool val);
/* Logs "…" plus the last 4 characters of an account id. */
void payq_log_account(struct payq_log_rec *r, const char *key, const char *account_id);
/* Writes the line with one write(2) so concurrent writers never interleave. */
void payq_log_end(struct payq_log_rec *r);

/* One-liner: an event with a printf-formatted "msg" field. */
void payq_log(enum payq_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Masks the password in a URL or a libpq conninfo for display: copies src
 * into dst (size dstlen) with any password replaced by "***". */
void payq_log_redact(const char *src, char *dst, size_t dstlen);

#endif
