/* test_pg: SQLSTATE classes, the notice that says a COMMIT committed
 * locally but may not be on the synchronous standby, and the response
 * timeout and the waits that last as long as the server is alive, against
 * a fake server (a thread speaking just enough of the PostgreSQL protocol:
 * trust authentication, then either answering every query, late or not,
 * or answering none, as a frozen server would; further connections, the
 * probes, are greeted or left unanswered). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "pg.h"
#include "pg_hosts.h"

static const char DETAIL[] = "The transaction has already committed locally, but might not have "
                             "been replicated to the standby.";

static void test_unreplicated_cancel(void **state)
{
    (void)state;
    /* pg_cancel_backend during the wait: no errcode, so the WARNING class. */
    assert_true(payq_pg_notice_unreplicated(
        "WARNING", "01000", "canceling wait for synchronous replication due to user request",
        DETAIL));
    /* A server in another language: the detail alone (if still English) is
     * not there, but callers treat every WARNING during COMMIT as unknown. */
    assert_true(payq_pg_notice_unreplicated("WARNING", "01000", "?", DETAIL));
    assert_true(payq_pg_notice_unreplicated(NULL, NULL, NULL, DETAIL));
}

static void test_unreplicated_terminate(void **state)
{
    (void)state;
    assert_true(payq_pg_notice_unreplicated(
        "WARNING", "57P01",
        "canceling the wait for synchronous replication and terminating connection due to "
        "administrator command",
        DETAIL));
    assert_true(payq_pg_notice_unreplicated("WARNING", "57P01", NULL, NULL));
}

static void test_other_notices(void **state)
{
    (void)state;
    assert_false(payq_pg_notice_unreplicated("NOTICE", "00000", "relation exists, skipping", NULL));
    assert_false(payq_pg_notice_unreplicated("WARNING", "25P01",
                                             "there is no transaction in progress", NULL));
    assert_false(payq_pg_notice_unreplicated("WARNING", "01000", "something else", NULL));
    assert_false(payq_pg_notice_unreplicated(NULL, NULL, NULL, NULL));
    /* A NOTICE that happens to mention the words is not the sync-rep one. */
    assert_false(payq_pg_notice_unreplicated("NOTICE", "00000", "synchronous replication", DETAIL));
}

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(payq_pg_classify("40001"), PAYQ_PG_RETRY);
    assert_int_equal(payq_pg_classify("40P01"), PAYQ_PG_RETRY);
    assert_int_equal(payq_pg_classify("57P01"), PAYQ_PG_RECONNECT);
    assert_int_equal(payq_pg_classify("08006"), PAYQ_PG_RECONNECT);
    /* a prepared statement missing from the session: a new one prepares it */
    assert_int_equal(payq_pg_classify("26000"), PAYQ_PG_RECONNECT);
    assert_int_equal(payq_pg_classify(NULL), PAYQ_PG_RECONNECT);
    assert_int_equal(payq_pg_classify("23505"), PAYQ_PG_FATAL);
}

/* ---------------------------------------------------------------- fake server */

struct fake {
    int listener;
    int port;
    bool answer;       /* false: read everything, answer nothing (frozen) */
    bool greet;        /* false: not even the start-up (frozen before a connection) */
    int late_ms;       /* the delay of each answer */
    bool copy;         /* answer a statement with the start of a COPY, then nothing */
    bool greet_probes; /* connections after the first: greeted, or left unanswered */
    atomic_int probes; /* how many came */
    int probe_fd[8];   /* kept open until fake_stop, as a frozen server keeps them */
    pthread_t thread, prober;
};

static bool read_full(int fd, void *buf, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads one message's body (length-prefixed, len counting itself) and
 * drops it; false when the client is gone. */
static bool skip_body(int fd)
{
    unsigned char len[4], buf[65536];
    if (!read_full(fd, len, 4))
        return false;
    for (size_t left = be32(len) - 4; left > 0;) {
        size_t n = left < sizeof buf ? left : sizeof buf;
        if (!read_full(fd, buf, n))
            return false;
        left -= n;
    }
    return true;
}

static void put(int fd, const void *p, size_t n)
{
    assert_int_equal(write(fd, p, n), (ssize_t)n);
}

static void *fake_serve(void *arg)
{
    struct fake *f = arg;
    int fd = accept(f->listener, NULL, NULL);
    if (fd < 0)
        return NULL;
    /* StartupMessage (no type byte): AuthenticationOk, ReadyForQuery. */
    if (skip_body(fd) && f->greet) {
        static const unsigned char hello[] = {'R', 0, 0, 0, 8, 0, 0, 0, 0, 'Z', 0, 0, 0, 5, 'I'};
        put(fd, hello, sizeof hello);
    }
    /* Simple query (Q) and extended protocol up to Sync (S): answered as a
     * command "BEGIN" would be, or not at all. */
    static const unsigned char done[] = {'C', 0, 0,   0, 10, 'B', 'E', 'G', 'I',
                                         'N', 0, 'Z', 0, 0,  0,   5,   'I'};
    static const unsigned char parsed[] = {'1', 0, 0, 0, 4, '2', 0, 0, 0, 4, 'n', 0, 0, 0, 4};
    /* CopyOutResponse: text, no columns. */
    static const unsigned char copy_out[] = {'H', 0, 0, 0, 7, 0, 0, 0};
    for (unsigned char type; read_full(fd, &type, 1) && skip_body(fd);) {
        if (!f->answer || type == 'P' || type == 'B' || type == 'D' || type == 'E')
            continue;
        if (f->late_ms && (type == 'Q' || type == 'S'))
            usleep((useconds_t)f->late_ms * 1000u);
        if (type == 'S')
            put(fd, parsed, sizeof parsed);
        if (f->copy && (type == 'Q' || type == 'S'))
            put(fd, copy_out, sizeof copy_out);
        else if (type == 'Q' || type == 'S')
            put(fd, done, sizeof done);
        if (type == 'X')
            break;
    }
    close(fd);
    return NULL;
}

/* Connections after the first one fake_serve takes: the liveness probes. */
static void *fake_probes(void *arg)
{
    struct fake *f = arg;
    static const unsigned char hello[] = {'R', 0, 0, 0, 8, 0, 0, 0, 0, 'Z', 0, 0, 0, 5, 'I'};
    for (int n = 0; n < 8; n++) {
        int fd = accept(f->listener, NULL, NULL);
        if (fd < 0)
            break;
        f->probe_fd[n] = fd;
        atomic_fetch_add(&f->probes, 1);
        if (skip_body(fd) && f->greet_probes)
            put(fd, hello, sizeof hello);
    }
    return NULL;
}

/* A fake listening on addr (a loopback address) and port (0: any). */
static void fake_start_at(struct fake *f, bool answer, const char *addr, int port)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < 8; i++)
        f->probe_fd[i] = -1;
    f->answer = answer;
    f->greet = true;
    f->listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    assert_int_equal(setsockopt(f->listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    assert_int_equal(inet_pton(AF_INET, addr, &a.sin_addr), 1);
    assert_int_equal(bind(f->listener, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->listener, 8), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(f->listener, (struct sockaddr *)&a, &len), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_serve, f), 0);
}

static void fake_start(struct fake *f, bool answer)
{
    fake_start_at(f, answer, "127.0.0.1", 0);
}

static PGconn *fake_connect(const struct fake *f)
{
    char ci[160];
    snprintf(ci, sizeof ci,
             "host=127.0.0.1 port=%d dbname=x user=u sslmode=disable gssencmode=disable", f->port);
    PGconn *conn = payq_pg_connect(ci, "test_pg");
    assert_non_null(conn);
    return conn;
}

/* Two fakes: hung, frozen before it answers the start-up, and live. */
static void fake_pair(struct fake *hung, struct fake *live)
{
    fake_start(hung, false);
    hung->greet = false;
    fake_start(live, true);
}

/* conn is connected to the fake f. */
static void assert_on(PGconn *conn, const struct fake *f)
{
    char port[16];
    snprintf(port, sizeof port, "%d", f->port);
    assert_non_null(conn);
    assert_string_equal(PQport(conn), port);
}

/* A conninfo for the two fakes' ports, in that order, with more options. */
static void two_hosts(char *ci, size_t len, int first, int second, const char *more)
{
    snprintf(ci, len,
             "host=127.0.0.1,127.0.0.1 port=%d,%d dbname=x user=u sslmode=disable "
             "gssencmode=disable %s",
             first, second, more);
}

static void fake_stop(struct fake *f, PGconn *conn)
{
    PQfinish(conn); /* the server thread sees the client go */
    pthread_join(f->thread, NULL);
    if (f->prober) {
        shutdown(f->listener, SHUT_RDWR); /* wakes the prober's accept */
        pthread_join(f->prober, NULL);
    }
    for (int i = 0; i < 8; i++)
        if (f->probe_fd[i] >= 0)
            close(f->probe_fd[i]);
    close(f->listener);
}

/* A frozen server: the wait ends after the response timeout, as a lost
 * connection, and every later call on the connection fails at once. */
static void test_response_timeout(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, false);
    payq_pg_set_response_timeout(300);
    PGconn *conn = fake_connect(&f);
    assert_int_equal(PQisnonblocking(conn), 1);
    int64_t t0 = payq_clock_mono_ms();
    assert_int_equal(payq_pg_exec(conn, "BEGIN", "begin"), PAYQ_PG_RECONNECT);
    int64_t waited = payq_clock_mono_ms() - t0;
    assert_true(waited >= 300);
    assert_true(waited < 10000); /* bounded: without the timeout, for ever */
    assert_int_equal(PQstatus(conn), CONNECTION_BAD);
    t0 = payq_clock_mono_ms();
    assert_int_equal(payq_pg_exec(conn, "ROLLBACK", "rollback"), PAYQ_PG_RECONNECT);
    assert_true(payq_clock_mono_ms() - t0 < 300);
    fake_stop(&f, conn);
    payq_pg_set_response_timeout(0);
}

/* A server frozen before it answers the start-up: a bounded connect gives
 * up after its deadline (libpq's own connect_timeout, 5 s here, does not
 * apply to the polled connect). */
static void test_connect_within(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, false);
    f.greet = false;
    char ci[160];
    snprintf(ci, sizeof ci,
             "host=127.0.0.1 port=%d dbname=x user=u sslmode=disable gssencmode=disable", f.port);
    int64_t t0 = payq_clock_mono_ms();
    PGconn *conn = payq_pg_connect_within(ci, "test_pg", 300);
    int64_t waited = payq_clock_mono_ms() - t0;
    assert_null(conn);
    assert_true(waited >= 300);
    assert_true(waited < 4000);
    fake_stop(&f, NULL);
}

/* Two hosts, the first frozen before it answers the start-up: the first
 * bounded connect gives up on it (its bound, 300 ms, ends before the host's
 * connect_timeout, 5 s), and the next one tries it last, so it reaches the
 * live second host at once. */
static void test_connect_within_skips_hung_host(void **state)
{
    (void)state;
    struct fake hung, live;
    fake_pair(&hung, &live);
    char ci[200];
    two_hosts(ci, sizeof ci, hung.port, live.port, "");
    assert_null(payq_pg_connect_within(ci, "test_pg", 300));
    int64_t t0 = payq_clock_mono_ms();
    PGconn *conn = payq_pg_connect_within(ci, "test_pg", 3000);
    assert_non_null(conn);
    assert_true(payq_clock_mono_ms() - t0 < 3000);
    assert_on(conn, &live);
    fake_stop(&live, conn);
    fake_stop(&hung, NULL);
}

/* A live server under the same timeout: answers come through, including
 * to a statement of several megabytes, which a nonblocking connection
 * sends in pieces as the server reads. */
static void test_response_timeout_answered(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, true);
    payq_pg_set_response_timeout(5000);
    PGconn *conn = fake_connect(&f);
    assert_int_equal(payq_pg_exec(conn, "BEGIN", "begin"), PAYQ_PG_OK);
    static char big[4 << 20];
    memset(big, 'x', sizeof big - 1);
    const char *params[1] = {big};
    PGresult *res = payq_pg_exec_params(conn, "SELECT $1", 1, params, 0);
    assert_non_null(res);
    assert_int_equal(payq_pg_check(conn, res, PGRES_COMMAND_OK, "big"), PAYQ_PG_OK);
    PQclear(res);
    assert_int_equal(payq_pg_exec(conn, "BEGIN", "begin"), PAYQ_PG_OK);
    fake_stop(&f, conn);
    payq_pg_set_response_timeout(0);
}

/* Connects to f (fake_start, its fields set), then serves the probes that
 * follow (the first connection is fake_serve's) and shortens the waits'
 * bounds. */
static PGconn *alive_connect(struct fake *f, int silence_ms, int probe_ms)
{
    PGconn *conn = fake_connect(f);
    assert_int_equal(pthread_create(&f->prober, NULL, fake_probes, f), 0);
    payq_pg_set_alive_bounds(silence_ms, probe_ms);
    return conn;
}

static void alive_stop(struct fake *f, PGconn *conn)
{
    fake_stop(f, conn);
    payq_pg_set_alive_bounds(PAYQ_PG_SILENCE_MS, PAYQ_PG_PROBE_MS);
}

/* A frozen server, its probe unanswered too: the wait ends after the
 * silence and the probe's bound, as a lost connection. */
static void test_alive_frozen(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, false);
    PGconn *conn = alive_connect(&f, 300, 300);
    int64_t t0 = payq_clock_mono_ms();
    PGresult *res = payq_pg_exec_params_alive(conn, "SELECT 1", 0, NULL);
    int64_t waited = payq_clock_mono_ms() - t0;
    assert_int_not_equal(payq_pg_check(conn, res, PGRES_TUPLES_OK, "select"), PAYQ_PG_OK);
    PQclear(res);
    assert_int_equal(PQstatus(conn), CONNECTION_BAD);
    assert_true(waited >= 600);
    assert_true(waited < 10000); /* without the probe, for ever */
    assert_int_equal(atomic_load(&f.probes), 1);
    alive_stop(&f, conn);
}

/* A slow server that answers its probes: the wait lasts as long as the
 * statement does, through several probes, and the answer comes through. */
static void test_alive_slow(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, true);
    f.greet_probes = true;
    f.late_ms = 1000;
    PGconn *conn = alive_connect(&f, 200, 300);
    PGresult *res = payq_pg_exec_params_alive(conn, "SELECT 1", 0, NULL);
    assert_int_equal(payq_pg_check(conn, res, PGRES_COMMAND_OK, "select"), PAYQ_PG_OK);
    PQclear(res);
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    assert_true(atomic_load(&f.probes) >= 2);
    alive_stop(&f, conn);
}

/* A server frozen in the middle of a COPY's data: the read ends as a
 * failure (-2), not a wait for ever. */
static void test_alive_copy_frozen(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, true);
    f.copy = true;
    PGconn *conn = alive_connect(&f, 300, 300);
    PGresult *res = payq_pg_exec_params_alive(conn, "COPY x TO STDOUT", 0, NULL);
    assert_int_equal(PQresultStatus(res), PGRES_COPY_OUT);
    PQclear(res);
    char *msg = NULL;
    int64_t t0 = payq_clock_mono_ms();
    assert_int_equal(payq_pg_copy_data_alive(conn, &msg), -2);
    assert_true(payq_clock_mono_ms() - t0 >= 600);
    assert_int_equal(atomic_load(&f.probes), 1);
    res = payq_pg_take_results_alive(conn);
    assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
    PQclear(res);
    alive_stop(&f, conn);
}

/* The wait tick runs on time while a statement's answer is late, with a
 * response timeout and without one, and never once the thread clears it. */
static int ticks;

static void count_tick(void *arg)
{
    (void)arg;
    ticks++;
}

static void wait_with_tick(int response_timeout_ms)
{
    struct fake f;
    fake_start(&f, true);
    f.late_ms = 700;
    payq_pg_set_response_timeout(response_timeout_ms);
    PGconn *conn = fake_connect(&f);
    ticks = 0;
    payq_pg_set_wait_tick(count_tick, NULL, 100);
    assert_int_equal(payq_pg_exec(conn, "BEGIN", "begin"), PAYQ_PG_OK);
    assert_true(ticks >= 4); /* 700 ms at 100 ms, with room for a slow machine */
    assert_true(ticks <= 8);
    payq_pg_set_wait_tick(NULL, NULL, 0);
    ticks = 0;
    assert_int_equal(payq_pg_exec(conn, "BEGIN", "begin"), PAYQ_PG_OK);
    assert_int_equal(ticks, 0);
    fake_stop(&f, conn);
    payq_pg_set_response_timeout(0);
}

static void test_wait_tick_bounded(void **state)
{
    (void)state;
    wait_with_tick(5000);
}

static void test_wait_tick_unbounded(void **state)
{
    (void)state;
    wait_with_tick(0);
}

/* A stop while a statement waits on a frozen server (unanswered probes
 * and a silence bound far off): the wait ends within a few stop polls as a
 * lost connection, for results and for a COPY's data alike; a predicate
 * that stays false changes nothing (test_alive_slow's answer comes). */
static int64_t stop_at;

static bool stop_after(void *arg)
{
    (void)arg;
    return payq_clock_mono_ms() >= stop_at;
}

static void test_wait_stop_results(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, false);
    PGconn *conn = alive_connect(&f, 60000, 60000);
    stop_at = payq_clock_mono_ms() + 300;
    payq_pg_set_wait_stop(stop_after, NULL);
    PGresult *res = payq_pg_exec_params_alive(conn, "SELECT 1", 0, NULL);
    int64_t late = payq_clock_mono_ms() - stop_at;
    payq_pg_set_wait_stop(NULL, NULL);
    assert_int_not_equal(payq_pg_check(conn, res, PGRES_TUPLES_OK, "select"), PAYQ_PG_OK);
    PQclear(res);
    assert_int_equal(PQstatus(conn), CONNECTION_BAD);
    assert_true(late >= 0);
    assert_true(late < 5000); /* without the stop: the 60 s silence, then a probe */
    assert_int_equal(atomic_load(&f.probes), 0);
    alive_stop(&f, conn);
}

static void test_wait_stop_copy(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, true);
    f.copy = true;
    PGconn *conn = alive_connect(&f, 60000, 60000);
    payq_pg_set_wait_stop(stop_after, NULL);
    stop_at = INT64_MAX;
    PGresult *res = payq_pg_exec_params_alive(conn, "COPY x TO STDOUT", 0, NULL);
    assert_int_equal(PQresultStatus(res), PGRES_COPY_OUT);
    PQclear(res);
    char *msg = NULL;
    stop_at = payq_clock_mono_ms() + 300;
    assert_int_equal(payq_pg_copy_data_alive(conn, &msg), -2);
    int64_t late = payq_clock_mono_ms() - stop_at;
    assert_true(late >= 0);
    assert_true(late < 5000);
    res = payq_pg_take_results_alive(conn);
    assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
    PQclear(res);
    payq_pg_set_wait_stop(NULL, NULL);
    assert_int_equal(atomic_load(&f.probes), 0);
    alive_stop(&f, conn);
}

/* On a thread with a wait tick, a connect is polled: the tick runs on time
 * while the first host, frozen before it answers the start-up, holds it,
 * and after that host's connect_timeout (2 s here) the connect moves on to
 * the live second host, as libpq's blocking connect would. */
static void test_connect_tick_each_host(void **state)
{
    (void)state;
    struct fake hung, live;
    fake_pair(&hung, &live);
    char ci[240];
    two_hosts(ci, sizeof ci, hung.port, live.port, "connect_timeout=2");
    ticks = 0;
    payq_pg_set_wait_tick(count_tick, NULL, 100);
    int64_t t0 = payq_clock_mono_ms();
    PGconn *conn = payq_pg_connect(ci, "test_pg");
    int64_t waited = payq_clock_mono_ms() - t0;
    payq_pg_set_wait_tick(NULL, NULL, 0);
    assert_non_null(conn);
    assert_on(conn, &live);
    assert_true(waited >= 2000);
    assert_true(waited < 4000);
    assert_true(ticks >= 15); /* 2 s at 100 ms, with room for a slow machine */
    assert_true(ticks <= 25);
    fake_stop(&live, conn);
    fake_stop(&hung, NULL);
}

/* A stop while a connect waits on a host frozen before it answers the
 * start-up (connect_timeout 60 s): the connect gives up within a few stop
 * polls. */
static void test_connect_stop(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, false);
    f.greet = false;
    char ci[200];
    snprintf(ci, sizeof ci,
             "host=127.0.0.1 port=%d dbname=x user=u sslmode=disable gssencmode=disable "
             "connect_timeout=60",
             f.port);
    stop_at = payq_clock_mono_ms() + 300;
    payq_pg_set_wait_stop(stop_after, NULL);
    PGconn *conn = payq_pg_connect(ci, "test_pg");
    int64_t late = payq_clock_mono_ms() - stop_at;
    payq_pg_set_wait_stop(NULL, NULL);
    assert_null(conn);
    assert_true(late >= 0);
    assert_true(late < 2000);
    fake_stop(&f, NULL);
}

/* A bound longer than a frozen first host's connect_timeout (2 s): the
 * connect moves on to the live second host within the bound, as an
 * unbounded one does, rather than spending the bound on the first. */
static void test_connect_within_moves_on(void **state)
{
    (void)state;
    struct fake hung, live;
    fake_pair(&hung, &live);
    char ci[240];
    two_hosts(ci, sizeof ci, hung.port, live.port, "connect_timeout=2");
    int64_t t0 = payq_clock_mono_ms();
    PGconn *conn = payq_pg_connect_within(ci, "test_pg", 8000);
    int64_t waited = payq_clock_mono_ms() - t0;
    assert_non_null(conn);
    assert_on(conn, &live);
    assert_true(waited >= 2000);
    assert_true(waited < 6000);
    fake_stop(&live, conn);
    fake_stop(&hung, NULL);
}

/* On a thread with neither tick nor stop predicate, the same connect: a
 * frozen first host costs the first connect its connect_timeout (2 s),
 * and the next connect tries it last, so it reaches the live host at
 * once. */
static void test_connect_hung_host_last(void **state)
{
    (void)state;
    struct fake hung, live, again;
    fake_pair(&hung, &live);
    char ci[240];
    two_hosts(ci, sizeof ci, hung.port, live.port, "connect_timeout=2");
    int64_t t0 = payq_clock_mono_ms();
    PGconn *conn = payq_pg_connect(ci, "test_pg");
    assert_non_null(conn);
    assert_true(payq_clock_mono_ms() - t0 >= 2000);
    fake_stop(&live, conn);
    fake_start(&again, true);
    two_hosts(ci, sizeof ci, hung.port, again.port, "connect_timeout=2");
    t0 = payq_clock_mono_ms();
    conn = payq_pg_connect(ci, "test_pg");
    int64_t waited = payq_clock_mono_ms() - t0;
    assert_non_null(conn);
    assert_on(conn, &again);
    assert_true(waited < 1000);
    fake_stop(&again, conn);
    fake_stop(&hung, NULL);
}

/* db.test: two loopback addresses, the first one first. */
static size_t two_addresses(const char *host, char (*addr)[PAYQ_PG_ADDR_LEN], size_t max)
{
    if (strcmp(host, "db.test") != 0 || max < 2)
        return 0;
    snprintf(addr[0], PAYQ_PG_ADDR_LEN, "127.0.0.2");
    snprintf(addr[1], PAYQ_PG_ADDR_LEN, "127.0.0.1");
    return 2;
}

/* One host name with two addresses (as a DNS name for every node has), the
 * first frozen before it answers the start-up: the connect gives that
 * address its connect_timeout (2 s) and moves on to the second, as libpq's
 * blocking connect would; the next connect tries the frozen one last and
 * gets through at once. Before payq resolved names itself, the polled
 * connect spent the name's whole wait on its first address and failed. */
static void test_connect_name_moves_on(void **state)
{
    (void)state;
    struct fake hung, live, again;
    fake_start_at(&hung, false, "127.0.0.2", 0);
    hung.greet = false;
    fake_start_at(&live, true, "127.0.0.1", hung.port);
    payq_pg_hosts_set_resolve(two_addresses);
    char ci[200];
    snprintf(ci, sizeof ci,
             "host=db.test port=%d connect_timeout=2 dbname=x user=u sslmode=disable "
             "gssencmode=disable",
             hung.port);
    int64_t t0 = payq_clock_mono_ms();
    PGconn *conn = payq_pg_connect_within(ci, "test_pg", 8000);
    int64_t waited = payq_clock_mono_ms() - t0;
    assert_non_null(conn);
    assert_string_equal(PQhost(conn), "db.test");
    assert_string_equal(PQhostaddr(conn), "127.0.0.1");
    assert_true(waited >= 2000);
    assert_true(waited < 6000);
    fake_stop(&live, conn);
    fake_start_at(&again, true, "127.0.0.1", hung.port);
    t0 = payq_clock_mono_ms();
    conn = payq_pg_connect(ci, "test_pg");
    waited = payq_clock_mono_ms() - t0;
    assert_non_null(conn);
    assert_string_equal(PQhostaddr(conn), "127.0.0.1");
    assert_true(waited < 1000);
    fake_stop(&again, conn);
    fake_stop(&hung, NULL);
    payq_pg_hosts_set_resolve(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unreplicated_cancel),
        cmocka_unit_test(test_unreplicated_terminate),
        cmocka_unit_test(test_other_notices),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_response_timeout),
        cmocka_unit_test(test_response_timeout_answered),
        cmocka_unit_test(test_connect_within),
        cmocka_unit_test(test_connect_within_skips_hung_host),
        cmocka_unit_test(test_connect_within_moves_on),
        cmocka_unit_test(test_connect_hung_host_last),
        cmocka_unit_test(test_connect_name_moves_on),
        cmocka_unit_test(test_alive_frozen),
        cmocka_unit_test(test_alive_slow),
        cmocka_unit_test(test_alive_copy_frozen),
        cmocka_unit_test(test_wait_tick_bounded),
        cmocka_unit_test(test_wait_tick_unbounded),
        cmocka_unit_test(test_wait_stop_results),
        cmocka_unit_test(test_wait_stop_copy),
        cmocka_unit_test(test_connect_tick_each_host),
        cmocka_unit_test(test_connect_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
