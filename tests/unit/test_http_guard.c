/* test_http_guard: the HTTP connection guard's deadlines and eviction
 * (producer/http_guard.c) over socket pairs, where a shut-down connection
 * shows as end-of-stream on the peer. Headers are due header_timeout after
 * opening whatever arrives meanwhile; a body body_timeout after the
 * headers; a request being handled has no deadline; after a response the
 * next request's headers are due again; above evict_at the oldest
 * connection still waiting for headers is evicted, never one whose request
 * is being read or handled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_guard.h"

#define MS 1000000LL

struct pair {
    int server, client;
};

static struct pair pair_new(void)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    return (struct pair){fds[0], fds[1]};
}

/* True when the guard shut the server side down: the client reads EOF. */
static bool was_shut(struct pair p)
{
    char c;
    return recv(p.client, &c, 1, MSG_DONTWAIT) == 0;
}

static void pair_free(struct pair p)
{
    close(p.server);
    close(p.client);
}

static void test_deadlines(void **state)
{
    (void)state;
    struct payq_http_guard_opts o = {
        .header_timeout_ms = 100, .body_timeout_ms = 300, .evict_at = 100};
    struct payq_http_guard *g = payq_http_guard_new(&o);
    struct pair idle = pair_new(), body = pair_new(), busy = pair_new(), kept = pair_new();
    struct payq_http_guard_conn *ci = payq_http_guard_open(g, idle.server, 0);
    struct payq_http_guard_conn *cb = payq_http_guard_open(g, body.server, 0);
    struct payq_http_guard_conn *cu = payq_http_guard_open(g, busy.server, 0);
    struct payq_http_guard_conn *ck = payq_http_guard_open(g, kept.server, 0);
    payq_http_guard_headers_in(g, cb, 50 * MS);
    payq_http_guard_headers_in(g, cu, 50 * MS);
    payq_http_guard_handling(g, cu);
    payq_http_guard_headers_in(g, ck, 10 * MS);
    payq_http_guard_handling(g, ck);
    payq_http_guard_request_done(g, ck, 90 * MS);

    assert_int_equal(payq_http_guard_reap(g, 100 * MS), 0); /* nothing late yet */
    assert_int_equal(payq_http_guard_reap(g, 101 * MS), 1); /* headers never came */
    assert_true(was_shut(idle));
    assert_false(was_shut(body));
    assert_int_equal(payq_http_guard_reap(g, 191 * MS), 1); /* kept-alive: next headers late */
    assert_true(was_shut(kept));
    assert_int_equal(payq_http_guard_reap(g, 351 * MS), 1); /* body late */
    assert_true(was_shut(body));
    assert_int_equal(payq_http_guard_reap(g, 100000 * MS), 0); /* handled: never */
    assert_false(was_shut(busy));

    struct payq_http_guard_stats st;
    payq_http_guard_stats(g, &st);
    assert_int_equal(st.open, 4);
    assert_int_equal(st.timed_out, 3);
    payq_http_guard_close(g, ci);
    payq_http_guard_close(g, cb);
    payq_http_guard_close(g, cu);
    payq_http_guard_close(g, ck);
    payq_http_guard_stats(g, &st);
    assert_int_equal(st.open, 0);
    payq_http_guard_free(g);
    pair_free(idle);
    pair_free(body);
    pair_free(busy);
    pair_free(kept);
}

static void test_eviction(void **state)
{
    (void)state;
    struct payq_http_guard_opts o = {
        .header_timeout_ms = 10000, .body_timeout_ms = 10000, .evict_at = 3};
    struct payq_http_guard *g = payq_http_guard_new(&o);
    struct pair p[5];
    struct payq_http_guard_conn *c[5];
    for (int i = 0; i < 5; i++)
        p[i] = pair_new();
    c[0] = payq_http_guard_open(g, p[0].server, 0);
    payq_http_guard_headers_in(g, c[0], 1); /* reading a body: not evictable */
    c[1] = payq_http_guard_open(g, p[1].server, 2);
    c[2] = payq_http_guard_open(g, p[2].server, 3);
    assert_false(was_shut(p[0]) || was_shut(p[1]) || was_shut(p[2]));
    c[3] = payq_http_guard_open(g, p[3].server, 4); /* over 3: evicts the oldest waiting */
    assert_false(was_shut(p[0]));
    assert_true(was_shut(p[1]));
    assert_false(was_shut(p[2]) || was_shut(p[3]));
    c[4] = payq_http_guard_open(g, p[4].server, 5);
    assert_true(was_shut(p[2]));
    assert_false(was_shut(p[3]) || was_shut(p[4]) || was_shut(p[0]));
    struct payq_http_guard_stats st;
    payq_http_guard_stats(g, &st);
    assert_int_equal(st.evicted, 2);
    for (int i = 0; i < 5; i++) {
        payq_http_guard_close(g, c[i]);
        pair_free(p[i]);
    }
    payq_http_guard_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadlines),
        cmocka_unit_test(test_eviction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
