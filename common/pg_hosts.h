/* pg_hosts: where a connect goes, host by host and address by address.
 * libpq's blocking connect gives each address of each host its
 * connect_timeout and moves on; payq's connect is polled (so that a wait
 * ticks and heeds a stop, see pg.h), and a polled libpq connect cannot be
 * told to move on from an address that does not answer: given a name with
 * several addresses, it would spend the whole wait on the first. So payq
 * resolves each host name when its turn comes, as libpq would, and gives
 * libpq one address at a time (host for TLS and the password file,
 * hostaddr for where to go). The host and the address a connect last gave
 * up on are tried last. */
#ifndef PAYQ_PG_HOSTS_H
#define PAYQ_PG_HOSTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAYQ_PG_HOSTS_MAX 16
#define PAYQ_PG_ADDRS_MAX 16
#define PAYQ_PG_ADDR_LEN 64

/* One host of a conninfo. */
struct payq_pg_host {
    char name[256]; /* as the conninfo names it */
    char port[16];  /* "" when the conninfo names none */
};

/* What a conninfo says of where to connect. */
struct payq_pg_hosts {
    struct payq_pg_host host[PAYQ_PG_HOSTS_MAX];
    size_t n;            /* 0: libpq goes through the conninfo on its own (it uses
                            hostaddr, its ports do not pair with its hosts, it names
                            no host, an empty one, or more than PAYQ_PG_HOSTS_MAX) */
    size_t libpq_hosts;  /* the hosts it names (at least 1): when n is 0, libpq's own
                            wait is that many connect_timeouts */
    int per_host_ms;     /* connect_timeout in ms (0: none; below 2 s is 2 s, as libpq) */
    bool prefer_standby; /* target_session_attrs=prefer-standby: two passes */
};

/* Fills hosts from conninfo, with dflt_timeout (seconds, as a string) where
 * it names no connect_timeout, the host remembered by payq_pg_hosts_hung
 * last. Resolves nothing. False when libpq cannot parse conninfo (it says
 * why when connecting). */
bool payq_pg_hosts(const char *conninfo, const char *dflt_timeout, struct payq_pg_hosts *hosts);

/* Resolves h into up to PAYQ_PG_ADDRS_MAX numeric addresses in addr, the
 * one remembered by payq_pg_hosts_hung last; returns how many. 0: libpq is
 * to go to h by its name (a socket directory, a name that does not
 * resolve, which libpq will say, or one with more addresses than fit). */
size_t payq_pg_host_addrs(const struct payq_pg_host *h, char (*addr)[PAYQ_PG_ADDR_LEN]);

/* Remembers where a connect gave up waiting, or where a connection's
 * server stopped answering (a frozen node): the host as named, its numeric
 * address ("" if none), the port. Thread-safe. */
void payq_pg_hosts_hung(const char *host, const char *addr, const char *port);

/* Whether host, addr ("" if none) and port are where payq_pg_hosts_hung was
 * last told, after since_ns (payq_clock_mono_ns): a connection opened
 * before its server stopped answering. One atomic load when nothing was
 * remembered since. */
bool payq_pg_hosts_hung_since(const char *host, const char *addr, const char *port,
                              int64_t since_ns);

/* Writes up to max numeric addresses of host into addr; returns how many
 * it has (more than max: they did not fit; 0: it does not resolve). */
typedef size_t (*payq_pg_resolve_fn)(const char *host, char (*addr)[PAYQ_PG_ADDR_LEN], size_t max);

/* Tests: resolve with fn instead of getaddrinfo (NULL: getaddrinfo again).
 * Set before any connect runs. */
void payq_pg_hosts_set_resolve(payq_pg_resolve_fn fn);

#endif
