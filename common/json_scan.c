/* json_scan: the strict pre-scan run over raw message bytes before cJSON
 * parses them, and a forgiving reader for dead-letter bookkeeping. */
#include "json_scan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One open container. Only what naming a path needs is kept. */
struct scan_level {
    bool object;
    const char *key; /* raw text of the current member's key; NULL before the first */
    size_t key_len;
    size_t index; /* current element of an array */
};

enum scan_state {
    EXPECT_VALUE,
    EXPECT_VALUE_OR_CLOSE, /* just after '[' */
    EXPECT_KEY,
    EXPECT_KEY_OR_CLOSE, /* just after '{' */
    EXPECT_COLON,
    EXPECT_COMMA_OR_CLOSE,
    EXPECT_END, /* the top-level value is complete: only whitespace may follow */
};

struct scan {
    const char *s;
    size_t len;
    size_t i; /* next byte to look at */
    unsigned depth;
    enum scan_state state;
    struct scan_level lv[PAYQ_MSG_MAX_DEPTH];
    struct payq_msg_error *err;
};

void payq_json_scan_path_add(char *field, size_t cap, size_t *len, const char *seg, size_t n)
{
    if (*len >= cap)
        return; /* already cut short */
    if (*len + n < cap) {
        memcpy(field + *len, seg, n);
        *len += n;
        field[*len] = '\0';
        return;
    }
    memcpy(field + *len, seg, cap - 1 - *len);
    /* Step back over continuation bytes so the field stays valid UTF-8:
     * it ends up in JSON log lines. */
    size_t cut = cap - 4;
    while (cut > 0 && ((unsigned char)field[cut] & 0xC0) == 0x80)
        cut--;
    memcpy(field + cut, "...", 4);
    *len = cap;
}

/* Offset of the first byte that starts an ill-formed UTF-8 sequence, or
 * len. Follows Unicode table 3-7, so overlong forms, UTF-16 surrogates and
 * code points past U+10FFFF are all ill-formed. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        } else {
            return i;
        }
        if (len - i <= n || s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
        i += n + 1;
    }
    return len;
}

static int fail_at(struct scan *sc, size_t off, const char *what)
{
    sc->err->field[0] = '\0';
    snprintf(sc->err->reason, sizeof sc->err->reason, "%s at byte %zu", what, off);
    return -1;
}

/* Fails naming the path made of the current members of the outermost
 * nlevels containers: the value being read when nlevels == depth, the
 * enclosing container while a key is read. Keys appear as raw JSON text. */
static int fail_path(struct scan *sc, unsigned nlevels, const char *reason)
{
    char *field = sc->err->field;
    size_t cap = sizeof sc->err->field, len = 0;

    field[0] = '\0';
    for (unsigned k = 0; k < nlevels; k++) {
        const struct scan_level *l = &sc->lv[k];
        if (l->object) {
            if (!l->key)
                break;
            if (k > 0)
                payq_json_scan_path_add(field, cap, &len, ".", 1);
            payq_json_scan_path_add(field, cap, &len, l->key, l->key_len);
        } else {
            char idx[32];
            int n = snprintf(idx, sizeof idx, "[%zu]", l->index);
            payq_json_scan_path_add(field, cap, &len, idx, (size_t)n);
        }
    }
    snprintf(sc->err->reason, sizeof sc->err->reason, "%s", reason);
    return -1;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hex4(const char *s, size_t len, size_t at, unsigned *out)
{
    unsigned v = 0;
    if (len < 4 || at > len - 4)
        return -1;
    for (size_t k = at; k < at + 4; k++) {
        char c = s[k];
        unsigned d;
        if (is_digit(c))
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

/* Checks the escape whose backslash is at *pos and moves *pos past it.
 * cJSON would turn "\u0000" into a NUL that silently ends the C string,
 * and rejects an unpaired surrogate with a less useful offset. */
static int scan_escape(struct scan *sc, size_t *pos, unsigned nlevels)
{
    const char *s = sc->s;
    size_t j = *pos;
    unsigned cp, lo;

    if (j + 1 >= sc->len)
        return fail_at(sc, sc->len, "not valid JSON");
    if (s[j + 1] != 'u') {
        if (!strchr("\"\\/bfnrt", s[j + 1]) || s[j + 1] == '\0')
            return fail_at(sc, j, "not valid JSON");
        *pos = j + 2;
        return 0;
    }
    if (hex4(s, sc->len, j + 2, &cp))
        return fail_at(sc, j, "not valid JSON");
    if (cp == 0)
        return fail_path(sc, nlevels, "must not contain \\u0000");
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail_at(sc, j, "unpaired surrogate escape");
    if (cp < 0xD800 || cp > 0xDBFF) {
        *pos = j + 6;
        return 0;
    }
    if (j + 7 >= sc->len || s[j + 6] != '\\' || s[j + 7] != 'u' || hex4(s, sc->len, j + 8, &lo) ||
        lo < 0xDC00 || lo > 0xDFFF)
        return fail_at(sc, j, "unpaired surrogate escape");
    *pos = j + 12;
    return 0;
}

/* Reads the string whose opening quote is at sc->i; on success *text is its
 * raw content (escapes not decoded) and sc->i is just past the closing
 * quote. UTF-8 was checked before, so only ASCII needs a look here. */
static int scan_string(struct scan *sc, unsigned nlevels, const char **text, size_t *text_len)
{
    size_t j = sc->i + 1;

    for (;;) {
        if (j >= sc->len)
            return fail_at(sc, sc->len, "not valid JSON");
        unsigned char c = (unsigned char)sc->s[j];
        if (c == '"')
            break;
        if (c < 0x20)
            return fail_at(sc, j, "unescaped control character");
        if (c != '\\') {
            j++;
            continue;
        }
        if (scan_escape(sc, &j, nlevels))
            return -1;
    }
    *text = sc->s + sc->i + 1;
    *text_len = j - sc->i - 1;
    sc->i = j + 1;
    return 0;
}

/* RFC 8259 number grammar on exactly t[0..n). On failure *bad is the offset
 * of the first character that does not fit (n if the token ends early). */
static bool number_grammar(const char *t, size_t n, size_t *bad)
{
    size_t k = 0;

    if (k < n && t[k] == '-')
        k++;
    if (k >= n || !is_digit(t[k]))
        goto bad;
    if (t[k] == '0')
        k++;
    else
        while (k < n && is_digit(t[k]))
            k++;
    if (k < n && t[k] == '.') {
        if (++k >= n || !is_digit(t[k]))
            goto bad;
        while (k < n && is_digit(t[k]))
            k++;
    }
    if (k < n && (t[k] == 'e' || t[k] == 'E')) {
        if (++k < n && (t[k] == '+' || t[k] == '-'))
            k++;
        if (k >= n || !is_digit(t[k]))
            goto bad;
        while (k < n && is_digit(t[k]))
            k++;
    }
    if (k == n)
        return true;
bad:
    *bad = k;
    return false;
}

/* A short token can still overflow to infinity or underflow to zero
 * through its exponent ("1e400"); cJSON would then print null or 0, so the
 * canonical form would no longer say what the sender sent. */
static bool number_in_range(const char *t, size_t n)
{
    char buf[PAYQ_MSG_MAX_NUMBER_LEN + 1];
    bool nonzero = false;
    size_t k;

    for (k = 0; k < n && t[k] != 'e' && t[k] != 'E'; k++)
        nonzero |= t[k] >= '1' && t[k] <= '9';
    if (k == n)
        return true; /* no exponent: at most 15 characters cannot leave the range */
    memcpy(buf, t, n);
    buf[n] = '\0';
    double d = strtod(buf, NULL);
    return !isinf(d) && (d != 0 || !nonzero);
}

static int scan_number(struct scan *sc)
{
    size_t start = sc->i, j = start, bad;

    /* Take the same run of characters cJSON would, then judge it whole. */
    while (j < sc->len && sc->s[j] != '\0' && strchr("0123456789+-.eE", sc->s[j]))
        j++;
    if (j - start > PAYQ_MSG_MAX_NUMBER_LEN) {
        char why[64];
        snprintf(why, sizeof why, "number longer than %d characters", PAYQ_MSG_MAX_NUMBER_LEN);
        return fail_path(sc, sc->depth, why);
    }
    if (!number_grammar(sc->s + start, j - start, &bad))
        return fail_at(sc, start + bad, "not valid JSON");
    if (!number_in_range(sc->s + start, j - start))
        return fail_path(sc, sc->depth, "number out of range");
    sc->i = j;
    return 0;
}

static int scan_literal(struct scan *sc)
{
    static const char *const lits[] = {"true", "false", "null"};

    for (size_t k = 0; k < sizeof lits / sizeof lits[0]; k++) {
        size_t n = strlen(lits[k]);
        if (sc->len - sc->i >= n && memcmp(sc->s + sc->i, lits[k], n) == 0) {
            sc->i += n;
            return 0;
        }
    }
    return fail_at(sc, sc->i, "not valid JSON");
}

static void value_done(struct scan *sc)
{
    sc->state = sc->depth ? EXPECT_COMMA_OR_CLOSE : EXPECT_END;
}

static int scan_open(struct scan *sc, bool object)
{
    if (sc->depth == PAYQ_MSG_MAX_DEPTH) {
        char why[64];
        snprintf(why, sizeof why, "nesting deeper than %d levels", PAYQ_MSG_MAX_DEPTH);
        return fail_path(sc, sc->depth, why);
    }
    struct scan_level *l = &sc->lv[sc->depth++];
    l->object = object;
    l->key = NULL;
    l->key_len = 0;
    l->index = 0;
    sc->state = object ? EXPECT_KEY_OR_CLOSE : EXPECT_VALUE_OR_CLOSE;
    sc->i++;
    return 0;
}

static int scan_close(struct scan *sc, char c)
{
    if (sc->depth == 0 || sc->lv[sc->depth - 1].object != (c == '}'))
        return fail_at(sc, sc->i, "not valid JSON");
    sc->depth--;
    sc->i++;
    value_done(sc);
    return 0;
}

static int scan_value(struct scan *sc, char c)
{
    const char *text;
    size_t text_len;
    int rc;

    if (c == '{' || c == '[')
        return scan_open(sc, c == '{');
    if (c == '"')
        rc = scan_string(sc, sc->depth, &text, &text_len);
    else if (c == 't' || c == 'f' || c == 'n')
        rc = scan_literal(sc);
    else if (c == '-' || is_digit(c))
        rc = scan_number(sc);
    else
        rc = fail_at(sc, sc->i, "not valid JSON");
    if (rc == 0)
        value_done(sc);
    return rc;
}

static int scan_key(struct scan *sc, char c)
{
    struct scan_level *l = &sc->lv[sc->depth - 1];

    if (c != '"')
        return fail_at(sc, sc->i, "not valid JSON");
    if (scan_string(sc, sc->depth - 1, &l->key, &l->key_len))
        return -1;
    sc->state = EXPECT_COLON;
    return 0;
}

/* One token, starting at the non-whitespace byte c == sc->s[sc->i]. */
static int scan_step(struct scan *sc, char c)
{
    switch (sc->state) {
    case EXPECT_VALUE:
        return scan_value(sc, c);
    case EXPECT_VALUE_OR_CLOSE:
        return c == ']' ? scan_close(sc, c) : scan_value(sc, c);
    case EXPECT_KEY:
        return scan_key(sc, c);
    case EXPECT_KEY_OR_CLOSE:
        return c == '}' ? scan_close(sc, c) : scan_key(sc, c);
    case EXPECT_COLON:
        if (c != ':')
            return fail_at(sc, sc->i, "not valid JSON");
        sc->i++;
        sc->state = EXPECT_VALUE;
        return 0;
    case EXPECT_COMMA_OR_CLOSE:
        if (c == '}' || c == ']')
            return scan_close(sc, c);
        if (c != ',')
            return fail_at(sc, sc->i, "not valid JSON");
        sc->i++;
        if (sc->lv[sc->depth - 1].object) {
            sc->state = EXPECT_KEY;
        } else {
            sc->lv[sc->depth - 1].index++;
            sc->state = EXPECT_VALUE;
        }
        return 0;
    case EXPECT_END:
        break;
    }
    return fail_at(sc, sc->i, "not valid JSON");
}

int payq_json_scan_check(const char *s, size_t len, struct payq_msg_error *err)
{
    struct scan sc = {.s = s, .len = len, .i = 0, .depth = 0, .state = EXPECT_VALUE, .err = err};
    bool seen = false;
    size_t bad = utf8_invalid_at((const unsigned char *)s, len);

    if (bad < len)
        return fail_at(&sc, bad, "invalid UTF-8");
    while (sc.i < len) {
        char c = s[sc.i];
        if (payq_json_is_ws(c)) {
            sc.i++;
            continue;
        }
        seen = true;
        if (scan_step(&sc, c))
            return -1;
    }
    if (sc.state == EXPECT_END)
        return 0;
    if (!seen) {
        err->field[0] = '\0';
        snprintf(err->reason, sizeof err->reason, "body is only whitespace");
        return -1;
    }
    return fail_at(&sc, len, "not valid JSON");
}

size_t payq_json_skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && payq_json_is_ws(s[i]))
        i++;
    return i;
}

/* Moves *i from an opening quote to just past the closing one. */
static bool skip_string(const char *s, size_t len, size_t *i)
{
    for (size_t j = *i + 1; j < len; j++) {
        if (s[j] == '\\') {
            j++;
        } else if (s[j] == '"') {
            *i = j + 1;
            return true;
        }
    }
    return false;
}

bool payq_json_skip_value(const char *s, size_t len, size_t *i)
{
    size_t j = *i, depth = 0;

    if (s[j] == '"')
        return skip_string(s, len, i);
    if (s[j] != '{' && s[j] != '[') {
        /* A scalar: up to the next separator (strchr also stops at NUL). */
        while (j < len && !payq_json_is_ws(s[j]) && !strchr(",}]", s[j]))
            j++;
        if (j == *i)
            return false;
        *i = j;
        return true;
    }
    while (j < len) {
        if (s[j] == '"') {
            if (!skip_string(s, len, &j))
                return false;
            continue;
        }
        if (s[j] == '{' || s[j] == '[')
            depth++;
        else if ((s[j] == '}' || s[j] == ']') && --depth == 0) {
            *i = j + 1;
            return true;
        }
        j++;
    }
    return false;
}

bool payq_json_scan_peek_string(const char *s, size_t len, const char *key, const char **val,
                                size_t *val_len)
{
    size_t klen = strlen(key);
    size_t i = payq_json_skip_ws(s, len, 0);

    if (i >= len || s[i] != '{')
        return false;
    i++;
    for (;;) {
        i = payq_json_skip_ws(s, len, i);
        if (i >= len || s[i] != '"')
            return false;
        size_t kstart = i + 1;
        if (!skip_string(s, len, &i))
            return false;
        bool match = i - 1 - kstart == klen && memcmp(s + kstart, key, klen) == 0;
        i = payq_json_skip_ws(s, len, i);
        if (i >= len || s[i] != ':')
            return false;
        i = payq_json_skip_ws(s, len, i + 1);
        if (i >= len)
            return false;
        if (match) {
            size_t vstart = i + 1;
            if (s[i] != '"' || !skip_string(s, len, &i))
                return false;
            if (memchr(s + vstart, '\\', i - 1 - vstart))
                return false;
            *val = s + vstart;
            *val_len = i - 1 - vstart;
            return true;
        }
        if (!payq_json_skip_value(s, len, &i))
            return false;
        i = payq_json_skip_ws(s, len, i);
        if (i >= len || s[i] != ',')
            return false;
        i++;
    }
}
