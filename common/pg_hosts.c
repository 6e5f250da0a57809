/* pg_hosts: a conninfo's hosts, and each host's addresses, in the order a
 * connect tries them. */
#include "pg_hosts.h"

#include <libpq-fe.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"

/* Where a connect last gave up waiting (payq_pg_hosts_hung). */
static pthread_mutex_t g_hung_lock = PTHREAD_MUTEX_INITIALIZER;
static struct payq_pg_host g_hung;
static char g_hung_addr[PAYQ_PG_ADDR_LEN];
static _Atomic int64_t g_hung_at_ns; /* when, payq_clock_mono_ns; 0: never */

void payq_pg_hosts_hung(const char *host, const char *addr, const char *port)
{
    pthread_mutex_lock(&g_hung_lock);
    snprintf(g_hung.name, sizeof g_hung.name, "%s", host ? host : "");
    snprintf(g_hung_addr, sizeof g_hung_addr, "%s", addr ? addr : "");
    snprintf(g_hung.port, sizeof g_hung.port, "%s", port ? port : "");
    atomic_store(&g_hung_at_ns, payq_clock_mono_ns());
    pthread_mutex_unlock(&g_hung_lock);
}

bool payq_pg_hosts_hung_since(const char *host, const char *addr, const char *port,
                              int64_t since_ns)
{
    if (atomic_load(&g_hung_at_ns) <= since_ns)
        return false;
    pthread_mutex_lock(&g_hung_lock);
    bool same = strcmp(g_hung.name, host ? host : "") == 0 &&
                strcmp(g_hung.port, port ? port : "") == 0 &&
                (!g_hung_addr[0] || !addr || !addr[0] || strcmp(g_hung_addr, addr) == 0);
    pthread_mutex_unlock(&g_hung_lock);
    return same;
}

static void hung_get(struct payq_pg_host *h, char *addr)
{
    pthread_mutex_lock(&g_hung_lock);
    *h = g_hung;
    memcpy(addr, g_hung_addr, PAYQ_PG_ADDR_LEN);
    pthread_mutex_unlock(&g_hung_lock);
}

/* Whether h is the hung host: same name, and same port unless h names
 * none (libpq's default). */
static bool is_hung(const struct payq_pg_host *h, const struct payq_pg_host *hung)
{
    return hung->name[0] && strcmp(h->name, hung->name) == 0 &&
           (!h->port[0] || strcmp(h->port, hung->port) == 0);
}

/* The numeric addresses getaddrinfo gives host, in its order, each once. */
static size_t resolve_getaddrinfo(const char *host, char (*addr)[PAYQ_PG_ADDR_LEN], size_t max)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return 0;
    size_t n = 0;
    for (struct addrinfo *a = res; a && n <= max; a = a->ai_next) {
        char buf[PAYQ_PG_ADDR_LEN];
        if (getnameinfo(a->ai_addr, a->ai_addrlen, buf, sizeof buf, NULL, 0, NI_NUMERICHOST) != 0)
            continue;
        bool seen = false;
        for (size_t i = 0; i < n && !seen && i < max; i++)
            seen = strcmp(addr[i], buf) == 0;
        if (seen)
            continue;
        if (n < max)
            snprintf(addr[n], PAYQ_PG_ADDR_LEN, "%s", buf);
        n++; /* max + 1: more than fit */
    }
    freeaddrinfo(res);
    return n;
}

static payq_pg_resolve_fn g_resolve = resolve_getaddrinfo;

void payq_pg_hosts_set_resolve(payq_pg_resolve_fn fn)
{
    g_resolve = fn ? fn : resolve_getaddrinfo;
}

/* Splits a comma-separated list in place; returns the count (0..max), or
 * max + 1 when there are more or an item is empty (libpq's default host:
 * left to libpq). */
static size_t split_list(char *s, char **item, size_t max)
{
    if (!s[0])
        return 0;
    size_t n = 0;
    for (char *t = s;; t++) {
        char *comma = strchr(t, ',');
        if (comma)
            *comma = '\0';
        if (!t[0] || n == max)
            return max + 1;
        item[n++] = t;
        if (!comma)
            return n;
        t = comma;
    }
}

/* The conninfo's own keys for where to connect ("" when not given);
 * whether it uses hostaddr, or has a value too long to hold here (both left
 * to libpq). */
struct conn_keys {
    char hosts[1024], ports[256], timeout[64], attrs[32];
    bool addr, too_long;
};

/* Copies val into out (len bytes); true when it did not fit. */
static bool copy_val(char *out, size_t len, const char *val)
{
    return (size_t)snprintf(out, len, "%s", val) >= len;
}

static bool conn_keys(const char *conninfo, struct conn_keys *ck)
{
    memset(ck, 0, sizeof *ck);
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (!opts)
        return false;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !o->val[0])
            continue;
        if (strcmp(o->keyword, "host") == 0)
            ck->too_long |= copy_val(ck->hosts, sizeof ck->hosts, o->val);
        else if (strcmp(o->keyword, "port") == 0)
            ck->too_long |= copy_val(ck->ports, sizeof ck->ports, o->val);
        else if (strcmp(o->keyword, "connect_timeout") == 0)
            ck->too_long |= copy_val(ck->timeout, sizeof ck->timeout, o->val);
        else if (strcmp(o->keyword, "target_session_attrs") == 0)
            ck->too_long |= copy_val(ck->attrs, sizeof ck->attrs, o->val);
        else if (strcmp(o->keyword, "hostaddr") == 0)
            ck->addr = true;
    }
    PQconninfoFree(opts);
    return true;
}

/* libpq's connect_timeout in ms: 0 or less is none, below 2 s is 2 s. */
static int timeout_ms(const char *seconds)
{
    long s = strtol(seconds, NULL, 10); /* LONG_MAX or LONG_MIN when out of range */
    return s <= 0 ? 0 : s < 2 ? 2000 : s > INT_MAX / 1000 ? INT_MAX / 1000 * 1000 : (int)s * 1000;
}

/* Moves item k of n (each size bytes) to the end. */
static void move_last(void *items, size_t n, size_t k, size_t size)
{
    char tmp[sizeof(struct payq_pg_host) > PAYQ_PG_ADDR_LEN ? sizeof(struct payq_pg_host)
                                                            : PAYQ_PG_ADDR_LEN];
    char *base = items;
    memcpy(tmp, base + k * size, size);
    memmove(base + k * size, base + (k + 1) * size, (n - k - 1) * size);
    memcpy(base + (n - 1) * size, tmp, size);
}

bool payq_pg_hosts(const char *conninfo, const char *dflt_timeout, struct payq_pg_hosts *hs)
{
    memset(hs, 0, sizeof *hs);
    hs->libpq_hosts = 1;
    struct conn_keys ck;
    if (!conn_keys(conninfo, &ck))
        return false;
    hs->per_host_ms = timeout_ms(ck.timeout[0] ? ck.timeout : dflt_timeout);
    hs->prefer_standby = strcmp(ck.attrs, "prefer-standby") == 0;
    for (const char *c = ck.hosts; *c; c++)
        hs->libpq_hosts += *c == ',';
    char *h[PAYQ_PG_HOSTS_MAX], *p[PAYQ_PG_HOSTS_MAX];
    size_t nh = split_list(ck.hosts, h, PAYQ_PG_HOSTS_MAX);
    size_t np = split_list(ck.ports, p, PAYQ_PG_HOSTS_MAX);
    if (ck.addr || ck.too_long || nh == 0 || nh > PAYQ_PG_HOSTS_MAX || (np != nh && np > 1))
        return true;
    for (size_t i = 0; i < nh; i++) {
        struct payq_pg_host *t = &hs->host[i];
        const char *port = np == nh ? p[i] : np == 1 ? p[0] : "";
        if (strlen(h[i]) >= sizeof t->name || strlen(port) >= sizeof t->port)
            return true; /* hs->n stays 0: libpq's own order */
        snprintf(t->name, sizeof t->name, "%s", h[i]);
        snprintf(t->port, sizeof t->port, "%s", port);
    }
    hs->n = nh;
    struct payq_pg_host hung;
    char hung_addr[PAYQ_PG_ADDR_LEN];
    hung_get(&hung, hung_addr);
    for (size_t k = 0; k + 1 < hs->n; k++)
        if (is_hung(&hs->host[k], &hung)) {
            move_last(hs->host, hs->n, k, sizeof hs->host[0]);
            break;
        }
    return true;
}

size_t payq_pg_host_addrs(const struct payq_pg_host *h, char (*addr)[PAYQ_PG_ADDR_LEN])
{
    /* A socket directory, or an abstract socket, has no address. */
    if (h->name[0] == '/' || h->name[0] == '@')
        return 0;
    size_t n = g_resolve(h->name, addr, PAYQ_PG_ADDRS_MAX);
    if (n > PAYQ_PG_ADDRS_MAX)
        return 0;
    struct payq_pg_host hung;
    char hung_addr[PAYQ_PG_ADDR_LEN];
    hung_get(&hung, hung_addr);
    if (!is_hung(h, &hung))
        return n;
    for (size_t k = 0; k + 1 < n; k++)
        if (strcmp(addr[k], hung_addr) == 0) {
            move_last(addr, n, k, PAYQ_PG_ADDR_LEN);
            break;
        }
    return n;
}
