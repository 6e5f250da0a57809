/* http_transfers: validate-all-then-publish for POST, ledger read for GET. */
#include "http_transfers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "json_items.h"
#include "json_scan.h"
#include "ledger_lookup.h"
#include "log.h"
#include "message.h"
#include "packer.h"
#include "replay.h"
#include "strmap.h"

/* One valid item: its canonical text is canon[off..off+len). */
struct item {
    char id[PAYQ_ID_MAX + 1];
    size_t off, len;
    bool repeat;          /* identical to an earlier item: not published again */
    uint8_t hash[32];     /* SHA-256 of the canonical text, as the worker hashes it */
    const char *conflict; /* the field differing from the ledger's row, or NULL */
};

struct post {
    struct payq_http_app *app;
    struct payq_json_item *raw;
    struct item *items;
    long n;
    struct payq_buf canon;
    struct payq_buf errors; /* JSON array elements, comma-separated */
    size_t nerrors;
    struct payq_strmap ids;
    size_t nconflicts; /* items the ledger holds with another payload */
};

static void add_error(struct post *p, long index, const char *field, const char *reason)
{
    payq_buf_printf(&p->errors, "%s{\"index\":%ld,\"field\":", p->nerrors ? "," : "", index);
    payq_buf_json_str(&p->errors, field);
    payq_buf_puts(&p->errors, ",\"reason\":");
    payq_buf_json_str(&p->errors, reason);
    payq_buf_putc(&p->errors, '}');
    p->nerrors++;
}

/* Validates item i. Returns 0 (valid or a schema problem recorded for the
 * 422), or -1 when the item is not even JSON (rep is then a 400). */
static int check_item(struct post *p, long i, const char *body, struct payq_http_reply *rep)
{
    const char *raw = body + p->raw[i].off;
    size_t len = p->raw[i].len;
    struct payq_msg_error err;
    /* The scan reports syntax errors with an empty field, limits (depth,
     * number length) with the path of the value: the first make the body
     * not JSON (400), the second are schema problems like any other (422). */
    if (payq_json_scan_check(raw, len, &err) != 0 && err.field[0] == '\0') {
        char detail[sizeof err.reason + 32];
        snprintf(detail, sizeof detail, "item %ld: %s", i, err.reason);
        payq_http_reply_error(rep, 400, "the body is not valid JSON", detail);
        return -1;
    }
    struct payq_transfer t;
    if (payq_msg_decode_transfer(raw, len, &t, &err) != 0) {
        add_error(p, i, err.field, err.reason);
        return 0;
    }
    struct item *it = &p->items[i];
    memcpy(it->id, t.id, sizeof it->id);
    it->off = p->canon.len;
    payq_msg_encode_transfer(&t, &p->canon);
    it->len = p->canon.len - it->off;
    payq_transfer_hash(&t, it->hash);
    payq_transfer_clear(&t);
    size_t j;
    if (!payq_strmap_get(&p->ids, it->id, &j)) {
        payq_strmap_put(&p->ids, it->id, (size_t)i);
        return 0;
    }
    const struct item *first = &p->items[j];
    if (first->len == it->len &&
        memcmp(p->canon.data + first->off, p->canon.data + it->off, it->len) == 0) {
        it->repeat = true;
        return 0;
    }
    char why[64];
    snprintf(why, sizeof why, "repeats the id of item %zu with different content", j);
    add_error(p, i, "id", why);
    return 0;
}

/* The longest a lookup, or a connection for it, may keep a 202 waiting
 * (it takes milliseconds).
 * The check is an early answer, not the guarantee (the worker's own
 * duplicate check is): a standby that is frozen or cut off, answering
 * nothing, must not hold intake, so past this the request is published
 * without it (chaos_intake_frozen_standby). */
#define REPLAY_WAIT_MS 500

/* The requests one lookup checks: one request published on its own, or
 * all the requests of a shared pack (one query for the whole pack). */
struct replay {
    struct post *const *posts;
    size_t nposts;
    char today[11]; /* the UTC day a transfer without business_date is booked on */
};

/* One ledger row, for every request of the lookup holding its id: a replay
 * (same hash) is left to be published as before; a different payload
 * marks the item's conflict and its request's. */
static void on_stored(void *ctx, const char *id, const struct payq_replay_stored *s)
{
    struct replay *rp = ctx;
    for (size_t k = 0; k < rp->nposts; k++) {
        struct post *p = rp->posts[k];
        size_t i;
        if (!payq_strmap_get(&p->ids, id, &i))
            continue;
        struct item *it = &p->items[i];
        struct payq_transfer t;
        struct payq_msg_error err;
        /* Decoding the canonical text again cannot fail: it was made from a
         * decoded transfer (message.h: decoding the encoding gives it back). */
        if (payq_msg_decode_transfer(p->canon.data + it->off, it->len, &t, &err) != 0)
            continue;
        it->conflict =
            payq_replay_field(&t, it->hash, t.business_date[0] ? t.business_date : rp->today, s);
        payq_transfer_clear(&t);
        if (it->conflict)
            p->nconflicts++;
    }
}

static void reply_conflict(struct post *p, struct payq_http_reply *rep)
{
    const struct item *first = NULL;
    struct payq_buf list = PAYQ_BUF_INIT;
    payq_buf_putc(&list, '[');
    for (long i = 0; i < p->n; i++) {
        const struct item *it = &p->items[i];
        if (!it->conflict || it->repeat)
            continue;
        payq_buf_printf(&list, "%s{\"index\":%ld,\"id\":", first ? "," : "", i);
        payq_buf_json_str(&list, it->id);
        payq_buf_printf(&list, ",\"field\":\"%s\"}", it->conflict);
        if (!first)
            first = it;
    }
    payq_buf_putc(&list, ']');
    char detail[256];
    snprintf(detail, sizeof detail,
             "the ledger already holds id %s with a different %s; nothing of this request was "
             "published",
             first->id, first->conflict);
    rep->status = 409;
    payq_buf_reset(&rep->body);
    payq_buf_puts(&rep->body, "{\"error\":\"conflict\",\"id\":");
    payq_buf_json_str(&rep->body, first->id);
    payq_buf_printf(&rep->body, ",\"field\":\"%s\",\"index\":%ld,\"detail\":", first->conflict,
                    (long)(first - p->items));
    payq_buf_json_str(&rep->body, detail);
    payq_buf_puts(&rep->body, ",\"conflicts\":");
    payq_buf_append(&rep->body, list.data, list.len);
    payq_buf_putc(&rep->body, '}');
    payq_buf_free(&list);
}

/* Looks every distinct id of the requests up in the ledger with one query
 * on th's read-only connection, marking conflicts (on_stored). Returns 0,
 * or -1 when the database cannot be read: then the requests are published
 * unchecked (the worker's own check still records a conflict), each
 * counted, since an outage of the standby must not stop intake. */
static int lookup_replays(struct payq_http_app *app, struct payq_http_thread *th,
                          struct post *const *posts, size_t nposts)
{
    /* Skipped during the pause that follows a failed read
     * (producer/read_pause.h). */
    struct payq_http_read rd;
    if (payq_http_read_begin(app, th, &rd) > 0) {
        payq_counter_add(app->metrics.replay_unchecked, nposts);
        return -1;
    }
    struct replay rp = {.posts = posts, .nposts = nposts};
    time_t wall = time(NULL);
    struct tm tm;
    gmtime_r(&wall, &tm);
    strftime(rp.today, sizeof rp.today, "%Y-%m-%d", &tm);
    size_t n = 0, cap = 0;
    for (size_t k = 0; k < nposts; k++)
        cap += (size_t)posts[k]->n;
    const char **ids = payq_xreallocarray(NULL, cap, sizeof *ids);
    for (size_t k = 0; k < nposts; k++)
        for (long i = 0; i < posts[k]->n; i++)
            if (!posts[k]->items[i].repeat)
                ids[n++] = posts[k]->items[i].id;
    enum payq_lookup r = PAYQ_LOOKUP_FAILED;
    /* One retry on a fresh connection, as for GET: the old one may predate
     * a failover. */
    for (int attempt = 0; attempt < 2 && r == PAYQ_LOOKUP_FAILED; attempt++) {
        PGconn *pg = payq_http_thread_pg(app, th, REPLAY_WAIT_MS);
        if (!pg)
            break;
        r = payq_ledger_lookup_many(pg, REPLAY_WAIT_MS, ids, n, on_stored, &rp);
        if (r == PAYQ_LOOKUP_FAILED || r == PAYQ_LOOKUP_ERROR)
            payq_http_thread_pg_drop(th);
    }
    free(ids);
    /* As for GETs: only a read that got no answer pauses the reads. */
    int64_t pause = payq_http_read_end(&rd, r != PAYQ_LOOKUP_FAILED);
    if (r != PAYQ_LOOKUP_FAILED && r != PAYQ_LOOKUP_ERROR)
        return 0;
    payq_counter_add(app->metrics.replay_unchecked, nposts);
    if (r == PAYQ_LOOKUP_FAILED)
        payq_log(PAYQ_LOG_WARN, "replay_check_skipped",
                 "the ledger could not be read: publishing without the replay check for %lld ms",
                 (long long)pause);
    else
        payq_log(PAYQ_LOG_WARN, "replay_check_skipped",
                 "the replay check's query failed (see pg_error): publishing without it");
    return -1;
}

/* The replay check of a request published on its own (too big to share a
 * pack, or group commit off). Returns 0 to publish, or -1 with rep set to
 * the 409 when any id is held with a different payload: the whole request
 * is refused. */
static int check_replays(struct post *p, struct payq_http_reply *rep)
{
    if (!p->app->cfg->producer.replay_check)
        return 0;
    struct post *const posts[1] = {p};
    if (lookup_replays(p->app, payq_http_thread_get(p->app), posts, 1) != 0 || !p->nconflicts)
        return 0;
    reply_conflict(p, rep);
    return -1;
}

void payq_http_replay_check_pack(struct payq_http_app *app, struct payq_http_thread *th,
                                 struct payq_gc_req *reqs, size_t n)
{
    struct post **posts = payq_xreallocarray(NULL, n, sizeof *posts);
    for (size_t k = 0; k < n; k++)
        posts[k] = reqs[k].arg;
    if (lookup_replays(app, th, posts, n) == 0)
        for (size_t k = 0; k < n; k++)
            reqs[k].refused = posts[k]->nconflicts > 0;
    free(posts);
}

static void reply_unavailable(struct payq_http_reply *rep, const char *why)
{
    char detail[512];
    snprintf(detail, sizeof detail,
             "%s; no transfer of this request was accepted (some may still be booked): "
             "retry the request, ids make retries safe",
             why);
    payq_http_reply_error(rep, 503, "the broker is unavailable", detail);
}

/* True when the request's items fit one shared pack of the group commit. */
static bool fits_group(const struct post *p)
{
    size_t n = 0, bytes = 0;
    for (long i = 0; i < p->n; i++)
        if (!p->items[i].repeat) {
            n++;
            bytes += p->items[i].len;
        }
    return p->app->gc && payq_gc_fits(p->app->gc, n, bytes);
}

/* Hands the request's items to the group commit, whose publisher checks
 * replays for its whole pack at once (http_group.c). Returns 0
 * (confirmed), or -1 with rep set to the 409 or the 503. */
static int publish_grouped(struct post *p, struct payq_http_reply *rep)
{
    struct payq_gc_item *gi = payq_xreallocarray(NULL, (size_t)p->n, sizeof *gi);
    size_t n = 0;
    for (long i = 0; i < p->n; i++)
        if (!p->items[i].repeat)
            gi[n++] = (struct payq_gc_item){p->items[i].id, p->canon.data + p->items[i].off,
                                            p->items[i].len};
    char why[256];
    int rc = payq_gc_submit(p->app->gc, gi, n, p, why, sizeof why);
    free(gi);
    if (rc == 1)
        reply_conflict(p, rep);
    else if (rc != 0)
        reply_unavailable(rep, why);
    return rc == 0 ? 0 : -1;
}

/* Publishes a request on its own, in packs of producer.pack_max, after its
 * own replay check, and waits for the broker's confirms. Returns 0, or -1
 * with rep set to the 409 or the 503. */
static int publish_alone(struct post *p, struct payq_http_reply *rep)
{
    if (check_replays(p, rep) != 0)
        return -1;
    struct payq_http_thread *th = payq_http_thread_get(p->app);
    struct payq_outbox_stats before, after;
    struct payq_packer pk;
    pthread_mutex_lock(&th->outbox_lock);
    payq_outbox_stats(th->outbox, &before);
    payq_packer_init(&pk, th->outbox, p->app->cfg->producer.pack_max);
    int rc = 0;
    for (long i = 0; rc == 0 && i < p->n; i++) {
        const struct item *it = &p->items[i];
        if (!it->repeat)
            rc = payq_packer_add(&pk, it->id, p->canon.data + it->off, it->len);
    }
    if (rc == 0)
        rc = payq_packer_flush(&pk);
    payq_packer_free(&pk);
    if (rc == 0)
        rc = payq_outbox_wait(th->outbox);
    if (rc != 0) {
        reply_unavailable(rep, payq_outbox_error(th->outbox));
        payq_outbox_reset(th->outbox);
    }
    payq_outbox_stats(th->outbox, &after);
    pthread_mutex_unlock(&th->outbox_lock);
    payq_http_metrics_outbox(&p->app->metrics, &before, &after);
    return rc;
}

static void reply_accepted(struct post *p, struct payq_http_reply *rep)
{
    rep->status = 202;
    payq_buf_reset(&rep->body);
    payq_buf_puts(&rep->body, "{\"accepted\":[");
    bool first = true;
    for (long i = 0; i < p->n; i++) {
        if (p->items[i].repeat)
            continue;
        if (!first)
            payq_buf_putc(&rep->body, ',');
        payq_buf_json_str(&rep->body, p->items[i].id);
        first = false;
    }
    payq_buf_puts(&rep->body, "]}");
}

/* Splits the body; on failure sets the 400 and returns -1. */
static int split(struct post *p, const char *body, size_t len, struct payq_http_reply *rep)
{
    size_t max = (size_t)p->app->cfg->producer.max_batch_items;
    const char *why;
    bool is_array;
    p->raw = payq_xreallocarray(NULL, max, sizeof *p->raw);
    p->n = payq_json_items_split(body, len, max, p->raw, &is_array, &why);
    if (p->n > 0)
        return 0;
    char detail[128];
    snprintf(detail, sizeof detail, "send one transfer object or an array of 1 to %zu", max);
    payq_http_reply_error(rep, 400, why, detail);
    return -1;
}

void payq_http_post_transfers(struct payq_http_app *app, const char *body, size_t len,
                              struct payq_http_reply *rep)
{
    struct post p;
    memset(&p, 0, sizeof p);
    p.app = app;
    if (split(&p, body, len, rep) != 0)
        goto out;
    p.items = payq_xcalloc((size_t)p.n, sizeof *p.items);
    payq_strmap_reset(&p.ids, (size_t)p.n);
    for (long i = 0; i < p.n; i++)
        if (check_item(&p, i, body, rep) != 0)
            goto out;
    if (p.nerrors) {
        rep->status = 422;
        payq_buf_reset(&rep->body);
        payq_buf_puts(&rep->body, "{\"errors\":[");
        payq_buf_append(&rep->body, p.errors.data, p.errors.len);
        payq_buf_puts(&rep->body, "]}");
        goto out;
    }
    if ((fits_group(&p) ? publish_grouped(&p, rep) : publish_alone(&p, rep)) == 0)
        reply_accepted(&p, rep);
out:
    payq_strmap_free(&p.ids);
    payq_buf_free(&p.canon);
    payq_buf_free(&p.errors);
    free(p.items);
    free(p.raw);
}
