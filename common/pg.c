/* pg: libpq connection set-up and SQLSTATE classification. */
#include "pg.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "log.h"

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

/* The host a bounded connect last gave up on, while libpq was trying it.
 * libpq applies connect_timeout per host only in its blocking connect: in
 * the polled one, a host frozen first in a multi-host conninfo takes the
 * whole deadline and the next host (a live standby) is never tried. So
 * later bounded connects try that host last (hung_last); libpq's own
 * rules (target_session_attrs) still pick among the hosts in that order. */
static pthread_mutex_t g_hung_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_hung_host[256];
static char g_hung_port[16];

static void remember_hung(PGconn *conn)
{
    const char *h = PQhost(conn), *p = PQport(conn);
    pthread_mutex_lock(&g_hung_lock);
    snprintf(g_hung_host, sizeof g_hung_host, "%s", h ? h : "");
    snprintf(g_hung_port, sizeof g_hung_port, "%s", p ? p : "");
    pthread_mutex_unlock(&g_hung_lock);
}

#define HOSTS_MAX 16

/* Splits a comma-separated list in place; returns the count (0..max), or
 * max + 1 when there are more. */
static size_t split_list(char *s, char **item, size_t max)
{
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == max)
            return max + 1;
        item[n++] = t;
    }
    return n;
}

/* Joins the n items into out with item k (k < n - 1) moved last. */
static void join_last(char *const *item, size_t n, size_t k, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        size_t j = i == n - 1 ? k : i < k ? i : i + 1;
        used += (size_t)snprintf(out + used, len - used, "%s%s", i ? "," : "", item[j]);
    }
}

/* The conninfo's host list (and its port list, if one port per host) with
 * the remembered hung host moved last, into host and port ("" for no port
 * override). False when there is nothing to move: no host remembered, one
 * host, hostaddr used, the host not listed, or a conninfo libpq cannot
 * parse (it will say why when connecting). */
static bool hung_last(const char *conninfo, char *host, size_t hostlen, char *port, size_t portlen)
{
    char hh[256], hp[16];
    pthread_mutex_lock(&g_hung_lock);
    memcpy(hh, g_hung_host, sizeof hh);
    memcpy(hp, g_hung_port, sizeof hp);
    pthread_mutex_unlock(&g_hung_lock);
    if (!hh[0])
        return false;
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (!opts)
        return false;
    char hosts[1024] = "", ports[256] = "";
    bool addr = false;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !o->val[0])
            continue;
        if (strcmp(o->keyword, "host") == 0)
            snprintf(hosts, sizeof hosts, "%s", o->val);
        else if (strcmp(o->keyword, "port") == 0)
            snprintf(ports, sizeof ports, "%s", o->val);
        else if (strcmp(o->keyword, "hostaddr") == 0)
            addr = true;
    }
    PQconninfoFree(opts);
    char *h[HOSTS_MAX], *p[HOSTS_MAX];
    size_t nh = split_list(hosts, h, HOSTS_MAX), np = split_list(ports, p, HOSTS_MAX);
    if (addr || nh < 2 || nh > HOSTS_MAX || (np != nh && np > 1))
        return false;
    size_t k = nh;
    for (size_t i = 0; i < nh && k == nh; i++)
        if (strcmp(h[i], hh) == 0 && (np == 0 || strcmp(p[np == nh ? i : 0], hp) == 0))
            k = i;
    if (k >= nh - 1)
        return false; /* not listed, or already last */
    join_last(h, nh, k, host, hostlen);
    port[0] = '\0';
    if (np == nh)
        join_last(p, np, k, port, portlen);
    return true;
}

/* PQconnectStartParams polled until connected, failed or deadline (ms
 * from now); *timed_out says which, and a host that hung is remembered.
 * libpq enforces connect_timeout only in its blocking connect: here the
 * deadline is the whole attempt, every host of a multi-host conninfo
 * included. */
static PGconn *connect_async(const char *const *keys, const char *const *vals, int ms,
                             bool *timed_out)
{
    PGconn *conn = PQconnectStartParams(keys, vals, 1);
    if (!conn || PQstatus(conn) == CONNECTION_BAD)
        return conn;
    int64_t deadline = payq_clock_mono_ms() + ms;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING; /* as libpq's docs say to start */
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        int64_t left = deadline - payq_clock_mono_ms();
        if (left <= 0) {
            *timed_out = true;
            remember_hung(conn);
            break;
        }
        struct pollfd p = {PQsocket(conn), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0)
            st = PQconnectPoll(conn);
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
                          NULL};
    const char *vals[] = {"5", "15", "5", "3", "30000", conninfo, app, NULL, NULL, NULL};
    /* After dbname: these override the conninfo's lists. */
    char host[1024], port[256];
    if (ms > 0 && hung_last(conninfo, host, sizeof host, port, sizeof port)) {
        keys[7] = "host";
        vals[7] = host;
        if (port[0]) {
            keys[8] = "port";
            vals[8] = port;
        }
    }
    bool timed_out = false;
    /* expand_dbname=1: the conninfo string supplies everything else. */
    PGconn *conn =
        ms > 0 ? connect_async(keys, vals, ms, &timed_out) : PQconnectdbParams(keys, vals, 1);
    if (conn && !timed_out && PQstatus(conn) == CONNECTION_OK) {
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
    char why[320];
    if (timed_out)
        snprintf(why, sizeof why, "no connection within %d ms (%s:%s did not answer)", ms,
                 PQhost(conn), PQport(conn));
    const char *msg = timed_out ? why : conn ? PQerrorMessage(conn) : "out of memory";
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        n--;
    payq_log_strn(&r, "error", msg, n);
    payq_log_end(&r);
    PQfinish(conn);
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
 * conn's own options (PQconninfo: credentials, TLS) on the one host and
 * port conn uses, any role. */
static bool server_answers(PGconn *conn, int ms)
{
    PQconninfoOption *opts = PQconninfo(conn);
    if (!opts)
        return true; /* out of memory: no sign of a silent server */
    const char *keys[PROBE_KEYS_MAX + 5], *vals[PROBE_KEYS_MAX + 5];
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
    const char *const more[][2] = {{"host", PQhost(conn)},
                                   {"port", PQport(conn)},
                                   {"target_session_attrs", "any"},
                                   {"application_name", "payq-probe"}};
    for (size_t i = 0; i < 4; i++) {
        keys[n] = more[i][0];
        vals[n++] = more[i][1];
    }
    keys[n] = vals[n] = NULL;
    bool timed_out = false;
    PQfinish(connect_async(keys, vals, ms, &timed_out));
    PQconninfoFree(opts);
    return !timed_out;
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
