/* payq-worker: drains payq.transfers into the ledger. Each loop takes a
 * batch of deliveries, applies it in one PostgreSQL transaction whose COMMIT
 * the synchronous standby holds (commit.h; the next batch is taken while that
 * COMMIT waits, collect_meanwhile), routes undecodable messages to
 * payq.dead (confirmed), publishes its outcome events, and acks the batch
 * once those are confirmed too: after the next batch's COMMIT, so the
 * broker's confirm round trip overlaps the database's work (settle_held).
 * Without its database it holds no deliveries (ensure_pg). Start as many
 * as you like, anywhere: they compete for messages. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "backoff.h"
#include "batch.h"
#include "broker.h"
#include "clock.h"
#include "commit.h"
#include "config.h"
#include "consumer.h"
#include "events.h"
#include "ledger.h"
#include "log.h"
#include "outbox.h"
#include "pg.h"
#include "signals.h"
#include "wmetrics.h"

/* Dead letters: how long to keep reconnecting, and to wait for a confirm,
 * before leaving the batch unacked to come back later. */
#define DEAD_RETRY_MS 30000
#define DEAD_STALL_MS 10000

struct worker {
    struct payq_config cfg;
    struct payq_amqp_target target;
    struct payq_consumer *consumer;
    struct payq_outbox *dead_out;   /* to payq.dlx; NULL until the first dead letter */
    struct payq_outbox *result_out; /* to payq.results; NULL until the first event */
    PGconn *pg;
    struct payq_commit_watch watch; /* notices of pg (commit.h) */
    char id[96];                    /* host:pid, in the batch journal */
    uint64_t txn_seq;               /* batch transactions begun, for their journal ids */
    struct payq_ledger *ledger;
    struct payq_wbatch batch;
    /* The previous batch: committed, its events sent, its ack waiting for
     * their confirms (settle_held). */
    bool held;
    struct payq_consumer_mark held_mark;
    /* The next batch, taken and decoded while the current one's COMMIT
     * waited (collect_meanwhile); void once its connection is gone. */
    struct payq_wbatch next;
    struct payq_consumer_mark next_mark;
    bool next_failed; /* taking it lost the broker connection */
    struct payq_wmsg **normal, **suspect;
    size_t ptr_cap;
    struct payq_wmetrics m;
    struct MHD_Daemon *mhd;
    int exit_when_idle_ms; /* 0 = run until signalled */
};

static void usage(FILE *f)
{
    fputs("usage: payq-worker [--config FILE] [--metrics-listen HOST:PORT]\n"
          "                   [--exit-when-idle MS] [--help]\n"
          "Consumes payq.transfers and applies batches to the ledger.\n"
          "  --config FILE            configuration (default config/payq.yaml)\n"
          "  --metrics-listen H:P     serve Prometheus metrics at http://H:P/metrics\n"
          "  --exit-when-idle MS      exit 0 once no message arrived for MS milliseconds\n"
          "Environment: PAYQ_AMQP_URL, PAYQ_PG_CONNINFO override the config.\n",
          f);
}

/* librabbitmq-c heartbeats a connection only from inside its own calls,
 * and RabbitMQ closes one that sent nothing for two heartbeat intervals.
 * Whenever the worker waited on the database longer than that (a lock, a
 * COMMIT waiting for the standby through a failover, a retry's backoff), its
 * connections were closed: its deliveries went to other workers while it
 * still booked them, and its outcome events' confirms were lost with the
 * publishing connection, so it gave the next batch back too. So while it
 * waits there it sends the heartbeats itself, on each connection silent for
 * half an interval (payq_amqp_heartbeat paces them): the database waits'
 * tick (payq_pg_set_wait_tick), the retries' backoff and the outboxes'
 * waits for confirms (their tick) call this, and so does the idle loop, for
 * the publishing connections, which sit unused while no delivery comes. */
static void keep_broker(void *arg)
{
    struct worker *w = arg;
    payq_consumer_heartbeat(w->consumer);
    payq_outbox_heartbeat(w->dead_out);
    payq_outbox_heartbeat(w->result_out);
}

/* Every backoff of the worker's heartbeats its broker connections while it
 * sleeps (keep_broker): a database outage or a broker node lost can keep
 * it in one for many heartbeat intervals. */
static void backoff_init(struct worker *w, struct payq_backoff *bo, int first_ms)
{
    payq_backoff_init(bo, first_ms, w->cfg.worker.reconnect_max_ms);
    bo->tick = keep_broker;
    bo->tick_ctx = w;
}

static PGconn *connect_pg(struct worker *w)
{
    PGconn *conn = payq_pg_connect(w->cfg.pg.conninfo, "payq-worker");
    if (!conn)
        return NULL;
    payq_commit_watch(conn, &w->watch);
    char sql[96];
    snprintf(sql, sizeof sql, "SET statement_timeout = %d", w->cfg.pg.statement_timeout_ms);
    if (payq_pg_exec(conn, sql, "set statement_timeout") != PAYQ_PG_OK) {
        PQfinish(conn);
        return NULL;
    }
    payq_ledger_new_session(w->ledger);
    return conn;
}

enum pg_wait { PG_READY, PG_GAVE_BACK, PG_STOPPED };

/* Connects to the read-write PostgreSQL node, retrying with backoff. A
 * worker that cannot reach the database (down, or refusing us: a wrong
 * password is retried too, an operator may fix it) must not sit on
 * deliveries that healthy workers could book: on the first failed attempt it
 * gives every unacked delivery back to the broker, and consumes again only
 * once the database answers (PG_GAVE_BACK: the batch in hand is void). Each
 * attempt is bounded by the conninfo's connect_timeout; a stop request ends
 * the wait (PG_STOPPED). */
static enum pg_wait ensure_pg(struct worker *w)
{
    struct payq_backoff bo;
    backoff_init(w, &bo, 50);
    bool gave_back = false;
    while (!w->pg) {
        if (payq_signals_stop_requested())
            return PG_STOPPED;
        w->pg = connect_pg(w);
        if (w->pg)
            break;
        payq_counter_add(w->m.pg_reconnects, 1);
        if (!gave_back && w->consumer) {
            payq_consumer_release(w->consumer);
            payq_metrics_set_ready(w->m.reg, 0); /* /readyz: not consuming */
            payq_log(PAYQ_LOG_WARN, "deliveries_given_back",
                     "database unreachable: unacked deliveries returned to the broker; "
                     "consuming again once it answers");
        }
        gave_back = true;
        if (payq_backoff_sleep(&bo, payq_signals_stop_requested) != 0)
            return PG_STOPPED;
    }
    return gave_back && w->consumer ? PG_GAVE_BACK : PG_READY;
}

enum commit_result {
    COMMIT_DONE,      /* committed, and the synchronous standby holds it */
    COMMIT_REFUSED,   /* the database refuses the batch: a retry will not help */
    COMMIT_ABANDONED, /* deliveries given back or stop requested: do not ack */
};

/* Takes a batch from the broker into b (empty), sized by worker.* (a
 * bigger one under a backlog, batch_size.h). */
static int collect(struct worker *w, struct payq_wbatch *b, int first_wait_ms)
{
    const struct payq_batch_size size = {w->cfg.worker.batch_max, w->cfg.worker.batch_wait_ms,
                                         w->cfg.worker.backlog_batch_max,
                                         w->cfg.worker.backlog_after_ms};
    return payq_consumer_collect(w->consumer, b, &size, first_wait_ms);
}

/* While a batch's COMMIT waits for the synchronous standby, the worker
 * takes and decodes the next batch: otherwise it would wait for that COMMIT
 * and then for the broker and the decoder. Only if the first delivery has
 * already arrived (no first wait), so that at low load the COMMIT's own batch
 * is not held up. Nothing here depends on the COMMIT's outcome, which is not
 * known yet: if it fails, the batch is retried and the next one waits; its
 * deliveries are acked only after their own COMMIT. */
static void collect_meanwhile(void *arg)
{
    struct worker *w = arg;
    if (w->next.n > 0 || w->next_failed || payq_signals_stop_requested())
        return;
    if (collect(w, &w->next, 0) != 0) {
        payq_wbatch_clear(&w->next); /* the broker requeued them */
        w->next_failed = true;
        return;
    }
    if (w->next.n > 0) {
        w->next_mark = payq_consumer_mark(w->consumer, 0);
        payq_wbatch_decode(&w->next);
        payq_counter_add(w->m.taken_during_commit, 1);
    }
}

/* Drops the batch collect_meanwhile took: its broker connection is gone
 * (or about to be), and the broker redelivers its deliveries. */
static void void_next(struct worker *w)
{
    if (w->next.n > 0)
        payq_log(PAYQ_LOG_INFO, "next_batch_void",
                 "the %zu deliveries taken during the last COMMIT leave with their broker "
                 "connection: the broker redelivers them",
                 w->next.n);
    payq_wbatch_clear(&w->next);
    w->next_failed = false;
}

/* Moves the batch collect_meanwhile took into w->batch (empty). False when
 * there is none, or its connection has gone since (ensure_pg gave the
 * deliveries back, or a reconnect). */
static bool take_next(struct worker *w)
{
    if (w->next.n == 0)
        return false;
    if (!payq_consumer_mark_live(w->consumer, w->next_mark)) {
        void_next(w);
        return false;
    }
    struct payq_wbatch empty = w->batch;
    w->batch = w->next;
    w->next = empty;
    return true;
}

/* Applies msgs in one transaction, retrying through deadlocks, lost
 * connections, unknown COMMIT outcomes and failovers until it commits or
 * fails for a reason a retry cannot fix. Every attempt writes a journal row
 * under one batch id. With `overlap`, the next batch is taken while the
 * COMMIT waits (collect_meanwhile). */
static enum commit_result commit_with_retry(struct worker *w, struct payq_wmsg **msgs, size_t n,
                                            bool overlap)
{
    struct payq_commit_meanwhile meanwhile = {overlap ? collect_meanwhile : NULL, w};
    struct payq_backoff bo;
    backoff_init(w, &bo, 20);
    char batch_id[128];
    snprintf(batch_id, sizeof batch_id, "%s:%llu", w->id, (unsigned long long)++w->txn_seq);
    for (int attempt = 1;; attempt++) {
        if (ensure_pg(w) != PG_READY)
            return COMMIT_ABANDONED;
        struct payq_journal j = {w->id, batch_id, attempt};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        enum payq_pg_fault f =
            payq_ledger_apply(w->ledger, w->pg, &w->watch, &j, msgs, n, meanwhile);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (f == PAYQ_PG_OK) {
            payq_histogram_observe(w->m.commit_ms, (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                                                       (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
            return COMMIT_DONE;
        }
        if (f == PAYQ_PG_FATAL)
            return COMMIT_REFUSED;
        if (f == PAYQ_PG_RETRY && payq_ledger_retry_now(w->ledger)) {
            payq_counter_add(w->m.rechecks, 1);
            continue; /* an id booked already: nothing to wait for */
        }
        payq_counter_add(w->m.retries, 1);
        if (f == PAYQ_PG_RECONNECT) {
            PQfinish(w->pg);
            w->pg = NULL;
        }
        /* Stopping mid-retry is safe: nothing is acked, the broker redelivers
         * the batch, and the journal row makes its COMMIT wait for the standby. */
        if (payq_backoff_sleep(&bo, payq_signals_stop_requested) != 0)
            return COMMIT_ABANDONED;
    }
}

/* A message the ledger refuses even on its own (a bug or a value the
 * database cannot store) becomes a dead letter rather than blocking the
 * queue. Returns 0, or -1 if even the dead-letter record failed or the
 * batch was abandoned. */
static int commit_alone(struct worker *w, struct payq_wmsg *m)
{
    enum commit_result r = commit_with_retry(w, &m, 1, false);
    if (r != COMMIT_REFUSED)
        return r == COMMIT_DONE ? 0 : -1;
    if (m->kind == WMSG_TRANSFER)
        payq_transfer_clear(&m->u.transfer);
    m->kind = WMSG_INVALID;
    snprintf(m->err.field, sizeof m->err.field, "%s", "");
    snprintf(m->err.reason, sizeof m->err.reason, "%s", "refused by the ledger (see worker log)");
    payq_sha256(m->body, m->body_len, m->hash);
    return commit_with_retry(w, &m, 1, false) == COMMIT_DONE ? 0 : -1;
}

/* Publishes every dead letter of the batch to payq.dlx and waits for the
 * broker's confirms; the outbox reconnects and republishes until they are
 * safe. On failure the batch stays unacked and comes back. */
static int publish_dead(struct worker *w)
{
    if (!w->dead_out) {
        struct payq_outbox_opts oo = {.target = &w->target,
                                      .exchange = PAYQ_EXCHANGE_DLX,
                                      .window = 1000,
                                      .retry_ms = DEAD_RETRY_MS,
                                      .stall_ms = DEAD_STALL_MS,
                                      .tick = keep_broker,
                                      .tick_ctx = w};
        w->dead_out = payq_outbox_new(&oo);
    }
    int rc = 0;
    for (size_t i = 0; i < w->batch.n && rc == 0; i++) {
        struct payq_wmsg *m = &w->batch.msgs[i];
        if (m->outcome != WOUT_DEAD)
            continue;
        char id[PAYQ_ID_MAX + 1];
        struct payq_header hdr[] = {{PAYQ_HEADER_DEAD_REASON, m->err.reason},
                                    {PAYQ_HEADER_DEAD_FIELD, m->err.field}};
        struct payq_outbox_msg om = {
            .routing_key = m->routing_key,
            .id = payq_wmsg_dead_id(m, id), /* the publisher's message_id when the body has none */
            .body = m->body,
            .len = m->body_len,
            .timestamp_ms = m->timestamp_s * 1000,
            .headers = hdr,
            .n_headers = 2,
        };
        rc = payq_outbox_put(w->dead_out, &om);
    }
    if (rc == 0)
        rc = payq_outbox_wait(w->dead_out);
    if (rc != 0) /* the outbox keeps them: await_outboxes */
        payq_log(PAYQ_LOG_ERROR, "dead_letter_failed", "%s", payq_outbox_error(w->dead_out));
    return rc;
}

/* Outcome events: the queue is the outbox. The batch's events are
 * published after its COMMIT (which the synchronous standby holds), and
 * the batch is acked only once they are confirmed (settle_held). A worker killed in between leaves
 * the batch unacked: it comes back, its ids are booked, and whoever takes it re-emits the events
 * from the stored rows, byte for byte (events.c builds them from the rows, never from this
 * process's memory or clock). An event is therefore published at least once for every committed
 * outcome, and never for one that might roll back. On failure: no ack (-1). */
static int publish_results(struct worker *w)
{
    if (!w->result_out) {
        struct payq_outbox_opts oo = {.target = &w->target,
                                      .exchange = PAYQ_EXCHANGE_RESULTS,
                                      .window = 1000,
                                      .retry_ms = DEAD_RETRY_MS,
                                      .stall_ms = DEAD_STALL_MS,
                                      .tick = keep_broker,
                                      .tick_ctx = w};
        w->result_out = payq_outbox_new(&oo);
    }
    if (!w->pg)
        return -1; /* lost after COMMIT: the batch comes back and re-emits */
    size_t published = 0;
    enum payq_pg_fault f = payq_events_publish(w->pg, w->result_out, w->cfg.worker.result_pack_max,
                                               w->batch.msgs, w->batch.n, &published);
    if (f == PAYQ_PG_RECONNECT) {
        PQfinish(w->pg);
        w->pg = NULL;
    }
    if (f != PAYQ_PG_OK)
        return -1;
    payq_counter_add(w->m.result_events, published);
    return 0;
}

/* Acks the held batch once every outcome event sent so far is confirmed
 * (its own; the current batch's are sent only after this). A held batch
 * whose connection is gone needs nothing: the broker has requeued its
 * deliveries, and whoever takes them re-emits the events. Returns 0, or -1
 * when the events or the ack failed (the batch comes back). */
static int settle_held(struct worker *w)
{
    if (!w->held)
        return 0;
    w->held = false;
    if (w->result_out && payq_outbox_wait(w->result_out) != 0) {
        payq_events_failed(w->result_out, "confirm");
        return -1;
    }
    return payq_consumer_ack_mark(w->consumer, w->held_mark) < 0 ? -1 : 0;
}

/* Broker messages in b: a pack's transfers share its delivery tag. */
static size_t deliveries(const struct payq_wbatch *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++)
        n += i == 0 || b->msgs[i].delivery_tag != b->msgs[i - 1].delivery_tag;
    return n;
}

static void ensure_ptr_cap(struct worker *w, size_t n)
{
    if (n <= w->ptr_cap)
        return;
    w->ptr_cap = n * 2;
    w->normal = payq_xreallocarray(w->normal, w->ptr_cap, sizeof *w->normal);
    w->suspect = payq_xreallocarray(w->suspect, w->ptr_cap, sizeof *w->suspect);
}

static void log_batch(const struct worker *w, size_t nn, size_t ns)
{
    if (!payq_log_enabled(PAYQ_LOG_DEBUG))
        return;
    struct payq_log_rec r;
    payq_log_begin(&r, PAYQ_LOG_DEBUG, "batch_committed");
    payq_log_int(&r, "size", (long long)w->batch.n);
    payq_log_int(&r, "batched", (long long)nn);
    payq_log_int(&r, "solo", (long long)ns);
    payq_log_end(&r);
}

/* Applies the collected and decoded batch and acks it, or holds it until its outcome
 * events are confirmed (then the previous held one is acked first: its
 * events had this batch's transaction time to be confirmed). Messages that the broker has
 * delivered several times already may be what crashed a worker: they are
 * applied one per transaction after the rest, so one poison message cannot
 * take a whole batch down with it again and again. Returns 0 when acked or
 * held, -1 when the AMQP side failed (the batch will be redelivered). */
static int process_batch(struct worker *w)
{
    struct payq_wbatch *b = &w->batch;
    ensure_ptr_cap(w, b->n);
    size_t nn = 0, ns = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct payq_wmsg *m = &b->msgs[i];
        if (m->delivery_count >= w->cfg.worker.solo_after_deliveries)
            w->suspect[ns++] = m;
        else
            w->normal[nn++] = m;
    }
    enum commit_result r = nn > 0 ? commit_with_retry(w, w->normal, nn, true) : COMMIT_DONE;
    if (r == COMMIT_ABANDONED)
        return -1;
    if (r == COMMIT_REFUSED) {
        /* Something in the batch is refused by the database: find it. */
        payq_log(PAYQ_LOG_WARN, "batch_split", "applying %zu messages one at a time", nn);
        for (size_t i = 0; i < nn; i++)
            w->suspect[ns++] = w->normal[i];
        nn = 0;
    }
    for (size_t i = 0; i < ns; i++) {
        if (commit_alone(w, w->suspect[i]) != 0)
            return -1; /* leave it unacked; the delivery limit will dead-letter it */
    }
    bool any_dead = false;
    for (size_t i = 0; i < b->n; i++)
        any_dead |= b->msgs[i].outcome == WOUT_DEAD;
    if (any_dead && publish_dead(w) != 0)
        return -1;
    if (settle_held(w) != 0)
        return -1;
    uint64_t last = b->msgs[b->n - 1].delivery_tag;
    if (w->cfg.worker.result_events) {
        if (publish_results(w) != 0)
            return -1;
        w->held = true;
        w->held_mark = payq_consumer_mark(w->consumer, last);
        /* Holding the batch must leave the broker room to deliver the next
         * one (the prefetch counts messages): a batch of one-transfer
         * messages may fill the window, and is acked now instead. */
        if (deliveries(b) * 2 > (size_t)w->cfg.worker.prefetch && settle_held(w) != 0)
            return -1;
    } else if (payq_consumer_ack_upto(w->consumer, last) != 0) {
        return -1;
    }
    payq_wmetrics_count(&w->m, w->normal, nn);
    payq_wmetrics_count(&w->m, w->suspect, ns);
    payq_counter_add(w->m.batches, 1);
    payq_histogram_observe(w->m.batch_size, (double)b->n);
    if (b->backlog)
        payq_counter_add(w->m.backlog_batches, 1);
    log_batch(w, nn, ns);
    return 0;
}

static bool outbox_failed(const struct payq_outbox *o)
{
    return o && payq_outbox_error(o)[0] != '\0';
}

/* Gets every message the outbox holds confirmed, publishing them again
 * with backoff for as long as it takes. 0, or -1 when a stop was
 * requested (they are then lost with the process: see await_outboxes). */
static int drain_outbox(struct worker *w, struct payq_outbox *o, const char *what)
{
    struct payq_backoff bo;
    backoff_init(w, &bo, 100);
    payq_outbox_stop_on_signal(o, true);
    int rc = 0;
    while (rc == 0 && outbox_failed(o)) {
        payq_outbox_retry(o);
        if (payq_outbox_wait(o) == 0)
            break;
        payq_log(PAYQ_LOG_WARN, "outbox_retry", "%s still not confirmed: %s", what,
                 payq_outbox_error(o));
        rc = payq_backoff_sleep(&bo, payq_signals_stop_requested);
    }
    payq_outbox_stop_on_signal(o, false);
    return rc != 0 || outbox_failed(o) ? -1 : 0;
}

/* Outcome events or dead letters the broker would not confirm (a results
 * queue at its length limit, a node still recovering a long queue, a lost
 * binding): giving the batch back and consuming again at once would bring
 * it back, fail the same way and give it back again, each time counting a
 * delivery, until the queue's delivery limit (20) dead-lettered healthy,
 * booked or never-tried transfers in a few minutes. So, as when the
 * database is gone (ensure_pg), the worker gives its deliveries back once
 * and consumes again only when the broker has confirmed every message its
 * outboxes hold. The batches given back come back with their ids booked
 * and re-emit their events (duplicates, byte-identical). Returns 0, or -1
 * when a stop was requested meanwhile. */
static int await_outboxes(struct worker *w)
{
    if (!outbox_failed(w->result_out) && !outbox_failed(w->dead_out))
        return 0;
    w->held = false;
    payq_consumer_release(w->consumer);
    payq_metrics_set_ready(w->m.reg, 0); /* /readyz: not consuming */
    payq_log(PAYQ_LOG_WARN, "deliveries_given_back",
             "the broker did not confirm outcome events or dead letters: unacked deliveries "
             "returned to the broker; consuming again once it confirms them");
    if (outbox_failed(w->result_out) && drain_outbox(w, w->result_out, "outcome events") != 0)
        return -1;
    if (outbox_failed(w->dead_out) && drain_outbox(w, w->dead_out, "dead letters") != 0)
        return -1;
    payq_log(PAYQ_LOG_INFO, "outbox_confirmed", "the broker confirmed what it had refused");
    return 0;
}

static void reconnect_consumer(struct worker *w)
{
    void_next(w);
    struct payq_backoff bo;
    backoff_init(w, &bo, 100);
    if (payq_signals_stop_requested())
        return; /* run() still settles a held batch whose connection lives */
    if (await_outboxes(w) != 0)
        return;
    payq_counter_add(w->m.amqp_reconnects, 1);
    payq_metrics_set_ready(w->m.reg, 0); /* /readyz: not consuming */
    while (payq_consumer_reconnect(w->consumer) != 0)
        if (payq_backoff_sleep(&bo, payq_signals_stop_requested) != 0)
            return;
    payq_metrics_set_ready(w->m.reg, 1);
    payq_log(PAYQ_LOG_INFO, "amqp_reconnected", "consuming again");
}

static int run(struct worker *w)
{
    int64_t idle_since = payq_clock_mono_ms();
    while (!payq_signals_stop_requested()) {
        payq_wbatch_clear(&w->batch);
        if (w->next_failed) {
            reconnect_consumer(w);
            continue;
        }
        /* With a batch held, only a short wait: when nothing more comes,
         * its ack should not wait for the next delivery. */
        int first_wait = w->held ? w->cfg.worker.batch_wait_ms : 250;
        if (!take_next(w)) {
            if (collect(w, &w->batch, first_wait) != 0) {
                reconnect_consumer(w);
                continue;
            }
            payq_wbatch_decode(&w->batch);
        }
        if (w->batch.n == 0) {
            if (settle_held(w) != 0)
                reconnect_consumer(w);
            keep_broker(w); /* the outboxes: idle while nothing comes */
            if (w->exit_when_idle_ms && payq_clock_mono_ms() - idle_since >= w->exit_when_idle_ms)
                break;
            continue;
        }
        if (process_batch(w) != 0)
            reconnect_consumer(w);
        idle_since = payq_clock_mono_ms();
    }
    if (settle_held(w) != 0)
        payq_log(PAYQ_LOG_WARN, "held_batch_unacked",
                 "stopping with the last batch unacked: it comes back, its events are re-emitted");
    payq_wbatch_clear(&w->batch);
    void_next(w);
    return 0;
}

/* --exit-when-idle: whole milliseconds, 1 to 86400000 (a day). */
static int parse_idle_ms(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > 86400000) {
        fprintf(stderr,
                "payq-worker: invalid --exit-when-idle \"%s\": must be whole milliseconds, 1 to "
                "86400000\n",
                s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_args(struct worker *w, int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"metrics-listen", required_argument, NULL, 'm'},
                                         {"exit-when-idle", required_argument, NULL, 'i'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = "config/payq.yaml";
    const char *metrics = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:m:i:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'm':
            metrics = optarg;
            break;
        case 'i':
            if (parse_idle_ms(optarg, &w->exit_when_idle_ms) != 0)
                return -1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "payq-worker: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    char err[512];
    if (access(config, R_OK) != 0 && strcmp(config, "config/payq.yaml") == 0)
        config = NULL; /* the default file is optional; an explicit one is not */
    if (payq_config_load(&w->cfg, config, err, sizeof err) != 0) {
        fprintf(stderr, "payq-worker: %s\n", err);
        return -1;
    }
    if (metrics)
        snprintf(w->cfg.worker.metrics_listen, sizeof w->cfg.worker.metrics_listen, "%s", metrics);
    return 0;
}

/* Each batch allocates and frees some megabytes (its messages, parameter
 * arrays, libpq's results). With glibc's defaults the freed top of the heap
 * goes back to the kernel and large blocks are mmap'ed and unmapped, so the
 * next batch page-faults all of it in again: a quarter of the worker's CPU
 * in perf. Keeping it costs little: peak RSS stayed at about 28 MiB (35
 * with the next batch taken during the COMMIT). */
static void keep_batch_memory(void)
{
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

int main(int argc, char **argv)
{
    static struct worker w;
    keep_batch_memory();
    payq_log_init("worker", PAYQ_LOG_INFO);
    if (parse_args(&w, argc, argv) != 0)
        return 2;
    enum payq_log_level lvl;
    if (payq_log_level_parse(w.cfg.log.level, &lvl) == 0)
        payq_log_set_level(lvl);
    payq_signals_install();
    payq_wmetrics_init(&w.m);
    /* The server ends every statement at statement_timeout, a COMMIT's wait
     * for the synchronous standby too (with a WARNING: commit.h). A primary
     * that has still not answered some seconds later is frozen or cut off;
     * Patroni promotes another meanwhile, and the worker must not wait for
     * the lost one: the connection is given up and the batch retried on
     * whichever node the conninfo finds read-write, as after any unknown
     * outcome (chaos_pg_freeze). */
    if (w.cfg.pg.statement_timeout_ms > 0)
        payq_pg_set_response_timeout(w.cfg.pg.statement_timeout_ms + PAYQ_PG_ANSWER_GRACE_MS);
    w.target = (struct payq_amqp_target){w.cfg.amqp.url, &w.cfg.amqp.tls, w.cfg.amqp.heartbeat_s,
                                         w.cfg.amqp.connect_timeout_ms, "payq-worker"};
    if (w.cfg.amqp.heartbeat_s > 0)
        payq_pg_set_wait_tick(keep_broker, &w,
                              PAYQ_AMQP_HEARTBEAT_OFFER_MS(w.cfg.amqp.heartbeat_s));
    int rc = 1;
    if (w.cfg.worker.metrics_listen[0] &&
        payq_metrics_serve(w.m.reg, w.cfg.worker.metrics_listen, &w.mhd) != 0)
        goto out;
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    snprintf(w.id, sizeof w.id, "%s:%ld", host, (long)getpid());
    w.ledger = payq_ledger_new();
    payq_ledger_cache_accounts(w.ledger, (size_t)w.cfg.worker.account_cache_max);
    payq_ledger_return_events(w.ledger, w.cfg.worker.result_events);
    /* The database first: a worker that cannot book takes no deliveries. */
    if (ensure_pg(&w) == PG_STOPPED) {
        rc = 0;
        goto out;
    }
    if (payq_consumer_open(&w.target, w.cfg.worker.prefetch, &w.consumer) != 0)
        goto out;
    payq_metrics_set_ready(w.m.reg, 1);
    payq_log(PAYQ_LOG_INFO, "worker_started",
             "batch_max=%d batch_wait_ms=%d backlog_batch_max=%d backlog_after_ms=%d "
             "prefetch=%d account_cache_max=%d",
             w.cfg.worker.batch_max, w.cfg.worker.batch_wait_ms, w.cfg.worker.backlog_batch_max,
             w.cfg.worker.backlog_after_ms, w.cfg.worker.prefetch, w.cfg.worker.account_cache_max);
    rc = run(&w);
    unsigned long long hits, misses;
    payq_ledger_cache_stats(w.ledger, &hits, &misses);
    payq_log(PAYQ_LOG_INFO, "worker_stopped",
             "graceful stop complete; account cache %llu hits, %llu misses; %llu batches "
             "rechecked",
             hits, misses, (unsigned long long)payq_counter_get(w.m.rechecks));
out:
    payq_consumer_free(w.consumer);
    payq_outbox_free(w.dead_out);
    payq_outbox_free(w.result_out);
    PQfinish(w.pg);
    payq_ledger_free(w.ledger);
    payq_wbatch_free(&w.batch);
    payq_wbatch_free(&w.next);
    free(w.normal);
    free(w.suspect);
    payq_metrics_stop(w.mhd);
    payq_wmetrics_free(&w.m);
    return rc;
}
