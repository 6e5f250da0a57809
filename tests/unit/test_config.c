/* test_config: the config loader against config/payq.yaml (must equal the defaults), good
 * snippets, every bad fixture in tests/fixtures/config/bad (each NAME.yaml must fail with
 * exactly the line in NAME.expect) and the PAYQ_* environment overrides. */
/* cmocka.h needs these four first. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
/* clang-format on */

#include <cmocka.h>

#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define TOKEN_B "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

static const char *const env_vars[] = {
    "PAYQ_AMQP_URL",          "PAYQ_AMQP_MGMT_URL",    "PAYQ_PG_CONNINFO", "PAYQ_PG_READ_CONNINFO",
    "PAYQ_PG_RECON_CONNINFO", "PAYQ_API_TOKEN_SHA256", "PAYQ_LOG_LEVEL"};

/* The tests must not see whatever PAYQ_* variables the caller's shell has. */
static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
        unsetenv(env_vars[i]);
    return 0;
}

/* $PAYQ_SOURCE_DIR (set by ctest), else the tree this file sits in. */
static void source_path(char *dst, size_t len, const char *rel)
{
    const char *env = getenv("PAYQ_SOURCE_DIR");
    const char *file = __FILE__;
    const char *cut = strstr(file, "tests/unit/");

    if (env != NULL && *env != '\0')
        snprintf(dst, len, "%s/%s", env, rel);
    else if (cut != NULL && cut > file)
        snprintf(dst, len, "%.*s%s", (int)(cut - file), file, rel);
    else
        snprintf(dst, len, "./%s", rel);
}

/* Reads a whole file into an exact-size heap buffer, deliberately not NUL-terminated, so
 * ASan catches a loader that reads past len. */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data;
    long size;

    if (f == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    data = malloc(size > 0 ? (size_t)size : 1);
    assert_non_null(data);
    *len = fread(data, 1, (size_t)size, f);
    assert_int_equal(*len, (size_t)size);
    fclose(f);
    return data;
}

static int load_str(struct payq_config *cfg, const char *yaml, char *err, size_t errlen)
{
    size_t len = strlen(yaml);
    char *copy = malloc(len > 0 ? len : 1);
    int rc;

    assert_non_null(copy);
    memcpy(copy, yaml, len);
    rc = payq_config_load_buffer(cfg, "snippet.yaml", copy, len, err, errlen);
    free(copy);
    return rc;
}

/* Loads yaml, which must be valid, over the defaults. */
static void load_ok(struct payq_config *cfg, const char *yaml)
{
    char err[512] = "";

    payq_config_defaults(cfg);
    if (load_str(cfg, yaml, err, sizeof err) != 0)
        fail_msg("unexpected error: %s\n--- input:\n%s", err, yaml);
}

static void expect_error(const char *yaml, const char *want)
{
    struct payq_config cfg;
    char err[512] = "";

    payq_config_defaults(&cfg);
    assert_int_equal(load_str(&cfg, yaml, err, sizeof err), -1);
    assert_string_equal(err, want);
}

/* The defaults are the values config.h documents. */
static void test_defaults_match_header(void **state)
{
    struct payq_config c;

    (void)state;
    payq_config_defaults(&c);
    assert_string_equal(c.log.level, "info");
    assert_string_equal(c.amqp.url, "amqp://127.0.0.1:17672/payq");
    assert_string_equal(c.amqp.mgmt_url, "http://127.0.0.1:17673");
    assert_int_equal(c.amqp.heartbeat_s, 30);
    assert_int_equal(c.amqp.connect_timeout_ms, 5000);
    assert_false(c.amqp.tls.enabled);
    assert_string_equal(c.amqp.tls.ca_file, "");
    assert_string_equal(c.amqp.tls.cert_file, "");
    assert_string_equal(c.amqp.tls.key_file, "");
    assert_true(c.amqp.tls.verify_peer);
    assert_non_null(strstr(c.pg.conninfo, "user=payq_worker"));
    assert_non_null(strstr(c.pg.read_conninfo, "user=payq_reader"));
    assert_non_null(strstr(c.pg.recon_conninfo, "user=payq_recon"));
    assert_int_equal(c.pg.statement_timeout_ms, 30000);
    assert_string_equal(c.producer.listen, "127.0.0.1:17080");
    assert_int_equal(c.producer.confirm_window, 500);
    assert_int_equal(c.producer.http_threads, 4);
    assert_int_equal(c.producer.max_request_bytes, 4194304);
    assert_int_equal(c.producer.body_memory_bytes, 134217728);
    assert_int_equal(c.producer.max_batch_items, 1000);
    assert_int_equal(c.producer.pack_max, 100);
    assert_int_equal(c.producer.n_api_tokens, 0);
    assert_int_equal(c.worker.batch_max, 4000);
    assert_int_equal(c.worker.batch_wait_ms, 5);
    assert_int_equal(c.worker.prefetch, 4000);
    assert_int_equal(c.worker.backlog_batch_max, 8000);
    assert_int_equal(c.worker.backlog_after_ms, 1000);
    assert_int_equal(c.worker.solo_after_deliveries, 3);
    assert_int_equal(c.worker.reconnect_max_ms, 5000);
    assert_string_equal(c.worker.metrics_listen, "");
    assert_int_equal(c.reconciler.lookback_hours, 24);
    assert_int_equal(c.reconciler.primary_wait_s, 90);
    assert_string_equal(c.reconciler.spill_dir, "/tmp");
    assert_int_equal(c.reconciler.buckets, 256);
    assert_int_equal(c.reconciler.examples, 10);
}

/* config/payq.yaml documents every key at its default: loading it must change nothing. */
static void test_payq_yaml_is_defaults(void **state)
{
    struct payq_config def, got;
    char path[4096];
    char err[512] = "";
    size_t len;
    char *data;

    (void)state;
    source_path(path, sizeof path, "config/payq.yaml");
    payq_config_defaults(&def);
    memset(&got, 0xa5, sizeof got);
    if (payq_config_load(&got, path, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(got.amqp.url, def.amqp.url);
    assert_string_equal(got.pg.conninfo, def.pg.conninfo);
    assert_memory_equal(&got, &def, sizeof def);

    data = read_all(path, &len);
    memset(&got, 0xa5, sizeof got);
    assert_int_equal(payq_config_load_buffer(&got, "payq.yaml", data, len, err, sizeof err), 0);
    assert_memory_equal(&got, &def, sizeof def);
    free(data);
}

/* The file spells out every key and names every override, and holds no secret. */
static void test_payq_yaml_documents_everything(void **state)
{
    static const char *const needles[] = {"level: info",
                                          "url:",
                                          "mgmt_url:",
                                          "heartbeat_s: 30",
                                          "connect_timeout_ms: 5000",
                                          "tls:",
                                          "enabled: false",
                                          "ca_file:",
                                          "cert_file:",
                                          "key_file:",
                                          "verify_peer: true",
                                          "conninfo:",
                                          "read_conninfo:",
                                          "recon_conninfo:",
                                          "statement_timeout_ms: 30000",
                                          "listen:",
                                          "confirm_window: 500",
                                          "http_threads: 4",
                                          "max_request_bytes: 4194304",
                                          "body_memory_bytes: 134217728",
                                          "max_batch_items: 1000",
                                          "pack_max: 100",
                                          "spool_max_mib: 16384",
                                          "group_publishers: 2",
                                          "group_linger_us: 1000",
                                          "http_max_connections: 4096",
                                          "http_max_per_ip: 512",
                                          "http_header_timeout_ms: 10000",
                                          "http_body_timeout_ms: 30000",
                                          "http_drain_ms: 2000",
                                          "api_tokens_sha256: []",
                                          "batch_max: 4000",
                                          "batch_wait_ms: 5",
                                          "prefetch: 4000",
                                          "backlog_batch_max: 8000",
                                          "backlog_after_ms: 1000",
                                          "solo_after_deliveries: 3",
                                          "reconnect_max_ms: 5000",
                                          "metrics_listen: \"\"",
                                          "lookback_hours: 24",
                                          "spill_dir: \"/tmp\"",
                                          "buckets: 256",
                                          "examples: 10",
                                          "primary_wait_s: 90"};
    char path[4096];
    size_t len;
    char *data, *text;

    (void)state;
    source_path(path, sizeof path, "config/payq.yaml");
    data = read_all(path, &len);
    text = malloc(len + 1);
    assert_non_null(text);
    memcpy(text, data, len);
    text[len] = '\0';
    for (size_t i = 0; i < sizeof needles / sizeof needles[0]; i++) {
        if (strstr(text, needles[i]) == NULL)
            fail_msg("config/payq.yaml does not document \"%s\"", needles[i]);
    }
    for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++) {
        if (strstr(text, env_vars[i]) == NULL)
            fail_msg("config/payq.yaml does not name %s", env_vars[i]);
    }
    assert_null(strstr(text, "password="));
    assert_null(strstr(text, "@"));
    free(text);
    free(data);
}

/* Nothing to read means all defaults. */
static void test_empty_documents(void **state)
{
    static const char *const empties[] = {"",
                                          "\n",
                                          "# only a comment\n# and another\n",
                                          "---\n",
                                          "--- # nothing\n...\n",
                                          "~\n",
                                          "null\n",
                                          "   \n\n"};
    struct payq_config def, got;
    char err[256] = "";

    (void)state;
    payq_config_defaults(&def);
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        memset(&got, 0x5a, sizeof got);
        if (load_str(&got, empties[i], err, sizeof err) != 0)
            fail_msg("input %zu: %s", i, err);
        assert_memory_equal(&got, &def, sizeof def);
    }
    memset(&got, 0x5a, sizeof got);
    assert_int_equal(payq_config_load_buffer(&got, "null", NULL, 0, err, sizeof err), 0);
    assert_memory_equal(&got, &def, sizeof def);
}

static void test_good_snippet(void **state)
{
    struct payq_config c;

    (void)state;
    load_ok(&c,
            "log:\n"
            "  level: debug\n"
            "amqp:\n"
            "  url: amqps://node1:5671/payq, amqps://node2:5671/payq\n"
            "  heartbeat_s: 0\n"
            "  tls:\n"
            "    enabled: true\n"
            "    ca_file: '/etc/payq/ca.pem'\n"
            "    verify_peer: false\n"
            "pg:\n"
            "  conninfo: \"postgresql://payq_worker@db:5432/payq\"\n"
            "  statement_timeout_ms: 3600000\n"
            "producer:\n"
            "  listen: '[::1]:8080'\n"
            "  api_tokens_sha256:\n"
            "    - " TOKEN_A "\n"
            "    - FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\n"
            "worker: {batch_max: 8189, prefetch: 8189, backlog_batch_max: 8189, batch_wait_ms: 0,\n"
            "  backlog_after_ms: 0}\n"
            "reconciler:\n"
            "  spill_dir: |-\n"
            "    /var/tmp/payq\n");
    assert_string_equal(c.log.level, "debug");
    assert_string_equal(c.amqp.url, "amqps://node1:5671/payq, amqps://node2:5671/payq");
    assert_int_equal(c.amqp.heartbeat_s, 0);
    assert_true(c.amqp.tls.enabled);
    assert_string_equal(c.amqp.tls.ca_file, "/etc/payq/ca.pem");
    assert_false(c.amqp.tls.verify_peer);
    assert_string_equal(c.pg.conninfo, "postgresql://payq_worker@db:5432/payq");
    assert_int_equal(c.pg.statement_timeout_ms, 3600000);
    assert_string_equal(c.producer.listen, "[::1]:8080");
    assert_int_equal(c.producer.n_api_tokens, 2);
    assert_string_equal(c.producer.api_tokens_sha256[0], TOKEN_A);
    assert_string_equal(c.producer.api_tokens_sha256[1], TOKEN_B); /* lowercased */
    assert_int_equal(c.worker.batch_max, 8189);
    assert_int_equal(c.worker.prefetch, 8189);
    assert_int_equal(c.worker.batch_wait_ms, 0);
    assert_int_equal(c.worker.backlog_batch_max, 8189);
    assert_int_equal(c.worker.backlog_after_ms, 0);
    assert_string_equal(c.reconciler.spill_dir, "/var/tmp/payq");
    /* Keys not in the snippet keep their defaults. */
    assert_int_equal(c.amqp.connect_timeout_ms, 5000);
    assert_int_equal(c.reconciler.buckets, 256);
}

static void test_edges_accepted(void **state)
{
    struct payq_config c;
    char yaml[4096];
    char tokens[64 * 80];
    size_t o = 0;

    (void)state;
    /* Empty sections and lists set nothing, or an empty list. */
    load_ok(&c, "worker:\nlog: ~\nproducer:\n  api_tokens_sha256:\n");
    assert_int_equal(c.worker.batch_max, 4000);
    assert_int_equal(c.producer.n_api_tokens, 0);

    /* Bounds are inclusive at both ends. */
    load_ok(&c, "amqp: {connect_timeout_ms: 100}\nworker: {batch_max: 1, prefetch: 1}\n");
    assert_int_equal(c.amqp.connect_timeout_ms, 100);
    assert_int_equal(c.worker.batch_max, 1);
    load_ok(&c, "producer: {max_request_bytes: 67108864, http_threads: 64}\n");
    assert_int_equal(c.producer.max_request_bytes, 67108864);
    assert_int_equal(c.producer.http_threads, 64);

    /* The longest string that fits: 1023 bytes. */
    snprintf(yaml, sizeof yaml, "amqp:\n  url: amqp://%01000d/payq%011d\n", 0, 0);
    load_ok(&c, yaml);
    assert_int_equal(strlen(c.amqp.url), PAYQ_CONFIG_STR_MAX - 1);

    /* Exactly PAYQ_CONFIG_MAX_TOKENS tokens. */
    for (int i = 0; i < PAYQ_CONFIG_MAX_TOKENS; i++)
        o += (size_t)snprintf(tokens + o, sizeof tokens - o, "%s%064x", i ? ", " : "", i);
    snprintf(yaml, sizeof yaml, "producer: {api_tokens_sha256: [%.*s]}\n", (int)o, tokens);
    load_ok(&c, yaml);
    assert_int_equal(c.producer.n_api_tokens, PAYQ_CONFIG_MAX_TOKENS);
    assert_string_equal(c.producer.api_tokens_sha256[31],
                        "000000000000000000000000000000000000000000000000000000000000001f");

    /* Eight levels is the limit, not an error; an unknown key is what stops this one. */
    expect_error("a: {b: {c: {d: {e: {f: {g: {h: 1}}}}}}}\n", "snippet.yaml:1:1: unknown key a");
}

/* The buffer ends without a newline or NUL: the loader must stop at len. */
static void test_buffer_not_nul_terminated(void **state)
{
    static const char text[] = "worker:\n  batch_max: 12";
    const size_t len = sizeof text - 1;
    struct payq_config c;
    char err[256] = "";
    char *data = malloc(len);

    (void)state;
    assert_non_null(data);
    memcpy(data, text, len);
    payq_config_defaults(&c);
    assert_int_equal(payq_config_load_buffer(&c, "x", data, len, err, sizeof err), 0);
    assert_int_equal(c.worker.batch_max, 12);
    /* Cut after "1": still valid, and the value is 1. */
    assert_int_equal(payq_config_load_buffer(&c, "x", data, len - 1, err, sizeof err), 0);
    assert_int_equal(c.worker.batch_max, 1);
    free(data);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the *.yaml files of dir, sorted; the caller frees each name and the array. */
static size_t list_fixtures(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;

    if (d == NULL)
        fail_msg("cannot open fixture directory %s", dir);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= 5 || strcmp(e->d_name + len - 5, ".yaml") != 0)
            continue;
        names = realloc(names, (n + 1) * sizeof *names);
        assert_non_null(names);
        names[n] = strdup(e->d_name);
        assert_non_null(names[n++]);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    *out = names;
    return n;
}

/* Checks one fixture; returns 0 when it fails with exactly the expected line. */
static int check_fixture(const char *dir, const char *file)
{
    char path[4096], name[512], err[1024] = "";
    struct payq_config before, cfg;
    size_t ylen, elen;
    char *yaml, *expect;
    int rc, bad = 0;

    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
        fail_msg("path too long: %s/%s", dir, file);
    yaml = read_all(path, &ylen);
    snprintf(path + strlen(path) - 5, 8, ".expect");
    expect = read_all(path, &elen);
    while (elen > 0 && (expect[elen - 1] == '\n' || expect[elen - 1] == '\r'))
        elen--;
    snprintf(name, sizeof name, "bad/%s", file);
    payq_config_defaults(&before);
    before.worker.batch_max = 7; /* not a default: shows that cfg is left alone */
    memcpy(&cfg, &before, sizeof cfg);
    rc = payq_config_load_buffer(&cfg, name, yaml, ylen, err, sizeof err);
    if (rc != -1 || strlen(err) != elen || memcmp(err, expect, elen) != 0) {
        print_error("%s: rc %d\n  got:  %s\n  want: %.*s\n", file, rc, err, (int)elen, expect);
        bad = 1;
    } else if (memcmp(&cfg, &before, sizeof cfg) != 0 || strchr(err, '\n') != NULL) {
        print_error("%s: config changed on error, or a multi-line message\n", file);
        bad = 1;
    }
    free(yaml);
    free(expect);
    return bad;
}

static void test_bad_fixtures(void **state)
{
    char dir[4096];
    char **names;
    size_t n;
    int bad = 0;

    (void)state;
    source_path(dir, sizeof dir, "tests/fixtures/config/bad");
    n = list_fixtures(dir, &names);
    for (size_t i = 0; i < n; i++) {
        bad += check_fixture(dir, names[i]);
        free(names[i]);
    }
    free(names);
    print_message("%zu bad fixtures checked, %d wrong\n", n, bad);
    assert_true(n >= 20);
    assert_int_equal(bad, 0);
}

/* Positions are 1-based and point at the value for value errors, at the key for key ones. */
static void test_error_positions(void **state)
{
    (void)state;
    expect_error("worker:\n  batch_max: abc\n",
                 "snippet.yaml:2:14: invalid value \"abc\" for worker.batch_max: must be an "
                 "integer between 1 and 8189");
    expect_error("\n\nworker:\n    batch_size: 5\n",
                 "snippet.yaml:4:5: unknown key worker.batch_size");
    /* Secrets are never echoed. */
    expect_error("pg:\n  conninfo: \"password=hunter2\\0x\"\n",
                 "snippet.yaml:2:13: invalid value for pg.conninfo: contains a NUL byte");
}

/* Long values are cut, and the message still fits the buffer given. */
static void test_error_buffer(void **state)
{
    struct payq_config c;
    char yaml[600];
    char err[512] = "";
    char tiny[16];

    (void)state;
    snprintf(yaml, sizeof yaml, "worker:\n  batch_max: %0500d\n", 7);
    payq_config_defaults(&c);
    assert_int_equal(load_str(&c, yaml, err, sizeof err), -1);
    assert_non_null(strstr(err, "...\" for worker.batch_max"));
    assert_true(strlen(err) < 200);
    assert_int_equal(load_str(&c, "colour: blue\n", tiny, sizeof tiny), -1);
    assert_string_equal(tiny, "snippet.yaml:1:");
    assert_int_equal(load_str(&c, "colour: blue\n", NULL, 0), -1);
}

static void test_load_missing_file(void **state)
{
    struct payq_config c;
    char err[512] = "";

    (void)state;
    payq_config_defaults(&c);
    assert_int_equal(payq_config_load(&c, "/nonexistent/payq.yaml", err, sizeof err), -1);
    assert_string_equal(
        err, "could not open file \"/nonexistent/payq.yaml\": No such file or directory");
}

static void test_env_overrides(void **state)
{
    struct payq_config c;
    char err[512] = "";

    (void)state;
    setenv("PAYQ_AMQP_URL", "amqp://payq:secret@10.0.0.1:5672/payq,amqp://10.0.0.2/payq", 1);
    setenv("PAYQ_AMQP_MGMT_URL", "https://admin:pw@10.0.0.1:15671", 1);
    setenv("PAYQ_PG_CONNINFO", "host=db user=payq_worker password=w", 1);
    setenv("PAYQ_PG_READ_CONNINFO", "host=replica user=payq_reader", 1);
    setenv("PAYQ_PG_RECON_CONNINFO", "host=db user=payq_recon password=r", 1);
    setenv("PAYQ_API_TOKEN_SHA256",
           " " TOKEN_A " ,FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", 1);
    setenv("PAYQ_LOG_LEVEL", "warn", 1);
    load_ok(&c, "producer:\n  api_tokens_sha256: [" TOKEN_B "]\nlog: {level: debug}\n");
    assert_int_equal(payq_config_apply_env(&c, err, sizeof err), 0);
    assert_string_equal(c.amqp.url, "amqp://payq:secret@10.0.0.1:5672/payq,amqp://10.0.0.2/payq");
    assert_string_equal(c.amqp.mgmt_url, "https://admin:pw@10.0.0.1:15671");
    assert_string_equal(c.pg.conninfo, "host=db user=payq_worker password=w");
    assert_string_equal(c.pg.read_conninfo, "host=replica user=payq_reader");
    assert_string_equal(c.pg.recon_conninfo, "host=db user=payq_recon password=r");
    assert_int_equal(c.producer.n_api_tokens, 2);
    assert_string_equal(c.producer.api_tokens_sha256[0], TOKEN_A);
    assert_string_equal(c.producer.api_tokens_sha256[1], TOKEN_B);
    assert_string_equal(c.log.level, "warn");

    /* payq_config_load: file first, then the environment; NULL path means no file. */
    memset(&c, 0, sizeof c);
    assert_int_equal(payq_config_load(&c, NULL, err, sizeof err), 0);
    assert_string_equal(c.log.level, "warn");
    assert_int_equal(c.worker.batch_max, 4000);
    clear_env(NULL);

    /* An empty variable counts as unset. */
    setenv("PAYQ_API_TOKEN_SHA256", "", 1);
    setenv("PAYQ_LOG_LEVEL", "", 1);
    load_ok(&c, "producer:\n  api_tokens_sha256: [" TOKEN_B "]\n");
    assert_int_equal(payq_config_apply_env(&c, err, sizeof err), 0);
    assert_int_equal(c.producer.n_api_tokens, 1);
    assert_string_equal(c.log.level, "info");
    clear_env(NULL);
}

/* A bad variable is an error naming it, and leaves the config as it was. */
static void expect_env_error(const char *var, const char *val, const char *want)
{
    struct payq_config before, c;
    char err[512] = "";

    payq_config_defaults(&before);
    memcpy(&c, &before, sizeof c);
    setenv(var, val, 1);
    assert_int_equal(payq_config_apply_env(&c, err, sizeof err), -1);
    assert_string_equal(err, want);
    assert_memory_equal(&c, &before, sizeof c);
    memset(&c, 0, sizeof c);
    assert_int_equal(payq_config_load(&c, NULL, err, sizeof err), -1);
    assert_string_equal(err, want);
    unsetenv(var);
}

static void test_env_errors(void **state)
{
    char many[40 * 66];
    size_t o = 0;

    (void)state;
    expect_env_error("PAYQ_API_TOKEN_SHA256", TOKEN_A ",abc",
                     "environment variable PAYQ_API_TOKEN_SHA256: invalid value for "
                     "producer.api_tokens_sha256[1]: must be a SHA-256 digest of 64 hex "
                     "characters, found 3 characters");
    expect_env_error("PAYQ_API_TOKEN_SHA256",
                     "z123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                     "environment variable PAYQ_API_TOKEN_SHA256: invalid value for "
                     "producer.api_tokens_sha256[0]: must be a SHA-256 digest of 64 hex "
                     "characters, found a non-hex character");
    expect_env_error("PAYQ_API_TOKEN_SHA256", TOKEN_A ",",
                     "environment variable PAYQ_API_TOKEN_SHA256: invalid value for "
                     "producer.api_tokens_sha256[1]: must be a SHA-256 digest of 64 hex "
                     "characters, found 0 characters");
    for (int i = 0; i <= PAYQ_CONFIG_MAX_TOKENS; i++)
        o += (size_t)snprintf(many + o, sizeof many - o, "%s%064x", i ? "," : "", i);
    expect_env_error("PAYQ_API_TOKEN_SHA256", many,
                     "environment variable PAYQ_API_TOKEN_SHA256: too many entries in "
                     "producer.api_tokens_sha256 (max 32)");
    expect_env_error("PAYQ_LOG_LEVEL", "verbose",
                     "environment variable PAYQ_LOG_LEVEL: invalid value \"verbose\" for "
                     "log.level: must be one of debug, info, warn, error");
    expect_env_error("PAYQ_AMQP_URL", "http://user:secret@host/",
                     "environment variable PAYQ_AMQP_URL: invalid value for amqp.url: must be "
                     "up to 32 amqp:// or amqps:// URLs separated by commas");
    expect_env_error("PAYQ_AMQP_MGMT_URL", "ftp://host",
                     "environment variable PAYQ_AMQP_MGMT_URL: invalid value for "
                     "amqp.mgmt_url: must be an http:// or https:// URL");
}

static void test_env_string_too_long(void **state)
{
    char *val = malloc(PAYQ_CONFIG_STR_MAX + 1);

    (void)state;
    assert_non_null(val);
    memset(val, 'x', PAYQ_CONFIG_STR_MAX);
    val[PAYQ_CONFIG_STR_MAX] = '\0';
    expect_env_error("PAYQ_PG_RECON_CONNINFO", val,
                     "environment variable PAYQ_PG_RECON_CONNINFO: string too long for "
                     "pg.recon_conninfo (max 1023 bytes)");
    free(val);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults_match_header, clear_env),
        cmocka_unit_test_setup(test_payq_yaml_is_defaults, clear_env),
        cmocka_unit_test_setup(test_payq_yaml_documents_everything, clear_env),
        cmocka_unit_test_setup(test_empty_documents, clear_env),
        cmocka_unit_test_setup(test_good_snippet, clear_env),
        cmocka_unit_test_setup(test_edges_accepted, clear_env),
        cmocka_unit_test_setup(test_buffer_not_nul_terminated, clear_env),
        cmocka_unit_test_setup(test_bad_fixtures, clear_env),
        cmocka_unit_test_setup(test_error_positions, clear_env),
        cmocka_unit_test_setup(test_error_buffer, clear_env),
        cmocka_unit_test_setup(test_load_missing_file, clear_env),
        cmocka_unit_test_setup(test_env_overrides, clear_env),
        cmocka_unit_test_setup(test_env_errors, clear_env),
        cmocka_unit_test_setup(test_env_string_too_long, clear_env),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
