/* mgmt_http: a raw HTTP/1.0 GET to the RabbitMQ management API. */
#include "mgmt_http.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "message.h"

#define MGMT_MAX_RESPONSE (4u << 20)

struct http_url {
    char user[256];
    char pass[256];
    char host[256];
    char port[8];
    char prefix[512];
};

void payq_mgmt_base64(const unsigned char *src, size_t len, char *dst)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)src[i + 1] << 8;
        if (i + 2 < len)
            v |= src[i + 2];
        dst[o++] = tab[(v >> 18) & 63];
        dst[o++] = tab[(v >> 12) & 63];
        dst[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        dst[o++] = i + 2 < len ? tab[v & 63] : '=';
    }
    dst[o] = '\0';
}

/* Copies src[0..n) into dst[cap] decoding %XX (userinfo may be encoded). */
static int pct_decode(const char *src, size_t n, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '%' && i + 2 < n && payq_hex_digit(src[i + 1]) >= 0 &&
            payq_hex_digit(src[i + 2]) >= 0) {
            c = (char)(payq_hex_digit(src[i + 1]) * 16 + payq_hex_digit(src[i + 2]));
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        dst[o++] = c;
    }
    dst[o] = '\0';
    return 0;
}

static void pct_encode(struct payq_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~')
            payq_buf_putc(b, (char)c);
        else
            payq_buf_printf(b, "%%%02X", c);
    }
}

static int copy_part(char *dst, size_t cap, const char *src, size_t n)
{
    if (n >= cap)
        return -1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

/* Splits http://[user[:pass]@]host[:port][/prefix] ([v6] hosts too). */
static int parse_url(const char *url, struct http_url *u, const char **why)
{
    memset(u, 0, sizeof *u);
    *why = "must start with http://";
    if (strncmp(url, "http://", 7) != 0)
        return -1;
    const char *p = url + 7, *slash = strchr(p, '/');
    const char *end = slash ? slash : p + strlen(p), *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    *why = "has a user or password that is too long";
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *ue = colon ? colon : at;
        if (pct_decode(p, (size_t)(ue - p), u->user, sizeof u->user) != 0 ||
            (colon &&
             pct_decode(colon + 1, (size_t)(at - colon - 1), u->pass, sizeof u->pass) != 0))
            return -1;
        p = at + 1;
    }
    const char *hend = p, *pstart = NULL;
    if (*p == '[') {
        hend = memchr(p, ']', (size_t)(end - p));
        *why = "has an unterminated [IPv6] host";
        if (!hend)
            return -1;
        p++;
        pstart = hend + 1 < end && hend[1] == ':' ? hend + 2 : NULL;
    } else {
        hend = memchr(p, ':', (size_t)(end - p));
        pstart = hend ? hend + 1 : NULL;
        if (!hend)
            hend = end;
    }
    *why = "has an invalid host or port";
    if (hend == p || copy_part(u->host, sizeof u->host, p, (size_t)(hend - p)) != 0 ||
        copy_part(u->port, sizeof u->port, pstart ? pstart : "80",
                  pstart ? (size_t)(end - pstart) : 2) != 0 ||
        !u->port[0])
        return -1;
    size_t plen = slash ? strlen(slash) : 0;
    while (plen && slash[plen - 1] == '/')
        plen--;
    *why = "has a path that is too long";
    return copy_part(u->prefix, sizeof u->prefix, slash ? slash : "", plen);
}

/* Connects with a bounded wait and sets send/receive timeouts. */
static int dial(const struct http_url *u, int timeout_ms, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(u->host, u->port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(gai));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0)
            continue;
        int rc = connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            socklen_t sl = sizeof saved;
            rc = poll(&pfd, 1, timeout_ms) == 1 &&
                         getsockopt(fd, SOL_SOCKET, SO_ERROR, &saved, &sl) == 0 && saved == 0
                     ? 0
                     : -1;
            if (rc != 0 && saved == 0)
                saved = ETIMEDOUT;
        } else if (rc != 0) {
            saved = errno;
        }
        if (rc != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "cannot connect to %s:%s: %s", u->host, u->port,
                 strerror(saved ? saved : ECONNREFUSED));
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sends the GET and reads the whole response (HTTP/1.0: until close). */
static int exchange(int fd, const struct http_url *u, const char *path, struct payq_buf *resp,
                    char *err, size_t errlen)
{
    char cred[520], auth[720];
    struct payq_buf req = PAYQ_BUF_INIT;
    payq_buf_printf(&req, "GET %s HTTP/1.0\r\nHost: %s:%s\r\nAccept: application/json\r\n", path,
                    u->host, u->port);
    if (u->user[0]) {
        int n = snprintf(cred, sizeof cred, "%s:%s", u->user, u->pass);
        payq_mgmt_base64((const unsigned char *)cred, (size_t)n, auth);
        payq_buf_printf(&req, "Authorization: Basic %s\r\n", auth);
    }
    payq_buf_puts(&req, "Connection: close\r\n\r\n");
    int rc = send_all(fd, req.data, req.len);
    payq_buf_free(&req);
    if (rc != 0) {
        snprintf(err, errlen, "cannot send the request: %s", strerror(errno));
        return -1;
    }
    char chunk[16384];
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "no complete response: %s", strerror(errno));
            return -1;
        }
        if (n == 0)
            return 0;
        if (resp->len + (size_t)n > MGMT_MAX_RESPONSE) {
            snprintf(err, errlen, "the response is larger than %u bytes", MGMT_MAX_RESPONSE);
            return -1;
        }
        payq_buf_append(resp, chunk, (size_t)n);
    }
}

static int64_t json_int(const cJSON *obj, const char *key, bool *present)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v))
        return 0;
    if (present)
        *present = true;
    return (int64_t)v->valuedouble; /* a message count, never money */
}

/* Checks the status line and reads the counts from the JSON body. */
static int parse_response(const struct payq_buf *resp, const char *queue,
                          struct payq_mgmt_queue *out, char *err, size_t errlen)
{
    int status = 0;
    if (resp->len < 12 || sscanf(resp->data, "HTTP/1.%*d %d", &status) != 1) {
        snprintf(err, errlen, "not an HTTP response");
        return -1;
    }
    if (status == 401) {
        snprintf(err, errlen, "HTTP 401: the credentials in the management URL were refused");
        return -1;
    }
    if (status == 404) {
        snprintf(err, errlen, "HTTP 404: no queue %s in that vhost", queue);
        return -1;
    }
    if (status != 200) {
        snprintf(err, errlen, "HTTP %d from the management API", status);
        return -1;
    }
    const char *body = strstr(resp->data, "\r\n\r\n");
    cJSON *root = body ? cJSON_Parse(body + 4) : NULL;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        snprintf(err, errlen, "the response body is not a JSON object");
        return -1;
    }
    *out = (struct payq_mgmt_queue){0};
    out->ready = json_int(root, "messages_ready", &out->has_counts);
    out->unacked = json_int(root, "messages_unacknowledged", &out->has_counts);
    out->consumers = json_int(root, "consumers", NULL);
    cJSON_Delete(root);
    return 0;
}

int payq_mgmt_queue_get(const char *mgmt_url, const char *vhost, const char *queue, int timeout_ms,
                        struct payq_mgmt_queue *out, char *err, size_t errlen)
{
    struct http_url u;
    const char *why;
    struct payq_buf path = PAYQ_BUF_INIT, resp = PAYQ_BUF_INIT;
    int rc = -1, fd = -1;
    if (parse_url(mgmt_url, &u, &why) != 0) {
        snprintf(err, errlen, "the management URL %s", why);
        goto out;
    }
    payq_buf_printf(&path, "%s/api/queues/", u.prefix);
    pct_encode(&path, vhost);
    payq_buf_putc(&path, '/');
    pct_encode(&path, queue);
    fd = dial(&u, timeout_ms, err, errlen);
    if (fd < 0 || exchange(fd, &u, path.data, &resp, err, errlen) != 0)
        goto out;
    rc = parse_response(&resp, queue, out, err, errlen);
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0) {
        char shown[512];
        payq_log_redact(mgmt_url, shown, sizeof shown);
        struct payq_log_rec r;
        payq_log_begin(&r, PAYQ_LOG_ERROR, "mgmt_api_failed");
        payq_log_str(&r, "url", shown);
        payq_log_str(&r, "queue", queue);
        payq_log_str(&r, "error", err);
        payq_log_end(&r);
    }
    payq_buf_free(&path);
    payq_buf_free(&resp);
    return rc;
}
