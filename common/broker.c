/* broker: connection set-up (several hosts, optional TLS) and error decoding. */
#include "broker.h"

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"

void payq_amqp_reply_text(amqp_rpc_reply_t r, char *buf, size_t len)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(buf, len, "ok");
        return;
    case AMQP_RESPONSE_NONE:
        snprintf(buf, len, "missing RPC reply type");
        return;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(buf, len, "%s", amqp_error_string2(r.library_error));
        return;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        break;
    }
    if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *m = r.reply.decoded;
        snprintf(buf, len, "server connection error %u: %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
    } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *m = r.reply.decoded;
        snprintf(buf, len, "server channel error %u: %.*s", m->reply_code, (int)m->reply_text.len,
                 (const char *)m->reply_text.bytes);
    } else {
        snprintf(buf, len, "unknown server error, method id 0x%08X", r.reply.id);
    }
}

int payq_amqp_check_reply(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    char text[256];
    payq_amqp_reply_text(r, text, sizeof text);
    struct payq_log_rec rec;
    payq_log_begin(&rec, PAYQ_LOG_ERROR, "amqp_error");
    payq_log_str(&rec, "op", what);
    payq_log_str(&rec, "error", text);
    payq_log_end(&rec);
    return -1;
}

int payq_amqp_check_status(int status, const char *what)
{
    if (status >= 0)
        return 0;
    struct payq_log_rec rec;
    payq_log_begin(&rec, PAYQ_LOG_ERROR, "amqp_error");
    payq_log_str(&rec, "op", what);
    payq_log_str(&rec, "error", amqp_error_string2(status));
    payq_log_end(&rec);
    return -1;
}

static void log_connect_failure(const char *url, const char *why)
{
    char shown[512];
    payq_log_redact(url, shown, sizeof shown);
    struct payq_log_rec rec;
    payq_log_begin(&rec, PAYQ_LOG_WARN, "amqp_connect_failed");
    payq_log_str(&rec, "url", shown);
    payq_log_str(&rec, "error", why);
    payq_log_end(&rec);
}

static amqp_socket_t *make_socket(amqp_connection_state_t conn,
                                  const struct amqp_connection_info *ci,
                                  const struct payq_tls_config *tls, const char **why)
{
    if (!ci->ssl) {
        amqp_socket_t *s = amqp_tcp_socket_new(conn);
        if (!s)
            *why = "could not create TCP socket";
        return s;
    }
    amqp_socket_t *s = amqp_ssl_socket_new(conn);
    if (!s) {
        *why = "could not create TLS socket";
        return NULL;
    }
    bool verify = !tls || tls->verify_peer;
    amqp_ssl_socket_set_verify_peer(s, verify);
    amqp_ssl_socket_set_verify_hostname(s, verify);
    if (tls && tls->ca_file[0] && amqp_ssl_socket_set_cacert(s, tls->ca_file) != AMQP_STATUS_OK) {
        *why = "could not load TLS CA file";
        return NULL;
    }
    if (tls && tls->cert_file[0] &&
        amqp_ssl_socket_set_key(s, tls->cert_file, tls->key_file) != AMQP_STATUS_OK) {
        *why = "could not load TLS client certificate or key";
        return NULL;
    }
    return s;
}

/* librabbitmq writes without a deadline and looks at heartbeats only while
 * reading, so a write to a node that stopped reading (frozen, or its host
 * gone without a reset) would block for ever once the socket buffers are
 * full. The kernel ends such a connection once sent data stays
 * unacknowledged, or the peer's window stays shut, this long (the window
 * since Linux 5.11); the caller then reconnects elsewhere and publishes
 * again. Twice the heartbeat, as the library allows a silent peer while
 * reading; never under 10 s, which an alarm's flow control can exceed. */
static void bound_writes(amqp_socket_t *sock, int heartbeat_s)
{
    unsigned ms = heartbeat_s > 0 ? (unsigned)heartbeat_s * 2000u : 60000u;
    if (ms < 10000u)
        ms = 10000u;
    int fd = amqp_socket_get_sockfd(sock);
    if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms) != 0)
        payq_log(PAYQ_LOG_WARN, "amqp_socket_option", "TCP_USER_TIMEOUT not set: %s",
                 strerror(errno));
}

/* One attempt at one URL. Returns an open, logged-in connection or NULL. */
static amqp_connection_state_t try_url(const struct payq_amqp_target *t, const char *url)
{
    char *copy = payq_xstrdup(url);
    struct amqp_connection_info ci;
    amqp_default_connection_info(&ci);
    if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
        log_connect_failure(url, "invalid AMQP URL");
        free(copy);
        return NULL;
    }
    const char *why = NULL;
    /* Per call, not static: the producer's HTTP threads connect at once. */
    char text[256];
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = make_socket(conn, &ci, t->tls, &why);
    if (!sock)
        goto fail;
    struct timeval tv = {t->connect_timeout_ms / 1000, (t->connect_timeout_ms % 1000) * 1000};
    int st = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv);
    if (st != AMQP_STATUS_OK) {
        why = amqp_error_string2(st);
        goto fail;
    }
    bound_writes(sock, t->heartbeat_s);
    /* The handshake waits at most as long as the connect (the library's
     * default is 12 s): a frozen node accepts TCP in its kernel but never
     * answers. */
    amqp_set_handshake_timeout(conn, &tv);
    amqp_table_entry_t props[1];
    props[0].key = amqp_cstring_bytes("connection_name");
    props[0].value.kind = AMQP_FIELD_KIND_UTF8;
    props[0].value.value.bytes = amqp_cstring_bytes(t->conn_name ? t->conn_name : "payq");
    amqp_table_t client_props = {1, props};
    amqp_rpc_reply_t r =
        amqp_login_with_properties(conn, ci.vhost, 0, 131072, t->heartbeat_s, &client_props,
                                   AMQP_SASL_METHOD_PLAIN, ci.user, ci.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        payq_amqp_reply_text(r, text, sizeof text);
        why = text;
        goto fail;
    }
    /* A synchronous call never waits forever on a broker that stopped
     * answering: the caller reconnects instead. */
    struct timeval rpc_tv = {30, 0};
    amqp_set_rpc_timeout(conn, &rpc_tv);
    free(copy);
    return conn;
fail:
    log_connect_failure(url, why ? why : "unknown error");
    amqp_destroy_connection(conn);
    free(copy);
    return NULL;
}

int payq_amqp_connect(const struct payq_amqp_target *t, unsigned *cursor,
                      amqp_connection_state_t *out)
{
    char *list = payq_xstrdup(t->urls);
    char *urls[32];
    unsigned n = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && n < 32;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (*tok)
            urls[n++] = tok;
    }
    int rc = -1;
    for (unsigned i = 0; i < n; i++) {
        unsigned idx = (*cursor + i) % n;
        amqp_connection_state_t conn = try_url(t, urls[idx]);
        if (conn) {
            /* Next time start after this node: when it dies the reconnect
             * goes straight to another (a frozen node would cost a full
             * handshake timeout first). */
            *cursor = (idx + 1) % n;
            *out = conn;
            rc = 0;
            break;
        }
    }
    if (n == 0)
        payq_log(PAYQ_LOG_ERROR, "amqp_connect_failed", "no AMQP URL configured");
    free(list);
    return rc;
}

void payq_amqp_close(amqp_connection_state_t conn)
{
    if (!conn)
        return;
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
}

bool payq_amqp_heartbeat_due(int heartbeat_s, int64_t sent_ms, int64_t now_ms)
{
    return heartbeat_s > 0 && now_ms - sent_ms >= (int64_t)heartbeat_s * 500;
}

void payq_amqp_heartbeat(amqp_connection_state_t conn, int64_t *sent_ms)
{
    if (!conn)
        return;
    int64_t now = payq_clock_mono_ms();
    if (!payq_amqp_heartbeat_due(amqp_get_heartbeat(conn), *sent_ms, now))
        return;
    amqp_frame_t f = {.frame_type = AMQP_FRAME_HEARTBEAT, .channel = 0};
    (void)amqp_send_frame(conn, &f);
    *sent_ms = now;
}

int payq_amqp_channel_open(amqp_connection_state_t conn, amqp_channel_t ch)
{
    amqp_channel_open(conn, ch);
    return payq_amqp_check_reply(amqp_get_rpc_reply(conn), "channel.open");
}

const amqp_field_value_t *payq_amqp_header(const amqp_table_t *headers, const char *key)
{
    size_t klen = strlen(key);
    for (int i = 0; i < headers->num_entries; i++) {
        const amqp_table_entry_t *e = &headers->entries[i];
        if (e->key.len == klen && memcmp(e->key.bytes, key, klen) == 0)
            return &e->value;
    }
    return NULL;
}

enum payq_amqp_frame payq_amqp_other_frame(amqp_connection_state_t conn, const char *what,
                                           char *why, size_t len)
{
    amqp_frame_t f;
    if (payq_amqp_check_status(amqp_simple_wait_frame(conn, &f), what) != 0)
        return PAYQ_FRAME_FAILED;
    if (f.frame_type != AMQP_FRAME_METHOD)
        return PAYQ_FRAME_IGNORED;
    switch (f.payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_rpc_reply_t r = {.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION,
                              .reply = f.payload.method};
        payq_amqp_reply_text(r, why, len);
        payq_amqp_check_reply(r, what);
        return PAYQ_FRAME_CLOSED;
    }
    case AMQP_BASIC_CANCEL_METHOD:
        return PAYQ_FRAME_CANCELLED;
    default:
        return PAYQ_FRAME_IGNORED;
    }
}
