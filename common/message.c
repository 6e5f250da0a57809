/* message: strict decoding and canonical encoding of the three payq message
 * bodies (transfer, account, batch manifest), as message.h and the JSON
 * Schemas in schemas/ describe them, plus the SHA-256 fingerprint of a
 * transfer (the hashing itself is common/digest). */
#include "message.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "money.h"

#define ID_RULE "must match ^[A-Za-z0-9._:-]{1,64}$"
#define CURRENCY_RULE "must match ^[A-Z]{3}$"
#define COUNT_RULE "must match ^(0|[1-9][0-9]{0,14})$"
#define NOT_A_NUMBER "must be a string of digits, not a JSON number"
#define FLAG_DEBITS "debits_must_not_exceed_credits"
#define FLAG_CREDITS "credits_must_not_exceed_debits"

static const char *const routing_keys[] = {"transfer", "account", "batch", "transfers"};

int payq_msg_kind_from_routing_key(const char *rk, size_t len, enum payq_msg_kind *out)
{
    for (size_t k = 0; k < sizeof routing_keys / sizeof routing_keys[0]; k++) {
        if (rk && strlen(routing_keys[k]) == len && memcmp(rk, routing_keys[k], len) == 0) {
            *out = (enum payq_msg_kind)k;
            return 0;
        }
    }
    return -1;
}

/* Returns NULL for a kind outside the enum. */
const char *payq_msg_kind_routing_key(enum payq_msg_kind kind)
{
    if ((unsigned)kind >= sizeof routing_keys / sizeof routing_keys[0])
        return NULL;
    return routing_keys[kind];
}

/* ---- field validators ---- */

static bool id_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
}

bool payq_msg_valid_id(const char *s, size_t len)
{
    if (len < 1 || len > PAYQ_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!id_char(s[i]))
            return false;
    return true;
}

bool payq_msg_valid_currency(const char *s, size_t len)
{
    if (len != 3)
        return false;
    for (size_t i = 0; i < 3; i++)
        if (s[i] < 'A' || s[i] > 'Z')
            return false;
    return true;
}

static unsigned digits_value(const char *s, size_t n)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    return v;
}

/* NULL when s[0..len) is a date from 1970-01-01 to 9999-12-31 that exists
 * in the Gregorian calendar, else the reason it is not. */
static const char *date_problem(const char *s, size_t len)
{
    static const unsigned char mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (len != 10 || s[4] != '-' || s[7] != '-')
        return "must match ^[0-9]{4}-[0-9]{2}-[0-9]{2}$";
    for (size_t i = 0; i < len; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return "must match ^[0-9]{4}-[0-9]{2}-[0-9]{2}$";
    unsigned y = digits_value(s, 4), m = digits_value(s + 5, 2), d = digits_value(s + 8, 2);
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (unsigned)(m == 2 && leap))
        return "must be a calendar date from 1970-01-01 to 9999-12-31";
    return NULL;
}

bool payq_msg_valid_date(const char *s, size_t len)
{
    return date_problem(s, len) == NULL;
}

/* NULL when s (NUL-terminated, valid UTF-8) is a usable reference. Control
 * characters are C0, DEL and C1 (U+0080..U+009F, UTF-8 C2 80..C2 9F): they
 * corrupt bank statements and log lines. "" is refused because an empty
 * reference could not be told from an absent one after a round trip. */
static const char *reference_problem(const char *s)
{
    size_t chars = 0, bytes = 0;

    if (!*s)
        return "must not be empty";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, bytes++) {
        if (*p < 0x20 || *p == 0x7F || (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F))
            return "must not contain control characters";
        chars += (*p & 0xC0) != 0x80;
    }
    if (chars > PAYQ_REFERENCE_MAX_CHARS || bytes > PAYQ_REFERENCE_MAX_CHARS * 4)
        return "must be at most 140 characters";
    return NULL;
}

/* ---- errors ---- */

static int fail(struct payq_msg_error *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills *err (field cut to fit, at a character boundary) and returns -1. */
static int fail(struct payq_msg_error *err, const char *field, const char *fmt, ...)
{
    size_t len = 0;
    va_list ap;

    err->field[0] = '\0';
    payq_json_scan_path_add(err->field, sizeof err->field, &len, field, strlen(field));
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof err->reason, fmt, ap);
    va_end(ap);
    return -1;
}

/* One step of a JSON path, linked towards the root: a walk over the tree
 * keeps these on its stack and spells a path out only when it fails. */
struct crumb {
    const struct crumb *up;
    const char *key; /* member name, or NULL for an array element */
    size_t index;
};

static int fail_crumb(struct payq_msg_error *err, const struct crumb *at, const char *reason)
{
    const struct crumb *chain[PAYQ_MSG_MAX_DEPTH + 1];
    size_t n = 0, len = 0;
    char idx[32];

    for (; at && n < sizeof chain / sizeof chain[0]; at = at->up)
        chain[n++] = at;
    err->field[0] = '\0';
    for (size_t k = n; k-- > 0;) {
        if (chain[k]->key) {
            if (k != n - 1)
                payq_json_scan_path_add(err->field, sizeof err->field, &len, ".", 1);
            payq_json_scan_path_add(err->field, sizeof err->field, &len, chain[k]->key,
                                    strlen(chain[k]->key));
        } else {
            int w = snprintf(idx, sizeof idx, "[%zu]", chain[k]->index);
            payq_json_scan_path_add(err->field, sizeof err->field, &len, idx, (size_t)w);
        }
    }
    snprintf(err->reason, sizeof err->reason, "%s", reason);
    return -1;
}

/* ---- tree normalisation ---- */

static cJSON *merge_by_key(cJSON *a, cJSON *b)
{
    cJSON head;
    cJSON *tail = &head;

    while (a && b) {
        /* <= keeps equal keys in document order (a stable sort) */
        if (strcmp(a->string, b->string) <= 0) {
            tail->next = a;
            a = a->next;
        } else {
            tail->next = b;
            b = b->next;
        }
        tail = tail->next;
    }
    tail->next = a ? a : b;
    return head.next;
}

/* Merge sort of the n-member list at head (NULL-terminated) by key. */
static cJSON *sort_by_key(cJSON *head, size_t n)
{
    if (n < 2)
        return head;
    cJSON *mid = head;
    for (size_t k = 1; k < n / 2; k++)
        mid = mid->next;
    cJSON *rest = mid->next;
    mid->next = NULL;
    return merge_by_key(sort_by_key(head, n / 2), sort_by_key(rest, n - n / 2));
}

/* Sorts an object's members by key, in place and without allocating, so
 * duplicates become neighbours (an O(n log n) check even for the thousands
 * of keys 16 KiB can hold) and metadata gets one canonical key order. */
static void sort_members(cJSON *obj)
{
    size_t n = 0;
    cJSON *prev = NULL;

    for (cJSON *c = obj->child; c; c = c->next)
        n++;
    if (n < 2)
        return;
    obj->child = sort_by_key(obj->child, n);
    for (cJSON *c = obj->child; c; prev = c, c = c->next)
        c->prev = prev;
    obj->child->prev = prev; /* cJSON keeps the last member in the head's prev */
}

/* Sorts every object under v and fails on the first duplicate key. The
 * pre-scan bounded the depth, so the recursion is bounded too. */
static int normalize(cJSON *v, const struct crumb *at, struct payq_msg_error *err)
{
    bool object = cJSON_IsObject(v);
    size_t index = 0;

    if (!object && !cJSON_IsArray(v))
        return 0;
    if (object)
        sort_members(v);
    for (cJSON *c = v->child; c; c = c->next, index++) {
        struct crumb here = {at, object ? c->string : NULL, index};
        if (object && c->next && strcmp(c->string, c->next->string) == 0)
            return fail_crumb(err, &here, "duplicate key");
        if (normalize(c, &here, err))
            return -1;
    }
    return 0;
}

/* Every check that does not depend on the kind. Returns the parsed tree
 * with sorted keys (the caller deletes it), or NULL with *err set. copy
 * must hold PAYQ_MSG_MAX_BODY + 1 bytes: body itself need not be
 * NUL-terminated, and cJSON only ever reads the terminated copy. */
static cJSON *parse_body(const void *body, size_t len, char *copy, struct payq_msg_error *err)
{
    const char *end = NULL;

    if (len == 0) {
        fail(err, "", "empty body");
        return NULL;
    }
    if (len > PAYQ_MSG_MAX_BODY) {
        fail(err, "", "body larger than %d bytes", PAYQ_MSG_MAX_BODY);
        return NULL;
    }
    /* The scan rejects NUL bytes, so strlen(copy) == len for cJSON. */
    if (payq_json_scan_check(body, len, err))
        return NULL;
    memcpy(copy, body, len);
    copy[len] = '\0';
    cJSON *root = cJSON_ParseWithOpts(copy, &end, 1);
    if (!root) {
        /* Only out of memory should get here; end is cJSON_GetErrorPtr()
         * without the shared global that makes it unsafe across threads. */
        fail(err, "", "not valid JSON at byte %zu", end && end >= copy ? (size_t)(end - copy) : 0);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        fail(err, "", "must be a JSON object");
        goto fail;
    }
    if (normalize(root, NULL, err))
        goto fail;
    return root;
fail:
    cJSON_Delete(root);
    return NULL;
}

/* Points slot[i] at the member named names[i] (NULL when absent); any
 * other member is an unknown field. Keys are known to be distinct. */
static int bind_fields(const cJSON *obj, const char *const *names, size_t n, const cJSON **slot,
                       struct payq_msg_error *err)
{
    for (size_t i = 0; i < n; i++)
        slot[i] = NULL;
    for (const cJSON *c = obj->child; c; c = c->next) {
        size_t i = 0;
        while (i < n && strcmp(c->string, names[i]) != 0)
            i++;
        if (i == n)
            return fail(err, c->string, "unknown field");
        slot[i] = c;
    }
    return 0;
}

/* ---- typed getters: 0 on success (absent optional fields included) ---- */

/* 1 when an optional v is absent, 0 when v is a string, -1 otherwise. */
static int want_string(const cJSON *v, const char *name, bool required, struct payq_msg_error *err)
{
    if (!v)
        return required ? fail(err, name, "is required") : 1;
    if (!cJSON_IsString(v))
        return fail(err, name, "must be a string");
    return 0;
}

static int get_id(const cJSON *v, const char *name, bool required, char dst[PAYQ_ID_MAX + 1],
                  struct payq_msg_error *err)
{
    int rc = want_string(v, name, required, err);
    if (rc)
        return rc < 0 ? -1 : 0;
    size_t n = strlen(v->valuestring);
    if (!payq_msg_valid_id(v->valuestring, n))
        return fail(err, name, ID_RULE);
    memcpy(dst, v->valuestring, n + 1);
    return 0;
}

static int get_currency(const cJSON *v, const char *name, char dst[4], struct payq_msg_error *err)
{
    if (want_string(v, name, true, err))
        return -1;
    if (!payq_msg_valid_currency(v->valuestring, strlen(v->valuestring)))
        return fail(err, name, CURRENCY_RULE);
    memcpy(dst, v->valuestring, 4);
    return 0;
}

static int get_date(const cJSON *v, const char *name, bool required, char dst[11],
                    struct payq_msg_error *err)
{
    int rc = want_string(v, name, required, err);
    if (rc)
        return rc < 0 ? -1 : 0;
    const char *why = date_problem(v->valuestring, strlen(v->valuestring));
    if (why)
        return fail(err, name, "%s", why);
    memcpy(dst, v->valuestring, 11);
    return 0;
}

/* Money and counts travel as digit strings: cJSON reads JSON numbers into
 * doubles, which cannot hold every 18-digit amount. */
static int want_digits(const cJSON *v, const char *name, struct payq_msg_error *err)
{
    if (!v)
        return fail(err, name, "is required");
    if (cJSON_IsNumber(v))
        return fail(err, name, NOT_A_NUMBER);
    if (!cJSON_IsString(v))
        return fail(err, name, "must be a string");
    return 0;
}

static int get_amount(const cJSON *v, int64_t *out, struct payq_msg_error *err)
{
    const char *why;

    if (want_digits(v, "amount", err))
        return -1;
    if (payq_money_parse_amount(v->valuestring, strlen(v->valuestring), out, &why))
        return fail(err, "amount", "%s", why);
    return 0;
}

static int get_count(const cJSON *v, int64_t *out, struct payq_msg_error *err)
{
    const char *why;

    if (want_digits(v, "count", err))
        return -1;
    size_t n = strlen(v->valuestring);
    if (n > 15 || payq_money_parse_total(v->valuestring, n, out, &why))
        return fail(err, "count", COUNT_RULE);
    return 0;
}

static int get_reference(const cJSON *v, char *dst, size_t cap, struct payq_msg_error *err)
{
    int rc = want_string(v, "reference", false, err);
    if (rc)
        return rc < 0 ? -1 : 0;
    const char *why = reference_problem(v->valuestring);
    if (why)
        return fail(err, "reference", "%s", why);
    size_t n = strlen(v->valuestring);
    if (n >= cap) /* cannot happen after the checks above; keeps the copy obviously safe */
        return fail(err, "reference", "must be at most 140 characters");
    memcpy(dst, v->valuestring, n + 1);
    return 0;
}

/* ---- canonical JSON for metadata ---- */

static size_t int_len(int v)
{
    char tmp[16];
    return (size_t)snprintf(tmp, sizeof tmp, "%d", v);
}

static void put_zeros(struct payq_buf *b, int n)
{
    while (n-- > 0)
        payq_buf_putc(b, '0');
}

/* Writes the shortest text for finite d among plain decimal, an integer
 * mantissa with exponent ("123e10") and one digit before the point
 * ("1.23e-7"), using the fewest significant digits that read back as d;
 * ties go to plain, then to one digit before the point. That is never
 * longer than the token d was parsed from, so the canonical form passes the
 * number-length limit again. cJSON's own %1.15g printing does not promise
 * that: "-1e14" would come back as "-100000000000000". */
static void put_number(struct payq_buf *b, double d)
{
    char tmp[40], dig[20];
    size_t nd = 0;

    if (d == 0) {
        payq_buf_puts(b, signbit(d) ? "-0" : "0");
        return;
    }
    for (int prec = 0; prec <= 16; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    const char *p = tmp;
    for (; *p && *p != 'e'; p++) /* skips sign and the locale's decimal point */
        if (*p >= '0' && *p <= '9' && nd < sizeof dig)
            dig[nd++] = *p;
    int e = *p ? atoi(p + 1) : 0; /* the first digit is worth 10^e */
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    int n = (int)nd, ie = e - (n - 1); /* exponent when all digits precede it */
    size_t plain = e >= n - 1 ? (size_t)e + 1 : e >= 0 ? nd + 1 : (size_t)-e + 1 + nd;
    size_t intexp = nd + 1 + int_len(ie);
    size_t sciexp = 1 + (nd > 1 ? nd : 0) + 1 + int_len(e);

    if (d < 0)
        payq_buf_putc(b, '-');
    if (plain <= intexp && plain <= sciexp) {
        if (e < 0) {
            payq_buf_puts(b, "0.");
            put_zeros(b, -e - 1);
            payq_buf_append(b, dig, nd);
        } else if (e >= n - 1) {
            payq_buf_append(b, dig, nd);
            put_zeros(b, ie);
        } else {
            payq_buf_append(b, dig, (size_t)e + 1);
            payq_buf_putc(b, '.');
            payq_buf_append(b, dig + e + 1, nd - (size_t)e - 1);
        }
    } else if (intexp < sciexp) {
        payq_buf_append(b, dig, nd);
        payq_buf_printf(b, "e%d", ie);
    } else {
        payq_buf_putc(b, dig[0]);
        if (nd > 1) {
            payq_buf_putc(b, '.');
            payq_buf_append(b, dig + 1, nd - 1);
        }
        payq_buf_printf(b, "e%d", e);
    }
}

/* Compact JSON of a normalised tree: keys already sorted, strings escaped
 * by payq_buf_json_str (the scan ruled out embedded NULs). */
static void put_json(struct payq_buf *b, const cJSON *v)
{
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        bool object = cJSON_IsObject(v);
        payq_buf_putc(b, object ? '{' : '[');
        for (const cJSON *c = v->child; c; c = c->next) {
            if (c != v->child)
                payq_buf_putc(b, ',');
            if (object) {
                payq_buf_json_str(b, c->string);
                payq_buf_putc(b, ':');
            }
            put_json(b, c);
        }
        payq_buf_putc(b, object ? '}' : ']');
    } else if (cJSON_IsString(v)) {
        payq_buf_json_str(b, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        put_number(b, v->valuedouble);
    } else {
        payq_buf_puts(b, cJSON_IsTrue(v) ? "true" : cJSON_IsFalse(v) ? "false" : "null");
    }
}

/* On success *out is the malloc'd canonical text, or NULL when metadata is
 * absent or {} (the two mean the same and must hash the same). */
static int get_metadata(const cJSON *v, char **out, struct payq_msg_error *err)
{
    struct payq_buf b = PAYQ_BUF_INIT;

    if (!v)
        return 0;
    if (!cJSON_IsObject(v))
        return fail(err, "metadata", "must be an object");
    if (!v->child)
        return 0;
    put_json(&b, v);
    if (b.len > PAYQ_METADATA_MAX_BYTES) {
        payq_buf_free(&b);
        return fail(err, "metadata", "must be at most %d bytes as compact JSON",
                    PAYQ_METADATA_MAX_BYTES);
    }
    *out = b.data;
    return 0;
}

/* ---- decoders ---- */

enum {
    TF_ID,
    TF_DEBIT,
    TF_CREDIT,
    TF_AMOUNT,
    TF_CURRENCY,
    TF_BATCH,
    TF_DATE,
    TF_REFERENCE,
    TF_METADATA,
    TF_COUNT
};
static const char *const transfer_fields[TF_COUNT] = {
    "id",       "debit_account", "credit_account", "amount",  "currency",
    "batch_id", "business_date", "reference",      "metadata"};

/* Fields are checked in schema order so the first error is predictable. */
static int transfer_from(const cJSON *const *f, struct payq_transfer *t, struct payq_msg_error *err)
{
    if (get_id(f[TF_ID], "id", true, t->id, err) ||
        get_id(f[TF_DEBIT], "debit_account", true, t->debit_account, err) ||
        get_id(f[TF_CREDIT], "credit_account", true, t->credit_account, err))
        return -1;
    if (strcmp(t->debit_account, t->credit_account) == 0)
        return fail(err, "credit_account", "must differ from debit_account");
    if (get_amount(f[TF_AMOUNT], &t->amount, err) ||
        get_currency(f[TF_CURRENCY], "currency", t->currency, err) ||
        get_id(f[TF_BATCH], "batch_id", false, t->batch_id, err) ||
        get_date(f[TF_DATE], "business_date", false, t->business_date, err) ||
        get_reference(f[TF_REFERENCE], t->reference, sizeof t->reference, err) ||
        get_metadata(f[TF_METADATA], &t->metadata, err))
        return -1;
    return 0;
}

/* *out is overwritten, not freed: clear a reused struct first. */
int payq_msg_decode_transfer(const void *body, size_t len, struct payq_transfer *out,
                             struct payq_msg_error *err)
{
    char copy[PAYQ_MSG_MAX_BODY + 1];
    const cJSON *f[TF_COUNT];

    memset(out, 0, sizeof *out);
    cJSON *root = parse_body(body, len, copy, err);
    if (!root)
        return -1;
    int rc = bind_fields(root, transfer_fields, TF_COUNT, f, err);
    if (rc == 0)
        rc = transfer_from(f, out, err);
    cJSON_Delete(root);
    if (rc)
        payq_transfer_clear(out);
    return rc;
}

void payq_transfer_clear(struct payq_transfer *t)
{
    free(t->metadata);
    t->metadata = NULL;
}

static unsigned flag_bit(const char *s)
{
    if (strcmp(s, FLAG_DEBITS) == 0)
        return PAYQ_ACCT_DEBITS_MUST_NOT_EXCEED_CREDITS;
    if (strcmp(s, FLAG_CREDITS) == 0)
        return PAYQ_ACCT_CREDITS_MUST_NOT_EXCEED_DEBITS;
    return 0;
}

static int get_flags(const cJSON *v, unsigned *out, struct payq_msg_error *err)
{
    char field[32];
    size_t i = 0;

    if (!v)
        return 0;
    if (!cJSON_IsArray(v))
        return fail(err, "flags", "must be an array");
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        snprintf(field, sizeof field, "flags[%zu]", i);
        if (!cJSON_IsString(c))
            return fail(err, field, "must be a string");
        unsigned bit = flag_bit(c->valuestring);
        if (!bit)
            return fail(err, field, "must be one of " FLAG_DEBITS ", " FLAG_CREDITS);
        if (*out & bit)
            return fail(err, field, "duplicate flag");
        *out |= bit;
    }
    if (*out ==
        (PAYQ_ACCT_DEBITS_MUST_NOT_EXCEED_CREDITS | PAYQ_ACCT_CREDITS_MUST_NOT_EXCEED_DEBITS))
        return fail(err, "flags", FLAG_DEBITS " and " FLAG_CREDITS " are mutually exclusive");
    return 0;
}

enum { AF_ID, AF_CURRENCY, AF_FLAGS, AF_COUNT };
static const char *const account_fields[AF_COUNT] = {"id", "currency", "flags"};

int payq_msg_decode_account(const void *body, size_t len, struct payq_account_msg *out,
                            struct payq_msg_error *err)
{
    char copy[PAYQ_MSG_MAX_BODY + 1];
    const cJSON *f[AF_COUNT];

    memset(out, 0, sizeof *out);
    cJSON *root = parse_body(body, len, copy, err);
    if (!root)
        return -1;
    int rc = bind_fields(root, account_fields, AF_COUNT, f, err);
    if (rc == 0 && (get_id(f[AF_ID], "id", true, out->id, err) ||
                    get_currency(f[AF_CURRENCY], "currency", out->currency, err) ||
                    get_flags(f[AF_FLAGS], &out->flags, err)))
        rc = -1;
    cJSON_Delete(root);
    return rc;
}

/* Members arrive sorted by key, and valid keys are [A-Z]{3}, so totals
 * come out sorted by currency. */
static int get_totals(const cJSON *v, struct payq_manifest *m, struct payq_msg_error *err)
{
    char field[sizeof err->field];
    const char *why;
    size_t n = 0;

    if (!v)
        return fail(err, "totals", "is required");
    if (!cJSON_IsObject(v))
        return fail(err, "totals", "must be an object");
    for (const cJSON *c = v->child; c; c = c->next)
        if (++n > PAYQ_MANIFEST_MAX_CURRENCIES)
            return fail(err, "totals", "must have at most %d currencies",
                        PAYQ_MANIFEST_MAX_CURRENCIES);
    for (const cJSON *c = v->child; c; c = c->next) {
        struct payq_manifest_total *t = &m->totals[m->ntotals];
        size_t len = 0;
        memcpy(field, "totals.", 8);
        len = 7;
        payq_json_scan_path_add(field, sizeof field, &len, c->string, strlen(c->string));
        if (!payq_msg_valid_currency(c->string, strlen(c->string)))
            return fail(err, field, "key " CURRENCY_RULE);
        if (want_digits(c, field, err))
            return -1;
        if (payq_money_parse_total(c->valuestring, strlen(c->valuestring), &t->sum, &why))
            return fail(err, field, "%s", why);
        memcpy(t->currency, c->string, 4);
        m->ntotals++;
    }
    return 0;
}

enum { MF_BATCH, MF_DATE, MF_COUNT_FIELD, MF_TOTALS, MF_COUNT };
static const char *const manifest_fields[MF_COUNT] = {"batch_id", "business_date", "count",
                                                      "totals"};

int payq_msg_decode_manifest(const void *body, size_t len, struct payq_manifest *out,
                             struct payq_msg_error *err)
{
    char copy[PAYQ_MSG_MAX_BODY + 1];
    const cJSON *f[MF_COUNT];

    memset(out, 0, sizeof *out);
    cJSON *root = parse_body(body, len, copy, err);
    if (!root)
        return -1;
    int rc = bind_fields(root, manifest_fields, MF_COUNT, f, err);
    if (rc == 0 &&
        (get_id(f[MF_BATCH], "batch_id", true, out->batch_id, err) ||
         get_date(f[MF_DATE], "business_date", true, out->business_date, err) ||
         get_count(f[MF_COUNT_FIELD], &out->count, err) || get_totals(f[MF_TOTALS], out, err)))
        rc = -1;
    cJSON_Delete(root);
    return rc;
}

/* ---- encoders ---- */

/* ,"key":"value" for values that need no escaping (ids, codes, dates,
 * digits); first drops the comma. */
static void put_plain(struct payq_buf *b, bool first, const char *key, const char *val)
{
    payq_buf_append(b, first ? "{\"" : ",\"", 2);
    payq_buf_puts(b, key);
    payq_buf_append(b, "\":\"", 3);
    payq_buf_puts(b, val);
    payq_buf_putc(b, '"');
}

/* t must be valid (decoded, or built from validated values); metadata must
 * be canonical text as the decoder produces it. */
void payq_msg_encode_transfer(const struct payq_transfer *t, struct payq_buf *out)
{
    char amount[PAYQ_MONEY_STR_MAX];

    put_plain(out, true, "id", t->id);
    put_plain(out, false, "debit_account", t->debit_account);
    put_plain(out, false, "credit_account", t->credit_account);
    put_plain(out, false, "amount", payq_money_format(t->amount, amount));
    put_plain(out, false, "currency", t->currency);
    if (t->batch_id[0])
        put_plain(out, false, "batch_id", t->batch_id);
    if (t->business_date[0])
        put_plain(out, false, "business_date", t->business_date);
    if (t->reference[0]) {
        payq_buf_puts(out, ",\"reference\":");
        payq_buf_json_str(out, t->reference);
    }
    if (t->metadata && strcmp(t->metadata, "{}") != 0) {
        payq_buf_puts(out, ",\"metadata\":");
        payq_buf_puts(out, t->metadata);
    }
    payq_buf_putc(out, '}');
}

/* Flags are written in the fixed order of message.h. */
void payq_msg_encode_account(const struct payq_account_msg *a, struct payq_buf *out)
{
    put_plain(out, true, "id", a->id);
    put_plain(out, false, "currency", a->currency);
    if (a->flags &
        (PAYQ_ACCT_DEBITS_MUST_NOT_EXCEED_CREDITS | PAYQ_ACCT_CREDITS_MUST_NOT_EXCEED_DEBITS)) {
        payq_buf_puts(out, ",\"flags\":[");
        if (a->flags & PAYQ_ACCT_DEBITS_MUST_NOT_EXCEED_CREDITS)
            payq_buf_puts(out, "\"" FLAG_DEBITS "\"");
        if (a->flags & PAYQ_ACCT_CREDITS_MUST_NOT_EXCEED_DEBITS)
            payq_buf_puts(out, (a->flags & PAYQ_ACCT_DEBITS_MUST_NOT_EXCEED_CREDITS)
                                   ? ",\"" FLAG_CREDITS "\""
                                   : "\"" FLAG_CREDITS "\"");
        payq_buf_putc(out, ']');
    }
    payq_buf_putc(out, '}');
}

/* Totals are written sorted by currency whatever their order in m; m must
 * not repeat a currency. */
void payq_msg_encode_manifest(const struct payq_manifest *m, struct payq_buf *out)
{
    char num[PAYQ_MONEY_STR_MAX];
    size_t order[PAYQ_MANIFEST_MAX_CURRENCIES];
    size_t n =
        m->ntotals < PAYQ_MANIFEST_MAX_CURRENCIES ? m->ntotals : PAYQ_MANIFEST_MAX_CURRENCIES;

    for (size_t i = 0; i < n; i++) { /* insertion sort: n <= 64 and usually sorted */
        size_t j = i;
        while (j > 0 && strcmp(m->totals[order[j - 1]].currency, m->totals[i].currency) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    put_plain(out, true, "batch_id", m->batch_id);
    put_plain(out, false, "business_date", m->business_date);
    put_plain(out, false, "count", payq_money_format(m->count, num));
    payq_buf_puts(out, ",\"totals\":");
    for (size_t k = 0; k < n; k++) {
        const struct payq_manifest_total *t = &m->totals[order[k]];
        put_plain(out, k == 0, t->currency, payq_money_format(t->sum, num));
    }
    payq_buf_puts(out, n ? "}}" : "{}}");
}

/* ---- fingerprint ---- */

void payq_transfer_hash(const struct payq_transfer *t, uint8_t out[32])
{
    struct payq_buf b = PAYQ_BUF_INIT;

    payq_msg_encode_transfer(t, &b);
    payq_sha256(b.data, b.len, out);
    payq_buf_free(&b);
}

/* id is set to "" when no valid id is found. Never uses cJSON: the body is
 * untrusted and already known to be bad. */
bool payq_msg_peek_id(const void *body, size_t len, char *id)
{
    const char *v;
    size_t n;

    id[0] = '\0';
    if (!body || !payq_json_scan_peek_string(body, len, "id", &v, &n) || !payq_msg_valid_id(v, n))
        return false;
    memcpy(id, v, n);
    id[n] = '\0';
    return true;
}
