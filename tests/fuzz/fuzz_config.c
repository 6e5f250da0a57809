/* fuzz_config: libFuzzer target for the YAML config loader. The input is passed as-is, not
 * NUL-terminated, exactly as the loader receives a file. Besides the sanitizers, it checks
 * the loader's promises: on success every value is within its bounds and every string is
 * terminated; on failure the message is a single non-empty line. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL)
        abort();
}

static void check_loaded(const struct payq_config *c)
{
    check_str(c->log.level, sizeof c->log.level);
    check_str(c->amqp.url, sizeof c->amqp.url);
    check_str(c->pg.conninfo, sizeof c->pg.conninfo);
    check_str(c->producer.listen, sizeof c->producer.listen);
    check_str(c->worker.metrics_listen, sizeof c->worker.metrics_listen);
    check_str(c->reconciler.spill_dir, sizeof c->reconciler.spill_dir);
    if (c->producer.n_api_tokens > PAYQ_CONFIG_MAX_TOKENS)
        abort();
    for (size_t i = 0; i < c->producer.n_api_tokens; i++) {
        const char *t = c->producer.api_tokens_sha256[i];
        if (strlen(t) != 64 || strspn(t, "0123456789abcdef") != 64)
            abort();
    }
    if (c->worker.batch_max < 1 || c->worker.batch_max > 8189 ||
        c->worker.prefetch < c->worker.batch_max ||
        c->producer.body_memory_bytes < c->producer.max_request_bytes || c->amqp.heartbeat_s < 0 ||
        c->amqp.heartbeat_s > 600)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct payq_config cfg;
    char err[512];

    err[0] = '\0';
    if (payq_config_load_buffer(&cfg, "fuzz.yaml", data, size, err, sizeof err) == 0)
        check_loaded(&cfg);
    else if (err[0] == '\0' || strchr(err, '\n') != NULL)
        abort();
    return 0;
}
