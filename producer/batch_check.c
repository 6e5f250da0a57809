/* batch_check: validation pass over a batch file, and line rendering. */
#include "batch_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "alloc.h"
#include "idset.h"
#include "money.h"
#include "signals.h"

/* A value one file must agree on (batch_id, business_date). */
struct pinned {
    const char *field;  /* "batch_id" */
    const char *option; /* "--batch-id" */
    const char *rule;   /* why two values are an error */
    char *value;        /* points into the manifest; "" while unknown */
    size_t cap;
    bool from_option;
    uint64_t first_line; /* line that set it (0 = the option) */
};

struct check {
    const struct payq_batch_opts *o;
    struct payq_batch *b;
    struct payq_lines *in;
    struct payq_progress *prog;
    struct payq_idset ids;
    struct pinned batch, date;
    struct payq_buf cur, prev; /* canonical texts compared for repeats */
    char *reread;              /* PAYQ_MSG_MAX_BODY + 2 bytes */
};

/* Prints one problem of the current line (the first PAYQ_BATCH_MAX_SHOWN). */
__attribute__((format(printf, 3, 4))) static void report(struct check *c, const char *field,
                                                         const char *fmt, ...)
{
    if (c->b->errors++ >= PAYQ_BATCH_MAX_SHOWN)
        return;
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    payq_progress_clear(c->prog);
    fprintf(stderr, "%s:%llu: %s: %s\n", c->o->name, (unsigned long long)c->in->lineno, field,
            reason);
}

static void pinned_init(struct pinned *p, const char *field, const char *option, const char *rule,
                        char *value, size_t cap, const char *given)
{
    memset(p, 0, sizeof *p);
    p->field = field;
    p->option = option;
    p->rule = rule;
    p->value = value;
    p->cap = cap;
    value[0] = '\0';
    if (given) {
        snprintf(value, cap, "%s", given);
        p->from_option = true;
    }
}

/* Checks a value a line carries ("" = none) against the file's. */
static int check_pinned(struct check *c, struct pinned *p, const char *carried)
{
    if (!carried[0])
        return 0;
    if (!p->value[0]) {
        snprintf(p->value, p->cap, "%s", carried);
        p->first_line = c->in->lineno;
        return 0;
    }
    if (strcmp(p->value, carried) == 0)
        return 0;
    if (p->from_option)
        report(c, p->field, "differs from %s \"%s\"", p->option, p->value);
    else
        report(c, p->field, "differs from \"%s\" on line %llu: %s", p->value,
               (unsigned long long)p->first_line, p->rule);
    return -1;
}

/* Canonical text of a line with the stamped fields left out: two lines
 * that will be stamped alike compare equal here. Returns 0, or -1 if the
 * text does not decode. Fills id. */
static int canonical(enum payq_batch_kind kind, const char *line, size_t len, struct payq_buf *out,
                     char id[PAYQ_ID_MAX + 1])
{
    struct payq_msg_error err;
    payq_buf_reset(out);
    if (kind == PAYQ_BATCH_ACCOUNTS) {
        struct payq_account_msg a;
        if (payq_msg_decode_account(line, len, &a, &err) != 0)
            return -1;
        payq_msg_encode_account(&a, out);
        memcpy(id, a.id, sizeof a.id);
        return 0;
    }
    struct payq_transfer t;
    if (payq_msg_decode_transfer(line, len, &t, &err) != 0)
        return -1;
    t.batch_id[0] = t.business_date[0] = '\0';
    payq_msg_encode_transfer(&t, out);
    memcpy(id, t.id, sizeof t.id);
    payq_transfer_clear(&t);
    return 0;
}

static void add_dup_line(struct payq_batch *b, uint64_t line)
{
    if (b->ndup == b->dupcap) {
        b->dupcap = b->dupcap ? b->dupcap * 2 : 64;
        b->dup_lines = payq_xreallocarray(b->dup_lines, b->dupcap, sizeof *b->dup_lines);
    }
    b->dup_lines[b->ndup++] = line;
}

/* Looks the id of the current line (canonical text in c->cur) up among the
 * earlier lines. Returns 0 if new (and remembers it), 1 for an identical
 * repeat, -1 for a repeat with different content (reported). */
static int check_repeat(struct check *c, const char *id)
{
    uint32_t h = payq_idset_hash(id);
    size_t cursor = 0;
    uint32_t line;
    uint64_t offset;
    char prev_id[PAYQ_ID_MAX + 1];
    while (payq_idset_next(&c->ids, h, &cursor, &line, &offset)) {
        long n = payq_lines_read_at(c->in, offset, c->reread, PAYQ_MSG_MAX_BODY + 2);
        if (n < 0 || canonical(c->o->kind, c->reread, (size_t)n, &c->prev, prev_id) != 0)
            continue; /* cannot happen unless the file changes under us */
        if (strcmp(prev_id, id) != 0)
            continue; /* only the hashes matched */
        if (c->prev.len == c->cur.len && memcmp(c->prev.data, c->cur.data, c->cur.len) == 0)
            return 1;
        report(c, "id", "repeats the id of line %u with different content", line);
        return -1;
    }
    payq_idset_add(&c->ids, h, (uint32_t)c->in->lineno, c->in->line_offset);
    return 0;
}

/* Adds a transfer to the manifest totals, overflow-checked. */
static int add_total(struct check *c, const struct payq_transfer *t)
{
    struct payq_manifest *m = &c->b->manifest;
    size_t i = 0;
    while (i < m->ntotals && strcmp(m->totals[i].currency, t->currency) != 0)
        i++;
    if (i == m->ntotals) {
        if (m->ntotals == PAYQ_MANIFEST_MAX_CURRENCIES) {
            report(c, "currency", "a batch may hold at most %d currencies",
                   PAYQ_MANIFEST_MAX_CURRENCIES);
            return -1;
        }
        memcpy(m->totals[i].currency, t->currency, sizeof t->currency);
        m->totals[i].sum = 0;
        m->ntotals++;
    }
    if (!payq_money_add(m->totals[i].sum, t->amount, &m->totals[i].sum)) {
        report(c, "amount", "the batch total for %s would overflow a 64-bit integer", t->currency);
        return -1;
    }
    return 0;
}

/* Validates one non-empty line; the caller counts the messages. Returns 0
 * to publish it, 1 for an identical repeat, -1 when invalid (reported). */
static int check_line(struct check *c, const char *line, size_t len)
{
    struct payq_msg_error err;
    char id[PAYQ_ID_MAX + 1];
    int rc = 0;
    if (c->o->kind == PAYQ_BATCH_ACCOUNTS) {
        struct payq_account_msg a;
        if (payq_msg_decode_account(line, len, &a, &err) != 0) {
            report(c, err.field, "%s", err.reason);
            return -1;
        }
        payq_buf_reset(&c->cur);
        payq_msg_encode_account(&a, &c->cur);
        return check_repeat(c, a.id);
    }
    struct payq_transfer t;
    if (payq_msg_decode_transfer(line, len, &t, &err) != 0) {
        report(c, err.field, "%s", err.reason);
        return -1;
    }
    if (check_pinned(c, &c->batch, t.batch_id) || check_pinned(c, &c->date, t.business_date))
        rc = -1;
    memcpy(id, t.id, sizeof id);
    t.batch_id[0] = t.business_date[0] = '\0';
    payq_buf_reset(&c->cur);
    payq_msg_encode_transfer(&t, &c->cur);
    if (rc == 0)
        rc = check_repeat(c, id);
    if (rc == 0 && add_total(c, &t) != 0)
        rc = -1;
    payq_transfer_clear(&t);
    return rc;
}

static bool blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

/* Fills in what no line said: a generated batch id, today's date. */
static void settle_defaults(struct check *c)
{
    struct payq_manifest *m = &c->b->manifest;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    if (!m->business_date[0])
        strftime(m->business_date, sizeof m->business_date, "%Y-%m-%d", &tm);
    if (c->o->kind != PAYQ_BATCH_TRANSFERS || m->batch_id[0])
        return;
    unsigned char rnd[6];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        /* getrandom only fails before the pool is seeded: time and pid
         * still make a collision-free id in practice. */
        uint64_t x = (uint64_t)now * 2654435761u ^ (uint64_t)clock();
        memcpy(rnd, &x, sizeof rnd);
    }
    char day[9];
    strftime(day, sizeof day, "%Y%m%d", &tm);
    snprintf(m->batch_id, sizeof m->batch_id, "b-%s-%02x%02x%02x%02x%02x%02x", day, rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5]);
    c->b->batch_id_generated = true;
}

static void check_init(struct check *c, struct payq_lines *in, const struct payq_batch_opts *o,
                       struct payq_progress *prog, struct payq_batch *b)
{
    memset(b, 0, sizeof *b);
    b->kind = o->kind;
    b->name = o->name;
    memset(c, 0, sizeof *c);
    c->o = o;
    c->b = b;
    c->in = in;
    c->prog = prog;
    pinned_init(&c->batch, "batch_id", "--batch-id", "one file is one batch", b->manifest.batch_id,
                sizeof b->manifest.batch_id, o->batch_id);
    pinned_init(&c->date, "business_date", "--business-date", "one batch is one business day",
                b->manifest.business_date, sizeof b->manifest.business_date, o->business_date);
    c->reread = payq_xmalloc(PAYQ_MSG_MAX_BODY + 2);
}

int payq_batch_check(struct payq_lines *in, const struct payq_batch_opts *o,
                     struct payq_progress *prog, struct payq_batch *b)
{
    struct check c;
    const char *line;
    size_t len;
    bool too_long;
    int r;

    check_init(&c, in, o, prog, b);
    payq_progress_phase(prog, "validating", "bytes", in->size);
    while ((r = payq_lines_next(in, &line, &len, &too_long)) > 0) {
        int v;
        b->lines++;
        if (in->lineno > UINT32_MAX)
            report(&c, "", "too many lines (at most %u)", UINT32_MAX);
        else if (too_long)
            report(&c, "", "line longer than %d bytes", PAYQ_MSG_MAX_BODY);
        else if (blank(line, len))
            report(&c, "", "empty line");
        else if ((v = check_line(&c, line, len)) == 0)
            b->manifest.count++;
        else if (v == 1)
            add_dup_line(b, in->lineno);
        if ((b->lines & 1023) == 0) {
            payq_progress_update_items(prog, payq_lines_position(in), b->lines, "lines");
            if (payq_signals_stop_requested()) {
                r = -2;
                break;
            }
        }
    }
    payq_progress_clear(prog);
    b->duplicates = b->ndup;
    if (b->errors > PAYQ_BATCH_MAX_SHOWN)
        fprintf(stderr, "... and %llu more errors\n",
                (unsigned long long)(b->errors - PAYQ_BATCH_MAX_SHOWN));
    if (r == 0 && b->errors == 0)
        settle_defaults(&c);
    payq_idset_free(&c.ids);
    payq_buf_free(&c.cur);
    payq_buf_free(&c.prev);
    free(c.reread);
    if (r < 0)
        return r;
    return b->errors ? 1 : 0;
}

int payq_batch_render(const struct payq_batch *b, size_t *dup_cursor, uint64_t lineno,
                      const char *line, size_t len, struct payq_buf *out, char id[PAYQ_ID_MAX + 1])
{
    struct payq_msg_error err;
    if (*dup_cursor < b->ndup && b->dup_lines[*dup_cursor] == lineno) {
        (*dup_cursor)++;
        return 1;
    }
    payq_buf_reset(out);
    if (b->kind == PAYQ_BATCH_ACCOUNTS) {
        struct payq_account_msg a;
        if (payq_msg_decode_account(line, len, &a, &err) != 0)
            goto changed;
        payq_msg_encode_account(&a, out);
        memcpy(id, a.id, sizeof a.id);
        return 0;
    }
    struct payq_transfer t;
    if (payq_msg_decode_transfer(line, len, &t, &err) != 0)
        goto changed;
    if (!t.batch_id[0])
        memcpy(t.batch_id, b->manifest.batch_id, sizeof t.batch_id);
    if (!t.business_date[0])
        memcpy(t.business_date, b->manifest.business_date, sizeof t.business_date);
    payq_msg_encode_transfer(&t, out);
    memcpy(id, t.id, sizeof t.id);
    payq_transfer_clear(&t);
    return 0;
changed:
    fprintf(stderr, "%s:%llu: %s: %s (the file changed after it was validated)\n", b->name,
            (unsigned long long)lineno, err.field, err.reason);
    return -1;
}

void payq_batch_free(struct payq_batch *b)
{
    free(b->dup_lines);
    b->dup_lines = NULL;
    b->ndup = b->dupcap = 0;
}
