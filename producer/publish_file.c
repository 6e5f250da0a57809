/* publish_file: the two passes over a batch file and the summary. */
#include "publish_file.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "clock.h"
#include "money.h"
#include "outbox.h"
#include "packer.h"
#include "progress.h"

/* Stall limit while waiting for confirms, and how long to keep
 * reconnecting after the broker went away. */
#define FILE_RETRY_MS 120000
/* A connection that confirms nothing for this long while messages are
 * awaited is replaced, and they are published again (outbox.h). Far above
 * a healthy cluster's confirm latency (milliseconds) and a node's failure
 * detection (seconds), so it fires only when confirms are owed for good. */
#define FILE_RESEND_MS 30000
/* Most unconfirmed bytes held for republishing: a full window of 4 MiB
 * packs would be 2 GiB. 64 MiB still keeps dozens of packs in flight. */
#define FILE_MAX_HELD (64u * 1024 * 1024)

struct run {
    const struct payq_publish_file_opts *o;
    struct payq_lines in;
    struct payq_batch b;
    struct payq_progress prog;
    struct payq_outbox *ob;
    struct payq_packer pk; /* transfers only */
    int pack_max;          /* producer.pack_max */
    uint64_t confirmed;    /* transfers or accounts of the file confirmed */
    uint64_t messages;     /* the broker messages that carried them (not the manifest) */
    bool manifest_confirmed;
    int64_t started_ms;
};

static const char *kind_noun(enum payq_batch_kind k)
{
    return k == PAYQ_BATCH_TRANSFERS ? "transfers" : "accounts";
}

static void tick(void *ctx)
{
    struct run *r = ctx;
    struct payq_outbox_stats st;
    payq_outbox_stats(r->ob, &st);
    payq_progress_update(&r->prog, st.items);
}

/* Sends one rendered line: transfers through the packer, accounts one per
 * message. 0 or -1 (the outbox failed). */
static int send_line(struct run *r, const char *id, const struct payq_buf *body)
{
    if (r->o->kind == PAYQ_BATCH_TRANSFERS)
        return payq_packer_add(&r->pk, id, body->data, body->len);
    return payq_outbox_send(r->ob, payq_msg_kind_routing_key(PAYQ_MSG_ACCOUNT), id, body->data,
                            body->len);
}

/* Streams the file again and sends every line to publish. Returns 0
 * once all are confirmed, -1 otherwise (the outbox says why). */
static int publish_lines(struct run *r)
{
    struct payq_buf body = PAYQ_BUF_INIT;
    char id[PAYQ_ID_MAX + 1];
    size_t dup_cursor = 0;
    const char *line;
    size_t len;
    bool too_long;
    uint64_t sent = 0;
    int rc = -1, n;

    if (payq_lines_rewind(&r->in) != 0)
        return -1;
    payq_progress_phase(&r->prog, "publishing", kind_noun(r->o->kind), r->b.manifest.count);
    while (r->in.lineno < r->b.lines && (n = payq_lines_next(&r->in, &line, &len, &too_long)) > 0) {
        int what = payq_batch_render(&r->b, &dup_cursor, r->in.lineno, line, len, &body, id);
        if (what < 0)
            goto out;
        if (what > 0)
            continue;
        if (send_line(r, id, &body) != 0)
            goto out;
        if ((++sent & 255) == 0)
            tick(r);
    }
    if (payq_packer_flush(&r->pk) != 0)
        goto out;
    rc = payq_outbox_wait(r->ob);
out:
    tick(r);
    payq_buf_free(&body);
    struct payq_outbox_stats st;
    payq_outbox_stats(r->ob, &st);
    r->confirmed = st.items;
    r->messages = st.confirmed;
    return rc;
}

/* Publishes the manifest and waits for its confirm. 0 or -1. */
static int publish_manifest(struct run *r)
{
    struct payq_buf body = PAYQ_BUF_INIT;
    payq_msg_encode_manifest(&r->b.manifest, &body);
    /* It carries no transfer: 0 items keeps the progress count exact. */
    int rc = payq_outbox_send_items(r->ob, payq_msg_kind_routing_key(PAYQ_MSG_BATCH),
                                    r->b.manifest.batch_id, body.data, body.len, 0);
    if (rc == 0)
        rc = payq_outbox_wait(r->ob);
    payq_buf_free(&body);
    r->manifest_confirmed = rc == 0;
    return rc;
}

/* Appends s as a JSON string, replacing bytes that are not printable ASCII
 * (file names need not be UTF-8). */
static void json_ascii(struct payq_buf *out, const char *s)
{
    struct payq_buf tmp = PAYQ_BUF_INIT;
    for (; *s; s++)
        payq_buf_putc(&tmp, (*s >= 0x20 && *s < 0x7f) ? *s : '?');
    payq_buf_json_str(out, tmp.data ? tmp.data : "");
    payq_buf_free(&tmp);
}

static void print_json(const struct run *r, bool ok, const char *error)
{
    const struct payq_manifest *m = &r->b.manifest;
    double secs = (double)(payq_clock_mono_ms() - r->started_ms) / 1000.0;
    char num[PAYQ_MONEY_STR_MAX];
    struct payq_buf j = PAYQ_BUF_INIT;
    payq_buf_printf(&j, "{\"ok\":%s,\"kind\":\"%s\",\"file\":", ok ? "true" : "false",
                    kind_noun(r->o->kind));
    json_ascii(&j, r->o->path);
    payq_buf_printf(&j,
                    ",\"lines\":%llu,\"errors\":%llu,\"count\":%lld,\"duplicates\":%llu,"
                    "\"confirmed\":%llu,\"messages\":%llu",
                    (unsigned long long)r->b.lines, (unsigned long long)r->b.errors,
                    (long long)m->count, (unsigned long long)r->b.duplicates,
                    (unsigned long long)r->confirmed, (unsigned long long)r->messages);
    if (r->o->kind == PAYQ_BATCH_TRANSFERS)
        payq_buf_printf(&j, ",\"pack_max\":%u", (unsigned)r->pack_max);
    if (r->o->kind == PAYQ_BATCH_TRANSFERS && r->b.errors == 0) {
        payq_buf_printf(&j,
                        ",\"batch_id\":\"%s\",\"batch_id_generated\":%s,"
                        "\"business_date\":\"%s\",\"manifest_confirmed\":%s,\"totals\":{",
                        m->batch_id, r->b.batch_id_generated ? "true" : "false", m->business_date,
                        r->manifest_confirmed ? "true" : "false");
        for (size_t i = 0; i < m->ntotals; i++)
            payq_buf_printf(&j, "%s\"%s\":\"%s\"", i ? "," : "", m->totals[i].currency,
                            payq_money_format(m->totals[i].sum, num));
        payq_buf_putc(&j, '}');
    }
    struct payq_outbox_stats st = {0};
    if (r->ob)
        payq_outbox_stats(r->ob, &st);
    payq_buf_printf(&j,
                    ",\"publish_calls\":%llu,\"reconnects\":%llu,\"elapsed_s\":%.3f,"
                    "\"rate\":%.0f",
                    (unsigned long long)st.published, (unsigned long long)st.reconnects, secs,
                    secs > 0 ? (double)r->confirmed / secs : 0.0);
    if (error) {
        payq_buf_puts(&j, ",\"error\":");
        json_ascii(&j, error);
    }
    payq_buf_puts(&j, "}\n");
    fputs(j.data, stdout);
    payq_buf_free(&j);
}

static void print_human(const struct run *r)
{
    const struct payq_manifest *m = &r->b.manifest;
    double secs = (double)(payq_clock_mono_ms() - r->started_ms) / 1000.0;
    char num[PAYQ_MONEY_STR_MAX];
    printf("published %llu %s, all confirmed", (unsigned long long)r->confirmed,
           kind_noun(r->o->kind));
    if (r->b.duplicates)
        printf(" (%llu identical repeats published once)", (unsigned long long)r->b.duplicates);
    printf("\n");
    if (r->o->kind == PAYQ_BATCH_TRANSFERS) {
        printf("batch %s%s, business date %s, manifest confirmed\n", m->batch_id,
               r->b.batch_id_generated ? " (generated)" : "", m->business_date);
        for (size_t i = 0; i < m->ntotals; i++)
            printf("  total %s %s\n", m->totals[i].currency,
                   payq_money_format(m->totals[i].sum, num));
    }
    printf("elapsed %.2f s, %.0f %s/s in %llu broker message%s\n", secs,
           secs > 0 ? (double)r->confirmed / secs : 0.0, kind_noun(r->o->kind),
           (unsigned long long)r->messages, r->messages == 1 ? "" : "s");
}

/* An empty input is most often a failed upstream export: publishing an
 * empty batch and exiting 0 would look like success. */
static void refuse_empty(const struct run *r)
{
    const char *name = strcmp(r->o->path, "-") == 0 ? "standard input" : r->o->path;
    char why[64];
    snprintf(why, sizeof why, "no %s", kind_noun(r->o->kind));
    fprintf(stderr, "payq-producer: %s: %s (nothing was published; --allow-empty publishes it)\n",
            name, why);
    if (r->o->output == PAYQ_OUTPUT_JSON)
        print_json(r, false, why);
}

/* Pass 2 and the manifest; prints the outcome. Returns the exit code. */
static int publish_all(const struct payq_config *cfg, struct run *r)
{
    struct payq_amqp_target target = {
        .urls = cfg->amqp.url,
        .tls = &cfg->amqp.tls,
        .heartbeat_s = cfg->amqp.heartbeat_s,
        .connect_timeout_ms = cfg->amqp.connect_timeout_ms,
        .conn_name = "payq-producer publish",
    };
    struct payq_outbox_opts oo = {
        .target = &target,
        .window = cfg->producer.confirm_window,
        .retry_ms = FILE_RETRY_MS,
        .stall_ms = FILE_RETRY_MS,
        .resend_ms = FILE_RESEND_MS,
        .max_bytes = FILE_MAX_HELD,
        .stop_on_signal = true,
        .tick = tick,
        .tick_ctx = r,
    };
    r->ob = payq_outbox_new(&oo);
    if (!r->ob)
        return 3;
    payq_packer_init(&r->pk, r->ob, r->pack_max);
    int rc = publish_lines(r);
    if (rc == 0 && r->o->kind == PAYQ_BATCH_TRANSFERS)
        rc = publish_manifest(r);
    payq_progress_clear(&r->prog);
    const char *err = rc == 0 ? NULL : payq_outbox_error(r->ob);
    if (err && !*err)
        err = "the input file changed while it was being published";
    if (err)
        fprintf(stderr, "payq-producer: publishing failed: %s; %llu of %lld %s confirmed%s\n", err,
                (unsigned long long)r->confirmed, (long long)r->b.manifest.count,
                kind_noun(r->o->kind),
                r->o->kind == PAYQ_BATCH_TRANSFERS && !r->manifest_confirmed
                    ? ", manifest not confirmed"
                    : "");
    if (r->o->output == PAYQ_OUTPUT_JSON)
        print_json(r, rc == 0, err);
    else if (r->o->output == PAYQ_OUTPUT_HUMAN && rc == 0)
        print_human(r);
    payq_packer_free(&r->pk);
    payq_outbox_free(r->ob);
    return rc == 0 ? 0 : 3;
}

int payq_publish_file(const struct payq_config *cfg, const struct payq_publish_file_opts *o)
{
    struct run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.started_ms = payq_clock_mono_ms();
    r.pack_max = cfg->producer.pack_max;
    payq_progress_init(&r.prog, o->output == PAYQ_OUTPUT_HUMAN && isatty(STDERR_FILENO));
    if (payq_lines_open(&r.in, o->path, PAYQ_MSG_MAX_BODY,
                        (uint64_t)cfg->producer.spool_max_mib << 20) != 0)
        return 1;
    struct payq_batch_opts bo = {
        .kind = o->kind,
        .name = o->path,
        .batch_id = o->batch_id,
        .business_date = o->business_date,
    };
    int rc = payq_batch_check(&r.in, &bo, &r.prog, &r.b);
    if (rc == -2) {
        fprintf(stderr, "payq-producer: interrupted while validating; nothing was published\n");
        if (o->output == PAYQ_OUTPUT_JSON)
            print_json(&r, false, "interrupted while validating");
        rc = 3;
    } else if (rc != 0) {
        if (o->output == PAYQ_OUTPUT_JSON)
            print_json(&r, false, rc < 0 ? "could not read the input" : "invalid input");
        if (rc > 0)
            fprintf(stderr, "payq-producer: %llu invalid line%s in %s; nothing was published\n",
                    (unsigned long long)r.b.errors, r.b.errors == 1 ? "" : "s", o->path);
        rc = 1;
    } else if (r.b.lines == 0 && !o->allow_empty) {
        refuse_empty(&r);
        rc = 1;
    } else {
        rc = publish_all(cfg, &r);
    }
    payq_batch_free(&r.b);
    payq_lines_close(&r.in);
    return rc;
}
