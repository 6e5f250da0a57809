/* http: what the HTTP server's pieces share. The app is built once by
 * http_server.c and read by every pool thread; each pool thread owns its
 * own broker outbox and read-only database connection (http_thread.c),
 * created on first use and reconnected lazily, so handlers never share a
 * connection and never lock on the request path. A handler fills a reply;
 * the server turns it into the MHD response. */
#ifndef PAYQ_HTTP_H
#define PAYQ_HTTP_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker.h"
#include "buf.h"
#include "config.h"
#include "group_commit.h"
#include "http_guard.h"
#include "http_metrics.h"
#include "outbox.h"
#include "read_pause.h"

struct payq_http_thread;

struct payq_http_app {
    const struct payq_config *cfg;
    struct payq_amqp_target target;
    struct payq_http_metrics metrics;
    struct payq_http_guard *guard; /* connection deadlines and eviction */
    struct payq_gc *gc;            /* shared packs across requests, or NULL (http_group.c) */
    void *group_sinks;             /* owned by http_group.c */
    unsigned char tokens[PAYQ_CONFIG_MAX_TOKENS][32]; /* accepted SHA-256 digests */
    size_t ntokens;
    pthread_mutex_t threads_lock; /* guards threads */
    struct payq_http_thread *threads;
    struct payq_read_pause reads; /* every read of the ledger on the request path */
};

struct payq_http_thread {
    struct payq_outbox *outbox; /* NULL until first needed */
    /* Held while the pool thread uses outbox, and by
     * payq_http_threads_heartbeat. */
    pthread_mutex_t outbox_lock;
    PGconn *pg;           /* NULL until first needed or after a failure */
    int64_t pg_opened_ns; /* when pg was opened (payq_clock_mono_ns) */
    struct payq_http_thread *next;
};

struct payq_http_reply {
    int status;
    struct payq_buf body;     /* JSON unless content_type says otherwise */
    const char *content_type; /* NULL = application/json */
    char allow[64];           /* Allow header for 405 ("" = none) */
    bool www_authenticate;    /* WWW-Authenticate: Bearer (401) */
    int retry_after_s;        /* Retry-After (503; 0 = none) */
};

/* The calling pool thread's resources, created on first use and
 * registered with app so payq_http_threads_free can release them after the
 * daemon has stopped. Aborts on out-of-memory. */
struct payq_http_thread *payq_http_thread_get(struct payq_http_app *app);
void payq_http_threads_free(struct payq_http_app *app);

/* Sends a heartbeat on every pool thread's broker connection left idle for
 * half the heartbeat interval (payq_amqp_heartbeat). Called from the server's
 * own loop: a pool thread runs only for requests, inside libmicrohttpd, and
 * librabbitmq sends heartbeats only from inside its calls, so the broker
 * closed an idle thread's connection ("missed heartbeats from client") and
 * its next request had to reconnect. A thread publishing meanwhile is
 * skipped: its own calls keep its connection alive. */
void payq_http_threads_heartbeat(struct payq_http_app *app);

/* The thread's read-only PostgreSQL connection, (re)connecting if needed;
 * NULL when the database cannot be reached (logged). wait_ms > 0 bounds a
 * new connection's set-up, every host included (payq_pg_connect_within);
 * 0 leaves it to connect_timeout per host. */
PGconn *payq_http_thread_pg(struct payq_http_app *app, struct payq_http_thread *th, int wait_ms);
/* Drops the thread's connection after a failure so the next use reconnects. */
void payq_http_thread_pg_drop(struct payq_http_thread *th);

/* A read of the ledger on th's connection, under app->reads' pause
 * (read_pause.h), the one rule for every reader on the request path:
 * payq_http_read_begin returns 0 when the read may run, else the pause's
 * milliseconds left (no read now). payq_http_read_end records whether the
 * database answered in time (a query it answered with an error did not
 * fail to answer: pass true) and returns the pause that follows a failure
 * in ms (0 after an answer). */
struct payq_http_read {
    struct payq_read_pause *pause;
    /* Now, or the opening of th's connection, which was in flight with any
     * failure recorded since: a standby frozen with every pool thread
     * connected to it then costs each thread one bounded wait, not a
     * longer pause each. */
    int64_t started_ns;
};
int64_t payq_http_read_begin(struct payq_http_app *app, struct payq_http_thread *th,
                             struct payq_http_read *rd);
int64_t payq_http_read_end(const struct payq_http_read *rd, bool answered);

/* Replies: set status and a JSON body {"error":error,"detail":detail}
 * (detail may be NULL). */
void payq_http_reply_error(struct payq_http_reply *rep, int status, const char *error,
                           const char *detail);

#endif
