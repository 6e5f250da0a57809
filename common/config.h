/* config: the one configuration struct all payq programs share, loaded from
 * YAML (libyaml) by a table of keys, each with a type, bounds and default
 * (config/payq.yaml documents every key). Unknown keys, wrong types,
 * out-of-range values, duplicate keys and nesting deeper than
 * PAYQ_CONFIG_MAX_DEPTH are errors naming file, line, column and key path:
 *   config/payq.yaml:12:3: invalid value "abc" for worker.batch_max: must be
 *   an integer between 1 and 8189
 * Connection strings can be overridden from the environment so no secret has
 * to live in a file: PAYQ_AMQP_URL, PAYQ_AMQP_MGMT_URL, PAYQ_PG_CONNINFO,
 * PAYQ_PG_READ_CONNINFO, PAYQ_PG_RECON_CONNINFO, PAYQ_API_TOKEN_SHA256. */
#ifndef PAYQ_CONFIG_H
#define PAYQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define PAYQ_CONFIG_MAX_DEPTH 8
#define PAYQ_CONFIG_MAX_TOKENS 32
#define PAYQ_CONFIG_STR_MAX 1024

struct payq_tls_config {
    bool enabled;                        /* default false */
    char ca_file[PAYQ_CONFIG_STR_MAX];   /* default "" */
    char cert_file[PAYQ_CONFIG_STR_MAX]; /* default "" */
    char key_file[PAYQ_CONFIG_STR_MAX];  /* default "" */
    bool verify_peer;                    /* default true */
};

struct payq_config {
    struct {
        char level[16]; /* log.level: debug|info|warn|error, default "info" */
    } log;
    struct {
        /* amqp.url: comma-separated amqp:// or amqps:// URLs, tried in order
         * (several cluster nodes). Default "amqp://127.0.0.1:17672/payq"; credentials come
         * from PAYQ_AMQP_URL so none live in a file */
        char url[PAYQ_CONFIG_STR_MAX];
        char mgmt_url[PAYQ_CONFIG_STR_MAX]; /* amqp.mgmt_url, default "http://127.0.0.1:17673" */
        int heartbeat_s;                    /* amqp.heartbeat_s: 0..600, default 30 */
        int connect_timeout_ms;             /* amqp.connect_timeout_ms: 100..600000, default 5000 */
        struct payq_tls_config tls;         /* amqp.tls.* */
    } amqp;
    struct {
        char conninfo[PAYQ_CONFIG_STR_MAX];       /* pg.conninfo (read-write, workers) */
        char read_conninfo[PAYQ_CONFIG_STR_MAX];  /* pg.read_conninfo (read-only role) */
        char recon_conninfo[PAYQ_CONFIG_STR_MAX]; /* pg.recon_conninfo (reconciliation run records)
                                                   */
        int statement_timeout_ms; /* pg.statement_timeout_ms: 0..3600000, default 30000 */
    } pg;
    struct {
        char listen[256];   /* producer.listen: HOST:PORT, default "127.0.0.1:17080" */
        int confirm_window; /* producer.confirm_window: 1..65535, default 500 */
        int http_threads;   /* producer.http_threads: 1..64, default 4 */
        /* producer.http_max_connections: open connections, 16..1000000, default 4096 */
        int http_max_connections;
        /* producer.http_max_per_ip: open connections from one address, 0 (no limit)..1000000,
         * default 512 */
        int http_max_per_ip;
        /* producer.http_header_timeout_ms: a request's headers must be in this long after the
         * connection opened (or the previous response), 100..600000, default 10000 */
        int http_header_timeout_ms;
        /* producer.http_body_timeout_ms: then its body within this, 100..3600000, default 30000 */
        int http_body_timeout_ms;
        /* producer.http_drain_ms: after SIGTERM, /readyz answers 503 and requests are still
         * served this long (a load balancer's health check takes the replica out) before the
         * listener closes, 0..600000, default 2000 */
        int http_drain_ms;
        int max_request_bytes; /* producer.max_request_bytes: 1024..67108864, default 4194304 */
        /* producer.body_memory_bytes: request bodies held in memory at once, every connection
         * together; a request that would go over is answered 503, 1024..2147483647 (at least
         * max_request_bytes), default 134217728 */
        int body_memory_bytes;
        int max_batch_items; /* producer.max_batch_items: 1..1000, default 1000 */
        /* producer.pack_max: transfers per broker message, 1..1000 (PAYQ_PACK_MAX_ITEMS),
         * default 100; 1 publishes one "transfer" message per transfer */
        int pack_max;
        /* producer.spool_max_mib: largest input that cannot seek (stdin, a FIFO) spooled to
         * TMPDIR, in MiB, 1..1048576, default 16384 */
        int spool_max_mib;
        /* producer.group_publishers: HTTP group commit publisher threads (each its own broker
         * connection), 0 (off: each request publishes its own packs)..16, default 2 */
        int group_publishers;
        /* producer.group_linger_us: how long a shared pack waits for more requests after its
         * first, in microseconds, 0..1000000, default 1000 */
        int group_linger_us;
        /* producer.replay_check: POST looks its ids up on the read replica and answers 409
         * for an id held with another payload, default true */
        bool replay_check;
        /* producer.read_timeout_ms: the longest a GET of the ledger waits for the read
         * replica, connecting included, before it answers 503, 100..600000, default 2000 */
        int read_timeout_ms;
        /* producer.api_tokens_sha256: list of 64-hex-char SHA-256 digests */
        char api_tokens_sha256[PAYQ_CONFIG_MAX_TOKENS][65];
        size_t n_api_tokens;
    } producer;
    struct {
        int batch_max;     /* worker.batch_max: 1..8189, default 4000 */
        int batch_wait_ms; /* worker.batch_wait_ms: 0..10000, default 5 */
        int prefetch;      /* worker.prefetch: 1..65535, default 4000; must be >= batch_max */
        /* worker.backlog_batch_max: 1..8189, default 8000; must be >= batch_max */
        int backlog_batch_max;
        int backlog_after_ms;      /* worker.backlog_after_ms: 0 (never)..3600000, default 1000 */
        int solo_after_deliveries; /* worker.solo_after_deliveries: 1..1000, default 3 */
        int reconnect_max_ms;      /* worker.reconnect_max_ms: 100..600000, default 5000 */
        int account_cache_max;     /* worker.account_cache_max: 0..10000000, default 200000 */
        char metrics_listen[256];  /* worker.metrics_listen: HOST:PORT or "" (off), default "" */
        bool result_events;        /* worker.result_events: outcome events, default true */
        int result_pack_max;       /* worker.result_pack_max: events per message, 1..1000, 1000 */
    } worker;
    struct {
        int lookback_hours;                  /* reconciler.lookback_hours: 0..720, default 24 */
        char spill_dir[PAYQ_CONFIG_STR_MAX]; /* reconciler.spill_dir, default "/tmp" */
        int buckets;                         /* reconciler.buckets: 1..4096, default 256 */
        int examples;                        /* reconciler.examples: 1..10000, default 10 */
        int primary_wait_s;                  /* reconciler.primary_wait_s: 0..3600, default 90 */
        char metrics_textfile[PAYQ_CONFIG_STR_MAX]; /* reconciler.metrics_textfile, default "" */
    } reconciler;
};

/* Fills *cfg with every default. */
void payq_config_defaults(struct payq_config *cfg);

/* Loads path over the defaults, then applies the environment overrides.
 * On error returns -1 and writes one line (no trailing newline) describing
 * the first problem into err. path NULL means defaults plus environment. */
int payq_config_load(struct payq_config *cfg, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Same as load but from a memory buffer (not NUL-terminated; used by tests
 * and the fuzzer); name is used in messages in place of a file name. Does
 * not apply environment overrides. */
int payq_config_load_buffer(struct payq_config *cfg, const char *name, const void *data, size_t len,
                            char *err, size_t errlen) __attribute__((warn_unused_result));

/* Applies PAYQ_* environment overrides (see top of file). Returns -1 with err
 * filled if an override is invalid (e.g. a token that is not 64 hex chars). */
int payq_config_apply_env(struct payq_config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
