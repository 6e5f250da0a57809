/* broker: connecting to RabbitMQ with librabbitmq-c 0.11, and turning its two
 * error channels (int status codes and amqp_rpc_reply_t) into log lines.
 *
 * The URL setting is a comma-separated list of amqp:// or amqps:// URLs (the
 * nodes of a cluster, or an HAProxy in front of them); payq_amqp_connect
 * tries them in order starting after the node that worked last time, so a
 * reconnect after a node failure moves on. amqps:// uses the TLS options of
 * the config (CA, client certificate, peer verification). */
#ifndef PAYQ_BROKER_H
#define PAYQ_BROKER_H

#include <amqp.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#define PAYQ_EXCHANGE_INGRESS "payq.ingress"
#define PAYQ_EXCHANGE_DLX "payq.dlx"
#define PAYQ_EXCHANGE_RESULTS "payq.results"
#define PAYQ_QUEUE_TRANSFERS "payq.transfers"
#define PAYQ_QUEUE_DEAD "payq.dead"
#define PAYQ_STREAM_AUDIT "payq.audit"
#define PAYQ_HEADER_DEAD_REASON "x-payq-reason"
#define PAYQ_HEADER_DEAD_FIELD "x-payq-field"
/* Intake time in milliseconds since the epoch: the AMQP timestamp property
 * has only second resolution, too coarse for intake-to-commit latency. */
#define PAYQ_HEADER_PUBLISHED_MS "x-payq-published-ms"

struct payq_amqp_target {
    const char *urls;                  /* comma-separated list, see above */
    const struct payq_tls_config *tls; /* used for amqps:// URLs */
    int heartbeat_s;
    int connect_timeout_ms;
    const char *conn_name; /* shown in the management UI, e.g. "payq-worker" */
};

/* Opens a connection and logs in, trying each URL once. On success *out is
 * an open connection the caller closes with payq_amqp_close(). *cursor
 * remembers which URL to try first next time (start it at 0): the one after
 * the URL that worked, so a reconnect moves on to another node. Logs each
 * failure (password redacted); returns 0 or -1. */
int payq_amqp_connect(const struct payq_amqp_target *t, unsigned *cursor,
                      amqp_connection_state_t *out) __attribute__((warn_unused_result));

/* Closes the channel-less connection politely if possible and destroys it.
 * Safe on NULL. */
void payq_amqp_close(amqp_connection_state_t conn);

/* Whether a connection that negotiated heartbeats every heartbeat_s (0:
 * none) and last sent anything at sent_ms is due a heartbeat at now_ms
 * (payq_clock_mono_ms): once it has been silent for half the interval.
 * RabbitMQ closes a connection that sent nothing for two intervals, and any
 * frame counts, so one a caller just used needs none. */
bool payq_amqp_heartbeat_due(int heartbeat_s, int64_t sent_ms, int64_t now_ms);

/* How often a caller that keeps a connection idle offers it a heartbeat
 * (payq_amqp_heartbeat): a quarter interval, so that with the half above a
 * connection is never silent for more than three quarters of one. */
#define PAYQ_AMQP_HEARTBEAT_OFFER_MS(heartbeat_s) ((heartbeat_s)*250)

/* Sends a heartbeat frame on conn if one is due (above); *sent_ms is when
 * the caller last sent anything on conn, and is set to now when it sends.
 * librabbitmq-c sends heartbeats only from inside its own calls: a caller
 * that keeps a connection idle while it waits on something else (the
 * worker on the database, a publisher with nothing to publish) calls this
 * as often as it likes, and the pacing is here, once. A failed send is left
 * to the connection's next use to report. Safe on NULL. */
void payq_amqp_heartbeat(amqp_connection_state_t conn, int64_t *sent_ms);

/* Opens channel ch; returns 0 or -1 (logged). */
int payq_amqp_channel_open(amqp_connection_state_t conn, amqp_channel_t ch)
    __attribute__((warn_unused_result));

/* Checks the reply of the last synchronous call; returns 0 when NORMAL,
 * otherwise logs `what` with the decoded library or server error and
 * returns -1. */
int payq_amqp_check_reply(amqp_rpc_reply_t r, const char *what);

/* Formats a reply as text into buf (for error messages and HTTP bodies). */
void payq_amqp_reply_text(amqp_rpc_reply_t r, char *buf, size_t len);

/* Checks an int status from librabbitmq-c; logs and returns -1 if < 0. */
int payq_amqp_check_status(int status, const char *what);

/* What a consumer's non-delivery frame meant (after amqp_consume_message
 * said AMQP_STATUS_UNEXPECTED_STATE). */
enum payq_amqp_frame {
    PAYQ_FRAME_IGNORED = 0, /* heartbeat-like or unrelated: keep reading */
    PAYQ_FRAME_FAILED,      /* reading failed (logged) */
    PAYQ_FRAME_CLOSED,      /* the broker closed the channel or connection (logged) */
    PAYQ_FRAME_CANCELLED,   /* the broker cancelled the consumer */
};
/* Reads that frame. For CLOSED, the server's reason goes into why[len]. */
enum payq_amqp_frame payq_amqp_other_frame(amqp_connection_state_t conn, const char *what,
                                           char *why, size_t len);

/* Looks up a header in a table; returns NULL if absent. */
const amqp_field_value_t *payq_amqp_header(const amqp_table_t *headers, const char *key);

#endif
