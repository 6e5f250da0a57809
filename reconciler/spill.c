/* spill: bucket files for the Grace hash join, in a private directory. */
#include "spill.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"
#include "strmap.h"

#define SPILL_BUFFER_TOTAL (16u << 20)
#define SPILL_BUFFER_MIN 4096u
#define SPILL_BUFFER_MAX (256u << 10)
#define SPILL_STRINGS 5

/* Fixed part of a record, before its strings. */
struct spill_hdr {
    uint32_t len; /* whole record, header included */
    uint8_t status;
    int64_t amount;
    uint64_t seq;
    uint8_t hash[32];
    char currency[4];
    uint8_t body_dated;
};
#define HDR_SIZE (4 + 1 + 8 + 8 + 32 + 4 + 1)

struct payq_spill {
    char dir[4096];
    int buckets;
    size_t buf_limit;
    /* Per side, so that the audit stream and the ledger scan can be
     * written from two threads at once (one side each). */
    struct payq_buf *bufs[2]; /* per side, per bucket; NULL until first put */
    bool failed[2];
    uint64_t bytes[2];
};

static const char side_prefix[2] = {'a', 'l'};

int payq_spill_new(const char *parent, int buckets, struct payq_spill **out)
{
    *out = NULL;
    struct payq_spill *s = payq_xcalloc(1, sizeof *s);
    s->buckets = buckets < 1 ? 1 : buckets;
    size_t per = SPILL_BUFFER_TOTAL / (size_t)s->buckets;
    s->buf_limit = per < SPILL_BUFFER_MIN   ? SPILL_BUFFER_MIN
                   : per > SPILL_BUFFER_MAX ? SPILL_BUFFER_MAX
                                            : per;
    int n = snprintf(s->dir, sizeof s->dir, "%s/payq-recon.XXXXXX", parent);
    if (n < 0 || (size_t)n >= sizeof s->dir || !mkdtemp(s->dir)) {
        payq_log(PAYQ_LOG_ERROR, "spill_failed", "could not create a directory in \"%s\": %s",
                 parent, n >= 0 && (size_t)n < sizeof s->dir ? strerror(errno) : "path too long");
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

char *payq_spill_path(const struct payq_spill *s, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", s->dir, name);
    return buf;
}

static char *bucket_path(const struct payq_spill *s, int side, int bucket, char *buf, size_t len)
{
    char name[16];
    snprintf(name, sizeof name, "%c%04d", side_prefix[side], bucket);
    return payq_spill_path(s, name, buf, len);
}

static void free_bufs(struct payq_spill *s, int side)
{
    if (!s->bufs[side])
        return;
    for (int b = 0; b < s->buckets; b++)
        payq_buf_free(&s->bufs[side][b]);
    free(s->bufs[side]);
    s->bufs[side] = NULL;
}

void payq_spill_free(struct payq_spill *s)
{
    if (!s)
        return;
    free_bufs(s, 0);
    free_bufs(s, 1);
    DIR *d = opendir(s->dir);
    if (d) {
        struct dirent *e;
        char path[4096 + 256];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", s->dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    if (rmdir(s->dir) != 0)
        payq_log(PAYQ_LOG_WARN, "spill_cleanup_failed", "could not remove \"%s\": %s", s->dir,
                 strerror(errno));
    free(s);
}

int payq_spill_buckets(const struct payq_spill *s)
{
    return s->buckets;
}

uint64_t payq_spill_bytes(const struct payq_spill *s)
{
    return s->bytes[0] + s->bytes[1];
}

/* Mixes the id hash before taking its high bits: payq_strmap indexes its
 * slots by the low bits of the same hash, and every id of a bucket would
 * otherwise share them. */
static int bucket_of(const struct payq_spill *s, const char *id)
{
    uint64_t h = payq_strhash(id);
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return (int)(((h >> 32) * (uint64_t)s->buckets) >> 32);
}

static int append_file(struct payq_spill *s, int side, int bucket, const struct payq_buf *b)
{
    char path[4200];
    bucket_path(s, side, bucket, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    size_t done = 0;
    while (fd >= 0 && done < b->len) {
        ssize_t w = write(fd, b->data + done, b->len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    int saved = errno;
    /* close() reports delayed write errors (NFS, quotas): they count too. */
    if (fd >= 0 && close(fd) != 0 && done == b->len) {
        saved = errno;
        done = 0;
    }
    if (fd < 0 || done != b->len) {
        payq_log(PAYQ_LOG_ERROR, "spill_failed", "could not write file \"%s\": %s", path,
                 strerror(saved));
        s->failed[side] = true;
        return -1;
    }
    s->bytes[side] += b->len;
    return 0;
}

void payq_spill_encode(struct payq_buf *out, const struct payq_spill_rec *r)
{
    const char *strs[SPILL_STRINGS] = {r->id, r->batch_id, r->debit, r->credit, r->reason};
    size_t lens[SPILL_STRINGS], total = HDR_SIZE;
    for (int i = 0; i < SPILL_STRINGS; i++) {
        lens[i] = strlen(strs[i] ? strs[i] : "") + 1;
        total += lens[i];
    }
    unsigned char h[HDR_SIZE];
    uint32_t len = (uint32_t)total;
    memcpy(h, &len, 4);
    h[4] = r->status;
    memcpy(h + 5, &r->amount, 8);
    memcpy(h + 13, &r->seq, 8);
    memcpy(h + 21, r->hash, 32);
    memcpy(h + 53, r->currency, 4);
    h[57] = r->body_dated ? 1 : 0;
    payq_buf_append(out, h, HDR_SIZE);
    for (int i = 0; i < SPILL_STRINGS; i++)
        payq_buf_append(out, strs[i] ? strs[i] : "", lens[i]);
}

int payq_spill_put(struct payq_spill *s, enum payq_spill_side side, const struct payq_spill_rec *r)
{
    if (s->failed[side])
        return -1;
    if (!s->bufs[side]) {
        s->bufs[side] = payq_xcalloc((size_t)s->buckets, sizeof(struct payq_buf));
    }
    int bucket = bucket_of(s, r->id);
    struct payq_buf *b = &s->bufs[side][bucket];
    payq_spill_encode(b, r);
    if (b->len < s->buf_limit)
        return 0;
    int rc = append_file(s, side, bucket, b);
    payq_buf_reset(b);
    return rc;
}

int payq_spill_flush(struct payq_spill *s, enum payq_spill_side side)
{
    if (s->failed[side])
        return -1;
    int rc = 0;
    for (int b = 0; s->bufs[side] && b < s->buckets && rc == 0; b++)
        if (s->bufs[side][b].len)
            rc = append_file(s, side, b, &s->bufs[side][b]);
    free_bufs(s, side);
    return rc;
}

int payq_spill_reset(struct payq_spill *s, enum payq_spill_side side)
{
    free_bufs(s, side);
    char path[4200];
    for (int b = 0; b < s->buckets; b++) {
        bucket_path(s, side, b, path, sizeof path);
        if (unlink(path) != 0 && errno != ENOENT) {
            payq_log(PAYQ_LOG_ERROR, "spill_failed", "could not remove file \"%s\": %s", path,
                     strerror(errno));
            return -1;
        }
    }
    return 0;
}

int payq_spill_load(struct payq_spill *s, enum payq_spill_side side, int bucket,
                    struct payq_buf *out)
{
    char path[4200], chunk[65536];
    bucket_path(s, side, bucket, path, sizeof path);
    payq_buf_reset(out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0; /* nothing was ever spilled to this bucket */
    if (fd < 0) {
        payq_log(PAYQ_LOG_ERROR, "spill_failed", "could not open file \"%s\": %s", path,
                 strerror(errno));
        return -1;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            payq_log(PAYQ_LOG_ERROR, "spill_failed", "could not read file \"%s\": %s", path,
                     strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        payq_buf_append(out, chunk, (size_t)n);
    }
    close(fd);
    return 0;
}

/* The record's strings, checked to end inside it. */
static int decode_strings(const char *p, size_t n, const char **strs)
{
    size_t off = 0;
    for (int i = 0; i < SPILL_STRINGS; i++) {
        const char *nul = off < n ? memchr(p + off, '\0', n - off) : NULL;
        if (!nul)
            return -1;
        strs[i] = p + off;
        off = (size_t)(nul - p) + 1;
    }
    return off == n ? 0 : -1;
}

int payq_spill_next(const struct payq_buf *data, size_t *off, struct payq_spill_rec *out)
{
    if (*off >= data->len)
        return 0;
    const char *p = data->data + *off;
    size_t left = data->len - *off;
    uint32_t len;
    const char *strs[SPILL_STRINGS];
    if (left < HDR_SIZE || (memcpy(&len, p, 4), len < HDR_SIZE) || len > left ||
        decode_strings(p + HDR_SIZE, len - HDR_SIZE, strs) != 0) {
        payq_log(PAYQ_LOG_ERROR, "spill_corrupt", "a spill file is corrupt at offset %zu", *off);
        return -1;
    }
    out->status = (uint8_t)p[4];
    memcpy(&out->amount, p + 5, 8);
    memcpy(&out->seq, p + 13, 8);
    memcpy(out->hash, p + 21, 32);
    memcpy(out->currency, p + 53, 4);
    out->currency[3] = '\0';
    out->body_dated = p[57] != 0;
    out->id = strs[0];
    out->batch_id = strs[1];
    out->debit = strs[2];
    out->credit = strs[3];
    out->reason = strs[4];
    *off += len;
    return 1;
}
