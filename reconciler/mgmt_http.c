/* mgmt_http: the management API's queue counts, through libcurl. */
#include "mgmt_http.h"
#include "alloc.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"

#define MGMT_MAX_RESPONSE (4u << 20)
#define MGMT_MAX_URLS 32

int payq_mgmt_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

/* Collects the body, refusing more than MGMT_MAX_RESPONSE bytes. */
static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    struct payq_buf *b = ctx;
    size_t len = size * n;
    if (b->len + len > MGMT_MAX_RESPONSE)
        return 0; /* CURLE_WRITE_ERROR */
    payq_buf_append(b, data, len);
    return len;
}

/* <base>/api/queues/<vhost>/<queue>, with vhost and queue escaped ("/" is
 * the default vhost's name and must become %2F). The base keeps its
 * userinfo: libcurl turns it into Basic auth. Returns NULL if the base is
 * not a URL libcurl can read. Free with curl_url_cleanup(). */
static CURLU *queue_url(CURL *h, const char *base, const char *vhost, const char *queue)
{
    CURLU *u = curl_url();
    char *path = NULL, *ev = curl_easy_escape(h, vhost, 0), *eq = curl_easy_escape(h, queue, 0);
    struct payq_buf p = PAYQ_BUF_INIT;
    if (!u || !ev || !eq || curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        u = NULL;
        goto out;
    }
    size_t plen = strlen(path);
    while (plen && path[plen - 1] == '/')
        plen--;
    payq_buf_append(&p, path, plen);
    payq_buf_printf(&p, "/api/queues/%s/%s", ev, eq);
    if (curl_url_set(u, CURLUPART_PATH, p.data, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        u = NULL;
    }
out:
    curl_free(path);
    curl_free(ev);
    curl_free(eq);
    payq_buf_free(&p);
    return u;
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

/* Reads the counts from an HTTP 200 body. */
static int parse_body(const struct payq_buf *body, struct payq_mgmt_queue *out, char *err,
                      size_t errlen)
{
    cJSON *root = body->len ? cJSON_ParseWithLength(body->data, body->len) : NULL;
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

enum try_result { TRY_ANSWERED = 0, TRY_FAILED, TRY_NEXT };

/* One GET against one base URL. TRY_NEXT: no answer (unreachable, timed
 * out, 5xx): the next URL may do better. */
static enum try_result try_one(CURL *h, const char *base, const char *vhost, const char *queue,
                               int timeout_ms, struct payq_mgmt_queue *out, char *err,
                               size_t errlen)
{
    struct payq_buf body = PAYQ_BUF_INIT;
    char cerr[CURL_ERROR_SIZE] = "";
    CURLU *u = queue_url(h, base, vhost, queue);
    if (!u) {
        snprintf(err, errlen, "the management URL is not a valid URL");
        return TRY_FAILED;
    }
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_CURLU, u);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "payq-reconciler");
    struct curl_slist *hdr = curl_slist_append(NULL, "Accept: application/json");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    enum try_result r = TRY_FAILED;
    if (cc == CURLE_WRITE_ERROR)
        snprintf(err, errlen, "the response is larger than %u bytes", MGMT_MAX_RESPONSE);
    else if (cc != CURLE_OK)
        r = (snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(cc)), TRY_NEXT);
    else if (status == 401)
        snprintf(err, errlen, "HTTP 401: the credentials in the management URL were refused");
    else if (status == 404)
        snprintf(err, errlen, "HTTP 404: no queue %s in that vhost", queue);
    else if (status >= 500)
        r = (snprintf(err, errlen, "HTTP %ld from the management API", status), TRY_NEXT);
    else if (status != 200)
        snprintf(err, errlen, "HTTP %ld from the management API", status);
    else if (parse_body(&body, out, err, errlen) == 0)
        r = TRY_ANSWERED;
    curl_slist_free_all(hdr);
    curl_url_cleanup(u);
    payq_buf_free(&body);
    return r;
}

static void log_failure(const char *base, const char *queue, const char *err)
{
    char shown[512];
    payq_log_redact(base, shown, sizeof shown);
    struct payq_log_rec r;
    payq_log_begin(&r, PAYQ_LOG_ERROR, "mgmt_api_failed");
    payq_log_str(&r, "url", shown);
    payq_log_str(&r, "queue", queue);
    payq_log_str(&r, "error", err);
    payq_log_end(&r);
}

int payq_mgmt_queue_get(const char *mgmt_urls, const char *vhost, const char *queue, int timeout_ms,
                        struct payq_mgmt_queue *out, char *err, size_t errlen)
{
    CURL *h = curl_easy_init();
    char *list = payq_xstrdup(mgmt_urls);
    if (!h)
        payq_oom(0); /* curl_easy_init fails only when out of memory */
    enum try_result r = TRY_NEXT;
    int tried = 0;
    char *save = NULL;
    snprintf(err, errlen, "no management URL configured");
    for (char *base = strtok_r(list, ",", &save); base && r == TRY_NEXT && tried < MGMT_MAX_URLS;
         base = strtok_r(NULL, ",", &save)) {
        base += strspn(base, " ");
        if (!*base)
            continue;
        tried++;
        r = try_one(h, base, vhost, queue, timeout_ms, out, err, errlen);
        if (r != TRY_ANSWERED)
            log_failure(base, queue, err);
    }
    if (r == TRY_NEXT && tried > 1) {
        char last[256];
        snprintf(last, sizeof last, "%s", err);
        snprintf(err, errlen, "none of the %d management URLs answered (last: %s)", tried, last);
    }
    free(list);
    curl_easy_cleanup(h);
    return r == TRY_ANSWERED ? 0 : -1;
}
