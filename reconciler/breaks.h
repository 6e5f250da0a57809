/* breaks: what a reconciliation found wrong, by category. Counts are exact;
 * only the first `max_examples` of each category are kept in memory for the
 * text and JSON reports, while every break can also be streamed to a CSV
 * file (the csv report lists them all) so memory stays bounded even when a
 * whole day is missing. Report output may name accounts (it is for
 * finance); nothing here logs. */
#ifndef PAYQ_RECON_BREAKS_H
#define PAYQ_RECON_BREAKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "message.h"

/* Exact category names appear in the JSON and CSV reports. in_flight is not
 * a break of the books: it lists transfers still on their way while
 * payq.transfers holds messages. */
enum payq_break_cat {
    PAYQ_BREAK_MISSING = 0, /* missing_in_ledger */
    PAYQ_BREAK_UNEXPECTED,  /* unexpected_in_ledger */
    PAYQ_BREAK_CONTENT,     /* content_mismatch */
    PAYQ_BREAK_ID_CONFLICT, /* id_conflict */
    PAYQ_BREAK_BATCH,       /* batch_totals_mismatch */
    PAYQ_BREAK_INVARIANT,   /* invariant_violation */
    PAYQ_BREAK_IN_FLIGHT,   /* in_flight */
    PAYQ_BREAK_NCAT
};

#define PAYQ_BREAK_TEXT_MAX 96
#define PAYQ_BREAK_DETAIL_MAX 240

struct payq_break {
    enum payq_break_cat cat;
    char id[PAYQ_ID_MAX + 1];       /* transfer id, account id or currency; "" if none */
    char batch_id[PAYQ_ID_MAX + 1]; /* "" if none */
    char field[PAYQ_BREAK_TEXT_MAX];
    char expected[PAYQ_BREAK_TEXT_MAX];
    char actual[PAYQ_BREAK_TEXT_MAX];
    char detail[PAYQ_BREAK_DETAIL_MAX];
};

struct payq_breaks {
    uint64_t count[PAYQ_BREAK_NCAT];
    struct payq_break *examples[PAYQ_BREAK_NCAT]; /* owned, max_examples each */
    size_t max_examples;
    FILE *csv;      /* every break as a CSV line, or NULL */
    bool csv_error; /* a write to csv failed (ENOSPC...): reported once at copy time */
};

const char *payq_break_cat_name(enum payq_break_cat cat);

/* Prepares an empty collector. csv_path NULL keeps no CSV spill; otherwise
 * the file is created (and truncated). Returns 0 or -1 (logged). Free with
 * payq_breaks_free() in either case. */
int payq_breaks_init(struct payq_breaks *b, size_t max_examples, const char *csv_path)
    __attribute__((warn_unused_result));
void payq_breaks_free(struct payq_breaks *b); /* safe on a zeroed or freed collector */

/* Records one break. Strings may be NULL (= ""); too long values are cut.
 * Aborts on out-of-memory like payq_buf. */
void payq_breaks_add(struct payq_breaks *b, enum payq_break_cat cat, const char *id,
                     const char *batch_id, const char *field, const char *expected,
                     const char *actual, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* Breaks of the books (every category but in_flight). */
uint64_t payq_breaks_total(const struct payq_breaks *b);

/* Writes the CSV header and every recorded break to out. Returns 0 or -1
 * (logged) when the spill could not be written or read back. */
int payq_breaks_write_csv(struct payq_breaks *b, FILE *out) __attribute__((warn_unused_result));

/* Writes s as one RFC 4180 CSV field (quoted when needed). */
void payq_csv_field(FILE *f, const char *s);

#endif
