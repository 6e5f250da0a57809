/* config: loads struct payq_config from YAML with libyaml's event parser. One table of keys
 * (path, type, bounds, default) drives the defaults, the loader and the environment
 * overrides; config.h states the contract and config/payq.yaml documents every key. */
#include "config.h"

#include "buf.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

enum key_type { KEY_STR, KEY_INT, KEY_BOOL, KEY_TOKENS };

struct key {
    const char *path; /* dotted: "amqp.tls.enabled" */
    enum key_type type;
    size_t off;  /* where the value lives in struct payq_config */
    size_t size; /* KEY_STR: capacity including the NUL */
    long long min, max;
    long long def_int;   /* KEY_INT and KEY_BOOL */
    const char *def_str; /* KEY_STR */
    /* The value may carry credentials (URLs, conninfos): it is never echoed in a message. */
    bool secret;
    /* KEY_STR: returns NULL if s is acceptable, else the reason it is not. */
    const char *(*check)(const char *s);
};

static const char *check_level(const char *s);
static const char *check_amqp_urls(const char *s);
static const char *check_http_url(const char *s);
static const char *check_listen(const char *s);
static const char *check_listen_or_off(const char *s);
static const char *check_nonempty(const char *s);

/* Kept on one line each; clang-format would spread each over four. */
/* clang-format off */
#define FIELD(f) offsetof(struct payq_config, f), sizeof(((struct payq_config *)0)->f)
#define KSTR(p, f, def, secret, check) {p, KEY_STR, FIELD(f), 0, 0, 0, def, secret, check}
#define KINT(p, f, lo, hi, def) {p, KEY_INT, FIELD(f), lo, hi, def, NULL, false, NULL}
#define KBOOL(p, f, def) {p, KEY_BOOL, FIELD(f), 0, 1, def, NULL, false, NULL}
/* clang-format on */

/* The default conninfos name the roles 001_ledger.sql creates; passwords come from the
 * PAYQ_PG_* environment variables, never from here. */
static const struct key keys[] = {
    KSTR("log.level", log.level, "info", false, check_level),
    KSTR("amqp.url", amqp.url, "amqp://127.0.0.1:17672/payq", true, check_amqp_urls),
    KSTR("amqp.mgmt_url", amqp.mgmt_url, "http://127.0.0.1:17673", true, check_http_url),
    KINT("amqp.heartbeat_s", amqp.heartbeat_s, 0, 600, 30),
    KINT("amqp.connect_timeout_ms", amqp.connect_timeout_ms, 100, 600000, 5000),
    KBOOL("amqp.tls.enabled", amqp.tls.enabled, false),
    KSTR("amqp.tls.ca_file", amqp.tls.ca_file, "", false, NULL),
    KSTR("amqp.tls.cert_file", amqp.tls.cert_file, "", false, NULL),
    KSTR("amqp.tls.key_file", amqp.tls.key_file, "", false, NULL),
    KBOOL("amqp.tls.verify_peer", amqp.tls.verify_peer, true),
    KSTR("pg.conninfo", pg.conninfo, "host=127.0.0.1 port=17432 dbname=payq user=payq_worker", true,
         NULL),
    KSTR("pg.read_conninfo", pg.read_conninfo,
         "host=127.0.0.1 port=17432 dbname=payq user=payq_reader", true, NULL),
    KSTR("pg.recon_conninfo", pg.recon_conninfo,
         "host=127.0.0.1 port=17432 dbname=payq user=payq_recon", true, NULL),
    KINT("pg.statement_timeout_ms", pg.statement_timeout_ms, 0, 3600000, 30000),
    KSTR("producer.listen", producer.listen, "127.0.0.1:17080", false, check_listen),
    KINT("producer.confirm_window", producer.confirm_window, 1, 65535, 500),
    KINT("producer.http_threads", producer.http_threads, 1, 64, 4),
    KINT("producer.http_max_connections", producer.http_max_connections, 16, 1000000, 4096),
    KINT("producer.http_max_per_ip", producer.http_max_per_ip, 0, 1000000, 512),
    KINT("producer.http_header_timeout_ms", producer.http_header_timeout_ms, 100, 600000, 10000),
    KINT("producer.http_body_timeout_ms", producer.http_body_timeout_ms, 100, 3600000, 30000),
    KINT("producer.http_drain_ms", producer.http_drain_ms, 0, 600000, 2000),
    KINT("producer.max_request_bytes", producer.max_request_bytes, 1024, 67108864, 4194304),
    KINT("producer.body_memory_bytes", producer.body_memory_bytes, 1024, 2147483647, 134217728),
    KINT("producer.max_batch_items", producer.max_batch_items, 1, 1000, 1000),
    KINT("producer.pack_max", producer.pack_max, 1, 1000, 100),
    KINT("producer.spool_max_mib", producer.spool_max_mib, 1, 1048576, 16384),
    KINT("producer.group_publishers", producer.group_publishers, 0, 16, 2),
    KINT("producer.group_linger_us", producer.group_linger_us, 0, 1000000, 1000),
    KBOOL("producer.replay_check", producer.replay_check, true),
    KINT("producer.read_timeout_ms", producer.read_timeout_ms, 100, 600000, 2000),
    {"producer.api_tokens_sha256", KEY_TOKENS, FIELD(producer.api_tokens_sha256), 0,
     PAYQ_CONFIG_MAX_TOKENS, 0, NULL, false, NULL},
    KINT("worker.batch_max", worker.batch_max, 1, 8189, 4000),
    KINT("worker.batch_wait_ms", worker.batch_wait_ms, 0, 10000, 5),
    KINT("worker.prefetch", worker.prefetch, 1, 65535, 4000),
    KINT("worker.backlog_batch_max", worker.backlog_batch_max, 1, 8189, 8000),
    KINT("worker.backlog_after_ms", worker.backlog_after_ms, 0, 3600000, 1000),
    KINT("worker.solo_after_deliveries", worker.solo_after_deliveries, 1, 1000, 3),
    KINT("worker.reconnect_max_ms", worker.reconnect_max_ms, 100, 600000, 5000),
    KINT("worker.account_cache_max", worker.account_cache_max, 0, 10000000, 200000),
    KSTR("worker.metrics_listen", worker.metrics_listen, "", false, check_listen_or_off),
    KBOOL("worker.result_events", worker.result_events, true),
    KINT("worker.result_pack_max", worker.result_pack_max, 1, 1000, 1000),
    KINT("reconciler.lookback_hours", reconciler.lookback_hours, 0, 720, 24),
    KSTR("reconciler.spill_dir", reconciler.spill_dir, "/tmp", false, check_nonempty),
    KINT("reconciler.buckets", reconciler.buckets, 1, 4096, 256),
    KINT("reconciler.examples", reconciler.examples, 1, 10000, 10),
    KINT("reconciler.primary_wait_s", reconciler.primary_wait_s, 0, 3600, 90),
    KSTR("reconciler.metrics_textfile", reconciler.metrics_textfile, "", false, NULL),
};

#define N_KEYS (sizeof keys / sizeof keys[0])
#define TOKENS_PATH "producer.api_tokens_sha256"

/* Environment overrides; a NULL key means the token list, which has its own syntax. */
static const struct {
    const char *var;
    const char *key;
} env_overrides[] = {
    {"PAYQ_AMQP_URL", "amqp.url"},
    {"PAYQ_AMQP_MGMT_URL", "amqp.mgmt_url"},
    {"PAYQ_PG_CONNINFO", "pg.conninfo"},
    {"PAYQ_PG_READ_CONNINFO", "pg.read_conninfo"},
    {"PAYQ_PG_RECON_CONNINFO", "pg.recon_conninfo"},
    {"PAYQ_API_TOKEN_SHA256", NULL},
    {"PAYQ_LOG_LEVEL", "log.level"},
};

static const char *check_level(const char *s)
{
    enum payq_log_level level;

    if (payq_log_level_parse(s, &level) == 0)
        return NULL;
    return "must be one of debug, info, warn, error";
}

static bool has_prefix(const char *s, size_t n, const char *prefix)
{
    size_t plen = strlen(prefix);

    return n >= plen && memcmp(s, prefix, plen) == 0;
}

/* A comma-separated list of 1..32 URLs, each starting with scheme_a or
 * scheme_b and holding no space. Mirrors how payq_amqp_connect splits the
 * list (on ',', leading spaces skipped, empty items ignored), so a list
 * accepted here is a list the programs use in full. Returns NULL or reason. */
static const char *check_url_list(const char *s, const char *scheme_a, const char *scheme_b,
                                  const char *reason)
{
    size_t n_urls = 0;

    for (;;) {
        while (*s == ' ')
            s++;
        size_t n = strcspn(s, ",");
        if (n > 0) {
            bool scheme = has_prefix(s, n, scheme_a) || has_prefix(s, n, scheme_b);
            if (!scheme || memchr(s, ' ', n) != NULL || ++n_urls > 32)
                return reason;
        }
        if (s[n] == '\0')
            break;
        s += n + 1;
    }
    return n_urls > 0 ? NULL : reason;
}

static const char *check_amqp_urls(const char *s)
{
    return check_url_list(s, "amqp://", "amqps://",
                          "must be up to 32 amqp:// or amqps:// URLs separated by commas");
}

/* One URL, or several separated by commas (one per cluster node: the
 * reconciler uses the first that answers). */
static const char *check_http_url(const char *s)
{
    return check_url_list(s, "http://", "https://", "must be an http:// or https:// URL");
}

/* HOST:PORT, split at the last ':' so "[::1]:17080" works too. */
static const char *check_listen(const char *s)
{
    const char *colon = strrchr(s, ':');
    const char *port = colon ? colon + 1 : "";
    size_t digits = strspn(port, "0123456789");

    if (colon == NULL || colon == s || digits == 0 || digits > 5 || port[digits] != '\0' ||
        atol(port) < 1 || atol(port) > 65535)
        return "must be HOST:PORT with a port between 1 and 65535";
    return NULL;
}

static const char *check_listen_or_off(const char *s)
{
    return *s == '\0' ? NULL : check_listen(s);
}

static const char *check_nonempty(const char *s)
{
    return *s == '\0' ? "must not be empty" : NULL;
}

static const struct key *find_key(const char *path)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(keys[i].path, path) == 0)
            return &keys[i];
    }
    return NULL;
}

void payq_config_defaults(struct payq_config *cfg)
{
    /* Zero first so unused string bytes and padding are zero too: two configs holding the
     * same values then compare equal with memcmp (the tests rely on it). */
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct key *k = &keys[i];
        char *field = (char *)cfg + k->off;
        if (k->type == KEY_STR)
            snprintf(field, k->size, "%s", k->def_str);
        else if (k->type == KEY_INT)
            *(int *)field = (int)k->def_int;
        else if (k->type == KEY_BOOL)
            *(bool *)field = k->def_int != 0;
    }
}

/* Copies s (len bytes, any content) into dst (size cap) so that it stays printable on one
 * line: control bytes, '"' and '\' are escaped, and a cut is marked with "...". Returns the
 * length written. */
static size_t escape(char *dst, size_t cap, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    if (cap < 4) {
        if (cap > 0)
            dst[0] = '\0';
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char rep[4] = {(char)c};
        size_t n = 1;
        if (c == '"' || c == '\\') {
            rep[0] = '\\';
            rep[1] = (char)c;
            n = 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(rep, (char[4]){'\\', 'x', hex[c >> 4], hex[c & 15]}, 4);
            n = 4;
        }
        /* Always keep room for "..." and the NUL. */
        if (o + n + 4 > cap) {
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(dst + o, rep, n);
        o += n;
    }
    dst[o] = '\0';
    return o;
}

/* Strict decimal: optional '-', digits, nothing else. strtoll alone would accept leading
 * spaces, '+' and trailing garbage. */
static int parse_int(const char *text, size_t len, long long *out)
{
    char num[24];
    char *end;
    size_t lead = (len > 0 && text[0] == '-') ? 1 : 0;

    if (len <= lead || len >= sizeof num || strspn(text + lead, "0123456789") < len - lead)
        return -1;
    memcpy(num, text, len);
    num[len] = '\0';
    errno = 0;
    *out = strtoll(num, &end, 10);
    return (errno == ERANGE || *end != '\0') ? -1 : 0;
}

static int set_string(char *field, const struct key *k, const char *text, size_t len, char *msg,
                      size_t msglen)
{
    char val[PAYQ_CONFIG_STR_MAX];
    char shown[64];
    const char *reason;

    if (memchr(text, '\0', len) != NULL) {
        snprintf(msg, msglen, "invalid value for %s: contains a NUL byte", k->path);
        return -1;
    }
    if (len >= sizeof val) {
        snprintf(msg, msglen, "string too long for %s (max %zu bytes)", k->path, k->size - 1);
        return -1;
    }
    memcpy(val, text, len);
    val[len] = '\0';
    reason = k->check ? k->check(val) : NULL;
    if (reason != NULL && k->secret) {
        snprintf(msg, msglen, "invalid value for %s: %s", k->path, reason);
        return -1;
    }
    if (reason != NULL) {
        escape(shown, sizeof shown, text, len);
        snprintf(msg, msglen, "invalid value \"%s\" for %s: %s", shown, k->path, reason);
        return -1;
    }
    if (len >= k->size) {
        snprintf(msg, msglen, "string too long for %s (max %zu bytes)", k->path, k->size - 1);
        return -1;
    }
    memset(field, 0, k->size);
    memcpy(field, val, len);
    return 0;
}

/* Parses text (len bytes, not NUL-terminated; from YAML or the environment) into key k of
 * cfg. On failure writes a message naming the key into msg and returns -1. */
static int set_value(struct payq_config *cfg, const struct key *k, const char *text, size_t len,
                     char *msg, size_t msglen)
{
    char *field = (char *)cfg + k->off;
    char shown[64];
    long long v;

    if (k->type == KEY_STR)
        return set_string(field, k, text, len, msg, msglen);
    escape(shown, sizeof shown, text, len);
    if (k->type == KEY_INT) {
        if (parse_int(text, len, &v) < 0 || v < k->min || v > k->max) {
            snprintf(msg, msglen,
                     "invalid value \"%s\" for %s: must be an integer between %lld and %lld", shown,
                     k->path, k->min, k->max);
            return -1;
        }
        *(int *)field = (int)v;
        return 0;
    }
    if (k->type == KEY_BOOL) {
        if (len == 4 && memcmp(text, "true", 4) == 0) {
            *(bool *)field = true;
            return 0;
        }
        if (len == 5 && memcmp(text, "false", 5) == 0) {
            *(bool *)field = false;
            return 0;
        }
        snprintf(msg, msglen, "invalid value \"%s\" for %s: must be true or false", shown, k->path);
        return -1;
    }
    snprintf(msg, msglen, "%s: expected a sequence", k->path);
    return -1;
}

/* Stores item i of producer.api_tokens_sha256, lowercased so the producer can compare
 * digests byte for byte. The value is never echoed: a raw token pasted by mistake must not
 * end up in a log. */
static int set_token(struct payq_config *cfg, size_t i, const char *text, size_t len, char *msg,
                     size_t msglen)
{
    static const char what[] = "must be a SHA-256 digest of 64 hex characters";
    char *dst;

    if (i >= PAYQ_CONFIG_MAX_TOKENS) {
        snprintf(msg, msglen, "too many entries in %s (max %d)", TOKENS_PATH,
                 PAYQ_CONFIG_MAX_TOKENS);
        return -1;
    }
    if (len != 64) {
        snprintf(msg, msglen, "invalid value for %s[%zu]: %s, found %zu characters", TOKENS_PATH, i,
                 what, len);
        return -1;
    }
    dst = cfg->producer.api_tokens_sha256[i];
    for (size_t j = 0; j < 64; j++) {
        char c = text[j];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            snprintf(msg, msglen, "invalid value for %s[%zu]: %s, found a non-hex character",
                     TOKENS_PATH, i, what);
            return -1;
        }
        dst[j] = c;
    }
    dst[64] = '\0';
    return 0;
}

static void clear_tokens(struct payq_config *cfg)
{
    memset(cfg->producer.api_tokens_sha256, 0, sizeof cfg->producer.api_tokens_sha256);
    cfg->producer.n_api_tokens = 0;
}

/* PAYQ_API_TOKEN_SHA256: comma-separated digests; spaces around each are ignored. */
static int set_token_list(struct payq_config *cfg, const char *s, char *msg, size_t msglen)
{
    size_t n = 0;

    clear_tokens(cfg);
    for (;;) {
        size_t len = strcspn(s, ",");
        const char *end = s + len;
        const char *p = s;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (set_token(cfg, n, p, (size_t)(end - p), msg, msglen) < 0)
            return -1;
        n++;
        if (s[len] == '\0')
            break;
        s += len + 1;
    }
    cfg->producer.n_api_tokens = n;
    return 0;
}

/* Applies the overrides to a copy so that a bad variable leaves *cfg as it was. A variable
 * set to the empty string counts as unset. */
int payq_config_apply_env(struct payq_config *cfg, char *err, size_t errlen)
{
    struct payq_config tmp;
    char msg[512];

    memcpy(&tmp, cfg, sizeof tmp);
    for (size_t i = 0; i < sizeof env_overrides / sizeof env_overrides[0]; i++) {
        const char *var = env_overrides[i].var;
        const char *val = getenv(var);
        const char *path = env_overrides[i].key;
        const struct key *k = path ? find_key(path) : NULL;
        int rc = -1;
        if (val == NULL || *val == '\0')
            continue;
        if (path == NULL)
            rc = set_token_list(&tmp, val, msg, sizeof msg);
        else if (k != NULL)
            rc = set_value(&tmp, k, val, strlen(val), msg, sizeof msg);
        else
            snprintf(msg, sizeof msg, "no configuration key %s", path);
        if (rc < 0) {
            snprintf(err, err ? errlen : 0, "environment variable %s: %s", var, msg);
            return -1;
        }
    }
    memcpy(cfg, &tmp, sizeof tmp);
    return 0;
}

/* ---- the YAML loader ---- */

/* What the schema wants for the node being read. EXP_ANY is a node already judged wrong (or
 * inside one): it is still walked, for YAML-level errors and the depth limit, but not
 * interpreted. */
enum expect { EXP_ANY, EXP_SECTION, EXP_LEAF, EXP_LIST, EXP_ITEM };

struct loader {
    yaml_parser_t parser;
    yaml_event_t ev; /* the current event, owned: deleted before the next is read */
    const char *name;
    const unsigned char *data;
    size_t len;
    struct payq_config *cfg;
    char *err;
    size_t errlen;
    /* A schema error (unknown key, bad value...) is in err. The walk goes on to the end of
     * the document so that broken YAML or runaway nesting further down is reported instead:
     * the file must be sound YAML before its keys are judged. */
    bool failed;
    char path[512]; /* dotted path of the current node, escaped for printing */
    size_t path_len;
    bool seen[N_KEYS];
    unsigned section_seen[N_KEYS]; /* bit d: the section starting at key i, at depth d */
    yaml_mark_t marks[N_KEYS];     /* where each seen key was set */
};

static void __attribute__((format(printf, 3, 0)))
put_error(struct loader *ld, yaml_mark_t mark, const char *fmt, va_list ap)
{
    char msg[640];

    vsnprintf(msg, sizeof msg, fmt, ap);
    snprintf(ld->err, ld->errlen, "%s:%zu:%zu: %s", ld->name, mark.line + 1, mark.column + 1, msg);
}

/* A YAML-level error (syntax, alias, nesting): replaces any schema error and stops. */
static int __attribute__((format(printf, 3, 4)))
fail(struct loader *ld, yaml_mark_t mark, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    put_error(ld, mark, fmt, ap);
    va_end(ap);
    ld->failed = true;
    return -1;
}

/* A schema error: only the first one in the document is kept, and the walk goes on. */
static void __attribute__((format(printf, 3, 4)))
judge(struct loader *ld, yaml_mark_t mark, const char *fmt, ...)
{
    va_list ap;

    if (ld->failed)
        return;
    va_start(ap, fmt);
    put_error(ld, mark, fmt, ap);
    va_end(ap);
    ld->failed = true;
}

/* libyaml's reader reports a byte offset, not a line: count it ourselves. */
static yaml_mark_t mark_at_offset(const struct loader *ld, size_t offset)
{
    yaml_mark_t mark = {offset, 0, 0};

    for (size_t i = 0; i < offset && i < ld->len; i++) {
        mark.column++;
        if (ld->data[i] == '\n') {
            mark.line++;
            mark.column = 0;
        }
    }
    return mark;
}

static int syntax_error(struct loader *ld)
{
    const yaml_parser_t *p = &ld->parser;
    const char *problem = p->problem ? p->problem : "invalid YAML";
    yaml_mark_t ctx = p->context_mark;

    if (p->error == YAML_MEMORY_ERROR) {
        snprintf(ld->err, ld->errlen, "%s: out of memory while parsing", ld->name);
        return -1;
    }
    if (p->error == YAML_READER_ERROR) {
        yaml_mark_t mark = mark_at_offset(ld, p->problem_offset);
        if (p->problem_value >= 0)
            return fail(ld, mark, "%s (byte 0x%02x)", problem, (unsigned)p->problem_value);
        return fail(ld, mark, "%s", problem);
    }
    if (p->context != NULL)
        return fail(ld, p->problem_mark, "%s (%s at %zu:%zu)", problem, p->context, ctx.line + 1,
                    ctx.column + 1);
    return fail(ld, p->problem_mark, "%s", problem);
}

/* Replaces the current event with the next one. Anchors, aliases and tags are refused here,
 * for every node: configuration is plain data. */
static int next_event(struct loader *ld)
{
    const yaml_event_t *e = &ld->ev;
    const yaml_char_t *anchor = NULL;
    const yaml_char_t *tag = NULL;

    yaml_event_delete(&ld->ev);
    if (!yaml_parser_parse(&ld->parser, &ld->ev))
        return syntax_error(ld);
    if (e->type == YAML_ALIAS_EVENT)
        return fail(ld, e->start_mark, "aliases are not supported");
    if (e->type == YAML_SCALAR_EVENT) {
        anchor = e->data.scalar.anchor;
        tag = e->data.scalar.tag;
    } else if (e->type == YAML_SEQUENCE_START_EVENT) {
        anchor = e->data.sequence_start.anchor;
        tag = e->data.sequence_start.tag;
    } else if (e->type == YAML_MAPPING_START_EVENT) {
        anchor = e->data.mapping_start.anchor;
        tag = e->data.mapping_start.tag;
    }
    if (anchor != NULL)
        return fail(ld, e->start_mark, "anchors are not supported");
    if (tag != NULL)
        return fail(ld, e->start_mark, "tags are not supported");
    return 0;
}

/* Appends a component to the path; returns the old length for path_pop. */
static size_t path_push(struct loader *ld, const char *s, size_t len)
{
    size_t old = ld->path_len;
    size_t o = old;

    if (o > 0 && o + 1 < sizeof ld->path)
        ld->path[o++] = '.';
    ld->path_len = o + escape(ld->path + o, sizeof ld->path - o, s, len);
    return old;
}

static size_t path_push_index(struct loader *ld, size_t i)
{
    size_t old = ld->path_len;
    int n = snprintf(ld->path + old, sizeof ld->path - old, "[%zu]", i);

    if (n > 0 && (size_t)n < sizeof ld->path - old)
        ld->path_len += (size_t)n;
    else
        ld->path[old] = '\0';
    return old;
}

static void path_pop(struct loader *ld, size_t old)
{
    ld->path_len = old;
    ld->path[old] = '\0';
}

static bool is_null(const yaml_event_t *e)
{
    const char *s = (const char *)e->data.scalar.value;
    size_t len = e->data.scalar.length;

    if (e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return len == 0 || (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

static void mismatch(struct loader *ld, enum expect exp, const char *found)
{
    const char *want = "a scalar";

    if (exp == EXP_SECTION)
        want = "a mapping";
    else if (exp == EXP_LIST)
        want = "a sequence";
    if (ld->path_len == 0)
        judge(ld, ld->ev.start_mark, "top level must be a mapping, found %s", found);
    else
        judge(ld, ld->ev.start_mark, "%s: expected %s, found %s", ld->path, want, found);
}

/* Finds the current path in the table: a key (EXP_LEAF, or EXP_LIST for the token list), a
 * section holding keys (EXP_SECTION, *idx its first key) or nothing (EXP_ANY). */
static enum expect lookup(const struct loader *ld, size_t *idx)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *k = keys[i].path;
        if (strncmp(k, ld->path, ld->path_len) != 0)
            continue;
        *idx = i;
        if (k[ld->path_len] == '\0')
            return keys[i].type == KEY_TOKENS ? EXP_LIST : EXP_LEAF;
        if (k[ld->path_len] == '.')
            return EXP_SECTION;
    }
    return EXP_ANY;
}

/* Judges the key just pushed onto the path (raw text in text/len), found at mark in a mapping
 * at depth. Returns what its value must be; EXP_ANY when the key itself is wrong. */
static enum expect judge_key(struct loader *ld, yaml_mark_t mark, const char *text, size_t len,
                             int depth, size_t *idx)
{
    enum expect exp;

    /* A dotted key would be a second spelling of a nested one; one spelling is enough. */
    if (len == 0 || memchr(text, '.', len) || memchr(text, '\0', len)) {
        char shown[64];
        escape(shown, sizeof shown, text, len);
        judge(ld, mark, "invalid key \"%s\": keys are non-empty names without '.'", shown);
        return EXP_ANY;
    }
    exp = lookup(ld, idx);
    if (exp == EXP_ANY) {
        judge(ld, mark, "unknown key %s", ld->path);
        return EXP_ANY;
    }
    if (exp == EXP_SECTION) {
        if (ld->section_seen[*idx] & (1u << depth)) {
            judge(ld, mark, "duplicate key %s", ld->path);
            return EXP_ANY;
        }
        ld->section_seen[*idx] |= 1u << depth;
        return exp;
    }
    if (ld->seen[*idx]) {
        judge(ld, mark, "duplicate key %s", ld->path);
        return EXP_ANY;
    }
    ld->seen[*idx] = true;
    ld->marks[*idx] = mark;
    return exp;
}

static int walk_node(struct loader *ld, int depth, enum expect exp, size_t idx);

/* Reads one key and its value; the key's event is current. */
static int walk_pair(struct loader *ld, int depth, enum expect parent)
{
    const yaml_event_t *e = &ld->ev;
    yaml_mark_t mark = e->start_mark;
    enum expect exp = EXP_ANY;
    size_t idx = 0;
    size_t old;
    int rc;

    if (e->type != YAML_SCALAR_EVENT)
        return fail(ld, mark, "only scalar mapping keys are supported");
    old = path_push(ld, (const char *)e->data.scalar.value, e->data.scalar.length);
    if (parent == EXP_SECTION)
        exp = judge_key(ld, mark, (const char *)e->data.scalar.value, e->data.scalar.length, depth,
                        &idx);
    rc = next_event(ld);
    if (rc == 0)
        rc = walk_node(ld, depth, exp, idx);
    path_pop(ld, old);
    return rc;
}

/* The mapping's start event is current; returns with its end event current. */
static int walk_mapping(struct loader *ld, int depth, enum expect exp)
{
    for (;;) {
        if (next_event(ld) < 0)
            return -1;
        if (ld->ev.type == YAML_MAPPING_END_EVENT)
            return 0;
        if (walk_pair(ld, depth, exp) < 0)
            return -1;
    }
}

/* The sequence's start event is current; returns with its end event current. Only the token
 * list is a sequence in the schema. */
static int walk_sequence(struct loader *ld, int depth, enum expect exp)
{
    size_t n = 0;

    if (exp == EXP_LIST)
        clear_tokens(ld->cfg);
    for (;; n++) {
        if (next_event(ld) < 0)
            return -1;
        if (ld->ev.type == YAML_SEQUENCE_END_EVENT)
            break;
        enum expect item = exp == EXP_LIST ? EXP_ITEM : EXP_ANY;
        if (item == EXP_ITEM && n >= PAYQ_CONFIG_MAX_TOKENS) {
            judge(ld, ld->ev.start_mark, "too many entries in %s (max %d)", TOKENS_PATH,
                  PAYQ_CONFIG_MAX_TOKENS);
            item = EXP_ANY;
        }
        size_t old = path_push_index(ld, n);
        int rc = walk_node(ld, depth, item, n);
        path_pop(ld, old);
        if (rc < 0)
            return -1;
    }
    if (exp == EXP_LIST && n <= PAYQ_CONFIG_MAX_TOKENS)
        ld->cfg->producer.n_api_tokens = n;
    return 0;
}

static void walk_scalar(struct loader *ld, enum expect exp, size_t idx)
{
    const yaml_event_t *e = &ld->ev;
    const char *text = (const char *)e->data.scalar.value;
    size_t len = e->data.scalar.length;
    char msg[512];

    if (exp == EXP_SECTION || exp == EXP_LIST) {
        /* "worker:" with nothing under it sets nothing; an empty token list is a list. */
        if (!is_null(e))
            mismatch(ld, exp, "a scalar");
        else if (exp == EXP_LIST)
            clear_tokens(ld->cfg);
    } else if (exp == EXP_LEAF) {
        if (set_value(ld->cfg, &keys[idx], text, len, msg, sizeof msg) < 0)
            judge(ld, e->start_mark, "%s", msg);
    } else if (exp == EXP_ITEM) {
        if (set_token(ld->cfg, idx, text, len, msg, sizeof msg) < 0)
            judge(ld, e->start_mark, "%s", msg);
    }
}

/* Reads the node whose first event is current, inside depth enclosing collections. The depth
 * is checked before descending, so recursion never goes past PAYQ_CONFIG_MAX_DEPTH and a
 * hostile file cannot make libyaml's stacks grow without bound. */
static int walk_node(struct loader *ld, int depth, enum expect exp, size_t idx)
{
    yaml_event_type_t type = ld->ev.type;

    if (type == YAML_SCALAR_EVENT) {
        walk_scalar(ld, exp, idx);
        return 0;
    }
    if (depth >= PAYQ_CONFIG_MAX_DEPTH)
        return fail(ld, ld->ev.start_mark, "nesting deeper than %d levels at %s",
                    PAYQ_CONFIG_MAX_DEPTH, ld->path);
    if (type == YAML_MAPPING_START_EVENT) {
        if (exp != EXP_SECTION && exp != EXP_ANY) {
            mismatch(ld, exp, "a mapping");
            exp = EXP_ANY;
        }
        return walk_mapping(ld, depth + 1, exp);
    }
    if (exp != EXP_LIST && exp != EXP_ANY) {
        mismatch(ld, exp, "a sequence");
        exp = EXP_ANY;
    }
    return walk_sequence(ld, depth + 1, exp);
}

/* A stream holds at most one document; none (empty file, only comments) means defaults. */
static int walk_stream(struct loader *ld)
{
    if (next_event(ld) < 0 || next_event(ld) < 0) /* stream start, then document start */
        return -1;
    if (ld->ev.type == YAML_STREAM_END_EVENT)
        return 0;
    if (next_event(ld) < 0 || walk_node(ld, 0, EXP_SECTION, 0) < 0)
        return -1;
    if (next_event(ld) < 0 || next_event(ld) < 0) /* document end, then stream end */
        return -1;
    if (ld->ev.type != YAML_STREAM_END_EVENT)
        return fail(ld, ld->ev.start_mark, "only one YAML document is allowed");
    return 0;
}

/* Reports that key `small` (value vs) must be at least key `big` (value vb),
 * at whichever of the two the file set (small's line if both). */
static void judge_at_least(struct loader *ld, const char *small, int vs, const char *big, int vb)
{
    size_t s = (size_t)(find_key(small) - keys);
    size_t b = (size_t)(find_key(big) - keys);

    if (vs >= vb)
        return;
    judge(ld, ld->seen[s] ? ld->marks[s] : ld->marks[b], "%s (%d) must be at least %s (%d)", small,
          vs, big, vb);
}

/* Sizes that must cover others. The worker asks the broker for prefetch messages at most:
 * a smaller prefetch than the batch size means no batch is ever full. A batch grows under a
 * backlog, never shrinks. */
static void judge_sizes(struct loader *ld)
{
    const struct payq_config *c = ld->cfg;

    judge_at_least(ld, "worker.prefetch", c->worker.prefetch, "worker.batch_max",
                   c->worker.batch_max);
    judge_at_least(ld, "worker.backlog_batch_max", c->worker.backlog_batch_max, "worker.batch_max",
                   c->worker.batch_max);
    /* Else no request of the largest size could ever be taken in. */
    judge_at_least(ld, "producer.body_memory_bytes", c->producer.body_memory_bytes,
                   "producer.max_request_bytes", c->producer.max_request_bytes);
}

/* Loads into a copy of the defaults, so on error *cfg is left untouched. */
int payq_config_load_buffer(struct payq_config *cfg, const char *name, const void *data, size_t len,
                            char *err, size_t errlen)
{
    struct payq_config tmp;
    struct loader ld;
    int rc;

    memset(&ld, 0, sizeof ld);
    ld.name = name ? name : "<config>";
    ld.data = data ? data : (const void *)"";
    ld.len = data ? len : 0;
    ld.cfg = &tmp;
    ld.err = err;
    ld.errlen = err ? errlen : 0; /* snprintf(NULL, 0, ...) only measures */
    payq_config_defaults(&tmp);
    if (!yaml_parser_initialize(&ld.parser)) {
        snprintf(ld.err, ld.errlen, "%s: out of memory", ld.name);
        return -1;
    }
    yaml_parser_set_input_string(&ld.parser, ld.data, ld.len);
    rc = walk_stream(&ld);
    if (rc == 0 && !ld.failed)
        judge_sizes(&ld);
    yaml_event_delete(&ld.ev);
    yaml_parser_delete(&ld.parser);
    if (rc < 0 || ld.failed)
        return -1;
    memcpy(cfg, &tmp, sizeof tmp);
    return 0;
}

/* Reads the whole file into b; configuration files are small, so cap them. */
static int read_file(const char *path, struct payq_buf *b, char *err, size_t errlen)
{
    enum { MAX_FILE = 1 << 20 };
    char chunk[4096];
    size_t n;
    FILE *f = fopen(path, "rb");

    if (f == NULL) {
        snprintf(err, errlen, "could not open file \"%s\": %s", path, strerror(errno));
        return -1;
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b->len <= MAX_FILE)
        payq_buf_append(b, chunk, n);
    if (ferror(f)) {
        snprintf(err, errlen, "could not read file \"%s\": %s", path, strerror(errno));
        fclose(f);
        return -1;
    }
    fclose(f);
    if (b->len > MAX_FILE) {
        snprintf(err, errlen, "%s: file too large (max %d bytes)", path, MAX_FILE);
        return -1;
    }
    return 0;
}

int payq_config_load(struct payq_config *cfg, const char *path, char *err, size_t errlen)
{
    struct payq_config tmp;
    struct payq_buf b = PAYQ_BUF_INIT;

    if (err == NULL)
        errlen = 0;
    payq_config_defaults(&tmp);
    if (path != NULL) {
        int rc = read_file(path, &b, err, errlen);
        if (rc == 0)
            rc = payq_config_load_buffer(&tmp, path, b.data, b.len, err, errlen);
        payq_buf_free(&b);
        if (rc < 0)
            return -1;
    }
    if (payq_config_apply_env(&tmp, err, errlen) < 0)
        return -1;
    memcpy(cfg, &tmp, sizeof tmp);
    return 0;
}
