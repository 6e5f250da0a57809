/* test_pg_hosts: a conninfo's hosts, and each host's addresses, in the
 * order payq's connect tries them (common/pg_hosts.c), with a resolver
 * that knows a few names: the host and the address that hung go last, and
 * what payq cannot split is left to libpq. No server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "pg_hosts.h"

/* db.test has three addresses, one.test one, many.test seventeen; nothing
 * else resolves except numeric addresses (themselves). */
static size_t fake_resolve(const char *host, char (*addr)[PAYQ_PG_ADDR_LEN], size_t max)
{
    static const char *const db[] = {"10.0.0.1", "10.0.0.2", "fd00::3"};
    size_t n = 0;
    if (strcmp(host, "db.test") == 0) {
        for (; n < 3 && n < max; n++)
            snprintf(addr[n], PAYQ_PG_ADDR_LEN, "%s", db[n]);
        return 3;
    }
    if (strcmp(host, "one.test") == 0 || (host[0] >= '0' && host[0] <= '9')) {
        if (max > 0)
            snprintf(addr[0], PAYQ_PG_ADDR_LEN, "%s",
                     strcmp(host, "one.test") == 0 ? "10.0.1.1" : host);
        return 1;
    }
    if (host[0] == '/')
        fail_msg("a socket directory was resolved: %s", host);
    if (strcmp(host, "many.test") == 0) {
        for (; n < 17 && n < max; n++)
            snprintf(addr[n], PAYQ_PG_ADDR_LEN, "10.0.2.%zu", n + 1);
        return 17;
    }
    return 0;
}

static int setup(void **state)
{
    (void)state;
    payq_pg_hosts_set_resolve(fake_resolve);
    payq_pg_hosts_hung("", "", "");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    payq_pg_hosts_set_resolve(NULL);
    payq_pg_hosts_hung("", "", "");
    return 0;
}

/* The hosts of conninfo as "name:port ..." ("libpq N" when n is 0). */
static const char *hosts(const char *conninfo, struct payq_pg_hosts *hs)
{
    static char out[1024];
    assert_true(payq_pg_hosts(conninfo, "5", hs));
    if (hs->n == 0) {
        snprintf(out, sizeof out, "libpq %zu", hs->libpq_hosts);
        return out;
    }
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < hs->n; i++)
        used += (size_t)snprintf(out + used, sizeof out - used, "%s%s:%s", i ? " " : "",
                                 hs->host[i].name, hs->host[i].port);
    return out;
}

/* The addresses of host name on port as "a b ..." ("-" for none). */
static const char *addrs(const char *name, const char *port)
{
    static char out[1024];
    struct payq_pg_host h;
    snprintf(h.name, sizeof h.name, "%s", name);
    snprintf(h.port, sizeof h.port, "%s", port);
    char addr[PAYQ_PG_ADDRS_MAX][PAYQ_PG_ADDR_LEN];
    size_t n = payq_pg_host_addrs(&h, addr);
    size_t used = 0;
    snprintf(out, sizeof out, "-");
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(out + used, sizeof out - used, "%s%s", i ? " " : "", addr[i]);
    return out;
}

static void test_hosts_and_ports(void **state)
{
    (void)state;
    struct payq_pg_hosts hs;
    assert_string_equal(hosts("host=one.test,db.test port=1,2 dbname=x", &hs),
                        "one.test:1 db.test:2");
    /* One port for every host, or none (libpq's default). */
    assert_string_equal(hosts("host=127.0.0.1,one.test port=7 dbname=x", &hs),
                        "127.0.0.1:7 one.test:7");
    assert_string_equal(hosts("host=one.test dbname=x", &hs), "one.test:");
    assert_string_equal(hosts("postgresql://u@one.test:5,db.test:6/x", &hs),
                        "one.test:5 db.test:6");
}

/* Each address of a name, in the resolver's order. A name that does not
 * resolve, one with more addresses than fit and a socket directory (never
 * resolved) have none: libpq is given the name. */
static void test_addresses(void **state)
{
    (void)state;
    assert_string_equal(addrs("db.test", "5432"), "10.0.0.1 10.0.0.2 fd00::3");
    assert_string_equal(addrs("one.test", ""), "10.0.1.1");
    assert_string_equal(addrs("127.0.0.1", "1"), "127.0.0.1");
    assert_string_equal(addrs("nowhere.test", "1"), "-");
    assert_string_equal(addrs("many.test", "1"), "-");
    assert_string_equal(addrs("/run/postgresql", "5432"), "-");
}

/* What payq does not split is left to libpq, with how many hosts it names
 * (its wait is that many connect_timeouts). */
static void test_left_to_libpq(void **state)
{
    (void)state;
    struct payq_pg_hosts hs;
    assert_string_equal(hosts("host=db.test hostaddr=10.0.0.9 dbname=x", &hs), "libpq 1");
    assert_string_equal(hosts("host=a.test,b.test,c.test port=1,2 dbname=x", &hs), "libpq 3");
    assert_string_equal(hosts("dbname=x", &hs), "libpq 1");
    assert_string_equal(hosts("host=one.test,,db.test dbname=x", &hs), "libpq 3");
    assert_string_equal(hosts("host=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q dbname=x", &hs), "libpq 17");
    char longname[400];
    memset(longname, 'a', 300);
    snprintf(longname + 300, sizeof longname - 300, ",one.test");
    char ci[512];
    snprintf(ci, sizeof ci, "host=%s dbname=x", longname);
    assert_string_equal(hosts(ci, &hs), "libpq 2");
    assert_false(payq_pg_hosts("host='unterminated", "5", &hs));
}

/* The host a connect gave up on goes last, and so does its address among
 * its name's; the others keep their order. Another port is another
 * server; a host that names no port matches any. */
static void test_hung_last(void **state)
{
    (void)state;
    struct payq_pg_hosts hs;
    payq_pg_hosts_hung("db.test", "10.0.0.1", "5432");
    assert_string_equal(hosts("host=db.test,one.test port=5432 dbname=x", &hs),
                        "one.test:5432 db.test:5432");
    assert_string_equal(addrs("db.test", "5432"), "10.0.0.2 fd00::3 10.0.0.1");
    assert_string_equal(hosts("host=db.test,one.test port=6432 dbname=x", &hs),
                        "db.test:6432 one.test:6432");
    assert_string_equal(addrs("db.test", "6432"), "10.0.0.1 10.0.0.2 fd00::3");
    assert_string_equal(hosts("host=db.test,one.test dbname=x", &hs), "one.test: db.test:");
    assert_string_equal(addrs("db.test", ""), "10.0.0.2 fd00::3 10.0.0.1");
    /* A name without an address is remembered by its name. */
    payq_pg_hosts_hung("nowhere.test", "", "1");
    assert_string_equal(hosts("host=nowhere.test,one.test port=1,2 dbname=x", &hs),
                        "one.test:2 nowhere.test:1");
}

/* A connection opened before its server was remembered as hung is named
 * (its thread reconnects); one opened after, or to another server, is not. */
static void test_hung_since(void **state)
{
    (void)state;
    int64_t before = payq_clock_mono_ns() - 1;
    payq_pg_hosts_hung("db.test", "10.0.0.1", "5432");
    int64_t after = payq_clock_mono_ns();
    assert_true(payq_pg_hosts_hung_since("db.test", "10.0.0.1", "5432", before));
    assert_false(payq_pg_hosts_hung_since("db.test", "10.0.0.1", "5432", after));
    assert_false(payq_pg_hosts_hung_since("db.test", "10.0.0.2", "5432", before));
    assert_false(payq_pg_hosts_hung_since("db.test", "10.0.0.1", "6432", before));
    assert_false(payq_pg_hosts_hung_since("one.test", "10.0.0.1", "5432", before));
    /* A socket, or a name remembered without an address: by name and port. */
    assert_true(payq_pg_hosts_hung_since("db.test", "", "5432", before));
    payq_pg_hosts_hung("/run/pg", "", "5432");
    assert_true(payq_pg_hosts_hung_since("/run/pg", "", "5432", after));
    assert_false(payq_pg_hosts_hung_since("db.test", "10.0.0.1", "5432", before));
}

/* connect_timeout in ms as libpq reads it, and prefer-standby. */
static void test_timeout_and_attrs(void **state)
{
    (void)state;
    struct payq_pg_hosts hs;
    hosts("host=one.test dbname=x", &hs);
    assert_int_equal(hs.per_host_ms, 5000);
    assert_false(hs.prefer_standby);
    hosts("host=one.test connect_timeout=1 target_session_attrs=prefer-standby", &hs);
    assert_int_equal(hs.per_host_ms, 2000);
    assert_true(hs.prefer_standby);
    hosts("host=one.test connect_timeout=0 target_session_attrs=read-write", &hs);
    assert_int_equal(hs.per_host_ms, 0);
    assert_false(hs.prefer_standby);
    hosts("host=one.test connect_timeout=99999999999999999999", &hs);
    assert_int_equal(hs.per_host_ms, 2147483000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hosts_and_ports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_addresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_left_to_libpq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hung_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_and_attrs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hung_since, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
