/* copy_row: one message of a binary COPY of the ledger scan (copy_row.h). */
#include "copy_row.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define FIELDS 9
#define SIGNATURE "PGCOPY\n\377\r\n"
#define SIGNATURE_LEN 11

struct cursor {
    const unsigned char *p;
    size_t left;
};

static bool take(struct cursor *c, size_t n, const unsigned char **at)
{
    if (c->left < n)
        return false;
    *at = c->p;
    c->p += n;
    c->left -= n;
    return true;
}

static bool be32(struct cursor *c, int32_t *v)
{
    const unsigned char *b;
    if (!take(c, 4, &b))
        return false;
    *v = (int32_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
    return true;
}

/* The header: signature, flags, then an extension area to skip. Any flag
 * in the high half (OIDs, or a format change) is refused, as PostgreSQL's
 * own reader does. */
static bool header(struct cursor *c)
{
    const unsigned char *b;
    int32_t flags, ext;
    if (!take(c, SIGNATURE_LEN, &b) || memcmp(b, SIGNATURE, SIGNATURE_LEN) != 0 ||
        !be32(c, &flags) || !be32(c, &ext) || ext < 0 || ((uint32_t)flags >> 16) != 0)
        return false;
    return take(c, (size_t)ext, &b);
}

struct field {
    const unsigned char *at;
    int32_t len; /* -1: NULL */
};

/* Copies a text field into strs; NULL reads as "" when nullable. */
static const char *text(const struct field *f, bool nullable, char **strs, size_t *room)
{
    if (f->len < 0 && !nullable)
        return NULL;
    size_t n = f->len < 0 ? 0 : (size_t)f->len;
    if (n + 1 > *room || (n && memchr(f->at, '\0', n)))
        return NULL;
    char *s = *strs;
    memcpy(s, f->at, n);
    s[n] = '\0';
    *strs += n + 1;
    *room -= n + 1;
    return s;
}

static enum payq_copy_got fill(const struct field *f, char *strs, size_t room,
                               struct payq_spill_rec *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (!(out->id = text(&f[0], false, &strs, &room)) ||
        !(out->batch_id = text(&f[1], true, &strs, &room)) ||
        !(out->debit = text(&f[2], false, &strs, &room)) ||
        !(out->credit = text(&f[3], false, &strs, &room)) ||
        !(out->reason = text(&f[7], true, &strs, &room))) {
        *why = "a text column is NULL, holds a NUL or does not fit";
        return PAYQ_COPY_BAD;
    }
    if (f[4].len != 8 || f[5].len != 3 || f[8].len != 32) {
        *why = "amount, currency or payload_sha256 has the wrong size";
        return PAYQ_COPY_BAD;
    }
    uint64_t a = 0;
    for (int i = 0; i < 8; i++)
        a = a << 8 | f[4].at[i];
    out->amount = (int64_t)a;
    memcpy(out->currency, f[5].at, 3);
    out->currency[3] = '\0';
    memcpy(out->hash, f[8].at, 32);
    if (f[6].len == 6 && memcmp(f[6].at, "posted", 6) == 0)
        out->status = PAYQ_SPILL_POSTED;
    else if (f[6].len == 8 && memcmp(f[6].at, "rejected", 8) == 0)
        out->status = PAYQ_SPILL_REJECTED;
    else {
        *why = "status is neither posted nor rejected";
        return PAYQ_COPY_BAD;
    }
    return PAYQ_COPY_ROW;
}

enum payq_copy_got payq_copy_row(const char *msg, size_t len, char *strs, size_t strs_len,
                                 struct payq_spill_rec *out, const char **why)
{
    struct cursor c = {(const unsigned char *)msg, len};
    if (len >= SIGNATURE_LEN && memcmp(msg, SIGNATURE, SIGNATURE_LEN) == 0) {
        if (!header(&c)) {
            *why = "bad COPY header";
            return PAYQ_COPY_BAD;
        }
        if (c.left == 0)
            return PAYQ_COPY_NOTHING;
    }
    const unsigned char *b;
    if (!take(&c, 2, &b)) {
        *why = "truncated row";
        return PAYQ_COPY_BAD;
    }
    int16_t nf = (int16_t)((uint16_t)b[0] << 8 | b[1]);
    if (nf == -1) {
        if (c.left == 0)
            return PAYQ_COPY_END;
        *why = "data after the trailer";
        return PAYQ_COPY_BAD;
    }
    if (nf != FIELDS) {
        *why = "unexpected number of columns";
        return PAYQ_COPY_BAD;
    }
    struct field f[FIELDS];
    for (int i = 0; i < FIELDS; i++) {
        if (!be32(&c, &f[i].len) || f[i].len < -1 ||
            (f[i].len > 0 && !take(&c, (size_t)f[i].len, &f[i].at))) {
            *why = "truncated row";
            return PAYQ_COPY_BAD;
        }
        if (f[i].len <= 0)
            f[i].at = c.p;
    }
    if (c.left != 0) {
        *why = "data after the row";
        return PAYQ_COPY_BAD;
    }
    return fill(f, strs, strs_len, out, why);
}
