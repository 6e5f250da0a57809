/* breaks: counting, keeping examples, and streaming breaks as CSV. */
#include "breaks.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "log.h"

static const char *const cat_names[PAYQ_BREAK_NCAT] = {
    "missing_in_ledger",     "unexpected_in_ledger", "content_mismatch", "id_conflict",
    "batch_totals_mismatch", "invariant_violation",  "in_flight",
};

const char *payq_break_cat_name(enum payq_break_cat cat)
{
    return cat < PAYQ_BREAK_NCAT ? cat_names[cat] : "unknown";
}

int payq_breaks_init(struct payq_breaks *b, size_t max_examples, const char *csv_path)
{
    memset(b, 0, sizeof *b);
    b->max_examples = max_examples;
    if (!csv_path)
        return 0;
    b->csv = fopen(csv_path, "w+");
    if (!b->csv) {
        payq_log(PAYQ_LOG_ERROR, "spill_failed", "could not create file \"%s\": %s", csv_path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

void payq_breaks_free(struct payq_breaks *b)
{
    for (int c = 0; c < PAYQ_BREAK_NCAT; c++) {
        free(b->examples[c]);
        b->examples[c] = NULL;
    }
    if (b->csv)
        fclose(b->csv);
    b->csv = NULL;
}

void payq_csv_field(FILE *f, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* One line in the column order of the CSV header. */
static void csv_line(FILE *f, const struct payq_break *br)
{
    const char *cols[6] = {br->id, br->batch_id, br->field, br->expected, br->actual, br->detail};
    fputs(payq_break_cat_name(br->cat), f);
    for (int i = 0; i < 6; i++) {
        fputc(',', f);
        payq_csv_field(f, cols[i]);
    }
    fputc('\n', f);
}

static void copy_cut(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

void payq_breaks_add(struct payq_breaks *b, enum payq_break_cat cat, const char *id,
                     const char *batch_id, const char *field, const char *expected,
                     const char *actual, const char *fmt, ...)
{
    struct payq_break br;
    br.cat = cat;
    copy_cut(br.id, sizeof br.id, id);
    copy_cut(br.batch_id, sizeof br.batch_id, batch_id);
    copy_cut(br.field, sizeof br.field, field);
    copy_cut(br.expected, sizeof br.expected, expected);
    copy_cut(br.actual, sizeof br.actual, actual);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(br.detail, sizeof br.detail, fmt, ap);
    va_end(ap);

    uint64_t n = b->count[cat]++;
    if (n < b->max_examples) {
        if (!b->examples[cat]) {
            b->examples[cat] = payq_xcalloc(b->max_examples, sizeof br);
        }
        b->examples[cat][n] = br;
    }
    if (b->csv && !b->csv_error) {
        csv_line(b->csv, &br);
        if (ferror(b->csv))
            b->csv_error = true;
    }
}

uint64_t payq_breaks_total(const struct payq_breaks *b)
{
    uint64_t n = 0;
    for (int c = 0; c < PAYQ_BREAK_NCAT; c++)
        if (c != PAYQ_BREAK_IN_FLIGHT)
            n += b->count[c];
    return n;
}

/* Without a spill (not asked for CSV at start) only the examples exist. */
static void write_examples(const struct payq_breaks *b, FILE *out)
{
    for (int c = 0; c < PAYQ_BREAK_NCAT; c++) {
        uint64_t n = b->count[c] < b->max_examples ? b->count[c] : b->max_examples;
        for (uint64_t i = 0; i < n; i++)
            csv_line(out, &b->examples[c][i]);
    }
}

int payq_breaks_write_csv(struct payq_breaks *b, FILE *out)
{
    fputs("category,id,batch_id,field,expected,actual,detail\n", out);
    if (!b->csv) {
        write_examples(b, out);
        return 0;
    }
    if (b->csv_error || fflush(b->csv) != 0 || fseek(b->csv, 0, SEEK_SET) != 0) {
        payq_log(PAYQ_LOG_ERROR, "spill_failed", "could not write the list of breaks: %s",
                 strerror(errno));
        return -1;
    }
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, b->csv)) > 0)
        fwrite(chunk, 1, n, out);
    if (ferror(b->csv)) {
        payq_log(PAYQ_LOG_ERROR, "spill_failed", "could not read back the list of breaks");
        return -1;
    }
    return 0;
}
