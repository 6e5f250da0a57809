/* pg: libpq connection set-up and SQLSTATE classification. */
#include "pg.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "log.h"
#include "pg_hosts.h"

/* payq_pg_set_response_timeout: 0, wait as long as the server takes. */
static int response_timeout_ms;

void payq_pg_set_response_timeout(int ms)
{
    response_timeout_ms = ms > 0 ? ms : 0;
}

/* payq_pg_set_alive_bounds */
static int silence_ms = PAYQ_PG_SILENCE_MS, probe_ms = PAYQ_PG_PROBE_MS;

void payq_pg_set_alive_bounds(int silence, int probe)
{
    silence_ms = silence;
    probe_ms = probe;
}

/* The calling thread's tick (payq_pg_set_wait_tick): per thread, because
 * what it does belongs to the thread that set it. */
static _Thread_local void (*wait_tick)(void *);
static _Thread_local void *wait_tick_arg;
static _Thread_local int wait_tick_ms;

void payq_pg_set_wait_tick(void (*tick)(void *), void *arg, int every_ms)
{
    wait_tick = tick;
    wait_tick_arg = arg;
    wait_tick_ms = every_ms > 0 ? every_ms : 1;
}

/* The calling thread's stop predicate (payq_pg_set_wait_stop). */
static _Thread_local bool (*wait_stop)(void *);
static _Thread_local void *wait_stop_arg;

void payq_pg_set_wait_stop(bool (*stop)(void *), void *arg)
{
    wait_stop = stop;
    wait_stop_arg = arg;
}

/* Remembers the address a connect gave up on while it was trying it (its
 * connect_timeout or the connect's bound ran out: a frozen node), or a
 * connection's server that stopped answering, so that later connects try
 * it last (pg_hosts.h). */
static void remember_hung(PGconn *conn)
{
    payq_pg_hosts_hung(PQhost(conn), PQhostaddr(conn), PQport(conn));
}

enum connect_end { CONNECT_OK, CONNECT_FAILED, CONNECT_TIMED_OUT, CONNECT_STOPPED };

/* Appends libpq's message for conn (or what), without its newlines, to
 * err. */
static void add_error(char *err, size_t len, PGconn *conn, const char *what)
{
    const char *msg = what ? what : conn ? PQerrorMessage(conn) : "out of memory";
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        n--;
    size_t used = strlen(err);
    if (used + 1 < len)
        snprintf(err + used, len - used, "%s%.*s", used ? "; " : "", (int)n, msg);
}

/* PQconnectStartParams polled until connected, failed, stopped or ms
 * (0: no deadline), calling the thread's wait tick on time and asking its
 * stop predicate meanwhile (payq_pg_set_wait_tick, payq_pg_set_wait_stop),
 * as a statement's wait does. A host that hung is remembered. The
 * connection, or NULL with why added to err. */
static PGconn *connect_polled(const char *const *keys, const char *const *vals, int ms,
                              enum connect_end *end, char *err, size_t errlen)
{
    PGconn *conn = PQconnectStartParams(keys, vals, 1);
    *end = CONNECT_FAILED;
    int64_t now = payq_clock_mono_ms();
    int64_t deadline = ms > 0 ? now + ms : INT64_MAX;
    int64_t tick_at = wait_tick ? now + wait_tick_ms : INT64_MAX;
    /* Start as if PQconnectPoll had said writing, as libpq's docs say. */
    PostgresPollingStatusType st =
        conn && PQstatus(conn) != CONNECTION_BAD ? PGRES_POLLING_WRITING : PGRES_POLLING_FAILED;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        if (wait_stop && wait_stop(wait_stop_arg)) {
            *end = CONNECT_STOPPED;
            break;
        }
        now = payq_clock_mono_ms();
        if (now >= tick_at) {
            wait_tick(wait_tick_arg);
            tick_at = now + wait_tick_ms;
        }
        int64_t left = deadline - now;
        if (left <= 0) {
            *end = CONNECT_TIMED_OUT;
            remember_hung(conn);
            break;
        }
        if (left > tick_at - now)
            left = tick_at - now;
        if (wait_stop && left > PAYQ_PG_STOP_POLL_MS)
            left = PAYQ_PG_STOP_POLL_MS;
        struct pollfd p = {PQsocket(conn), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
        int n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0)
            st = PQconnectPoll(conn);
    }
    if (st == PGRES_POLLING_OK) {
        *end = CONNECT_OK;
        return conn;
    }
    char why[400];
    const char *addr = PQhostaddr(conn);
    bool named = addr && addr[0] && strcmp(addr, PQhost(conn)) != 0;
    if (*end == CONNECT_TIMED_OUT)
        snprintf(why, sizeof why, "no connection within %d ms (%s:%s%s%s did not answer)", ms,
                 PQhost(conn), PQport(conn), named ? " at " : "", named ? addr : "");
    else if (*end == CONNECT_STOPPED)
        snprintf(why, sizeof why, "stopping: gave up connecting to %s:%s", PQhost(conn),
                 PQport(conn));
    add_error(err, errlen, conn, *end == CONNECT_FAILED ? NULL : why);
    PQfinish(conn);
    return NULL;
}

/* The wait for one host: its connect_timeout (0: none), cut to what is
 * left before deadline (INT64_MAX: none); -1 when nothing is left. */
static int host_wait_ms(int per_host, int64_t deadline)
{
    if (deadline == INT64_MAX)
        return per_host;
    int64_t left = deadline - payq_clock_mono_ms();
    if (left <= 0)
        return -1;
    return per_host > 0 && per_host < left ? per_host : left > INT_MAX ? INT_MAX : (int)left;
}

/* Connects to host h at addr ("": by its name), after dbname in keys and
 * vals, so that these override the conninfo's, as target_session_attrs
 * attrs (NULL: the conninfo's), for at most wait ms. */
static PGconn *connect_at(const char **keys, const char **vals, const struct payq_pg_host *h,
                          const char *addr, const char *attrs, int wait, enum connect_end *end,
                          char *err, size_t errlen)
{
    size_t k = 7;
    keys[k] = "host";
    vals[k++] = h->name;
    if (addr[0]) {
        keys[k] = "hostaddr";
        vals[k++] = addr;
    }
    if (h->port[0]) {
        keys[k] = "port";
        vals[k++] = h->port;
    }
    if (attrs) {
        keys[k] = "target_session_attrs";
        vals[k++] = attrs;
    }
    keys[k] = vals[k] = NULL;
    return connect_polled(keys, vals, wait, end, err, errlen);
}

/* One pass over the hosts (as attrs, see connect_at), each address of
 * each for its connect_timeout, all within deadline. The connection, or
 * NULL, with *over set when no more passes may follow (stopped, or the
 * deadline passed). */
static PGconn *connect_pass(const char **keys, const char **vals, const struct payq_pg_hosts *hs,
                            const char *attrs, int64_t deadline, bool *over, char *err,
                            size_t errlen)
{
    char addr[PAYQ_PG_ADDRS_MAX][PAYQ_PG_ADDR_LEN];
    enum connect_end end;
    for (size_t i = 0; i < hs->n; i++) {
        size_t na = payq_pg_host_addrs(&hs->host[i], addr);
        for (size_t a = 0; a < (na ? na : 1); a++) {
            int wait = host_wait_ms(hs->per_host_ms, deadline);
            if (wait < 0) {
                add_error(err, errlen, NULL, "no host left to try within the connect's bound");
                *over = true;
                return NULL;
            }
            PGconn *conn = connect_at(keys, vals, &hs->host[i], na ? addr[a] : "", attrs, wait,
                                      &end, err, errlen);
            *over = end == CONNECT_STOPPED;
            if (conn || *over)
                return conn;
        }
    }
    return NULL;
}

/* payq's one way to connect, polled so that the thread's tick and stop
 * predicate run as in a statement's wait: each address of each host in
 * turn for its connect_timeout, as libpq's blocking connect tries them (a
 * polled libpq connect cannot be told to move on, so it is given one
 * address at a time, pg_hosts.h); prefer-standby as libpq does it, in two
 * passes, a standby first, then any (each pass looks its names up again,
 * as libpq's second pass does); a host and an address that hung
 * before tried last; the whole attempt within ms (0: no bound beyond the
 * hosts' own). keys and vals have room for four more entries after
 * application_name. */
static PGconn *connect_hosts(const char *conninfo, const char **keys, const char **vals, int ms,
                             char *err, size_t errlen)
{
    int64_t deadline = ms > 0 ? payq_clock_mono_ms() + ms : INT64_MAX;
    struct payq_pg_hosts hs;
    enum connect_end end;
    if (!payq_pg_hosts(conninfo, vals[0], &hs))
        return connect_polled(keys, vals, ms, &end, err, errlen); /* libpq says why */
    if (hs.n == 0) {
        /* libpq's own order; the deadline as its blocking connect's worst. */
        int n = (int)hs.libpq_hosts;
        int per = hs.per_host_ms;
        int wait = host_wait_ms(per > INT_MAX / n ? INT_MAX : per * n, deadline);
        return connect_polled(keys, vals, wait < 0 ? 1 : wait, &end, err, errlen);
    }
    PGconn *conn = NULL;
    bool over = false;
    for (int pass = hs.prefer_standby ? 0 : 1; pass < 2 && !conn && !over; pass++) {
        const char *attrs = !hs.prefer_standby ? NULL : pass == 0 ? "standby" : "any";
        conn = connect_pass(keys, vals, &hs, attrs, deadline, &over, err, errlen);
    }
    return conn;
}

PGconn *payq_pg_connect(const char *conninfo, const char *app)
{
    return payq_pg_connect_within(conninfo, app, 0);
}

PGconn *payq_pg_connect_within(const char *conninfo, const char *app, int ms)
{
    /* Before dbname, so that the conninfo's own values win (libpq: "array
     * entries appearing before an expanded dbname entry can be overridden
     * by fields of the connection string"). libpq's defaults are to wait
     * for ever for a connection and to let the kernel notice a silent peer
     * after two hours: a primary frozen or cut off by a partition, which
     * sends no reset, would hold a client until then. */
    const char *keys[] = {"connect_timeout",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          "tcp_user_timeout",
                          "dbname",
                          "application_name",
                          NULL,
                          NULL,
                          NULL,
                          NULL,
                          NULL};
    const char *vals[] = {"5", "15", "5",  "3",  "30000", conninfo,
                          app, NULL, NULL, NULL, NULL,    NULL};
    char err[1024] = "";
    PGconn *conn = connect_hosts(conninfo, keys, vals, ms, err, sizeof err);
    if (conn) {
        /* With a response timeout, sending must not block either
         * (wait_ready); PQexec still blocks, by libpq's design. */
        if (response_timeout_ms > 0 && PQsetnonblocking(conn, 1) != 0)
            payq_log(PAYQ_LOG_WARN, "pg_blocking", "could not make the connection nonblocking");
        return conn;
    }
    char shown[1024];
    payq_log_redact(conninfo, shown, sizeof shown);
    struct payq_log_rec r;
    payq_log_begin(&r, PAYQ_LOG_WARN, "pg_connect_failed");
    payq_log_str(&r, "conninfo", shown);
    payq_log_str(&r, "error", err);
    payq_log_end(&r);
    return NULL;
}

enum payq_pg_fault payq_pg_classify(const char *st)
{
    if (!st || !*st)
        return PAYQ_PG_RECONNECT;
    if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0)
        return PAYQ_PG_RETRY;
    /* 08: connection exceptions; 57P0x: admin shutdown, crash shutdown,
     * cannot connect now; 25006: read-only transaction (we reached a node
     * that was demoted); 57014: statement timeout (cancelled: retry fresh);
     * 26000: a prepared statement the session lacks (a new session prepares
     * them all again, worker/ledger.h). */
    if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0 || strcmp(st, "25006") == 0 ||
        strcmp(st, "57014") == 0 || strcmp(st, "26000") == 0)
        return PAYQ_PG_RECONNECT;
    return PAYQ_PG_FATAL;
}

enum payq_pg_fault payq_pg_check(PGconn *conn, PGresult *res, ExecStatusType expect,
                                 const char *what)
{
    if (res && PQresultStatus(res) == expect)
        return PAYQ_PG_OK;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    enum payq_pg_fault f = payq_pg_classify(state);
    if (f == PAYQ_PG_FATAL && PQstatus(conn) != CONNECTION_OK)
        f = PAYQ_PG_RECONNECT;
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
    if (!msg || !*msg)
        msg = PQerrorMessage(conn);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        n--;
    struct payq_log_rec r;
    payq_log_begin(&r, f == PAYQ_PG_FATAL ? PAYQ_LOG_ERROR : PAYQ_LOG_WARN, "pg_error");
    payq_log_str(&r, "op", what);
    payq_log_str(&r, "sqlstate", state ? state : "");
    payq_log_strn(&r, "error", msg, n);
    payq_log_end(&r);
    return f;
}

enum payq_pg_fault payq_pg_exec(PGconn *conn, const char *sql, const char *what)
{
    return payq_pg_exec_meanwhile(conn, sql, what, NULL, NULL);
}

/* True, with conn's socket shut, once the thread's stop predicate says so. */
static bool abandon_on_stop(PGconn *conn)
{
    if (!wait_stop || !wait_stop(wait_stop_arg))
        return false;
    payq_log(PAYQ_LOG_WARN, "pg_abandoned",
             "stopping: closing the session on %s:%s with its statement in flight", PQhost(conn),
             PQport(conn));
    shutdown(PQsocket(conn), SHUT_RDWR);
    return true;
}

/* Waits until conn's output is sent and a result can be read without
 * blocking, or until deadline (payq_clock_mono_ms; INT64_MAX: none),
 * calling the thread's wait tick on time meanwhile. True when ready or when
 * the connection failed (PQgetResult then says how; a stop abandons it so),
 * false on timeout. */
static bool wait_ready(PGconn *conn, int64_t deadline)
{
    int64_t tick_at = wait_tick ? payq_clock_mono_ms() + wait_tick_ms : INT64_MAX;
    for (;;) {
        int unsent = PQflush(conn); /* 0: all sent, 1: more to send, -1: failed */
        if (unsent < 0 || PQsocket(conn) < 0 || (unsent == 0 && !PQisBusy(conn)))
            return true;
        if (abandon_on_stop(conn))
            return true;
        int64_t now = payq_clock_mono_ms();
        if (now >= tick_at) {
            wait_tick(wait_tick_arg);
            tick_at = now + wait_tick_ms;
        }
        int64_t left = deadline - now;
        if (left <= 0)
            return false;
        if (left > tick_at - now)
            left = tick_at - now;
        if (wait_stop && left > PAYQ_PG_STOP_POLL_MS)
            left = PAYQ_PG_STOP_POLL_MS;
        struct pollfd p = {PQsocket(conn), (short)(POLLIN | (unsent ? POLLOUT : 0)), 0};
        int n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n < 0 && errno != EINTR)
            return true;
        if (n > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(conn))
            return true;
    }
}

/* Keeps in *res the result PQexec would give: the first that failed,
 * else the last. False when there are no more to take: r is NULL, or a
 * COPY result (PQgetResult would return it again and again). */
static bool keep_result(PGresult **res, PGresult *r)
{
    if (!r)
        return false;
    ExecStatusType st = PQresultStatus(r);
    bool failed =
        *res && PQresultStatus(*res) != PGRES_COMMAND_OK && PQresultStatus(*res) != PGRES_TUPLES_OK;
    if (failed) {
        PQclear(r);
    } else {
        PQclear(*res);
        *res = r;
    }
    return st != PGRES_COPY_IN && st != PGRES_COPY_OUT && st != PGRES_COPY_BOTH;
}

PGresult *payq_pg_take_results(PGconn *conn)
{
    return payq_pg_take_results_within(conn, response_timeout_ms);
}

PGresult *payq_pg_take_results_within(PGconn *conn, int ms)
{
    int64_t deadline = ms > 0 ? payq_clock_mono_ms() + ms : INT64_MAX;
    /* Without a bound, a tick or a stop, PQgetResult's own wait is the same. */
    bool wait = ms > 0 || wait_tick || wait_stop;
    PGresult *res = NULL;
    for (;;) {
        if (wait && !wait_ready(conn, deadline)) {
            /* A server that answers nothing (frozen, or cut off without a
             * reset) is a lost connection: shut the socket, and every call
             * on conn from here on fails at once, this PQgetResult first. */
            payq_log(PAYQ_LOG_WARN, "pg_unresponsive",
                     "no answer from the database in %d ms: closing the connection", ms);
            remember_hung(conn);
            shutdown(PQsocket(conn), SHUT_RDWR);
            wait = false;
        }
        if (!keep_result(&res, PQgetResult(conn)))
            break;
    }
    return res;
}

PGresult *payq_pg_exec_params(PGconn *conn, const char *sql, int n, const char *const *params,
                              int result_format)
{
    return payq_pg_exec_params_within(conn, response_timeout_ms, sql, n, params, result_format);
}

PGresult *payq_pg_exec_params_within(PGconn *conn, int ms, const char *sql, int n,
                                     const char *const *params, int result_format)
{
    if (!PQsendQueryParams(conn, sql, n, NULL, params, NULL, NULL, result_format))
        return NULL;
    return payq_pg_take_results_within(conn, ms);
}

#define PROBE_KEYS_MAX 64

/* Whether the server conn is connected to gives any answer to a new
 * session within ms (see payq_pg_take_results_alive). The session is
 * conn's own options (PQconninfo: credentials, TLS) on the one address and
 * port conn uses, any role. */
static bool server_answers(PGconn *conn, int ms)
{
    PQconninfoOption *opts = PQconninfo(conn);
    if (!opts)
        return true; /* out of memory: no sign of a silent server */
    const char *keys[PROBE_KEYS_MAX + 6], *vals[PROBE_KEYS_MAX + 6];
    size_t n = 0;
    for (PQconninfoOption *o = opts; o->keyword && n < PROBE_KEYS_MAX; o++) {
        static const char *const replaced[] = {"host", "hostaddr", "port", "target_session_attrs",
                                               "application_name"};
        bool skip = !o->val || !o->val[0];
        for (size_t i = 0; !skip && i < sizeof replaced / sizeof *replaced; i++)
            skip = strcmp(o->keyword, replaced[i]) == 0;
        if (!skip) {
            keys[n] = o->keyword;
            vals[n++] = o->val;
        }
    }
    /* hostaddr: the address conn uses, of the several its name may have
     * ("" for a socket: libpq ignores empty values). */
    const char *const more[][2] = {{"host", PQhost(conn)},
                                   {"hostaddr", PQhostaddr(conn)},
                                   {"port", PQport(conn)},
                                   {"target_session_attrs", "any"},
                                   {"application_name", "payq-probe"}};
    for (size_t i = 0; i < 5; i++) {
        keys[n] = more[i][0];
        vals[n++] = more[i][1];
    }
    keys[n] = vals[n] = NULL;
    enum connect_end end;
    char err[8] = "";
    PQfinish(connect_polled(keys, vals, ms, &end, err, sizeof err));
    PQconninfoFree(opts);
    return end != CONNECT_TIMED_OUT;
}

/* Called after silence_ms of silence: false, with conn's socket
 * shut, when the server no longer answers at all. */
static bool still_alive(PGconn *conn)
{
    if (PQsocket(conn) < 0 || server_answers(conn, probe_ms))
        return true;
    payq_log(PAYQ_LOG_WARN, "pg_unresponsive",
             "no answer from the database %s:%s in %d ms, nor to a new session in %d ms: "
             "closing the connection",
             PQhost(conn), PQport(conn), silence_ms, probe_ms);
    remember_hung(conn);
    shutdown(PQsocket(conn), SHUT_RDWR);
    return false;
}

PGresult *payq_pg_take_results_alive(PGconn *conn)
{
    PGresult *res = NULL;
    for (;;) {
        while (!wait_ready(conn, payq_clock_mono_ms() + silence_ms) && still_alive(conn))
            ;
        if (!keep_result(&res, PQgetResult(conn)))
            break;
    }
    return res;
}

PGresult *payq_pg_exec_params_alive(PGconn *conn, const char *sql, int n, const char *const *params)
{
    if (!PQsendQueryParams(conn, sql, n, NULL, params, NULL, NULL, 0))
        return NULL;
    return payq_pg_take_results_alive(conn);
}

int payq_pg_copy_data_alive(PGconn *conn, char **msg)
{
    int64_t heard = payq_clock_mono_ms();
    for (;;) {
        int n = PQgetCopyData(conn, msg, 1);
        if (n != 0)
            return n;
        struct pollfd p = {PQsocket(conn), POLLIN, 0};
        if (p.fd < 0)
            return -2;
        int64_t left = heard + silence_ms - payq_clock_mono_ms();
        if (wait_stop && left > PAYQ_PG_STOP_POLL_MS)
            left = PAYQ_PG_STOP_POLL_MS;
        int got = poll(&p, 1, left > 0 ? (int)left : 0);
        if (got < 0 && errno != EINTR)
            return -2;
        /* A shut socket reads as the end: libpq then fails the copy. */
        if (abandon_on_stop(conn)) {
            got = 1;
        } else if (got == 0 && payq_clock_mono_ms() - heard >= silence_ms) {
            if (!still_alive(conn))
                got = 1;
            heard = payq_clock_mono_ms();
        }
        if (got > 0) {
            heard = payq_clock_mono_ms();
            if (!PQconsumeInput(conn))
                return -2;
        }
    }
}

enum payq_pg_fault payq_pg_exec_meanwhile(PGconn *conn, const char *sql, const char *what,
                                          void (*meanwhile)(void *), void *arg)
{
    if (!PQsendQuery(conn, sql)) {
        payq_pg_check(conn, NULL, PGRES_COMMAND_OK, what); /* logs why */
        return PAYQ_PG_RECONNECT;
    }
    if (meanwhile)
        meanwhile(arg);
    /* A lost connection gives a PGRES_FATAL_ERROR result that payq_pg_check
     * classifies. */
    PGresult *res = payq_pg_take_results(conn);
    enum payq_pg_fault f = payq_pg_check(conn, res, PGRES_COMMAND_OK, what);
    PQclear(res);
    return f;
}

bool payq_pg_notice_unreplicated(const char *severity, const char *sqlstate, const char *message,
                                 const char *detail)
{
    if (severity && strcmp(severity, "WARNING") != 0)
        return false;
    if (sqlstate && strcmp(sqlstate, "57P01") == 0)
        return true;
    if (sqlstate && strcmp(sqlstate, "01000") != 0)
        return false;
    return (message && strstr(message, "synchronous replication")) ||
           (detail && strstr(detail, "might not have been replicated"));
}
