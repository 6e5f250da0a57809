/* fuzz_pg_hosts: libFuzzer target for the split of a conninfo's hosts, and
 * of each host's addresses, in the order a connect tries them
 * (common/pg_hosts.c). The input is the conninfo; a name resolves to 0-3
 * made-up addresses by its length, so no DNS is asked. Besides the
 * sanitizers, it checks the split's promises: at most PAYQ_PG_HOSTS_MAX
 * hosts, each named, at most PAYQ_PG_ADDRS_MAX addresses, every string
 * terminated, a connect_timeout of 0 or at least 2 s, and libpq's host
 * count at least 1. */
#include "pg_hosts.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t made_up(const char *host, char (*addr)[PAYQ_PG_ADDR_LEN], size_t max)
{
    size_t n = strlen(host) % 4;
    for (size_t i = 0; i < n && i < max; i++)
        snprintf(addr[i], PAYQ_PG_ADDR_LEN, "10.0.0.%zu", i + 1);
    return n;
}

static void check_str(const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once++)
        payq_pg_hosts_set_resolve(made_up);
    char *conninfo = malloc(size + 1);
    if (!conninfo)
        return 0;
    memcpy(conninfo, data, size);
    conninfo[size] = '\0';
    struct payq_pg_hosts hs;
    if (payq_pg_hosts(conninfo, "5", &hs)) {
        if (hs.n > PAYQ_PG_HOSTS_MAX || hs.libpq_hosts < 1 || hs.per_host_ms < 0 ||
            (hs.per_host_ms > 0 && hs.per_host_ms < 2000))
            abort();
        for (size_t i = 0; i < hs.n; i++) {
            const struct payq_pg_host *h = &hs.host[i];
            check_str(h->name, sizeof h->name);
            check_str(h->port, sizeof h->port);
            if (!h->name[0])
                abort();
            char addr[PAYQ_PG_ADDRS_MAX][PAYQ_PG_ADDR_LEN];
            size_t na = payq_pg_host_addrs(h, addr);
            if (na > PAYQ_PG_ADDRS_MAX)
                abort();
            for (size_t a = 0; a < na; a++)
                check_str(addr[a], sizeof addr[a]);
        }
        /* The next connect's order puts this one last. */
        if (hs.n > 0)
            payq_pg_hosts_hung(hs.host[0].name, "10.0.0.1", hs.host[0].port);
    }
    free(conninfo);
    return 0;
}
