/* event_body: an outcome event's JSON body from a binary row (see
 * event_body.h). */
#include "event_body.h"

#include <string.h>

#include "digest.h"
#include "pgbarray.h"

/* Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch for date and
 * timestamptz in binary format. */
#define PG_EPOCH_DAYS 10957

static int64_t be64(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | u[i];
    return (int64_t)v;
}

static int32_t be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (int32_t)((uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3]);
}

/* Floor division: the calendar of a negative count still counts forward. */
static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The proleptic Gregorian date of day z since 1970-01-01 (H. Hinnant's
 * civil_from_days). */
static void civil(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Writes v's n lowest decimal digits, zero-padded, ending at end. */
static void digits(char *end, uint64_t v, int n)
{
    while (n-- > 0) {
        *--end = (char)('0' + v % 10);
        v /= 10;
    }
}

/* An opening quote and the date (years 0-9999: PostgreSQL's dates in a
 * ledger are business dates) of day z since 1970-01-01. These writers, not
 * printf: a drain writes an event per transfer. */
static void put_date(struct payq_buf *b, int64_t z)
{
    int64_t y;
    unsigned m, d;
    civil(z, &y, &m, &d);
    char s[11] = "\"0000-00-00";
    digits(s + 5, (uint64_t)(y < 0 ? 0 : y), 4);
    digits(s + 8, m, 2);
    digits(s + 11, d, 2);
    payq_buf_append(b, s, sizeof s);
}

/* us: microseconds since 2000-01-01 00:00 UTC. */
static void put_timestamp(struct payq_buf *b, int64_t us)
{
    int64_t s = floor_div(us, 1000000), day = floor_div(s, 86400), sod = s - day * 86400;
    put_date(b, day + PG_EPOCH_DAYS);
    char t[18] = "T00:00:00.000000Z\"";
    digits(t + 3, (uint64_t)(sod / 3600), 2);
    digits(t + 6, (uint64_t)(sod / 60 % 60), 2);
    digits(t + 9, (uint64_t)(sod % 60), 2);
    digits(t + 16, (uint64_t)(us - s * 1000000), 6);
    payq_buf_append(b, t, sizeof t);
}

/* A bigint as a JSON string of its digits. */
static void put_int8(struct payq_buf *b, int64_t v)
{
    char s[24], *end = s + sizeof s, *p = end;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    *--p = '"';
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    *--p = '"';
    payq_buf_append(b, p, (size_t)(end - p));
}

/* (extract(epoch FROM ts) * 1000)::bigint: numeric rounds half away from
 * zero. */
static int64_t epoch_ms(int64_t us)
{
    int64_t e = us + (int64_t)PG_EPOCH_DAYS * 86400 * 1000000;
    return e >= 0 ? (e + 500) / 1000 : -((-e + 500) / 1000);
}

/* The byte width of a fixed-width binary value, -1 for one of any length. */
static int fixed_width(Oid type)
{
    switch (type) {
    case PAYQ_PG_INT8_OID:
    case PAYQ_PG_TIMESTAMPTZ_OID:
        return 8;
    case PAYQ_PG_DATE_OID:
        return 4;
    default:
        return -1;
    }
}

static int put_value(struct payq_buf *b, Oid type, const char *v, int len)
{
    int width = fixed_width(type);
    if (width >= 0 && len != width)
        return -1;
    switch (type) {
    case PAYQ_PG_TEXT_OID:
    case PAYQ_PG_BPCHAR_OID:
    case PAYQ_PG_VARCHAR_OID:
        payq_buf_json_str(b, v); /* libpq terminates every value */
        return 0;
    case PAYQ_PG_INT8_OID:
        put_int8(b, be64(v));
        return 0;
    case PAYQ_PG_DATE_OID:
        put_date(b, (int64_t)be32(v) + PG_EPOCH_DAYS);
        payq_buf_putc(b, '"');
        return 0;
    case PAYQ_PG_TIMESTAMPTZ_OID:
        put_timestamp(b, be64(v));
        return 0;
    case PAYQ_PG_BYTEA_OID: {
        char hex[2 * 32 + 1];
        payq_buf_putc(b, '"');
        for (int at = 0; at < len; at += 32) {
            int n = len - at < 32 ? len - at : 32;
            payq_hex(v + at, (size_t)n, hex);
            payq_buf_append(b, hex, 2 * (size_t)n);
        }
        payq_buf_putc(b, '"');
        return 0;
    }
    default:
        return -1;
    }
}

int payq_event_body(const PGresult *res, int row, struct payq_buf *out, int64_t *ts_ms)
{
    *ts_ms = 0;
    payq_buf_putc(out, '{');
    for (int c = 0; c < PQnfields(res); c++) {
        const char *name = PQfname(res, c);
        if (c > 0)
            payq_buf_puts(out, ", ");
        payq_buf_json_str(out, name);
        payq_buf_puts(out, " : ");
        if (PQgetisnull(res, row, c)) {
            payq_buf_puts(out, "null");
            continue;
        }
        const char *v = PQgetvalue(res, row, c);
        Oid type = PQftype(res, c);
        if (PQfformat(res, c) != 1 || put_value(out, type, v, PQgetlength(res, row, c)) != 0)
            return -1;
        if (type == PAYQ_PG_TIMESTAMPTZ_OID && strcmp(name, "committed_at") == 0)
            *ts_ms = epoch_ms(be64(v));
    }
    payq_buf_putc(out, '}');
    return 0;
}
